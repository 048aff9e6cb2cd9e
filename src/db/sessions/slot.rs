//! One open session's state ([`Slot`]): its handle, owner, isolation, dedicated connection
//! and the bookkeeping its calls update (last use, failure, statements run), and how results
//! show it: [`SessionView`] (the `session` of a result, and with its [`SessionDetail`] one entry
//! of `pg_tx list`) and [`SessionHint`] (the `hints` reminding a caller of its open sessions).
//! These are typed so that the tools pass them on as they are; they become JSON once, where the
//! tool result is rendered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgConnection;

use crate::error::ToolError;

/// Transaction isolation levels `pg_tx begin` accepts (serialized in the contract's spelling,
/// the one [`Isolation::parse`] reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// READ COMMITTED (the default).
    ReadCommitted,
    /// REPEATABLE READ.
    RepeatableRead,
    /// SERIALIZABLE.
    Serializable,
}

impl Isolation {
    /// Parse the contract's spelling.
    pub(crate) fn parse(s: &str) -> Result<Isolation, ToolError> {
        match s.to_ascii_lowercase().replace(' ', "_").as_str() {
            "read_committed" => Ok(Isolation::ReadCommitted),
            "repeatable_read" => Ok(Isolation::RepeatableRead),
            "serializable" => Ok(Isolation::Serializable),
            _ => Err(ToolError::InvalidInput(format!(
                "unknown isolation_level {:?}; use read_committed (default), repeatable_read or serializable",
                s.chars().take(40).collect::<String>()
            ))),
        }
    }

    pub(super) fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

/// One open session.
pub struct Slot {
    /// The handle.
    pub(crate) id: String,
    pub(super) owner: String,
    /// The MCP session whose call opened it: its DELETE ends this handle (contract §8).
    pub(super) created_in: Option<String>,
    pub(super) created: Instant,
    pub(super) isolation: Isolation,
    pub(super) read_only: bool,
    /// Backend pid of the dedicated connection, for cancel requests.
    pub(crate) pid: i32,
    pub(super) conn: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
    pub(super) last_used: Mutex<Instant>,
    /// Set when a statement failed and PostgreSQL aborted the transaction.
    pub(super) failed: Mutex<Option<String>>,
    pub(super) statements: AtomicU64,
    pub(super) worked: Mutex<bool>,
    /// A call was abandoned mid-statement: the connection still owes us that statement's
    /// outcome, which must be read and discarded before the next use.
    pub(super) needs_drain: AtomicBool,
    /// When the dedicated connection was opened (a reused one is retired by age).
    pub(super) conn_opened: Instant,
    /// The connection was opened as a spare (see [`crate::db::spares::Spare::spare_named`]).
    pub(super) spare_named: bool,
    /// Cleared once a cancel request was sent to this backend: such a connection is closed at
    /// the end, never reused, since the request may still land after it was handed on.
    pub(super) reusable: AtomicBool,
    /// A successful read left its savepoint (`coldquery_sp`, read-only) open: it is rolled
    /// back before anything else of the session runs, in the same round trip as the next of
    /// our own statements when there is one (see [`super::SessionGuard::conn`]). Touched only
    /// by the holder of `conn`.
    pub(super) read_open: AtomicBool,
}

impl Slot {
    pub(super) fn idle(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    pub(super) fn state(&self) -> SessionState {
        if self.failed.lock().map(|f| f.is_some()).unwrap_or(false) {
            SessionState::Failed
        } else if *self.worked.lock().expect("worked lock is never poisoned") {
            SessionState::InTransaction
        } else {
            SessionState::Idle
        }
    }
}

/// Where a session's transaction stands, as results show it (`state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SessionState {
    /// Nothing has run in it yet.
    Idle,
    /// A statement has done work in it.
    InTransaction,
    /// PostgreSQL aborted it: only ROLLBACK (or ROLLBACK TO a savepoint) helps.
    Failed,
}

impl SessionState {
    /// The spelling results use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SessionState::Idle => "idle",
            SessionState::InTransaction => "in_transaction",
            SessionState::Failed => "failed",
        }
    }
}

impl Slot {
    pub(super) fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }
}

/// One session as a result shows it: the `session` of every call made in it (and of
/// `pg_tx begin`), and with [`SessionDetail`] one entry of `pg_tx list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SessionView {
    /// The handle.
    pub(crate) id: String,
    /// Seconds until the idle TTL rolls it back, counted from its last use.
    pub(crate) expires_in_s: u64,
    /// Where its transaction stands.
    pub(crate) state: SessionState,
    /// Only in `pg_tx list`.
    #[serde(flatten)]
    pub(crate) detail: Option<SessionDetail>,
}

