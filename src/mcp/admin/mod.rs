//! The `pg_admin` tool: its arguments, dispatch, and the table lookup its actions share. The
//! actions live by concern: maintenance (`vacuum`, `analyze`, `reindex`) on a table or the whole
//! database behind default-deny, per-table statistics (`stats`), and server settings
//! (`settings`: show, list, or set for one pg_tx session with the server's guards kept). The
//! arguments' JSON Schema is derived from [`AdminArgs`].

mod maintenance;
mod settings;
mod stats;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::ToolError;
use crate::mcp::catalog::{Catalog, QualifiedName, Relation, resolve_relation};
use crate::mcp::names::{ActionArg, AdminAction};
use crate::state::AppState;

/// Arguments of `pg_admin`. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminArgs {
    /// One of [`AdminAction`].
    pub action: ActionArg<AdminAction>,
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
    // A string only in the schema: PostgreSQL takes every setting as text, and a type array
    // (["string","number","boolean"]) is what portable clients warn about. Numbers and
    // booleans are still accepted by the server.
    #[schemars(with = "Option<String>", extend("x-description" = "e.g. 64MB"))]
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

/// Run one `pg_admin` call.
pub async fn call(state: &AppState, caller: &Caller, args: AdminArgs) -> Result<Value, ToolError> {
    match args.action.known()? {
        a @ (AdminAction::Vacuum | AdminAction::Analyze | AdminAction::Reindex) => {
            maintenance::maintenance(state, caller, a, &args).await
        }
        AdminAction::Stats => stats::stats(state, caller, &args).await,
        AdminAction::Settings => settings::settings(state, caller, &args).await,
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
