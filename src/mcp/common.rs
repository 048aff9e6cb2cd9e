//! Helpers every tool module shares, so that no tool imports another for them: the limits of a
//! call ([`limits_with_ceiling`], [`limits_for`]), parsing and refusals as tool errors
//! ([`parse`], [`refused`]), and [`truncate_for_message`] for echoing caller text in errors.
//! (The contract §3 row result is [`crate::mcp::results::RowResult`].)

use crate::db::cost::Ceiling;
use crate::db::executor::Limits;
use crate::error::ToolError;
use crate::safety::classify::{self, Parsed};
use crate::state::AppState;

/// At most 64 characters of caller text, for an error message.
pub(crate) fn truncate_for_message(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The limits of ColdQuery's own queries (catalog, monitoring, resources): no cost ceiling,
/// which prices callers' statements only.
pub(crate) fn limits_for(state: &AppState, max_rows: Option<u64>) -> Result<Limits, ToolError> {
    Ok(Limits {
        ceiling: Ceiling::default(),
        ..limits_with_ceiling(state, max_rows, None)?
    })
}

/// The call's limits, with the server's cost ceiling lowered by the call's `max_cost`.
pub(crate) fn limits_with_ceiling(
    state: &AppState,
    max_rows: Option<u64>,
    max_cost: Option<f64>,
) -> Result<Limits, ToolError> {
    let cap = state.config.max_rows;
    let rows = match max_rows {
        Some(0) => {
            return Err(ToolError::InvalidInput(
                "max_rows must be at least 1 (omit it for the server default)".into(),
            ));
        }
        Some(n) => n.min(cap),
        None => cap,
    };
    Ok(Limits {
        max_rows: rows as usize,
        max_bytes: state.config.max_result_bytes,
        statement_timeout: state.config.statement_timeout,
        lock_timeout: state.config.lock_timeout,
        fresh_statements: false,
        uncached: false,
        ceiling: Ceiling::for_call(
            state.config.max_query_cost,
            state.config.max_estimated_rows,
            max_cost,
        )?,
    })
}

/// Parse and classify, turning parser errors into `invalid_input` with a position.
pub(crate) fn parse(sql: &str) -> Result<Parsed, ToolError> {
    crate::safety::shapes::parse_shared(sql).map_err(|e| match e {
        // Several statements is a rule of ours, not a mistake in the SQL.
        classify::ClassifyError::MultipleStatements { .. } => {
            ToolError::PolicyDenied(e.to_string())
        }
        // Valid SQL, but past what this server can inspect: a limit, not a mistake.
        classify::ClassifyError::TooDeep => ToolError::LimitExceeded(e.to_string()),
        _ => ToolError::InvalidInput(e.to_string()),
    })
}

pub(crate) fn refused(r: classify::Refusal) -> ToolError {
    match r.use_instead {
        Some(other) if !r.reason.contains(other) => {
            ToolError::PolicyDenied(format!("{} (use {other} instead)", r.reason))
        }
        _ => ToolError::PolicyDenied(r.reason),
    }
}
