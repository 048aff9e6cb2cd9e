//! The database goes away and comes back (issue 14, part 2). Each test starts its OWN throw-away
//! PostgreSQL cluster (`initdb` into a temporary directory, a free port, this machine's
//! PostgreSQL binaries; never the machine's own cluster), points ColdQuery at it, and stops and
//! starts that cluster under load: calls during the outage fail fast as `unavailable` saying the
//! database is unreachable, `/health` is 503 and says why, open `pg_tx` sessions report
//! `session_lost … rolled back`, and afterwards every tool serves again without restarting
//! ColdQuery, with no leaked connection and nothing half-written committed.
//!
//! The PostgreSQL binaries are found in COLDQUERY_TEST_PG_BIN, else the newest
//! /usr/lib/postgresql/*/bin. initdb refuses to run as root, so as root the cluster runs as the
//! `postgres` user (runuser) in a directory owned by it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coldquery::app::App;
use coldquery::config::Config;
use common::{Era, McpClient, text_of};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

/// Pool size for these tests: small, so that a leak would show in the connection count.
const POOL_SIZE: u32 = 3;
/// Spare connections for pg_tx begin (COLDQUERY_SPARE_CONNECTIONS).
const SPARES: i64 = 2;

/// A throw-away PostgreSQL cluster, removed on drop (stopped immediately first).
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run PostgreSQL's programs as this user (we are root).
    run_as: Option<&'static str>,
}

