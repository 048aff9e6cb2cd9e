//! The session manager behind `pg_tx`: opaque handles mapped to **dedicated** connections (never
//! taken from the stateless pool, so open transactions cannot starve reads or `/health`),
//! ownership by caller (the authenticated principal first, contract §8), the session limits (in
//! all and per owner), and serialised use of one handle. This file is the manager ([`Sessions`]:
//! begin, look up, acquire, list); one session's state is in [`slot`], the per-call guard and
//! its statement bookkeeping and client-side deadline in [`guard`], the idle TTL's reaper and
//! clean-up on MCP session end and shutdown in [`reaper`], and why a handle is gone in
//! [`tombstones`].

mod guard;
mod reaper;
mod slot;
mod tombstones;

pub use guard::SessionGuard;
pub use slot::{Isolation, Slot};
/// For tests elsewhere that build the views by hand.
#[cfg(test)]
pub(crate) use slot::{SessionDetail, SessionState};
pub(crate) use slot::{SessionHint, SessionView};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, PgConnection, Row};

use crate::db::cursors::Cursors;
use crate::db::executor::Limits;
use crate::db::roles::{self, Role};
use crate::db::spares::{Spares, spare_was_dead};
use crate::error::ToolError;
use crate::metrics::Metrics;
use slot::{describe, hint, view};
use tombstones::Tombstone;

/// How long a second call on a busy handle waits for its turn before `session_busy`.
const BUSY_WAIT: Duration = Duration::from_secs(10);

struct Inner {
    map: Mutex<HashMap<String, Arc<Slot>>>,
    tombstones: Mutex<HashMap<String, (String, Tombstone, Instant)>>,
    /// Begins still connecting, per owner; counted against both limits (locked after `map`).
    pending: Mutex<HashMap<String, usize>>,
    options: PgConnectOptions,
    max: usize,
    max_per_owner: usize,
    ttl: Duration,
    limits: Limits,
    metrics: Arc<Metrics>,
    cancel_pool: PgPool,
    /// Continuation cursors: closed with their MCP session, their pg_tx session and at
    /// shutdown, by the same hooks as sessions.
    cursors: Cursors,
    /// Connections opened ahead for begin, and given back by sessions that ended cleanly.
    spares: Spares,
    /// Whether a cleanly ended session's connection may be reset and reused (not when
    /// procedural code may run: the contract closes a connection that ran it).
    reuse: bool,
}

/// The session manager; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

