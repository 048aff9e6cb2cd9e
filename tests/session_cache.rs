//! A pg_tx session keeps its cached statements from one call to the next, and a successful
//! read leaves its savepoint open until the session's next statement (issue 11). These tests
//! change tables under a session's cached statements, from another connection and from inside
//! the session, and check that no call fails and the transaction is never aborted by a stale
//! statement; and that a read's savepoint never swallows what runs after it.

mod common;

use common::{Era, McpClient, spawn_app};
use serde_json::{Value, json};

async fn call(c: &McpClient, sid: &str, action: &str, sql: &str, params: Value) -> Value {
    c.ok(
        "pg_query",
        json!({"action": action, "sql": sql, "params": params, "session_id": sid}),
    )
    .await
}

async fn savepoint(c: &McpClient, sid: &str, name: &str) {
    c.ok(
        "pg_tx",
        json!({"action": "savepoint", "savepoint_name": name, "session_id": sid}),
    )
    .await;
}

#[tokio::test]
async fn cached_statements_survive_ddl_from_another_connection_and_from_the_session() {
    let app = spawn_app().await;
    app.exec(
        "CREATE TABLE items (id int PRIMARY KEY, v text); \
         INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 10) g; \
         CREATE TABLE codes (k text, n int); INSERT INTO codes VALUES ('5', 50); \
         CREATE TABLE marks (k int PRIMARY KEY, n int); INSERT INTO marks VALUES (1, 10); \
         CREATE TABLE log (id int); \
         CREATE FUNCTION widen() RETURNS trigger LANGUAGE plpgsql AS \
           'BEGIN ALTER TABLE items ADD COLUMN w int DEFAULT 3; RETURN NEW; END'; \
         CREATE TRIGGER widen AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION widen()",
    )
    .await;
    let c = app.client(Era::Session).await;
    let sid = c.begin().await;
    // Outside DDL must not wait forever if the session still held a lock.
    let outside = async |sql: &str| {
        app.exec(&format!("SET lock_timeout = '5s'; {sql}")).await;
    };

    // 1. Another connection adds a column between two reads of `SELECT *`: the cached
    // statement's result type changed ("cached plan must not change result type"); the read
    // is retried with fresh statements.
    let star = "SELECT * FROM codes WHERE n = $1";
    let r = call(&c, &sid, "read", star, json!([50])).await;
    assert_eq!(r["rows"], json!([["5", 50]]), "{r}");
    // The read's savepoint is still open, holding its lock on codes: a pg_tx call ends it.
    savepoint(&c, &sid, "s1").await;
    outside("ALTER TABLE codes ADD COLUMN note text DEFAULT 'x'").await;
    let r = call(&c, &sid, "read", star, json!([50])).await;
    assert_eq!(r["rows"], json!([["5", 50, "x"]]), "{r}");

    // 2. A column's type changes under a cached statement with a parameter: re-analysed with
    // its old parameter type it fails with an analysis error (text = integer); retried fresh,
    // the parameter takes the new type.
    let by_k = "SELECT n FROM codes WHERE k = $1";
    let r = call(&c, &sid, "read", by_k, json!(["5"])).await;
    assert_eq!(r["rows"], json!([[50]]), "{r}");
    savepoint(&c, &sid, "s2").await;
    outside("ALTER TABLE codes ALTER COLUMN k TYPE int USING k::int").await;
    let r = call(&c, &sid, "read", by_k, json!([5])).await;
    assert_eq!(r["rows"], json!([[50]]), "{r}");

    // 3. A dry run prepares a write under a savepoint that is rolled back, which releases its
    // lock; another connection changes the table; the same write, now applied, must not run
    // the cached statement (a stale plan there would abort the transaction).
    let bump = "UPDATE marks SET n = n + 1 WHERE k = $1 RETURNING *";
    let d = c
        .ok(
            "pg_query",
            json!({"action": "write", "sql": bump, "params": [1], "session_id": sid,
                   "dry_run": true}),
        )
        .await;
    assert_eq!(d["rows"], json!([[1, 11]]), "{d}");
    outside("ALTER TABLE marks ADD COLUMN at int DEFAULT 0").await;
    let w = call(&c, &sid, "write", bump, json!([1])).await;
    assert_eq!(w["rows"], json!([[1, 11, 0]]), "{w}");

    // 4. The session's own DDL, run by a trigger its write fired, changes a table under both
    // a cached read and a cached applied write.
    let read_items = "SELECT * FROM items WHERE id = $1";
    let set_v = "UPDATE items SET v = $2 WHERE id = $1 RETURNING *";
    let r = call(&c, &sid, "read", read_items, json!([1])).await;
    assert_eq!(r["rows"], json!([[1, "v1"]]), "{r}");
    let w = call(&c, &sid, "write", set_v, json!([1, "a"])).await;
    assert_eq!(w["rows"], json!([[1, "a"]]), "{w}");
    call(&c, &sid, "write", "INSERT INTO log VALUES (1)", json!([])).await;
    let w = call(&c, &sid, "write", set_v, json!([1, "b"])).await;
    assert_eq!(w["rows"], json!([[1, "b", 3]]), "{w}");
    let r = call(&c, &sid, "read", read_items, json!([1])).await;
    assert_eq!(r["rows"], json!([[1, "b", 3]]), "{r}");

    // Nothing above aborted the transaction: it commits all of it.
    let s = c
        .ok("pg_tx", json!({"action": "commit", "session_id": sid}))
        .await;
    assert_eq!(s["committed"], true, "{s}");
    assert_eq!(
        app.scalar_i64("SELECT n::int8 FROM marks WHERE k = 1")
            .await,
        11
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM items WHERE id = 1 AND v = 'b' AND w = 3")
            .await,
        1
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn what_runs_after_a_read_runs_outside_its_savepoint() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
        .await;
    let c = app.client(Era::Stateless).await;
    let sid = c.begin().await;
    let read = "SELECT v FROM t WHERE id = $1";

    // A read, then a write applied to the transaction: the write is not inside the read's
    // read-only savepoint (it would be refused, or undone by its rollback).
    let r = call(&c, &sid, "read", read, json!([1])).await;
    assert_eq!(r["rows"], json!([["a"]]), "{r}");
    call(
        &c,
        &sid,
        "write",
        "UPDATE t SET v = 'b' WHERE id = 1",
        json!([]),
    )
    .await;

    // A read, then a savepoint of the caller's, a write, and a rollback to it: the savepoint
    // is the caller's own, taken after the read's was ended.
    let r = call(&c, &sid, "read", read, json!([1])).await;
    assert_eq!(r["rows"], json!([["b"]]), "{r}");
    savepoint(&c, &sid, "before_c").await;
    call(
        &c,
        &sid,
        "write",
        "UPDATE t SET v = 'c' WHERE id = 1",
        json!([]),
    )
    .await;
    c.ok(
        "pg_tx",
        json!({"action": "rollback_to", "savepoint_name": "before_c", "session_id": sid}),
    )
    .await;
    let r = call(&c, &sid, "read", read, json!([1])).await;
    assert_eq!(r["rows"], json!([["b"]]), "{r}");

    // A read holds its table's AccessShareLock until the session's next statement: a
    // pg_query transaction (its own savepoint) runs after the read's was ended.
    let r = app
        .scalar_i64(&format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.relation = 't'::regclass AND l.mode = 'AccessShareLock' \
             AND a.application_name = 'coldquery-session' AND a.datname = '{}'",
            app.db_name
        ))
        .await;
    assert_eq!(
        r, 1,
        "the last read's lock is held while its savepoint is open"
    );
    let tx = c
        .ok(
            "pg_query",
            json!({"action": "transaction", "session_id": sid, "operations": [
                {"sql": "UPDATE t SET v = 'd' WHERE id = 1"}]}),
        )
        .await;
    assert_eq!(tx["applied_to_session"], true, "{tx}");

    // A read right before COMMIT: COMMIT ends the read's savepoint first and commits the rest.
    let r = call(&c, &sid, "read", read, json!([1])).await;
    assert_eq!(r["rows"], json!([["d"]]), "{r}");
    let s = c
        .ok("pg_tx", json!({"action": "commit", "session_id": sid}))
        .await;
    assert_eq!(s["committed"], true, "{s}");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t WHERE v = 'd'").await,
        1
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_backend_killed_while_a_read_savepoint_is_open_loses_the_session_clearly() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    let kill = async || {
        app.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'coldquery-session' AND datname = current_database()",
        )
        .await;
    };
    // The next statement after the read is a write (the savepoint is closed on its own), a
    // pg_tx savepoint (closed in the same message), or COMMIT (likewise).
    let next: [(&str, Value); 3] = [
        (
            "pg_query",
            json!({"action": "write", "sql": "INSERT INTO t VALUES (2)"}),
        ),
        (
            "pg_tx",
            json!({"action": "savepoint", "savepoint_name": "s"}),
        ),
        ("pg_tx", json!({"action": "commit"})),
    ];
    for (tool, mut args) in next {
        let sid = c.begin().await;
        call(&c, &sid, "write", "INSERT INTO t VALUES (1)", json!([])).await;
        let r = call(&c, &sid, "read", "SELECT count(*) FROM t", json!([])).await;
        assert_eq!(r["rows"], json!([[1]]), "{r}");
        kill().await;
        args["session_id"] = json!(sid);
        // COMMIT reports the backend's own last word (57P01) as a failed COMMIT that rolled
        // back: `finish` treats every database error at COMMIT so, with or without a read's
        // savepoint in front of it.
        let category = if tool == "pg_tx" && args["action"] == "commit" {
            "database_error"
        } else {
            "session_lost"
        };
        let e = c.err(tool, args.clone(), category).await;
        assert!(
            e["message"].as_str().unwrap().contains("rolled back"),
            "{args}: {e}"
        );
        assert_eq!(
            c.ok("pg_tx", json!({"action": "list"})).await["sessions"],
            json!([]),
            "{args}"
        );
    }
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    c.close().await;
    app.finish().await;
}
