//! `pg_schema create`/`alter`/`drop`: one DDL statement, gated by policy, run through
//! [`crate::db::run`] in a session (under a savepoint for a dry run), on a pooled transaction
//! (committed or, for a dry run, rolled back), or in autocommit for `CONCURRENTLY`.

use serde_json::{Value, json};

use super::SchemaArgs;
use crate::caller::Caller;
use crate::db::executor::{Limits, RowMode, StatementRef, run_statement};
use crate::db::run::{self, End, Pooled, in_transaction, under_savepoint};
use crate::error::ToolError;
use crate::mcp::common::{limits_for, parse};
use crate::mcp::support::ms;
use crate::safety::classify::{self, DdlKind};
use crate::state::AppState;

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

pub(super) async fn ddl(
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
    let st = &StatementRef::from(&parsed);
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
                run_statement(c, sql, st, &[], &limits, RowMode::Write).await
            })
            .await?;
        } else {
            // PostgreSQL aborting the transaction marks the session failed, and commit will
            // say it rolled back.
            in_transaction(&mut g, &limits, async |c, limits| {
                run_statement(c, sql, st, &[], limits, RowMode::Write).await
            })
            .await?;
        }
        let mut out = ddl_result(&parsed, dry_run, false, started);
        out["session"] = g.view().into();
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
        run::autocommit(
            &state.pools,
            caller.role(),
            parsed.sql().to_owned(),
            &limits,
        )
        .await?;
        return Ok(ddl_result(&parsed, false, true, started));
    }
    let shape = Pooled {
        read_only: false,
        end: End::commit_if(plan.commit),
        close_connection: plan.close_connection,
    };
    let ((), committed) = run::retry_stale(&limits, |limits: Limits| async move {
        let limits = &limits;
        run::pooled(&state.pools, caller.role(), shape, limits, async |c| {
            run_statement(c, sql, st, &[], limits, RowMode::Write)
                .await
                .map(drop)
        })
        .await
    })
    .await?;
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

    #[test]
    fn concurrently_is_detected_for_create_and_drop_index() {
        assert!(needs_autocommit("CREATE INDEX CONCURRENTLY i ON t (a)"));
        assert!(needs_autocommit("DROP INDEX CONCURRENTLY i"));
        assert!(!needs_autocommit("CREATE INDEX i ON t (a)"));
        assert!(!needs_autocommit("DROP TABLE t"));
    }
}
