//! Authentication on `/mcp`: optional bearer tokens (several, each named; the name is the
//! principal in the audit log), compared in constant time; optionally the Tailscale identity
//! header when `tailscale serve` is the only way in. `/health` and `/metrics` stay open.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Config;
use crate::http::caller::Principal;
use crate::state::AppState;

/// The configured credentials.
#[derive(Debug, Default)]
pub struct AuthConfig {
    tokens: Vec<(String, Vec<u8>)>,
    trust_tailscale: bool,
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
            tokens.push((name, token.as_bytes().to_vec()));
        }
        Ok(AuthConfig {
            tokens,
            trust_tailscale: cfg.trust_tailscale_headers,
        })
    }

    /// Whether bearer tokens are required.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The principal a presented token belongs to. Every configured token is compared, in
    /// constant time, whatever matches first: timing says nothing about which was close.
    fn principal_for(&self, presented: &[u8]) -> Option<&str> {
        let mut found = None;
        for (name, token) in &self.tokens {
            if constant_time_eq(token, presented) && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// Compare without an early exit: the time taken depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    diff == 0
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
        "authentication": {
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
        let principal = Principal(format!("tailscale:{login}"));
        req.extensions_mut().insert(principal);
        return next.run(req).await;
    }
    if !auth.enabled() {
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
        Some(name) => {
            let principal = Principal(name.to_owned());
            req.extensions_mut().insert(principal);
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
        assert_eq!(a.principal_for(b"aaaaaaaaaaaaaaaaaaaa"), Some("laptop"));
        assert_eq!(a.principal_for(b"bbbbbbbbbbbbbbbbbbbb"), Some("token-2"));
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
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
