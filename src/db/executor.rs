//! The executor: runs one classified statement on a connection with server-side limits, binds
//! JSON parameters, and streams rows into JSON while enforcing the row and byte caps and the
//! cost ceiling. The transaction a statement runs in (read-only and rolled back, committed,
//! dry-run, a session's savepoint) and the client deadline are in [`crate::db::run`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnection, PgTypeInfo};
use sqlx::{
    Arguments, AssertSqlSafe, Column, Connection, Either, Executor, Row, SqlSafeStr, Statement,
};

use crate::db::capped::{self, Fit};
use crate::db::cost::{self, Ceiling};
use crate::db::values::{self, Codec as Decoder};
use crate::error::ToolError;
use crate::safety::classify::Parsed;
use crate::safety::ident::quote_ident;
use crate::safety::shapes::Bound;

/// What the executor needs to know about a statement: its text and how it may be wrapped.
#[derive(Debug, Clone)]
pub struct StatementRef {
    /// The statement alone: no trailing semicolon.
    pub body: String,
    /// Command name reported in results (`SELECT`, `INSERT`, `EXPLAIN`…).
    pub command: String,
    /// A SelectStmt that may be wrapped as a subquery.
    pub plain_select: bool,
    /// DML with RETURNING (may be wrapped as a CTE).
    pub returning: bool,
    /// A query the cost ceiling prices before it runs (see [`crate::db::cost`]).
    pub plannable: bool,
    /// The read with its integers bound as parameters, run in its place when the call has
    /// no parameters of its own ([`crate::safety::shapes::Bound`]).
    pub bound: Option<Arc<Bound>>,
}

impl From<&Parsed> for StatementRef {
    fn from(p: &Parsed) -> Self {
        StatementRef {
            body: p.sql().to_owned(),
            command: p.command().to_owned(),
            plain_select: p.is_plain_select(),
            returning: p.has_returning(),
            plannable: p.is_plannable(),
            bound: p.bound().cloned(),
        }
    }
}

/// Prefix of the row-cap wrapper; its length shifts error positions.
const CAP_PREFIX: &str = "SELECT * FROM (\n";

/// Per-call limits, resolved from configuration and the call's arguments.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most rows returned.
    pub max_rows: usize,
    /// Most bytes of serialized rows returned.
    pub max_bytes: usize,
    /// Server-side statement_timeout.
    pub statement_timeout: Duration,
    /// Server-side lock_timeout.
    pub lock_timeout: Duration,
    /// Drop the connection's cached prepared statements before preparing (a retry after a
    /// stale cached plan).
    pub fresh_statements: bool,
    /// Run no statement as found in the connection's statement cache: one found there is
    /// prepared again after the cache is closed (a write applied to a pg_tx session's
    /// transaction, which a stale cached plan would abort; see
    /// [`crate::db::run::session::in_transaction`]).
    pub uncached: bool,
    /// The cost ceiling a plannable statement is priced against before it runs.
    pub ceiling: Ceiling,
}

impl Limits {
    /// The `SET LOCAL` preamble for a transaction. Only numbers from our configuration go in.
    pub fn set_local_sql(&self) -> String {
        format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            self.statement_timeout.as_millis().max(1),
            self.lock_timeout.as_millis().max(1)
        )
    }

    /// Client-side backstop: the server's statement_timeout should fire first; this catches a
    /// network that stops answering.
    pub fn client_deadline(&self) -> Duration {
        self.statement_timeout + Duration::from_secs(5)
    }
}

/// How rows are consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMode {
    /// A read: wrap a plain SELECT so that PostgreSQL stops after the cap, stop reading at the cap.
    Read,
    /// A write: the statement must run to completion, so extra RETURNING rows are read and dropped.
    Write,
    /// Run as is (EXPLAIN output): no wrapping, stop at the cap.
    Verbatim,
}

