//! Who owns a pg_tx handle (contract §8 "Sessions"): the authenticated principal first, so a
//! reconnecting token holder keeps its transaction while another principal holding a stolen
//! `Mcp-Session-Id` gets nothing; the per-caller session cap; digests in the audit log; and the
//! client-side deadline of session calls. Everything the server claims is checked from outside
//! over a separate connection.
//!
//! A real client never sends another principal's `Mcp-Session-Id`, and rmcp's client refuses to
//! set that header by hand, so the attacks use plain HTTP (and an rmcp client whose HTTP client
//! adds the header) where a header must be forged.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Era, McpClient, TestApp, spawn_app, spawn_app_with, wait_until};
use rmcp::ClientServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-fedcba9876543210";
const CAROL: &str = "carol-token-00112233445566";

fn tokens(c: &mut coldquery::config::Config) {
    c.auth_tokens = Some(
        format!("alice={ALICE},bob={BOB},carol={CAROL}")
            .as_str()
            .into(),
    );
}

/// A 2025-11-25 MCP session spoken in plain HTTP, so that its `Mcp-Session-Id` is known and
/// can be presented by someone else.
struct Wire {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    session: String,
    next_id: AtomicU64,
}

/// The JSON-RPC message in an SSE (or plain JSON) response body.
fn message_of(body: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
}

impl Wire {
    async fn open(app: &TestApp, token: Option<&str>) -> Wire {
        let mut w = Wire {
            http: reqwest::Client::new(),
            url: app.mcp_url(),
            token: token.map(str::to_owned),
            session: String::new(),
            next_id: AtomicU64::new(2),
        };
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "wire", "version": "1"}}});
        let res = w.post(None, &init).await;
        assert_eq!(res.status(), 200);
        w.session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let _ = res.text().await;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let session = w.session.clone();
        let res = w.post(Some(&session), &note).await;
        assert!(res.status().is_success(), "{}", res.status());
        w
    }

    async fn post(&self, session: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_string());
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send().await.unwrap()
    }

    /// tools/call in MCP session `session` (this client's own, or a stolen one): the HTTP
    /// status and, when there is one, the tool result.
    async fn call_in(&self, session: &str, tool: &str, args: Value) -> (u16, Option<Value>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": tool, "arguments": args}});
        let res = self.post(Some(session), &body).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, message_of(&text).map(|m| m["result"].clone()))
    }

    /// tools/call in this client's own MCP session; must succeed.
    async fn ok(&self, tool: &str, args: Value) -> Value {
        let (status, r) = self.call_in(&self.session, tool, args.clone()).await;
        assert_eq!(status, 200, "{args}");
        let r = r.expect("a tool result");
        assert_ne!(r["isError"], true, "{args}: {r}");
        r["structuredContent"].clone()
    }

    async fn delete(&self, session: &str) -> u16 {
        let mut req = self
            .http
            .delete(&self.url)
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.send().await.unwrap().status().as_u16()
    }
}

