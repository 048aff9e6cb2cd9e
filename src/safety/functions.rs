//! Which functions may run where: an allowlist resolved against the database's own catalog.
//!
//! A statement names functions (and operators, which are functions underneath); PostgreSQL
//! resolves each name through the search path to one of possibly several candidates. This
//! module holds a snapshot of `pg_proc`/`pg_operator` ([`Catalog`], loaded by `db::catalog`)
//! and decides for every candidate a name could resolve to, so a refusal never depends on
//! guessing which overload the server will pick: **all** candidates must be allowed.
//!
//! Where a caller has no write authorization (read, explain, dry run, read-only session) and
//! in stored code (views, rules, defaults, policies, any DDL expression), a function may run
//! only if it is ([`Rules::allows`]):
//! - a built-in (in `pg_catalog`/`information_schema`, created by initdb, not part of an
//!   extension) that PostgreSQL marks immutable or stable, minus [`BUILTIN_EXCLUDED`] (stable
//!   built-ins that read other callers' state, server configuration, or run SQL text), or one of
//!   the reviewed volatile built-ins in [`BUILTIN_VOLATILE_ALLOWED`] (random, clocks, sizes…);
//! - a user-defined `LANGUAGE sql` function outside any extension (its body is SQL the
//!   server's READ ONLY transaction holds to; creating one needs write authorization);
//!   procedural-language functions only with `COLDQUERY_ALLOW_PROCEDURAL`, C functions never;
//! - a function of an extension on [`DEFAULT_EXTENSIONS`] or `COLDQUERY_ALLOWED_EXTENSIONS`;
//! - a function named in `COLDQUERY_ALLOWED_FUNCTIONS`.
//!
//! `COLDQUERY_EXCLUDED_FUNCTIONS` removes any function, whatever the rules above say.

use std::collections::{HashMap, HashSet};

use super::scan::{Found, QualName};

/// Where a function comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Created by initdb and not an extension member.
    Builtin,
    /// A member of this extension.
    Extension(String),
    /// Anything else: created by a user.
    User,
}

/// One `pg_proc` row, reduced to what the rules need.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// `pg_proc.oid`.
    pub(crate) oid: u32,
    /// The function's name.
    pub(crate) name: String,
    /// Its schema.
    pub(crate) schema: String,
    /// `provolatile`: `i`, `s` or `v`.
    pub(crate) volatility: char,
    /// Its language (`internal`, `c`, `sql`, `plpgsql`…).
    pub(crate) language: String,
    /// Built-in, extension member or user-defined.
    pub(crate) origin: Origin,
}

/// A snapshot of the functions and operators of one database, as seen by the server's role.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    functions: Vec<Function>,
    by_name: HashMap<String, Vec<usize>>,
    by_oid: HashMap<u32, usize>,
    /// Operator name → (schema, oid of the function that implements it).
    operators: HashMap<String, Vec<(String, u32)>>,
    /// Unqualified operator name → the functions it could resolve to, worked out once per
    /// snapshot: every statement's operators are judged, and `=` alone has dozens of
    /// candidates. `None`: one of them is missing from the snapshot, so it cannot be judged.
    visible_operators: HashMap<String, Option<Vec<usize>>>,
    /// Unqualified operators whose every candidate is a built-in the allowlist itself allows
    /// ([`builtin_verdict`]), worked out once per snapshot: such an operator is allowed under
    /// every strictness, and is reviewed code, unless a function is named in the rules'
    /// lists, so the dozens of candidates of `=` need not be judged again on every read.
    plain_operators: HashSet<String>,
    /// The schemas an unqualified name is looked up in (`current_schemas(true)`).
    search_path: Vec<String>,
}

