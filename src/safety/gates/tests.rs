//! Unit tests of `gates.rs`, in a file of their own so that the module reads as one concern.

use super::*;
use crate::safety::testkit::parsed;

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
        let is_select = matches!(*p.stmt, NodeEnum::SelectStmt(_));
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

mod writes_and_ddl;
pub(crate) use writes_and_ddl::{DDL_CASES, EXPLAIN_CASES, WRITE_CASES};
