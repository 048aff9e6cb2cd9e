//! The session manager behind `pg_tx`: opaque handles mapped to **dedicated** connections (never
//! taken from the stateless pool, so open transactions cannot starve reads or `/health`),
//! ownership by caller (the authenticated principal first, contract §8), the sliding idle TTL
//! and its reaper, the session limits (in all and per owner), serialised use of one handle, the
//! client-side deadline of session statements, and clean-up on MCP session end and shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::OwnedMutexGuard;

use crate::caller::digest;
use crate::db::cursors::Cursors;
use crate::db::executor::Limits;
use crate::db::roles::{self, Role};
use crate::db::spares::{Spares, spare_was_dead};
use crate::error::{DbError, ToolError};
use crate::metrics::Metrics;

/// How long a second call on a busy handle waits for its turn before `session_busy`.
const BUSY_WAIT: Duration = Duration::from_secs(10);
/// How long tombstones of expired or lost handles are kept, so their owner hears why.
const TOMBSTONE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Tombstones kept at most (oldest dropped first): bounded memory whatever the churn.
const TOMBSTONE_MAX: usize = 10_000;

/// Transaction isolation levels `pg_tx begin` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// READ COMMITTED (the default).
    ReadCommitted,
    /// REPEATABLE READ.
    RepeatableRead,
    /// SERIALIZABLE.
    Serializable,
}

impl Isolation {
    /// Parse the contract's spelling.
    pub fn parse(s: &str) -> Result<Isolation, ToolError> {
        match s.to_ascii_lowercase().replace(' ', "_").as_str() {
            "read_committed" => Ok(Isolation::ReadCommitted),
            "repeatable_read" => Ok(Isolation::RepeatableRead),
            "serializable" => Ok(Isolation::Serializable),
            _ => Err(ToolError::InvalidInput(format!(
                "unknown isolation_level {:?}; use read_committed (default), repeatable_read or serializable",
                s.chars().take(40).collect::<String>()
            ))),
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }

    /// The contract's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::RepeatableRead => "repeatable_read",
            Isolation::Serializable => "serializable",
        }
    }
}

/// Why a handle is gone, for its owner's next call.
#[derive(Debug, Clone)]
enum Tombstone {
    Expired { idle_s: u64 },
    Lost { reason: String },
}

/// One open session.
pub struct Slot {
    /// The handle.
    pub id: String,
    owner: String,
    /// The MCP session whose call opened it: its DELETE ends this handle (contract §8).
    created_in: Option<String>,
    created: Instant,
    isolation: Isolation,
    read_only: bool,
    /// Backend pid of the dedicated connection, for cancel requests.
    pub pid: i32,
    conn: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
    last_used: Mutex<Instant>,
    /// Set when a statement failed and PostgreSQL aborted the transaction.
    failed: Mutex<Option<String>>,
    statements: AtomicU64,
    worked: Mutex<bool>,
    /// A call was abandoned mid-statement: the connection still owes us that statement's
    /// outcome, which must be read and discarded before the next use.
    needs_drain: std::sync::atomic::AtomicBool,
}

impl Slot {
    fn idle(&self) -> Duration {
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    fn state(&self) -> &'static str {
        if self.failed.lock().map(|f| f.is_some()).unwrap_or(false) {
            "failed"
        } else if *self.worked.lock().expect("worked lock is never poisoned") {
            "in_transaction"
        } else {
            "idle"
        }
    }
}

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
    /// Connections opened ahead for begin.
    spares: Spares,
}

/// The session manager; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

