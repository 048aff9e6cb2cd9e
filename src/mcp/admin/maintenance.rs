//! `pg_admin vacuum`/`analyze`/`reindex`: the statement built from keywords and catalog names
//! only (the keyword from the [`AdminAction`]), run in a session or in autocommit, and the
//! table's statistics after it.

use serde_json::{Value, json};

use crate::caller::Caller;
use crate::db::run::under_savepoint;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, QualifiedName, Relation, read_scope, relkind_name};
use crate::mcp::common::limits_for;
use crate::mcp::names::AdminAction;
use crate::mcp::support::ms;
use crate::safety::classify;
use crate::safety::ident::quote_ident;
use crate::state::AppState;

use super::stats::TABLE_STATS;
use super::{AdminArgs, find_table};

/// What a maintenance statement acts on.
enum Target {
    Database(String),
    Relation(Relation),
}

/// Build the statement. Only keywords and names read back from the catalogs (quoted) go in.
fn maintenance_sql(
    action: AdminAction,
    args: &AdminArgs,
    target: &Target,
) -> Result<String, ToolError> {
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
        (AdminAction::Vacuum, Target::Database(_)) => format!("VACUUM{options}"),
        (AdminAction::Analyze, Target::Database(_)) => format!("ANALYZE{options}"),
        (AdminAction::Reindex, Target::Database(db)) => {
            format!(
                "REINDEX{options} DATABASE{concurrently} {}",
                quote_ident(db)
            )
        }
        (AdminAction::Vacuum | AdminAction::Analyze, Target::Relation(r)) => {
            let ok = matches!(r.relkind.as_str(), "r" | "p" | "m")
                || (action == AdminAction::Analyze && r.relkind == "f");
            if !ok {
                return Err(ToolError::InvalidInput(format!(
                    "{} is a {}; {} works on tables and materialized views",
                    r.shown(),
                    relkind_name(&r.relkind).replace('_', " "),
                    action.name().to_uppercase()
                )));
            }
            format!("{}{options} {}", action.name().to_uppercase(), r.quoted())
        }
        (AdminAction::Reindex, Target::Relation(r)) => {
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
        (AdminAction::Stats | AdminAction::Settings, _) => {
            unreachable!("only maintenance actions are dispatched here")
        }
    };
    // Defence in depth: what we built must parse as exactly one maintenance statement.
    let parsed = classify::parse_one(&sql)
        .map_err(|e| ToolError::InvalidInput(format!("could not build the statement: {e}")))?;
    classify::check_admin(&parsed)
        .map_err(|r| ToolError::InvalidInput(format!("could not build the statement: {r}")))?;
    Ok(sql)
}

const CURRENT_DATABASE: &str = "SELECT current_database()::text AS name";

/// What VERBOSE output becomes: PostgreSQL sends it as INFO notices, which the driver does
/// not hand to us.
const VERBOSE_NOTE: &str = "VERBOSE output is sent by PostgreSQL as INFO messages, which this \
     server's database driver does not capture; it is written to the PostgreSQL server log only \
     when log_min_messages is info or lower. For a table, its statistics after the run are in \
     table_stats (pg_admin stats shows them at any time).";

pub(super) async fn maintenance(
    state: &AppState,
    caller: &Caller,
    action: AdminAction,
    args: &AdminArgs,
) -> Result<Value, ToolError> {
    if args.full.is_some() && action != AdminAction::Vacuum {
        return Err(ToolError::InvalidInput(
            "full applies to vacuum only (VACUUM FULL)".into(),
        ));
    }
    if args.concurrently.is_some() && action != AdminAction::Reindex {
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
        if action == AdminAction::Vacuum {
            return Err(ToolError::InvalidInput(
                "VACUUM cannot run inside a transaction block, so not in a pg_tx session: call \
                 pg_admin vacuum without session_id and with autocommit: true"
                    .into(),
            ));
        }
        if action == AdminAction::Reindex && (concurrently || name.is_none()) {
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
        out["session"] = g.view().into();
        out["hint"] = json!(
            "ran inside the session's transaction; pg_tx commit keeps its effect (statistics, \
             rebuilt indexes), rollback undoes it"
        );
        return Ok(out);
    }

    if !args.autocommit.unwrap_or(false) {
        return Err(ToolError::PolicyDenied(format!(
            "pg_admin {} is default-deny: add autocommit: true to run it now (it runs on \
             its own, outside any transaction, and cannot be rolled back){}",
            action.name(),
            if action == AdminAction::Vacuum {
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
    crate::db::run::autocommit(&state.pools, caller.role(), sql.clone(), &limits).await?;
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

fn maintenance_result(
    action: AdminAction,
    args: &AdminArgs,
    target: &Target,
    sql: &str,
    table_stats: Vec<Value>,
    started: std::time::Instant,
) -> Value {
    let mut out = json!({
        "action": action.name(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            maintenance_sql(AdminAction::Vacuum, &args(Some(true), Some(true), None), &t).unwrap(),
            "VACUUM (FULL, VERBOSE) \"app\".\"Order\""
        );
        assert_eq!(
            maintenance_sql(AdminAction::Analyze, &args(None, None, None), &t).unwrap(),
            "ANALYZE \"app\".\"Order\""
        );
        assert_eq!(
            maintenance_sql(AdminAction::Reindex, &args(None, None, Some(true)), &t).unwrap(),
            "REINDEX TABLE CONCURRENTLY \"app\".\"Order\""
        );
        let db = Target::Database("my\"db".into());
        assert_eq!(
            maintenance_sql(AdminAction::Reindex, &args(None, None, None), &db).unwrap(),
            "REINDEX DATABASE \"my\"\"db\""
        );
        assert_eq!(
            maintenance_sql(AdminAction::Vacuum, &args(None, None, None), &db).unwrap(),
            "VACUUM"
        );
        let view = Target::Relation(Relation {
            relkind: "v".into(),
            ..rel
        });
        assert!(maintenance_sql(AdminAction::Vacuum, &args(None, None, None), &view).is_err());
    }
}
