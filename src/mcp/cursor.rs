//! `pg_query fetch` and `close_cursor`, and the continuation of a truncated `read` into a
//! cursor (contract §8 "Continuation cursors"). The cursors themselves live in
//! [`crate::db::cursors`]; this is the tool side: results (typed [`RowResult`] pages with their
//! `next_cursor` and hint), sessions.

use serde_json::Value;

use crate::caller::Caller;
use crate::db::cursors::{self, Cursors, Home};
use crate::db::executor::{Limits, RowSet, StatementRef, simple_owned};
use crate::db::run::cursor::{declare, fetch_page};
use crate::db::run::under_savepoint;
use crate::db::sessions::SessionGuard;
use crate::error::ToolError;
use crate::mcp::common::limits_for;
use crate::mcp::query::QueryArgs;
use crate::mcp::results::{CursorClosed, QueryResult, RowResult};
use crate::state::AppState;

/// The row result of a page, with `next_cursor` (and a hint naming it) while rows remain.
fn page(rows: RowSet, limits: &Limits, next: Option<String>, ttl_s: u64) -> RowResult {
    let mut out = RowResult::new(rows, limits);
    if let Some(next) = next {
        let more = format!(
            "more rows: pg_query fetch with cursor: next_cursor (same snapshot; closed after \
             {ttl_s}s idle, close_cursor when done)"
        );
        out.hint = Some(match out.hint {
            Some(h) => format!("{h}. Or, for the {more}"),
            None => more,
        });
        out.next_cursor = Some(next);
    }
    out
}

/// A truncated first page returned without a cursor, saying why.
fn without_cursor(first: RowSet, limits: &Limits, why: &str) -> RowResult {
    let mut out = RowResult::new(first, limits);
    let hint = out.hint.unwrap_or_default();
    out.hint = Some(format!("{hint}. No next_cursor: {why}"));
    out
}

fn cap_reached(cursors: &Cursors) -> String {
    format!(
        "the cursor cap was reached (COLDQUERY_MAX_CURSORS={} open cursors per caller); fetch \
         one to its end or close_cursor it, then read again",
        cursors.max_per_owner()
    )
}

/// The read a cursor continues: the caller's SQL, its parsed statement and parameters.
pub(crate) struct ReadCall<'a> {
    /// The caller's SQL (error positions).
    pub sql: &'a str,
    /// The statement.
    pub st: &'a StatementRef,
    /// Its parameters.
    pub params: &'a [Value],
}

/// A pooled read's result: as is when complete; when truncated, the first page of a cursor
/// (one snapshot for every page) with its `next_cursor`.
pub(crate) async fn continue_pooled(
    state: &AppState,
    caller: &Caller,
    sql: &str,
    st: &StatementRef,
    params: &[Value],
    limits: &Limits,
    first: RowSet,
) -> RowResult {
    if first.truncated.is_none() {
        return RowResult::new(first, limits);
    }
    let cursors = state.sessions.cursors();
    let Some(res) = cursors.reserve(&caller.owner) else {
        return without_cursor(first, limits, &cap_reached(cursors));
    };
    // The statement runs again under the cursor's snapshot, so that the first page and the
    // later ones are one consistent result.
    match cursors
        .open_dedicated(
            res.with_role(caller.role()),
            caller.mcp_session.as_deref(),
            sql,
            st,
            params,
            limits,
        )
        .await
    {
        Ok((rows, next)) => page(rows, limits, next, cursors.ttl().as_secs()),
        Err(e) => {
            tracing::warn!(error = %e, "could not open a continuation cursor");
            without_cursor(
                first,
                limits,
                &format!("a cursor could not be opened ({}); retry", e.category()),
            )
        }
    }
}

/// A read inside a pg_tx session: when truncated, its cursor is declared in the session's
/// transaction (it sees the session's uncommitted work) and the first page comes from it.
pub(crate) async fn continue_in_session(
    state: &AppState,
    caller: &Caller,
    g: &mut SessionGuard,
    read: ReadCall<'_>,
    limits: &Limits,
    first: RowSet,
) -> Result<RowResult, ToolError> {
    let ReadCall { sql, st, params } = read;
    if first.truncated.is_none() {
        return Ok(RowResult::new(first, limits));
    }
    let cursors = state.sessions.cursors();
    let Some(res) = cursors.reserve(&caller.owner) else {
        return Ok(without_cursor(first, limits, &cap_reached(cursors)));
    };
    let name = Cursors::new_name()?;
    // Declared under a savepoint that is kept (a failing DECLARE leaves the session as it
    // was); pages are fetched under read-only savepoints that are rolled back, which does not
    // move the cursor back.
    under_savepoint(g, false, true, async |c| {
        declare(c, &name, sql, st, params, limits).await
    })
    .await?;
    let mut delivered = 0u64;
    let (rows, more) = under_savepoint(g, true, false, async |c| {
        fetch_page(c, &name, &st.command, &mut delivered, limits).await
    })
    .await?;
    if !more {
        close_in_session(g, &name).await;
        return Ok(page(rows, limits, None, 0));
    }
    let session_id = g.slot().id.clone();
    let id = cursors.register_in_session(
        res,
        caller.mcp_session.as_deref(),
        &session_id,
        name,
        st.command.clone(),
        delivered,
    )?;
    Ok(page(rows, limits, Some(id), cursors.ttl().as_secs()))
}

