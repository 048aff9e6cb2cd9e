//! The `pg_admin` tool: maintenance (`vacuum`, `analyze`, `reindex`) on a table or the whole
//! database behind default-deny, per-table statistics (`stats`), and server settings
//! (`settings`: show, list, or set for one pg_tx session with the server's guards kept).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::AutocommitConn;
use crate::db::executor::Limits;
use crate::error::ToolError;
use crate::http::caller::Caller;
use crate::mcp::catalog::{
    Catalog, QualifiedName, Relation, read_scope, relkind_name, resolve_relation,
};
use crate::mcp::query::{limits_for, truncate_for_message, under_savepoint};
use crate::mcp::support::{ms, page, paged};
use crate::safety::classify;
use crate::safety::ident::quote_ident;
use crate::state::AppState;

/// Arguments of `pg_admin`. Unknown fields are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminArgs {
    /// One of [`ACTIONS`].
    pub action: String,
    /// vacuum/analyze/reindex/stats: the table (`schema.table`, `app."Order"`); none = database.
    pub table: Option<String>,
    /// vacuum: VACUUM FULL (rewrites the table under an exclusive lock).
    pub full: Option<bool>,
    /// vacuum/analyze/reindex: VERBOSE.
    pub verbose: Option<bool>,
    /// reindex: REINDEX … CONCURRENTLY (no session).
    pub concurrently: Option<bool>,
    /// vacuum/analyze/reindex: required to run without a session.
    pub autocommit: Option<bool>,
    /// analyze/reindex/settings: a pg_tx handle.
    pub session_id: Option<String>,
    /// settings: one setting's name.
    pub setting_name: Option<String>,
    /// settings: a value to set for the session (string, number or boolean).
    pub setting_value: Option<Value>,
    /// settings: list filter on the category (case-insensitive substring).
    pub category: Option<String>,
    /// settings: list filter, a LIKE pattern on the name.
    pub pattern: Option<String>,
    /// stats/settings: page size.
    pub limit: Option<u64>,
    /// settings: rows to skip.
    pub offset: Option<u64>,
}

/// The actions, for the schema and error messages.
pub const ACTIONS: &[&str] = &["vacuum", "analyze", "reindex", "stats", "settings"];

