//! Reads with their integer constants bound as parameters (`src/safety/shapes.rs`): each text
//! here runs once as the server binds it and once as written (a trailing comment keeps a text
//! out of the shape cache, so it runs verbatim), and the two answers must be the same:
//! columns, types, rows, or the error with its position in the caller's text. The round
//! trips are counted from outside: a bound read of a shape already prepared is one round
//! trip, the text as written two (Parse/Describe, then Bind/Execute), and a text that is
//! not bound runs as written.

mod common;

use common::Era;
use common::relay::spawn_app_counted;
use serde_json::{Value, json};

/// Two texts of one shape (the second with other numbers, equal ones where the first has
/// equal ones), and whether the server binds their integers.
const CORPUS: &[(&str, &str, bool)] = &[
    (
        "SELECT * FROM t WHERE a = 3",
        "SELECT * FROM t WHERE a = 5",
        true,
    ),
    (
        "SELECT 1 AS one, 2 + 3 AS five, -4 AS neg, - 6 AS spaced",
        "SELECT 7 AS one, 8 + 9 AS five, -1 AS neg, - 2 AS spaced",
        true,
    ),
    // A select-list constant of its own stays in the text (its column is `?column?`).
    (
        "SELECT 1, 2 AS two, (3), 4::text FROM t WHERE a = 1",
        "SELECT 1, 5 AS two, (3), 6::text FROM t WHERE a = 2",
        true,
    ),
    // Column positions stay in the text; the LIMIT is bound.
    (
        "SELECT a, b FROM t ORDER BY 2 DESC, 1 LIMIT 3",
        "SELECT a, b FROM t ORDER BY 2 DESC, 1 LIMIT 4",
        true,
    ),
    (
        "SELECT a, b FROM t ORDER BY (2) DESC, -1 LIMIT 3",
        "SELECT a, b FROM t ORDER BY (2) DESC, -1 LIMIT 4",
        true,
    ),
    (
        "SELECT a % 3, count(*) FROM t GROUP BY 1 ORDER BY 1",
        "SELECT a % 4, count(*) FROM t GROUP BY 1 ORDER BY 1",
        true,
    ),
    (
        "SELECT a % 2, count(*) FROM t GROUP BY ROLLUP (1) ORDER BY 1",
        "SELECT a % 3, count(*) FROM t GROUP BY ROLLUP (1) ORDER BY 1",
        true,
    ),
    (
        "SELECT DISTINCT ON (1) a % 2, b FROM t ORDER BY 1, b",
        "SELECT DISTINCT ON (1) a % 3, b FROM t ORDER BY 1, b",
        true,
    ),
    // Expressions PostgreSQL matches against each other: equal constants share a parameter.
    (
        "SELECT a + 1 AS x, count(*) FROM t GROUP BY a + 1 ORDER BY a + 1",
        "SELECT a + 2 AS x, count(*) FROM t GROUP BY a + 2 ORDER BY a + 2",
        true,
    ),
    (
        "SELECT DISTINCT a % 3 FROM t ORDER BY a % 3",
        "SELECT DISTINCT a % 4 FROM t ORDER BY a % 4",
        true,
    ),
    (
        "SELECT a % 2, GROUPING(a % 2), count(*) FROM t GROUP BY ROLLUP (a % 2) ORDER BY 1, 2",
        "SELECT a % 3, GROUPING(a % 3), count(*) FROM t GROUP BY ROLLUP (a % 3) ORDER BY 1, 2",
        true,
    ),
    (
        "SELECT array_agg(DISTINCT a % 3 ORDER BY a % 3) FROM t",
        "SELECT array_agg(DISTINCT a % 4 ORDER BY a % 4) FROM t",
        true,
    ),
    (
        "SELECT a % 3 AS k, count(*) FROM t GROUP BY a % 3 HAVING count(*) > 1 ORDER BY 1",
        "SELECT a % 4 AS k, count(*) FROM t GROUP BY a % 4 HAVING count(*) > 0 ORDER BY 1",
        true,
    ),
    // Type modifiers stay in the text.
    (
        "SELECT s::varchar(2), n::numeric(6, 1) FROM t WHERE a < 4 ORDER BY a",
        "SELECT s::varchar(2), n::numeric(6, 1) FROM t WHERE a < 6 ORDER BY a",
        true,
    ),
    (
        "SELECT a FROM t ORDER BY a FETCH FIRST 2 ROWS ONLY",
        "SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS ONLY",
        true,
    ),
    (
        "SELECT a FROM t ORDER BY a OFFSET 1 ROWS FETCH NEXT 2 ROWS WITH TIES",
        "SELECT a FROM t ORDER BY a OFFSET 3 ROWS FETCH NEXT 4 ROWS WITH TIES",
        true,
    ),
    // Where the grammar wants a constant itself, the text runs as written.
    (
        "SELECT now()::timestamp(0) IS NOT NULL, a FROM t WHERE a = 1",
        "SELECT now()::timestamp(0) IS NOT NULL, a FROM t WHERE a = 2",
        true,
    ),
    (
        "SELECT localtimestamp(0) IS NOT NULL, 1.5::float(5), a FROM t WHERE a = 1",
        "SELECT localtimestamp(0) IS NOT NULL, 1.5::float(5), a FROM t WHERE a = 2",
        false,
    ),
    (
        "SELECT a FROM t ORDER BY a FETCH FIRST +2 ROWS ONLY",
        "SELECT a FROM t ORDER BY a FETCH FIRST +3 ROWS ONLY",
        false,
    ),
    (
        "SELECT a FROM t ORDER BY a FETCH FIRST -1 ROWS ONLY",
        "SELECT a FROM t ORDER BY a FETCH FIRST -2 ROWS ONLY",
        false,
    ),
    (
        "SELECT a FROM t WHERE a > -2 AND a < 3 ORDER BY a",
        "SELECT a FROM t WHERE a > -1 AND a < 4 ORDER BY a",
        true,
    ),
    (
        "SELECT arr[1], arr[2:3], arr[:2] FROM t WHERE a = 4",
        "SELECT arr[2], arr[1:3], arr[:1] FROM t WHERE a = 5",
        true,
    ),
    (
        "SELECT j -> 0, j ->> 1, j #> '{}' FROM t WHERE a = 4",
        "SELECT j -> 1, j ->> 0, j #> '{}' FROM t WHERE a = 3",
        false,
    ),
    (
        "SELECT j -> 0, j ->> 1 FROM t WHERE a = 4",
        "SELECT j -> 1, j ->> 0 FROM t WHERE a = 3",
        true,
    ),
    (
        "SELECT x FROM generate_series(1, 5) x ORDER BY x DESC LIMIT 2",
        "SELECT x FROM generate_series(2, 6) x ORDER BY x DESC LIMIT 3",
        true,
    ),
    (
        "SELECT a, sum(a) OVER (ORDER BY a ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
        "SELECT a, sum(a) OVER (ORDER BY a ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM t",
        true,
    ),
    (
        "SELECT a FROM t WHERE a IN (1, 3, 5) ORDER BY a",
        "SELECT a FROM t WHERE a IN (2, 4, 6) ORDER BY a",
        true,
    ),
    (
        "SELECT CASE WHEN a > 2 THEN 10 ELSE 20 END FROM t ORDER BY a",
        "SELECT CASE WHEN a > 3 THEN 11 ELSE 21 END FROM t ORDER BY a",
        true,
    ),
    (
        "SELECT a, b FROM t WHERE a = 2 AND b = 2",
        "SELECT a, b FROM t WHERE a = 3 AND b = 3",
        true,
    ),
    (
        "SELECT s FROM t WHERE a = 1 UNION ALL SELECT s FROM t WHERE a = 2 ORDER BY 1",
        "SELECT s FROM t WHERE a = 3 UNION ALL SELECT s FROM t WHERE a = 4 ORDER BY 1",
        true,
    ),
    (
        "SELECT a FROM t t1 WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.a = t1.a + 1) ORDER BY a",
        "SELECT a FROM t t1 WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.a = t1.a + 2) ORDER BY a",
        true,
    ),
    (
        "SELECT * FROM t WHERE a BETWEEN 2 AND 4 ORDER BY a OFFSET 1",
        "SELECT * FROM t WHERE a BETWEEN 3 AND 5 ORDER BY a OFFSET 2",
        true,
    ),
    (
        "SELECT power(2, 10)::int, 7 / 2, 7 % 3, 2 ^ 3, 0007",
        "SELECT power(3, 11)::int, 8 / 3, 8 % 4, 3 ^ 4, 0007",
        true,
    ),
    (
        "SELECT array_agg(a ORDER BY a DESC) FILTER (WHERE a < 4) FROM t",
        "SELECT array_agg(a ORDER BY a DESC) FILTER (WHERE a < 5) FROM t",
        true,
    ),
    (
        "SELECT ARRAY[1, 2], ROW(3, 4), (5, 6) = (5, 6), 7::text, 8::bigint, 9::smallint",
        "SELECT ARRAY[2, 3], ROW(4, 5), (6, 7) = (6, 7), 8::text, 9::bigint, 1::smallint",
        true,
    ),
    (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 2 FROM r WHERE n < 9) SELECT n FROM r",
        true,
    ),
    // Errors: the same SQLSTATE, message and position (mapped back past each bound value).
    (
        "SELECT a FROM t WHERE a = 1 AND nosuch = 22",
        "SELECT a FROM t WHERE a = 123456 AND nosuch = 3",
        true,
    ),
    ("SELECT 2147483 * 1001", "SELECT 2147484 * 1002", true),
    (
        "SELECT 5 / 0 FROM t WHERE a = 1",
        "SELECT 6 / 0 FROM t WHERE a = 2",
        true,
    ),
    (
        "SELECT a + 1 AS x, count(*) FROM t GROUP BY a + 2",
        "SELECT a + 3 AS x, count(*) FROM t GROUP BY a + 4",
        true,
    ),
    (
        "SELECT a FROM t ORDER BY 3",
        "SELECT a FROM t ORDER BY 4",
        true,
    ),
];