/// One result column: name and PostgreSQL type name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnInfo {
    /// Column name as PostgreSQL reports it.
    pub name: String,
    /// `pg_type.typname`, arrays with `[]`.
    #[serde(rename = "type")]
    pub type_name: String,
}

/// Which cap cut a result short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// `max_rows` reached.
    Rows,
    /// `max_result_bytes` reached.
    Bytes,
    /// The first row alone did not fit `max_result_bytes`: the value of `column` (0-based)
    /// was cut to a prefix, and the result ends with that row. `whole_bytes` is the size of
    /// the value's raw form.
    Value {
        /// 0-based column index of the (first) cut value.
        column: usize,
        /// Size of the whole value as PostgreSQL sent it, in bytes.
        whole_bytes: usize,
    },
}

/// The rows of one statement.
#[derive(Debug, Clone)]
pub struct RowSet {
    /// Result columns (empty for statements that return none).
    pub columns: Vec<ColumnInfo>,
    /// Rows as arrays in column order.
    pub rows: Vec<Vec<Value>>,
    /// Set when a cap cut the result.
    pub truncated: Option<Truncation>,
    /// Rows inserted/updated/deleted; `None` for reads.
    pub rows_affected: Option<u64>,
    /// The command, e.g. `SELECT`, `INSERT`.
    pub command: String,
    /// Wall time of the statement itself, in milliseconds.
    pub duration_ms: f64,
}

/// How one result column is turned into JSON.
enum ColumnPlan {
    /// Decode the binary value natively.
    Native(Decoder),
    /// The SQL casts this column to text (or text[]); decode that.
    Cast(Decoder),
    /// Nothing better is possible: the value as text when it is UTF-8, else `\x` hex.
    Raw,
}

/// Build `SELECT q.c1, q.c2::text, … FROM (<sql>) AS q(c1, c2, …)` (or the CTE form for DML
/// with RETURNING), casting the columns we cannot decode natively to their text form.
pub(crate) fn cast_wrapper(
    inner: &str,
    cols: &[(String, PgTypeInfo)],
    cte: bool,
    limit: Option<usize>,
) -> (String, usize) {
    let aliases: Vec<String> = (1..=cols.len()).map(|i| format!("c{i}")).collect();
    let select: Vec<String> = cols
        .iter()
        .zip(&aliases)
        .map(|((name, ty), alias)| {
            let expr = if values::decoder_for(ty).is_some() {
                format!("_cq.{alias}")
            } else if values::array_needs_text_array(ty) {
                format!("_cq.{alias}::text[]")
            } else {
                format!("_cq.{alias}::text")
            };
            // The column name PostgreSQL gave us, quoted for our own SQL.
            format!("{expr} AS {}", quote_ident(name))
        })
        .collect();
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    if cte {
        let prefix = format!("WITH _cq({}) AS (\n", aliases.join(", "));
        let sql = format!(
            "{prefix}{inner}\n) SELECT {} FROM _cq{limit}",
            select.join(", ")
        );
        (sql, prefix.chars().count())
    } else {
        let prefix = format!("SELECT {} FROM (\n", select.join(", "));
        let sql = format!("{prefix}{inner}\n) AS _cq({}){limit}", aliases.join(", "));
        (sql, prefix.chars().count())
    }
}

fn prepare_err(e: sqlx::Error, shift: usize) -> ToolError {
    ToolError::from_sqlx(e, shift)
}

