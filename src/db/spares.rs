//! Connections opened ahead for `pg_tx begin` (COLDQUERY_SPARE_CONNECTIONS, default 2): a new
//! PostgreSQL connection costs a TCP handshake, authentication and a backend start, several
//! milliseconds; a spare turns `begin` into one round trip on a connection that is already up.
//!
//! Spares are plain session connections (the same start-up options: idle-in-transaction,
//! statement and lock timeouts) that never ran a statement and are never used by the pool.
//! They show as `application_name = coldquery-spare` until `begin` takes one (its BEGIN sets the
//! name to `coldquery-session` in the same round trip). A background task keeps the set full,
//! replaces spares older than five minutes (a firewall or PgBouncer may have dropped them), and
//! backs off while the database is down. `/metrics` counts them:
//! `coldquery_spare_connections_total{event="opened|used|missed|recycled|failed"}`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Notify;

use crate::error::ToolError;
use crate::metrics::Metrics;

/// A spare older than this is replaced rather than handed out.
const MAX_AGE: Duration = Duration::from_secs(300);

/// The application name of a spare until a session takes it.
pub const SPARE_NAME: &str = "coldquery-spare";

struct Inner {
    options: PgConnectOptions,
    want: usize,
    ready: Mutex<VecDeque<(PgConnection, Instant)>>,
    wake: Notify,
    metrics: Arc<Metrics>,
}

/// The spare connections; cheap to clone.
#[derive(Clone)]
pub struct Spares {
    inner: Arc<Inner>,
}

impl Spares {
    /// `want` spares of `options` (0: none, every begin connects).
    pub fn new(options: PgConnectOptions, want: usize, metrics: Arc<Metrics>) -> Spares {
        Spares {
            inner: Arc::new(Inner {
                options: options.application_name(SPARE_NAME),
                want,
                ready: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                metrics,
            }),
        }
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, VecDeque<(PgConnection, Instant)>> {
        self.inner.ready.lock().expect("spares lock")
    }

    /// How many spares are ready now.
    pub fn len(&self) -> usize {
        self.ready().len()
    }

    /// Whether none is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A spare if one is ready and fresh (`true`), else `None`; the refill task is woken either
    /// way. The caller connects itself when it gets none.
    pub fn take(&self) -> Option<PgConnection> {
        if self.inner.want == 0 {
            return None;
        }
        let got = loop {
            let Some((conn, opened)) = self.ready().pop_front() else {
                break None;
            };
            if opened.elapsed() < MAX_AGE {
                break Some(conn);
            }
            // Too old to trust; the refill task opens a new one. Dropping closes the socket.
            self.count("recycled");
        };
        self.count(if got.is_some() { "used" } else { "missed" });
        self.inner.wake.notify_one();
        got
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
                while me.len() < me.inner.want && !stop.is_cancelled() {
                    let opened = tokio::time::timeout(
                        Duration::from_secs(5),
                        PgConnection::connect_with(&me.inner.options),
                    )
                    .await;
                    match opened {
                        Ok(Ok(c)) => {
                            me.ready().push_back((c, Instant::now()));
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
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = me.inner.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
            me.close().await;
        }))
    }

    /// Close the spares that are too old to hand out.
    async fn recycle_old(&self) {
        let old: Vec<PgConnection> = {
            let mut ready = self.ready();
            let (keep, old): (VecDeque<_>, VecDeque<_>) =
                ready.drain(..).partition(|(_, t)| t.elapsed() < MAX_AGE);
            *ready = keep;
            old.into_iter().map(|(c, _)| c).collect()
        };
        for c in old {
            self.count("recycled");
            let _ = c.close().await;
        }
    }

    /// Close every spare (shutdown).
    pub async fn close(&self) {
        let all: Vec<PgConnection> = self.ready().drain(..).map(|(c, _)| c).collect();
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

/// What `begin` got: a spare or a connection it opened itself.
pub enum Source {
    /// Taken from the spares: its application name is still `coldquery-spare`.
    Spare,
    /// Opened for this begin.
    Fresh,
}

/// Convenience for `begin`: a spare, or a fresh connection from `connect`.
pub async fn spare_or<F, Fut>(
    spares: &Spares,
    connect: F,
) -> Result<(PgConnection, Source), ToolError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<PgConnection, ToolError>>,
{
    match spares.take() {
        Some(c) => Ok((c, Source::Spare)),
        None => Ok((connect().await?, Source::Fresh)),
    }
}
