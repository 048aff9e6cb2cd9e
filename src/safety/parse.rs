//! Parsing: one SQL string in, exactly one [`Parsed`] statement out, or a [`ClassifyError`]
//! that says where the input went wrong.
//!
//! [`parse_one`] runs PostgreSQL's own grammar (libpg_query), cuts the statement's text out of
//! the input, and then hands the tree to the walker (`walk`), the classifier (`classify`) and
//! the generic scan (`scan`), so that a [`Parsed`] carries everything the gates look at.
//! Error positions are recovered here too, because the Rust binding only returns the message.

use std::sync::Arc;

use pg_query::NodeEnum;
use pg_query::protobuf as pb;

use super::classify::{StatementClass, classify};
use super::walk::{Facts, walk_statement};

/// Why a SQL string could not be turned into exactly one statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClassifyError {
    /// The input holds no statement at all (empty, whitespace, comments or bare semicolons).
    #[error(
        "no SQL statement found: the input is empty or only comments; send exactly one statement"
    )]
    Empty,
    /// The input holds more than one statement.
    #[error(
        "one statement per call: found {count}; send them separately or use pg_query transaction with operations"
    )]
    MultipleStatements {
        /// How many statements the parser found.
        count: usize,
    },
    /// The statement is valid SQL but nested too deeply to be inspected.
    #[error(
        "the statement is nested too deeply for this server to check (more than 100 levels: e.g. about 100 UNION arms or deeply nested expressions); split it into smaller statements, or use a VALUES list or a temporary table instead of a long UNION chain"
    )]
    TooDeep,
    /// PostgreSQL's grammar rejected the input.
    #[error("invalid SQL{}: {message}", position_suffix(.position))]
    Syntax {
        /// The parser's message, e.g. `syntax error at or near "FRM"`.
        message: String,
        /// 1-based character offset of the error in the input, when it could be located.
        position: Option<usize>,
    },
}

/// Formats the optional error position for [`ClassifyError::Syntax`].
fn position_suffix(position: &Option<usize>) -> String {
    position.map_or_else(String::new, |p| format!(" at character {p}"))
}

/// A single parsed statement, ready to be checked against an action.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// The statement text, without surrounding whitespace, comments or semicolons.
    sql: String,
    /// The statement's parse tree. It, its facts and what the scan found are shared, not
    /// copied, by every statement taken from the shape cache ([`super::shapes`]).
    pub(super) stmt: Arc<NodeEnum>,
    /// Facts gathered by walking the tree once (see [`Facts`]).
    pub(super) facts: Arc<Facts>,
    /// Command tag, e.g. "SELECT" or "DROP TABLE".
    command: &'static str,
    /// Classification of the statement.
    class: StatementClass,
    /// Everything the generic scan found anywhere in the tree (calls, operators, relations…).
    found: Arc<super::scan::Found>,
    /// The text with its integers bound as parameters, for a read from the shape cache
    /// ([`super::shapes`]): what runs in place of the text, one prepared statement for every
    /// text of the shape.
    bound: Option<Arc<super::shapes::Bound>>,
}

