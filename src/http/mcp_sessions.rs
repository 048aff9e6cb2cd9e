//! Bounded MCP sessions: rmcp's `LocalSessionManager` keeps every session until its keep-alive
//! runs out and has no cap, so 5,000 unauthenticated `initialize` calls held 330 MB for 30
//! minutes. [`BoundedSessions`] wraps it with a cap (`COLDQUERY_MAX_MCP_SESSIONS`) and an idle
//! expiry (`COLDQUERY_MCP_SESSION_IDLE`) for sessions that hold no pg_tx handle; the
//! [`refuse_when_full`] middleware answers the initialize over the cap with a clear error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};
use tokio_util::sync::CancellationToken;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BoundedError {
    /// The cap is reached.
    #[error(
        "the server holds its maximum of {0} MCP sessions (COLDQUERY_MAX_MCP_SESSIONS); close \
         unused sessions (HTTP DELETE), retry later, or raise the limit"
    )]
    Full(usize),
    /// rmcp's own error.
    #[error(transparent)]
    Inner(#[from] LocalSessionManagerError),
}

/// rmcp's local session manager with a cap and an idle expiry.
pub struct BoundedSessions {
    inner: LocalSessionManager,
    max: usize,
    last_used: Mutex<HashMap<SessionId, Instant>>,
}

impl BoundedSessions {
    /// Wrap `inner`, allowing at most `max` sessions at once.
    pub fn new(inner: LocalSessionManager, max: usize) -> BoundedSessions {
        BoundedSessions {
            inner,
            max: max.max(1),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Instant>> {
        self.last_used
            .lock()
            .expect("the session activity lock is never poisoned")
    }

    fn touch(&self, id: &SessionId) {
        if let Some(t) = self.map().get_mut(id) {
            *t = Instant::now();
        }
    }

    /// Whether a new session would be refused.
    pub fn is_full(&self) -> bool {
        self.map().len() >= self.max
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Close every session idle for longer than `idle` for which `keep` says no (it holds a
    /// pg_tx handle). Returns how many were closed.
    pub async fn reap_idle(&self, idle: Duration, keep: impl Fn(&str) -> bool) -> usize {
        let stale: Vec<SessionId> = self
            .map()
            .iter()
            .filter(|(id, t)| t.elapsed() > idle && !keep(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            let _ = self.close_session(id).await;
        }
        stale.len()
    }

    /// Run [`BoundedSessions::reap_idle`] periodically until `ct` is cancelled.
    pub fn spawn_reaper(
        self: &Arc<Self>,
        idle: Duration,
        keep: impl Fn(&str) -> bool + Send + Sync + 'static,
        ct: CancellationToken,
    ) {
        let me = self.clone();
        let every = (idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = ct.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
                let n = me.reap_idle(idle, &keep).await;
                if n > 0 {
                    tracing::info!(
                        closed = n,
                        "closed idle MCP sessions that held no pg_tx handle"
                    );
                }
            }
        });
    }
}

impl SessionManager for BoundedSessions {
    type Error = BoundedError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        {
            let map = self.map();
            if map.len() >= self.max {
                return Err(BoundedError::Full(self.max));
            }
        }
        let (id, transport) = SessionManager::create_session(&self.inner).await?;
        // Re-checked on insert: two initializes may have passed the first check together.
        let admitted = {
            let mut map = self.map();
            let ok = map.len() < self.max;
            if ok {
                map.insert(id.clone(), Instant::now());
            }
            ok
        };
        if !admitted {
            let _ = SessionManager::close_session(&self.inner, &id).await;
            return Err(BoundedError::Full(self.max));
        }
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        Ok(SessionManager::initialize_session(&self.inner, id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.touch(id);
        Ok(SessionManager::has_session(&self.inner, id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.map().remove(id);
        Ok(SessionManager::close_session(&self.inner, id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(SessionManager::create_stream(&self.inner, id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        Ok(SessionManager::accept_message(&self.inner, id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(SessionManager::create_standalone_stream(&self.inner, id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        Ok(SessionManager::resume(&self.inner, id, last_event_id).await?)
    }
}

/// In front of `/mcp`: when the session cap is reached, an `initialize` without a session
/// gets HTTP 503 and a JSON-RPC error that names the limit (rmcp alone would answer 500).
/// The body is looked at only while the server is full.
pub async fn refuse_when_full(
    State((sessions, max_body)): State<(Arc<BoundedSessions>, usize)>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != axum::http::Method::POST
        || req.headers().contains_key("mcp-session-id")
        || !sessions.is_full()
    {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, max_body).await else {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )
            .into_response();
    };
    let msg: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let is_initialize = msg
        .as_ref()
        .and_then(|m| m.get("method"))
        .and_then(|m| m.as_str())
        == Some("initialize");
    if !is_initialize {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    let id = msg
        .as_ref()
        .and_then(|m| m.get("id"))
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": -32000, "message": BoundedError::Full(sessions.max()).to_string()},
    });
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "30")],
        axum::Json(body),
    )
        .into_response()
}
