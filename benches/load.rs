//! Load generator: drives a running ColdQuery over streamable HTTP with N concurrent MCP
//! sessions (rmcp's real client) and reports calls/s, latency percentiles and the server's RSS.
//!
//! ```sh
//! cargo bench --bench load -- --scenario point --sessions 8 --seconds 10
//! ```
//! Options: `--url` (default http://127.0.0.1:19002/mcp), `--database-url` (for set-up; default
//! the local PostgreSQL), `--scenario point|wide|tx`, `--sessions N`, `--seconds S`,
//! `--server-pid PID` (else the first process named `coldquery`).
//!
//! Scenarios: `point` = pg_query read `SELECT * FROM bench_points WHERE id = $1` on 100k rows;
//! `wide` = a 10,000-row × 12-column SELECT (returned up to the server's caps);
//! `tx` = pg_tx begin → 3 pg_query writes → commit, timed as one round trip;
//! `idle` = open N MCP sessions and hold them (RSS is sampled while all are open).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};

struct Opts {
    url: String,
    database_url: String,
    scenario: String,
    sessions: usize,
    seconds: u64,
    server_pid: Option<u32>,
}

fn opts() -> Opts {
    let mut o = Opts {
        url: "http://127.0.0.1:19002/mcp".into(),
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        scenario: "point".into(),
        sessions: 8,
        seconds: 10,
        server_pid: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--url" => o.url = v,
            "--database-url" => o.database_url = v,
            "--scenario" => o.scenario = v,
            "--sessions" => o.sessions = v.parse().expect("--sessions N"),
            "--seconds" => o.seconds = v.parse().expect("--seconds S"),
            "--server-pid" => o.server_pid = Some(v.parse().expect("--server-pid PID")),
            // cargo bench passes --bench; ignore anything else.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

async fn setup(database_url: &str) {
    let pool = sqlx::PgPool::connect(database_url)
        .await
        .expect("connect for set-up");
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS bench_points (id int PRIMARY KEY, name text, score float8);
         INSERT INTO bench_points SELECT g, 'name ' || g, g * 0.5 FROM generate_series(1, 100000) g
           ON CONFLICT DO NOTHING;
         CREATE TABLE IF NOT EXISTS bench_wide (id int PRIMARY KEY, a int, b int8, c numeric, d text,
           e text, f bool, g timestamptz, h date, i float8, j jsonb, k uuid);
         INSERT INTO bench_wide SELECT x, x, x * 1000, x / 7.0, 'text ' || x, md5(x::text), x % 2 = 0,
           '2026-01-01'::timestamptz + x * interval '1 minute', '2026-01-01'::date + x % 365, x * 1.5,
           jsonb_build_object('n', x), md5(x::text)::uuid FROM generate_series(1, 10000) x
           ON CONFLICT DO NOTHING;
         CREATE TABLE IF NOT EXISTS bench_tx (id bigserial PRIMARY KEY, v int);
         ANALYZE bench_points; ANALYZE bench_wide;",
    )
    .execute(&pool)
    .await
    .expect("set-up SQL");
    pool.close().await;
}

async fn call(c: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Value {
    let Value::Object(map) = args else {
        unreachable!()
    };
    let r = c
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
        .await
        .expect("tools/call");
    assert_ne!(r.is_error, Some(true), "call failed: {:?}", r.content);
    r.structured_content.unwrap_or(Value::Null)
}

async fn worker(o: &Opts, n: usize, deadline: Instant, ready: &AtomicUsize) -> Vec<Duration> {
    let transport = StreamableHttpClientTransport::from_uri(o.url.clone());
    let c =
        ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
            .await
            .expect("connect");
    ready.fetch_add(1, Ordering::SeqCst);
    let mut lat = Vec::new();
    let mut k: u64 = n as u64 * 7919;
    while Instant::now() < deadline {
        k = k
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let started = Instant::now();
        match o.scenario.as_str() {
            "point" => {
                let id = (k >> 33) % 100_000 + 1;
                call(&c, "pg_query", json!({"action": "read", "sql": "SELECT * FROM bench_points WHERE id = $1", "params": [id]})).await;
            }
            "wide" => {
                call(
                    &c,
                    "pg_query",
                    json!({"action": "read", "sql": "SELECT * FROM bench_wide"}),
                )
                .await;
            }
            "tx" => {
                let b = call(&c, "pg_tx", json!({"action": "begin"})).await;
                let id = b["session_id"].as_str().expect("session_id").to_owned();
                for v in 0..3 {
                    call(&c, "pg_query", json!({"action": "write", "sql": "INSERT INTO bench_tx (v) VALUES ($1)", "params": [v], "session_id": id})).await;
                }
                call(&c, "pg_tx", json!({"action": "commit", "session_id": id})).await;
            }
            "idle" => {
                // Hold the MCP session open and do nothing: measures per-session memory.
                tokio::time::sleep_until(deadline.into()).await;
                continue;
            }
            other => panic!("unknown scenario {other}: use point, wide, tx or idle"),
        }
        lat.push(started.elapsed());
    }
    let _ = c.cancel().await;
    lat
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let pid = pid.or_else(|| {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).ok()?;
            (comm.trim() == "coldquery").then_some(p)
        })
    })?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let o = opts();
    setup(&o.database_url).await;
    if o.sessions == 0 {
        return; // set-up only
    }
    let rss_before = rss_kib(o.server_pid);
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let ready = AtomicUsize::new(0);
    let workers = (0..o.sessions).map(|n| worker(&o, n, deadline, &ready));
    // The server's RSS while every session is open: once all have initialized and a second
    // more has passed (or at the deadline). Sampled after the run, it would race the
    // clients' closing of their sessions.
    let held = async {
        while ready.load(Ordering::SeqCst) < o.sessions && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let settle = Instant::now() + Duration::from_secs(1);
        tokio::time::sleep_until(settle.min(deadline).into()).await;
        (ready.load(Ordering::SeqCst), rss_kib(o.server_pid))
    };
    let (all, (open_at_sample, rss_held)) = tokio::join!(futures::future::join_all(workers), held);
    let mut all: Vec<Duration> = all.into_iter().flatten().collect();
    let elapsed = started.elapsed().as_secs_f64();
    let rss_after = rss_kib(o.server_pid);
    all.sort();
    println!(
        "scenario={} sessions={} calls={} calls_per_s={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} server_rss_kib_before={} server_rss_kib_held={} sessions_open_when_held={} server_rss_kib_after={}",
        o.scenario,
        o.sessions,
        all.len(),
        all.len() as f64 / elapsed,
        pct(&all, 0.50),
        pct(&all, 0.90),
        pct(&all, 0.99),
        rss_before
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
        rss_held
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
        open_at_sample,
        rss_after
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
    );
}