/// Run one statement on `conn` inside whatever transaction the caller set up.
///
/// `original` is the caller's SQL text (for error positions); `parsed` the statement to run.
pub async fn run_statement(
    conn: &mut PgConnection,
    original: &str,
    parsed: &StatementRef,
    params: &[Value],
    limits: &Limits,
    mode: RowMode,
) -> Result<RowSet, ToolError> {
    // Statements are prepared as named statements (we need the parameter types before
    // binding) and cached per connection, which saves a parse and a round trip on repeats.
    // After DDL a cached statement can go stale ("cached plan must not change result type"):
    // on any error the cache is dropped, and callers retry a stale plan once with
    // `fresh_statements` (see `is_stale_plan`).
    if limits.fresh_statements && conn.cached_statements_size() > 0 {
        let _ = conn.clear_cached_statements().await;
    }
    let result = match parsed.bound.as_deref() {
        // A read whose integers are bound: one prepared statement for every text of its
        // shape. Error positions are mapped back into the caller's text.
        Some(bound) if params.is_empty() => {
            let values: Vec<Value> = bound.values.iter().map(|v| Value::from(*v)).collect();
            let st = StatementRef {
                body: bound.sql.clone(),
                command: parsed.command.clone(),
                plain_select: parsed.plain_select,
                returning: parsed.returning,
                plannable: parsed.plannable,
                bound: None,
            };
            run_statement_inner(conn, &st.body, &st, &values, limits, mode)
                .await
                .map_err(|e| {
                    let lead = lead_of(original, &parsed.body);
                    e.map_position(|p| bound.text_position(p) + lead)
                })
        }
        _ => run_statement_inner(conn, original, parsed, params, limits, mode).await,
    };
    if result.is_err() && conn.cached_statements_size() > 0 {
        let _ = conn.clear_cached_statements().await;
    }
    result
}

/// How many prepared statements a connection keeps (sqlx's statement cache, set in the
/// connect options; sqlx's default).
pub(crate) const STATEMENT_CACHE: usize = 100;

/// Prepare `sql` on `conn` (cached per connection). With [`Limits::uncached`], a statement
/// served from the cache (its count did not grow: a hit, since the cache is emptied before it
/// could evict) is prepared again after the cache is closed, so that what runs was analysed
/// against the catalog as it is now; a statement not cached yet costs nothing more.
pub(crate) async fn prepare(
    conn: &mut PgConnection,
    sql: &str,
    limits: &Limits,
) -> Result<sqlx::postgres::PgStatement, sqlx::Error> {
    // With its cache full, sqlx would close the least recently used statement, and wait for
    // that, before running each new text: with values written into the SQL (as agents mostly
    // send them) every read is a new text, and that was one more round trip on each, three in
    // all (tests/roundtrips.rs). Closing them all at once costs one round trip per hundred new
    // texts, and a statement still in use one Parse again the next time it comes.
    if conn.cached_statements_size() >= STATEMENT_CACHE {
        conn.clear_cached_statements().await?;
    }
    let before = conn.cached_statements_size();
    let stmt = conn
        .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await?;
    if limits.uncached && before > 0 && conn.cached_statements_size() == before {
        conn.clear_cached_statements().await?;
        return conn
            .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
            .await;
    }
    Ok(stmt)
}

/// Whether an error may come from a cached statement prepared against an older catalog: a
/// stale plan, or an analysis error (class 42: a column, type or operator that no longer fits
/// the statement's fixed parameter types) that a fresh prepare might not raise. Only for
/// retries that are safe whatever the cause (a rolled-back savepoint).
pub fn may_be_stale(e: &ToolError) -> bool {
    is_stale_plan(e) || e.sqlstate().is_some_and(|c| c.starts_with("42"))
}

/// Whether a call failed only because a cached prepared statement went stale after DDL. The
/// failed attempt ran nothing (PostgreSQL refuses before executing), so one retry with
/// `fresh_statements` is safe.
pub fn is_stale_plan(e: &ToolError) -> bool {
    matches!(e, ToolError::Database(d)
        if d.sqlstate.as_deref() == Some("0A000") && d.message.contains("cached plan must not change result type"))
}

/// Where `body` starts inside the caller's text `original`, in characters.
fn lead_of(original: &str, body: &str) -> usize {
    original
        .find(body)
        .map_or(0, |b| original[..b].chars().count())
}