/// Run one `pg_admin` call.
pub async fn call(state: &AppState, caller: &Caller, args: AdminArgs) -> Result<Value, ToolError> {
    match args.action.as_str() {
        "vacuum" | "analyze" | "reindex" => maintenance(state, caller, &args).await,
        "stats" => stats(state, caller, &args).await,
        "settings" => settings(state, caller, &args).await,
        other => Err(ToolError::InvalidInput(format!(
            "unknown action {:?} for pg_admin; use one of: {}",
            truncate_for_message(other),
            ACTIONS.join(", ")
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// vacuum / analyze / reindex
// ---------------------------------------------------------------------------------------

/// What a maintenance statement acts on.
enum Target {
    Database(String),
    Relation(Relation),
}

/// Build the statement. Only keywords and names read back from the catalogs (quoted) go in.
fn maintenance_sql(action: &str, args: &AdminArgs, target: &Target) -> Result<String, ToolError> {
    let mut options = Vec::new();
    if args.full.unwrap_or(false) {
        options.push("FULL");
    }
    if args.verbose.unwrap_or(false) {
        options.push("VERBOSE");
    }
    let options = if options.is_empty() {
        String::new()
    } else {
        format!(" ({})", options.join(", "))
    };
    let concurrently = if args.concurrently.unwrap_or(false) {
        " CONCURRENTLY"
    } else {
        ""
    };
    let sql = match (action, target) {
        ("vacuum", Target::Database(_)) => format!("VACUUM{options}"),
        ("analyze", Target::Database(_)) => format!("ANALYZE{options}"),
        ("reindex", Target::Database(db)) => {
            format!(
                "REINDEX{options} DATABASE{concurrently} {}",
                quote_ident(db)
            )
        }
        ("vacuum" | "analyze", Target::Relation(r)) => {
            let ok = matches!(r.relkind.as_str(), "r" | "p" | "m")
                || (action == "analyze" && r.relkind == "f");
            if !ok {
                return Err(ToolError::InvalidInput(format!(
                    "{} is a {}; {} works on tables and materialized views",
                    r.shown(),
                    relkind_name(&r.relkind).replace('_', " "),
                    action.to_uppercase()
                )));
            }
            format!("{}{options} {}", action.to_uppercase(), r.quoted())
        }
        ("reindex", Target::Relation(r)) => {
            let what = match r.relkind.as_str() {
                "r" | "p" | "m" | "t" => "TABLE",
                "i" | "I" => "INDEX",
                _ => {
                    return Err(ToolError::InvalidInput(format!(
                        "{} is a {}; REINDEX works on tables, materialized views and indexes",
                        r.shown(),
                        relkind_name(&r.relkind).replace('_', " ")
                    )));
                }
            };
            format!("REINDEX{options} {what}{concurrently} {}", r.quoted())
        }
        _ => unreachable!("maintenance actions are checked by the caller"),
    };
    // Defence in depth: what we built must parse as exactly one maintenance statement.
    let parsed = classify::parse_one(&sql)
        .map_err(|e| ToolError::InvalidInput(format!("could not build the statement: {e}")))?;
    classify::check_admin(&parsed)
        .map_err(|r| ToolError::InvalidInput(format!("could not build the statement: {r}")))?;
    Ok(sql)
}

const CURRENT_DATABASE: &str = "SELECT current_database()::text AS name";

/// What `table_stats` shows after a maintenance run (and `stats` for one table). A
/// partitioned table's own row holds only zeros; its leaf partitions are shown instead.
const TABLE_STATS: &str = "SELECT s.schemaname::text AS schema, s.relname::text AS table, \
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

/// What VERBOSE output becomes: PostgreSQL sends it as INFO notices, which the driver does
/// not hand to us.
const VERBOSE_NOTE: &str = "VERBOSE output is sent by PostgreSQL as INFO messages, which this \
     server's database driver does not capture; it is written to the PostgreSQL server log only \
     when log_min_messages is info or lower. For a table, its statistics after the run are in \
     table_stats (pg_admin stats shows them at any time).";

async fn maintenance(
    state: &AppState,
    caller: &Caller,
    args: &AdminArgs,
) -> Result<Value, ToolError> {
    let action = args.action.as_str();
    if args.full.is_some() && action != "vacuum" {
        return Err(ToolError::InvalidInput(
            "full applies to vacuum only (VACUUM FULL)".into(),
        ));
    }
    if args.concurrently.is_some() && action != "reindex" {
        return Err(ToolError::InvalidInput(
            "concurrently applies to reindex only (REINDEX … CONCURRENTLY)".into(),
        ));
    }
    let name = args
        .table
        .as_deref()
        .map(|t| QualifiedName::parse("table", t))
        .transpose()?;
    let limits = limits_for(state, None)?;
    let concurrently = args.concurrently.unwrap_or(false);
    let started = std::time::Instant::now();

    if let Some(id) = args.session_id.as_deref() {
        if action == "vacuum" {
            return Err(ToolError::InvalidInput(
                "VACUUM cannot run inside a transaction block, so not in a pg_tx session: call \
                 pg_admin vacuum without session_id and with autocommit: true"
                    .into(),
            ));
        }
        if action == "reindex" && (concurrently || name.is_none()) {
            return Err(ToolError::InvalidInput(
                "REINDEX … CONCURRENTLY and REINDEX DATABASE cannot run inside a transaction \
                 block, so not in a pg_tx session: call pg_admin reindex without session_id and \
                 with autocommit: true (plain REINDEX of one table may run in a session)"
                    .into(),
            ));
        }
        let mut g = state.sessions.acquire(&caller.owner, id).await?;
        let mut cat = Catalog::new(&limits);
        // Under a savepoint that is kept on success: a failing ANALYZE/REINDEX rolls back to
        // it, so the session's earlier work survives and the transaction stays usable.
        let (target, sql, table_stats) = under_savepoint(&mut g, false, true, async |c| {
            let target = match &name {
                Some(n) => Target::Relation(find_table(c, &mut cat, n).await?),
                None => Target::Database(String::new()),
            };
            let sql = maintenance_sql(action, args, &target)?;
            crate::db::executor::simple_owned(c, sql.clone())
                .await
                .map_err(|e| ToolError::from_sqlx(e, 0))?;
            let stats = match &target {
                Target::Relation(r) => cat.rows(c, TABLE_STATS, &[json!(r.oid)]).await?,
                Target::Database(_) => Vec::new(),
            };
            Ok((target, sql, stats))
        })
        .await?;
        let mut out = maintenance_result(action, args, &target, &sql, table_stats, started);
        out["session"] = g.view();
        out["hint"] = json!(
            "ran inside the session's transaction; pg_tx commit keeps its effect (statistics, \
             rebuilt indexes), rollback undoes it"
        );
        return Ok(out);
    }

    if !args.autocommit.unwrap_or(false) {
        return Err(ToolError::PolicyDenied(format!(
            "pg_admin {action} is default-deny: add autocommit: true to run it now (it runs on \
             its own, outside any transaction, and cannot be rolled back){}",
            if action == "vacuum" {
                ""
            } else {
                ", or pass a session_id from pg_tx begin"
            }
        )));
    }
    // Resolve the name read-only first; the statement itself then runs in autocommit mode,
    // as VACUUM and REINDEX DATABASE/CONCURRENTLY require.
    let mut cat = Catalog::new(&limits);
    let (target, _) = read_scope(state, caller, None, &limits, async |c| {
        Ok(match &name {
            Some(n) => Target::Relation(find_table(c, &mut cat, n).await?),
            None => {
                let db = cat.one(c, CURRENT_DATABASE, &[]).await?.unwrap_or_default();
                Target::Database(db["name"].as_str().unwrap_or_default().to_owned())
            }
        })
    })
    .await?;
    let sql = maintenance_sql(action, args, &target)?;
    AutocommitConn::acquire(&state.pools, caller.role(), &limits)
        .await?
        .run(sql.clone(), &limits)
        .await?;
    let table_stats = match &target {
        Target::Relation(r) => {
            let mut cat = Catalog::new(&limits);
            read_scope(state, caller, None, &limits, async |c| {
                cat.rows(c, TABLE_STATS, &[json!(r.oid)]).await
            })
            .await?
            .0
        }
        Target::Database(_) => Vec::new(),
    };
    Ok(maintenance_result(
        action,
        args,
        &target,
        &sql,
        table_stats,
        started,
    ))
}

/// Resolve a table argument, with a useful message when nothing matches.
async fn find_table(
    conn: &mut sqlx::PgConnection,
    cat: &mut Catalog,
    name: &QualifiedName,
) -> Result<Relation, ToolError> {
    resolve_relation(conn, cat, name).await?.ok_or_else(|| {
        ToolError::InvalidInput(format!(
            "no table named {}; pg_schema list shows the tables (qualify it as schema.table, and \
             double-quote mixed-case names: app.\"Order\")",
            name.shown()
        ))
    })
}

fn maintenance_result(
    action: &str,
    args: &AdminArgs,
    target: &Target,
    sql: &str,
    table_stats: Vec<Value>,
    started: std::time::Instant,
) -> Value {
    let mut out = json!({
        "action": action,
        "statement": sql,
        "ok": true,
        "duration_ms": ms(started),
    });
    match target {
        Target::Relation(r) => {
            out["target"] = json!(r.shown());
            out["kind"] = json!(relkind_name(&r.relkind));
            out["table_stats"] = match table_stats.len() {
                1 => table_stats.into_iter().next().unwrap_or(Value::Null),
                _ => json!(table_stats),
            };
        }
        Target::Database(_) => out["target"] = json!("database"),
    }
    if args.verbose.unwrap_or(false) {
        out["verbose_output"] = json!(VERBOSE_NOTE);
    }
    out
}

// ---------------------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------------------

async fn stats(state: &AppState, caller: &Caller, args: &AdminArgs) -> Result<Value, ToolError> {
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

// ---------------------------------------------------------------------------------------
// settings
// ---------------------------------------------------------------------------------------

/// pg_settings is readable by everyone; `setting` is the value in `unit`.
const SETTING_ONE: &str = "SELECT name::text AS setting_name, setting AS value, unit, source, \
     short_desc AS description, extra_desc AS details, context, vartype AS type, category, \
     boot_val AS default, reset_val, min_val, max_val, enumvals AS allowed_values, pending_restart \
     FROM pg_settings WHERE name = $1::text";

/// A custom (`prefix.name`) setting has no pg_settings row until it is defined.
const CUSTOM_SETTING: &str = "SELECT current_setting($1::text, true) AS value";

const SETTINGS_LIST: &str = "SELECT name::text AS setting_name, setting AS value, unit, category, \
     short_desc AS description, context, source, count(*) OVER ()::int8 AS total_count \
     FROM pg_settings \
     WHERE ($1::text IS NULL OR category ILIKE '%' || $1::text || '%') \
     AND ($2::text IS NULL OR name LIKE $2::text) \
     ORDER BY category, name LIMIT $3::int8 OFFSET $4::int8";

const SET_CONFIG: &str = "SELECT set_config($1::text, $2::text, true) AS value";

/// Setting names: `name` or `prefix.name` (custom settings), lower case.
fn setting_name(raw: &str) -> Result<String, ToolError> {
    let name = raw.trim().to_ascii_lowercase();
    let part_ok = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    if name.len() > 63 || parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) {
        return Err(ToolError::InvalidInput(format!(
            "invalid setting_name {:?}: use a PostgreSQL setting name such as work_mem, or \
             prefix.name for a custom setting",
            raw.chars().take(60).collect::<String>()
        )));
    }
    Ok(name)
}

/// A duration setting's value in milliseconds: a plain number is in `unit_ms` units (1 for the
/// ms-based timeouts); units us, ms, s, min, h, d as PostgreSQL accepts them.
pub(crate) fn duration_ms(value: &str, unit_ms: f64) -> Option<f64> {
    let v = value.trim().trim_matches('\'').trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.trim().parse().ok()?;
    let factor = match unit.trim() {
        "" => unit_ms,
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some(n * factor)
}

/// Settings `pg_admin settings` may set in a session: per-session planner, memory, formatting
/// and timeout knobs that change how fast or how a result is computed and printed, never who
/// may see what. Left out on purpose: anything about security or roles (`row_security`,
/// `role`, `session_authorization`, `session_replication_role`), logging (`log_*`), how SQL is
/// lexed (`standard_conforming_strings`, `backslash_quote`, `escape_string_warning`), how names
/// resolve (`search_path`), developer and recovery switches (`allow_system_table_mods`,
/// `zero_damaged_pages`, `ignore_*`), and custom `prefix.name` settings (row-level security
/// policies often read them, e.g. a tenant id). The timeouts are further capped by [`guard`].
pub(crate) const SETTABLE: &[&str] = &[
    // Planner methods.
    "enable_async_append",
    "enable_bitmapscan",
    "enable_gathermerge",
    "enable_group_by_reordering",
    "enable_hashagg",
    "enable_hashjoin",
    "enable_incremental_sort",
    "enable_indexonlyscan",
    "enable_indexscan",
    "enable_material",
    "enable_memoize",
    "enable_mergejoin",
    "enable_nestloop",
    "enable_parallel_append",
    "enable_parallel_hash",
    "enable_partition_pruning",
    "enable_partitionwise_aggregate",
    "enable_partitionwise_join",
    "enable_presorted_aggregate",
    "enable_seqscan",
    "enable_sort",
    "enable_tidscan",
    // Planner costs and search.
    "seq_page_cost",
    "random_page_cost",
    "cpu_tuple_cost",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "min_parallel_table_scan_size",
    "min_parallel_index_scan_size",
    "effective_cache_size",
    "default_statistics_target",
    "constraint_exclusion",
    "cursor_tuple_fraction",
    "from_collapse_limit",
    "join_collapse_limit",
    "geqo",
    "geqo_threshold",
    "geqo_effort",
    "plan_cache_mode",
    "recursive_worktable_factor",
    "max_parallel_workers_per_gather",
    "parallel_leader_participation",
    "jit",
    "jit_above_cost",
    "jit_inline_above_cost",
    "jit_optimize_above_cost",
    // Memory.
    "work_mem",
    "hash_mem_multiplier",
    "maintenance_work_mem",
    "temp_buffers",
    // Formatting of values.
    "datestyle",
    "intervalstyle",
    "timezone",
    "extra_float_digits",
    "bytea_output",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "default_text_search_config",
    // Timeouts, up to the server's caps.
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
];

/// Refuse a setting that is not on [`SETTABLE`], naming it and some that are.
fn not_settable(name: &str) -> Option<ToolError> {
    (!SETTABLE.contains(&name)).then(|| {
        ToolError::PolicyDenied(format!(
            "{name} is not on the allowlist of settings pg_admin may set (it could change \
             security, logging, how SQL is read or how names resolve); allowlisted settings \
             include work_mem, random_page_cost, enable_seqscan and the other enable_* planner \
             switches, jit, DateStyle, TimeZone, extra_float_digits, and statement_timeout / \
             lock_timeout up to the server's limits (README: pg_admin settings)"
        ))
    })
}

/// Refuse a value that would weaken the server's guards. `None`: allowed.
fn guard(state: &AppState, name: &str, value: &str) -> Option<ToolError> {
    match name {
        "default_transaction_read_only" | "transaction_read_only" => {
            return Some(ToolError::PolicyDenied(format!(
                "{name} is managed by the server (read-only transactions keep reads safe); it \
                 cannot be set from a tool. pg_tx begin with read_only: true opens a read-only \
                 session"
            )));
        }
        "role" | "session_authorization" => {
            return Some(ToolError::PolicyDenied(format!(
                "{name} would switch the database role the server runs as; it is never accepted"
            )));
        }
        "session_replication_role" => {
            return Some(ToolError::PolicyDenied(
                "session_replication_role would turn off triggers and foreign-key checks for the \
                 session; it is not accepted"
                    .into(),
            ));
        }
        _ => {}
    }
    let cap = match name {
        "statement_timeout" => Some((
            state.config.statement_timeout,
            "COLDQUERY_STATEMENT_TIMEOUT",
        )),
        "lock_timeout" => Some((state.config.lock_timeout, "COLDQUERY_LOCK_TIMEOUT")),
        "idle_in_transaction_session_timeout" => Some((
            // What session connections start with: the idle TTL plus a minute.
            state.sessions.ttl() + std::time::Duration::from_secs(60),
            "COLDQUERY_SESSION_TTL + 60s",
        )),
        _ => None,
    };
    let (cap, source) = cap?;
    let cap_ms = cap.as_millis() as f64;
    match duration_ms(value, 1.0) {
        None => Some(ToolError::InvalidInput(format!(
            "{name} takes a duration such as 5s, 500ms or 2min (a plain number is milliseconds)"
        ))),
        // 0 turns the timeout off: that is above any cap.
        Some(v) if v <= 0.0 || v > cap_ms => Some(ToolError::PolicyDenied(format!(
            "{name} = {value} is above the server's limit of {} ms ({source}; 0 means no limit); \
             choose a value between 1ms and {} ms",
            cap_ms, cap_ms
        ))),
        Some(_) => None,
    }
}

fn value_text(v: &Value) -> Result<String, ToolError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "on" } else { "off" }.into()),
        _ => Err(ToolError::InvalidInput(
            "setting_value must be a string, number or boolean, e.g. \"64MB\"".into(),
        )),
    }
}

async fn settings(state: &AppState, caller: &Caller, args: &AdminArgs) -> Result<Value, ToolError> {
    let limits = limits_for(state, None)?;
    let started = std::time::Instant::now();
    let mut cat = Catalog::new(&limits);
    if let Some(value) = &args.setting_value {
        return set_setting(state, caller, args, value, &limits, started).await;
    }
    let session_id = args.session_id.as_deref();
    if let Some(raw) = args.setting_name.as_deref() {
        let name = setting_name(raw)?;
        let (row, session) = read_scope(state, caller, session_id, &limits, async |c| {
            match cat.one(c, SETTING_ONE, &[json!(name)]).await? {
                Some(r) => Ok(Some(r)),
                None if name.contains('.') => {
                    let v = cat.one(c, CUSTOM_SETTING, &[json!(name)]).await?;
                    Ok(v.filter(|v| !v["value"].is_null()).map(
                        |v| json!({"setting_name": name, "value": v["value"], "custom": true}),
                    ))
                }
                None => Ok(None),
            }
        })
        .await?;
        let mut out = row.ok_or_else(|| {
            ToolError::InvalidInput(format!(
                "unknown setting {name:?}; pg_admin settings with pattern (e.g. \"%mem%\") lists \
                 the settings"
            ))
        })?;
        if let Some(ctx) = out.get("context").and_then(Value::as_str) {
            out["settable_in_session"] = json!(matches!(ctx, "user" | "superuser"));
        }
        out["duration_ms"] = json!(ms(started));
        if let Some(s) = session {
            out["session"] = s;
        }
        return Ok(out);
    }
    let (limit, offset) = page(args.limit, args.offset, 200, 1000)?;
    let params = [
        args.category.as_ref().map_or(Value::Null, |c| json!(c)),
        args.pattern.as_ref().map_or(Value::Null, |p| json!(p)),
        json!(limit),
        json!(offset),
    ];
    let (rows, session) = read_scope(state, caller, session_id, &limits, async |c| {
        cat.rows(c, SETTINGS_LIST, &params).await
    })
    .await?;
    let mut out = paged(rows, limit, offset, cat.truncated);
    out["duration_ms"] = json!(ms(started));
    if let Some(s) = session {
        out["session"] = s;
    }
    Ok(out)
}

async fn set_setting(
    state: &AppState,
    caller: &Caller,
    args: &AdminArgs,
    value: &Value,
    limits: &Limits,
    started: std::time::Instant,
) -> Result<Value, ToolError> {
    let raw = args.setting_name.as_deref().ok_or_else(|| {
        ToolError::InvalidInput(
            "setting_value needs setting_name: the setting to change, e.g. work_mem".into(),
        )
    })?;
    let name = setting_name(raw)?;
    let value = value_text(value)?;
    let Some(id) = args.session_id.as_deref() else {
        return Err(ToolError::InvalidInput(
            "setting a value needs session_id: it is set for one pg_tx session (pg_tx begin) \
             and ends with it; pooled connections are shared, so settings are never changed \
             outside a session"
                .into(),
        ));
    };
    if let Some(refusal) = guard(state, &name, &value) {
        return Err(refusal);
    }
    let mut g = state.sessions.acquire(&caller.owner, id).await?;
    let mut cat = Catalog::new(limits);
    // Under a savepoint kept on success: set_config(…, true) lasts until the session's
    // transaction ends, and an invalid value rolls back to the savepoint instead of aborting
    // the session's transaction.
    let new_value = under_savepoint(&mut g, false, true, async |c| {
        let row = cat.one(c, SETTING_ONE, &[json!(name)]).await?;
        match row.as_ref().and_then(|r| r["context"].as_str()) {
            Some(
                ctx @ ("internal" | "postmaster" | "sighup" | "superuser-backend" | "backend"),
            ) => {
                return Err(ToolError::InvalidInput(format!(
                    "{name} cannot be set per session (its context is {ctx}: it is changed in the \
                     server configuration{}); pg_admin settings shows its value",
                    match ctx {
                        "postmaster" => " and needs a restart",
                        "sighup" => " and a reload",
                        _ => "",
                    }
                )));
            }
            Some(_) => {}
            None if name.contains('.') => {}
            None => {
                return Err(ToolError::InvalidInput(format!(
                    "unknown setting {name:?}; pg_admin settings with pattern lists them (custom \
                     settings are written prefix.name)"
                )));
            }
        }
        // After the context check, so that a setting that cannot change per session at all
        // says so (and why) rather than only "not allowlisted".
        if let Some(refusal) = not_settable(&name) {
            return Err(refusal);
        }
        let set = cat
            .one(c, SET_CONFIG, &[json!(name), json!(value)])
            .await?
            .unwrap_or_default();
        Ok(set["value"].clone())
    })
    .await?;
    Ok(json!({
        "setting_name": name,
        "value": new_value,
        "scope": "this session's transaction: it ends at pg_tx commit or rollback",
        "ok": true,
        "duration_ms": ms(started),
        "session": g.view(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_postgresql_units() {
        let cases = [
            ("500", Some(500.0)),
            ("500ms", Some(500.0)),
            ("5s", Some(5000.0)),
            ("5 s", Some(5000.0)),
            ("1.5s", Some(1500.0)),
            ("2min", Some(120_000.0)),
            ("1h", Some(3_600_000.0)),
            ("1d", Some(86_400_000.0)),
            ("250us", Some(0.25)),
            ("0", Some(0.0)),
            ("'10s'", Some(10_000.0)),
            ("5 parsecs", None),
            ("s", None),
            ("", None),
        ];
        for (v, want) in cases {
            assert_eq!(duration_ms(v, 1.0), want, "{v}");
        }
    }

    #[test]
    fn the_settings_allowlist_keeps_out_security_logging_and_lexing() {
        for refused in [
            "log_statement",
            "row_security",
            "allow_system_table_mods",
            "zero_damaged_pages",
            "search_path",
            "standard_conforming_strings",
            "backslash_quote",
            "escape_string_warning",
            "session_replication_role",
            "app.tenant_id",
        ] {
            let e = not_settable(refused).expect(refused);
            assert!(e.to_string().starts_with(refused), "{e}");
            assert!(e.to_string().contains("allowlisted settings include"));
        }
        for ok in [
            "work_mem",
            "enable_seqscan",
            "timezone",
            "statement_timeout",
        ] {
            assert!(not_settable(ok).is_none(), "{ok}");
        }
    }

    #[test]
    fn setting_names_are_validated_and_lower_cased() {
        assert_eq!(setting_name("Work_Mem").unwrap(), "work_mem");
        assert_eq!(setting_name("app.tenant_id").unwrap(), "app.tenant_id");
        for bad in ["", "a b", "x;drop", "a.b.c", "1x", "work-mem"] {
            assert!(setting_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statements_are_built_from_quoted_catalog_names() {
        let rel = Relation {
            oid: 1,
            schema: "app".into(),
            name: "Order".into(),
            relkind: "r".into(),
        };
        let args = |full, verbose, concurrently| AdminArgs {
            full,
            verbose,
            concurrently,
            ..AdminArgs::default()
        };
        let t = Target::Relation(rel.clone());
        assert_eq!(
            maintenance_sql("vacuum", &args(Some(true), Some(true), None), &t).unwrap(),
            "VACUUM (FULL, VERBOSE) \"app\".\"Order\""
        );
        assert_eq!(
            maintenance_sql("analyze", &args(None, None, None), &t).unwrap(),
            "ANALYZE \"app\".\"Order\""
        );
        assert_eq!(
            maintenance_sql("reindex", &args(None, None, Some(true)), &t).unwrap(),
            "REINDEX TABLE CONCURRENTLY \"app\".\"Order\""
        );
        let db = Target::Database("my\"db".into());
        assert_eq!(
            maintenance_sql("reindex", &args(None, None, None), &db).unwrap(),
            "REINDEX DATABASE \"my\"\"db\""
        );
        assert_eq!(
            maintenance_sql("vacuum", &args(None, None, None), &db).unwrap(),
            "VACUUM"
        );
        let view = Target::Relation(Relation {
            relkind: "v".into(),
            ..rel
        });
        assert!(maintenance_sql("vacuum", &args(None, None, None), &view).is_err());
    }
}
