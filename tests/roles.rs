//! Caller roles (issue #13 part 3, contract §8 "Caller roles"): a bearer token may name a
//! PostgreSQL role, and every statement of that caller then runs as it (`current_user`, grants
//! and row-level security), in pooled reads and writes, `explain`, continuation cursors,
//! `pg_tx` sessions, `pg_schema`, `pg_monitor` and resources; `COLDQUERY_DEFAULT_ROLE` covers
//! callers without one; pooled connections go back to the pool as the login role; the audit log
//! names principal and role; statements that would leave the role are refused; `coldquery
//! check` reports each mapped role.
//!
//! Roles are cluster-wide while each test has its own database: every test creates its own
//! roles, named `roles_t_<who>_<random>`, and a guard drops them (after the test database, which
//! holds their privileges) even when the test fails.

mod common;

use std::time::Duration;

use coldquery::config::Config;
use common::cluster::{RoleGuard, admin};
use common::{ERAS, Era, McpClient, TestApp, admin_url, rand_u64, spawn_app_with};
use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

const ALICE_TOKEN: &str = "alice-token-0123456789abcdef";
const BOB_TOKEN: &str = "bob-token-0123456789abcdef";
const PLAIN_TOKEN: &str = "plain-token-0123456789abcdef";

/// The login role of the tests (the admin URL's user).
const LOGIN: &str = "postgres";

/// One test's roles. Dropping it drops the test database (if any) and the roles.
struct Roles {
    suffix: String,
    guard: RoleGuard,
}

impl Roles {
    /// Create `alice`, `bob` (both granted to the login role) and `owner`, all NOLOGIN.
    async fn create() -> Roles {
        let suffix = format!("{:012x}", rand_u64() & 0xffff_ffff_ffff);
        // Every name a test of this file may create, so the guard drops them all.
        let guard = RoleGuard::new(
            ["alice", "bob", "owner", "login", "bypass"]
                .iter()
                .map(|w| role_name(w, &suffix))
                .collect(),
        );
        let roles = Roles { suffix, guard };
        roles
            .admin(&format!(
                "CREATE ROLE {a} NOLOGIN; CREATE ROLE {b} NOLOGIN; CREATE ROLE {o} NOLOGIN; \
                 GRANT {a}, {b} TO {LOGIN}",
                a = roles.alice(),
                b = roles.bob(),
                o = roles.name("owner"),
            ))
            .await;
        roles
    }

    fn name(&self, who: &str) -> String {
        role_name(who, &self.suffix)
    }

    fn alice(&self) -> String {
        self.name("alice")
    }

    fn bob(&self) -> String {
        self.name("bob")
    }

    /// Run SQL on the cluster as the admin.
    async fn admin(&self, sql: &str) {
        admin(sql).await;
    }

    /// The token list: alice and bob with their roles, plain without one.
    fn tokens(&self) -> String {
        format!(
            "alice={ALICE_TOKEN}@{},bob={BOB_TOKEN}@{},plain={PLAIN_TOKEN}",
            self.alice(),
            self.bob()
        )
    }
}

fn role_name(who: &str, suffix: &str) -> String {
    format!("roles_t_{who}_{suffix}")
}

/// A running server whose database has `notes`: 20 rows, 1–10 alice's and 11–20 bob's, owned
/// by a third role, under a policy that shows and accepts only the current role's rows.
struct Fixture {
    app: TestApp,
    roles: Roles,
}

async fn fixture(tweak: impl FnOnce(&mut Config, &Roles)) -> Fixture {
    let mut roles = Roles::create().await;
    let app = spawn_app_with(|c| tweak(c, &roles)).await;
    roles.guard.with_database(&app.db_name);
    app.exec(&format!(
        "CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL);
         INSERT INTO notes SELECT g, CASE WHEN g <= 10 THEN '{a}' ELSE '{b}' END, 'note ' || g
           FROM generate_series(1, 20) g;
         ALTER TABLE notes OWNER TO {o};
         ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own_rows ON notes USING (owner = current_user)
           WITH CHECK (owner = current_user);
         GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO {a}, {b};",
        a = roles.alice(),
        b = roles.bob(),
        o = roles.name("owner"),
    ))
    .await;
    Fixture { app, roles }
}

