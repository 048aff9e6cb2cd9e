//! Caller identity: a tower middleware that tags each request with who is calling, which the
//! session manager uses as the owner of `pg_tx` handles (contract §4): the MCP session when the
//! client has one (2025-11-25 clients), otherwise the authenticated principal, otherwise the
//! anonymous principal.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Who is calling; stored in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Owner key for session handles: `mcp:<id>`, `principal:<name>` or `anonymous`.
    pub owner: String,
    /// The MCP session id, when the client has one.
    pub mcp_session: Option<String>,
    /// The authenticated principal's name, when there is one.
    pub principal: Option<String>,
}

impl Caller {
    /// The caller of a request that carries no identity at all.
    pub fn anonymous() -> Caller {
        Caller {
            owner: "anonymous".into(),
            mcp_session: None,
            principal: None,
        }
    }
}

/// The authenticated principal, inserted by the auth layer (when tokens are configured).
#[derive(Debug, Clone)]
pub struct Principal(pub String);

/// Attach a [`Caller`] to the request.
pub async fn tag_caller(mut req: Request, next: Next) -> Response {
    let mcp_session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned);
    let principal = req.extensions().get::<Principal>().map(|p| p.0.clone());
    let owner = match (&mcp_session, &principal) {
        (Some(s), _) => format!("mcp:{s}"),
        (None, Some(p)) => format!("principal:{p}"),
        (None, None) => "anonymous".into(),
    };
    req.extensions_mut().insert(Caller {
        owner,
        mcp_session,
        principal,
    });
    next.run(req).await
}
