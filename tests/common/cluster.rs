//! Cluster-wide set-up for tests that need more than their own database: SQL run as the admin,
//! and roles (cluster-wide, while each test has a database of its own) that are dropped
//! whatever the test's outcome.

use sqlx::{Connection, PgConnection};

use super::admin_url;

/// Run `sql` on the cluster as the admin; panics with the SQL when it fails.
pub async fn admin(sql: &str) {
    let mut admin = PgConnection::connect(&admin_url())
        .await
        .expect("admin connection to the local PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("admin SQL failed: {e}\n{sql}"));
    let _ = admin.close().await;
}

/// Roles one test created. Dropping the guard drops the test database it was given (which
/// holds the roles' privileges, so it must go first) and then the roles, also when the test
/// panicked: `Drop` runs outside async, so a thread with its own runtime does the clean-up.
pub struct RoleGuard {
    names: Vec<String>,
    db_name: Option<String>,
}

impl RoleGuard {
    /// Guard `names` (roles the test creates, or may create; missing ones are skipped).
    pub fn new(names: Vec<String>) -> RoleGuard {
        RoleGuard {
            names,
            db_name: None,
        }
    }

    /// Drop `db_name` before the roles.
    pub fn with_database(&mut self, db_name: &str) {
        self.db_name = Some(db_name.to_owned());
    }
}

impl Drop for RoleGuard {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        let db = self.db_name.take();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the clean-up");
            rt.block_on(async move {
                let Ok(mut admin) = PgConnection::connect(&admin_url()).await else {
                    return;
                };
                if let Some(db) = db {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
                for n in names {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {n}")))
                        .execute(&mut admin)
                        .await;
                }
                let _ = admin.close().await;
            })
        })
        .join();
    }
}
