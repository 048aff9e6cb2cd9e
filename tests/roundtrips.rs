//! How many database round trips a call costs, counted from outside: the server connects to
//! PostgreSQL through a TCP relay (`common::relay`) that reads the frontend protocol and counts
//! every `Sync` and simple `Query` message (each is one round trip: the client waits for
//! `ReadyForQuery`). A pooled point read of reviewed code is one round trip in all: its
//! connection is parked for the next read instead of going back to sqlx's pool, which would
//! send a `Sync` "ping" first (`src/db/warm.rs`). The other forms still go back to sqlx's pool
//! and pay that ping after the call has its rows (in a task of its own), so the relay sees one
//! more for them: four for the BEGIN … ROLLBACK form (which a caller with a role always takes:
//! its `SET LOCAL ROLE` needs a transaction). A pg_tx session's calls are counted one by one,
//! including the reset of its connection after the reply.

mod common;

use common::Era;
use common::cluster::{RoleGuard, admin};
use common::relay::spawn_app_counted;
use serde_json::json;

#[tokio::test]
async fn a_pooled_point_read_is_one_round_trip_and_the_other_forms_say_what_they_cost() {
    let (app, trips) = spawn_app_counted(|_| {}).await;
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
        let before = trips.settled().await;
        for i in 1..=50 {
            let r = c
                .ok(
                    "pg_query",
                    json!({"action": "read", "sql": point, "params": [i]}),
                )
                .await;
            assert_eq!(r["rows"], json!([[i, format!("v{i}")]]), "{r}");
        }
        let per_call = (trips.settled().await - before) as f64 / 50.0;
        assert_eq!(
            per_call, 1.0,
            "{era:?}: a cached point read is one round trip, with no release ping"
        );

        // Under a cost ceiling (here the call's max_cost) the statement is priced first: one
        // more round trip, the EXPLAIN, on the same (parked) connection.
        let priced = json!({"action": "read", "sql": point, "params": [1], "max_cost": 1e9});
        for _ in 0..10 {
            c.ok("pg_query", priced.clone()).await;
        }
        let before = trips.settled().await;
        for _ in 1..=10 {
            let r = c.ok("pg_query", priced.clone()).await;
            assert_eq!(r["rows"], json!([[1, "v1"]]), "{r}");
        }
        let per_call = (trips.settled().await - before) as f64 / 10.0;
        assert_eq!(per_call, 2.0, "{era:?}: a point read under a cost ceiling");

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
        let before = trips.settled().await;
        for i in 1..=10 {
            let r = c
                .ok(
                    "pg_query",
                    json!({"action": "read", "sql": sql, "params": [i]}),
                )
                .await;
            assert_eq!(r["rows"], json!([[i * 2]]), "{r}");
        }
        let per_call = (trips.settled().await - before) as f64 / 10.0;
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
        let before = trips.settled().await;
        for i in 1..=10 {
            c.ok(
                "pg_query",
                json!({"action": "write", "sql": w, "params": [i], "autocommit": true}),
            )
            .await;
        }
        let per_call = (trips.settled().await - before) as f64 / 10.0;
        assert_eq!(per_call, 4.0, "{era:?}: a committed write");

        // A catalog read (pg_schema list) is a pooled read: BEGIN READ ONLY (+ timeouts, pid),
        // its one catalog query, ROLLBACK (+ the release ping).
        let list = json!({"action": "list", "target": "table"});
        for _ in 0..10 {
            c.ok("pg_schema", list.clone()).await;
        }
        let before = trips.settled().await;
        for _ in 1..=10 {
            let r = c.ok("pg_schema", list.clone()).await;
            assert!(r.to_string().contains("\"items\""), "{r}");
        }
        let per_call = (trips.settled().await - before) as f64 / 10.0;
        assert_eq!(per_call, 4.0, "{era:?}: a catalog read");
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

#[tokio::test]
async fn a_caller_with_a_role_reads_in_the_transaction_form() {
    // Roles are cluster-wide: a name of this branch's tests, unique to this run, dropped by
    // the guard whatever the test's outcome.
    let role = format!(
        "roles_t_rt_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut guard = RoleGuard::new(vec![role.clone()]);
    admin(&format!(
        "CREATE ROLE {role} NOLOGIN; GRANT {role} TO postgres"
    ))
    .await;
    let (app, trips) = spawn_app_counted(|c| c.default_role = Some(role.clone())).await;
    guard.with_database(&app.db_name);
    let r = role.clone();
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
    let before = trips.settled().await;
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
    let per_call = (trips.settled().await - before) as f64 / 10.0;
    assert_eq!(per_call, 4.0, "a read of a caller with a role");
    c.close().await;
    app.finish().await;
    // The guard drops the database (already gone) and the role, also when an assertion failed.
    drop(guard);
}

/// The round trips of each call of the `pg_tx` plan begin → write → read → read → rollback,
/// after warm-up (the spares hold connections given back by earlier sessions, as under a
/// steady load). Counted for one MCP era only: the MCP transport does not reach the database,
/// so the other era would count the same messages.
#[tokio::test]
async fn a_pg_tx_session_says_what_each_call_costs() {
    let (app, trips) = spawn_app_counted(|_| {}).await;
    app.exec(
        "CREATE TABLE items (id int PRIMARY KEY, v text); \
         INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g",
    )
    .await;
    let c = app.client(Era::Stateless).await;
    let write = "UPDATE items SET v = $2 WHERE id = $1";
    let read = "SELECT v FROM items WHERE id = $1";
    // One plan, ended by `end` (rollback or commit); returns the round trips of each call
    // (begin, write, read, read, end).
    let plan = async |i: i64, counted: bool, end: &str| -> [u64; 5] {
        let mut n = [0u64; 5];
        let mut mark = if counted { trips.settled().await } else { 0 };
        let mut step = async |k: usize| {
            if counted {
                let now = trips.settled().await;
                n[k] = now - mark;
                mark = now;
            }
        };
        let sid = c.begin().await;
        step(0).await;
        let w = c
            .ok(
                "pg_query",
                json!({"action": "write", "sql": write, "params": [i, "w"], "session_id": sid}),
            )
            .await;
        assert_eq!(w["rows_affected"], 1, "{w}");
        step(1).await;
        for k in [2, 3] {
            let r = c
                .ok(
                    "pg_query",
                    json!({"action": "read", "sql": read, "params": [i], "session_id": sid}),
                )
                .await;
            // The session's own uncommitted write is what the read sees.
            assert_eq!(r["rows"], json!([["w"]]), "{r}");
            step(k).await;
        }
        let r = c
            .ok("pg_tx", json!({"action": end, "session_id": sid}))
            .await;
        assert_eq!(r["committed"], end == "commit", "{r}");
        step(4).await;
        n
    };
    // Warm-up: connections given back by ended sessions come back from the spares.
    for i in 1..=6 {
        plan(i, false, "rollback").await;
    }
    let runs = 4;
    // Round trips per call, averaged over `runs` plans ended by `end`, on ids from `first`.
    let average = async |first: i64, end: &str| -> Vec<f64> {
        let mut total = [0u64; 5];
        for i in first..first + runs {
            for (t, n) in total.iter_mut().zip(plan(i, true, end).await) {
                *t += n;
            }
        }
        total.iter().map(|t| *t as f64 / runs as f64).collect()
    };
    let per_call = average(1, "rollback").await;
    // begin: `SET application_name …; BEGIN …; SET LOCAL …; SELECT pg_backend_pid()`.
    // write: Parse/Describe, Bind/Execute (a statement not cached yet cannot be stale).
    // read: `SAVEPOINT; SET LOCAL transaction_read_only`, Parse/Describe, Bind/Execute; its
    // savepoint stays open until the session's next statement.
    // second read: `ROLLBACK TO SAVEPOINT; RELEASE; SAVEPOINT; SET LOCAL …` as one message,
    // Bind/Execute of the cached statement.
    // rollback: `ROLLBACK` (it ends the open savepoint too); then, after the reply, the
    // reset for reuse (close the statement cache, `DISCARD ALL`; the name the connection was
    // opened with comes back by itself).
    // Before issue 11's cut: 1, 2, 5, 5, 4 (every session call started by closing the cache,
    // every read closed its savepoint in a round trip of its own).
    assert_eq!(
        per_call,
        vec![1.0, 2.0, 3.0, 2.0, 3.0],
        "round trips of begin, write, read, read, rollback"
    );
    // Every write was rolled back.
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM items WHERE v = 'v' || id")
            .await,
        100
    );
    // Ended by COMMIT: `ROLLBACK TO SAVEPOINT; RELEASE; COMMIT` as one message (only what
    // the session did before the read is committed), then the reset.
    let per_call = average(11, "commit").await;
    assert_eq!(
        per_call,
        vec![1.0, 2.0, 3.0, 2.0, 3.0],
        "round trips of begin, write, read, read, commit"
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM items WHERE v = 'w'")
            .await,
        runs
    );
    c.close().await;
    app.finish().await;
}

/// A read with its values written into the text (as agents mostly send them, and as the
/// benchmark's point read is). With its integers bound (`src/safety/shapes.rs`), every text of
/// the shape is one prepared statement: one round trip (Bind/Execute). A text the server does
/// not bind (here a string constant in it) is a new statement on every call: prepared
/// (Parse/Describe, one round trip), then run (Bind/Execute, the second). sqlx would also
/// close the least recently used statement of a full cache, and wait for that, on each (a
/// third); the server empties the cache when it is full instead, one round trip per hundred
/// new texts. One pooled connection, so that its cache is the one that fills.
#[tokio::test]
async fn a_read_with_values_in_its_text_is_one_round_trip_bound_and_two_as_a_new_text() {
    let (app, trips) = spawn_app_counted(|c| c.pool_size = 1).await;
    app.exec(
        "CREATE TABLE items (id int PRIMARY KEY, v text); \
         INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 1000) g",
    )
    .await;
    let c = app.client(Era::Stateless).await;
    let read =
        |i: i64| json!({"action": "read", "sql": format!("SELECT * FROM items WHERE id = {i}")});
    c.ok("pg_query", read(1)).await;
    let before = trips.settled().await;
    for i in 2..=101 {
        let r = c.ok("pg_query", read(i)).await;
        assert_eq!(r["rows"], json!([[i, format!("v{i}")]]), "{r}");
    }
    let total = trips.settled().await - before;
    assert_eq!(
        total, 100,
        "100 reads of one shape took {total} round trips"
    );

    let by_text =
        |i: i64| json!({"action": "read", "sql": format!("SELECT * FROM items WHERE v = 'v{i}'")});
    // Fill the cache (and load the catalog snapshot): texts it has not seen.
    for i in 1..=150 {
        c.ok("pg_query", by_text(i)).await;
    }
    let before = trips.settled().await;
    for i in 201..=400 {
        let r = c.ok("pg_query", by_text(i)).await;
        assert_eq!(r["rows"], json!([[i, format!("v{i}")]]), "{r}");
    }
    let total = trips.settled().await - before;
    // 200 calls of two round trips, and the cache emptied twice (at most three times).
    assert!(
        (400..=403).contains(&total),
        "200 reads of new statement texts took {total} round trips"
    );
}
