//! Continuation cursors (contract §8 "Continuation cursors"): a truncated `read` continues with
//! `pg_query fetch` instead of a guessed `OFFSET`.
//!
//! A pooled read's cursor lives on a **dedicated** connection (never from the stateless pool),
//! in a `READ ONLY`, `REPEATABLE READ` transaction holding a server-side cursor of the
//! statement: every page comes from that one snapshot. A read inside a `pg_tx` session
//! declares its cursor in the session's own transaction, so it sees the session's uncommitted
//! work and ends with it. Handles are opaque (128 random bits, a fresh one per page), owned
//! like session handles, bounded per owner (`COLDQUERY_MAX_CURSORS`) and by a sliding idle TTL
//! (`COLDQUERY_CURSOR_TTL`, with a reaper), and closed on the last page, on `close_cursor`,
//! when their MCP session ends and at shutdown.
//!
//! Paging: the cursor is `SCROLL`, so that a page cut by the byte cap (the rows behind the cut
//! were already sent by PostgreSQL) can be re-positioned with `MOVE ABSOLUTE` and no row is
//! skipped. Each page fetches `max_rows + 1` rows, so a page knows whether it is the last.
//! The statements themselves (`DECLARE`, `FETCH`, `MOVE`) are in [`crate::db::run::cursor`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, Row};

use crate::caller::digest;
use crate::db::executor::{Limits, RowSet, StatementRef};
use crate::db::roles::Role;
use crate::db::run::cursor::{declare, fetch_page};
use crate::db::run::guard::{cancel_backend, cancel_in_background};
use crate::error::ToolError;

/// Cursor connections open at once, over all owners, as a multiple of the per-owner cap: each
/// holds a PostgreSQL connection, and `max_connections` is shared with the pools.
const GLOBAL_FACTOR: usize = 8;
/// How long a second fetch of one cursor waits for the first.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Where a cursor's server-side half lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// Its own connection and transaction.
    Dedicated,
    /// The transaction of this pg_tx session.
    Session(String),
}

/// What a cursor knows between pages.
pub struct Position {
    /// The dedicated connection (`None` for session cursors, or once closed).
    conn: Option<PgConnection>,
    pid: i32,
    /// Rows handed out so far: the next page starts after this row.
    pub delivered: u64,
}

/// One open cursor.
pub struct Cursor {
    owner: String,
    created_in: Option<String>,
    /// Where it lives.
    pub home: Home,
    /// The server-side cursor's name (ours: `coldquery_cur_…`).
    pub name: String,
    /// The command the rows came from (`SELECT`…), for results.
    pub command: String,
    last_used: Mutex<Instant>,
    state: Arc<tokio::sync::Mutex<Position>>,
}

impl Cursor {
    fn idle(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }
}

struct Inner {
    map: Mutex<HashMap<String, Arc<Cursor>>>,
    /// Cursors being opened, per owner; counted against the caps (locked after `map`).
    pending: Mutex<HashMap<String, usize>>,
    options: PgConnectOptions,
    max_per_owner: usize,
    ttl: Duration,
    limits: Limits,
    cancel_pool: PgPool,
}

/// The cursor registry; cheap to clone.
#[derive(Clone)]
pub struct Cursors {
    inner: Arc<Inner>,
}

/// A place under the caps, held while a cursor is being opened.
pub struct Reservation {
    cursors: Cursors,
    owner: String,
    /// The caller's role: a dedicated cursor connection runs as it.
    role: Option<Role>,
}

impl Reservation {
    /// The cursor is the caller's running as `role` (`None`: the login role).
    pub fn with_role(mut self, role: Option<&Role>) -> Reservation {
        self.role = role.cloned();
        self
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut pending = self.cursors.inner.pending.lock().expect("pending lock");
        if let Some(n) = pending.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&self.owner);
            }
        }
    }
}

/// A new opaque handle: 128 random bits.
fn new_handle(prefix: &str) -> Result<String, ToolError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|_| ToolError::Unavailable("the system random source failed; retry".into()))?;
    let mut s = String::from(prefix);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

/// The error for a handle that is not (or no longer) one of the caller's open cursors.
pub fn not_found(id: &str, ttl: Duration) -> ToolError {
    ToolError::CursorNotFound(format!(
        "no open cursor {:?} for this caller: cursors close after their last page, on \
         close_cursor, after {}s idle (COLDQUERY_CURSOR_TTL) and with their pg_tx session, and \
         each page's next_cursor replaces the previous one. Run the read again for a new cursor",
        id.chars().take(64).collect::<String>(),
        ttl.as_secs()
    ))
}

