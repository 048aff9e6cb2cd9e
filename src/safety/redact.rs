//! Redaction for logs: secret literals (passwords, connection strings with a password) in SQL
//! text are replaced by `'***'` before the text is written anywhere.

use pg_query::protobuf as pb;

use super::parse::scan;

/// The text that replaces a secret literal.
const REDACTED: &str = "'***'";

/// Returns `sql` with secret literals replaced by `'***'`, for logs.
///
/// Covers `PASSWORD 'x'` / `ENCRYPTED PASSWORD 'x'` (CREATE/ALTER ROLE), `password 'x'` in
/// OPTIONS lists (user mappings, servers), and `CONNECTION '…password=…'` strings
/// (subscriptions). Works on any text, even text that does not parse: the tokens come from
/// PostgreSQL's scanner, and if even scanning fails everything after the first
/// password/connection keyword is redacted.
pub(crate) fn redact(sql: &str) -> String {
    let Some(tokens) = scan(sql) else {
        return redact_unscannable(sql);
    };
    let tokens: Vec<(pb::Token, usize, usize)> = tokens
        .iter()
        .filter_map(|t| {
            let kind = pb::Token::try_from(t.token).ok()?;
            let start = usize::try_from(t.start).ok()?;
            let end = usize::try_from(t.end).ok()?;
            (!matches!(kind, pb::Token::SqlComment | pb::Token::CComment))
                .then_some((kind, start, end))
        })
        .collect();

    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, &(kind, start, end)) in tokens.iter().enumerate() {
        let text = sql.get(start..end).unwrap_or_default();
        let is_password = kind == pb::Token::Password
            || (kind == pb::Token::Ident
                && text.trim_matches('"').eq_ignore_ascii_case("password"));
        let is_connection = kind == pb::Token::Connection;
        // Any string literal that carries a libpq connection string with a password
        // (dblink_connect('host=… password=…'), a server's OPTIONS, a URI with user:pass@),
        // wherever it stands in the statement.
        if matches!(kind, pb::Token::Sconst | pb::Token::Usconst) && has_conninfo_secret(text) {
            ranges.push((start, end));
            continue;
        }
        if !is_password && !is_connection {
            continue;
        }
        let Some(&(next_kind, lit_start, mut lit_end)) = tokens.get(i + 1) else {
            continue;
        };
        if !matches!(next_kind, pb::Token::Sconst | pb::Token::Usconst) {
            continue;
        }
        let literal = sql.get(lit_start..lit_end).unwrap_or_default();
        if is_connection && !literal.to_ascii_lowercase().contains("password") {
            continue;
        }
        // U&'…' UESCAPE '!' is one literal spread over three tokens.
        if next_kind == pb::Token::Usconst
            && let (Some(&(pb::Token::Uescape, _, _)), Some(&(pb::Token::Sconst, _, esc_end))) =
                (tokens.get(i + 2), tokens.get(i + 3))
        {
            lit_end = esc_end;
        }
        ranges.push((lit_start, lit_end));
    }

    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (start, end) in ranges {
        if start < copied {
            continue;
        }
        out.push_str(sql.get(copied..start).unwrap_or_default());
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(sql.get(copied..).unwrap_or_default());
    out
}

