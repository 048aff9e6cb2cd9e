//! The read-only guard against a corpus of bypass attempts (issue #4), through real MCP clients
//! against a real PostgreSQL.
//!
//! `tests/corpus/bypass.txt` holds attempts to make `pg_query read` (and `pg_query explain`)
//! change data, reach outside the transaction or leave state behind on the pooled connection;
//! `tests/corpus/accept.txt` holds legitimate analytical reads that must keep working;
//! `tests/corpus/dry_run.txt` holds side effects a `write` with `dry_run: true` (which needs no
//! autocommit) must not leave behind.
//!
//! For every bypass entry the call must be refused by the classifier (`policy_denied`) or fail
//! in the database (`database_error`, e.g. SQLSTATE 25006 from the READ ONLY transaction), and
//! a snapshot of everything an attempt could touch must be unchanged right after it: the
//! sentinel rows (values, xmin and ctid), a sequence, relations, functions, roles, settings (on
//! a fresh connection and on the server's own pooled connection), advisory locks, large
//! objects, prepared transactions, replication slots, files under /tmp, index maintenance
//! state, and the backends of the test database (a victim connection, a LISTENing connection
//! and the server's pool connection must all survive). Run with `-- --nocapture` to see the
//! per-technique summary. A last test makes each guarded side effect for real and checks that
//! the snapshot notices it, so a blind snapshot cannot make the corpus tests pass.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{Era, McpClient, TestApp, admin_url, spawn_app_with, text_of};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};

const BYPASS: &str = include_str!("corpus/bypass.txt");
const ACCEPT: &str = include_str!("corpus/accept.txt");
const DRY_RUN: &str = include_str!("corpus/dry_run.txt");

/// The random() value that follows `setseed(0.42)`: seeing it on the server's pooled connection
/// means a seed set by an earlier call leaked into a later one.
const LEAK_SEED: &str = "0.42";

/// Snapshot key of the seed check. It is an event, not a state: reading random() consumes the
/// seeded sequence, so it is flagged whenever a call left the seed, whatever came before.
const SEED_KEY: &str = "random seed left on the pooled connection by the call";

// -------------------------------------------------------------------------------------------
// Corpus
// -------------------------------------------------------------------------------------------

/// One corpus entry.
#[derive(Debug, Clone)]
struct Entry {
    /// The `## technique` heading it sits under.
    technique: String,
    /// The SQL, `{{DB}}` not yet replaced.
    sql: String,
    /// 1-based line of its first SQL line in the corpus file.
    line: usize,
}

/// Parses the corpus format: `## technique` headings, `# comment` lines, `---` separators;
/// a heading also ends the entry before it.
fn parse_corpus(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut technique = String::from("(none)");
    let mut buf: Vec<&str> = Vec::new();
    let mut start = 0;
    let flush = |buf: &mut Vec<&str>, technique: &str, start: usize, out: &mut Vec<Entry>| {
        let sql = buf.join("\n").trim().to_owned();
        if !sql.is_empty() {
            out.push(Entry {
                technique: technique.to_owned(),
                sql,
                line: start,
            });
        }
        buf.clear();
    };
    for (i, line) in text.lines().enumerate() {
        if let Some(h) = line.strip_prefix("## ") {
            flush(&mut buf, &technique, start, &mut entries);
            technique = h.trim().to_owned();
        } else if line.trim_start().starts_with('#') {
            continue;
        } else if line.trim() == "---" {
            flush(&mut buf, &technique, start, &mut entries);
        } else {
            if buf.is_empty() {
                if line.trim().is_empty() {
                    continue;
                }
                start = i + 1;
            }
            buf.push(line);
        }
    }
    flush(&mut buf, &technique, start, &mut entries);
    entries
}

fn bypass_corpus() -> Vec<Entry> {
    parse_corpus(BYPASS)
}

fn accept_corpus() -> Vec<Entry> {
    parse_corpus(ACCEPT)
}

fn dry_run_corpus() -> Vec<Entry> {
    parse_corpus(DRY_RUN)
}

/// The entries whose statements the server's shape cache can hold (no quotes, dollar signs,
/// backslashes or comments: `src/safety/shapes.rs`), with each lone integer changed. Sent
/// after the corpus itself, they are decided from the shapes its first pass left cached.
fn renumbered(entries: &[Entry]) -> Vec<Entry> {
    let eligible = |sql: &str| {
        sql.is_ascii()
            && !sql.contains(['\'', '"', '\\', '$', '`'])
            && !sql.contains("--")
            && !sql.contains("/*")
    };
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.');
    let mut out = Vec::new();
    for entry in entries.iter().filter(|e| eligible(&e.sql)) {
        let b = entry.sql.as_bytes();
        let (mut sql, mut changed, mut i) = (String::new(), false, 0);
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                sql.push(char::from(b[i]));
                i += 1;
                continue;
            }
            let end = b[i..]
                .iter()
                .position(|c| !c.is_ascii_digit())
                .map_or(b.len(), |k| i + k);
            let run = &entry.sql[i..end];
            let alone = (i == 0 || !word(b[i - 1])) && b.get(end).is_none_or(|&c| !word(c));
            if alone && run.len() <= 9 {
                sql.push_str(if run == "7" { "8" } else { "7" });
                changed = true;
            } else {
                sql.push_str(run);
            }
            i = end;
        }
        if changed {
            out.push(Entry {
                sql,
                ..entry.clone()
            });
        }
    }
    out
}

fn instantiate(sql: &str, db: &str) -> String {
    sql.replace("{{DB}}", db)
}

/// A short one-line form of an entry for messages.
fn short(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 110 {
        format!("{}…", one.chars().take(110).collect::<String>())
    } else {
        one
    }
}

// -------------------------------------------------------------------------------------------
// Outcomes
// -------------------------------------------------------------------------------------------

/// What a tool call did.
#[derive(Debug, Clone)]
enum Outcome {
    /// Succeeded (no isError); the structured result.
    Ok(Value),
    /// A tool error with its category, SQLSTATE and message.
    Error {
        category: String,
        sqlstate: Option<String>,
        message: String,
    },
}

impl Outcome {
    fn of(r: &CallToolResult) -> Outcome {
        if r.is_error == Some(true) {
            let e = r
                .structured_content
                .as_ref()
                .map(|s| s["error"].clone())
                .unwrap_or(Value::Null);
            Outcome::Error {
                category: e["category"].as_str().unwrap_or("(none)").to_owned(),
                sqlstate: e["sqlstate"].as_str().map(str::to_owned),
                message: e["message"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| text_of(r)),
            }
        } else {
            Outcome::Ok(r.structured_content.clone().unwrap_or(Value::Null))
        }
    }

    /// The bucket used in summaries.
    fn bucket(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "succeeded",
            Outcome::Error { category, .. } => match category.as_str() {
                "policy_denied" => "refused by policy",
                "invalid_input" => "rejected by the parser",
                "database_error" => "stopped by the database",
                _ => "other error",
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Outcome::Ok(v) => format!("succeeded: {}", short(&v.to_string())),
            Outcome::Error {
                category,
                sqlstate,
                message,
            } => format!(
                "{category}{}: {}",
                sqlstate
                    .as_deref()
                    .map(|s| format!(" (SQLSTATE {s})"))
                    .unwrap_or_default(),
                short(message)
            ),
        }
    }
}

// -------------------------------------------------------------------------------------------
// Fixture
// -------------------------------------------------------------------------------------------

const FIXTURE: &str = r#"
CREATE TABLE sentinel (id int PRIMARY KEY, label text NOT NULL, amount numeric(12,2) NOT NULL);
INSERT INTO sentinel VALUES (1, 'alpha', 10.50), (2, 'beta', 20.00), (3, 'gamma', 30.25),
                            (4, 'delta', 0), (5, 'epsilon', 99999.99);
CREATE SEQUENCE bypass_seq START 100;
SELECT nextval('bypass_seq');
CREATE FUNCTION sneaky() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO sentinel VALUES (666, 'sneaky', 0);
  RETURN 1;
