//! Test harness: `spawn_app()` starts the real app on port 0 against a fresh database of its
//! own on the local PostgreSQL, and `McpClient` drives it with rmcp's real client over
//! streamable HTTP, either as a 2025-11-25 session client or a 2026-07-28 stateless client.
//! [`cluster`] has cluster-wide set-up (admin SQL, roles dropped whatever happens), [`relay`]
//! counts the server's database round trips, and [`wait_until`] polls for an effect.
#![allow(dead_code)]

pub mod cluster;
pub mod relay;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coldquery::app::App;
use coldquery::config::Config;
use coldquery::state::AppState;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// Admin URL: the local PostgreSQL every machine of this project has (override with
/// COLDQUERY_TEST_ADMIN_URL).
pub fn admin_url() -> String {
    std::env::var("COLDQUERY_TEST_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn url_for(db: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{db}")
}

/// A running server with its own database.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database's name.
    pub db_name: String,
    /// A pool on the same database, for setting up and verifying state outside the server.
    pub db: PgPool,
    /// The server's shared state (metrics).
    pub state: AppState,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Set by `finish`; a `TestApp` dropped without it (a test that panicked) drops its
    /// database in `Drop`, so a failing test leaves nothing behind either.
    finished: bool,
}

/// Which protocol era a test client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25: initialize handshake, `Mcp-Session-Id`.
    Session,
    /// 2026-07-28: `server/discover`, no session.
    Stateless,
}

/// Both eras, for tests that must pass with each.
pub const ERAS: [Era; 2] = [Era::Session, Era::Stateless];

/// Start the app against a fresh database. `tweak` adjusts the configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db_name = format!("cq_test_{:016x}", rand_u64());
    let mut admin = PgConnection::connect(&admin_url())
        .await
        .expect("admin connection to the local PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let _ = admin.close().await;
    let url = url_for(&db_name);
    let mut config = Config::with_database_url(&url);
    config.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut config);
    let app = App::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let stop = app.shutdown_token();
    let state = app.state();
    let handle = tokio::spawn(app.run_until_stopped());
    let db = PgPool::connect(&url).await.expect("verification pool");
    TestApp {
        addr,
        db_name,
        db,
        state,
        stop,
        handle: Some(handle),
        finished: false,
    }
}

/// Start the app with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A random number for names that must not collide between tests running at once.
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

impl TestApp {
    /// The MCP endpoint URL.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// A URL on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connect a real rmcp client of the given era.
    pub async fn client(&self, era: Era) -> McpClient {
        McpClient::connect(&self.mcp_url(), era).await
    }

    /// Run SQL directly (set-up and verification), outside the server.
    pub async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.db)
            .await
            .unwrap_or_else(|e| panic!("set-up SQL failed: {e}\n{sql}"));
    }

    /// A single i64 from SQL run directly.
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db)
            .await
            .unwrap_or_else(|e| panic!("verification SQL failed: {e}\n{sql}"))
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the /metrics body")
    }

    /// Backends of this test's database opened for pg_tx sessions.
    pub async fn session_backends(&self) -> i64 {
        self.backends_named("coldquery-session").await
    }

    /// Backends of this test's database with this `application_name`.
    pub async fn backends_named(&self, application_name: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
             AND datname = current_database()",
        )
        .bind(application_name)
        .fetch_one(&self.db)
        .await
        .expect("counting backends")
    }

    /// Stop the server and drop its database.
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
        }
        self.db.close().await;
        drop_database(&self.db_name).await;
        self.finished = true;
    }
}

async fn drop_database(name: &str) {
    if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // A panicking test never reaches `finish`. Stop the server and drop its database from a
        // thread with its own runtime: the test's runtime is unwinding and may be single-threaded.
        self.stop.cancel();
        let name = self.db_name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(drop_database(&name)))
        });
        let _ = dropped.join();
    }
}

/// A real MCP client (rmcp) over streamable HTTP.
pub struct McpClient {
    inner: RunningService<RoleClient, ()>,
    /// Which era it speaks.
    pub era: Era,
}

