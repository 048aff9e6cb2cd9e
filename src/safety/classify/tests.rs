//! Unit tests of `classify.rs`, in a file of their own so that the module reads as one concern.

use super::*;
use crate::safety::testkit::parsed;

use DdlKind::{Alter, Create, Drop};
use StatementClass::{Admin, Ddl, Explain, Read, TxControl, Write};

// -----------------------------------------------------------------------------------
// Classification
// -----------------------------------------------------------------------------------

const F: fn(Forbidden) -> StatementClass = StatementClass::Forbidden;

pub(crate) fn class_cases() -> Vec<(&'static str, &'static str, StatementClass)> {
    use Forbidden as Fb;
    vec![
        ("SELECT 1", "SELECT", Read),
        ("VALUES (1)", "SELECT", Read),
        ("TABLE t", "SELECT", Read),
        ("SHOW work_mem", "SHOW", Read),
        ("SHOW ALL", "SHOW", Read),
        ("EXPLAIN SELECT 1", "EXPLAIN", Read),
        ("EXPLAIN (ANALYZE false) SELECT 1", "EXPLAIN", Read),
        ("EXPLAIN (ANALYZE off, VERBOSE) SELECT 1", "EXPLAIN", Read),
        ("EXPLAIN (ANALYZE 0) SELECT 1", "EXPLAIN", Read),
        ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN", Explain),
        ("EXPLAIN ANALYSE SELECT 1", "EXPLAIN", Explain),
        ("EXPLAIN (ANALYZE) SELECT 1", "EXPLAIN", Explain),
        ("EXPLAIN (ANALYZE true) SELECT 1", "EXPLAIN", Explain),
        (
            "EXPLAIN (ANALYZE false, ANALYZE) SELECT 1",
            "EXPLAIN",
            Explain,
        ),
        ("EXPLAIN INSERT INTO t VALUES (1)", "EXPLAIN", Explain),
        ("EXPLAIN SELECT * FROM t FOR UPDATE", "EXPLAIN", Explain),
        ("EXPLAIN SELECT 1 INTO x", "EXPLAIN", Explain),
        ("INSERT INTO t VALUES (1)", "INSERT", Write),
        ("UPDATE t SET a = 1", "UPDATE", Write),
        ("DELETE FROM t", "DELETE", Write),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            "MERGE",
            Write,
        ),
        ("CALL p(1)", "CALL", Write),
        ("DO $$BEGIN END$$", "DO", Write),
        ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK TABLE", Write),
        ("SELECT * FROM t FOR UPDATE", "SELECT", Write),
        (
            "SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED",
            "SELECT",
            Write,
        ),
        ("SELECT * FROM t FOR KEY SHARE", "SELECT", Write),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "SELECT",
            Write,
        ),
        ("SELECT * INTO new_t FROM t", "SELECT INTO", Ddl(Create)),
        (
            "SELECT 1 AS a INTO x UNION SELECT 2",
            "SELECT INTO",
            Ddl(Create),
        ),
        ("CREATE TABLE t (a int)", "CREATE TABLE", Ddl(Create)),
        (
            "CREATE TABLE t2 AS SELECT * FROM t",
            "CREATE TABLE AS",
            Ddl(Create),
        ),
        (
            "CREATE MATERIALIZED VIEW mv AS SELECT 1",
            "CREATE MATERIALIZED VIEW",
            Ddl(Create),
        ),
        ("CREATE INDEX ON t (a)", "CREATE INDEX", Ddl(Create)),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW", Ddl(Create)),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE FUNCTION",
            Ddl(Create),
        ),
        (
            "CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'",
            "CREATE PROCEDURE",
            Ddl(Create),
        ),
        ("CREATE SCHEMA s", "CREATE SCHEMA", Ddl(Create)),
        ("CREATE SEQUENCE s", "CREATE SEQUENCE", Ddl(Create)),
        ("CREATE TYPE mood AS ENUM ('a')", "CREATE TYPE", Ddl(Create)),
        (
            "CREATE TYPE pair AS (a int, b int)",
            "CREATE TYPE",
            Ddl(Create),
        ),
        ("CREATE DOMAIN d AS int", "CREATE DOMAIN", Ddl(Create)),
        ("CREATE EXTENSION pg_trgm", "CREATE EXTENSION", Ddl(Create)),
        (
            "CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "CREATE TRIGGER",
            Ddl(Create),
        ),
        (
            "CREATE POLICY p ON t USING (true)",
            "CREATE POLICY",
            Ddl(Create),
        ),
        (
            "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING",
            "CREATE RULE",
            Ddl(Create),
        ),
        (
            "CREATE AGGREGATE a (int) (SFUNC = int4pl, STYPE = int)",
            "CREATE AGGREGATE",
            Ddl(Create),
        ),
        (
            "CREATE ROLE r LOGIN PASSWORD 'x'",
            "CREATE ROLE",
            Ddl(Create),
        ),
        ("CREATE USER u", "CREATE USER", Ddl(Create)),
        ("ALTER TABLE t ADD COLUMN b int", "ALTER TABLE", Ddl(Alter)),
        (
            "ALTER TABLE t RENAME COLUMN a TO b",
            "ALTER TABLE",
            Ddl(Alter),
        ),
        ("ALTER TABLE t RENAME TO t2", "ALTER TABLE", Ddl(Alter)),
        ("ALTER INDEX i RENAME TO j", "ALTER INDEX", Ddl(Alter)),
        ("ALTER VIEW v OWNER TO r", "ALTER VIEW", Ddl(Alter)),
        (
            "ALTER FUNCTION f() SET SCHEMA s",
            "ALTER FUNCTION",
            Ddl(Alter),
        ),
        ("ALTER ROLE r PASSWORD 'x'", "ALTER ROLE", Ddl(Alter)),
        ("COMMENT ON TABLE t IS 'x'", "COMMENT", Ddl(Alter)),
        ("GRANT SELECT ON t TO r", "GRANT", Ddl(Alter)),
        ("REVOKE SELECT ON t FROM r", "REVOKE", Ddl(Alter)),
        ("GRANT r1 TO r2", "GRANT", Ddl(Alter)),
        (
            "REFRESH MATERIALIZED VIEW mv",
            "REFRESH MATERIALIZED VIEW",
            Ddl(Alter),
        ),
        ("DROP TABLE t", "DROP TABLE", Ddl(Drop)),
        ("DROP INDEX i", "DROP INDEX", Ddl(Drop)),
        ("DROP VIEW IF EXISTS v", "DROP VIEW", Ddl(Drop)),
        ("DROP FUNCTION f()", "DROP FUNCTION", Ddl(Drop)),
        ("DROP SCHEMA s CASCADE", "DROP SCHEMA", Ddl(Drop)),
        ("DROP ROLE r", "DROP ROLE", Ddl(Drop)),
        ("DROP OWNED BY r", "DROP OWNED", Ddl(Drop)),
        ("TRUNCATE t", "TRUNCATE TABLE", Ddl(Drop)),
        ("VACUUM t", "VACUUM", Admin),
        ("VACUUM (ANALYZE) t", "VACUUM", Admin),
        ("ANALYZE t", "ANALYZE", Admin),
        ("REINDEX TABLE t", "REINDEX", Admin),
        ("CLUSTER t USING i", "CLUSTER", Admin),
        ("BEGIN", "BEGIN", TxControl),
        (
            "START TRANSACTION READ WRITE",
            "START TRANSACTION",
            TxControl,
        ),
        ("COMMIT", "COMMIT", TxControl),
        ("END", "COMMIT", TxControl),
        ("ROLLBACK", "ROLLBACK", TxControl),
        ("ABORT", "ROLLBACK", TxControl),
        ("SAVEPOINT s", "SAVEPOINT", TxControl),
        ("RELEASE SAVEPOINT s", "RELEASE", TxControl),
        (
            "ROLLBACK TO SAVEPOINT s",
            "ROLLBACK TO SAVEPOINT",
            TxControl,
        ),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION", TxControl),
        ("COMMIT PREPARED 'x'", "COMMIT PREPARED", TxControl),
        ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED", TxControl),
        (
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET TRANSACTION",
            TxControl,
        ),
        ("SET TRANSACTION READ WRITE", "SET TRANSACTION", TxControl),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SET SESSION CHARACTERISTICS",
            TxControl,
        ),
        ("SET transaction_read_only = off", "SET", TxControl),
        ("SET ROLE postgres", "SET", F(Fb::RoleSwitch)),
        (
            "SET SESSION AUTHORIZATION postgres",
            "SET",
            F(Fb::RoleSwitch),
        ),
        ("RESET ROLE", "RESET", F(Fb::RoleSwitch)),
        ("RESET SESSION AUTHORIZATION", "RESET", F(Fb::RoleSwitch)),
        ("RESET ALL", "RESET ALL", F(Fb::ResetAll)),
        ("SET work_mem = '1GB'", "SET", F(Fb::SessionSetting)),
        (
            "SET LOCAL statement_timeout = 0",
            "SET",
            F(Fb::SessionSetting),
        ),
        (
            "SET default_transaction_read_only = off",
            "SET",
            F(Fb::SessionSetting),
        ),
        ("RESET statement_timeout", "RESET", F(Fb::SessionSetting)),
        (
            "SET CONSTRAINTS ALL DEFERRED",
            "SET CONSTRAINTS",
            F(Fb::SessionSetting),
        ),
        (
            "ALTER SYSTEM SET work_mem = '1GB'",
            "ALTER SYSTEM",
            F(Fb::AlterSystem),
        ),
        ("COPY t TO PROGRAM 'cat'", "COPY", F(Fb::CopyProgram)),
        ("COPY t FROM PROGRAM 'curl x'", "COPY", F(Fb::CopyProgram)),
        ("COPY t TO '/tmp/x'", "COPY", F(Fb::CopyServerFile)),
        ("COPY t FROM '/etc/passwd'", "COPY", F(Fb::CopyServerFile)),
        ("COPY (SELECT 1) TO STDOUT", "COPY", F(Fb::CopyStdio)),
        ("COPY t FROM STDIN", "COPY", F(Fb::CopyStdio)),
        ("LOAD 'auto_explain'", "LOAD", F(Fb::Load)),
        ("DISCARD ALL", "DISCARD", F(Fb::Discard)),
        ("LISTEN c", "LISTEN", F(Fb::ListenNotify)),
        ("UNLISTEN *", "UNLISTEN", F(Fb::ListenNotify)),
        ("NOTIFY c, 'x'", "NOTIFY", F(Fb::ListenNotify)),
        ("PREPARE q AS SELECT 1", "PREPARE", F(Fb::PreparedStatement)),
        ("EXECUTE q", "EXECUTE", F(Fb::PreparedStatement)),
        ("DEALLOCATE ALL", "DEALLOCATE", F(Fb::PreparedStatement)),
        (
            "DECLARE c CURSOR FOR SELECT 1",
            "DECLARE CURSOR",
            F(Fb::Cursor),
        ),
        ("FETCH 10 FROM c", "FETCH", F(Fb::Cursor)),
        ("MOVE c", "MOVE", F(Fb::Cursor)),
        ("CLOSE c", "CLOSE CURSOR", F(Fb::Cursor)),
        ("CHECKPOINT", "CHECKPOINT", F(Fb::Checkpoint)),
        ("CREATE DATABASE d", "CREATE DATABASE", F(Fb::Database)),
        (
            "ALTER DATABASE d SET work_mem = '1MB'",
            "ALTER DATABASE",
            F(Fb::Database),
        ),
        (
            "ALTER DATABASE d RENAME TO e",
            "ALTER DATABASE",
            F(Fb::Database),
        ),
        (
            "ALTER DATABASE d OWNER TO r",
            "ALTER DATABASE",
            F(Fb::Database),
        ),
        ("DROP DATABASE d", "DROP DATABASE", F(Fb::Database)),
        (
            "CREATE TABLESPACE ts LOCATION '/x'",
            "CREATE TABLESPACE",
            F(Fb::Tablespace),
        ),
        (
            "ALTER TABLESPACE ts SET (seq_page_cost = 1)",
            "ALTER TABLESPACE",
            F(Fb::Tablespace),
        ),
        (
            "ALTER TABLESPACE ts RENAME TO u",
            "ALTER TABLESPACE",
            F(Fb::Tablespace),
        ),
        (
            "ALTER TABLESPACE ts OWNER TO r",
            "ALTER TABLESPACE",
            F(Fb::Tablespace),
        ),
        ("DROP TABLESPACE ts", "DROP TABLESPACE", F(Fb::Tablespace)),
        (
            "ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b",
            "ALTER TABLE",
            F(Fb::Tablespace),
        ),
    ]
}

#[test]
fn classification() {
    for (sql, command, class) in class_cases() {
        let p = parsed(sql);
        assert_eq!((p.command(), p.class()), (command, class), "{sql:?}");
    }
}

/// No statement of a class that is not Read/Write/Admin/DDL gets past any action.
#[test]
fn tx_control_and_forbidden_are_refused_everywhere() {
    for (sql, _, class) in class_cases() {
        if !matches!(class, TxControl | StatementClass::Forbidden(_)) {
            continue;
        }
        let p = parsed(sql);
        let expected_tool = (class == TxControl).then_some("pg_tx");
        let results = [
            check_read(&p),
            check_write(&p),
            check_explain(&p).map(|_| ()),
            check_ddl(&p, Create),
            check_ddl(&p, Alter),
            check_ddl(&p, Drop),
            check_admin(&p),
        ];
        for r in results {
            let refusal = r.expect_err(sql);
            assert_eq!(refusal.use_instead, expected_tool, "{sql:?}");
            if class == TxControl {
                assert!(refusal.reason.contains("use the pg_tx tool"), "{sql:?}");
            }
        }
    }
}
