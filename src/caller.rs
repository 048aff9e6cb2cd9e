//! Who is calling: the [`Caller`] every tool call carries (owner key, MCP session, principal,
//! role), the authenticated [`Principal`], and the one-way [`digest`] of handles and MCP session
//! ids. The database layer keys sessions, cursors and audit rows by these, so they live below
//! both `http` (whose middleware builds them, see `http::caller`) and `db`.

use sha2::{Digest, Sha256};

use crate::db::roles::Role;

/// Who is calling; stored in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Owner key for session handles: `principal:<name>` when authenticated, otherwise
    /// `mcp:<id>` for a call in an MCP session, otherwise `anonymous`.
    pub owner: String,
    /// The MCP session id, only when it is an MCP session rmcp created for this principal and
    /// the call came through it (never on stateless calls).
    pub mcp_session: Option<String>,
    /// The authenticated principal's name, when there is one.
    pub principal: Option<String>,
    /// The PostgreSQL role this caller's statements run as: its token's (or Tailscale
    /// login's) role, else `COLDQUERY_DEFAULT_ROLE`; `None` runs as the login role.
    pub role: Option<Role>,
}

impl Caller {
    /// The caller of `principal` (authenticated, if any) in MCP session `mcp_session` (if any).
    pub fn new(principal: Option<String>, mcp_session: Option<String>) -> Caller {
        let owner = match (&principal, &mcp_session) {
            (Some(p), _) => format!("principal:{p}"),
            (None, Some(s)) => format!("mcp:{s}"),
            (None, None) => "anonymous".into(),
        };
        Caller {
            owner,
            mcp_session,
            principal,
            role: None,
        }
    }

    /// The same caller, running as `role` (`None`: the login role).
    pub fn with_role(mut self, role: Option<Role>) -> Caller {
        self.role = role;
        self
    }

    /// The role its statements run as, for the database layer.
    pub fn role(&self) -> Option<&Role> {
        self.role.as_ref()
    }

    /// The caller of a request that carries no identity at all.
    pub fn anonymous() -> Caller {
        Caller::new(None, None)
    }

    /// The same caller on a stateless call: any `Mcp-Session-Id` it sent is ignored.
    pub fn stateless(self) -> Caller {
        Caller::new(self.principal, None).with_role(self.role)
    }
}

/// The authenticated principal, inserted by the auth layer (when tokens are configured).
#[derive(Debug, Clone)]
pub struct Principal(pub String);

/// The role a request's statements run as (the principal's, else the default role), inserted
/// by the auth layer on every `/mcp` request.
#[derive(Debug, Clone)]
pub struct CallerRole(pub Option<Role>);

/// A short, one-way digest of a handle or MCP session id (SHA-256, first 16 hex digits): what
/// the audit log and the logs carry instead of the id, so that reading them never hands anyone
/// a usable id, while the operator can still match rows and log lines to one session.
pub fn digest(id: &str) -> String {
    let hash = Sha256::digest(id.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_the_principal_first_then_the_mcp_session_then_anonymous() {
        let c = Caller::new(Some("alice".into()), Some("s1".into()));
        assert_eq!(c.owner, "principal:alice");
        assert_eq!(c.clone().stateless().owner, "principal:alice");
        assert_eq!(c.stateless().mcp_session, None);
        let c = Caller::new(None, Some("s1".into()));
        assert_eq!(c.owner, "mcp:s1");
        assert_eq!(c.stateless().owner, "anonymous");
        assert_eq!(Caller::anonymous().owner, "anonymous");
    }

    #[test]
    fn a_stateless_call_keeps_its_role() {
        let alice = Role::parse("r", "alice").unwrap();
        let c = Caller::new(Some("a".into()), Some("s1".into())).with_role(Some(alice.clone()));
        assert_eq!(c.clone().stateless().role(), Some(&alice));
        assert_eq!(Caller::anonymous().role(), None);
    }

    #[test]
    fn digests_are_short_stable_and_hide_the_id() {
        let d = digest("tx_00112233445566778899aabbccddeeff");
        assert_eq!(d.len(), 16);
        assert!(d.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(d, digest("tx_00112233445566778899aabbccddeeff"));
        assert_ne!(d, digest("tx_00112233445566778899aabbccddeefe"));
        // SHA-256("abc") starts ba7816bf8f01cfea.
        assert_eq!(digest("abc"), "ba7816bf8f01cfea");
    }
}
