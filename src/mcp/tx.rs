//! The `pg_tx` tool: transactions that span tool calls, on dedicated connections
//! (`begin`, `commit`, `rollback`, `savepoint`, `release`, `rollback_to`, `list`).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::db::run::session_simple;
use crate::db::sessions::Isolation;
use crate::error::ToolError;
use crate::safety::ident::Ident;
use crate::state::AppState;

// Where other tools found these before they moved to `db::run`.

/// Arguments of `pg_tx`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxArgs {
    /// One of [`ACTIONS`].
    pub action: String,
    /// The handle (all actions but begin and list).
    pub session_id: Option<String>,
    /// begin: read_committed (default), repeatable_read, serializable.
    pub isolation_level: Option<String>,
    /// begin: a READ ONLY transaction.
    pub read_only: Option<bool>,
    /// savepoint, release, rollback_to.
    pub savepoint_name: Option<String>,
}

/// The actions, for the schema and error messages.
pub const ACTIONS: &[&str] = &[
    "begin",
    "commit",
    "rollback",
    "savepoint",
    "release",
    "rollback_to",
    "list",
];

fn need_session(args: &TxArgs) -> Result<&str, ToolError> {
    args.session_id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        ToolError::InvalidInput(format!(
            "pg_tx {} needs session_id: the handle pg_tx begin returned (pg_tx list shows yours)",
            args.action
        ))
    })
}

/// Run one `pg_tx` call.
pub async fn call(state: &AppState, caller: &Caller, args: TxArgs) -> Result<Value, ToolError> {
    let sessions = &state.sessions;
    match args.action.as_str() {
        "begin" => {
            let isolation = match args.isolation_level.as_deref() {
                Some(s) => Isolation::parse(s)?,
                None => Isolation::ReadCommitted,
            };
            let read_only = args.read_only.unwrap_or(false);
            let v = sessions
                .begin(
                    &caller.owner,
                    caller.mcp_session.as_deref(),
                    isolation,
                    read_only,
                    caller.role(),
                )
                .await?;
            Ok(json!({
                "session_id": v["id"],
                "session": {"id": v["id"], "expires_in_s": v["expires_in_s"], "state": v["state"]},
                "isolation": isolation.name(),
                "read_only": read_only,
                "hint": format!(
                    "pass session_id to pg_query (and pg_schema/pg_admin) to work inside this \
                     transaction; finish with pg_tx commit or rollback. It is rolled back after {}s idle.",
                    sessions.ttl().as_secs()
                ),
            }))
        }
        "commit" | "rollback" => {
            let id = need_session(&args)?;
            let g = sessions.acquire(&caller.owner, id).await?;
            let commit = args.action == "commit";
            let committed = g.finish(commit).await?;
            Ok(json!({
                "session_id": id,
                "committed": committed,
                "rolled_back": !committed,
                "message": if committed { "committed; the session is closed" } else { "rolled back; the session is closed" },
            }))
        }
        "savepoint" | "release" | "rollback_to" => {
            let id = need_session(&args)?;
            let raw = args.savepoint_name.as_deref().ok_or_else(|| {
                ToolError::InvalidInput(format!(
                    "pg_tx {} needs savepoint_name, e.g. before_update",
                    args.action
                ))
            })?;
            let name = Ident::parse("savepoint_name", raw).map_err(ToolError::InvalidInput)?;
            let sql = match args.action.as_str() {
                "savepoint" => format!("SAVEPOINT {name}"),
                "release" => format!("RELEASE SAVEPOINT {name}"),
                _ => format!("ROLLBACK TO SAVEPOINT {name}"),
            };
            let mut g = sessions.acquire(&caller.owner, id).await?;
            crate::db::run::bounded(&mut g, async |g| session_simple(g, sql).await).await?;
            if args.action == "rollback_to" {
                // Back to a point before the failure: the transaction is usable again.
                g.clear_failure();
            }
            Ok(json!({
                "session_id": id,
                "savepoint_name": name.as_str(),
                "done": args.action,
                "session": g.view(),
            }))
        }
        "list" => Ok(json!({ "sessions": sessions.list(&caller.owner) })),
        other => Err(ToolError::InvalidInput(format!(
            "unknown action {:?} for pg_tx; use one of: {}",
            other.chars().take(64).collect::<String>(),
            ACTIONS.join(", ")
        ))),
    }
}
