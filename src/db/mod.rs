//! Database access: the pools, the executor (limits, caps, binding), value mapping, and the
//! transaction shapes stateless calls run in (read-only and rolled back, committed, dry-run).

pub mod audit;
pub mod capped;
pub(crate) mod catalog;
pub mod executor;
pub mod per_caller;
pub mod sessions;
pub mod values;

use std::time::Duration;

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::ToolError;
use executor::{Limits, simple};

/// The two pools: one serves tool calls, a tiny one serves `/health` and monitoring so that a
/// saturated pool can never make the server look dead to its orchestrator.
#[derive(Clone)]
pub struct Pools {
    /// Stateless tool calls.
    pub main: PgPool,
    /// Health checks and monitoring.
    pub health: PgPool,
    /// `pg_monitor` calls: a pool of their own, so that a main pool full of one caller's long
    /// reads never blocks a look at what is going on (and never takes `/health`'s connections).
    pub monitor: PgPool,
}

impl Pools {
    /// Build both pools lazily: the server starts (and `/health` can say 503) even when the
    /// database is down at start-up.
    pub fn connect_lazy(options: PgConnectOptions, pool_size: u32) -> Pools {
        let main = PgPoolOptions::new()
            .max_connections(pool_size)
            // A call that cannot get a connection within 5 s is better told to retry than left
            // hanging behind long-running statements.
            .acquire_timeout(Duration::from_secs(5))
            // No ping per acquire: it costs a round trip on every call. A dead connection fails
            // at BEGIN, before anything ran, and `PooledTx::begin` retries once on a fresh one.
            .test_before_acquire(false)
            // Idle connections are given back after 10 minutes: memory matters on a 4 GB Pi.
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            .connect_lazy_with(options.clone());
        let health = PgPoolOptions::new()
            // Two connections: a scrape and a probe at the same time never wait on each other.
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(1))
            .test_before_acquire(false)
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect_lazy_with(options.clone().application_name("coldquery-health"));
        let monitor = PgPoolOptions::new()
            // Two: monitoring is one operator looking at a problem, not a workload.
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(2))
            .test_before_acquire(false)
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            .connect_lazy_with(options.application_name("coldquery-monitor"));
        Pools {
            main,
            health,
            monitor,
        }
    }
}

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
    /// Acquire a connection and `BEGIN` (READ ONLY when asked), with the per-call limits.
    pub async fn begin(
        pools: &Pools,
        read_only: bool,
        limits: &Limits,
    ) -> Result<PooledTx, ToolError> {
        let begin = if read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN"
        };
        // The backend pid rides along in the same round trip: it is what a cancel request
        // needs if this call is abandoned mid-statement.
        let sql = format!(
            "{begin}; {}; SELECT pg_backend_pid()",
            limits.set_local_sql()
        );
        let (conn, pid) = acquire_prepared(&pools.main, &sql).await?;
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
    pub async fn begin_monitor(pools: &Pools, limits: &Limits) -> Result<PooledTx, ToolError> {
        let sql = format!(
            "BEGIN READ ONLY; {}; SELECT pg_backend_pid()",
            limits.set_local_sql()
        );
        let (conn, pid) = acquire_prepared(&pools.monitor, &sql).await?;
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
            let pool = self.cancel_pool.clone();
            let pid = self.pid;
            tokio::spawn(async move { sessions::cancel_backend(&pool, pid).await });
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
    /// Acquire a connection from the main pool and apply the per-call limits to it.
    pub async fn acquire(pools: &Pools, limits: &Limits) -> Result<AutocommitConn, ToolError> {
        // Only numbers from our configuration go into this text.
        let sql = format!(
            "SET statement_timeout = {}; SET lock_timeout = {}; SELECT pg_backend_pid()",
            limits.statement_timeout.as_millis().max(1),
            limits.lock_timeout.as_millis().max(1)
        );
        let (conn, pid) = acquire_prepared(&pools.main, &sql).await?;
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
            Err(_) => Err(ToolError::Timeout(
                "the database did not answer in time; the connection was closed. Check GET \
                 /health and retry"
                    .into(),
            )),
        }
    }

    /// Reset our settings and return the connection to the pool (the drop path closes it
    /// instead if the reset fails).
    async fn release(mut self) {
        if simple(
            &mut self.conn,
            "RESET statement_timeout; RESET lock_timeout",
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
            let pool = self.cancel_pool.clone();
            let pid = self.pid;
            tokio::spawn(async move { sessions::cancel_backend(&pool, pid).await });
        }
    }
}

/// Acquire a pooled connection and run `sql` (our own set-up statements, ending in
/// `SELECT pg_backend_pid()`) on it. Two attempts: a pooled connection may have died while idle
/// (database restart); that shows up here, before anything of the caller's ran, so trying once
/// more on a fresh connection is safe.
async fn acquire_prepared(
    pool: &PgPool,
    sql: &str,
) -> Result<(PoolConnection<Postgres>, i32), ToolError> {
    let mut last = None;
    for _ in 0..2 {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| ToolError::from_sqlx(e, 0))?;
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

/// Run `SELECT 1` on the health pool; used by `/health` and `coldquery check`.
pub async fn health_check(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    simple(&mut conn, "SELECT 1").await
}
