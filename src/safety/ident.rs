//! Identifiers that come from tool arguments (savepoint, table, schema, setting names):
//! validated against a conservative grammar and always double-quoted, never pasted raw.

use std::fmt;

/// PostgreSQL truncates identifiers at 63 bytes (NAMEDATALEN - 1); longer ones would silently
/// alias each other, so they are refused instead.
const MAX_LEN: usize = 63;

/// The conservative name grammar ColdQuery accepts from arguments and configuration: a letter
/// or `_`, then letters, digits, `_`, `$` or one of `extra`, at most 63 bytes.
pub(crate) fn is_plain_name(raw: &str, extra: &[char]) -> bool {
    let ok_first = raw
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_');
    let ok_rest = raw
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || extra.contains(&c));
    ok_first && ok_rest && raw.len() <= MAX_LEN
}

/// Quote a name for SQL text. Used for names that come from the catalogs (after a bound
/// lookup) or from a validated `QualifiedName` or [`Ident`]; user text never reaches SQL any
/// other way.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A validated identifier. `Display` writes it double-quoted, ready for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    /// Validate `raw` as a plain identifier: a letter or `_`, then letters, digits, `_` or `$`,
    /// at most 63 bytes. Case is kept (it is quoted), so `MyTable` means exactly `"MyTable"`.
    pub fn parse(what: &str, raw: &str) -> Result<Ident, String> {
        if !is_plain_name(raw, &[]) {
            let shown: String = raw.chars().take(40).collect();
            return Err(format!(
                "invalid {what} {shown:?}: use letters, digits and _ (starting with a letter or _), \
                 at most 63 bytes, e.g. before_update"
            ));
        }
        Ok(Ident(raw.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Validation admits no double quote, but escaping keeps this correct on its own.
        write!(f, "\"{}\"", self.0.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_quoted_verbatim() {
        for (raw, quoted) in [
            ("sp1", "\"sp1\""),
            ("_x$", "\"_x$\""),
            ("MyPoint", "\"MyPoint\""),
            ("été", "\"été\""),
        ] {
            assert_eq!(
                Ident::parse("savepoint_name", raw).unwrap().to_string(),
                quoted
            );
        }
    }

    #[test]
    fn anything_else_is_refused_with_an_example() {
        let long = "a".repeat(64);
        for raw in [
            "",
            "1abc",
            "a b",
            "a;drop table t",
            "a\"b",
            "a-b",
            long.as_str(),
            "a.b",
        ] {
            let e = Ident::parse("savepoint_name", raw).unwrap_err();
            assert!(e.contains("invalid savepoint_name"), "{raw}: {e}");
        }
    }
}
