//! The HTTP surface: `/mcp` (rmcp streamable HTTP, with Host/Origin validation and a body
//! limit), `/health` and `/metrics`, plus request counting.

pub(crate) mod auth;
pub(crate) mod caller;
pub(crate) mod direct;
pub(crate) mod direct_session;
pub(crate) mod health;
pub(crate) mod mcp_sessions;
pub(crate) mod mcp_streams;
pub(crate) mod serve;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;

use crate::mcp::ColdQueryServer;
use crate::state::AppState;

/// Build the router. `ct` is cancelled at shutdown; rmcp closes its sessions when it is.
pub fn router(state: AppState, ct: CancellationToken) -> Router {
    let cfg = &state.config;
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_cancellation_token(ct.clone())
        // A stateless (2026-07-28) call whose handler sends nothing before its result gets a
        // plain JSON response instead of an SSE stream; progress or log notifications switch
        // that call back to SSE, so nothing is lost.
        .with_json_response(true);
    // `*` means "accept any": rmcp treats an empty Host list as "no check".
    let allowed_hosts: Vec<String> = if cfg.allowed_hosts.iter().any(|h| h.trim() == "*") {
        Vec::new()
    } else {
        cfg.allowed_hosts
            .iter()
            .map(|h| h.trim().to_owned())
            .collect()
    };
    mcp_config = if allowed_hosts.is_empty() {
        mcp_config.disable_allowed_hosts()
    } else {
        mcp_config.with_allowed_hosts(allowed_hosts.clone())
    };
    if !cfg.allowed_origins.iter().any(|o| o.trim() == "*") {
        mcp_config = mcp_config
            .with_allowed_origins(cfg.allowed_origins.iter().map(|o| o.trim().to_owned()));
    }

    let sessions = state.mcp_sessions.clone();
    // An MCP session that holds a pg_tx handle keeps living (up to its keep-alive: app.rs);
    // one that holds none is closed after COLDQUERY_MCP_SESSION_IDLE.
    let handles = state.sessions.clone();
    sessions.spawn_reaper(
        cfg.mcp_session_idle,
        move |id| !handles.list(&format!("mcp:{id}")).is_empty(),
        ct.clone(),
    );
    // A session's service loop after its handshake (see mcp_streams::Session::new).
    sessions.set_start({
        let state = state.clone();
        let ct = ct.clone();
        std::sync::Arc::new(move |transport| {
            let server = ColdQueryServer::new(state.clone());
            let ct = ct.child_token();
            tokio::spawn(async move {
                match rmcp::ServiceExt::serve_with_ct(server, transport, ct).await {
                    Ok(running) => {
                        let _ = running.waiting().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "an MCP session's service did not start again")
                    }
                }
            });
        })
    });
    let mcp_owners = caller::McpOwners::new(sessions.clone(), state.sessions.clone());
    let factory_state = state.clone();
    let mcp = SharedMcp(std::sync::Arc::new(StreamableHttpService::new(
        // Runs once per MCP session, or once per request for 2026-07-28 stateless clients:
        // it only clones Arcs.
        move || Ok(ColdQueryServer::new(factory_state.clone())),
        sessions.clone(),
        mcp_config,
    )));
    let mcp = tower::ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        .layer(middleware::from_fn_with_state(
            mcp_owners,
            caller::tag_caller,
        ))
        .layer(middleware::from_fn(delete_answers_no_content))
        .layer(middleware::from_fn_with_state(
            (sessions, cfg.max_request_bytes),
            mcp_sessions::refuse_when_full,
        ))
        // Stateless tools/call without rmcp's per-request service; the rest goes on to rmcp.
        .layer_fn({
            let state = state.clone();
            let ct = ct.clone();
            move |inner| {
                direct::Direct::new(inner, state.clone(), allowed_hosts.clone(), ct.clone())
            }
        })
        .layer(RequestBodyLimitLayer::new(cfg.max_request_bytes))
        .service(mcp);

    Router::new()
        .nest_service("/mcp", mcp)
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        // OAuth discovery and the endpoints OAuth clients fall back to: a JSON answer saying
        // that this server takes static bearer tokens (see auth::oauth_discovery).
        .route("/.well-known/{*rest}", get(auth::oauth_discovery))
        .route("/register", any(auth::oauth_discovery))
        .route("/authorize", any(auth::oauth_discovery))
        .route("/token", any(auth::oauth_discovery))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// rmcp's service behind an `Arc`. rmcp's own `Service::call` clones the whole service, its
/// configuration with every allowed Host and Origin string included, and each middleware
/// layer above clones its inner service on every request: that was 36 configuration clones
/// (72 string vectors) per call. This calls [`StreamableHttpService::handle`] on the shared
/// instance instead.
#[derive(Clone)]
struct SharedMcp(
    std::sync::Arc<StreamableHttpService<ColdQueryServer, mcp_sessions::BoundedSessions>>,
);

impl<B> tower::Service<axum::http::Request<B>> for SharedMcp
where
    B: axum::body::HttpBody + Send + 'static,
    B::Error: std::fmt::Display,
    B::Data: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.handle(req).await.map(axum::body::Body::new)) })
    }
}

/// rmcp answers a session DELETE with 202; the Python SDK treats only 200/204 as success and
/// logs a failure for every clean close. The session is gone by then, so 204 is the truth.
async fn delete_answers_no_content(req: Request, next: Next) -> Response {
    let is_delete = req.method() == axum::http::Method::DELETE;
    let mut res = next.run(req).await;
    if is_delete && res.status() == axum::http::StatusCode::ACCEPTED {
        *res.status_mut() = axum::http::StatusCode::NO_CONTENT;
    }
    res
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // Label by known route only: arbitrary paths would make unbounded series.
    let route = match path {
        "/health" | "/metrics" => path,
        p if p == "/mcp" || p.starts_with("/mcp/") => "/mcp",
        _ => "other",
    }
    .to_owned();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    state.metrics.inc(
        "coldquery_http_requests_total",
        &[("route", &route), ("status", &status)],
    );
    res
}