impl Catalog {
    /// Builds a catalog from loaded rows.
    pub(crate) fn new(
        functions: Vec<Function>,
        operators: Vec<(String, String, u32)>,
        search_path: Vec<String>,
    ) -> Catalog {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_oid = HashMap::new();
        for (i, f) in functions.iter().enumerate() {
            by_name.entry(f.name.clone()).or_default().push(i);
            by_oid.insert(f.oid, i);
        }
        let mut ops: HashMap<String, Vec<(String, u32)>> = HashMap::new();
        for (name, schema, code) in operators {
            ops.entry(name).or_default().push((schema, code));
        }
        let mut cat = Catalog {
            functions,
            by_name,
            by_oid,
            operators: ops,
            visible_operators: HashMap::new(),
            plain_operators: HashSet::new(),
            search_path,
        };
        cat.visible_operators = cat
            .operators
            .keys()
            .map(|name| (name.clone(), cat.resolve_operator(name, None)))
            .collect();
        cat.plain_operators = cat
            .visible_operators
            .iter()
            .filter(|(_, found)| {
                found.as_ref().is_some_and(|idx| {
                    idx.iter().all(|&i| {
                        let f = &cat.functions[i];
                        f.origin == Origin::Builtin && builtin_verdict(f, false).is_ok()
                    })
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        cat
    }

    /// How many functions the snapshot holds (for logs).
    pub(crate) fn len(&self) -> usize {
        self.functions.len()
    }

    /// Whether a call of `name` could reach user-defined procedural code (PL/pgSQL and the
    /// like): such a call's connection is closed afterwards.
    pub(crate) fn is_procedural_user_function(&self, name: &QualName) -> bool {
        self.candidates(name).iter().any(|f| {
            f.origin == Origin::User && !matches!(f.language.as_str(), "sql" | "c" | "internal")
        })
    }

    /// Whether every function `found` may reach is code reviewed to leave nothing behind on
    /// the connection once the statement ends: a built-in on the default allowlist or a member
    /// of a default extension. User-defined functions, functions allowed one by one
    /// (`COLDQUERY_ALLOWED_FUNCTIONS`) and members of extensions the operator added are not
    /// (their code may take a session advisory lock or change a setting for the session).
    pub(crate) fn only_reviewed_code(&self, found: &Found, rules: &Rules) -> bool {
        let reviewed = |f: &&Function| match &f.origin {
            Origin::Builtin => {
                !Rules::named(&rules.functions, f)
                    && (matches!(f.volatility, 'i' | 's')
                        || BUILTIN_VOLATILE_ALLOWED.contains(&f.name.as_str()))
            }
            Origin::Extension(e) => DEFAULT_EXTENSIONS.contains(&e.as_str()),
            Origin::User => false,
        };
        let field_calls = found.field_calls.iter().map(|n| QualName {
            schema: None,
            name: n.clone(),
        });
        found
            .calls
            .iter()
            .cloned()
            .chain(field_calls)
            .all(|name| self.candidates(&name).iter().all(reviewed))
            && found.operators.iter().all(|op| {
                (rules.functions.is_empty() && self.is_plain_operator(op))
                    || self
                        .operator_candidates(op)
                        .is_some_and(|c| c.iter().all(reviewed))
            })
    }

    /// Whether `schema` is one an unqualified name resolves in.
    fn on_path(&self, schema: &str) -> bool {
        schema == "pg_catalog" || self.search_path.iter().any(|s| s == schema)
    }

    /// Every function a call of `name` could resolve to.
    fn candidates(&self, name: &QualName) -> Vec<&Function> {
        let Some(idx) = self.by_name.get(&name.name) else {
            return Vec::new();
        };
        idx.iter()
            .map(|&i| &self.functions[i])
            .filter(|f| match &name.schema {
                Some(s) => &f.schema == s,
                None => self.on_path(&f.schema),
            })
            .collect()
    }

    /// Whether `name` is unqualified and one of [`Catalog::plain_operators`].
    fn is_plain_operator(&self, name: &QualName) -> bool {
        name.schema.is_none() && self.plain_operators.contains(&name.name)
    }

    /// Every function an operator `name` could resolve to.
    fn operator_candidates(&self, name: &QualName) -> Option<Vec<&Function>> {
        let found = match &name.schema {
            None => self.visible_operators.get(&name.name)?.clone(),
            Some(schema) => self.resolve_operator(&name.name, Some(schema)),
        };
        found.map(|idx| idx.into_iter().map(|i| &self.functions[i]).collect())
    }

    /// The functions (indices) behind operator `name` in `schema`, or on the search path.
    fn resolve_operator(&self, name: &str, schema: Option<&str>) -> Option<Vec<usize>> {
        let ops = self.operators.get(name)?;
        let mut out = Vec::new();
        for (op_schema, code) in ops {
            let visible = match schema {
                Some(s) => s == op_schema,
                None => self.on_path(op_schema),
            };
            if !visible {
                continue;
            }
            // An operator whose function is missing from the snapshot cannot be judged.
            let i = *self.by_oid.get(code)?;
            self.functions.get(i)?;
            out.push(i);
        }
        if out.is_empty() { None } else { Some(out) }
    }
}

/// Extensions whose functions are side-effect-free and run no SQL text: allowed by default.
pub(crate) const DEFAULT_EXTENSIONS: &[&str] = &[
    "btree_gin",
    "btree_gist",
    "citext",
    "cube",
    "dict_int",
    "earthdistance",
    "fuzzystrmatch",
    "hstore",
    "intarray",
    "isn",
    "ltree",
    "pg_trgm",
    "pgcrypto",
    "seg",
    "tsm_system_rows",
    "tsm_system_time",
    "unaccent",
    "uuid-ossp",
    "vector",
];

/// Stable or immutable built-ins that are still not allowed: they run SQL given as text or
/// read state that belongs to other callers of a shared connection or to the server's files.
pub(crate) const BUILTIN_EXCLUDED: &[&str] = &[
    // Run the SQL named by their arguments, which cannot be checked.
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
    // Other callers' prepared statements and cursors on a pooled connection.
    "pg_prepared_statement",
    "pg_cursor",
    "pg_listening_channels",
    // Server build configuration (paths, flags).
    "pg_config",
];

/// Volatile built-ins reviewed one by one as having no effect outside the transaction and
/// exposing nothing another caller left behind.
pub(crate) const BUILTIN_VOLATILE_ALLOWED: &[&str] = &[
    "clock_timestamp",
    "timeofday",
    "random",
    "gen_random_uuid",
    "pg_sleep",
    "pg_sleep_for",
    "pg_sleep_until",
    "pg_database_size",
    "pg_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_total_relation_size",
    "pg_tablespace_size",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_is_in_recovery",
    "pg_jit_available",
    "pg_partition_ancestors",
    "pg_partition_tree",
    "pg_lock_status",
    "pg_current_wal_lsn",
    "pg_current_wal_insert_lsn",
    "pg_current_wal_flush_lsn",
    "pg_last_wal_receive_lsn",
    "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp",
    "pg_is_wal_replay_paused",
    "pg_get_wal_replay_pause_state",
    "pg_notification_queue_usage",
    "pg_xact_commit_timestamp",
    "pg_xact_status",
    "txid_status",
    "pg_collation_actual_version",
    "pg_database_collation_actual_version",
    "pg_sequence_last_value",
    "current_query",
    "bernoulli",
    "system",
];

/// Built-ins that stored code may call although reads may not: a column default of
/// `nextval(…)` is how sequences feed tables (a read-only transaction refuses it anyway).
const STORED_CODE_EXTRA: &[&str] = &["nextval"];

/// The operator's choices, from the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    /// Extensions whose functions are allowed (the defaults plus `COLDQUERY_ALLOWED_EXTENSIONS`).
    pub(crate) extensions: HashSet<String>,
    /// Single functions allowed (`name` or `schema.name`): `COLDQUERY_ALLOWED_FUNCTIONS`.
    pub(crate) functions: HashSet<String>,
    /// Functions refused whatever else says (`COLDQUERY_EXCLUDED_FUNCTIONS`).
    pub(crate) excluded: HashSet<String>,
    /// `COLDQUERY_ALLOW_PROCEDURAL`.
    pub(crate) allow_procedural: bool,
}

impl Rules {
    /// Rules from the configured lists (entries are trimmed and lower-cased).
    pub(crate) fn new(
        extensions: &[String],
        functions: &[String],
        excluded: &[String],
        allow_procedural: bool,
    ) -> Rules {
        let norm = |v: &[String]| -> HashSet<String> {
            v.iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let mut ext = norm(extensions);
        ext.extend(DEFAULT_EXTENSIONS.iter().map(|s| (*s).to_owned()));
        Rules {
            extensions: ext,
            functions: norm(functions),
            excluded: norm(excluded),
            allow_procedural,
        }
    }

    /// Whether `set` names `f`, bare (`name`) or qualified (`schema.name`). Called for every
    /// candidate of every function and operator in a statement (`=` alone has dozens), so it
    /// builds no string: the lists are empty unless configured, and short when they are.
    fn named(set: &HashSet<String>, f: &Function) -> bool {
        if set.is_empty() {
            return false;
        }
        set.contains(&f.name)
            || set.iter().any(|entry| {
                entry
                    .strip_prefix(f.schema.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    == Some(f.name.as_str())
            })
    }

    /// Whether `f` may run without write authorization (`stored`: in stored code).
    fn allows(&self, f: &Function, stored: bool) -> Result<(), String> {
        if Self::named(&self.excluded, f) {
            return Err("it is excluded by COLDQUERY_EXCLUDED_FUNCTIONS".into());
        }
        if Self::named(&self.functions, f) {
            return Ok(());
        }
        match &f.origin {
            Origin::Builtin => builtin_verdict(f, stored).map_err(String::from),
            Origin::Extension(ext) => {
                if self.extensions.contains(ext) {
                    Ok(())
                } else {
                    Err(format!(
                        "it belongs to extension {ext}, which is not on the allowlist (COLDQUERY_ALLOWED_EXTENSIONS={ext} allows it)"
                    ))
                }
            }
            Origin::User => self.user_function(f),
        }
    }

    /// User-defined functions: SQL ones are fine; procedural ones only when opted in.
    fn user_function(&self, f: &Function) -> Result<(), String> {
        match f.language.as_str() {
            "sql" => Ok(()),
            "c" | "internal" => Err(format!(
                "it is a user-defined {} function, machine code this server cannot inspect",
                f.language
            )),
            lang if self.allow_procedural => {
                let _ = lang;
                Ok(())
            }
            lang => Err(format!(
                "it is written in {lang}, procedural code that may run any SQL (COLDQUERY_ALLOW_PROCEDURAL=true allows it)"
            )),
        }
    }

    /// Whether `f` may run in a statement the caller is authorized to commit: only
    /// procedural and C code are judged here (the name denylist applies besides).
    fn allows_in_write(&self, f: &Function) -> Result<(), String> {
        if Self::named(&self.excluded, f) {
            return Err("it is excluded by COLDQUERY_EXCLUDED_FUNCTIONS".into());
        }
        if Self::named(&self.functions, f) || f.origin != Origin::User {
            return Ok(());
        }
        self.user_function(f)
    }
}

/// The allowlist's own verdict on a built-in, before the rules' name lists: refused if it runs
/// SQL text or exposes state ([`BUILTIN_EXCLUDED`]); allowed if immutable or stable, one of the
/// reviewed volatile ones, or (in stored code) one of [`STORED_CODE_EXTRA`].
fn builtin_verdict(f: &Function, stored: bool) -> Result<(), &'static str> {
    let name = f.name.as_str();
    if BUILTIN_EXCLUDED.contains(&name) {
        Err("it runs SQL text or exposes server or other callers' state")
    } else if matches!(f.volatility, 'i' | 's')
        || BUILTIN_VOLATILE_ALLOWED.contains(&name)
        || (stored && STORED_CODE_EXTRA.contains(&name))
    {
        Ok(())
    } else {
        Err("it is not on the allowlist of side-effect-free built-in functions")
    }
}

/// How strictly calls are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// No write authorization: the allowlist.
    Allowlist,
    /// Stored code (views, defaults, any DDL expression): the allowlist plus `nextval`.
    StoredCode,
    /// An authorized write: procedural and C user functions are judged; the rest is left to
    /// the name denylist and PostgreSQL.
    Write,
}

/// Why a call may not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallProblem {
    /// The name resolves to no function in the snapshot: reload it, then refuse.
    Unknown(String),
    /// The name resolves to a function that is not allowed.
    Denied {
        /// The name as written.
        name: String,
        /// Completes `"function X is not allowed here: <why>"`.
        why: String,
    },
}

/// Judges one function call.
pub(crate) fn check_call(
    cat: &Catalog,
    rules: &Rules,
    name: &QualName,
    strictness: Strictness,
) -> Result<(), CallProblem> {
    let candidates = cat.candidates(name);
    if candidates.is_empty() {
        if strictness == Strictness::Write {
            // A write may call a function created earlier in its own session; PostgreSQL
            // reports a name that does not exist.
            return Ok(());
        }
        return Err(CallProblem::Unknown(name.display()));
    }
    judge(&candidates, rules, strictness, || name.display())
}

/// Judges a name used with field notation (`t.f`): a column when no function has that name,
/// otherwise judged like a call, since PostgreSQL may resolve it to `f(t)`.
pub(crate) fn check_field_call(
    cat: &Catalog,
    rules: &Rules,
    name: &str,
    strictness: Strictness,
) -> Result<(), CallProblem> {
    let name = QualName {
        schema: None,
        name: name.to_owned(),
    };
    let candidates = cat.candidates(&name);
    if candidates.is_empty() {
        return Ok(());
    }
    judge(&candidates, rules, strictness, || name.display())
}

/// Judges one operator through the functions that implement it.
pub(crate) fn check_operator(
    cat: &Catalog,
    rules: &Rules,
    name: &QualName,
    strictness: Strictness,
) -> Result<(), CallProblem> {
    // With no function excluded by name, a plain operator's built-ins pass every strictness:
    // the allowlist allows them, stored code allows more, a write judges only user code.
    if rules.excluded.is_empty() && cat.is_plain_operator(name) {
        return Ok(());
    }
    match cat.operator_candidates(name) {
        Some(c) => judge(&c, rules, strictness, || {
            format!("operator {}", name.display())
        }),
        None if strictness == Strictness::Write => Ok(()),
        None => Err(CallProblem::Unknown(format!("operator {}", name.display()))),
    }
}

/// `shown`: how the refusal names what was judged (made only for a refusal).
fn judge(
    candidates: &[&Function],
    rules: &Rules,
    strictness: Strictness,
    shown: impl Fn() -> String,
) -> Result<(), CallProblem> {
    for f in candidates {
        let verdict = match strictness {
            Strictness::Allowlist => rules.allows(f, false),
            Strictness::StoredCode => rules.allows(f, true),
            Strictness::Write => rules.allows_in_write(f),
        };
        if let Err(why) = verdict {
            let shown = shown();
            let name = if shown.starts_with("operator ") {
                format!("{shown} (function {}.{})", f.schema, f.name)
            } else {
                format!("{}.{}", f.schema, f.name)
            };
            return Err(CallProblem::Denied { name, why });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
