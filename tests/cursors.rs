//! Continuation cursors (contract §8): a truncated read returns `next_cursor`, `pg_query fetch`
//! pages through one snapshot, and cursors are owned, capped, expired and closed like session
//! handles. Results are compared with a direct `SELECT` over a separate connection, and the
//! cursors' own connections are counted from outside in `pg_stat_activity`.

mod common;

use std::time::Duration;

use common::{Era, McpClient, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const ALICE: &str = "cursors-alice-0123456789abcdef";
const BOB: &str = "cursors-bob-fedcba9876543210";

/// Every call of these tests must answer well within this (a cap or a lock must never hang).
const NO_HANG: Duration = Duration::from_secs(60);

/// All rows of `sql` run directly, as JSON arrays `[id, v]`.
async fn direct_rows(app: &TestApp, sql: &str) -> Vec<Value> {
    let rows: Vec<(i32, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&app.db)
        .await
        .expect("direct select");
    rows.into_iter().map(|(i, v)| json!([i, v])).collect()
}

/// The cursor connections of this app's database open now.
async fn cursor_connections(app: &TestApp) -> i64 {
    app.scalar_i64(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name = \
         'coldquery-cursor'",
        app.db_name
    ))
    .await
}

/// Wait (bounded) until the app's cursor connections number `n`; returns the last count.
async fn settle_cursor_connections(app: &TestApp, n: i64) -> i64 {
    let mut last = cursor_connections(app).await;
    for _ in 0..50 {
        if last == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = cursor_connections(app).await;
    }
    last
}

/// Page through a cursor to its end with `tool` (`pg_query` or `pg_read`); returns every row
/// (the first page's included) and the number of pages.
async fn drain(
    c: &McpClient,
    tool: &str,
    first: Value,
    max_rows: u64,
) -> (Vec<Value>, usize, Vec<String>) {
    let mut rows: Vec<Value> = first["rows"].as_array().unwrap().clone();
    let mut pages = 1;
    let mut used = Vec::new();
    let mut next = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(cur) = next {
        assert!(
            cur.starts_with("cur_") && cur.len() >= 4 + 32,
            "a cursor carries 128 random bits: {cur}"
        );
        let page = tokio::time::timeout(
            NO_HANG,
            c.ok(
                tool,
                json!({"action": "fetch", "cursor": cur, "max_rows": max_rows}),
            ),
        )
        .await
        .expect("fetch answers");
        assert!(
            page["row_count"].as_u64().unwrap() <= max_rows,
            "{}",
            page["row_count"]
        );
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        pages += 1;
        used.push(cur);
        next = page["next_cursor"].as_str().map(str::to_owned);
        if next.is_none() {
            assert_eq!(
                page["truncated"], false,
                "the last page is complete: {page}"
            );
        } else {
            assert_eq!(page["truncated"], true);
        }
        assert!(pages < 1000, "the cursor never ended");
    }
    (rows, pages, used)
}

