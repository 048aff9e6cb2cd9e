//! `AppState`: everything a request needs, cheap to clone (a handful of `Arc`s). Built once by
//! `App::build` and captured by the axum router and the rmcp service factory.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::db::Pools;
use crate::db::audit::Audit;
use crate::db::sessions::Sessions;
use crate::metrics::Metrics;

/// Shared state of one running server.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Database pools.
    pub pools: Pools,
    /// The audit log writer.
    pub audit: Audit,
    /// Bearer tokens and Tailscale trust for /mcp.
    pub auth: Arc<crate::http::auth::AuthConfig>,
    /// pg_tx sessions (dedicated connections).
    pub sessions: Sessions,
    /// Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// When the server started (for uptime).
    pub started: Instant,
    /// The snapshot of functions and operators the policy judges calls against.
    pub(crate) catalog: crate::db::catalog::CatalogCache,
    /// The operator's function and procedural-code rules (from the configuration).
    pub(crate) rules: Arc<crate::safety::functions::Rules>,
    /// Per-caller limit on concurrent pooled calls.
    pub caller_limits: Arc<crate::db::per_caller::CallerLimits>,
    /// Confirm tokens issued for destructive statements and not yet used.
    pub confirmations: Arc<crate::mcp::confirm::Confirmations>,
    /// 2025-11-25 MCP sessions (the table rmcp's service asks).
    pub mcp_sessions: Arc<crate::http::mcp_sessions::BoundedSessions>,
}
