//! The one decision point: whether a parsed statement may run for a given action and
//! authority, and how (the [`Plan`]). Every tool and action that accepts SQL asks here; no
//! tool decides default-deny, dry-run or read-only by itself.
//!
//! The decision has three layers, applied in this order:
//! 1. The statement's class must fit the action (`classify::check_*`: a DELETE sent to
//!    `read` is refused and pointed at `write`; statements refused in every action are
//!    refused here too).
//! 2. Authority: writes and DDL need `autocommit: true` or a session; `dry_run` needs neither
//!    but never commits, with or without `autocommit`.
//! 3. What the whole tree does ([`super::scan`]): every function call and operator, judged
//!    against the catalog ([`super::functions`]) with the strictness the authority calls for
//!    (allowlist without write authorization and in all stored code; procedural and C code
//!    checked in authorized writes), relations that expose server files or other callers'
//!    state, procedural blocks (opt-in), server files or programs in foreign-table options,
//!    and settings that change how SQL is lexed or guarded.

use super::classify::{self, DdlKind, ExplainTarget, Parsed, Refusal, StatementClass};
use super::functions::{self, CallProblem, Catalog, Rules, Strictness};
use super::scan::{Found, QualName};

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// `pg_query read`.
    Read,
    /// `pg_query write`.
    Write,
    /// `pg_query explain`, with or without ANALYZE.
    Explain {
        /// Whether the statement is executed.
        analyze: bool,
    },
    /// One operation of `pg_query transaction`.
    Operation,
    /// `pg_schema create/alter/drop`.
    Ddl(DdlKind),
}

/// The caller's authority for this call, worked out once from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authority {
    /// `dry_run: true`: run and roll back; never commits.
    pub(crate) dry_run: bool,
    /// `autocommit: true`: may commit its own transaction.
    pub(crate) autocommit: bool,
    /// The call runs inside a pg_tx session (whose owner commits or rolls back).
    pub(crate) session: bool,
}

impl Authority {
    /// May this call's changes last (commit now, or in the session later)?
    fn may_write(self) -> bool {
        !self.dry_run && (self.autocommit || self.session)
    }
}

/// How an authorized statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Run in a READ ONLY transaction (or a read-only savepoint in a session).
    pub(crate) read_only: bool,
    /// Commit at the end (pooled calls); `false` rolls back.
    pub(crate) commit: bool,
    /// Procedural code runs: the connection must be closed afterwards, never reused.
    pub(crate) close_connection: bool,
    /// For explain: what is being explained.
    pub(crate) explain: Option<ExplainTarget>,
    /// A read whose every function is reviewed built-in or default-extension code, so that
    /// nothing it does can outlive the statement: it may run as one autocommit statement on a
    /// read-only connection, with no transaction to roll back and no clean-up afterwards.
    /// A call of a user-defined function (whose body can take a session advisory lock or
    /// `set_config(…, false)`) keeps the BEGIN READ ONLY … ROLLBACK form and its clean-up.
    pub(crate) one_statement: bool,
    /// Why the statement needs a confirmation before it runs ([`super::destructive`]);
    /// `None` for statements that do not, and always for dry runs (nothing lasts).
    pub(crate) destructive: Option<&'static str>,
}

/// Why the policy said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denial {
    /// Refused, with a message the caller can act on.
    Refused(Refusal),
    /// A name resolves to nothing in the catalog snapshot: reload it and ask again; if it
    /// is still unknown, [`unknown_refusal`] says so.
    Unknown(String),
}

impl From<Refusal> for Denial {
    fn from(r: Refusal) -> Denial {
        Denial::Refused(r)
    }
}

/// The refusal for a name that is still unknown after a catalog reload.
pub(crate) fn unknown_refusal(name: &str) -> Refusal {
    refuse(format!(
        "{name} does not exist in this database as far as ColdQuery's checks can see, so it cannot be verified; check the name and schema (pg_schema list target: function). A function created inside an open pg_tx session becomes usable in reads after commit"
    ))
}

/// The refusal for `pg_query transaction` with writes but neither autocommit nor dry_run.
pub(crate) fn default_deny_operations() -> Refusal {
    refuse("pg_query transaction with writes is default-deny: add autocommit: true to run and commit all operations atomically, or dry_run: true to try them and roll back".into())
}

fn refuse(reason: String) -> Refusal {
    Refusal {
        reason,
        use_instead: None,
    }
}

