//! The `pg_monitor` tool, all read-only: `health`, `activity`, `connections`, `locks`, `size`
//! and `slow_queries` (pg_stat_statements). Runs on the main pool in a READ ONLY transaction
//! that is rolled back; `/health` keeps its own tiny pool and is not affected by these calls.
//! The arguments' JSON Schema is derived from [`MonitorArgs`].

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, monitor_scope};
use crate::mcp::common::limits_for;
use crate::mcp::names::{ActionArg, MonitorAction, MonitorOrder};
use crate::mcp::support::{ms, page, paged};
use crate::safety::ident::quote_ident;
use crate::state::AppState;

/// Arguments of `pg_monitor`. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorArgs {
    /// One of [`MonitorAction`].
    pub action: ActionArg<MonitorAction>,
    /// activity: include idle backends (and background processes).
    pub include_idle: Option<bool>,
    /// activity/locks/size/slow_queries: how many rows.
    pub limit: Option<u64>,
    /// slow_queries: `mean_time` (default), `total_time` or `calls`.
    pub order_by: Option<ActionArg<MonitorOrder>>,
}

/// Run one `pg_monitor` call.
pub async fn call(
    state: &AppState,
    caller: &Caller,
    args: MonitorArgs,
) -> Result<Value, ToolError> {
    // Today's order: the misplaced-argument checks come before the unknown action.
    let action = MonitorAction::parse(args.action.as_str());
    if args.include_idle.is_some() && action != Some(MonitorAction::Activity) {
        return Err(ToolError::InvalidInput(
            "include_idle applies to pg_monitor activity only".into(),
        ));
    }
    if args.order_by.is_some() && action != Some(MonitorAction::SlowQueries) {
        return Err(ToolError::InvalidInput(
            "order_by applies to pg_monitor slow_queries only".into(),
        ));
    }
    let started = std::time::Instant::now();
    let mut out = match args.action.known()? {
        MonitorAction::Health => health(state, caller).await?,
        MonitorAction::Activity => activity(state, caller, &args).await?,
        MonitorAction::Connections => connections(state, caller).await?,
        MonitorAction::Locks => locks(state, caller, &args).await?,
        MonitorAction::Size => size(state, caller, &args).await?,
        MonitorAction::SlowQueries => slow_queries(state, caller, &args).await?,
    };
    out["duration_ms"] = json!(ms(started));
    Ok(out)
}

/// Seconds since a timestamp column, to the millisecond, as a JSON number. Measured against
/// `clock_timestamp()`, not `now()`: now() is when this call's own transaction began, which
/// can be before a lock wait it reports started, and durations must not come out negative.
macro_rules! secs_since {
    ($col:literal) => {
        concat!(
            "round(extract(epoch FROM clock_timestamp() - ",
            $col,
            ")::numeric, 3)::float8"
        )
    };
}

// ---------------------------------------------------------------------------------------
// health
// ---------------------------------------------------------------------------------------

/// Connections count client backends only (not autovacuum, WAL writer …), as max_connections does.
const HEALTH: &str = concat!(
    "SELECT version() AS version, current_setting('server_version') AS server_version, \
     current_setting('server_version_num')::int4 AS server_version_num, \
     pg_postmaster_start_time() AS started_at, \
     extract(epoch FROM now() - pg_postmaster_start_time())::int8 AS uptime_s, \
     date_trunc('second', now() - pg_postmaster_start_time())::text AS uptime, \
     current_database()::text AS database, pg_database_size(current_database())::int8 AS database_bytes, \
     pg_size_pretty(pg_database_size(current_database())) AS database_size, \
     (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int8 AS connections, \
     current_setting('max_connections')::int4 AS max_connections, \
     current_setting('superuser_reserved_connections')::int4 AS reserved_connections, \
     d.blks_hit::int8 AS blocks_hit, d.blks_read::int8 AS blocks_read, \
     CASE WHEN d.blks_hit + d.blks_read > 0 \
          THEN round(d.blks_hit::numeric / (d.blks_hit + d.blks_read), 4)::float8 END AS cache_hit_ratio, \
     d.xact_commit::int8 AS commits, d.xact_rollback::int8 AS rollbacks, d.deadlocks::int8 AS deadlocks, \
     d.temp_files::int8 AS temp_files, d.temp_bytes::int8 AS temp_bytes, \
     pg_is_in_recovery() AS in_recovery, \
     CASE WHEN pg_is_in_recovery() THEN ",
    secs_since!("pg_last_xact_replay_timestamp()"),
    " END AS replay_lag_s \
     FROM pg_stat_database d WHERE d.datname = current_database()"
);

