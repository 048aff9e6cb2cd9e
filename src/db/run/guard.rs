//! The connection guards of stateless calls: a pooled transaction ([`PooledTx`]), the one-statement
//! read-only form ([`OneShotRead`]) and a connection outside any transaction ([`AutocommitConn`]).
//! Each closes its connection (and cancels a running statement) when dropped unfinished, so no
//! half-done transaction or leftover setting ever goes back to the pool. The cancel request
//! ([`cancel_backend`]) is shared with the session and cursor guards. How many round trips
//! each costs is in [`crate::db::run`]; only `db::run` uses these guards.

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::db::executor::{self, Limits, simple};
use crate::db::roles::{self, Role};
use crate::db::{Pools, acquire, acquire_fresh, probe_or_clear};
use crate::error::ToolError;

/// A pooled connection inside a transaction we opened. If it is dropped without `finish`
/// (an error, or the caller went away mid-call) the connection is closed rather than
/// returned to the pool, so no half-done transaction is ever handed to another call.
pub struct PooledTx {
    conn: PoolConnection<Postgres>,
    open: bool,
    read_only: bool,
    /// Procedural code ran: close the connection instead of returning it to the pool.
    close: bool,
    pid: i32,
    cancel_pool: PgPool,
}

impl PooledTx {
    /// Acquire a connection and `BEGIN` (READ ONLY when asked), with the per-call limits, as
    /// the caller's `role` when it has one (`SET LOCAL ROLE`, ended by the transaction).
    pub async fn begin(
        pools: &Pools,
        role: Option<&Role>,
        read_only: bool,
        limits: &Limits,
    ) -> Result<PooledTx, ToolError> {
        // Main-pool connections start read-only: a write says so.
        let begin = if read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN READ WRITE"
        };
        // The backend pid rides along in the same round trip: it is what a cancel request
        // needs if this call is abandoned mid-statement.
        let sql = format!(
            "{begin}; {}{}; SELECT pg_backend_pid()",
            limits.set_local_sql(),
            roles::set_local_sql(role)
        );
        let (conn, pid) = acquire_prepared(pools, pools.pool(), &sql).await?;
        Ok(PooledTx {
            conn,
            open: true,
            read_only,
            close: false,
            pid,
            cancel_pool: pools.health.clone(),
        })
    }

    /// Never hand this connection back to the pool: what procedural code left on it (settings,
    /// roles, prepared statements, cursors) cannot be enumerated, so the connection goes.
    pub(crate) fn close_afterwards(&mut self) {
        self.close = true;
    }

    /// Like [`PooledTx::begin`] (READ ONLY) on the monitoring pool, for `pg_monitor`.
    pub async fn begin_monitor(
        pools: &Pools,
        role: Option<&Role>,
        limits: &Limits,
    ) -> Result<PooledTx, ToolError> {
        let sql = format!(
            "BEGIN READ ONLY; {}{}; SELECT pg_backend_pid()",
            limits.set_local_sql(),
            roles::set_local_sql(role)
        );
        let (conn, pid) = acquire_prepared(pools, &pools.monitor, &sql).await?;
        Ok(PooledTx {
            conn,
            open: true,
            read_only: true,
            close: false,
            pid,
            cancel_pool: pools.health.clone(),
        })
    }

    /// The connection, for the executor.
    pub fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.conn
    }

    /// End the transaction: COMMIT when `commit`, else ROLLBACK. Returns whether PostgreSQL
    /// actually committed (a COMMIT of a failed transaction is reported as ROLLBACK).
    pub async fn finish(mut self, commit: bool) -> Result<bool, ToolError> {
        // The connection goes back to a pool that serves everyone, so whatever session state
        // the statement left behind is undone in the same round trip: settings changed and
        // committed (e.g. by a DO block or an UPDATE of pg_settings), temporary tables,
        // LISTENs, session advisory locks (not released by ROLLBACK; a user function can take
        // one even in a READ ONLY transaction), cached sequence values, a role or session
        // authorization (which RESET ALL does not reset), WITH HOLD cursors. Reads cannot commit
        // settings or create tables, so they only need the lock release.
        let sql = match (commit, self.read_only) {
            (true, _) => {
                "COMMIT; RESET ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
            }
            (false, false) => {
                "ROLLBACK; RESET ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
            }
            (false, true) => "ROLLBACK; SELECT pg_advisory_unlock_all()",
        };
        let res = sqlx::Executor::execute(&mut *self.conn, sqlx::raw_sql(sql)).await;
        if self.close {
            self.conn.close_on_drop();
        }
        match res {
            Ok(_) => {
                self.open = false;
                Ok(commit)
            }
            Err(e) => Err(ToolError::from_sqlx(e, 0)),
        }
    }

    /// Roll back, ignoring errors (the drop path closes the connection if this fails).
    pub async fn abandon(self) {
        let _ = self.finish(false).await;
    }
}