/// The statement-text check of the action, then the authority, then the whole tree.
pub(crate) fn authorize(
    action: Action,
    parsed: &Parsed,
    auth: Authority,
    cat: &Catalog,
    rules: &Rules,
) -> Result<Plan, Denial> {
    let plan = match action {
        Action::Read => {
            classify::check_read(parsed)?;
            check_tree(parsed, cat, rules, Strictness::Allowlist, "pg_query read")?;
            Plan {
                read_only: true,
                commit: false,
                close_connection: false,
                explain: None,
                one_statement: cat.only_reviewed_code(parsed.found(), rules),
                destructive: None,
            }
        }
        Action::Write | Action::Operation if parsed.class() == StatementClass::Read => {
            // Only `transaction` operations get here as reads (write refuses reads above in
            // check_write); they run with read checks inside the surrounding transaction.
            if action == Action::Write {
                classify::check_write(parsed)?;
            }
            classify::check_read(parsed)?;
            check_tree(
                parsed,
                cat,
                rules,
                Strictness::Allowlist,
                "pg_query transaction",
            )?;
            Plan {
                read_only: true,
                commit: false,
                close_connection: false,
                explain: None,
                one_statement: false,
                destructive: None,
            }
        }
        Action::Write | Action::Operation => {
            classify::check_write(parsed)?;
            let tool = if action == Action::Write {
                "pg_query write"
            } else {
                "pg_query transaction"
            };
            write_plan(parsed, auth, cat, rules, tool)?
        }
        Action::Explain { analyze } => {
            let target = classify::check_explain(parsed)?;
            let executes_write = analyze && target == ExplainTarget::Write;
            if executes_write && !(auth.autocommit || auth.session) {
                // EXPLAIN ANALYZE executes the write; without write authorization nothing
                // it does may escape the rollback.
                classify::check_rolled_back_write(parsed)?;
                check_tree(
                    parsed,
                    cat,
                    rules,
                    Strictness::Allowlist,
                    "pg_query explain",
                )?;
            } else if target == ExplainTarget::Read {
                check_tree(
                    parsed,
                    cat,
                    rules,
                    Strictness::Allowlist,
                    "pg_query explain",
                )?;
            } else {
                check_tree(parsed, cat, rules, Strictness::Write, "pg_query explain")?;
            }
            Plan {
                read_only: !executes_write,
                commit: false,
                close_connection: false,
                explain: Some(target),
                one_statement: false,
                destructive: None,
            }
        }
        Action::Ddl(kind) => ddl_plan(parsed, kind, auth, cat, rules)?,
    };
    // A statement that may change data for good (not a dry run, not a read) and that no
    // WHERE clause limits needs a confirmation first; how it is asked for is up to the
    // caller's client and the operator's COLDQUERY_CONFIRM_DESTRUCTIVE.
    let lasting = !auth.dry_run && !plan.read_only && plan.explain.is_none();
    Ok(Plan {
        destructive: if lasting {
            super::destructive::destructive(parsed.stmt())
        } else {
            None
        },
        ..plan
    })
}

/// pg_query write (and write operations of transaction).
fn write_plan(
    parsed: &Parsed,
    auth: Authority,
    cat: &Catalog,
    rules: &Rules,
    tool: &'static str,
) -> Result<Plan, Denial> {
    let found = parsed.found();
    if auth.dry_run {
        // Not authorized to write (autocommit does not change that): a rollback must undo
        // everything, so only what the allowlist admits may run.
        classify::check_rolled_back_write(parsed)?;
        check_tree(parsed, cat, rules, Strictness::Allowlist, tool)?;
        return Ok(Plan {
            read_only: false,
            commit: false,
            close_connection: false,
            explain: None,
            one_statement: false,
            destructive: None,
        });
    }
    if !auth.may_write() {
        let what = if tool == "pg_query write" {
            "add autocommit: true to run and commit this one statement, or pass a session_id from pg_tx begin; dry_run: true shows what it would do without changing anything"
        } else {
            "add autocommit: true to run and commit all operations atomically, or dry_run: true to try them and roll back"
        };
        let head = if tool == "pg_query write" {
            "pg_query write is default-deny"
        } else {
            "pg_query transaction with writes is default-deny"
        };
        return Err(Denial::Refused(refuse(format!("{head}: {what}"))));
    }
    let procedural = procedural_blocks(found, rules, tool)?;
    check_tree(parsed, cat, rules, Strictness::Write, tool)?;
    let calls_procedural = calls_procedural_code(parsed, cat);
    Ok(Plan {
        read_only: false,
        commit: !auth.session,
        close_connection: procedural || calls_procedural,
        explain: None,
        one_statement: false,
        destructive: None,
    })
}

