//! Running a statement: the one place that knows the transaction shapes a call runs in, and
//! what each costs. A tool parses and authorises, picks a shape here, passes a closure that
//! runs its statements (through [`crate::db::executor`]), and renders the result. No tool
//! opens, ends or cancels a transaction itself: the guards in [`guard`] are used only here.
//!
//! Every shape owns, for the statements inside it: `BEGIN` and the `SET LOCAL` timeouts (or
//! the connection's startup options), the client-side deadline ([`with_deadline`], for
//! sessions [`session::bounded`]), the retry after a stale cached plan ([`retry_stale`] for
//! pooled shapes; in a session only under a savepoint, [`session::statement_under_savepoint`],
//! since its transaction cannot be replayed, and a write applied to it never runs a cached
//! statement, [`executor::Limits::uncached`]), savepoints, the session's statement bookkeeping
//! ([`session::settle_error`]) and how the transaction ends.
//!
//! # Round trips per shape
//!
//! Counted as the client waits for `ReadyForQuery` (`tests/roundtrips.rs` checks the first four
//! rows, a catalog read for the second, and a session's calls). "stmt" is one cached statement
//! (Bind/Execute/Sync); a first use adds a Parse/Describe round trip (every call, when values
//! other than small integers are written into the text, which the shape cache binds,
//! [`crate::safety::shapes::Bound`]: `tests/roundtrips.rs` counts 1 and 2; a full statement
//! cache is emptied in one round trip per hundred new texts, [`executor::prepare`]), a cost
//! ceiling adds one EXPLAIN, a text-cast wrapper one more prepare. sqlx's release ping of a pooled connection
//! runs after the call has its rows and is not counted; a one-shot read has none (its
//! connection is parked for the next read: [`crate::db::warm`]).
//!
//! | Shape | Used by | Round trips |
//! |---|---|---|
//! | [`one_shot_read`]: autocommit on a read-first connection ([`guard::OneShotRead`]) | `pg_query read` of reviewed code, no role | 1: stmt |
//! | [`pooled`] [`Pooled::READ`]: read-only, [`End::Discard`] ([`guard::PooledTx`]) | other reads, `explain`, catalog reads (`pg_schema`, `pg_admin`, resources, completions) | 3: `BEGIN READ ONLY; SET LOCAL …; SELECT pg_backend_pid()`, stmt, `ROLLBACK; SELECT pg_advisory_unlock_all()` |
//! | [`pooled`] read-write, [`End::Commit`] / [`End::Rollback`] | `write`, `transaction`, `pg_schema` DDL | 3: `BEGIN READ WRITE; …`, stmt (one per operation), `COMMIT`/`ROLLBACK` with the clean-up of the shared connection |
//! | [`monitor_read`] | `pg_monitor` | 3, as a pooled read, on the monitoring pool |
//! | [`autocommit`] ([`guard::AutocommitConn`]) | `VACUUM`, `REINDEX DATABASE`, `… CONCURRENTLY` | 3: `SET …; SELECT pg_backend_pid()`, the statement, `RESET …` |
//! | `pg_tx begin` ([`crate::db::sessions::Sessions::begin`]) | a session's start, on a spare connection | 1: `SET application_name …; BEGIN …; SET LOCAL …; SELECT pg_backend_pid()` |
//! | [`session::statement_under_savepoint`], read-only | `read`, `explain` in a pg_tx session | 2: `SAVEPOINT; SET LOCAL transaction_read_only = on` (after `ROLLBACK TO; RELEASE` of the previous read's savepoint, same message), stmt; the savepoint stays open until the session's next statement (+1 stmt retry with fresh statements after a stale one) |
//! | [`session::statement_under_savepoint`], read-write | `write` with `dry_run` in a pg_tx session | 3: `SAVEPOINT`, stmt, `ROLLBACK TO; RELEASE` |
//! | [`session::under_savepoint`] | `transaction`, cursors, `pg_schema`/`pg_admin` in a pg_tx session | 3: `SAVEPOINT` (+ `SET LOCAL transaction_read_only`), stmt, `RELEASE` or `ROLLBACK TO; RELEASE` (read-only and rolled back: 2, the close deferred as for reads); these calls first close the statement cache (+1 when it is not empty) |
//! | [`session::in_transaction`] | a write applied to a pg_tx session | 1: stmt (+1 `ROLLBACK TO; RELEASE` when a read's savepoint is open; a statement found in the cache is prepared again after closing it, +1) |
//! | [`session::session_simple`] | `pg_tx savepoint`/`release`/`rollback_to` | 1 (a read's open savepoint is closed in the same message) |
//! | `pg_tx commit` / `rollback` ([`crate::db::sessions::SessionGuard::finish`]) | a session's end | 1: `COMMIT` (`ROLLBACK TO; RELEASE; COMMIT` after a read) or `ROLLBACK`; after the reply, the reset of a reused connection: close the statement cache, `DISCARD ALL` (+ `SET application_name` when it was not opened as a spare) |
//! | [`cursor`] `declare` / `fetch_page` | continuation cursors | 1 each (+1 `MOVE` when a page was cut by the byte cap) |

