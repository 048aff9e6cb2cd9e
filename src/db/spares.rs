//! Connections opened ahead for `pg_tx begin` (COLDQUERY_SPARE_CONNECTIONS, default 2): a new
//! PostgreSQL connection costs a TCP handshake, authentication and a backend start, several
//! milliseconds; a spare turns `begin` into one round trip on a connection that is already up.
//!
//! Spares are plain session connections (the same start-up options: idle-in-transaction,
//! statement and lock timeouts) that are never used by the pool. They show as
//! `application_name = coldquery-spare` until `begin` takes one (its BEGIN sets the name to
//! `coldquery-session` in the same round trip). A background task keeps the set full,
//! replaces connections older than five minutes (a firewall or PgBouncer may have dropped
//! them), and backs off while the database is down.
//!
//! A session that ends cleanly (COMMIT or ROLLBACK answered, nothing cancelled, no procedural
//! code allowed on the server) gives its connection back ([`Spares::give_back`]): after the
//! reply, in the background, its statement cache is closed and `DISCARD ALL` resets it to the
//! state of a new connection (settings, role, temporary tables, prepared statements, cursors,
//! advisory locks, LISTEN). Under a steady load of short transactions this replaces a backend
//! start per transaction with one reset; connections beyond the wanted number are closed after
//! a second idle, so a quiet server holds only its spares. Expired, lost or cancelled
//! sessions' connections are always closed.
//!
//! `/metrics` counts them: `coldquery_spare_connections_total{event="opened|used|missed|
//! recycled|failed|returned|discarded"}`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Notify;

use crate::error::ToolError;
use crate::metrics::Metrics;

/// A connection older than this is replaced rather than handed out.
const MAX_AGE: Duration = Duration::from_secs(300);

/// Connections beyond the wanted number that sat idle this long are closed.
const EXTRA_IDLE: Duration = Duration::from_secs(1);

/// How long the refill task waits before opening a connection, so that a session ending
/// meanwhile can fill the gap instead of a new backend.
const REFILL_DELAY: Duration = Duration::from_millis(25);

/// The application name of a spare until a session takes it.
pub const SPARE_NAME: &str = "coldquery-spare";

/// One ready connection.
struct Ready {
    conn: PgConnection,
    /// When the connection was opened (its age bounds how long it is reused).
    opened: Instant,
    /// When it became ready (for closing extras).
    idle_since: Instant,
    /// Whether it was opened with `application_name = coldquery-spare`, the name `DISCARD ALL`
    /// then gives it back (else the reset renames it).
    spare_named: bool,
}

/// A connection taken from the spares, with when it was opened.
pub struct Spare {
    /// The connection.
    pub conn: PgConnection,
    /// When it was opened.
    pub opened: Instant,
    /// Whether it was opened as a spare (`application_name = coldquery-spare`); passed back to
    /// [`Spares::give_back`].
    pub spare_named: bool,
}

struct Inner {
    options: PgConnectOptions,
    want: usize,
    /// At most this many ready at once (the wanted ones plus given-back ones).
    keep: usize,
    ready: Mutex<VecDeque<Ready>>,
    wake: Notify,
    metrics: Arc<Metrics>,
}

/// The spare connections; cheap to clone.
#[derive(Clone)]
pub struct Spares {
    inner: Arc<Inner>,
}

