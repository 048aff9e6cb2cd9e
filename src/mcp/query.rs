//! The `pg_query` tool: `read`, `write`, `explain` and `transaction`, with default-deny for
//! writes, `dry_run`, bound `params` and `max_rows` (contract §2, §3). Each returns a typed
//! [`QueryResult`] (the structs are in [`crate::mcp::results`]). The arguments' JSON Schema is
//! derived from [`QueryArgs`] (see `tools.rs`).

use std::pin::Pin;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::db::executor::{Limits, RowMode, RowSet, StatementRef, Truncation, run_statement};
use crate::db::run::{self, End, Pooled, bounded};
use crate::db::run::{statement_under_savepoint, under_savepoint};
use crate::db::sessions::SessionGuard;
use crate::error::ToolError;
use crate::mcp::common::limits_with_ceiling;
use crate::mcp::common::parse;
use crate::mcp::gate::{authorize, authorize_operations};
use crate::mcp::names::{ActionArg, QueryAction};
use crate::mcp::results::{ExplainResult, PlanSummary, QueryResult, RowResult, TransactionResult};
use crate::safety::classify::{ExplainTarget, Parsed, StatementClass};
use crate::safety::policy::{Action, Authority};
use crate::state::AppState;

/// Arguments of `pg_query`. Unknown fields are refused so that a typo (`autocomit`) is reported
/// rather than silently ignored.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    /// One of [`QueryAction`].
    pub action: ActionArg<QueryAction>,
    /// One SQL statement.
    pub sql: Option<String>,
    /// Values bound to `$1…$n`.
    #[schemars(extend("x-description" = "values for $1…$n"))]
    pub params: Option<Vec<Value>>,
    /// A pg_tx handle.
    pub session_id: Option<String>,
    /// Run a write in its own committed transaction.
    pub autocommit: Option<bool>,
    /// Run and roll back.
    pub dry_run: Option<bool>,
    /// EXPLAIN ANALYZE.
    pub analyze: Option<bool>,
    /// Statements for `transaction`.
    pub operations: Option<Vec<Operation>>,
    /// Row cap for this call (clamped to the server's).
    pub max_rows: Option<u64>,
    /// `fetch` / `close_cursor`: a `next_cursor`.
    pub cursor: Option<String>,
    /// A `confirmation_required` error's token. `confirm::check` takes it out of the arguments
    /// before they are parsed, so it is never read here: it is declared for the schema.
    #[expect(
        dead_code,
        reason = "declared for the input schema; confirm::check consumes it"
    )]
    pub confirm: Option<String>,
    /// Lower the cost ceiling for this call (planner cost units); never raises it.
    pub max_cost: Option<f64>,
}

/// One statement of a `transaction`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// The statement.
    pub sql: String,
    /// Its parameters.
    #[serde(default)]
    pub params: Vec<Value>,
}

/// Run one `pg_query` call. Returns the structured result.
pub(crate) async fn call(
    state: &AppState,
    caller: &Caller,
    args: QueryArgs,
) -> Result<QueryResult, ToolError> {
    let limits = limits_with_ceiling(state, args.max_rows, args.max_cost)?;
    let action = args.action.known()?;
    // Each path is boxed at its own size, in a statement of its own (see `mcp::dispatch`):
    // inline, a point read would build and copy the state of the largest path, a
    // transaction's, and the compiler keeps an `.await` expression's temporaries across it.
    let run: Pin<Box<dyn Future<Output = Result<QueryResult, ToolError>> + Send + '_>> =
        // A cursor knows where it lives (its own connection or a session): no session_id needed.
        match action {
            QueryAction::Fetch => Box::pin(crate::mcp::cursor::fetch(state, caller, &args)),
            QueryAction::CloseCursor => Box::pin(crate::mcp::cursor::close(state, caller, &args)),
            _ if args.session_id.is_some() => {
                Box::pin(session_call(state, caller, action, &args, &limits))
            }
            QueryAction::Read => {
                Box::pin(async { read(state, caller, &args, &limits).await.map(Into::into) })
            }
            QueryAction::Write => {
                Box::pin(async { write(state, caller, &args, &limits).await.map(Into::into) })
            }
            QueryAction::Explain => Box::pin(async {
                explain(state, caller, &args, &limits)
                    .await
                    .map(QueryResult::Explain)
            }),
            QueryAction::Transaction => Box::pin(async {
                transaction(state, caller, &args, &limits)
                    .await
                    .map(QueryResult::Transaction)
            }),
        };
    run.await
}