pub mod cursor;
pub(crate) mod guard;
pub mod session;

use std::future::Future;

use serde_json::Value;
use sqlx::PgConnection;

use crate::db::Pools;
use crate::db::executor::{self, Limits, RowMode, RowSet, StatementRef};
use crate::db::roles::Role;
use crate::error::ToolError;
use guard::{AutocommitConn, OneShotRead, PooledTx};

pub(crate) use session::{
    bounded, in_transaction, session_simple, statement_under_savepoint, under_savepoint,
};

/// The error of a call past its client-side deadline on a pooled connection (closed, never
/// reused).
pub(crate) fn deadline_error() -> ToolError {
    ToolError::Timeout(
        "the database did not answer in time; the connection was closed. Check GET /health and retry"
            .into(),
    )
}

/// Bound a call by the client-side deadline (the server-side statement_timeout fires first in
/// normal operation; this catches a database that stopped answering).
pub(crate) async fn with_deadline<T>(
    limits: &Limits,
    fut: impl Future<Output = Result<T, ToolError>>,
) -> Result<T, ToolError> {
    match tokio::time::timeout(limits.client_deadline(), fut).await {
        Ok(r) => r,
        Err(_) => Err(deadline_error()),
    }
}

/// Run a pooled call, and once more with fresh statements if it failed only because a cached
/// statement went stale after DDL on that connection (nothing ran, so retrying is safe).
pub(crate) async fn retry_stale<T, F, Fut>(limits: &Limits, attempt: F) -> Result<T, ToolError>
where
    F: Fn(Limits) -> Fut,
    Fut: Future<Output = Result<T, ToolError>>,
{
    match attempt(*limits).await {
        Err(e) if executor::is_stale_plan(&e) => {
            attempt(Limits {
                fresh_statements: true,
                ..*limits
            })
            .await
        }
        r => r,
    }
}

/// How a pooled transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// `COMMIT`; the result says whether PostgreSQL committed.
    Commit,
    /// `ROLLBACK` (a dry run), a failure of it reported.
    Rollback,
    /// `ROLLBACK`, its failure ignored (a read: its rows are the answer, and the drop path
    /// closes a connection whose rollback failed).
    Discard,
}

impl End {
    /// `Commit` when `commit`, else `Rollback`.
    pub(crate) fn commit_if(commit: bool) -> End {
        if commit { End::Commit } else { End::Rollback }
    }
}

/// A pooled transaction: what it may do and how it ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pooled {
    /// `BEGIN READ ONLY` rather than `READ WRITE`.
    pub read_only: bool,
    /// How it ends.
    pub end: End,
    /// Procedural code ran: close the connection instead of returning it to the pool.
    pub close_connection: bool,
}

