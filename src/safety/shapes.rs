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
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

use super::parse::{ClassifyError, Parsed, is_scanner_space, parse_one};

/// Most shapes kept; the cache is emptied when it is full. A kept tree is a few KB for a
/// typical read and tens of KB for one near [`MAX_TEXT`], so this bounds it at a few MB.
const CAPACITY: usize = 128;

/// Longest text whose shape is kept.
const MAX_TEXT: usize = 2048;

/// Longest digit run blanked: 9 digits always fit `int4`, so the node is always an integer.
const MAX_DIGITS: usize = 9;

/// A kept shape: the tree, and for each blanked digit run (in text order) whether it is bound
/// as a parameter or stays in the text; `None` when the shape's reads run as written.
#[derive(Clone)]
struct Entry {
    parsed: Parsed,
    runs: Option<Arc<[Run]>>,
}

/// What becomes of one blanked digit run in the statement that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Bound as an `int4` parameter.
    Bind,
    /// Kept in the text: PostgreSQL reads it as a column position (`ORDER BY 1`, `GROUP BY
    /// 1`, `DISTINCT ON (1)`) or a type modifier (`varchar(10)`), not as a value, or it is a
    /// select-list column of its own whose name (`?column?`) comes from being a constant.
    Keep,
}

static SHAPES: LazyLock<Mutex<HashMap<String, Entry>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// [`parse_one`], with plain reads taken from and kept in the cache by their shape.
pub(crate) fn parse_shared(sql: &str) -> Result<Parsed, ClassifyError> {
    let Some(key) = shape(sql) else {
        return parse_one(sql);
    };
    let text = cut(sql);
    let hit = SHAPES
        .lock()
        .expect("the shape cache lock")
        .get(&key)
        .cloned();
    if let Some(Entry { mut parsed, runs }) = hit {
        parsed.set_sql(text);
        parsed.set_bound(runs.and_then(|runs| bind(text, &runs)));
        return Ok(parsed);
    }
    let mut parsed = parse_one(sql)?;
    // The statement text is cut the same way for every text of this shape (no comments, so
    // only space and semicolons around it): checked here once, so that a hit can cut it alone.
    if parsed.is_plain_select() && parsed.sql() == text {
        let offset = text.as_ptr() as usize - sql.as_ptr() as usize;
        let runs = plan(&parsed, text, offset).map(Arc::from);
        let entry = Entry {
            parsed: parsed.clone(),
            runs: runs.clone(),
        };
        let mut shapes = SHAPES.lock().expect("the shape cache lock");
        if shapes.len() >= CAPACITY {
            shapes.clear();
        }
        shapes.insert(key, entry);
        drop(shapes);
        parsed.set_bound(runs.and_then(|runs| bind(text, &runs)));
    }
    Ok(parsed)
}

/// A read with its integer constants bound as parameters: the text of a shape is then one
/// prepared statement on each connection, run in one round trip (Bind/Execute), where a text
/// with the values written into it is a new statement on every call (Parse/Describe first,
/// and PostgreSQL's parse, analysis and planning of it).
///
/// Each bound constant is written `($n::int4)`: an `int4` value, as the constant itself is
/// (at most 9 digits), in parentheses so that it stands wherever the constant stood, with its
/// type in the text so that no inference (and no statement prepared with other types) can
/// give it another. Equal constants share one parameter, so that expressions PostgreSQL
/// matches against each other (`SELECT a + 1 … GROUP BY a + 1`) still match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bound {
    /// The statement that runs.
    pub(crate) sql: String,
    /// The values of `$1…$n`.
    pub(crate) values: Vec<i32>,
    /// Each bound constant: (its offset in the caller's statement text, its length, the
    /// offset of its replacement in [`Bound::sql`], the replacement's length). ASCII only
    /// (a shape's text is), so offsets are characters.
    subs: Vec<(usize, usize, usize, usize)>,
}

impl Bound {
    /// Where a 1-based character position in [`Bound::sql`] (an error's) stands in the
    /// caller's statement text: a position inside a replacement is the constant's own.
    pub(crate) fn text_position(&self, position: usize) -> usize {
        let p = position.saturating_sub(1);
        let mut shift: isize = 0;
        for &(text_at, text_len, sql_at, sql_len) in &self.subs {
            if p < sql_at {
                break;
            }
            if p < sql_at + sql_len {
                return text_at + 1;
            }
            shift = (sql_at + sql_len) as isize - (text_at + text_len) as isize;
        }
        (p as isize - shift).max(0) as usize + 1
    }
}

