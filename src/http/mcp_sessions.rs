//! MCP sessions (2025-11-25 clients), held by ColdQuery: rmcp's `StreamableHttpService` asks
//! [`BoundedSessions`] (its `SessionManager`) to create, find, feed and close them, and runs each
//! one's service loop on the [`SessionTransport`] made here. Each session's routing is in
//! [`crate::http::mcp_streams`]; this file holds the table, its cap
//! (`COLDQUERY_MAX_MCP_SESSIONS`: 5,000 unauthenticated `initialize` calls once held 330 MB) and
//! the idle expiry: a session that holds no pg_tx handle is closed after
//! `COLDQUERY_MCP_SESSION_IDLE`, any session after `keep_alive` without a request. The
//! [`refuse_when_full`] middleware answers an initialize over the cap with a clear error.
//!
//! rmcp's own `LocalSessionManager` cost about 72 KB per idle session (a worker task and five
//! channels of 376-byte slots made at once); see docs/benchmarks.md. Here an idle session runs
//! no rmcp service loop either (see [`Session::new`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::http::mcp_streams::{Session, SessionTransport, Start, StreamError};

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BoundedError {
    /// The cap is reached.
    #[error(
        "the server holds its maximum of {0} MCP sessions (COLDQUERY_MAX_MCP_SESSIONS); close \
         unused sessions (HTTP DELETE), retry later, or raise the limit"
    )]
    Full(usize),
    /// No such session (never made, closed, or expired).
    #[error("MCP session not found; initialize a new one")]
    NotFound,
    /// The session's own error.
    #[error(transparent)]
    Stream(#[from] StreamError),
}

struct Entry {
    session: Arc<Session>,
    last_used: Instant,
}

/// The MCP session table, with a cap and an idle expiry.
pub struct BoundedSessions {
    max: usize,
    keep_alive: Duration,
    map: Mutex<HashMap<SessionId, Entry>>,
    /// Runs a session's service loop after its handshake ([`BoundedSessions::set_start`]).
    start: Mutex<Option<Start>>,
}

impl BoundedSessions {
    /// At most `max` sessions at once; any session is closed after `keep_alive` without a
    /// request (it must outlive the pg_tx session TTL, or a quiet client would lose its open
    /// transaction early).
    pub fn new(max: usize, keep_alive: Duration) -> BoundedSessions {
        BoundedSessions {
            max: max.max(1),
            keep_alive,
            map: Mutex::new(HashMap::new()),
            start: Mutex::new(None),
        }
    }

    /// How a session's service loop is started once its handshake's loop is let go (see
    /// [`Session::new`]). Until this is set, and after [`BoundedSessions::close_all`], none
    /// is: a session that needs one then closes.
    pub fn set_start(&self, start: Start) {
        *self
            .start
            .lock()
            .expect("the MCP session table lock is never poisoned") = Some(start);
    }