/// The parts of an answer that must agree: columns and rows, or the error.
fn answer(r: &rmcp::model::CallToolResult) -> Value {
    let s = r.structured_content.clone().expect("structuredContent");
    if r.is_error == Some(true) {
        let e = &s["error"];
        json!({"error": [e["category"], e["sqlstate"], e["message"], e["position"]]})
    } else {
        json!({"columns": s["columns"], "rows": s["rows"], "truncated": s["truncated"]})
    }
}

#[tokio::test]
async fn a_read_with_bound_integers_answers_as_its_text_does_in_one_round_trip() {
    // One connection, so that what one call prepared the next call finds.
    let (app, trips) = spawn_app_counted(|c| c.pool_size = 1).await;
    app.exec(
        "CREATE TABLE t (a int PRIMARY KEY, b int, s text, n numeric, j jsonb, arr int[]); \
         INSERT INTO t SELECT g, g % 3, 'row ' || g, g * 1.25, jsonb_build_array(g, g * 2), \
         ARRAY[g, g + 1, g + 2] FROM generate_series(1, 8) g",
    )
    .await;
    let c = app.client(Era::Stateless).await;
    let read = |sql: &str| json!({"action": "read", "sql": sql});
    let mut bound_count = 0;
    let mut errors = 0;
    for &(first, second, bound) in CORPUS {
        // The first text prepares the shape's bound statement (and is compared).
        let got = answer(&c.call_raw("pg_query", read(first)).await);
        let want = answer(
            &c.call_raw("pg_query", read(&format!("{first} -- as written")))
                .await,
        );
        assert_eq!(got, want, "{first}: bound and as written differ");
        let failed = got.get("error").is_some();
        // The second finds it prepared: counted.
        let before = trips.settled().await;
        let got = answer(&c.call_raw("pg_query", read(second)).await);
        let middle = trips.settled().await;
        let want = answer(
            &c.call_raw("pg_query", read(&format!("{second} -- as written")))
                .await,
        );
        let after = trips.settled().await;
        assert_eq!(got, want, "{second}: bound and as written differ");
        if failed || got.get("error").is_some() {
            // A failed statement empties the connection's cache: nothing to count.
            errors += 1;
            continue;
        }
        let (bound_trips, written_trips) = (middle - before, after - middle);
        if bound {
            // As written, two or more (a text-cast wrapper is one more prepare).
            assert!(
                bound_trips == 1 && written_trips >= 2,
                "{second}: a bound read of a prepared shape is one round trip, as written two; \
                 counted {bound_trips} and {written_trips}"
            );
            bound_count += 1;
        } else {
            // A new text (Parse/Describe, Bind/Execute); as written, the same text again.
            assert_eq!(
                (bound_trips, written_trips),
                (2, 1),
                "{second}: runs as written"
            );
        }
    }
    assert!(
        bound_count >= 25,
        "only {bound_count} reads counted as bound"
    );
    assert!(errors >= 6, "only {errors} failing texts compared");

    // A read with parameters of its own runs as it was sent.
    let r = c
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT $1::int + 1 AS x", "params": [41]}),
        )
        .await;
    assert_eq!(r["rows"], json!([[42]]), "{r}");

    // In a pg_tx session too (under its savepoint).
    let id = c.begin().await;
    for sql in CORPUS.iter().flat_map(|(a, b, _)| [*a, *b]).take(12) {
        let in_session = json!({"action": "read", "sql": sql, "session_id": id});
        let got = answer(&c.call_raw("pg_query", in_session).await);
        let want = answer(
            &c.call_raw("pg_query", read(&format!("{sql} -- as written")))
                .await,
        );
        assert_eq!(got, want, "{sql}: in a session and as written differ");
    }
    c.ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;
    c.close().await;
    app.finish().await;
}
