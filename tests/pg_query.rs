//! pg_query through real MCP clients of both protocol eras against a real PostgreSQL:
//! type fidelity, default-deny, the read guard, explain, transaction, caps, params, errors.

mod common;

use common::{ERAS, Era, TestApp, spawn_app, spawn_app_with, text_of};
use serde_json::{Value, json};

/// Column name, SQL type, SQL literal, expected `columns[].type`, expected JSON value.
fn type_cases() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
)> {
    vec![
        ("c_int2", "int2", "-32768", "int2", json!(-32768)),
        ("c_int4", "int4", "2147483647", "int4", json!(2147483647)),
        (
            "c_int8_big",
            "int8",
            "9007199254740993",
            "int8",
            json!("9007199254740993"),
        ),
        (
            "c_int8_edge",
            "int8",
            "9007199254740992",
            "int8",
            json!(9007199254740992i64),
        ),
        ("c_int8_neg", "int8", "-42", "int8", json!(-42)),
        (
            "c_numeric",
            "numeric",
            "'123456789012345678901234567890.123'",
            "numeric",
            json!("123456789012345678901234567890.123"),
        ),
        (
            "c_numeric_scale",
            "numeric(10,2)",
            "'1.5'",
            "numeric",
            json!("1.50"),
        ),
        ("c_float8", "float8", "1.5", "float8", json!(1.5)),
        ("c_float8_nan", "float8", "'NaN'", "float8", json!("NaN")),
        (
            "c_float4_inf",
            "float4",
            "'-Infinity'",
            "float4",
            json!("-Infinity"),
        ),
        ("c_float4", "float4", "0.1", "float4", json!(0.1)),
        (
            "c_text",
            "text",
            "'héllo \"world\"'",
            "text",
            json!("héllo \"world\""),
        ),
        ("c_varchar", "varchar(10)", "'v'", "varchar", json!("v")),
        ("c_char", "char(4)", "'ab'", "bpchar", json!("ab  ")),
        ("c_bool", "bool", "true", "bool", json!(true)),
        (
            "c_bytea",
            "bytea",
            "'\\x0102ff'",
            "bytea",
            json!("\\x0102ff"),
        ),
        (
            "c_uuid",
            "uuid",
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
            "uuid",
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ),
        (
            "c_json",
            "json",
            "'{\"a\": [1, 2]}'",
            "json",
            json!({"a": [1, 2]}),
        ),
        (
            "c_jsonb",
            "jsonb",
            "'{\"b\": {\"c\": null}}'",
            "jsonb",
            json!({"b": {"c": null}}),
        ),
        (
            "c_date",
            "date",
            "'2026-01-01'",
            "date",
            json!("2026-01-01"),
        ),
        (
            "c_time",
            "time",
            "'04:46:21.53'",
            "time",
            json!("04:46:21.53"),
        ),
        (
            "c_timetz",
            "timetz",
            "'04:46:21.53+02'",
            "timetz",
            json!("04:46:21.53+02:00"),
        ),
        (
            "c_timestamp",
            "timestamp",
            "'2026-01-01 04:46:21.53'",
            "timestamp",
            json!("2026-01-01T04:46:21.53"),
        ),
        (
            "c_timestamptz",
            "timestamptz",
            "'2026-01-01 06:46:21.53+02'",
            "timestamptz",
            json!("2026-01-01T04:46:21.53+00:00"),
        ),
        (
            "c_interval",
            "interval",
            "'1 day 02:03:04'",
            "interval",
            json!("1 day 02:03:04"),
        ),
        (
            "c_interval_neg",
            "interval",
            "'-1 days +02:00:00'",
            "interval",
            json!("-1 days +02:00:00"),
        ),
        (
            "c_inet",
            "inet",
            "'192.168.0.1'",
            "inet",
            json!("192.168.0.1"),
        ),
        (
            "c_cidr",
            "cidr",
            "'10.0.0.0/8'",
            "cidr",
            json!("10.0.0.0/8"),
        ),
        (
            "c_macaddr",
            "macaddr",
            "'08:00:2b:01:02:03'",
            "macaddr",
            json!("08:00:2b:01:02:03"),
        ),
        ("c_money", "money", "12.34", "money", json!("$12.34")),
        ("c_enum", "mood", "'happy'", "mood", json!("happy")),
        ("c_domain", "posint", "5", "int4", json!(5)),
        (
            "c_composite",
            "pair",
            "ROW(1, 'abc')",
            "pair",
            json!("(1,abc)"),
        ),
        (
            "c_int4range",
            "int4range",
            "'[1,10)'",
            "int4range",
            json!("[1,10)"),
        ),
        (
            "c_tstzrange",
            "tstzrange",
            "'[2026-01-01 00:00+00, 2026-02-01 00:00+00)'",
            "tstzrange",
            json!("[\"2026-01-01 00:00:00+00\",\"2026-02-01 00:00:00+00\")"),
        ),
        (
            "c_int_2d",
            "int4[]",
            "'{{1,2},{3,NULL}}'",
            "int4[]",
            json!([[1, 2], [3, null]]),
        ),
        (
            "c_text_arr",
            "text[]",
            "ARRAY['a', NULL, 'c']",
            "text[]",
            json!(["a", null, "c"]),
        ),
        (
            "c_pair_arr",
            "pair[]",
            "ARRAY[ROW(1, 'x')::pair]",
            "pair[]",
            json!(["(1,x)"]),
        ),
        ("c_xml", "xml", "'<a>x</a>'", "xml", json!("<a>x</a>")),
        (
            "c_tsvector",
            "tsvector",
            "'a fat cat'",
            "tsvector",
            json!("'a' 'cat' 'fat'"),
        ),
        ("c_point", "point", "'(1.5,2)'", "point", json!("(1.5,2)")),
        ("c_oid", "oid", "1234", "oid", json!(1234)),
        ("c_bit", "bit(4)", "B'0101'", "bit", json!("0101")),
        ("c_null", "int4", "NULL", "int4", json!(null)),
    ]
}

