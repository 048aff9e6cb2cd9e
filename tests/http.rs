//! The HTTP surface: /health (200 and 503), /metrics counting real calls, the Host and
//! Origin checks on /mcp, and the streams of a 2025-11-25 session (priming, replay, delete).

mod common;

use common::{Era, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn health_is_ok_with_the_database_up() {
    let app = spawn_app().await;
    let res = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["reachable"], true);
    assert!(body["database"]["latency_ms"].is_number());
    assert_eq!(body["sessions"]["max"], 10);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    app.finish().await;
}

#[tokio::test]
async fn health_is_503_when_the_database_is_unreachable_and_leaks_no_password() {
    let app = spawn_app_with(|c| {
        c.database_url = Some("postgres://someone:hunter2@127.0.0.1:1/nowhere".into());
    })
    .await;
    let res = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(res.status(), 503);
    let text = res.text().await.unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"]["reachable"], false);
    assert!(
        body["reason"].as_str().unwrap().contains("connect"),
        "{body}"
    );

    // Tool calls say `unavailable`, and the server keeps serving.
    let c = app.client(Era::Stateless).await;
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT 1"}),
            "unavailable",
        )
        .await;
    assert!(!e.to_string().contains("hunter2"));
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn metrics_count_the_calls_this_test_made() {
    let app = spawn_app().await;
    let c = app.client(Era::Session).await;
    for _ in 0..3 {
        c.read("SELECT 1").await;
    }
    c.err(
        "pg_query",
        json!({"action": "write", "sql": "DELETE FROM pg_class"}),
        "policy_denied",
    )
    .await;
    c.close().await;
    let text = app.metrics_text().await;
    assert!(
        text.contains(
            "coldquery_tool_calls_total{tool=\"pg_query\",action=\"read\",outcome=\"ok\"} 3"
        ),
        "{text}"
    );
    assert!(text.contains(
        "coldquery_tool_calls_total{tool=\"pg_query\",action=\"write\",outcome=\"policy_denied\"} 1"
    ));
    assert!(text.contains("coldquery_policy_refusals_total{tool=\"pg_query\",action=\"write\"} 1"));
    assert!(text.contains(
        "coldquery_tool_call_duration_seconds_count{tool=\"pg_query\",action=\"read\"} 3"
    ));
    assert!(text.contains("coldquery_pool_max_connections 10"));
    assert!(text.contains("coldquery_http_requests_total{route=\"/mcp\""));
    app.finish().await;
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;

async fn post_init(app: &common::TestApp, headers: &[(&str, &str)]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_foreign_origin_or_host_is_refused_with_403() {
    let app = spawn_app().await;
    assert_eq!(post_init(&app, &[]).await, 200);
    assert_eq!(
        post_init(&app, &[("origin", "http://localhost:3000")]).await,
        200
    );
    assert_eq!(
        post_init(&app, &[("origin", "https://evil.example")]).await,
        403
    );
    assert_eq!(post_init(&app, &[("host", "evil.example")]).await, 403);
    app.finish().await;
}

#[tokio::test]
async fn configured_hosts_and_origins_are_accepted() {
    let app = spawn_app_with(|c| {
        c.allowed_hosts = vec!["mcp.example.ts.net".into()];
        c.allowed_origins = vec!["https://app.example:*".into()];
    })
    .await;
    assert_eq!(
        post_init(&app, &[("host", "mcp.example.ts.net")]).await,
        200
    );
    assert_eq!(
        post_init(
            &app,
            &[
                ("host", "mcp.example.ts.net"),
                ("origin", "https://app.example:8443")
            ]
        )
        .await,
        200
    );
    assert_eq!(
        post_init(
            &app,
            &[
                ("host", "mcp.example.ts.net"),
                ("origin", "http://localhost:3000")
            ]
        )
        .await,
        403
    );
    app.finish().await;
}

#[tokio::test]
async fn a_request_without_a_token_is_told_which_header_to_send() {
    let app = spawn_app_with(|c| c.auth_tokens = Some("laptop=0123456789abcdef0123".into())).await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error_description=\"") && challenge.contains("Authorization: Bearer"),
        "{challenge}"
    );
    assert!(
        !challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    let body: Value = res.json().await.unwrap();
    assert!(
        body["how_to_authenticate"]
            .as_str()
            .unwrap()
            .contains("--header")
    );
    // A wrong token: invalid_token, and still the header to send.
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", "Bearer not-the-right-token-at-all")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("Authorization: Bearer"), "{challenge}");
    app.finish().await;
}

#[tokio::test]
async fn oauth_discovery_paths_answer_that_the_server_takes_static_bearer_tokens() {
    let app = spawn_app_with(|c| c.auth_tokens = Some("laptop=0123456789abcdef0123".into())).await;
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration/mcp",
        "/mcp/.well-known/openid-configuration",
    ] {
        let res = http.get(app.url(path)).send().await.unwrap();
        // /mcp/… is behind the token check: a 401 that names the header is the right answer.
        if path.starts_with("/mcp/") {
            assert_eq!(res.status(), 401, "{path}");
            continue;
        }
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["oauth"], false, "{path}");
        assert_eq!(body["token_auth"]["required"], true, "{path}");
        // The hint comes first in the text, before the details.
        let text = body.to_string();
        assert!(
            text.find("error_description").unwrap() < text.find("token_auth").unwrap(),
            "{text}"
        );
        let d = body["error_description"].as_str().unwrap();
        assert!(
            d.contains("static bearer token") && d.contains("Authorization: Bearer"),
            "{path}: {d}"
        );
    }
    // Dynamic client registration, the next thing an OAuth client tries: the same answer, as
    // an OAuth error object whose error_description the SDKs show.
    let res = http
        .post(app.url("/register"))
        .json(&json!({"redirect_uris": ["http://localhost:1/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    app.finish().await;
}

/// The harness: a test that panics before `finish` still drops its database (`TestApp`'s
/// `Drop`), so a red run leaves no `cq_test_*` database behind.
#[tokio::test]
async fn a_test_that_panics_leaves_no_database_behind() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let panicked = tokio::spawn(async move {
        let app = spawn_app().await;
        tx.send(app.db_name.clone()).unwrap();
        panic!("deliberate panic with a TestApp alive");
    })
    .await;
    assert!(panicked.is_err(), "the task was meant to panic");
    let name = rx.await.unwrap();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&common::admin_url())
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, 0, "{name} was left behind by the panicking test");
}

