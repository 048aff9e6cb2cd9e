//! The `pg_schema` tool: introspection (`list`, `describe`) from the system catalogs with bound
//! parameters, and DDL (`create`, `alter`, `drop`) behind default-deny (contract §2). Also the
//! pieces the other catalog-reading tools share: qualified-name parsing and quoting, catalog
//! queries turned into JSON objects under a byte budget, and the read-only scope they run in.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::db::executor::{Limits, RowMode, StatementRef, run_statement};
use crate::db::{AutocommitConn, PooledTx};
use crate::error::ToolError;
use crate::http::caller::Caller;
use crate::mcp::query::{limits_for, parse, truncate_for_message, under_savepoint, with_deadline};
use crate::mcp::tx::settle_error;
use crate::safety::classify::{self, DdlKind};
use crate::state::AppState;

/// Arguments of `pg_schema`. Unknown fields are refused (a typo is reported, not ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaArgs {
    /// One of [`ACTIONS`].
    pub action: String,
    /// list: what to list (one of [`TARGETS`]; `table` by default).
    pub target: Option<String>,
    /// list: only this schema; describe: the schema of `name`.
    pub schema: Option<String>,
    /// describe: the table, view or function (`name`, `schema.name`, `app."Order"`).
    pub name: Option<String>,
    /// list: a LIKE pattern on the object's name.
    pub pattern: Option<String>,
    /// list: page size (default 100, at most 1000).
    pub limit: Option<u64>,
    /// list: rows to skip.
    pub offset: Option<u64>,
    /// list: include pg_catalog, information_schema, pg_toast and coldquery.
    pub include_system: Option<bool>,
    /// create/alter/drop: one DDL statement.
    pub sql: Option<String>,
    /// A pg_tx handle: run inside that transaction.
    pub session_id: Option<String>,
    /// create/alter/drop: run in its own transaction and commit.
    pub autocommit: Option<bool>,
    /// create/alter/drop: run and roll back.
    pub dry_run: Option<bool>,
}

/// The actions, for the schema and error messages.
pub const ACTIONS: &[&str] = &["list", "describe", "create", "alter", "drop"];

/// What `list` can list.
pub const TARGETS: &[&str] = &[
    "schema",
    "table",
    "view",
    "materialized_view",
    "function",
    "sequence",
    "index",
    "trigger",
    "constraint",
    "extension",
    "type",
];

/// Default page size of `list`.
const DEFAULT_LIMIT: u64 = 100;
/// Largest page of `list`: bounded catalog work and a result well under the message limit.
const MAX_LIMIT: u64 = 1000;
/// Rows any one catalog query may return (a table has at most 1600 columns).
const CATALOG_ROWS: usize = 2000;

/// Run one `pg_schema` call.
pub async fn call(state: &AppState, caller: &Caller, args: SchemaArgs) -> Result<Value, ToolError> {
    match args.action.as_str() {
        "list" | "describe" => {
            if args.sql.is_some() {
                return Err(ToolError::InvalidInput(format!(
                    "pg_schema {} takes no sql; run SELECTs with pg_query read, DDL with pg_schema \
                     create/alter/drop",
                    args.action
                )));
            }
            let limits = limits_for(state, None)?;
            if args.action == "list" {
                list(state, caller, &args, &limits).await
            } else {
                describe(state, caller, &args, &limits).await
            }
        }
        "create" => ddl(state, caller, &args, DdlKind::Create).await,
        "alter" => ddl(state, caller, &args, DdlKind::Alter).await,
        "drop" => ddl(state, caller, &args, DdlKind::Drop).await,
        other => Err(ToolError::InvalidInput(format!(
            "unknown action {:?} for pg_schema; use one of: {}",
            truncate_for_message(other),
            ACTIONS.join(", ")
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// PostgreSQL truncates identifiers at 63 bytes; longer ones would silently alias each other.
const MAX_IDENT_BYTES: usize = 63;

/// Quote a name for SQL text. Used for names that come from the catalogs (after a bound
/// lookup) or from a validated [`QualifiedName`]; user text never reaches SQL any other way.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One part of a qualified name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    text: String,
    quoted: bool,
}

impl Part {
    /// What PostgreSQL would make of it: unquoted names fold to lower case.
    fn folded(&self) -> String {
        if self.quoted {
            self.text.clone()
        } else {
            self.text.to_ascii_lowercase()
        }
    }
}

/// A validated `name` or `schema.name`, each part either a plain identifier (letters, digits,
/// `_`, `$`) or a double-quoted name (`"Order"`, `""` for a quote inside). Nothing else gets
/// through, so `x; DROP TABLE y` is refused before any SQL is built.
///
/// Unquoted parts follow PostgreSQL's rule (folded to lower case); when nothing matches that,
/// lookups also try the exact spelling, so `Order` finds a table created as `"Order"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QualifiedName {
    schema: Option<Part>,
    name: Part,
}

impl QualifiedName {
    /// Parse `raw`; `what` names the argument in the error message.
    pub(crate) fn parse(what: &str, raw: &str) -> Result<QualifiedName, ToolError> {
        let bad = |why: &str| {
            ToolError::InvalidInput(format!(
                "invalid {what} {:?}: {why}. Use name or schema.name with letters, digits, _ and $ \
                 (unquoted names are folded to lower case), or double-quote a name with other \
                 characters or capitals, e.g. app.orders or app.\"Order\"",
                raw.chars().take(60).collect::<String>()
            ))
        };
        let mut parts: Vec<Part> = Vec::new();
        let mut chars = raw.trim().chars().peekable();
        loop {
            let part = match chars.peek() {
                None => return Err(bad("a name is missing")),
                Some('"') => {
                    chars.next();
                    let mut text = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(bad("a double quote is not closed")),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                text.push('"');
                            }
                            Some('"') => break,
                            Some('\0') => return Err(bad("NUL is not allowed")),
                            Some(c) => text.push(c),
                        }
                    }
                    if text.is_empty() {
                        return Err(bad("\"\" is not a name"));
                    }
                    Part { text, quoted: true }
                }
                Some(_) => {
                    let mut text = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == '.' {
                            break;
                        }
                        text.push(c);
                        chars.next();
                    }
                    let ok_first = text
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_');
                    let ok_rest = text
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
                    if !ok_first || !ok_rest {
                        return Err(bad("it is not a plain identifier"));
                    }
                    Part {
                        text,
                        quoted: false,
                    }
                }
            };
            if part.text.len() > MAX_IDENT_BYTES {
                return Err(bad("a name is longer than 63 bytes"));
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(_) => return Err(bad("unexpected text after a quoted name")),
            }
        }
        match parts.len() {
            1 => Ok(QualifiedName {
                schema: None,
                name: parts.remove(0),
            }),
            2 => {
                let name = parts.remove(1);
                Ok(QualifiedName {
                    schema: Some(parts.remove(0)),
                    name,
                })
            }
            _ => Err(bad("use at most schema.name (no database part)")),
        }
    }

    /// Combine with a separate `schema` argument (which must agree with a qualified name).
    pub(crate) fn in_schema(mut self, schema: Option<&str>) -> Result<QualifiedName, ToolError> {
        let Some(raw) = schema else { return Ok(self) };
        let s = QualifiedName::parse("schema", raw)?;
        if s.schema.is_some() {
            return Err(ToolError::InvalidInput(
                "schema takes a schema name only, e.g. app".into(),
            ));
        }
        match &self.schema {
            Some(own) if own.folded() != s.name.folded() => Err(ToolError::InvalidInput(format!(
                "name is qualified with schema {:?} but schema says {:?}; pass one of them",
                own.text, s.name.text
            ))),
            _ => {
                self.schema = Some(s.name);
                Ok(self)
            }
        }
    }

    fn render(&self, exact: bool) -> String {
        let one = |p: &Part| quote_ident(&if exact { p.text.clone() } else { p.folded() });
        match &self.schema {
            Some(s) => format!("{}.{}", one(s), one(&self.name)),
            None => one(&self.name),
        }
    }

    /// Texts for `to_regclass`: PostgreSQL's reading first, then the exact spelling.
    fn regclass_candidates(&self) -> Vec<String> {
        let folded = self.render(false);
        let exact = self.render(true);
        if exact == folded {
            vec![folded]
        } else {
            vec![folded, exact]
        }
    }

    /// Candidate schema names (folded and exact), or `None` for "by search_path".
    fn schema_candidates(&self) -> Option<Vec<String>> {
        self.schema.as_ref().map(candidates)
    }

    /// Candidate object names (folded and exact).
    fn name_candidates(&self) -> Vec<String> {
        candidates(&self.name)
    }

    /// The name as given, for messages.
    pub(crate) fn shown(&self) -> String {
        self.render(true)
    }
}