/// The oldest open transaction other than this call's own.
const LONGEST_TRANSACTION: &str = concat!(
    "SELECT a.pid, a.usename::text AS user, a.datname::text AS database, a.application_name AS application, \
     a.state, ",
    secs_since!("a.xact_start"),
    " AS age_s, a.xact_start AS started_at, left(a.query, 1000) AS query \
     FROM pg_stat_activity a WHERE a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid() \
     ORDER BY a.xact_start LIMIT 1"
);

const REPLICAS: &str = "SELECT application_name AS application, client_addr::text AS client_addr, \
     state, sync_state, extract(epoch FROM write_lag)::float8 AS write_lag_s, \
     extract(epoch FROM flush_lag)::float8 AS flush_lag_s, \
     extract(epoch FROM replay_lag)::float8 AS replay_lag_s \
     FROM pg_stat_replication ORDER BY application_name";

/// Thresholds for health warnings: a pool near its limit, a cold cache on a database that has
/// done real work, a transaction holding back vacuum, a replica falling behind.
const CONNECTIONS_WARN: f64 = 0.8;
const CACHE_HIT_WARN: f64 = 0.9;
const CACHE_MIN_READS: i64 = 10_000;
const LONG_TRANSACTION_WARN_S: f64 = 300.0;
const REPLICATION_LAG_WARN_S: f64 = 60.0;

/// `pg_monitor health` (also the `postgres://monitor/health` resource).
pub(crate) async fn health(state: &AppState, caller: &Caller) -> Result<Value, ToolError> {
    let limits = limits_for(state, None)?;
    let mut cat = Catalog::new(&limits);
    let ((h, longest, replicas), _) = monitor_scope(state, caller, None, &limits, async |c| {
        let h = cat.one(c, HEALTH, &[]).await?.unwrap_or_default();
        let longest = cat.one(c, LONGEST_TRANSACTION, &[]).await?;
        let replicas = cat.rows(c, REPLICAS, &[]).await?;
        Ok((h, longest, replicas))
    })
    .await?;
    let used = h["connections"].as_i64().unwrap_or(0);
    let max = h["max_connections"].as_i64().unwrap_or(0);
    let usage = if max > 0 {
        (used as f64 / max as f64 * 10_000.0).round() / 10_000.0
    } else {
        0.0
    };
    let mut warnings = Vec::new();
    if usage >= CONNECTIONS_WARN {
        warnings.push(format!(
            "{used} of {max} connections in use ({:.0}%)",
            usage * 100.0
        ));
    }
    let reads = h["blocks_read"].as_i64().unwrap_or(0) + h["blocks_hit"].as_i64().unwrap_or(0);
    if let Some(ratio) = h["cache_hit_ratio"].as_f64()
        && reads >= CACHE_MIN_READS
        && ratio < CACHE_HIT_WARN
    {
        warnings.push(format!(
            "cache hit ratio {ratio:.3} is below {CACHE_HIT_WARN}: the working set may not fit in shared_buffers"
        ));
    }
    if let Some(t) = &longest
        && t["age_s"].as_f64().unwrap_or(0.0) >= LONG_TRANSACTION_WARN_S
    {
        warnings.push(format!(
            "transaction of pid {} has been open {:.0}s (state {}): it holds back vacuum and may hold locks",
            t["pid"],
            t["age_s"].as_f64().unwrap_or(0.0),
            t["state"].as_str().unwrap_or("unknown")
        ));
    }
    let in_recovery = h["in_recovery"].as_bool().unwrap_or(false);
    let mut max_lag: Option<f64> = h["replay_lag_s"].as_f64();
    for r in &replicas {
        if let Some(l) = r["replay_lag_s"].as_f64() {
            max_lag = Some(max_lag.map_or(l, |m| m.max(l)));
        }
    }
    if let Some(l) = max_lag
        && l >= REPLICATION_LAG_WARN_S
    {
        warnings.push(format!("replication lag is {l:.0}s"));
    }
    Ok(json!({
        "status": if warnings.is_empty() { "ok" } else { "warning" },
        "warnings": warnings,
        "version": h["version"],
        "server_version": h["server_version"],
        "server_version_num": h["server_version_num"],
        "started_at": h["started_at"],
        "uptime_s": h["uptime_s"],
        "uptime": h["uptime"],
        "database": h["database"],
        "database_size_bytes": h["database_bytes"],
        "database_size": h["database_size"],
        "connections": {
            "used": used,
            "max": max,
            "reserved_for_superuser": h["reserved_connections"],
            "usage_ratio": usage,
        },
        "cache_hit_ratio": h["cache_hit_ratio"],
        "transactions": {
            "commits": h["commits"],
            "rollbacks": h["rollbacks"],
            "deadlocks": h["deadlocks"],
            "temp_files": h["temp_files"],
            "temp_bytes": h["temp_bytes"],
        },
        "longest_transaction": longest,
        "replication": {
            "role": if in_recovery { "standby" } else { "primary" },
            "replay_lag_s": h["replay_lag_s"],
            "replicas": replicas,
        },
    }))
}

