//! The policy cases of `gates.rs` for writes, `explain`, DDL and maintenance (reads are in
//! `tests.rs`).

use super::super::*;
use crate::safety::testkit::parsed;

use DdlKind::{Alter, Create, Drop};

// -----------------------------------------------------------------------------------
// Write
// -----------------------------------------------------------------------------------

/// (sql, None = accepted / Some((substring, use_instead)) = refused)
pub(crate) type WriteCase = (&'static str, Option<(&'static str, Option<&'static str>)>);
pub(crate) const WRITE_CASES: &[WriteCase] = &[
    ("INSERT INTO t (a) VALUES ($1) RETURNING id", None),
    ("INSERT INTO t DEFAULT VALUES", None),
    ("INSERT INTO t (a) OVERRIDING SYSTEM VALUE VALUES (1)", None),
    (
        "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a WHERE t.a <> EXCLUDED.a",
        None,
    ),
    (
        "INSERT INTO t VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING",
        None,
    ),
    (
        "WITH s AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM s",
        None,
    ),
    (
        "INSERT INTO t SELECT * FROM u WHERE id IN (SELECT id FROM v)",
        None,
    ),
    ("INSERT INTO t VALUES (nextval('s'))", None),
    ("UPDATE t SET a = a + 1 WHERE id = $1", None),
    (
        "UPDATE t SET (a, b) = (SELECT x, y FROM u WHERE u.id = t.id)",
        None,
    ),
    (
        "UPDATE t SET a = DEFAULT FROM u WHERE u.id = t.id RETURNING t.*",
        None,
    ),
    ("UPDATE t SET a = 1 RETURNING OLD.a, NEW.a", None),
    ("UPDATE t SET a = setval('s', 1)", None),
    ("DELETE FROM t WHERE id = 1 RETURNING *", None),
    ("DELETE FROM t USING u WHERE u.id = t.id", None),
    (
        "WITH old AS (SELECT id FROM t WHERE a < 0) DELETE FROM t WHERE id IN (SELECT id FROM old)",
        None,
    ),
    (
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.del THEN DELETE WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
        None,
    ),
    (
        "MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE RETURNING merge_action(), t.*",
        None,
    ),
    ("CALL p(1, 'x')", None),
    ("CALL s.p(a => 1)", None),
    ("DO $$BEGIN PERFORM 1; END$$", None),
    ("DO LANGUAGE plpgsql $$BEGIN NULL; END$$", None),
    ("SELECT * FROM t WHERE id = 1 FOR UPDATE", None),
    ("SELECT * FROM t FOR SHARE OF t NOWAIT", None),
    (
        "WITH d AS (DELETE FROM t WHERE a < 0 RETURNING *) SELECT count(*) FROM d",
        None,
    ),
    ("LOCK TABLE t IN SHARE MODE", None),
    ("INSERT INTO t VALUES (lo_from_bytea(0, 'x'))", None),
    (
        "SELECT 1",
        Some((
            "this is a SELECT, which only reads. Use pg_query read.",
            Some("pg_query read"),
        )),
    ),
    (
        "SHOW work_mem",
        Some(("Use pg_query read.", Some("pg_query read"))),
    ),
    (
        "EXPLAIN SELECT 1",
        Some(("EXPLAIN without ANALYZE", Some("pg_query read"))),
    ),
    (
        "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
        Some(("use pg_query explain", Some("pg_query explain"))),
    ),
    (
        "SELECT * INTO x FROM t",
        Some((
            "SELECT … INTO creates a new table",
            Some("pg_schema create"),
        )),
    ),
    (
        "CREATE TABLE t (a int)",
        Some(("Use pg_schema create.", Some("pg_schema create"))),
    ),
    (
        "CREATE ROLE r",
        Some(("Use pg_schema create.", Some("pg_schema create"))),
    ),
    (
        "DROP TABLE t",
        Some(("Use pg_schema drop.", Some("pg_schema drop"))),
    ),
    (
        "TRUNCATE t",
        Some(("Use pg_schema drop.", Some("pg_schema drop"))),
    ),
    (
        "ALTER TABLE t ADD b int",
        Some(("Use pg_schema alter.", Some("pg_schema alter"))),
    ),
    (
        "REVOKE ALL ON t FROM r",
        Some(("Use pg_schema alter.", Some("pg_schema alter"))),
    ),
    ("VACUUM FULL t", Some(("Use pg_admin.", Some("pg_admin")))),
    ("REINDEX INDEX i", Some(("Use pg_admin.", Some("pg_admin")))),
    ("BEGIN", Some(("use the pg_tx tool", Some("pg_tx")))),
    (
        "ROLLBACK TO SAVEPOINT s",
        Some(("use the pg_tx tool", Some("pg_tx"))),
    ),
    (
        "INSERT INTO t SELECT pg_read_file('/etc/passwd')",
        Some(("function pg_read_file is not allowed: ", None)),
    ),
    (
        "DELETE FROM t WHERE pg_terminate_backend(pid)",
        Some(("function pg_terminate_backend is not allowed", None)),
    ),
    (
        "CALL dblink_exec('x')",
        Some(("function dblink_exec is not allowed", None)),
    ),
    (
        "UPDATE t SET a = set_config('role', 'x', true)",
        Some(("function set_config is not allowed", None)),
    ),
    (
        "INSERT INTO t SELECT query_to_xml('x', true, true, '')",
        Some(("function query_to_xml is not allowed", None)),
    ),
    (
        "WITH d AS (DELETE FROM t RETURNING *) SELECT pg_ls_dir('.') FROM d",
        Some(("function pg_ls_dir is not allowed", None)),
    ),
    ("COPY t FROM STDIN", Some(("streaming", None))),
    (
        "PREPARE q AS INSERT INTO t VALUES ($1)",
        Some(("placeholders", None)),
    ),
    ("SET ROLE admin", Some(("changes the role", None))),
];

#[test]
fn write_cases() {
    for (sql, expected) in WRITE_CASES {
        let p = parsed(sql);
        match (check_write(&p), expected) {
            (Ok(()), None) => {}
            (Err(r), Some((needle, tool))) => {
                assert!(r.reason.contains(needle), "{sql:?}: {:?}", r.reason);
                assert_eq!(r.use_instead, *tool, "{sql:?}");
            }
            (got, _) => panic!("{sql:?}: expected {expected:?}, got {got:?}"),
        }
    }
}

// -----------------------------------------------------------------------------------
// Explain
// -----------------------------------------------------------------------------------

pub(crate) type ExplainCase = (&'static str, Result<ExplainTarget, &'static str>);
pub(crate) const EXPLAIN_CASES: &[ExplainCase] = &[
    ("SELECT * FROM t WHERE a = 1", Ok(ExplainTarget::Read)),
    (
        "WITH x AS (SELECT 1) SELECT * FROM x",
        Ok(ExplainTarget::Read),
    ),
    ("VALUES (1)", Ok(ExplainTarget::Read)),
    ("TABLE t", Ok(ExplainTarget::Read)),
    ("INSERT INTO t VALUES (1)", Ok(ExplainTarget::Write)),
    ("UPDATE t SET a = 1", Ok(ExplainTarget::Write)),
    ("DELETE FROM t RETURNING *", Ok(ExplainTarget::Write)),
    (
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
        Ok(ExplainTarget::Write),
    ),
    ("SELECT * FROM t FOR UPDATE", Ok(ExplainTarget::Write)),
    (
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        Ok(ExplainTarget::Write),
    ),
    (
        "INSERT INTO t VALUES (nextval('s'))",
        Ok(ExplainTarget::Write),
    ),
    (
        "EXPLAIN SELECT 1",
        Err("send the statement without EXPLAIN"),
    ),
    (
        "EXPLAIN ANALYZE DELETE FROM t",
        Err("send the statement without EXPLAIN"),
    ),
    ("SHOW work_mem", Err("a SHOW cannot be explained")),
    ("CALL p()", Err("a CALL cannot be explained")),
    ("DO $$BEGIN END$$", Err("a DO cannot be explained")),
    ("LOCK TABLE t", Err("a LOCK TABLE cannot be explained")),
    ("CREATE TABLE t (a int)", Err("Use pg_schema create.")),
    ("SELECT 1 INTO x", Err("SELECT … INTO")),
    ("BEGIN", Err("use the pg_tx tool")),
    ("VACUUM", Err("Use pg_admin.")),
    (
        "SELECT pg_read_file('x')",
        Err("function pg_read_file is not allowed in reads"),
    ),
    (
        "SELECT nextval('s')",
        Err("function nextval is not allowed in reads"),
    ),
    (
        "INSERT INTO t SELECT pg_ls_dir('.')",
        Err("function pg_ls_dir is not allowed"),
    ),
    ("COPY t TO STDOUT", Err("streaming")),
];

#[test]
fn explain_cases() {
    for (sql, expected) in EXPLAIN_CASES {
        let got = check_explain(&parsed(sql));
        match (&got, expected) {
            (Ok(target), Ok(want)) => assert_eq!(target, want, "{sql:?}"),
            (Err(r), Err(needle)) => {
                assert!(r.reason.contains(needle), "{sql:?}: {:?}", r.reason)
            }
            _ => panic!("{sql:?}: expected {expected:?}, got {got:?}"),
        }
    }
}

// -----------------------------------------------------------------------------------
// DDL and admin
// -----------------------------------------------------------------------------------

pub(crate) const DDL_CASES: &[(&str, DdlKind, Result<(), &str>)] = &[
    ("CREATE TABLE t (a int)", Create, Ok(())),
    (
        "CREATE TABLE t (a int)",
        Drop,
        Err("this is a CREATE TABLE, which is a create statement; use pg_schema create"),
    ),
    ("CREATE INDEX CONCURRENTLY i ON t (a)", Create, Ok(())),
    (
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        Create,
        Ok(()),
    ),
    (
        "CREATE OR REPLACE VIEW v AS SELECT * FROM t",
        Create,
        Ok(()),
    ),
    ("CREATE VIEW v AS SELECT nextval('s')", Create, Ok(())),
    (
        "CREATE VIEW v AS SELECT pg_read_file('x')",
        Create,
        Err("function pg_read_file is not allowed"),
    ),
    ("CREATE TABLE n AS SELECT * FROM t", Create, Ok(())),
    (
        "CREATE TABLE n AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        Create,
        Err("data-modifying statement (DELETE)"),
    ),
    ("SELECT * INTO n FROM t", Create, Ok(())),
    (
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * INTO n FROM d",
        Create,
        Err("data-modifying statement (DELETE)"),
    ),
    ("CREATE ROLE r PASSWORD 'x'", Create, Ok(())),
    ("ALTER TABLE t ADD COLUMN b int", Alter, Ok(())),
    (
        "ALTER TABLE t ADD COLUMN b int",
        Create,
        Err("use pg_schema alter"),
    ),
    ("COMMENT ON TABLE t IS 'x'", Alter, Ok(())),
    ("GRANT SELECT ON t TO r", Alter, Ok(())),
    ("REFRESH MATERIALIZED VIEW mv", Alter, Ok(())),
    ("DROP TABLE t", Drop, Ok(())),
    ("DROP TABLE t", Create, Err("use pg_schema drop")),
    ("TRUNCATE t", Drop, Ok(())),
    ("TRUNCATE t", Alter, Err("use pg_schema drop")),
    ("DROP ROLE r", Drop, Ok(())),
    ("SELECT 1", Create, Err("Use pg_query read.")),
    (
        "INSERT INTO t VALUES (1)",
        Create,
        Err("Use pg_query write"),
    ),
    ("VACUUM t", Alter, Err("Use pg_admin.")),
    (
        "CREATE DATABASE d",
        Create,
        Err("databases is not accepted"),
    ),
    (
        "CREATE TABLESPACE ts LOCATION '/x'",
        Create,
        Err("tablespaces"),
    ),
    ("BEGIN", Create, Err("use the pg_tx tool")),
];

#[test]
fn ddl_cases() {
    for (sql, kind, expected) in DDL_CASES {
        let got = check_ddl(&parsed(sql), *kind);
        match (&got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(r), Err(needle)) => {
                assert!(r.reason.contains(needle), "{sql:?}: {:?}", r.reason)
            }
            _ => panic!("{sql:?} as {kind:?}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn admin_cases() {
    for sql in [
        "VACUUM",
        "VACUUM (VERBOSE, ANALYZE) t",
        "ANALYZE t (a)",
        "REINDEX TABLE CONCURRENTLY t",
        "CLUSTER t",
    ] {
        assert_eq!(check_admin(&parsed(sql)), Ok(()), "{sql:?}");
    }
    for sql in ["SELECT 1", "DROP TABLE t", "REFRESH MATERIALIZED VIEW mv"] {
        assert!(check_admin(&parsed(sql)).is_err(), "{sql:?}");
    }
}
