//! Limits that hold (issue 9, "Limits that hold"): huge values cut before they are decoded,
//! every response (errors and column metadata included) under 1 MiB, large plans reported
//! truthfully, MCP session caps, HTTP read timeouts, per-caller concurrency and the settings
//! allowlist. Effects are measured from outside: response sizes, open sockets, other callers.

mod common;

use common::{Era, McpClient, spawn_app, spawn_app_with, text_of};
use serde_json::json;

/// Size of a tool result as it travels (the JSON-RPC `result`), in bytes.
fn wire_size(r: &rmcp::model::CallToolResult) -> usize {
    serde_json::to_vec(r).expect("a result serializes").len()
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn a_value_larger_than_the_result_cap_is_cut_and_the_result_says_so() {
    let app = spawn_app().await;
    let c = app.client(Era::Session).await;
    // 20 MB of double quotes: every one doubles when escaped, twice in the text copy.
    let r = c
        .call_raw(
            "pg_query",
            json!({"action": "read", "sql": "SELECT repeat('\"', 20000000) AS q, 7 AS n"}),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(wire_size(&r) < MIB, "response of {} bytes", wire_size(&r));
    let v = r.structured_content.expect("structured content");
    assert_eq!(v["truncated"], true, "{v}");
    assert_eq!(v["truncated_by"], "max_result_bytes");
    assert_eq!(v["row_count"], 1);
    let q = v["rows"][0][0].as_str().expect("the cut value is a string");
    assert!(!q.is_empty() && q.len() < 256 * 1024, "{}", q.len());
    assert!(q.chars().all(|c| c == '"'));
    // The small value after the cut one is whole.
    assert_eq!(v["rows"][0][1], 7);
    let hint = v["hint"].as_str().expect("a hint");
    assert!(
        hint.contains("\"q\"") && hint.contains("20000000"),
        "{hint}"
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_huge_error_message_is_capped() {
    let app = spawn_app().await;
    let c = app.client(Era::Session).await;
    // PostgreSQL echoes the whole 20 MB string in "invalid input syntax for type integer".
    let r = c
        .call_raw(
            "pg_query",
            json!({"action": "read", "sql": "SELECT repeat('x', 20000000)::int"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        wire_size(&r) < 64 * 1024,
        "error of {} bytes",
        wire_size(&r)
    );
    let text = text_of(&r);
    assert!(
        text.starts_with("database_error: invalid input syntax"),
        "{}",
        &text[..200]
    );
    assert!(text.contains("more bytes cut]"), "{}", &text[..200]);
    let e = &r.structured_content.expect("structured")["error"];
    assert_eq!(e["sqlstate"], "22P02");
    c.close().await;
    app.finish().await;
}

/// `SELECT 1 AS "<63 chars>0001", …` with `n` columns, over `rows` rows.
fn wide_select(n: usize, rows: usize) -> String {
    let cols: Vec<String> = (0..n)
        .map(|i| format!("g AS \"{}{i:05}\"", "c".repeat(58)))
        .collect();
    format!(
        "SELECT {} FROM generate_series(1, {rows}) g",
        cols.join(", ")
    )
}

#[tokio::test]
async fn column_metadata_counts_against_the_result_cap() {
    let app = spawn_app_with(|c| c.max_result_bytes = 400 * 1024).await;
    let c = app.client(Era::Session).await;
    let r = c
        .call_raw(
            "pg_query",
            json!({"action": "read", "sql": wide_select(1650, 1000)}),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(wire_size(&r) < MIB, "response of {} bytes", wire_size(&r));
    let v = r.structured_content.expect("structured");
    assert_eq!(v["columns"].as_array().unwrap().len(), 1650);
    assert_eq!(v["truncated"], true);
    assert!(v["row_count"].as_u64().unwrap() > 0, "{}", v["row_count"]);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn columns_alone_larger_than_the_cap_are_refused_clearly() {
    let app = spawn_app_with(|c| c.max_result_bytes = 64 * 1024).await;
    let c = app.client(Era::Session).await;
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": wide_select(1650, 1)}),
            "limit_exceeded",
        )
        .await;
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("1650 column names") && m.contains("fewer columns"),
        "{m}"
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_plan_too_large_for_a_result_is_reported_as_such() {
    let app = spawn_app().await;
    // 3,000 children: the Append's plan is several hundred KB of JSON.
    app.exec(
        "CREATE TABLE parent (id int); \
         DO $$ BEGIN FOR i IN 1..3000 LOOP \
           EXECUTE format('CREATE TABLE child_%s () INHERITS (parent)', i); \
         END LOOP; END $$",
    )
    .await;
    let c = app.client(Era::Session).await;
    let e = c
        .err(
            "pg_query",
            json!({"action": "explain", "sql": "SELECT * FROM parent"}),
            "limit_exceeded",
        )
        .await;
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("the EXPLAIN plan is") && m.contains("smaller part"),
        "{m}"
    );
    assert!(!m.contains("no plan"), "{m}");
    // A plan that fits is still returned whole.
    let ok = c
        .ok(
            "pg_query",
            json!({"action": "explain", "sql": "SELECT * FROM child_1"}),
        )
        .await;
    assert_eq!(ok["plan"][0]["Plan"]["Node Type"], "Seq Scan");
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn one_callers_sleeping_reads_cannot_block_another_caller_or_monitoring() {
    let app = spawn_app_with(|c| {
        c.pool_size = 4;
        c.auth_tokens =
            Some("alice=tok-alice-0123456789abcdef,bob=tok-bob-0123456789abcdef".into());
    })
    .await;
    let url = app.mcp_url();
    let started = std::time::Instant::now();
    // Alice fires as many long reads as the pool has connections.
    let mut sleepers = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        sleepers.push(tokio::spawn(async move {
            let c = McpClient::connect_with_token(
                &url,
                Era::Session,
                Some("tok-alice-0123456789abcdef"),
            )
            .await;
            let r = c
                .call_raw(
                    "pg_query",
                    json!({"action": "read", "sql": "SELECT pg_sleep(7)"}),
                )
                .await;
            c.close().await;
            r
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let bob =
        McpClient::connect_with_token(&url, Era::Session, Some("tok-bob-0123456789abcdef")).await;
    let v = bob.read("SELECT 42 AS answer").await;
    assert_eq!(v["rows"][0][0], 42);
    let health = bob.ok("pg_monitor", json!({"action": "health"})).await;
    assert!(health["version"].is_string(), "{health}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "bob waited behind alice: {:?}",
        started.elapsed()
    );
    let mut refused = 0;
    for s in sleepers {
        let r = s.await.unwrap();
        if r.is_error == Some(true) {
            let t = text_of(&r);
            assert!(
                t.starts_with("limit_exceeded")
                    && t.contains("COLDQUERY_MAX_CONCURRENT_PER_CALLER"),
                "{t}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 2, "alice's share of a 4-connection pool is 2");
    bob.close().await;
    app.finish().await;
}

/// Read until the server closes the connection; how long that took (None: still open).
async fn closed_within(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // a 4xx/408 answer before the close is fine
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_partial_request_does_not_hold_a_socket() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|c| {
        c.header_read_timeout = std::time::Duration::from_secs(1);
        c.body_read_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    // Headers that never end.
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
        .await
        .unwrap();
    let t = closed_within(&mut s, std::time::Duration::from_secs(6)).await;
    assert!(
        t.is_some(),
        "a connection with half its headers is still open after 6 s"
    );
    // A body that never ends.
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\":",
    )
    .await
    .unwrap();
    let t = closed_within(&mut s, std::time::Duration::from_secs(8)).await;
    assert!(
        t.is_some(),
        "a connection with half its body is still open after 8 s"
    );
    // The server still serves.
    let c = app.client(Era::Session).await;
    assert_eq!(c.read("SELECT 1").await["rows"][0][0], 1);
    c.close().await;
    app.finish().await;
}

/// A raw 2025-06-18 `initialize`; returns the status, the session id and the body.
async fn initialize(app: &common::TestApp) -> (u16, Option<String>, String) {
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let id = res
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, id, res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn the_mcp_session_cap_refuses_one_more_initialize_clearly_and_keeps_the_others() {
    let app = spawn_app_with(|c| c.max_mcp_sessions = 3).await;
    let a = app.client(Era::Session).await;
    let b = app.client(Era::Session).await;
    let (status, id, _) = initialize(&app).await;
    assert_eq!(status, 200);
    assert!(id.is_some());
    let (status, id, body) = initialize(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(id.is_none());
    assert!(
        body.contains("COLDQUERY_MAX_MCP_SESSIONS") && body.contains("\"id\":1"),
        "{body}"
    );
    // The sessions already open keep working, and stateless clients are not sessions.
    assert_eq!(a.read("SELECT 1").await["rows"][0][0], 1);
    assert_eq!(b.read("SELECT 2").await["rows"][0][0], 2);
    let s = app.client(Era::Stateless).await;
    assert_eq!(s.read("SELECT 3").await["rows"][0][0], 3);
    // Closing one makes room.
    a.close().await;
    let mut admitted = false;
    for _ in 0..50 {
        if initialize(&app).await.0 == 200 {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(admitted, "a closed session did not make room");
    b.close().await;
    s.close().await;
    app.finish().await;
}

#[tokio::test]
async fn an_idle_mcp_session_without_a_handle_expires_and_one_with_a_handle_stays() {
    let app = spawn_app_with(|c| c.mcp_session_idle = std::time::Duration::from_secs(1)).await;
    let (_, idle, _) = initialize(&app).await;
    let idle = idle.expect("a session id");
    let holder = app.client(Era::Session).await;
    let tx = holder.ok("pg_tx", json!({"action": "begin"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &idle)
        .header("mcp-protocol-version", "2025-06-18")
        .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404, "the idle session is still open");
    // The session holding a pg_tx handle was kept, and so was its transaction.
    let r = holder
        .ok("pg_tx", json!({"action": "commit", "session_id": tx}))
        .await;
    assert_eq!(r["committed"], true, "{r}");
    holder.close().await;
    app.finish().await;
}
