//! Bearer tokens on /mcp and the audit log (issue #4): 401s, principals, audit rows for writes
//! and transaction ends that survive a rollback, and a role that may not create the schema.

mod common;

use common::{Era, McpClient, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const LAPTOP: &str = "laptop-token-0123456789abcdef";
const CI: &str = "ci-token-fedcba9876543210";

async fn with_tokens() -> TestApp {
    spawn_app_with(|c| c.auth_tokens = Some(format!("laptop={LAPTOP},ci={CI}").as_str().into()))
        .await
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;

async fn post(app: &TestApp, auth: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

/// Wait for the start-up migration, then read audit rows as JSON.
async fn audit_rows(app: &TestApp) -> Vec<Value> {
    for _ in 0..100 {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('coldquery.audit_log') IS NOT NULL")
                .fetch_one(&app.db)
                .await
                .unwrap();
        if exists {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sqlx::query_scalar::<_, Value>(
        "SELECT to_jsonb(a) - 'at' - 'id' FROM coldquery.audit_log a ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn no_token_or_a_wrong_token_gets_401_and_health_stays_open() {
    let app = with_tokens().await;
    let res = post(&app, None).await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"coldquery\""),
        "{challenge}"
    );
    let res = post(&app, Some("Bearer not-the-right-token-at-all")).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let res = post(&app, Some(&format!("Bearer {LAPTOP}x"))).await;
    assert_eq!(res.status(), 401, "a token with a suffix is not the token");
    assert_eq!(
        post(&app, Some(&format!("Bearer {LAPTOP}"))).await.status(),
        200
    );
    assert_eq!(
        reqwest::get(app.url("/health")).await.unwrap().status(),
        200
    );
    app.finish().await;
}

#[tokio::test]
async fn the_right_token_works_and_the_audit_log_names_its_principal() {
    let app = with_tokens().await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(CI)).await;
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "autocommit": true}),
    )
    .await;
    let rows = audit_rows(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["principal"], "ci");
    assert_eq!(rows[0]["tool"], "pg_query");
    assert_eq!(rows[0]["action"], "write");
    assert_eq!(rows[0]["statement"], "INSERT INTO t VALUES (1)");
    assert_eq!(rows[0]["rows_affected"], 1);
    assert_eq!(rows[0]["outcome"], "ok");
    c.close().await;
    // Tokens also separate owners: the laptop cannot see the CI principal's transactions.
    let ci = McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(CI)).await;
    let laptop = McpClient::connect_with_token(&app.mcp_url(), Era::Stateless, Some(LAPTOP)).await;
    let id = ci.ok("pg_tx", json!({"action": "begin"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    laptop
        .err(
            "pg_tx",
            json!({"action": "commit", "session_id": id}),
            "session_not_found",
        )
        .await;
    ci.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    ci.close().await;
    laptop.close().await;
    app.finish().await;
}

#[tokio::test]
async fn writes_failures_and_a_rolled_back_transaction_each_leave_audit_rows() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let c = app.client(Era::Session).await;
    c.read("SELECT 1").await; // reads are not audited
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "autocommit": true}),
    )
    .await;
    c.err(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (2)"}),
        "policy_denied",
    )
    .await;
    c.err(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "autocommit": true}),
        "database_error",
    )
    .await;
    let id = c.ok("pg_tx", json!({"action": "begin"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (3)", "session_id": id}),
    )
    .await;
    c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    c.err(
        "pg_query",
        json!({"action": "write", "sql": "ALTER ROLE postgres PASSWORD 'hunter2'"}),
        "policy_denied",
    )
    .await;
    let rows = audit_rows(&app).await;
    let summary: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |t: &str, a: &str, o: &str| (t.to_owned(), a.to_owned(), o.to_owned());
    assert!(
        summary.starts_with(&[
            expect("pg_query", "write", "ok"),
            expect("pg_query", "write", "policy_denied"),
            expect("pg_query", "write", "database_error"),
            expect("pg_tx", "begin", "ok"),
            expect("pg_query", "write", "ok"),
            expect("pg_tx", "rollback", "ok"),
        ]),
        "{summary:?}"
    );
    assert_eq!(rows[2]["sqlstate"], "23505");
    // The write inside the rolled-back transaction is still on record, with its handle's
    // digest (never the handle itself, contract §8).
    assert_eq!(
        rows[4]["session_id"],
        coldquery::caller::digest(&id).as_str()
    );
    assert!(!serde_json::to_string(&rows).unwrap().contains(&id));
    assert_eq!(rows[4]["statement"], "INSERT INTO t VALUES (3)");
    assert!(rows[4]["mcp_session"].is_string());
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM t WHERE id = 3").await,
        0
    );
    // Passwords never reach the audit log.
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains("hunter2"), "{all}");
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn audit_off_creates_nothing_in_the_database() {
    let app = spawn_app_with(|c| c.audit = coldquery::config::Switch::Off).await;
    app.exec("CREATE TABLE t (id int)").await;
    let c = app.client(Era::Stateless).await;
    c.ok(
        "pg_query",
        json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "autocommit": true}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM pg_namespace WHERE nspname = 'coldquery'")
            .await,
        0
    );
    c.close().await;
    app.finish().await;
}