END $$;
CREATE FUNCTION sneaky_row(s sentinel) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO sentinel VALUES (700 + s.id, 'sneaky_row', 0);
  RETURN 1;
END $$;
CREATE PROCEDURE sneaky_proc() LANGUAGE plpgsql AS $$ BEGIN DELETE FROM sentinel; END $$;

-- A BRIN index with unsummarized ranges and a GIN index with a pending list: index
-- maintenance functions change them outside any transaction.
CREATE TABLE brin_fixture (id int) WITH (autovacuum_enabled = off);
INSERT INTO brin_fixture SELECT generate_series(1, 2000);
CREATE INDEX brin_fixture_idx ON brin_fixture USING brin (id) WITH (pages_per_range = 1, autosummarize = off);
INSERT INTO brin_fixture SELECT generate_series(2001, 4000);
CREATE TABLE gin_fixture (tags int[]) WITH (autovacuum_enabled = off);
CREATE INDEX gin_fixture_idx ON gin_fixture USING gin (tags) WITH (fastupdate = on);
INSERT INTO gin_fixture SELECT ARRAY[g, g + 1] FROM generate_series(1, 200) g;

-- Analytical data for the acceptance corpus.
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, country text, created_at timestamptz);
INSERT INTO customers
SELECT g, 'customer ' || g, 'c' || g || '@example.com', (ARRAY['DE', 'FR', 'US', 'JP'])[1 + g % 4],
       timestamptz '2025-01-01 00:00+00' + g * interval '1 day'
FROM generate_series(1, 40) g;
CREATE TABLE orders (
  id int PRIMARY KEY, customer_id int REFERENCES customers, amount numeric(10,2), status text,
  ordered_at timestamptz, tags text[], meta jsonb
);
INSERT INTO orders
SELECT g, 1 + g % 40, round((g * 7.31) % 500, 2), (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4],
       timestamptz '2025-01-01 00:00+00' + g * interval '7 hours',
       ARRAY['t' || (g % 3), 't' || (g % 5)],
       jsonb_build_object('channel', (ARRAY['web', 'app', 'store'])[1 + g % 3],
                          'items', jsonb_build_array(jsonb_build_object('sku', 'sku-' || (g % 10), 'qty', 1 + g % 3)),
                          'gift', g % 7 = 0)
FROM generate_series(1, 300) g;
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE TABLE categories (id int PRIMARY KEY, parent_id int REFERENCES categories, name text);
INSERT INTO categories VALUES (1, NULL, 'root'), (2, 1, 'books'), (3, 1, 'music'),
                              (4, 2, 'fiction'), (5, 2, 'science'), (6, 4, 'crime');
CREATE VIEW paid_orders AS SELECT * FROM orders WHERE status = 'paid';
ANALYZE sentinel, customers, orders, categories;
"#;

/// Extensions that make the corpus bite harder when the server has them (dblink would really
/// run SQL elsewhere; adminpack would really write files; the last two let the snapshot see
/// index maintenance).
const EXTENSIONS: &[&str] = &["dblink", "adminpack", "pageinspect", "pgstattuple"];

/// The server under test, configured so that any state left on its pooled connection shows up
/// in the very next call: one pooled connection.
async fn spawn() -> TestApp {
    spawn_app_with(|c| {
        c.pool_size = 1;
        c.statement_timeout = Duration::from_secs(15);
        c.lock_timeout = Duration::from_secs(3);
    })
    .await
}

fn db_options(app: &TestApp, application_name: &str) -> PgConnectOptions {
    let url = admin_url();
    let options = url
        .parse::<PgConnectOptions>()
        .expect("admin URL parses")
        .database(&app.db_name)
        .application_name(application_name);
    // The snapshot opens a fresh connection after every call: skip the TLS attempt on a local
    // server unless the URL asks for a mode (it costs ~0.1 s per connection in a debug build).
    let local = ["127.0.0.1", "localhost", "::1"].contains(&options.get_host());
    if local && !url.contains("sslmode=") {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

/// Creates the fixture; returns the extensions that could be installed.
async fn set_up(app: &TestApp) -> Vec<&'static str> {
    app.exec(FIXTURE).await;
    let mut installed = Vec::new();
    for ext in EXTENSIONS {
        let sql = format!("CREATE EXTENSION IF NOT EXISTS {ext}");
        if sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&app.db)
            .await
            .is_ok()
        {
            installed.push(*ext);
        }
    }
    installed
}

// -------------------------------------------------------------------------------------------
// State snapshots
// -------------------------------------------------------------------------------------------

/// Everything a bypass could change, and the connections it could kill.
struct Watch {
    db: String,
    extensions: Vec<&'static str>,
    /// A plain connection that must survive (pg_terminate_backend targets it by name).
    victim: PgConnection,
    victim_pid: i32,
    /// LISTENs on cq_chan: no notification may arrive.
    listener: PgListener,
    listener_pid: i32,
    /// Options for fresh connections to the test database.
    fresh: PgConnectOptions,
    /// random() right after setseed(0.42).
    seeded_random: f64,
}

type Snapshot = BTreeMap<&'static str, String>;