async fn create_type_table(app: &TestApp) {
    let cases = type_cases();
    let cols: Vec<String> = cases.iter().map(|(n, t, ..)| format!("{n} {t}")).collect();
    let vals: Vec<&str> = cases.iter().map(|(_, _, v, ..)| *v).collect();
    app.exec(&format!(
        "ALTER DATABASE {db} SET lc_monetary = 'C';
         CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
         CREATE TYPE pair AS (a int4, b text);
         CREATE TABLE typed ({});
         INSERT INTO typed VALUES ({});",
        cols.join(", "),
        vals.join(", "),
        db = app.db_name
    ))
    .await;
}

#[tokio::test]
async fn every_listed_type_round_trips_to_the_exact_json() {
    let app = spawn_app().await;
    create_type_table(&app).await;
    let cases = type_cases();
    assert!(cases.len() >= 30);
    for era in ERAS {
        let c = app.client(era).await;
        let r = c.read("SELECT * FROM typed").await;
        assert_eq!(r["row_count"], 1);
        assert_eq!(r["command"], "SELECT");
        assert_eq!(r["rows_affected"], Value::Null);
        let row = &r["rows"][0];
        for (i, (name, _, _, ty, expected)) in cases.iter().enumerate() {
            assert_eq!(r["columns"][i]["name"], *name, "{era:?}");
            assert_eq!(r["columns"][i]["type"], *ty, "{era:?} type of {name}");
            assert_eq!(row[i], *expected, "{era:?} value of {name}");
        }
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn writes_are_default_deny_and_autocommit_and_dry_run_behave() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await;
    for (n, era) in ERAS.into_iter().enumerate() {
        let c = app.client(era).await;
        let id = n as i64 * 10;
        let e = c
            .err(
                "pg_query",
                json!({"action": "write", "sql": "INSERT INTO t VALUES ($1, 'x')", "params": [id]}),
                "policy_denied",
            )
            .await;
        assert!(
            e["message"].as_str().unwrap().contains("autocommit: true"),
            "{e}"
        );
        assert_eq!(
            app.scalar_i64("SELECT count(*) FROM t").await,
            n as i64,
            "refused write changed nothing"
        );

        let dry = c
            .ok("pg_query", json!({"action": "write", "sql": "INSERT INTO t VALUES ($1, 'x'), ($2, 'y')", "params": [id, id + 1], "dry_run": true, "autocommit": true}))
            .await;
        assert_eq!(dry["rows_affected"], 2);
        assert_eq!(dry["dry_run"], true);
        assert_eq!(dry["committed"], false);
        assert_eq!(
            app.scalar_i64("SELECT count(*) FROM t").await,
            n as i64,
            "dry run changed nothing"
        );

        let done = c
            .ok("pg_query", json!({"action": "write", "sql": "INSERT INTO t VALUES ($1, $2) RETURNING id, v", "params": [id, "ok"], "autocommit": true}))
            .await;
        assert_eq!(done["rows_affected"], 1);
        assert_eq!(done["command"], "INSERT");
        assert_eq!(done["rows"], json!([[id, "ok"]]));
        assert_eq!(done["committed"], true);
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT count(*) FROM t WHERE id = {id} AND v = 'ok'"
            ))
            .await,
            1
        );
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn read_refuses_every_write_shape_and_nothing_changes() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE sentinel (id int); INSERT INTO sentinel VALUES (1), (2);")
        .await;
    let attempts = [
        "INSERT INTO sentinel VALUES (3)",
        "UPDATE sentinel SET id = 9",
        "DELETE FROM sentinel",
        "DROP TABLE sentinel",
        "CREATE TABLE other (x int)",
        "TRUNCATE sentinel",
        "COMMIT; DROP TABLE sentinel",
        "SELECT 1; DROP TABLE sentinel",
        "SELECT 1; SELECT 2",
        "WITH d AS (DELETE FROM sentinel RETURNING *) SELECT * FROM d",
        "SELECT * FROM (WITH d AS (DELETE FROM sentinel RETURNING *) SELECT * FROM d) s",
        "SELECT * FROM sentinel FOR UPDATE",
        "SELECT id INTO copy_of FROM sentinel",
        "SELECT pg_terminate_backend(pg_backend_pid())",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
    ];
    for era in ERAS {
        let c = app.client(era).await;
        for sql in attempts {
            let e = c
                .err(
                    "pg_query",
                    json!({"action": "read", "sql": sql}),
                    "policy_denied",
                )
                .await;
            assert!(!e["message"].as_str().unwrap().is_empty());
        }
        // Multi-statement strings are refused as such, with the count.
        let e = c
            .err(
                "pg_query",
                json!({"action": "read", "sql": "SELECT 1; SELECT 2"}),
                "policy_denied",
            )
            .await;
        assert!(e["message"].as_str().unwrap().contains('2'), "{e}");
        c.close().await;
    }
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM sentinel WHERE id IN (1, 2)")
            .await,
        2
    );
    assert_eq!(app.scalar_i64("SELECT count(*) FROM sentinel").await, 2);
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM pg_class WHERE relname IN ('other', 'copy_of')")
            .await,
        0
    );
    app.finish().await;
}

