//! A per-caller limit on concurrent pooled calls (`COLDQUERY_MAX_CONCURRENT_PER_CALLER`): one
//! caller's long reads can fill at most its share of the main pool, so another caller's call
//! still finds a connection. A caller over its share waits briefly for one of its own calls to
//! finish, then gets `limit_exceeded`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ToolError;

/// Entries kept before idle callers are pruned from the map.
const PRUNE_ABOVE: usize = 1024;

/// The per-caller semaphores.
pub struct CallerLimits {
    max: usize,
    wait: Duration,
    map: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl CallerLimits {
    /// `max` concurrent pooled calls per caller; a call over it waits up to `wait`.
    pub fn new(max: usize, wait: Duration) -> CallerLimits {
        CallerLimits {
            max: max.max(1),
            wait,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The configured limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A permit for one pooled call of `key`, held until it is dropped.
    pub async fn acquire(&self, key: &str) -> Result<OwnedSemaphorePermit, ToolError> {
        let sem = {
            let mut map = self
                .map
                .lock()
                .expect("the per-caller map lock is never poisoned");
            if map.len() > PRUNE_ABOVE {
                // Callers with nothing running hold no permit and no other reference.
                let max = self.max;
                map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < max);
            }
            map.entry(key.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.max)))
                .clone()
        };
        match tokio::time::timeout(self.wait, sem.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ToolError::LimitExceeded(format!(
                "this caller already has {} database calls running (COLDQUERY_MAX_CONCURRENT_PER_CALLER) \
                 and none finished within {} s; wait for them, or cancel one, then retry",
                self.max,
                self.wait.as_secs_f64()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_caller_is_held_to_its_share_and_another_is_not() {
        let l = CallerLimits::new(2, Duration::from_millis(50));
        let a1 = l.acquire("a").await.unwrap();
        let _a2 = l.acquire("a").await.unwrap();
        let e = l.acquire("a").await.unwrap_err();
        assert_eq!(e.category(), "limit_exceeded");
        assert!(
            e.to_string()
                .contains("COLDQUERY_MAX_CONCURRENT_PER_CALLER")
        );
        assert!(l.acquire("b").await.is_ok());
        drop(a1);
        assert!(l.acquire("a").await.is_ok());
    }
}