/// A view of one session for results and `pg_tx list`.
pub fn describe(slot: &Slot, ttl: Duration) -> Value {
    let idle = slot.idle();
    json!({
        "id": slot.id,
        "age_s": slot.created.elapsed().as_secs(),
        "idle_s": idle.as_secs(),
        "expires_in_s": ttl.saturating_sub(idle).as_secs(),
        "state": slot.state(),
        "isolation": slot.isolation.name(),
        "read_only": slot.read_only,
        "statements": slot.statements.load(Ordering::Relaxed),
    })
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
    pub fn new(
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
                spares: Spares::new(options.clone(), 0, metrics.clone()),
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
    pub fn with_cursors(mut self, cursors: Cursors) -> Sessions {
        Arc::get_mut(&mut self.inner)
            .expect("the cursors are set before the session manager is shared")
            .cursors = cursors;
        self
    }

    /// The continuation-cursor registry.
    pub fn cursors(&self) -> &Cursors {
        &self.inner.cursors
    }

    /// Whether `id` is an open session (of anyone).
    pub fn is_open(&self, id: &str) -> bool {
        self.inner
            .map
            .lock()
            .map(|m| m.contains_key(id))
            .unwrap_or(false)
    }

    /// Set how many sessions one owner may hold (`COLDQUERY_MAX_SESSIONS_PER_CALLER`; the
    /// default is half of `max_sessions`, at least 1). Call before the manager is shared.
    pub fn with_max_per_owner(mut self, n: usize) -> Sessions {
        Arc::get_mut(&mut self.inner)
            .expect("the limit is set before the session manager is shared")
            .max_per_owner = n.max(1);
        self
    }

    /// Keep `n` connections opened ahead for begin (see [`crate::db::spares`]); 0: none.
    pub fn with_spares(mut self, n: usize) -> Sessions {
        let inner = Arc::get_mut(&mut self.inner)
            .expect("spares are set before the session manager is shared");
        inner.spares = Spares::new(inner.options.clone(), n, inner.metrics.clone());
        self
    }

    /// Spare connections ready now (for /metrics).
    pub fn spares_ready(&self) -> usize {
        self.inner.spares.len()
    }

    /// Sessions open now.
    pub fn open_count(&self) -> usize {
        self.inner.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The idle TTL.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Open a transaction on a new dedicated connection and mint its handle. `created_in` is
    /// the MCP session of the call, if any: its DELETE will end the handle. `role` is the
    /// caller's role: set at begin, it holds for the session's whole life (the connection
    /// ends with the transaction).
    pub async fn begin(
        &self,
        owner: &str,
        created_in: Option<&str>,
        isolation: Isolation,
        read_only: bool,
        role: Option<&Role>,
    ) -> Result<Value, ToolError> {
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
        let view = describe(&slot, self.inner.ttl);
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
        let (conn, pid) = match self.inner.spares.take() {
            // A spare is renamed in the same round trip as its BEGIN.
            Some(spare) => {
                let sql = format!("SET application_name = 'coldquery-session'; {begin}");
                match self.begin_on(spare, sql).await {
                    Ok(begun) => begun,
                    // It died while it waited (a restart, a proxy): nothing ran; connect.
                    Err(e) if spare_was_dead(&e) => self.begin_fresh(begin).await?,
                    Err(e) => return Err(e),
                }
            }
            None => self.begin_fresh(begin).await?,
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
        let tomb = self
            .inner
            .tombstones
            .lock()
            .expect("tombstone lock")
            .get(id)
            .filter(|(o, _, _)| o == owner)
            .map(|(_, t, _)| t.clone());
        match tomb {
            Some(Tombstone::Expired { idle_s }) => Err(ToolError::SessionExpired(format!(
                "session {id} expired after {idle_s}s idle (COLDQUERY_SESSION_TTL) and was rolled \
                 back; nothing it did was saved. Start again with pg_tx begin"
            ))),
            Some(Tombstone::Lost { reason }) => Err(ToolError::SessionLost(format!(
                "session {id} was lost ({reason}); its transaction was rolled back and nothing was \
                 saved. Start again with pg_tx begin"
            ))),
            None => Err(ToolError::SessionNotFound(format!(
                "no open session {:?} for this caller; pg_tx list shows your sessions, pg_tx begin \
                 starts one",
                id.chars().take(64).collect::<String>()
            ))),
        }
    }

    /// Take the handle's connection for one call: waits (bounded) for a concurrent call on the
    /// same handle to finish, then `session_busy`.
    pub async fn acquire(&self, owner: &str, id: &str) -> Result<SessionGuard, ToolError> {
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
            let _ = tokio::time::timeout(Duration::from_secs(5), g.conn().ping()).await;
            let ok = matches!(
                tokio::time::timeout(Duration::from_secs(5), g.conn().ping()).await,
                Ok(Ok(()))
            );
            if !ok {
                return Err(g.mark_lost("its connection did not recover from a cancelled call"));
            }
        }
        // A session may change its own schema between calls (DDL inside the transaction), and
        // a stale cached statement would abort the transaction: sessions start every call with
        // no cached statements.
        if g.conn().cached_statements_size() > 0 {
            // A round trip like any other: bounded by the same client-side deadline.
            let deadline = g.deadline();
            if tokio::time::timeout(deadline, g.conn().clear_cached_statements())
                .await
                .is_err()
            {
                g.in_statement = true;
                return Err(g.deadline_passed(deadline));
            }
        }
        Ok(g)
    }

    fn bury(&self, slot: &Slot, tomb: Tombstone) {
        self.inner.cursors.forget_session(&slot.id);
        self.inner
            .map
            .lock()
            .expect("session map lock")
            .remove(&slot.id);
        let mut t = self.inner.tombstones.lock().expect("tombstone lock");
        if t.len() >= TOMBSTONE_MAX {
            let cutoff = Instant::now() - TOMBSTONE_TTL;
            t.retain(|_, (_, _, at)| *at > cutoff);
            if t.len() >= TOMBSTONE_MAX
                && let Some(oldest) = t
                    .iter()
                    .min_by_key(|(_, (_, _, at))| *at)
                    .map(|(k, _)| k.clone())
            {
                t.remove(&oldest);
            }
        }
        t.insert(slot.id.clone(), (slot.owner.clone(), tomb, Instant::now()));
    }

    /// Close the connection in `conn` after a ROLLBACK; errors are irrelevant by then.
    async fn rollback_and_close(conn: &mut Option<PgConnection>) {
        if let Some(mut c) = conn.take() {
            let rolled = tokio::time::timeout(
                Duration::from_secs(5),
                sqlx::Executor::execute(&mut c, sqlx::raw_sql("ROLLBACK")),
            )
            .await;
            if matches!(rolled, Ok(Ok(_))) {
                let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
            } else {
                // Dropping the connection closes the socket; PostgreSQL then aborts the
                // transaction itself.
                drop(c);
            }
        }
    }

    /// Roll back and close every handle of `owner` (MCP session ended). Idempotent.
    pub async fn close_owned_by(&self, owner: &str) {
        self.inner.cursors.close_owned_by(owner).await;
        let slots: Vec<Arc<Slot>> = {
            let mut map = self.inner.map.lock().expect("session map lock");
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, s)| s.owner == owner)
                .map(|(k, _)| k.clone())
                .collect();
            ids.iter().filter_map(|k| map.remove(k)).collect()
        };
        for slot in slots {
            self.cancel_if_busy(&slot).await;
            let mut g = slot.conn.lock().await;
            Self::rollback_and_close(&mut g).await;
            self.inner.metrics.inc(
                "coldquery_sessions_total",
                &[("event", "closed_with_mcp_session")],
            );
            tracing::info!(session = %digest(&slot.id), "MCP session ended: rolled back and closed its transaction");
        }
    }

    /// Roll back and close every handle opened from MCP session `mcp_session` (its client sent
    /// DELETE), whoever owns them; their owner's next use hears why. Idempotent.
    pub async fn close_created_in(&self, mcp_session: &str) {
        self.inner.cursors.close_created_in(mcp_session).await;
        let slots: Vec<Arc<Slot>> = self
            .inner
            .map
            .lock()
            .expect("session map lock")
            .values()
            .filter(|s| s.created_in.as_deref() == Some(mcp_session))
            .cloned()
            .collect();
        for slot in slots {
            self.bury(
                &slot,
                Tombstone::Lost {
                    reason: "the MCP session that began it was ended by its client (HTTP DELETE)"
                        .into(),
                },
            );
            self.cancel_if_busy(&slot).await;
            let mut g = slot.conn.lock().await;
            Self::rollback_and_close(&mut g).await;
            self.inner.metrics.inc(
                "coldquery_sessions_total",
                &[("event", "closed_with_mcp_session")],
            );
            tracing::info!(session = %digest(&slot.id), "MCP session deleted: rolled back and closed a transaction it began");
        }
    }

    /// If a call is running on this handle, cancel its statement in PostgreSQL.
    async fn cancel_if_busy(&self, slot: &Slot) {
        if slot.conn.try_lock().is_err() {
            cancel_backend(&self.inner.cancel_pool, slot.pid).await;
        }
    }

    /// Roll back and close every open handle (graceful shutdown).
    pub async fn close_all(&self) {
        self.inner.cursors.close_all().await;
        self.inner.spares.close().await;
        let slots: Vec<Arc<Slot>> = self
            .inner
            .map
            .lock()
            .expect("session map lock")
            .drain()
            .map(|(_, s)| s)
            .collect();
        for slot in slots {
            self.cancel_if_busy(&slot).await;
            let mut g = slot.conn.lock().await;
            Self::rollback_and_close(&mut g).await;
            tracing::info!(session = %digest(&slot.id), "shutdown: rolled back and closed");
        }
    }

    /// Expire idle handles once. Returns how many were reaped.
    pub async fn reap_once(&self) -> usize {
        let ttl = self.inner.ttl;
        let due: Vec<Arc<Slot>> = self
            .inner
            .map
            .lock()
            .expect("session map lock")
            .values()
            .filter(|s| s.idle() >= ttl)
            .cloned()
            .collect();
        let mut n = 0;
        for slot in due {
            // A handle whose call is running is not idle, whatever its clock says.
            let Ok(mut g) = slot.conn.clone().try_lock_owned() else {
                continue;
            };
            if slot.idle() < ttl {
                continue;
            }
            let idle_s = slot.idle().as_secs();
            self.bury(&slot, Tombstone::Expired { idle_s });
            Self::rollback_and_close(&mut g).await;
            self.inner
                .metrics
                .inc("coldquery_sessions_total", &[("event", "reaped")]);
            tracing::info!(session = %digest(&slot.id), idle_s, "session expired: rolled back and closed");
            n += 1;
        }
        n
    }

    /// Run the reaper until `stop` is cancelled.
    pub fn spawn_reaper(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        // Cursors have their own TTL, so their own reaper (stopped by the same token); the
        // spares their own refill task (which closes them when stopped).
        let _cursor_reaper = self.inner.cursors.spawn_reaper(stop.clone());
        let _refill = self.inner.spares.spawn_refill(stop.clone());
        let me = self.clone();
        // Check often enough that a handle never outlives its TTL by more than a quarter of it
        // (and at most 15 s), without spinning for tiny test TTLs.
        let every = (self.inner.ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => { me.reap_once().await; }
                }
            }
        })
    }

    /// The caller's open sessions.
    pub fn list(&self, owner: &str) -> Vec<Value> {
        let map = self.inner.map.lock().expect("session map lock");
        let mut v: Vec<&Arc<Slot>> = map.values().filter(|s| s.owner == owner).collect();
        v.sort_by_key(|s| s.created);
        v.into_iter().map(|s| describe(s, self.inner.ttl)).collect()
    }

    /// Reminders of the caller's open sessions, for `hints` on every result.
    pub fn hints(&self, owner: &str, except: Option<&str>) -> Vec<Value> {
        let map = self.inner.map.lock().expect("session map lock");
        map.values()
            .filter(|s| s.owner == owner && Some(s.id.as_str()) != except)
            .map(|s| {
                let idle = s.idle();
                json!({
                    "session_id": s.id,
                    "idle_s": idle.as_secs(),
                    "expires_in_s": self.inner.ttl.saturating_sub(idle).as_secs(),
                    "state": s.state(),
                    "message": format!(
                        "session {} is still open ({}); commit or rollback it with pg_tx when done",
                        s.id, s.state()
                    ),
                })
            })
            .collect()
    }

    /// Metrics registry (for the tool layer).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

