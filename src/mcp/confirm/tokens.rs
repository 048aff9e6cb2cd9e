//! Confirm tokens: HMAC-SHA256 over the caller, the tool and the call's canonical arguments,
//! with a random nonce and an expiry, redeemable once (see the parent module's header).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::caller::Caller;

pub(super) type HmacSha256 = Hmac<Sha256>;

/// How long a confirm token is valid.
pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(600);
/// Most tokens outstanding at once: a caller looping on destructive calls cannot grow the map
/// without bound; past it, the tokens closest to expiry are forgotten first.
const MAX_TOKENS: usize = 10_000;
pub(super) const NONCE: usize = 16;
pub(super) const MAC: usize = 32;
pub(super) const PREFIX: &str = "cq_confirm_";

/// Issued, not yet used confirm tokens.
pub struct Confirmations {
    key: [u8; 32],
    /// Nonce → expiry (seconds since the epoch).
    issued: Mutex<HashMap<[u8; NONCE], u64>>,
}

impl std::fmt::Debug for Confirmations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Confirmations(***)")
    }
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Confirmations {
    /// A store with a fresh random key.
    pub fn new() -> Confirmations {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source works");
        Confirmations {
            key,
            issued: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, nonce: &[u8], expires: u64, binding: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(nonce);
        mac.update(&expires.to_be_bytes());
        mac.update(binding);
        mac
    }

    /// A token approving the call described by `binding` once, for [`TOKEN_TTL`].
    pub(crate) fn issue(&self, binding: &[u8]) -> String {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).expect("the operating system's random source works");
        let now = now_secs();
        let expires = now + TOKEN_TTL.as_secs();
        let tag = self.mac(&nonce, expires, binding).finalize().into_bytes();
        {
            let mut issued = self.issued.lock().expect("confirmations lock");
            if issued.len() >= MAX_TOKENS {
                issued.retain(|_, e| *e > now);
            }
            while issued.len() >= MAX_TOKENS {
                let oldest = issued
                    .iter()
                    .min_by_key(|(_, e)| **e)
                    .map(|(n, _)| *n)
                    .expect("the map is not empty");
                issued.remove(&oldest);
            }
            issued.insert(nonce, expires);
        }
        let mut raw = Vec::with_capacity(NONCE + 8 + MAC);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&expires.to_be_bytes());
        raw.extend_from_slice(&tag);
        format!("{PREFIX}{}", hex(&raw))
    }

    /// Whether `token` approves the call described by `binding`; a valid token is used up.
    pub(crate) fn redeem(&self, token: &str, binding: &[u8]) -> bool {
        let Some(raw) = token.strip_prefix(PREFIX).and_then(unhex) else {
            return false;
        };
        if raw.len() != NONCE + 8 + MAC {
            return false;
        }
        let (nonce, rest) = raw.split_at(NONCE);
        let (expires, tag) = rest.split_at(8);
        let expires = u64::from_be_bytes(expires.try_into().expect("8 bytes"));
        // Constant-time comparison of the tag.
        if self.mac(nonce, expires, binding).verify_slice(tag).is_err() {
            return false;
        }
        if expires <= now_secs() {
            return false;
        }
        let nonce: [u8; NONCE] = nonce.try_into().expect("NONCE bytes");
        self.issued
            .lock()
            .expect("confirmations lock")
            .remove(&nonce)
            .is_some()
    }
}

impl Default for Confirmations {
    fn default() -> Self {
        Confirmations::new()
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * (NONCE + 8 + MAC) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a token is bound to: the caller, the tool and the call's arguments in canonical JSON
/// (keys sorted at every level), `confirm` left out. Each part is length-prefixed, so no two
/// different calls give the same bytes.
pub(crate) fn binding(caller: &Caller, tool: &str, args: &Value) -> Vec<u8> {
    let mut args = args.clone();
    if let Value::Object(o) = &mut args {
        o.remove("confirm");
    }
    let mut json = String::new();
    canonical(&args, &mut json);
    let mut out = Vec::new();
    for part in [caller.owner.as_bytes(), tool.as_bytes(), json.as_bytes()] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&o[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caller(owner: &str) -> Caller {
        let mut c = Caller::anonymous();
        c.owner = owner.into();
        c
    }
    #[test]
    fn a_token_approves_its_own_call_once() {
        let store = Confirmations::new();
        let me = caller("principal:alice");
        let call = json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true});
        let bound = binding(&me, "pg_query", &call);
        let token = store.issue(&bound);
        assert!(store.redeem(&token, &bound));
        assert!(!store.redeem(&token, &bound), "a token works once");
    }

    #[test]
    fn a_token_does_not_approve_another_call() {
        let store = Confirmations::new();
        let me = caller("principal:alice");
        let a = json!({"action": "write", "sql": "DELETE FROM a", "autocommit": true});
        let token = store.issue(&binding(&me, "pg_query", &a));
        for other in [
            json!({"action": "write", "sql": "DELETE FROM b", "autocommit": true}),
            json!({"action": "write", "sql": "DELETE FROM a", "params": [1], "autocommit": true}),
            json!({"action": "write", "sql": "DELETE FROM a ", "autocommit": true}),
        ] {
            assert!(!store.redeem(&token, &binding(&me, "pg_query", &other)));
        }
        assert!(!store.redeem(&token, &binding(&me, "pg_schema", &a)));
        assert!(!store.redeem(&token, &binding(&caller("principal:bob"), "pg_query", &a)));
        // Failed attempts do not use it up.
        assert!(store.redeem(&token, &binding(&me, "pg_query", &a)));
    }

    #[test]
    fn the_binding_ignores_key_order_and_the_confirm_argument() {
        let me = caller("anonymous");
        let a = json!({"action": "write", "sql": "DELETE FROM t", "autocommit": true});
        let b =
            json!({"autocommit": true, "confirm": "x", "sql": "DELETE FROM t", "action": "write"});
        assert_eq!(binding(&me, "pg_query", &a), binding(&me, "pg_query", &b));
    }

    #[test]
    fn forged_expired_and_garbled_tokens_are_refused() {
        let store = Confirmations::new();
        let bound = binding(&caller("anonymous"), "pg_query", &json!({}));
        let token = store.issue(&bound);
        let other = Confirmations::new();
        assert!(!other.redeem(&token, &bound), "another key");
        for bad in [
            "",
            "cq_confirm_",
            "cq_confirm_zz",
            "nonsense",
            &token[..token.len() - 2],
        ] {
            assert!(!store.redeem(bad, &bound), "{bad}");
        }
        // An expired token with a valid MAC.
        let nonce = [7u8; NONCE];
        let expires = now_secs() - 1;
        let tag = store.mac(&nonce, expires, &bound).finalize().into_bytes();
        store.issued.lock().unwrap().insert(nonce, expires);
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&expires.to_be_bytes());
        raw.extend_from_slice(&tag);
        assert!(!store.redeem(&format!("{PREFIX}{}", hex(&raw)), &bound));
    }

    #[test]
    fn the_store_stays_bounded() {
        let store = Confirmations::new();
        let bound = binding(&caller("anonymous"), "pg_query", &json!({}));
        for _ in 0..MAX_TOKENS + 5 {
            store.issue(&bound);
        }
        assert!(store.issued.lock().unwrap().len() <= MAX_TOKENS);
    }
}
