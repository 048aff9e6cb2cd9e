//! SQL statement parsing and classification: the first safety layer, run on every SQL string before it reaches PostgreSQL.
//!
//! Every statement an MCP client sends goes through [`parse_one`] (the real PostgreSQL
//! grammar, via libpg_query) and then through the `check_*` function of the action it was
//! sent to. The database's READ ONLY transaction is the second layer; this module exists
//! so that refusals happen early, with a message a model can act on, and so that things a
//! read-only transaction does NOT stop (signalling backends, reading server files, session
//! state on a pooled connection, non-transactional sequence bumps, …) are refused at all.
//!
//! Decisions worth knowing (the rest of the file explains the details where they are made):
//! - Exactly one statement per call; empty statements (`SELECT 1;;`) and comments do not count.
//! - `SELECT … FOR UPDATE/SHARE` and `LOCK TABLE` take locks, so they are write-class.
//! - A `SELECT` with a data-modifying `WITH` (at any depth) is write-class.
//! - `SELECT … INTO t` creates a table, so it is DDL `create` (as is `CREATE TABLE … AS`).
//! - `TRUNCATE` is DDL `drop`: it is not MVCC-safe (other snapshots see the table empty) and
//!   cannot be filtered by a WHERE clause, so it belongs with the destructive schema tools.
//! - `COMMENT ON`, `GRANT`/`REVOKE`, `SECURITY LABEL`, `REFRESH MATERIALIZED VIEW` are DDL `alter`.
//! - The explain action wants the bare statement; text that already starts with `EXPLAIN` is
//!   refused with a hint rather than unwrapped, because its options (ANALYZE, FORMAT …) would
//!   silently conflict with the action's own options.
//! - The tree walker fails closed: a node type it has no rule for makes the check refuse,
//!   so a future parser version can never smuggle an unvisited subtree past the checks.

use std::fmt;

use pg_query::protobuf as pb;
use pg_query::{Node, NodeEnum, NodeRef};

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

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

/// The three DDL sub-actions of the pg_schema tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DdlKind {
    /// CREATE …, CREATE TABLE … AS, SELECT … INTO, IMPORT FOREIGN SCHEMA.
    Create,
    /// ALTER …, RENAME, OWNER, COMMENT ON, GRANT/REVOKE, SECURITY LABEL, REFRESH MATERIALIZED VIEW.
    Alter,
    /// DROP …, DROP OWNED, TRUNCATE.
    Drop,
}

impl DdlKind {
    /// The sub-action name as the pg_schema tool spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DdlKind::Create => "create",
            DdlKind::Alter => "alter",
            DdlKind::Drop => "drop",
        }
    }

    /// The tool call that runs statements of this kind.
    fn tool(self) -> &'static str {
        match self {
            DdlKind::Create => "pg_schema create",
            DdlKind::Alter => "pg_schema alter",
            DdlKind::Drop => "pg_schema drop",
        }
    }
}

/// Statements that no action accepts, grouped by the explanation the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forbidden {
    /// SET ROLE, SET SESSION AUTHORIZATION and their RESET forms.
    RoleSwitch,
    /// RESET ALL.
    ResetAll,
    /// Any other SET/RESET, and SET CONSTRAINTS.
    SessionSetting,
    /// ALTER SYSTEM.
    AlterSystem,
    /// COPY … TO/FROM PROGRAM.
    CopyProgram,
    /// COPY … TO/FROM '/server/file'.
    CopyServerFile,
    /// COPY … FROM STDIN / TO STDOUT.
    CopyStdio,
    /// LOAD 'library'.
    Load,
    /// DISCARD ALL/PLANS/SEQUENCES/TEMP.
    Discard,
    /// LISTEN, UNLISTEN, NOTIFY.
    ListenNotify,
    /// PREPARE, EXECUTE, DEALLOCATE.
    PreparedStatement,
    /// DECLARE, FETCH, MOVE, CLOSE.
    Cursor,
    /// CHECKPOINT.
    Checkpoint,
    /// CREATE/ALTER/DROP DATABASE (incl. rename and owner changes).
    Database,
    /// CREATE/ALTER/DROP TABLESPACE and ALTER … ALL IN TABLESPACE.
    Tablespace,
    /// A statement type this module does not know; refused so new syntax fails closed.
    Unsupported,
}

impl Forbidden {
    /// The refusal shown to the caller, whatever action the statement was sent to.
    fn refusal(self, command: &str) -> Refusal {
        let reason = match self {
            Forbidden::RoleSwitch => format!(
                "{command} changes the role the server's connection runs as (SET ROLE / SET SESSION AUTHORIZATION and their RESET forms); this is never accepted. Configure the connection role instead."
            ),
            Forbidden::ResetAll => "RESET ALL would discard the settings the server relies on for this connection (timeouts, read-only defaults); it is not accepted.".to_string(),
            Forbidden::SessionSetting => format!(
                "{command} changes session or transaction settings, which would leak into later calls on the pooled connection; it is not accepted. Timeouts and limits are managed by the server."
            ),
            Forbidden::AlterSystem => "ALTER SYSTEM changes server-wide configuration; it is not accepted.".to_string(),
            Forbidden::CopyProgram => "COPY … TO/FROM PROGRAM runs a shell command on the database server; it is not accepted.".to_string(),
            Forbidden::CopyServerFile => "COPY … TO/FROM a file reads or writes the database server's file system; it is not accepted. Fetch rows with pg_query read (SELECT), load them with INSERT and params via pg_query write.".to_string(),
            Forbidden::CopyStdio => "COPY … FROM STDIN / TO STDOUT needs a streaming client-side copy, which this tool cannot do. Export with a SELECT via pg_query read; import with INSERT and params via pg_query write.".to_string(),
            Forbidden::Load => "LOAD loads a shared library into the server process; it is not accepted.".to_string(),
            Forbidden::Discard => "DISCARD resets connection state (plans, temporary tables, sequences) that the pooled connection relies on; it is not accepted.".to_string(),
            Forbidden::ListenNotify => format!(
                "{command} acts on the connection's notification channels, which this tool cannot deliver or keep; it is not accepted."
            ),
            Forbidden::PreparedStatement => format!(
                "{command} is not accepted: statements run one per call on a pooled connection, so a prepared statement would not be there on the next call. Send the statement itself with $1, $2 … placeholders and pass the values as params."
            ),
            Forbidden::Cursor => format!(
                "{command} is not accepted: statements run one per call, so a cursor would not survive to the next call. Page with ORDER BY … LIMIT/OFFSET (or keyset pagination) in pg_query read."
            ),
            Forbidden::Checkpoint => "CHECKPOINT forces a server-wide checkpoint; it is not accepted.".to_string(),
            Forbidden::Database => format!(
                "{command} acts on a whole database; creating, altering and dropping databases is not accepted by this server."
            ),
            Forbidden::Tablespace => format!(
                "{command} changes tablespaces, i.e. the server's on-disk layout; it is not accepted by this server."
            ),
            Forbidden::Unsupported => format!(
                "{command} is not a statement type this server accepts in any action."
            ),
        };
        Refusal {
            reason,
            use_instead: None,
        }
    }
}

/// What kind of statement a [`Parsed`] is, independent of the action it was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementClass {
    /// SELECT/VALUES/TABLE without INTO, locking or data-modifying WITH; SHOW; EXPLAIN (no ANALYZE) of such a read.
    Read,
    /// INSERT, UPDATE, DELETE, MERGE, CALL, DO, LOCK TABLE, SELECT … FOR UPDATE/SHARE, SELECT with a data-modifying WITH.
    Write,
    /// EXPLAIN ANALYZE of anything, or EXPLAIN of a non-read: belongs to the explain action.
    Explain,
    /// Schema changes for pg_schema.
    Ddl(DdlKind),
    /// VACUUM, ANALYZE, REINDEX, CLUSTER: pg_admin.
    Admin,
    /// BEGIN/COMMIT/ROLLBACK/SAVEPOINT/…, SET TRANSACTION: pg_tx.
    TxControl,
    /// Refused in every action.
    Forbidden(Forbidden),
}

/// A single parsed statement, ready to be checked against an action.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// The statement text, without surrounding whitespace, comments or semicolons.
    sql: String,
    /// The statement's parse tree.
    stmt: NodeEnum,
    /// Facts gathered by walking the tree once (see [`Facts`]).
    facts: Facts,
    /// Command tag, e.g. "SELECT" or "DROP TABLE".
    command: &'static str,
    /// Classification of the statement.
    class: StatementClass,
    /// Everything the generic scan found anywhere in the tree (calls, operators, relations…).
    found: super::scan::Found,
}

/// Why a statement was refused by an action, and where to send it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// A message a model can act on: what was found and what to do.
    pub(crate) reason: String,
    /// The tool (and sub-action) that does accept the statement, if any.
    pub(crate) use_instead: Option<&'static str>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Refusal {}

/// What the explain action is about to explain, which decides how it may run EXPLAIN ANALYZE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExplainTarget {
    /// A read: EXPLAIN ANALYZE may run it in the read-only transaction.
    Read,
    /// Modifies data or takes row locks: EXPLAIN ANALYZE must run in a transaction that is rolled back.
    Write,
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

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
        stmt,
        facts,
        command,
        class,
        found,
    })
}

/// Cuts leading/trailing whitespace, comments and semicolons off a statement's source span.
///
/// Trailing comments must go: callers wrap reads as `SELECT * FROM (<sql>) AS q LIMIT n`,
/// and a trailing `-- comment` would swallow the closing parenthesis.
fn statement_text(span: &str) -> &str {
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
fn scan(sql: &str) -> Option<Vec<pb::ScanToken>> {
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
        matches!(self.stmt, NodeEnum::SelectStmt(_)) && self.class == StatementClass::Read
    }

    /// True for a query PostgreSQL can plan with EXPLAIN and the cost ceiling can price: a
    /// SELECT (WITH, VALUES, TABLE) or an INSERT/UPDATE/DELETE/MERGE. Not SHOW, CALL, DO or DDL.
    pub(crate) fn is_plannable(&self) -> bool {
        matches!(
            self.stmt,
            NodeEnum::SelectStmt(_)
                | NodeEnum::InsertStmt(_)
                | NodeEnum::UpdateStmt(_)
                | NodeEnum::DeleteStmt(_)
                | NodeEnum::MergeStmt(_)
        ) && matches!(self.class, StatementClass::Read | StatementClass::Write)
    }

    /// True for INSERT/UPDATE/DELETE/MERGE with a RETURNING clause (MERGE … RETURNING is PG17+).
    pub(crate) fn has_returning(&self) -> bool {
        let clause = match &self.stmt {
            NodeEnum::InsertStmt(s) => s.returning_clause.as_ref(),
            NodeEnum::UpdateStmt(s) => s.returning_clause.as_ref(),
            NodeEnum::DeleteStmt(s) => s.returning_clause.as_ref(),
            NodeEnum::MergeStmt(s) => s.returning_clause.as_ref(),
            _ => None,
        };
        clause.is_some_and(|c| !c.exprs.is_empty())
    }
}

// ---------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------

/// Generates the CREATE/ALTER/DROP command tags for each object type from one table.
macro_rules! object_tags {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// "CREATE <object>" for an object type, "CREATE" when unknown.
        fn create_tag(t: pb::ObjectType) -> &'static str {
            match t {
                $(pb::ObjectType::$variant => concat!("CREATE ", $name),)*
                _ => "CREATE",
            }
        }
        /// "ALTER <object>" for an object type, "ALTER" when unknown.
        fn alter_tag(t: pb::ObjectType) -> &'static str {
            match t {
                $(pb::ObjectType::$variant => concat!("ALTER ", $name),)*
                _ => "ALTER",
            }
        }
        /// "DROP <object>" for an object type, "DROP" when unknown.
        fn drop_tag(t: pb::ObjectType) -> &'static str {
            match t {
                $(pb::ObjectType::$variant => concat!("DROP ", $name),)*
                _ => "DROP",
            }
        }
    };
}

object_tags! {
    ObjectAccessMethod => "ACCESS METHOD",
    ObjectAggregate => "AGGREGATE",
    ObjectAmop => "OPERATOR",
    ObjectAmproc => "FUNCTION",
    ObjectAttribute => "TYPE",
    ObjectCast => "CAST",
    ObjectColumn => "TABLE",
    ObjectCollation => "COLLATION",
    ObjectConversion => "CONVERSION",
    ObjectDatabase => "DATABASE",
    ObjectDefault => "TABLE",
    ObjectDefacl => "DEFAULT PRIVILEGES",
    ObjectDomain => "DOMAIN",
    ObjectDomconstraint => "DOMAIN",
    ObjectEventTrigger => "EVENT TRIGGER",
    ObjectExtension => "EXTENSION",
    ObjectFdw => "FOREIGN DATA WRAPPER",
    ObjectForeignServer => "SERVER",
    ObjectForeignTable => "FOREIGN TABLE",
    ObjectFunction => "FUNCTION",
    ObjectIndex => "INDEX",
    ObjectLanguage => "LANGUAGE",
    ObjectLargeobject => "LARGE OBJECT",
    ObjectMatview => "MATERIALIZED VIEW",
    ObjectOpclass => "OPERATOR CLASS",
    ObjectOperator => "OPERATOR",
    ObjectOpfamily => "OPERATOR FAMILY",
    ObjectParameterAcl => "PARAMETER",
    ObjectPolicy => "POLICY",
    ObjectProcedure => "PROCEDURE",
    ObjectPublication => "PUBLICATION",
    ObjectPublicationNamespace => "PUBLICATION",
    ObjectPublicationRel => "PUBLICATION",
    ObjectRole => "ROLE",
    ObjectRoutine => "ROUTINE",
    ObjectRule => "RULE",
    ObjectSchema => "SCHEMA",
    ObjectSequence => "SEQUENCE",
    ObjectSubscription => "SUBSCRIPTION",
    ObjectStatisticExt => "STATISTICS",
    ObjectTabconstraint => "TABLE",
    ObjectTable => "TABLE",
    ObjectTablespace => "TABLESPACE",
    ObjectTransform => "TRANSFORM",
    ObjectTrigger => "TRIGGER",
    ObjectTsconfiguration => "TEXT SEARCH CONFIGURATION",
    ObjectTsdictionary => "TEXT SEARCH DICTIONARY",
    ObjectTsparser => "TEXT SEARCH PARSER",
    ObjectTstemplate => "TEXT SEARCH TEMPLATE",
    ObjectType => "TYPE",
    ObjectUserMapping => "USER MAPPING",
    ObjectView => "VIEW",
}

/// Decodes a protobuf enum field holding an object type; unknown values become `Undefined`.
fn object_type(value: i32) -> pb::ObjectType {
    pb::ObjectType::try_from(value).unwrap_or(pb::ObjectType::Undefined)
}

/// Returns `Forbidden::Database`/`Tablespace` for objects that are refused whatever the DDL verb.
fn forbidden_object(t: pb::ObjectType) -> Option<Forbidden> {
    match t {
        pb::ObjectType::ObjectDatabase => Some(Forbidden::Database),
        pb::ObjectType::ObjectTablespace => Some(Forbidden::Tablespace),
        _ => None,
    }
}

/// A role switch (`SET`/`RESET` of `role` or `session_authorization`) inside a stored
/// `LANGUAGE sql` body: it would run in the middle of a later caller's statement and leave that
/// caller's role (contract §8 "Caller roles"), so it is refused wherever stored code is checked.
pub(crate) fn role_switch_in_body(stmt: &NodeEnum) -> Option<Refusal> {
    let NodeEnum::VariableSetStmt(v) = stmt else {
        return None;
    };
    let name = v.name.to_ascii_lowercase();
    (name == "role" || name == "session_authorization").then(|| {
        Forbidden::RoleSwitch.refusal("a function body that sets role or session_authorization")
    })
}

/// Classifies a generic ALTER-like statement on an object (rename, owner, schema, …).
fn alter_object(tag: &'static str, t: pb::ObjectType) -> (&'static str, StatementClass) {
    match forbidden_object(t) {
        Some(f) => (tag, StatementClass::Forbidden(f)),
        None => (tag, StatementClass::Ddl(DdlKind::Alter)),
    }
}

