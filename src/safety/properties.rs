//! Property-style tests for the whole safety pipeline (parse → walk → classify → gates →
//! redact): an independent oracle built from the tree's Debug dump, data-modifying statements
//! hidden at every depth, and mutated and random inputs that must never panic. The seeds are
//! the table-driven cases of the other modules' tests.

use super::classify::tests::class_cases;
use super::classify::{
    DdlKind, Parsed, check_admin, check_ddl, check_explain, check_read, check_write, parse_one,
    redact,
};
use super::denylist::denied_function;
use super::denylist::tests::{CALL_SITES, DENIED_CALLS};
use super::gates::tests::{DDL_CASES, EXPLAIN_CASES, READ_REFUSED, READS_ACCEPTED, WRITE_CASES};
use super::parse::tests::PARSE_CASES;
use super::redact::tests::REDACT_CASES;

use DdlKind::{Alter, Create, Drop};

/// What an independent look at the tree (its Debug dump) says, without the walker.
struct Oracle {
    has_dml: bool,
    has_locking: bool,
    has_into: bool,
    called: Vec<String>,
}

fn oracle(p: &Parsed) -> Oracle {
    let dump = format!("{:?}", p.stmt);
    let mut called = Vec::new();
    for (at, _) in dump.match_indices("FuncCall { funcname: [") {
        let rest = &dump[at..];
        let names = rest.split("], args").next().unwrap_or_default();
        if let Some(last) = names.rsplit("sval: \"").next()
            && let Some(name) = last.split('"').next()
        {
            called.push(name.to_lowercase());
        }
    }
    Oracle {
        has_dml: ["InsertStmt(", "UpdateStmt(", "DeleteStmt(", "MergeStmt("]
            .iter()
            .any(|n| dump.contains(n)),
        has_locking: dump.contains("LockingClause {"),
        has_into: dump.contains("IntoClause {"),
        called,
    }
}

/// Asserts the read gate agrees with the oracle on anything it accepted.
fn assert_read_sound(p: &Parsed) {
    if check_read(p).is_ok() {
        let o = oracle(p);
        let sql = p.sql();
        assert!(
            !o.has_dml,
            "read accepted a data-modifying statement: {sql:?}"
        );
        assert!(!o.has_locking, "read accepted a locking clause: {sql:?}");
        assert!(!o.has_into, "read accepted SELECT INTO: {sql:?}");
        for name in &o.called {
            assert!(
                denied_function(name).is_none(),
                "read accepted {name}: {sql:?}"
            );
        }
    }
}

const DML: &[&str] = &[
    "DELETE FROM t RETURNING *",
    "INSERT INTO t VALUES (1) RETURNING *",
    "UPDATE t SET a = 1 RETURNING *",
    "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE RETURNING t.*",
];

const DML_SITES: &[&str] = &[
    "{d}",
    "WITH x AS ({d}) SELECT * FROM x",
    "WITH x AS ({d}) VALUES (1)",
    "WITH a AS (SELECT 1), x AS ({d}) TABLE a",
    "WITH a AS (SELECT * FROM (WITH b AS ({d}) SELECT * FROM b) s) SELECT * FROM a",
    "WITH a AS (WITH b AS ({d}) SELECT * FROM b) SELECT * FROM a",
    "WITH RECURSIVE x AS ({d}) SELECT * FROM x",
    "SELECT * FROM (WITH x AS ({d}) SELECT * FROM x) s",
    "SELECT (WITH x AS ({d}) SELECT 1 FROM x LIMIT 1)",
    "SELECT * FROM t WHERE EXISTS (WITH x AS ({d}) SELECT 1 FROM x)",
    "SELECT * FROM t, LATERAL (WITH x AS ({d}) SELECT * FROM x) y",
    "SELECT 1 UNION ALL (WITH x AS ({d}) SELECT 1 FROM x)",
    "SELECT ARRAY(WITH x AS ({d}) SELECT 1 FROM x)",
    "SELECT CASE WHEN true THEN (WITH x AS ({d}) SELECT 1 FROM x) END",
    "SELECT * FROM t ORDER BY (WITH x AS ({d}) SELECT 1 FROM x)",
    "SELECT count(*) FILTER (WHERE EXISTS (WITH x AS ({d}) SELECT 1 FROM x)) FROM t",
    "SELECT JSON_ARRAY(WITH x AS ({d}) SELECT 1 FROM x)",
    "VALUES ((WITH x AS ({d}) SELECT 1 FROM x))",
    "SELECT * FROM t GROUP BY (WITH x AS ({d}) SELECT 1 FROM x)",
    "SELECT row_number() OVER (ORDER BY (WITH x AS ({d}) SELECT 1 FROM x))",
    "EXPLAIN WITH x AS ({d}) SELECT * FROM x",
    "EXPLAIN {d}",
];

#[test]
fn read_never_accepts_a_tree_containing_dml() {
    let mut parsed_count = 0;
    for d in DML {
        for site in DML_SITES {
            let sql = site.replace("{d}", d);
            let Ok(p) = parse_one(&sql) else { continue };
            parsed_count += 1;
            assert!(oracle(&p).has_dml, "oracle sanity: {sql:?}");
            assert!(check_read(&p).is_err(), "read accepted {sql:?}");
        }
    }
    assert!(
        parsed_count >= DML.len() * (DML_SITES.len() - 2),
        "only {parsed_count} parsed"
    );
}