/// The usual fixture: three tokens, no default role.
async fn with_tokens() -> Fixture {
    fixture(|c, r| c.auth_tokens = Some(r.tokens().as_str().into())).await
}

impl Fixture {
    async fn client(&self, era: Era, token: &str) -> McpClient {
        McpClient::connect_with_token(&self.app.mcp_url(), era, Some(token)).await
    }

    async fn finish(self) {
        self.app.finish().await;
        drop(self.roles);
    }
}

/// `current_user` as the caller's statements see it.
async fn who(c: &McpClient) -> String {
    let v = c.read("SELECT current_user::text").await;
    v["rows"][0][0].as_str().unwrap().to_owned()
}

/// How many notes the caller sees, and how many of those are its own.
async fn visible(c: &McpClient, session: Option<&str>) -> (i64, i64) {
    let mut args = json!({"action": "read", "sql":
        "SELECT count(*)::int, count(*) FILTER (WHERE owner = current_user)::int FROM notes"});
    if let Some(id) = session {
        args["session_id"] = json!(id);
    }
    let v = c.ok("pg_query", args).await;
    (
        v["rows"][0][0].as_i64().unwrap(),
        v["rows"][0][1].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn each_token_reads_as_its_role_and_sees_only_its_rows() {
    let f = with_tokens().await;
    for era in ERAS {
        let alice = f.client(era, ALICE_TOKEN).await;
        let bob = f.client(era, BOB_TOKEN).await;
        let plain = f.client(era, PLAIN_TOKEN).await;
        assert_eq!(who(&alice).await, f.roles.alice(), "{era:?}");
        assert_eq!(who(&bob).await, f.roles.bob(), "{era:?}");
        // Without a role: the login role, which (a superuser here) sees every row.
        assert_eq!(who(&plain).await, LOGIN, "{era:?}");
        assert_eq!(visible(&alice, None).await, (10, 10), "{era:?}");
        assert_eq!(visible(&bob, None).await, (10, 10), "{era:?}");
        assert_eq!(visible(&plain, None).await.0, 20, "{era:?}");
        // The role is the role, not a look-alike: session_user stays the login role.
        let v = alice
            .read(
                "SELECT session_user::text, pg_has_role(current_user, 'pg_read_all_data', 'USAGE')",
            )
            .await;
        assert_eq!(v["rows"][0], json!([LOGIN, false]));
        for c in [alice, bob, plain] {
            c.close().await;
        }
    }
    f.finish().await;
}

#[tokio::test]
async fn a_pooled_connection_goes_back_to_the_pool_as_the_login_role() {
    // One connection: whatever alice's calls leave on it, the plain caller's next call gets.
    let f = fixture(|c, r| {
        c.auth_tokens = Some(r.tokens().as_str().into());
        c.pool_size = 1;
    })
    .await;
    let alice = f.client(Era::Stateless, ALICE_TOKEN).await;
    let plain = f.client(Era::Stateless, PLAIN_TOKEN).await;
    let login_again = async |what: &str| {
        let v = plain
            .read("SELECT current_user::text, (SELECT count(*)::int FROM notes)")
            .await;
        assert_eq!(v["rows"][0], json!([LOGIN, 20]), "after alice's {what}");
    };
    login_again("nothing").await;

    assert_eq!(who(&alice).await, f.roles.alice());
    login_again("read").await;

    let w = alice
        .ok(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": "UPDATE notes SET body = body || '!' WHERE id IN (1, 11)"}),
        )
        .await;
    assert_eq!(
        w["rows_affected"], 1,
        "bob's row 11 is not alice's to update"
    );
    login_again("committed write").await;

    alice
        .ok(
            "pg_query",
            json!({"action": "write", "dry_run": true, "sql": "DELETE FROM notes"}),
        )
        .await;
    login_again("dry run").await;

    alice
        .err(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": format!("INSERT INTO notes VALUES (40, '{}', 'x')", f.roles.bob())}),
            "database_error",
        )
        .await;
    login_again("failed write").await;

    alice
        .ok(
            "pg_query",
            json!({"action": "explain", "analyze": true, "sql": "SELECT * FROM notes"}),
        )
        .await;
    login_again("explain").await;

    alice
        .ok(
            "pg_query",
            json!({"action": "transaction", "operations": [{"sql": "SELECT current_user"}]}),
        )
        .await;
    login_again("transaction").await;

    alice
        .ok("pg_schema", json!({"action": "describe", "name": "notes"}))
        .await;
    login_again("describe").await;

    // VACUUM runs outside a transaction: session-level SET ROLE, reset on release. Alice does
    // not own the table, so PostgreSQL skips it with a warning rather than an error.
    alice
        .ok(
            "pg_admin",
            json!({"action": "vacuum", "table": "notes", "autocommit": true}),
        )
        .await;
    login_again("vacuum").await;

    alice.close().await;
    plain.close().await;
    f.finish().await;
}

#[tokio::test]
async fn continuation_cursors_page_through_the_roles_rows_only() {
    let f = with_tokens().await;
    for (token, owner, ids) in [
        (ALICE_TOKEN, f.roles.alice(), 1..=10),
        (BOB_TOKEN, f.roles.bob(), 11..=20),
    ] {
        let c = f.client(Era::Session, token).await;
        let mut page = c
            .ok(
                "pg_query",
                json!({"action": "read", "max_rows": 3,
                       "sql": "SELECT id, owner, current_user::text FROM notes ORDER BY id"}),
            )
            .await;
        assert_eq!(page["truncated"], true);
        let mut seen = Vec::new();
        loop {
            for row in page["rows"].as_array().unwrap() {
                assert_eq!(row[1], owner.as_str());
                assert_eq!(row[2], owner.as_str(), "the cursor runs as the role too");
                seen.push(row[0].as_i64().unwrap());
            }
            let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) else {
                break;
            };
            page = c
                .ok(
                    "pg_query",
                    json!({"action": "fetch", "cursor": cursor, "max_rows": 3}),
                )
                .await;
        }
        assert_eq!(seen, ids.collect::<Vec<i64>>());
        c.close().await;
    }
    f.finish().await;
}

#[tokio::test]
async fn a_session_runs_as_its_role_for_its_whole_life() {
    let f = with_tokens().await;
    let alice = f.client(Era::Session, ALICE_TOKEN).await;
    let begun = alice.ok("pg_tx", json!({"action": "begin"})).await;
    let id = begun["session_id"].as_str().unwrap().to_owned();
    let in_session = async |sql: &str| {
        alice
            .ok(
                "pg_query",
                json!({"action": "read", "session_id": id, "sql": sql}),
            )
            .await
    };
    assert_eq!(
        in_session("SELECT current_user::text").await["rows"][0][0],
        f.roles.alice().as_str()
    );
    assert_eq!(visible(&alice, Some(&id)).await, (10, 10));

    alice
        .ok(
            "pg_tx",
            json!({"action": "savepoint", "session_id": id, "savepoint_name": "sp1"}),
        )
        .await;
    let w = alice
        .ok(
            "pg_query",
            json!({"action": "write", "session_id": id,
                   "sql": format!("INSERT INTO notes VALUES (21, '{}', 'mine')", f.roles.alice())}),
        )
        .await;
    assert_eq!(w["rows_affected"], 1);
    alice
        .ok(
            "pg_tx",
            json!({"action": "rollback_to", "session_id": id, "savepoint_name": "sp1"}),
        )
        .await;
    // Rolling back to a savepoint taken after begin cannot undo the role.
    assert_eq!(
        in_session("SELECT current_user::text").await["rows"][0][0],
        f.roles.alice().as_str()
    );
    alice
        .ok(
            "pg_query",
            json!({"action": "write", "session_id": id,
                   "sql": format!("INSERT INTO notes VALUES (21, '{}', 'mine')", f.roles.alice())}),
        )
        .await;

    // A truncated read in the session continues as a cursor in the session's transaction:
    // alice's ten rows and the uncommitted eleventh, nothing of bob's.
    let mut page = alice
        .ok(
            "pg_query",
            json!({"action": "read", "session_id": id, "max_rows": 4,
                   "sql": "SELECT id, owner FROM notes ORDER BY id"}),
        )
        .await;
    let mut seen = Vec::new();
    loop {
        for row in page["rows"].as_array().unwrap() {
            assert_eq!(row[1], f.roles.alice().as_str());
            seen.push(row[0].as_i64().unwrap());
        }
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) else {
            break;
        };
        page = alice
            .ok("pg_query", json!({"action": "fetch", "cursor": cursor}))
            .await;
    }
    assert_eq!(seen, (1..=10).chain([21]).collect::<Vec<i64>>());

    // Outside the policy: PostgreSQL's own refusal, inside the session as anywhere.
    let e = alice
        .err(
            "pg_query",
            json!({"action": "write", "session_id": id,
                   "sql": format!("INSERT INTO notes VALUES (22, '{}', 'theirs')", f.roles.bob())}),
            "database_error",
        )
        .await;
    assert_eq!(e["sqlstate"], "42501", "{e}");
    alice
        .ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    assert_eq!(
        f.app
            .scalar_i64("SELECT count(*) FROM notes WHERE id > 20")
            .await,
        0
    );

    // A session of a caller without a role runs as the login role.
    let plain = f.client(Era::Session, PLAIN_TOKEN).await;
    let begun = plain.ok("pg_tx", json!({"action": "begin"})).await;
    let id = begun["session_id"].as_str().unwrap();
    assert_eq!(visible(&plain, Some(id)).await.0, 20);
    plain
        .ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    alice.close().await;
    plain.close().await;
    f.finish().await;
}