/// Parses `sql` with PostgreSQL's own grammar and requires exactly one statement.
///
/// Trailing semicolons, whitespace and comments are not statements, so `SELECT 3;` and
/// `SELECT 3;;` are one statement; empty input or input with only comments is [`ClassifyError::Empty`].
pub(crate) fn parse_one(sql: &str) -> Result<Parsed, ClassifyError> {
    let result = match pg_query::parse(sql, 0) {
        Ok(result) => result,
        Err(pg_query::Error::Conversion(_)) => {
            // libpg_query takes a C string, so an embedded NUL cannot be passed through;
            // PostgreSQL itself rejects NUL in query text too.
            let position = sql.find('\0').and_then(|byte| char_position(sql, byte));
            return Err(ClassifyError::Syntax {
                message: "the SQL text contains a NUL byte".to_string(),
                position,
            });
        }
        Err(pg_query::Error::Parse(message)) => {
            let position = error_position(sql, &message);
            return Err(ClassifyError::Syntax { message, position });
        }
        // The tree is decoded with prost, which stops at 100 levels of nesting: the SQL is
        // valid, but too deep for this server to inspect (about 100 UNION arms, or deeply
        // nested expressions), and what cannot be inspected does not run.
        Err(pg_query::Error::Decode(_)) => return Err(ClassifyError::TooDeep),
        Err(other) => {
            return Err(ClassifyError::Syntax {
                message: other.to_string(),
                position: None,
            });
        }
    };

    let mut stmts = result.protobuf.stmts;
    // The grammar drops empty statements (`;;`), so what is left are real statements.
    match stmts.len() {
        0 => return Err(ClassifyError::Empty),
        1 => {}
        count => return Err(ClassifyError::MultipleStatements { count }),
    }
    let raw = stmts.swap_remove(0);
    let stmt = raw
        .stmt
        .and_then(|node| node.node)
        .ok_or(ClassifyError::Empty)?;

    let start = usize::try_from(raw.stmt_location).unwrap_or(0);
    // stmt_len 0 means "up to the end of the input" for the last statement.
    let end = match usize::try_from(raw.stmt_len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(len) => start.saturating_add(len).min(sql.len()),
    };
    let span = sql.get(start..end).unwrap_or(sql);
    let text = statement_text(span).to_string();

    let facts = walk_statement(&stmt);
    let (command, class) = classify(&stmt, &facts);
    let found = super::scan::scan(&stmt);
    Ok(Parsed {
        sql: text,
        stmt: Arc::new(stmt),
        facts: Arc::new(facts),
        command,
        class,
        found: Arc::new(found),
        bound: None,
    })
}

/// Cuts leading/trailing whitespace, comments and semicolons off a statement's source span.
///
/// Trailing comments must go: callers wrap reads as `SELECT * FROM (<sql>) AS q LIMIT n`,
/// and a trailing `-- comment` would swallow the closing parenthesis.
fn statement_text(span: &str) -> &str {
    // Without `-`, `/` or `;` in it, a span holds no comment and no semicolon, so what
    // surrounds its tokens is the scanner's whitespace: trimmed without scanning it again.
    if !span.bytes().any(|b| matches!(b, b'-' | b'/' | b';')) {
        return span.trim_matches(is_scanner_space);
    }
    scanned_statement_text(span)
}

/// PostgreSQL's whitespace (`scanner_isspace`, scan.l's `{space}`): not Rust's, which also
/// counts non-ASCII spaces that the scanner reads as identifier characters.
pub(super) fn is_scanner_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// [`statement_text`] by the scanner's tokens.
fn scanned_statement_text(span: &str) -> &str {
    let Some(tokens) = scan(span) else {
        return span.trim().trim_end_matches(';').trim_end();
    };
    let mut significant = tokens.iter().filter(|t| {
        !matches!(
            pb::Token::try_from(t.token),
            Ok(pb::Token::SqlComment | pb::Token::CComment | pb::Token::Ascii59)
        )
    });
    let Some(first) = significant.next() else {
        return span.trim();
    };
    let last = significant.next_back().unwrap_or(first);
    let start = usize::try_from(first.start).unwrap_or(0);
    let end = usize::try_from(last.end).unwrap_or(span.len());
    span.get(start..end).unwrap_or_else(|| span.trim())
}

/// Runs PostgreSQL's scanner over `sql`; `None` if it rejects the text.
///
/// Deliberately `pg_query::scan`, not `pg_query::scan_tokens`: in pg_query 18.1 the latter
/// builds a slice from a null pointer when there are no tokens (empty or comment-only
/// input), which is undefined behaviour (debug builds abort).
pub(super) fn scan(sql: &str) -> Option<Vec<pb::ScanToken>> {
    pg_query::scan(sql).ok().map(|result| result.tokens)
}

/// Converts a byte offset into a 1-based character position, as PostgreSQL reports them.
fn char_position(sql: &str, byte: usize) -> Option<usize> {
    sql.get(..byte).map(|prefix| prefix.chars().count() + 1)
}