async fn run_statement_inner(
    conn: &mut PgConnection,
    original: &str,
    parsed: &StatementRef,
    params: &[Value],
    limits: &Limits,
    mode: RowMode,
) -> Result<RowSet, ToolError> {
    let started = Instant::now();
    let body = parsed.body.as_str();
    let cap_limit = limits.max_rows + 1;
    let wrap_select = mode == RowMode::Read && parsed.plain_select;

    let (sql, mut prefix_chars) = if wrap_select {
        // The LIMIT makes PostgreSQL itself stop after the cap: a 10-million-row SELECT costs
        // what max_rows + 1 rows cost, and the server's memory stays flat.
        (
            format!("{CAP_PREFIX}{body}\n) AS _coldquery LIMIT {cap_limit}"),
            CAP_PREFIX.chars().count(),
        )
    } else {
        (body.to_owned(), 0)
    };
    // Error positions point into what the caller sent: the wrapper's prefix off, and where
    // the statement starts inside the caller's text on (found only for an error).
    let shift = |prefix: usize| prefix.saturating_sub(lead_of(original, body));

    // Priced as it will run (a read with the row cap's LIMIT), before anything runs.
    if parsed.plannable && mode != RowMode::Verbatim && limits.ceiling.is_set() {
        let shift_explain = shift(prefix_chars + cost::EXPLAIN_PREFIX.len());
        cost::check(conn, &sql, params, limits, shift_explain).await?;
    }

    // The SQL text is the caller's own statement, parsed and classified before we got here;
    // values never enter it (they are bound), so asserting it as safe SQL is what we mean.
    let mut stmt = prepare(conn, &sql, limits)
        .await
        .map_err(|e| prepare_err(e, shift(prefix_chars)))?;

    let cols: Vec<(String, PgTypeInfo)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().clone()))
        .collect();
    let column_info: Vec<ColumnInfo> = cols
        .iter()
        .map(|(n, t)| ColumnInfo {
            name: n.clone(),
            type_name: values::type_name(t),
        })
        .collect();

    let mut plans: Vec<ColumnPlan> = cols
        .iter()
        .map(|(_, t)| match values::decoder_for(t) {
            Some(d) => ColumnPlan::Native(d),
            None => ColumnPlan::Raw,
        })
        .collect();

    // Some column we cannot decode from binary: ask PostgreSQL for its text form instead.
    if plans.iter().any(|p| matches!(p, ColumnPlan::Raw)) {
        let wrappable_select = parsed.plain_select;
        let wrappable_dml = parsed.returning;
        if wrappable_select || wrappable_dml {
            let limit = (mode != RowMode::Write && wrappable_select).then_some(cap_limit);
            let (cast_sql, prefix) =
                cast_wrapper(body, &cols, wrappable_dml && !wrappable_select, limit);
            match prepare(conn, &cast_sql, limits).await {
                Ok(s) => {
                    stmt = s;
                    prefix_chars = prefix;
                    plans = stmt
                        .columns()
                        .iter()
                        .map(|c| match values::decoder_for(c.type_info()) {
                            Some(d) => ColumnPlan::Cast(d),
                            None => ColumnPlan::Raw,
                        })
                        .collect();
                    // Columns that were native stay native in the wrapper.
                    for (p, (_, t)) in plans.iter_mut().zip(&cols) {
                        if let (ColumnPlan::Cast(_), Some(d)) = (&*p, values::decoder_for(t)) {
                            *p = ColumnPlan::Native(d);
                        }
                    }
                }
                Err(e) => {
                    // The wrapper is our idea, not the caller's: fall back to raw text.
                    tracing::debug!(error = %e, "text-cast wrapper did not prepare; using raw values");
                }
            }
        }
    }

    let arguments = bind_params(&stmt, params)?;

    // Column metadata counts against the same budget as the rows: 1,600 long column names
    // alone would otherwise push a message past 1 MiB.
    let columns_size = capped::json_size(&column_info);
    if columns_size >= limits.max_bytes {
        return Err(ToolError::LimitExceeded(format!(
            "the result's {} column names and types alone take {columns_size} bytes, more than \
             the {} bytes a result may carry (max_result_bytes); select fewer columns or give \
             them shorter aliases",
            column_info.len(),
            limits.max_bytes
        )));
    }
    let budget = limits.max_bytes - columns_size;

    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0usize;
    let mut truncated = None;
    let mut rows_affected: Option<u64> = None;
    {
        let mut stream = (&mut *conn).fetch_many(stmt.query_with(arguments));
        loop {
            let item = match stream.try_next().await {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(e) => return Err(ToolError::from_sqlx(e, shift(prefix_chars))),
            };
            match item {
                Either::Left(done) => {
                    rows_affected = Some(rows_affected.unwrap_or(0) + done.rows_affected());
                }
                Either::Right(row) => {
                    if truncated.is_some() {
                        // A write must finish; its extra RETURNING rows are read and dropped.
                        continue;
                    }
                    if rows.len() >= limits.max_rows {
                        truncated = Some(Truncation::Rows);
                    } else {
                        // Only a first row that cannot fit whole has values cut: later rows
                        // are returned whole or not at all, so paging sees complete rows.
                        let first = rows.is_empty();
                        match decode_row(&row, &plans, budget - bytes, first)? {
                            RowFit::Fits { values, size, cut } => {
                                bytes += size;
                                rows.push(values);
                                if let Some((column, whole_bytes)) = cut {
                                    truncated = Some(Truncation::Value {
                                        column,
                                        whole_bytes,
                                    });
                                }
                            }
                            RowFit::TooLarge => truncated = Some(Truncation::Bytes),
                        }
                    }
                    if truncated.is_some() && mode != RowMode::Write {
                        // Stop reading. The driver drains what is left (at most one row for
                        // wrapped selects) before the connection's next use.
                        break;
                    }
                }
            }
        }
    }

    let command = parsed.command.clone();
    let is_dml = matches!(command.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE")
        || (mode == RowMode::Write && parsed.returning);
    Ok(RowSet {
        columns: column_info,
        rows,
        truncated,
        rows_affected: if is_dml { rows_affected } else { None },
        command,
        duration_ms: (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
    })
}

pub(crate) fn bind_params(
    stmt: &sqlx::postgres::PgStatement,
    params: &[Value],
) -> Result<PgArguments, ToolError> {
    let types: Vec<PgTypeInfo> = match stmt.parameters() {
        Some(Either::Left(types)) => types.to_vec(),
        Some(Either::Right(n)) => vec![PgTypeInfo::with_name("text"); n],
        None => Vec::new(),
    };
    if types.len() != params.len() {
        return Err(ToolError::InvalidInput(format!(
            "the statement has {} parameter placeholder(s) ($1…) but params has {} value(s); \
             pass exactly one JSON value per placeholder",
            types.len(),
            params.len()
        )));
    }
    let mut args = PgArguments::default();
    for (i, (ty, v)) in types.iter().zip(params).enumerate() {
        let p = values::encode_param(ty, v)
            .map_err(|m| ToolError::InvalidInput(format!("params[{i}] (${}): {m}", i + 1)))?;
        args.add(p)
            .map_err(|e| ToolError::InvalidInput(format!("params[{i}] (${}): {e}", i + 1)))?;
    }
    Ok(args)
}

/// One decoded row, or the news that it does not fit.
enum RowFit {
    /// The row's values, its serialized size (with the separator) and the first cut value
    /// (column, whole raw size), if any.
    Fits {
        values: Vec<Value>,
        size: usize,
        cut: Option<(usize, usize)>,
    },
    /// The row does not fit in the bytes left.
    TooLarge,
}

/// Room kept for each column after a cut one, so that a row whose first column is cut can
/// still carry its small values (numbers, dates, short text) whole.
const ROOM_PER_LATER_COLUMN: usize = 64;

/// Decode a row into at most `allowance` serialized bytes. Each value is measured (or cut,
/// when `may_cut`) before it is decoded, so a huge value never costs more than the budget.
fn decode_row(
    row: &sqlx::postgres::PgRow,
    plans: &[ColumnPlan],
    allowance: usize,
    may_cut: bool,
) -> Result<RowFit, ToolError> {
    let mut out = Vec::with_capacity(plans.len());
    // "[", "]" and the comma after the row.
    let mut size = 3usize;
    let mut cut = None;
    for (i, plan) in plans.iter().enumerate() {
        let sep = usize::from(i > 0);
        let Some(hard) = allowance.checked_sub(size + sep) else {
            return Ok(RowFit::TooLarge);
        };
        let cut_to =
            may_cut.then(|| hard.saturating_sub(ROOM_PER_LATER_COLUMN * (plans.len() - 1 - i)));
        let raw = row
            .try_get_raw(i)
            .map_err(|e| ToolError::Unavailable(format!("could not read column {i}: {e}")))?;
        let fit = match sqlx::ValueRef::is_null(&raw) {
            true => Fit::Whole(Value::Null, 4),
            false => {
                let bytes = raw.as_bytes().unwrap_or_default();
                match plan {
                    ColumnPlan::Native(d) | ColumnPlan::Cast(d) => {
                        capped::decode_within(d, bytes, hard, cut_to).unwrap_or_else(|e| {
                            tracing::warn!(column = i, error = %e, "value did not decode; returning its raw form");
                            capped::raw_within(bytes, hard, cut_to)
                        })
                    }
                    ColumnPlan::Raw => capped::raw_within(bytes, hard, cut_to),
                }
            }
        };
        match fit {
            Fit::Whole(v, n) if n <= hard => {
                size += sep + n;
                out.push(v);
            }
            Fit::Cut(v, n, whole) => {
                size += sep + n;
                out.push(v);
                cut.get_or_insert((i, whole));
            }
            _ => return Ok(RowFit::TooLarge),
        }
    }
    Ok(RowFit::Fits {
        values: out,
        size,
        cut,
    })
}

/// Send a fixed statement of ours over the simple protocol (BEGIN, SET LOCAL, ROLLBACK…).
pub async fn simple(conn: &mut PgConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    conn.execute(sqlx::raw_sql(sql)).await.map(|_| ())
}

/// Like [`simple`] for SQL we built from configuration numbers only.
pub async fn simple_owned(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    conn.execute(sqlx::raw_sql(AssertSqlSafe(sql)))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_wrapper_renames_positionally_and_quotes_names() {
        let cols = vec![
            (
                "a\"b".to_owned(),
                PgTypeInfo::with_oid(sqlx::postgres::types::Oid(23)),
            ),
            (
                "a\"b".to_owned(),
                PgTypeInfo::with_oid(sqlx::postgres::types::Oid(790)),
            ),
        ];
        let (sql, prefix) = cast_wrapper("SELECT 1, 2::money", &cols, false, Some(11));
        assert!(sql.starts_with("SELECT _cq.c1 AS"), "{sql}");
        assert!(
            sql.contains("_cq.c2::text AS"),
            "money is cast to text: {sql}"
        );
        assert!(sql.contains("AS \"a\"\"b\""), "{sql}");
        assert!(sql.ends_with("AS _cq(c1, c2) LIMIT 11"), "{sql}");
        assert_eq!(&sql[..prefix], sql.split("SELECT 1").next().unwrap());
        let (cte, _) = cast_wrapper("INSERT INTO t VALUES (1) RETURNING *", &cols, true, None);
        assert!(cte.starts_with("WITH _cq(c1, c2) AS (\n"), "{cte}");
    }

    #[test]
    fn set_local_uses_milliseconds() {
        let l = Limits {
            max_rows: 1,
            max_bytes: 1,
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_millis(500),
            fresh_statements: false,
            uncached: false,
            ceiling: Ceiling::default(),
        };
        assert_eq!(
            l.set_local_sql(),
            "SET LOCAL statement_timeout = 30000; SET LOCAL lock_timeout = 500"
        );
    }
}
