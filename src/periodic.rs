//! Background jobs on a fixed interval until shutdown: the pg_tx session reaper and the cursor
//! reaper share this loop and the interval rule.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How often to look for expired entries with a time-to-live of `ttl`: often enough that one
/// never outlives its TTL by more than a quarter of it (and at most 15 s), without spinning for
/// the tiny TTLs of tests.
pub(crate) fn reap_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(15))
}

/// Run `job` every `every` (the first run at once; a late tick is not made up) until `stop`.
pub(crate) fn spawn_every<F, Fut>(
    every: Duration,
    stop: CancellationToken,
    mut job: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => job().await,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reap_interval_is_a_quarter_of_the_ttl_within_bounds() {
        assert_eq!(
            reap_interval(Duration::from_secs(1800)),
            Duration::from_secs(15)
        );
        assert_eq!(
            reap_interval(Duration::from_secs(8)),
            Duration::from_secs(2)
        );
        assert_eq!(
            reap_interval(Duration::from_millis(40)),
            Duration::from_millis(100)
        );
    }
}