fn candidates(p: &Part) -> Vec<String> {
    let mut v = vec![p.folded()];
    if p.text != v[0] {
        v.push(p.text.clone());
    }
    v
}

/// A schema filter argument as candidate names (folded and exact).
fn schema_filter(raw: Option<&str>) -> Result<Value, ToolError> {
    match raw {
        None => Ok(Value::Null),
        Some(raw) => {
            let q = QualifiedName::parse("schema", raw)?;
            if q.schema.is_some() {
                return Err(ToolError::InvalidInput(
                    "schema takes a schema name only, e.g. app".into(),
                ));
            }
            Ok(json!(q.name_candidates()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Catalog reads
// ---------------------------------------------------------------------------------------

/// Runs our own constant catalog queries and turns their rows into JSON objects, under one
/// byte budget for the whole call so that a result (twice: structured and text) stays well
/// under the 1 MiB message limit.
pub(crate) struct Catalog {
    limits: Limits,
    left: usize,
    /// A query's rows were cut by the budget.
    pub(crate) truncated: bool,
}

impl Catalog {
    /// A reader with the call's limits; the budget is the server's result-byte cap.
    pub(crate) fn new(limits: &Limits) -> Catalog {
        Catalog {
            limits: *limits,
            left: limits.max_bytes,
            truncated: false,
        }
    }

    /// All rows of `sql` (one of our constants) with `params` bound, as objects.
    pub(crate) async fn rows(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: &'static str,
        params: &[Value],
    ) -> Result<Vec<Value>, ToolError> {
        self.rows_of(conn, sql, params).await
    }

    /// Like [`Catalog::rows`] for SQL assembled from constants and catalog names passed
    /// through [`quote_ident`] only; values are still bound.
    pub(crate) async fn rows_built(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: String,
        params: &[Value],
    ) -> Result<Vec<Value>, ToolError> {
        self.rows_of(conn, &sql, params).await
    }

    async fn rows_of(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Value>, ToolError> {
        let st = StatementRef {
            body: sql.to_owned(),
            command: "SELECT".into(),
            plain_select: false,
            returning: false,
            plannable: false,
        };
        let limits = Limits {
            max_rows: CATALOG_ROWS,
            max_bytes: self.left.max(1),
            ..self.limits
        };
        let rs = run_statement(conn, sql, &st, params, &limits, RowMode::Verbatim).await?;
        if rs.truncated.is_some() {
            self.truncated = true;
        }
        let mut out = Vec::with_capacity(rs.rows.len());
        for row in &rs.rows {
            let mut m = Map::new();
            for (c, v) in rs.columns.iter().zip(row) {
                m.insert(c.name.clone(), v.clone());
            }
            let obj = Value::Object(m);
            // Objects repeat their keys, so they are measured again here.
            let size = serde_json::to_vec(&obj).map(|b| b.len()).unwrap_or(0) + 1;
            if size > self.left {
                self.truncated = true;
                self.left = 0;
                break;
            }
            self.left -= size;
            out.push(obj);
        }
        Ok(out)
    }

    /// The first row of `sql`, if any.
    pub(crate) async fn one(
        &mut self,
        conn: &mut sqlx::PgConnection,
        sql: &'static str,
        params: &[Value],
    ) -> Result<Option<Value>, ToolError> {
        Ok(self.rows(conn, sql, params).await?.into_iter().next())
    }
}

/// Run `f` read-only: on a pooled READ ONLY transaction that is rolled back, or, with a
/// `session_id`, inside that session under a read-only savepoint that is rolled back (so the
/// session's own uncommitted changes are visible). Returns the session view when one was used.
pub(crate) async fn read_scope<T>(
    state: &AppState,
    caller: &Caller,
    session_id: Option<&str>,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, ToolError>,
) -> Result<(T, Option<Value>), ToolError> {
    match session_id {
        Some(id) => {
            let mut g = state.sessions.acquire(&caller.owner, id).await?;
            let r = under_savepoint(&mut g, true, false, f).await?;
            Ok((r, Some(g.view())))
        }
        None => {
            let mut tx = PooledTx::begin(&state.pools, caller.role(), true, limits).await?;
            let r = with_deadline(limits, f(tx.conn())).await;
            tx.abandon().await;
            Ok((r?, None))
        }
    }
}

/// [`read_scope`] for `pg_monitor`: without a session, on the monitoring pool of its own.
pub(crate) async fn monitor_scope<T>(
    state: &AppState,
    caller: &Caller,
    session_id: Option<&str>,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, ToolError>,
) -> Result<(T, Option<Value>), ToolError> {
    if session_id.is_some() {
        return read_scope(state, caller, session_id, limits, f).await;
    }
    let mut tx = PooledTx::begin_monitor(&state.pools, caller.role(), limits).await?;
    let r = with_deadline(limits, f(tx.conn())).await;
    tx.abandon().await;
    Ok((r?, None))
}

/// A relation found in the catalogs.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    /// pg_class oid.
    pub(crate) oid: i64,
    /// Its schema, as stored.
    pub(crate) schema: String,
    /// Its name, as stored.
    pub(crate) name: String,
    /// pg_class.relkind.
    pub(crate) relkind: String,
}

impl Relation {
    /// `"schema"."name"`, quoted for SQL text.
    pub(crate) fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// `schema.name` for people (quoted only where needed).
    pub(crate) fn shown(&self) -> String {
        format!("{}.{}", show_ident(&self.schema), show_ident(&self.name))
    }
}

/// A name as a person would type it in SQL: bare when that reads back the same.
fn show_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain { s.to_owned() } else { quote_ident(s) }
}

/// `to_regclass` takes the quoted text as a bound parameter; it honours the search_path for an
/// unqualified name, as PostgreSQL itself would.
const RESOLVE_RELATION: &str = "SELECT c.oid::int8 AS oid, n.nspname::text AS schema, \
     c.relname::text AS name, c.relkind::text AS relkind \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.oid = to_regclass($1::text)";

/// Find the relation `name` means, or `None`.
pub(crate) async fn resolve_relation(
    conn: &mut sqlx::PgConnection,
    cat: &mut Catalog,
    name: &QualifiedName,
) -> Result<Option<Relation>, ToolError> {
    for text in name.regclass_candidates() {
        if let Some(row) = cat.one(conn, RESOLVE_RELATION, &[json!(text)]).await? {
            return Ok(Some(Relation {
                oid: row["oid"].as_i64().unwrap_or_default(),
                schema: str_of(&row["schema"]),
                name: str_of(&row["name"]),
                relkind: str_of(&row["relkind"]),
            }));
        }
    }
    Ok(None)
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The contract's spelling of pg_class.relkind.
pub(crate) fn relkind_name(k: &str) -> &'static str {
    match k {
        "r" => "table",
        "p" => "partitioned_table",
        "v" => "view",
        "m" => "materialized_view",
        "f" => "foreign_table",
        "S" => "sequence",
        "i" => "index",
        "I" => "partitioned_index",
        "c" => "composite_type",
        "t" => "toast_table",
        _ => "relation",
    }
}

// ---------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------

// Every list query takes the same parameters, so the call site is the same for all:
// $1 text[] schema candidates (NULL: any), $2 text LIKE pattern on the name (NULL: any),
// $3 bool include system schemas, $4 int8 limit, $5 int8 offset. `total_count` is the number
// of matches before paging.

/// System schemas: the catalogs, TOAST and temporary schemas, and `coldquery` (our audit log).
macro_rules! user_schema {
    ($n:literal) => {
        concat!(
            "($3::bool OR (",
            $n,
            ".nspname NOT IN ('pg_catalog', 'information_schema', 'coldquery') AND ",
            $n,
            ".nspname NOT LIKE 'pg\\_toast%' AND ",
            $n,
            ".nspname NOT LIKE 'pg\\_temp\\_%'))"
        )
    };
}

/// Objects that belong to an extension count as system objects (pgcrypto alone adds dozens of
/// functions to `public`); `include_system` shows them.
macro_rules! not_extension_member {
    ($catalog:literal, $oid:literal) => {
        concat!(
            "($3::bool OR NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '",
            $catalog,
            "'::regclass AND d.objid = ",
            $oid,
            " AND d.deptype = 'e'))"
        )
    };
}

const LIST_SCHEMAS: &str = concat!(
    "SELECT n.nspname::text AS name, pg_get_userbyid(n.nspowner)::text AS owner, \
     (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p'))::int8 AS tables, \
     obj_description(n.oid, 'pg_namespace') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_namespace n \
     WHERE ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) AND ($2::text IS NULL OR n.nspname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname LIMIT $4::int8 OFFSET $5::int8"
);

/// Partitioned tables have no storage of their own: their rows and sizes are their leaves'.
const LIST_TABLES: &str = concat!(
    "SELECT n.nspname::text AS schema, c.relname::text AS name, \
     CASE c.relkind WHEN 'p' THEN 'partitioned_table' ELSE 'table' END AS kind, \
     CASE WHEN c.relkind = 'p' THEN (SELECT sum(greatest(l.reltuples, 0))::int8 FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf) \
          WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS row_estimate, \
     CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)::int8 \
          ELSE pg_total_relation_size(c.oid)::int8 END AS total_bytes, \
     pg_size_pretty(CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)::int8 \
          ELSE pg_total_relation_size(c.oid) END) AS total_size, \
     (SELECT pn.nspname || '.' || pc.relname FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
        JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition LIMIT 1) AS partition_of, \
     obj_description(c.oid, 'pg_class') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) \
     AND ($2::text IS NULL OR c.relname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname, c.relname LIMIT $4::int8 OFFSET $5::int8"
);

const LIST_VIEWS: &str = concat!(
    "SELECT n.nspname::text AS schema, c.relname::text AS name, \
     obj_description(c.oid, 'pg_class') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'v' AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) \
     AND ($2::text IS NULL OR c.relname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname, c.relname LIMIT $4::int8 OFFSET $5::int8"
);

const LIST_MATVIEWS: &str = concat!(
    "SELECT n.nspname::text AS schema, c.relname::text AS name, c.relispopulated AS populated, \
     CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS row_estimate, \
     pg_total_relation_size(c.oid)::int8 AS total_bytes, pg_size_pretty(pg_total_relation_size(c.oid)) AS total_size, \
     obj_description(c.oid, 'pg_class') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'm' AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) \
     AND ($2::text IS NULL OR c.relname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname, c.relname LIMIT $4::int8 OFFSET $5::int8"
);

const LIST_FUNCTIONS: &str = concat!(
    "SELECT n.nspname::text AS schema, p.proname::text AS name, \
     pg_get_function_identity_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result, \
     CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window' END AS kind, \
     l.lanname::text AS language, \
     CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS volatility, \
     obj_description(p.oid, 'pg_proc') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang \
     WHERE ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) AND ($2::text IS NULL OR p.proname LIKE $2::text) AND ",
    user_schema!("n"),
    " AND ",
    not_extension_member!("pg_proc", "p.oid"),
    " ORDER BY n.nspname, p.proname, 3 LIMIT $4::int8 OFFSET $5::int8"
);

/// `owned_by` is the column a serial/identity sequence belongs to (pg_depend 'a'/'i').
const LIST_SEQUENCES: &str = concat!(
    "SELECT n.nspname::text AS schema, c.relname::text AS name, format_type(s.seqtypid, NULL) AS data_type, \
     (SELECT tn.nspname || '.' || tc.relname || '.' || a.attname FROM pg_depend d \
        JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass \
        AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 LIMIT 1) AS owned_by, \
     obj_description(c.oid, 'pg_class') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid \
     WHERE c.relkind = 'S' AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) \
     AND ($2::text IS NULL OR c.relname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname, c.relname LIMIT $4::int8 OFFSET $5::int8"
);

const LIST_INDEXES: &str = concat!(
    "SELECT n.nspname::text AS schema, ic.relname::text AS name, tc.relname::text AS table, \
     pg_get_indexdef(i.indexrelid) AS definition, i.indisunique AS unique, i.indisprimary AS primary, \
     i.indpred IS NOT NULL AS partial, i.indisvalid AS valid, \
     pg_relation_size(i.indexrelid)::int8 AS size_bytes, pg_size_pretty(pg_relation_size(i.indexrelid)) AS size, \
     count(*) OVER ()::int8 AS total_count \
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid \
     JOIN pg_namespace n ON n.oid = ic.relnamespace \
     WHERE ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) AND ($2::text IS NULL OR ic.relname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname, tc.relname, ic.relname LIMIT $4::int8 OFFSET $5::int8"
);

/// Internal triggers (those that implement foreign keys) are not the user's; leave them out.
const LIST_TRIGGERS: &str = concat!(
    "SELECT n.nspname::text AS schema, c.relname::text AS table, t.tgname::text AS name, \
     pg_get_triggerdef(t.oid, true) AS definition, t.tgenabled <> 'D' AS enabled, \
     t.tgfoid::regprocedure::text AS function, count(*) OVER ()::int8 AS total_count \
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE NOT t.tgisinternal AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) \
     AND ($2::text IS NULL OR t.tgname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname, c.relname, t.tgname LIMIT $4::int8 OFFSET $5::int8"
);

const LIST_CONSTRAINTS: &str = concat!(
    "SELECT n.nspname::text AS schema, c.relname::text AS table, co.conname::text AS name, \
     CASE co.contype WHEN 'p' THEN 'primary_key' WHEN 'f' THEN 'foreign_key' WHEN 'u' THEN 'unique' \
       WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' ELSE co.contype::text END AS type, \
     pg_get_constraintdef(co.oid, true) AS definition, count(*) OVER ()::int8 AS total_count \
     FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) AND ($2::text IS NULL OR co.conname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY n.nspname, c.relname, co.conname LIMIT $4::int8 OFFSET $5::int8"
);

/// Extensions in a system schema (plpgsql lives in pg_catalog) need `include_system`.
const LIST_EXTENSIONS: &str = concat!(
    "SELECT e.extname::text AS name, e.extversion AS version, n.nspname::text AS schema, \
     obj_description(e.oid, 'pg_extension') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
     WHERE ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) AND ($2::text IS NULL OR e.extname LIKE $2::text) AND ",
    user_schema!("n"),
    " ORDER BY e.extname LIMIT $4::int8 OFFSET $5::int8"
);

/// User types as psql's \dT shows them: no table row types (but standalone composites), no
/// array types.
const LIST_TYPES: &str = concat!(
    "SELECT n.nspname::text AS schema, t.typname::text AS name, \
     CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'c' THEN 'composite' WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range' \
       WHEN 'm' THEN 'multirange' WHEN 'p' THEN 'pseudo' ELSE 'base' END AS kind, \
     CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS labels, \
     CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base_type, \
     obj_description(t.oid, 'pg_type') AS comment, count(*) OVER ()::int8 AS total_count \
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
     WHERE (t.typrelid = 0 OR (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)) \
     AND NOT EXISTS (SELECT 1 FROM pg_type el WHERE el.oid = t.typelem AND el.typarray = t.oid) \
     AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[])) AND ($2::text IS NULL OR t.typname LIKE $2::text) AND ",
    user_schema!("n"),
    " AND ",
    not_extension_member!("pg_type", "t.oid"),
    " ORDER BY n.nspname, t.typname LIMIT $4::int8 OFFSET $5::int8"
);