#[tokio::test]
async fn paging_25000_rows_in_pages_of_1000_matches_one_direct_select() {
    let app = spawn_app().await;
    app.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL);
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 25000) g;",
    )
    .await;
    let c = app.client(Era::Session).await;
    let sql = "SELECT id, v FROM t ORDER BY id";
    let first = c
        .ok(
            "pg_query",
            json!({"action": "read", "sql": sql, "max_rows": 1000}),
        )
        .await;
    assert_eq!(first["row_count"], 1000);
    assert_eq!(first["truncated"], true);
    assert!(
        first["hint"].as_str().unwrap().contains("pg_query fetch"),
        "{}",
        first["hint"]
    );
    assert_eq!(
        cursor_connections(&app).await,
        1,
        "one dedicated connection"
    );
    let (rows, pages, used) = drain(&c, "pg_query", first, 1000).await;
    assert_eq!(pages, 25);
    let direct = direct_rows(&app, sql).await;
    assert_eq!(rows.len(), 25_000);
    assert!(rows == direct, "the pages differ from the direct SELECT");
    // Exhausted: the last cursor is gone, and so is every earlier page's handle; the
    // connection is closed.
    for cur in [used.last().unwrap(), &used[0]] {
        let e = c
            .err(
                "pg_query",
                json!({"action": "fetch", "cursor": cur}),
                "cursor_not_found",
            )
            .await;
        assert!(e["message"].as_str().unwrap().contains("read again"), "{e}");
    }
    assert_eq!(settle_cursor_connections(&app, 0).await, 0);

    // A byte-capped page (about 128 rows of 2 KiB fit in 256 KiB) skips and repeats nothing.
    let wide = "SELECT id, repeat(v, 64) AS v FROM t WHERE id <= 1000 ORDER BY id";
    let first = c
        .ok("pg_query", json!({"action": "read", "sql": wide}))
        .await;
    assert_eq!(first["truncated_by"], "max_result_bytes");
    let (rows, pages, _) = drain(&c, "pg_query", first, 1000).await;
    assert!(pages > 5, "{pages}");
    assert!(
        rows == direct_rows(&app, wide).await,
        "byte-capped pages differ"
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_concurrent_committed_write_does_not_appear_in_later_pages() {
    let app = spawn_app().await;
    app.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL);
         INSERT INTO t SELECT g, 'old' FROM generate_series(1, 3000) g;",
    )
    .await;
    let c = app.client(Era::Stateless).await;
    let sql = "SELECT id, v FROM t ORDER BY id";
    let before = direct_rows(&app, sql).await;
    // Through the read-only tool: fetch is a read.
    let first = c
        .ok(
            "pg_read",
            json!({"action": "query", "sql": sql, "max_rows": 1000}),
        )
        .await;
    assert!(first["next_cursor"].is_string(), "{first}");
    // Committed by someone else between the first page and the rest.
    app.exec(
        "INSERT INTO t SELECT g, 'new' FROM generate_series(3001, 4000) g;
         DELETE FROM t WHERE id BETWEEN 1500 AND 2500;
         UPDATE t SET v = 'changed' WHERE id > 2500;",
    )
    .await;
    let (rows, pages, _) = drain(&c, "pg_read", first, 1000).await;
    assert_eq!(pages, 3);
    assert!(rows == before, "later pages saw the concurrent write");
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 2999);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn expired_foreign_unknown_exhausted_and_closed_cursors_are_cursor_not_found() {
    let app = spawn_app_with(|c| {
        c.auth_tokens = Some(format!("alice={ALICE},bob={BOB}").as_str().into());
        c.cursor_ttl = Duration::from_secs(1);
    })
    .await;
    app.exec("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g")
        .await;
    let alice = McpClient::connect_with_token(&app.mcp_url(), Era::Session, Some(ALICE)).await;
    let bob = McpClient::connect_with_token(&app.mcp_url(), Era::Session, Some(BOB)).await;
    let read = json!({"action": "read", "sql": "SELECT id FROM t ORDER BY id", "max_rows": 10});

    // Foreign: Bob cannot use (or close) Alice's cursor; it stays hers.
    let mine = alice.ok("pg_query", read.clone()).await;
    let cur = mine["next_cursor"].as_str().unwrap().to_owned();
    for action in ["fetch", "close_cursor"] {
        bob.err(
            "pg_query",
            json!({"action": action, "cursor": cur}),
            "cursor_not_found",
        )
        .await;
    }
    let page = alice
        .ok(
            "pg_query",
            json!({"action": "fetch", "cursor": cur, "max_rows": 10}),
        )
        .await;
    assert_eq!(page["rows"][0], json!([11]));

    // Closed: close_cursor ends it, and its connection goes.
    let cur = page["next_cursor"].as_str().unwrap().to_owned();
    let closed = alice
        .ok("pg_query", json!({"action": "close_cursor", "cursor": cur}))
        .await;
    assert_eq!(closed["closed"], true);
    alice
        .err(
            "pg_query",
            json!({"action": "fetch", "cursor": cur}),
            "cursor_not_found",
        )
        .await;
    assert_eq!(settle_cursor_connections(&app, 0).await, 0);

    // Expired: 1 s idle (COLDQUERY_CURSOR_TTL) and the reaper closes it.
    let r = alice.ok("pg_query", read.clone()).await;
    let cur = r["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor_connections(&app).await, 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(settle_cursor_connections(&app, 0).await, 0, "reaped");
    let e = alice
        .err(
            "pg_query",
            json!({"action": "fetch", "cursor": cur}),
            "cursor_not_found",
        )
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("COLDQUERY_CURSOR_TTL"),
        "{e}"
    );

    // Unknown and missing.
    alice
        .err(
            "pg_query",
            json!({"action": "fetch", "cursor": "cur_00000000000000000000000000000000"}),
            "cursor_not_found",
        )
        .await;
    alice
        .err("pg_query", json!({"action": "fetch"}), "invalid_input")
        .await;

    // Exhausted: a result that ends on the page has no cursor, and a drained one is gone.
    let r = alice
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT id FROM t ORDER BY id", "max_rows": 25}),
        )
        .await;
    let cur = r["next_cursor"].as_str().unwrap().to_owned();
    let last = alice
        .ok(
            "pg_query",
            json!({"action": "fetch", "cursor": cur, "max_rows": 25}),
        )
        .await;
    assert_eq!(last["row_count"], 25);
    assert!(last.get("next_cursor").is_none(), "{last}");
    assert_eq!(last["rows"][24], json!([50]));
    alice
        .err(
            "pg_query",
            json!({"action": "fetch", "cursor": cur}),
            "cursor_not_found",
        )
        .await;
    let whole = alice.read("SELECT id FROM t").await;
    assert!(whole.get("next_cursor").is_none());
    assert_eq!(settle_cursor_connections(&app, 0).await, 0);
    alice.close().await;
    bob.close().await;
    app.finish().await;
}