/// Returns the command tag and class of a top-level statement.
fn classify(stmt: &NodeEnum, facts: &Facts) -> (&'static str, StatementClass) {
    use DdlKind::{Alter, Create, Drop};
    use StatementClass::{Admin, Ddl, Explain, Read, TxControl, Write};
    let forbidden = |tag: &'static str, f: Forbidden| (tag, StatementClass::Forbidden(f));

    match stmt {
        NodeEnum::SelectStmt(_) => {
            // INTO may sit on the leftmost arm of a UNION rather than on the top node, so
            // any IntoClause in the tree makes this a SELECT INTO (nested ones are errors anyway).
            if facts.into {
                ("SELECT INTO", Ddl(Create))
            } else if !facts.dml.is_empty() || facts.locking {
                ("SELECT", Write)
            } else {
                ("SELECT", Read)
            }
        }
        NodeEnum::InsertStmt(_) => ("INSERT", Write),
        NodeEnum::UpdateStmt(_) => ("UPDATE", Write),
        NodeEnum::DeleteStmt(_) => ("DELETE", Write),
        NodeEnum::MergeStmt(_) => ("MERGE", Write),
        NodeEnum::CallStmt(_) => ("CALL", Write),
        NodeEnum::DoStmt(_) => ("DO", Write),
        // LOCK only matters inside a transaction and takes locks: same reasoning as FOR UPDATE.
        NodeEnum::LockStmt(_) => ("LOCK TABLE", Write),
        NodeEnum::VariableShowStmt(_) => ("SHOW", Read),
        NodeEnum::ExplainStmt(e) => {
            let inner = e.query.as_deref().and_then(|n| n.node.as_ref());
            let inner_is_read = inner.is_some_and(|inner| {
                matches!(inner, NodeEnum::SelectStmt(_)) && classify(inner, facts).1 == Read
            });
            if inner_is_read && !explain_has_analyze(&e.options) {
                ("EXPLAIN", Read)
            } else {
                ("EXPLAIN", Explain)
            }
        }

        NodeEnum::TransactionStmt(t) => {
            use pb::TransactionStmtKind as K;
            let tag = match K::try_from(t.kind).unwrap_or(K::Undefined) {
                K::TransStmtBegin => "BEGIN",
                K::TransStmtStart => "START TRANSACTION",
                K::TransStmtCommit => "COMMIT",
                K::TransStmtRollback => "ROLLBACK",
                K::TransStmtSavepoint => "SAVEPOINT",
                K::TransStmtRelease => "RELEASE",
                K::TransStmtRollbackTo => "ROLLBACK TO SAVEPOINT",
                K::TransStmtPrepare => "PREPARE TRANSACTION",
                K::TransStmtCommitPrepared => "COMMIT PREPARED",
                K::TransStmtRollbackPrepared => "ROLLBACK PREPARED",
                K::Undefined => "TRANSACTION",
            };
            (tag, TxControl)
        }
        NodeEnum::VariableSetStmt(v) => {
            use pb::VariableSetKind as K;
            let kind = K::try_from(v.kind).unwrap_or(K::Undefined);
            let name = v.name.to_ascii_lowercase();
            let tag = if matches!(kind, K::VarReset | K::VarResetAll) {
                "RESET"
            } else {
                "SET"
            };
            if kind == K::VarResetAll {
                forbidden("RESET ALL", Forbidden::ResetAll)
            } else if name == "role" || name == "session_authorization" {
                forbidden(tag, Forbidden::RoleSwitch)
            } else if name == "transaction" || name == "transaction snapshot" {
                ("SET TRANSACTION", TxControl)
            } else if name == "session characteristics" {
                ("SET SESSION CHARACTERISTICS", TxControl)
            } else if name.starts_with("transaction_") {
                // SET/RESET transaction_isolation, transaction_read_only, …: the current
                // transaction's mode belongs to pg_tx, and must not be flipped from SQL.
                (tag, TxControl)
            } else {
                forbidden(tag, Forbidden::SessionSetting)
            }
        }
        NodeEnum::ConstraintsSetStmt(_) => forbidden("SET CONSTRAINTS", Forbidden::SessionSetting),

        NodeEnum::VacuumStmt(v) => (if v.is_vacuumcmd { "VACUUM" } else { "ANALYZE" }, Admin),
        NodeEnum::ReindexStmt(_) => ("REINDEX", Admin),
        NodeEnum::ClusterStmt(_) => ("CLUSTER", Admin),

        NodeEnum::AlterSystemStmt(_) => forbidden("ALTER SYSTEM", Forbidden::AlterSystem),
        NodeEnum::CopyStmt(c) => {
            let f = if c.is_program {
                Forbidden::CopyProgram
            } else if !c.filename.is_empty() {
                Forbidden::CopyServerFile
            } else {
                Forbidden::CopyStdio
            };
            forbidden("COPY", f)
        }
        NodeEnum::LoadStmt(_) => forbidden("LOAD", Forbidden::Load),
        NodeEnum::DiscardStmt(_) => forbidden("DISCARD", Forbidden::Discard),
        NodeEnum::ListenStmt(_) => forbidden("LISTEN", Forbidden::ListenNotify),
        NodeEnum::UnlistenStmt(_) => forbidden("UNLISTEN", Forbidden::ListenNotify),
        NodeEnum::NotifyStmt(_) => forbidden("NOTIFY", Forbidden::ListenNotify),
        NodeEnum::PrepareStmt(_) => forbidden("PREPARE", Forbidden::PreparedStatement),
        NodeEnum::ExecuteStmt(_) => forbidden("EXECUTE", Forbidden::PreparedStatement),
        NodeEnum::DeallocateStmt(_) => forbidden("DEALLOCATE", Forbidden::PreparedStatement),
        NodeEnum::DeclareCursorStmt(_) => forbidden("DECLARE CURSOR", Forbidden::Cursor),
        NodeEnum::FetchStmt(f) => {
            forbidden(if f.ismove { "MOVE" } else { "FETCH" }, Forbidden::Cursor)
        }
        NodeEnum::ClosePortalStmt(_) => forbidden("CLOSE CURSOR", Forbidden::Cursor),
        NodeEnum::CheckPointStmt(_) => forbidden("CHECKPOINT", Forbidden::Checkpoint),
        NodeEnum::CreatedbStmt(_) => forbidden("CREATE DATABASE", Forbidden::Database),
        NodeEnum::AlterDatabaseStmt(_)
        | NodeEnum::AlterDatabaseSetStmt(_)
        | NodeEnum::AlterDatabaseRefreshCollStmt(_) => {
            forbidden("ALTER DATABASE", Forbidden::Database)
        }
        NodeEnum::DropdbStmt(_) => forbidden("DROP DATABASE", Forbidden::Database),
        NodeEnum::CreateTableSpaceStmt(_) => forbidden("CREATE TABLESPACE", Forbidden::Tablespace),
        NodeEnum::AlterTableSpaceOptionsStmt(_) => {
            forbidden("ALTER TABLESPACE", Forbidden::Tablespace)
        }
        NodeEnum::DropTableSpaceStmt(_) => forbidden("DROP TABLESPACE", Forbidden::Tablespace),
        NodeEnum::AlterTableMoveAllStmt(m) => {
            forbidden(alter_tag(object_type(m.objtype)), Forbidden::Tablespace)
        }

        // ---- DDL: create ----
        NodeEnum::CreateStmt(_) => ("CREATE TABLE", Ddl(Create)),
        NodeEnum::CreateForeignTableStmt(_) => ("CREATE FOREIGN TABLE", Ddl(Create)),
        NodeEnum::CreateTableAsStmt(c) => {
            let tag = if c.is_select_into {
                "SELECT INTO"
            } else if object_type(c.objtype) == pb::ObjectType::ObjectMatview {
                "CREATE MATERIALIZED VIEW"
            } else {
                "CREATE TABLE AS"
            };
            (tag, Ddl(Create))
        }
        NodeEnum::IndexStmt(_) => ("CREATE INDEX", Ddl(Create)),
        NodeEnum::ViewStmt(_) => ("CREATE VIEW", Ddl(Create)),
        NodeEnum::CreateFunctionStmt(f) => (
            if f.is_procedure {
                "CREATE PROCEDURE"
            } else {
                "CREATE FUNCTION"
            },
            Ddl(Create),
        ),
        NodeEnum::CreateSchemaStmt(_) => ("CREATE SCHEMA", Ddl(Create)),
        NodeEnum::CreateSeqStmt(_) => ("CREATE SEQUENCE", Ddl(Create)),
        NodeEnum::DefineStmt(d) => (create_tag(object_type(d.kind)), Ddl(Create)),
        NodeEnum::CompositeTypeStmt(_)
        | NodeEnum::CreateEnumStmt(_)
        | NodeEnum::CreateRangeStmt(_) => ("CREATE TYPE", Ddl(Create)),
        NodeEnum::CreateDomainStmt(_) => ("CREATE DOMAIN", Ddl(Create)),
        NodeEnum::CreateExtensionStmt(_) => ("CREATE EXTENSION", Ddl(Create)),
        NodeEnum::CreateTrigStmt(_) => ("CREATE TRIGGER", Ddl(Create)),
        NodeEnum::CreateEventTrigStmt(_) => ("CREATE EVENT TRIGGER", Ddl(Create)),
        NodeEnum::CreatePolicyStmt(_) => ("CREATE POLICY", Ddl(Create)),
        NodeEnum::RuleStmt(_) => ("CREATE RULE", Ddl(Create)),
        NodeEnum::CreateCastStmt(_) => ("CREATE CAST", Ddl(Create)),
        NodeEnum::CreateConversionStmt(_) => ("CREATE CONVERSION", Ddl(Create)),
        NodeEnum::CreateOpClassStmt(_) => ("CREATE OPERATOR CLASS", Ddl(Create)),
        NodeEnum::CreateOpFamilyStmt(_) => ("CREATE OPERATOR FAMILY", Ddl(Create)),
        NodeEnum::CreateAmStmt(_) => ("CREATE ACCESS METHOD", Ddl(Create)),
        NodeEnum::CreatePlangStmt(_) => ("CREATE LANGUAGE", Ddl(Create)),
        NodeEnum::CreateFdwStmt(_) => ("CREATE FOREIGN DATA WRAPPER", Ddl(Create)),
        NodeEnum::CreateForeignServerStmt(_) => ("CREATE SERVER", Ddl(Create)),
        NodeEnum::CreateUserMappingStmt(_) => ("CREATE USER MAPPING", Ddl(Create)),
        NodeEnum::ImportForeignSchemaStmt(_) => ("IMPORT FOREIGN SCHEMA", Ddl(Create)),
        NodeEnum::CreatePublicationStmt(_) => ("CREATE PUBLICATION", Ddl(Create)),
        NodeEnum::CreateSubscriptionStmt(_) => ("CREATE SUBSCRIPTION", Ddl(Create)),
        NodeEnum::CreateStatsStmt(_) => ("CREATE STATISTICS", Ddl(Create)),
        NodeEnum::CreateTransformStmt(_) => ("CREATE TRANSFORM", Ddl(Create)),
        NodeEnum::CreateRoleStmt(r) => {
            use pb::RoleStmtType as K;
            let tag = match K::try_from(r.stmt_type).unwrap_or(K::Undefined) {
                K::RolestmtUser => "CREATE USER",
                K::RolestmtGroup => "CREATE GROUP",
                K::RolestmtRole | K::Undefined => "CREATE ROLE",
            };
            (tag, Ddl(Create))
        }

        // ---- DDL: alter ----
        NodeEnum::AlterTableStmt(a) => (alter_tag(object_type(a.objtype)), Ddl(Alter)),
        NodeEnum::RenameStmt(r) => {
            let renamed = object_type(r.rename_type);
            // Renaming a column or constraint is an ALTER of the relation that owns it.
            let tag_type = match renamed {
                pb::ObjectType::ObjectColumn | pb::ObjectType::ObjectTabconstraint => {
                    object_type(r.relation_type)
                }
                other => other,
            };
            alter_object(alter_tag(tag_type), renamed)
        }
        NodeEnum::AlterOwnerStmt(a) => {
            let t = object_type(a.object_type);
            alter_object(alter_tag(t), t)
        }
        NodeEnum::AlterObjectSchemaStmt(a) => {
            let t = object_type(a.object_type);
            alter_object(alter_tag(t), t)
        }
        NodeEnum::AlterObjectDependsStmt(a) => {
            let t = object_type(a.object_type);
            alter_object(alter_tag(t), t)
        }
        NodeEnum::AlterFunctionStmt(a) => (alter_tag(object_type(a.objtype)), Ddl(Alter)),
        NodeEnum::AlterSeqStmt(_) => ("ALTER SEQUENCE", Ddl(Alter)),
        NodeEnum::AlterTypeStmt(_) | NodeEnum::AlterEnumStmt(_) => ("ALTER TYPE", Ddl(Alter)),
        NodeEnum::AlterDomainStmt(_) => ("ALTER DOMAIN", Ddl(Alter)),
        NodeEnum::AlterCollationStmt(_) => ("ALTER COLLATION", Ddl(Alter)),
        NodeEnum::AlterOperatorStmt(_) => ("ALTER OPERATOR", Ddl(Alter)),
        NodeEnum::AlterOpFamilyStmt(_) => ("ALTER OPERATOR FAMILY", Ddl(Alter)),
        NodeEnum::AlterTsdictionaryStmt(_) => ("ALTER TEXT SEARCH DICTIONARY", Ddl(Alter)),
        NodeEnum::AlterTsconfigurationStmt(_) => ("ALTER TEXT SEARCH CONFIGURATION", Ddl(Alter)),
        NodeEnum::AlterStatsStmt(_) => ("ALTER STATISTICS", Ddl(Alter)),
        NodeEnum::AlterExtensionStmt(_) | NodeEnum::AlterExtensionContentsStmt(_) => {
            ("ALTER EXTENSION", Ddl(Alter))
        }
        NodeEnum::AlterEventTrigStmt(_) => ("ALTER EVENT TRIGGER", Ddl(Alter)),
        NodeEnum::AlterFdwStmt(_) => ("ALTER FOREIGN DATA WRAPPER", Ddl(Alter)),
        NodeEnum::AlterForeignServerStmt(_) => ("ALTER SERVER", Ddl(Alter)),
        NodeEnum::AlterUserMappingStmt(_) => ("ALTER USER MAPPING", Ddl(Alter)),
        NodeEnum::AlterPolicyStmt(_) => ("ALTER POLICY", Ddl(Alter)),
        NodeEnum::AlterPublicationStmt(_) => ("ALTER PUBLICATION", Ddl(Alter)),
        NodeEnum::AlterSubscriptionStmt(_) => ("ALTER SUBSCRIPTION", Ddl(Alter)),
        NodeEnum::AlterRoleStmt(_) | NodeEnum::AlterRoleSetStmt(_) => ("ALTER ROLE", Ddl(Alter)),
        NodeEnum::AlterDefaultPrivilegesStmt(_) => ("ALTER DEFAULT PRIVILEGES", Ddl(Alter)),
        NodeEnum::GrantStmt(g) => (if g.is_grant { "GRANT" } else { "REVOKE" }, Ddl(Alter)),
        NodeEnum::GrantRoleStmt(g) => (if g.is_grant { "GRANT" } else { "REVOKE" }, Ddl(Alter)),
        NodeEnum::ReassignOwnedStmt(_) => ("REASSIGN OWNED", Ddl(Alter)),
        NodeEnum::CommentStmt(_) => ("COMMENT", Ddl(Alter)),
        NodeEnum::SecLabelStmt(_) => ("SECURITY LABEL", Ddl(Alter)),
        // REFRESH replaces a materialized view's contents: a change to an object, not a DML
        // statement on rows the caller chose, so it sits with ALTER.
        NodeEnum::RefreshMatViewStmt(_) => ("REFRESH MATERIALIZED VIEW", Ddl(Alter)),

        // ---- DDL: drop ----
        NodeEnum::DropStmt(d) => (drop_tag(object_type(d.remove_type)), Ddl(Drop)),
        NodeEnum::DropRoleStmt(_) => ("DROP ROLE", Ddl(Drop)),
        NodeEnum::DropOwnedStmt(_) => ("DROP OWNED", Ddl(Drop)),
        NodeEnum::DropUserMappingStmt(_) => ("DROP USER MAPPING", Ddl(Drop)),
        NodeEnum::DropSubscriptionStmt(_) => ("DROP SUBSCRIPTION", Ddl(Drop)),
        // See the module docs: TRUNCATE is not MVCC-safe, so it goes with the destructive DDL.
        NodeEnum::TruncateStmt(_) => ("TRUNCATE TABLE", Ddl(Drop)),

        _ => forbidden("this statement", Forbidden::Unsupported),
    }
}

/// True when EXPLAIN's options ask for ANALYZE, i.e. EXPLAIN would execute the statement.
///
/// Mirrors PostgreSQL's defGetBoolean: no value means true, and only an explicit
/// false/off/0 turns it off. Anything unexpected counts as ANALYZE (fail closed).
fn explain_has_analyze(options: &[Node]) -> bool {
    options.iter().any(|option| {
        let Some(NodeEnum::DefElem(d)) = option.node.as_ref() else {
            return false;
        };
        if !(d.defname.eq_ignore_ascii_case("analyze") || d.defname.eq_ignore_ascii_case("analyse"))
        {
            return false;
        }
        match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
            None => true,
            Some(NodeEnum::String(s)) => !matches!(
                s.sval.to_ascii_lowercase().as_str(),
                "false" | "off" | "0" | "no"
            ),
            Some(NodeEnum::Integer(i)) => i.ival != 0,
            Some(NodeEnum::Boolean(b)) => b.boolval,
            Some(_) => true,
        }
    })
}

// ---------------------------------------------------------------------------------------
// Tree walk
// ---------------------------------------------------------------------------------------

/// What a full walk of a statement's tree found.
#[derive(Debug, Clone, Default)]
struct Facts {
    /// Whether the tree was walked at all (only for statements whose checks need it).
    walked: bool,
    /// INSERT/UPDATE/DELETE/MERGE nodes found anywhere (the root included), in visiting order.
    dml: Vec<&'static str>,
    /// A FOR UPDATE/SHARE/… clause somewhere.
    locking: bool,
    /// An INTO clause somewhere (SELECT … INTO, CREATE TABLE … AS).
    into: bool,
    /// Unqualified, lower-cased name of every function called, in visiting order.
    functions: Vec<String>,
    /// The first node type the walker has no rule for; checks refuse when set.
    unknown: Option<String>,
}

/// Walks the parts of a statement that the checks look at.
///
/// DDL is not walked in general (pg_schema is a privileged action that runs what it is
/// given), except the queries embedded in CREATE TABLE AS / CREATE VIEW, which can hide
/// data-modifying WITH clauses or denylisted calls that a later read would trigger.
fn walk_statement(stmt: &NodeEnum) -> Facts {
    match stmt {
        NodeEnum::SelectStmt(_)
        | NodeEnum::InsertStmt(_)
        | NodeEnum::UpdateStmt(_)
        | NodeEnum::DeleteStmt(_)
        | NodeEnum::MergeStmt(_)
        | NodeEnum::CallStmt(_)
        | NodeEnum::DoStmt(_)
        | NodeEnum::LockStmt(_)
        | NodeEnum::ExplainStmt(_)
        | NodeEnum::VariableShowStmt(_) => walk(vec![stmt.to_ref()]),
        NodeEnum::CreateTableAsStmt(c) => {
            let mut roots = Vec::new();
            if let Some(query) = c.query.as_deref().and_then(|n| n.node.as_ref()) {
                roots.push(query.to_ref());
            }
            walk(roots)
        }
        NodeEnum::ViewStmt(v) => {
            let mut roots = Vec::new();
            if let Some(query) = v.query.as_deref().and_then(|n| n.node.as_ref()) {
                roots.push(query.to_ref());
            }
            walk(roots)
        }
        _ => Facts::default(),
    }
}