fn list_sql(target: &str) -> Option<&'static str> {
    Some(match target {
        "schema" => LIST_SCHEMAS,
        "table" => LIST_TABLES,
        "view" => LIST_VIEWS,
        "materialized_view" => LIST_MATVIEWS,
        "function" => LIST_FUNCTIONS,
        "sequence" => LIST_SEQUENCES,
        "index" => LIST_INDEXES,
        "trigger" => LIST_TRIGGERS,
        "constraint" => LIST_CONSTRAINTS,
        "extension" => LIST_EXTENSIONS,
        "type" => LIST_TYPES,
        _ => return None,
    })
}

/// Resolve `limit`/`offset` for a listing: default `default`, at most `max`.
pub(crate) fn page(
    limit: Option<u64>,
    offset: Option<u64>,
    default: u64,
    max: u64,
) -> Result<(u64, u64), ToolError> {
    let limit = match limit {
        Some(0) => {
            return Err(ToolError::InvalidInput(format!(
                "limit must be at least 1 (default {default}, at most {max})"
            )));
        }
        Some(n) => n.min(max),
        None => default,
    };
    let offset = offset.unwrap_or(0);
    if offset > i64::MAX as u64 {
        return Err(ToolError::InvalidInput("offset is too large".into()));
    }
    Ok((limit, offset))
}