/// A call in a pg_tx session: on the session's dedicated connection.
async fn session_call(
    state: &AppState,
    caller: &Caller,
    action: QueryAction,
    args: &QueryArgs,
    limits: &Limits,
) -> Result<QueryResult, ToolError> {
    let id = args
        .session_id
        .as_deref()
        .expect("session_call is only for calls with a session");
    // The connection's cached statements are kept: each shape below copes with a stale one.
    let mut g = state.sessions.acquire_cached(&caller.owner, id).await?;
    let out = bounded(&mut g, async |g| {
        in_session(state, caller, g, action, args, limits).await
    })
    .await?;
    Ok(out.in_session(g.view()))
}

fn require_sql(args: &QueryArgs) -> Result<&str, ToolError> {
    match args.sql.as_deref() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ToolError::InvalidInput(format!(
            "pg_query {} needs sql: one SQL statement",
            args.action
        ))),
    }
}

async fn read(
    state: &AppState,
    caller: &Caller,
    args: &QueryArgs,
    limits: &Limits,
) -> Result<RowResult, ToolError> {
    let sql = require_sql(args)?;
    let parsed = parse(sql)?;
    let plan = authorize(state, Action::Read, &parsed, authority(args, false)).await?;
    let st = &StatementRef::from(&parsed);
    let params = &args.params.clone().unwrap_or_default();
    // A caller with a role needs a transaction for its `SET LOCAL ROLE`: it takes the
    // BEGIN READ ONLY … ROLLBACK form below (the role rides in the BEGIN's round trip).
    let rows = if plan.one_statement && state.pools.fast_reads() && caller.role().is_none() {
        // One round trip: the connection is read-only and time-bounded from its start-up.
        run::one_shot_read(&state.pools, sql, st, params, limits).await?
    } else {
        // Reads are always rolled back: even a statement that slipped past the classifier
        // cannot leave anything behind (and the transaction is READ ONLY besides).
        let shape = Pooled {
            read_only: true,
            end: End::Discard,
            close_connection: false,
        };
        run::retry_stale(limits, |limits: Limits| async move {
            let limits = &limits;
            run::pooled(&state.pools, caller.role(), shape, limits, async |c| {
                run_statement(c, sql, st, params, limits, RowMode::Read).await
            })
            .await
        })
        .await?
        .0
    };
    // A truncated result continues as a cursor (next_cursor).
    Ok(crate::mcp::cursor::continue_pooled(state, caller, sql, st, params, limits, rows).await)
}

async fn write(
    state: &AppState,
    caller: &Caller,
    args: &QueryArgs,
    limits: &Limits,
) -> Result<RowResult, ToolError> {
    let sql = require_sql(args)?;
    let parsed = parse(sql)?;
    let plan = authorize(state, Action::Write, &parsed, authority(args, false)).await?;
    let dry_run = args.dry_run.unwrap_or(false);
    let st = &StatementRef::from(&parsed);
    let params = &args.params.clone().unwrap_or_default();
    let shape = Pooled {
        read_only: false,
        end: End::commit_if(plan.commit),
        close_connection: plan.close_connection,
    };
    let (rows, committed) = run::retry_stale(limits, |limits: Limits| async move {
        let limits = &limits;
        run::pooled(&state.pools, caller.role(), shape, limits, async |c| {
            run_statement(c, sql, st, params, limits, RowMode::Write).await
        })
        .await
    })
    .await?;
    let mut out = RowResult::new(rows, limits);
    if dry_run {
        out.dry_run = true;
        out.hint = Some(
            "dry run: the statement ran and was rolled back; nothing changed. Repeat with \
             autocommit: true (and without dry_run) to apply it"
                .into(),
        );
    }
    out.committed = Some(committed);
    Ok(out)
}

