//! One open session's state ([`Slot`]): its handle, owner, isolation, dedicated connection
//! and the bookkeeping its calls update (last use, failure, statements run), and how it is
//! shown in results ([`describe`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::error::ToolError;

/// Transaction isolation levels `pg_tx begin` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// The contract's spelling.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::RepeatableRead => "repeatable_read",
            Isolation::Serializable => "serializable",
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
    /// Cleared once a cancel request was sent to this backend: such a connection is closed at
    /// the end, never reused, since the request may still land after it was handed on.
    pub(super) reusable: AtomicBool,
}

impl Slot {
    pub(super) fn idle(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    pub(super) fn state(&self) -> &'static str {
        if self.failed.lock().map(|f| f.is_some()).unwrap_or(false) {
            "failed"
        } else if *self.worked.lock().expect("worked lock is never poisoned") {
            "in_transaction"
        } else {
            "idle"
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

/// A view of one session for results and `pg_tx list`.
pub(crate) fn describe(slot: &Slot, ttl: Duration) -> Value {
    let idle = slot.idle();
    json!({
        "id": slot.id,
        "age_s": slot.created.elapsed().as_secs(),
        "idle_s": idle.as_secs(),
        "expires_in_s": ttl.saturating_sub(idle).as_secs(),
        "state": slot.state(),
        "isolation": slot.isolation.name(),
        "read_only": slot.read_only,
        "statements": slot.statements.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