/// Turn rows carrying `total_count` into a page: `{items, count, total, limit, offset,
/// has_more, next_offset?}`.
pub(crate) fn paged(mut rows: Vec<Value>, limit: u64, offset: u64, truncated: bool) -> Value {
    let total = rows
        .first()
        .and_then(|r| r.get("total_count"))
        .and_then(Value::as_u64);
    for r in &mut rows {
        if let Value::Object(m) = r {
            m.remove("total_count");
        }
    }
    let count = rows.len() as u64;
    let total = match (total, offset) {
        (Some(t), _) => Some(t),
        // No rows on the first page: there are none at all.
        (None, 0) => Some(0),
        (None, _) => None,
    };
    let has_more = truncated || total.is_some_and(|t| offset + count < t);
    let mut out = json!({
        "items": rows,
        "count": count,
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": has_more,
    });
    if has_more {
        out["next_offset"] = json!(offset + count);
    }
    if truncated {
        out["truncated"] = json!(true);
        out["hint"] = json!(
            "the result reached the size cap; page with a smaller limit, or narrow it with schema \
             or pattern"
        );
    }
    out
}

/// `pg_schema list` (also the `postgres://schema/tables` resource).
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    args: &SchemaArgs,
    limits: &Limits,
) -> Result<Value, ToolError> {
    let target = args.target.as_deref().unwrap_or("table");
    let sql = list_sql(target).ok_or_else(|| {
        ToolError::InvalidInput(format!(
            "unknown target {:?} for pg_schema list; use one of: {}",
            truncate_for_message(target),
            TARGETS.join(", ")
        ))
    })?;
    let (limit, offset) = page(args.limit, args.offset, DEFAULT_LIMIT, MAX_LIMIT)?;
    let params = vec![
        schema_filter(args.schema.as_deref())?,
        args.pattern.as_ref().map_or(Value::Null, |p| json!(p)),
        json!(args.include_system.unwrap_or(false)),
        json!(limit),
        json!(offset),
    ];
    let started = std::time::Instant::now();
    let mut cat = Catalog::new(limits);
    let (rows, session) = read_scope(
        state,
        caller,
        args.session_id.as_deref(),
        limits,
        async |c| cat.rows(c, sql, &params).await,
    )
    .await?;
    let mut out = paged(rows, limit, offset, cat.truncated);
    out["target"] = json!(target);
    out["duration_ms"] = json!(ms(started));
    if let Some(s) = session {
        out["session"] = s;
    }
    Ok(out)
}