#[tokio::test]
async fn explain_analyze_runs_as_the_role() {
    let f = with_tokens().await;
    for (token, rows) in [(ALICE_TOKEN, 10), (BOB_TOKEN, 10), (PLAIN_TOKEN, 20)] {
        let c = f.client(Era::Stateless, token).await;
        let v = c
            .ok(
                "pg_query",
                json!({"action": "explain", "analyze": true, "sql": "SELECT * FROM notes"}),
            )
            .await;
        assert_eq!(v["summary"]["actual_rows"], rows, "{token}: {v}");
        c.close().await;
    }
    f.finish().await;
}

#[tokio::test]
async fn a_write_outside_the_policy_fails_with_postgresqls_own_error() {
    let f = with_tokens().await;
    let alice = f.client(Era::Stateless, ALICE_TOKEN).await;
    let bob = f.roles.bob();
    let e = alice
        .err(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": format!("INSERT INTO notes VALUES (30, '{bob}', 'forged')")}),
            "database_error",
        )
        .await;
    assert_eq!(e["sqlstate"], "42501", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("row-level security policy"),
        "{e}"
    );
    // WITH CHECK on UPDATE too: alice cannot give her row away.
    let e = alice
        .err(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": format!("UPDATE notes SET owner = '{bob}' WHERE id = 1")}),
            "database_error",
        )
        .await;
    assert_eq!(e["sqlstate"], "42501", "{e}");
    // USING: bob's rows are invisible to her update, not an error.
    let w = alice
        .ok(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": "DELETE FROM notes WHERE id > 10"}),
        )
        .await;
    assert_eq!(w["rows_affected"], 0);
    let e = alice
        .err(
            "pg_query",
            json!({"action": "transaction", "autocommit": true, "operations": [
                {"sql": "UPDATE notes SET body = 'ok' WHERE id = 2"},
                {"sql": format!("INSERT INTO notes VALUES (31, '{bob}', 'forged')")}]}),
            "database_error",
        )
        .await;
    assert_eq!(e["operation_index"], 1, "{e}");
    assert_eq!(
        f.app
            .scalar_i64("SELECT count(*) FROM notes WHERE id > 20 OR body = 'ok'")
            .await,
        0
    );
    assert_eq!(f.app.scalar_i64("SELECT count(*) FROM notes").await, 20);
    alice.close().await;
    f.finish().await;
}