/// A real rmcp client of `era` whose every HTTP request also carries `extra` headers (rmcp will
/// not set `Mcp-Session-Id` itself for a stateless client; its HTTP client will).
async fn rmcp_with_headers(
    app: &TestApp,
    era: Era,
    token: &str,
    extra: &[(&'static str, String)],
) -> RunningService<RoleClient, ()> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in extra {
        headers.insert(*k, v.parse().unwrap());
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            app.mcp_url(),
        )
        .auth_header(token.to_owned());
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let lifecycle = match era {
        Era::Session => rmcp::ClientLifecycleMode::Initialize,
        Era::Stateless => rmcp::ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    };
    ().serve_with_lifecycle(transport, lifecycle).await.unwrap()
}

async fn call(c: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("arguments must be an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stolen_mcp_session_id_gives_another_principal_nothing_and_ends_nothing() {
    let app = spawn_app_with(tokens).await;
    app.exec("CREATE TABLE t (id int)").await;
    let alice = Wire::open(&app, Some(ALICE)).await;
    let id = alice.ok("pg_tx", json!({"action": "begin"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    alice
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id}),
        )
        .await;

    // Bob, with his own valid token and Alice's MCP session id, is answered exactly as for an
    // MCP session that does not exist.
    let bob = Wire::open(&app, Some(BOB)).await;
    let never = "5b0c8f43-0000-4000-8000-000000000000";
    let (unknown_status, _) = bob.call_in(never, "pg_tx", json!({"action": "list"})).await;
    assert_eq!(unknown_status, 404);
    for args in [
        json!({"action": "list"}),
        json!({"action": "commit", "session_id": id}),
        json!({"action": "rollback", "session_id": id}),
    ] {
        let (status, result) = bob.call_in(&alice.session, "pg_tx", args.clone()).await;
        assert_eq!(status, 404, "{args}: {result:?}");
    }
    assert_eq!(bob.delete(never).await, 404);
    assert_eq!(bob.delete(&alice.session).await, 404);

    // A stateless call ignores the header: it neither sees Alice's handles nor, when it ends,
    // rolls them back.
    let forged = rmcp_with_headers(
        &app,
        Era::Stateless,
        BOB,
        &[("mcp-session-id", alice.session.clone())],
    )
    .await;
    let r = call(
        &forged,
        "pg_query",
        json!({"action": "read", "sql": "SELECT 1"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true));
    let r = call(&forged, "pg_tx", json!({"action": "list"})).await;
    assert_eq!(r.structured_content.unwrap()["sessions"], json!([]));
    let r = call(
        &forged,
        "pg_tx",
        json!({"action": "commit", "session_id": id}),
    )
    .await;
    assert_eq!(
        r.structured_content.unwrap()["error"]["category"],
        "session_not_found"
    );
    let _ = forged.cancel().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Alice's MCP session and transaction are untouched; she commits.
    let l = alice.ok("pg_tx", json!({"action": "list"})).await;
    assert_eq!(l["sessions"][0]["id"], id.as_str(), "{l}");
    assert_eq!(l["sessions"][0]["state"], "in_transaction");
    assert_eq!(app.session_backends().await, 1);
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    alice
        .ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 1);
    assert_eq!(alice.delete(&alice.session).await, 204);
    app.finish().await;
}

#[tokio::test]
async fn a_token_holder_who_reconnects_lists_uses_and_commits_the_handle_it_left_open() {
    let app = spawn_app_with(tokens).await;
    app.exec("CREATE TABLE t (id int)").await;
    // The first connection begins and goes away without DELETE, as clients that reconnect do.
    let gone = Wire::open(&app, Some(ALICE)).await;
    let id = gone.ok("pg_tx", json!({"action": "begin"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    gone.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id}),
    )
    .await;
    drop(gone);

    let again = McpClient::connect_with_token(&app.mcp_url(), Era::Session, Some(ALICE)).await;
    let l = again.ok("pg_tx", json!({"action": "list"})).await;
    assert_eq!(l["sessions"][0]["id"], id.as_str(), "{l}");
    again
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "INSERT INTO t VALUES (2)", "session_id": id}),
        )
        .await;
    let stateless =
        McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(ALICE)).await;
    let r = stateless
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT count(*)::int FROM t", "session_id": id}),
        )
        .await;
    assert_eq!(r["rows"], json!([[2]]));

    // Another principal still cannot tell the handle from one that never existed.
    let bob = McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(BOB)).await;
    let foreign = bob
        .err(
            "pg_tx",
            json!({"action": "commit", "session_id": id}),
            "session_not_found",
        )
        .await;
    let never = "tx_00000000000000000000000000000000";
    let missing = bob
        .err(
            "pg_tx",
            json!({"action": "commit", "session_id": never}),
            "session_not_found",
        )
        .await;
    assert_eq!(
        foreign["message"].as_str().unwrap().replace(&id, "ID"),
        missing["message"].as_str().unwrap().replace(never, "ID")
    );
    assert_eq!(
        bob.ok("pg_tx", json!({"action": "list"})).await["sessions"],
        json!([])
    );

    stateless
        .ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 2);
    for c in [again, stateless, bob] {
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn deleting_an_mcp_session_ends_the_handles_it_began_and_no_others() {
    let app = spawn_app_with(tokens).await;
    app.exec("CREATE TABLE t (id int)").await;
    let in_session = McpClient::connect_with_token(&app.mcp_url(), Era::Session, Some(ALICE)).await;
    let stateless =
        McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(ALICE)).await;
    let first = in_session.begin().await;
    let second = stateless.begin().await;
    for (c, id, n) in [(&in_session, &first, 1), (&stateless, &second, 2)] {
        c.ok(
            "pg_query",
            json!({"action": "write", "sql": format!("INSERT INTO t VALUES ({n})"), "session_id": id}),
        )
        .await;
    }
    assert_eq!(app.session_backends().await, 2);
    in_session.close().await; // HTTP DELETE
    wait_until(
        "the deleted MCP session's transaction is closed",
        Duration::from_secs(5),
        async || app.session_backends().await == 1,
    )
    .await;
    let e = stateless
        .err(
            "pg_tx",
            json!({"action": "commit", "session_id": first}),
            "session_lost",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("HTTP DELETE"),
        "{e}"
    );
    stateless
        .ok("pg_tx", json!({"action": "commit", "session_id": second}))
        .await;
    assert_eq!(
        app.scalar_i64("SELECT coalesce(sum(id), 0) FROM t").await,
        2
    );
    stateless.close().await;
    app.finish().await;
}

