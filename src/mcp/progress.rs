//! `notifications/progress` for long calls that carry a `progressToken` (contract §8): VACUUM
//! (FULL: `pg_stat_progress_cluster`), ANALYZE, REINDEX and CREATE INDEX report the figures PostgreSQL keeps in
//! `pg_stat_progress_*`; long reads report the seconds elapsed. Each update also keeps a
//! client's request timeout from firing on work that is still going. Which calls report is a
//! match on the call's [`ToolAction`].
//!
//! The figures come from the newest ColdQuery backend of this database running that command;
//! with two maintenance calls of the same kind at once, each sees the newer one's figures.

use std::time::{Duration, Instant};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RoleServer};
use serde_json::Value;

use crate::mcp::names::{AdminAction, QueryAction, ReadAction, SchemaAction, ToolAction, ToolName};
use crate::state::AppState;

/// How often an update is sent: often enough for a progress bar, rarely enough to cost nothing.
const EVERY: Duration = Duration::from_millis(500);

/// The newest ColdQuery backend's progress in this database, whatever the command: a
/// percentage of blocks (or tuples) done, and the phase. Runs on the health pool, so a busy
/// main pool cannot delay it.
const PROGRESS: &str = "SELECT kind, phase, done::float8, total::float8 FROM ( \
       SELECT 'VACUUM' AS kind, v.phase, v.heap_blks_scanned AS done, v.heap_blks_total AS total, a.query_start \
         FROM pg_stat_progress_vacuum v JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = current_database() AND a.application_name LIKE 'coldquery%' \
       UNION ALL \
       SELECT c.command, c.phase, c.heap_blks_scanned, c.heap_blks_total, a.query_start \
         FROM pg_stat_progress_cluster c JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = current_database() AND a.application_name LIKE 'coldquery%' \
       UNION ALL \
       SELECT 'ANALYZE', p.phase, p.sample_blks_scanned, p.sample_blks_total, a.query_start \
         FROM pg_stat_progress_analyze p JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = current_database() AND a.application_name LIKE 'coldquery%' \
       UNION ALL \
       SELECT p.command, p.phase, \
              CASE WHEN p.blocks_total > 0 THEN p.blocks_done ELSE p.tuples_done END, \
              CASE WHEN p.blocks_total > 0 THEN p.blocks_total ELSE p.tuples_total END, a.query_start \
         FROM pg_stat_progress_create_index p JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = current_database() AND a.application_name LIKE 'coldquery%' \
     ) x ORDER BY query_start DESC LIMIT 1";

/// What kind of figures a call can have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// VACUUM, ANALYZE, REINDEX, CREATE INDEX: percentages from pg_stat_progress_*.
    Maintenance,
    /// A read: seconds elapsed.
    Read,
}

/// Which calls report progress.
pub(crate) fn kind_of(tool: ToolName, args: &Value) -> Option<Kind> {
    match ToolAction::of(tool, args)? {
        ToolAction::Admin(AdminAction::Vacuum | AdminAction::Analyze | AdminAction::Reindex)
        | ToolAction::Schema(SchemaAction::Create | SchemaAction::Alter) => Some(Kind::Maintenance),
        ToolAction::Query(QueryAction::Read | QueryAction::Explain | QueryAction::Transaction)
        | ToolAction::Read(ReadAction::Query | ReadAction::Explain) => Some(Kind::Read),
        _ => None,
    }
}

/// Send updates until dropped (the caller races this against the call itself).
pub(crate) async fn report(
    state: AppState,
    peer: Peer<RoleServer>,
    token: ProgressToken,
    kind: Kind,
) {
    let started = Instant::now();
    // Progress must grow with every notification; a phase change may move the figures back.
    let mut last = 0.0_f64;
    loop {
        tokio::time::sleep(EVERY).await;
        let (progress, total, message) = match kind {
            Kind::Read => {
                let s = started.elapsed().as_secs_f64();
                (s, None, format!("reading, {s:.0} s"))
            }
            Kind::Maintenance => {
                let row: Option<(String, String, Option<f64>, Option<f64>)> =
                    sqlx::query_as(PROGRESS)
                        .fetch_optional(&state.pools.health)
                        .await
                        .ok()
                        .flatten();
                match row {
                    Some((kind, phase, Some(done), Some(total))) if total > 0.0 => (
                        (done / total * 100.0).clamp(0.0, 100.0),
                        Some(100.0),
                        format!("{kind}: {phase}, {done:.0} of {total:.0}"),
                    ),
                    Some((kind, phase, ..)) => (last, Some(100.0), format!("{kind}: {phase}")),
                    None => (last, Some(100.0), "working".to_owned()),
                }
            }
        };
        let progress = if progress > last {
            progress
        } else {
            last + 0.001
        };
        last = progress;
        let mut p = ProgressNotificationParam::new(token.clone(), progress).with_message(message);
        p.total = total;
        if peer.notify_progress(p).await.is_err() {
            return;
        }
    }
}
