//! The action gates (`check_read`, `check_write`, `check_explain`, `check_ddl`, `check_admin`,
//! `check_rolled_back_write`) and the wording of every refusal a caller sees.
//!
//! A gate takes a [`Parsed`] statement and either lets it through or returns a [`Refusal`] that
//! says what was found and which tool accepts it instead. It looks at the statement's class
//! (`classify.rs`) and at the facts the walker gathered (`walk/`): unknown nodes, data
//! modification, locking, INTO and calls to denylisted functions (`denylist.rs`).

use std::fmt;

use pg_query::NodeEnum;

use super::classify::{DdlKind, Forbidden, StatementClass};
use super::denylist::denied_function;
use super::parse::Parsed;

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

impl Forbidden {
    /// The refusal shown to the caller, whatever action the statement was sent to.
    pub(super) fn refusal(self, command: &str) -> Refusal {
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
    if matches!(*p.stmt, NodeEnum::SelectStmt(_)) {
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
    if matches!(*p.stmt, NodeEnum::DoStmt(_) | NodeEnum::CallStmt(_)) {
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
        *p.stmt,
        NodeEnum::SelectStmt(_)
            | NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_)
    );
    if matches!(*p.stmt, NodeEnum::ExplainStmt(_)) {
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
/// CREATE/ALTER ROLE may carry passwords: log such statements through [`redact`](super::redact::redact).
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

#[cfg(test)]
pub(super) mod tests;