impl Watch {
    async fn new(app: &TestApp, extensions: Vec<&'static str>) -> Watch {
        let mut victim = PgConnection::connect_with(&db_options(app, "cq_victim"))
            .await
            .expect("victim connection");
        let victim_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut victim)
            .await
            .unwrap();
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(db_options(app, "cq_listener"))
            .await
            .expect("listener pool");
        let mut listener = PgListener::connect_with(&listener_pool)
            .await
            .expect("listener");
        listener.listen("cq_chan").await.expect("LISTEN cq_chan");
        let listener_pid: i32 = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'cq_listener' \
             AND datname = current_database()",
        )
        .fetch_one(&app.db)
        .await
        .expect("the listener's backend");
        let mut seeder = PgConnection::connect_with(&db_options(app, "cq_seeder"))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT setseed({LEAK_SEED})")))
            .execute(&mut seeder)
            .await
            .unwrap();
        let seeded_random: f64 = sqlx::query_scalar("SELECT random()")
            .fetch_one(&mut seeder)
            .await
            .unwrap();
        let _ = seeder.close().await;
        Watch {
            db: app.db_name.clone(),
            extensions,
            victim,
            victim_pid,
            listener,
            listener_pid,
            fresh: db_options(app, "cq_fresh"),
            seeded_random,
        }
    }

    /// One text value from the verification pool; an error becomes part of the state.
    async fn text(pool: &PgPool, sql: &str) -> String {
        match sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(pool)
            .await
        {
            Ok(v) => v.unwrap_or_else(|| "NULL".into()),
            Err(e) => format!("ERROR: {e}"),
        }
    }

    async fn snapshot(&mut self, app: &TestApp, client: &McpClient) -> Snapshot {
        let db = self.db.clone();
        let mut s = Snapshot::new();
        // First the server's own pooled connection (pool size 1), so that it exists when the
        // backends are listed: same backend, same session state, and no random seed left
        // behind by an earlier call.
        let r = client
            .call_raw(
                "pg_query",
                json!({"action": "read", "sql": "SELECT pg_backend_pid() AS pid, \
                    concat_ws('|', current_user, session_user, current_setting('search_path'), current_setting('work_mem'), \
                    current_setting('application_name'), current_setting('default_transaction_read_only'), \
                    current_setting('role')) AS settings, random() AS r"}),
            )
            .await;
        match Outcome::of(&r) {
            Outcome::Ok(v) => {
                let row = &v["rows"][0];
                s.insert(
                    "the server's pooled session",
                    format!("pid {} | {}", row[0], row[1].as_str().unwrap_or("?")),
                );
                let leaked = row[2].as_f64() == Some(self.seeded_random);
                s.insert(SEED_KEY, if leaked { "LEAKED" } else { "no" }.into());
            }
            other => {
                let e = format!("the server no longer serves reads: {}", other.describe());
                s.insert("the server's pooled session", e.clone());
                s.insert(SEED_KEY, e);
            }
        }

        let q: &[(&'static str, String)] = &[
            (
                "sentinel rows (values, xmin, ctid)",
                "SELECT md5(string_agg(format('%s|%s|%s|%s|%s', id, label, amount, xmin, ctid), ',' ORDER BY id)) FROM sentinel".into(),
            ),
            (
                "sentinel ACL and comment",
                "SELECT coalesce(relacl::text, '') || '|' || coalesce(obj_description(oid, 'pg_class'), '') FROM pg_class WHERE oid = 'sentinel'::regclass".into(),
            ),
            (
                "sequence bypass_seq",
                "SELECT format('%s/%s', last_value, is_called) FROM bypass_seq".into(),
            ),
            (
                "relations",
                "SELECT md5(string_agg(format('%s.%s:%s:%s', n.nspname, c.relname, c.relkind, c.relfilenode), ',' ORDER BY n.nspname, c.relname)) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')".into(),
            ),
            (
                "functions and procedures",
                "SELECT count(*)::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')".into(),
            ),
            (
                "collations",
                "SELECT count(*)::text FROM pg_collation".into(),
            ),
            (
                "roles",
                format!("SELECT count(*)::text FROM pg_roles WHERE rolname LIKE '{db}%'"),
            ),
            (
                "per-database and per-role settings",
                "SELECT coalesce(string_agg(array_to_string(setconfig, ','), ';' ORDER BY setdatabase, setrole), '') \
                 FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 OR setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)".into(),
            ),
            (
                "postgresql.auto.conf",
                "SELECT coalesce(md5(string_agg(format('%s=%s', name, setting), ',' ORDER BY seqno)), 'empty') \
                 FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'".into(),
            ),
            (
                "configuration load time",
                "SELECT pg_conf_load_time()::text".into(),
            ),
            (
                "database statistics reset",
                "SELECT coalesce(stats_reset::text, 'never') FROM pg_stat_database WHERE datname = current_database()".into(),
            ),
            (
                "bgwriter statistics reset",
                "SELECT coalesce(stats_reset::text, 'never') FROM pg_stat_bgwriter".into(),
            ),
            (
                "large objects",
                "SELECT count(*)::text FROM pg_largeobject_metadata".into(),
            ),
            (
                "advisory locks in this database",
                "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())".into(),
            ),
            (
                "prepared transactions",
                "SELECT count(*)::text FROM pg_prepared_xacts WHERE database = current_database()".into(),
            ),
            (
                "replication slots",
                format!(
                    "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name LIKE '{db}%' OR database = current_database()"
                ),
            ),
            (
                "victim and listener backends",
                format!(
                    "SELECT count(*)::text FROM pg_stat_activity WHERE pid IN ({}, {})",
                    self.victim_pid, self.listener_pid
                ),
            ),
            (
                "backends of the server's pool",
                "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), 'none') FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = 'coldquery'".into(),
            ),
        ];
        let mut q: Vec<(&'static str, String)> = q.to_vec();
        if self.extensions.contains(&"pageinspect") {
            q.push((
                "BRIN summaries",
                "SELECT count(*)::text FROM brin_revmap_data(get_raw_page('brin_fixture_idx', 1)) \
                 WHERE pages NOT IN ('(0,0)'::tid, '(4294967295,0)'::tid)"
                    .into(),
            ));
        }
        if self.extensions.contains(&"pgstattuple") {
            q.push((
                "GIN pending list",
                "SELECT pending_tuples::text FROM pgstatginindex('gin_fixture_idx')".into(),
            ));
        }
        // One round trip for all of them; if one fails (a dropped table), each on its own so
        // the failure becomes that entry's state.
        let combined = format!(
            "SELECT ARRAY[{}]::text[]",
            q.iter()
                .map(|(_, sql)| format!("({sql})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match sqlx::query_scalar::<_, Vec<Option<String>>>(sqlx::AssertSqlSafe(combined))
            .fetch_one(&app.db)
            .await
        {
            Ok(values) if values.len() == q.len() => {
                for ((name, _), v) in q.iter().zip(values) {
                    s.insert(name, v.unwrap_or_else(|| "NULL".into()));
                }
            }
            _ => {
                for (name, sql) in &q {
                    s.insert(name, Self::text(&app.db, sql).await);
                }
            }
        }

        // The victim connection still answers.
        let victim = match sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut self.victim)
            .await
        {
            Ok(_) => "alive".to_owned(),
            Err(e) => format!("ERROR: {e}"),
        };
        s.insert("victim connection", victim);

        // A fresh connection sees the database's and role's defaults.
        let fresh = match PgConnection::connect_with(&self.fresh).await {
            Ok(mut c) => {
                let v = sqlx::query_scalar::<_, String>(
                    "SELECT concat_ws('|', current_user, session_user, current_setting('default_transaction_read_only'), \
                     current_setting('transaction_read_only'), current_setting('work_mem'), current_setting('search_path'), \
                     current_setting('statement_timeout'), current_setting('role'))",
                )
                .fetch_one(&mut c)
                .await
                .unwrap_or_else(|e| format!("ERROR: {e}"));
                let _ = c.close().await;
                v
            }
            Err(e) => format!("ERROR: {e}"),
        };
        s.insert("settings on a fresh connection", fresh);

        // Files the corpus tries to create (every target path starts with coldquery_<db>).
        let prefix = format!("coldquery_{db}");
        let mut files: Vec<String> = std::fs::read_dir("/tmp")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        s.insert(
            "files under /tmp",
            if files.is_empty() {
                "none".into()
            } else {
                files.join(",")
            },
        );
        s
    }

    /// Waits briefly for a notification on cq_chan; any arrival (or a lost listener) is a finding.
    async fn notifications(&mut self) -> Option<String> {
        match tokio::time::timeout(Duration::from_millis(500), self.listener.try_recv()).await {
            Err(_) => None,
            Ok(Ok(Some(n))) => Some(format!(
                "notification on {} with payload {:?} from pid {}",
                n.channel(),
                n.payload(),
                n.process_id()
            )),
            Ok(Ok(None)) => Some("the LISTENing connection was lost".into()),
            Ok(Err(e)) => Some(format!("the LISTENing connection failed: {e}")),
        }
    }
}

/// Removes whatever a successful bypass left under /tmp (the snapshot has already seen it).
fn remove_corpus_files(db: &str) {
    let prefix = format!("coldquery_{db}");
    if let Ok(dir) = std::fs::read_dir("/tmp") {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    before
        .iter()
        .filter_map(|(k, v)| {
            let now = after.get(k).map(String::as_str).unwrap_or("(missing)");
            let changed = if *k == SEED_KEY {
                now != "no"
            } else {
                now != v
            };
            changed.then(|| format!("{k}: {v:?} -> {now:?}"))
        })
        .collect()
}

// -------------------------------------------------------------------------------------------
// Running the corpus
// -------------------------------------------------------------------------------------------

/// One call of one entry, with what it did and what it changed.
struct Run {
    entry: Entry,
    sql: String,
    outcome: Outcome,
    changed: Vec<String>,
}

/// Calls `pg_query` with `args(sql)` for every entry, snapshotting after each call. A change is
/// attributed to the entry and the baseline moves on, so later entries are judged on their own.
async fn run_corpus(
    app: &TestApp,
    client: &McpClient,
    watch: &mut Watch,
    entries: &[Entry],
    args: impl Fn(&str) -> Value,
) -> Vec<Run> {
    let mut baseline = watch.snapshot(app, client).await;
    let mut runs = Vec::with_capacity(entries.len());
    for entry in entries {
        let sql = instantiate(&entry.sql, &app.db_name);
        let r = client.call_raw("pg_query", args(&sql)).await;
        let outcome = Outcome::of(&r);
        let after = watch.snapshot(app, client).await;
        let changed = diff(&baseline, &after);
        baseline = after;
        runs.push(Run {
            entry: entry.clone(),
            sql,
            outcome,
            changed,
        });
    }
    runs
}

/// Counts per bucket, overall and per technique, as a printable table.
fn summary(title: &str, runs: &[Run]) -> String {
    const BUCKETS: [&str; 5] = [
        "refused by policy",
        "rejected by the parser",
        "stopped by the database",
        "succeeded",
        "other error",
    ];
    let mut per: BTreeMap<&str, [usize; 6]> = BTreeMap::new();
    let mut total = [0usize; 6];
    for r in runs {
        let i = BUCKETS
            .iter()
            .position(|b| *b == r.outcome.bucket())
            .unwrap();
        let row = per.entry(r.entry.technique.as_str()).or_default();
        row[i] += 1;
        total[i] += 1;
        if !r.changed.is_empty() {
            row[5] += 1;
            total[5] += 1;
        }
    }
    let mut out = format!(
        "\n== {title}: {} calls ==\n{:<78} {:>7} {:>6} {:>5} {:>5} {:>5} {:>7}\n",
        runs.len(),
        "technique",
        "policy",
        "parser",
        "db",
        "ok",
        "other",
        "CHANGED"
    );
    for (t, c) in per.iter().chain(std::iter::once((&"TOTAL", &total))) {
        let _ = writeln!(
            out,
            "{:<78} {:>7} {:>6} {:>5} {:>5} {:>5} {:>7}",
            short(t),
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5]
        );
    }
    out
}

fn listing<'a>(runs: impl IntoIterator<Item = &'a Run>) -> String {
    runs.into_iter()
        .map(|r| {
            let mut s = format!(
                "  line {} [{}] {}\n    -> {}",
                r.entry.line,
                r.entry.technique,
                short(&r.sql),
                r.outcome.describe()
            );
            for c in &r.changed {
                let _ = write!(s, "\n    CHANGED {c}");
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// -------------------------------------------------------------------------------------------
// Tests
// -------------------------------------------------------------------------------------------

/// (what the brief asks for, text that must appear in some bypass entry, case-insensitively).
const BYPASS_COVERAGE: &[(&str, &str)] = &[
    ("stacking after a block comment", "*/; "),
    ("stacking after a line comment", "comment\n;"),
    ("stacking after a dollar quote", "$$; "),
    ("stacking after an E'' string", "e'\\';'; "),
    ("stacking after a U& string", "u&'\\0027'; "),
    ("COMMIT; DROP", "commit; drop"),
    ("ROLLBACK; …", "rollback; "),
    ("END; …", "end; "),
    ("statement hidden behind a comment", "/* select 1 */ delete"),
    ("data-modifying CTE", "with d as (delete"),
    (
        "data-modifying CTE in a subquery",
        "from (with d as (delete",
    ),
    (
        "data-modifying CTE in LATERAL",
        "lateral (with d as (delete",
    ),
    (
        "data-modifying CTE in a scalar subquery",
        "select (with d as (delete",
    ),
    (
        "data-modifying CTE in a UNION arm",
        "union all (with d as (delete",
    ),
    ("SELECT … INTO", "select * into pwned"),
    ("FOR UPDATE", "for update"),
    ("FOR NO KEY UPDATE", "for no key update"),
    ("FOR SHARE", "for share"),
    ("FOR KEY SHARE", "for key share"),
    (
        "FOR UPDATE in a subquery",
        "(select * from sentinel for update)",
    ),
    ("SET TRANSACTION READ WRITE", "set transaction read write"),
    ("SET SESSION CHARACTERISTICS", "set session characteristics"),
    ("set_config", "set_config("),
    ("set_config in WHERE", "where set_config("),
    ("set_config in ORDER BY", "order by set_config("),
    ("SET ROLE", "set role"),
    ("SET SESSION AUTHORIZATION", "set session authorization"),
    ("RESET ALL", "reset all"),
    ("pg_read_file", "pg_read_file("),
    ("pg_read_binary_file", "pg_read_binary_file("),
    ("pg_ls_dir", "pg_ls_dir("),
    ("pg_stat_file", "pg_stat_file("),
    ("lo_export", "lo_export("),
    ("lo_import", "lo_import("),
    ("pg_read_file in FROM/LATERAL", "lateral pg_ls_dir("),
    ("pg_read_file in WHERE", "where pg_read_file("),
    ("pg_read_file in ORDER BY", "order by pg_read_file("),
    ("pg_read_file in CASE", "then pg_read_file("),
    ("pg_read_file as a function argument", "upper(pg_read_file("),
    ("schema-qualified pg_read_file", "pg_catalog.pg_read_file("),
    ("quoted pg_read_file", "\"pg_read_file\"("),
    ("pg_terminate_backend", "pg_terminate_backend("),
    ("pg_cancel_backend", "pg_cancel_backend("),
    ("pg_reload_conf", "pg_reload_conf("),
    ("pg_advisory_lock", "pg_advisory_lock("),
    ("pg_advisory_xact_lock", "pg_advisory_xact_lock("),
    ("pg_try_advisory_lock", "pg_try_advisory_lock("),
    ("dblink", "dblink("),
    ("COPY … TO PROGRAM", "to program"),
    ("COPY … FROM PROGRAM", "from program"),
    ("COPY … TO a file", "to '/tmp/"),
    ("COPY (SELECT …) TO a file", "copy (select"),
    ("DO", "do $$"),
    ("CALL", "call "),
    ("PREPARE", "prepare p as"),
    ("EXECUTE", "execute p"),
    ("DEALLOCATE", "deallocate"),
    ("LISTEN", "listen "),
    ("NOTIFY", "notify "),
    ("pg_notify", "pg_notify("),
    ("nextval", "nextval("),
    ("setval", "setval("),
    ("EXPLAIN ANALYZE INSERT", "explain analyze insert"),
    ("EXPLAIN ANALYZE UPDATE", "explain analyze update"),
    ("EXPLAIN ANALYZE DELETE", "explain analyze delete"),
    ("EXPLAIN (ANALYZE) DELETE", "explain (analyze) delete"),
    ("sneaky()", "select sneaky()"),
    ("CREATE TEMP TABLE … AS", "create temp table pwned as"),
    ("VACUUM", "vacuum"),
    ("ANALYZE", "analyze sentinel"),
    ("ALTER SYSTEM", "alter system"),
    ("LOAD", "load '"),
    ("CHECKPOINT", "checkpoint"),
    ("DISCARD ALL", "discard all"),
    ("LOCK TABLE", "lock table"),
    ("TRUNCATE", "truncate"),
    ("GRANT", "grant "),
    ("CREATE FUNCTION", "create function"),
    ("query_to_xml('delete …')", "query_to_xml('delete"),
    ("ts_stat('…')", "ts_stat('"),
];

/// (what the brief asks for, text that must appear in some accepted entry, case-insensitively).
const ACCEPT_COVERAGE: &[(&str, &str)] = &[
    ("window functions", " over ("),
    ("WITHIN GROUP", "within group"),
    ("recursive CTE", "with recursive"),
    ("LATERAL", "lateral"),
    ("JSON operators", "->>"),
    ("jsonb containment", "@>"),
    ("jsonb_path_query", "jsonb_path_query("),
    ("generate_series", "generate_series("),
    ("pg_stat_activity", "pg_stat_activity"),
    ("pg_stat_user_tables", "pg_stat_user_tables"),
    ("pg_class", "from pg_class"),
    ("information_schema", "information_schema."),
    ("DISTINCT ON", "distinct on"),
    ("GROUPING SETS", "grouping sets"),
    ("ROLLUP", "rollup"),
    ("CUBE", "cube"),
    ("FILTER", "filter (where"),
    ("arrays", "array_agg("),
    ("regex", "regexp_replace("),
    ("string_agg", "string_agg("),
    ("date_trunc", "date_trunc("),
    ("SHOW work_mem", "show work_mem"),
    ("EXPLAIN SELECT", "explain select"),
    ("VALUES", "values ("),
    ("TABLE t", "table customers"),
    ("trailing semicolon", "select 1;"),
    ("comments", "/* block comment */"),
    ("pg_sleep(0)", "pg_sleep(0)"),
    ("txid_current()", "txid_current()"),
    ("current_setting('work_mem')", "current_setting('work_mem')"),
    (
        "pg_size_pretty(pg_database_size(current_database()))",
        "pg_size_pretty(pg_database_size(current_database()))",
    ),
    ("now()", "now()"),
    ("random()", "random()"),
];

#[test]
fn the_corpora_are_large_enough_and_cover_every_technique_of_the_issue() {
    let bypass = bypass_corpus();
    let accept = accept_corpus();
    assert!(bypass.len() >= 80, "only {} bypass entries", bypass.len());
    assert!(accept.len() >= 50, "only {} accepted entries", accept.len());
    let dry_run = dry_run_corpus();
    assert!(
        dry_run.len() >= 15,
        "only {} dry-run entries",
        dry_run.len()
    );
    assert!(
        dry_run
            .last()
            .is_some_and(|e| e.sql.contains("pg_terminate_backend")),
        "the victim-killing dry-run entry must stay last"
    );
    for (what, corpus, coverage) in [
        ("bypass", &bypass, BYPASS_COVERAGE),
        ("accept", &accept, ACCEPT_COVERAGE),
    ] {
        let lowered: Vec<String> = corpus.iter().map(|e| e.sql.to_lowercase()).collect();
        let missing: Vec<&str> = coverage
            .iter()
            .filter(|(_, needle)| !lowered.iter().any(|s| s.contains(*needle)))
            .map(|(name, _)| *name)
            .collect();
        assert!(missing.is_empty(), "{what} corpus misses: {missing:?}");
        // Every entry sits under a technique heading, and none is listed twice.
        assert!(
            corpus.iter().all(|e| e.technique != "(none)"),
            "{what}: entries before the first ## heading"
        );
        let mut seen = std::collections::HashSet::new();
        for e in corpus.iter() {
            assert!(
                seen.insert(e.sql.as_str()),
                "{what}: duplicate entry at line {}: {}",
                e.line,
                e.sql
            );
        }
    }
    // Mixed case and unicode-escaped spellings of denied functions are in the corpus too.
    assert!(bypass.iter().any(|e| e.sql.contains("PG_READ_FILE(")));
    assert!(bypass.iter().any(|e| e.sql.contains("U&\"pg\\005fread")));
    // No entry is in both corpora.
    for a in &accept {
        assert!(
            bypass.iter().all(|b| b.sql != a.sql),
            "in both corpora: {}",
            a.sql
        );
    }
    // Multi-line entries survive parsing.
    assert!(
        bypass.iter().any(|e| e.sql.lines().count() >= 3),
        "multi-line entries are parsed as one"
    );
}

#[tokio::test]
async fn every_bypass_attempt_through_read_is_refused_or_fails_harmlessly_and_changes_nothing() {
    let started = Instant::now();
    let app = spawn().await;
    let extensions = set_up(&app).await;
    let client = app.client(Era::Stateless).await;
    let mut watch = Watch::new(&app, extensions.clone()).await;
    let initial = watch.snapshot(&app, &client).await;
    assert_eq!(initial[SEED_KEY], "no", "{initial:?}");
    assert!(
        initial["the server's pooled session"].starts_with("pid "),
        "{initial:?}"
    );
    assert_eq!(initial["victim and listener backends"], "2");

    let entries = bypass_corpus();
    let read = |sql: &str| json!({"action": "read", "sql": sql});
    let mut runs = run_corpus(&app, &client, &mut watch, &entries, read).await;
    // Then the same attempts with other numbers, decided from the shapes cached by the first.
    let again = renumbered(&entries);
    runs.extend(run_corpus(&app, &client, &mut watch, &again, read).await);
    let notified = watch.notifications().await;
    let last = watch.snapshot(&app, &client).await;
    remove_corpus_files(&app.db_name);

    let count = |b: &str| runs.iter().filter(|r| r.outcome.bucket() == b).count();
    let refused = count("refused by policy");
    let by_db: Vec<&Run> = runs
        .iter()
        .filter(|r| r.outcome.bucket() == "stopped by the database")
        .collect();
    let executed: Vec<&Run> = runs
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Ok(_)))
        .collect();
    let odd: Vec<&Run> = runs
        .iter()
        .filter(|r| matches!(r.outcome.bucket(), "other error" | "rejected by the parser"))
        .collect();
    let changed: Vec<&Run> = runs.iter().filter(|r| !r.changed.is_empty()).collect();

    println!("{}", summary("pg_query read, Era::Stateless", &runs));
    println!(
        "extensions installed for the corpus: {extensions:?}\n\
         refused by the classifier: {refused} of {} ({:.1}%)",
        runs.len(),
        100.0 * refused as f64 / runs.len() as f64
    );
    println!(
        "stopped only by the database ({}):\n{}",
        by_db.len(),
        listing(by_db.iter().copied())
    );
    println!(
        "accepted AND executed without error ({}):\n{}",
        executed.len(),
        listing(executed.iter().copied())
    );
    println!(
        "changed the database or the server's session ({}):\n{}",
        changed.len(),
        listing(changed.iter().copied())
    );
    println!("read corpus took {:?}", started.elapsed());
    let still_serving = client.read("SELECT count(*) FROM sentinel").await["rows"].clone();
    let health = reqwest::get(app.url("/health")).await.unwrap().status();
    // Clean up before asserting, so that a failure does not leave the database behind.
    client.close().await;
    app.finish().await;

    assert!(runs.len() >= 80, "only {} entries ran", runs.len());
    assert!(again.len() >= 10, "only {} entries renumbered", again.len());
    assert!(
        changed.is_empty(),
        "REAL BYPASS: these reads changed state:\n{}",
        listing(changed.iter().copied())
    );
    assert!(
        executed.is_empty(),
        "REAL BYPASS: the read action accepted and ran these (side effects outside the \
         transaction or on the pooled connection):\n{}",
        listing(executed.iter().copied())
    );
    assert!(
        odd.is_empty(),
        "neither refused nor stopped by the database:\n{}",
        listing(odd.iter().copied())
    );
    for r in &by_db {
        let Outcome::Error { sqlstate, .. } = &r.outcome else {
            unreachable!()
        };
        assert!(
            sqlstate.is_some(),
            "a database error without SQLSTATE: {}",
            listing([*r])
        );
    }
    assert!(
        refused * 10 >= runs.len() * 9,
        "only {refused} of {} refused by the classifier itself (policy_denied); the rest \
         relied on the database:\n{}",
        runs.len(),
        listing(by_db.iter().copied())
    );
    assert_eq!(notified, None, "a notification escaped a read");
    assert_eq!(
        diff(&initial, &last),
        Vec::<String>::new(),
        "state differs after the whole corpus"
    );
    // The server still serves.
    assert_eq!(still_serving, json!([[5]]));
    assert_eq!(health, 200);
}

#[tokio::test]
async fn every_bypass_attempt_through_explain_with_and_without_analyze_changes_nothing() {
    let started = Instant::now();
    let app = spawn().await;
    let extensions = set_up(&app).await;
    let client = app.client(Era::Stateless).await;
    let mut watch = Watch::new(&app, extensions).await;
    let initial = watch.snapshot(&app, &client).await;
    let entries = bypass_corpus();

    let mut all = Vec::new();
    for analyze in [false, true] {
        let runs = run_corpus(
            &app,
            &client,
            &mut watch,
            &entries,
            |sql| json!({"action": "explain", "sql": sql, "analyze": analyze}),
        )
        .await;
        println!(
            "{}",
            summary(
                &format!("pg_query explain, analyze: {analyze}, Era::Stateless"),
                &runs
            )
        );
        let ran: Vec<&Run> = runs
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Ok(_)))
            .collect();
        println!(
            "explained (analyze: {analyze}) and returned a plan ({}):\n{}",
            ran.len(),
            listing(ran.iter().copied())
        );
        // Without ANALYZE nothing executes: a plan is all that may come back.
        if !analyze {
            for r in &ran {
                let Outcome::Ok(v) = &r.outcome else {
                    unreachable!()
                };
                assert_eq!(v["analyzed"], false, "{}", listing([*r]));
            }
        }
        all.push((analyze, runs));
    }
    let notified = watch.notifications().await;
    let last = watch.snapshot(&app, &client).await;
    remove_corpus_files(&app.db_name);
    println!("explain corpus took {:?}", started.elapsed());
    client.close().await;
    app.finish().await;

    let mut changed = Vec::new();
    let mut odd = Vec::new();
    for (analyze, runs) in &all {
        for r in runs {
            if !r.changed.is_empty() {
                changed.push(format!("analyze: {analyze}\n{}", listing([r])));
            }
            if r.outcome.bucket() == "other error" {
                odd.push(format!("analyze: {analyze}\n{}", listing([r])));
            }
        }
    }
    assert!(
        changed.is_empty(),
        "REAL BYPASS: these explain calls changed state:\n{}",
        changed.join("\n")
    );
    assert!(odd.is_empty(), "unexpected errors:\n{}", odd.join("\n"));
    assert_eq!(notified, None, "a notification escaped an explain");
    assert_eq!(diff(&initial, &last), Vec::<String>::new());
    // Statements that are not a single explainable statement never get a plan.
    for (_, runs) in &all {
        for r in runs {
            let upper = r.sql.trim_start().to_uppercase();
            let not_explainable = [
                "COPY", "DO ", "CALL", "SET ", "RESET", "VACUUM", "LOCK", "COMMIT", "ROLLBACK",
            ]
            .iter()
            .any(|p| upper.starts_with(p))
                || upper.starts_with("EXPLAIN");
            if not_explainable {
                assert!(
                    !matches!(r.outcome, Outcome::Ok(_)),
                    "explain ran a non-explainable statement: {}",
                    listing([r])
                );
            }
        }
    }
}

#[tokio::test]
async fn every_legitimate_analytical_read_is_accepted_and_succeeds() {
    let app = spawn().await;
    set_up(&app).await;
    let client = app.client(Era::Stateless).await;
    let entries = accept_corpus();
    let mut failures = Vec::new();
    for e in &entries {
        let sql = instantiate(&e.sql, &app.db_name);
        let r = client
            .call_raw("pg_query", json!({"action": "read", "sql": sql}))
            .await;
        match Outcome::of(&r) {
            Outcome::Ok(v) => {
                let has_columns = v["columns"].as_array().is_some_and(|c| !c.is_empty());
                let rows = v["rows"].as_array().map_or(0, Vec::len);
                if !has_columns || v["row_count"] != json!(rows) {
                    failures.push(format!("line {}: malformed result {v}", e.line));
                }
            }
            other => failures.push(format!(
                "line {} [{}] {}\n    -> {}",
                e.line,
                e.technique,
                short(&sql),
                other.describe()
            )),
        }
    }
    println!(
        "accepted and succeeded: {} of {}",
        entries.len() - failures.len(),
        entries.len()
    );
    assert!(entries.len() >= 50);
    assert!(
        failures.is_empty(),
        "legitimate reads that failed:\n{}",
        failures.join("\n")
    );
    // Spot-check that results are real data, not just "no error".
    let r = client
        .read("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT sum(i) FROM n")
        .await;
    assert_eq!(r["rows"], json!([[5050]]));
    let r = client
        .read("SELECT count(*) FILTER (WHERE status = 'paid') FROM orders")
        .await;
    assert_eq!(r["rows"], json!([[75]]));
    let r = client.read("SELECT 42 AS answer;;;").await;
    assert_eq!(r["rows"], json!([[42]]));
    // The sentinel is untouched by the acceptance corpus.
    assert_eq!(app.scalar_i64("SELECT count(*) FROM sentinel").await, 5);
    client.close().await;
    app.finish().await;
}

/// Five entries of different techniques, for the session-era and pg_tx spot-checks.
fn spot_check_entries() -> Vec<Entry> {
    let wanted = [
        "SELECT 1; DROP TABLE sentinel",
        "WITH d AS (DELETE FROM sentinel RETURNING *) SELECT * FROM d",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "COPY sentinel TO PROGRAM 'touch /tmp/coldquery_{{DB}}_program'",
    ];
    let all = bypass_corpus();
    wanted
        .iter()
        .map(|w| {
            all.iter()
                .find(|e| e.sql == *w)
                .unwrap_or_else(|| panic!("spot-check entry missing from the corpus: {w}"))
                .clone()
        })
        .collect()
}

#[tokio::test]
async fn session_era_clients_and_pg_tx_sessions_get_the_same_refusals_and_nothing_changes() {
    let app = spawn().await;
    let extensions = set_up(&app).await;
    let client = app.client(Era::Session).await;
    let mut watch = Watch::new(&app, extensions).await;
    let initial = watch.snapshot(&app, &client).await;
    let entries = spot_check_entries();
    let runs = run_corpus(
        &app,
        &client,
        &mut watch,
        &entries,
        |sql| json!({"action": "read", "sql": sql}),
    )
    .await;
    println!("{}", summary("pg_query read, Era::Session", &runs));
    for r in &runs {
        assert_eq!(r.outcome.bucket(), "refused by policy", "{}", listing([r]));
        assert!(r.changed.is_empty(), "{}", listing([r]));
    }

    // Inside a pg_tx session a read runs under a read-only savepoint: the same refusals, and a
    // write hidden in a function is stopped without poisoning the session.
    let begin = client.ok("pg_tx", json!({"action": "begin"})).await;
    let id = begin["session_id"].as_str().expect("session_id").to_owned();
    for e in &entries {
        let sql = instantiate(&e.sql, &app.db_name);
        client
            .err(
                "pg_query",
                json!({"action": "read", "sql": sql, "session_id": id}),
                "policy_denied",
            )
            .await;
    }
    // A user-defined PL/pgSQL function is procedural code: refused before it runs unless the
    // operator opts in (COLDQUERY_ALLOW_PROCEDURAL), and the session survives the refusal.
    let e = client
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT sneaky()", "session_id": id}),
            "policy_denied",
        )
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("plpgsql"),
        "{e}"
    );
    let r = client
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT count(*) FROM sentinel", "session_id": id}),
        )
        .await;
    assert_eq!(r["rows"], json!([[5]]), "the session is still usable");
    client
        .ok("pg_tx", json!({"action": "rollback", "session_id": id}))
        .await;

    assert_eq!(watch.notifications().await, None);
    let last = watch.snapshot(&app, &client).await;
    remove_corpus_files(&app.db_name);
    assert_eq!(diff(&initial, &last), Vec::<String>::new());
    client.close().await;
    app.finish().await;
}

