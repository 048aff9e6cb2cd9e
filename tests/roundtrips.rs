//! How many database round trips a call costs, counted from outside: the server connects to
//! PostgreSQL through a TCP relay in this test that reads the frontend protocol and counts
//! every `Sync` and simple `Query` message (each is one round trip: the client waits for
//! `ReadyForQuery`). A pooled point read of reviewed code is one round trip on the call's
//! path; sqlx adds one more, a `Sync` "ping" when the connection goes back to the pool, which
//! runs in a task of its own after the call has its rows (sqlx 0.9 has no switch for it), so
//! the relay sees two per read, against four for the BEGIN … ROLLBACK form (which a caller with
//! a role always takes: its `SET LOCAL ROLE` needs a transaction).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Era, admin_url, spawn_app_with};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `host:port` of the admin URL's server.
fn upstream() -> String {
    let url = admin_url();
    let after_at = url.rsplit_once('@').map(|(_, r)| r).unwrap_or(&url);
    let after_scheme = after_at
        .rsplit_once("://")
        .map(|(_, r)| r)
        .unwrap_or(after_at);
    after_scheme.split('/').next().unwrap().to_owned()
}

/// Start the counting relay; returns its port and the counter.
async fn relay() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream()).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                let _ = frontend(&mut cr, &mut sw, &c).await;
            });
        }
    });
    (port, count)
}

/// Copy the frontend stream, counting `S` and `Q` messages after the startup packet.
async fn frontend(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    count: &AtomicU64,
) -> std::io::Result<()> {
    // Untyped start-up messages: an SSL or GSS request (answered by one byte), then the
    // start-up packet itself.
    loop {
        let mut len = [0u8; 4];
        from.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; n - 4];
        from.read_exact(&mut body).await?;
        to.write_all(&len).await?;
        to.write_all(&body).await?;
        let code = u32::from_be_bytes(body[..4].try_into().unwrap());
        if code != 80877103 && code != 80877104 {
            break;
        }
    }
    loop {
        let mut head = [0u8; 5];
        from.read_exact(&mut head).await?;
        if matches!(head[0], b'S' | b'Q') {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let n = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
        let mut body = vec![0u8; n - 4];
        from.read_exact(&mut body).await?;
        to.write_all(&head).await?;
        to.write_all(&body).await?;
    }
}

/// The count once the release ping of the last call (a task of its own) has gone out.
async fn settled(trips: &AtomicU64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    trips.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_pooled_point_read_is_one_round_trip_and_the_other_forms_say_what_they_cost() {
    let (port, trips) = relay().await;
    let app = spawn_app_with(|c| {
        let url = c.database_url.as_ref().unwrap().expose().to_owned();
        let db = url.rsplit_once('/').unwrap().1.to_owned();
        c.database_url = Some(
            format!("postgres://postgres@127.0.0.1:{port}/{db}")
                .as_str()
                .into(),
        );
        // Audit rows go over connections of their own; keep them out of the count.
        c.audit = coldquery::config::Switch::Off;
    })
    .await;
    app.exec("CREATE TABLE items (id int PRIMARY KEY, v text)")
        .await;
    app.exec("INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 1000) g")
        .await;
    app.exec("CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2'")
        .await;
    let point = "SELECT * FROM items WHERE id = $1";
    for era in [Era::Session, Era::Stateless] {
        let c = app.client(era).await;
        // Warm up: the statement is prepared (and cached) on the pooled connection, the
        // catalog snapshot is loaded.
        for i in 1..=10 {
            c.ok(
                "pg_query",
                json!({"action": "read", "sql": point, "params": [i]}),
            )
            .await;
        }
        let before = settled(&trips).await;
        for i in 1..=50 {
            let r = c
                .ok(
                    "pg_query",
                    json!({"action": "read", "sql": point, "params": [i]}),
                )
                .await;
            assert_eq!(r["rows"], json!([[i, format!("v{i}")]]), "{r}");
        }
        let per_call = (settled(&trips).await - before) as f64 / 50.0;
        assert_eq!(
            per_call, 2.0,
            "{era:?}: a cached point read is one round trip (+ sqlx's release ping)"
        );

        // Under a cost ceiling (here the call's max_cost) the statement is priced first: one
        // more round trip, the EXPLAIN, on the same connection.
        let priced = json!({"action": "read", "sql": point, "params": [1], "max_cost": 1e9});
        for _ in 0..10 {
            c.ok("pg_query", priced.clone()).await;
        }
        let before = settled(&trips).await;
        for _ in 1..=10 {
            let r = c.ok("pg_query", priced.clone()).await;
            assert_eq!(r["rows"], json!([[1, "v1"]]), "{r}");
        }
        let per_call = (settled(&trips).await - before) as f64 / 10.0;
        assert_eq!(per_call, 3.0, "{era:?}: a point read under a cost ceiling");

        // A user-defined function may leave session state (its body is not reviewed), so its
        // read keeps BEGIN READ ONLY … ROLLBACK: three round trips (+ the release ping).
        let sql = "SELECT twice(id) FROM items WHERE id = $1";
        // Warm-up on every pooled connection (a call can find the previous one still busy
        // with its release ping and take another).
        for _ in 0..10 {
            c.ok(
                "pg_query",
                json!({"action": "read", "sql": sql, "params": [1]}),
            )
            .await;
        }
        let before = settled(&trips).await;
        for i in 1..=10 {
            let r = c
                .ok(
                    "pg_query",
                    json!({"action": "read", "sql": sql, "params": [i]}),
                )
                .await;
            assert_eq!(r["rows"], json!([[i * 2]]), "{r}");
        }
        let per_call = (settled(&trips).await - before) as f64 / 10.0;
        assert_eq!(per_call, 4.0, "{era:?}: a read of a user function");

        // A committed write: BEGIN READ WRITE (+ timeouts, pid), the statement, COMMIT with
        // the clean-up of the shared connection (+ the release ping).
        let w = "UPDATE items SET v = v WHERE id = $1";
        for _ in 0..10 {
            c.ok(
                "pg_query",
                json!({"action": "write", "sql": w, "params": [1], "autocommit": true}),
            )
            .await;
        }
        let before = settled(&trips).await;
        for i in 1..=10 {
            c.ok(
                "pg_query",
                json!({"action": "write", "sql": w, "params": [i], "autocommit": true}),
            )
            .await;
        }
        let per_call = (settled(&trips).await - before) as f64 / 10.0;
        assert_eq!(per_call, 4.0, "{era:?}: a committed write");
        c.close().await;
    }
    // The one-round-trip read ran on a read-only connection: a write slipped into a read
    // position would have been refused by PostgreSQL too.
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM items WHERE v = 'v' || id")
            .await,
        1000
    );
    app.finish().await;
}

