//! The audit log: migrations for ColdQuery's own schema (run at start-up), and one row per
//! write, DDL, admin action and transaction end, written on its own small pool so that it is
//! outside the caller's transaction and survives a rollback. MCP session ids and `pg_tx`
//! handles are stored as digests ([`digest`]), never in clear: whoever can read the log must not
//! be able to take over a session from it (contract §8).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::watch;

use crate::caller::{Caller, digest};
use crate::error::ToolError;
use crate::safety::classify;

/// Where the audit log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditState {
    /// Migrations have not finished yet (e.g. the database is still starting).
    Pending,
    /// Rows are being written.
    Ready,
    /// Off by configuration, or the role may not create the schema (warned once).
    Disabled,
}

/// The audit writer; cheap to clone.
#[derive(Clone)]
pub struct Audit {
    pool: PgPool,
    state: watch::Receiver<AuditState>,
    set_state: Arc<watch::Sender<AuditState>>,
}

/// How long a write waits for start-up migrations before recording without them.
const READY_WAIT: Duration = Duration::from_secs(5);

fn migrator(schema_exists: bool) -> Migrator {
    // Every file of migrations/ is listed here, in order (a unit test checks the folder).
    let mut m = Migrator::with_migrations(vec![
        Migration::new(
            1,
            "audit log".into(),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(include_str!("../../migrations/0001_audit_log.sql")).into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "audit log digests".into(),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(include_str!("../../migrations/0002_audit_digests.sql"))
                .into_sql_str(),
            false,
        ),
        Migration::new(
            3,
            "audit log role".into(),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(include_str!("../../migrations/0003_audit_role.sql"))
                .into_sql_str(),
            false,
        ),
    ]);
    // Our bookkeeping lives in our schema, not in the user's `public`. Ask for the schema only
    // when it is missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
    // the schema exists, which a least-privilege role owning a pre-created schema lacks.
    if !schema_exists {
        m.create_schema("coldquery");
    }
    m.dangerous_set_table_name("coldquery._sqlx_migrations");
    m
}

impl Audit {
    /// An audit writer on its own lazy pool; `enabled: false` makes it a no-op.
    pub fn new(options: PgConnectOptions, enabled: bool) -> Audit {
        let pool = PgPoolOptions::new()
            // Two connections: audit rows are small and written one per write call.
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options.application_name("coldquery-audit"));
        let initial = if enabled {
            AuditState::Pending
        } else {
            AuditState::Disabled
        };
        let (tx, rx) = watch::channel(initial);
        Audit {
            pool,
            state: rx,
            set_state: Arc::new(tx),
        }
    }

    /// Current state.
    pub fn state(&self) -> AuditState {
        *self.state.borrow()
    }

    /// Run the migrations, retrying while the database is unreachable. A role that may not
    /// create the schema gets one clear warning and the audit log is disabled; the server runs.
    pub async fn migrate(&self) {
        if self.state() == AuditState::Disabled {
            return;
        }
        loop {
            let exists =
                sqlx::query_scalar::<_, bool>("SELECT to_regnamespace('coldquery') IS NOT NULL")
                    .fetch_one(&self.pool)
                    .await;
            let result = match exists {
                Ok(exists) => migrator(exists).run(&self.pool).await,
                Err(e) => Err(sqlx::migrate::MigrateError::Execute(e)),
            };
            match result {
                Ok(()) => {
                    let _ = self.set_state.send(AuditState::Ready);
                    tracing::info!("audit log ready (coldquery.audit_log)");
                    return;
                }
                Err(sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db)))
                | Err(sqlx::migrate::MigrateError::ExecuteMigration(
                    sqlx::Error::Database(db),
                    _,
                )) if db.code().as_deref() == Some("42501") => {
                    let _ = self.set_state.send(AuditState::Disabled);
                    tracing::warn!(
                        "AUDIT LOG DISABLED: the database role may not create schema `coldquery` ({}). \
                         Grant it CREATE on the database, or create the schema for it \
                         (CREATE SCHEMA coldquery AUTHORIZATION <role>), then restart. \
                         Set COLDQUERY_AUDIT=off to silence this.",
                        db.message()
                    );
                    return;
                }
                Err(e) => {
                    let transient = matches!(
                        &e,
                        sqlx::migrate::MigrateError::Execute(
                            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut
                        )
                    );
                    if !transient {
                        let _ = self.set_state.send(AuditState::Disabled);
                        tracing::warn!(error = %e, "AUDIT LOG DISABLED: its migration failed; fix the cause and restart");
                        return;
                    }
                    tracing::debug!("audit migration waits for the database");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }

    async fn ready(&self) -> bool {
        let mut rx = self.state.clone();
        let wait = rx.wait_for(|s| *s != AuditState::Pending);
        matches!(
            tokio::time::timeout(READY_WAIT, wait).await,
            Ok(Ok(s)) if *s == AuditState::Ready
        )
    }

    /// Write one row. Failures are logged, never turned into the caller's error: the call has
    /// already happened, and saying otherwise would be a lie.
    pub async fn record(&self, row: AuditRow) {
        if self.state() == AuditState::Disabled || !self.ready().await {
            return;
        }
        // A call that failed because the database is unreachable cannot be audited there
        // either; one direct connection attempt (instant when refused) saves it the audit
        // pool's 2 s wait (its idle connections may be dead ones), so calls during an outage
        // fail fast (issue 14).
        // The same for a statement cut off by the database going away (admin shutdown 57P01,
        // crash 57P02, cannot connect now 57P03, connection exceptions 08xxx).
        let went_away = row.outcome == "unavailable"
            || row
                .sqlstate
                .as_deref()
                .is_some_and(|c| c.starts_with("57P") || c.starts_with("08"));
        if went_away && let Some(why) = crate::db::unreachable_reason(&self.pool).await {
            tracing::warn!(
                tool = %row.tool,
                reason = %crate::error::unreachable_kind(&why),
                "audit row not written: the database is unreachable"
            );
            return;
        }
        let res = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query(
                "INSERT INTO coldquery.audit_log (principal, mcp_session, session_id, tool, action, \
                 statement, rows_affected, duration_ms, outcome, sqlstate, role) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&row.principal)
            .bind(&row.mcp_session)
            .bind(&row.session_id)
            .bind(&row.tool)
            .bind(&row.action)
            .bind(&row.statement)
            .bind(row.rows_affected)
            .bind(row.duration_ms)
            .bind(&row.outcome)
            .bind(&row.sqlstate)
            .bind(&row.role)
            .execute(&self.pool),
        )
        .await;
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %ToolError::from_sqlx(e, 0), "could not write an audit row")
            }
            Err(_) => tracing::warn!("could not write an audit row within 2s"),
        }
    }

    /// Close the pool (shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One audit row.