#[tokio::test]
async fn a_dry_run_write_changes_nothing_that_a_rollback_does_not_undo() {
    // Contract §3: dry_run "never changes anything" and needs neither autocommit nor a
    // session, so whatever it runs must be undone by its ROLLBACK.
    let app = spawn().await;
    let extensions = set_up(&app).await;
    let client = app.client(Era::Stateless).await;
    let mut watch = Watch::new(&app, extensions).await;
    let initial = watch.snapshot(&app, &client).await;
    let entries = dry_run_corpus();
    let runs = run_corpus(
        &app,
        &client,
        &mut watch,
        &entries,
        |sql| json!({"action": "write", "sql": sql, "dry_run": true}),
    )
    .await;
    let notified = watch.notifications().await;
    let last = watch.snapshot(&app, &client).await;
    remove_corpus_files(&app.db_name);
    println!(
        "{}",
        summary("pg_query write, dry_run: true, Era::Stateless", &runs)
    );
    client.close().await;
    app.finish().await;
    let changed: Vec<&Run> = runs.iter().filter(|r| !r.changed.is_empty()).collect();
    println!(
        "dry runs that changed state ({}):\n{}",
        changed.len(),
        listing(changed.iter().copied())
    );
    assert!(
        entries.len() >= 15,
        "only {} dry-run entries",
        entries.len()
    );
    // The controls ran (a dry run is not refused wholesale), and undid their effects.
    let control_ran = runs
        .iter()
        .filter(|r| r.entry.technique.starts_with("controls"))
        .any(|r| matches!(r.outcome, Outcome::Ok(_)));
    assert!(control_ran, "no control entry ran:\n{}", listing(&runs));
    for r in &runs {
        if let Outcome::Ok(v) = &r.outcome {
            assert_eq!(v["dry_run"], true, "{}", listing([r]));
            assert_ne!(v["committed"], true, "{}", listing([r]));
        }
    }
    assert!(
        changed.is_empty(),
        "REAL BYPASS: these dry runs changed state:\n{}",
        listing(changed.iter().copied())
    );
    assert_eq!(notified, None);
    assert_eq!(diff(&initial, &last), Vec::<String>::new());
}