/// A second server on `probe`'s database, connected as `role` (no password: trust auth).
struct RoleServer {
    client: McpClient,
    stop: tokio_util::sync::CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve_as(probe: &TestApp, role: &str) -> RoleServer {
    let admin = common::admin_url();
    let host = admin
        .rsplit_once("//")
        .unwrap()
        .1
        .split_once('@')
        .unwrap()
        .1
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    let mut config = coldquery::config::Config::with_database_url(&format!(
        "postgres://{role}@{host}/{}",
        probe.db_name
    ));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = coldquery::app::App::build(config).await.unwrap();
    let addr = app.local_addr();
    let stop = app.shutdown_token();
    let handle = tokio::spawn(app.run_until_stopped());
    let client = McpClient::connect(&format!("http://{addr}/mcp"), Era::Stateless).await;
    RoleServer {
        client,
        stop,
        handle,
    }
}

impl RoleServer {
    /// Stop the server, then drop what the role owns and the role itself.
    async fn finish(self, probe: TestApp, role: &str, extra_sql: &str) {
        self.client.close().await;
        self.stop.cancel();
        let _ = self.handle.await;
        probe
            .exec(&format!("{extra_sql} DROP OWNED BY {role}"))
            .await;
        probe.finish().await;
        if let Ok(mut admin) =
            <sqlx::PgConnection as sqlx::Connection>::connect(&common::admin_url()).await
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
                .execute(&mut admin)
                .await;
        }
    }
}

#[tokio::test]
async fn a_role_that_may_not_create_the_schema_still_serves_without_audit() {
    // The probe's own server must not create the schema (it runs as a superuser).
    let probe = spawn_app_with(|c| c.audit = coldquery::config::Switch::Off).await;
    let role = format!("cq_limited_{}", &probe.db_name[8..]);
    probe
        .exec(&format!(
            "CREATE ROLE {role} LOGIN; CREATE TABLE t (id int); GRANT SELECT, INSERT ON t TO {role};"
        ))
        .await;
    let server = serve_as(&probe, &role).await;
    let r = server
        .client
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "INSERT INTO t VALUES (5)", "autocommit": true}),
        )
        .await;
    assert_eq!(r["rows_affected"], 1);
    assert_eq!(probe.scalar_i64("SELECT count(*) FROM t").await, 1);
    assert_eq!(
        probe
            .scalar_i64("SELECT count(*) FROM pg_namespace WHERE nspname = 'coldquery'")
            .await,
        0
    );
    server.finish(probe, &role, "").await;
}

#[tokio::test]
async fn a_least_privilege_role_owning_a_precreated_schema_gets_the_audit_log() {
    let probe = spawn_app_with(|c| c.audit = coldquery::config::Switch::Off).await;
    let role = format!("cq_owner_{}", &probe.db_name[8..]);
    probe
        .exec(&format!(
            "CREATE ROLE {role} LOGIN; CREATE SCHEMA coldquery AUTHORIZATION {role}; \
             CREATE TABLE t (id int); GRANT SELECT, INSERT ON t TO {role};"
        ))
        .await;
    let server = serve_as(&probe, &role).await;
    server
        .client
        .ok(
            "pg_query",
            json!({"action": "write", "sql": "INSERT INTO t VALUES (1)", "autocommit": true}),
        )
        .await;
    assert_eq!(
        probe.scalar_i64("SELECT count(*) FROM coldquery.audit_log WHERE statement = 'INSERT INTO t VALUES (1)'").await,
        1
    );
    server
        .finish(probe, &role, "DROP SCHEMA coldquery CASCADE;")
        .await;
}

#[tokio::test]
async fn the_audit_log_never_keeps_a_connection_string_password() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE remotes (dsn text)").await;
    let c = app.client(Era::Session).await;
    for dsn in [
        "host=db user=alice password=hunter2 dbname=app",
        "postgresql://alice:hunter2@db:5432/app",
    ] {
        c.ok(
            "pg_query",
            json!({"action": "write", "sql": format!("INSERT INTO remotes VALUES ('{dsn}')"), "autocommit": true}),
        )
        .await;
    }
    let rows = audit_rows(&app).await;
    let all = serde_json::to_string(&rows).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r["statement"]
                .as_str()
                .is_some_and(|s| s.contains("INSERT INTO remotes")))
            .count(),
        2,
        "{all}"
    );
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("'***'"), "{all}");
    c.close().await;
    app.finish().await;
}

/// Every file of `migrations/` is applied to a fresh database at start-up, in order, and
/// recorded as successful (the unit test in `db/audit.rs` checks that each is registered).
#[tokio::test]
async fn every_migration_file_is_applied_to_a_fresh_database() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .map(|n| {
            n[..4]
                .parse()
                .expect("migration files start with a 4-digit version")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let app = spawn_app().await;
    let mut applied: Vec<i64> = Vec::new();
    for _ in 0..100 {
        applied = sqlx::query_scalar(
            "SELECT version FROM coldquery._sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&app.db)
        .await
        .unwrap_or_default();
        if applied.len() >= files.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(applied, files, "applied migrations vs files in migrations/");
    app.finish().await;
}
