//! The surface clients see first (contract §8): the read-only tool and annotations, the
//! server-wide read-only mode, the size of the tool list, what a client without a token is
//! told, completions, logging and progress. Driven by the real rmcp client over HTTP.

mod common;

use common::{ERAS, Era, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn tools_list(c: &common::McpClient) -> Value {
    let r = c.inner().list_tools(None).await.expect("tools/list");
    serde_json::to_value(r).unwrap()
}

fn annotations_of(list: &Value, name: &str) -> Value {
    list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in tools/list"))["annotations"]
        .clone()
}

#[tokio::test]
async fn every_read_is_served_by_a_tool_annotated_read_only() {
    let app = spawn_app().await;
    app.exec(
        "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items VALUES (1, 'a')",
    )
    .await;
    for era in ERAS {
        let c = app.client(era).await;
        let list = tools_list(&c).await;
        let a = annotations_of(&list, "pg_read");
        assert_eq!(a["readOnlyHint"], true, "{era:?}");
        assert_eq!(a["destructiveHint"], false, "{era:?}");
        assert_eq!(annotations_of(&list, "pg_monitor")["readOnlyHint"], true);
        assert_eq!(annotations_of(&list, "pg_query")["readOnlyHint"], false);

        let r = c
            .ok(
                "pg_read",
                json!({"action": "query", "sql": "SELECT note FROM items WHERE id = $1", "params": [1]}),
            )
            .await;
        assert_eq!(r["rows"], json!([["a"]]), "{era:?}");
        let plan = c
            .ok(
                "pg_read",
                json!({"action": "explain", "sql": "DELETE FROM items"}),
            )
            .await;
        assert_eq!(plan["analyzed"], false);
        let tables = c
            .ok("pg_read", json!({"action": "list", "target": "table"}))
            .await;
        assert!(
            tables["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["name"] == "items"),
            "{tables}"
        );
        let d = c
            .ok("pg_read", json!({"action": "describe", "name": "items"}))
            .await;
        assert_eq!(d["columns"].as_array().unwrap().len(), 2);
        let s = c
            .ok("pg_read", json!({"action": "stats", "table": "items"}))
            .await;
        assert_eq!(s["table"], "public.items", "{s}");
        let w = c
            .ok(
                "pg_read",
                json!({"action": "settings", "setting_name": "work_mem"}),
            )
            .await;
        assert_eq!(w["setting_name"], "work_mem");
        let tx = c
            .ok("pg_tx", json!({"action": "begin", "read_only": true}))
            .await;
        let id = tx["session_id"].as_str().unwrap().to_owned();
        let mine = c.ok("pg_read", json!({"action": "tx_list"})).await;
        assert!(mine.to_string().contains(&id), "{mine}");
        // Inside the session, through the read-only tool.
        let inside = c
            .ok(
                "pg_read",
                json!({"action": "query", "sql": "SELECT count(*) FROM items", "session_id": id}),
            )
            .await;
        assert_eq!(inside["rows"], json!([[1]]));
        c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
            .await;
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn the_read_only_tool_refuses_what_would_change_something() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE items (id int)").await;
    let c = app.client(Era::Stateless).await;
    let e = c
        .err(
            "pg_read",
            json!({"action": "explain", "sql": "INSERT INTO items VALUES (1)", "analyze": true}),
            "invalid_input",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("pg_query explain"));
    c.err(
        "pg_read",
        json!({"action": "query", "sql": "INSERT INTO items VALUES (1)"}),
        "policy_denied",
    )
    .await;
    c.err(
        "pg_read",
        json!({"action": "settings", "setting_name": "work_mem", "setting_value": "8MB"}),
        "invalid_input",
    )
    .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM items").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn read_only_mode_lists_only_read_only_tools_and_refuses_every_change() {
    let app = spawn_app_with(|c| c.read_only = true).await;
    app.exec("CREATE TABLE items (id int); INSERT INTO items VALUES (1)")
        .await;
    for era in ERAS {
        let c = app.client(era).await;
        let list = tools_list(&c).await;
        let tools = list["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["pg_monitor", "pg_read"], "{era:?}");
        for t in tools {
            assert_eq!(t["annotations"]["readOnlyHint"], true, "{}", t["name"]);
        }
        let refused = [
            (
                "pg_query",
                json!({"action": "write", "sql": "DELETE FROM items", "autocommit": true}),
            ),
            (
                "pg_query",
                json!({"action": "transaction", "operations": [{"sql": "DELETE FROM items"}], "autocommit": true}),
            ),
            (
                "pg_schema",
                json!({"action": "drop", "sql": "DROP TABLE items", "autocommit": true}),
            ),
            (
                "pg_admin",
                json!({"action": "vacuum", "table": "items", "autocommit": true}),
            ),
            ("pg_tx", json!({"action": "begin"})),
        ];
        for (tool, args) in refused {
            let e = c.err(tool, args.clone(), "policy_denied").await;
            assert!(
                e["message"]
                    .as_str()
                    .unwrap()
                    .contains("COLDQUERY_READ_ONLY=true"),
                "{tool} {args}: {e}"
            );
        }
        // Reads still work, and a read-only transaction may be opened.
        let r = c
            .ok(
                "pg_read",
                json!({"action": "query", "sql": "SELECT count(*) FROM items"}),
            )
            .await;
        assert_eq!(r["rows"], json!([[1]]));
        let tx = c
            .ok("pg_tx", json!({"action": "begin", "read_only": true}))
            .await;
        c.ok(
            "pg_tx",
            json!({"action": "commit", "session_id": tx["session_id"]}),
        )
        .await;
        c.close().await;
    }
    assert_eq!(app.scalar_i64("SELECT count(*) FROM items").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn the_tool_list_a_client_receives_is_under_8_kb_with_short_descriptions() {
    let app = spawn_app().await;
    let c = app.client(Era::Session).await;
    let list = tools_list(&c).await;
    let bytes = serde_json::to_string(&list).unwrap().len();
    assert!(bytes <= 8 * 1024, "tools/list is {bytes} bytes");
    let tools = list["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 6);
    for t in tools {
        let d = t["description"].as_str().unwrap();
        assert!(d.chars().count() < 1024, "{}: {} chars", t["name"], d.len());
        // pg_admin.setting_value was ["string","number","boolean"]: one type each now.
        for (name, p) in t["inputSchema"]["properties"].as_object().unwrap() {
            assert!(p["type"].is_string(), "{}.{name}: {p}", t["name"]);
        }
    }
    // A number for a setting is still accepted (the schema says string, the server is lenient).
    let tx = c.ok("pg_tx", json!({"action": "begin"})).await;
    let set = c
        .ok(
            "pg_admin",
            json!({"action": "settings", "setting_name": "work_mem", "setting_value": 8192, "session_id": tx["session_id"]}),
        )
        .await;
    assert!(set.to_string().contains("8MB"), "{set}");
    c.close().await;
    app.finish().await;
}

/// A real rmcp client that records the log messages the server sends it.
#[derive(Clone, Default)]
struct Recorder {
    logs: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    progress: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

#[allow(deprecated)] // rmcp marks MCP logging deprecated (SEP-2577); clients still use it.
impl rmcp::ClientHandler for Recorder {
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.logs
            .lock()
            .unwrap()
            .push(serde_json::to_value(params).unwrap());
    }

    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.progress
            .lock()
            .unwrap()
            .push(serde_json::to_value(params).unwrap());
    }
}

async fn recording_client(
    app: &common::TestApp,
    era: Era,
) -> (
    rmcp::service::RunningService<rmcp::RoleClient, Recorder>,
    Recorder,
) {
    use rmcp::ClientServiceExt;
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(app.mcp_url());
    let lifecycle = match era {
        Era::Session => rmcp::ClientLifecycleMode::Initialize,
        Era::Stateless => rmcp::ClientLifecycleMode::Discover {
            preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        },
    };
    let recorder = Recorder::default();
    let client = recorder
        .clone()
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("recording client connects");
    (client, recorder)
}

#[tokio::test]
async fn a_truncated_result_is_also_sent_as_a_warning_log_message() {
    let app = spawn_app().await;
    let (client, recorder) = recording_client(&app, Era::Session).await;
    let caps = client.peer_info().unwrap().capabilities.clone();
    assert!(caps.logging.is_some() && caps.completions.is_some());
    #[allow(deprecated)]
    client
        .set_level(rmcp::model::SetLevelRequestParams::new(
            rmcp::model::LoggingLevel::Info,
        ))
        .await
        .expect("logging/setLevel is accepted");
    let args = json!({"action": "query", "sql": "SELECT generate_series(1, 50)", "max_rows": 5});
    let r = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("pg_read")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(r.structured_content.unwrap()["truncated"], true);
    // The notification is written to the response stream before the result.
    let logs = recorder.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["level"], "warning");
    assert!(
        logs[0]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("truncated")
    );
    // Above warning, nothing is sent.
    #[allow(deprecated)]
    client
        .set_level(rmcp::model::SetLevelRequestParams::new(
            rmcp::model::LoggingLevel::Error,
        ))
        .await
        .unwrap();
    client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("pg_read")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(recorder.logs.lock().unwrap().len(), 1);
    let _ = client.cancel().await;
    app.finish().await;
}

#[tokio::test]
async fn completion_offers_schema_and_table_names_from_the_catalog_by_prefix() {
    use rmcp::model::{ArgumentInfo, CompleteRequestParams, CompletionContext, Reference};
    let app = spawn_app().await;
    app.exec(
        "CREATE SCHEMA app; CREATE TABLE app.orders (id int); CREATE TABLE app.order_lines (id int); \
         CREATE TABLE app.customers (id int); CREATE TABLE public.orbit (id int);",
    )
    .await;
    let mut many = String::new();
    for i in 0..120 {
        many.push_str(&format!("CREATE TABLE app.t{i:03} (id int);"));
    }
    app.exec(&many).await;
    for era in ERAS {
        let (client, _) = recording_client(&app, era).await;
        let template = || Reference::for_resource("postgres://schema/{schema}/{table}");
        let ask = async |r: CompleteRequestParams| client.complete(r).await.unwrap().completion;

        let schemas = ask(CompleteRequestParams::new(
            template(),
            ArgumentInfo::new("schema", "a"),
        ))
        .await;
        assert_eq!(schemas.values, ["app"], "{era:?}");

        let mut in_app = CompleteRequestParams::new(template(), ArgumentInfo::new("table", "or"));
        in_app.context = Some(CompletionContext::with_arguments(
            [("schema".to_owned(), "app".to_owned())].into(),
        ));
        let tables = ask(in_app).await;
        assert_eq!(tables.values, ["order_lines", "orders"], "{era:?}");
        assert_eq!(tables.has_more, Some(false));

        // Without a schema: every user schema.
        let any = ask(CompleteRequestParams::new(
            template(),
            ArgumentInfo::new("table", "or"),
        ))
        .await;
        assert_eq!(any.values, ["orbit", "order_lines", "orders"]);

        // Capped at 100, with has_more.
        let capped = ask(CompleteRequestParams::new(
            template(),
            ArgumentInfo::new("table", "t"),
        ))
        .await;
        assert_eq!(capped.values.len(), 100);
        assert_eq!(capped.has_more, Some(true));

        // The prompt's sql argument: the word being typed is completed as a table name.
        let sql = ask(CompleteRequestParams::new(
            Reference::for_prompt("analyze_query_performance"),
            ArgumentInfo::new("sql", "SELECT * FROM cus"),
        ))
        .await;
        assert_eq!(sql.values, ["SELECT * FROM customers"]);

        // Anything else: an empty list, not an error.
        let none = ask(CompleteRequestParams::new(
            Reference::for_prompt("no_such_prompt"),
            ArgumentInfo::new("x", "y"),
        ))
        .await;
        assert!(none.values.is_empty());
        let _ = client.cancel().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_vacuum_of_a_large_table_reports_progress_from_pg_stat_progress_vacuum() {
    let app = spawn_app().await;
    // Enough blocks that VACUUM takes well over the 500 ms between updates on a small machine.
    app.exec(
        "CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = off); \
         INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 1500000) g; \
         DELETE FROM big WHERE id % 2 = 0;",
    )
    .await;
    for era in ERAS {
        // Dead tuples for each era's VACUUM FULL: the first one compacted the table, and a
        // compact table on a quiet machine can be rewritten before the first update is due.
        app.exec("UPDATE big SET pad = pad").await;
        let (client, recorder) = recording_client(&app, era).await;
        let mut params = rmcp::model::CallToolRequestParams::new("pg_admin").with_arguments(
            json!({"action": "vacuum", "table": "big", "full": true, "autocommit": true})
                .as_object()
                .unwrap()
                .clone(),
        );
        params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
            rmcp::model::ProgressToken(rmcp::model::NumberOrString::String("vac".into())),
        ));
        let r = client.call_tool(params).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{:?}", r.content);
        let got = recorder.progress.lock().unwrap().clone();
        assert!(!got.is_empty(), "{era:?}: no progress notification");
        let mut last = -1.0;
        for p in &got {
            // rmcp's client assigns its own token to each request; all updates carry it.
            assert_eq!(p["progressToken"], got[0]["progressToken"]);
            let v = p["progress"].as_f64().unwrap();
            assert!(v > last, "progress must grow: {got:?}");
            last = v;
        }
        // Real figures: at least one update names the command and its phase.
        assert!(
            got.iter()
                .any(|p| p["message"].as_str().unwrap_or("").contains("VACUUM")
                    || p["message"].as_str().unwrap_or("").contains("CLUSTER")),
            "{got:?}"
        );
        let _ = client.cancel().await;
    }
    app.finish().await;
}

/// The tool and action names are enums in the server (src/mcp/names.rs) and the input schemas
/// are derived from the argument types: what a client sees and is told must not have moved.
#[tokio::test]
async fn an_unknown_action_is_each_tools_invalid_input_in_its_usual_words_and_the_tool_list_is_unchanged()
 {
    let app = spawn_app().await;
    let c = app.client(Era::Session).await;
    let cases = [
        (
            "pg_query",
            "read, write, explain, transaction, fetch, close_cursor",
        ),
        ("pg_schema", "list, describe, create, alter, drop"),
        ("pg_admin", "vacuum, analyze, reindex, stats, settings"),
        (
            "pg_tx",
            "begin, commit, rollback, savepoint, release, rollback_to, list",
        ),
        (
            "pg_monitor",
            "health, activity, connections, locks, size, slow_queries",
        ),
        (
            "pg_read",
            "query, explain, fetch, close_cursor, list, describe, stats, settings, tx_list",
        ),
    ];
    let long = "x".repeat(100);
    for (tool, actions) in cases {
        let e = c
            .err(tool, json!({"action": "vacuum_all"}), "invalid_input")
            .await;
        assert_eq!(
            e["message"],
            format!("unknown action \"vacuum_all\" for {tool}; use one of: {actions}"),
            "{tool}"
        );
        // An action that is not even close is cut to 64 characters in the message.
        let e = c.err(tool, json!({"action": long}), "invalid_input").await;
        assert_eq!(
            e["message"],
            format!(
                "unknown action \"{}\" for {tool}; use one of: {actions}",
                "x".repeat(64)
            ),
            "{tool}"
        );
    }
    // pg_read reports a missing action as an unknown one; the other tools as a missing field.
    let e = c.err("pg_read", json!({}), "invalid_input").await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown action \"\" for pg_read"),
        "{e}"
    );
    let e = c.err("pg_tx", json!({}), "invalid_input").await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("bad arguments for pg_tx: missing field `action`"),
        "{e}"
    );
    // Not a string: the argument's type is wrong, as before.
    let e = c
        .err("pg_monitor", json!({"action": 5}), "invalid_input")
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("bad arguments for pg_monitor: invalid type: integer `5`"),
        "{e}"
    );
    // The other closed sets keep their words.
    let e = c
        .err(
            "pg_schema",
            json!({"action": "list", "target": "tables"}),
            "invalid_input",
        )
        .await;
    assert_eq!(
        e["message"],
        "unknown target \"tables\" for pg_schema list; use one of: schema, table, view, \
         materialized_view, function, sequence, index, trigger, constraint, extension, type"
    );
    let e = c
        .err(
            "pg_monitor",
            json!({"action": "slow_queries", "order_by": "rows"}),
            "invalid_input",
        )
        .await;
    assert_eq!(
        e["message"],
        "unknown order_by \"rows\"; use one of: mean_time, total_time, calls"
    );
    // An unknown tool is still a protocol error naming the tools.
    let err = c
        .inner()
        .call_tool(
            rmcp::model::CallToolRequestParams::new("pg_nothing")
                .with_arguments(serde_json::Map::new()),
        )
        .await
        .expect_err("an unknown tool is a protocol error");
    assert!(
        err.to_string().contains(
            "unknown tool \"pg_nothing\"; tools: pg_query, pg_schema, pg_admin, pg_tx, \
             pg_monitor, pg_read"
        ),
        "{err}"
    );

    // The tool list: the same tools in the same order, with the input schemas pinned before
    // they were derived from the argument types.
    let pinned: Value =
        serde_json::from_str(include_str!("../src/mcp/testdata/input_schemas.json")).unwrap();
    let list = tools_list(&c).await;
    let got: Vec<Value> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!({"name": t["name"], "inputSchema": t["inputSchema"]}))
        .collect();
    assert_eq!(Value::Array(got), pinned);
    c.close().await;
    app.finish().await;
}