/// Pushes child nodes onto the walker's stack.
struct Children<'a, 's> {
    stack: &'s mut Vec<NodeRef<'a>>,
}

impl<'a> Children<'a, '_> {
    fn push(&mut self, node: NodeRef<'a>) {
        self.stack.push(node);
    }
    fn node(&mut self, node: &'a Node) {
        if let Some(inner) = node.node.as_ref() {
            self.stack.push(inner.to_ref());
        }
    }
    fn opt(&mut self, node: &'a Option<Box<Node>>) {
        if let Some(node) = node.as_deref() {
            self.node(node);
        }
    }
    fn list(&mut self, nodes: &'a [Node]) {
        for node in nodes {
            self.node(node);
        }
    }
}

/// The last identifier of a qualified name list: `pg_catalog.pg_read_file` → `pg_read_file`.
fn last_name(names: &[Node]) -> Option<&str> {
    match names.last().and_then(|n| n.node.as_ref()) {
        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
        _ => None,
    }
}

/// The variant name of a node, for messages about node types the walker does not know.
fn node_kind(node: NodeRef<'_>) -> String {
    let debug = format!("{node:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or("unknown")
        .to_string()
}

/// Walks every node below `roots` (iteratively: deep nesting must not overflow the stack).
fn walk(roots: Vec<NodeRef<'_>>) -> Facts {
    let mut facts = Facts {
        walked: true,
        ..Facts::default()
    };
    let mut stack = roots;
    while let Some(node) = stack.pop() {
        let mut kids = Children { stack: &mut stack };
        visit(node, &mut kids, &mut facts);
    }
    facts
}

/// Records facts about one node and queues its children.
///
/// Every struct with child nodes is destructured without `..`, so when a pg_query upgrade
/// adds a field the code stops compiling until someone decides whether to walk it. Only
/// raw-parser node types reachable from the walked statements are listed; anything else
/// (analyzer-only nodes, DDL pieces) is recorded as unknown and makes the checks refuse.
fn visit<'a>(node: NodeRef<'a>, k: &mut Children<'a, '_>, facts: &mut Facts) {
    match node {
        // ---- leaves: no child nodes ----
        NodeRef::Integer(_)
        | NodeRef::Float(_)
        | NodeRef::Boolean(_)
        | NodeRef::String(_)
        | NodeRef::BitString(_)
        | NodeRef::AConst(_)
        | NodeRef::ParamRef(_)
        | NodeRef::AStar(_)
        | NodeRef::RoleSpec(_)
        | NodeRef::JsonFormat(_)
        | NodeRef::ReturningOption(_)
        | NodeRef::VariableShowStmt(_) => {}

        NodeRef::List(l) => k.list(&l.items),

        // ---- statements ----
        NodeRef::SelectStmt(s) => {
            let pb::SelectStmt {
                distinct_clause,
                into_clause,
                target_list,
                from_clause,
                where_clause,
                group_clause,
                group_distinct: _,
                having_clause,
                window_clause,
                values_lists,
                sort_clause,
                limit_offset,
                limit_count,
                limit_option: _,
                locking_clause,
                with_clause,
                op: _,
                all: _,
                larg,
                rarg,
            } = s;
            if let Some(into) = into_clause.as_deref() {
                k.push(NodeRef::IntoClause(into));
            }
            k.list(distinct_clause);
            k.list(target_list);
            k.list(from_clause);
            k.opt(where_clause);
            k.list(group_clause);
            k.opt(having_clause);
            k.list(window_clause);
            k.list(values_lists);
            k.list(sort_clause);
            k.opt(limit_offset);
            k.opt(limit_count);
            k.list(locking_clause);
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
            for arm in [larg, rarg].into_iter().flatten() {
                k.push(NodeRef::SelectStmt(arm));
            }
        }
        NodeRef::InsertStmt(s) => {
            facts.dml.push("INSERT");
            let pb::InsertStmt {
                relation,
                cols,
                select_stmt,
                on_conflict_clause,
                returning_clause,
                with_clause,
                r#override: _,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(cols);
            k.opt(select_stmt);
            if let Some(c) = on_conflict_clause.as_deref() {
                k.push(NodeRef::OnConflictClause(c));
            }
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::UpdateStmt(s) => {
            facts.dml.push("UPDATE");
            let pb::UpdateStmt {
                relation,
                target_list,
                where_clause,
                from_clause,
                returning_clause,
                with_clause,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(target_list);
            k.opt(where_clause);
            k.list(from_clause);
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::DeleteStmt(s) => {
            facts.dml.push("DELETE");
            let pb::DeleteStmt {
                relation,
                using_clause,
                where_clause,
                returning_clause,
                with_clause,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(using_clause);
            k.opt(where_clause);
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::MergeStmt(s) => {
            facts.dml.push("MERGE");
            let pb::MergeStmt {
                relation,
                source_relation,
                join_condition,
                merge_when_clauses,
                returning_clause,
                with_clause,
            } = s;
            if let Some(r) = relation {
                k.push(NodeRef::RangeVar(r));
            }
            k.opt(source_relation);
            k.opt(join_condition);
            k.list(merge_when_clauses);
            if let Some(r) = returning_clause {
                k.push(NodeRef::ReturningClause(r));
            }
            if let Some(w) = with_clause {
                k.push(NodeRef::WithClause(w));
            }
        }
        NodeRef::CallStmt(s) => {
            let pb::CallStmt {
                funccall,
                funcexpr,
                outargs,
            } = s;
            if let Some(f) = funccall.as_deref() {
                k.push(NodeRef::FuncCall(f));
            }
            // Only set after parse analysis; if it ever shows up it is reported as unknown.
            if let Some(f) = funcexpr.as_deref() {
                k.push(NodeRef::FuncExpr(f));
            }
            k.list(outargs);
        }
        NodeRef::DoStmt(s) => {
            // The body is an opaque string for the procedural language; only the write action accepts DO.
            let pb::DoStmt { args } = s;
            k.list(args);
        }
        NodeRef::LockStmt(s) => {
            let pb::LockStmt {
                relations,
                mode: _,
                nowait: _,
            } = s;
            k.list(relations);
        }
        NodeRef::ExplainStmt(s) => {
            let pb::ExplainStmt { query, options } = s;
            k.opt(query);
            k.list(options);
        }

        // ---- clauses ----
        NodeRef::IntoClause(c) => {
            facts.into = true;
            let pb::IntoClause {
                rel,
                col_names,
                access_method: _,
                options,
                on_commit: _,
                table_space_name: _,
                view_query,
                skip_data: _,
            } = c;
            if let Some(r) = rel {
                k.push(NodeRef::RangeVar(r));
            }
            k.list(col_names);
            k.list(options);
            if let Some(q) = view_query.as_deref() {
                k.push(NodeRef::Query(q));
            }
        }
        NodeRef::WithClause(w) => {
            let pb::WithClause {
                ctes,
                recursive: _,
                location: _,
            } = w;
            k.list(ctes);
        }
        NodeRef::CommonTableExpr(c) => {
            let pb::CommonTableExpr {
                ctename: _,
                aliascolnames,
                ctematerialized: _,
                ctequery,
                search_clause,
                cycle_clause,
                location: _,
                cterecursive: _,
                cterefcount: _,
                ctecolnames,
                ctecoltypes,
                ctecoltypmods,
                ctecolcollations,
            } = c;
            k.list(aliascolnames);
            k.opt(ctequery);
            if let Some(s) = search_clause {
                k.push(NodeRef::CtesearchClause(s));
            }
            if let Some(c) = cycle_clause.as_deref() {
                k.push(NodeRef::CtecycleClause(c));
            }
            k.list(ctecolnames);
            k.list(ctecoltypes);
            k.list(ctecoltypmods);
            k.list(ctecolcollations);
        }
        NodeRef::CtesearchClause(c) => {
            let pb::CteSearchClause {
                search_col_list,
                search_breadth_first: _,
                search_seq_column: _,
                location: _,
            } = c;
            k.list(search_col_list);
        }
        NodeRef::CtecycleClause(c) => {
            let pb::CteCycleClause {
                cycle_col_list,
                cycle_mark_column: _,
                cycle_mark_value,
                cycle_mark_default,
                cycle_path_column: _,
                location: _,
                cycle_mark_type: _,
                cycle_mark_typmod: _,
                cycle_mark_collation: _,
                cycle_mark_neop: _,
            } = c;
            k.list(cycle_col_list);
            k.opt(cycle_mark_value);
            k.opt(cycle_mark_default);
        }
        NodeRef::LockingClause(c) => {
            facts.locking = true;
            let pb::LockingClause {
                locked_rels,
                strength: _,
                wait_policy: _,
            } = c;
            k.list(locked_rels);
        }
        NodeRef::OnConflictClause(c) => {
            let pb::OnConflictClause {
                action: _,
                infer,
                target_list,
                where_clause,
                location: _,
            } = c;
            if let Some(i) = infer.as_deref() {
                k.push(NodeRef::InferClause(i));
            }
            k.list(target_list);
            k.opt(where_clause);
        }
        NodeRef::InferClause(c) => {
            let pb::InferClause {
                index_elems,
                where_clause,
                conname: _,
                location: _,
            } = c;
            k.list(index_elems);
            k.opt(where_clause);
        }
        NodeRef::IndexElem(e) => {
            let pb::IndexElem {
                name: _,
                expr,
                indexcolname: _,
                collation,
                opclass,
                opclassopts,
                ordering: _,
                nulls_ordering: _,
            } = e;
            k.opt(expr);
            k.list(collation);
            k.list(opclass);
            k.list(opclassopts);
        }
        NodeRef::ReturningClause(r) => {
            let pb::ReturningClause { options, exprs } = r;
            k.list(options);
            k.list(exprs);
        }
        NodeRef::MergeWhenClause(m) => {
            let pb::MergeWhenClause {
                match_kind: _,
                command_type: _,
                r#override: _,
                condition,
                target_list,
                values,
            } = m;
            k.opt(condition);
            k.list(target_list);
            k.list(values);
        }
        NodeRef::DefElem(d) => {
            let pb::DefElem {
                defnamespace: _,
                defname: _,
                arg,
                defaction: _,
                location: _,
                arg_location: _,
            } = d;
            k.opt(arg);
        }
        NodeRef::ResTarget(r) => {
            let pb::ResTarget {
                name: _,
                indirection,
                val,
                location: _,
            } = r;
            k.list(indirection);
            k.opt(val);
        }
        NodeRef::MultiAssignRef(m) => {
            let pb::MultiAssignRef {
                source,
                colno: _,
                ncolumns: _,
            } = m;
            k.opt(source);
        }
        NodeRef::SortBy(s) => {
            let pb::SortBy {
                node,
                sortby_dir: _,
                sortby_nulls: _,
                use_op,
                location: _,
            } = s;
            k.opt(node);
            k.list(use_op);
        }
        NodeRef::WindowDef(w) => {
            let pb::WindowDef {
                name: _,
                refname: _,
                partition_clause,
                order_clause,
                frame_options: _,
                start_offset,
                end_offset,
                location: _,
            } = w;
            k.list(partition_clause);
            k.list(order_clause);
            k.opt(start_offset);
            k.opt(end_offset);
        }
        NodeRef::GroupingSet(g) => {
            let pb::GroupingSet {
                kind: _,
                content,
                location: _,
            } = g;
            k.list(content);
        }

        // ---- FROM items ----
        NodeRef::RangeVar(r) => {
            let pb::RangeVar {
                catalogname: _,
                schemaname: _,
                relname: _,
                inh: _,
                relpersistence: _,
                alias,
                location: _,
            } = r;
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::Alias(a) => {
            let pb::Alias {
                aliasname: _,
                colnames,
            } = a;
            k.list(colnames);
        }
        NodeRef::RangeSubselect(r) => {
            let pb::RangeSubselect {
                lateral: _,
                subquery,
                alias,
            } = r;
            k.opt(subquery);
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::RangeFunction(r) => {
            let pb::RangeFunction {
                lateral: _,
                ordinality: _,
                is_rowsfrom: _,
                functions,
                alias,
                coldeflist,
            } = r;
            k.list(functions);
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
            k.list(coldeflist);
        }
        NodeRef::RangeTableSample(r) => {
            let pb::RangeTableSample {
                relation,
                method,
                args,
                repeatable,
                location: _,
            } = r;
            k.opt(relation);
            k.list(method);
            k.list(args);
            k.opt(repeatable);
        }
        NodeRef::RangeTableFunc(r) => {
            let pb::RangeTableFunc {
                lateral: _,
                docexpr,
                rowexpr,
                namespaces,
                columns,
                alias,
                location: _,
            } = r;
            k.opt(docexpr);
            k.opt(rowexpr);
            k.list(namespaces);
            k.list(columns);
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::RangeTableFuncCol(c) => {
            let pb::RangeTableFuncCol {
                colname: _,
                type_name,
                for_ordinality: _,
                is_not_null: _,
                colexpr,
                coldefexpr,
                location: _,
            } = c;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            k.opt(colexpr);
            k.opt(coldefexpr);
        }
        NodeRef::JoinExpr(j) => {
            let pb::JoinExpr {
                jointype: _,
                is_natural: _,
                larg,
                rarg,
                using_clause,
                join_using_alias,
                quals,
                alias,
                rtindex: _,
            } = j;
            k.opt(larg);
            k.opt(rarg);
            k.list(using_clause);
            for a in [join_using_alias, alias].into_iter().flatten() {
                k.push(NodeRef::Alias(a));
            }
            k.opt(quals);
        }
        NodeRef::ColumnDef(c) => {
            // Column definition lists of functions in FROM: `AS t(a int, b text)`.
            let pb::ColumnDef {
                colname: _,
                type_name,
                compression: _,
                inhcount: _,
                is_local: _,
                is_not_null: _,
                is_from_type: _,
                storage: _,
                storage_name: _,
                raw_default,
                cooked_default,
                identity: _,
                identity_sequence,
                generated: _,
                coll_clause,
                coll_oid: _,
                constraints,
                fdwoptions,
                location: _,
            } = c;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            k.opt(raw_default);
            k.opt(cooked_default);
            if let Some(r) = identity_sequence {
                k.push(NodeRef::RangeVar(r));
            }
            if let Some(c) = coll_clause.as_deref() {
                k.push(NodeRef::CollateClause(c));
            }
            k.list(constraints);
            k.list(fdwoptions);
        }

        // ---- expressions ----
        NodeRef::FuncCall(f) => {
            let pb::FuncCall {
                funcname,
                args,
                agg_order,
                agg_filter,
                over,
                agg_within_group: _,
                agg_star: _,
                agg_distinct: _,
                func_variadic: _,
                funcformat: _,
                location: _,
            } = f;
            if let Some(name) = last_name(funcname) {
                facts.functions.push(name.to_lowercase());
            }
            k.list(funcname);
            k.list(args);
            k.list(agg_order);
            k.opt(agg_filter);
            if let Some(w) = over.as_deref() {
                k.push(NodeRef::WindowDef(w));
            }
        }
        NodeRef::NamedArgExpr(n) => {
            let pb::NamedArgExpr {
                xpr,
                arg,
                name: _,
                argnumber: _,
                location: _,
            } = n;
            k.opt(xpr);
            k.opt(arg);
        }
        NodeRef::AExpr(e) => {
            let pb::AExpr {
                kind: _,
                name,
                lexpr,
                rexpr,
                rexpr_list_start: _,
                rexpr_list_end: _,
                location: _,
            } = e;
            k.list(name);
            k.opt(lexpr);
            k.opt(rexpr);
        }
        NodeRef::ColumnRef(c) => {
            // Attribute notation (`x.f` meaning `f(x)`) only resolves functions whose single
            // argument is a composite type; none of the denylisted functions take one, so
            // column references are not treated as calls.
            let pb::ColumnRef {
                fields,
                location: _,
            } = c;
            k.list(fields);
        }
        NodeRef::AIndices(i) => {
            let pb::AIndices {
                is_slice: _,
                lidx,
                uidx,
            } = i;
            k.opt(lidx);
            k.opt(uidx);
        }
        NodeRef::AIndirection(i) => {
            let pb::AIndirection { arg, indirection } = i;
            k.opt(arg);
            k.list(indirection);
        }
        NodeRef::AArrayExpr(a) => {
            let pb::AArrayExpr {
                elements,
                list_start: _,
                list_end: _,
                location: _,
            } = a;
            k.list(elements);
        }
        NodeRef::TypeCast(t) => {
            let pb::TypeCast {
                arg,
                type_name,
                location: _,
            } = t;
            k.opt(arg);
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
        }
        NodeRef::TypeName(t) => {
            let pb::TypeName {
                names,
                type_oid: _,
                setof: _,
                pct_type: _,
                typmods,
                typemod: _,
                array_bounds,
                location: _,
            } = t;
            k.list(names);
            k.list(typmods);
            k.list(array_bounds);
        }
        NodeRef::CollateClause(c) => {
            let pb::CollateClause {
                arg,
                collname,
                location: _,
            } = c;
            k.opt(arg);
            k.list(collname);
        }
        NodeRef::SubLink(s) => {
            let pb::SubLink {
                xpr,
                sub_link_type: _,
                sub_link_id: _,
                testexpr,
                oper_name,
                subselect,
                location: _,
            } = s;
            k.opt(xpr);
            k.opt(testexpr);
            k.list(oper_name);
            k.opt(subselect);
        }
        NodeRef::BoolExpr(b) => {
            let pb::BoolExpr {
                xpr,
                boolop: _,
                args,
                location: _,
            } = b;
            k.opt(xpr);
            k.list(args);
        }
        NodeRef::NullTest(n) => {
            let pb::NullTest {
                xpr,
                arg,
                nulltesttype: _,
                argisrow: _,
                location: _,
            } = n;
            k.opt(xpr);
            k.opt(arg);
        }
        NodeRef::BooleanTest(b) => {
            let pb::BooleanTest {
                xpr,
                arg,
                booltesttype: _,
                location: _,
            } = b;
            k.opt(xpr);
            k.opt(arg);
        }
        NodeRef::CaseExpr(c) => {
            let pb::CaseExpr {
                xpr,
                casetype: _,
                casecollid: _,
                arg,
                args,
                defresult,
                location: _,
            } = c;
            k.opt(xpr);
            k.opt(arg);
            k.list(args);
            k.opt(defresult);
        }
        NodeRef::CaseWhen(c) => {
            let pb::CaseWhen {
                xpr,
                expr,
                result,
                location: _,
            } = c;
            k.opt(xpr);
            k.opt(expr);
            k.opt(result);
        }
        NodeRef::CoalesceExpr(c) => {
            let pb::CoalesceExpr {
                xpr,
                coalescetype: _,
                coalescecollid: _,
                args,
                location: _,
            } = c;
            k.opt(xpr);
            k.list(args);
        }
        NodeRef::MinMaxExpr(m) => {
            let pb::MinMaxExpr {
                xpr,
                minmaxtype: _,
                minmaxcollid: _,
                inputcollid: _,
                op: _,
                args,
                location: _,
            } = m;
            k.opt(xpr);
            k.list(args);
        }
        NodeRef::RowExpr(r) => {
            let pb::RowExpr {
                xpr,
                args,
                row_typeid: _,
                row_format: _,
                colnames,
                location: _,
            } = r;
            k.opt(xpr);
            k.list(args);
            k.list(colnames);
        }
        NodeRef::SqlvalueFunction(s) => {
            let pb::SqlValueFunction {
                xpr,
                op: _,
                r#type: _,
                typmod: _,
                location: _,
            } = s;
            k.opt(xpr);
        }
        NodeRef::SetToDefault(s) => {
            let pb::SetToDefault {
                xpr,
                type_id: _,
                type_mod: _,
                collation: _,
                location: _,
            } = s;
            k.opt(xpr);
        }
        NodeRef::CurrentOfExpr(c) => {
            let pb::CurrentOfExpr {
                xpr,
                cvarno: _,
                cursor_name: _,
                cursor_param: _,
            } = c;
            k.opt(xpr);
        }
        NodeRef::MergeSupportFunc(m) => {
            let pb::MergeSupportFunc {
                xpr,
                msftype: _,
                msfcollid: _,
                location: _,
            } = m;
            k.opt(xpr);
        }
        NodeRef::GroupingFunc(g) => {
            let pb::GroupingFunc {
                xpr,
                args,
                refs,
                agglevelsup: _,
                location: _,
            } = g;
            k.opt(xpr);
            k.list(args);
            k.list(refs);
        }
        NodeRef::XmlExpr(x) => {
            let pb::XmlExpr {
                xpr,
                op: _,
                name: _,
                named_args,
                arg_names,
                args,
                xmloption: _,
                indent: _,
                r#type: _,
                typmod: _,
                location: _,
            } = x;
            k.opt(xpr);
            k.list(named_args);
            k.list(arg_names);
            k.list(args);
        }
        NodeRef::XmlSerialize(x) => {
            let pb::XmlSerialize {
                xmloption: _,
                expr,
                type_name,
                indent: _,
                location: _,
            } = x;
            k.opt(expr);
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
        }

        // ---- SQL/JSON ----
        NodeRef::JsonValueExpr(j) => {
            let pb::JsonValueExpr {
                raw_expr,
                formatted_expr,
                format,
            } = j;
            k.opt(raw_expr);
            k.opt(formatted_expr);
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonOutput(j) => {
            let pb::JsonOutput {
                type_name,
                returning,
            } = j;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            if let Some(r) = returning {
                k.push(NodeRef::JsonReturning(r));
            }
        }
        NodeRef::JsonReturning(j) => {
            let pb::JsonReturning {
                format,
                typid: _,
                typmod: _,
            } = j;
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonKeyValue(j) => {
            let pb::JsonKeyValue { key, value } = j;
            k.opt(key);
            if let Some(v) = value.as_deref() {
                k.push(NodeRef::JsonValueExpr(v));
            }
        }
        NodeRef::JsonObjectConstructor(j) => {
            let pb::JsonObjectConstructor {
                exprs,
                output,
                absent_on_null: _,
                unique: _,
                location: _,
            } = j;
            k.list(exprs);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonArrayConstructor(j) => {
            let pb::JsonArrayConstructor {
                exprs,
                output,
                absent_on_null: _,
                location: _,
            } = j;
            k.list(exprs);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonArrayQueryConstructor(j) => {
            let pb::JsonArrayQueryConstructor {
                query,
                output,
                format,
                absent_on_null: _,
                location: _,
            } = j;
            k.opt(query);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonAggConstructor(j) => {
            let pb::JsonAggConstructor {
                output,
                agg_filter,
                agg_order,
                over,
                location: _,
            } = j;
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
            k.opt(agg_filter);
            k.list(agg_order);
            if let Some(w) = over.as_deref() {
                k.push(NodeRef::WindowDef(w));
            }
        }
        NodeRef::JsonObjectAgg(j) => {
            let pb::JsonObjectAgg {
                constructor,
                arg,
                absent_on_null: _,
                unique: _,
            } = j;
            if let Some(c) = constructor.as_deref() {
                k.push(NodeRef::JsonAggConstructor(c));
            }
            if let Some(a) = arg.as_deref() {
                k.push(NodeRef::JsonKeyValue(a));
            }
        }
        NodeRef::JsonArrayAgg(j) => {
            let pb::JsonArrayAgg {
                constructor,
                arg,
                absent_on_null: _,
            } = j;
            if let Some(c) = constructor.as_deref() {
                k.push(NodeRef::JsonAggConstructor(c));
            }
            if let Some(a) = arg.as_deref() {
                k.push(NodeRef::JsonValueExpr(a));
            }
        }
        NodeRef::JsonParseExpr(j) => {
            let pb::JsonParseExpr {
                expr,
                output,
                unique_keys: _,
                location: _,
            } = j;
            if let Some(e) = expr.as_deref() {
                k.push(NodeRef::JsonValueExpr(e));
            }
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonScalarExpr(j) => {
            let pb::JsonScalarExpr {
                expr,
                output,
                location: _,
            } = j;
            k.opt(expr);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonSerializeExpr(j) => {
            let pb::JsonSerializeExpr {
                expr,
                output,
                location: _,
            } = j;
            if let Some(e) = expr.as_deref() {
                k.push(NodeRef::JsonValueExpr(e));
            }
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
        }
        NodeRef::JsonIsPredicate(j) => {
            let pb::JsonIsPredicate {
                expr,
                format,
                item_type: _,
                unique_keys: _,
                location: _,
            } = j;
            k.opt(expr);
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
        }
        NodeRef::JsonFuncExpr(j) => {
            let pb::JsonFuncExpr {
                op: _,
                column_name: _,
                context_item,
                pathspec,
                passing,
                output,
                on_empty,
                on_error,
                wrapper: _,
                quotes: _,
                location: _,
            } = j;
            if let Some(c) = context_item.as_deref() {
                k.push(NodeRef::JsonValueExpr(c));
            }
            k.opt(pathspec);
            k.list(passing);
            if let Some(o) = output {
                k.push(NodeRef::JsonOutput(o));
            }
            for b in [on_empty, on_error].into_iter().flatten() {
                k.push(NodeRef::JsonBehavior(b));
            }
        }
        NodeRef::JsonArgument(j) => {
            let pb::JsonArgument { val, name: _ } = j;
            if let Some(v) = val.as_deref() {
                k.push(NodeRef::JsonValueExpr(v));
            }
        }
        NodeRef::JsonBehavior(j) => {
            let pb::JsonBehavior {
                btype: _,
                expr,
                coerce: _,
                location: _,
            } = j;
            k.opt(expr);
        }
        NodeRef::JsonTable(j) => {
            let pb::JsonTable {
                context_item,
                pathspec,
                passing,
                columns,
                on_error,
                alias,
                lateral: _,
                location: _,
            } = j;
            if let Some(c) = context_item.as_deref() {
                k.push(NodeRef::JsonValueExpr(c));
            }
            if let Some(p) = pathspec.as_deref() {
                k.push(NodeRef::JsonTablePathSpec(p));
            }
            k.list(passing);
            k.list(columns);
            if let Some(b) = on_error.as_deref() {
                k.push(NodeRef::JsonBehavior(b));
            }
            if let Some(a) = alias {
                k.push(NodeRef::Alias(a));
            }
        }
        NodeRef::JsonTablePathSpec(j) => {
            let pb::JsonTablePathSpec {
                string,
                name: _,
                name_location: _,
                location: _,
            } = j;
            k.opt(string);
        }
        NodeRef::JsonTableColumn(j) => {
            let pb::JsonTableColumn {
                coltype: _,
                name: _,
                type_name,
                pathspec,
                format,
                wrapper: _,
                quotes: _,
                columns,
                on_empty,
                on_error,
                location: _,
            } = j;
            if let Some(t) = type_name {
                k.push(NodeRef::TypeName(t));
            }
            if let Some(p) = pathspec.as_deref() {
                k.push(NodeRef::JsonTablePathSpec(p));
            }
            if let Some(f) = format {
                k.push(NodeRef::JsonFormat(f));
            }
            k.list(columns);
            for b in [on_empty, on_error].into_iter().flatten() {
                k.push(NodeRef::JsonBehavior(b));
            }
        }

        // Anything else is not produced by the raw parser inside the statements we walk
        // (analyzer nodes such as Query or FuncExpr, DDL pieces such as Constraint). Fail closed.
        other => {
            if facts.unknown.is_none() {
                facts.unknown = Some(node_kind(other));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Function denylist
// ---------------------------------------------------------------------------------------

/// How a denylist entry matches a function's (unqualified, lower-cased) name.
#[derive(Debug, Clone, Copy)]
enum NameMatch {
    /// The whole name.
    Exact(&'static str),
    /// Every name starting with this (function families such as `dblink*`).
    Prefix(&'static str),
}

/// One denylisted function (or family).
#[derive(Debug, Clone, Copy)]
struct DeniedFunction {
    /// Which names the entry covers.
    name: NameMatch,
    /// `true`: refused in every action that is walked (reads, writes, explain, embedded DDL
    /// queries) because the effect escapes the transaction or the SQL cannot be checked.
    /// `false`: refused only in reads (and explain of reads); a normal part of writes.
    everywhere: bool,
    /// Completes "function X is not allowed …: <why>".
    why: &'static str,
}

/// Shorthand constructors keep the table below one line per entry.
const fn exact(name: &'static str, everywhere: bool, why: &'static str) -> DeniedFunction {
    DeniedFunction {
        name: NameMatch::Exact(name),
        everywhere,
        why,
    }
}
const fn prefix(name: &'static str, everywhere: bool, why: &'static str) -> DeniedFunction {
    DeniedFunction {
        name: NameMatch::Prefix(name),
        everywhere,
        why,
    }
}

const SIGNALS: &str = "it signals or controls other server processes";
const SERVER_STATE: &str = "it changes server-wide state outside the transaction";
const FILES: &str = "it accesses the database server's file system";
const REMOTE: &str = "it opens connections to other databases, outside this transaction";
const SESSION: &str = "it changes session state that outlives the call on a pooled connection";
const SESSION_LOCK: &str = "it takes or releases session-level advisory locks that outlive the call on a pooled connection";
const XACT_LOCK: &str = "it takes advisory locks; run it in a pg_tx session via pg_query write";
const SEQUENCE: &str =
    "it advances or sets a sequence, which is not rolled back; use pg_query write";
const LARGE_OBJECT: &str = "it creates, opens or modifies large objects; use pg_query write";
const NOTIFY: &str = "it sends notifications to other sessions";
const WAL: &str = "it acts on WAL, backups or replication, outside the transaction";
const HIDDEN_SQL: &str = "it runs SQL given as a string, which cannot be checked";
const STATS: &str = "it resets or overwrites statistics, which is not transactional";
const SEED: &str =
    "it seeds random() for the rest of the connection's life, a state that outlives the call";
const INDEX_STATE: &str =
    "it changes index state that a rollback does not undo; use pg_query write (or pg_admin)";

/// Functions refused by the checks, matched on the unqualified name, case-insensitively,
/// whatever the schema (`pg_catalog.pg_read_file`, `"pg_read_file"`), wherever they are
/// called: target list, FROM (incl. LATERAL and ROWS FROM), WHERE, subqueries, CTEs,
/// arguments, ORDER BY, window clauses, CALL.
///
/// The read-only transaction already stops most writes; this list is about what it does
/// not stop. Add entries freely: a false refusal is cheap, a missed side effect is not.
/// Deliberately absent: pg_sleep* (harmless; statement timeouts bound it), currval and
/// txid_current / pg_current_xact_id (harmless in a read-only transaction), lo_get / loread.
const DENIED_FUNCTIONS: &[DeniedFunction] = &[
    // Other backends and server processes.
    exact("pg_terminate_backend", true, SIGNALS),
    exact("pg_cancel_backend", true, SIGNALS),
    exact("pg_signal_backend", true, SIGNALS),
    exact("pg_log_backend_memory_contexts", true, SIGNALS),
    exact("pg_promote", true, SIGNALS),
    // Server configuration and logs.
    exact("pg_reload_conf", true, SERVER_STATE),
    exact("pg_rotate_logfile", true, SERVER_STATE),
    exact("pg_import_system_collations", true, SERVER_STATE),
    // Server file system (core and adminpack).
    prefix("pg_read_file", true, FILES),
    prefix("pg_read_binary_file", true, FILES),
    prefix("pg_ls_", true, FILES),
    exact("pg_stat_file", true, FILES),
    exact("pg_file_write", true, FILES),
    exact("pg_file_rename", true, FILES),
    exact("pg_file_unlink", true, FILES),
    exact("pg_file_sync", true, FILES),
    exact("pg_logdir_ls", true, FILES),
    exact("lo_import", true, FILES),
    exact("lo_export", true, FILES),
    // Other databases and background workers.
    prefix("dblink", true, REMOTE),
    prefix("pg_background_", true, REMOTE),
    // Session state.
    exact("set_config", true, SESSION),
    exact("setseed", true, SEED),
    prefix("pg_advisory_lock", true, SESSION_LOCK),
    prefix("pg_try_advisory_lock", true, SESSION_LOCK),
    prefix("pg_advisory_unlock", true, SESSION_LOCK),
    // Transaction-scoped locks: fine in a write, not something a read should do.
    prefix("pg_advisory_xact_lock", false, XACT_LOCK),
    prefix("pg_try_advisory_xact_lock", false, XACT_LOCK),
    // Sequences: nextval/setval are not rolled back (and fail in read-only transactions anyway).
    exact("nextval", false, SEQUENCE),
    exact("setval", false, SEQUENCE),
    // Large objects: transactional writes, fine in the write action. (The SQL-level
    // writer is `lowrite`; `lo_write` is only a libpq client call.)
    exact("lo_create", false, LARGE_OBJECT),
    exact("lo_creat", false, LARGE_OBJECT),
    exact("lo_open", false, LARGE_OBJECT),
    exact("lo_unlink", false, LARGE_OBJECT),
    exact("lowrite", false, LARGE_OBJECT),
    exact("lo_put", false, LARGE_OBJECT),
    exact("lo_from_bytea", false, LARGE_OBJECT),
    prefix("lo_truncate", false, LARGE_OBJECT),
    // Index maintenance that works even in a READ ONLY transaction and is not rolled back.
    exact("brin_summarize_new_values", false, INDEX_STATE),
    exact("brin_summarize_range", false, INDEX_STATE),
    exact("brin_desummarize_range", false, INDEX_STATE),
    exact("gin_clean_pending_list", false, INDEX_STATE),
    // Notifications.
    exact("pg_notify", true, NOTIFY),
    // WAL, backups, replication.
    exact("pg_switch_wal", true, WAL),
    exact("pg_create_restore_point", true, WAL),
    exact("pg_start_backup", true, WAL),
    exact("pg_stop_backup", true, WAL),
    exact("pg_backup_start", true, WAL),
    exact("pg_backup_stop", true, WAL),
    prefix("pg_wal_replay_", true, WAL),
    exact("pg_create_physical_replication_slot", true, WAL),
    exact("pg_create_logical_replication_slot", true, WAL),
    exact("pg_copy_physical_replication_slot", true, WAL),
    exact("pg_copy_logical_replication_slot", true, WAL),
    exact("pg_drop_replication_slot", true, WAL),
    exact("pg_replication_slot_advance", true, WAL),
    exact("pg_sync_replication_slots", true, WAL),
    prefix("pg_logical_slot_", true, WAL),
    prefix("pg_replication_origin_", true, WAL),
    exact("pg_logical_emit_message", true, WAL),
    exact("pg_log_standby_snapshot", true, WAL),
    prefix("binary_upgrade_", true, WAL),
    // SQL hidden in strings (query_to_xml, query_to_xml_and_xmlschema, …).
    prefix("query_to_xml", true, HIDDEN_SQL),
    prefix("cursor_to_xml", true, HIDDEN_SQL),
    prefix("table_to_xml", true, HIDDEN_SQL),
    prefix("schema_to_xml", true, HIDDEN_SQL),
    prefix("database_to_xml", true, HIDDEN_SQL),
    // ts_stat(sqlquery) and ts_rewrite(query, select) run their text argument as SQL. (The
    // three-argument ts_rewrite does not, but telling them apart needs types; refuse both.)
    exact("ts_stat", true, HIDDEN_SQL),
    exact("ts_rewrite", true, HIDDEN_SQL),
    // Statistics.
    prefix("pg_stat_reset", true, STATS),
    exact("pg_stat_statements_reset", true, STATS),
    exact("pg_set_relation_stats", true, STATS),
    exact("pg_clear_relation_stats", true, STATS),
    exact("pg_restore_relation_stats", true, STATS),
    exact("pg_set_attribute_stats", true, STATS),
    exact("pg_clear_attribute_stats", true, STATS),
    exact("pg_restore_attribute_stats", true, STATS),
];

/// Looks a (lower-cased, unqualified) function name up in [`DENIED_FUNCTIONS`].
fn denied_function(name: &str) -> Option<&'static DeniedFunction> {
    DENIED_FUNCTIONS.iter().find(|d| match d.name {
        NameMatch::Exact(n) => name == n,
        NameMatch::Prefix(p) => name.starts_with(p),
    })
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// The action a statement was sent to, for wording refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    Write,
    Explain,
    Ddl(DdlKind),
    Admin,
}

impl Action {
    /// The tool call as the caller knows it.
    fn tool(self) -> &'static str {
        match self {
            Action::Read => "pg_query read",
            Action::Write => "pg_query write",
            Action::Explain => "pg_query explain",
            Action::Ddl(kind) => kind.tool(),
            Action::Admin => "pg_admin",
        }
    }
}

/// "a"/"an" for a command tag, so messages read naturally.
fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U' | 'a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Builds a refusal.
fn refuse(reason: String, use_instead: Option<&'static str>) -> Refusal {
    Refusal {
        reason,
        use_instead,
    }
}

/// The refusal for a statement whose class does not belong to `action`.
fn wrong_action(p: &Parsed, action: Action) -> Refusal {
    let cmd = p.command();
    let tool = action.tool();
    match p.class() {
        StatementClass::TxControl => refuse(
            format!(
                "transaction control ({cmd}) is not accepted inside SQL; use the pg_tx tool (begin, commit, rollback, savepoint) and pass its session_id to pg_query"
            ),
            Some("pg_tx"),
        ),
        StatementClass::Forbidden(f) => f.refusal(cmd),
        StatementClass::Read => {
            let what = if cmd == "EXPLAIN" {
                "an EXPLAIN without ANALYZE".to_string()
            } else {
                format!("{} {cmd}", article(cmd))
            };
            refuse(
                format!(
                    "{tool} does not run reads; this is {what}, which only reads. Use pg_query read."
                ),
                Some("pg_query read"),
            )
        }
        StatementClass::Write => match action {
            Action::Read => refuse(read_refusal_for_write(p), Some("pg_query write")),
            _ => refuse(
                format!(
                    "{tool} does not run data changes; this is {} {cmd}. Use pg_query write with autocommit: true or a session_id from pg_tx begin.",
                    article(cmd)
                ),
                Some("pg_query write"),
            ),
        },
        StatementClass::Explain => refuse(
            format!(
                "{tool} does not run EXPLAIN ANALYZE or EXPLAIN of statements that change data; use pg_query explain, sending the statement without the EXPLAIN keyword (set analyze: true to execute it in a rolled-back transaction)."
            ),
            Some("pg_query explain"),
        ),
        StatementClass::Ddl(kind) => {
            let reason = if cmd == "SELECT INTO" {
                format!(
                    "{tool} refused: SELECT … INTO creates a new table (DDL); use pg_schema create (or CREATE TABLE … AS), or drop the INTO clause to just read"
                )
            } else {
                format!(
                    "{tool} does not run schema changes; this is {} {cmd} (DDL). Use {}.",
                    article(cmd),
                    kind.tool()
                )
            };
            refuse(reason, Some(kind.tool()))
        }
        StatementClass::Admin => refuse(
            format!(
                "{tool} does not run maintenance commands; this is {} {cmd}. Use pg_admin.",
                article(cmd)
            ),
            Some("pg_admin"),
        ),
    }
}

/// Why pg_query read refuses a write-class statement, naming the specific construct.
fn read_refusal_for_write(p: &Parsed) -> String {
    let cmd = p.command();
    if matches!(p.stmt, NodeEnum::SelectStmt(_)) {
        if let Some(kind) = p.facts.dml.first() {
            return format!(
                "read refused: data-modifying WITH clause ({kind}) found; use pg_query write"
            );
        }
        if p.facts.locking {
            return "read refused: FOR UPDATE/FOR SHARE locks rows; use pg_query write (in a pg_tx session if the lock must last)".to_string();
        }
    }
    format!(
        "pg_query read runs only read-only statements; this is {} {cmd}. Use pg_query write with autocommit: true or a session_id from pg_tx begin.",
        article(cmd)
    )
}

/// Which denylist entries apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every entry, plus no data modification at all.
    Reads,
    /// Only `everywhere` entries.
    Writes,
}

/// Checks the walked tree: unknown nodes, data modification (reads), INTO (reads) and denylisted calls.
fn check_tree(p: &Parsed, action: Action, scope: Scope) -> Result<(), Refusal> {
    let facts = &p.facts;
    if let Some(kind) = &facts.unknown {
        return Err(refuse(
            format!(
                "{} refused: the statement contains a construct ({kind}) this server cannot verify; rewrite the statement without it",
                action.tool()
            ),
            None,
        ));
    }
    if scope == Scope::Reads {
        // Defence in depth: the class already says Read, but the facts are what counts.
        if let Some(kind) = facts.dml.first() {
            return Err(refuse(
                format!(
                    "read refused: data-modifying WITH clause ({kind}) found; use pg_query write"
                ),
                Some("pg_query write"),
            ));
        }
        if facts.locking {
            return Err(refuse(
                "read refused: FOR UPDATE/FOR SHARE locks rows; use pg_query write (in a pg_tx session if the lock must last)".to_string(),
                Some("pg_query write"),
            ));
        }
        if facts.into {
            return Err(refuse(
                "read refused: SELECT … INTO creates a table; drop the INTO clause, or use pg_schema create".to_string(),
                Some("pg_schema create"),
            ));
        }
    }
    for name in &facts.functions {
        if let Some(denied) = denied_function(name) {
            if scope == Scope::Reads {
                return Err(refuse(
                    format!("function {name} is not allowed in reads: {}", denied.why),
                    None,
                ));
            }
            if denied.everywhere {
                return Err(refuse(
                    format!("function {name} is not allowed: {}", denied.why),
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// Gate for pg_query read: only SELECT/WITH/VALUES/TABLE reads, SHOW, and EXPLAIN without ANALYZE of a read.
pub(crate) fn check_read(p: &Parsed) -> Result<(), Refusal> {
    if p.class() != StatementClass::Read {
        return Err(wrong_action(p, Action::Read));
    }
    check_tree(p, Action::Read, Scope::Reads)
}

/// Gate for pg_query write: one INSERT/UPDATE/DELETE/MERGE/CALL/DO (WITH and RETURNING allowed),
/// SELECT with a data-modifying WITH, SELECT … FOR UPDATE/SHARE, or LOCK TABLE.
pub(crate) fn check_write(p: &Parsed) -> Result<(), Refusal> {
    if p.class() != StatementClass::Write {
        return Err(wrong_action(p, Action::Write));
    }
    check_tree(p, Action::Write, Scope::Writes)
}

/// Extra gate for a write that is run and rolled back by a caller who is NOT authorized to
/// write (dry_run, or EXPLAIN ANALYZE, without autocommit or a session): a rollback must undo
/// everything, so nothing may run whose effects escape it. DO and CALL are refused (their
/// bodies cannot be inspected), and so is every denylisted function, including those a
/// committed write may call (nextval, setval, large objects, index maintenance).
/// Sequences advanced by column defaults (serial, identity) are the one known escape; the
/// README says so.
pub(crate) fn check_rolled_back_write(p: &Parsed) -> Result<(), Refusal> {
    if matches!(p.stmt, NodeEnum::DoStmt(_) | NodeEnum::CallStmt(_)) {
        return Err(refuse(
            format!(
                "{} cannot be tried out in a dry run: its body is not inspected and may do things a rollback cannot undo; run it with autocommit: true or in a pg_tx session",
                p.command()
            ),
            Some("pg_query write with autocommit: true"),
        ));
    }
    for name in &p.facts.functions {
        if let Some(denied) = denied_function(name) {
            return Err(refuse(
                format!(
                    "function {name} is not allowed in a dry run or EXPLAIN ANALYZE without autocommit or a session: {}",
                    denied.why
                ),
                Some("pg_query write with autocommit: true"),
            ));
        }
    }
    Ok(())
}

/// Gate for pg_query explain, which receives the bare statement and adds EXPLAIN itself.
///
/// Reads get the full read checks (EXPLAIN ANALYZE executes them); data-changing
/// statements get the write checks and [`ExplainTarget::Write`], telling the caller to run
/// EXPLAIN ANALYZE in a transaction it rolls back.
pub(crate) fn check_explain(p: &Parsed) -> Result<ExplainTarget, Refusal> {
    let explainable = matches!(
        p.stmt,
        NodeEnum::SelectStmt(_)
            | NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_)
    );
    if matches!(p.stmt, NodeEnum::ExplainStmt(_)) {
        return Err(refuse(
            "send the statement without EXPLAIN: pg_query explain adds EXPLAIN itself (use its analyze option instead of writing EXPLAIN ANALYZE)".to_string(),
            Some("pg_query explain"),
        ));
    }
    match p.class() {
        StatementClass::Read if explainable => {
            check_tree(p, Action::Explain, Scope::Reads)?;
            Ok(ExplainTarget::Read)
        }
        StatementClass::Write if explainable => {
            check_tree(p, Action::Explain, Scope::Writes)?;
            Ok(ExplainTarget::Write)
        }
        StatementClass::Read | StatementClass::Write => Err(refuse(
            format!(
                "EXPLAIN works on SELECT, INSERT, UPDATE, DELETE and MERGE; {} {} cannot be explained",
                article(p.command()),
                p.command()
            ),
            None,
        )),
        _ => Err(wrong_action(p, Action::Explain)),
    }
}

/// Gate for pg_schema `action`: the statement must be DDL of that kind.
///
/// Queries embedded in CREATE TABLE AS / SELECT INTO / CREATE VIEW must not modify data
/// and must not call functions denied everywhere (a view would run them on every later read).
/// CREATE/ALTER ROLE may carry passwords: log such statements through [`redact`].
pub(crate) fn check_ddl(p: &Parsed, action: DdlKind) -> Result<(), Refusal> {
    let tool = action.tool();
    match p.class() {
        StatementClass::Ddl(kind) if kind == action => {}
        StatementClass::Ddl(kind) => {
            let cmd = p.command();
            return Err(refuse(
                format!(
                    "{tool} refused: this is {} {cmd}, which is a {} statement; use {}",
                    article(cmd),
                    kind.as_str(),
                    kind.tool()
                ),
                Some(kind.tool()),
            ));
        }
        _ => return Err(wrong_action(p, Action::Ddl(action))),
    }
    if !p.facts.walked {
        return Ok(());
    }
    if let Some(kind) = p.facts.dml.first() {
        return Err(refuse(
            format!(
                "{tool} refused: the query contains a data-modifying statement ({kind}); run the data change with pg_query write first"
            ),
            Some("pg_query write"),
        ));
    }
    check_tree(p, Action::Ddl(action), Scope::Writes)
}

/// Gate for pg_admin: VACUUM, ANALYZE, REINDEX, CLUSTER.
pub(crate) fn check_admin(p: &Parsed) -> Result<(), Refusal> {
    if p.class() == StatementClass::Admin {
        Ok(())
    } else {
        Err(wrong_action(p, Action::Admin))
    }
}

// ---------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------

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
mod tests {
    use super::*;

    use DdlKind::{Alter, Create, Drop};
    use StatementClass::{Admin, Ddl, Explain, Read, TxControl, Write};

    fn parsed(sql: &str) -> Parsed {
        parse_one(sql).unwrap_or_else(|e| panic!("{sql:?} should parse: {e}"))
    }

    /// Asserts a refusal mentions `needle` (and, when given, points at `tool`).
    fn assert_refused(sql: &str, what: &str, r: Result<(), Refusal>, needle: &str) {
        match r {
            Ok(()) => panic!("{what}: {sql:?} should be refused (expected {needle:?})"),
            Err(refusal) => assert!(
                refusal.reason.contains(needle),
                "{what}: {sql:?}: reason {:?} should contain {needle:?}",
                refusal.reason
            ),
        }
    }

    // -----------------------------------------------------------------------------------
    // parse_one: statement count, text, errors
    // -----------------------------------------------------------------------------------

    #[derive(Debug)]
    enum P {
        /// Parses; `sql()` equals this.
        Text(&'static str),
        Empty,
        Multiple(usize),
        /// Syntax error at this 1-based character (None: position unknown).
        Syntax(Option<usize>),
    }

    const PARSE_CASES: &[(&str, P)] = &[
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

    // -----------------------------------------------------------------------------------
    // Classification
    // -----------------------------------------------------------------------------------

    const F: fn(Forbidden) -> StatementClass = StatementClass::Forbidden;

    fn class_cases() -> Vec<(&'static str, &'static str, StatementClass)> {
        use Forbidden as Fb;
        vec![
            ("SELECT 1", "SELECT", Read),
            ("VALUES (1)", "SELECT", Read),
            ("TABLE t", "SELECT", Read),
            ("SHOW work_mem", "SHOW", Read),
            ("SHOW ALL", "SHOW", Read),
            ("EXPLAIN SELECT 1", "EXPLAIN", Read),
            ("EXPLAIN (ANALYZE false) SELECT 1", "EXPLAIN", Read),
            ("EXPLAIN (ANALYZE off, VERBOSE) SELECT 1", "EXPLAIN", Read),
            ("EXPLAIN (ANALYZE 0) SELECT 1", "EXPLAIN", Read),
            ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN", Explain),
            ("EXPLAIN ANALYSE SELECT 1", "EXPLAIN", Explain),
            ("EXPLAIN (ANALYZE) SELECT 1", "EXPLAIN", Explain),
            ("EXPLAIN (ANALYZE true) SELECT 1", "EXPLAIN", Explain),
            (
                "EXPLAIN (ANALYZE false, ANALYZE) SELECT 1",
                "EXPLAIN",
                Explain,
            ),
            ("EXPLAIN INSERT INTO t VALUES (1)", "EXPLAIN", Explain),
            ("EXPLAIN SELECT * FROM t FOR UPDATE", "EXPLAIN", Explain),
            ("EXPLAIN SELECT 1 INTO x", "EXPLAIN", Explain),
            ("INSERT INTO t VALUES (1)", "INSERT", Write),
            ("UPDATE t SET a = 1", "UPDATE", Write),
            ("DELETE FROM t", "DELETE", Write),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                "MERGE",
                Write,
            ),
            ("CALL p(1)", "CALL", Write),
            ("DO $$BEGIN END$$", "DO", Write),
            ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK TABLE", Write),
            ("SELECT * FROM t FOR UPDATE", "SELECT", Write),
            (
                "SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED",
                "SELECT",
                Write,
            ),
            ("SELECT * FROM t FOR KEY SHARE", "SELECT", Write),
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                "SELECT",
                Write,
            ),
            ("SELECT * INTO new_t FROM t", "SELECT INTO", Ddl(Create)),
            (
                "SELECT 1 AS a INTO x UNION SELECT 2",
                "SELECT INTO",
                Ddl(Create),
            ),
            ("CREATE TABLE t (a int)", "CREATE TABLE", Ddl(Create)),
            (
                "CREATE TABLE t2 AS SELECT * FROM t",
                "CREATE TABLE AS",
                Ddl(Create),
            ),
            (
                "CREATE MATERIALIZED VIEW mv AS SELECT 1",
                "CREATE MATERIALIZED VIEW",
                Ddl(Create),
            ),
            ("CREATE INDEX ON t (a)", "CREATE INDEX", Ddl(Create)),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW", Ddl(Create)),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "CREATE FUNCTION",
                Ddl(Create),
            ),
            (
                "CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'",
                "CREATE PROCEDURE",
                Ddl(Create),
            ),
            ("CREATE SCHEMA s", "CREATE SCHEMA", Ddl(Create)),
            ("CREATE SEQUENCE s", "CREATE SEQUENCE", Ddl(Create)),
            ("CREATE TYPE mood AS ENUM ('a')", "CREATE TYPE", Ddl(Create)),
            (
                "CREATE TYPE pair AS (a int, b int)",
                "CREATE TYPE",
                Ddl(Create),
            ),
            ("CREATE DOMAIN d AS int", "CREATE DOMAIN", Ddl(Create)),
            ("CREATE EXTENSION pg_trgm", "CREATE EXTENSION", Ddl(Create)),
            (
                "CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
                "CREATE TRIGGER",
                Ddl(Create),
            ),
            (
                "CREATE POLICY p ON t USING (true)",
                "CREATE POLICY",
                Ddl(Create),
            ),
            (
                "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING",
                "CREATE RULE",
                Ddl(Create),
            ),
            (
                "CREATE AGGREGATE a (int) (SFUNC = int4pl, STYPE = int)",
                "CREATE AGGREGATE",
                Ddl(Create),
            ),
            (
                "CREATE ROLE r LOGIN PASSWORD 'x'",
                "CREATE ROLE",
                Ddl(Create),
            ),
            ("CREATE USER u", "CREATE USER", Ddl(Create)),
            ("ALTER TABLE t ADD COLUMN b int", "ALTER TABLE", Ddl(Alter)),
            (
                "ALTER TABLE t RENAME COLUMN a TO b",
                "ALTER TABLE",
                Ddl(Alter),
            ),
            ("ALTER TABLE t RENAME TO t2", "ALTER TABLE", Ddl(Alter)),
            ("ALTER INDEX i RENAME TO j", "ALTER INDEX", Ddl(Alter)),
            ("ALTER VIEW v OWNER TO r", "ALTER VIEW", Ddl(Alter)),
            (
                "ALTER FUNCTION f() SET SCHEMA s",
                "ALTER FUNCTION",
                Ddl(Alter),
            ),
            ("ALTER ROLE r PASSWORD 'x'", "ALTER ROLE", Ddl(Alter)),
            ("COMMENT ON TABLE t IS 'x'", "COMMENT", Ddl(Alter)),
            ("GRANT SELECT ON t TO r", "GRANT", Ddl(Alter)),
            ("REVOKE SELECT ON t FROM r", "REVOKE", Ddl(Alter)),
            ("GRANT r1 TO r2", "GRANT", Ddl(Alter)),
            (
                "REFRESH MATERIALIZED VIEW mv",
                "REFRESH MATERIALIZED VIEW",
                Ddl(Alter),
            ),
            ("DROP TABLE t", "DROP TABLE", Ddl(Drop)),
            ("DROP INDEX i", "DROP INDEX", Ddl(Drop)),
            ("DROP VIEW IF EXISTS v", "DROP VIEW", Ddl(Drop)),
            ("DROP FUNCTION f()", "DROP FUNCTION", Ddl(Drop)),
            ("DROP SCHEMA s CASCADE", "DROP SCHEMA", Ddl(Drop)),
            ("DROP ROLE r", "DROP ROLE", Ddl(Drop)),
            ("DROP OWNED BY r", "DROP OWNED", Ddl(Drop)),
            ("TRUNCATE t", "TRUNCATE TABLE", Ddl(Drop)),
            ("VACUUM t", "VACUUM", Admin),
            ("VACUUM (ANALYZE) t", "VACUUM", Admin),
            ("ANALYZE t", "ANALYZE", Admin),
            ("REINDEX TABLE t", "REINDEX", Admin),
            ("CLUSTER t USING i", "CLUSTER", Admin),
            ("BEGIN", "BEGIN", TxControl),
            (
                "START TRANSACTION READ WRITE",
                "START TRANSACTION",
                TxControl,
            ),
            ("COMMIT", "COMMIT", TxControl),
            ("END", "COMMIT", TxControl),
            ("ROLLBACK", "ROLLBACK", TxControl),
            ("ABORT", "ROLLBACK", TxControl),
            ("SAVEPOINT s", "SAVEPOINT", TxControl),
            ("RELEASE SAVEPOINT s", "RELEASE", TxControl),
            (
                "ROLLBACK TO SAVEPOINT s",
                "ROLLBACK TO SAVEPOINT",
                TxControl,
            ),
            ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION", TxControl),
            ("COMMIT PREPARED 'x'", "COMMIT PREPARED", TxControl),
            ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED", TxControl),
            (
                "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                "SET TRANSACTION",
                TxControl,
            ),
            ("SET TRANSACTION READ WRITE", "SET TRANSACTION", TxControl),
            (
                "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                "SET SESSION CHARACTERISTICS",
                TxControl,
            ),
            ("SET transaction_read_only = off", "SET", TxControl),
            ("SET ROLE postgres", "SET", F(Fb::RoleSwitch)),
            (
                "SET SESSION AUTHORIZATION postgres",
                "SET",
                F(Fb::RoleSwitch),
            ),
            ("RESET ROLE", "RESET", F(Fb::RoleSwitch)),
            ("RESET SESSION AUTHORIZATION", "RESET", F(Fb::RoleSwitch)),
            ("RESET ALL", "RESET ALL", F(Fb::ResetAll)),
            ("SET work_mem = '1GB'", "SET", F(Fb::SessionSetting)),
            (
                "SET LOCAL statement_timeout = 0",
                "SET",
                F(Fb::SessionSetting),
            ),
            (
                "SET default_transaction_read_only = off",
                "SET",
                F(Fb::SessionSetting),
            ),
            ("RESET statement_timeout", "RESET", F(Fb::SessionSetting)),
            (
                "SET CONSTRAINTS ALL DEFERRED",
                "SET CONSTRAINTS",
                F(Fb::SessionSetting),
            ),
            (
                "ALTER SYSTEM SET work_mem = '1GB'",
                "ALTER SYSTEM",
                F(Fb::AlterSystem),
            ),
            ("COPY t TO PROGRAM 'cat'", "COPY", F(Fb::CopyProgram)),
            ("COPY t FROM PROGRAM 'curl x'", "COPY", F(Fb::CopyProgram)),
            ("COPY t TO '/tmp/x'", "COPY", F(Fb::CopyServerFile)),
            ("COPY t FROM '/etc/passwd'", "COPY", F(Fb::CopyServerFile)),
            ("COPY (SELECT 1) TO STDOUT", "COPY", F(Fb::CopyStdio)),
            ("COPY t FROM STDIN", "COPY", F(Fb::CopyStdio)),
            ("LOAD 'auto_explain'", "LOAD", F(Fb::Load)),
            ("DISCARD ALL", "DISCARD", F(Fb::Discard)),
            ("LISTEN c", "LISTEN", F(Fb::ListenNotify)),
            ("UNLISTEN *", "UNLISTEN", F(Fb::ListenNotify)),
            ("NOTIFY c, 'x'", "NOTIFY", F(Fb::ListenNotify)),
            ("PREPARE q AS SELECT 1", "PREPARE", F(Fb::PreparedStatement)),
            ("EXECUTE q", "EXECUTE", F(Fb::PreparedStatement)),
            ("DEALLOCATE ALL", "DEALLOCATE", F(Fb::PreparedStatement)),
            (
                "DECLARE c CURSOR FOR SELECT 1",
                "DECLARE CURSOR",
                F(Fb::Cursor),
            ),
            ("FETCH 10 FROM c", "FETCH", F(Fb::Cursor)),
            ("MOVE c", "MOVE", F(Fb::Cursor)),
            ("CLOSE c", "CLOSE CURSOR", F(Fb::Cursor)),
            ("CHECKPOINT", "CHECKPOINT", F(Fb::Checkpoint)),
            ("CREATE DATABASE d", "CREATE DATABASE", F(Fb::Database)),
            (
                "ALTER DATABASE d SET work_mem = '1MB'",
                "ALTER DATABASE",
                F(Fb::Database),
            ),
            (
                "ALTER DATABASE d RENAME TO e",
                "ALTER DATABASE",
                F(Fb::Database),
            ),
            (
                "ALTER DATABASE d OWNER TO r",
                "ALTER DATABASE",
                F(Fb::Database),
            ),
            ("DROP DATABASE d", "DROP DATABASE", F(Fb::Database)),
            (
                "CREATE TABLESPACE ts LOCATION '/x'",
                "CREATE TABLESPACE",
                F(Fb::Tablespace),
            ),
            (
                "ALTER TABLESPACE ts SET (seq_page_cost = 1)",
                "ALTER TABLESPACE",
                F(Fb::Tablespace),
            ),
            (
                "ALTER TABLESPACE ts RENAME TO u",
                "ALTER TABLESPACE",
                F(Fb::Tablespace),
            ),
            (
                "ALTER TABLESPACE ts OWNER TO r",
                "ALTER TABLESPACE",
                F(Fb::Tablespace),
            ),
            ("DROP TABLESPACE ts", "DROP TABLESPACE", F(Fb::Tablespace)),
            (
                "ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b",
                "ALTER TABLE",
                F(Fb::Tablespace),
            ),
        ]
    }

    #[test]
    fn classification() {
        for (sql, command, class) in class_cases() {
            let p = parsed(sql);
            assert_eq!((p.command(), p.class()), (command, class), "{sql:?}");
        }
    }

    /// No statement of a class that is not Read/Write/Admin/DDL gets past any action.
    #[test]
    fn tx_control_and_forbidden_are_refused_everywhere() {
        for (sql, _, class) in class_cases() {
            if !matches!(class, TxControl | StatementClass::Forbidden(_)) {
                continue;
            }
            let p = parsed(sql);
            let expected_tool = (class == TxControl).then_some("pg_tx");
            let results = [
                check_read(&p),
                check_write(&p),
                check_explain(&p).map(|_| ()),
                check_ddl(&p, Create),
                check_ddl(&p, Alter),
                check_ddl(&p, Drop),
                check_admin(&p),
            ];
            for r in results {
                let refusal = r.expect_err(sql);
                assert_eq!(refusal.use_instead, expected_tool, "{sql:?}");
                if class == TxControl {
                    assert!(refusal.reason.contains("use the pg_tx tool"), "{sql:?}");
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Read
    // -----------------------------------------------------------------------------------

    /// Legitimate analytical reads that must be accepted.
    const READS_ACCEPTED: &[&str] = &[
        "SELECT 3;",
        "SELECT 1",
        "VALUES (1), (2)",
        "TABLE t",
        "SHOW work_mem",
        "SHOW ALL",
        "EXPLAIN SELECT * FROM t WHERE a = 1",
        "EXPLAIN (FORMAT JSON, VERBOSE, COSTS false) SELECT 1",
        "EXPLAIN (ANALYZE false) SELECT 1",
        "SELECT a, sum(b) OVER (PARTITION BY a ORDER BY c ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), mode() WITHIN GROUP (ORDER BY y) FROM t",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
        "WITH RECURSIVE tree AS (SELECT id, parent FROM nodes WHERE parent IS NULL UNION ALL SELECT n.id, n.parent FROM nodes n JOIN tree ON n.parent = tree.id) SEARCH DEPTH FIRST BY id SET ord CYCLE id SET is_cycle USING path SELECT * FROM tree",
        "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id ORDER BY created_at DESC LIMIT 3) recent",
        "SELECT data->'a'->>'b', data #>> '{x,y}', data @> '{\"k\":1}' FROM docs WHERE data ? 'k'",
        "SELECT jsonb_path_query(doc, '$.items[*] ? (@.price > 10)') FROM docs",
        "SELECT * FROM generate_series(1, 10) AS g(n)",
        "SELECT d::date FROM generate_series(now() - interval '7 days', now(), interval '1 day') d",
        "SELECT pid, state, query FROM pg_stat_activity WHERE state <> 'idle'",
        "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC",
        "SELECT DISTINCT ON (customer_id) customer_id, created_at FROM orders ORDER BY customer_id, created_at DESC",
        "SELECT region, product, sum(amount) FROM sales GROUP BY GROUPING SETS ((region), (product), ())",
        "SELECT region, sum(amount) FROM sales GROUP BY ROLLUP (region, product)",
        "SELECT grouping(region), sum(amount) FROM sales GROUP BY CUBE (region)",
        "SELECT count(*) FILTER (WHERE status = 'paid') AS paid, count(*) AS total FROM invoices",
        "SELECT ARRAY[1,2,3] && ARRAY[3,4], 3 = ANY(ARRAY[1,2,3]), array_agg(DISTINCT x ORDER BY x) FROM t",
        "SELECT unnest(tags) FROM posts WHERE tags @> ARRAY['rust']",
        "SELECT upper(name), substring(name FROM 2 FOR 3), trim(both ' ' from name), position('a' IN name), regexp_replace(name, '\\s+', ' ', 'g'), concat_ws('-', a, b), left(name, 3) || '…' FROM t",
        "SELECT format('%s=%L', k, v), split_part(path, '/', 2), string_agg(name, ', ' ORDER BY name) FROM t GROUP BY path, k, v",
        "SELECT * FROM t WHERE name ILIKE '%abc%' AND created_at BETWEEN '2024-01-01' AND now() AND a IS DISTINCT FROM b",
        "SELECT extract(epoch FROM now()), date_trunc('month', created_at), age(now(), created_at), current_date, localtimestamp FROM t",
        "SELECT a FROM t UNION SELECT b FROM u INTERSECT SELECT c FROM v EXCEPT SELECT d FROM w",
        "SELECT * FROM t WHERE (a, b) IN (SELECT x, y FROM u) AND NOT EXISTS (SELECT 1 FROM v WHERE v.id = t.id)",
        "SELECT CASE WHEN a > 0 THEN 'pos' WHEN a < 0 THEN 'neg' ELSE 'zero' END, COALESCE(b, 0), NULLIF(c, ''), GREATEST(a, b), LEAST(a, b) FROM t",
        "SELECT lag(v) OVER w, lead(v, 2) OVER w, ntile(4) OVER w FROM t WINDOW w AS (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '1 day' PRECEDING AND CURRENT ROW)",
        "SELECT JSON_OBJECT('a' : 1, 'b' : x RETURNING jsonb), JSON_ARRAY(1, 2, x), JSON_ARRAYAGG(x ORDER BY x), JSON_OBJECTAGG(k : v) FROM t",
        "SELECT JSON_QUERY(doc, '$.a' WITH WRAPPER), JSON_VALUE(doc, '$.b' RETURNING int DEFAULT 0 ON EMPTY), JSON_EXISTS(doc, '$.c') FROM docs",
        "SELECT * FROM JSON_TABLE('[{\"a\":1}]'::jsonb, '$[*]' COLUMNS (a int PATH '$.a', NESTED PATH '$.b[*]' COLUMNS (b text PATH '$'))) AS jt",
        "SELECT doc IS JSON OBJECT, JSON_SERIALIZE(doc RETURNING text), JSON('{}'), JSON_SCALAR(1), JSON_ARRAY(SELECT x FROM t) FROM docs",
        "SELECT xmlelement(name foo, xmlattributes(1 AS bar), 'x'), xmlforest(a, b), xmlserialize(content x AS text) FROM t",
        "SELECT * FROM XMLTABLE('/rows/row' PASSING CAST('<rows><row a=\"1\"/></rows>' AS xml) COLUMNS a int PATH '@a', n FOR ORDINALITY)",
        "SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (42)",
        "SELECT * FROM ROWS FROM (generate_series(1,3), unnest(ARRAY['a','b'])) WITH ORDINALITY AS r(n, s, i)",
        "SELECT * FROM json_to_recordset('[{\"a\":1}]') AS x(a int, b text COLLATE \"C\")",
        "SELECT a[1:2], (row(1,2)).f1, t.* FROM t",
        "SELECT $1::int + $2",
        "SELECT pg_sleep(0), currval('s'), txid_current(), pg_current_xact_id(), lo_get(1)",
        "SELECT now() AT TIME ZONE 'UTC', 'a' COLLATE \"C\" < 'b'",
        "SELECT * FROM t ORDER BY a NULLS LAST, b DESC OFFSET 10 ROWS FETCH FIRST 5 ROWS WITH TIES",
        "SELECT x FROM t WHERE x > ALL (SELECT y FROM u) AND x = SOME (SELECT z FROM v)",
        "WITH m AS MATERIALIZED (SELECT * FROM t) SELECT * FROM m",
        "SELECT 1 -- ; DROP TABLE t",
        "/* leading */ SELECT 1 /* ; */",
        "SELECT $$; DROP TABLE t$$",
        "SELECT E'it\\'s; DROP TABLE t'",
        "SELECT U&'d\\0061t\\+000061'",
        "SELECT \"select\", \"drop table t;\" FROM t",
        "SELECT 'pg_read_file(''/etc/passwd'')' AS just_text",
        "SELECT proname FROM pg_proc WHERE proname = 'pg_terminate_backend'",
        "SELECT has_table_privilege('t', 'SELECT'), current_setting('work_mem'), pg_backend_pid(), version()",
        "SELECT * FROM pg_locks l JOIN pg_stat_activity a USING (pid)",
        "SELECT EXISTS (SELECT 1 FROM t) AS any_rows, NOT true, 1 IS NOT NULL, true IS UNKNOWN",
        "SELECT ROW(1, 'a') = ROW(1, 'a'), (1, 2) < (1, 3)",
        "SELECT interval '1 hour' * 3, 10 % 3, 2 ^ 10, |/ 16, @ -5, ~ 5, 1 << 3",
        "SELECT current_user, session_user, CURRENT_SCHEMA, CURRENT_CATALOG",
        "SELECT CAST(x AS numeric(10,2)), x::text[], '{1,2}'::int[] FROM t",
        "SELECT overlay('Txxxxas' placing 'hom' from 2 for 4), collation for ('a'), normalize('a'), 'a' IS NFC NORMALIZED",
        "SELECT * FROM t1 NATURAL JOIN t2 FULL OUTER JOIN t3 USING (id) AS j CROSS JOIN t4",
    ];

    #[test]
    fn legitimate_reads_are_accepted() {
        assert!(READS_ACCEPTED.len() >= 30);
        for sql in READS_ACCEPTED {
            let p = parsed(sql);
            assert_eq!(p.class(), Read, "{sql:?}");
            if let Err(r) = check_read(&p) {
                panic!("{sql:?} should be accepted by read: {}", r.reason);
            }
            let is_select = matches!(p.stmt, NodeEnum::SelectStmt(_));
            assert_eq!(p.is_plain_select(), is_select, "{sql:?}");
            assert!(!p.has_returning(), "{sql:?}");
            let write = check_write(&p).expect_err(sql);
            assert_eq!(write.use_instead, Some("pg_query read"), "{sql:?}");
            if is_select {
                assert_eq!(check_explain(&p), Ok(ExplainTarget::Read), "{sql:?}");
                // The caller wraps plain selects; the wrapped text must still be one read.
                let wrapped = format!("SELECT * FROM ({}) AS q LIMIT 5", p.sql());
                let w = parsed(&wrapped);
                assert!(check_read(&w).is_ok(), "{wrapped:?}");
            }
        }
    }

    /// (sql, substring of the read refusal, use_instead)
    const READ_REFUSED: &[(&str, &str, Option<&str>)] = &[
        (
            "INSERT INTO t VALUES (1)",
            "pg_query read runs only read-only statements; this is an INSERT. Use pg_query write with autocommit: true or a session_id from pg_tx begin.",
            Some("pg_query write"),
        ),
        (
            "UPDATE t SET a = 1",
            "this is an UPDATE",
            Some("pg_query write"),
        ),
        ("DELETE FROM t", "this is a DELETE", Some("pg_query write")),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            "this is a MERGE",
            Some("pg_query write"),
        ),
        ("CALL p()", "this is a CALL", Some("pg_query write")),
        ("DO $$BEGIN END$$", "this is a DO", Some("pg_query write")),
        (
            "LOCK TABLE t",
            "this is a LOCK TABLE",
            Some("pg_query write"),
        ),
        (
            "SELECT * FROM t FOR UPDATE",
            "FOR UPDATE/FOR SHARE",
            Some("pg_query write"),
        ),
        (
            "SELECT * FROM (SELECT * FROM t FOR SHARE) s",
            "FOR UPDATE/FOR SHARE",
            Some("pg_query write"),
        ),
        (
            "SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)",
            "FOR UPDATE/FOR SHARE",
            Some("pg_query write"),
        ),
        (
            "WITH c AS (SELECT * FROM t FOR NO KEY UPDATE) SELECT * FROM c",
            "FOR UPDATE/FOR SHARE",
            Some("pg_query write"),
        ),
        (
            "SELECT (SELECT a FROM t LIMIT 1 FOR KEY SHARE)",
            "FOR UPDATE/FOR SHARE",
            Some("pg_query write"),
        ),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "read refused: data-modifying WITH clause (DELETE) found; use pg_query write",
            Some("pg_query write"),
        ),
        (
            "WITH a AS (SELECT * FROM (WITH b AS (DELETE FROM t RETURNING *) SELECT * FROM b) s) SELECT * FROM a",
            "data-modifying WITH clause (DELETE)",
            Some("pg_query write"),
        ),
        (
            "WITH a AS (WITH b AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM b) SELECT * FROM a",
            "data-modifying WITH clause (INSERT)",
            Some("pg_query write"),
        ),
        (
            "SELECT (WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM u LIMIT 1)",
            "data-modifying WITH clause (UPDATE)",
            Some("pg_query write"),
        ),
        (
            "SELECT * FROM t WHERE EXISTS (WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *) SELECT 1 FROM m)",
            "data-modifying WITH clause (MERGE)",
            Some("pg_query write"),
        ),
        (
            "SELECT * FROM t, LATERAL (WITH d AS (DELETE FROM u RETURNING *) SELECT * FROM d) x",
            "data-modifying WITH clause (DELETE)",
            Some("pg_query write"),
        ),
        (
            "VALUES ((WITH d AS (DELETE FROM u RETURNING 1) SELECT * FROM d))",
            "data-modifying WITH clause (DELETE)",
            Some("pg_query write"),
        ),
        (
            "EXPLAIN WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "use pg_query explain",
            Some("pg_query explain"),
        ),
        (
            "EXPLAIN ANALYZE SELECT 1",
            "use pg_query explain",
            Some("pg_query explain"),
        ),
        (
            "EXPLAIN (ANALYZE, BUFFERS) SELECT 1",
            "use pg_query explain",
            Some("pg_query explain"),
        ),
        (
            "EXPLAIN INSERT INTO t VALUES (1)",
            "use pg_query explain",
            Some("pg_query explain"),
        ),
        (
            "SELECT * INTO new_t FROM t",
            "SELECT … INTO creates a new table",
            Some("pg_schema create"),
        ),
        (
            "CREATE TABLE t (a int)",
            "Use pg_schema create.",
            Some("pg_schema create"),
        ),
        (
            "ALTER TABLE t ADD COLUMN b int",
            "Use pg_schema alter.",
            Some("pg_schema alter"),
        ),
        (
            "DROP TABLE t",
            "this is a DROP TABLE (DDL). Use pg_schema drop.",
            Some("pg_schema drop"),
        ),
        ("TRUNCATE t", "Use pg_schema drop.", Some("pg_schema drop")),
        (
            "GRANT SELECT ON t TO r",
            "Use pg_schema alter.",
            Some("pg_schema alter"),
        ),
        ("VACUUM t", "Use pg_admin.", Some("pg_admin")),
        ("ANALYZE t", "Use pg_admin.", Some("pg_admin")),
        ("BEGIN", "use the pg_tx tool", Some("pg_tx")),
        ("COMMIT", "use the pg_tx tool", Some("pg_tx")),
        (
            "SET TRANSACTION READ WRITE",
            "use the pg_tx tool",
            Some("pg_tx"),
        ),
        ("SET ROLE postgres", "changes the role", None),
        ("COPY t TO PROGRAM 'sh'", "shell command", None),
        ("COPY t TO '/tmp/x'", "file system", None),
        ("COPY t TO STDOUT", "cannot do", None),
        ("LOAD 'x'", "shared library", None),
        ("DISCARD ALL", "DISCARD", None),
        ("LISTEN c", "notification", None),
        ("EXECUTE q(1)", "placeholders", None),
        ("DECLARE c CURSOR FOR SELECT 1", "cursor", None),
        ("CHECKPOINT", "CHECKPOINT", None),
        ("CREATE DATABASE d", "database", None),
        ("DROP TABLESPACE ts", "tablespace", None),
        ("ALTER SYSTEM SET work_mem = '1GB'", "server-wide", None),
        ("RESET ALL", "RESET ALL", None),
        ("SET work_mem = '1GB'", "leak", None),
    ];

    #[test]
    fn reads_refused() {
        for (sql, needle, tool) in READ_REFUSED {
            let p = parsed(sql);
            let refusal = check_read(&p).expect_err(sql);
            assert!(
                refusal.reason.contains(needle),
                "{sql:?}: {:?} should contain {needle:?}",
                refusal.reason
            );
            assert_eq!(refusal.use_instead, *tool, "{sql:?}");
            assert_eq!(refusal.to_string(), refusal.reason);
        }
    }

    // -----------------------------------------------------------------------------------
    // Function denylist
    // -----------------------------------------------------------------------------------

    /// (call, the name the refusal must mention)
    const DENIED_CALLS: &[(&str, &str)] = &[
        ("pg_read_file('/etc/passwd')", "pg_read_file"),
        ("pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file"),
        ("\"pg_read_file\"('x')", "pg_read_file"),
        ("pg_catalog.\"pg_read_file\"('x')", "pg_read_file"),
        ("PG_READ_FILE('x')", "pg_read_file"),
        ("pg_read_binary_file('x')", "pg_read_binary_file"),
        ("pg_terminate_backend(1)", "pg_terminate_backend"),
        ("pg_cancel_backend(1)", "pg_cancel_backend"),
        ("pg_reload_conf()", "pg_reload_conf"),
        ("pg_ls_dir('.')", "pg_ls_dir"),
        ("pg_stat_file('x')", "pg_stat_file"),
        ("lo_import('/etc/passwd')", "lo_import"),
        ("dblink('dbname=x', 'select 1')", "dblink"),
        ("public.dblink_exec('x', 'y')", "dblink_exec"),
        ("set_config('role', 'x', false)", "set_config"),
        ("pg_advisory_lock(1)", "pg_advisory_lock"),
        ("pg_try_advisory_xact_lock(1)", "pg_try_advisory_xact_lock"),
        ("nextval('s')", "nextval"),
        ("setval('s', 1)", "setval"),
        ("pg_notify('c', 'x')", "pg_notify"),
        (
            "query_to_xml('delete from t', true, true, '')",
            "query_to_xml",
        ),
        ("pg_stat_reset()", "pg_stat_reset"),
        ("lo_unlink(1)", "lo_unlink"),
        ("pg_switch_wal()", "pg_switch_wal"),
        (
            "pg_create_logical_replication_slot('s', 'p')",
            "pg_create_logical_replication_slot",
        ),
        ("database_to_xml(true, true, '')", "database_to_xml"),
        ("ts_stat('SELECT pg_read_file(''x'')::tsvector')", "ts_stat"),
    ];

    /// Places a call can hide in a read; `{f}` is replaced by the call.
    const CALL_SITES: &[&str] = &[
        "SELECT {f}",
        "SELECT * FROM {f}",
        "SELECT * FROM {f} AS x(y text)",
        "SELECT * FROM t WHERE a = {f}",
        "SELECT * FROM t, LATERAL {f} AS x",
        "SELECT * FROM t, LATERAL (SELECT {f}) x",
        "SELECT (SELECT {f})",
        "SELECT CASE WHEN a THEN {f} END FROM t",
        "SELECT coalesce(length({f}::text), 0)",
        "SELECT * FROM t ORDER BY {f}",
        "WITH c AS (SELECT {f}) SELECT * FROM c",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n FROM c WHERE {f} IS NULL) SELECT * FROM c",
        "SELECT * FROM t GROUP BY {f}",
        "SELECT count(*) FROM t HAVING count(*) > length({f}::text)",
        "SELECT * FROM ROWS FROM (generate_series(1, 2), {f}) AS r",
        "SELECT * FROM t WHERE EXISTS (SELECT 1 WHERE {f} IS NOT NULL)",
        "SELECT 1 UNION SELECT {f}",
        "VALUES ({f})",
        "SELECT row_number() OVER (ORDER BY {f})",
        "SELECT array_agg(a ORDER BY {f}) FROM t",
        "SELECT count(*) FILTER (WHERE {f} IS NULL) FROM t",
        "SELECT * FROM t LIMIT {f}",
        "SELECT json_build_object('k', {f})",
        "SELECT JSON_OBJECT('k' : {f})",
        "SELECT * FROM t WHERE a IN ({f})",
        "SELECT ARRAY[{f}]",
        "SELECT ({f}).x",
        "EXPLAIN SELECT {f}",
        "SELECT * FROM XMLTABLE('/r' PASSING CAST({f} AS xml) COLUMNS a int)",
        "SELECT * FROM t TABLESAMPLE BERNOULLI (length({f}::text))",
        "SELECT * FROM t JOIN u ON u.a = {f}",
        "SELECT * FROM t WHERE NOT ({f} IS NULL OR a > 1)",
        "SELECT {f}::text COLLATE \"C\"",
        "SELECT greatest(1, {f})",
        "SELECT JSON_VALUE(jsonb '{}', '$.a' PASSING {f} AS x)",
    ];

    #[test]
    fn denylisted_functions_are_refused_in_reads_wherever_they_hide() {
        let mut checked = 0;
        for (call, name) in DENIED_CALLS {
            for site in CALL_SITES {
                let sql = site.replace("{f}", call);
                let p = parsed(&sql);
                let refusal = check_read(&p).expect_err(&sql);
                let expected = format!("function {name} is not allowed in reads: ");
                assert!(
                    refusal.reason.starts_with(&expected),
                    "{sql:?}: {:?}",
                    refusal.reason
                );
                checked += 1;
            }
        }
        assert_eq!(checked, DENIED_CALLS.len() * CALL_SITES.len());
    }

    #[test]
    fn every_denylist_entry_matches_and_is_scoped() {
        for entry in DENIED_FUNCTIONS {
            let name = match entry.name {
                NameMatch::Exact(n) => n.to_string(),
                NameMatch::Prefix(p) => format!("{p}_variant"),
            };
            let read = parsed(&format!("SELECT {name}(1)"));
            assert_refused(&name, "read", check_read(&read), "is not allowed in reads");
            let write = parsed(&format!("INSERT INTO t SELECT {name}(1)"));
            if entry.everywhere {
                assert_refused(&name, "write", check_write(&write), "is not allowed: ");
            } else {
                assert_eq!(
                    check_write(&write),
                    Ok(()),
                    "{name} should be fine in writes"
                );
            }
            let call = parsed(&format!("CALL {name}(1)"));
            assert_eq!(check_write(&call).is_err(), entry.everywhere, "CALL {name}");
        }
    }

    // -----------------------------------------------------------------------------------
    // Write
    // -----------------------------------------------------------------------------------

    /// (sql, None = accepted / Some((substring, use_instead)) = refused)
    type WriteCase = (&'static str, Option<(&'static str, Option<&'static str>)>);
    const WRITE_CASES: &[WriteCase] = &[
        ("INSERT INTO t (a) VALUES ($1) RETURNING id", None),
        ("INSERT INTO t DEFAULT VALUES", None),
        ("INSERT INTO t (a) OVERRIDING SYSTEM VALUE VALUES (1)", None),
        (
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a WHERE t.a <> EXCLUDED.a",
            None,
        ),
        (
            "INSERT INTO t VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING",
            None,
        ),
        (
            "WITH s AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM s",
            None,
        ),
        (
            "INSERT INTO t SELECT * FROM u WHERE id IN (SELECT id FROM v)",
            None,
        ),
        ("INSERT INTO t VALUES (nextval('s'))", None),
        ("UPDATE t SET a = a + 1 WHERE id = $1", None),
        (
            "UPDATE t SET (a, b) = (SELECT x, y FROM u WHERE u.id = t.id)",
            None,
        ),
        (
            "UPDATE t SET a = DEFAULT FROM u WHERE u.id = t.id RETURNING t.*",
            None,
        ),
        ("UPDATE t SET a = 1 RETURNING OLD.a, NEW.a", None),
        ("UPDATE t SET a = setval('s', 1)", None),
        ("DELETE FROM t WHERE id = 1 RETURNING *", None),
        ("DELETE FROM t USING u WHERE u.id = t.id", None),
        (
            "WITH old AS (SELECT id FROM t WHERE a < 0) DELETE FROM t WHERE id IN (SELECT id FROM old)",
            None,
        ),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.del THEN DELETE WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
            None,
        ),
        (
            "MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE RETURNING merge_action(), t.*",
            None,
        ),
        ("CALL p(1, 'x')", None),
        ("CALL s.p(a => 1)", None),
        ("DO $$BEGIN PERFORM 1; END$$", None),
        ("DO LANGUAGE plpgsql $$BEGIN NULL; END$$", None),
        ("SELECT * FROM t WHERE id = 1 FOR UPDATE", None),
        ("SELECT * FROM t FOR SHARE OF t NOWAIT", None),
        (
            "WITH d AS (DELETE FROM t WHERE a < 0 RETURNING *) SELECT count(*) FROM d",
            None,
        ),
        ("LOCK TABLE t IN SHARE MODE", None),
        ("INSERT INTO t VALUES (lo_from_bytea(0, 'x'))", None),
        (
            "SELECT 1",
            Some((
                "this is a SELECT, which only reads. Use pg_query read.",
                Some("pg_query read"),
            )),
        ),
        (
            "SHOW work_mem",
            Some(("Use pg_query read.", Some("pg_query read"))),
        ),
        (
            "EXPLAIN SELECT 1",
            Some(("EXPLAIN without ANALYZE", Some("pg_query read"))),
        ),
        (
            "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
            Some(("use pg_query explain", Some("pg_query explain"))),
        ),
        (
            "SELECT * INTO x FROM t",
            Some((
                "SELECT … INTO creates a new table",
                Some("pg_schema create"),
            )),
        ),
        (
            "CREATE TABLE t (a int)",
            Some(("Use pg_schema create.", Some("pg_schema create"))),
        ),
        (
            "CREATE ROLE r",
            Some(("Use pg_schema create.", Some("pg_schema create"))),
        ),
        (
            "DROP TABLE t",
            Some(("Use pg_schema drop.", Some("pg_schema drop"))),
        ),
        (
            "TRUNCATE t",
            Some(("Use pg_schema drop.", Some("pg_schema drop"))),
        ),
        (
            "ALTER TABLE t ADD b int",
            Some(("Use pg_schema alter.", Some("pg_schema alter"))),
        ),
        (
            "REVOKE ALL ON t FROM r",
            Some(("Use pg_schema alter.", Some("pg_schema alter"))),
        ),
        ("VACUUM FULL t", Some(("Use pg_admin.", Some("pg_admin")))),
        ("REINDEX INDEX i", Some(("Use pg_admin.", Some("pg_admin")))),
        ("BEGIN", Some(("use the pg_tx tool", Some("pg_tx")))),
        (
            "ROLLBACK TO SAVEPOINT s",
            Some(("use the pg_tx tool", Some("pg_tx"))),
        ),
        (
            "INSERT INTO t SELECT pg_read_file('/etc/passwd')",
            Some(("function pg_read_file is not allowed: ", None)),
        ),
        (
            "DELETE FROM t WHERE pg_terminate_backend(pid)",
            Some(("function pg_terminate_backend is not allowed", None)),
        ),
        (
            "CALL dblink_exec('x')",
            Some(("function dblink_exec is not allowed", None)),
        ),
        (
            "UPDATE t SET a = set_config('role', 'x', true)",
            Some(("function set_config is not allowed", None)),
        ),
        (
            "INSERT INTO t SELECT query_to_xml('x', true, true, '')",
            Some(("function query_to_xml is not allowed", None)),
        ),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT pg_ls_dir('.') FROM d",
            Some(("function pg_ls_dir is not allowed", None)),
        ),
        ("COPY t FROM STDIN", Some(("streaming", None))),
        (
            "PREPARE q AS INSERT INTO t VALUES ($1)",
            Some(("placeholders", None)),
        ),
        ("SET ROLE admin", Some(("changes the role", None))),
    ];

    #[test]
    fn write_cases() {
        for (sql, expected) in WRITE_CASES {
            let p = parsed(sql);
            match (check_write(&p), expected) {
                (Ok(()), None) => {}
                (Err(r), Some((needle, tool))) => {
                    assert!(r.reason.contains(needle), "{sql:?}: {:?}", r.reason);
                    assert_eq!(r.use_instead, *tool, "{sql:?}");
                }
                (got, _) => panic!("{sql:?}: expected {expected:?}, got {got:?}"),
            }
        }
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

    // -----------------------------------------------------------------------------------
    // Explain
    // -----------------------------------------------------------------------------------

    type ExplainCase = (&'static str, Result<ExplainTarget, &'static str>);
    const EXPLAIN_CASES: &[ExplainCase] = &[
        ("SELECT * FROM t WHERE a = 1", Ok(ExplainTarget::Read)),
        (
            "WITH x AS (SELECT 1) SELECT * FROM x",
            Ok(ExplainTarget::Read),
        ),
        ("VALUES (1)", Ok(ExplainTarget::Read)),
        ("TABLE t", Ok(ExplainTarget::Read)),
        ("INSERT INTO t VALUES (1)", Ok(ExplainTarget::Write)),
        ("UPDATE t SET a = 1", Ok(ExplainTarget::Write)),
        ("DELETE FROM t RETURNING *", Ok(ExplainTarget::Write)),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            Ok(ExplainTarget::Write),
        ),
        ("SELECT * FROM t FOR UPDATE", Ok(ExplainTarget::Write)),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Ok(ExplainTarget::Write),
        ),
        (
            "INSERT INTO t VALUES (nextval('s'))",
            Ok(ExplainTarget::Write),
        ),
        (
            "EXPLAIN SELECT 1",
            Err("send the statement without EXPLAIN"),
        ),
        (
            "EXPLAIN ANALYZE DELETE FROM t",
            Err("send the statement without EXPLAIN"),
        ),
        ("SHOW work_mem", Err("a SHOW cannot be explained")),
        ("CALL p()", Err("a CALL cannot be explained")),
        ("DO $$BEGIN END$$", Err("a DO cannot be explained")),
        ("LOCK TABLE t", Err("a LOCK TABLE cannot be explained")),
        ("CREATE TABLE t (a int)", Err("Use pg_schema create.")),
        ("SELECT 1 INTO x", Err("SELECT … INTO")),
        ("BEGIN", Err("use the pg_tx tool")),
        ("VACUUM", Err("Use pg_admin.")),
        (
            "SELECT pg_read_file('x')",
            Err("function pg_read_file is not allowed in reads"),
        ),
        (
            "SELECT nextval('s')",
            Err("function nextval is not allowed in reads"),
        ),
        (
            "INSERT INTO t SELECT pg_ls_dir('.')",
            Err("function pg_ls_dir is not allowed"),
        ),
        ("COPY t TO STDOUT", Err("streaming")),
    ];

    #[test]
    fn explain_cases() {
        for (sql, expected) in EXPLAIN_CASES {
            let got = check_explain(&parsed(sql));
            match (&got, expected) {
                (Ok(target), Ok(want)) => assert_eq!(target, want, "{sql:?}"),
                (Err(r), Err(needle)) => {
                    assert!(r.reason.contains(needle), "{sql:?}: {:?}", r.reason)
                }
                _ => panic!("{sql:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // DDL and admin
    // -----------------------------------------------------------------------------------

    const DDL_CASES: &[(&str, DdlKind, Result<(), &str>)] = &[
        ("CREATE TABLE t (a int)", Create, Ok(())),
        (
            "CREATE TABLE t (a int)",
            Drop,
            Err("this is a CREATE TABLE, which is a create statement; use pg_schema create"),
        ),
        ("CREATE INDEX CONCURRENTLY i ON t (a)", Create, Ok(())),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            Create,
            Ok(()),
        ),
        (
            "CREATE OR REPLACE VIEW v AS SELECT * FROM t",
            Create,
            Ok(()),
        ),
        ("CREATE VIEW v AS SELECT nextval('s')", Create, Ok(())),
        (
            "CREATE VIEW v AS SELECT pg_read_file('x')",
            Create,
            Err("function pg_read_file is not allowed"),
        ),
        ("CREATE TABLE n AS SELECT * FROM t", Create, Ok(())),
        (
            "CREATE TABLE n AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Create,
            Err("data-modifying statement (DELETE)"),
        ),
        ("SELECT * INTO n FROM t", Create, Ok(())),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * INTO n FROM d",
            Create,
            Err("data-modifying statement (DELETE)"),
        ),
        ("CREATE ROLE r PASSWORD 'x'", Create, Ok(())),
        ("ALTER TABLE t ADD COLUMN b int", Alter, Ok(())),
        (
            "ALTER TABLE t ADD COLUMN b int",
            Create,
            Err("use pg_schema alter"),
        ),
        ("COMMENT ON TABLE t IS 'x'", Alter, Ok(())),
        ("GRANT SELECT ON t TO r", Alter, Ok(())),
        ("REFRESH MATERIALIZED VIEW mv", Alter, Ok(())),
        ("DROP TABLE t", Drop, Ok(())),
        ("DROP TABLE t", Create, Err("use pg_schema drop")),
        ("TRUNCATE t", Drop, Ok(())),
        ("TRUNCATE t", Alter, Err("use pg_schema drop")),
        ("DROP ROLE r", Drop, Ok(())),
        ("SELECT 1", Create, Err("Use pg_query read.")),
        (
            "INSERT INTO t VALUES (1)",
            Create,
            Err("Use pg_query write"),
        ),
        ("VACUUM t", Alter, Err("Use pg_admin.")),
        (
            "CREATE DATABASE d",
            Create,
            Err("databases is not accepted"),
        ),
        (
            "CREATE TABLESPACE ts LOCATION '/x'",
            Create,
            Err("tablespaces"),
        ),
        ("BEGIN", Create, Err("use the pg_tx tool")),
    ];

    #[test]
    fn ddl_cases() {
        for (sql, kind, expected) in DDL_CASES {
            let got = check_ddl(&parsed(sql), *kind);
            match (&got, expected) {
                (Ok(()), Ok(())) => {}
                (Err(r), Err(needle)) => {
                    assert!(r.reason.contains(needle), "{sql:?}: {:?}", r.reason)
                }
                _ => panic!("{sql:?} as {kind:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn admin_cases() {
        for sql in [
            "VACUUM",
            "VACUUM (VERBOSE, ANALYZE) t",
            "ANALYZE t (a)",
            "REINDEX TABLE CONCURRENTLY t",
            "CLUSTER t",
        ] {
            assert_eq!(check_admin(&parsed(sql)), Ok(()), "{sql:?}");
        }
        for sql in ["SELECT 1", "DROP TABLE t", "REFRESH MATERIALIZED VIEW mv"] {
            assert!(check_admin(&parsed(sql)).is_err(), "{sql:?}");
        }
    }

    // -----------------------------------------------------------------------------------
    // Redaction
    // -----------------------------------------------------------------------------------

    const REDACT_CASES: &[(&str, &str)] = &[
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

    // -----------------------------------------------------------------------------------
    // Fail-closed walker
    // -----------------------------------------------------------------------------------

    #[test]
    fn unknown_nodes_fail_closed() {
        let mut p = parsed("SELECT 1");
        p.facts.unknown = Some("Query".to_string());
        assert_refused("SELECT 1", "read", check_read(&p), "construct (Query)");
        let mut p = parsed("INSERT INTO t VALUES (1)");
        p.facts.unknown = Some("Query".to_string());
        assert_refused("INSERT", "write", check_write(&p), "construct (Query)");
        // The name helper reports the variant, not the whole debug dump.
        let stmt = parsed("SELECT 1").stmt;
        assert_eq!(node_kind(stmt.to_ref()), "SelectStmt");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 500;
        let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        match parse_one(&sql) {
            Ok(p) => assert!(check_read(&p).is_ok()),
            // libpg_query may refuse with "stack depth limit exceeded"; either way, no panic.
            Err(e) => assert!(matches!(e, ClassifyError::Syntax { .. }), "{e}"),
        }
    }

    // -----------------------------------------------------------------------------------
    // Independent oracles and property-style tests
    // -----------------------------------------------------------------------------------

    /// What an independent look at the tree (its Debug dump) says, without the walker.
    struct Oracle {
        has_dml: bool,
        has_locking: bool,
        has_into: bool,
        called: Vec<String>,
    }

    fn oracle(p: &Parsed) -> Oracle {
        let dump = format!("{:?}", p.stmt);
        let mut called = Vec::new();
        for (at, _) in dump.match_indices("FuncCall { funcname: [") {
            let rest = &dump[at..];
            let names = rest.split("], args").next().unwrap_or_default();
            if let Some(last) = names.rsplit("sval: \"").next()
                && let Some(name) = last.split('"').next()
            {
                called.push(name.to_lowercase());
            }
        }
        Oracle {
            has_dml: ["InsertStmt(", "UpdateStmt(", "DeleteStmt(", "MergeStmt("]
                .iter()
                .any(|n| dump.contains(n)),
            has_locking: dump.contains("LockingClause {"),
            has_into: dump.contains("IntoClause {"),
            called,
        }
    }

    /// Asserts the read gate agrees with the oracle on anything it accepted.
    fn assert_read_sound(p: &Parsed) {
        if check_read(p).is_ok() {
            let o = oracle(p);
            let sql = p.sql();
            assert!(
                !o.has_dml,
                "read accepted a data-modifying statement: {sql:?}"
            );
            assert!(!o.has_locking, "read accepted a locking clause: {sql:?}");
            assert!(!o.has_into, "read accepted SELECT INTO: {sql:?}");
            for name in &o.called {
                assert!(
                    denied_function(name).is_none(),
                    "read accepted {name}: {sql:?}"
                );
            }
        }
    }

    const DML: &[&str] = &[
        "DELETE FROM t RETURNING *",
        "INSERT INTO t VALUES (1) RETURNING *",
        "UPDATE t SET a = 1 RETURNING *",
        "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE RETURNING t.*",
    ];

    const DML_SITES: &[&str] = &[
        "{d}",
        "WITH x AS ({d}) SELECT * FROM x",
        "WITH x AS ({d}) VALUES (1)",
        "WITH a AS (SELECT 1), x AS ({d}) TABLE a",
        "WITH a AS (SELECT * FROM (WITH b AS ({d}) SELECT * FROM b) s) SELECT * FROM a",
        "WITH a AS (WITH b AS ({d}) SELECT * FROM b) SELECT * FROM a",
        "WITH RECURSIVE x AS ({d}) SELECT * FROM x",
        "SELECT * FROM (WITH x AS ({d}) SELECT * FROM x) s",
        "SELECT (WITH x AS ({d}) SELECT 1 FROM x LIMIT 1)",
        "SELECT * FROM t WHERE EXISTS (WITH x AS ({d}) SELECT 1 FROM x)",
        "SELECT * FROM t, LATERAL (WITH x AS ({d}) SELECT * FROM x) y",
        "SELECT 1 UNION ALL (WITH x AS ({d}) SELECT 1 FROM x)",
        "SELECT ARRAY(WITH x AS ({d}) SELECT 1 FROM x)",
        "SELECT CASE WHEN true THEN (WITH x AS ({d}) SELECT 1 FROM x) END",
        "SELECT * FROM t ORDER BY (WITH x AS ({d}) SELECT 1 FROM x)",
        "SELECT count(*) FILTER (WHERE EXISTS (WITH x AS ({d}) SELECT 1 FROM x)) FROM t",
        "SELECT JSON_ARRAY(WITH x AS ({d}) SELECT 1 FROM x)",
        "VALUES ((WITH x AS ({d}) SELECT 1 FROM x))",
        "SELECT * FROM t GROUP BY (WITH x AS ({d}) SELECT 1 FROM x)",
        "SELECT row_number() OVER (ORDER BY (WITH x AS ({d}) SELECT 1 FROM x))",
        "EXPLAIN WITH x AS ({d}) SELECT * FROM x",
        "EXPLAIN {d}",
    ];

    #[test]
    fn read_never_accepts_a_tree_containing_dml() {
        let mut parsed_count = 0;
        for d in DML {
            for site in DML_SITES {
                let sql = site.replace("{d}", d);
                let Ok(p) = parse_one(&sql) else { continue };
                parsed_count += 1;
                assert!(oracle(&p).has_dml, "oracle sanity: {sql:?}");
                assert!(check_read(&p).is_err(), "read accepted {sql:?}");
            }
        }
        assert!(
            parsed_count >= DML.len() * (DML_SITES.len() - 2),
            "only {parsed_count} parsed"
        );
    }

    /// A tiny deterministic PRNG (xorshift64*), so the property tests need no extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    /// Every SQL string in this module's tables, as seeds for mutation.
    fn corpus() -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        all.extend(PARSE_CASES.iter().map(|(s, _)| s.to_string()));
        all.extend(class_cases().iter().map(|(s, _, _)| s.to_string()));
        all.extend(READS_ACCEPTED.iter().map(|s| s.to_string()));
        all.extend(READ_REFUSED.iter().map(|(s, _, _)| s.to_string()));
        all.extend(WRITE_CASES.iter().map(|(s, _)| s.to_string()));
        all.extend(EXPLAIN_CASES.iter().map(|(s, _)| s.to_string()));
        all.extend(DDL_CASES.iter().map(|(s, _, _)| s.to_string()));
        all.extend(REDACT_CASES.iter().map(|(s, _)| s.to_string()));
        for (call, _) in DENIED_CALLS.iter().take(4) {
            all.extend(CALL_SITES.iter().map(|site| site.replace("{f}", call)));
        }
        for d in DML {
            all.extend(DML_SITES.iter().map(|site| site.replace("{d}", d)));
        }
        all
    }

    const NOISE: &[&str] = &[
        ";",
        "'",
        "\"",
        "$$",
        "$q$",
        "--",
        "\n",
        "/*",
        "*/",
        "(",
        ")",
        " ",
        ",",
        "E'",
        "U&'",
        "\\",
        "\0",
        "é",
        "𝄞",
        "SELECT ",
        " FROM t",
        " WHERE ",
        "WITH x AS (",
        "DELETE FROM t",
        " RETURNING *",
        " FOR UPDATE",
        " INTO z",
        "pg_read_file('x')",
        "nextval('s')",
        "EXPLAIN ",
        "ANALYZE ",
        " UNION ",
        "VALUES (1)",
        "INSERT INTO t VALUES (1)",
        "BEGIN",
        "COMMIT",
        "COPY ",
        " PASSWORD 'p'",
    ];

    /// Mutates `s` a few times: inserts noise, deletes or duplicates a range, splices, truncates.
    fn mutate(rng: &mut Rng, s: &str, other: &str) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        for _ in 0..=rng.below(2) {
            let at = rng.below(chars.len() + 1);
            match rng.below(5) {
                0 | 1 => {
                    let noise: Vec<char> = rng.pick(NOISE).chars().collect();
                    chars.splice(at..at, noise);
                }
                2 => {
                    let end = (at + rng.below(8)).min(chars.len());
                    chars.drain(at..end);
                }
                3 => {
                    let end = (at + rng.below(12)).min(chars.len());
                    let copy: Vec<char> = chars[at..end].to_vec();
                    chars.splice(at..at, copy);
                }
                _ => {
                    let tail: Vec<char> = other.chars().collect();
                    let from = rng.below(tail.len() + 1);
                    chars.truncate(at);
                    chars.extend_from_slice(&tail[from..]);
                }
            }
        }
        chars.into_iter().collect()
    }

    /// Runs everything on `sql`; must never panic.
    fn exercise(sql: &str) {
        let _ = redact(sql);
        let Ok(p) = parse_one(sql) else { return };
        let _ = (
            p.command(),
            p.class(),
            p.is_plain_select(),
            p.has_returning(),
        );
        let _ = (
            check_read(&p),
            check_write(&p),
            check_explain(&p),
            check_admin(&p),
        );
        for kind in [Create, Alter, Drop] {
            let _ = check_ddl(&p, kind);
        }
        assert_read_sound(&p);
        // sql() must be a faithful copy of the single statement.
        let again =
            parse_one(p.sql()).unwrap_or_else(|e| panic!("sql() of {sql:?} = {:?}: {e}", p.sql()));
        assert_eq!(
            (again.command(), again.class()),
            (p.command(), p.class()),
            "{sql:?}"
        );
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let corpus = corpus();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut parsed_ok = 0;
        for _ in 0..1000 {
            let base = rng.pick(&corpus);
            let other = rng.pick(&corpus);
            let sql = mutate(&mut rng, base, other);
            if parse_one(&sql).is_ok() {
                parsed_ok += 1;
            }
            exercise(&sql);
        }
        // The mutations must not be so destructive that nothing parses.
        eprintln!("{parsed_ok} of 1000 mutated inputs parsed");
        assert!(parsed_ok > 50, "only {parsed_ok} mutated inputs parsed");
    }

    #[test]
    fn random_token_soup_never_panics() {
        const WORDS: &[&str] = &[
            "SELECT",
            "FROM",
            "t",
            "u",
            "(",
            ")",
            ";",
            "WITH",
            "x",
            "AS",
            "DELETE",
            "INSERT",
            "INTO",
            "VALUES",
            "1",
            "'x'",
            "$$a$$",
            "--c\n",
            "/*c*/",
            "pg_read_file('f')",
            "FOR",
            "UPDATE",
            "UNION",
            "WHERE",
            "=",
            ",",
            "*",
            "RETURNING",
            "EXPLAIN",
            "ANALYZE",
            "SET",
            "a",
            "TABLE",
            "LATERAL",
            "JOIN",
            "ON",
            "true",
            "nextval('s')",
            "SHOW",
            "ALL",
        ];
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..600 {
            let len = 1 + rng.below(14);
            let sql: Vec<&str> = (0..len).map(|_| *rng.pick(WORDS)).collect();
            exercise(&sql.join(" "));
        }
    }

    #[test]
    fn corpus_is_sound() {
        for sql in corpus() {
            exercise(&sql);
        }
    }
}
