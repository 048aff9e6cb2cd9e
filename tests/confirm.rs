//! Confirmation of destructive statements (issue 12, point 3; contract §8): DELETE/UPDATE
//! without WHERE, TRUNCATE, DROP TABLE, DROP COLUMN … are asked about through MCP elicitation
//! when the client offers it, and otherwise refused with a one-time token bound to the exact
//! call. Driven by real rmcp clients over HTTP against a real PostgreSQL; what changed is
//! checked with the test's own connection, outside the server.

mod common;

use std::sync::{Arc, Mutex};

use common::{Era, McpClient, TestApp, spawn_app, spawn_app_with, text_of};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData as McpError};
use serde_json::{Value, json};

async fn app_with_rows(tweak: impl FnOnce(&mut coldquery::config::Config)) -> TestApp {
    let app = spawn_app_with(tweak).await;
    app.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v int);
         INSERT INTO t SELECT g, 0 FROM generate_series(1, 5) g;
         CREATE TABLE u (id int);
         INSERT INTO u SELECT generate_series(1, 3);",
    )
    .await;
    app
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.scalar_i64(&format!("SELECT count(*) FROM {table}"))
        .await
}

async fn table_exists(app: &TestApp, name: &str) -> bool {
    app.scalar_i64(&format!(
        "SELECT count(*) FROM pg_class WHERE oid = to_regclass('{name}')"
    ))
    .await
        == 1
}

/// The token of a `confirmation_required` refusal (after checking that it is one).
async fn token_for(c: &McpClient, tool: &str, args: Value) -> (String, Value) {
    let e = c.err(tool, args, "confirmation_required").await;
    let token = e["confirm"].as_str().expect("a confirm token").to_owned();
    (token, e)
}

fn with_confirm(mut args: Value, token: &str) -> Value {
    args["confirm"] = json!(token);
    args
}

