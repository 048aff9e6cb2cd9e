//! Loads the snapshot of functions and operators the policy judges calls against
//! ([`crate::safety::functions::Catalog`]) and keeps it fresh.
//!
//! The snapshot is taken on first use (so the server starts without a database), reloaded
//! when it is older than [`MAX_AGE`], after ColdQuery itself ran DDL ([`CatalogCache::mark_stale`]),
//! and when a statement names a function the snapshot does not know (at most once per
//! [`MISS_RELOAD_GAP`], so unknown names cannot turn into a reload storm).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::error::ToolError;
use crate::safety::functions::{Catalog, Function, Origin};

/// A snapshot older than this is reloaded before use: functions replaced by other clients
/// (a SQL function rewritten in PL/pgSQL, an extension installed) are seen within a minute.
const MAX_AGE: Duration = Duration::from_secs(60);

/// The shortest gap between two reloads caused by unknown names.
const MISS_RELOAD_GAP: Duration = Duration::from_secs(1);

/// Every function with what the rules need. Built-ins are what initdb created
/// (oid < FirstNormalObjectId, 16384) and no extension owns.
const FUNCTIONS_SQL: &str = "\
SELECT p.oid::int8, p.proname::text, n.nspname::text, p.provolatile::text, l.lanname::text,
       CASE WHEN e.extname IS NOT NULL THEN e.extname::text END,
       p.oid < 16384
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
LEFT JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
LEFT JOIN pg_extension e ON e.oid = d.refobjid";

/// Every operator and the function that implements it.
const OPERATORS_SQL: &str = "\
SELECT o.oprname::text, n.nspname::text, o.oprcode::oid::int8
FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
WHERE o.oprcode <> 0";

type FunctionRow = (i64, String, String, String, String, Option<String>, bool);

/// The shared, lazily loaded snapshot.
#[derive(Clone)]
pub(crate) struct CatalogCache {
    inner: Arc<Inner>,
}

struct Inner {
    pools: super::Pools,
    current: RwLock<Option<(Arc<Catalog>, Instant)>>,
    /// One reload at a time; callers that wait for it use its result.
    reload: tokio::sync::Mutex<()>,
    stale: AtomicBool,
}

impl CatalogCache {
    /// A cache that loads through the main pool when first asked.
    pub(crate) fn new(pools: super::Pools) -> CatalogCache {
        CatalogCache {
            inner: Arc::new(Inner {
                pools,
                current: RwLock::new(None),
                reload: tokio::sync::Mutex::new(()),
                stale: AtomicBool::new(false),
            }),
        }
    }

    fn snapshot(&self) -> Option<(Arc<Catalog>, Instant)> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the value is fine.
        let guard = self.inner.current.read().unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// The current snapshot, loading or refreshing it first when needed.
    pub(crate) async fn get(&self) -> Result<Arc<Catalog>, ToolError> {
        match self.snapshot() {
            Some((cat, at))
                if at.elapsed() < MAX_AGE && !self.inner.stale.load(Ordering::Acquire) =>
            {
                Ok(cat)
            }
            seen => self.reload(seen.map(|(_, at)| at), Duration::ZERO).await,
        }
    }

    /// A fresher snapshot than `seen`, after a statement named something `seen` lacks.
    pub(crate) async fn refresh_after_miss(&self) -> Result<Arc<Catalog>, ToolError> {
        let seen = self.snapshot().map(|(_, at)| at);
        self.reload(seen, MISS_RELOAD_GAP).await
    }

    /// ColdQuery ran DDL: the next use reloads.
    pub(crate) fn mark_stale(&self) {
        self.inner.stale.store(true, Ordering::Release);
    }

    /// Reload unless someone else already did since `seen`, or the snapshot is younger than `gap`.
    async fn reload(
        &self,
        seen: Option<Instant>,
        gap: Duration,
    ) -> Result<Arc<Catalog>, ToolError> {
        let _one = self.inner.reload.lock().await;
        if let Some((cat, at)) = self.snapshot() {
            let someone_else = seen.is_none_or(|s| at > s);
            let young = at.elapsed() < gap;
            if (someone_else && !self.inner.stale.load(Ordering::Acquire) && at.elapsed() < MAX_AGE)
                || young
            {
                return Ok(cat);
            }
        }
        self.inner.stale.store(false, Ordering::Release);
        let cat = Arc::new(load(&self.inner.pools).await?);
        tracing::debug!(functions = cat.len(), "function catalog loaded");
        let mut guard = self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *guard = Some((cat.clone(), Instant::now()));
        Ok(cat)
    }
}

/// Reads the snapshot: three statements on one pooled connection, acquired the way tool calls
/// acquire theirs (so an unreachable database is reported as such, fast).
async fn load(pools: &super::Pools) -> Result<Catalog, ToolError> {
    let mut conn = super::acquire(pools, pools.pool()).await?;
    let tx = &mut *conn;
    let rows: Vec<FunctionRow> = sqlx::query_as(FUNCTIONS_SQL)
        .persistent(false)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| ToolError::from_sqlx(e, 0))?;
    let ops: Vec<(String, String, i64)> = sqlx::query_as(OPERATORS_SQL)
        .persistent(false)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| ToolError::from_sqlx(e, 0))?;
    let (path,): (Vec<String>,) = sqlx::query_as("SELECT current_schemas(true)::text[]")
        .persistent(false)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| ToolError::from_sqlx(e, 0))?;
    let functions = rows
        .into_iter()
        .map(|(oid, name, schema, vol, language, ext, initdb)| Function {
            oid: u32::try_from(oid).unwrap_or(0),
            name,
            schema,
            volatility: vol.chars().next().unwrap_or('v'),
            language,
            origin: match ext {
                Some(e) => Origin::Extension(e),
                None if initdb => Origin::Builtin,
                None => Origin::User,
            },
        })
        .collect();
    let operators = ops
        .into_iter()
        .map(|(name, schema, code)| (name, schema, u32::try_from(code).unwrap_or(0)))
        .collect();
    Ok(Catalog::new(functions, operators, path))
}