/// Wait for the start-up migration, then read audit rows as JSON.
async fn audit_rows(app: &TestApp) -> Vec<Value> {
    for _ in 0..100 {
        let ready: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM information_schema.columns \
             WHERE table_schema = 'coldquery' AND table_name = 'audit_log' AND column_name = 'role')",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::query_scalar::<_, Value>(
        "SELECT jsonb_build_object('principal', principal, 'role', role, 'outcome', outcome) \
         FROM coldquery.audit_log ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_audit_log_records_principal_and_role() {
    let f = with_tokens().await;
    let alice = f.client(Era::Stateless, ALICE_TOKEN).await;
    let plain = f.client(Era::Stateless, PLAIN_TOKEN).await;
    let write = json!({"action": "write", "autocommit": true,
                       "sql": "UPDATE notes SET body = 'seen' WHERE id = 1"});
    assert_eq!(
        alice.ok("pg_query", write.clone()).await["rows_affected"],
        1
    );
    assert_eq!(plain.ok("pg_query", write).await["rows_affected"], 1);
    // A refused write is audited with the role it would have run as.
    alice
        .err(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": format!("INSERT INTO notes VALUES (50, '{}', 'x')", f.roles.bob())}),
            "database_error",
        )
        .await;
    // Audit rows are written after the result is sent.
    let mut rows = Vec::new();
    for _ in 0..50 {
        rows = audit_rows(&f.app).await;
        if rows.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        rows,
        [
            json!({"principal": "alice", "role": f.roles.alice(), "outcome": "ok"}),
            json!({"principal": "plain", "role": null, "outcome": "ok"}),
            json!({"principal": "alice", "role": f.roles.alice(), "outcome": "database_error"}),
        ]
    );
    alice.close().await;
    plain.close().await;
    f.finish().await;
}