#[tokio::test]
async fn one_leaky_caller_cannot_block_another_callers_begin() {
    let app = spawn_app_with(|c| {
        tokens(c);
        c.max_sessions = 5;
        c.max_sessions_per_caller = Some(2);
    })
    .await;
    let alice = McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(ALICE)).await;
    let bob = McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(BOB)).await;
    let carol = McpClient::connect_with_token(&app.mcp_url(), Era::Session, Some(CAROL)).await;
    let leaked = [alice.begin().await, alice.begin().await];
    let started = Instant::now();
    let e = alice
        .err("pg_tx", json!({"action": "begin"}), "limit_exceeded")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once"
    );
    let m = e["message"].as_str().unwrap();
    for part in [
        "you hold 2 open sessions",
        "COLDQUERY_MAX_SESSIONS_PER_CALLER=2",
        "2 of 5 are open",
        "is rolled back in",
        "pg_query transaction",
        "pg_tx list",
    ] {
        assert!(m.contains(part), "{part:?} missing from: {m}");
    }
    assert!(
        m.contains(leaked[0].as_str()),
        "names the most idle one: {m}"
    );

    // The others still begin.
    let b = [bob.begin().await, bob.begin().await];
    let c = carol.begin().await;
    // Now the server is full: the message says so, and whose they are.
    let e = carol
        .err("pg_tx", json!({"action": "begin"}), "limit_exceeded")
        .await;
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("all 5 sessions are in use") && m.contains("1 of them yours, 4 other"),
        "{m}"
    );
    assert_eq!(app.session_backends().await, 5);
    for (client, id) in [
        (&alice, &leaked[0]),
        (&alice, &leaked[1]),
        (&bob, &b[0]),
        (&bob, &b[1]),
    ] {
        client
            .ok("pg_tx", json!({"action": "rollback", "session_id": id}))
            .await;
    }
    carol
        .ok("pg_tx", json!({"action": "rollback", "session_id": c}))
        .await;
    for client in [alice, bob, carol] {
        client.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn the_audit_log_holds_digests_of_handles_and_mcp_sessions_never_the_ids() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = Wire::open(&app, None).await;
    let id = c.ok("pg_tx", json!({"action": "begin"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id}),
    )
    .await;
    c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    let mut rows: Vec<Value> = Vec::new();
    for _ in 0..100 {
        rows = sqlx::query_scalar("SELECT to_jsonb(a) FROM coldquery.audit_log a ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap_or_default();
        if rows.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows.len(), 3, "{rows:?}");
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains(&id), "a handle in clear: {all}");
    assert!(
        !all.contains(&c.session),
        "an MCP session id in clear: {all}"
    );
    // The digest is one anybody with the id can recompute, in SQL too.
    let digest = |s: &str| {
        let s = s.to_owned();
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 16)",
            )
            .bind(s)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let (handle_digest, mcp_digest) = (digest(&id).await, digest(&c.session).await);
    for row in &rows {
        assert_eq!(row["session_id"], handle_digest.as_str(), "{row}");
        assert_eq!(row["mcp_session"], mcp_digest.as_str(), "{row}");
    }
    assert_eq!(c.delete(&c.session).await, 204);
    app.finish().await;
}

