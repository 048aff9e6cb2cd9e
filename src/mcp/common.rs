//! Helpers every tool module shares, so that no tool imports another for them: the limits of a
//! call ([`limits_with_ceiling`], [`limits_for`]), parsing and refusals as tool errors
//! ([`parse`], [`refused`]), the contract §3 row result ([`rowset_json`]), and
//! [`truncate_for_message`] for echoing caller text in errors.

use serde_json::{Value, json};

use crate::db::cost::Ceiling;
use crate::db::executor::{Limits, RowSet, Truncation};
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
        ceiling: Ceiling::for_call(
            state.config.max_query_cost,
            state.config.max_estimated_rows,
            max_cost,
        )?,
    })
}

/// Parse and classify, turning parser errors into `invalid_input` with a position.
pub(crate) fn parse(sql: &str) -> Result<Parsed, ToolError> {
    classify::parse_one(sql).map_err(|e| match e {
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

/// The contract §3 row result.
pub(crate) fn rowset_json(r: &RowSet, limits: &Limits) -> Value {
    let mut o = json!({
        "columns": r.columns,
        "rows": r.rows,
        "row_count": r.rows.len(),
        "truncated": r.truncated.is_some(),
        "command": r.command,
        "rows_affected": r.rows_affected,
        "duration_ms": r.duration_ms,
    });
    if let Some(t) = r.truncated {
        o["truncated_by"] = json!(match t {
            Truncation::Rows => "max_rows",
            Truncation::Bytes | Truncation::Value { .. } => "max_result_bytes",
        });
    }
    match r.truncated {
        Some(Truncation::Rows) => {
            o["hint"] = json!(format!(
                "result truncated at {} rows (max_rows); narrow it with WHERE, aggregate it, or \
                 page with ORDER BY … LIMIT/OFFSET",
                limits.max_rows
            ));
        }
        Some(Truncation::Bytes) => {
            o["hint"] = json!(format!(
                "result truncated at {} bytes (max_result_bytes) after {} rows; select fewer or \
                 narrower columns (e.g. left(col, 200)), or page with ORDER BY … LIMIT/OFFSET",
                limits.max_bytes,
                r.rows.len()
            ));
        }
        Some(Truncation::Value {
            column,
            whole_bytes,
        }) => {
            let name = r
                .columns
                .get(column)
                .map(|c| truncate_for_message(&c.name))
                .unwrap_or_default();
            o["hint"] = json!(format!(
                "the first row alone is larger than {} bytes (max_result_bytes): the value of \
                 column {name:?} ({whole_bytes} bytes) was cut to its first part (a json value \
                 becomes the start of its text), and the result ends there; read the value in \
                 pieces with substring(col from 1 for 100000) or left(col, n), or select its \
                 length(col) first",
                limits.max_bytes
            ));
        }
        None => {}
    }
    o
}