#[tokio::test]
async fn the_cursor_cap_is_enforced_without_a_hang_and_cursors_close_with_their_mcp_session() {
    let app = spawn_app().await;
    let c = app.client(Era::Session).await;
    let read =
        json!({"action": "read", "sql": "SELECT g FROM generate_series(1, 100) g", "max_rows": 10});
    let mut cursors = Vec::new();
    for _ in 0..4 {
        let r = tokio::time::timeout(NO_HANG, c.ok("pg_query", read.clone()))
            .await
            .expect("no hang");
        cursors.push(r["next_cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(cursor_connections(&app).await, 4);
    // The fifth still answers with its first page, without a cursor, and says why.
    let r = tokio::time::timeout(NO_HANG, c.ok("pg_query", read.clone()))
        .await
        .expect("no hang at the cap");
    assert_eq!(r["row_count"], 10);
    assert_eq!(r["truncated"], true);
    assert!(r.get("next_cursor").is_none(), "{r}");
    let hint = r["hint"].as_str().unwrap();
    assert!(
        hint.contains("cursor cap") && hint.contains("COLDQUERY_MAX_CURSORS"),
        "{hint}"
    );
    assert_eq!(cursor_connections(&app).await, 4);
    // Closing one makes room.
    c.ok(
        "pg_query",
        json!({"action": "close_cursor", "cursor": cursors[0]}),
    )
    .await;
    let r = c.ok("pg_query", read.clone()).await;
    assert!(r["next_cursor"].is_string(), "{r}");
    // Another caller has caps of its own.
    let other = app.client(Era::Session).await;
    let r = other.ok("pg_query", read.clone()).await;
    assert!(r["next_cursor"].is_string(), "{r}");
    assert_eq!(settle_cursor_connections(&app, 5).await, 5);
    // The MCP session ends (DELETE): its cursors close.
    c.close().await;
    assert_eq!(settle_cursor_connections(&app, 1).await, 1);
    other.close().await;
    assert_eq!(settle_cursor_connections(&app, 0).await, 0);
    app.finish().await;
}

#[tokio::test]
async fn a_cursor_inside_a_session_sees_its_uncommitted_rows_and_ends_with_it() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
        .await;
    let c = app.client(Era::Session).await;
    let tx = c.ok("pg_tx", json!({"action": "begin"})).await;
    let sid = tx["session_id"].as_str().unwrap().to_owned();
    c.ok(
        "pg_query",
        json!({"action": "write", "session_id": sid,
               "sql": "INSERT INTO t SELECT g, 'mine' FROM generate_series(1, 2500) g"}),
    )
    .await;
    let first = c
        .ok(
            "pg_query",
            json!({"action": "read", "session_id": sid, "sql": "SELECT id, v FROM t ORDER BY id",
                   "max_rows": 1000}),
        )
        .await;
    assert!(first["next_cursor"].is_string(), "{first}");
    // No connection of its own: it lives in the session's transaction.
    assert_eq!(cursor_connections(&app).await, 0);
    let (rows, pages, _) = drain(&c, "pg_query", first, 1000).await;
    assert_eq!(pages, 3);
    let expected: Vec<Value> = (1..=2500).map(|i| json!([i, "mine"])).collect();
    assert!(rows == expected, "the session's rows were not all paged");
    // Still uncommitted, and the session is still usable.
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);

    // A cursor ends with its session.
    let r = c
        .ok(
            "pg_query",
            json!({"action": "read", "session_id": sid, "sql": "SELECT id, v FROM t ORDER BY id",
                   "max_rows": 100}),
        )
        .await;
    let cur = r["next_cursor"].as_str().unwrap().to_owned();
    let page = c
        .ok("pg_query", json!({"action": "fetch", "cursor": cur}))
        .await;
    assert_eq!(page["rows"][0], json!([101, "mine"]));
    assert!(page["session"]["id"] == sid, "{page}");
    let cur = page["next_cursor"].as_str().unwrap().to_owned();
    let done = c
        .ok("pg_tx", json!({"action": "commit", "session_id": sid}))
        .await;
    assert_eq!(done["committed"], true);
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 2500);
    c.err(
        "pg_query",
        json!({"action": "fetch", "cursor": cur}),
        "cursor_not_found",
    )
    .await;
    c.close().await;
    app.finish().await;
}