#[tokio::test]
async fn a_delete_without_where_needs_the_token_which_works_once_and_for_that_call_only() {
    let app = app_with_rows(|_| {}).await;
    for era in [Era::Session, Era::Stateless] {
        app.exec("DELETE FROM t; INSERT INTO t SELECT g, 0 FROM generate_series(1, 5) g;")
            .await;
        let c = app.client(era).await;
        let delete = json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true});
        let (token, e) = token_for(&c, "pg_query", delete.clone()).await;
        let m = e["message"].as_str().unwrap();
        assert!(m.contains("DELETE without WHERE"), "{m}");
        assert!(m.contains("affected 5 rows"), "the dry run's count: {m}");
        assert!(e["hint"].as_str().unwrap().contains(&token), "{e}");
        assert_eq!(count(&app, "t").await, 5, "{era:?}: nothing ran");

        // The token does not approve another statement, nor the same one elsewhere.
        c.err(
            "pg_query",
            json!({"action": "write", "sql": "DELETE FROM u", "autocommit": true, "confirm": token}),
            "confirmation_required",
        )
        .await;
        assert_eq!(count(&app, "u").await, 3);
        c.err(
            "pg_schema",
            json!({"action": "drop", "sql": "TRUNCATE t", "autocommit": true, "confirm": token}),
            "confirmation_required",
        )
        .await;
        assert_eq!(count(&app, "t").await, 5);

        // The right call with it runs, once.
        let r = c.ok("pg_query", with_confirm(delete.clone(), &token)).await;
        assert_eq!(r["rows_affected"], 5);
        assert_eq!(count(&app, "t").await, 0);
        app.exec("INSERT INTO t SELECT g, 0 FROM generate_series(1, 4) g")
            .await;
        let e = c
            .err(
                "pg_query",
                with_confirm(delete.clone(), &token),
                "confirmation_required",
            )
            .await;
        assert!(
            e["message"].as_str().unwrap().contains("used already"),
            "{e}"
        );
        assert_ne!(e["confirm"], json!(token), "a fresh token");
        assert_eq!(
            count(&app, "t").await,
            4,
            "{era:?}: a used token runs nothing"
        );
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_token_is_bound_to_the_parameters() {
    let app = app_with_rows(|_| {}).await;
    let c = app.client(Era::Stateless).await;
    let update =
        json!({"action": "write", "sql": "UPDATE t SET v = $1", "params": [1], "autocommit": true});
    let (token, _) = token_for(&c, "pg_query", update.clone()).await;
    let other = json!({"action": "write", "sql": "UPDATE t SET v = $1", "params": [2], "autocommit": true, "confirm": token});
    c.err("pg_query", other, "confirmation_required").await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t WHERE v <> 0").await,
        0
    );
    let r = c.ok("pg_query", with_confirm(update, &token)).await;
    assert_eq!(r["rows_affected"], 5);
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t WHERE v = 1").await,
        5
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn statements_with_where_dry_runs_and_refused_calls_need_no_confirmation() {
    let app = app_with_rows(|_| {}).await;
    let c = app.client(Era::Session).await;
    let r = c
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "DELETE FROM t WHERE id <= $1", "params": [2], "autocommit": true}),
        )
        .await;
    assert_eq!(r["rows_affected"], 2);
    let r = c
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "UPDATE t SET v = 9 WHERE id = 3", "autocommit": true}),
        )
        .await;
    assert_eq!(r["rows_affected"], 1);
    // A dry run changes nothing, so it is not asked about.
    let r = c
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "DELETE FROM t", "dry_run": true}),
        )
        .await;
    assert_eq!(r["rows_affected"], 3);
    c.ok(
        "pg_schema",
        json!({"action": "drop", "sql": "DROP TABLE t", "dry_run": true}),
    )
    .await;
    // A call the policy refuses anyway gets its refusal, not a confirmation.
    c.err(
        "pg_query",
        json!({"action": "write", "sql": "DELETE FROM t"}),
        "policy_denied",
    )
    .await;
    assert_eq!(count(&app, "t").await, 3);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn with_confirmation_off_destructive_statements_run_directly() {
    let app = app_with_rows(|c| {
        c.confirm_destructive = coldquery::config::ConfirmMode::Off;
    })
    .await;
    let c = app.client(Era::Session).await;
    let r = c
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true}),
        )
        .await;
    assert_eq!(r["rows_affected"], 5);
    c.ok(
        "pg_schema",
        json!({"action": "drop", "sql": "DROP TABLE u", "autocommit": true}),
    )
    .await;
    assert!(!table_exists(&app, "u").await);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn ddl_that_loses_data_needs_confirmation_through_pg_schema() {
    let app = app_with_rows(|_| {}).await;
    let c = app.client(Era::Stateless).await;
    let (_, e) = token_for(
        &c,
        "pg_schema",
        json!({"action": "drop", "sql": "TRUNCATE t", "autocommit": true}),
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("TRUNCATE"), "{e}");
    assert_eq!(count(&app, "t").await, 5);

    app.exec("ANALYZE t").await;
    let drop = json!({"action": "drop", "sql": "DROP TABLE t", "autocommit": true});
    let (token, e) = token_for(&c, "pg_schema", drop.clone()).await;
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("DROP TABLE"), "{m}");
    assert!(m.contains("about 5 rows"), "the table's row estimate: {m}");
    assert!(table_exists(&app, "t").await, "nothing ran");
    c.ok("pg_schema", with_confirm(drop, &token)).await;
    assert!(!table_exists(&app, "t").await);

    let alter = json!({"action": "alter", "sql": "ALTER TABLE u ALTER COLUMN id TYPE text", "autocommit": true});
    let (token, _) = token_for(&c, "pg_schema", alter.clone()).await;
    c.ok("pg_schema", with_confirm(alter, &token)).await;
    let drop_col =
        json!({"action": "alter", "sql": "ALTER TABLE u DROP COLUMN id", "autocommit": true});
    let (token, _) = token_for(&c, "pg_schema", drop_col.clone()).await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM information_schema.columns WHERE table_name = 'u'")
            .await,
        1
    );
    c.ok("pg_schema", with_confirm(drop_col, &token)).await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM information_schema.columns WHERE table_name = 'u'")
            .await,
        0
    );
    // Non-destructive DDL runs as before.
    c.ok(
        "pg_schema",
        json!({"action": "alter", "sql": "ALTER TABLE u ADD COLUMN note text", "autocommit": true}),
    )
    .await;
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn inside_a_session_and_in_transaction_operations_too() {
    let app = app_with_rows(|_| {}).await;
    let c = app.client(Era::Session).await;
    let tx = c.ok("pg_tx", json!({"action": "begin"})).await;
    let id = tx["session_id"].as_str().unwrap().to_owned();
    let delete = json!({"action": "write", "sql": "DELETE FROM t", "session_id": id});
    let (token, e) = token_for(&c, "pg_query", delete.clone()).await;
    assert!(
        e["message"].as_str().unwrap().contains("affected 5 rows"),
        "{e}"
    );
    // The dry run was rolled back to its savepoint: the session sees every row still.
    let r = c
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT count(*) FROM t", "session_id": id}),
        )
        .await;
    assert_eq!(r["rows"], json!([[5]]));
    c.ok("pg_query", with_confirm(delete, &token)).await;
    let drop = json!({"action": "drop", "sql": "DROP TABLE u", "session_id": id});
    let (token, _) = token_for(&c, "pg_schema", drop.clone()).await;
    c.ok("pg_schema", with_confirm(drop, &token)).await;
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(count(&app, "t").await, 0);
    assert!(!table_exists(&app, "u").await);

    app.exec("INSERT INTO t SELECT g, 0 FROM generate_series(1, 5) g")
        .await;
    let ops = json!({"action": "transaction", "autocommit": true, "operations": [
        {"sql": "INSERT INTO t VALUES (100, 0)"},
        {"sql": "UPDATE t SET v = 7"}
    ]});
    let (token, e) = token_for(&c, "pg_query", ops.clone()).await;
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("operation 1: 6"), "per-operation counts: {m}");
    assert_eq!(count(&app, "t").await, 5, "nothing ran");
    c.ok("pg_query", with_confirm(ops, &token)).await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t WHERE v = 7").await,
        6
    );
    c.close().await;
    app.finish().await;
}

