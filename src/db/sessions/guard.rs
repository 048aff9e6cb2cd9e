//! [`SessionGuard`]: exclusive use of one session's connection for one call, the statement
//! bookkeeping tools do through it (start/end, failure, deadline, loss), and the end of the
//! session (COMMIT or ROLLBACK) in [`SessionGuard::finish`]. [`SessionGuard::view`] is the
//! session as the call's result shows it (a typed [`SessionView`]).
//!
//! The guard is also the one way to the connection, because a successful read leaves its
//! read-only savepoint open ([`SessionGuard::defer_read_close`]): its `ROLLBACK TO SAVEPOINT`
//! rides on the session's next simple query ([`SessionGuard::simple`], [`SessionGuard::finish`];
//! a `ROLLBACK` makes it moot), and [`SessionGuard::conn`] sends it on its own before handing
//! the connection out. Nothing can run inside a read's savepoint by mistake.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::OwnedMutexGuard;

use super::slot::{SessionView, view};
use super::tombstones::Tombstone;
use super::{Sessions, Slot};
use crate::db::executor;
use crate::db::run::guard::cancel_backend;
use crate::db::run::session::settle_error;
use crate::error::{DbError, ToolError};

/// Ends a read's savepoint (the name is [`crate::db::run::session`]'s): what it did is undone,
/// the session's earlier work stays, and `transaction_read_only` is off again.
const CLOSE_READ: &str = "ROLLBACK TO SAVEPOINT coldquery_sp; RELEASE SAVEPOINT coldquery_sp";

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
    /// The dedicated connection as it is, a read's savepoint possibly still open: only for
    /// what is the same either way (pings, closing cached statements).
    pub(super) fn raw(&mut self) -> &mut PgConnection {
        self.conn.as_mut().and_then(|g| g.as_mut()).expect(
            "a guard is only handed out for an open connection, and callers stop after mark_lost",
        )
    }

    /// The dedicated connection, ready for any statement: a read's savepoint left open is
    /// rolled back first (one round trip; a failure marks the transaction failed, or the
    /// session lost).
    pub(crate) async fn conn(&mut self) -> Result<&mut PgConnection, ToolError> {
        if self.slot.read_open.swap(false, Ordering::SeqCst) {
            // Not a statement of the caller's (the count stays), but cancelled like one; a
            // statement the caller has begun stays begun.
            let begun = self.in_statement;
            self.in_statement = true;
            let res = executor::simple(self.raw(), CLOSE_READ).await;
            self.in_statement = begun;
            if let Err(e) = res {
                return Err(settle_error(self, ToolError::from_sqlx(e, 0)));
            }
        }
        Ok(self.raw())
    }

    /// Run our own simple-protocol `sql` (a savepoint's start or end, a `pg_tx` savepoint
    /// operation), in the same round trip as the rollback of a read's savepoint left open.
    /// The caller does the statement bookkeeping.
    pub(crate) async fn simple(&mut self, sql: String) -> Result<(), sqlx::Error> {
        let sql = if self.slot.read_open.swap(false, Ordering::SeqCst) {
            format!("{CLOSE_READ}; {sql}")
        } else {
            sql
        };
        executor::simple_owned(self.raw(), sql).await
    }

    /// A read under the savepoint `coldquery_sp` (read-only) succeeded: leave the savepoint
    /// open and roll it back with the session's next statement instead of now, which saves
    /// the read a round trip. Until then the session holds the read's `AccessShareLock`s.
    pub(crate) fn defer_read_close(&mut self) {
        self.slot.read_open.store(true, Ordering::SeqCst);
    }

    /// Whether the connection holds cached prepared statements.
    pub(crate) fn has_cached_statements(&mut self) -> bool {
        self.raw().cached_statements_size() > 0
    }

    /// Close the connection's cached statements, so that the next ones are prepared against
    /// the catalog as it is now. A round trip like any other: bounded by the same
    /// client-side deadline.
    pub(crate) async fn fresh_statements(&mut self) -> Result<(), ToolError> {
        if !self.has_cached_statements() {
            return Ok(());
        }
        let deadline = self.deadline();
        if tokio::time::timeout(deadline, self.raw().clear_cached_statements())
            .await
            .is_err()
        {
            self.in_statement = true;
            return Err(self.deadline_passed(deadline));
        }
        Ok(())
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
        let read_open = self.slot.read_open.swap(false, Ordering::SeqCst);
        let (sql, send) = match (commit && failed.is_none(), read_open) {
            // The read's savepoint is rolled back first, in the same round trip: only what
            // the session did before it is committed.
            (true, true) => ("COMMIT", format!("{CLOSE_READ}; COMMIT")),
            (true, false) => ("COMMIT", "COMMIT".to_owned()),
            // ROLLBACK ends an open savepoint with the rest.
            (false, _) => ("ROLLBACK", "ROLLBACK".to_owned()),
        };
        let deadline = self.sessions.inner.limits.client_deadline();
        let res = match tokio::time::timeout(
            deadline,
            sqlx::Executor::execute(&mut conn, sqlx::raw_sql(sqlx::AssertSqlSafe(send))),
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
            let (opened, named) = (self.slot.conn_opened, self.slot.spare_named);
            tokio::spawn(async move { spares.give_back(conn, opened, named).await });
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
