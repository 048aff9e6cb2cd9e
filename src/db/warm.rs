//! Main-pool connections kept checked out between one-shot reads, so that a point read is one
//! round trip on the wire, not two.
//!
//! sqlx gives a connection back to its pool by spawning a task that sends a `Sync` "ping"
//! first (sqlx 0.9 has no switch for it): a second round trip and a task switch per read, paid
//! by PostgreSQL and by this server's CPU. A read that finished cleanly (rows or an error
//! PostgreSQL reported; the connection is idle, outside any transaction, on a read-first
//! connection whose policy point guaranteed that nothing outlives the statement) is parked here
//! instead, and the next call on the main pool takes it first ([`crate::db::acquire`]), whatever
//! it runs: a parked connection is an ordinary idle main-pool connection.
//!
//! The connection budget is sqlx's: parked connections count as checked out. At most half the
//! pool is parked, so callers that reach sqlx directly always find room. The sweeper gives
//! back to sqlx what has been idle for [`IDLE`] or parked first [`TENURE`] ago, so sqlx's own
//! idle timeout and maximum lifetime still apply. A read that did not finish cleanly (lost
//! connection, client deadline, a cancelled call) never comes here: its connection is closed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

/// A parked connection idle this long goes back to sqlx's pool.
const IDLE: Duration = Duration::from_secs(5);

/// A connection first parked this long ago goes back to sqlx's pool at the next look, so that
/// sqlx's maximum lifetime (30 min) still applies to connections that are never idle.
const TENURE: Duration = Duration::from_secs(600);

/// How often the sweeper looks.
const TICK: Duration = Duration::from_secs(1);

/// A parked connection: when it was parked, and when it was first parked (its tenure).
struct Parked {
    conn: PoolConnection<Postgres>,
    at: Instant,
    since: Instant,
}

/// A connection taken from the parked ones, with the start of its tenure.
pub(crate) struct Taken {
    pub(crate) conn: PoolConnection<Postgres>,
    pub(crate) since: Instant,
}

/// The parked connections, newest last.
pub(crate) struct Warm {
    parked: Mutex<Vec<Parked>>,
    cap: usize,
    /// Set at shutdown: nothing is parked any more (sqlx's `close` waits for every connection).
    closed: AtomicBool,
}

impl Warm {
    /// Room for half of a pool of `pool_size` (at least one).
    pub(crate) fn new(pool_size: u32) -> Warm {
        let cap = (pool_size as usize / 2).max(1);
        Warm {
            parked: Mutex::new(Vec::with_capacity(cap)),
            cap,
            closed: AtomicBool::new(false),
        }
    }

    /// The most recently parked connection (its backend's caches are the warmest).
    pub(crate) fn take(&self) -> Option<Taken> {
        self.lock().pop().map(|p| Taken {
            conn: p.conn,
            since: p.since,
        })
    }

    /// Park a connection whose statement finished cleanly (`since`: when it was first parked,
    /// `None` for a connection fresh from sqlx); over the cap it goes back to sqlx.
    pub(crate) fn park(&self, conn: PoolConnection<Postgres>, since: Option<Instant>) {
        let mut parked = self.lock();
        if parked.len() < self.cap && !self.closed.load(Ordering::Acquire) {
            let at = Instant::now();
            parked.push(Parked {
                conn,
                at,
                since: since.unwrap_or(at),
            });
        }
        // Otherwise dropped after the lock is released: sqlx spawns its return-to-pool task.
    }

    /// How many are parked now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Give back to sqlx those idle since before `idle` or parked first before `tenure` (all
    /// of them with `None`).
    pub(crate) fn release(&self, cutoffs: Option<(Instant, Instant)>) {
        let returned: Vec<Parked> = {
            let mut parked = self.lock();
            match cutoffs {
                None => parked.drain(..).collect(),
                Some((idle, tenure)) => {
                    let (old, keep) = parked
                        .drain(..)
                        .partition(|p| p.at < idle || p.since < tenure);
                    *parked = keep;
                    old
                }
            }
        };
        drop(returned);
    }

    /// Park nothing more and give everything back (before the pool is closed).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.release(None);
    }

    /// Give back idle and long-tenured parked connections to sqlx, until `stop`.
    pub(crate) fn spawn_sweeper(
        self: std::sync::Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let now = Instant::now();
                if let (Some(idle), Some(tenure)) = (now.checked_sub(IDLE), now.checked_sub(TENURE))
                {
                    self.release(Some((idle, tenure)));
                }
            }
            self.release(None);
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        // A panic while holding this lock leaves a plain Vec behind: still consistent.
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }
}
