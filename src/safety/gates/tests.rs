//! Unit tests of `gates.rs`, in a file of their own so that the module reads as one concern.

use super::*;
use crate::safety::testkit::parsed;

use DdlKind::{Alter, Create, Drop};
use StatementClass::Read;

// -----------------------------------------------------------------------------------
// Read
// -----------------------------------------------------------------------------------

/// Legitimate analytical reads that must be accepted.
pub(crate) const READS_ACCEPTED: &[&str] = &[
    "SELECT 3;",
    "SELECT 1",
    "VALUES (1), (2)",
    "TABLE t",
    "SHOW work_mem",
    "SHOW ALL",
    "EXPLAIN SELECT * FROM t WHERE a = 1",
    "EXPLAIN (FORMAT JSON, VERBOSE, COSTS false) SELECT 1",
    "EXPLAIN (ANALYZE false) SELECT 1",
    "SELECT a, sum(b) OVER (PARTITION BY a ORDER BY c ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), mode() WITHIN GROUP (ORDER BY y) FROM t",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT * FROM r",
    "WITH RECURSIVE tree AS (SELECT id, parent FROM nodes WHERE parent IS NULL UNION ALL SELECT n.id, n.parent FROM nodes n JOIN tree ON n.parent = tree.id) SEARCH DEPTH FIRST BY id SET ord CYCLE id SET is_cycle USING path SELECT * FROM tree",
    "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id ORDER BY created_at DESC LIMIT 3) recent",
    "SELECT data->'a'->>'b', data #>> '{x,y}', data @> '{\"k\":1}' FROM docs WHERE data ? 'k'",
    "SELECT jsonb_path_query(doc, '$.items[*] ? (@.price > 10)') FROM docs",
    "SELECT * FROM generate_series(1, 10) AS g(n)",
    "SELECT d::date FROM generate_series(now() - interval '7 days', now(), interval '1 day') d",
    "SELECT pid, state, query FROM pg_stat_activity WHERE state <> 'idle'",
    "SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC",
    "SELECT DISTINCT ON (customer_id) customer_id, created_at FROM orders ORDER BY customer_id, created_at DESC",
    "SELECT region, product, sum(amount) FROM sales GROUP BY GROUPING SETS ((region), (product), ())",
    "SELECT region, sum(amount) FROM sales GROUP BY ROLLUP (region, product)",
    "SELECT grouping(region), sum(amount) FROM sales GROUP BY CUBE (region)",
    "SELECT count(*) FILTER (WHERE status = 'paid') AS paid, count(*) AS total FROM invoices",
    "SELECT ARRAY[1,2,3] && ARRAY[3,4], 3 = ANY(ARRAY[1,2,3]), array_agg(DISTINCT x ORDER BY x) FROM t",
    "SELECT unnest(tags) FROM posts WHERE tags @> ARRAY['rust']",
    "SELECT upper(name), substring(name FROM 2 FOR 3), trim(both ' ' from name), position('a' IN name), regexp_replace(name, '\\s+', ' ', 'g'), concat_ws('-', a, b), left(name, 3) || '…' FROM t",
    "SELECT format('%s=%L', k, v), split_part(path, '/', 2), string_agg(name, ', ' ORDER BY name) FROM t GROUP BY path, k, v",
    "SELECT * FROM t WHERE name ILIKE '%abc%' AND created_at BETWEEN '2024-01-01' AND now() AND a IS DISTINCT FROM b",
    "SELECT extract(epoch FROM now()), date_trunc('month', created_at), age(now(), created_at), current_date, localtimestamp FROM t",
    "SELECT a FROM t UNION SELECT b FROM u INTERSECT SELECT c FROM v EXCEPT SELECT d FROM w",
    "SELECT * FROM t WHERE (a, b) IN (SELECT x, y FROM u) AND NOT EXISTS (SELECT 1 FROM v WHERE v.id = t.id)",
    "SELECT CASE WHEN a > 0 THEN 'pos' WHEN a < 0 THEN 'neg' ELSE 'zero' END, COALESCE(b, 0), NULLIF(c, ''), GREATEST(a, b), LEAST(a, b) FROM t",
    "SELECT lag(v) OVER w, lead(v, 2) OVER w, ntile(4) OVER w FROM t WINDOW w AS (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '1 day' PRECEDING AND CURRENT ROW)",
    "SELECT JSON_OBJECT('a' : 1, 'b' : x RETURNING jsonb), JSON_ARRAY(1, 2, x), JSON_ARRAYAGG(x ORDER BY x), JSON_OBJECTAGG(k : v) FROM t",
    "SELECT JSON_QUERY(doc, '$.a' WITH WRAPPER), JSON_VALUE(doc, '$.b' RETURNING int DEFAULT 0 ON EMPTY), JSON_EXISTS(doc, '$.c') FROM docs",
    "SELECT * FROM JSON_TABLE('[{\"a\":1}]'::jsonb, '$[*]' COLUMNS (a int PATH '$.a', NESTED PATH '$.b[*]' COLUMNS (b text PATH '$'))) AS jt",
    "SELECT doc IS JSON OBJECT, JSON_SERIALIZE(doc RETURNING text), JSON('{}'), JSON_SCALAR(1), JSON_ARRAY(SELECT x FROM t) FROM docs",
    "SELECT xmlelement(name foo, xmlattributes(1 AS bar), 'x'), xmlforest(a, b), xmlserialize(content x AS text) FROM t",
    "SELECT * FROM XMLTABLE('/rows/row' PASSING CAST('<rows><row a=\"1\"/></rows>' AS xml) COLUMNS a int PATH '@a', n FOR ORDINALITY)",
    "SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (42)",
    "SELECT * FROM ROWS FROM (generate_series(1,3), unnest(ARRAY['a','b'])) WITH ORDINALITY AS r(n, s, i)",
    "SELECT * FROM json_to_recordset('[{\"a\":1}]') AS x(a int, b text COLLATE \"C\")",
    "SELECT a[1:2], (row(1,2)).f1, t.* FROM t",
    "SELECT $1::int + $2",
    "SELECT pg_sleep(0), currval('s'), txid_current(), pg_current_xact_id(), lo_get(1)",
    "SELECT now() AT TIME ZONE 'UTC', 'a' COLLATE \"C\" < 'b'",
    "SELECT * FROM t ORDER BY a NULLS LAST, b DESC OFFSET 10 ROWS FETCH FIRST 5 ROWS WITH TIES",
    "SELECT x FROM t WHERE x > ALL (SELECT y FROM u) AND x = SOME (SELECT z FROM v)",
    "WITH m AS MATERIALIZED (SELECT * FROM t) SELECT * FROM m",
    "SELECT 1 -- ; DROP TABLE t",
    "/* leading */ SELECT 1 /* ; */",
    "SELECT $$; DROP TABLE t$$",
    "SELECT E'it\\'s; DROP TABLE t'",
    "SELECT U&'d\\0061t\\+000061'",
    "SELECT \"select\", \"drop table t;\" FROM t",
    "SELECT 'pg_read_file(''/etc/passwd'')' AS just_text",
    "SELECT proname FROM pg_proc WHERE proname = 'pg_terminate_backend'",
    "SELECT has_table_privilege('t', 'SELECT'), current_setting('work_mem'), pg_backend_pid(), version()",
    "SELECT * FROM pg_locks l JOIN pg_stat_activity a USING (pid)",
    "SELECT EXISTS (SELECT 1 FROM t) AS any_rows, NOT true, 1 IS NOT NULL, true IS UNKNOWN",
    "SELECT ROW(1, 'a') = ROW(1, 'a'), (1, 2) < (1, 3)",
    "SELECT interval '1 hour' * 3, 10 % 3, 2 ^ 10, |/ 16, @ -5, ~ 5, 1 << 3",
    "SELECT current_user, session_user, CURRENT_SCHEMA, CURRENT_CATALOG",
    "SELECT CAST(x AS numeric(10,2)), x::text[], '{1,2}'::int[] FROM t",
    "SELECT overlay('Txxxxas' placing 'hom' from 2 for 4), collation for ('a'), normalize('a'), 'a' IS NFC NORMALIZED",
    "SELECT * FROM t1 NATURAL JOIN t2 FULL OUTER JOIN t3 USING (id) AS j CROSS JOIN t4",
];