impl Drop for PooledTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
            // Closing the socket does not stop a running statement (PostgreSQL notices only when
            // it next talks to the client), so cancel it explicitly.
            cancel_in_background(self.cancel_pool.clone(), self.pid);
        }
    }
}

/// Run a read as one autocommit statement on a main-pool connection: one round trip for a
/// cached statement (Bind/Execute/Sync), no `BEGIN`, no clean-up. The connection's startup
/// options (`db::read_first`) make its implicit transaction read-only and bound it by the
/// configured timeouts; the policy point lets only statements whose every function is reviewed
/// built-in or default-extension code come here, so nothing the statement does outlives it.
/// It runs as the login role: a caller with a role of its own never comes here (there is no
/// transaction for its `SET LOCAL ROLE`); `pg_query read` gives it a [`PooledTx`] instead.
///
/// If the call is dropped mid-statement (cancelled, or past its client deadline) the
/// connection is closed, not returned, and PostgreSQL stops the statement when it next checks
/// its client (`client_connection_check_interval`, 1 s). A connection that died while idle in
/// the pool (a database restart) fails before anything ran; the read is tried once more on a
/// fresh one (see `pg_query read`).
pub struct OneShotRead {
    conn: Option<PoolConnection<Postgres>>,
    /// When a connection taken from the parked ones was first parked.
    since: Option<std::time::Instant>,
    /// Where a cleanly finished main-pool connection is parked (not for the plain fallback).
    park: Option<std::sync::Arc<crate::db::warm::Warm>>,
}

impl OneShotRead {
    /// A main-pool connection for one read (a parked one first); `retry` after the previous
    /// one was found dead: then every parked one goes back to the pool, which tests and
    /// replaces dead ones, and the read takes a connection from it.
    pub async fn acquire(pools: &Pools, retry: bool) -> Result<OneShotRead, ToolError> {
        let pool = pools.pool();
        if retry {
            pools.warm.release(None);
        }
        if (retry || pools.known_down.load(Ordering::Relaxed)) && pool.num_idle() == 0 {
            probe_or_clear(pools).await?;
        }
        let parked = match retry || !pools.fast_reads() {
            true => None,
            false => pools.warm.take(),
        };
        let (conn, since) = match parked {
            Some(t) => (t.conn, Some(t.since)),
            None => (Box::pin(acquire_fresh(pools, pool)).await?, None),
        };
        Ok(OneShotRead {
            conn: Some(conn),
            since,
            park: pools.fast_reads().then(|| pools.warm.clone()),
        })
    }

    /// The connection, for the executor.
    pub fn conn(&mut self) -> &mut sqlx::PgConnection {
        self.conn
            .as_mut()
            .expect("the connection is held until finish or drop")
    }

    /// The statement ended (with rows or with an error PostgreSQL reported): the connection
    /// is idle, outside any transaction, and is parked for the next read (or goes back to the
    /// pool). Without this, dropping closes it.
    pub fn finish(mut self) {
        let conn = self.conn.take().expect("finish is called once");
        match self.park.take() {
            Some(warm) => warm.park(conn, self.since),
            None => drop(conn),
        }
    }
}

impl Drop for OneShotRead {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.conn {
            conn.close_on_drop();
        }
    }
}

/// A pooled connection used **outside** any transaction block, for the few statements
/// PostgreSQL refuses inside one (`VACUUM`, `REINDEX DATABASE`, `… CONCURRENTLY`).
///
/// There is no `BEGIN`, so `SET LOCAL` cannot carry the per-call limits; they are set for the
/// connection instead (`SET statement_timeout`, `SET lock_timeout`) and `RESET` by
/// [`AutocommitConn::run`] before the connection goes back to the pool. If it is dropped
/// without a successful release (an error, or the caller went away mid-statement) the
/// connection is closed rather than returned with our settings still on it, and a running
/// statement is cancelled in PostgreSQL.
pub struct AutocommitConn {
    conn: PoolConnection<Postgres>,
    /// Our session-level settings are on the connection (or a statement may be running).
    dirty: bool,
    pid: i32,
    cancel_pool: PgPool,
}

