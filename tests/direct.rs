//! Stateless `tools/call` served directly (src/http/direct.rs) against the same request served
//! by rmcp: the same status, content type and messages. A request is sent twice, once as the
//! direct path takes it and once with `Accept` naming `text/event-stream;charset=utf-8`, which
//! rmcp accepts as before but the direct path leaves to rmcp; the
//! `coldquery_direct_tool_calls_total` counter shows which path served each.

mod common;

use common::{TestApp, spawn_app_with, wait_until};
use serde_json::{Value, json};

const DIRECT_ACCEPT: &str = "application/json, text/event-stream";
const RMCP_ACCEPT: &str = "application/json, text/event-stream;charset=utf-8";

/// A 2026-07-28 `tools/call` body as clients send it.
fn call_body(id: u64, tool: &str, args: Value, meta_extra: Value) -> Value {
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "direct-test", "version": "1"}
    });
    if let (Value::Object(m), Value::Object(extra)) = (&mut meta, meta_extra) {
        m.extend(extra);
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": args, "_meta": meta}})
}

struct Reply {
    status: u16,
    content_type: String,
    /// The JSON-RPC messages: the body, or each `data:` line of an event stream.
    messages: Vec<Value>,
}

async fn post(app: &TestApp, body: &Value, accept: &str, extra: &[(&str, &str)]) -> Reply {
    let mut r = reqwest::Client::new()
        .post(app.mcp_url())
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", body["method"].as_str().unwrap())
        .header("content-type", "application/json")
        .header("accept", accept);
    if let Some(name) = body.pointer("/params/name").and_then(Value::as_str) {
        r = r.header("mcp-name", name);
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let res = r.body(body.to_string()).send().await.expect("request sent");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.expect("body");
    let messages = if content_type.starts_with("text/event-stream") {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| serde_json::from_str(d).expect("an event's data is JSON"))
            .collect()
    } else if text.is_empty() {
        Vec::new()
    } else {
        match serde_json::from_str(&text) {
            Ok(v) => vec![v],
            Err(_) => vec![Value::String(text)],
        }
    };
    Reply {
        status,
        content_type,
        messages,
    }
}

/// Timings, cursor names and round-trip states differ between two runs of a call: drop them, in the structured
/// result and in the text block that repeats it.
fn without_timings(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("duration_ms");
                m.remove("next_cursor");
                m.remove("requestState");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    if let Some(content) = v
        .pointer_mut("/result/content")
        .and_then(Value::as_array_mut)
    {
        for block in content {
            if let Some(text) = block.get("text").and_then(Value::as_str)
                && let Ok(mut inner) = serde_json::from_str::<Value>(text)
            {
                strip(&mut inner);
                block["text"] = Value::String(inner.to_string());
            }
        }
    }
    strip(&mut v);
    v
}

async fn direct_count(app: &TestApp) -> u64 {
    app.state
        .metrics
        .counter("coldquery_direct_tool_calls_total", &[])
}

/// Send `body` both ways; assert which path served each and that the replies match.
async fn same_both_ways(app: &TestApp, body: &Value) -> Reply {
    let before = direct_count(app).await;
    let direct = post(app, body, DIRECT_ACCEPT, &[]).await;
    assert_eq!(
        direct_count(app).await,
        before + 1,
        "served directly: {body}"
    );
    let rmcp = post(app, body, RMCP_ACCEPT, &[]).await;
    assert_eq!(
        direct_count(app).await,
        before + 1,
        "served by rmcp: {body}"
    );
    assert_eq!(direct.status, rmcp.status, "{body}");
    assert_eq!(direct.content_type, rmcp.content_type, "{body}");
    let strip = |r: &Reply| {
        r.messages
            .iter()
            .cloned()
            .map(without_timings)
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&direct), strip(&rmcp), "{body}");
    direct
}

async fn app_with_items() -> TestApp {
    let app = spawn_app_with(|c| c.max_rows = 3).await;
    app.exec("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)")
        .await;
    app.exec("INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 10) g")
        .await;
    app
}

