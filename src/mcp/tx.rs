//! The `pg_tx` tool: transactions that span tool calls, on dedicated connections
//! (`begin`, `commit`, `rollback`, `savepoint`, `release`, `rollback_to`, `list`), and its
//! typed results ([`TxResult`]). The arguments' JSON Schema is derived from [`TxArgs`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::caller::Caller;
use crate::db::run::session_simple;
use crate::db::sessions::{Isolation, SessionView};
use crate::error::ToolError;
use crate::mcp::names::{ActionArg, TxAction};
use crate::safety::ident::Ident;
use crate::state::AppState;

/// Arguments of `pg_tx`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TxArgs {
    /// One of [`TxAction`].
    pub action: ActionArg<TxAction>,
    /// The handle (all actions but begin and list).
    pub session_id: Option<String>,
    /// begin: read_committed (default), repeatable_read, serializable.
    // Text, not an enum type: `Isolation::parse` also takes the SQL spelling ("REPEATABLE
    // READ"). The schema offers the contract's names.
    #[schemars(extend("enum" = ["read_committed", "repeatable_read", "serializable"]))]
    pub isolation_level: Option<String>,
    /// begin: a READ ONLY transaction.
    pub read_only: Option<bool>,
    /// savepoint, release, rollback_to.
    pub savepoint_name: Option<String>,
}

fn need_session(args: &TxArgs) -> Result<&str, ToolError> {
    args.session_id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        ToolError::InvalidInput(format!(
            "pg_tx {} needs session_id: the handle pg_tx begin returned (pg_tx list shows yours)",
            args.action
        ))
    })
}

/// The result of `pg_tx begin`.
#[derive(Debug, Serialize)]
pub(crate) struct Begun {
    /// The handle to pass as `session_id`.
    pub(crate) session_id: String,
    /// The new session.
    pub(crate) session: SessionView,
    /// Its isolation level.
    pub(crate) isolation: Isolation,
    /// A READ ONLY transaction.
    pub(crate) read_only: bool,
    /// How to use it and when it expires.
    pub(crate) hint: String,
}

/// The result of `pg_tx commit` and `rollback`: the session is closed either way.
#[derive(Debug, Serialize)]
pub(crate) struct Finished {
    /// The handle, now gone.
    pub(crate) session_id: String,
    /// PostgreSQL committed.
    pub(crate) committed: bool,
    /// `!committed`.
    pub(crate) rolled_back: bool,
    /// The same, in words.
    pub(crate) message: &'static str,
}

/// The result of `pg_tx savepoint`, `release` and `rollback_to`.
#[derive(Debug, Serialize)]
pub(crate) struct SavepointDone {
    /// The session.
    pub(crate) session_id: String,
    /// The savepoint, as validated.
    pub(crate) savepoint_name: String,
    /// The action that was done.
    pub(crate) done: &'static str,
    /// The session after it.
    pub(crate) session: SessionView,
}

/// The result of `pg_tx list`.
#[derive(Debug, Serialize)]
pub(crate) struct Listed {
    /// The caller's open sessions, oldest first, each with its detail.
    pub(crate) sessions: Vec<SessionView>,
}

/// What one `pg_tx` call returns.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum TxResult {
    /// begin.
    Begun(Begun),
    /// commit, rollback.
    Finished(Finished),
    /// savepoint, release, rollback_to.
    Savepoint(SavepointDone),
    /// list.
    Listed(Listed),
}

