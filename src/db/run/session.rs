//! Statements on a pg_tx session's connection: the client deadline ([`bounded`]), the
//! savepoint our reads, dry runs and operations run under ([`under_savepoint`], and
//! [`statement_under_savepoint`] for one statement that keeps the statement cache), a write
//! applied to the transaction itself ([`in_transaction`]), our own control statements
//! ([`session_simple`]), and the statement bookkeeping that keeps the session's state true
//! ([`settle_error`]). Tools call these instead of `start_statement`/`end_statement`.
//!
//! Cached statements: `pg_query` keeps the connection's statement cache from one call to the
//! next (a Parse round trip saved per repeated statement). A cached statement is stale when a
//! table it uses changed shape since it was prepared: the session's own DDL (or a function's or
//! trigger's), a rolled-back savepoint undoing DDL, or another connection's DDL once a
//! rolled-back savepoint (after every read, dry run, failure, `rollback_to`) released the
//! locks the statement took. Under a savepoint a stale statement costs a retry; applied to the
//! transaction it would abort it, so there no cached statement runs. A successful read leaves
//! its savepoint open until the session's next statement ([`SessionGuard::defer_read_close`]).

use sqlx::PgConnection;

use serde_json::Value;

use crate::db::executor::{self, Limits, RowMode, RowSet, StatementRef, simple};
use crate::db::sessions::SessionGuard;
use crate::error::ToolError;

/// Savepoint our session-scoped work runs under (names starting `coldquery_` are ours).
const SP: &str = "coldquery_sp";

/// Whether an error means the session's connection is gone.
pub(crate) fn is_connection_gone(e: &ToolError) -> bool {
    match e {
        ToolError::Unavailable(_) => true,
        ToolError::Database(d) => d
            .sqlstate
            .as_deref()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => false,
    }
}

/// Run `f` on a session within the client-side deadline, the same as pooled calls get: a
/// session whose server-side timeout was switched off, or a database that stopped answering,
/// still ends the call in time. Past the deadline the statement is cancelled in PostgreSQL and
/// the transaction is marked failed.
pub(crate) async fn bounded<T>(
    g: &mut SessionGuard,
    f: impl AsyncFnOnce(&mut SessionGuard) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let deadline = g.deadline();
    match tokio::time::timeout(deadline, f(g)).await {
        Ok(r) => r,
        Err(_) => Err(g.deadline_passed(deadline)),
    }
}

/// Run one of our own statements on a session, keeping its state true: a connection loss drops
/// the handle; any other error aborts the transaction, so it is marked failed. A read's
/// savepoint left open is rolled back in the same round trip ([`SessionGuard::simple`]).
pub(crate) async fn session_simple(g: &mut SessionGuard, sql: String) -> Result<(), ToolError> {
    g.start_statement();
    match g.simple(sql).await {
        Ok(()) => {
            g.end_statement(true, None);
            Ok(())
        }
        Err(e) => {
            let err = ToolError::from_sqlx(e, 0);
            Err(settle_error(g, err))
        }
    }
}

/// Run `f` on the session's connection under a savepoint. `read_only` turns
/// `transaction_read_only` on inside it; the savepoint is rolled back afterwards unless `keep`
/// and `f` succeeded. Earlier work of the session is untouched either way. Bounded by the
/// client-side deadline. The caller has made sure no cached statement is stale (see
/// [`Sessions::acquire`](crate::db::sessions::Sessions::acquire)), or uses
/// [`statement_under_savepoint`].
pub(crate) async fn under_savepoint<T>(
    g: &mut SessionGuard,
    read_only: bool,
    keep: bool,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    bounded(g, async move |g| {
        savepoint_scope(g, read_only, keep, f).await
    })
    .await
}