fn explain_statement(parsed: &Parsed, analyze: bool) -> StatementRef {
    let options = if analyze {
        "FORMAT JSON, ANALYZE, BUFFERS"
    } else {
        "FORMAT JSON"
    };
    StatementRef {
        body: format!("EXPLAIN ({options}) {}", parsed.sql()),
        command: "EXPLAIN".into(),
        plain_select: false,
        returning: false,
        plannable: false,
        bound: None,
    }
}

/// Most bytes of plan JSON an `explain` result carries: the plan travels twice (structured
/// and as text, escaped), and both must fit in the 1 MiB message with the summary.
pub(crate) const EXPLAIN_PLAN_BYTES: usize = 384 * 1024;

/// The limits an EXPLAIN runs with: one row, and the plan's own byte budget.
fn explain_limits(limits: &Limits) -> Limits {
    Limits {
        max_rows: 1,
        max_bytes: EXPLAIN_PLAN_BYTES,
        ..*limits
    }
}

fn explain_result(
    rows: RowSet,
    analyze: bool,
    rolled_back: bool,
) -> Result<ExplainResult, ToolError> {
    // A plan is one JSON value: cut, it would be neither JSON nor a plan. Say so truthfully.
    match rows.truncated {
        Some(Truncation::Value { whole_bytes, .. }) => {
            return Err(ToolError::LimitExceeded(format!(
                "the EXPLAIN plan is {whole_bytes} bytes of JSON, more than the {EXPLAIN_PLAN_BYTES} \
                 bytes a result may carry; explain a smaller part of the statement (one CTE, \
                 subquery or UNION arm at a time)"
            )));
        }
        Some(Truncation::Bytes) => {
            return Err(ToolError::LimitExceeded(format!(
                "the EXPLAIN plan is larger than the {EXPLAIN_PLAN_BYTES} bytes a result may \
                 carry; explain a smaller part of the statement (one CTE, subquery or UNION arm \
                 at a time)"
            )));
        }
        _ => {}
    }
    let plan = rows
        .rows
        .first()
        .and_then(|r| r.first())
        .cloned()
        .ok_or_else(|| ToolError::Unavailable("EXPLAIN returned no plan; retry".into()))?;
    let plan = match plan {
        // Should the json column ever come back as text, normalise it to a JSON value.
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        v => v,
    };
    Ok(ExplainResult {
        summary: PlanSummary::of(&plan, analyze),
        plan,
        analyzed: analyze,
        rolled_back,
        duration_ms: rows.duration_ms,
        session: None,
    })
}

async fn explain(
    state: &AppState,
    caller: &Caller,
    args: &QueryArgs,
    limits: &Limits,
) -> Result<ExplainResult, ToolError> {
    let sql = require_sql(args)?;
    let parsed = parse(sql)?;
    let analyze = args.analyze.unwrap_or(false);
    let plan = authorize(
        state,
        Action::Explain { analyze },
        &parsed,
        authority(args, false),
    )
    .await?;
    let target = plan.explain.unwrap_or(ExplainTarget::Write);
    let st = &explain_statement(&parsed, analyze);
    let params = &args.params.clone().unwrap_or_default();
    // Without ANALYZE nothing executes; with ANALYZE a write really runs, so it gets a
    // read-write transaction that is always rolled back. Reads stay READ ONLY either way.
    let shape = Pooled {
        read_only: plan.read_only,
        end: End::Discard,
        close_connection: false,
    };
    // Retried after a stale cached plan like every pooled call (nothing ran the first time).
    let (rows, _) = run::retry_stale(limits, |limits: Limits| async move {
        let one = explain_limits(&limits);
        run::pooled(&state.pools, caller.role(), shape, &limits, async |c| {
            run_statement(c, sql, st, params, &one, RowMode::Verbatim).await
        })
        .await
    })
    .await?;
    Ok(
        explain_result(rows, analyze, analyze && target == ExplainTarget::Write)?
            .with_ceiling(&limits.ceiling),
    )
}