/// pg_schema create/alter/drop.
fn ddl_plan(
    parsed: &Parsed,
    kind: DdlKind,
    auth: Authority,
    cat: &Catalog,
    rules: &Rules,
) -> Result<Plan, Denial> {
    classify::check_ddl(parsed, kind)?;
    let tool = match kind {
        DdlKind::Create => "pg_schema create",
        DdlKind::Alter => "pg_schema alter",
        DdlKind::Drop => "pg_schema drop",
    };
    if !auth.dry_run && !auth.may_write() {
        return Err(Denial::Refused(refuse(format!(
            "{tool} is default-deny: add autocommit: true to run and commit this statement, or pass a session_id from pg_tx begin; dry_run: true checks it and rolls back without changing anything"
        ))));
    }
    let found = parsed.found();
    let procedural = procedural_blocks(found, rules, tool)?;
    for lang in &found.function_languages {
        match lang.as_str() {
            "sql" => {}
            "c" | "internal" => {
                return Err(Denial::Refused(refuse(format!(
                    "{tool} refused: functions in LANGUAGE {lang} are machine code this server cannot inspect; create them as the database owner outside ColdQuery"
                ))));
            }
            other if !rules.allow_procedural => {
                return Err(Denial::Refused(refuse(format!(
                    "{tool} refused: a function in LANGUAGE {other} is procedural code whose dynamic SQL cannot be checked; write it in LANGUAGE sql, or have the operator set COLDQUERY_ALLOW_PROCEDURAL=true"
                ))));
            }
            _ => {}
        }
    }
    for name in &found.option_names {
        if matches!(name.as_str(), "program" | "filename") {
            return Err(Denial::Refused(refuse(format!(
                "{tool} refused: the option {name} makes the server read a file or run a program on every later read; file_fdw tables over server files or programs must be created by the operator outside ColdQuery"
            ))));
        }
    }
    for setting in &found.settings {
        if GUARDED_SETTINGS.contains(&setting.as_str()) {
            return Err(Denial::Refused(refuse(format!(
                "{tool} refused: {setting} changes how SQL is lexed or how ColdQuery's guards hold, so it cannot be set by a statement; leave it at the server's value"
            ))));
        }
    }
    // Everything a DDL statement evaluates or stores (defaults, USING, CHECK, generated
    // columns, index expressions, view/rule/policy bodies…) is held to the allowlist: stored
    // code runs later, in other callers' reads.
    check_tree(parsed, cat, rules, Strictness::StoredCode, tool)?;
    for body in &found.sql_bodies {
        check_sql_body(body, cat, rules, tool, 0)?;
    }
    Ok(Plan {
        read_only: false,
        commit: auth.may_write() && !auth.session,
        close_connection: procedural,
        explain: None,
        one_statement: false,
        destructive: None,
    })
}

/// Settings no statement may change: they change how SQL text is lexed (so the classifier
/// and the server could read the same text differently), or undo a guard.
const GUARDED_SETTINGS: &[&str] = &[
    "standard_conforming_strings",
    "backslash_quote",
    "escape_string_warning",
    "client_encoding",
    "default_transaction_read_only",
    "transaction_read_only",
    "session_authorization",
    "role",
];

/// `DO` blocks: refused unless procedural code is allowed; `Ok(true)` when one will run.
fn procedural_blocks(found: &Found, rules: &Rules, tool: &str) -> Result<bool, Denial> {
    if found.do_blocks == 0 {
        return Ok(false);
    }
    if !rules.allow_procedural {
        return Err(Denial::Refused(Refusal {
            reason: format!(
                "{tool} refused: DO blocks run procedural code whose dynamic SQL cannot be checked; write the statements out (pg_query transaction runs several atomically), or have the operator set COLDQUERY_ALLOW_PROCEDURAL=true"
            ),
            use_instead: Some("pg_query transaction"),
        }));
    }
    Ok(true)
}

/// Whether a call resolves to user-defined procedural code (only reachable when allowed).
fn calls_procedural_code(parsed: &Parsed, cat: &Catalog) -> bool {
    parsed
        .found()
        .calls
        .iter()
        .any(|name| cat.is_procedural_user_function(name))
}

