//! Identifiers: the one name grammar ColdQuery accepts from arguments and configuration
//! ([`is_plain_name`], also behind `QualifiedName`, role names and setting names), the one
//! [`quote_ident`] every piece of generated SQL uses, and the validated [`Ident`] (savepoint
//! names). User text is validated and double-quoted, never pasted raw.

use std::fmt;

/// PostgreSQL truncates identifiers at 63 bytes (NAMEDATALEN - 1); longer ones would silently
/// alias each other, so they are refused instead.
pub(crate) const MAX_IDENT_BYTES: usize = 63;

/// The conservative name grammar ColdQuery accepts from arguments and configuration: a letter
/// or `_`, then letters, digits, `_`, `$` or one of `extra`, at most 63 bytes.
pub(crate) fn is_plain_name(raw: &str, extra: &[char]) -> bool {
    is_plain_word(raw, extra) && raw.len() <= MAX_IDENT_BYTES
}

/// [`is_plain_name`] without the length limit, for callers that report a long name with a
/// message of its own.
pub(crate) fn is_plain_word(raw: &str, extra: &[char]) -> bool {
    let ok_first = raw
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_');
    let ok_rest = raw
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || extra.contains(&c));
    ok_first && ok_rest
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
        // Validation admits no double quote, but quoting keeps this correct on its own.
        f.write_str(&quote_ident(&self.0))
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
    fn quoting_doubles_embedded_quotes_and_keeps_everything_else() {
        for (raw, quoted) in [
            ("a", "\"a\""),
            ("a\"b", "\"a\"\"b\""),
            ("My Table", "\"My Table\""),
            ("\"\"", "\"\"\"\"\"\""),
            ("été", "\"été\""),
        ] {
            assert_eq!(quote_ident(raw), quoted, "{raw}");
        }
    }

    #[test]
    fn the_length_limit_is_63_bytes_and_only_in_is_plain_name() {
        let at_limit = "a".repeat(MAX_IDENT_BYTES);
        let over = "a".repeat(MAX_IDENT_BYTES + 1);
        assert!(is_plain_name(&at_limit, &[]));
        assert!(!is_plain_name(&over, &[]));
        assert!(is_plain_word(&over, &[]));
        assert!(!is_plain_word("a-b", &[]));
        assert!(is_plain_word("a-b", &['-']));
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
