//! [`SessionGuard`]: exclusive use of one session's connection for one call, the statement
//! bookkeeping tools do through it (start/end, failure, deadline, loss), and the end of the
//! session (COMMIT or ROLLBACK) in [`SessionGuard::finish`]. [`SessionGuard::view`] is the
//! session as the call's result shows it (a typed [`SessionView`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::OwnedMutexGuard;

use super::slot::{SessionView, view};
use super::tombstones::Tombstone;
use super::{Sessions, Slot};
use crate::db::run::guard::cancel_backend;
use crate::error::{DbError, ToolError};

/// Exclusive use of one session's connection for the length of one call. Dropping it while a
/// statement is in flight (the client cancelled, or the request went away) cancels that
/// statement in PostgreSQL and marks the transaction failed: it is never silently continued.
pub struct SessionGuard {
    pub(super) slot: Arc<Slot>,
    pub(super) conn: Option<OwnedMutexGuard<Option<PgConnection>>>,
    pub(super) sessions: Sessions,
    pub(super) in_statement: bool,
}

impl SessionGuard {
    /// The dedicated connection.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().and_then(|g| g.as_mut()).expect(
            "a guard is only handed out for an open connection, and callers stop after mark_lost",
        )
    }

    /// The slot (id, pid).
    pub(crate) fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Mark that a statement is about to run (for the drop path).
    pub(crate) fn start_statement(&mut self) {
        self.in_statement = true;
        self.slot.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Record how the statement ended. `aborted`: PostgreSQL aborted the transaction.
    pub(crate) fn end_statement(&mut self, worked: bool, aborted: Option<String>) {
        self.in_statement = false;
        if worked {
            *self.slot.worked.lock().expect("worked lock") = true;
        }
        if let Some(reason) = aborted {
            *self.slot.failed.lock().expect("failed lock") = Some(reason);
        }
    }

    /// The transaction is healthy again (after ROLLBACK TO SAVEPOINT).
    pub(crate) fn clear_failure(&mut self) {
        *self.slot.failed.lock().expect("failed lock") = None;
    }

    /// Why the transaction failed, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.slot.failed.lock().expect("failed lock").clone()
    }

    /// The session as results show it.
    pub(crate) fn view(&self) -> SessionView {
        view(&self.slot, self.sessions.inner.ttl)
    }

    /// A call on this session ran past its client-side deadline and was abandoned: cancel the
    /// statement in PostgreSQL and mark the transaction failed (its state is unknown until the
    /// connection's outcome is drained), exactly as for a call the client cancelled.
    pub(crate) fn deadline_passed(&mut self, deadline: Duration) -> ToolError {
        if self.in_statement {
            self.in_statement = false;
            *self.slot.failed.lock().expect("failed lock") = Some(format!(
                "a statement ran past the {}s client-side deadline and was cancelled",
                deadline.as_secs()
            ));
            self.slot.needs_drain.store(true, Ordering::SeqCst);
            self.slot.reusable.store(false, Ordering::SeqCst);
            let pool = self.sessions.inner.cancel_pool.clone();
            let pid = self.slot.pid;
            tokio::spawn(async move { cancel_backend(&pool, pid).await });
        }
        ToolError::Timeout(format!(
            "session {} did not answer within {}s (COLDQUERY_STATEMENT_TIMEOUT + 5s); the \
             statement was cancelled and the transaction is now failed, so nothing it did will be \
             saved: pg_tx rollback, then start again (pg_tx commit would report that it rolled back)",
            self.slot.id,
            deadline.as_secs()
        ))
    }

    /// The client-side deadline of one session call (the same as pooled calls').
    pub(crate) fn deadline(&self) -> Duration {
        self.sessions.inner.limits.client_deadline()
    }

    /// The connection died: drop the handle and leave a tombstone saying so.
    pub(crate) fn mark_lost(&mut self, reason: &str) -> ToolError {
        self.in_statement = false;
        self.sessions.bury(
            &self.slot,
            Tombstone::Lost {
                reason: reason.to_owned(),
            },
        );
        if let Some(g) = self.conn.as_mut() {
            // Dropping the connection closes its socket; PostgreSQL aborts the transaction.
            g.take();
        }
        self.sessions
            .inner
            .metrics
            .inc("coldquery_sessions_total", &[("event", "lost")]);
        ToolError::SessionLost(format!(
            "session {} lost its database connection ({reason}); the transaction was rolled back \
             and nothing was saved. Start again with pg_tx begin",
            self.slot.id
        ))
    }

    /// End the session: COMMIT (or ROLLBACK), forget the handle, and close the connection or,
    /// when the session ended cleanly, give it back to the spares to be reset and reused.
    /// Returns whether PostgreSQL committed.
    pub(crate) async fn finish(mut self, commit: bool) -> Result<bool, ToolError> {
        let failed = self.failure();
        let id = self.slot.id.clone();
        self.sessions.inner.cursors.forget_session(&id);
        self.sessions
            .inner
            .map
            .lock()
            .expect("session map lock")
            .remove(&id);
        let mut g = self
            .conn
            .take()
            .expect("guard holds the connection until finish");
        let mut conn = g.take().expect("guard connection is open");
        let sql = if commit && failed.is_none() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let deadline = self.sessions.inner.limits.client_deadline();
        let res = match tokio::time::timeout(
            deadline,
            sqlx::Executor::execute(&mut conn, sqlx::raw_sql(sql)),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                // Dropping the socket makes PostgreSQL abort a transaction that has not
                // committed yet; whether this COMMIT got there first, only the data can say.
                drop(conn);
                self.sessions
                    .inner
                    .metrics
                    .inc("coldquery_sessions_total", &[("event", "lost")]);
                return Err(ToolError::Timeout(format!(
                    "session {id}: the database did not answer {sql} within {}s; the connection \
                     was closed. {}",
                    deadline.as_secs(),
                    if sql == "COMMIT" {
                        "Whether it committed is unknown: check the data before redoing the work"
                    } else {
                        "The transaction is rolled back"
                    }
                )));
            }
        };
        // Answered and never cancelled: the connection is in step, and the spares reset it
        // after this reply (off the caller's path) for the next begin. Anything else closes.
        let reuse = res.is_ok()
            && self.slot.reusable.load(Ordering::SeqCst)
            && !self.slot.needs_drain.load(Ordering::SeqCst);
        if reuse {
            let spares = self.sessions.inner.spares.clone();
            let opened = self.slot.conn_opened;
            tokio::spawn(async move { spares.give_back(conn, opened).await });
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
        }
        let metrics = &self.sessions.inner.metrics;
        match (res, commit, failed) {
            (Ok(_), true, None) => {
                metrics.inc("coldquery_sessions_total", &[("event", "committed")]);
                Ok(true)
            }
            (Ok(_), true, Some(reason)) => {
                metrics.inc("coldquery_sessions_total", &[("event", "rolled_back")]);
                Err(ToolError::database(DbError {
                    sqlstate: Some("25P02".into()),
                    message: format!(
                        "COMMIT did not commit: the transaction had failed earlier ({reason}) so \
                         PostgreSQL rolled it back; nothing was saved"
                    ),
                    detail: None,
                    hint: Some(
                        "start again with pg_tx begin and redo the work; use savepoints \
                                (pg_tx savepoint / rollback_to) to survive a failing statement"
                            .into(),
                    ),
                    position: None,
                    operation_index: None,
                }))
            }
            (Ok(_), false, _) => {
                metrics.inc("coldquery_sessions_total", &[("event", "rolled_back")]);
                Ok(false)
            }
            (Err(e), _, _) => {
                metrics.inc("coldquery_sessions_total", &[("event", "rolled_back")]);
                let err = ToolError::from_sqlx(e, 0);
                Err(match err {
                    // A deferred constraint or serialization failure at COMMIT: rolled back.
                    ToolError::Database(mut d) => {
                        d.message = format!(
                            "COMMIT failed and the transaction was rolled back: {}",
                            d.message
                        );
                        ToolError::Database(d)
                    }
                    _ => ToolError::SessionLost(format!(
                        "session {id} lost its connection at {sql}; the transaction was rolled back"
                    )),
                })
            }
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.in_statement {
            // The call was abandoned mid-statement. Cancel it in PostgreSQL; the transaction is
            // then aborted, so say so on the next call instead of pretending it continued.
            *self.slot.failed.lock().expect("failed lock") =
                Some("a call was cancelled while its statement ran".into());
            self.slot.needs_drain.store(true, Ordering::SeqCst);
            self.slot.reusable.store(false, Ordering::SeqCst);
            let pool = self.sessions.inner.cancel_pool.clone();
            let pid = self.slot.pid;
            tokio::spawn(async move { cancel_backend(&pool, pid).await });
        }
        self.slot.touch();
    }
}