#[tokio::test]
async fn the_state_snapshot_notices_each_kind_of_side_effect_it_guards() {
    // The corpus tests are only as good as their snapshot: make each side effect for real,
    // outside the server, and check the snapshot sees it.
    let app = spawn().await;
    let extensions = set_up(&app).await;
    let client = app.client(Era::Stateless).await;
    let mut watch = Watch::new(&app, extensions.clone()).await;
    let db = app.db_name.clone();
    let file = format!("/tmp/coldquery_{db}_snapshot_check.txt");
    let mut lock_holder = PgConnection::connect_with(&db_options(&app, "cq_lock_holder"))
        .await
        .unwrap();

    let mut steps: Vec<(&str, String, String)> = vec![
        (
            "sentinel rows (values, xmin, ctid)",
            "UPDATE sentinel SET label = label WHERE id = 1".into(),
            String::new(),
        ),
        (
            "sequence bypass_seq",
            "SELECT nextval('bypass_seq')".into(),
            String::new(),
        ),
        (
            "relations",
            "CREATE TABLE pwned (id int)".into(),
            "DROP TABLE pwned".into(),
        ),
        (
            "sentinel ACL and comment",
            "COMMENT ON TABLE sentinel IS 'pwned'".into(),
            "COMMENT ON TABLE sentinel IS NULL".into(),
        ),
        (
            "functions and procedures",
            "CREATE FUNCTION pwned() RETURNS int LANGUAGE sql AS 'SELECT 1'".into(),
            "DROP FUNCTION pwned()".into(),
        ),
        (
            "roles",
            format!("CREATE ROLE {db}_evil"),
            format!("DROP ROLE {db}_evil"),
        ),
        (
            "settings on a fresh connection",
            format!("ALTER DATABASE {db} SET work_mem = '7MB'"),
            format!("ALTER DATABASE {db} RESET work_mem"),
        ),
        (
            "large objects",
            "SELECT lo_from_bytea(0, 'x')".into(),
            "SELECT lo_unlink(oid) FROM pg_largeobject_metadata".into(),
        ),
        (
            "files under /tmp",
            format!("COPY sentinel TO '{file}'"),
            String::new(),
        ),
    ];
    if extensions.contains(&"pageinspect") {
        steps.push((
            "BRIN summaries",
            "SELECT brin_summarize_new_values('brin_fixture_idx')".into(),
            String::new(),
        ));
    }
    if extensions.contains(&"pgstattuple") {
        steps.push((
            "GIN pending list",
            "SELECT gin_clean_pending_list('gin_fixture_idx')".into(),
            String::new(),
        ));
    }
    for (key, act, undo) in steps {
        if act.is_empty() {
            continue;
        }
        let before = watch.snapshot(&app, &client).await;
        app.exec(&act).await;
        let after = watch.snapshot(&app, &client).await;
        let changed = diff(&before, &after);
        assert!(
            changed.iter().any(|c| c.starts_with(key)),
            "{act}: expected a change in {key:?}, saw {changed:?}"
        );
        if !undo.is_empty() {
            app.exec(&undo).await;
        }
    }
    let _ = std::fs::remove_file(&file);

    // A session-level advisory lock held by some connection of this database.
    let before = watch.snapshot(&app, &client).await;
    sqlx::query("SELECT pg_advisory_lock(42)")
        .execute(&mut lock_holder)
        .await
        .unwrap();
    let changed = diff(&before, &watch.snapshot(&app, &client).await);
    assert!(
        changed
            .iter()
            .any(|c| c.starts_with("advisory locks in this database")),
        "{changed:?}"
    );
    let _ = lock_holder.close().await;

    // A notification reaches the listener.
    app.exec("SELECT pg_notify('cq_chan', 'snapshot check')")
        .await;
    let got = watch.notifications().await;
    assert!(
        got.as_deref().is_some_and(|n| n.contains("snapshot check")),
        "{got:?}"
    );

    // The server's pooled backend is killed: the next call runs on a new one.
    let before = watch.snapshot(&app, &client).await;
    app.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'coldquery' AND datname = current_database()",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let changed = diff(&before, &watch.snapshot(&app, &client).await);
    assert!(
        changed
            .iter()
            .any(|c| c.starts_with("the server's pooled session")),
        "{changed:?}"
    );

    // The victim is killed.
    let before = watch.snapshot(&app, &client).await;
    app.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'cq_victim' AND datname = current_database()",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let changed = diff(&before, &watch.snapshot(&app, &client).await);
    for key in ["victim connection", "victim and listener backends"] {
        assert!(
            changed.iter().any(|c| c.starts_with(key)),
            "{key}: {changed:?}"
        );
    }
    client.close().await;
    app.finish().await;
}