impl Cursors {
    /// A registry whose dedicated connections are opened with `options`.
    pub fn new(
        options: PgConnectOptions,
        ttl: Duration,
        max_per_owner: usize,
        limits: Limits,
        cancel_pool: PgPool,
    ) -> Cursors {
        // PostgreSQL itself ends a cursor transaction left idle a minute past the TTL, should
        // the reaper ever fail.
        let idle_ms = (ttl + Duration::from_secs(60)).as_millis().to_string();
        let statement_ms = limits.statement_timeout.as_millis().max(1).to_string();
        let lock_ms = limits.lock_timeout.as_millis().max(1).to_string();
        let options = options.application_name("coldquery-cursor").options([
            ("idle_in_transaction_session_timeout", idle_ms.as_str()),
            ("statement_timeout", statement_ms.as_str()),
            ("lock_timeout", lock_ms.as_str()),
        ]);
        Cursors {
            inner: Arc::new(Inner {
                map: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                options,
                max_per_owner: max_per_owner.max(1),
                ttl,
                limits,
                cancel_pool,
            }),
        }
    }

    /// The idle TTL.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The per-owner cap.
    pub fn max_per_owner(&self) -> usize {
        self.inner.max_per_owner
    }

    /// A place for one more cursor of `owner`, or `None` when a cap is reached.
    pub fn reserve(&self, owner: &str) -> Option<Reservation> {
        let map = self.inner.map.lock().expect("cursor map lock");
        let mut pending = self.inner.pending.lock().expect("pending lock");
        let all = map.len() + pending.values().sum::<usize>();
        let mine = map.values().filter(|c| c.owner == owner).count()
            + pending.get(owner).copied().unwrap_or(0);
        if mine >= self.inner.max_per_owner || all >= self.inner.max_per_owner * GLOBAL_FACTOR {
            return None;
        }
        *pending.entry(owner.to_owned()).or_default() += 1;
        Some(Reservation {
            cursors: self.clone(),
            owner: owner.to_owned(),
            role: None,
        })
    }

    /// A new server-side cursor name.
    pub fn new_name() -> Result<String, ToolError> {
        new_handle("coldquery_cur_")
    }

    /// Register an open cursor and mint its handle.
    fn insert(&self, cursor: Cursor) -> Result<String, ToolError> {
        let id = new_handle("cur_")?;
        self.inner
            .map
            .lock()
            .expect("cursor map lock")
            .insert(id.clone(), Arc::new(cursor));
        Ok(id)
    }

    /// Register a cursor declared in pg_tx session `session_id` (the reservation is used up).
    pub fn register_in_session(
        &self,
        res: Reservation,
        created_in: Option<&str>,
        session_id: &str,
        name: String,
        command: String,
        delivered: u64,
    ) -> Result<String, ToolError> {
        self.insert(Cursor {
            owner: res.owner.clone(),
            created_in: created_in.map(str::to_owned),
            home: Home::Session(session_id.to_owned()),
            name,
            command,
            last_used: Mutex::new(Instant::now()),
            state: Arc::new(tokio::sync::Mutex::new(Position {
                conn: None,
                pid: 0,
                delivered,
            })),
        })
    }