impl Slot {
    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }
}

/// Exclusive use of one session's connection for the length of one call. Dropping it while a
/// statement is in flight (the client cancelled, or the request went away) cancels that
/// statement in PostgreSQL and marks the transaction failed: it is never silently continued.
pub struct SessionGuard {
    slot: Arc<Slot>,
    conn: Option<OwnedMutexGuard<Option<PgConnection>>>,
    sessions: Sessions,
    in_statement: bool,
}

impl SessionGuard {
    /// The dedicated connection.
    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().and_then(|g| g.as_mut()).expect(
            "a guard is only handed out for an open connection, and callers stop after mark_lost",
        )
    }

    /// Whether the connection is still there (false after `mark_lost`).
    pub fn is_open(&self) -> bool {
        self.conn.as_ref().is_some_and(|g| g.is_some())
    }

    /// The slot (id, pid).
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Mark that a statement is about to run (for the drop path).
    pub fn start_statement(&mut self) {
        self.in_statement = true;
        self.slot.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Record how the statement ended. `aborted`: PostgreSQL aborted the transaction.
    pub fn end_statement(&mut self, worked: bool, aborted: Option<String>) {
        self.in_statement = false;
        if worked {
            *self.slot.worked.lock().expect("worked lock") = true;
        }
        if let Some(reason) = aborted {
            *self.slot.failed.lock().expect("failed lock") = Some(reason);
        }
    }

    /// The transaction is healthy again (after ROLLBACK TO SAVEPOINT).
    pub fn clear_failure(&mut self) {
        *self.slot.failed.lock().expect("failed lock") = None;
    }

    /// Why the transaction failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.slot.failed.lock().expect("failed lock").clone()
    }

    /// The session as results show it.
    pub fn view(&self) -> Value {
        let v = describe(&self.slot, self.sessions.inner.ttl);
        json!({"id": v["id"], "expires_in_s": v["expires_in_s"], "state": v["state"]})
    }

    /// A call on this session ran past its client-side deadline and was abandoned: cancel the
    /// statement in PostgreSQL and mark the transaction failed (its state is unknown until the
    /// connection's outcome is drained), exactly as for a call the client cancelled.
    pub fn deadline_passed(&mut self, deadline: Duration) -> ToolError {
        if self.in_statement {
            self.in_statement = false;
            *self.slot.failed.lock().expect("failed lock") = Some(format!(
                "a statement ran past the {}s client-side deadline and was cancelled",
                deadline.as_secs()
            ));
            self.slot.needs_drain.store(true, Ordering::SeqCst);
            let pool = self.sessions.inner.cancel_pool.clone();
            let pid = self.slot.pid;
            tokio::spawn(async move { cancel_backend(&pool, pid).await });
        }
        ToolError::Timeout(format!(
            "session {} did not answer within {}s (COLDQUERY_STATEMENT_TIMEOUT + 5s); the \
             statement was cancelled and the transaction is now failed, so nothing it did will be \
             saved: pg_tx rollback, then start again (pg_tx commit would report that it rolled back)",
            self.slot.id,
            deadline.as_secs()
        ))
    }

    /// The client-side deadline of one session call (the same as pooled calls').
    pub fn deadline(&self) -> Duration {
        self.sessions.inner.limits.client_deadline()
    }

    /// The connection died: drop the handle and leave a tombstone saying so.
    pub fn mark_lost(&mut self, reason: &str) -> ToolError {
        self.in_statement = false;
        self.sessions.bury(
            &self.slot,
            Tombstone::Lost {
                reason: reason.to_owned(),
            },
        );
        if let Some(g) = self.conn.as_mut() {
            // Dropping the connection closes its socket; PostgreSQL aborts the transaction.
            g.take();
        }
        self.sessions
            .inner
            .metrics
            .inc("coldquery_sessions_total", &[("event", "lost")]);
        ToolError::SessionLost(format!(
            "session {} lost its database connection ({reason}); the transaction was rolled back \
             and nothing was saved. Start again with pg_tx begin",
            self.slot.id
        ))
    }

    /// End the session: COMMIT (or ROLLBACK), close the connection, forget the handle.
    /// Returns whether PostgreSQL committed.
    pub async fn finish(mut self, commit: bool) -> Result<bool, ToolError> {
        let failed = self.failure();
        let id = self.slot.id.clone();
        self.sessions.inner.cursors.forget_session(&id);
        self.sessions
            .inner
            .map
            .lock()
            .expect("session map lock")
            .remove(&id);
        let mut g = self
            .conn
            .take()
            .expect("guard holds the connection until finish");
        let mut conn = g.take().expect("guard connection is open");
        let sql = if commit && failed.is_none() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let deadline = self.sessions.inner.limits.client_deadline();
        let res = match tokio::time::timeout(
            deadline,
            sqlx::Executor::execute(&mut conn, sqlx::raw_sql(sql)),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                // Dropping the socket makes PostgreSQL abort a transaction that has not
                // committed yet; whether this COMMIT got there first, only the data can say.
                drop(conn);
                self.sessions
                    .inner
                    .metrics
                    .inc("coldquery_sessions_total", &[("event", "lost")]);
                return Err(ToolError::Timeout(format!(
                    "session {id}: the database did not answer {sql} within {}s; the connection \
                     was closed. {}",
                    deadline.as_secs(),
                    if sql == "COMMIT" {
                        "Whether it committed is unknown: check the data before redoing the work"
                    } else {
                        "The transaction is rolled back"
                    }
                )));
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
        let metrics = &self.sessions.inner.metrics;
        match (res, commit, failed) {
            (Ok(_), true, None) => {
                metrics.inc("coldquery_sessions_total", &[("event", "committed")]);
                Ok(true)
            }
            (Ok(_), true, Some(reason)) => {
                metrics.inc("coldquery_sessions_total", &[("event", "rolled_back")]);
                Err(ToolError::database(DbError {
                    sqlstate: Some("25P02".into()),
                    message: format!(
                        "COMMIT did not commit: the transaction had failed earlier ({reason}) so \
                         PostgreSQL rolled it back; nothing was saved"
                    ),
                    detail: None,
                    hint: Some(
                        "start again with pg_tx begin and redo the work; use savepoints \
                                (pg_tx savepoint / rollback_to) to survive a failing statement"
                            .into(),
                    ),
                    position: None,
                    operation_index: None,
                }))
            }
            (Ok(_), false, _) => {
                metrics.inc("coldquery_sessions_total", &[("event", "rolled_back")]);
                Ok(false)
            }
            (Err(e), _, _) => {
                metrics.inc("coldquery_sessions_total", &[("event", "rolled_back")]);
                let err = ToolError::from_sqlx(e, 0);
                Err(match err {
                    // A deferred constraint or serialization failure at COMMIT: rolled back.
                    ToolError::Database(mut d) => {
                        d.message = format!(
                            "COMMIT failed and the transaction was rolled back: {}",
                            d.message
                        );
                        ToolError::Database(d)
                    }
                    _ => ToolError::SessionLost(format!(
                        "session {id} lost its connection at {sql}; the transaction was rolled back"
                    )),
                })
            }
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.in_statement {
            // The call was abandoned mid-statement. Cancel it in PostgreSQL; the transaction is
            // then aborted, so say so on the next call instead of pretending it continued.
            *self.slot.failed.lock().expect("failed lock") =
                Some("a call was cancelled while its statement ran".into());
            self.slot.needs_drain.store(true, Ordering::SeqCst);
            let pool = self.sessions.inner.cancel_pool.clone();
            let pid = self.slot.pid;
            tokio::spawn(async move { cancel_backend(&pool, pid).await });
        }
        self.slot.touch();
    }
}

/// Ask PostgreSQL to cancel whatever backend `pid` is running (same role: no extra privilege).
pub async fn cancel_backend(pool: &PgPool, pid: i32) {
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

    #[test]
    fn isolation_levels_parse_in_the_contract_spelling() {
        assert_eq!(
            Isolation::parse("serializable").unwrap(),
            Isolation::Serializable
        );
        assert_eq!(
            Isolation::parse("Repeatable Read").unwrap(),
            Isolation::RepeatableRead
        );
        assert!(matches!(
            Isolation::parse("chaos"),
            Err(ToolError::InvalidInput(_))
        ));
    }
}
