//! `/health` (readiness: a real `SELECT 1` under a 1 s timeout on the health pool) and
//! `/metrics` (Prometheus text).

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::health_check;
use crate::metrics::Gauges;
use crate::state::AppState;

/// How long `/health` waits for the database: a probe must answer quickly either way.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /health`: 200 when the database answers `SELECT 1` within a second, else 503.
pub async fn health(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let outcome = tokio::time::timeout(HEALTH_TIMEOUT, health_check(&state.pools.health)).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let sessions = json!({ "open": state.sessions.open_count(), "max": state.config.max_sessions });
    let version = env!("CARGO_PKG_VERSION");
    match outcome {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "database": { "reachable": true, "latency_ms": latency_ms },
                "sessions": sessions,
                "version": version,
            })),
        )
            .into_response(),
        Ok(Err(e)) => unavailable(describe(&e), sessions, version),
        Err(_) => unavailable(
            format!(
                "the database did not answer SELECT 1 within {}s",
                HEALTH_TIMEOUT.as_secs()
            ),
            sessions,
            version,
        ),
    }
}

fn unavailable(reason: String, sessions: serde_json::Value, version: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "status": "unavailable",
            "reason": reason,
            "database": { "reachable": false },
            "sessions": sessions,
            "version": version,
        })),
    )
        .into_response()
}

/// A reason safe to show anyone: never the URL or the password.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("cannot connect to the database: {}", io.kind()),
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".into(),
        sqlx::Error::Database(db) => format!("the database refused: {}", db.message()),
        sqlx::Error::Tls(_) => "TLS handshake with the database failed".into(),
        _ => "the database is unavailable".into(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.pools.pool();
    let size = pool.size() as u64;
    // Connections parked between one-shot reads are checked out as sqlx counts, idle as we do.
    let idle = pool.num_idle() as u64 + state.pools.parked() as u64;
    let g = Gauges {
        pool_idle: idle,
        pool_in_use: size.saturating_sub(idle),
        pool_max: state.config.pool_size as u64,
        sessions_open: state.sessions.open_count() as u64,
        spares_ready: state.sessions.spares_ready() as u64,
        mcp_sessions_open: state.mcp_sessions.len() as u64,
        mcp_session_loops: state.mcp_sessions.running_loops() as u64,
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&g),
    )
        .into_response()
}