// -------------------------------------------------------------------------------------------
// Every other tool and action that accepts SQL
// -------------------------------------------------------------------------------------------

/// One way of sending a corpus entry to the server: the tool and its arguments for `sql`.
struct Path {
    name: &'static str,
    tool: &'static str,
    args: Box<dyn Fn(&str) -> Value>,
    /// Nothing may succeed on this path (it has no authority to run the corpus at all).
    none_succeed: bool,
}

fn path(
    name: &'static str,
    tool: &'static str,
    none_succeed: bool,
    args: impl Fn(&str) -> Value + 'static,
) -> Path {
    Path {
        name,
        tool,
        args: Box::new(args),
        none_succeed,
    }
}

/// Sends every entry along `path` and returns the outcomes. The caller snapshots around the
/// whole run (a per-entry snapshot is what the per-path tests above do for read, explain and
/// dry-run writes; here a change is attributed to the path and the listing says what ran).
async fn run_path(app: &TestApp, client: &McpClient, path: &Path, entries: &[Entry]) -> Vec<Run> {
    let mut runs = Vec::with_capacity(entries.len());
    for entry in entries {
        let sql = instantiate(&entry.sql, &app.db_name);
        let r = client.call_raw(path.tool, (path.args)(&sql)).await;
        runs.push(Run {
            entry: entry.clone(),
            sql,
            outcome: Outcome::of(&r),
            changed: Vec::new(),
        });
    }
    runs
}