fn new_handle() -> Result<String, ToolError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|_| ToolError::Unavailable("the system random source failed; retry".into()))?;
    let mut s = String::from("tx_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

impl Sessions {
    /// A manager that opens its connections with `options` (never from a pool).
    pub(crate) fn new(
        options: PgConnectOptions,
        max: usize,
        ttl: Duration,
        limits: Limits,
        metrics: Arc<Metrics>,
        cancel_pool: PgPool,
    ) -> Sessions {
        // Second line of defence: should our reaper ever fail, PostgreSQL itself ends a
        // transaction left idle a minute past the TTL.
        let cursors = Cursors::new(
            options.clone(),
            Duration::from_secs(60),
            4,
            limits,
            cancel_pool.clone(),
        );
        let idle_ms = (ttl + Duration::from_secs(60)).as_millis().to_string();
        // The statement and lock timeouts are the connection's own from its first byte, not
        // only `SET LOCAL` at begin: there is no moment in a session's life without them.
        let statement_ms = limits.statement_timeout.as_millis().max(1).to_string();
        let lock_ms = limits.lock_timeout.as_millis().max(1).to_string();
        let options = options.application_name("coldquery-session").options([
            ("idle_in_transaction_session_timeout", idle_ms.as_str()),
            ("statement_timeout", statement_ms.as_str()),
            ("lock_timeout", lock_ms.as_str()),
        ]);
        Sessions {
            inner: Arc::new(Inner {
                map: Mutex::new(HashMap::new()),
                tombstones: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                spares: Spares::new(options.clone(), 0, 0, metrics.clone()),
                reuse: true,
                max,
                max_per_owner: (max / 2).max(1),
                ttl,
                limits,
                metrics,
                options,
                cancel_pool,
                cursors,
            }),
        }
    }

    /// Use `cursors` as the continuation-cursor registry (built from COLDQUERY_CURSOR_TTL and
    /// COLDQUERY_MAX_CURSORS). Call before the manager is shared.
    pub(crate) fn with_cursors(mut self, cursors: Cursors) -> Sessions {
        Arc::get_mut(&mut self.inner)
            .expect("the cursors are set before the session manager is shared")
            .cursors = cursors;
        self
    }

    /// The continuation-cursor registry.
    pub(crate) fn cursors(&self) -> &Cursors {
        &self.inner.cursors
    }

    /// Set how many sessions one owner may hold (`COLDQUERY_MAX_SESSIONS_PER_CALLER`; the
    /// default is half of `max_sessions`, at least 1). Call before the manager is shared.
    pub(crate) fn with_max_per_owner(mut self, n: usize) -> Sessions {
        Arc::get_mut(&mut self.inner)
            .expect("the limit is set before the session manager is shared")
            .max_per_owner = n.max(1);
        self
    }

    /// Keep `n` connections opened ahead for begin (see [`crate::db::spares`]); 0: none, and
    /// no connection is reused either. `reuse`: a session that ended cleanly gives its
    /// connection back, reset, instead of closing it.
    pub(crate) fn with_spares(mut self, n: usize, reuse: bool) -> Sessions {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("spares are set before the session manager is shared");
        inner.spares = Spares::new(inner.options.clone(), n, inner.max, inner.metrics.clone());
        inner.reuse = reuse;
        self
    }

    /// Spare connections ready now (for /metrics).
    pub(crate) fn spares_ready(&self) -> usize {
        self.inner.spares.len()
    }

    /// Sessions open now.
    pub(crate) fn open_count(&self) -> usize {
        self.inner.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The idle TTL.
    pub(crate) fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Open a transaction on a new dedicated connection and mint its handle. `created_in` is
    /// the MCP session of the call, if any: its DELETE will end the handle. `role` is the
    /// caller's role: set at begin, it holds for the session's whole life (the connection
    /// ends with the transaction).
    pub(crate) async fn begin(
        &self,
        owner: &str,
        created_in: Option<&str>,
        isolation: Isolation,
        read_only: bool,
        role: Option<&Role>,
    ) -> Result<SessionView, ToolError> {
        {
            // Count open and still-connecting sessions under one lock, so that a burst of
            // begins cannot overshoot either limit; refuse at once rather than queue.
            let map = self.inner.map.lock().expect("session map lock");
            let mut pending = self.inner.pending.lock().expect("pending lock");
            let open = map.len() + pending.values().sum::<usize>();
            let mine = map.values().filter(|s| s.owner == owner).count()
                + pending.get(owner).copied().unwrap_or(0);
            if open >= self.inner.max || mine >= self.inner.max_per_owner {
                self.inner
                    .metrics
                    .inc("coldquery_sessions_total", &[("event", "refused")]);
                return Err(self.limit_error(&map, owner, open, mine));
            }
            *pending.entry(owner.to_owned()).or_default() += 1;
        }
        let res = self
            .open(owner, created_in, isolation, read_only, role)
            .await;
        {
            let mut pending = self.inner.pending.lock().expect("pending lock");
            if let Some(n) = pending.get_mut(owner) {
                *n -= 1;
                if *n == 0 {
                    pending.remove(owner);
                }
            }
        }
        let slot = res?;
        let view = view(&slot, self.inner.ttl);
        self.inner
            .map
            .lock()
            .expect("session map lock")
            .insert(slot.id.clone(), slot);
        self.inner
            .metrics
            .inc("coldquery_sessions_total", &[("event", "begun")]);
        Ok(view)
    }

    /// The `limit_exceeded` error: how many sessions are open, how many are the caller's, when
    /// the caller's most idle one expires, and what to do now.
    fn limit_error(
        &self,
        map: &HashMap<String, Arc<Slot>>,
        owner: &str,
        open: usize,
        mine: usize,
    ) -> ToolError {
        let (max, per) = (self.inner.max, self.inner.max_per_owner);
        let which = if mine >= per {
            format!(
                "you hold {mine} open session{}, the most one caller may \
                 (COLDQUERY_MAX_SESSIONS_PER_CALLER={per}); {open} of {max} are open in all",
                if mine == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "all {max} sessions are in use (COLDQUERY_MAX_SESSIONS={max}): {mine} of them \
                 yours, {} other callers'",
                open.saturating_sub(mine)
            )
        };
        let oldest = map
            .values()
            .filter(|s| s.owner == owner)
            .max_by_key(|s| s.idle());
        let expiry = match oldest {
            Some(s) => format!(
                " Your most idle one, {}, has been idle {}s and is rolled back in {}s \
                 (COLDQUERY_SESSION_TTL).",
                s.id,
                s.idle().as_secs(),
                self.inner.ttl.saturating_sub(s.idle()).as_secs()
            ),
            None => String::new(),
        };
        let now = if mine > 0 {
            "Now: commit or roll back one you no longer need (pg_tx list shows yours)"
        } else {
            "Now: retry when one is released"
        };
        ToolError::LimitExceeded(format!(
            "{which}.{expiry} {now}; for atomic work that fits in one call, use pg_query \
             transaction (operations run and commit together, no session needed)."
        ))
    }

    async fn open(
        &self,
        owner: &str,
        created_in: Option<&str>,
        isolation: Isolation,
        read_only: bool,
        role: Option<&Role>,
    ) -> Result<Arc<Slot>, ToolError> {
        // The role is set inside the transaction: no round trip of its own, and a savepoint
        // rolled back later was taken after it, so nothing in the session can undo it.
        let begin = format!(
            "BEGIN ISOLATION LEVEL {}{}; {}{}; SELECT pg_backend_pid()",
            isolation.sql(),
            if read_only { " READ ONLY" } else { "" },
            self.inner.limits.set_local_sql(),
            roles::set_local_sql(role)
        );
        let ((conn, pid), conn_opened, spare_named) = match self.inner.spares.take() {
            // A spare is renamed in the same round trip as its BEGIN.
            Some(spare) => {
                let sql = format!("SET application_name = 'coldquery-session'; {begin}");
                match self.begin_on(spare.conn, sql).await {
                    Ok(begun) => (begun, spare.opened, spare.spare_named),
                    // It died while it waited (a restart, a proxy): nothing ran; connect.
                    Err(e) if spare_was_dead(&e) => {
                        (self.begin_fresh(begin).await?, Instant::now(), false)
                    }
                    Err(e) => return Err(e),
                }
            }
            None => (self.begin_fresh(begin).await?, Instant::now(), false),
        };

        Ok(Arc::new(Slot {
            id: new_handle()?,
            owner: owner.to_owned(),
            created_in: created_in.map(str::to_owned),
            created: Instant::now(),
            isolation,
            read_only,
            pid,
            conn: Arc::new(tokio::sync::Mutex::new(Some(conn))),
            last_used: Mutex::new(Instant::now()),
            failed: Mutex::new(None),
            statements: AtomicU64::new(0),
            worked: Mutex::new(false),
            needs_drain: std::sync::atomic::AtomicBool::new(false),
            conn_opened,
            spare_named,
            reusable: std::sync::atomic::AtomicBool::new(self.inner.reuse),
            read_open: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    async fn begin_fresh(&self, sql: String) -> Result<(PgConnection, i32), ToolError> {
        let conn = connect_dedicated(&self.inner.options, "session").await?;
        self.begin_on(conn, sql).await
    }

    /// Run the BEGIN batch on `conn`; returns it with its backend pid.
    async fn begin_on(
        &self,
        mut conn: PgConnection,
        sql: String,
    ) -> Result<(PgConnection, i32), ToolError> {
        let deadline = self.inner.limits.client_deadline();
        let begun = tokio::time::timeout(
            deadline,
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn),
        )
        .await
        .map_err(|_| {
            ToolError::Timeout(format!(
                "the database did not answer BEGIN within {}s; check GET /health and retry",
                deadline.as_secs()
            ))
        })?;
        let rows = begun.map_err(|e| ToolError::from_sqlx(e, 0))?;
        let pid: i32 = rows.last().and_then(|r| r.try_get(0).ok()).ok_or_else(|| {
            ToolError::Unavailable("could not read the session's backend pid; retry".into())
        })?;
        Ok((conn, pid))
    }

    fn lookup(&self, owner: &str, id: &str) -> Result<Arc<Slot>, ToolError> {
        if let Some(slot) = self.inner.map.lock().expect("session map lock").get(id) {
            // Someone else's handle looks exactly like one that never existed.
            if slot.owner == owner {
                return Ok(slot.clone());
            }
        }
        Err(self.why_gone(owner, id))
    }

    /// Take the handle's connection for one call, with no cached statements (a call that may
    /// run anything on the session's connection: `pg_schema`, `pg_admin`, cursors): waits
    /// (bounded) for a concurrent call on the same handle to finish, then `session_busy`.
    pub(crate) async fn acquire(&self, owner: &str, id: &str) -> Result<SessionGuard, ToolError> {
        let mut g = self.acquire_cached(owner, id).await?;
        // The session may have changed its own schema since (DDL inside the transaction), or
        // another connection may have, on a table whose lock a rolled-back savepoint released;
        // a stale cached statement would abort the transaction.
        g.fresh_statements().await?;
        Ok(g)
    }

    /// [`Sessions::acquire`] keeping the connection's cached statements, for calls that cope
    /// with a stale one themselves: `pg_query` (its savepoint shapes retry once with fresh
    /// statements, a write applied to the transaction never runs a cached one; see
    /// [`crate::db::run::session`]) and `pg_tx` (our own statements only, never prepared).
    pub(crate) async fn acquire_cached(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<SessionGuard, ToolError> {
        let slot = self.lookup(owner, id)?;
        let guard = match tokio::time::timeout(BUSY_WAIT, slot.conn.clone().lock_owned()).await {
            Ok(g) => g,
            Err(_) => {
                return Err(ToolError::SessionBusy(format!(
                    "session {id} is running another call; wait for it to finish, then retry"
                )));
            }
        };
        if guard.is_none() {
            // Closed while we waited (commit, rollback, reaper): report why.
            drop(guard);
            return Err(self.lookup(owner, id).err().unwrap_or_else(|| {
                ToolError::SessionNotFound(format!("session {id} was just closed"))
            }));
        }
        slot.touch();
        let mut g = SessionGuard {
            slot,
            conn: Some(guard),
            sessions: self.clone(),
            in_statement: false,
        };
        if g.slot.needs_drain.swap(false, Ordering::SeqCst) {
            // The first round trip returns the abandoned statement's outcome (usually
            // "canceling statement due to user request"); the second proves the connection
            // is back in step. If it is not, the session is lost, and we say so.
            let _ = tokio::time::timeout(Duration::from_secs(5), g.raw().ping()).await;
            let ok = matches!(
                tokio::time::timeout(Duration::from_secs(5), g.raw().ping()).await,
                Ok(Ok(()))
            );
            if !ok {
                return Err(g.mark_lost("its connection did not recover from a cancelled call"));
            }
        }
        Ok(g)
    }

    /// The caller's open sessions.
    pub(crate) fn list(&self, owner: &str) -> Vec<SessionView> {
        let map = self.inner.map.lock().expect("session map lock");
        let mut v: Vec<&Arc<Slot>> = map.values().filter(|s| s.owner == owner).collect();
        v.sort_by_key(|s| s.created);
        v.into_iter().map(|s| describe(s, self.inner.ttl)).collect()
    }

    /// Reminders of the caller's open sessions, for `hints` on every result.
    pub(crate) fn hints(&self, owner: &str, except: Option<&str>) -> Vec<SessionHint> {
        let map = self.inner.map.lock().expect("session map lock");
        map.values()
            .filter(|s| s.owner == owner && Some(s.id.as_str()) != except)
            .map(|s| hint(s, self.inner.ttl))
            .collect()
    }
}

/// Open a dedicated connection (a `pg_tx` session's or a cursor's, `what`), within 5 s. A
/// failed connect is the database being unreachable, not a statement error.
pub(crate) async fn connect_dedicated(
    options: &sqlx::postgres::PgConnectOptions,
    what: &str,
) -> Result<PgConnection, ToolError> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(options)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(ToolError::unreachable(&e)),
        Err(_) => Err(ToolError::Unavailable(format!(
            "could not open a {what} connection within 5s; check GET /health and retry"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_carry_128_random_bits() {
        let a = new_handle().unwrap();
        let b = new_handle().unwrap();
        assert_eq!(a.len(), 3 + 32);
        assert!(a.starts_with("tx_"));
        assert_ne!(a, b);
    }
}