#[tokio::test]
async fn a_session_read_of_pg_sleep_past_the_timeout_ends_with_timeout_even_after_set_config() {
    let app = spawn_app_with(|c| c.statement_timeout = Duration::from_secs(1)).await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    let id = c.begin().await;
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id}),
    )
    .await;
    // Try to switch the server-side timeout off for the rest of the transaction. Whether the
    // policy refuses this or not, the cap must hold.
    for (tool, args) in [
        (
            "pg_query",
            json!({"action": "write", "session_id": id,
                            "sql": "SELECT set_config('statement_timeout', '0', true)"}),
        ),
        (
            "pg_query",
            json!({"action": "write", "session_id": id,
                            "sql": "DO $$ BEGIN PERFORM set_config('statement_timeout', '0', true); END $$"}),
        ),
        (
            "pg_admin",
            json!({"action": "settings", "session_id": id,
                            "setting_name": "statement_timeout", "setting_value": "0"}),
        ),
    ] {
        let _ = c.call_raw(tool, args).await;
    }
    let started = Instant::now();
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT pg_sleep(12)", "session_id": id}),
            "timeout",
        )
        .await;
    let took = started.elapsed();
    // statement_timeout 1 s, the client deadline 5 s later.
    assert!(took < Duration::from_millis(7500), "took {took:?}: {e}");
    wait_until(
        "pg_sleep leaves pg_stat_activity",
        Duration::from_secs(3),
        async || {
            app.scalar_i64(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(%' \
             AND state = 'active' AND datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await
                == 0
        },
    )
    .await;
    // The session tells the truth about what is left of it, and commit acts on that truth.
    let l = c.ok("pg_tx", json!({"action": "list"})).await;
    let state = l["sessions"][0]["state"].as_str().unwrap().to_owned();
    if state == "failed" {
        let e = c
            .err(
                "pg_tx",
                json!({"action": "commit", "session_id": id}),
                "database_error",
            )
            .await;
        assert!(e["message"].as_str().unwrap().contains("rolled"), "{e}");
        assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    } else {
        assert_eq!(state, "in_transaction", "{l}");
        c.ok("pg_tx", json!({"action": "commit", "session_id": id}))
            .await;
        assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 1);
    }
    c.close().await;
    app.finish().await;
}

/// A TCP proxy in front of PostgreSQL that can stop forwarding, like a database host that
/// stopped answering (the connections stay open; nothing comes back).
struct Freezer {
    port: u16,
    frozen: Arc<AtomicBool>,
}

async fn freezer() -> Freezer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frozen = Arc::new(AtomicBool::new(false));
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, f.clone()));
            tokio::spawn(pump(sr, cw, f.clone()));
        }
    });
    Freezer { port, frozen }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_session_call_to_a_database_that_stopped_answering_ends_at_the_client_deadline() {
    let proxy = freezer().await;
    let app = spawn_app_with(|c| {
        let url = c.database_url.as_ref().unwrap().expose().to_owned();
        let db = url.rsplit_once('/').unwrap().1.to_owned();
        c.database_url = Some(
            format!("postgres://postgres@127.0.0.1:{}/{db}", proxy.port)
                .as_str()
                .into(),
        );
        c.statement_timeout = Duration::from_secs(1);
    })
    .await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Session).await;
    let id = c.begin().await;
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id}),
    )
    .await;
    proxy.frozen.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        c.call_raw(
            "pg_query",
            json!({"action": "read", "sql": "SELECT 1", "session_id": id}),
        ),
    )
    .await
    .expect("a session call must end at its client-side deadline, not hang");
    let took = started.elapsed();
    proxy.frozen.store(false, Ordering::SeqCst);
    let e = r.structured_content.clone().unwrap()["error"].clone();
    assert_eq!(e["category"], "timeout", "{e}");
    // statement_timeout 1 s + 5 s.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "took {took:?}"
    );
    let l = c.ok("pg_tx", json!({"action": "list"})).await;
    assert_eq!(l["sessions"][0]["state"], "failed", "{l}");
    // The commit of the failed session rolls back. Usually its connection came back in step
    // after the cancelled call and PostgreSQL answers the ROLLBACK (`database_error`); under a
    // loaded machine the connection sometimes does not survive the frozen stretch, and the
    // commit reports `session_lost`. Both must say that nothing was committed, and nothing is.
    let r = c
        .call_raw("pg_tx", json!({"action": "commit", "session_id": id}))
        .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let e = r.structured_content.clone().unwrap()["error"].clone();
    assert!(
        e["category"] == "database_error" || e["category"] == "session_lost",
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("rolled"), "{e}");
    assert_eq!(app.scalar_i64("SELECT count(*) FROM t").await, 0);
    assert_eq!(c.read("SELECT 3").await["rows"], json!([[3]]));
    c.close().await;
    app.finish().await;
}