// ---------------------------------------------------------------------------------------
// activity
// ---------------------------------------------------------------------------------------

/// `wait_s` is how long the backend has waited for a lock (pg_locks.waitstart, PostgreSQL 14+);
/// `state_s` how long it has been in its current state.
const ACTIVITY: &str = concat!(
    "SELECT a.pid, a.usename::text AS user, a.datname::text AS database, a.application_name AS application, \
     a.client_addr::text AS client_addr, a.backend_type, a.state, a.wait_event_type, a.wait_event, ",
    secs_since!("a.query_start"),
    " AS query_s, ",
    secs_since!("a.xact_start"),
    " AS transaction_s, ",
    secs_since!("a.state_change"),
    " AS state_s, \
     (SELECT round(extract(epoch FROM clock_timestamp() - min(l.waitstart))::numeric, 3)::float8 FROM pg_locks l \
      WHERE l.pid = a.pid AND NOT l.granted) AS wait_s, \
     pg_blocking_pids(a.pid) AS blocked_by, \
     left(a.query, 1000) AS query, length(a.query) > 1000 AS query_truncated, \
     count(*) OVER ()::int8 AS total_count \
     FROM pg_stat_activity a \
     WHERE a.pid <> pg_backend_pid() AND ($1::bool OR (a.state IS NOT NULL AND a.state <> 'idle')) \
     ORDER BY a.xact_start NULLS LAST, a.query_start NULLS LAST, a.pid LIMIT $2::int8"
);