/// Whether a literal's text holds a libpq `password=` keyword (spaces allowed around `=`) or a
/// URI whose user info has a password (`postgres://user:secret@host`).
fn has_conninfo_secret(literal: &str) -> bool {
    let lower = literal.to_ascii_lowercase();
    let keyword = lower.match_indices("password").any(|(at, kw)| {
        lower[at + kw.len()..]
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('=')
    });
    let uri = lower.match_indices("://").any(|(at, sep)| {
        let rest = &literal[at + sep.len()..];
        let authority = rest.split(['/', '?', '#', ' ', '\'']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    });
    keyword || uri
}

/// Fallback for text the scanner rejects (e.g. an unterminated quote): keep everything up
/// to and including the first `password`/`connection` keyword and redact the rest.
fn redact_unscannable(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    let cut = ["password", "connection"]
        .iter()
        .filter_map(|kw| lower.find(kw).map(|at| at + kw.len()))
        .min();
    match cut.and_then(|at| sql.get(..at)) {
        Some(head) => format!("{head} {REDACTED}"),
        None => sql.to_string(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    // -----------------------------------------------------------------------------------
    // Redaction
    // -----------------------------------------------------------------------------------

    pub(crate) const REDACT_CASES: &[(&str, &str)] = &[
        (
            "CREATE ROLE r LOGIN PASSWORD 'secret'",
            "CREATE ROLE r LOGIN PASSWORD '***'",
        ),
        (
            "ALTER ROLE r WITH ENCRYPTED PASSWORD 'se''cret' VALID UNTIL 'infinity'",
            "ALTER ROLE r WITH ENCRYPTED PASSWORD '***' VALID UNTIL 'infinity'",
        ),
        ("alter user r password 'x'", "alter user r password '***'"),
        (
            "CREATE ROLE r PASSWORD /* c */ 'x'",
            "CREATE ROLE r PASSWORD /* c */ '***'",
        ),
        (
            "CREATE ROLE r PASSWORD E'x\\'y'",
            "CREATE ROLE r PASSWORD '***'",
        ),
        (
            "CREATE ROLE r PASSWORD $$x$$",
            "CREATE ROLE r PASSWORD '***'",
        ),
        (
            "CREATE ROLE r PASSWORD U&'!0061' UESCAPE '!' LOGIN",
            "CREATE ROLE r PASSWORD '***' LOGIN",
        ),
        ("CREATE ROLE r PASSWORD NULL", "CREATE ROLE r PASSWORD NULL"),
        ("SELECT 'password' AS x", "SELECT 'password' AS x"),
        ("SELECT password FROM users", "SELECT password FROM users"),
        (
            "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password 'p')",
            "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password '***')",
        ),
        (
            "ALTER USER MAPPING FOR u SERVER s OPTIONS (SET \"password\" 'p')",
            "ALTER USER MAPPING FOR u SERVER s OPTIONS (SET \"password\" '***')",
        ),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'host=x password=p' PUBLICATION p",
            "CREATE SUBSCRIPTION s CONNECTION '***' PUBLICATION p",
        ),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p",
            "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p",
        ),
        (
            "CREATE ROLE a PASSWORD 'x'; CREATE ROLE b PASSWORD 'y'",
            "CREATE ROLE a PASSWORD '***'; CREATE ROLE b PASSWORD '***'",
        ),
        (
            "CREATE ROLE r PASSWORD 'unterminated",
            "CREATE ROLE r PASSWORD '***'",
        ),
        ("SELECT 'unterminated", "SELECT 'unterminated"),
        ("", ""),
        // Connection strings in any literal (issue 9, finding 17).
        (
            "SELECT dblink_connect('c', 'host=db user=u password=hunter2 dbname=x')",
            "SELECT dblink_connect('c', '***')",
        ),
        (
            "SELECT dblink_connect('host=db PASSWORD = hunter2')",
            "SELECT dblink_connect('***')",
        ),
        (
            "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h', passfile 'x')",
            "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h', passfile 'x')",
        ),
        (
            "SELECT dblink('postgresql://alice:hunter2@db:5432/app', 'SELECT 1')",
            "SELECT dblink('***', 'SELECT 1')",
        ),
        (
            "SELECT dblink('postgresql://alice@db/app?password=hunter2', 'SELECT 1')",
            "SELECT dblink('***', 'SELECT 1')",
        ),
        (
            "SELECT dblink('postgresql://alice@db/app', 'SELECT 1')",
            "SELECT dblink('postgresql://alice@db/app', 'SELECT 1')",
        ),
        (
            "CREATE SUBSCRIPTION s CONNECTION $c$host=x password=p$c$ PUBLICATION p",
            "CREATE SUBSCRIPTION s CONNECTION '***' PUBLICATION p",
        ),
        (
            "SELECT 'see http://example.com/a:b@c' AS u",
            "SELECT 'see http://example.com/a:b@c' AS u",
        ),
    ];

    #[test]
    fn redaction() {
        for (sql, expected) in REDACT_CASES {
            assert_eq!(redact(sql), *expected, "{sql:?}");
        }
    }
}
