//! Caller roles (contract §8 "Caller roles"): the PostgreSQL role a caller's statements run as,
//! and the one piece of SQL that puts a connection's transaction under it.
//!
//! Every transaction ColdQuery opens for a caller (pooled reads and writes, `pg_schema`,
//! `pg_monitor`, resources, `pg_tx` sessions, continuation cursors) starts with
//! [`set_local_sql`] in the same simple-query message as its `BEGIN`. `SET LOCAL` ends with the
//! transaction, so a pooled connection goes back to the pool as the login role whatever
//! happened; statements that would leave the role (`SET ROLE`, `RESET ROLE`, `SET SESSION
//! AUTHORIZATION`, `set_config('role', …)`) are refused by the classifier. The one form that
//! runs outside a transaction (`VACUUM`, `REINDEX … CONCURRENTLY`: `AutocommitConn`) uses
//! [`set_session_sql`] and `RESET ROLE` before the connection is returned.

use std::fmt;

use crate::safety::ident::{is_plain_name, quote_ident};

/// A validated PostgreSQL role name; `Display` writes it double-quoted, ready for SQL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(String);

impl Role {
    /// Validate `raw` (from the operator's configuration) as a role name: a letter or `_`,
    /// then letters, digits, `_`, `$` or `-`, at most 63 bytes. Case is kept (the name is
    /// quoted), so `Reader` is the role `"Reader"`, not `reader`. `what` names the setting.
    pub fn parse(what: &str, raw: &str) -> Result<Role, String> {
        if !is_plain_name(raw, &['-']) {
            let shown: String = raw.chars().take(40).collect();
            return Err(format!(
                "{what}: {shown:?} is not a valid role name: use letters, digits, _ $ or - \
                 (starting with a letter or _), at most 63 bytes, e.g. app_reader"
            ));
        }
        Ok(Role(raw.to_owned()))
    }

    /// The name as configured (and as `current_user` shows it).
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Validation admits no double quote; quoting keeps this correct on its own.
        f.write_str(&quote_ident(&self.0))
    }
}

/// `; SET LOCAL ROLE "r"` for a caller with a role, empty for one without: appended to the
/// set-up statements that follow a `BEGIN`, so that it costs no round trip of its own.
pub(crate) fn set_local_sql(role: Option<&Role>) -> String {
    match role {
        Some(r) => format!("; SET LOCAL ROLE {r}"),
        None => String::new(),
    }
}

/// `; SET ROLE "r"` (session level) for the connections used outside a transaction block;
/// their release path runs `RESET ROLE` before they go back to the pool.
pub(crate) fn set_session_sql(role: Option<&Role>) -> String {
    match role {
        Some(r) => format!("; SET ROLE {r}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_validated_and_quoted() {
        for (raw, quoted) in [
            ("app_reader", "\"app_reader\""),
            ("Reader", "\"Reader\""),
            ("ro-analytics", "\"ro-analytics\""),
            ("_x$1", "\"_x$1\""),
        ] {
            assert_eq!(Role::parse("r", raw).unwrap().to_string(), quoted);
        }
        let long = "r".repeat(64);
        for bad in [
            "",
            "1abc",
            "a b",
            "a\"b",
            "a;RESET ROLE",
            "a.b",
            "-x",
            long.as_str(),
        ] {
            let e = Role::parse("COLDQUERY_DEFAULT_ROLE", bad).unwrap_err();
            assert!(e.starts_with("COLDQUERY_DEFAULT_ROLE"), "{bad}: {e}");
            assert!(e.contains("e.g. app_reader"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_set_up_sql_is_empty_without_a_role() {
        let r = Role::parse("r", "alice").unwrap();
        assert_eq!(set_local_sql(Some(&r)), "; SET LOCAL ROLE \"alice\"");
        assert_eq!(set_local_sql(None), "");
        assert_eq!(set_session_sql(Some(&r)), "; SET ROLE \"alice\"");
        assert_eq!(set_session_sql(None), "");
    }
}
