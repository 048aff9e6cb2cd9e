//! Statements on a pg_tx session's connection: the client deadline ([`bounded`]), the
//! savepoint our reads, dry runs and operations run under ([`under_savepoint`]), a write
//! applied to the transaction itself ([`in_transaction`]), our own control statements
//! ([`session_simple`]), and the statement bookkeeping that keeps the session's state true
//! ([`settle_error`]). Tools call these instead of `start_statement`/`end_statement`.

use sqlx::PgConnection;

use crate::db::executor::{self, simple};
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
/// the handle; any other error aborts the transaction, so it is marked failed.
pub(crate) async fn session_simple(g: &mut SessionGuard, sql: String) -> Result<(), ToolError> {
    g.start_statement();
    let res = executor::simple_owned(g.conn(), sql).await;
    match res {
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
/// client-side deadline.
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
    let res = f(g.conn()).await;
    if let Err(e) = &res
        && is_connection_gone(e)
    {
        let e = res.err().expect("checked above");
        return Err(settle_error(g, e));
    }
    let close = if res.is_ok() && keep {
        "RELEASE SAVEPOINT coldquery_sp"
    } else {
        "ROLLBACK TO SAVEPOINT coldquery_sp; RELEASE SAVEPOINT coldquery_sp"
    };
    if let Err(e) = simple(g.conn(), close).await {
        return Err(settle_error(g, ToolError::from_sqlx(e, 0)));
    }
    g.end_statement(res.is_ok(), None);
    res
}

/// Run `f` on the session's connection in its transaction itself (a write applied to the
/// session), with the statement bookkeeping, bounded by the client-side deadline: a failure
/// PostgreSQL reports aborts the transaction, so the session is marked failed (and commit will
/// say it rolled back).
pub(crate) async fn in_transaction<T>(
    g: &mut SessionGuard,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    bounded(g, async move |g| {
        g.start_statement();
        match f(g.conn()).await {
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
