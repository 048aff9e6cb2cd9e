//! Authentication on `/mcp`: optional bearer tokens (several, each named; the name is the
//! principal in the audit log), compared in constant time; optionally the Tailscale identity
//! header when `tailscale serve` is the only way in. `/health` and `/metrics` stay open.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::caller::{CallerRole, Principal};
use crate::config::Config;
use crate::db::roles::Role;
use crate::state::AppState;

/// The configured credentials, and the role each caller runs as.
#[derive(Debug, Default)]
pub struct AuthConfig {
    /// Principal name, token, and the token's role (`name=token@role`).
    tokens: Vec<(String, Vec<u8>, Option<Role>)>,
    trust_tailscale: bool,
    /// `COLDQUERY_TAILSCALE_ROLES`: Tailscale login → role.
    tailscale_roles: HashMap<String, Role>,
    /// `COLDQUERY_DEFAULT_ROLE`: the role of callers without one of their own.
    default_role: Option<Role>,
}

impl AuthConfig {
    /// Read tokens from `COLDQUERY_AUTH_TOKENS` and `COLDQUERY_AUTH_TOKENS_FILE`.
    pub fn from_config(cfg: &Config) -> Result<AuthConfig, String> {
        let mut entries: Vec<String> = Vec::new();
        if let Some(list) = &cfg.auth_tokens {
            entries.extend(list.expose().split(',').map(str::to_owned));
        }
        if let Some(path) = &cfg.auth_tokens_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "COLDQUERY_AUTH_TOKENS_FILE {}: cannot read it: {e}",
                    path.display()
                )
            })?;
            entries.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        let mut tokens = Vec::new();
        for (i, raw) in entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (name, token) = match raw.split_once('=') {
                Some((n, t)) => (n.trim().to_owned(), t.trim()),
                None => (format!("token-{}", i + 1), raw),
            };
            // `token@role`: the last `@` starts the role (a role name has no `@`).
            let (token, role) = match token.rsplit_once('@') {
                Some((t, r)) => (
                    t.trim(),
                    Some(Role::parse(
                        &format!("COLDQUERY_AUTH_TOKENS entry {name} (name=token@role)"),
                        r.trim(),
                    )?),
                ),
                None => (token, None),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
            {
                return Err(format!(
                    "COLDQUERY_AUTH_TOKENS entry {}: the name must be letters, digits, - _ . or @ \
                     (e.g. laptop=3f9c…)",
                    i + 1
                ));
            }
            if token.len() < 16 {
                return Err(format!(
                    "COLDQUERY_AUTH_TOKENS entry {name}: tokens must be at least 16 characters; \
                     generate one with `openssl rand -hex 32`"
                ));
            }
            tokens.push((name, token.as_bytes().to_vec(), role));
        }
        let mut tailscale_roles = HashMap::new();
        for entry in cfg
            .tailscale_roles
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let Some((login, role)) = entry.rsplit_once('=') else {
                return Err(format!(
                    "COLDQUERY_TAILSCALE_ROLES entry {entry:?}: expected login=role, e.g.                      alice@example.com=app_reader"
                ));
            };
            let role = Role::parse(
                &format!("COLDQUERY_TAILSCALE_ROLES entry {}", login.trim()),
                role.trim(),
            )?;
            tailscale_roles.insert(login.trim().to_owned(), role);
        }
        let default_role = match cfg.default_role.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => Some(Role::parse("COLDQUERY_DEFAULT_ROLE", r)?),
            _ => None,
        };
        Ok(AuthConfig {
            tokens,
            trust_tailscale: cfg.trust_tailscale_headers,
            tailscale_roles,
            default_role,
        })
    }

    /// Every role a caller may run as, with who gets it (a token's name, a Tailscale login,
    /// or `COLDQUERY_DEFAULT_ROLE`), for `coldquery check`.
    pub fn mapped_roles(&self) -> Vec<(String, Role)> {
        let mut out: Vec<(String, Role)> = self
            .tokens
            .iter()
            .filter_map(|(name, _, role)| Some((format!("token {name}"), role.clone()?)))
            .collect();
        let mut tailscale: Vec<_> = self.tailscale_roles.iter().collect();
        tailscale.sort();
        out.extend(
            tailscale
                .into_iter()
                .map(|(login, role)| (format!("tailscale {login}"), role.clone())),
        );
        if let Some(r) = &self.default_role {
            out.push(("COLDQUERY_DEFAULT_ROLE".into(), r.clone()));
        }
        out
    }

    /// The role of a caller whose own mapping gave `own` (`None`: none): its own, else the
    /// default role, else none (the login role).
    fn role_of(&self, own: Option<&Role>) -> Option<Role> {
        own.or(self.default_role.as_ref()).cloned()
    }

    /// Whether bearer tokens are required.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The principal a presented token belongs to. Every configured token is compared, in
    /// constant time, whatever matches first: timing says nothing about which was close.
    fn principal_for(&self, presented: &[u8]) -> Option<(&str, Option<&Role>)> {
        let mut found = None;
        for (name, token, role) in &self.tokens {
            if constant_time_eq(token, presented) && found.is_none() {
                found = Some((name.as_str(), role.as_ref()));
            }
        }
        found
    }
}

