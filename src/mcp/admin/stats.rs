//! `pg_admin stats`: the busiest tables, or one table's statistics and index usage.

use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, QualifiedName, read_scope, relkind_name};
use crate::mcp::common::limits_for;
use crate::mcp::support::{ms, page};
use crate::state::AppState;

use super::{AdminArgs, find_table};

/// What `table_stats` shows after a maintenance run (and `stats` for one table). A
/// partitioned table's own row holds only zeros; its leaf partitions are shown instead.
pub(super) const TABLE_STATS: &str = "SELECT s.schemaname::text AS schema, s.relname::text AS table, \
     s.n_live_tup::int8 AS live_tuples, s.n_dead_tup::int8 AS dead_tuples, \
     CASE WHEN s.n_live_tup + s.n_dead_tup > 0 \
          THEN round(s.n_dead_tup::numeric / (s.n_live_tup + s.n_dead_tup), 4)::float8 ELSE 0 END AS dead_ratio, \
     s.seq_scan::int8 AS seq_scans, s.seq_tup_read::int8 AS seq_tuples_read, \
     s.idx_scan::int8 AS index_scans, s.idx_tup_fetch::int8 AS index_tuples_fetched, \
     s.n_tup_ins::int8 AS inserts, s.n_tup_upd::int8 AS updates, s.n_tup_del::int8 AS deletes, \
     s.n_tup_hot_upd::int8 AS hot_updates, s.n_mod_since_analyze::int8 AS modified_since_analyze, \
     s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze, \
     s.vacuum_count::int8 AS vacuum_count, s.autovacuum_count::int8 AS autovacuum_count, \
     s.analyze_count::int8 AS analyze_count, s.autoanalyze_count::int8 AS autoanalyze_count, \
     pg_total_relation_size(s.relid)::int8 AS total_bytes, pg_table_size(s.relid)::int8 AS table_bytes, \
     pg_indexes_size(s.relid)::int8 AS indexes_bytes, pg_size_pretty(pg_total_relation_size(s.relid)) AS total_size \
     FROM pg_stat_all_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE c.relkind <> 'p' AND (s.relid = $1::int8::oid \
        OR s.relid IN (SELECT t.relid FROM pg_partition_tree($1::int8::oid) t WHERE t.isleaf)) \
     ORDER BY s.schemaname, s.relname";

/// Index usage for the table (or, for a partitioned table, its partitions).
const INDEX_USAGE: &str = "SELECT s.schemaname::text AS schema, s.relname::text AS table, \
     s.indexrelname::text AS name, s.idx_scan::int8 AS scans, s.idx_tup_read::int8 AS tuples_read, \
     s.idx_tup_fetch::int8 AS tuples_fetched, i.indisunique AS unique, i.indisprimary AS primary, \
     pg_relation_size(s.indexrelid)::int8 AS size_bytes, pg_size_pretty(pg_relation_size(s.indexrelid)) AS size \
     FROM pg_stat_all_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid \
     WHERE s.relid = $1::int8::oid \
        OR s.relid IN (SELECT t.relid FROM pg_partition_tree($1::int8::oid) t WHERE t.isleaf) \
     ORDER BY s.schemaname, s.relname, s.indexrelname";

/// Tables with the most reads and writes. `coldquery` (our audit log) is not the user's.
const TOP_TABLES: &str = "SELECT s.schemaname::text AS schema, s.relname::text AS table, \
     (s.seq_scan + coalesce(s.idx_scan, 0) + s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::int8 AS activity, \
     s.n_live_tup::int8 AS live_tuples, s.n_dead_tup::int8 AS dead_tuples, \
     CASE WHEN s.n_live_tup + s.n_dead_tup > 0 \
          THEN round(s.n_dead_tup::numeric / (s.n_live_tup + s.n_dead_tup), 4)::float8 ELSE 0 END AS dead_ratio, \
     s.seq_scan::int8 AS seq_scans, s.idx_scan::int8 AS index_scans, \
     s.n_tup_ins::int8 AS inserts, s.n_tup_upd::int8 AS updates, s.n_tup_del::int8 AS deletes, \
     s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze, \
     pg_total_relation_size(s.relid)::int8 AS total_bytes, pg_size_pretty(pg_total_relation_size(s.relid)) AS total_size \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.schemaname <> 'coldquery' AND c.relkind <> 'p' \
     ORDER BY 3 DESC, pg_total_relation_size(s.relid) DESC, 1, 2 LIMIT $1::int8";

pub(super) async fn stats(
    state: &AppState,
    caller: &Caller,
    args: &AdminArgs,
) -> Result<Value, ToolError> {
    let limits = limits_for(state, None)?;
    let started = std::time::Instant::now();
    let mut cat = Catalog::new(&limits);
    let session_id = args.session_id.as_deref();
    let Some(raw) = args.table.as_deref() else {
        let (limit, _) = page(args.limit, None, 20, 100)?;
        let (rows, session) = read_scope(state, caller, session_id, &limits, async |c| {
            cat.rows(c, TOP_TABLES, &[json!(limit)]).await
        })
        .await?;
        let mut out = json!({
            "tables": rows,
            "order": "activity = seq_scans + index_scans + inserts + updates + deletes",
            "duration_ms": ms(started),
        });
        if let Some(s) = session {
            out["session"] = s;
        }
        return Ok(out);
    };
    let name = QualifiedName::parse("table", raw)?;
    let ((rel, tables, indexes), session) =
        read_scope(state, caller, session_id, &limits, async |c| {
            let rel = find_table(c, &mut cat, &name).await?;
            let p = [json!(rel.oid)];
            let tables = cat.rows(c, TABLE_STATS, &p).await?;
            let indexes = cat.rows(c, INDEX_USAGE, &p).await?;
            Ok((rel, tables, indexes))
        })
        .await?;
    let mut out = json!({
        "table": rel.shown(),
        "kind": relkind_name(&rel.relkind),
        "index_usage": indexes,
        "duration_ms": ms(started),
    });
    if rel.relkind == "p" {
        // A partitioned table keeps no statistics of its own; its partitions do.
        out["partitions"] = json!(tables);
    } else {
        out["stats"] = tables.into_iter().next().unwrap_or(Value::Null);
    }
    out["bloat_estimate"] = json!(
        "dead_ratio = dead_tuples / (live_tuples + dead_tuples); above about 0.2, consider \
         pg_admin vacuum on the table"
    );
    if let Some(s) = session {
        out["session"] = s;
    }
    Ok(out)
}
