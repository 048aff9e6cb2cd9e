//! `pg_schema describe` (also the `postgres://table/...` resource): everything about one
//! table or view, or the overloads of a function.

use serde_json::{Value, json};

use super::SchemaArgs;
use crate::caller::Caller;
use crate::db::executor::Limits;
use crate::error::ToolError;
use crate::mcp::catalog::{
    Catalog, QualifiedName, Relation, read_scope, relkind_name, resolve_relation,
};
use crate::mcp::support::ms;
use crate::state::AppState;

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

pub(super) async fn describe(
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
            if name.has_schema() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_pg_size_pretty() {
        assert_eq!(pretty_bytes(0), "0 bytes");
        assert_eq!(pretty_bytes(10239), "10239 bytes");
        assert_eq!(pretty_bytes(10240), "10 kB");
        assert_eq!(pretty_bytes(8 * 1024 * 1024 * 1024), "8192 MB");
    }
}