impl Pooled {
    /// A read: `BEGIN READ ONLY`, always rolled back (even a statement that slipped past the
    /// classifier cannot leave anything behind), the connection reused.
    pub(crate) const READ: Pooled = Pooled {
        read_only: true,
        end: End::Discard,
        close_connection: false,
    };
}

/// Run `f` in a pooled transaction of shape `shape`, as `role`, within the client deadline.
/// Returns `f`'s result and whether it committed; a failure of `f` always rolls back. Callers
/// wrap it in [`retry_stale`] (an async closure called twice would not give the `Send` future
/// the MCP service needs, so the retry stays outside).
pub(crate) async fn pooled<T>(
    pools: &Pools,
    role: Option<&Role>,
    shape: Pooled,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, ToolError>,
) -> Result<(T, bool), ToolError> {
    let tx = PooledTx::begin(pools, role, shape.read_only, limits).await?;
    in_pooled(tx, shape, limits, f).await
}

/// [`pooled`] with [`Pooled::READ`] on the monitoring pool, for `pg_monitor`: a main pool full
/// of one caller's long reads never blocks a look at what is going on.
pub(crate) async fn monitor_read<T>(
    pools: &Pools,
    role: Option<&Role>,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let tx = PooledTx::begin_monitor(pools, role, limits).await?;
    Ok(in_pooled(tx, Pooled::READ, limits, f).await?.0)
}

/// The body every pooled shape shares: `f` under the deadline, then the transaction's end.
async fn in_pooled<T>(
    mut tx: PooledTx,
    shape: Pooled,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, ToolError>,
) -> Result<(T, bool), ToolError> {
    if shape.close_connection {
        tx.close_afterwards();
    }
    let res = with_deadline(limits, f(tx.conn())).await;
    match (res, shape.end) {
        (Ok(v), End::Discard) => {
            tx.abandon().await;
            Ok((v, false))
        }
        (Ok(v), end) => Ok((v, tx.finish(end == End::Commit).await?)),
        (Err(e), _) => {
            tx.abandon().await;
            Err(e)
        }
    }
}

/// Run one read statement as a single autocommit statement on a read-first main-pool
/// connection ([`OneShotRead`]): one round trip for a cached statement. Only for statements
/// the policy point found free of unreviewed code, and for callers without a role (there is no
/// transaction for a `SET LOCAL ROLE`). A connection that died idle in the pool is found before
/// anything ran and replaced once; a stale cached plan is retried once with fresh statements.
pub(crate) async fn one_shot_read(
    pools: &Pools,
    original: &str,
    st: &StatementRef,
    params: &[Value],
    limits: &Limits,
) -> Result<RowSet, ToolError> {
    retry_stale(limits, |limits: Limits| async move {
        let limits = &limits;
        let mut retry = false;
        loop {
            let mut c = OneShotRead::acquire(pools, retry).await?;
            let res = with_deadline(
                limits,
                executor::run_statement(c.conn(), original, st, params, limits, RowMode::Read),
            )
            .await;
            match res {
                // A connection that died idle in the pool: nothing ran; once more.
                Err(e) if e.is_lost_connection() && !retry => retry = true,
                // Dropping a lost (or timed-out) connection closes it.
                Err(e) if e.is_lost_connection() || matches!(e, ToolError::Timeout(_)) => {
                    return Err(e);
                }
                res => {
                    c.finish();
                    return res;
                }
            }
        }
    })
    .await
}

/// Run one statement outside any transaction block ([`AutocommitConn`]), as PostgreSQL requires
/// for `VACUUM`, `REINDEX DATABASE` and `… CONCURRENTLY`, as `role`, bounded by the per-call
/// limits set on the connection and the client deadline. `sql` must be one statement the caller
/// parsed and checked, or built from constants and quoted identifiers. Never retried: it may
/// have run.
pub(crate) async fn autocommit(
    pools: &Pools,
    role: Option<&Role>,
    sql: String,
    limits: &Limits,
) -> Result<(), ToolError> {
    AutocommitConn::acquire(pools, role, limits)
        .await?
        .run(sql, limits)
        .await
}
