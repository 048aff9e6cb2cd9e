//! The cost ceiling (contract §8 "Cost ceiling", issue #13 part 2), against the real
//! PostgreSQL through a real MCP client: a statement priced over `COLDQUERY_MAX_QUERY_COST` or
//! `COLDQUERY_MAX_ESTIMATED_ROWS` is refused before it runs, with the planner's own estimate.

mod common;

use common::{Era, TestApp, spawn_app_with};
use serde_json::{Value, json};

/// A million rows, analyzed, with a primary key for the point read.
async fn big_table(app: &TestApp) {
    app.exec(
        "CREATE TABLE big (id int PRIMARY KEY, v text NOT NULL);
         INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g;
         ANALYZE big;",
    )
    .await;
}

async fn app_with(cost: Option<f64>, rows: Option<f64>) -> TestApp {
    let app = spawn_app_with(|c| {
        c.max_query_cost = cost;
        c.max_estimated_rows = rows;
    })
    .await;
    big_table(&app).await;
    app
}

/// The planner's total cost and rows of `sql` as PostgreSQL itself reports them.
async fn explain(app: &TestApp, sql: &str) -> (f64, f64) {
    let plan: sqlx::types::Json<Value> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {sql}")))
            .fetch_one(&app.db)
            .await
            .expect("EXPLAIN");
    let top = &plan.0[0]["Plan"];
    (
        top["Total Cost"].as_f64().unwrap(),
        top["Plan Rows"].as_f64().unwrap(),
    )
}

#[tokio::test]
async fn a_full_scan_is_refused_under_a_low_ceiling_with_the_planners_estimate_and_a_point_read_passes()
 {
    let app = app_with(Some(1000.0), None).await;
    let client = app.client(Era::Stateless).await;

    let sql = "SELECT count(*) FROM big WHERE v LIKE '%ab%'";
    let e = client
        .err(
            "pg_query",
            json!({"action": "read", "sql": sql}),
            "cost_exceeded",
        )
        .await;
    // The estimate is PostgreSQL's: the read runs with the row cap's LIMIT, which an aggregate's
    // one row does not change.
    let (cost, _) = explain(&app, sql).await;
    let got = e["estimate"]["total_cost"]
        .as_f64()
        .expect("estimate.total_cost");
    assert!(
        (got - cost).abs() <= cost * 0.01,
        "estimate {got} vs EXPLAIN {cost}"
    );
    assert!(got > 1000.0);
    assert_eq!(e["ceiling"]["max_cost"], json!(1000.0));
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("Seq Scan on big"), "{m}");
    assert!(m.contains("over the ceiling of 1,000"), "{m}");
    assert!(m.contains("WHERE on an indexed column"), "{m}");

    // An indexed point read is cheap and runs, parameters bound as in the real call.
    let r = client
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT v FROM big WHERE id = $1", "params": [42]}),
        )
        .await;
    let want: String = sqlx::query_scalar("SELECT v FROM big WHERE id = 42")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(r["rows"][0][0], json!(want));

    // A plain SELECT * stops at the row cap: priced as it runs, it passes.
    let r = client
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT * FROM big", "max_rows": 5}),
        )
        .await;
    assert_eq!(r["row_count"], 5);

    // A write over the ceiling is refused before it runs: nothing changed.
    client
        .err(
            "pg_query",
            json!({"action": "write", "sql": "UPDATE big SET v = 'x'", "autocommit": true}),
            "cost_exceeded",
        )
        .await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM big WHERE v = 'x'")
            .await,
        0
    );

    // A call may lower the ceiling, never raise it.
    client
        .err(
            "pg_query",
            json!({"action": "read", "sql": sql, "max_cost": 1e12}),
            "cost_exceeded",
        )
        .await;
    let e = client
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT v FROM big WHERE id = 42", "max_cost": 0.001}),
            "cost_exceeded",
        )
        .await;
    assert_eq!(e["ceiling"]["max_cost"], json!(0.001));
    client
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT 1", "max_cost": -5}),
            "invalid_input",
        )
        .await;

    // explain reports the ceiling beside the plan's cost.
    let x = client
        .ok("pg_query", json!({"action": "explain", "sql": sql}))
        .await;
    assert_eq!(x["summary"]["ceiling"]["max_cost"], json!(1000.0));
    assert_eq!(x["summary"]["over_ceiling"], json!(true));
    // pg_read (the read-only tool) is priced the same way.
    client
        .err(
            "pg_read",
            json!({"action": "query", "sql": sql}),
            "cost_exceeded",
        )
        .await;
    client.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_high_ceiling_lets_the_scan_run_and_no_ceiling_prices_nothing() {
    let app = app_with(Some(1e9), None).await;
    let client = app.client(Era::Stateless).await;
    let r = client.read("SELECT count(*) FROM big").await;
    assert_eq!(r["rows"], json!([[1000000]]));
    // The same call with a lower max_cost is refused.
    client
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT count(*) FROM big", "max_cost": 100}),
            "cost_exceeded",
        )
        .await;
    let x = client
        .ok(
            "pg_query",
            json!({"action": "explain", "sql": "SELECT count(*) FROM big"}),
        )
        .await;
    assert_eq!(x["summary"]["over_ceiling"], json!(false));
    client.close().await;
    app.finish().await;

    // No ceiling configured: the summary carries none, and the scan runs.
    let app = app_with(None, None).await;
    let client = app.client(Era::Stateless).await;
    let x = client
        .ok(
            "pg_query",
            json!({"action": "explain", "sql": "SELECT count(*) FROM big"}),
        )
        .await;
    assert!(x["summary"].get("ceiling").is_none(), "{x}");
    let r = client.read("SELECT count(*) FROM big").await;
    assert_eq!(r["rows"], json!([[1000000]]));
    client.close().await;
    app.finish().await;
}

