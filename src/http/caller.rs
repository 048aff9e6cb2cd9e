//! The caller-tagging middleware: tags each request with who is calling (a [`Caller`], defined
//! in [`crate::caller`]), which the session manager uses as the owner of `pg_tx` handles
//! (contract §8 "Sessions").
//!
//! The principal comes from authentication first (bearer token, or the Tailscale identity when
//! trusted). An `Mcp-Session-Id` header counts only for an MCP session that rmcp created and
//! that was initialized by the same principal: this layer remembers, from each `initialize`
//! response, which principal an MCP session belongs to, and a request that presents another
//! principal's MCP session id is answered exactly as one with an id that never existed (rmcp's
//! 404), DELETE included. Stateless (2026-07-28) calls ignore the header altogether; the MCP
//! handler knows which calls those are (see `mcp::ColdQueryServer`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::db::sessions::Sessions;

use crate::caller::{Caller, CallerRole, Principal};

const SESSION_HEADER: &str = "mcp-session-id";

/// What an unknown or foreign MCP session id is replaced with before rmcp sees it: session ids
/// are UUIDs (`mcp_sessions::new_id`), so this names no session, and rmcp answers as it does for
/// any unknown id.
const NO_SUCH_SESSION: &str = "coldquery-unknown-session";

/// Which principal initialized each live MCP session (`None`: unauthenticated).
pub struct McpOwners {
    bound: Mutex<HashMap<String, Option<String>>>,
    /// Size after the last pruning, so that pruning stays amortised O(1) per new session.
    pruned_at: Mutex<usize>,
    manager: Arc<crate::http::mcp_sessions::BoundedSessions>,
    sessions: Sessions,
}

impl McpOwners {
    /// A registry for the MCP sessions of `manager`; `sessions` is told when one is deleted.
    pub fn new(
        manager: Arc<crate::http::mcp_sessions::BoundedSessions>,
        sessions: Sessions,
    ) -> Arc<McpOwners> {
        Arc::new(McpOwners {
            bound: Mutex::new(HashMap::new()),
            pruned_at: Mutex::new(0),
            manager,
            sessions,
        })
    }

    /// Is `id` an MCP session this principal initialized?
    fn is_bound_to(&self, id: &str, principal: Option<&str>) -> bool {
        self.bound
            .lock()
            .expect("MCP owner lock")
            .get(id)
            .is_some_and(|p| p.as_deref() == principal)
    }

    fn forget(&self, id: &str) {
        self.bound.lock().expect("MCP owner lock").remove(id);
    }

    async fn bind(&self, id: String, principal: Option<String>) {
        let len = {
            let mut bound = self.bound.lock().expect("MCP owner lock");
            bound.insert(id, principal);
            bound.len()
        };
        // Sessions end on their own (idle expiry, the client's DELETE, a stopped service): now
        // and then, forget the ones the table no longer has. Done when the map has doubled
        // since the last pass. `contains` does not mark a session used, so this keeps none
        // alive.
        let due = {
            let mut at = self.pruned_at.lock().expect("MCP owner lock");
            if len > 2 * *at + 64 {
                *at = len;
                true
            } else {
                false
            }
        };
        if due {
            let ids: Vec<String> = self
                .bound
                .lock()
                .expect("MCP owner lock")
                .keys()
                .cloned()
                .collect();
            let gone: Vec<String> = ids
                .into_iter()
                .filter(|id| !self.manager.contains(id))
                .collect();
            let mut bound = self.bound.lock().expect("MCP owner lock");
            for id in gone {
                bound.remove(&id);
            }
            *self.pruned_at.lock().expect("MCP owner lock") = bound.len();
        }
    }
}

/// Attach a [`Caller`] to the request, and keep MCP sessions to the principal that made them.
pub async fn tag_caller(
    State(owners): State<Arc<McpOwners>>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = req.extensions().get::<Principal>().map(|p| p.0.clone());
    let role = req
        .extensions()
        .get::<CallerRole>()
        .and_then(|r| r.0.clone());
    let presented = req
        .headers()
        .get(SESSION_HEADER)
        .map(|v| v.to_str().ok().unwrap_or_default().to_owned());
    let mcp_session = match &presented {
        Some(id) if owners.is_bound_to(id, principal.as_deref()) => Some(id.clone()),
        Some(_) => {
            // Unknown, or another principal's: rmcp must treat it as a session that does not
            // exist, whatever the id is.
            req.headers_mut()
                .insert(SESSION_HEADER, HeaderValue::from_static(NO_SUCH_SESSION));
            None
        }
        None => None,
    };
    let method = req.method().clone();
    req.extensions_mut()
        .insert(Caller::new(principal.clone(), mcp_session.clone()).with_role(role));
    let mut res = next.run(req).await;

    match (&method, &presented, &mcp_session) {
        // An initialize that rmcp answered with a new MCP session: it is this principal's.
        (&Method::POST, None, _) => {
            if let Some(id) = res
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                owners.bind(id.to_owned(), principal).await;
            }
        }
        (&Method::DELETE, Some(_), Some(id)) if res.status().is_success() => {
            owners.forget(id);
            // The client said it is done: the handles this MCP session opened end with it,
            // whoever owns them (contract §8).
            owners.sessions.close_created_in(id).await;
        }
        // rmcp answers DELETE of an unknown id with success; the MCP spec says 404 for an
        // unknown session, and a foreign one must look the same as an unknown one.
        (&Method::DELETE, Some(_), None) if res.status().is_success() => {
            *res.status_mut() = StatusCode::NOT_FOUND;
        }
        _ => {}
    }
    res
}