    fn start(&self) -> Start {
        self.start
            .lock()
            .expect("the MCP session table lock is never poisoned")
            .clone()
            .unwrap_or_else(|| Arc::new(drop))
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Entry>> {
        self.map
            .lock()
            .expect("the MCP session table lock is never poisoned")
    }

    /// The session `id`, marked as used now.
    fn get(&self, id: &str) -> Result<Arc<Session>, BoundedError> {
        let mut map = self.map();
        let entry = map.get_mut(id).ok_or(BoundedError::NotFound)?;
        if entry.session.is_closed() {
            // Its service ended by itself.
            map.remove(id);
            return Err(BoundedError::NotFound);
        }
        entry.last_used = Instant::now();
        Ok(entry.session.clone())
    }

    /// Session `id`, marked as used now, if it is open.
    pub fn find(&self, id: &str) -> Option<Arc<Session>> {
        self.get(id).ok()
    }

    /// Whether session `id` is open, without marking it used (rmcp's `has_session`, asked on
    /// every request, does mark it).
    pub fn contains(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    /// Serve session `id`'s later tool calls on `calls` (see [`Session::attach`]), without
    /// marking it used.
    pub(crate) fn attach(&self, id: &str, calls: crate::mcp::call::SessionCalls) {
        let session = self.map().get(id).map(|e| e.session.clone());
        if let Some(session) = session {
            session.attach(calls);
        }
    }

    /// Close every session (at shutdown: calls still running on a session's handler are
    /// cancelled, as rmcp's service cancels its own, and every stream ends).
    pub fn close_all(&self) {
        // The start holds the server's state, which holds this table.
        self.start
            .lock()
            .expect("the MCP session table lock is never poisoned")
            .take();
        let all: Vec<Arc<Session>> = self.map().drain().map(|(_, e)| e.session).collect();
        for session in &all {
            session.close();
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

    /// Sessions with a service loop running now.
    pub fn running_loops(&self) -> usize {
        self.map().values().filter(|e| e.session.has_loop()).count()
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Close every session idle for longer than `idle` for which `keep` says no (it holds a
    /// pg_tx handle), and every session idle for longer than the keep-alive. Returns how many
    /// were closed.
    pub fn reap_idle(&self, idle: Duration, keep: impl Fn(&str) -> bool) -> usize {
        let stale: Vec<Arc<Session>> = {
            let mut map = self.map();
            let ids: Vec<SessionId> = map
                .iter()
                .filter(|(id, e)| {
                    let quiet = e.last_used.elapsed();
                    quiet > self.keep_alive || (quiet > idle && !keep(id))
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| map.remove(id))
                .map(|e| e.session)
                .collect()
        };
        for session in &stale {
            session.close();
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
                let n = me.reap_idle(idle, &keep);
                if n > 0 {
                    tracing::info!(closed = n, "closed idle MCP sessions");
                }
            }
        });
    }
}

/// A new session id: 122 random bits, written as a UUID (as rmcp wrote its own).
fn new_id() -> SessionId {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
    .into()
}

impl SessionManager for BoundedSessions {
    type Error = BoundedError;
    type Transport = SessionTransport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let mut map = self.map();
        if map.len() >= self.max {
            return Err(BoundedError::Full(self.max));
        }
        let id = new_id();
        let (session, transport) = Session::new(self.start());
        map.insert(
            id.clone(),
            Entry {
                session,
                last_used: Instant::now(),
            },
        );
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.get(id)?.initialize(message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.get(id).is_ok())
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let entry = {
            let mut map = self.map();
            match map.get(id) {
                // rmcp's worker, after the handshake's loop was let go.
                Some(e) if e.session.handshake_loop_ended() => None,
                _ => map.remove(id),
            }
        };
        if let Some(entry) = entry {
            entry.session.close();
        }
        Ok(())
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.get(id)?.request(message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.get(id)?.accept(message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.get(id)?.standalone()?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.get(id)?.resume(&last_event_id)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_v4_uuids() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        let s: &str = &a;
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert!(s.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    /// Real time passes (`reap_idle` reads `Instant`s): lower bounds only, so a slow machine
    /// cannot make these fail.
    async fn pause(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[tokio::test]
    async fn the_reaper_closes_what_holds_no_handle_and_anything_past_the_keep_alive() {
        let sessions = BoundedSessions::new(10, Duration::from_millis(200));
        let (held, _ta) = sessions.create_session().await.unwrap();
        let (free, _tb) = sessions.create_session().await.unwrap();
        pause(60).await;
        let n = sessions.reap_idle(Duration::from_millis(50), |id| id == &*held);
        assert_eq!(n, 1, "only the session without a handle goes");
        assert!(sessions.has_session(&held).await.unwrap());
        assert!(!sessions.has_session(&free).await.unwrap());
        // has_session marked it used; past the keep-alive from then on, a handle or not.
        pause(250).await;
        assert_eq!(sessions.reap_idle(Duration::from_millis(50), |_| true), 1);
        assert_eq!(sessions.len(), 0);
    }

    #[tokio::test]
    async fn asking_whether_a_session_exists_keeps_it_alive_only_through_rmcp() {
        let sessions = BoundedSessions::new(10, Duration::from_secs(60));
        let (id, _t) = sessions.create_session().await.unwrap();
        for _ in 0..3 {
            pause(30).await;
            assert!(sessions.contains(&id));
        }
        // 90 ms since its last request: `contains` (the owner registry's pruning) did not
        // count as use.
        assert_eq!(sessions.reap_idle(Duration::from_millis(80), |_| false), 1);
        assert!(!sessions.contains(&id));
    }

    #[tokio::test]
    async fn the_cap_refuses_the_next_session() {
        let sessions = BoundedSessions::new(1, Duration::from_secs(60));
        let (_id, _t) = sessions.create_session().await.unwrap();
        assert!(sessions.is_full());
        assert!(matches!(
            sessions.create_session().await,
            Err(BoundedError::Full(1))
        ));
    }
}