#[tokio::test]
async fn read_accepts_one_statement_with_a_trailing_semicolon_and_binds_params() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int, name text); INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 50) g;").await;
    for era in ERAS {
        let c = app.client(era).await;
        let r = c.read("SELECT 3;").await;
        assert_eq!(r["rows"], json!([[3]]));
        let r = c
            .ok("pg_query", json!({"action": "read", "sql": "SELECT id, name FROM t WHERE id = $1 OR name = $2 ORDER BY id", "params": [7, "n9"]}))
            .await;
        assert_eq!(r["rows"], json!([[7, "n7"], [9, "n9"]]));
        // A value that would be injection if pasted is just a string when bound.
        let r = c
            .ok("pg_query", json!({"action": "read", "sql": "SELECT count(*) FROM t WHERE name = $1", "params": ["x' OR '1'='1"]}))
            .await;
        assert_eq!(r["rows"], json!([[0]]));
        let e = c
            .err(
                "pg_query",
                json!({"action": "read", "sql": "SELECT $1::int + $2::int", "params": [1]}),
                "invalid_input",
            )
            .await;
        assert!(
            e["message"].as_str().unwrap().contains("2 parameter"),
            "{e}"
        );
        let e = c
            .err("pg_query", json!({"action": "read", "sql": "SELECT * FROM t WHERE id = $1", "params": ["abc"]}), "invalid_input")
            .await;
        assert!(e["message"].as_str().unwrap().contains("params[0]"), "{e}");
        let r = c
            .ok(
                "pg_query",
                json!({"action": "read", "sql": "SHOW TimeZone"}),
            )
            .await;
        assert_eq!(r["rows"], json!([["UTC"]]));
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn explain_returns_a_json_plan_and_analyze_of_an_update_changes_nothing() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g; ANALYZE t;").await;
    for era in ERAS {
        let c = app.client(era).await;
        let r = c
            .ok(
                "pg_query",
                json!({"action": "explain", "sql": "SELECT * FROM t WHERE id = $1", "params": [5]}),
            )
            .await;
        assert_eq!(r["analyzed"], false);
        assert!(r["plan"][0]["Plan"]["Node Type"].is_string(), "{r}");
        assert!(r["summary"]["total_cost"].is_number(), "{r}");
        assert!(!r["summary"]["top_nodes"].as_array().unwrap().is_empty());

        let r = c
            .ok(
                "pg_query",
                json!({"action": "explain", "sql": "UPDATE t SET v = v + 1", "analyze": true}),
            )
            .await;
        assert_eq!(r["analyzed"], true);
        assert_eq!(r["rolled_back"], true);
        assert_eq!(
            r["summary"]["actual_rows"], 0,
            "Update nodes report 0 rows: {r}"
        );
        assert!(r["summary"]["actual_total_ms"].is_number(), "{r}");
        assert_eq!(
            app.scalar_i64("SELECT sum(v) FROM t").await,
            0,
            "EXPLAIN ANALYZE of UPDATE left data unchanged"
        );
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn transaction_is_all_or_nothing_and_names_the_failing_operation() {
    let app = spawn_app().await;
    app.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    for (n, era) in ERAS.into_iter().enumerate() {
        let c = app.client(era).await;
        let base = n as i64 * 100;
        let e = c
            .err(
                "pg_query",
                json!({"action": "transaction", "autocommit": true, "operations": [
                    {"sql": "INSERT INTO t VALUES ($1)", "params": [base + 1]},
                    {"sql": "INSERT INTO t VALUES ($1)", "params": [base + 2]},
                    {"sql": "INSERT INTO t VALUES ($1)", "params": [base + 1]}
                ]}),
                "database_error",
            )
            .await;
        assert_eq!(e["operation_index"], 2, "{e}");
        assert_eq!(e["sqlstate"], "23505");
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT count(*) FROM t WHERE id > {base} AND id < {base} + 100"
            ))
            .await,
            0
        );

        let e = c
            .err("pg_query", json!({"action": "transaction", "operations": [{"sql": "INSERT INTO t VALUES (1)"}]}), "policy_denied")
            .await;
        assert!(e["message"].as_str().unwrap().contains("autocommit"));

        let r = c
            .ok(
                "pg_query",
                json!({"action": "transaction", "autocommit": true, "operations": [
                    {"sql": "INSERT INTO t VALUES ($1)", "params": [base + 1]},
                    {"sql": "INSERT INTO t VALUES ($1) RETURNING id", "params": [base + 2]},
                    {"sql": "SELECT count(*) FROM t WHERE id > $1", "params": [base]}
                ]}),
            )
            .await;
        assert_eq!(r["committed"], true);
        assert_eq!(r["results"][1]["rows"], json!([[base + 2]]));
        assert_eq!(r["results"][2]["rows"], json!([[2]]));
        assert_eq!(
            app.scalar_i64(&format!(
                "SELECT count(*) FROM t WHERE id > {base} AND id < {base} + 100"
            ))
            .await,
            2
        );

        // Reads only: no autocommit needed.
        let r = c
            .ok("pg_query", json!({"action": "transaction", "operations": [{"sql": "SELECT 1"}, {"sql": "SELECT 2"}]}))
            .await;
        assert_eq!(r["results"][1]["rows"], json!([[2]]));
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_ten_million_row_select_returns_the_cap_and_says_truncated() {
    let app = spawn_app().await;
    for era in ERAS {
        let c = app.client(era).await;
        let started = std::time::Instant::now();
        let r = c.read("SELECT generate_series(1, 10000000) AS n").await;
        assert_eq!(r["row_count"], 1000);
        assert_eq!(r["truncated"], true);
        assert_eq!(r["truncated_by"], "max_rows");
        assert_eq!(r["rows"][999], json!([1000]));
        assert!(r["hint"].as_str().unwrap().contains("1000 rows"));
        // Not a benchmark: a guard that PostgreSQL stopped early instead of producing 10M rows.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );

        let r = c
            .ok("pg_query", json!({"action": "read", "sql": "SELECT n FROM generate_series(1, 10000000) n", "max_rows": 5}))
            .await;
        assert_eq!(r["rows"], json!([[1], [2], [3], [4], [5]]));
        assert_eq!(r["truncated"], true);
        // The byte cap holds too: 300 rows of 2 KiB exceed 256 KiB.
        let r = c
            .read("SELECT repeat('x', 2048) FROM generate_series(1, 300)")
            .await;
        assert_eq!(r["truncated"], true);
        assert_eq!(r["truncated_by"], "max_result_bytes");
        let n = r["row_count"].as_u64().unwrap();
        assert!(n > 100 && n < 130, "{n}");
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn errors_carry_sqlstate_position_and_a_category() {
    let app = spawn_app().await;
    for era in ERAS {
        let c = app.client(era).await;
        let e = c
            .err(
                "pg_query",
                json!({"action": "read", "sql": "SELECT nope FROM pg_class"}),
                "database_error",
            )
            .await;
        assert_eq!(e["sqlstate"], "42703");
        assert_eq!(
            e["position"], 8,
            "position points into the caller's SQL: {e}"
        );
        let e = c
            .err(
                "pg_query",
                json!({"action": "read", "sql": "SELEC 1"}),
                "invalid_input",
            )
            .await;
        assert!(e["message"].as_str().unwrap().contains("syntax"), "{e}");
        c.err(
            "pg_query",
            json!({"action": "drop_everything"}),
            "invalid_input",
        )
        .await;
        c.err("pg_query", json!({"action": "read"}), "invalid_input")
            .await;
        let e = c
            .err(
                "pg_query",
                json!({"action": "read", "sql": "SELECT 1", "autocomit": true}),
                "invalid_input",
            )
            .await;
        assert!(e["message"].as_str().unwrap().contains("autocomit"));
        // The server keeps serving after every one of these.
        assert_eq!(c.read("SELECT 1").await["rows"], json!([[1]]));
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn statement_timeout_is_enforced_server_side() {
    let app = spawn_app_with(|c| c.statement_timeout = std::time::Duration::from_millis(300)).await;
    let c = app.client(Era::Stateless).await;
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT pg_sleep(3)"}),
            "timeout",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("statement timeout"),
        "{e}"
    );
    c.close().await;
    app.finish().await;
}

#[tokio::test]
async fn unknown_tools_are_protocol_errors_and_tools_list_is_well_formed() {
    let app = spawn_app().await;
    for era in ERAS {
        let c = app.client(era).await;
        let tools = c.inner().list_all_tools().await.expect("tools/list");
        let q = tools
            .iter()
            .find(|t| t.name == "pg_query")
            .expect("pg_query listed");
        assert!(q.output_schema.is_some());
        assert_eq!(q.input_schema["required"], json!(["action"]));
        let ann = q.annotations.as_ref().expect("annotations");
        assert_eq!(ann.destructive_hint, Some(true));
        let args = serde_json::Map::new();
        let err = c
            .inner()
            .call_tool(rmcp::model::CallToolRequestParams::new("pg_nothing").with_arguments(args))
            .await
            .expect_err("unknown tool is a protocol error");
        assert!(
            err.to_string().contains("-32602") || err.to_string().contains("pg_nothing"),
            "{err}"
        );
        let text = text_of(
            &c.call_raw(
                "pg_query",
                json!({"action": "read", "sql": "SELECT 1 AS one"}),
            )
            .await,
        );
        assert!(text.contains("\"one\""), "{text}");
        c.close().await;
    }
    app.finish().await;
}

#[tokio::test]
async fn a_cached_statement_gone_stale_after_ddl_is_retried_transparently() {
    // One pooled connection, so the second read meets the statement the first one cached.
    let app = spawn_app_with(|c| c.pool_size = 1).await;
    app.exec("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        .await;
    let c = app.client(Era::Stateless).await;
    assert_eq!(c.read("SELECT * FROM t").await["rows"], json!([[1]]));
    app.exec("ALTER TABLE t ADD COLUMN v text DEFAULT 'x'")
        .await;
    let r = c.read("SELECT * FROM t").await;
    assert_eq!(r["rows"], json!([[1, "x"]]));
    assert_eq!(r["columns"][1]["name"], "v");
    let w = c
        .ok("pg_query", json!({"action": "write", "sql": "UPDATE t SET v = 'y' WHERE id = 1 RETURNING *", "autocommit": true}))
        .await;
    app.exec("ALTER TABLE t ADD COLUMN w int DEFAULT 7").await;
    let w2 = c
        .ok("pg_query", json!({"action": "write", "sql": "UPDATE t SET v = 'y' WHERE id = 1 RETURNING *", "autocommit": true}))
        .await;
    assert_eq!(w["rows"], json!([[1, "y"]]));
    assert_eq!(w2["rows"], json!([[1, "y", 7]]));
    c.close().await;
    app.finish().await;
}