/// Run one `pg_tx` call.
pub(crate) async fn call(
    state: &AppState,
    caller: &Caller,
    args: TxArgs,
) -> Result<TxResult, ToolError> {
    let sessions = &state.sessions;
    let action = args.action.known()?;
    match action {
        TxAction::Begin => {
            let isolation = match args.isolation_level.as_deref() {
                Some(s) => Isolation::parse(s)?,
                None => Isolation::ReadCommitted,
            };
            let read_only = args.read_only.unwrap_or(false);
            let view = sessions
                .begin(
                    &caller.owner,
                    caller.mcp_session.as_deref(),
                    isolation,
                    read_only,
                    caller.role(),
                )
                .await?;
            Ok(TxResult::Begun(Begun {
                session_id: view.id.clone(),
                session: view,
                isolation,
                read_only,
                hint: format!(
                    "pass session_id to pg_query (and pg_schema/pg_admin) to work inside this \
                     transaction; finish with pg_tx commit or rollback. It is rolled back after {}s idle.",
                    sessions.ttl().as_secs()
                ),
            }))
        }
        TxAction::Commit | TxAction::Rollback => {
            let id = need_session(&args)?;
            // COMMIT and ROLLBACK prepare nothing: the cached statements can stay.
            let g = sessions.acquire_cached(&caller.owner, id).await?;
            let commit = action == TxAction::Commit;
            let committed = g.finish(commit).await?;
            Ok(TxResult::Finished(Finished {
                session_id: id.to_owned(),
                committed,
                rolled_back: !committed,
                message: if committed {
                    "committed; the session is closed"
                } else {
                    "rolled back; the session is closed"
                },
            }))
        }
        TxAction::Savepoint | TxAction::Release | TxAction::RollbackTo => {
            let id = need_session(&args)?;
            let raw = args.savepoint_name.as_deref().ok_or_else(|| {
                ToolError::InvalidInput(format!(
                    "pg_tx {} needs savepoint_name, e.g. before_update",
                    args.action
                ))
            })?;
            let name = Ident::parse("savepoint_name", raw).map_err(ToolError::InvalidInput)?;
            let sql = match action {
                TxAction::Savepoint => format!("SAVEPOINT {name}"),
                TxAction::Release => format!("RELEASE SAVEPOINT {name}"),
                _ => format!("ROLLBACK TO SAVEPOINT {name}"),
            };
            let mut g = sessions.acquire_cached(&caller.owner, id).await?;
            crate::db::run::bounded(&mut g, async |g| session_simple(g, sql).await).await?;
            if action == TxAction::RollbackTo {
                // Back to a point before the failure: the transaction is usable again.
                g.clear_failure();
            }
            Ok(TxResult::Savepoint(SavepointDone {
                session_id: id.to_owned(),
                savepoint_name: name.as_str().to_owned(),
                done: action.name(),
                session: g.view(),
            }))
        }
        TxAction::List => Ok(TxResult::Listed(Listed {
            sessions: sessions.list(&caller.owner),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sessions::{SessionDetail, SessionState};
    use serde_json::json;

    fn view() -> SessionView {
        SessionView {
            id: "tx_1".into(),
            expires_in_s: 300,
            state: SessionState::Idle,
            detail: None,
        }
    }

    #[test]
    fn begin_returns_the_handle_its_view_isolation_and_a_hint() {
        let v = serde_json::to_value(TxResult::Begun(Begun {
            session_id: "tx_1".into(),
            session: view(),
            isolation: Isolation::Serializable,
            read_only: true,
            hint: "pass session_id".into(),
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"session_id": "tx_1",
                   "session": {"id": "tx_1", "expires_in_s": 300, "state": "idle"},
                   "isolation": "serializable", "read_only": true, "hint": "pass session_id"})
        );
    }

    #[test]
    fn commit_and_rollback_say_which_happened() {
        let v = serde_json::to_value(TxResult::Finished(Finished {
            session_id: "tx_1".into(),
            committed: false,
            rolled_back: true,
            message: "rolled back; the session is closed",
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"session_id": "tx_1", "committed": false, "rolled_back": true,
                   "message": "rolled back; the session is closed"})
        );
    }

    #[test]
    fn a_savepoint_result_names_it_the_action_and_the_session() {
        let v = serde_json::to_value(TxResult::Savepoint(SavepointDone {
            session_id: "tx_1".into(),
            savepoint_name: "before_update".into(),
            done: TxAction::RollbackTo.name(),
            session: view(),
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"session_id": "tx_1", "savepoint_name": "before_update",
                   "done": "rollback_to",
                   "session": {"id": "tx_1", "expires_in_s": 300, "state": "idle"}})
        );
    }

    #[test]
    fn list_shows_each_session_with_its_detail() {
        let detailed = SessionView {
            detail: Some(SessionDetail {
                age_s: 3,
                idle_s: 1,
                isolation: Isolation::ReadCommitted,
                read_only: false,
                statements: 2,
            }),
            ..view()
        };
        let v = serde_json::to_value(TxResult::Listed(Listed {
            sessions: vec![detailed],
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"sessions": [{"id": "tx_1", "expires_in_s": 300, "state": "idle",
                                 "age_s": 3, "idle_s": 1, "isolation": "read_committed",
                                 "read_only": false, "statements": 2}]})
        );
        let empty = serde_json::to_value(TxResult::Listed(Listed { sessions: vec![] })).unwrap();
        assert_eq!(empty, json!({"sessions": []}));
    }
}