#[tokio::test]
async fn the_bypass_and_dry_run_corpora_change_nothing_through_every_other_sql_tool_and_action() {
    // Issue #9: "the existing corpora run through every tool and action that accepts SQL, with
    // and without dry_run". read, explain (both ways) and dry-run writes have their own tests
    // above with a snapshot after every call; these are the remaining paths, a snapshot after
    // each path. A session's dry run runs under a savepoint in a session that is then rolled
    // back; a session's read is the savepoint read.
    let app = spawn().await;
    let extensions = set_up(&app).await;
    let client = app.client(Era::Session).await;
    let mut watch = Watch::new(&app, extensions).await;
    let mut baseline = watch.snapshot(&app, &client).await;
    let begin = client.ok("pg_tx", json!({"action": "begin"})).await;
    let sid = begin["session_id"].as_str().expect("session_id").to_owned();

    let ddl = |action: &'static str, dry_run: bool| move |sql: &str| json!({"action": action, "sql": sql, "dry_run": dry_run});
    let s1 = sid.clone();
    let s2 = sid.clone();
    let bypass_paths = vec![
        path(
            "pg_query write (no authority)",
            "pg_query",
            true,
            |sql| json!({"action": "write", "sql": sql}),
        ),
        path(
            "pg_query write, dry_run",
            "pg_query",
            false,
            |sql| json!({"action": "write", "sql": sql, "dry_run": true}),
        ),
        path(
            "pg_query transaction (no authority)",
            "pg_query",
            false,
            |sql| json!({"action": "transaction", "operations": [{"sql": sql}]}),
        ),
        path(
            "pg_query transaction, dry_run",
            "pg_query",
            false,
            |sql| json!({"action": "transaction", "operations": [{"sql": "SELECT 1"}, {"sql": sql}], "dry_run": true}),
        ),
        path(
            "pg_schema create (no authority)",
            "pg_schema",
            true,
            ddl("create", false),
        ),
        path(
            "pg_schema create, dry_run",
            "pg_schema",
            false,
            ddl("create", true),
        ),
        path(
            "pg_schema alter (no authority)",
            "pg_schema",
            true,
            ddl("alter", false),
        ),
        path(
            "pg_schema alter, dry_run",
            "pg_schema",
            false,
            ddl("alter", true),
        ),
        path(
            "pg_schema drop (no authority)",
            "pg_schema",
            true,
            ddl("drop", false),
        ),
        path(
            "pg_schema drop, dry_run",
            "pg_schema",
            false,
            ddl("drop", true),
        ),
        path(
            "pg_query read in a pg_tx session",
            "pg_query",
            false,
            move |sql| json!({"action": "read", "sql": sql, "session_id": s1}),
        ),
        path(
            "pg_query write, dry_run, in a pg_tx session",
            "pg_query",
            false,
            move |sql| json!({"action": "write", "sql": sql, "dry_run": true, "session_id": s2}),
        ),
        path(
            "pg_query read, max_rows 1 (continuation cursor)",
            "pg_query",
            false,
            |sql| json!({"action": "read", "sql": sql, "max_rows": 1}),
        ),
    ];
    let s3 = sid.clone();
    let dry_run_paths = vec![
        path(
            "pg_query transaction, dry_run",
            "pg_query",
            false,
            |sql| json!({"action": "transaction", "operations": [{"sql": sql}], "dry_run": true}),
        ),
        path(
            "pg_query write, dry_run, in a pg_tx session",
            "pg_query",
            false,
            move |sql| json!({"action": "write", "sql": sql, "dry_run": true, "session_id": s3}),
        ),
        path(
            "pg_query write (no authority)",
            "pg_query",
            true,
            |sql| json!({"action": "write", "sql": sql}),
        ),
    ];

    let mut report = String::new();
    let mut problems = Vec::new();
    let corpora = [
        ("bypass", bypass_corpus(), bypass_paths),
        ("dry_run", dry_run_corpus(), dry_run_paths),
    ];
    for (corpus, entries, paths) in &corpora {
        // The dry-run corpus's last entry would kill the victim backend: a path that ran it
        // shows in its snapshot (and the baseline moves on, so each path is judged alone).
        for p in paths {
            let runs = run_path(&app, &client, p, entries).await;
            let after = watch.snapshot(&app, &client).await;
            let changed = diff(&baseline, &after);
            baseline = after;
            report.push_str(&summary(&format!("{corpus} corpus via {}", p.name), &runs));
            if !changed.is_empty() {
                problems.push(format!(
                    "{corpus} via {} changed state: {changed:?}\nwhat succeeded:\n{}",
                    p.name,
                    listing(runs.iter().filter(|r| matches!(r.outcome, Outcome::Ok(_))))
                ));
            }
            if p.none_succeed {
                let ran: Vec<&Run> = runs
                    .iter()
                    .filter(|r| matches!(r.outcome, Outcome::Ok(_)))
                    .collect();
                if !ran.is_empty() {
                    problems.push(format!(
                        "{corpus} via {} ran without authority:\n{}",
                        p.name,
                        listing(ran)
                    ));
                }
            }
            // Nothing fails in a way the caller cannot read: every error has a category.
            let blank: Vec<&Run> = runs
                .iter()
                .filter(|r| matches!(&r.outcome, Outcome::Error { category, .. } if category == "(none)"))
                .collect();
            if !blank.is_empty() {
                problems.push(format!(
                    "{corpus} via {}: errors without a category:\n{}",
                    p.name,
                    listing(blank)
                ));
            }
        }
    }
    // The session the corpus ran in is still usable and ends cleanly; rolling it back leaves
    // the state as it was.
    let r = client
        .ok(
            "pg_query",
            json!({"action": "read", "sql": "SELECT count(*) FROM sentinel", "session_id": sid}),
        )
        .await;
    assert_eq!(r["rows"], json!([[5]]), "the session still reads");
    client
        .ok("pg_tx", json!({"action": "rollback", "session_id": sid}))
        .await;
    let notified = watch.notifications().await;
    let last = watch.snapshot(&app, &client).await;
    remove_corpus_files(&app.db_name);
    println!("{report}");
    client.close().await;
    app.finish().await;
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(diff(&baseline, &last), Vec::<String>::new());
    assert_eq!(notified, None);
}

