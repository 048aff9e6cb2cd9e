//! Database access: the pools (with the fast-failing acquire and the shared outage probe), the
//! executor (limits, caps, binding), value mapping, and [`run`]: the transaction shapes every
//! statement runs in, with their round-trip costs.

pub(crate) mod audit;
pub(crate) mod capped;
pub(crate) mod catalog;
pub(crate) mod cost;
pub(crate) mod cursors;
pub(crate) mod executor;
pub(crate) mod per_caller;
pub(crate) mod roles;
pub(crate) mod run;
pub(crate) mod sessions;
pub(crate) mod spares;
pub(crate) mod values;
pub(crate) mod warm;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::ToolError;
use executor::{Limits, simple};

/// The two pools: one serves tool calls, a tiny one serves `/health` and monitoring so that a
/// saturated pool can never make the server look dead to its orchestrator.
#[derive(Clone)]
pub struct Pools {
    /// Stateless tool calls. Its connections start read-only, with the configured statement
    /// and lock timeouts, so that a read is one autocommit statement ([`run::guard::OneShotRead`]); writes
    /// say `BEGIN READ WRITE`.
    main: PgPool,
    /// The same pool without those startup options, used only when the database (or a
    /// pooler in front of it) refuses them; see [`Pools::pool`].
    plain: PgPool,
    /// Whether `main` is usable; cleared once, with a warning, when its options are refused.
    fast: Arc<AtomicBool>,
    /// `main` connections parked between one-shot reads (no release ping): see [`warm`].
    pub(crate) warm: Arc<warm::Warm>,
    /// Health checks and monitoring.
    pub health: PgPool,
    /// `pg_monitor` calls: a pool of their own, so that a main pool full of one caller's long
    /// reads never blocks a look at what is going on (and never takes `/health`'s connections).
    pub monitor: PgPool,
    /// Set when a connection attempt found the database unreachable, cleared when one succeeds:
    /// while set, a call that would have to open a connection probes once and fails at once
    /// instead of waiting out the acquire timeout (an outage answers fast).
    known_down: Arc<AtomicBool>,
    /// The last probe of the database (when, and why it failed if it did): calls waiting at
    /// the same moment share one probe, so a busy pool never floods PostgreSQL with them.
    last_probe: Arc<tokio::sync::Mutex<Option<LastProbe>>>,
}

impl Pools {
    /// Build both pools lazily: the server starts (and `/health` can say 503) even when the
    /// database is down at start-up.
    pub fn connect_lazy(options: PgConnectOptions, pool_size: u32, limits: &Limits) -> Pools {
        let main = Self::main_pool(pool_size).connect_lazy_with(read_first(&options, limits));
        let plain = Self::main_pool(pool_size).connect_lazy_with(options.clone());
        let health = PgPoolOptions::new()
            .max_connections(pool_size)
            // A call that cannot get a connection within 5 s is better told to retry than left
            // hanging behind long-running statements.
            .acquire_timeout(Duration::from_secs(5))
            // No ping per acquire: it costs a round trip on every call. A dead connection fails
            // at BEGIN, before anything ran, and `run::guard::PooledTx::begin` retries once on a fresh one.
            .test_before_acquire(false)
            // Idle connections are given back after 10 minutes: memory matters on a 4 GB Pi.
            .idle_timeout(Some(Duration::from_secs(600)))
            // Two connections: a scrape and a probe at the same time never wait on each other.
            .max_connections(2)
            // Leaves room within /health's 1 s budget for the probe that says why no
            // connection came (`unreachable_reason`).
            .acquire_timeout(Duration::from_millis(500))
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
            plain,
            fast: Arc::new(AtomicBool::new(true)),
            warm: Arc::new(warm::Warm::new(pool_size)),
            health,
            monitor,
            known_down: Arc::new(AtomicBool::new(false)),
            last_probe: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    fn main_pool(pool_size: u32) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(pool_size)
            // A call that cannot get a connection within 5 s is better told to retry than left
            // hanging behind long-running statements.
            .acquire_timeout(Duration::from_secs(5))
            // No ping per acquire: it costs a round trip on every call. A dead connection fails
            // at its first statement, before anything ran, and the call retries once on a
            // fresh one.
            .test_before_acquire(false)
            // Idle connections are given back after 10 minutes: memory matters on a 4 GB Pi.
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
    }

