//! Cancellation (issue 12, point 4): a client that sends `notifications/cancelled` for a running
//! call stops its statement in PostgreSQL, not only the wait for its answer. Each long
//! operation (VACUUM, ANALYZE, REINDEX, CREATE INDEX, a long read) is started through a real
//! rmcp client, cancelled through its request handle, and watched from outside in
//! pg_stat_activity; that it did not simply finish is checked from what it would have left
//! behind (last_vacuum, last_analyze, a new relfilenode, the index).

mod common;

use std::time::{Duration, Instant};

use common::{Era, McpClient, TestApp, spawn_app_with};
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};
use sqlx::Connection;

/// Rows in the test table: an index over `md5(repeat(pad, 60))` takes about 5 s to build over
/// them on a small machine, so REINDEX and CREATE INDEX are cancelled well before they finish.
const ROWS: i64 = 1_000_000;
/// The slow index expression (hashing 2 KB a row).
const SLOW: &str = "md5(repeat(pad, 60))";

/// A server whose database throttles VACUUM and ANALYZE (cost-based delay: a short sleep after
/// nearly every page), so that they run for many seconds over a table of a few thousand pages.
/// The settings are the database's own, set before the server opens its first connection.
async fn app() -> TestApp {
    let app = spawn_app_with(|config| {
        let url = config
            .database_url
            .as_ref()
            .expect("the test sets a database URL")
            .expose()
            .to_owned();
        let db = url.rsplit('/').next().unwrap().to_owned();
        // tweak is synchronous; a runtime of its own on another thread does the async work.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    for setting in ["vacuum_cost_delay = '20ms'", "vacuum_cost_limit = 1"] {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "ALTER DATABASE {db} SET {setting}"
                        )))
                        .execute(&mut c)
                        .await
                        .unwrap();
                    }
                })
        })
        .join()
        .unwrap();
    })
    .await;
    app.exec(&format!(
        "CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = false);
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;
         CREATE INDEX big_slow ON big ({SLOW});"
    ))
    .await;
    app
}

/// Client backends of this database running a statement that matches `pattern` (ILIKE);
/// parallel workers of an index build show the same query and are not counted.
async fn running(app: &TestApp, pattern: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND backend_type = 'client backend' AND state = 'active' \
         AND pid <> pg_backend_pid() AND query ILIKE $1",
    )
    .bind(pattern)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Start `tool` with `args`, wait until its statement runs, let it work a moment, cancel the
/// request, and return how long its statement took to leave pg_stat_activity.
async fn start_and_cancel(
    app: &TestApp,
    c: &McpClient,
    tool: &str,
    args: Value,
    pattern: &str,
) -> Duration {
    let Value::Object(map) = args else {
        unreachable!()
    };
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new(tool.to_owned()).with_arguments(map),
    ));
    let handle = c
        .inner()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("the request is sent");
    let seen = wait_for(
        &format!("{pattern} starts"),
        Duration::from_secs(20),
        async || running(app, pattern).await == 1,
    )
    .await;
    eprintln!("{pattern}: running {seen:?} after the request");
    tokio::time::sleep(Duration::from_millis(500)).await;
    if running(app, pattern).await != 1 {
        let r = handle.await_response().await;
        panic!("{pattern} no longer runs before the cancel: {r:?}");
    }
    handle
        .cancel(Some("the test cancels it".into()))
        .await
        .expect("notifications/cancelled is sent");
    wait_for(
        &format!("{pattern} stops after the cancel"),
        Duration::from_secs(3),
        async || running(app, pattern).await == 0,
    )
    .await
}

#[tokio::test]
async fn cancelled_maintenance_and_reads_stop_their_statement_in_postgres() {
    let app = app().await;
    let c = app.client(Era::Session).await;
    let stat = |col: &'static str| {
        format!(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'big' AND {col} IS NOT NULL"
        )
    };

    let took = start_and_cancel(
        &app,
        &c,
        "pg_admin",
        json!({"action": "vacuum", "table": "big", "autocommit": true}),
        "vacuum%big%",
    )
    .await;
    eprintln!("VACUUM stopped {took:?} after the cancel");
    assert_eq!(
        app.scalar_i64(&stat("last_vacuum")).await,
        0,
        "VACUUM did not finish"
    );

    let took = start_and_cancel(
        &app,
        &c,
        "pg_admin",
        json!({"action": "analyze", "table": "big", "autocommit": true}),
        "analyze%big%",
    )
    .await;
    eprintln!("ANALYZE stopped {took:?} after the cancel");
    assert_eq!(
        app.scalar_i64(&stat("last_analyze")).await,
        0,
        "ANALYZE did not finish"
    );

    let filenode = "SELECT relfilenode::bigint FROM pg_class WHERE relname = 'big_slow'";
    let before = app.scalar_i64(filenode).await;
    let took = start_and_cancel(
        &app,
        &c,
        "pg_admin",
        json!({"action": "reindex", "table": "big", "autocommit": true}),
        "reindex%big%",
    )
    .await;
    eprintln!("REINDEX stopped {took:?} after the cancel");
    assert_eq!(
        app.scalar_i64(filenode).await,
        before,
        "REINDEX did not finish"
    );

    let took = start_and_cancel(
        &app,
        &c,
        "pg_schema",
        json!({"action": "create", "sql": format!("CREATE INDEX big_md5 ON big ({SLOW})"), "autocommit": true}),
        "create index big_md5%",
    )
    .await;
    eprintln!("CREATE INDEX stopped {took:?} after the cancel");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM pg_class WHERE relname = 'big_md5'")
            .await,
        0,
        "CREATE INDEX did not finish"
    );

    let took = start_and_cancel(
        &app,
        &c,
        "pg_query",
        json!({"action": "read", "sql": "SELECT count(*) FROM big a, big b WHERE a.pad < b.pad"}),
        "%big a, big b%",
    )
    .await;
    eprintln!("the read stopped {took:?} after the cancel");

    // The server keeps serving, on connections that are not stuck in the old statements.
    assert_eq!(
        c.read("SELECT count(*) FROM big").await["rows"],
        json!([[ROWS]])
    );
    c.close().await;
    app.finish().await;
}