/// ColdQuery holds 2025-11-25 sessions itself (src/http/mcp_streams.rs): a request stream
/// starts with a priming event, a client whose connection breaks while its call runs reconnects
/// with `Last-Event-ID` and gets the reply there, and a deleted session is gone.
#[tokio::test]
async fn a_broken_session_stream_is_resumed_with_last_event_id_and_a_deleted_session_is_gone() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let post = |body: String, session: Option<&str>| {
        let mut r = http
            .post(app.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(s) = session {
            r = r
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-11-25");
        }
        r.send()
    };
    let res = post(INIT.to_owned(), None).await.unwrap();
    assert_eq!(res.status(), 200);
    let session = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert_eq!(session.len(), 36, "{session}");
    assert!(res.text().await.unwrap().contains("\"protocolVersion\""));
    let done = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(
        post(done.into(), Some(&session)).await.unwrap().status(),
        202
    );
    assert!(
        app.metrics_text()
            .await
            .contains("\ncoldquery_mcp_sessions_open 1\n")
    );
    let id_of = |e: &str| {
        e.lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap_or_default()
            .to_owned()
    };

    // A quick request: the priming event, then the reply, then the end.
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let body = post(list.into(), Some(&session))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = body
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    assert_eq!(events.len(), 2, "{body}");
    assert!(
        events[0].contains("retry: 3000") && !events[0].contains("data: {"),
        "{body}"
    );
    let stream = id_of(events[0])
        .strip_prefix("0/")
        .expect("0/<stream>")
        .to_owned();
    assert!(events[1].contains("\"pg_query\""), "{body}");
    assert_eq!(id_of(events[1]), format!("1/{stream}"));

    // A slow call whose connection breaks after the priming event.
    let slow = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "pg_query", "arguments": {"action": "read", "sql": "SELECT pg_sleep(1.5) AS slept"}}});
    let mut res = post(slow.to_string(), Some(&session)).await.unwrap();
    let first = String::from_utf8(res.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    let primed = id_of(&first);
    assert!(primed.starts_with("0/"), "{first}");
    drop(res);
    let resume = |last: String| {
        http.get(app.mcp_url())
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .header("last-event-id", last)
            .send()
    };
    let again = resume(primed.clone()).await.unwrap();
    assert_eq!(again.status(), 200);
    let again = again.text().await.unwrap();
    assert!(
        again.contains("\"slept\"") && again.contains("\"id\":3"),
        "{again}"
    );
    // The reply was sent: the stream is forgotten, and so is any id it never gave.
    for last in [primed, "0/999999".to_owned()] {
        let gone = resume(last).await.unwrap();
        assert_eq!(gone.status(), 200);
        assert!(!gone.text().await.unwrap().contains("data: {"));
    }

    let deleted = http
        .delete(app.mcp_url())
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let gone = post(list.into(), Some(&session)).await.unwrap();
    assert_eq!(gone.status(), 404);
    assert!(
        app.metrics_text()
            .await
            .contains("\ncoldquery_mcp_sessions_open 0\n")
    );
    app.finish().await;
}
