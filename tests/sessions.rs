//! pg_tx: transactions across tool calls, through real MCP clients, with the database state
//! verified over a separate connection each time (issue #3 scenarios 1–14).

mod common;

use std::time::{Duration, Instant};

use common::{ERAS, Era, McpClient, TestApp, spawn_app, spawn_app_with, wait_until};
use serde_json::{Value, json};

/// `pg_tx begin`, checking the form of the id it returns.
async fn begin(c: &McpClient) -> String {
    let id = c.begin().await;
    assert!(id.starts_with("tx_") && id.len() >= 35, "{id}");
    id
}

async fn write(c: &McpClient, id: &str, sql: &str) -> Value {
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": sql, "session_id": id}),
    )
    .await
}

#[tokio::test]
async fn begin_write_write_commit_makes_both_rows_visible() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await;
    for (n, era) in ERAS.into_iter().enumerate() {
        let c = app.client(era).await;
        let base = n as i64 * 10;
        let id = begin(&c).await;
        let r = write(
            &c,
            &id,
            &format!("INSERT INTO t VALUES ({}, 'a')", base + 1),
        )
        .await;
        assert_eq!(r["session"]["id"], id.as_str());
        assert_eq!(r["session"]["state"], "in_transaction");
        assert!(r["session"]["expires_in_s"].as_u64().unwrap() > 1700);
        write(
            &c,
            &id,
            &format!("INSERT INTO t VALUES ({}, 'b')", base + 2),
        )
        .await;
        // Inside the session the rows are visible to a read; outside they are not yet.
        let inside = c
            .ok("pg_query", json!({"action": "read", "sql": "SELECT count(*) FROM t WHERE id > $1", "params": [base], "session_id": id}))
            .await;
        assert_eq!(inside["rows"], json!([[2]]));
        assert_eq!(
            app.scalar_i64(&format!("SELECT count(*) FROM t WHERE id > {base}"))
                .await,
            0
        );
        let r = c
            .ok("pg_tx", json!({"action": "commit", "session_id": id}))
            .await;
        assert_eq!(r["committed"], true);
        assert_eq!(
            app.scalar_i64(&format!("SELECT count(*) FROM t WHERE id > {base}"))
                .await,
            2
        );
        c.err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT 1", "session_id": id}),
            "session_not_found",
        )
        .await;
        c.close().await;
    }
    assert_eq!(app.session_backends().await, 0);
    app.finish().await;
}