/// A tiny deterministic PRNG (xorshift64*), so the property tests need no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Every SQL string in this module's tables, as seeds for mutation.
fn corpus() -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    all.extend(PARSE_CASES.iter().map(|(s, _)| s.to_string()));
    all.extend(class_cases().iter().map(|(s, _, _)| s.to_string()));
    all.extend(READS_ACCEPTED.iter().map(|s| s.to_string()));
    all.extend(READ_REFUSED.iter().map(|(s, _, _)| s.to_string()));
    all.extend(WRITE_CASES.iter().map(|(s, _)| s.to_string()));
    all.extend(EXPLAIN_CASES.iter().map(|(s, _)| s.to_string()));
    all.extend(DDL_CASES.iter().map(|(s, _, _)| s.to_string()));
    all.extend(REDACT_CASES.iter().map(|(s, _)| s.to_string()));
    for (call, _) in DENIED_CALLS.iter().take(4) {
        all.extend(CALL_SITES.iter().map(|site| site.replace("{f}", call)));
    }
    for d in DML {
        all.extend(DML_SITES.iter().map(|site| site.replace("{d}", d)));
    }
    all
}

const NOISE: &[&str] = &[
    ";",
    "'",
    "\"",
    "$$",
    "$q$",
    "--",
    "\n",
    "/*",
    "*/",
    "(",
    ")",
    " ",
    ",",
    "E'",
    "U&'",
    "\\",
    "\0",
    "é",
    "𝄞",
    "SELECT ",
    " FROM t",
    " WHERE ",
    "WITH x AS (",
    "DELETE FROM t",
    " RETURNING *",
    " FOR UPDATE",
    " INTO z",
    "pg_read_file('x')",
    "nextval('s')",
    "EXPLAIN ",
    "ANALYZE ",
    " UNION ",
    "VALUES (1)",
    "INSERT INTO t VALUES (1)",
    "BEGIN",
    "COMMIT",
    "COPY ",
    " PASSWORD 'p'",
];

/// Mutates `s` a few times: inserts noise, deletes or duplicates a range, splices, truncates.
fn mutate(rng: &mut Rng, s: &str, other: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for _ in 0..=rng.below(2) {
        let at = rng.below(chars.len() + 1);
        match rng.below(5) {
            0 | 1 => {
                let noise: Vec<char> = rng.pick(NOISE).chars().collect();
                chars.splice(at..at, noise);
            }
            2 => {
                let end = (at + rng.below(8)).min(chars.len());
                chars.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(12)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, copy);
            }
            _ => {
                let tail: Vec<char> = other.chars().collect();
                let from = rng.below(tail.len() + 1);
                chars.truncate(at);
                chars.extend_from_slice(&tail[from..]);
            }
        }
    }
    chars.into_iter().collect()
}

/// Runs everything on `sql`; must never panic.
fn exercise(sql: &str) {
    let _ = redact(sql);
    let Ok(p) = parse_one(sql) else { return };
    let _ = (
        p.command(),
        p.class(),
        p.is_plain_select(),
        p.has_returning(),
    );
    let _ = (
        check_read(&p),
        check_write(&p),
        check_explain(&p),
        check_admin(&p),
    );
    for kind in [Create, Alter, Drop] {
        let _ = check_ddl(&p, kind);
    }
    assert_read_sound(&p);
    // sql() must be a faithful copy of the single statement.
    let again =
        parse_one(p.sql()).unwrap_or_else(|e| panic!("sql() of {sql:?} = {:?}: {e}", p.sql()));
    assert_eq!(
        (again.command(), again.class()),
        (p.command(), p.class()),
        "{sql:?}"
    );
}

#[test]
fn mutated_inputs_never_panic() {
    let corpus = corpus();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed_ok = 0;
    for _ in 0..1000 {
        let base = rng.pick(&corpus);
        let other = rng.pick(&corpus);
        let sql = mutate(&mut rng, base, other);
        if parse_one(&sql).is_ok() {
            parsed_ok += 1;
        }
        exercise(&sql);
    }
    // The mutations must not be so destructive that nothing parses.
    eprintln!("{parsed_ok} of 1000 mutated inputs parsed");
    assert!(parsed_ok > 50, "only {parsed_ok} mutated inputs parsed");
}

#[test]
fn random_token_soup_never_panics() {
    const WORDS: &[&str] = &[
        "SELECT",
        "FROM",
        "t",
        "u",
        "(",
        ")",
        ";",
        "WITH",
        "x",
        "AS",
        "DELETE",
        "INSERT",
        "INTO",
        "VALUES",
        "1",
        "'x'",
        "$$a$$",
        "--c\n",
        "/*c*/",
        "pg_read_file('f')",
        "FOR",
        "UPDATE",
        "UNION",
        "WHERE",
        "=",
        ",",
        "*",
        "RETURNING",
        "EXPLAIN",
        "ANALYZE",
        "SET",
        "a",
        "TABLE",
        "LATERAL",
        "JOIN",
        "ON",
        "true",
        "nextval('s')",
        "SHOW",
        "ALL",
    ];
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..600 {
        let len = 1 + rng.below(14);
        let sql: Vec<&str> = (0..len).map(|_| *rng.pick(WORDS)).collect();
        exercise(&sql.join(" "));
    }
}

#[test]
fn corpus_is_sound() {
    for sql in corpus() {
        exercise(&sql);
    }
}