/// What `pg_tx list` shows of a session beyond its [`SessionView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SessionDetail {
    /// Seconds since begin.
    pub(crate) age_s: u64,
    /// Seconds since its last call ended.
    pub(crate) idle_s: u64,
    /// Its isolation level.
    pub(crate) isolation: Isolation,
    /// A READ ONLY transaction.
    pub(crate) read_only: bool,
    /// Statements run in it.
    pub(crate) statements: u64,
}

/// A reminder, in `hints`, of a session the caller still holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SessionHint {
    /// The handle.
    pub(crate) session_id: String,
    /// Seconds since its last call ended.
    pub(crate) idle_s: u64,
    /// Seconds until the idle TTL rolls it back.
    pub(crate) expires_in_s: u64,
    /// Where its transaction stands.
    pub(crate) state: SessionState,
    /// What to do about it, in words.
    pub(crate) message: String,
}

/// The session as a call's result shows it.
pub(crate) fn view(slot: &Slot, ttl: Duration) -> SessionView {
    SessionView {
        id: slot.id.clone(),
        expires_in_s: ttl.saturating_sub(slot.idle()).as_secs(),
        state: slot.state(),
        detail: None,
    }
}

/// The session as `pg_tx list` shows it.
pub(crate) fn describe(slot: &Slot, ttl: Duration) -> SessionView {
    // One reading of the idle time, so that idle_s and expires_in_s agree.
    let idle = slot.idle();
    SessionView {
        id: slot.id.clone(),
        expires_in_s: ttl.saturating_sub(idle).as_secs(),
        state: slot.state(),
        detail: Some(SessionDetail {
            age_s: slot.created.elapsed().as_secs(),
            idle_s: idle.as_secs(),
            isolation: slot.isolation,
            read_only: slot.read_only,
            statements: slot.statements.load(Ordering::Relaxed),
        }),
    }
}

/// The reminder of an open session, for `hints`.
pub(crate) fn hint(slot: &Slot, ttl: Duration) -> SessionHint {
    let idle = slot.idle();
    let state = slot.state();
    SessionHint {
        session_id: slot.id.clone(),
        idle_s: idle.as_secs(),
        expires_in_s: ttl.saturating_sub(idle).as_secs(),
        state,
        message: format!(
            "session {} is still open ({}); commit or rollback it with pg_tx when done",
            slot.id,
            state.as_str()
        ),
    }
}

/// Results that stay JSON built by hand (the catalog-shaped ones of pg_schema and pg_admin)
/// carry the view as a value.
impl From<SessionView> for serde_json::Value {
    fn from(v: SessionView) -> Self {
        serde_json::to_value(v).expect("a session view is plain data that always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn isolation_levels_parse_in_the_contract_spelling() {
        assert_eq!(
            Isolation::parse("serializable").unwrap(),
            Isolation::Serializable
        );
        assert_eq!(
            Isolation::parse("Repeatable Read").unwrap(),
            Isolation::RepeatableRead
        );
        assert!(matches!(
            Isolation::parse("chaos"),
            Err(ToolError::InvalidInput(_))
        ));
    }

    fn view_with(detail: Option<SessionDetail>) -> SessionView {
        SessionView {
            id: "tx_1".into(),
            expires_in_s: 290,
            state: SessionState::InTransaction,
            detail,
        }
    }

    #[test]
    fn a_session_view_is_id_expiry_and_state_and_list_adds_the_detail() {
        assert_eq!(
            serde_json::to_value(view_with(None)).unwrap(),
            json!({"id": "tx_1", "expires_in_s": 290, "state": "in_transaction"})
        );
        let listed = view_with(Some(SessionDetail {
            age_s: 12,
            idle_s: 10,
            isolation: Isolation::RepeatableRead,
            read_only: true,
            statements: 3,
        }));
        assert_eq!(
            serde_json::to_value(listed).unwrap(),
            json!({"id": "tx_1", "expires_in_s": 290, "state": "in_transaction", "age_s": 12,
                   "idle_s": 10, "isolation": "repeatable_read", "read_only": true,
                   "statements": 3})
        );
    }

    #[test]
    fn states_and_isolation_levels_serialize_in_the_contract_spelling() {
        for s in [
            SessionState::Idle,
            SessionState::InTransaction,
            SessionState::Failed,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        for name in ["read_committed", "repeatable_read", "serializable"] {
            let i = Isolation::parse(name).unwrap();
            assert_eq!(serde_json::to_value(i).unwrap(), json!(name));
        }
    }

    #[test]
    fn a_session_hint_names_the_handle_its_state_and_what_to_do() {
        let h = SessionHint {
            session_id: "tx_1".into(),
            idle_s: 5,
            expires_in_s: 295,
            state: SessionState::Failed,
            message: "session tx_1 is still open (failed); …".into(),
        };
        assert_eq!(
            serde_json::to_value(h).unwrap(),
            json!({"session_id": "tx_1", "idle_s": 5, "expires_in_s": 295, "state": "failed",
                   "message": "session tx_1 is still open (failed); …"})
        );
    }
}