fn resource_json(contents: &[ResourceContents]) -> Value {
    match &contents[0] {
        ResourceContents::TextResourceContents { text, .. } => serde_json::from_str(text).unwrap(),
        other => panic!("expected text contents, got {other:?}"),
    }
}

#[tokio::test]
async fn resources_schema_and_monitor_show_what_the_role_may_see() {
    let f = with_tokens().await;
    let alice = f.client(Era::Session, ALICE_TOKEN).await;
    let plain = f.client(Era::Session, PLAIN_TOKEN).await;
    // A backend of the login role, busy for a while: the login role sees its query in
    // pg_stat_activity; alice, not a member of the login role, may not.
    let db = f.app.db.clone();
    let sleeper = tokio::spawn(async move {
        let _ = sqlx::query("SELECT pg_sleep(6), 'roles_marker'")
            .execute(&db)
            .await;
    });
    let activity = async |c: &McpClient| {
        let r = c
            .inner()
            .read_resource(ReadResourceRequestParams::new(
                "postgres://monitor/activity",
            ))
            .await
            .unwrap();
        resource_json(&r.contents)
    };
    let mut plain_sees = false;
    for _ in 0..50 {
        if activity(&plain).await.to_string().contains("roles_marker") {
            plain_sees = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(plain_sees, "the login role sees the sleeping query");
    let seen = activity(&alice).await;
    assert!(seen["backends"].is_array(), "{seen}");
    assert!(!seen.to_string().contains("roles_marker"), "{seen}");
    let tool = alice.ok("pg_monitor", json!({"action": "activity"})).await;
    assert!(!tool.to_string().contains("roles_marker"), "{tool}");
    let tool = plain.ok("pg_monitor", json!({"action": "activity"})).await;
    assert!(tool.to_string().contains("roles_marker"), "{tool}");
    // The rest of pg_monitor and pg_schema work under a role without special privileges.
    alice.ok("pg_monitor", json!({"action": "health"})).await;
    let r = alice
        .inner()
        .read_resource(ReadResourceRequestParams::new(
            "postgres://schema/public/notes",
        ))
        .await
        .unwrap();
    assert_eq!(resource_json(&r.contents)["name"], "notes");
    let listed = alice
        .ok("pg_schema", json!({"action": "list", "target": "table"}))
        .await;
    assert!(listed.to_string().contains("\"notes\""), "{listed}");
    sleeper.abort();
    alice.close().await;
    plain.close().await;
    f.finish().await;
}

#[tokio::test]
async fn the_default_role_applies_to_callers_without_one() {
    let f = fixture(|c, r| {
        c.auth_tokens = Some(
            format!("alice={ALICE_TOKEN}@{},plain={PLAIN_TOKEN}", r.alice())
                .as_str()
                .into(),
        );
        c.default_role = Some(r.bob());
    })
    .await;
    for era in ERAS {
        let plain = f.client(era, PLAIN_TOKEN).await;
        let alice = f.client(era, ALICE_TOKEN).await;
        assert_eq!(who(&plain).await, f.roles.bob(), "{era:?}");
        assert_eq!(visible(&plain, None).await, (10, 10), "{era:?}");
        // A token's own role wins over the default.
        assert_eq!(who(&alice).await, f.roles.alice(), "{era:?}");
        let begun = plain.ok("pg_tx", json!({"action": "begin"})).await;
        let id = begun["session_id"].as_str().unwrap();
        assert_eq!(visible(&plain, Some(id)).await, (10, 10), "{era:?}");
        plain
            .ok("pg_tx", json!({"action": "rollback", "session_id": id}))
            .await;
        plain.close().await;
        alice.close().await;
    }
    let plain = f.client(Era::Stateless, PLAIN_TOKEN).await;
    plain
        .ok(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": "UPDATE notes SET body = 'b' WHERE id = 11"}),
        )
        .await;
    let mut rows = Vec::new();
    for _ in 0..50 {
        rows = audit_rows(&f.app).await;
        if rows.iter().any(|r| r["principal"] == "plain") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        rows.contains(&json!({"principal": "plain", "role": f.roles.bob(), "outcome": "ok"})),
        "{rows:?}"
    );
    plain.close().await;
    f.finish().await;
}

#[tokio::test]
async fn without_authentication_every_caller_runs_as_the_default_role() {
    let f = fixture(|c, r| c.default_role = Some(r.bob())).await;
    for era in ERAS {
        let c = f.app.client(era).await;
        assert_eq!(who(&c).await, f.roles.bob(), "{era:?}");
        assert_eq!(visible(&c, None).await, (10, 10), "{era:?}");
        c.close().await;
    }
    f.finish().await;
}

#[tokio::test]
async fn tailscale_logins_map_to_roles() {
    let f = fixture(|c, r| {
        c.trust_tailscale_headers = true;
        c.tailscale_roles = Some(format!("ann@example.com={}", r.alice()));
    })
    .await;
    let ann = McpClient::connect_with_headers(
        &f.app.mcp_url(),
        Era::Stateless,
        None,
        &[("tailscale-user-login", "ann@example.com")],
    )
    .await;
    assert_eq!(who(&ann).await, f.roles.alice());
    let other = McpClient::connect_with_headers(
        &f.app.mcp_url(),
        Era::Stateless,
        None,
        &[("tailscale-user-login", "bo@example.com")],
    )
    .await;
    assert_eq!(
        who(&other).await,
        LOGIN,
        "an unmapped login runs as the login role"
    );
    ann.close().await;
    other.close().await;
    f.finish().await;
}

#[tokio::test]
async fn statements_that_would_leave_the_role_are_refused() {
    let f = with_tokens().await;
    let alice = f.client(Era::Session, ALICE_TOKEN).await;
    let begun = alice.ok("pg_tx", json!({"action": "begin"})).await;
    let id = begun["session_id"].as_str().unwrap().to_owned();
    let escapes = [
        "SET ROLE postgres",
        "SET LOCAL ROLE postgres",
        "SET role = 'postgres'",
        "RESET ROLE",
        "SET ROLE NONE",
        "SET SESSION AUTHORIZATION postgres",
        "SET SESSION AUTHORIZATION DEFAULT",
        "RESET SESSION AUTHORIZATION",
        "RESET ALL",
        "DISCARD ALL",
        "SELECT set_config('role', 'postgres', true)",
        "UPDATE notes SET body = set_config('role', 'postgres', false) WHERE id = 1",
    ];
    for sql in escapes {
        for args in [
            json!({"action": "read", "sql": sql}),
            json!({"action": "write", "autocommit": true, "sql": sql}),
            json!({"action": "write", "session_id": id, "sql": sql}),
            json!({"action": "transaction", "autocommit": true, "operations": [{"sql": sql}]}),
        ] {
            alice.err("pg_query", args, "policy_denied").await;
        }
    }
    // Nor through a setting, or stored code that would run later.
    alice
        .err(
            "pg_admin",
            json!({"action": "settings", "session_id": id,
                   "setting_name": "role", "setting_value": "postgres"}),
            "policy_denied",
        )
        .await;
    // A LANGUAGE sql body may hold utility statements, RESET ROLE among them, and would run
    // it in the middle of a later caller's statement: refused for every caller (the login
    // role too, which could create it for others to call).
    let plain = f.client(Era::Stateless, PLAIN_TOKEN).await;
    for body in [
        "AS 'RESET ROLE'",
        "AS $$ SELECT 1; SET ROLE postgres $$",
        "AS $$ SET LOCAL session_authorization = 'postgres' $$",
        "AS $$ SELECT 1; RESET SESSION AUTHORIZATION; SELECT 2 $$",
    ] {
        let sql = format!("CREATE FUNCTION escape() RETURNS void LANGUAGE sql {body}");
        for c in [&alice, &plain] {
            for mode in [json!({"autocommit": true}), json!({"dry_run": true})] {
                let mut args = json!({"action": "create", "sql": sql});
                args.as_object_mut()
                    .unwrap()
                    .extend(mode.as_object().unwrap().clone());
                let e = c.err("pg_schema", args, "policy_denied").await;
                assert!(
                    e["message"].as_str().unwrap().contains("sets role"),
                    "{sql}: {e}"
                );
            }
        }
    }
    // A function's own SET clause switches the role while it runs (PostgreSQL checks the
    // session user's membership, i.e. the login role's): refused in CREATE and ALTER alike.
    for (action, sql) in [
        (
            "create",
            "CREATE FUNCTION escape() RETURNS text LANGUAGE sql SET role = postgres \
             AS 'SELECT current_user::text'",
        ),
        (
            "create",
            "CREATE FUNCTION escape() RETURNS text LANGUAGE sql \
             SET session_authorization = postgres AS 'SELECT current_user::text'",
        ),
        (
            "alter",
            "ALTER FUNCTION pg_catalog.now() SET role = postgres",
        ),
    ] {
        for c in [&alice, &plain] {
            c.err(
                "pg_schema",
                json!({"action": action, "autocommit": true, "sql": sql}),
                "policy_denied",
            )
            .await;
        }
    }
    plain.close().await;
    alice
        .err(
            "pg_schema",
            json!({"action": "alter", "autocommit": true,
                   "sql": format!("ALTER ROLE {} SET role = 'postgres'", f.roles.alice())}),
            "policy_denied",
        )
        .await;
    // Still alice, pooled and in the session.
    assert_eq!(who(&alice).await, f.roles.alice());
    let v = alice
        .ok(
            "pg_query",
            json!({"action": "read", "session_id": id, "sql": "SELECT current_user::text"}),
        )
        .await;
    assert_eq!(v["rows"][0][0], f.roles.alice().as_str());
    alice
        .ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    alice.close().await;
    f.finish().await;
}

#[tokio::test]
async fn procedural_code_and_caller_roles_do_not_start_together() {
    let mut c = Config::with_database_url(&admin_url());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.allow_procedural = true;
    c.default_role = Some("roles_t_anyone".into());
    let e = match coldquery::app::App::build(c).await {
        Ok(_) => panic!("the app must refuse to start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("COLDQUERY_ALLOW_PROCEDURAL"), "{e}");
    assert!(e.contains("RESET ROLE"), "{e}");
    let mut c = Config::with_database_url(&admin_url());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.allow_procedural = true;
    assert!(coldquery::app::App::build(c).await.is_ok());
}

/// Run `coldquery check` with only these environment variables; exit code and stderr.
async fn check(env: &[(&str, String)]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_coldquery"))
        .arg("check")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn check_reports_each_mapped_role() {
    let roles = Roles::create().await;
    let (alice, bob) = (roles.alice(), roles.bob());
    let (login, bypass) = (roles.name("login"), roles.name("bypass"));
    let missing = roles.name("missing");
    roles
        .admin(&format!(
            "CREATE ROLE {login} LOGIN; GRANT {alice} TO {login}; \
             CREATE ROLE {bypass} NOLOGIN BYPASSRLS; GRANT {bypass} TO {LOGIN}"
        ))
        .await;

    // All grantable: usable, with a warning for the role that bypasses RLS.
    let (code, err) = check(&[
        ("DATABASE_URL", admin_url()),
        (
            "COLDQUERY_AUTH_TOKENS",
            format!("a={ALICE_TOKEN}@{alice},b={BOB_TOKEN}@{bypass}"),
        ),
        ("COLDQUERY_DEFAULT_ROLE", bob.clone()),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("ok   role {alice} (token a)")),
        "{err}"
    );
    assert!(
        err.contains(&format!("ok   role {bob} (COLDQUERY_DEFAULT_ROLE)")),
        "{err}"
    );
    assert!(
        err.contains(&format!("WARN role {bypass} (token b) has BYPASSRLS")),
        "{err}"
    );

    // A login role that is a member of alice only: bob cannot be assumed, and one is missing.
    let base = admin_url();
    let (_, rest) = base.split_once("://").unwrap();
    let (_, host_db) = rest.split_once('@').unwrap();
    let (code, err) = check(&[
        ("DATABASE_URL", format!("postgres://{login}@{host_db}")),
        (
            "COLDQUERY_AUTH_TOKENS",
            format!("a={ALICE_TOKEN}@{alice},b={BOB_TOKEN}@{bob},m={PLAIN_TOKEN}@{missing}"),
        ),
    ])
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("ok   role {alice} (token a)")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "FAIL role {bob} (token b): the login role {login} may not SET ROLE to it"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("FAIL role {missing} (token m) does not exist")),
        "{err}"
    );
    assert!(err.contains("NOT usable"), "{err}");

    // A bad role name is a configuration failure.
    let (code, err) = check(&[
        ("DATABASE_URL", admin_url()),
        ("COLDQUERY_DEFAULT_ROLE", "no such;role".into()),
    ])
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("COLDQUERY_DEFAULT_ROLE"), "{err}");
    drop(roles);
}

#[tokio::test]
async fn a_caller_whose_role_cannot_be_assumed_gets_an_error_and_nothing_runs() {
    const GHOST_TOKEN: &str = "ghost-token-0123456789abcdef";
    let f = fixture(|c, r| {
        c.auth_tokens = Some(
            format!(
                "ghost={GHOST_TOKEN}@{},plain={PLAIN_TOKEN}",
                r.name("ghost")
            )
            .as_str()
            .into(),
        );
    })
    .await;
    let ghost = f.client(Era::Stateless, GHOST_TOKEN).await;
    let e = ghost
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT current_user::text"}),
            "database_error",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("does not exist"),
        "{e}"
    );
    ghost
        .err(
            "pg_query",
            json!({"action": "write", "autocommit": true,
                   "sql": "UPDATE notes SET body = 'ghost' WHERE id = 1"}),
            "database_error",
        )
        .await;
    ghost
        .err("pg_tx", json!({"action": "begin"}), "database_error")
        .await;
    ghost
        .err("pg_monitor", json!({"action": "health"}), "database_error")
        .await;
    assert_eq!(
        f.app
            .scalar_i64("SELECT count(*) FROM notes WHERE body = 'ghost'")
            .await,
        0
    );
    // The pool is fine for everyone else.
    let plain = f.client(Era::Stateless, PLAIN_TOKEN).await;
    assert_eq!(who(&plain).await, LOGIN);
    ghost.close().await;
    plain.close().await;
    f.finish().await;
}