/// A client with the elicitation capability that answers every question the same way, and
/// remembers what it was asked.
#[derive(Clone)]
struct Answering {
    answer: ElicitationAction,
    confirm: bool,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Answering {
    fn new(answer: ElicitationAction, confirm: bool) -> Answering {
        Answering {
            answer,
            confirm,
            asked: Arc::default(),
        }
    }
}

impl ClientHandler for Answering {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        if let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = &request
        {
            let schema = serde_json::to_value(requested_schema).unwrap();
            assert_eq!(schema["properties"]["confirm"]["type"], "boolean");
            self.asked.lock().unwrap().push(message.clone());
        }
        let r = ElicitResult::new(self.answer.clone());
        Ok(match self.answer {
            ElicitationAction::Accept => r.with_content(json!({"confirm": self.confirm})),
            _ => r,
        })
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("confirm-test", "1.0.0"),
        )
    }
}

async fn connect(
    app: &TestApp,
    handler: Answering,
    era: Era,
) -> RunningService<RoleClient, Answering> {
    let transport = StreamableHttpClientTransport::from_uri(app.mcp_url());
    let lifecycle = match era {
        Era::Session => ClientLifecycleMode::Initialize,
        Era::Stateless => ClientLifecycleMode::Discover {
            preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        },
    };
    handler
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("client connects")
}

async fn call(
    c: &RunningService<RoleClient, Answering>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let Value::Object(map) = args else {
        unreachable!()
    };
    c.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
        .await
        .expect("tools/call")
}

fn category(r: &CallToolResult) -> Value {
    r.structured_content.as_ref().unwrap()["error"]["category"].clone()
}