#[tokio::test]
async fn a_stateless_call_served_directly_answers_as_rmcp_does() {
    let app = app_with_items().await;
    let read = |sql: &str| json!({"action": "read", "sql": sql});

    // A point read: one JSON message.
    let r = same_both_ways(
        &app,
        &call_body(
            1,
            "pg_query",
            read("SELECT * FROM items WHERE id = 7"),
            json!({}),
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0]["id"], 1);
    assert_eq!(
        r.messages[0]["result"]["structuredContent"]["rows"][0][1],
        "item 7"
    );

    // Cut at max_rows: the warning goes first, so both answer with an event stream.
    let r = same_both_ways(
        &app,
        &call_body(
            2,
            "pg_query",
            read("SELECT * FROM items ORDER BY id"),
            json!({}),
        ),
    )
    .await;
    assert!(
        r.content_type.starts_with("text/event-stream"),
        "{}",
        r.content_type
    );
    assert_eq!(r.messages.len(), 2, "{:?}", r.messages);
    assert_eq!(r.messages[0]["method"], "notifications/message");
    assert_eq!(
        r.messages[1]["result"]["structuredContent"]["truncated"],
        true
    );

    // The same with the request's own log level above warnings: no warning, plain JSON.
    let quiet = json!({"io.modelcontextprotocol/logLevel": "error"});
    let r = same_both_ways(
        &app,
        &call_body(
            3,
            "pg_query",
            read("SELECT * FROM items ORDER BY id"),
            quiet,
        ),
    )
    .await;
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.messages.len(), 1);

    // Refusals, bad arguments and database errors are tool results with isError.
    for (id, tool, args) in [
        (4, "pg_query", read("DROP TABLE items")),
        (5, "pg_query", json!({"action": "nope"})),
        (6, "pg_query", read("SELECT no_such_column FROM items")),
        (
            7,
            "pg_schema",
            json!({"action": "describe", "name": "items"}),
        ),
        (
            8,
            "pg_read",
            json!({"action": "query", "sql": "SELECT count(*) FROM items"}),
        ),
        (9, "pg_tx", json!({"action": "list"})),
    ] {
        let r = same_both_ways(&app, &call_body(id, tool, args, json!({}))).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.messages[0]["id"], id);
    }
    app.finish().await;
}

/// Extra request headers.
type Headers = Vec<(&'static str, &'static str)>;