/// Milliseconds since `t`, rounded to microseconds.
pub(crate) fn ms(t: std::time::Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------
// describe
// ---------------------------------------------------------------------------------------

const DESCRIBE_RELATION: &str = "SELECT n.nspname::text AS schema, c.relname::text AS name, \
     c.relkind::text AS relkind, pg_get_userbyid(c.relowner)::text AS owner, \
     obj_description(c.oid, 'pg_class') AS comment, \
     CASE WHEN c.relkind = 'p' THEN (SELECT sum(greatest(l.reltuples, 0))::int8 FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf) \
          WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS row_estimate, \
     CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)::int8 \
          ELSE pg_total_relation_size(c.oid)::int8 END AS total_bytes, \
     pg_table_size(c.oid)::int8 AS table_bytes, pg_indexes_size(c.oid)::int8 AS indexes_bytes, \
     (CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) ELSE 0 END)::int8 AS toast_bytes, \
     c.relispartition AS is_partition, \
     CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key, \
     CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS view_definition, \
     CASE WHEN c.relkind = 'm' THEN c.relispopulated END AS populated, \
     CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END AS index_definition \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::int8::oid";

/// Generated columns show their expression as the default, marked `generated`.
const DESCRIBE_COLUMNS: &str = "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type, \
     NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default, \
     CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by_default' END AS identity, \
     CASE a.attgenerated WHEN 's' THEN 'stored' END AS generated, \
     col_description(a.attrelid, a.attnum) AS comment \
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
     WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

/// Column lists keep the constraint's own order (WITH ORDINALITY), not attnum order.
const DESCRIBE_CONSTRAINTS: &str = "SELECT co.conname::text AS name, co.contype::text AS type, \
     pg_get_constraintdef(co.oid, true) AS definition, \
     ARRAY(SELECT a.attname::text FROM unnest(co.conkey) WITH ORDINALITY k(attnum, ord) \
           JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns, \
     rn.nspname::text AS ref_schema, rc.relname::text AS ref_table, \
     ARRAY(SELECT a.attname::text FROM unnest(co.confkey) WITH ORDINALITY k(attnum, ord) \
           JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS ref_columns, \
     co.confupdtype::text AS on_update, co.confdeltype::text AS on_delete, \
     co.condeferrable AS deferrable, co.convalidated AS validated \
     FROM pg_constraint co LEFT JOIN pg_class rc ON rc.oid = co.confrelid \
     LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace \
     WHERE co.conrelid = $1::int8::oid ORDER BY co.contype, co.conname";

/// Foreign keys pointing at this table. `conparentid = 0` leaves out the copies PostgreSQL
/// makes for each partition of a referenced partitioned table.
const DESCRIBE_REFERENCED_BY: &str = "SELECT co.conname::text AS name, n.nspname::text AS schema, \
     c.relname::text AS table, \
     ARRAY(SELECT a.attname::text FROM unnest(co.conkey) WITH ORDINALITY k(attnum, ord) \
           JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns, \
     ARRAY(SELECT a.attname::text FROM unnest(co.confkey) WITH ORDINALITY k(attnum, ord) \
           JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS referenced_columns, \
     pg_get_constraintdef(co.oid, true) AS definition \
     FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE co.contype = 'f' AND co.confrelid = $1::int8::oid AND co.conparentid = 0 \
     ORDER BY n.nspname, c.relname, co.conname";

const DESCRIBE_INDEXES: &str = "SELECT ic.relname::text AS name, pg_get_indexdef(i.indexrelid) AS definition, \
     am.amname::text AS method, i.indisunique AS unique, i.indisprimary AS primary, \
     ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) \
                  || CASE WHEN i.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END \
                  || CASE i.indoption[k - 1] & 3 WHEN 1 THEN ' NULLS LAST' WHEN 2 THEN ' NULLS FIRST' ELSE '' END \
           FROM generate_series(1, i.indnkeyatts::int) k ORDER BY k) AS columns, \
     pg_get_expr(i.indpred, i.indrelid) AS predicate, i.indisvalid AS valid, \
     pg_relation_size(i.indexrelid)::int8 AS size_bytes, pg_size_pretty(pg_relation_size(i.indexrelid)) AS size, \
     s.idx_scan::int8 AS scans \
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
     LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid \
     WHERE i.indrelid = $1::int8::oid ORDER BY i.indisprimary DESC, ic.relname";

const DESCRIBE_TRIGGERS: &str = "SELECT t.tgname::text AS name, pg_get_triggerdef(t.oid, true) AS definition, \
     t.tgenabled <> 'D' AS enabled, t.tgfoid::regprocedure::text AS function \
     FROM pg_trigger t WHERE t.tgrelid = $1::int8::oid AND NOT t.tgisinternal ORDER BY t.tgname";

const DESCRIBE_CHILDREN: &str = "SELECT n.nspname::text AS schema, c.relname::text AS name, \
     pg_get_expr(c.relpartbound, c.oid) AS bound, c.relkind = 'p' AS partitioned, \
     CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS row_estimate, \
     pg_total_relation_size(c.oid)::int8 AS total_bytes \
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE i.inhparent = $1::int8::oid ORDER BY n.nspname, c.relname";

const DESCRIBE_PARENTS: &str = "SELECT n.nspname::text AS schema, p.relname::text AS name, \
     pg_get_expr(ch.relpartbound, ch.oid) AS bound \
     FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace \
     JOIN pg_class ch ON ch.oid = i.inhrelid WHERE i.inhrelid = $1::int8::oid ORDER BY i.inhseqno";

const DESCRIBE_SEQUENCE: &str = "SELECT format_type(s.seqtypid, NULL) AS data_type, s.seqstart::int8 AS start, \
     s.seqincrement::int8 AS increment, s.seqmin::int8 AS min, s.seqmax::int8 AS max, \
     s.seqcache::int8 AS cache, s.seqcycle AS cycle FROM pg_sequence s WHERE s.seqrelid = $1::int8::oid";

/// `$1` schema candidates (NULL: visible on the search_path), `$2` name candidates.
/// pg_get_functiondef refuses aggregates, so only functions and procedures get a definition.
const DESCRIBE_FUNCTIONS: &str = "SELECT n.nspname::text AS schema, p.proname::text AS name, \
     p.oid::regprocedure::text AS signature, pg_get_function_identity_arguments(p.oid) AS arguments, \
     pg_get_function_result(p.oid) AS result, \
     CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window' END AS kind, \
     l.lanname::text AS language, \
     CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS volatility, \
     p.prosecdef AS security_definer, p.proisstrict AS strict, \
     CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END AS definition, \
     obj_description(p.oid, 'pg_proc') AS comment \
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang \
     WHERE p.proname = ANY($2::text[]) \
     AND (CASE WHEN $1::text[] IS NULL THEN pg_function_is_visible(p.oid) ELSE n.nspname = ANY($1::text[]) END) \
     ORDER BY n.nspname, p.proname, 4 LIMIT 20";

fn fk_action(code: &Value) -> Value {
    json!(match code.as_str() {
        Some("a") => "no action",
        Some("r") => "restrict",
        Some("c") => "cascade",
        Some("n") => "set null",
        Some("d") => "set default",
        _ => return Value::Null,
    })
}

/// Remove keys whose value is null (for optional per-item facts such as `identity`).
fn drop_nulls(v: &mut Value, keys: &[&str]) {
    if let Value::Object(m) = v {
        for k in keys {
            if m.get(*k).is_some_and(Value::is_null) {
                m.remove(*k);
            }
        }
    }
}

/// Everything about one relation.
async fn describe_relation(
    conn: &mut sqlx::PgConnection,
    cat: &mut Catalog,
    rel: &Relation,
) -> Result<Value, ToolError> {
    let p = [json!(rel.oid)];
    let head = cat.one(conn, DESCRIBE_RELATION, &p).await?.ok_or_else(|| {
        ToolError::InvalidInput(format!(
            "{} was dropped while it was described",
            rel.shown()
        ))
    })?;
    let kind = relkind_name(&rel.relkind);
    let mut out = json!({
        "kind": kind,
        "schema": rel.schema,
        "name": rel.name,
        "owner": head["owner"],
        "comment": head["comment"],
    });
    let has_columns = matches!(rel.relkind.as_str(), "r" | "p" | "v" | "m" | "f" | "c");
    if has_columns {
        let mut cols = cat.rows(conn, DESCRIBE_COLUMNS, &p).await?;
        for c in &mut cols {
            drop_nulls(c, &["identity", "generated"]);
        }
        out["columns"] = json!(cols);
    }
    if matches!(rel.relkind.as_str(), "v" | "m") {
        out["view_definition"] = head["view_definition"].clone();
    }
    if rel.relkind == "m" {
        out["populated"] = head["populated"].clone();
    }
    if matches!(rel.relkind.as_str(), "i" | "I") {
        out["index_definition"] = head["index_definition"].clone();
    }
    if rel.relkind == "S"
        && let Some(seq) = cat.one(conn, DESCRIBE_SEQUENCE, &p).await?
    {
        out["sequence"] = seq;
    }
    if matches!(rel.relkind.as_str(), "r" | "p" | "f") {
        let cons = cat.rows(conn, DESCRIBE_CONSTRAINTS, &p).await?;
        let mut primary_key = Value::Null;
        let (mut fks, mut uniques, mut checks, mut exclusions) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in cons {
            let basic =
                json!({"name": c["name"], "columns": c["columns"], "definition": c["definition"]});
            match c["type"].as_str() {
                Some("p") => primary_key = basic,
                Some("u") => uniques.push(basic),
                Some("c") => checks.push(json!({"name": c["name"], "definition": c["definition"], "validated": c["validated"]})),
                Some("x") => exclusions.push(json!({"name": c["name"], "definition": c["definition"]})),
                Some("f") => fks.push(json!({
                    "name": c["name"],
                    "columns": c["columns"],
                    "references": {"schema": c["ref_schema"], "table": c["ref_table"], "columns": c["ref_columns"]},
                    "on_update": fk_action(&c["on_update"]),
                    "on_delete": fk_action(&c["on_delete"]),
                    "deferrable": c["deferrable"],
                    "validated": c["validated"],
                    "definition": c["definition"],
                })),
                _ => {}
            }
        }
        out["primary_key"] = primary_key;
        out["foreign_keys"] = json!(fks);
        out["referenced_by"] = json!(cat.rows(conn, DESCRIBE_REFERENCED_BY, &p).await?);
        out["unique_constraints"] = json!(uniques);
        out["check_constraints"] = json!(checks);
        out["exclusion_constraints"] = json!(exclusions);
    }
    if matches!(rel.relkind.as_str(), "r" | "p" | "m") {
        let mut idx = cat.rows(conn, DESCRIBE_INDEXES, &p).await?;
        for i in &mut idx {
            drop_nulls(i, &["predicate"]);
        }
        out["indexes"] = json!(idx);
    }
    if matches!(rel.relkind.as_str(), "r" | "p" | "v" | "f") {
        out["triggers"] = json!(cat.rows(conn, DESCRIBE_TRIGGERS, &p).await?);
    }
    if matches!(rel.relkind.as_str(), "r" | "p" | "f") {
        let parents = cat.rows(conn, DESCRIBE_PARENTS, &p).await?;
        if head["is_partition"] == json!(true) {
            out["partition_of"] = parents.into_iter().next().unwrap_or(Value::Null);
        } else {
            out["partition_of"] = Value::Null;
            if !parents.is_empty() {
                out["inherits"] = json!(parents);
            }
        }
        let children = cat.rows(conn, DESCRIBE_CHILDREN, &p).await?;
        if rel.relkind == "p" {
            out["partition_key"] = head["partition_key"].clone();
            out["partitions"] = json!(children);
        } else if !children.is_empty() {
            out["inherited_by"] = json!(children);
        }
    }
    if !matches!(rel.relkind.as_str(), "v" | "c") {
        out["row_estimate"] = head["row_estimate"].clone();
        let total = head["total_bytes"].as_i64().unwrap_or(0);
        out["size"] = json!({
            "total_bytes": total,
            "table_bytes": head["table_bytes"],
            "indexes_bytes": head["indexes_bytes"],
            "toast_bytes": head["toast_bytes"],
            "total": pretty_bytes(total),
        });
    }
    Ok(out)
}

/// Bytes as PostgreSQL's pg_size_pretty writes them (for sizes we add up ourselves).
pub(crate) fn pretty_bytes(b: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut u = 0;
    // pg_size_pretty switches unit at 10 * 1024 of the smaller one.
    while v.abs() >= 10.0 * 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{} {}", v.round() as i64, units[u])
}

/// Describe a table or view (or, failing that, a function) by name.
pub(crate) async fn describe_name(
    conn: &mut sqlx::PgConnection,
    cat: &mut Catalog,
    name: &QualifiedName,
) -> Result<Option<Value>, ToolError> {
    if let Some(rel) = resolve_relation(conn, cat, name).await? {
        return describe_relation(conn, cat, &rel).await.map(Some);
    }
    let schemas = name.schema_candidates().map_or(Value::Null, |v| json!(v));
    let names = json!(name.name_candidates());
    let funcs = cat
        .rows(conn, DESCRIBE_FUNCTIONS, &[schemas, names])
        .await?;
    if funcs.is_empty() {
        return Ok(None);
    }
    let first = &funcs[0];
    Ok(Some(json!({
        "kind": "function",
        "schema": first["schema"],
        "name": first["name"],
        "overloads": funcs.len(),
        "functions": funcs,
    })))
}

async fn describe(
    state: &AppState,
    caller: &Caller,
    args: &SchemaArgs,
    limits: &Limits,
) -> Result<Value, ToolError> {
    let raw = args.name.as_deref().ok_or_else(|| {
        ToolError::InvalidInput(
            "pg_schema describe needs name: a table, view or function, e.g. orders, app.orders or \
             app.\"Order\""
                .into(),
        )
    })?;
    let name = QualifiedName::parse("name", raw)?.in_schema(args.schema.as_deref())?;
    let started = std::time::Instant::now();
    let mut cat = Catalog::new(limits);
    let (found, session) = read_scope(
        state,
        caller,
        args.session_id.as_deref(),
        limits,
        async |c| describe_name(c, &mut cat, &name).await,
    )
    .await?;
    let mut out = found.ok_or_else(|| {
        ToolError::InvalidInput(format!(
            "no table, view or function named {} {}; pg_schema list (target: table, view or \
             function, with pattern) shows what exists",
            name.shown(),
            if name.schema.is_some() {
                "in that schema"
            } else {
                "on the search_path (qualify it as schema.name)"
            }
        ))
    })?;
    if cat.truncated {
        out["truncated"] = json!(true);
        out["hint"] = json!(
            "the description reached the size cap and some lists were cut; use pg_schema list \
             (target: index, constraint, trigger) with pattern for the rest"
        );
    }
    out["duration_ms"] = json!(ms(started));
    if let Some(s) = session {
        out["session"] = s;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// create / alter / drop
// ---------------------------------------------------------------------------------------

/// Statements PostgreSQL refuses inside a transaction block that pg_schema accepts:
/// `CREATE INDEX CONCURRENTLY` and `DROP INDEX CONCURRENTLY`.
fn needs_autocommit(sql: &str) -> bool {
    use pg_query::NodeEnum;
    let Ok(tree) = pg_query::parse(sql, 0) else {
        return false;
    };
    tree.protobuf.stmts.iter().any(|s| {
        matches!(
            s.stmt.as_ref().and_then(|n| n.node.as_ref()),
            Some(NodeEnum::IndexStmt(i)) if i.concurrent
        ) || matches!(
            s.stmt.as_ref().and_then(|n| n.node.as_ref()),
            Some(NodeEnum::DropStmt(d)) if d.concurrent
        )
    })
}

async fn ddl(
    state: &AppState,
    caller: &Caller,
    args: &SchemaArgs,
    kind: DdlKind,
) -> Result<Value, ToolError> {
    let action = kind.as_str();
    let sql = match args.sql.as_deref() {
        Some(s) if !s.trim().is_empty() => s,
        _ => {
            return Err(ToolError::InvalidInput(format!(
                "pg_schema {action} needs sql: one {} statement",
                action.to_uppercase()
            )));
        }
    };
    let parsed = parse(sql)?;
    let dry_run = args.dry_run.unwrap_or(false);
    let plan = crate::mcp::gate::authorize(
        state,
        crate::safety::policy::Action::Ddl(kind),
        &parsed,
        crate::safety::policy::Authority {
            dry_run,
            autocommit: args.autocommit.unwrap_or(false),
            session: args.session_id.is_some(),
        },
    )
    .await?;
    // Whatever it does, DDL may change what the function catalog holds.
    state.catalog.mark_stale();
    let limits = limits_for(state, None)?;
    let concurrent = needs_autocommit(parsed.sql());
    let st = StatementRef::from(&parsed);
    let started = std::time::Instant::now();

    if let Some(id) = args.session_id.as_deref() {
        if concurrent {
            return Err(ToolError::InvalidInput(
                "CONCURRENTLY cannot run inside a transaction, so not in a pg_tx session; run it \
                 without session_id and with autocommit: true (or drop CONCURRENTLY)"
                    .into(),
            ));
        }
        let mut g = state.sessions.acquire(&caller.owner, id).await?;
        if dry_run {
            under_savepoint(&mut g, false, false, async |c| {
                run_statement(c, sql, &st, &[], &limits, RowMode::Write).await
            })
            .await?;
        } else {
            // Bounded by the client-side deadline, like every session call.
            crate::mcp::tx::bounded(&mut g, async |g| {
                g.start_statement();
                match run_statement(g.conn(), sql, &st, &[], &limits, RowMode::Write).await {
                    Ok(_) => {
                        g.end_statement(true, None);
                        Ok(())
                    }
                    // PostgreSQL aborted the transaction: it is marked failed, and commit will
                    // say it rolled back.
                    Err(e) => Err(settle_error(g, e)),
                }
            })
            .await?;
        }
        let mut out = ddl_result(&parsed, dry_run, false, started);
        out["session"] = g.view();
        if !dry_run {
            out["hint"] = json!(
                "applied inside the session; it becomes permanent with pg_tx commit and is undone \
                 by pg_tx rollback"
            );
        }
        return Ok(out);
    }

    if concurrent {
        if dry_run {
            return Err(ToolError::InvalidInput(
                "CONCURRENTLY cannot run inside a transaction, so it cannot be dry-run (which \
                 rolls back); dry-run it without CONCURRENTLY, then run it with autocommit: true"
                    .into(),
            ));
        }
        // Outside any transaction block, as PostgreSQL requires; the statement text was parsed
        // and classified above and is sent as one statement.
        AutocommitConn::acquire(&state.pools, caller.role(), &limits)
            .await?
            .run(parsed.sql().to_owned(), &limits)
            .await?;
        return Ok(ddl_result(&parsed, false, true, started));
    }
    let mut tx = PooledTx::begin(&state.pools, caller.role(), false, &limits).await?;
    if plan.close_connection {
        tx.close_afterwards();
    }
    let res = with_deadline(
        &limits,
        run_statement(tx.conn(), sql, &st, &[], &limits, RowMode::Write),
    )
    .await;
    if let Err(e) = res {
        tx.abandon().await;
        return Err(e);
    }
    let committed = tx.finish(plan.commit).await?;
    Ok(ddl_result(&parsed, dry_run, committed, started))
}

fn ddl_result(
    parsed: &classify::Parsed,
    dry_run: bool,
    committed: bool,
    started: std::time::Instant,
) -> Value {
    let mut out = json!({
        "command": parsed.command(),
        "ok": true,
        "committed": committed,
        "duration_ms": ms(started),
    });
    if dry_run {
        out["dry_run"] = json!(true);
        out["rolled_back"] = json!(true);
        out["hint"] = json!(
            "dry run: the statement ran and was rolled back; nothing changed. Repeat with \
             autocommit: true (and without dry_run) to apply it"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> QualifiedName {
        QualifiedName::parse("name", raw).unwrap()
    }

    #[test]
    fn qualified_names_fold_unquoted_parts_and_keep_quoted_ones() {
        let cases: &[(&str, &[&str])] = &[
            ("orders", &["\"orders\""]),
            ("App.Orders", &["\"app\".\"orders\"", "\"App\".\"Orders\""]),
            ("app.\"Order\"", &["\"app\".\"Order\""]),
            ("\"My Table\"", &["\"My Table\""]),
            ("\"a\"\"b\"", &["\"a\"\"b\""]),
            ("  _x$1 ", &["\"_x$1\""]),
        ];
        for (raw, want) in cases {
            assert_eq!(q(raw).regclass_candidates(), *want, "{raw}");
        }
        assert_eq!(q("Order").name_candidates(), vec!["order", "Order"]);
        assert_eq!(q("app.x").schema_candidates(), Some(vec!["app".to_owned()]));
        assert_eq!(q("x").schema_candidates(), None);
    }

    #[test]
    fn anything_that_is_not_a_name_is_refused() {
        for raw in [
            "",
            "x; DROP TABLE y",
            "a b",
            "a.b.c",
            "\"unclosed",
            "\"\"",
            "a.",
            ".a",
            "\"a\"b",
            "1abc",
            "a-b",
            "t--",
        ] {
            let e = QualifiedName::parse("table", raw).unwrap_err();
            assert!(matches!(e, ToolError::InvalidInput(_)), "{raw}");
            assert!(e.to_string().contains("invalid table"), "{raw}: {e}");
        }
        let long = "a".repeat(64);
        assert!(QualifiedName::parse("table", &long).is_err());
    }

    #[test]
    fn a_separate_schema_qualifies_or_must_agree() {
        let n = q("orders").in_schema(Some("billing")).unwrap();
        assert_eq!(n.regclass_candidates(), vec!["\"billing\".\"orders\""]);
        assert!(q("app.orders").in_schema(Some("billing")).is_err());
        assert!(q("app.orders").in_schema(Some("APP")).is_ok());
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(page(None, None, 100, 1000).unwrap(), (100, 0));
        assert_eq!(page(Some(5000), Some(7), 100, 1000).unwrap(), (1000, 7));
        assert!(page(Some(0), None, 100, 1000).is_err());
        let p = paged(
            vec![
                json!({"a": 1, "total_count": 3}),
                json!({"a": 2, "total_count": 3}),
            ],
            2,
            0,
            false,
        );
        assert_eq!(p["items"], json!([{"a": 1}, {"a": 2}]));
        assert_eq!(p["total"], 3);
        assert_eq!(p["has_more"], true);
        assert_eq!(p["next_offset"], 2);
        let empty = paged(vec![], 2, 0, false);
        assert_eq!(empty["total"], 0);
        assert_eq!(empty["has_more"], false);
    }

    #[test]
    fn concurrently_is_detected_for_create_and_drop_index() {
        assert!(needs_autocommit("CREATE INDEX CONCURRENTLY i ON t (a)"));
        assert!(needs_autocommit("DROP INDEX CONCURRENTLY i"));
        assert!(!needs_autocommit("CREATE INDEX i ON t (a)"));
        assert!(!needs_autocommit("DROP TABLE t"));
    }

    #[test]
    fn sizes_read_like_pg_size_pretty() {
        assert_eq!(pretty_bytes(0), "0 bytes");
        assert_eq!(pretty_bytes(10239), "10239 bytes");
        assert_eq!(pretty_bytes(10240), "10 kB");
        assert_eq!(pretty_bytes(8 * 1024 * 1024 * 1024), "8192 MB");
    }
}