#[tokio::test]
async fn a_client_with_elicitation_is_asked_and_its_answer_decides() {
    let app = app_with_rows(|_| {}).await;
    let delete = json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true});

    for (answer, confirm, how) in [
        (ElicitationAction::Decline, false, "declined"),
        (ElicitationAction::Cancel, false, "cancelled"),
        (ElicitationAction::Accept, false, "declined"),
    ] {
        let h = Answering::new(answer, confirm);
        let c = connect(&app, h.clone(), Era::Session).await;
        let r = call(&c, "pg_query", delete.clone()).await;
        assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
        assert_eq!(category(&r), "confirmation_declined", "{}", text_of(&r));
        assert!(text_of(&r).contains(how), "{}", text_of(&r));
        assert_eq!(count(&app, "t").await, 5, "declined: nothing ran");
        assert_eq!(h.asked.lock().unwrap().len(), 1);
        let _ = c.cancel().await;
    }

    let h = Answering::new(ElicitationAction::Accept, true);
    let c = connect(&app, h.clone(), Era::Session).await;
    let r = call(&c, "pg_query", delete.clone()).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(r.structured_content.unwrap()["rows_affected"], 5);
    assert_eq!(count(&app, "t").await, 0);
    let asked = h.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains("DELETE FROM t"), "{}", asked[0]);
    assert!(asked[0].contains("affected 5 rows"), "{}", asked[0]);
    // DROP TABLE through pg_schema is asked about too.
    let r = call(
        &c,
        "pg_schema",
        json!({"action": "drop", "sql": "DROP TABLE u", "autocommit": true}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(!table_exists(&app, "u").await);
    assert_eq!(h.asked.lock().unwrap().len(), 2);
    let _ = c.cancel().await;
    app.finish().await;
}

#[tokio::test]
async fn token_mode_uses_the_token_even_when_the_client_could_be_asked() {
    let app = app_with_rows(|c| {
        c.confirm_destructive = coldquery::config::ConfirmMode::Token;
    })
    .await;
    let delete = json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true});
    for era in [Era::Session, Era::Stateless] {
        let h = Answering::new(ElicitationAction::Accept, true);
        let c = connect(&app, h.clone(), era).await;
        let r = call(&c, "pg_query", delete.clone()).await;
        assert_eq!(category(&r), "confirmation_required", "{}", text_of(&r));
        assert!(h.asked.lock().unwrap().is_empty(), "token mode never asks");
        assert_eq!(count(&app, "t").await, 5);
        let _ = c.cancel().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_stateless_client_with_elicitation_is_asked_through_input_required() {
    // 2026-07-28 forbids server-to-client requests: the call answers input_required with the
    // question, and rmcp's client repeats it with the answer and the request state.
    let app = app_with_rows(|_| {}).await;
    let delete = json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true});
    for (answer, confirm) in [
        (ElicitationAction::Decline, false),
        (ElicitationAction::Accept, false),
    ] {
        let h = Answering::new(answer, confirm);
        let c = connect(&app, h.clone(), Era::Stateless).await;
        let r = call(&c, "pg_query", delete.clone()).await;
        assert_eq!(category(&r), "confirmation_declined", "{}", text_of(&r));
        assert_eq!(h.asked.lock().unwrap().len(), 1);
        assert_eq!(count(&app, "t").await, 5, "declined: nothing ran");
        let _ = c.cancel().await;
    }
    let h = Answering::new(ElicitationAction::Accept, true);
    let c = connect(&app, h.clone(), Era::Stateless).await;
    let r = call(&c, "pg_query", delete.clone()).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(r.structured_content.unwrap()["rows_affected"], 5);
    let asked = h.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains("affected 5 rows"), "{}", asked[0]);

    // The request state of one call does not approve another, nor works as confirm.
    app.exec("INSERT INTO t SELECT g, 0 FROM generate_series(1, 3) g")
        .await;
    let Value::Object(map) = delete.clone() else {
        unreachable!()
    };
    let first = c
        .call_tool_once(CallToolRequestParams::new("pg_query").with_arguments(map))
        .await
        .unwrap();
    let rmcp::model::CallToolResponse::InputRequired(ir) = first else {
        panic!("expected input_required, got {first:?}")
    };
    let state = ir.request_state.clone().expect("a request state");
    let yes: rmcp::model::InputResponses = [(
        "confirm".to_owned(),
        json!({"action": "accept", "content": {"confirm": true}}),
    )]
    .into();
    let Value::Object(other) =
        json!({"action": "write", "sql": "DELETE FROM u", "autocommit": true})
    else {
        unreachable!()
    };
    let r = c
        .call_tool_once(
            CallToolRequestParams::new("pg_query")
                .with_arguments(other)
                .with_input_responses(yes.clone())
                .with_request_state(state.clone()),
        )
        .await
        .unwrap();
    assert!(
        matches!(r, rmcp::model::CallToolResponse::InputRequired(_)),
        "another statement is asked about afresh: {r:?}"
    );
    assert_eq!(count(&app, "u").await, 3);
    let r = call(
        &c,
        "pg_query",
        json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true, "confirm": state}),
    )
    .await;
    // The rmcp client drives the round itself; its handler says yes, so the statement runs,
    // but only after asking: the state was not taken as a confirm token.
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(h.asked.lock().unwrap().len(), 2, "asked again");
    let _ = c.cancel().await;
    app.finish().await;
}

#[tokio::test]
async fn elicit_mode_refuses_clients_that_cannot_be_asked_without_a_token() {
    let app = app_with_rows(|c| {
        c.confirm_destructive = coldquery::config::ConfirmMode::Elicit;
    })
    .await;
    let c = app.client(Era::Session).await;
    let e = c
        .err(
            "pg_query",
            json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true}),
            "confirmation_required",
        )
        .await;
    assert!(e.get("confirm").is_none(), "no token in elicit mode: {e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("COLDQUERY_CONFIRM_DESTRUCTIVE=elicit"),
        "{e}"
    );
    assert_eq!(count(&app, "t").await, 5);
    c.close().await;
    // A client that can be asked is asked.
    let h = Answering::new(ElicitationAction::Accept, true);
    let c = connect(&app, h.clone(), Era::Session).await;
    let r = call(
        &c,
        "pg_query",
        json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(count(&app, "t").await, 0);
    let _ = c.cancel().await;
    app.finish().await;
}

#[tokio::test]
async fn a_confirm_argument_that_is_not_a_string_is_invalid_input() {
    let app = spawn_app().await;
    let c = app.client(Era::Stateless).await;
    c.err(
        "pg_query",
        json!({"action": "write", "sql": "SELECT 1", "confirm": 5}),
        "invalid_input",
    )
    .await;
    c.close().await;
    app.finish().await;
}
