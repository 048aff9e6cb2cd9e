//! The scan as it was before [`super::stream`]: the tree serialized to a JSON value first,
//! then visited with a stack. Kept for the tests only, to show that the streaming scan finds
//! the same things in the same order on every statement of the test corpora.

use pg_query::NodeEnum;
use serde_json::Value;

use super::{Found, Shape, collect, inspect, key};

/// What the by-value scan finds in `stmt`.
pub(super) fn scan(stmt: &NodeEnum) -> Found {
    let tree = serde_json::to_value(stmt).expect("a parse tree serializes");
    let mut entries = Vec::new();
    let mut do_blocks = 0;
    let mut stack = vec![&tree];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if map.contains_key("DoStmt") {
                    do_blocks += 1;
                }
                let mut keys = 0;
                let mut values = Vec::new();
                for (name, value) in map {
                    let bit = key::bit(name);
                    keys |= bit;
                    if bit & key::CAPTURED != 0 {
                        values.push((bit, value.clone()));
                    }
                }
                let shape = Shape {
                    keys,
                    len: map.len(),
                    values: &values,
                };
                inspect(&shape, &mut entries);
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    collect(entries, do_blocks)
}

#[test]
fn the_streaming_scan_finds_what_the_by_value_scan_found_in_the_same_order() {
    // Statements with many findings of each kind, so that their order is put to the test.
    let extra = [
        "SELECT f(a.b.c, (x).y, (z).w), g(h(1)) + i(2) FROM s.t a JOIN u ON a.x = u.y \
         WHERE a.z = ANY (SELECT k() FROM v) AND a.q IN (1, 2) ORDER BY 1 USING <, 2 USING >",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = x SET work_mem = '1MB' \
         AS $$ SELECT pg_read_file('a'), lo_import('b') $$",
        "CREATE TABLE t (a int DEFAULT f1() CHECK (f2(a) > f3(a)), b int GENERATED ALWAYS AS \
         (f4(a)) STORED) WITH (fillfactor = 70, autovacuum_enabled = off)",
        "DO $$ BEGIN PERFORM 1; END $$",
        "ALTER ROLE r SET a.b = 1",
        "WITH x AS (DELETE FROM d RETURNING *), y AS (UPDATE e SET c = f5() RETURNING *) \
         SELECT * FROM x, y, LATERAL f6(x.a) WHERE x.b IS DISTINCT FROM y.b",
    ];
    let mut entries = crate::safety::testkit::corpus_entries();
    entries.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut statements = 0;
    for sql in &entries {
        let Ok(parsed) = pg_query::parse(sql, 0) else {
            continue;
        };
        for raw in &parsed.protobuf.stmts {
            let Some(stmt) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
                continue;
            };
            assert_eq!(super::scan(stmt), scan(stmt), "{sql}");
            statements += 1;
        }
    }
    assert!(
        statements > 300,
        "only {statements} statements were compared"
    );
}