impl McpClient {
    /// Connect to `url` speaking `era`.
    pub async fn connect(url: &str, era: Era) -> McpClient {
        Self::connect_with_token(url, era, None).await
    }

    /// Connect with a bearer token.
    pub async fn connect_with_token(url: &str, era: Era, token: Option<&str>) -> McpClient {
        Self::connect_with_headers(url, era, token, &[]).await
    }

    /// Connect with a bearer token and extra headers on every request (e.g. the
    /// `Tailscale-User-Login` that `tailscale serve` sets).
    pub async fn connect_with_headers(
        url: &str,
        era: Era,
        token: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> McpClient {
        let mut config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                url.to_owned(),
            );
        if let Some(t) = token {
            config = config.auth_header(t.to_owned());
        }
        if !headers.is_empty() {
            config = config.custom_headers(
                headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            reqwest::header::HeaderName::from_static(k),
                            reqwest::header::HeaderValue::from_str(v).expect("a valid header"),
                        )
                    })
                    .collect(),
            );
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        let lifecycle = match era {
            Era::Session => ClientLifecycleMode::Initialize,
            Era::Stateless => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        };
        let inner = ()
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .unwrap_or_else(|e| panic!("MCP client ({era:?}) failed to connect: {e}"));
        McpClient { inner, era }
    }

    /// Call a tool; returns the raw result (success or isError).
    pub async fn call_raw(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("tool arguments must be an object")
        };
        self.inner
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
            .await
            .unwrap_or_else(|e| panic!("tools/call {tool} failed at the protocol level: {e}"))
    }

    /// Call a tool that must succeed; returns structuredContent.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call_raw(tool, args.clone()).await;
        assert_ne!(
            r.is_error,
            Some(true),
            "expected success for {args}, got {}",
            text_of(&r)
        );
        let s = r
            .structured_content
            .clone()
            .expect("structuredContent present");
        // The text block carries the same data (contract §3).
        let text: Value =
            serde_json::from_str(&text_of(&r)).expect("text block is the JSON result");
        assert_eq!(text, s, "text and structured content differ");
        s
    }

    /// Call a tool that must fail; returns structuredContent.error and checks the category.
    pub async fn err(&self, tool: &str, args: Value, category: &str) -> Value {
        let r = self.call_raw(tool, args.clone()).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "expected an error for {args}, got {}",
            text_of(&r)
        );
        let e = r
            .structured_content
            .clone()
            .expect("structuredContent present")["error"]
            .clone();
        assert_eq!(e["category"], category, "wrong category for {args}: {e}");
        assert!(
            text_of(&r).starts_with(category),
            "text must start with the category: {}",
            text_of(&r)
        );
        e
    }

    /// Call a destructive tool call that must succeed: the first call is refused with
    /// `confirmation_required` and a token, the repeat with `confirm: <token>` runs.
    pub async fn confirmed(&self, tool: &str, args: Value) -> Value {
        let e = self.err(tool, args.clone(), "confirmation_required").await;
        let token = e["confirm"]
            .as_str()
            .unwrap_or_else(|| panic!("a confirm token in {e}"))
            .to_owned();
        let mut args = args;
        args["confirm"] = json!(token);
        self.ok(tool, args).await
    }

    /// Shortcut: pg_query read.
    pub async fn read(&self, sql: &str) -> Value {
        self.ok("pg_query", json!({"action": "read", "sql": sql}))
            .await
    }

    /// `pg_tx begin`; returns the new session's id.
    pub async fn begin(&self) -> String {
        let r = self.ok("pg_tx", json!({"action": "begin"})).await;
        r["session_id"].as_str().expect("session_id").to_owned()
    }

    /// The underlying rmcp client.
    pub fn inner(&self) -> &RunningService<RoleClient, ()> {
        &self.inner
    }

    /// Close the client (DELETE of the MCP session for session clients).
    pub async fn close(self) {
        let _ = self.inner.cancel().await;
    }
}

/// Poll `check` every 50 ms until it holds; fails the test with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of a result's first text block.
pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .find_map(|c| c.as_text().map(|t| t.text.clone()))
        .unwrap_or_default()
}