impl AutocommitConn {
    /// Acquire a connection from the main pool and apply the per-call limits to it, and the
    /// caller's `role` (session-level `SET ROLE`: there is no transaction for `SET LOCAL`).
    pub async fn acquire(
        pools: &Pools,
        role: Option<&Role>,
        limits: &Limits,
    ) -> Result<AutocommitConn, ToolError> {
        // Only numbers from our configuration and a validated, quoted role go into this text.
        let sql = format!(
            "SET default_transaction_read_only = off; SET statement_timeout = {}; SET lock_timeout = {}{}; SELECT pg_backend_pid()",
            limits.statement_timeout.as_millis().max(1),
            limits.lock_timeout.as_millis().max(1),
            roles::set_session_sql(role)
        );
        let (conn, pid) = acquire_prepared(pools, pools.pool(), &sql).await?;
        Ok(AutocommitConn {
            conn,
            dirty: true,
            pid,
            cancel_pool: pools.health.clone(),
        })
    }

    /// Run one statement (simple protocol, so nothing wraps it in a transaction), then give
    /// the connection back. `sql` must be one statement the caller has parsed and checked, or
    /// built from constants and quoted identifiers. If the database stops answering past the
    /// client-side deadline the connection is closed and the statement cancelled, never reused.
    pub async fn run(mut self, sql: String, limits: &Limits) -> Result<(), ToolError> {
        let res = tokio::time::timeout(
            limits.client_deadline(),
            executor::simple_owned(&mut self.conn, sql),
        )
        .await;
        match res {
            Ok(r) => {
                self.release().await;
                r.map_err(|e| ToolError::from_sqlx(e, 0))
            }
            // Dropping `self` closes the connection and cancels the statement.
            Err(_) => Err(super::deadline_error()),
        }
    }

    /// Reset our settings (and the caller's role) and return the connection to the pool (the
    /// drop path closes it instead if the reset fails).
    async fn release(mut self) {
        if simple(
            &mut self.conn,
            "RESET default_transaction_read_only; RESET statement_timeout; RESET lock_timeout; RESET ROLE",
        )
        .await
        .is_ok()
        {
            self.dirty = false;
        }
    }
}

impl Drop for AutocommitConn {
    fn drop(&mut self) {
        if self.dirty {
            self.conn.close_on_drop();
            cancel_in_background(self.cancel_pool.clone(), self.pid);
        }
    }
}

/// Ask PostgreSQL to cancel whatever backend `pid` is running (same role: no extra privilege).
pub(crate) async fn cancel_backend(pool: &PgPool, pid: i32) {
    let res = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .execute(pool),
    )
    .await;
    match res {
        Ok(Ok(_)) => tracing::info!(pid, "cancelled an abandoned statement in PostgreSQL"),
        _ => tracing::warn!(
            pid,
            "could not send a cancel request for an abandoned statement"
        ),
    }
}

/// [`cancel_backend`] from a `Drop`: the guard cannot wait, so the request goes out in a task
/// of its own.
pub(crate) fn cancel_in_background(pool: PgPool, pid: i32) {
    tokio::spawn(async move { cancel_backend(&pool, pid).await });
}

/// Acquire a pooled connection and run `sql` (our own set-up statements, ending in
/// `SELECT pg_backend_pid()`) on it. Two attempts: a pooled connection may have died while idle
/// (database restart); that shows up here, before anything of the caller's ran, so trying once
/// more on a fresh connection is safe.
async fn acquire_prepared(
    pools: &Pools,
    pool: &PgPool,
    sql: &str,
) -> Result<(PoolConnection<Postgres>, i32), ToolError> {
    let mut last = None;
    for attempt in 0..2 {
        // Fast path during an outage: no idle connection to try, and the database was found
        // unreachable (or the pooled connection just died): one direct connection attempt
        // decides at once. A refused connection answers in well under a millisecond.
        if (attempt > 0 || pools.known_down.load(Ordering::Relaxed)) && pool.num_idle() == 0 {
            probe_or_clear(pools).await?;
        }
        // The retry passes over parked connections (after a restart they are as dead as the
        // first one was) and gives them back to the pool, which tests them.
        let mut conn = if attempt == 0 {
            acquire(pools, pool).await?
        } else {
            pools.warm.release(None);
            acquire_fresh(pools, pool).await?
        };
        match begin_returning_pid(&mut conn, sql.to_owned()).await {
            Ok(pid) => return Ok((conn, pid)),
            Err(e) => {
                conn.close_on_drop();
                if !ToolError::is_connection_loss(&e) {
                    return Err(ToolError::from_sqlx(e, 0));
                }
                last = Some(e);
            }
        }
    }
    // Both connections were dead: say "unreachable" if that is why, else what broke.
    probe_or_clear(pools).await?;
    Err(ToolError::from_sqlx(
        last.expect("the loop ran at least once and stored its error"),
        0,
    ))
}

async fn begin_returning_pid(
    conn: &mut sqlx::PgConnection,
    sql: String,
) -> Result<i32, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    rows.last()
        .map(|r| r.try_get::<i32, _>(0))
        .unwrap_or_else(|| Err(sqlx::Error::RowNotFound))
}
