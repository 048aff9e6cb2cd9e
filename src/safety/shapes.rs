//! A cache of parsed read statements by their shape: the text with its small integer literals
//! blanked out. Agents send the same query again and again with other numbers in it
//! (`SELECT * FROM items WHERE id = 41`, then `… = 97`), and parsing one with PostgreSQL's
//! grammar, walking and scanning it was a third of the server's work per point read
//! (docs/benchmarks.md). Statements that share a shape parse to the same tree but for those
//! literals' values and the nodes' offsets, so what the gates decide about one they decide
//! about every other.
//!
//! What makes that true is kept narrow on purpose:
//! - a shape is only taken from text that the scanner reads the same way wherever a digit
//!   changes: ASCII only, no quotes of any kind (`'`, `"`, dollar quotes), no comments, no
//!   backslash; `$` only as a parameter (`$1`);
//! - only a run of at most 9 digits that stands alone (no letter, digit, `_`, `$` or `.` on
//!   either side) is blanked: it is always an integer constant that fits `int4`, never part
//!   of a name, a float, an exponent or a `0x…` literal, and never a different node type;
//! - only a statement that parsed and is a plain read `SELECT` ([`Parsed::is_plain_select`])
//!   is kept. No gate reads a constant's value in one: the one rule that reads an integer
//!   constant (`EXPLAIN (ANALYZE 0)`) is about `EXPLAIN`, and the destructive-statement check
//!   is not asked about reads. The test below puts every corpus entry through both ways and
//!   compares what the gates decide.
//!
//! A hit gives the cached [`Parsed`] with the new statement text; its tree still holds the
//! first text's literals and offsets, which is why nothing may read those from a cached read
//! (nothing does: the statement sent to PostgreSQL is always the caller's own text).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use super::parse::{ClassifyError, Parsed, is_scanner_space, parse_one};

/// Most shapes kept; the cache is emptied when it is full. A kept tree is a few KB for a
/// typical read and tens of KB for one near [`MAX_TEXT`], so this bounds it at a few MB.
const CAPACITY: usize = 128;

/// Longest text whose shape is kept.
const MAX_TEXT: usize = 2048;

/// Longest digit run blanked: 9 digits always fit `int4`, so the node is always an integer.
const MAX_DIGITS: usize = 9;

static SHAPES: LazyLock<Mutex<HashMap<String, Parsed>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// [`parse_one`], with plain reads taken from and kept in the cache by their shape.
pub(crate) fn parse_shared(sql: &str) -> Result<Parsed, ClassifyError> {
    let Some(key) = shape(sql) else {
        return parse_one(sql);
    };
    let text = cut(sql);
    if let Some(hit) = SHAPES.lock().expect("the shape cache lock").get(&key) {
        let mut parsed = hit.clone();
        parsed.set_sql(text);
        return Ok(parsed);
    }
    let parsed = parse_one(sql)?;
    // The statement text is cut the same way for every text of this shape (no comments, so
    // only space and semicolons around it): checked here once, so that a hit can cut it alone.
    if parsed.is_plain_select() && parsed.sql() == text {
        let mut shapes = SHAPES.lock().expect("the shape cache lock");
        if shapes.len() >= CAPACITY {
            shapes.clear();
        }
        shapes.insert(key, parsed.clone());
    }
    Ok(parsed)
}

/// The text with each lone run of up to 9 digits replaced by `0`, or `None` when the text is
/// not one whose shape is kept (see the module's comment).
fn shape(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    if b.len() > MAX_TEXT {
        return None;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.');
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'\\' | b'`' => return None,
            0x80.. | 0 => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            // A parameter (`$1`) only: any other `$` may open a dollar-quoted string.
            b'$' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => return None,
            b'0'..=b'9' => {
                let end = b[i..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(b.len(), |n| i + n);
                let alone = (i == 0 || !word(b[i - 1])) && b.get(end).is_none_or(|&c| !word(c));
                if alone && end - i <= MAX_DIGITS {
                    out.push('0');
                } else {
                    out.push_str(&sql[i..end]);
                }
                i = end;
                continue;
            }
            _ => out.push(char::from(c)),
        }
        i += 1;
    }
    Some(out)
}