/// The end of the digit run that starts at `i`, and whether it is blanked in a shape: at most
/// 9 digits with no letter, digit, `_`, `$` or `.` on either side.
fn digit_run(b: &[u8], i: usize) -> (usize, bool) {
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.');
    let end = b[i..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(b.len(), |n| i + n);
    let alone = (i == 0 || !word(b[i - 1])) && b.get(end).is_none_or(|&c| !word(c));
    (end, alone && end - i <= MAX_DIGITS)
}

/// The lone digit runs of a shape's text, as byte ranges (see [`shape`]).
fn runs(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (end, blanked) = digit_run(b, i);
        if blanked {
            out.push((i, end));
        }
        i = end;
    }
    out
}

/// `text` with its runs bound as `plan` says, or `None` when its runs do not fit the plan
/// (they always do for a text of the plan's shape) or none is bound.
fn bind(text: &str, plan: &[Run]) -> Option<Bound> {
    let runs = runs(text);
    if runs.len() != plan.len() || !plan.contains(&Run::Bind) {
        return None;
    }
    let mut sql = String::with_capacity(text.len() + 12 * runs.len());
    let mut values: Vec<i32> = Vec::new();
    let mut subs = Vec::new();
    let mut last = 0;
    for (&(start, end), run) in runs.iter().zip(plan) {
        if *run == Run::Keep {
            continue;
        }
        let value: i32 = text[start..end].parse().ok()?;
        let n = match values.iter().position(|v| *v == value) {
            Some(i) => i + 1,
            None => {
                values.push(value);
                values.len()
            }
        };
        sql.push_str(&text[last..start]);
        let at = sql.len();
        sql.push_str(&format!("(${n}::int4)"));
        subs.push((start, end - start, at, sql.len() - at));
        last = end;
    }
    sql.push_str(&text[last..]);
    Some(Bound { sql, values, subs })
}

/// Which of the runs of `parsed`'s text (which starts at byte `offset` of what was parsed) are
/// bound, or `None` when the shape's reads run as written: a run that is not exactly one
/// integer constant of the tree, a statement with parameters of its own, nothing to bind, or
/// a bound form that PostgreSQL's grammar does not read with each parameter where its constant
/// was (an `Iconst` the grammar requires: `timestamp(3)`, `FETCH FIRST -5`).
fn plan(parsed: &Parsed, text: &str, offset: usize) -> Option<Vec<Run>> {
    let tree = serde_json::to_value(&parsed.stmt).ok()?;
    let mut found = Constants::default();
    found.visit(&tree, false);
    if !found.params.is_empty() {
        return None;
    }
    let b = text.as_bytes();
    let mut plan = Vec::new();
    for (start, end) in runs(text) {
        let value: i64 = text[start..end].parse().ok()?;
        let at_minus = b[..start]
            .iter()
            .rposition(|c| !is_scanner_space(char::from(*c)))
            .filter(|&m| b[m] == b'-');
        let constant = found
            .constants
            .iter()
            .find(|c| c.at == offset + start && c.value == value)
            .or_else(|| {
                // `-5` is one constant, -5, at the minus sign.
                let m = at_minus?;
                found
                    .constants
                    .iter()
                    .find(|c| c.at == offset + m && c.value == -value)
            })?;
        plan.push(if constant.positional {
            Run::Keep
        } else {
            Run::Bind
        });
    }
    let bound = bind(text, &plan)?;
    // The bound form must parse with each parameter where its constant was, and nothing else.
    let reparsed = pg_query::parse(&bound.sql, 0).ok()?;
    let [raw] = reparsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let tree = serde_json::to_value(raw.stmt.as_ref()?.node.as_ref()?).ok()?;
    let mut again = Constants::default();
    again.visit(&tree, false);
    let want: Option<Vec<(usize, i32)>> = bound
        .subs
        .iter()
        .map(|&(_, _, sql_at, _)| {
            let n = bound.sql[sql_at + 2..].split(':').next()?.parse().ok()?;
            Some((sql_at + 1, n))
        })
        .collect();
    let mut got = again.params;
    got.sort_unstable();
    (got == want?).then_some(plan)
}

/// An integer constant of a parse tree.
struct Constant {
    /// Its byte offset in the parsed text.
    at: usize,
    value: i64,
    /// It stays in the text ([`Run::Keep`]).
    positional: bool,
}

/// The integer constants and parameter references of a serialized parse tree (the form
/// `serde_json` gives the pg_query types: a `Node` is `{"node": {"Variant": {…}}}`).
#[derive(Default)]
struct Constants {
    constants: Vec<Constant>,
    /// (offset, number) of each `$n`.
    params: Vec<(usize, i32)>,
}