#[tokio::test]
async fn requests_the_direct_path_does_not_take_are_left_to_rmcp() {
    let app = app_with_items().await;
    let read = json!({"action": "read", "sql": "SELECT 1 AS one"});
    let ok = call_body(1, "pg_query", read.clone(), json!({}));
    let cases: Vec<(&str, Value, Headers)> = vec![
        // A progress token needs the notifications only rmcp's peer sends.
        (
            "progress token",
            call_body(2, "pg_query", read.clone(), json!({"progressToken": "p1"})),
            vec![],
        ),
        (
            "origin",
            ok.clone(),
            vec![("origin", "http://localhost:5173")],
        ),
        (
            "foreign origin",
            ok.clone(),
            vec![("origin", "http://evil.example")],
        ),
        (
            "disallowed host",
            ok.clone(),
            vec![("host", "evil.example")],
        ),
        ("param header", ok.clone(), vec![("mcp-param-sql", "x")]),
        (
            "unknown tool",
            call_body(3, "pg_nope", json!({}), json!({})),
            vec![],
        ),
        (
            "no client capabilities",
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                   "params": {"name": "pg_query", "arguments": read.clone(),
                              "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}),
            vec![],
        ),
        (
            "session id",
            ok.clone(),
            vec![("mcp-session-id", "not-a-session")],
        ),
    ];
    for (what, body, extra) in cases {
        let before = direct_count(&app).await;
        let direct_try = post(&app, &body, DIRECT_ACCEPT, &extra).await;
        assert_eq!(direct_count(&app).await, before, "{what}: left to rmcp");
        let rmcp = post(&app, &body, RMCP_ACCEPT, &extra).await;
        assert_eq!(direct_try.status, rmcp.status, "{what}");
        assert_eq!(
            direct_try.messages.len(),
            rmcp.messages.len(),
            "{what}: {:?} / {:?}",
            direct_try.messages,
            rmcp.messages
        );
    }
    // A disallowed Host and a foreign Origin are refused (by rmcp), not served.
    let r = post(&app, &ok, DIRECT_ACCEPT, &[("host", "evil.example")]).await;
    assert_eq!(r.status, 403);
    let r = post(
        &app,
        &ok,
        DIRECT_ACCEPT,
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(r.status, 403);
    // The progress-token call still ran (through rmcp) and answered.
    let r = post(
        &app,
        &call_body(5, "pg_query", read, json!({"progressToken": "p2"})),
        DIRECT_ACCEPT,
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let last = r.messages.last().expect("a reply");
    assert_eq!(
        last["result"]["structuredContent"]["rows"][0][0], 1,
        "{last}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_confirmation_round_trip_runs_through_the_direct_path() {
    // rmcp's own client sends a progress token with every call, so its stateless calls take
    // rmcp's path; this is the confirmation of a destructive statement (contract: elicitation
    // as `input_required` for 2026-07-28) as a client without one sends it.
    let app = app_with_items().await;
    let delete = json!({"action": "write", "sql": "DELETE FROM items", "autocommit": true});
    let caps = json!({"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}});
    let r = same_both_ways(
        &app,
        &call_body(1, "pg_query", delete.clone(), caps.clone()),
    )
    .await;
    let asked = &r.messages[0]["result"];
    assert_eq!(asked["resultType"], "input_required", "{asked}");
    assert!(asked["inputRequests"]["confirm"].is_object(), "{asked}");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM items").await,
        10,
        "nothing ran"
    );

    // The repeat with the answer and the state, served directly, runs the statement once.
    let state = asked["requestState"]
        .as_str()
        .expect("a request state")
        .to_owned();
    let mut repeat = call_body(2, "pg_query", delete, caps);
    repeat["params"]["requestState"] = json!(state);
    repeat["params"]["inputResponses"] =
        json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    let before = direct_count(&app).await;
    let r = post(&app, &repeat, DIRECT_ACCEPT, &[]).await;
    assert_eq!(direct_count(&app).await, before + 1);
    let done = &r.messages[0]["result"];
    assert_eq!(done["structuredContent"]["rows_affected"], 10, "{done}");
    assert_eq!(app.scalar_i64("SELECT count(*) FROM items").await, 0);
    // The state is used up: the same repeat is asked again instead of running.
    let r = post(&app, &repeat, DIRECT_ACCEPT, &[]).await;
    assert_eq!(r.messages[0]["result"]["resultType"], "input_required");
    app.finish().await;
}

#[tokio::test]
async fn bearer_tokens_guard_the_direct_path_too() {
    // The token check is middleware in front of both paths: an eligible call without the
    // token is refused before it could be served directly.
    let app =
        spawn_app_with(|c| c.auth_tokens = Some("laptop=s3cret-token-for-direct".into())).await;
    let body = call_body(
        1,
        "pg_query",
        json!({"action": "read", "sql": "SELECT 1 AS one"}),
        json!({}),
    );
    let r = post(&app, &body, DIRECT_ACCEPT, &[]).await;
    assert_eq!(r.status, 401);
    let r = post(
        &app,
        &body,
        DIRECT_ACCEPT,
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(direct_count(&app).await, 0);
    let r = post(
        &app,
        &body,
        DIRECT_ACCEPT,
        &[("authorization", "Bearer s3cret-token-for-direct")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.messages[0]["result"]["structuredContent"]["rows"][0][0],
        1
    );
    assert_eq!(
        direct_count(&app).await,
        1,
        "served directly once authorized"
    );
    app.finish().await;
}

// -------------------------------------------------------------------------------------------
// 2025-11-25 sessions: after rmcp has served a session's first tool call, the session's later
// tool calls run on its handler (src/http/mcp_streams.rs, `SessionCalls`). Each kind of call is
// sent as the first call of a fresh session (rmcp's path) and as a later call of a warmed one.
// -------------------------------------------------------------------------------------------

const SESSION_INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"session-test","version":"1"}}}"#;

async fn session_post(app: &TestApp, session: Option<&str>, body: &Value) -> Reply {
    let mut r = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", DIRECT_ACCEPT);
    if let Some(s) = session {
        r = r
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let res = r.body(body.to_string()).send().await.expect("request sent");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.expect("body");
    let messages = match content_type.as_str() {
        "application/json" => vec![serde_json::from_str(&text).expect("a JSON reply")],
        _ => text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| serde_json::from_str(d).expect("an event's data is JSON"))
            .collect(),
    };
    Reply {
        status,
        content_type,
        messages,
    }
}

/// A new 2025-11-25 session (initialize, then initialized); its id.
async fn open_session(app: &TestApp) -> String {
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", DIRECT_ACCEPT)
        .body(SESSION_INIT)
        .send()
        .await
        .expect("initialize sent");
    assert_eq!(res.status(), 200);
    let id = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(session_post(app, Some(&id), &done).await.status, 202);
    id
}

fn session_call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": args}})
}

async fn session_count(app: &TestApp) -> u64 {
    app.state
        .metrics
        .counter("coldquery_direct_session_tool_calls_total", &[])
}

#[tokio::test]
async fn a_session_call_after_the_first_runs_on_the_sessions_handler_and_answers_as_rmcp_does() {
    let app = app_with_items().await;
    let warm = open_session(&app).await;
    let first = session_call(
        1,
        "pg_query",
        json!({"action": "read", "sql": "SELECT 1 AS one"}),
    );
    assert_eq!(session_post(&app, Some(&warm), &first).await.status, 200);
    assert_eq!(session_count(&app).await, 0, "the first call is rmcp's");

    let read = |sql: &str| json!({"action": "read", "sql": sql});
    let cases = [
        ("pg_query", read("SELECT * FROM items WHERE id = 7")),
        // Cut at max_rows: rmcp sends its warning on the standalone stream; so does the session.
        ("pg_query", read("SELECT * FROM items ORDER BY id")),
        ("pg_query", read("SELECT pg_advisory_lock(7)")),
        ("pg_query", read("SELECT * FROM no_such_table")),
        ("pg_query", json!({"action": "no_such_action"})),
        ("pg_schema", json!({"action": "list", "kind": "tables"})),
        ("pg_tx", json!({"action": "list"})),
        // A write a client that cannot elicit is asked to confirm with a token.
        (
            "pg_query",
            json!({"action": "write", "sql": "DELETE FROM items"}),
        ),
    ];
    for (n, (tool, args)) in cases.into_iter().enumerate() {
        let body = session_call(10 + n as u64, tool, args);
        let before = session_count(&app).await;
        let fresh = open_session(&app).await;
        let rmcp = session_post(&app, Some(&fresh), &body).await;
        assert_eq!(session_count(&app).await, before, "served by rmcp: {body}");
        let direct = session_post(&app, Some(&warm), &body).await;
        assert_eq!(
            session_count(&app).await,
            before + 1,
            "served on the session's handler: {body}"
        );
        assert_eq!(direct.status, rmcp.status, "{body}");
        // Either way a call that sends nothing before its reply is answered with plain JSON
        // (src/http/direct_session.rs).
        assert_eq!(rmcp.content_type, "application/json", "{body}");
        assert_eq!(direct.content_type, "application/json", "{body}");
        let strip = |r: &Reply| {
            r.messages
                .iter()
                .cloned()
                .map(without_timings)
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&direct), strip(&rmcp), "{body}");
        assert_eq!(direct.messages.len(), 1, "{:?}", direct.messages);
        assert_eq!(direct.messages[0]["id"], 10 + n as u64);
    }
    // Nothing was deleted: the write was only asked about.
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 10);

    // An unknown tool is left to rmcp, which answers with a protocol error.
    let before = session_count(&app).await;
    let r = session_post(
        &app,
        Some(&warm),
        &session_call(40, "pg_nothing", json!({})),
    )
    .await;
    assert_eq!(session_count(&app).await, before);
    assert!(
        r.messages[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown tool"))
    );

    // A cancelled call stops its statement in PostgreSQL.
    let sleep = session_call(41, "pg_query", read("SELECT pg_sleep(30) AS slept"));
    let running = {
        let app_url = app.mcp_url();
        let warm = warm.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(app_url)
                .header("content-type", "application/json")
                .header("accept", DIRECT_ACCEPT)
                .header("mcp-session-id", warm)
                .header("mcp-protocol-version", "2025-11-25")
                .body(sleep.to_string())
                .send()
                .await
                .expect("sent")
                .text()
                .await
        })
    };
    let sleeping = async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
             AND query LIKE '%pg_sleep(%slept%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    wait_until(
        "the sleep to start",
        std::time::Duration::from_secs(20),
        async || sleeping().await > 0,
    )
    .await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 41, "reason": "test"}});
    assert_eq!(session_post(&app, Some(&warm), &cancel).await.status, 202);
    wait_until(
        "the cancelled statement to stop in PostgreSQL",
        std::time::Duration::from_secs(5),
        async || sleeping().await == 0,
    )
    .await;
    // Its stream ends without the reply (which goes to the standalone stream, as rmcp's does).
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), running)
        .await
        .expect("the cancelled call's stream ends")
        .unwrap()
        .unwrap();
    assert!(!body.contains("\"slept\""), "{body}");

    // A deleted session is gone, and so is its handler.
    let gone = reqwest::Client::new()
        .delete(app.mcp_url())
        .header("mcp-session-id", &warm)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(gone.status().is_success(), "{}", gone.status());
    let after = session_post(&app, Some(&warm), &first).await;
    assert_eq!(after.status, 404);
    app.finish().await;
}

