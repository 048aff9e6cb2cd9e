//! Red-team suite for the one policy point (issue "Safe by construction"): each class of
//! bypass found against 0.1, in several variants, against the real PostgreSQL with the contrib
//! extensions installed and the server's role a superuser (so every bypass would have teeth).
//! Every effect is checked from outside the server: rows, sequences, files, other backends,
//! `pg_conf_load_time()`, later callers' `current_user`.

mod common;

use common::{Era, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// Contrib extensions whose functions broke 0.1 (all ship with this machine's PostgreSQL).
const EXTENSIONS: &[&str] = &[
    "tablefunc",
    "xml2",
    "pg_surgery",
    "pg_visibility",
    "dblink",
    "adminpack",
    "pg_prewarm",
    "file_fdw",
    "pg_trgm",
];

async fn fixture(app: &TestApp) {
    for ext in EXTENSIONS {
        app.exec(&format!("CREATE EXTENSION IF NOT EXISTS {ext}"))
            .await;
    }
    app.exec(
        "CREATE TABLE sentinel (id int PRIMARY KEY, name text, amount int);
         INSERT INTO sentinel SELECT g, 'row' || g, g * 10 FROM generate_series(1, 5) g;
         CREATE SEQUENCE rt_seq;
         SELECT setval('rt_seq', 100);
         CREATE FUNCTION plp_row(s sentinel) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
         CREATE FUNCTION plp() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
         CREATE FUNCTION doubled(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
         CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;",
    )
    .await;
}

async fn sentinel_count(app: &TestApp) -> i64 {
    app.scalar_i64("SELECT count(*) FROM sentinel").await
}

async fn seq_value(app: &TestApp) -> i64 {
    app.scalar_i64("SELECT last_value FROM rt_seq").await
}

async fn conf_load_time(app: &TestApp) -> String {
    sqlx::query_scalar::<_, String>("SELECT pg_conf_load_time()::text")
        .fetch_one(&app.db)
        .await
        .expect("pg_conf_load_time")
}

fn message(e: &Value) -> &str {
    e["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn ddl_never_runs_functions_hidden_in_its_expressions_dry_run_or_not() {
    let app = spawn_app().await;
    fixture(&app).await;
    let c = app.client(Era::Session).await;
    // A victim backend that pg_terminate_backend would kill.
    let mut victim = app.db.acquire().await.unwrap();
    let victim_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *victim)
        .await
        .unwrap();
    let before_conf = conf_load_time(&app).await;
    let path = format!("/tmp/cq_redteam_{}", app.db_name);
    let cases = [
        (
            "alter",
            "ALTER TABLE sentinel ALTER COLUMN amount TYPE int USING (pg_read_file('/etc/passwd', 0, 120))::int".to_string(),
        ),
        (
            "alter",
            format!("ALTER TABLE sentinel ALTER COLUMN amount TYPE int USING (pg_terminate_backend({victim_pid}))::int"),
        ),
        (
            "alter",
            format!("ALTER TABLE sentinel ALTER COLUMN amount TYPE int USING (pg_file_write('{path}', 'x', false))::int"),
        ),
        (
            "alter",
            "ALTER TABLE sentinel ALTER COLUMN amount TYPE int USING (pg_reload_conf())::int".to_string(),
        ),
        (
            "alter",
            "ALTER TABLE sentinel ADD COLUMN z bigint DEFAULT setval('rt_seq', 424242)".to_string(),
        ),
        (
            "alter",
            "ALTER TABLE sentinel ADD COLUMN z text DEFAULT dblink_exec('dbname=postgres', 'SELECT 1')".to_string(),
        ),
        (
            "create",
            "CREATE TABLE t2 AS SELECT setval('rt_seq', 1000) AS v".to_string(),
        ),
        (
            "create",
            "CREATE TABLE t3 (a int CHECK (pg_catalog.setval('rt_seq', 5) > 0))".to_string(),
        ),
        (
            "create",
            "CREATE INDEX ON sentinel ((pg_read_file('/etc/hostname')))".to_string(),
        ),
    ];
    for (action, sql) in &cases {
        for extra in [json!({"dry_run": true}), json!({"autocommit": true})] {
            let mut args = json!({"action": action, "sql": sql});
            args.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let e = c.err("pg_schema", args, "policy_denied").await;
            assert!(message(&e).contains("not allowed"), "{sql}: {e}");
        }
    }
    // Nothing happened, judged from outside.
    assert_eq!(seq_value(&app).await, 100, "the sequence did not move");
    assert_eq!(sentinel_count(&app).await, 5);
    let alive: i64 = sqlx::query_scalar("SELECT 1::int8")
        .fetch_one(&mut *victim)
        .await
        .expect("the victim backend is alive");
    assert_eq!(alive, 1);
    assert_eq!(conf_load_time(&app).await, before_conf, "no config reload");
    assert!(!std::path::Path::new(&path).exists(), "no file written");
    // The verification pool cannot close while the victim is checked out.
    drop(victim);
    // Legitimate DDL with side-effect-free expressions still runs.
    c.ok(
        "pg_schema",
        json!({"action": "alter", "autocommit": true,
               "sql": "ALTER TABLE sentinel ADD COLUMN label text DEFAULT lower('X') CHECK (length(label) < 10)"}),
    )
    .await;
    c.ok(
        "pg_schema",
        json!({"action": "alter", "autocommit": true,
               "sql": "ALTER TABLE sentinel ADD COLUMN n bigint DEFAULT nextval('rt_seq')"}),
    )
    .await;
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn reads_refuse_contrib_functions_that_run_sql_text_or_act_outside_the_transaction() {
    let app = spawn_app().await;
    fixture(&app).await;
    let c = app.client(Era::Stateless).await;
    let reads = [
        "SELECT * FROM crosstab('SELECT ''r''::text, ''c''::text, pg_read_file(''/etc/hostname'')::text') AS t(row_name text, c text)",
        "SELECT * FROM public.crosstab('SELECT 1') AS t(a text)",
        "SELECT * FROM connectby('sentinel', 'id', 'amount', '1', 0) AS t(id int, parent int, level int)",
        "SELECT * FROM xpath_table('id', 'name', 'sentinel; COPY sentinel TO PROGRAM ''id''', '/a', 'true') AS t(id int, x text)",
        "SELECT query_to_xml('SELECT pg_read_file(''/etc/hostname'')', true, false, '')",
        "SELECT table_to_xml('sentinel', true, false, '')",
        "SELECT heap_force_kill('sentinel'::regclass, ARRAY['(0,1)']::tid[])",
        "SELECT heap_force_freeze('sentinel'::regclass, ARRAY['(0,2)']::tid[])",
        "SELECT pg_truncate_visibility_map('sentinel')",
        "SELECT autoprewarm_start_worker()",
        "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(a int)",
        "SELECT s.plp_row FROM sentinel s",
        "SELECT plp()",
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT 1 WHERE 'a' OPERATOR(pg_catalog.~~) pg_ls_dir('.')::text",
    ];
    for sql in reads {
        let e = c
            .err(
                "pg_query",
                json!({"action": "read", "sql": sql}),
                "policy_denied",
            )
            .await;
        assert!(
            message(&e).contains("not allowed") || message(&e).contains("refused"),
            "{sql}: {e}"
        );
        // explain and dry runs take the same allowlist.
        c.err(
            "pg_query",
            json!({"action": "explain", "sql": sql}),
            "policy_denied",
        )
        .await;
    }
    assert_eq!(
        sentinel_count(&app).await,
        5,
        "heap_force_kill deleted nothing"
    );
    let workers = app
        .scalar_i64("SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'autoprewarm%'")
        .await;
    assert_eq!(workers, 0, "no background worker was started");
    // Allowing an extension by configuration is possible, and named in the refusal.
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT * FROM crosstab('SELECT 1') AS t(a text)"}),
            "policy_denied",
        )
        .await;
    assert!(message(&e).contains("tablefunc"), "{e}");
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn legitimate_analytic_sql_still_passes() {
    let app = spawn_app().await;
    fixture(&app).await;
    let c = app.client(Era::Stateless).await;
    let reads = [
        "SELECT id, sum(amount) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM sentinel",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM sentinel",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r",
        "SELECT jsonb_build_object('a', 1) -> 'a', jsonb_path_query_array('[1,2]'::jsonb, '$[*]')",
        "SELECT to_tsvector('english', name) @@ plainto_tsquery('english', 'row') FROM sentinel",
        "SELECT similarity(name, 'row1'), name % 'row' FROM sentinel",
        "SELECT doubled(amount), s.name FROM sentinel s WHERE id = ANY (ARRAY[1, 2])",
        "SELECT random() < 2, now() <= clock_timestamp(), gen_random_uuid() IS NOT NULL",
        "SELECT pg_size_pretty(pg_total_relation_size('sentinel')), count(*) FILTER (WHERE amount > 10) FROM sentinel",
        "SELECT date_trunc('day', now()), extract(year FROM now()), substring(name FROM 2 FOR 2) FROM sentinel",
        "SELECT * FROM generate_series(1, 3) g LEFT JOIN LATERAL (SELECT g * 2 AS d) x ON true ORDER BY g USING >",
        "SELECT name FROM sentinel WHERE name ILIKE 'ROW%' AND amount BETWEEN 10 AND 40 AND id IN (SELECT id FROM sentinel)",
    ];
    for sql in reads {
        c.ok("pg_query", json!({"action": "read", "sql": sql}))
            .await;
    }
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn procedural_code_is_refused_unless_opted_in_and_then_never_poisons_the_pool() {
    let app = spawn_app().await;
    fixture(&app).await;
    app.exec("DROP ROLE IF EXISTS cq_redteam_x_role; CREATE ROLE cq_redteam_x_role")
        .await;
    let c = app.client(Era::Stateless).await;
    let path = format!("/tmp/cq_redteam_do_{}", app.db_name);
    let do_copy =
        format!("DO $$ BEGIN EXECUTE 'COPY sentinel TO PROGRAM ''touch {path}'''; END $$");
    for extra in [
        json!({"autocommit": true}),
        json!({"dry_run": true}),
        json!({"dry_run": true, "autocommit": true}),
    ] {
        let mut args = json!({"action": "write", "sql": do_copy});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c.err("pg_query", args, "policy_denied").await;
    }
    let e = c
        .err(
            "pg_schema",
            json!({"action": "create", "autocommit": true,
                   "sql": "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$"}),
            "policy_denied",
        )
        .await;
    assert!(message(&e).contains("COLDQUERY_ALLOW_PROCEDURAL"), "{e}");
    c.err(
        "pg_schema",
        json!({"action": "create", "autocommit": true,
               "sql": "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('/etc/hostname') $$"}),
        "policy_denied",
    )
    .await;
    c.err(
        "pg_query",
        json!({"action": "write", "autocommit": true, "sql": "CALL nosuch_but_procedural()"}),
        "database_error",
    )
    .await;
    // dry_run with autocommit never commits and keeps the dry-run checks.
    c.err(
        "pg_query",
        json!({"action": "write", "dry_run": true, "autocommit": true,
               "sql": "INSERT INTO sentinel SELECT 99, 'x', setval('rt_seq', 777)"}),
        "policy_denied",
    )
    .await;
    assert_eq!(seq_value(&app).await, 100);
    assert!(
        !std::path::Path::new(&path).exists(),
        "COPY TO PROGRAM did not run"
    );
    c.close().await;
    app.finish().await;

    // Opted in: DO runs, and the connection it ran on is closed, so a role it set cannot
    // reach any later caller.
    let app = spawn_app_with(|c| {
        c.allow_procedural = true;
        c.pool_size = 2;
    })
    .await;
    fixture(&app).await;
    let c = app.client(Era::Stateless).await;
    c.ok(
        "pg_query",
        json!({"action": "write", "autocommit": true,
               "sql": "DO $$ BEGIN EXECUTE 'SET SESSION AUTHORIZATION cq_redteam_x_role'; END $$"}),
    )
    .await;
    for _ in 0..25 {
        let r = c
            .read("SELECT current_user::text, session_user::text")
            .await;
        assert_eq!(r["rows"][0][0], "postgres", "{r}");
        assert_eq!(r["rows"][0][1], "postgres", "{r}");
    }
    c.close().await;
    app.finish().await;
    let mut admin = sqlx::PgConnection::connect(&common::admin_url())
        .await
        .unwrap();
    let _ = sqlx::raw_sql("DROP ROLE IF EXISTS cq_redteam_x_role")
        .execute(&mut admin)
        .await;
}

#[tokio::test]
async fn stored_code_is_held_to_the_allowlist() {
    let app = spawn_app().await;
    fixture(&app).await;
    let c = app.client(Era::Session).await;
    let ddl = [
        (
            "create",
            "CREATE SCHEMA s CREATE VIEW v AS SELECT pg_read_file('/etc/hostname') AS f",
        ),
        (
            "create",
            "CREATE VIEW v2 AS SELECT * FROM sentinel WHERE plp() = 1",
        ),
        (
            "create",
            "CREATE RULE \"_RETURN\" AS ON SELECT TO sentinel DO INSTEAD SELECT 1, pg_read_file('/etc/hostname'), 1",
        ),
        (
            "create",
            "CREATE FOREIGN TABLE ft (a text) SERVER files OPTIONS (program 'id')",
        ),
        (
            "create",
            "CREATE FOREIGN TABLE ft (a text) SERVER files OPTIONS (filename '/etc/passwd')",
        ),
        (
            "create",
            "CREATE POLICY p ON sentinel USING (pg_read_file('/etc/hostname') <> '')",
        ),
        (
            "create",
            "CREATE MATERIALIZED VIEW mv AS SELECT setval('rt_seq', 9)",
        ),
        (
            "alter",
            "ALTER DATABASE postgres SET standard_conforming_strings = off",
        ),
        (
            "alter",
            "ALTER ROLE postgres SET standard_conforming_strings = off",
        ),
        (
            "create",
            "CREATE FUNCTION h() RETURNS int LANGUAGE c AS 'libc.so.6', 'system'",
        ),
    ];
    for (action, sql) in ddl {
        c.err(
            "pg_schema",
            json!({"action": action, "autocommit": true, "sql": sql}),
            "policy_denied",
        )
        .await;
    }
    let views = app
        .scalar_i64("SELECT count(*) FROM pg_class WHERE relname IN ('v', 'v2', 'mv', 'ft')")
        .await;
    assert_eq!(views, 0, "none of the stored code was created");
    assert_eq!(seq_value(&app).await, 100);
    c.ok(
        "pg_schema",
        json!({"action": "create", "autocommit": true,
               "sql": "CREATE VIEW ok_view AS SELECT id, upper(name) AS n FROM sentinel"}),
    )
    .await;
    c.ok(
        "pg_schema",
        json!({"action": "create", "autocommit": true,
               "sql": "CREATE FUNCTION tripled(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 3'"}),
    )
    .await;
    // A function created through ColdQuery is usable at once (the catalog snapshot reloads).
    let r = c.read("SELECT tripled(2)").await;
    assert_eq!(r["rows"][0][0], 6);
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn lexing_cannot_be_changed_and_the_quote_differential_is_closed() {
    let app = spawn_app().await;
    fixture(&app).await;
    // Set from outside, as an attacker with ALTER DATABASE would: the pooled connections'
    // startup option still wins.
    app.exec(&format!(
        "ALTER DATABASE {} SET standard_conforming_strings = off",
        app.db_name
    ))
    .await;
    let c = app.client(Era::Stateless).await;
    let r = c.read("SHOW standard_conforming_strings").await;
    assert_eq!(r["rows"][0][0], "on", "{r}");
    let r = c.read("SELECT '\\'' AS a, pg_backend_pid() AS b --'").await;
    assert_eq!(r["row_count"], 1);
    assert_eq!(
        r["columns"].as_array().unwrap().len(),
        1,
        "one literal, no call: {r}"
    );
    for sql in [
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT set_config('statement_timeout', '0', true)",
    ] {
        c.err(
            "pg_query",
            json!({"action": "read", "sql": sql}),
            "policy_denied",
        )
        .await;
        c.err(
            "pg_query",
            json!({"action": "write", "autocommit": true, "sql": format!("UPDATE sentinel SET name = {}", &sql[7..])}),
            "policy_denied",
        )
        .await;
    }
    c.err(
        "pg_query",
        json!({"action": "write", "autocommit": true,
               "sql": "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"}),
        "policy_denied",
    )
    .await;
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn server_files_and_other_callers_state_are_not_readable() {
    let app = spawn_app().await;
    fixture(&app).await;
    let c = app.client(Era::Stateless).await;
    for sql in [
        "SELECT * FROM pg_prepared_statements",
        "SELECT * FROM pg_catalog.pg_cursors",
        "SELECT * FROM pg_hba_file_rules",
        "SELECT * FROM pg_file_settings",
        "SELECT * FROM pg_ident_file_mappings",
        "SELECT * FROM pg_config",
        "SELECT * FROM pg_authid",
        "SELECT * FROM coldquery.audit_log",
        "SELECT * FROM pg_prepared_statement()",
        "SELECT * FROM pg_config()",
    ] {
        c.err(
            "pg_query",
            json!({"action": "read", "sql": sql}),
            "policy_denied",
        )
        .await;
    }
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_statement_too_deep_to_inspect_says_so() {
    let app = spawn_app().await;
    let c = app.client(Era::Stateless).await;
    let sql = (0..150)
        .map(|i| format!("SELECT {i}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": sql}),
            "limit_exceeded",
        )
        .await;
    assert!(message(&e).contains("nested too deeply"), "{e}");
    c.close().await;
    app.finish().await;
}

use sqlx::Connection;