impl Spares {
    /// `want` spares of `options` (0: none, every begin connects and every session's
    /// connection is closed at its end). At most `want + extra` are kept ready when sessions
    /// give theirs back.
    pub fn new(
        options: PgConnectOptions,
        want: usize,
        extra: usize,
        metrics: Arc<Metrics>,
    ) -> Spares {
        Spares {
            inner: Arc::new(Inner {
                options: options.application_name(SPARE_NAME),
                want,
                keep: want + extra,
                ready: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                metrics,
            }),
        }
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, VecDeque<Ready>> {
        self.inner.ready.lock().expect("spares lock")
    }

    /// How many spares are ready now.
    pub fn len(&self) -> usize {
        self.ready().len()
    }

    /// A spare if one is ready and young enough, else `None`; the refill task is woken either
    /// way. The caller connects itself when it gets none. The most recently given back comes
    /// first, so extras age at the back and are closed from there.
    pub fn take(&self) -> Option<Spare> {
        if self.inner.want == 0 {
            return None;
        }
        let got = loop {
            let Some(r) = self.ready().pop_front() else {
                break None;
            };
            if r.opened.elapsed() < MAX_AGE {
                break Some(Spare {
                    conn: r.conn,
                    opened: r.opened,
                    spare_named: r.spare_named,
                });
            }
            // Too old to trust; the refill task opens a new one. Dropping closes the socket.
            self.count("recycled");
        };
        self.count(if got.is_some() { "used" } else { "missed" });
        self.inner.wake.notify_one();
        got
    }

    /// Take back the connection of a session that ended cleanly (its COMMIT or ROLLBACK was
    /// answered): reset it to the state of a new connection and keep it ready, or close it
    /// when it is old, the set is full, spares are off or the reset fails. Runs after the
    /// session's reply, so its cost is off the caller's path.
    /// `spare_named`: the connection was opened as a spare ([`Spare::spare_named`]).
    pub async fn give_back(&self, mut conn: PgConnection, opened: Instant, spare_named: bool) {
        if self.inner.want == 0 || opened.elapsed() >= MAX_AGE || self.len() >= self.inner.keep {
            self.count("discarded");
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
            return;
        }
        let reset = tokio::time::timeout(Duration::from_secs(2), async {
            // sqlx's statement cache first: DISCARD ALL deallocates the statements it names.
            conn.clear_cached_statements().await?;
            // DISCARD ALL refuses to run in a multi-statement string (an implicit block).
            sqlx::Executor::execute(&mut conn, sqlx::raw_sql("DISCARD ALL")).await?;
            // DISCARD ALL (its RESET ALL) restores the name the connection was opened with.
            if !spare_named {
                sqlx::Executor::execute(
                    &mut conn,
                    sqlx::raw_sql("SET application_name = 'coldquery-spare'"),
                )
                .await?;
            }
            Ok::<_, sqlx::Error>(())
        })
        .await;
        if !matches!(reset, Ok(Ok(()))) {
            self.count("discarded");
            return; // dropping closes the socket
        }
        // Full meanwhile: the connection comes back to be closed outside the lock.
        let full = {
            let mut ready = self.ready();
            if ready.len() >= self.inner.keep {
                Some(conn)
            } else {
                ready.push_front(Ready {
                    conn,
                    opened,
                    idle_since: Instant::now(),
                    spare_named,
                });
                None
            }
        };
        if let Some(conn) = full {
            self.count("discarded");
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
            return;
        }
        self.count("returned");
        self.inner.wake.notify_one();
    }

    fn count(&self, event: &str) {
        self.inner
            .metrics
            .inc("coldquery_spare_connections_total", &[("event", event)]);
    }

    /// Keep the spares topped up until `stop` is cancelled; closes them at the end.
    pub fn spawn_refill(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.inner.want == 0 {
            return None;
        }
        let me = self.clone();
        Some(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                me.recycle_old().await;
                if me.len() < me.inner.want {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(REFILL_DELAY) => {}
                    }
                }
                while me.len() < me.inner.want && !stop.is_cancelled() {
                    let opened = tokio::time::timeout(
                        Duration::from_secs(5),
                        PgConnection::connect_with(&me.inner.options),
                    )
                    .await;
                    match opened {
                        Ok(Ok(c)) => {
                            let now = Instant::now();
                            me.ready().push_back(Ready {
                                conn: c,
                                opened: now,
                                idle_since: now,
                                spare_named: true,
                            });
                            me.count("opened");
                            backoff = Duration::from_millis(500);
                        }
                        _ => {
                            // The database is down or refusing: begin connects (and reports)
                            // by itself meanwhile; try again later.
                            me.count("failed");
                            tokio::select! {
                                _ = stop.cancelled() => {}
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                            break;
                        }
                    }
                }
                // With extras ready, look again soon to close the ones left idle.
                let next = if me.len() > me.inner.want {
                    EXTRA_IDLE
                } else {
                    Duration::from_secs(30)
                };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = me.inner.wake.notified() => {}
                    _ = tokio::time::sleep(next) => {}
                }
            }
            me.close().await;
        }))
    }

    /// Close the connections too old to hand out, and extras beyond the wanted number that
    /// sat idle.
    async fn recycle_old(&self) {
        let (old, extra): (Vec<PgConnection>, Vec<PgConnection>) = {
            let mut ready = self.ready();
            let mut old = Vec::new();
            let mut keep = VecDeque::with_capacity(ready.len());
            for r in ready.drain(..) {
                if r.opened.elapsed() < MAX_AGE {
                    keep.push_back(r);
                } else {
                    old.push(r.conn);
                }
            }
            let mut extra = Vec::new();
            while keep.len() > self.inner.want
                && keep
                    .back()
                    .is_some_and(|r| r.idle_since.elapsed() >= EXTRA_IDLE)
            {
                extra.extend(keep.pop_back().map(|r| r.conn));
            }
            *ready = keep;
            (old, extra)
        };
        for c in old {
            self.count("recycled");
            let _ = c.close().await;
        }
        for c in extra {
            self.count("discarded");
            let _ = c.close().await;
        }
    }

    /// Close every spare (shutdown).
    pub async fn close(&self) {
        let all: Vec<PgConnection> = self.ready().drain(..).map(|r| r.conn).collect();
        for c in all {
            let _ = c.close().await;
        }
    }
}

/// Whether a failed BEGIN on a spare means only that the spare had died while it waited (the
/// database restarted, a proxy dropped it): nothing ran, so a fresh connection may try again.
pub fn spare_was_dead(e: &ToolError) -> bool {
    e.is_lost_connection()
        || matches!(e, ToolError::Unavailable(_))
        || matches!(e, ToolError::Database(d) if d.sqlstate.as_deref().is_some_and(|s| s.starts_with("08") || s == "57P01"))
}
