//! `pg_admin settings`: show one setting, list them, or set one for a pg_tx session. Setting
//! is limited to an allowlist, and a value that would weaken the server's guards (read-only
//! transactions, the role, its time limits) is refused.

use serde_json::{Value, json};

use crate::caller::Caller;
use crate::db::executor::Limits;
use crate::db::run::under_savepoint;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, read_scope};
use crate::mcp::common::limits_for;
use crate::mcp::support::{ms, page, paged};
use crate::state::AppState;

use super::AdminArgs;

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

pub(super) async fn settings(
    state: &AppState,
    caller: &Caller,
    args: &AdminArgs,
) -> Result<Value, ToolError> {
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
}