/// One statement under a savepoint that is rolled back (a `pg_query` read, explain or dry run
/// in a session, whose call keeps the connection's statement cache), like [`under_savepoint`]
/// with `keep` off, retried once with fresh statements when it fails as a statement prepared
/// against an older catalog would (a stale plan, or an analysis error of class 42 such as a
/// parameter type that no longer fits; [`executor::may_be_stale`]) while the connection held
/// cached statements. Safe: the failed attempt was rolled back to the savepoint, so the
/// session is as it was, and a read cannot write.
///
/// Why a cached statement can be stale inside a session: the session's own DDL (or a function
/// or trigger's) since it was prepared; a savepoint rolled back (ours after every read, dry run
/// or failure, or `pg_tx rollback_to`) undoing DDL, or releasing the locks it took, so that
/// another connection could ALTER the table in between. (A plain function rather than a
/// closure called twice, which would not give the `Send` future the MCP service needs.)
pub(crate) async fn statement_under_savepoint(
    g: &mut SessionGuard,
    read_only: bool,
    original: &str,
    st: &StatementRef,
    params: &[Value],
    limits: &Limits,
    mode: RowMode,
) -> Result<RowSet, ToolError> {
    bounded(g, async move |g| {
        let cached = g.has_cached_statements();
        let first = savepoint_scope(g, read_only, false, async |c| {
            executor::run_statement(c, original, st, params, limits, mode).await
        })
        .await;
        match first {
            // The failed statement closed the cache (`run_statement` does on any error).
            Err(e) if cached && executor::may_be_stale(&e) => {
                savepoint_scope(g, read_only, false, async |c| {
                    executor::run_statement(c, original, st, params, limits, mode).await
                })
                .await
            }
            r => r,
        }
    })
    .await
}

async fn savepoint_scope<T>(
    g: &mut SessionGuard,
    read_only: bool,
    keep: bool,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let open = if read_only {
        format!("SAVEPOINT {SP}; SET LOCAL transaction_read_only = on")
    } else {
        format!("SAVEPOINT {SP}")
    };
    session_simple(g, open).await?;
    g.start_statement();
    let res = f(g.conn().await?).await;
    if let Err(e) = &res
        && is_connection_gone(e)
    {
        let e = res.err().expect("checked above");
        return Err(settle_error(g, e));
    }
    if res.is_ok() && read_only && !keep {
        // A read that worked: its savepoint is rolled back with the session's next statement
        // (or ended by its ROLLBACK), not in a round trip of its own.
        g.defer_read_close();
        g.end_statement(true, None);
        return res;
    }
    let close = if res.is_ok() && keep {
        "RELEASE SAVEPOINT coldquery_sp"
    } else {
        "ROLLBACK TO SAVEPOINT coldquery_sp; RELEASE SAVEPOINT coldquery_sp"
    };
    if let Err(e) = simple(g.conn().await?, close).await {
        return Err(settle_error(g, ToolError::from_sqlx(e, 0)));
    }
    g.end_statement(res.is_ok(), None);
    res
}

/// Run `f` on the session's connection in its transaction itself (a write applied to the
/// session), with the statement bookkeeping, bounded by the client-side deadline: a failure
/// PostgreSQL reports aborts the transaction, so the session is marked failed (and commit will
/// say it rolled back). `f` gets `limits` with [`Limits::uncached`] on: a statement found in
/// the connection's cache may predate a change of its tables, and here a stale plan could not
/// be retried; a statement prepared now cannot be stale, since the transaction holds the locks
/// it took until it ends.
pub(crate) async fn in_transaction<T>(
    g: &mut SessionGuard,
    limits: &Limits,
    f: impl AsyncFnOnce(&mut PgConnection, &Limits) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let limits = Limits {
        uncached: true,
        ..*limits
    };
    bounded(g, async move |g| {
        g.start_statement();
        // A read's savepoint left open is rolled back first (`conn` records a failure).
        let c = g.conn().await?;
        match f(c, &limits).await {
            Ok(v) => {
                g.end_statement(true, None);
                Ok(v)
            }
            Err(e) => Err(settle_error(g, e)),
        }
    })
    .await
}

/// Record a failed statement on the session and return the error to report.
pub(crate) fn settle_error(g: &mut SessionGuard, err: ToolError) -> ToolError {
    if is_connection_gone(&err) {
        g.end_statement(false, None);
        return g.mark_lost(&err.to_string());
    }
    // A statement refused by the cost ceiling never ran (EXPLAIN priced it and succeeded):
    // the transaction is as healthy as before.
    if matches!(err, ToolError::CostExceeded(_)) {
        g.end_statement(false, None);
        return err;
    }
    g.end_statement(false, Some(err.to_string()));
    err
}