/// Validate `operations`, then parse each and ask the policy before anything runs (a refusal
/// costs nothing). Returns the operations, their parses, and the plan.
async fn prepare_operations<'a>(
    state: &AppState,
    args: &'a QueryArgs,
    session: bool,
) -> Result<(&'a [Operation], Vec<Parsed>, crate::safety::policy::Plan), ToolError> {
    let ops = match args.operations.as_deref() {
        Some(ops) if !ops.is_empty() => ops,
        _ => {
            return Err(ToolError::InvalidInput(
                "pg_query transaction needs operations: a non-empty array of {sql, params}".into(),
            ));
        }
    };
    if args.sql.is_some() {
        return Err(ToolError::InvalidInput(
            "pg_query transaction takes operations, not sql; put each statement in operations[i].sql"
                .into(),
        ));
    }
    let mut parsed = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        parsed.push(parse(&op.sql).map_err(|e| e.at_operation(i))?);
    }
    let plan = authorize_operations(state, &parsed, authority(args, session)).await?;
    Ok((ops, parsed, plan))
}

/// The caller's authority, from the arguments of this call.
fn authority(args: &QueryArgs, session: bool) -> Authority {
    Authority {
        dry_run: args.dry_run.unwrap_or(false),
        autocommit: args.autocommit.unwrap_or(false),
        session,
    }
}

/// Run the operations in order on `conn`; stop at the first failure and return its index.
async fn run_operations(
    conn: &mut sqlx::PgConnection,
    ops: &[Operation],
    parsed: &[Parsed],
    limits: &Limits,
) -> Result<Vec<RowResult>, (usize, ToolError)> {
    let mut results = Vec::with_capacity(ops.len());
    // One byte budget for the whole result, so many operations cannot add up past 1 MiB.
    let mut budget = limits.max_bytes;
    for (i, (op, p)) in ops.iter().zip(parsed).enumerate() {
        let st = StatementRef::from(p);
        let mode = if p.class() == StatementClass::Read {
            RowMode::Read
        } else {
            RowMode::Write
        };
        let op_limits = Limits {
            max_bytes: budget.max(1),
            ..*limits
        };
        let rows = run_statement(conn, &op.sql, &st, &op.params, &op_limits, mode)
            .await
            .map_err(|e| (i, e))?;
        budget =
            budget.saturating_sub(serde_json::to_vec(&rows.rows).map(|b| b.len()).unwrap_or(0));
        results.push(RowResult::new(rows, &op_limits));
    }
    Ok(results)
}

async fn transaction(
    state: &AppState,
    caller: &Caller,
    args: &QueryArgs,
    limits: &Limits,
) -> Result<TransactionResult, ToolError> {
    let (ops, parsed, plan) = prepare_operations(state, args, false).await?;
    let dry_run = args.dry_run.unwrap_or(false);
    let parsed = &parsed;
    let shape = Pooled {
        read_only: plan.read_only,
        end: End::commit_if(plan.commit),
        close_connection: plan.close_connection,
    };
    let (results, committed) = run::retry_stale(limits, |limits: Limits| async move {
        let limits = &limits;
        run::pooled(&state.pools, caller.role(), shape, limits, async |c| {
            run_operations(c, ops, parsed, limits)
                .await
                .map_err(|(i, e)| e.at_operation(i))
        })
        .await
    })
    .await?;
    Ok(TransactionResult {
        committed,
        applied_to_session: None,
        results,
        dry_run,
        session: None,
    })
}