/// Runs `sql` on the cluster as the admin.
async fn admin(sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("admin SQL failed: {e}\n{sql}"));
    let _ = c.close().await;
}

#[tokio::test]
async fn a_caller_with_a_role_reads_in_the_transaction_form() {
    // Roles are cluster-wide: a name of this branch's tests, unique to this run, dropped
    // whatever the test's outcome.
    let role = format!(
        "roles_t_rt_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    admin(&format!(
        "CREATE ROLE {role} NOLOGIN; GRANT {role} TO postgres"
    ))
    .await;
    let (port, trips) = relay().await;
    let app = spawn_app_with(|c| {
        let url = c.database_url.as_ref().unwrap().expose().to_owned();
        let db = url.rsplit_once('/').unwrap().1.to_owned();
        c.database_url = Some(
            format!("postgres://postgres@127.0.0.1:{port}/{db}")
                .as_str()
                .into(),
        );
        c.audit = coldquery::config::Switch::Off;
        c.default_role = Some(role.clone());
    })
    .await;
    let db_name = app.db_name.clone();
    let r = role.clone();
    let body = tokio::spawn(async move {
        app.exec(&format!(
            "CREATE TABLE items (id int PRIMARY KEY, v text); \
             INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g; \
             GRANT SELECT ON items TO {r}"
        ))
        .await;
        let c = app.client(Era::Stateless).await;
        let point = "SELECT v, current_user::text FROM items WHERE id = $1";
        for i in 1..=10 {
            c.ok(
                "pg_query",
                json!({"action": "read", "sql": point, "params": [i]}),
            )
            .await;
        }
        let before = settled(&trips).await;
        for i in 1..=10 {
            let v = c
                .ok(
                    "pg_query",
                    json!({"action": "read", "sql": point, "params": [i]}),
                )
                .await;
            assert_eq!(v["rows"], json!([[format!("v{i}"), r]]), "{v}");
        }
        // BEGIN READ ONLY with the timeouts, SET LOCAL ROLE and the pid in one message; the
        // statement; ROLLBACK (+ the release ping).
        let per_call = (settled(&trips).await - before) as f64 / 10.0;
        assert_eq!(per_call, 4.0, "a read of a caller with a role");
        c.close().await;
        app.finish().await;
    })
    .await;
    admin(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).await;
    admin(&format!("DROP ROLE IF EXISTS {role}")).await;
    if let Err(e) = body {
        std::panic::resume_unwind(e.into_panic());
    }
}
