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