impl Constants {
    /// Visit `v`; `slot` says that a constant standing directly in it is positional.
    fn visit(&mut self, v: &Value, slot: bool) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| self.visit(i, false)),
            Value::Object(map) => {
                if let (1, Some((key, inner))) = (map.len(), map.iter().next()) {
                    match key.as_str() {
                        // A `Node`: what stands in it stands in its slot.
                        "node" => return self.visit(inner, slot),
                        "AConst" => return self.constant(inner, slot),
                        "ParamRef" => {
                            let number = inner["number"].as_i64().unwrap_or(0);
                            let at = inner["location"].as_i64().unwrap_or(-1);
                            self.params.push((
                                usize::try_from(at).unwrap_or(usize::MAX),
                                i32::try_from(number).unwrap_or(0),
                            ));
                            return;
                        }
                        // `ORDER BY 1`, also in aggregates and windows.
                        "SortBy" => return self.fields(inner, &["node"]),
                        // `GROUP BY ROLLUP (1, 2)`.
                        "GroupingSet" => return self.fields(inner, &["content"]),
                        // `SELECT 1`: the column's name is PostgreSQL's `?column?` for a
                        // constant, the type's name for a cast one (`($1::int4)` is `int4`).
                        "ResTarget" if inner["name"].as_str().is_none_or(str::is_empty) => {
                            return self.fields(inner, &["val"]);
                        }
                        _ => {}
                    }
                }
                self.fields(v, &["group_clause", "distinct_clause", "typmods"]);
            }
            _ => {}
        }
    }

    /// Visit the fields of object `v`, those named in `positional` as slots.
    fn fields(&mut self, v: &Value, positional: &[&str]) {
        let Value::Object(map) = v else {
            return;
        };
        for (key, value) in map {
            let slot = positional.contains(&key.as_str());
            match value {
                Value::Array(items) if slot => items.iter().for_each(|i| self.visit(i, true)),
                _ => self.visit(value, slot),
            }
        }
    }

    fn constant(&mut self, c: &Value, positional: bool) {
        let Some(value) = c["val"]["Ival"]["ival"].as_i64() else {
            return;
        };
        if let Ok(at) = usize::try_from(c["location"].as_i64().unwrap_or(-1)) {
            self.constants.push(Constant {
                at,
                value,
                positional,
            });
        }
    }
}

/// The text with each lone run of up to 9 digits replaced by `0`, or `None` when the text is
/// not one whose shape is kept (see the module's comment).
fn shape(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    if b.len() > MAX_TEXT {
        return None;
    }
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
                let (end, blanked) = digit_run(b, i);
                if blanked {
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

    /// The bound form of a text: which constants are bound, how equal ones share a
    /// parameter, and where an error's position in it stands in the caller's text.
    #[test]
    fn integers_are_bound_where_they_are_values() {
        let bound = |sql: &str| parse_shared(sql).expect("parses").bound().cloned();
        let b = bound("SELECT * FROM items WHERE id = 41").expect("bound");
        assert_eq!(b.sql, "SELECT * FROM items WHERE id = ($1::int4)");
        assert_eq!(b.values, [41]);
        let b = bound("SELECT a, b FROM t WHERE a = 7 AND b > -7 ORDER BY 2, 1 LIMIT 7")
            .expect("bound");
        assert_eq!(
            b.sql,
            "SELECT a, b FROM t WHERE a = ($1::int4) AND b > -($1::int4) ORDER BY 2, 1 LIMIT ($1::int4)"
        );
        assert_eq!(b.values, [7]);
        let b = bound("SELECT 1, x::varchar(3) FROM t GROUP BY 1, 2 LIMIT 5").expect("bound");
        assert_eq!(
            b.sql,
            "SELECT 1, x::varchar(3) FROM t GROUP BY 1, 2 LIMIT ($1::int4)"
        );
        // 'SELECT * FROM items WHERE id = ' is 31 characters; the value is the 32nd.
        let b = bound("SELECT * FROM items WHERE id = 41 AND nosuch = 1").expect("bound");
        assert_eq!(b.text_position(1), 1);
        assert_eq!(b.text_position(32), 32, "the replacement's first character");
        assert_eq!(b.text_position(36), 32, "inside the replacement");
        let nosuch = b.sql.find("nosuch").unwrap() + 1;
        assert_eq!(b.text_position(nosuch), 39, "after the replacement");
        // Not bound: parameters of its own, an Iconst the grammar requires, nothing to bind.
        for sql in [
            "SELECT * FROM items WHERE id = $1 LIMIT 5",
            "SELECT localtimestamp(3) FROM t WHERE a = 1",
            "SELECT a FROM t FETCH FIRST +2 ROWS ONLY",
            "SELECT a FROM t ORDER BY 1",
            "SELECT 1",
        ] {
            assert_eq!(bound(sql), None, "{sql}");
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
        let mut out = String::new();
        let mut last = 0;
        for (start, end) in runs(sql) {
            out.push_str(&sql[last..start]);
            out.push_str(n);
            last = end;
        }
        out.push_str(&sql[last..]);
        out
    }
}