/// The statement text of a text without comments: the scanner's space and any semicolons cut
/// off both ends, as [`parse_one`] cuts it.
fn cut(sql: &str) -> &str {
    let mut s = sql.trim_matches(is_scanner_space);
    while let Some(rest) = s.strip_suffix(';') {
        s = rest.trim_end_matches(is_scanner_space);
    }
    while let Some(rest) = s.strip_prefix(';') {
        s = rest.trim_start_matches(is_scanner_space);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::classify::{check_explain, check_read, check_write};
    use crate::safety::testkit::corpus_entries;

    #[test]
    fn only_lone_short_digit_runs_are_blanked() {
        for (sql, want) in [
            (
                "SELECT * FROM items WHERE id = 41",
                Some("SELECT * FROM items WHERE id = 0"),
            ),
            ("SELECT 1, -2, (3), 4+5", Some("SELECT 0, -0, (0), 0+0")),
            (
                "SELECT * FROM t WHERE a = $1 LIMIT 10",
                Some("SELECT * FROM t WHERE a = $1 LIMIT 0"),
            ),
            // Part of a name, a float, an exponent, a hex or underscored literal: kept.
            ("SELECT t1.c2 FROM t1", Some("SELECT t1.c2 FROM t1")),
            ("SELECT 1.5, .5, 5., 1e3", Some("SELECT 1.5, .5, 5., 1e3")),
            ("SELECT 0x1F, 1_000, 1a", Some("SELECT 0x1F, 1_000, 1a")),
            // Ten digits may not fit int4 (a different node type): kept.
            ("SELECT 1234567890", Some("SELECT 1234567890")),
            ("SELECT 123456789", Some("SELECT 0")),
            // Strings, quoted names, comments, dollar quotes, escapes, non-ASCII: no shape.
            ("SELECT '1'", None),
            ("SELECT \"c1\" FROM t", None),
            ("SELECT 1 -- 2", None),
            ("SELECT /* 1 */ 2", None),
            ("SELECT $$1$$", None),
            ("SELECT $a$1$a$", None),
            ("SELECT 1 FROM t\\", None),
            ("SELECT 1 AS é", None),
        ] {
            assert_eq!(shape(sql).as_deref(), want, "{sql:?}");
        }
        assert_eq!(shape(&"SELECT 1 ".repeat(300)), None, "too long");
    }

    #[test]
    fn the_text_is_cut_as_the_parser_cuts_it() {
        for sql in [
            "SELECT 1",
            "  SELECT 1  ",
            "\tSELECT 1;",
            "SELECT 1 ; ; ",
            ";SELECT 1",
            "\nSELECT id FROM items WHERE id = 3\n;\n",
        ] {
            let parsed = parse_one(sql).expect("parses");
            assert_eq!(cut(sql), parsed.sql(), "{sql:?}");
        }
    }

    /// Every corpus entry with a shape, with its digits changed, gets the same decision from
    /// the gates through the cache as from a parse of its own, and the caller's own text.
    #[test]
    fn a_cached_shape_decides_as_a_fresh_parse() {
        let (mut compared, mut cached) = (0, 0);
        for entry in corpus_entries() {
            let Some(key) = shape(&entry) else {
                continue;
            };
            for variant in [
                entry.clone(),
                renumber(&entry, "7"),
                renumber(&entry, "65535"),
            ] {
                let fresh = parse_one(&variant);
                let shared = parse_shared(&variant);
                match (&fresh, &shared) {
                    (Ok(f), Ok(s)) => {
                        assert_eq!(f.sql(), s.sql(), "{variant:?}");
                        assert_eq!(f.command(), s.command(), "{variant:?}");
                        assert_eq!(f.class(), s.class(), "{variant:?}");
                        assert_eq!(f.found(), s.found(), "{variant:?}");
                        assert_eq!(f.is_plain_select(), s.is_plain_select(), "{variant:?}");
                        assert_eq!(f.is_plannable(), s.is_plannable(), "{variant:?}");
                        assert_eq!(f.has_returning(), s.has_returning(), "{variant:?}");
                        assert_eq!(check_read(f), check_read(s), "{variant:?}");
                        assert_eq!(check_write(f), check_write(s), "{variant:?}");
                        assert_eq!(check_explain(f), check_explain(s), "{variant:?}");
                        compared += 1;
                    }
                    (Err(f), Err(s)) => assert_eq!(f, s, "{variant:?}"),
                    _ => panic!("{variant:?}: {fresh:?} against {shared:?}"),
                }
                // Other tests may empty the cache when it fills, so this is counted, not asserted.
                cached += usize::from(SHAPES.lock().unwrap().contains_key(&key));
            }
        }
        eprintln!("{compared} compared, {cached} from the cache");
        assert!(compared > 100, "only {compared} corpus entries compared");
        assert!(cached > 100, "only {cached} cached shapes used");
    }

    /// `sql` with every lone digit run replaced by `n`.
    fn renumber(sql: &str, n: &str) -> String {
        let b = sql.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.');
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let end = b[i..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(b.len(), |k| i + k);
                let alone = (i == 0 || !word(b[i - 1])) && b.get(end).is_none_or(|&c| !word(c));
                out.push_str(if alone && end - i <= MAX_DIGITS {
                    n
                } else {
                    &sql[i..end]
                });
                i = end;
            } else {
                out.push(char::from(b[i]));
                i += 1;
            }
        }
        out
    }
}