    /// The pool that serves tool calls (and the catalog snapshot).
    pub fn pool(&self) -> &PgPool {
        if self.fast_reads() {
            &self.main
        } else {
            &self.plain
        }
    }

    /// Whether pooled connections carry the read-first startup options, so that a read may
    /// run as one autocommit statement.
    pub fn fast_reads(&self) -> bool {
        self.fast.load(Ordering::Relaxed)
    }

    /// Start the task that gives parked read connections back to the pool ([`warm`]).
    pub fn spawn_warm_sweeper(&self, stop: tokio_util::sync::CancellationToken) {
        self.warm.clone().spawn_sweeper(stop);
    }

    /// Main-pool connections parked between one-shot reads now.
    pub fn parked(&self) -> usize {
        self.warm.len()
    }

    /// Close every pool.
    pub async fn close(&self) {
        self.warm.close();
        self.main.close().await;
        self.plain.close().await;
        self.monitor.close().await;
        self.health.close().await;
    }

    /// The main pool's startup options were refused: fall back to plain connections for the
    /// rest of the process's life, and say so once.
    fn refuse_fast(&self, e: &sqlx::Error) {
        if self.fast.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = %e,
                "the database refused ColdQuery's startup options (default_transaction_read_only, \
                 statement_timeout, lock_timeout, client_connection_check_interval); falling back \
                 to plain connections: every read now costs 3 round trips (BEGIN READ ONLY … \
                 ROLLBACK) instead of 1"
            );
        }
    }
}

/// The startup options of the main pool's connections: every transaction is read-only unless
/// it says `BEGIN READ WRITE`, the configured timeouts hold without a `SET LOCAL`, and a
/// statement whose client went away (the call was cancelled or timed out, and ColdQuery closed
/// the connection) is stopped by PostgreSQL within a second.
fn read_first(options: &PgConnectOptions, limits: &Limits) -> PgConnectOptions {
    options.clone().options([
        ("default_transaction_read_only", "on".to_owned()),
        (
            "statement_timeout",
            limits.statement_timeout.as_millis().max(1).to_string(),
        ),
        (
            "lock_timeout",
            limits.lock_timeout.as_millis().max(1).to_string(),
        ),
        ("client_connection_check_interval", "1000".to_owned()),
    ])
}

/// Whether a connection attempt failed because the server (or a pooler such as PgBouncer) does
/// not accept one of our startup options.
fn is_startup_option_refusal(e: &sqlx::Error) -> bool {
    match e.as_database_error() {
        Some(d) => {
            let msg = d.message();
            (matches!(
                d.code().as_deref(),
                Some("42704" | "22023" | "08P01" | "42501")
            ) && msg.contains("parameter"))
                || msg.contains("unsupported startup parameter")
        }
        None => false,
    }
}

/// After this long waiting for a pooled connection, a direct connection attempt checks whether
/// the database is there at all (the pool itself would retry refused connections until its
/// 5 s acquire timeout). Normal acquires finish long before; a busy pool keeps waiting.
const PROBE_AFTER: Duration = Duration::from_millis(250);

/// Acquire from `pool` (the main or the monitoring pool), failing fast (about `PROBE_AFTER`)
/// when the database is unreachable instead of waiting out the acquire timeout.
pub(crate) async fn acquire(
    pools: &Pools,
    pool: &PgPool,
) -> Result<PoolConnection<Postgres>, ToolError> {
    // A connection parked after a one-shot read is an idle main-pool connection like any other.
    if std::ptr::eq(pool, &pools.main)
        && let Some(taken) = pools.warm.take()
    {
        return Ok(taken.conn);
    }
    acquire_fresh(pools, pool).await
}