/// `CLOSE` a session cursor; a failure (already gone) changes nothing in the session.
async fn close_in_session(g: &mut SessionGuard, name: &str) {
    let sql = format!("CLOSE {name}");
    let _ = under_savepoint(g, false, true, async |c| {
        simple_owned(c, sql)
            .await
            .map_err(|e| ToolError::from_sqlx(e, 0))
    })
    .await;
}

fn need_cursor(args: &QueryArgs) -> Result<&str, ToolError> {
    args.cursor
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ToolError::InvalidInput(format!(
                "pg_query {} needs cursor: the next_cursor of a truncated read or fetch",
                args.action
            ))
        })
}

/// `pg_query fetch`: the next page of a cursor.
pub(crate) async fn fetch(
    state: &AppState,
    caller: &Caller,
    args: &QueryArgs,
) -> Result<QueryResult, ToolError> {
    let id = need_cursor(args)?;
    let limits = limits_for(state, args.max_rows)?;
    let cursors = state.sessions.cursors();
    let ttl = cursors.ttl();
    let c = cursors.lookup(&caller.owner, id)?;
    match c.home.clone() {
        Home::Dedicated => {
            let (rows, next) = cursors.fetch_dedicated(id, c, &limits).await?;
            Ok(page(rows, &limits, next, ttl.as_secs()).into())
        }
        Home::Session(sid) => {
            let mut g = match state.sessions.acquire(&caller.owner, &sid).await {
                Ok(g) => g,
                Err(e @ ToolError::SessionBusy(_)) => return Err(e),
                Err(_) => {
                    cursors.forget_session(&sid);
                    return Err(cursors::not_found(id, ttl));
                }
            };
            let c = cursors.take(&caller.owner, id)?;
            let mut delivered = Cursors::delivered(&c);
            let (name, command) = (c.name.clone(), c.command.clone());
            let res = under_savepoint(&mut g, true, false, async |conn| {
                fetch_page(conn, &name, &command, &mut delivered, &limits).await
            })
            .await;
            let out = match res {
                Ok((rows, true)) => {
                    let next = cursors.reinsert(c, delivered)?;
                    page(rows, &limits, Some(next), ttl.as_secs())
                }
                Ok((rows, false)) => {
                    close_in_session(&mut g, &name).await;
                    page(rows, &limits, None, 0)
                }
                // invalid_cursor_name: the session rolled back to a savepoint taken before
                // the cursor was declared, which closed it.
                Err(e) if e.sqlstate() == Some("34000") => return Err(cursors::not_found(id, ttl)),
                Err(e) => return Err(e),
            };
            Ok(QueryResult::from(out).in_session(g.view()))
        }
    }
}

/// `pg_query close_cursor`.
pub(crate) async fn close(
    state: &AppState,
    caller: &Caller,
    args: &QueryArgs,
) -> Result<QueryResult, ToolError> {
    let id = need_cursor(args)?;
    let cursors = state.sessions.cursors();
    let c = cursors.close(&caller.owner, id).await?;
    if let Home::Session(sid) = &c.home
        && let Ok(mut g) = state.sessions.acquire(&caller.owner, sid).await
    {
        close_in_session(&mut g, &c.name).await;
    }
    Ok(QueryResult::CursorClosed(CursorClosed {
        cursor: id.to_owned(),
        closed: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::cost::Ceiling;
    use crate::db::executor::Truncation;

    fn first_page(truncated: Option<Truncation>) -> RowSet {
        RowSet {
            columns: vec![],
            rows: vec![vec![serde_json::json!(1)]],
            truncated,
            rows_affected: None,
            command: "SELECT".into(),
            duration_ms: 0.2,
        }
    }

    fn limits() -> Limits {
        Limits {
            max_rows: 1,
            max_bytes: 1000,
            statement_timeout: std::time::Duration::from_secs(30),
            lock_timeout: std::time::Duration::from_secs(5),
            fresh_statements: false,
            uncached: false,
            ceiling: Ceiling::default(),
        }
    }

    #[test]
    fn a_page_with_more_rows_names_its_cursor_after_the_truncation_hint() {
        let p = page(
            first_page(Some(Truncation::Rows)),
            &limits(),
            Some("cur_1".into()),
            60,
        );
        assert_eq!(p.next_cursor.as_deref(), Some("cur_1"));
        let hint = p.hint.unwrap();
        assert!(hint.starts_with("result truncated at 1 rows"), "{hint}");
        assert!(
            hint.contains(". Or, for the more rows: pg_query fetch"),
            "{hint}"
        );
        assert!(hint.contains("closed after 60s idle"), "{hint}");
        let last = page(first_page(None), &limits(), None, 0);
        assert!(last.hint.is_none() && last.next_cursor.is_none());
    }

    #[test]
    fn a_truncated_read_without_a_cursor_says_why() {
        let r = without_cursor(first_page(Some(Truncation::Rows)), &limits(), "the cap");
        assert!(r.next_cursor.is_none());
        assert!(r.hint.unwrap().ends_with(". No next_cursor: the cap"));
    }
}