#[tokio::test]
async fn rollback_discards_and_nothing_leaks_before_commit() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (1)").await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t").await,
        0,
        "invisible to another connection"
    );
    let r = c
        .ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    assert_eq!(r["rolled_back"], true);
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    assert_eq!(app.session_backends().await, 0);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn another_client_cannot_use_list_commit_or_roll_back_a_handle() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let a = app.client(Era::Session).await;
    let b = app.client(Era::Session).await;
    let anon = app.client(Era::Stateless).await;
    let id = begin(&a).await;
    write(&a, &id, "INSERT INTO t VALUES (1)").await;
    for other in [&b, &anon] {
        let e = other
            .err(
                "pg_query",
                json!({"action": "read", "sql": "SELECT 1", "session_id": id}),
                "session_not_found",
            )
            .await;
        assert!(
            !e["message"].as_str().unwrap().contains("belongs"),
            "must look like a missing id: {e}"
        );
        other
            .err(
                "pg_tx",
                json!({"action": "commit", "session_id": id}),
                "session_not_found",
            )
            .await;
        other
            .err(
                "pg_tx",
                json!({"action": "rollback", "session_id": id}),
                "session_not_found",
            )
            .await;
        other
            .err(
                "pg_tx",
                json!({"action": "savepoint", "session_id": id, "savepoint_name": "x"}),
                "session_not_found",
            )
            .await;
        let l = other.ok("pg_tx", json!({"action": "list"})).await;
        assert_eq!(l["sessions"], json!([]));
    }
    // The same error for an id that never existed.
    b.err(
        "pg_tx",
        json!({"action": "commit", "session_id": "tx_00000000000000000000000000000000"}),
        "session_not_found",
    )
    .await;
    let l = a.ok("pg_tx", json!({"action": "list"})).await;
    assert_eq!(l["sessions"][0]["id"], id.as_str());
    assert_eq!(l["sessions"][0]["state"], "in_transaction");
    assert_eq!(l["sessions"][0]["statements"], 1);
    a.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 1);
    for c in [a, b, anon] {
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_stateless_client_completes_a_transaction_by_handle() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Stateless).await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (7)").await;
    let other_result = c.read("SELECT 1").await;
    assert_eq!(
        other_result["hints"][0]["session_id"],
        id.as_str(),
        "hints remind of open sessions"
    );
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t WHERE id = 7").await,
        1
    );
    assert!(c.read("SELECT 1").await.get("hints").is_none());
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn an_idle_session_expires_rolls_back_and_closes_its_backend() {
    let app = spawn_app_with(|c| c.session_ttl = Duration::from_secs(2)).await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (1)").await;
    assert_eq!(app.session_backends().await, 1);
    wait_until(
        "the reaper closes the backend",
        Duration::from_secs(6),
        async || app.session_backends().await == 0,
    )
    .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT 1", "session_id": id}),
            "session_expired",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("rolled back"),
        "{e}"
    );
    let text = app.metrics_text().await;
    assert!(
        text.contains("coldquery_sessions_total{event=\"reaped\"} 1"),
        "{text}"
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn deleting_the_mcp_session_rolls_back_and_closes_its_handles() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    for i in 0..2 {
        let id = begin(&c).await;
        write(&c, &id, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    assert_eq!(app.session_backends().await, 2);
    c.close().await; // HTTP DELETE of the MCP session
    wait_until(
        "both backends are closed",
        Duration::from_secs(5),
        async || app.session_backends().await == 0,
    )
    .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    let body: Value = reqwest::get(app.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["sessions"]["open"], 0);
    app.finish().await;
}

#[tokio::test]
async fn one_begin_past_max_sessions_is_refused_at_once_and_reads_still_work() {
    // One caller fills the whole server here, so its own cap is lifted to the server's.
    let app = spawn_app_with(|c| {
        c.max_sessions = 3;
        c.max_sessions_per_caller = Some(3);
    })
    .await;
    let c = app.client(Era::Stateless).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(begin(&c).await);
    }
    let started = Instant::now();
    let e = c
        .err("pg_tx", json!({"action": "begin"}), "limit_exceeded")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("COLDQUERY_MAX_SESSIONS")
    );
    assert_eq!(c.read("SELECT 41 + 1").await["rows"], json!([[42]]));
    let h = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(h.status(), 200);
    for id in ids {
        c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
            .await;
    }
    begin(&c).await;
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn rollback_to_a_savepoint_recovers_from_a_failing_statement() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let c = app.client(Era::Session).await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (1)").await;
    c.ok(
        "pg_tx",
        json!({"action": "savepoint", "session_id": id, "savepoint_name": "before_dup"}),
    )
    .await;
    let e = c
        .err(
            "pg_query",
            json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id}),
            "database_error",
        )
        .await;
    assert_eq!(e["sqlstate"], "23505");
    let l = c.ok("pg_tx", json!({"action": "list"})).await;
    assert_eq!(l["sessions"][0]["state"], "failed");
    let r = c
        .ok(
            "pg_tx",
            json!({"action": "rollback_to", "session_id": id, "savepoint_name": "before_dup"}),
        )
        .await;
    assert_eq!(r["session"]["state"], "in_transaction");
    write(&c, &id, "INSERT INTO t VALUES (2)").await;
    c.err(
        "pg_tx",
        json!({"action": "savepoint", "session_id": id, "savepoint_name": "bad name;"}),
        "invalid_input",
    )
    .await;
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t WHERE id IN (1, 2)")
            .await,
        2
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn commit_after_a_failing_statement_says_it_rolled_back() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let c = app.client(Era::Stateless).await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (1)").await;
    c.err(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id}),
        "database_error",
    )
    .await;
    let e = c
        .err(
            "pg_tx",
            json!({"action": "commit", "session_id": id}),
            "database_error",
        )
        .await;
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("rolled it back") && msg.contains("nothing was saved"),
        "{msg}"
    );
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    assert_eq!(app.session_backends().await, 0);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_killed_backend_loses_the_session_clearly_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (1)").await;
    app.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'coldquery-session' AND datname = current_database()",
    )
    .await;
    let e = c
        .err(
            "pg_query",
            json!({"action": "write", "sql": "INSERT INTO t VALUES (2)", "session_id": id}),
            "session_lost",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("rolled back"),
        "{e}"
    );
    c.err(
        "pg_tx",
        json!({"action": "commit", "session_id": id}),
        "session_lost",
    )
    .await;
    assert_eq!(
        c.ok("pg_tx", json!({"action": "list"})).await["sessions"],
        json!([])
    );
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    assert_eq!(c.read("SELECT 1").await["rows"], json!([[1]]));
    let id2 = begin(&c).await;
    c.ok("pg_tx", json!({"action": "commit", "session_id": id2}))
        .await;
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn twenty_concurrent_calls_on_one_handle_never_see_a_driver_error() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    let id = begin(&c).await;
    let calls = (0..20).map(|i| {
        let c = &c;
        let id = id.clone();
        async move {
            let sql = if i % 2 == 0 {
                format!("INSERT INTO t VALUES ({i})")
            } else {
                "SELECT pg_sleep(0.05)".into()
            };
            let action = if i % 2 == 0 { "write" } else { "read" };
            c.call_raw(
                "pg_query",
                json!({"action": action, "sql": sql, "session_id": id}),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let mut ok = 0;
    for r in &results {
        if r.is_error == Some(true) {
            let e = &r.structured_content.as_ref().unwrap()["error"];
            assert_eq!(
                e["category"], "session_busy",
                "only session_busy is acceptable: {e}"
            );
        } else {
            ok += 1;
        }
    }
    assert!(ok >= 1);
    let inserted = results
        .iter()
        .step_by(2)
        .filter(|r| r.is_error != Some(true))
        .count() as i64;
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, inserted);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_thousand_begin_rollback_cycles_leave_no_connection_behind() {
    let app = spawn_app().await;
    let c = app.client(Era::Stateless).await;
    let baseline = app.session_backends().await;
    for _ in 0..1000 {
        let id = begin(&c).await;
        c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
            .await;
    }
    wait_until(
        "session backends back to baseline",
        Duration::from_secs(5),
        async || app.session_backends().await == baseline,
    )
    .await;
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_cancelled_pg_sleep_is_cancelled_in_postgres_and_the_next_call_works() {
    let app = spawn_app().await;
    for with_session in [false, true] {
        let c = app.client(Era::Session).await;
        let id = if with_session {
            Some(begin(&c).await)
        } else {
            None
        };
        let pid = match &id {
            Some(id) => Some(session_pid(&c, id).await),
            None => None,
        };
        let mut args = json!({"action": "read", "sql": "SELECT pg_sleep(30)"});
        if let Some(id) = &id {
            args["session_id"] = json!(id);
        }
        // Dropping the call after 1 s makes the rmcp client send notifications/cancelled.
        let abandoned =
            tokio::time::timeout(Duration::from_secs(1), c.call_raw("pg_query", args)).await;
        assert!(abandoned.is_err(), "pg_sleep(30) cannot have finished");
        let cancelled_at = Instant::now();
        wait_until("pg_sleep leaves pg_stat_activity", Duration::from_secs(2), async || {
            app.scalar_i64(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT * FROM (%pg_sleep(%' \
                 AND state = 'active' AND datname = current_database()",
            )
            .await
                == 0
        })
        .await;
        assert!(cancelled_at.elapsed() < Duration::from_secs(2));
        assert_eq!(c.read("SELECT 2").await["rows"], json!([[2]]));
        if let Some(id) = id {
            // The session's read ran under a savepoint; the cancel marked the transaction
            // failed rather than letting it continue silently.
            let l = c.ok("pg_tx", json!({"action": "list"})).await;
            assert_eq!(l["sessions"][0]["state"], "failed", "{l}");
            c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
                .await;
            // A backend that was sent a cancel request is closed, never handed to the next
            // session: the request could still land there.
            let pid = pid.expect("read above");
            wait_until(
                "the cancelled session's backend closed",
                Duration::from_secs(5),
                async || {
                    app.scalar_i64(&format!(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
                    ))
                    .await
                        == 0
                },
            )
            .await;
        }
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn sigterm_rolls_back_open_sessions_and_exits_cleanly() {
    let app = spawn_app().await; // only for its database; the binary under test is separate
    app.exec("CREATE TABLE t (id int)").await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!(
        "{}/{}",
        common::admin_url().rsplit_once('/').unwrap().0,
        app.db_name
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coldquery"))
        .env("DATABASE_URL", &url)
        .env("COLDQUERY_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the coldquery binary");
    let health = format!("http://127.0.0.1:{port}/health");
    wait_until(
        "the binary serves /health",
        Duration::from_secs(10),
        async || {
            reqwest::get(&health)
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        },
    )
    .await;
    let c = McpClient::connect(&format!("http://127.0.0.1:{port}/mcp"), Era::Stateless).await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (1)").await;
    assert_eq!(app.session_backends().await, 1);
    let pid = child.id().expect("child pid") as i32;
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc_kill(pid, 15) };
    assert_eq!(rc, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // A backend leaves pg_stat_activity a moment after its client closed the connection.
    wait_until(
        "the session's backend is gone",
        Duration::from_secs(3),
        async || app.session_backends().await == 0,
    )
    .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    app.finish().await;
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

async fn spare_backends(app: &TestApp) -> i64 {
    app.backends_named("coldquery-spare").await
}

async fn metric(app: &TestApp, line: &str) -> u64 {
    app.metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(line).map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0)
}

#[tokio::test]
async fn begin_takes_a_connection_opened_ahead_and_a_dead_spare_is_replaced_without_an_error() {
    let app = spawn_app_with(|c| c.spare_connections = 2).await;
    app.exec("CREATE TABLE t (v int)").await;
    let c = app.client(Era::Session).await;
    // The spares are opened in the background once the server runs.
    wait_until("two spares", Duration::from_secs(10), async || {
        spare_backends(&app).await == 2
    })
    .await;
    assert_eq!(metric(&app, "coldquery_spare_connections ").await, 2);

    // begin takes one: its backend is renamed in the same round trip, and a new spare follows.
    let id = begin(&c).await;
    assert_eq!(app.session_backends().await, 1);
    write(&c, &id, "INSERT INTO t VALUES (1)").await;
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 1);
    assert!(metric(&app, "coldquery_spare_connections_total{event=\"used\"}").await >= 1);
    wait_until("the spare replaced", Duration::from_secs(10), async || {
        spare_backends(&app).await == 2
    })
    .await;

    // Spares killed from outside (a restart, a proxy): begin still works, nothing is reported.
    app.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'coldquery-spare' AND datname = current_database()",
    )
    .await;
    let id = begin(&c).await;
    write(&c, &id, "INSERT INTO t VALUES (2)").await;
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 2);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn no_spares_when_switched_off() {
    let app = spawn_app_with(|c| c.spare_connections = 0).await;
    let c = app.client(Era::Session).await;
    let id = begin(&c).await;
    c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(spare_backends(&app).await, 0);
    assert_eq!(
        metric(&app, "coldquery_spare_connections_total{event=\"used\"}").await,
        0
    );
    c.close().await;
    app.finish().await;
}

/// A read inside a session.
async fn session_read(c: &McpClient, id: &str, sql: &str) -> Value {
    c.ok(
        "pg_query",
        json!({"action": "read", "sql": sql, "session_id": id}),
    )
    .await
}

async fn session_pid(c: &McpClient, id: &str) -> i64 {
    session_read(c, id, "SELECT pg_backend_pid()").await["rows"][0][0]
        .as_i64()
        .expect("a pid")
}

#[tokio::test]
async fn a_cleanly_ended_session_gives_its_connection_back_reset_to_a_new_connection() {
    let app = spawn_app_with(|c| c.spare_connections = 1).await;
    app.exec("CREATE TABLE t (v int)").await;
    app.exec("INSERT INTO t VALUES (1)").await;
    let c = app.client(Era::Session).await;
    wait_until("one spare", Duration::from_secs(10), async || {
        spare_backends(&app).await == 1
    })
    .await;

    // Session A leaves state that would outlive its transaction on a plain connection: a
    // temporary table, and a cached statement for `SELECT * FROM t`.
    let a = begin(&c).await;
    let pid = session_pid(&c, &a).await;
    c.ok(
        "pg_schema",
        json!({"action": "create", "sql": "CREATE TEMP TABLE scratch (v int)", "session_id": a}),
    )
    .await;
    write(&c, &a, "INSERT INTO scratch VALUES (7)").await;
    assert_eq!(
        session_read(&c, &a, "SELECT * FROM t").await["rows"],
        json!([[1]])
    );
    c.ok("pg_tx", json!({"action": "commit", "session_id": a}))
        .await;
    wait_until(
        "the connection given back",
        Duration::from_secs(10),
        async || {
            metric(
                &app,
                "coldquery_spare_connections_total{event=\"returned\"}",
            )
            .await
                >= 1
        },
    )
    .await;
    // Given back as a spare, under the spare's name, holding no advisory lock or temp schema.
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} \
             AND application_name = 'coldquery-spare' AND state = 'idle'"
        ))
        .await,
        1
    );
    // The table changes shape meanwhile: a statement cached by A would now fail with
    // "cached plan must not change result type" inside B's transaction.
    app.exec("ALTER TABLE t ADD COLUMN w int DEFAULT 2").await;

    // Session B gets the same backend (the most recently given back comes first), reset.
    let b = begin(&c).await;
    assert_eq!(session_pid(&c, &b).await, pid, "the connection was reused");
    assert_eq!(app.session_backends().await, 1);
    assert_eq!(
        session_read(&c, &b, "SELECT to_regclass('pg_temp.scratch') IS NULL").await["rows"],
        json!([[true]]),
        "A's temporary table is gone"
    );
    assert_eq!(
        session_read(&c, &b, "SELECT * FROM t").await["rows"],
        json!([[1, 2]])
    );
    assert_eq!(
        session_read(&c, &b, "SELECT current_user = session_user").await["rows"],
        json!([[true]])
    );
    c.ok("pg_tx", json!({"action": "rollback", "session_id": b}))
        .await;
    // A quiet server keeps only the spares it wants: the extra one is closed after a second.
    wait_until("back to one spare", Duration::from_secs(10), async || {
        spare_backends(&app).await == 1 && app.session_backends().await == 0
    })
    .await;
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn with_procedural_code_allowed_a_session_connection_is_never_reused() {
    let app = spawn_app_with(|c| {
        c.spare_connections = 1;
        c.allow_procedural = true;
    })
    .await;
    let c = app.client(Era::Session).await;
    wait_until("one spare", Duration::from_secs(10), async || {
        spare_backends(&app).await == 1
    })
    .await;
    let a = begin(&c).await;
    let first = session_pid(&c, &a).await;
    c.ok("pg_tx", json!({"action": "commit", "session_id": a}))
        .await;
    wait_until("the spare replaced", Duration::from_secs(10), async || {
        spare_backends(&app).await == 1
    })
    .await;
    let b = begin(&c).await;
    assert_ne!(session_pid(&c, &b).await, first);
    c.ok("pg_tx", json!({"action": "rollback", "session_id": b}))
        .await;
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {first}"
        ))
        .await,
        0,
        "the first session's backend was closed"
    );
    assert_eq!(
        metric(
            &app,
            "coldquery_spare_connections_total{event=\"returned\"}"
        )
        .await,
        0
    );
    c.close().await;
    app.finish().await;
}