/// `pg_monitor activity` (also the `postgres://monitor/activity` resource).
pub(crate) async fn activity(
    state: &AppState,
    caller: &Caller,
    args: &MonitorArgs,
) -> Result<Value, ToolError> {
    let limits = limits_for(state, None)?;
    let (limit, _) = page(args.limit, None, 100, 1000)?;
    let include_idle = args.include_idle.unwrap_or(false);
    let mut cat = Catalog::new(&limits);
    let (rows, _) = monitor_scope(state, caller, None, &limits, async |c| {
        cat.rows(c, ACTIVITY, &[json!(include_idle), json!(limit)])
            .await
    })
    .await?;
    let mut out = paged(rows, limit, 0, cat.truncated);
    if let Value::Object(m) = &mut out {
        m.remove("offset");
        m.remove("next_offset");
        let items = m.remove("items").unwrap_or_default();
        m.insert("backends".into(), items);
    }
    out["include_idle"] = json!(include_idle);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// connections
// ---------------------------------------------------------------------------------------

const CONNECTION_GROUPS: &str = "SELECT a.datname::text AS database, a.usename::text AS user, \
     a.application_name AS application, coalesce(a.state, 'unknown') AS state, count(*)::int8 AS connections \
     FROM pg_stat_activity a WHERE a.backend_type = 'client backend' \
     GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1, 2, 3, 4 LIMIT 1000";

const CONNECTION_TOTALS: &str = "SELECT count(*)::int8 AS total, \
     count(*) FILTER (WHERE a.state = 'active')::int8 AS active, \
     count(*) FILTER (WHERE a.state = 'idle')::int8 AS idle, \
     count(*) FILTER (WHERE a.state = 'idle in transaction')::int8 AS idle_in_transaction, \
     count(*) FILTER (WHERE a.state = 'idle in transaction (aborted)')::int8 AS idle_in_transaction_aborted, \
     count(*) FILTER (WHERE a.wait_event_type = 'Lock')::int8 AS waiting_on_locks, \
     current_setting('max_connections')::int4 AS max_connections \
     FROM pg_stat_activity a WHERE a.backend_type = 'client backend'";

async fn connections(state: &AppState, caller: &Caller) -> Result<Value, ToolError> {
    let limits = limits_for(state, None)?;
    let mut cat = Catalog::new(&limits);
    let ((totals, groups), _) = monitor_scope(state, caller, None, &limits, async |c| {
        let totals = cat
            .one(c, CONNECTION_TOTALS, &[])
            .await?
            .unwrap_or_default();
        let groups = cat.rows(c, CONNECTION_GROUPS, &[]).await?;
        Ok((totals, groups))
    })
    .await?;
    let total = totals["total"].as_i64().unwrap_or(0);
    let max = totals["max_connections"].as_i64().unwrap_or(0);
    Ok(json!({
        "total": total,
        "max_connections": max,
        "usage_ratio": if max > 0 { (total as f64 / max as f64 * 10_000.0).round() / 10_000.0 } else { 0.0 },
        "by_state": {
            "active": totals["active"],
            "idle": totals["idle"],
            "idle_in_transaction": totals["idle_in_transaction"],
            "idle_in_transaction_aborted": totals["idle_in_transaction_aborted"],
        },
        "waiting_on_locks": totals["waiting_on_locks"],
        "groups": groups,
        "truncated": cat.truncated,
    }))
}

// ---------------------------------------------------------------------------------------
// locks
// ---------------------------------------------------------------------------------------

/// One row per (blocked, blocking) pair from pg_blocking_pids. The blocked side's ungranted
/// lock says what it waits for; the blocking side's granted locks on the same object say
/// what it holds.
const LOCKS: &str = concat!(
    "SELECT a.pid AS blocked_pid, a.usename::text AS blocked_user, a.application_name AS blocked_application, \
     left(a.query, 1000) AS blocked_query, ",
    secs_since!("a.query_start"),
    " AS blocked_query_s, ",
    secs_since!("w.waitstart"),
    " AS wait_s, \
     w.locktype AS lock_type, w.mode AS blocked_lock_mode, w.relation::regclass::text AS relation, \
     w.transactionid::text AS transaction_id, \
     b.pid AS blocking_pid, b.usename::text AS blocking_user, b.application_name AS blocking_application, \
     b.state AS blocking_state, left(b.query, 1000) AS blocking_query, ",
    secs_since!("b.xact_start"),
    " AS blocking_transaction_s, \
     ARRAY(SELECT DISTINCT h.mode FROM pg_locks h WHERE h.pid = b.pid AND h.granted \
           AND h.locktype = w.locktype AND h.database IS NOT DISTINCT FROM w.database \
           AND h.relation IS NOT DISTINCT FROM w.relation AND h.page IS NOT DISTINCT FROM w.page \
           AND h.tuple IS NOT DISTINCT FROM w.tuple AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid \
           AND h.transactionid IS NOT DISTINCT FROM w.transactionid AND h.classid IS NOT DISTINCT FROM w.classid \
           AND h.objid IS NOT DISTINCT FROM w.objid AND h.objsubid IS NOT DISTINCT FROM w.objsubid \
           ORDER BY 1) AS blocking_lock_modes \
     FROM pg_stat_activity a \
     CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS bp(pid) \
     JOIN pg_stat_activity b ON b.pid = bp.pid \
     LEFT JOIN LATERAL (SELECT l.locktype, l.mode, l.relation, l.transactionid, l.database, l.page, l.tuple, \
                               l.virtualxid, l.classid, l.objid, l.objsubid, l.waitstart \
                        FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) w ON true \
     WHERE a.pid <> pg_backend_pid() \
     ORDER BY w.waitstart NULLS LAST, a.pid, b.pid LIMIT $1::int8"
);

async fn locks(state: &AppState, caller: &Caller, args: &MonitorArgs) -> Result<Value, ToolError> {
    let limits = limits_for(state, None)?;
    let (limit, _) = page(args.limit, None, 100, 1000)?;
    let mut cat = Catalog::new(&limits);
    let (pairs, _) = monitor_scope(state, caller, None, &limits, async |c| {
        cat.rows(c, LOCKS, &[json!(limit)]).await
    })
    .await?;
    let mut blocked: Vec<i64> = pairs
        .iter()
        .filter_map(|p| p["blocked_pid"].as_i64())
        .collect();
    blocked.sort_unstable();
    blocked.dedup();
    let mut out = json!({
        "blocked_count": blocked.len(),
        "pairs": pairs,
        "truncated": cat.truncated,
    });
    if !blocked.is_empty() {
        out["hint"] = json!(
            "each pair is a waiting backend and the one holding the lock it needs; the blocking \
             transaction must commit or roll back (if it is one of your pg_tx sessions, end it \
             with pg_tx commit/rollback). This server does not terminate backends; ask the \
             database owner to, if needed"
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// size
// ---------------------------------------------------------------------------------------

const DATABASE_SIZE: &str = "SELECT current_database()::text AS database, \
     pg_database_size(current_database())::int8 AS bytes, \
     pg_size_pretty(pg_database_size(current_database())) AS size";

/// Largest tables and materialized views. Only the catalogs are left out: `coldquery` (our
/// audit log) takes real space, so it is shown.
const LARGEST_TABLES: &str = "SELECT n.nspname::text AS schema, c.relname::text AS name, \
     CASE c.relkind WHEN 'm' THEN 'materialized_view' ELSE 'table' END AS kind, \
     pg_total_relation_size(c.oid)::int8 AS total_bytes, pg_relation_size(c.oid)::int8 AS table_bytes, \
     pg_indexes_size(c.oid)::int8 AS indexes_bytes, \
     (CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) ELSE 0 END)::int8 AS toast_bytes, \
     pg_size_pretty(pg_total_relation_size(c.oid)) AS total_size, \
     CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS row_estimate \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' \
     ORDER BY pg_total_relation_size(c.oid) DESC, 1, 2 LIMIT $1::int8";

async fn size(state: &AppState, caller: &Caller, args: &MonitorArgs) -> Result<Value, ToolError> {
    let limits = limits_for(state, None)?;
    let (limit, _) = page(args.limit, None, 20, 100)?;
    let mut cat = Catalog::new(&limits);
    let ((db, tables), _) = monitor_scope(state, caller, None, &limits, async |c| {
        let db = cat.one(c, DATABASE_SIZE, &[]).await?.unwrap_or_default();
        let tables = cat.rows(c, LARGEST_TABLES, &[json!(limit)]).await?;
        Ok((db, tables))
    })
    .await?;
    Ok(json!({
        "database": db["database"],
        "database_size_bytes": db["bytes"],
        "database_size": db["size"],
        "largest_tables": tables,
        "note": "table_bytes is the main data; toast_bytes holds large values; total_bytes adds \
                 indexes and the free-space and visibility maps",
    }))
}

// ---------------------------------------------------------------------------------------
// slow_queries
// ---------------------------------------------------------------------------------------

const STATEMENTS_EXTENSION: &str = "SELECT n.nspname::text AS schema, e.extversion AS version, \
     current_setting('server_version_num')::int4 AS server_version_num \
     FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
     WHERE e.extname = 'pg_stat_statements'";

const NOT_INSTALLED: &str = "pg_stat_statements is not installed in this database, so there is \
     no query history to rank. To enable it: add pg_stat_statements to shared_preload_libraries \
     in postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements \
     (pg_schema create with autocommit: true). Meanwhile, pg_monitor activity shows the queries \
     running now, and pg_query explain with analyze: true times one query.";

const NOT_LOADED: &str = "the pg_stat_statements extension exists in this database, but the \
     library is not loaded: add pg_stat_statements to shared_preload_libraries in \
     postgresql.conf and restart PostgreSQL. Meanwhile, pg_monitor activity shows the queries \
     running now.";

/// Build the pg_stat_statements query: the schema comes from pg_extension (quoted), the
/// ordering from a fixed list; the limit is bound.
fn slow_queries_sql(schema: &str, order_by: MonitorOrder, server_version_num: i64) -> String {
    // PostgreSQL 13 renamed *_time to *_exec_time.
    let t = if server_version_num >= 130_000 {
        "exec_time"
    } else {
        "time"
    };
    let order = match order_by {
        MonitorOrder::TotalTime => format!("s.total_{t}"),
        MonitorOrder::Calls => "s.calls".to_owned(),
        MonitorOrder::MeanTime => format!("s.mean_{t}"),
    };
    format!(
        "SELECT s.queryid::text AS query_id, left(s.query, 1000) AS query, s.calls::int8 AS calls, \
         round(s.total_{t}::numeric, 3)::float8 AS total_ms, round(s.mean_{t}::numeric, 3)::float8 AS mean_ms, \
         round(s.max_{t}::numeric, 3)::float8 AS max_ms, round(s.stddev_{t}::numeric, 3)::float8 AS stddev_ms, \
         s.rows::int8 AS rows, s.shared_blks_hit::int8 AS shared_blocks_hit, s.shared_blks_read::int8 AS shared_blocks_read, \
         CASE WHEN s.shared_blks_hit + s.shared_blks_read > 0 \
              THEN round(s.shared_blks_hit::numeric / (s.shared_blks_hit + s.shared_blks_read), 4)::float8 END AS cache_hit_ratio \
         FROM {}.pg_stat_statements s \
         WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY {order} DESC NULLS LAST LIMIT $1::int8",
        quote_ident(schema)
    )
}

async fn slow_queries(
    state: &AppState,
    caller: &Caller,
    args: &MonitorArgs,
) -> Result<Value, ToolError> {
    let order_by = match &args.order_by {
        Some(o) => o.known()?,
        None => MonitorOrder::MeanTime,
    };
    let limits = limits_for(state, None)?;
    let (limit, _) = page(args.limit, None, 20, 100)?;
    let mut cat = Catalog::new(&limits);
    let (rows, _) = monitor_scope(state, caller, None, &limits, async |c| {
        let Some(ext) = cat.one(c, STATEMENTS_EXTENSION, &[]).await? else {
            return Err(ToolError::Unavailable(NOT_INSTALLED.into()));
        };
        let sql = slow_queries_sql(
            ext["schema"].as_str().unwrap_or("public"),
            order_by,
            ext["server_version_num"].as_i64().unwrap_or(0),
        );
        cat.rows_built(c, sql, &[json!(limit)])
            .await
            .map_err(|e| match e.sqlstate() {
                // object_not_in_prerequisite_state: "must be loaded via shared_preload_libraries"
                Some("55000") => ToolError::Unavailable(NOT_LOADED.into()),
                _ => e,
            })
    })
    .await?;
    Ok(json!({
        "order_by": order_by.name(),
        "queries": rows,
        "truncated": cat.truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_query_sql_quotes_the_schema_and_picks_the_column_names_by_version() {
        let s = slow_queries_sql("my\"ext", MonitorOrder::TotalTime, 150_000);
        assert!(s.contains("FROM \"my\"\"ext\".pg_stat_statements"), "{s}");
        assert!(s.contains("ORDER BY s.total_exec_time DESC"), "{s}");
        let old = slow_queries_sql("public", MonitorOrder::MeanTime, 120_000);
        assert!(old.contains("ORDER BY s.mean_time DESC"), "{old}");
        assert!(
            slow_queries_sql("public", MonitorOrder::Calls, 160_000)
                .contains("ORDER BY s.calls DESC")
        );
    }
}