#[tokio::test]
async fn estimated_rows_have_their_own_ceiling_and_transactions_and_sessions_are_priced_per_statement()
 {
    let app = app_with(None, Some(100.0)).await;
    let client = app.client(Era::Session).await;
    // Rows: a read whose estimate is over 100 rows is refused, one under passes.
    let e = client
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT id FROM big WHERE id < 5000"}),
            "cost_exceeded",
        )
        .await;
    assert!(e["estimate"]["plan_rows"].as_f64().unwrap() > 100.0, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("COLDQUERY_MAX_ESTIMATED_ROWS"),
        "{e}"
    );
    let r = client
        .read("SELECT id FROM big WHERE id < 10 ORDER BY id")
        .await;
    assert_eq!(r["row_count"], 9);

    // transaction: the refused operation is named, and nothing before it is committed.
    let e = client
        .err(
            "pg_query",
            json!({"action": "transaction", "autocommit": true, "operations": [
                {"sql": "UPDATE big SET v = 'first' WHERE id = 1"},
                {"sql": "UPDATE big SET v = 'all' WHERE id > 10"}
            ]}),
            "cost_exceeded",
        )
        .await;
    assert_eq!(e["operation_index"], 1, "{e}");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM big WHERE v IN ('first', 'all')")
            .await,
        0
    );

    // In a session: the refusal leaves the transaction healthy; its earlier work commits.
    let tx = client.ok("pg_tx", json!({"action": "begin"})).await;
    let sid = tx["session_id"].as_str().unwrap().to_owned();
    client
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "UPDATE big SET v = 'kept' WHERE id = 2", "session_id": sid}),
        )
        .await;
    client
        .err(
            "pg_query",
            json!({"action": "write", "sql": "DELETE FROM big WHERE id > 10", "session_id": sid}),
            "cost_exceeded",
        )
        .await;
    let c = client
        .ok("pg_tx", json!({"action": "commit", "session_id": sid}))
        .await;
    assert_eq!(c["committed"], true, "{c}");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM big WHERE v = 'kept'")
            .await,
        1
    );
    assert_eq!(app.scalar_i64("SELECT count(*) FROM big").await, 1000000);
    client.close().await;
    app.finish().await;
}
