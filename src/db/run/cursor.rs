//! The statements of a continuation cursor (see [`crate::db::cursors`] for their registry and
//! lifetimes): `DECLARE … SCROLL CURSOR` of a checked read, and one page of `FETCH FORWARD`
//! (re-positioned with `MOVE ABSOLUTE` when the byte cap cut it), each one round trip inside
//! whatever transaction the caller opened.

use serde_json::Value;
use sqlx::{AssertSqlSafe, Column, Executor, PgConnection, SqlSafeStr, Statement};

use crate::db::executor::{self, Limits, RowMode, RowSet, StatementRef, run_statement};
use crate::db::values;
use crate::error::ToolError;

/// `DECLARE name SCROLL CURSOR FOR` the statement, with its parameters bound, inside the
/// transaction open on `conn`. Columns we cannot decode natively are cast to text by the same
/// wrapper a read uses, so pages look like the read's first page.
pub(crate) async fn declare(
    conn: &mut PgConnection,
    name: &str,
    original: &str,
    st: &StatementRef,
    params: &[Value],
    limits: &Limits,
) -> Result<(), ToolError> {
    let body = st.body.as_str();
    let query = if st.plain_select {
        let stmt = conn
            .prepare(AssertSqlSafe(body.to_owned()).into_sql_str())
            .await
            .map_err(|e| ToolError::from_sqlx(e, 0))?;
        let cols: Vec<(String, sqlx::postgres::PgTypeInfo)> = stmt
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_info().clone()))
            .collect();
        if cols.iter().any(|(_, t)| values::decoder_for(t).is_none()) {
            executor::cast_wrapper(body, &cols, false, None).0
        } else {
            body.to_owned()
        }
    } else {
        body.to_owned()
    };
    // `name` is ours (hex digits); the query is the caller's checked statement.
    let decl = StatementRef {
        body: format!("DECLARE {name} SCROLL CURSOR FOR {query}"),
        command: "DECLARE CURSOR".into(),
        plain_select: false,
        returning: false,
        plannable: false,
        bound: None,
    };
    run_statement(conn, original, &decl, params, limits, RowMode::Verbatim).await?;
    Ok(())
}

/// Fetch the page after row `delivered` of cursor `name` (`max_rows`, within the byte cap)
/// and advance `delivered`. Returns the page and whether rows remain.
pub(crate) async fn fetch_page(
    conn: &mut PgConnection,
    name: &str,
    command: &str,
    delivered: &mut u64,
    limits: &Limits,
) -> Result<(RowSet, bool), ToolError> {
    // One row more than the page: its arrival says the page is not the last.
    let body = format!("FETCH FORWARD {} FROM {name}", limits.max_rows + 1);
    let st = StatementRef {
        body: body.clone(),
        command: command.to_owned(),
        plain_select: false,
        returning: false,
        plannable: false,
        bound: None,
    };
    let mut rows = run_statement(conn, &body, &st, &[], limits, RowMode::Verbatim).await?;
    rows.command = command.to_owned();
    *delivered += rows.rows.len() as u64;
    let more = rows.truncated.is_some();
    if more {
        // The rows PostgreSQL sent past the cut were not handed out: stand on the last row
        // that was, so the next page starts right after it.
        executor::simple_owned(conn, format!("MOVE ABSOLUTE {delivered} IN {name}"))
            .await
            .map_err(|e| ToolError::from_sqlx(e, 0))?;
    }
    Ok((rows, more))
}
