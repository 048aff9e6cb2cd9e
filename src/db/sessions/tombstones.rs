//! Tombstones: why a handle is gone (expired or lost), kept for a day so that its owner's
//! next call hears the reason instead of "not found", in bounded memory.

use std::time::{Duration, Instant};

use super::{Sessions, Slot};
use crate::error::ToolError;

/// How long tombstones of expired or lost handles are kept, so their owner hears why.
const TOMBSTONE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Tombstones kept at most (oldest dropped first): bounded memory whatever the churn.
const TOMBSTONE_MAX: usize = 10_000;

/// Why a handle is gone, for its owner's next call.
#[derive(Debug, Clone)]
pub(super) enum Tombstone {
    Expired { idle_s: u64 },
    Lost { reason: String },
}

impl Sessions {
    /// Forget the handle and leave `tomb` for its owner's next call.
    pub(super) fn bury(&self, slot: &Slot, tomb: Tombstone) {
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

    /// The error for a handle `owner` cannot use: expired or lost (from its tombstone), or
    /// never theirs at all.
    pub(super) fn why_gone(&self, owner: &str, id: &str) -> ToolError {
        let tomb = self
            .inner
            .tombstones
            .lock()
            .expect("tombstone lock")
            .get(id)
            .filter(|(o, _, _)| o == owner)
            .map(|(_, t, _)| t.clone());
        match tomb {
            Some(Tombstone::Expired { idle_s }) => ToolError::SessionExpired(format!(
                "session {id} expired after {idle_s}s idle (COLDQUERY_SESSION_TTL) and was rolled \
                 back; nothing it did was saved. Start again with pg_tx begin"
            )),
            Some(Tombstone::Lost { reason }) => ToolError::SessionLost(format!(
                "session {id} was lost ({reason}); its transaction was rolled back and nothing was \
                 saved. Start again with pg_tx begin"
            )),
            None => ToolError::SessionNotFound(format!(
                "no open session {:?} for this caller; pg_tx list shows your sessions, pg_tx begin \
                 starts one",
                id.chars().take(64).collect::<String>()
            )),
        }
    }
}