/// pg_query inside a pg_tx session.
async fn in_session(
    state: &AppState,
    caller: &Caller,
    g: &mut SessionGuard,
    action: QueryAction,
    args: &QueryArgs,
    limits: &Limits,
) -> Result<QueryResult, ToolError> {
    let params = args.params.clone().unwrap_or_default();
    match action {
        QueryAction::Read => {
            let sql = require_sql(args)?;
            let parsed = parse(sql)?;
            authorize(state, Action::Read, &parsed, authority(args, true)).await?;
            let st = StatementRef::from(&parsed);
            // Under a read-only savepoint that is rolled back: the session's earlier work stays
            // visible, the read cannot write, and a failing read does not poison the transaction.
            let rows = statement_under_savepoint(g, true, sql, &st, &params, limits, RowMode::Read)
                .await?;
            crate::mcp::cursor::continue_in_session(
                state,
                caller,
                g,
                crate::mcp::cursor::ReadCall {
                    sql,
                    st: &st,
                    params: &params,
                },
                limits,
                rows,
            )
            .await
            .map(Into::into)
        }
        QueryAction::Write => {
            let sql = require_sql(args)?;
            let parsed = parse(sql)?;
            authorize(state, Action::Write, &parsed, authority(args, true)).await?;
            let st = StatementRef::from(&parsed);
            if args.dry_run.unwrap_or(false) {
                let rows =
                    statement_under_savepoint(g, false, sql, &st, &params, limits, RowMode::Write)
                        .await?;
                let mut out = RowResult::new(rows, limits);
                out.dry_run = true;
                return Ok(out.into());
            }
            // Applied to the session's transaction; a failure there marks it failed (commit
            // will say it rolled back).
            let rows = run::in_transaction(g, limits, async |c, limits| {
                run_statement(c, sql, &st, &params, limits, RowMode::Write).await
            })
            .await?;
            Ok(RowResult::new(rows, limits).into())
        }
        QueryAction::Explain => {
            let sql = require_sql(args)?;
            let parsed = parse(sql)?;
            let analyze = args.analyze.unwrap_or(false);
            let plan = authorize(
                state,
                Action::Explain { analyze },
                &parsed,
                authority(args, true),
            )
            .await?;
            let target = plan.explain.unwrap_or(ExplainTarget::Write);
            let st = explain_statement(&parsed, analyze);
            let read_only = plan.read_only;
            let one = explain_limits(limits);
            let rows =
                statement_under_savepoint(g, read_only, sql, &st, &params, &one, RowMode::Verbatim)
                    .await?;
            let out = explain_result(rows, analyze, analyze && target == ExplainTarget::Write)?;
            Ok(QueryResult::Explain(out.with_ceiling(&limits.ceiling)))
        }
        QueryAction::Fetch | QueryAction::CloseCursor => {
            unreachable!("cursor actions return before a session is acquired")
        }
        QueryAction::Transaction => {
            let (ops, parsed, _) = prepare_operations(state, args, true).await?;
            let dry_run = args.dry_run.unwrap_or(false);
            // Prepared against the catalog as it is now: operations applied to the session
            // could not be retried after a stale cached plan.
            g.fresh_statements().await?;
            // The operations are atomic inside the session too: a failure rolls back to the
            // savepoint, so the session keeps its earlier work and stays usable.
            let results = under_savepoint(g, false, !dry_run, async |c| {
                run_operations(c, ops, &parsed, limits)
                    .await
                    .map_err(|(i, e)| e.at_operation(i))
            })
            .await?;
            Ok(QueryResult::Transaction(TransactionResult {
                committed: false,
                applied_to_session: Some(!dry_run),
                results,
                dry_run,
                session: None,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_value::<QueryArgs>(json!({"action": "write", "autocomit": true}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("autocomit"), "{e}");
    }
}
