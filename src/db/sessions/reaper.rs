//! Ending sessions from the server's side: the reaper that expires idle handles, and the
//! roll-back-and-close paths for an ended MCP session and for shutdown.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use super::tombstones::Tombstone;
use super::{Sessions, Slot};
use crate::caller::digest;
use crate::db::run::guard::cancel_backend;

impl Sessions {
    /// Close the connection in `conn` after a ROLLBACK; errors are irrelevant by then.
    pub(super) async fn rollback_and_close(conn: &mut Option<PgConnection>) {
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
    pub(crate) async fn close_owned_by(&self, owner: &str) {
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
    pub(crate) async fn close_created_in(&self, mcp_session: &str) {
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
    pub(crate) async fn close_all(&self) {
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
    pub(crate) async fn reap_once(&self) -> usize {
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
    pub(crate) fn spawn_reaper(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        // Cursors have their own TTL, so their own reaper (stopped by the same token); the
        // spares their own refill task (which closes them when stopped).
        let _cursor_reaper = self.inner.cursors.spawn_reaper(stop.clone());
        let _refill = self.inner.spares.spawn_refill(stop.clone());
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