#[test]
fn legitimate_reads_are_accepted() {
    assert!(READS_ACCEPTED.len() >= 30);
    for sql in READS_ACCEPTED {
        let p = parsed(sql);
        assert_eq!(p.class(), Read, "{sql:?}");
        if let Err(r) = check_read(&p) {
            panic!("{sql:?} should be accepted by read: {}", r.reason);
        }
        let is_select = matches!(p.stmt, NodeEnum::SelectStmt(_));
        assert_eq!(p.is_plain_select(), is_select, "{sql:?}");
        assert!(!p.has_returning(), "{sql:?}");
        let write = check_write(&p).expect_err(sql);
        assert_eq!(write.use_instead, Some("pg_query read"), "{sql:?}");
        if is_select {
            assert_eq!(check_explain(&p), Ok(ExplainTarget::Read), "{sql:?}");
            // The caller wraps plain selects; the wrapped text must still be one read.
            let wrapped = format!("SELECT * FROM ({}) AS q LIMIT 5", p.sql());
            let w = parsed(&wrapped);
            assert!(check_read(&w).is_ok(), "{wrapped:?}");
        }
    }
}

/// (sql, substring of the read refusal, use_instead)
pub(crate) const READ_REFUSED: &[(&str, &str, Option<&str>)] = &[
    (
        "INSERT INTO t VALUES (1)",
        "pg_query read runs only read-only statements; this is an INSERT. Use pg_query write with autocommit: true or a session_id from pg_tx begin.",
        Some("pg_query write"),
    ),
    (
        "UPDATE t SET a = 1",
        "this is an UPDATE",
        Some("pg_query write"),
    ),
    ("DELETE FROM t", "this is a DELETE", Some("pg_query write")),
    (
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
        "this is a MERGE",
        Some("pg_query write"),
    ),
    ("CALL p()", "this is a CALL", Some("pg_query write")),
    ("DO $$BEGIN END$$", "this is a DO", Some("pg_query write")),
    (
        "LOCK TABLE t",
        "this is a LOCK TABLE",
        Some("pg_query write"),
    ),
    (
        "SELECT * FROM t FOR UPDATE",
        "FOR UPDATE/FOR SHARE",
        Some("pg_query write"),
    ),
    (
        "SELECT * FROM (SELECT * FROM t FOR SHARE) s",
        "FOR UPDATE/FOR SHARE",
        Some("pg_query write"),
    ),
    (
        "SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)",
        "FOR UPDATE/FOR SHARE",
        Some("pg_query write"),
    ),
    (
        "WITH c AS (SELECT * FROM t FOR NO KEY UPDATE) SELECT * FROM c",
        "FOR UPDATE/FOR SHARE",
        Some("pg_query write"),
    ),
    (
        "SELECT (SELECT a FROM t LIMIT 1 FOR KEY SHARE)",
        "FOR UPDATE/FOR SHARE",
        Some("pg_query write"),
    ),
    (
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "read refused: data-modifying WITH clause (DELETE) found; use pg_query write",
        Some("pg_query write"),
    ),
    (
        "WITH a AS (SELECT * FROM (WITH b AS (DELETE FROM t RETURNING *) SELECT * FROM b) s) SELECT * FROM a",
        "data-modifying WITH clause (DELETE)",
        Some("pg_query write"),
    ),
    (
        "WITH a AS (WITH b AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM b) SELECT * FROM a",
        "data-modifying WITH clause (INSERT)",
        Some("pg_query write"),
    ),
    (
        "SELECT (WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM u LIMIT 1)",
        "data-modifying WITH clause (UPDATE)",
        Some("pg_query write"),
    ),
    (
        "SELECT * FROM t WHERE EXISTS (WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *) SELECT 1 FROM m)",
        "data-modifying WITH clause (MERGE)",
        Some("pg_query write"),
    ),
    (
        "SELECT * FROM t, LATERAL (WITH d AS (DELETE FROM u RETURNING *) SELECT * FROM d) x",
        "data-modifying WITH clause (DELETE)",
        Some("pg_query write"),
    ),
    (
        "VALUES ((WITH d AS (DELETE FROM u RETURNING 1) SELECT * FROM d))",
        "data-modifying WITH clause (DELETE)",
        Some("pg_query write"),
    ),
    (
        "EXPLAIN WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "use pg_query explain",
        Some("pg_query explain"),
    ),
    (
        "EXPLAIN ANALYZE SELECT 1",
        "use pg_query explain",
        Some("pg_query explain"),
    ),
    (
        "EXPLAIN (ANALYZE, BUFFERS) SELECT 1",
        "use pg_query explain",
        Some("pg_query explain"),
    ),
    (
        "EXPLAIN INSERT INTO t VALUES (1)",
        "use pg_query explain",
        Some("pg_query explain"),
    ),
    (
        "SELECT * INTO new_t FROM t",
        "SELECT … INTO creates a new table",
        Some("pg_schema create"),
    ),
    (
        "CREATE TABLE t (a int)",
        "Use pg_schema create.",
        Some("pg_schema create"),
    ),
    (
        "ALTER TABLE t ADD COLUMN b int",
        "Use pg_schema alter.",
        Some("pg_schema alter"),
    ),
    (
        "DROP TABLE t",
        "this is a DROP TABLE (DDL). Use pg_schema drop.",
        Some("pg_schema drop"),
    ),
    ("TRUNCATE t", "Use pg_schema drop.", Some("pg_schema drop")),
    (
        "GRANT SELECT ON t TO r",
        "Use pg_schema alter.",
        Some("pg_schema alter"),
    ),
    ("VACUUM t", "Use pg_admin.", Some("pg_admin")),
    ("ANALYZE t", "Use pg_admin.", Some("pg_admin")),
    ("BEGIN", "use the pg_tx tool", Some("pg_tx")),
    ("COMMIT", "use the pg_tx tool", Some("pg_tx")),
    (
        "SET TRANSACTION READ WRITE",
        "use the pg_tx tool",
        Some("pg_tx"),
    ),
    ("SET ROLE postgres", "changes the role", None),
    ("COPY t TO PROGRAM 'sh'", "shell command", None),
    ("COPY t TO '/tmp/x'", "file system", None),
    ("COPY t TO STDOUT", "cannot do", None),
    ("LOAD 'x'", "shared library", None),
    ("DISCARD ALL", "DISCARD", None),
    ("LISTEN c", "notification", None),
    ("EXECUTE q(1)", "placeholders", None),
    ("DECLARE c CURSOR FOR SELECT 1", "cursor", None),
    ("CHECKPOINT", "CHECKPOINT", None),
    ("CREATE DATABASE d", "database", None),
    ("DROP TABLESPACE ts", "tablespace", None),
    ("ALTER SYSTEM SET work_mem = '1GB'", "server-wide", None),
    ("RESET ALL", "RESET ALL", None),
    ("SET work_mem = '1GB'", "leak", None),
];

#[test]
fn reads_refused() {
    for (sql, needle, tool) in READ_REFUSED {
        let p = parsed(sql);
        let refusal = check_read(&p).expect_err(sql);
        assert!(
            refusal.reason.contains(needle),
            "{sql:?}: {:?} should contain {needle:?}",
            refusal.reason
        );
        assert_eq!(refusal.use_instead, *tool, "{sql:?}");
        assert_eq!(refusal.to_string(), refusal.reason);
    }
}

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