/// Compare in constant time with `subtle` (a well-kept crate already in the tree through
/// `hmac`), over SHA-256 digests of both sides: `subtle` returns early when lengths differ, and
/// comparing fixed-size digests keeps a token's length out of the timing too.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// What a client must do, for the 401 challenge and the OAuth discovery answers.
const HOW_TO_AUTHENTICATE: &str = "this server takes a static bearer token, not OAuth: send the \
header Authorization: Bearer <token> with a token from the server's COLDQUERY_AUTH_TOKENS (e.g. \
claude mcp add --transport http coldquery <url> --header \"Authorization: Bearer <token>\")";

fn unauthorized(message: &str, invalid: bool) -> Response {
    // RFC 6750 §3: the challenge names the scheme, and error_description says what to do, so a
    // client that shows only the header still tells its user which header to send. No
    // resource_metadata parameter: there is no OAuth authorization server to discover.
    let challenge = format!(
        "Bearer realm=\"coldquery\"{}, error_description=\"{message}; send the header \
         Authorization: Bearer <token>\"",
        if invalid {
            ", error=\"invalid_token\""
        } else {
            ""
        }
    );
    let body = serde_json::json!({
        "error": "unauthorized",
        "message": message,
        "how_to_authenticate": HOW_TO_AUTHENTICATE,
    })
    .to_string();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).expect("the challenge is built from ASCII constants"),
    );
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The answer to OAuth discovery (`/.well-known/oauth-protected-resource`,
/// `/.well-known/oauth-authorization-server`, `/.well-known/openid-configuration`, their
/// path-suffixed forms) and to the OAuth endpoints clients fall back to (`/register`,
/// `/authorize`, `/token`). Clients that support OAuth probe these after a 401; an empty 404
/// made them report "Failed to connect" or "Dynamic Client Registration rejected" instead of
/// the real reason. The status stays 404 (a 200 would be parsed as metadata and start an OAuth
/// flow that cannot succeed), and the body is an OAuth error object whose
/// `error_description` the SDKs surface to the user.
pub async fn oauth_discovery(State(state): State<AppState>) -> Response {
    let tokens = if state.auth.enabled() {
        "bearer tokens are required on /mcp"
    } else {
        "no token is configured, so /mcp needs none"
    };
    let body = serde_json::json!({
        "error": "invalid_request",
        "error_description": format!("{HOW_TO_AUTHENTICATE}; {tokens}"),
        "oauth": false,
        // Named so that it sorts after error_description (serde_json orders keys): clients
        // that show only the first few hundred bytes of the body (Claude Code) show the hint.
        "token_auth": {
            "scheme": "Bearer",
            "header": "Authorization: Bearer <token>",
            "tokens": "static, configured on the server (COLDQUERY_AUTH_TOKENS or COLDQUERY_AUTH_TOKENS_FILE)",
            "required": state.auth.enabled(),
        },
    })
    .to_string();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The `/mcp` authentication layer: sets [`Principal`] or answers 401.
pub async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth = &state.auth;
    if auth.trust_tailscale
        && let Some(login) = req
            .headers()
            .get("tailscale-user-login")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 256)
    {
        let role = auth.role_of(auth.tailscale_roles.get(login));
        let principal = Principal(format!("tailscale:{login}"));
        req.extensions_mut().insert(principal);
        req.extensions_mut().insert(CallerRole(role));
        return next.run(req).await;
    }
    if !auth.enabled() {
        req.extensions_mut().insert(CallerRole(auth.role_of(None)));
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().as_bytes().to_vec());
    let Some(presented) = presented else {
        return unauthorized("this server requires a bearer token", false);
    };
    match auth.principal_for(&presented) {
        Some((name, role)) => {
            let role = auth.role_of(role);
            let principal = Principal(name.to_owned());
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(CallerRole(role));
            next.run(req).await
        }
        None => {
            tracing::warn!("rejected a request with a wrong bearer token");
            unauthorized("the bearer token is not valid for this server", true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tokens: &str) -> Config {
        let mut c = Config::with_database_url("postgres://x@127.0.0.1/x");
        c.auth_tokens = Some(tokens.into());
        c
    }

    #[test]
    fn named_and_bare_tokens_map_to_principals() {
        let a = AuthConfig::from_config(&cfg("laptop=aaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbb"))
            .unwrap();
        assert!(a.enabled());
        assert_eq!(
            a.principal_for(b"aaaaaaaaaaaaaaaaaaaa"),
            Some(("laptop", None))
        );
        assert_eq!(
            a.principal_for(b"bbbbbbbbbbbbbbbbbbbb"),
            Some(("token-2", None))
        );
        assert_eq!(a.principal_for(b"aaaaaaaaaaaaaaaaaaab"), None);
        assert_eq!(a.principal_for(b""), None);
        assert_eq!(a.principal_for(b"aaaaaaaaaaaaaaaaaaaaa"), None);
    }

    #[test]
    fn weak_or_badly_named_tokens_stop_start_up() {
        assert!(
            AuthConfig::from_config(&cfg("short"))
                .unwrap_err()
                .contains("16 characters")
        );
        assert!(
            AuthConfig::from_config(&cfg("a b=cccccccccccccccccccc"))
                .unwrap_err()
                .contains("name")
        );
        let none = AuthConfig::from_config(&Config::with_database_url("postgres://x@h/x")).unwrap();
        assert!(!none.enabled());
    }

    #[test]
    fn a_token_may_name_its_role_and_the_default_role_covers_the_rest() {
        let mut c = cfg("alice=aaaaaaaaaaaaaaaaaaaa@app_alice,plain=bbbbbbbbbbbbbbbbbbbb");
        c.default_role = Some("app_default".into());
        c.tailscale_roles = Some("ann@example.com=app_ann, bo@example.com = app_bo".into());
        let a = AuthConfig::from_config(&c).unwrap();
        let alice = Role::parse("r", "app_alice").unwrap();
        // The role is not part of the token: the token alone authenticates.
        assert_eq!(
            a.principal_for(b"aaaaaaaaaaaaaaaaaaaa"),
            Some(("alice", Some(&alice)))
        );
        assert_eq!(a.principal_for(b"aaaaaaaaaaaaaaaaaaaa@app_alice"), None);
        let (_, own) = a.principal_for(b"bbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(own, None);
        assert_eq!(a.role_of(own).unwrap().name(), "app_default");
        assert_eq!(a.role_of(Some(&alice)).unwrap().name(), "app_alice");
        assert_eq!(
            a.role_of(a.tailscale_roles.get("bo@example.com"))
                .unwrap()
                .name(),
            "app_bo"
        );
        let mapped: Vec<String> = a
            .mapped_roles()
            .iter()
            .map(|(who, r)| format!("{who}:{}", r.name()))
            .collect();
        assert_eq!(
            mapped,
            [
                "token alice:app_alice",
                "tailscale ann@example.com:app_ann",
                "tailscale bo@example.com:app_bo",
                "COLDQUERY_DEFAULT_ROLE:app_default"
            ]
        );
        // Without a default, a caller without a role runs as the login role.
        let none = AuthConfig::from_config(&cfg("x=aaaaaaaaaaaaaaaaaaaa")).unwrap();
        assert_eq!(none.role_of(None), None);
    }

    #[test]
    fn bad_role_names_stop_start_up_naming_the_setting() {
        let e = AuthConfig::from_config(&cfg("alice=aaaaaaaaaaaaaaaaaaaa@bad;role")).unwrap_err();
        assert!(e.contains("COLDQUERY_AUTH_TOKENS entry alice"), "{e}");
        assert!(e.contains("not a valid role name"), "{e}");
        let e = AuthConfig::from_config(&cfg("alice=aaaaaaaaaaaaaaaaaaaa@")).unwrap_err();
        assert!(e.contains("not a valid role name"), "{e}");
        // The token before the role is still held to the length rule.
        let e = AuthConfig::from_config(&cfg("alice=short@app_alice")).unwrap_err();
        assert!(e.contains("16 characters"), "{e}");
        let mut c = Config::with_database_url("postgres://x@h/x");
        c.default_role = Some("a b".into());
        let e = AuthConfig::from_config(&c).unwrap_err();
        assert!(e.starts_with("COLDQUERY_DEFAULT_ROLE"), "{e}");
        let mut c = Config::with_database_url("postgres://x@h/x");
        c.tailscale_roles = Some("ann@example.com".into());
        let e = AuthConfig::from_config(&c).unwrap_err();
        assert!(e.contains("expected login=role"), "{e}");
        // An empty COLDQUERY_DEFAULT_ROLE (a blank line in .env) means unset.
        let mut c = Config::with_database_url("postgres://x@h/x");
        c.default_role = Some(" ".into());
        assert!(
            AuthConfig::from_config(&c)
                .unwrap()
                .mapped_roles()
                .is_empty()
        );
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