#[derive(Debug, Clone, Default)]
pub struct AuditRow {
    /// Bearer-token name, Tailscale login or `anonymous`.
    pub principal: String,
    /// Digest of the MCP session id.
    pub mcp_session: Option<String>,
    /// Digest of the pg_tx handle.
    pub session_id: Option<String>,
    /// Tool name.
    pub tool: String,
    /// Action.
    pub action: String,
    /// The statement(s), passwords redacted.
    pub statement: Option<String>,
    /// Rows affected.
    pub rows_affected: Option<i64>,
    /// Wall time of the call.
    pub duration_ms: f64,
    /// `ok`, `dry_run`, or an error category.
    pub outcome: String,
    /// SQLSTATE of a database error.
    pub sqlstate: Option<String>,
    /// The PostgreSQL role the call ran as; `None`: the login role.
    pub role: Option<String>,
}

/// Which calls are audited: everything that can change the database or end a transaction.
pub fn is_audited(tool: &str, action: &str, args: &Value) -> bool {
    match (tool, action) {
        ("pg_query", "write" | "transaction") => true,
        ("pg_query", "explain") => args.get("analyze").and_then(Value::as_bool) == Some(true),
        ("pg_tx", "begin" | "commit" | "rollback" | "rollback_to") => true,
        ("pg_schema", "create" | "alter" | "drop") => true,
        ("pg_admin", "vacuum" | "analyze" | "reindex") => true,
        ("pg_admin", "settings") => args.get("setting_value").is_some(),
        _ => false,
    }
}

/// What a call that succeeded reported, as the audit row keeps it: read by the MCP boundary
/// from the tool's typed result before it becomes JSON.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reported {
    /// Rows a write changed (for a transaction: the sum over its operations).
    pub rows_affected: Option<i64>,
    /// The handle a `pg_tx begin` returned (the other calls name theirs in their arguments).
    pub session_id: Option<String>,
}