#[tokio::test]
async fn the_accept_corpus_succeeds_through_every_read_path() {
    // Legitimate reads work wherever a read is accepted: in a read-only pg_query transaction,
    // in a pg_tx session, with a page size that opens a continuation cursor, and explained.
    let app = spawn().await;
    set_up(&app).await;
    let client = app.client(Era::Session).await;
    let begin = client.ok("pg_tx", json!({"action": "begin"})).await;
    let sid = begin["session_id"].as_str().expect("session_id").to_owned();
    let s1 = sid.clone();
    let paths = vec![
        path(
            "pg_query transaction (read-only)",
            "pg_query",
            false,
            |sql| json!({"action": "transaction", "operations": [{"sql": sql}]}),
        ),
        path(
            "pg_query read in a pg_tx session",
            "pg_query",
            false,
            move |sql| json!({"action": "read", "sql": sql, "session_id": s1}),
        ),
        path(
            "pg_query read, max_rows 1 (continuation cursor)",
            "pg_query",
            false,
            |sql| json!({"action": "read", "sql": sql, "max_rows": 1}),
        ),
        path(
            "pg_query explain",
            "pg_query",
            false,
            |sql| json!({"action": "explain", "sql": sql}),
        ),
    ];
    let entries = accept_corpus();
    let mut failures = Vec::new();
    for p in &paths {
        let runs = run_path(&app, &client, p, &entries).await;
        for r in &runs {
            // EXPLAIN and SHOW are utility statements: there is no plan of a plan.
            let explainable = !r.sql.trim_start().to_lowercase().starts_with("explain")
                && !r.sql.trim_start().to_lowercase().starts_with("show");
            if p.name == "pg_query explain" && !explainable {
                continue;
            }
            if let Outcome::Error { .. } = r.outcome {
                failures.push(format!("via {}: {}", p.name, listing([r])));
            }
        }
        // A cursor opened by a truncated read is closed again, so the cap never fills.
        for r in &runs {
            if let Outcome::Ok(v) = &r.outcome
                && let Some(c) = v["next_cursor"].as_str()
            {
                client
                    .ok("pg_query", json!({"action": "close_cursor", "cursor": c}))
                    .await;
            }
        }
    }
    client
        .ok("pg_tx", json!({"action": "rollback", "session_id": sid}))
        .await;
    assert_eq!(app.scalar_i64("SELECT count(*) FROM sentinel").await, 5);
    client.close().await;
    app.finish().await;
    assert!(
        failures.is_empty(),
        "legitimate reads refused or failed ({}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
