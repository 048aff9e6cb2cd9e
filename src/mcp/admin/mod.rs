//! The `pg_admin` tool: its arguments, dispatch, and the table lookup its actions share. The
//! actions live by concern: maintenance (`vacuum`, `analyze`, `reindex`) on a table or the whole
//! database behind default-deny, per-table statistics (`stats`), and server settings
//! (`settings`: show, list, or set for one pg_tx session with the server's guards kept).

mod maintenance;
mod settings;
mod stats;

use serde::Deserialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, QualifiedName, Relation, resolve_relation};
use crate::mcp::common::truncate_for_message;
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
        "vacuum" | "analyze" | "reindex" => maintenance::maintenance(state, caller, &args).await,
        "stats" => stats::stats(state, caller, &args).await,
        "settings" => settings::settings(state, caller, &args).await,
        other => Err(ToolError::InvalidInput(format!(
            "unknown action {:?} for pg_admin; use one of: {}",
            truncate_for_message(other),
            ACTIONS.join(", ")
        ))),
    }
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