/// Locates a parse error in `sql`, since the Rust binding only returns the message.
///
/// For `… at or near "X"` the failing token is found by parsing ever longer token
/// prefixes (binary search): a prefix that stops before the bad token either parses or
/// fails "at end of input", a prefix that includes it fails at it. The result is only
/// trusted if the token found is the `X` the parser named.
fn error_position(sql: &str, message: &str) -> Option<usize> {
    if message.ends_with("at end of input") {
        // Point just past the last real token, not past trailing comments.
        let end = scan(sql)
            .and_then(|tokens| {
                tokens
                    .iter()
                    .rev()
                    .find(|t| {
                        !matches!(
                            pb::Token::try_from(t.token),
                            Ok(pb::Token::SqlComment | pb::Token::CComment)
                        )
                    })
                    .and_then(|t| usize::try_from(t.end).ok())
            })
            .unwrap_or_else(|| sql.trim_end().len());
        return char_position(sql, end);
    }
    let near = message
        .split_once("at or near \"")
        .and_then(|(_, rest)| rest.strip_suffix('"'))?;

    if let Some(tokens) = scan(sql) {
        let tokens: Vec<&pb::ScanToken> = tokens
            .iter()
            .filter(|t| {
                !matches!(
                    pb::Token::try_from(t.token),
                    Ok(pb::Token::SqlComment | pb::Token::CComment)
                )
            })
            .collect();
        let fails_within = |index: usize| -> bool {
            let end = tokens
                .get(index)
                .and_then(|t| usize::try_from(t.end).ok())
                .unwrap_or(sql.len());
            match sql.get(..end).map(|prefix| pg_query::parse(prefix, 0)) {
                Some(Err(pg_query::Error::Parse(m))) => !m.ends_with("at end of input"),
                _ => false,
            }
        };
        // Bound the work on pathological inputs; the position is a convenience.
        if !tokens.is_empty() && tokens.len() <= 50_000 && fails_within(tokens.len() - 1) {
            let (mut lo, mut hi) = (0, tokens.len() - 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if fails_within(mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let token = tokens.get(lo)?;
            let start = usize::try_from(token.start).ok()?;
            let end = usize::try_from(token.end).ok()?;
            if sql
                .get(start..end)
                .is_some_and(|text| text.eq_ignore_ascii_case(near))
            {
                return char_position(sql, start);
            }
        }
    }
    // Unterminated literals and comments: the scanner reports the rest of the input.
    if !near.is_empty() && sql.ends_with(near) {
        return char_position(sql, sql.len() - near.len());
    }
    None
}

impl Parsed {
    /// The statement text alone: trimmed, without comments around it and without the trailing semicolon.
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// Gives a statement taken from the shape cache its own text (see [`super::shapes`]).
    pub(super) fn set_sql(&mut self, sql: &str) {
        sql.clone_into(&mut self.sql);
    }

    /// Gives a read its form with bound integers (see [`super::shapes`]).
    pub(super) fn set_bound(&mut self, bound: Option<super::shapes::Bound>) {
        self.bound = bound.map(Arc::new);
    }

    /// The statement with its integer constants bound as `$n` parameters, when it is a read
    /// whose constants can be bound without changing what it means (see [`super::shapes`]).
    pub(crate) fn bound(&self) -> Option<&Arc<super::shapes::Bound>> {
        self.bound.as_ref()
    }

    /// The command tag, close to PostgreSQL's: "SELECT", "INSERT", "CREATE TABLE", "DROP TABLE", "VACUUM", ….
    pub(crate) fn command(&self) -> &'static str {
        self.command
    }

    /// The parse tree of the statement.
    pub(crate) fn stmt(&self) -> &NodeEnum {
        &self.stmt
    }

    /// The statement's class, independent of the action it was sent to.
    pub(crate) fn class(&self) -> StatementClass {
        self.class
    }

    /// What the generic scan found anywhere in the tree (see [`super::scan`]).
    pub(crate) fn found(&self) -> &super::scan::Found {
        &self.found
    }

    /// True for a read SelectStmt (incl. WITH/VALUES/TABLE) that can be wrapped as
    /// `SELECT * FROM (<sql>) AS q LIMIT n`.
    ///
    /// Excludes SELECT … INTO, locking clauses and data-modifying WITH (PostgreSQL refuses
    /// a data-modifying WITH inside a subquery), as well as SHOW and EXPLAIN.
    pub(crate) fn is_plain_select(&self) -> bool {
        matches!(*self.stmt, NodeEnum::SelectStmt(_)) && self.class == StatementClass::Read
    }

    /// True for a query PostgreSQL can plan with EXPLAIN and the cost ceiling can price: a
    /// SELECT (WITH, VALUES, TABLE) or an INSERT/UPDATE/DELETE/MERGE. Not SHOW, CALL, DO or DDL.
    pub(crate) fn is_plannable(&self) -> bool {
        matches!(
            *self.stmt,
            NodeEnum::SelectStmt(_)
                | NodeEnum::InsertStmt(_)
                | NodeEnum::UpdateStmt(_)
                | NodeEnum::DeleteStmt(_)
                | NodeEnum::MergeStmt(_)
        ) && matches!(self.class, StatementClass::Read | StatementClass::Write)
    }

    /// True for INSERT/UPDATE/DELETE/MERGE with a RETURNING clause (MERGE … RETURNING is PG17+).
    pub(crate) fn has_returning(&self) -> bool {
        let clause = match &*self.stmt {
            NodeEnum::InsertStmt(s) => s.returning_clause.as_ref(),
            NodeEnum::UpdateStmt(s) => s.returning_clause.as_ref(),
            NodeEnum::DeleteStmt(s) => s.returning_clause.as_ref(),
            NodeEnum::MergeStmt(s) => s.returning_clause.as_ref(),
            _ => None,
        };
        clause.is_some_and(|c| !c.exprs.is_empty())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::safety::testkit::parsed;

    #[test]
    fn the_statement_text_shortcut_cuts_what_the_scanner_cuts() {
        let mut spans = crate::safety::testkit::corpus_entries();
        // Whitespace PostgreSQL's scanner knows, and a non-ASCII space it reads as part of
        // an identifier (U+00A0): trimming it would change the statement.
        for s in [
            "\x0b\x0cSELECT 1\r\n\t ",
            "SELECT 1 AS \"a\u{a0}\"",
            "SELECT \u{a0}x\u{a0}",
        ] {
            spans.push(s.to_owned());
        }
        let mut shortcut = 0;
        for span in &spans {
            assert_eq!(
                statement_text(span),
                scanned_statement_text(span),
                "{span:?}"
            );
            shortcut += usize::from(!span.bytes().any(|b| matches!(b, b'-' | b'/' | b';')));
        }
        assert!(shortcut > 100, "only {shortcut} spans took the shortcut");
    }

    // -----------------------------------------------------------------------------------
    // parse_one: statement count, text, errors
    // -----------------------------------------------------------------------------------

    #[derive(Debug)]
    pub(crate) enum P {
        /// Parses; `sql()` equals this.
        Text(&'static str),
        Empty,
        Multiple(usize),
        /// Syntax error at this 1-based character (None: position unknown).
        Syntax(Option<usize>),
    }

    pub(crate) const PARSE_CASES: &[(&str, P)] = &[
        ("SELECT 3;", P::Text("SELECT 3")),
        ("SELECT 1;;", P::Text("SELECT 1")),
        ("  SELECT 1  ;  ", P::Text("SELECT 1")),
        ("SELECT 1 -- ; DROP TABLE t", P::Text("SELECT 1")),
        ("SELECT 1 -- trailing comment\n", P::Text("SELECT 1")),
        ("/* ; */ SELECT 1 /* ; */ ;", P::Text("SELECT 1")),
        (
            "-- lead\nSELECT a /* mid; */ FROM t",
            P::Text("SELECT a /* mid; */ FROM t"),
        ),
        (
            "SELECT $$; DROP TABLE t$$",
            P::Text("SELECT $$; DROP TABLE t$$"),
        ),
        (
            "SELECT $q$ ; DROP TABLE t; $q$ AS x;",
            P::Text("SELECT $q$ ; DROP TABLE t; $q$ AS x"),
        ),
        (
            "SELECT E'a\\'; DROP TABLE t; --'",
            P::Text("SELECT E'a\\'; DROP TABLE t; --'"),
        ),
        (
            "SELECT U&'d\\0061t\\+000061'",
            P::Text("SELECT U&'d\\0061t\\+000061'"),
        ),
        (
            "SELECT U&'!0041;' UESCAPE '!'",
            P::Text("SELECT U&'!0041;' UESCAPE '!'"),
        ),
        ("SELECT \"a;b\" FROM t;", P::Text("SELECT \"a;b\" FROM t")),
        (
            "SELECT 'it''s; DROP TABLE t'",
            P::Text("SELECT 'it''s; DROP TABLE t'"),
        ),
        ("SELECT 1; DROP TABLE t", P::Multiple(2)),
        ("COMMIT; DROP TABLE t", P::Multiple(2)),
        ("SELECT 1; SELECT 2; SELECT 3;", P::Multiple(3)),
        ("SELECT 1 /* ; */; -- x\n SELECT 2", P::Multiple(2)),
        ("", P::Empty),
        ("   \n\t ", P::Empty),
        ("-- only a comment", P::Empty),
        ("/* only a comment */", P::Empty),
        (";", P::Empty),
        (" ;; ; ", P::Empty),
        ("SELEC 1", P::Syntax(Some(1))),
        ("SELECT * FRM t", P::Syntax(Some(10))),
        ("SELECT a, b FROM t WHERE a = = b", P::Syntax(Some(30))),
        ("SELECT 'ü' FROM FROM", P::Syntax(Some(17))),
        ("SELECT 'a' FRM t", P::Syntax(Some(16))),
        ("SELECT (1", P::Syntax(Some(10))),
        ("SELECT 'unterminated", P::Syntax(Some(8))),
        ("SELECT 1 \0", P::Syntax(Some(10))),
        ("SELECT 1; DROP TABLE", P::Syntax(Some(21))),
        ("SELECT (1 -- unclosed\n", P::Syntax(Some(10))),
    ];

    #[test]
    fn parse_cases() {
        for (sql, expected) in PARSE_CASES {
            let got = parse_one(sql);
            match (expected, &got) {
                (P::Text(text), Ok(p)) => assert_eq!(p.sql(), *text, "{sql:?}"),
                (P::Empty, Err(ClassifyError::Empty)) => {}
                (P::Multiple(n), Err(ClassifyError::MultipleStatements { count })) => {
                    assert_eq!(count, n, "{sql:?}")
                }
                (P::Syntax(pos), Err(ClassifyError::Syntax { position, .. })) => {
                    assert_eq!(position, pos, "{sql:?}: {got:?}")
                }
                _ => panic!("{sql:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn error_messages_are_actionable() {
        let multiple = parse_one("SELECT 1; SELECT 2").expect_err("two statements");
        assert_eq!(
            multiple.to_string(),
            "one statement per call: found 2; send them separately or use pg_query transaction with operations"
        );
        let syntax = parse_one("SELECT * FRM t").expect_err("syntax error");
        assert_eq!(
            syntax.to_string(),
            "invalid SQL at character 10: syntax error at or near \"FRM\""
        );
        assert!(
            parse_one("")
                .expect_err("empty")
                .to_string()
                .contains("exactly one statement")
        );
    }

    const RETURNING_CASES: &[(&str, bool)] = &[
        ("INSERT INTO t VALUES (1) RETURNING *", true),
        ("INSERT INTO t VALUES (1)", false),
        ("UPDATE t SET a = 1 RETURNING a", true),
        ("UPDATE t SET a = 1", false),
        ("DELETE FROM t RETURNING id", true),
        (
            "WITH d AS (DELETE FROM t RETURNING *) INSERT INTO u SELECT * FROM d",
            false,
        ),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING *",
            true,
        ),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            false,
        ),
        ("SELECT 1", false),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            false,
        ),
    ];

    #[test]
    fn has_returning() {
        for (sql, expected) in RETURNING_CASES {
            assert_eq!(parsed(sql).has_returning(), *expected, "{sql:?}");
        }
    }

    #[test]
    fn is_plain_select_only_for_wrappable_reads() {
        for sql in [
            "SELECT * FROM t FOR UPDATE",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "SELECT * INTO x FROM t",
            "SHOW work_mem",
            "EXPLAIN SELECT 1",
            "INSERT INTO t VALUES (1) RETURNING *",
        ] {
            assert!(!parsed(sql).is_plain_select(), "{sql:?}");
        }
    }
}