/// Build the row for a finished call from its arguments and outcome.
pub fn row_for(
    caller: &Caller,
    tool: &str,
    action: &str,
    args: &Value,
    outcome: Result<&Reported, &ToolError>,
    duration_ms: f64,
) -> AuditRow {
    let statement = if let Some(sql) = args.get("sql").and_then(Value::as_str) {
        Some(classify::redact(sql))
    } else if let Some(ops) = args.get("operations").and_then(Value::as_array) {
        let parts: Vec<String> = ops
            .iter()
            .filter_map(|o| o.get("sql").and_then(Value::as_str))
            .map(classify::redact)
            .collect();
        Some(parts.join(";\n"))
    } else {
        // Admin and settings actions: record what was asked, never any parameter values.
        let keys = [
            "table",
            "schema",
            "setting_name",
            "setting_value",
            "savepoint_name",
            "full",
        ];
        let described: Vec<String> = keys
            .iter()
            .filter_map(|k| args.get(*k).map(|v| format!("{k}={v}")))
            .collect();
        (!described.is_empty()).then(|| described.join(" "))
    };
    let session_id = args
        .get("session_id")
        .and_then(Value::as_str)
        .or_else(|| outcome.ok().and_then(|r| r.session_id.as_deref()))
        .map(digest);
    let (rows_affected, outcome_s, sqlstate) = match outcome {
        Ok(r) => {
            let rows = r.rows_affected;
            let dry = args.get("dry_run").and_then(Value::as_bool) == Some(true);
            (
                rows,
                if dry {
                    "dry_run".to_owned()
                } else {
                    "ok".to_owned()
                },
                None,
            )
        }
        Err(e) => (
            None,
            e.category().to_owned(),
            e.sqlstate().map(str::to_owned),
        ),
    };
    AuditRow {
        principal: caller
            .principal
            .clone()
            .unwrap_or_else(|| "anonymous".into()),
        mcp_session: caller.mcp_session.as_deref().map(digest),
        session_id,
        tool: tool.to_owned(),
        action: action.to_owned(),
        statement,
        rows_affected,
        duration_ms,
        outcome: outcome_s,
        sqlstate,
        role: caller.role().map(|r| r.name().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_ddl_admin_and_transaction_ends_are_audited_reads_are_not() {
        assert!(is_audited("pg_query", "write", &json!({})));
        assert!(is_audited("pg_tx", "commit", &json!({})));
        assert!(is_audited("pg_schema", "drop", &json!({})));
        assert!(is_audited("pg_admin", "vacuum", &json!({})));
        assert!(is_audited("pg_query", "explain", &json!({"analyze": true})));
        assert!(!is_audited("pg_query", "explain", &json!({})));
        assert!(!is_audited("pg_query", "read", &json!({})));
        assert!(!is_audited(
            "pg_admin",
            "settings",
            &json!({"setting_name": "work_mem"})
        ));
    }

    #[test]
    fn rows_redact_passwords_and_sum_transaction_rows() {
        let caller = Caller::new(Some("ci".into()), None);
        let args = json!({"action": "write", "sql": "ALTER ROLE bob PASSWORD 'hunter2'"});
        let row = row_for(
            &caller,
            "pg_query",
            "write",
            &args,
            Ok(&Reported {
                rows_affected: Some(0),
                session_id: None,
            }),
            1.0,
        );
        assert!(!row.statement.as_deref().unwrap().contains("hunter2"));
        assert_eq!(row.principal, "ci");
        assert_eq!(row.role, None);
        let as_role = caller
            .clone()
            .with_role(Some(crate::db::roles::Role::parse("r", "app_ci").unwrap()));
        let row = row_for(
            &as_role,
            "pg_query",
            "write",
            &args,
            Ok(&Reported::default()),
            1.0,
        );
        assert_eq!(
            (row.principal.as_str(), row.role.as_deref()),
            ("ci", Some("app_ci"))
        );
        let args =
            json!({"operations": [{"sql": "INSERT INTO t VALUES (1)"}, {"sql": "DELETE FROM t"}]});
        let ok = Reported {
            rows_affected: Some(4),
            session_id: None,
        };
        let row = row_for(&caller, "pg_query", "transaction", &args, Ok(&ok), 1.0);
        assert_eq!(row.rows_affected, Some(4));
        let err = ToolError::PolicyDenied("no".into());
        let row = row_for(&caller, "pg_query", "write", &args, Err(&err), 1.0);
        assert_eq!(row.outcome, "policy_denied");
    }

    #[test]
    fn handles_and_mcp_session_ids_are_stored_as_digests() {
        let caller = Caller::new(None, Some("0b5f2c1e-mcp-session".into()));
        let id = "tx_00112233445566778899aabbccddeeff";
        let args = json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "session_id": id});
        let none = Reported::default();
        let row = row_for(&caller, "pg_query", "write", &args, Ok(&none), 1.0);
        assert_eq!(row.session_id.as_deref(), Some(digest(id).as_str()));
        assert_eq!(
            row.mcp_session.as_deref(),
            Some(digest("0b5f2c1e-mcp-session").as_str())
        );
        // A begin names its new handle only in the outcome.
        let begun = Reported {
            rows_affected: None,
            session_id: Some(id.into()),
        };
        let row = row_for(&caller, "pg_tx", "begin", &json!({}), Ok(&begun), 1.0);
        assert_eq!(row.session_id.as_deref(), Some(digest(id).as_str()));
    }

    #[test]
    fn every_migration_file_is_registered_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let versions: Vec<i64> = migrator(true).iter().map(|m| m.version).collect();
        assert_eq!(versions.len(), files.len(), "{files:?}");
        for (file, v) in files.iter().zip(&versions) {
            assert!(
                file.starts_with(&format!("{v:04}_")),
                "{file} is not version {v}"
            );
        }
    }
}