/// [`acquire`] from sqlx's pool itself, passing over parked connections.
pub(crate) async fn acquire_fresh(
    pools: &Pools,
    pool: &PgPool,
) -> Result<PoolConnection<Postgres>, ToolError> {
    let acquire = pool.acquire();
    tokio::pin!(acquire);
    let probe = async {
        tokio::time::sleep(PROBE_AFTER).await;
        shared_probe(pools).await
    };
    let reached = tokio::select! {
        r = &mut acquire => r,
        why = probe => match why {
            Some(why) => {
                pools.known_down.store(true, Ordering::Relaxed);
                return Err(ToolError::unreachable_because(&why));
            }
            // The database answers: the pool is busy (or slow to connect); keep waiting.
            None => acquire.await,
        },
    };
    match reached {
        Ok(conn) => Ok(conn),
        Err(e) if std::ptr::eq(pool, &pools.main) && is_startup_option_refusal(&e) => {
            pools.refuse_fast(&e);
            Box::pin(self::acquire_fresh(pools, &pools.plain)).await
        }
        Err(e) => Err(acquire_error(pools, e).await),
    }
}

/// One direct connection attempt: an `unreachable` error (and the pools marked down) when it
/// fails, the mark cleared when it succeeds.
pub(crate) async fn probe_or_clear(pools: &Pools) -> Result<(), ToolError> {
    match shared_probe(pools).await {
        Some(why) => {
            pools.known_down.store(true, Ordering::Relaxed);
            Err(ToolError::unreachable_because(&why))
        }
        None => {
            pools.known_down.store(false, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// How long the probe behind a pool time-out may take to learn why no connection came.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// Why a pool could not hand out a connection within its acquire timeout. sqlx reports
/// `PoolTimedOut` both when every connection is busy and when the database refuses or is still
/// starting up (it retries those until the deadline), so one direct connection attempt tells
/// the two apart: `Some(error)` when the database cannot be reached, `None` when it can (the
/// pool really was busy). The probe's connection is closed at once.
pub(crate) async fn unreachable_reason(pool: &PgPool) -> Option<sqlx::Error> {
    use sqlx::{ConnectOptions, Connection};
    let options = pool.connect_options();
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            None
        }
        Ok(Err(e)) => Some(e),
        Err(_) => Some(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer to a connection attempt",
        ))),
    }
}

/// When the last probe ran, and why the database could not be reached (`None`: it could).
type LastProbe = (Instant, Option<String>);

/// `unreachable_reason` on the main pool, shared: one probe at a time, and the calls that
/// waited for a probe take its result (one that ended after they asked: never an older one, so
/// the first call after the database is back does not get a stale "unreachable").
/// `Some(why)` when the database cannot be reached.
async fn shared_probe(pools: &Pools) -> Option<String> {
    let asked = Instant::now();
    let mut last = pools.last_probe.lock().await;
    if let Some((at, why)) = &*last
        && *at >= asked
    {
        return why.clone();
    }
    let why = unreachable_reason(pools.pool())
        .await
        .map(|e| crate::error::unreachable_kind(&e));
    *last = Some((Instant::now(), why.clone()));
    why
}

/// The tool error for a failed acquire from `pool`: a time-out is "unreachable" when the
/// database cannot be connected to, and "busy" only when it can (issue 9, finding 16).
async fn acquire_error(pools: &Pools, e: sqlx::Error) -> ToolError {
    if !matches!(e, sqlx::Error::PoolTimedOut) {
        return ToolError::from_sqlx(e, 0);
    }
    match shared_probe(pools).await {
        Some(why) => {
            pools.known_down.store(true, Ordering::Relaxed);
            ToolError::unreachable_because(&why)
        }
        None => ToolError::from_sqlx(e, 0),
    }
}

/// Run `SELECT 1` on the health pool; used by `/health` and `coldquery check`. When no
/// connection comes in time, the error is the database's own reason (refused, starting up,
/// shutting down) rather than the pool's time-out, so `/health` can say why it is 503.
pub async fn health_check(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(sqlx::Error::PoolTimedOut) => {
            return Err(unreachable_reason(pool)
                .await
                .unwrap_or(sqlx::Error::PoolTimedOut));
        }
        Err(e) => return Err(e),
    };
    simple(&mut conn, "SELECT 1").await
}