/// Relations that expose server files, other callers' state on a shared connection, secrets,
/// or ColdQuery's own bookkeeping.
const DENIED_RELATIONS: &[&str] = &[
    "pg_prepared_statements",
    "pg_cursors",
    "pg_hba_file_rules",
    "pg_file_settings",
    "pg_ident_file_mappings",
    "pg_config",
    "pg_authid",
    "pg_shadow",
    "pg_user_mapping",
    "pg_user_mappings",
];

/// Relations, calls and operators anywhere in the tree.
fn check_tree(
    parsed: &Parsed,
    cat: &Catalog,
    rules: &Rules,
    strictness: Strictness,
    tool: &str,
) -> Result<(), Denial> {
    check_found(parsed.found(), parsed.class(), cat, rules, strictness, tool)
}

fn check_found(
    found: &Found,
    class: StatementClass,
    cat: &Catalog,
    rules: &Rules,
    strictness: Strictness,
    tool: &str,
) -> Result<(), Denial> {
    for rel in &found.relations {
        check_relation(rel, class, tool)?;
    }
    for call in &found.calls {
        functions::check_call(cat, rules, call, strictness).map_err(|p| denial(p, tool))?;
    }
    for op in &found.operators {
        functions::check_operator(cat, rules, op, strictness).map_err(|p| denial(p, tool))?;
    }
    for name in &found.field_calls {
        functions::check_field_call(cat, rules, name, strictness).map_err(|p| denial(p, tool))?;
    }
    Ok(())
}

fn check_relation(rel: &QualName, class: StatementClass, tool: &str) -> Result<(), Denial> {
    let system = matches!(rel.schema.as_deref(), None | Some("pg_catalog"));
    if rel.schema.as_deref() == Some("coldquery") {
        return Err(Denial::Refused(refuse(format!(
            "{tool} refused: the coldquery schema holds this server's own audit log, which callers may not read or change; the operator reads it with psql"
        ))));
    }
    if system && DENIED_RELATIONS.contains(&rel.name.as_str()) {
        return Err(Denial::Refused(refuse(format!(
            "{tool} refused: {} exposes server configuration files, secrets or other callers' statements on shared connections",
            rel.name
        ))));
    }
    if system && rel.name == "pg_settings" && matches!(class, StatementClass::Write) {
        return Err(Denial::Refused(refuse(format!(
            "{tool} refused: writing pg_settings changes session settings of a shared connection; pg_admin settings sets allowlisted settings inside a pg_tx session"
        ))));
    }
    Ok(())
}

fn denial(p: CallProblem, tool: &str) -> Denial {
    match p {
        CallProblem::Unknown(name) => Denial::Unknown(name),
        CallProblem::Denied { name, why } => {
            let setting = name
                .rsplit('.')
                .next()
                .unwrap_or(&name)
                .trim_end_matches(')');
            Denial::Refused(refuse(format!(
                "function {name} is not allowed in {tool}: {why}. If it is safe here, the operator can allow it with COLDQUERY_ALLOWED_FUNCTIONS={setting}"
            )))
        }
    }
}

/// A `LANGUAGE sql` body given as a string: parsed and held to the stored-code rules.
fn check_sql_body(
    body: &str,
    cat: &Catalog,
    rules: &Rules,
    tool: &str,
    depth: usize,
) -> Result<(), Denial> {
    let not_checkable = || {
        Denial::Refused(refuse(format!(
            "{tool} refused: the function body could not be checked (it does not parse as SQL on its own, or nests function definitions); use a BEGIN ATOMIC … END body"
        )))
    };
    if depth > 2 {
        return Err(not_checkable());
    }
    let parsed = pg_query::parse(body, 0).map_err(|_| not_checkable())?;
    for raw in &parsed.protobuf.stmts {
        let Some(stmt) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        if let Some(r) = classify::role_switch_in_body(stmt) {
            return Err(Denial::Refused(r));
        }
        let found = super::scan::scan(stmt);
        procedural_blocks(&found, rules, tool)?;
        check_found(
            &found,
            StatementClass::Read,
            cat,
            rules,
            Strictness::StoredCode,
            tool,
        )?;
        for inner in &found.sql_bodies {
            check_sql_body(inner, cat, rules, tool, depth + 1)?;
        }
    }
    Ok(())
}
