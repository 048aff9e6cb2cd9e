//! `pg_schema list`: one catalog query per target ([`SchemaTarget`]), all with the same
//! parameters, paged.

use serde_json::{Value, json};

use super::SchemaArgs;
use crate::caller::Caller;
use crate::db::executor::Limits;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, read_scope, schema_filter};
use crate::mcp::names::SchemaTarget;
use crate::mcp::support::{ms, page, paged};
use crate::state::AppState;

/// Default page size of `list`.
const DEFAULT_LIMIT: u64 = 100;
/// Largest page of `list`: bounded catalog work and a result well under the message limit.
const MAX_LIMIT: u64 = 1000;

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

fn list_sql(target: SchemaTarget) -> &'static str {
    match target {
        SchemaTarget::Schema => LIST_SCHEMAS,
        SchemaTarget::Table => LIST_TABLES,
        SchemaTarget::View => LIST_VIEWS,
        SchemaTarget::MaterializedView => LIST_MATVIEWS,
        SchemaTarget::Function => LIST_FUNCTIONS,
        SchemaTarget::Sequence => LIST_SEQUENCES,
        SchemaTarget::Index => LIST_INDEXES,
        SchemaTarget::Trigger => LIST_TRIGGERS,
        SchemaTarget::Constraint => LIST_CONSTRAINTS,
        SchemaTarget::Extension => LIST_EXTENSIONS,
        SchemaTarget::Type => LIST_TYPES,
    }
}

/// `pg_schema list` (also the `postgres://schema/tables` resource).
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    args: &SchemaArgs,
    limits: &Limits,
) -> Result<Value, ToolError> {
    let target = match &args.target {
        Some(t) => t.known()?,
        None => SchemaTarget::Table,
    };
    let sql = list_sql(target);
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
    out["target"] = json!(target.name());
    out["duration_ms"] = json!(ms(started));
    if let Some(s) = session {
        out["session"] = s;
    }
    Ok(out)
}