fn gauge(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn an_idle_session_runs_no_service_loop_until_a_request_needs_one() {
    let app = app_with_items().await;
    let (a, b, c) = (
        open_session(&app).await,
        open_session(&app).await,
        open_session(&app).await,
    );
    let loops = async || gauge(&app.metrics_text().await, "coldquery_mcp_session_loops");
    let m = app.metrics_text().await;
    assert_eq!(gauge(&m, "coldquery_mcp_sessions_open"), 3);
    assert_eq!(
        loops().await,
        0,
        "initialize and initialized leave no loop running"
    );

    // The first request that needs rmcp's service starts one, given the session's handshake
    // first: the client sees only its own reply.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let r = session_post(&app, Some(&a), &list).await;
    assert_eq!(r.messages.len(), 1, "{:?}", r.messages);
    assert_eq!(r.messages[0]["id"], 2);
    assert!(r.messages[0]["result"]["tools"].as_array().unwrap().len() >= 5);
    assert_eq!(loops().await, 1);
    let call = session_call(
        3,
        "pg_query",
        json!({"action": "read", "sql": "SELECT 41 + 1 AS n"}),
    );
    let r = session_post(&app, Some(&b), &call).await;
    assert_eq!(
        r.messages[0]["result"]["structuredContent"]["rows"][0][0],
        42
    );
    assert_eq!(loops().await, 2);
    // The restarted service knows the session: a transaction begun in it is the session's,
    // and ends with it.
    let begin = session_call(4, "pg_tx", json!({"action": "begin"}));
    let r = session_post(&app, Some(&b), &begin).await;
    assert_eq!(r.status, 200, "{:?}", r.messages);
    let pg_tx_open = async || gauge(&app.metrics_text().await, "coldquery_sessions_open");
    assert_eq!(pg_tx_open().await, 1);
    for id in [&a, &b] {
        let gone = reqwest::Client::new()
            .delete(app.mcp_url())
            .header("mcp-session-id", id.as_str())
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert!(gone.status().is_success(), "{}", gone.status());
    }
    let m = app.metrics_text().await;
    assert_eq!(gauge(&m, "coldquery_mcp_sessions_open"), 1);
    assert_eq!(gauge(&m, "coldquery_mcp_session_loops"), 0);
    wait_until(
        "the deleted session's pg_tx handle to close",
        std::time::Duration::from_secs(5),
        async || pg_tx_open().await == 0,
    )
    .await;
    // The idle one still answers.
    let r = session_post(&app, Some(&c), &call).await;
    assert_eq!(
        r.messages[0]["result"]["structuredContent"]["rows"][0][0],
        42
    );
    app.finish().await;
}

#[tokio::test]
async fn a_session_call_is_streamed_when_it_sends_something_first_or_runs_past_a_second() {
    let app = app_with_items().await;
    let s = open_session(&app).await;
    let sleep = json!({"action": "read", "sql": "SELECT pg_sleep(1.3) AS slept"});
    // Progress (every 500 ms for a long read with a token) comes before the reply.
    let mut with_token = session_call(5, "pg_query", sleep.clone());
    with_token["params"]["_meta"] = json!({"progressToken": "p5"});
    let r = session_post(&app, Some(&s), &with_token).await;
    assert_eq!(r.content_type, "text/event-stream");
    let methods: Vec<&str> = r
        .messages
        .iter()
        .map(|m| m["method"].as_str().unwrap_or("reply"))
        .collect();
    assert!(
        methods.len() >= 2 && methods[0] == "notifications/progress",
        "{methods:?}"
    );
    assert_eq!(methods.last(), Some(&"reply"));
    // A call still running after a second is switched to the stream (resumable, tests/http.rs).
    let r = session_post(&app, Some(&s), &session_call(6, "pg_query", sleep)).await;
    assert_eq!(r.content_type, "text/event-stream");
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0]["id"], 6);
    assert!(r.messages[0]["result"]["structuredContent"]["rows"].is_array());
    // A quick one is plain JSON.
    let quick = session_call(
        7,
        "pg_query",
        json!({"action": "read", "sql": "SELECT 1 AS one"}),
    );
    let r = session_post(&app, Some(&s), &quick).await;
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.messages[0]["id"], 7);

    // Headers the session path does not take leave the call to rmcp, which streams it.
    for (version, extra) in [
        ("2025-06-18", None),
        ("2025-11-25", Some(("mcp-method", "tools/call"))),
    ] {
        let mut req = reqwest::Client::new()
            .post(app.mcp_url())
            .header("content-type", "application/json")
            .header("accept", DIRECT_ACCEPT)
            .header("mcp-session-id", &s)
            .header("mcp-protocol-version", version);
        if let Some((name, value)) = extra {
            req = req.header(name, value);
        }
        let res = req.body(quick.to_string()).send().await.unwrap();
        assert_eq!(res.status(), 200, "{version} {extra:?}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "text/event-stream", "{version} {extra:?}");
        assert!(res.text().await.unwrap().contains("\"id\":7"));
    }
    app.finish().await;
}