    /// Open a cursor of a pooled read on a dedicated connection and return its first page,
    /// with the handle when rows remain. `original` is the caller's SQL (error positions);
    /// the connection runs as the reservation's role ([`Reservation::with_role`]).
    pub async fn open_dedicated(
        &self,
        res: Reservation,
        created_in: Option<&str>,
        original: &str,
        st: &StatementRef,
        params: &[Value],
        limits: &Limits,
    ) -> Result<(RowSet, Option<String>), ToolError> {
        let mut conn = super::sessions::connect_dedicated(&self.inner.options, "cursor").await?;
        // Under the caller's role, like the read it continues: its pages show what it may see.
        let sql = format!(
            "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ; {}{}; SELECT pg_backend_pid()",
            self.inner.limits.set_local_sql(),
            super::roles::set_local_sql(res.role.as_ref())
        );
        let deadline = limits.client_deadline();
        let name = Self::new_name()?;
        let opened = tokio::time::timeout(deadline, async {
            let rows = sqlx::raw_sql(AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .map_err(|e| ToolError::from_sqlx(e, 0))?;
            let pid: i32 = rows.last().and_then(|r| r.try_get(0).ok()).ok_or_else(|| {
                ToolError::Unavailable("could not read the cursor's backend pid; retry".into())
            })?;
            declare(&mut conn, &name, original, st, params, limits).await?;
            let mut delivered = 0;
            let (rows, more) =
                fetch_page(&mut conn, &name, &st.command, &mut delivered, limits).await?;
            Ok::<_, ToolError>((pid, rows, more, delivered))
        })
        .await;
        let (pid, rows, more, delivered) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                close_conn(conn).await;
                return Err(e);
            }
            Err(_) => {
                // Dropping the socket does not stop a running statement: cancel it too.
                drop(conn);
                return Err(ToolError::Timeout(
                    "the database did not answer in time while opening a cursor; retry".into(),
                ));
            }
        };
        if !more {
            // Everything fit after all (the data changed since the first try).
            close_conn(conn).await;
            return Ok((rows, None));
        }
        let id = self.insert(Cursor {
            owner: res.owner.clone(),
            created_in: created_in.map(str::to_owned),
            home: Home::Dedicated,
            name,
            command: st.command.clone(),
            last_used: Mutex::new(Instant::now()),
            state: Arc::new(tokio::sync::Mutex::new(Position {
                conn: Some(conn),
                pid,
                delivered,
            })),
        })?;
        // Inserted before the reservation goes: the place is never counted twice or not at all.
        drop(res);
        Ok((rows, Some(id)))
    }

    /// The caller's cursor `id`, or `cursor_not_found`. An idle one past its TTL is expired
    /// here even before the reaper gets to it.
    pub fn lookup(&self, owner: &str, id: &str) -> Result<Arc<Cursor>, ToolError> {
        let found = {
            let map = self.inner.map.lock().expect("cursor map lock");
            map.get(id).filter(|c| c.owner == owner).cloned()
        };
        match found {
            Some(c) if c.idle() < self.inner.ttl => Ok(c),
            Some(_) => {
                if let Some(c) = self.remove(id) {
                    self.spawn_close(c);
                }
                Err(not_found(id, self.inner.ttl))
            }
            None => Err(not_found(id, self.inner.ttl)),
        }
    }

    /// Forget `id` (returns the cursor, to close).
    fn remove(&self, id: &str) -> Option<Arc<Cursor>> {
        self.inner.map.lock().expect("cursor map lock").remove(id)
    }

    /// Fetch the next page of the caller's dedicated cursor `id`. Returns the page and the
    /// handle of the page after it (a new one each page) while rows remain; the old handle is
    /// gone either way.
    pub async fn fetch_dedicated(
        &self,
        id: &str,
        cursor: Arc<Cursor>,
        limits: &Limits,
    ) -> Result<(RowSet, Option<String>), ToolError> {
        let Ok(mut pos) = tokio::time::timeout(BUSY_WAIT, cursor.state.clone().lock_owned()).await
        else {
            return Err(ToolError::LimitExceeded(
                "another call is fetching from this cursor; wait for it, then use the \
                 next_cursor it returns"
                    .into(),
            ));
        };
        // Taken out of the registry for the length of the fetch: a repeated or concurrent
        // use of this handle finds nothing, and the page's new handle replaces it.
        if self.remove(id).is_none() || pos.conn.is_none() {
            return Err(not_found(id, self.inner.ttl));
        }
        let deadline = limits.client_deadline();
        let Position {
            conn, delivered, ..
        } = &mut *pos;
        let conn_ref = conn.as_mut().expect("checked above");
        let res = tokio::time::timeout(
            deadline,
            fetch_page(conn_ref, &cursor.name, &cursor.command, delivered, limits),
        )
        .await;
        match res {
            Ok(Ok((rows, true))) => {
                cursor.touch();
                drop(pos);
                let next = new_handle("cur_")?;
                self.inner
                    .map
                    .lock()
                    .expect("cursor map lock")
                    .insert(next.clone(), cursor);
                Ok((rows, Some(next)))
            }
            Ok(Ok((rows, false))) => {
                if let Some(c) = pos.conn.take() {
                    tokio::spawn(close_conn(c));
                }
                Ok((rows, None))
            }
            Ok(Err(e)) => {
                // A failed FETCH aborted the cursor's transaction: the cursor is done.
                if let Some(c) = pos.conn.take() {
                    tokio::spawn(close_conn(c));
                }
                Err(e)
            }
            Err(_) => {
                pos.conn.take();
                cancel_in_background(self.inner.cancel_pool.clone(), pos.pid);
                Err(ToolError::Timeout(format!(
                    "the database did not answer a fetch within {}s; the cursor was closed. Run \
                     the read again",
                    deadline.as_secs()
                )))
            }
        }
    }

    /// Take the caller's session cursor `id` out of the registry for one fetch; put it back
    /// with [`Cursors::reinsert`] when rows remain.
    pub fn take(&self, owner: &str, id: &str) -> Result<Arc<Cursor>, ToolError> {
        let c = self.lookup(owner, id)?;
        self.remove(id)
            .ok_or_else(|| not_found(id, self.inner.ttl))?;
        Ok(c)
    }

    /// Put a session cursor back under a new handle.
    pub fn reinsert(&self, cursor: Arc<Cursor>, delivered: u64) -> Result<String, ToolError> {
        cursor.touch();
        if let Ok(mut p) = cursor.state.try_lock() {
            p.delivered = delivered;
        }
        let next = new_handle("cur_")?;
        self.inner
            .map
            .lock()
            .expect("cursor map lock")
            .insert(next.clone(), cursor);
        Ok(next)
    }

    /// Rows a session cursor has handed out.
    pub fn delivered(cursor: &Cursor) -> u64 {
        cursor.state.try_lock().map(|p| p.delivered).unwrap_or(0)
    }

    /// Close the caller's cursor `id` (`close_cursor`). Returns where it lived.
    pub async fn close(&self, owner: &str, id: &str) -> Result<Arc<Cursor>, ToolError> {
        let c = self.lookup(owner, id)?;
        self.remove(id);
        self.close_one(&c).await;
        Ok(c)
    }

    /// Roll back and close a dedicated cursor's connection (a session cursor's server-side
    /// half goes with its transaction).
    async fn close_one(&self, c: &Cursor) {
        if c.home != Home::Dedicated {
            return;
        }
        let mut pos = match c.state.try_lock() {
            Ok(p) => p,
            Err(_) => {
                // A fetch is running: cancel it, then wait for it to give the connection back.
                let pid = c.state.try_lock().map(|p| p.pid).unwrap_or(0);
                if pid != 0 {
                    cancel_backend(&self.inner.cancel_pool, pid).await;
                }
                c.state.lock().await
            }
        };
        if let Some(conn) = pos.conn.take() {
            close_conn(conn).await;
        }
    }

    fn spawn_close(&self, c: Arc<Cursor>) {
        let me = self.clone();
        tokio::spawn(async move { me.close_one(&c).await });
    }

    /// Drop every cursor matching `pred` and close them.
    async fn close_where(&self, pred: impl Fn(&Cursor) -> bool, why: &str) {
        let gone: Vec<(String, Arc<Cursor>)> = {
            let mut map = self.inner.map.lock().expect("cursor map lock");
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, c)| pred(c))
                .map(|(k, _)| k.clone())
                .collect();
            ids.into_iter()
                .filter_map(|k| map.remove(&k).map(|c| (k, c)))
                .collect()
        };
        for (id, c) in gone {
            self.close_one(&c).await;
            tracing::info!(cursor = %digest(&id), why, "cursor closed");
        }
    }

    /// Close every cursor of `owner` (its MCP session ended).
    pub async fn close_owned_by(&self, owner: &str) {
        self.close_where(|c| c.owner == owner, "MCP session ended")
            .await;
    }

    /// Close every cursor opened from MCP session `mcp_session` (HTTP DELETE).
    pub async fn close_created_in(&self, mcp_session: &str) {
        self.close_where(
            |c| c.created_in.as_deref() == Some(mcp_session),
            "MCP session deleted",
        )
        .await;
    }

    /// Forget the cursors of a pg_tx session that ended (its transaction closed them).
    pub fn forget_session(&self, session_id: &str) {
        self.inner
            .map
            .lock()
            .expect("cursor map lock")
            .retain(|_, c| c.home != Home::Session(session_id.to_owned()));
    }

    /// Close every cursor (shutdown).
    pub async fn close_all(&self) {
        self.close_where(|_| true, "shutdown").await;
    }

    /// Close cursors idle past the TTL once. Returns how many.
    pub async fn reap_once(&self) -> usize {
        let ttl = self.inner.ttl;
        let due: Vec<String> = {
            let map = self.inner.map.lock().expect("cursor map lock");
            map.iter()
                .filter(|(_, c)| c.idle() >= ttl && c.state.try_lock().is_ok())
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut n = 0;
        for id in due {
            if let Some(c) = self.remove(&id) {
                self.close_one(&c).await;
                tracing::info!(cursor = %digest(&id), "cursor expired: closed");
                n += 1;
            }
        }
        n
    }

    /// Run the reaper until `stop` is cancelled.
    pub fn spawn_reaper(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        crate::periodic::spawn_every(
            crate::periodic::reap_interval(self.inner.ttl),
            stop,
            move || {
                let me = me.clone();
                async move {
                    me.reap_once().await;
                }
            },
        )
    }
}

/// Roll back and close a cursor connection; errors are irrelevant by then.
async fn close_conn(mut conn: PgConnection) {
    let rolled = tokio::time::timeout(
        Duration::from_secs(5),
        Executor::execute(&mut conn, sqlx::raw_sql("ROLLBACK")),
    )
    .await;
    if matches!(rolled, Ok(Ok(_))) {
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
    }
}