impl Cluster {
    /// initdb into a fresh temporary directory; the server is not started.
    fn init() -> Cluster {
        let bin = pg_bin();
        let root = is_root();
        let dir =
            std::env::temp_dir().join(format!("cq-restart-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir).expect("create the cluster's temporary directory");
        let run_as = if root {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .expect("chown the cluster directory to postgres");
            Some("postgres")
        } else {
            None
        };
        let c = Cluster {
            bin,
            dir,
            port: free_port(),
            run_as,
        };
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Run one of PostgreSQL's programs (as `postgres` when we are root); panics on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let out = match self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&exe)
                .args(args)
                .output(),
            None => Command::new(&exe).args(args).output(),
        }
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start the server and wait until it accepts connections.
    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
            self.port,
            self.dir.display()
        );
        let data = self.data();
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stop the server with `mode` (fast or immediate) and wait until it is gone.
    fn stop(&self, mode: &str) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = [
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ];
        let _ = match self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&exe)
                .args(args)
                .output(),
            None => Command::new(&exe).args(args).output(),
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_bin() -> PathBuf {
    if let Ok(p) = std::env::var("COLDQUERY_TEST_PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().expect(
        "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin: install the \
         postgresql package or set COLDQUERY_TEST_PG_BIN",
    )
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("as root the cluster runs as the postgres user: it must exist")
    };
    (id("-u"), id("-g"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// ColdQuery running in this process against `url`.
struct Server {
    addr: std::net::SocketAddr,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(url: &str) -> Server {
        let mut config = Config::with_database_url(url);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.pool_size = POOL_SIZE;
        config.spare_connections = SPARES as u16;
        config.max_sessions = 4;
        let app = App::build(config).await.expect("app builds");
        Server {
            addr: app.local_addr(),
            stop: app.shutdown_token(),
            handle: tokio::spawn(app.run_until_stopped()),
        }
    }

    fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// GET /health: status code and body.
    async fn health(&self) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("http://{}/health", self.addr))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("/health answers");
        let code = r.status().as_u16();
        (code, r.json().await.expect("/health is JSON"))
    }

    /// Poll /health until it is 200 (bounded).
    async fn wait_healthy(&self, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.health().await.0 == 200 {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "/health was not 200 within {within:?} of the database coming back: {:?}",
                self.health().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn finish(self) {
        self.stop.cancel();
        let r = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
        assert!(r.is_ok(), "ColdQuery did not shut down within 15 s");
    }
}

/// One SQL scalar on the throw-away cluster, outside ColdQuery.
async fn scalar(url: &str, sql: &str) -> i64 {
    let mut c = PgConnection::connect(url)
        .await
        .expect("verification connection");
    let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.close().await;
    v
}

async fn exec(url: &str, sql: &str) {
    let mut c = PgConnection::connect(url).await.expect("set-up connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.close().await;
}

/// ColdQuery's connections to the cluster (its application names all start with coldquery,
/// and nothing else connects there but these tests' own short verification connections).
async fn coldquery_backends(url: &str) -> i64 {
    scalar(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
         AND pid <> pg_backend_pid()",
    )
    .await
}

/// What the load saw: successes, `unavailable` errors, anything else (which fails the test),
/// and the slowest failed call.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unavailable: AtomicU64,
    other: std::sync::Mutex<Vec<String>>,
    slowest_failure_ms: AtomicU64,
}

/// Mixed load on both protocol paths until `stop`: reads, and two-row transactions whose rows
/// must never be committed one without the other.
fn spawn_load(
    url: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    seq: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    [Era::Session, Era::Stateless]
        .into_iter()
        .map(|era| {
            let (url, stop, tally, seq) = (url.clone(), stop.clone(), tally.clone(), seq.clone());
            tokio::spawn(async move {
                let c = McpClient::connect(&url, era).await;
                while !stop.load(Ordering::Relaxed) {
                    let n = seq.fetch_add(1, Ordering::Relaxed) as i64;
                    let args = if n % 2 == 0 {
                        json!({"action": "read", "sql": "SELECT count(*) AS n FROM pairs"})
                    } else {
                        json!({"action": "transaction", "autocommit": true, "operations": [
                            {"sql": "INSERT INTO pairs (pair, half) VALUES ($1, 1)", "params": [n]},
                            {"sql": "SELECT pg_sleep(0.005)"},
                            {"sql": "INSERT INTO pairs (pair, half) VALUES ($1, 2)", "params": [n]}
                        ]})
                    };
                    let started = Instant::now();
                    let r = c.call_raw("pg_query", args).await;
                    let ms = started.elapsed().as_millis() as u64;
                    if r.is_error != Some(true) {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    tally.slowest_failure_ms.fetch_max(ms, Ordering::Relaxed);
                    let text = text_of(&r);
                    if text.starts_with("unavailable") {
                        tally.unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else {
                        // A statement cut off by the shutdown itself is reported as what
                        // PostgreSQL said (57P01 admin_shutdown) or as a lost connection.
                        let e = r.structured_content.clone().unwrap_or_default();
                        let sqlstate = e["error"]["sqlstate"].as_str().unwrap_or("");
                        if !sqlstate.starts_with("57P") && !sqlstate.starts_with("08") {
                            tally.other.lock().unwrap().push(text);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                c.close().await;
            })
        })
        .collect()
}

/// Every tool answers (after the restart).
async fn every_tool_serves(c: &McpClient, tag: i64) {
    c.ok(
        "pg_query",
        json!({"action": "read", "sql": "SELECT count(*) AS n FROM pairs"}),
    )
    .await;
    c.ok(
        "pg_query",
        json!({"action": "write", "autocommit": true,
               "sql": "INSERT INTO notes (note) VALUES ($1)", "params": [format!("after-{tag}")]}),
    )
    .await;
    let s = c.ok("pg_tx", json!({"action": "begin"})).await;
    let sid = s["session_id"].as_str().unwrap().to_owned();
    c.ok(
        "pg_query",
        json!({"action": "write", "session_id": sid,
               "sql": "INSERT INTO notes (note) VALUES ($1)", "params": [format!("tx-{tag}")]}),
    )
    .await;
    let done = c
        .ok("pg_tx", json!({"action": "commit", "session_id": sid}))
        .await;
    assert_eq!(done["committed"], true, "{done}");
    c.ok("pg_schema", json!({"action": "list"})).await;
    c.ok("pg_schema", json!({"action": "describe", "name": "notes"}))
        .await;
    c.ok("pg_monitor", json!({"action": "health"})).await;
    c.ok("pg_admin", json!({"action": "settings"})).await;
}

/// The outage itself, with `mode` (fast or immediate).
async fn outage_and_recovery(cluster: &Cluster, server: &Server, mode: &str, round: i64) {
    let url = cluster.url();
    let mcp = server.mcp_url();
    let c = McpClient::connect(&mcp, Era::Session).await;

    // An open transaction with an uncommitted row in it.
    let s = c.ok("pg_tx", json!({"action": "begin"})).await;
    let sid = s["session_id"].as_str().unwrap().to_owned();
    c.ok(
        "pg_query",
        json!({"action": "write", "session_id": sid,
               "sql": "INSERT INTO notes (note) VALUES ($1)", "params": [format!("lost-{round}")]}),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let seq = Arc::new(AtomicU64::new(round as u64 * 1_000_000));
    let load = spawn_load(mcp.clone(), stop.clone(), tally.clone(), seq);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = tally.ok.load(Ordering::Relaxed);
    assert!(
        before > 0,
        "the load made no successful call before the outage"
    );

    cluster.stop(mode);

    // Health: 503, and it says why.
    let (code, body) = server.health().await;
    assert_eq!(code, 503, "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot connect") || reason.contains("refused"),
        "/health must say the database cannot be reached, said: {body}"
    );

    // A call fails as unavailable, names the cause, and does not hang. The first may wait for
    // the pool's acquire timeout (5 s); once the database is known down they answer at once.
    for i in 0..3 {
        let started = Instant::now();
        let e = c
            .err(
                "pg_query",
                json!({"action": "read", "sql": "SELECT 1"}),
                "unavailable",
            )
            .await;
        let took = started.elapsed();
        let msg = e["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("unreachable") && !msg.contains("busy"),
            "the error must say the database is unreachable (not that the pool is busy): {msg}"
        );
        // The first waits at most for the probe after 250 ms; then the database is known down.
        let limit = if i == 0 { 1_500 } else { 1_000 };
        assert!(
            took < Duration::from_millis(limit),
            "call {i} during the outage took {took:?} (limit {limit} ms)"
        );
    }
    // A new transaction cannot start either, and says why.
    let started = Instant::now();
    let e = c
        .err("pg_tx", json!({"action": "begin"}), "unavailable")
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unreachable"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "pg_tx begin hung"
    );

    // The open session: lost, rolled back.
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "session_id": sid, "sql": "SELECT 1"}),
            "session_lost",
        )
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rolled back"),
        "{e}"
    );

    // Keep the database down a while under the load, so that it meets the outage for sure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.start();
    let took = server.wait_healthy(Duration::from_secs(20)).await;
    eprintln!("{mode}: /health 200 again {took:?} after the database started");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for h in load {
        h.await.expect("load task");
    }

    let others = tally.other.lock().unwrap().clone();
    assert!(
        others.is_empty(),
        "calls failed with something other than unavailable or a shutdown error: {others:?}"
    );
    let ok = tally.ok.load(Ordering::Relaxed);
    let unavailable = tally.unavailable.load(Ordering::Relaxed);
    let slowest = tally.slowest_failure_ms.load(Ordering::Relaxed);
    eprintln!(
        "{mode}: load calls ok {ok} (before the stop {before}), unavailable {unavailable}, slowest failure {slowest} ms"
    );
    assert!(unavailable > 0, "the load never saw the outage");
    assert!(ok > before, "the load never succeeded after the restart");
    assert!(
        slowest < 1_500,
        "a call hung {slowest} ms during the outage (the probe runs after 250 ms)"
    );

    // The same session handle stays gone; everything else serves, without restarting ColdQuery.
    c.err(
        "pg_query",
        json!({"action": "read", "session_id": sid, "sql": "SELECT 1"}),
        "session_lost",
    )
    .await;
    every_tool_serves(&c, round).await;
    let s = McpClient::connect(&mcp, Era::Stateless).await;
    every_tool_serves(&s, round + 100).await;
    s.close().await;
    c.close().await;

    // Nothing half-written: the lost transaction's row is absent, every pair is whole.
    assert_eq!(
        scalar(
            &url,
            &format!("SELECT count(*) FROM notes WHERE note = 'lost-{round}'")
        )
        .await,
        0,
        "the lost session's uncommitted row was committed"
    );
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM (SELECT pair FROM pairs GROUP BY pair HAVING count(*) <> 2) h"
        )
        .await,
        0,
        "a transaction was half committed"
    );
    assert!(scalar(&url, "SELECT count(*) FROM pairs").await > 0);
}

/// No leak: once idle, ColdQuery holds at most its pool, the health and monitor connections, the
/// audit pool (2) and the spare connections for begin.
async fn no_connection_leaked(url: &str) {
    let bound = POOL_SIZE as i64 + 2 + 2 + SPARES;
    // A connection closed on purpose (an abandoned one-statement read) or a probe's connection
    // leaves pg_stat_activity a moment later: allow a few seconds for those to go.
    let mut n = coldquery_backends(url).await;
    for _ in 0..50 {
        if n <= bound {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        n = coldquery_backends(url).await;
    }
    let by_name: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT application_name, count(*) FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1",
    )
    .fetch_all(&mut sqlx::PgConnection::connect(url).await.unwrap())
    .await
    .unwrap_or_default();
    assert!(
        n <= bound,
        "{n} ColdQuery connections to the database after recovery (at most {bound}: pool \
         {POOL_SIZE}, health and monitor 2, audit 2, spares {SPARES}): {by_name:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_fails_fast_then_every_tool_serves_again() {
    let cluster = Cluster::init();
    cluster.start();
    let url = cluster.url();
    exec(
        &url,
        "CREATE TABLE pairs (id bigserial PRIMARY KEY, pair bigint NOT NULL, half int NOT NULL); \
         CREATE TABLE notes (id bigserial PRIMARY KEY, note text NOT NULL)",
    )
    .await;
    let server = Server::start(&url).await;
    server.wait_healthy(Duration::from_secs(20)).await;

    outage_and_recovery(&cluster, &server, "fast", 1).await;
    no_connection_leaked(&url).await;
    outage_and_recovery(&cluster, &server, "immediate", 2).await;
    no_connection_leaked(&url).await;

    server.finish().await;
    // Shut down: every connection of ColdQuery's is closed.
    let mut left = 0;
    for _ in 0..50 {
        left = coldquery_backends(&url).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "connections left open after ColdQuery shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_unreachable_at_start_up_is_reported_and_served_once_it_is_up() {
    let cluster = Cluster::init();
    let url = cluster.url();
    // Nothing listens on the cluster's port yet.
    let server = Server::start(&url).await;
    let (code, body) = server.health().await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot connect"),
        "/health must say it cannot connect: {body}"
    );
    let c = McpClient::connect(&server.mcp_url(), Era::Stateless).await;
    let started = Instant::now();
    let e = c
        .err(
            "pg_query",
            json!({"action": "read", "sql": "SELECT 1"}),
            "unavailable",
        )
        .await;
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("unreachable") && msg.contains("connection refused"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    cluster.start();
    exec(
        &url,
        "CREATE TABLE pairs (id bigserial PRIMARY KEY, pair bigint NOT NULL, half int NOT NULL); \
         CREATE TABLE notes (id bigserial PRIMARY KEY, note text NOT NULL)",
    )
    .await;
    let took = server.wait_healthy(Duration::from_secs(20)).await;
    eprintln!("/health 200 {took:?} after the database started");
    every_tool_serves(&c, 1).await;
    // The audit log was migrated once the database came up, and records the calls.
    let mut audited = 0;
    for _ in 0..150 {
        audited = scalar(
            &url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'coldquery' AND tablename = 'audit_log'",
        )
        .await;
        if audited == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        audited, 1,
        "the audit log was not created once the database came up"
    );
    c.close().await;
    no_connection_leaked(&url).await;
    server.finish().await;
}
