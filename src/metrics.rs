//! A small Prometheus registry (counters and histograms with labels) and the `/metrics`
//! text rendering. Hand-rolled: the handful of series we export do not justify a metrics stack.
//! At the crate root because the database layer (sessions, spares) counts into it as well as the
//! HTTP layer, and `db` must not import `http`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Latency buckets in seconds: sub-millisecond point reads up to the 30 s statement timeout.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// Name, type and help of every series we export, so `# HELP`/`# TYPE` are always right.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "coldquery_http_requests_total",
        "counter",
        "HTTP requests by route and status.",
    ),
    (
        "coldquery_tool_calls_total",
        "counter",
        "Tool calls by tool, action and outcome (ok or an error category).",
    ),
    (
        "coldquery_direct_tool_calls_total",
        "counter",
        "Stateless (2026-07-28) tools/call requests served without rmcp's per-request service.",
    ),
    (
        "coldquery_direct_session_tool_calls_total",
        "counter",
        "MCP session (2025-11-25) tools/call requests served on the session's handler without rmcp's service loop.",
    ),
    (
        "coldquery_tool_call_duration_seconds",
        "histogram",
        "Tool call latency by tool and action.",
    ),
    (
        "coldquery_policy_refusals_total",
        "counter",
        "Calls refused by the safety policy, by tool and action.",
    ),
    (
        "coldquery_truncated_results_total",
        "counter",
        "Results cut at a cap, by reason (rows or bytes).",
    ),
    (
        "coldquery_database_errors_total",
        "counter",
        "Database errors by SQLSTATE class (first two characters).",
    ),
    (
        "coldquery_pool_connections",
        "gauge",
        "Stateless pool connections by state (idle, in_use).",
    ),
    (
        "coldquery_pool_max_connections",
        "gauge",
        "Configured size of the stateless pool.",
    ),
    (
        "coldquery_sessions_open",
        "gauge",
        "pg_tx sessions open now.",
    ),
    (
        "coldquery_mcp_sessions_open",
        "gauge",
        "2025-11-25 MCP sessions open now (capped by COLDQUERY_MAX_MCP_SESSIONS).",
    ),
    (
        "coldquery_mcp_session_loops",
        "gauge",
        "2025-11-25 MCP sessions with an rmcp service loop running now (an idle session has none).",
    ),
    (
        "coldquery_sessions_total",
        "counter",
        "pg_tx session events: begun, committed, rolled_back, reaped, refused, lost, closed_with_mcp_session.",
    ),
    (
        "coldquery_spare_connections",
        "gauge",
        "Connections opened ahead for pg_tx begin, ready now.",
    ),
    (
        "coldquery_spare_connections_total",
        "counter",
        "Spare connection events: opened, used (a begin took one), missed (none was ready), recycled (too old), failed (could not open), returned (a finished session's connection reset for reuse), discarded (a finished session's connection closed instead: set full, reset failed, or idle extra).",
    ),
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// The process-wide registry; one lives in `AppState`.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Point-in-time values sampled when `/metrics` is scraped.
pub struct Gauges {
    /// Idle connections in the stateless pool.
    pub pool_idle: u64,
    /// Connections in use in the stateless pool.
    pub pool_in_use: u64,
    /// Configured pool size.
    pub pool_max: u64,
    /// Open pg_tx sessions.
    pub sessions_open: u64,
    /// Spare connections ready for begin.
    pub spares_ready: u64,
    /// Open 2025-11-25 MCP sessions.
    pub mcp_sessions_open: u64,
    /// Of those, the ones with a service loop running.
    pub mcp_session_loops: u64,
}

/// `k1="v1",k2="v2"` with the values escaped as the exposition format wants. Built on every
/// counter and histogram update, so in one pass and one allocation.
fn label_string(labels: &[(&str, &str)]) -> String {
    let len: usize = labels.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut s = String::with_capacity(len);
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps inconsistent in a way that
        // matters for counters, so recover from poisoning instead of failing every scrape.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add one to a counter.
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        *self
            .lock()
            .counters
            .entry((name, label_string(labels)))
            .or_default() += 1;
    }

    /// Record one observation (seconds) in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&str, &str)], seconds: f64) {
        let mut inner = self.lock();
        let h = inner
            .histograms
            .entry((name, label_string(labels)))
            .or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.buckets[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// A counter's current value (tests and the health page use it).
    pub fn counter(&self, name: &'static str, labels: &[(&str, &str)]) -> u64 {
        self.lock()
            .counters
            .get(&(name, label_string(labels)))
            .copied()
            .unwrap_or(0)
    }

    /// Render everything in the Prometheus text exposition format.
    pub fn render(&self, g: &Gauges) -> String {
        let inner = self.lock();
        let mut out = String::with_capacity(4096);
        for (family, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
            match *kind {
                "counter" => {
                    for ((name, labels), v) in
                        inner.counters.iter().filter(|((n, _), _)| n == family)
                    {
                        let _ = writeln!(out, "{name}{{{labels}}} {v}");
                    }
                }
                "histogram" => {
                    for ((name, labels), h) in
                        inner.histograms.iter().filter(|((n, _), _)| n == family)
                    {
                        let sep = if labels.is_empty() { "" } else { "," };
                        for (i, le) in BUCKETS.iter().enumerate() {
                            let _ = writeln!(
                                out,
                                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                                h.buckets[i]
                            );
                        }
                        let _ =
                            writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
                        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
                    }
                }
                _ => match *family {
                    "coldquery_pool_connections" => {
                        let _ = writeln!(out, "{family}{{state=\"idle\"}} {}", g.pool_idle);
                        let _ = writeln!(out, "{family}{{state=\"in_use\"}} {}", g.pool_in_use);
                    }
                    "coldquery_pool_max_connections" => {
                        let _ = writeln!(out, "{family} {}", g.pool_max);
                    }
                    "coldquery_mcp_sessions_open" => {
                        let _ = writeln!(out, "{family} {}", g.mcp_sessions_open);
                    }
                    "coldquery_mcp_session_loops" => {
                        let _ = writeln!(out, "{family} {}", g.mcp_session_loops);
                    }
                    "coldquery_sessions_open" => {
                        let _ = writeln!(out, "{family} {}", g.sessions_open);
                    }
                    "coldquery_spare_connections" => {
                        let _ = writeln!(out, "{family} {}", g.spares_ready);
                    }
                    _ => {}
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_prometheus_text() {
        let m = Metrics::default();
        m.inc(
            "coldquery_tool_calls_total",
            &[("tool", "pg_query"), ("action", "read"), ("outcome", "ok")],
        );
        m.inc(
            "coldquery_tool_calls_total",
            &[("tool", "pg_query"), ("action", "read"), ("outcome", "ok")],
        );
        m.observe(
            "coldquery_tool_call_duration_seconds",
            &[("tool", "pg_query"), ("action", "read")],
            0.003,
        );
        let g = Gauges {
            pool_idle: 2,
            pool_in_use: 1,
            pool_max: 10,
            sessions_open: 0,
            spares_ready: 2,
            mcp_sessions_open: 3,
            mcp_session_loops: 1,
        };
        let text = m.render(&g);
        assert!(text.contains(
            "coldquery_tool_calls_total{tool=\"pg_query\",action=\"read\",outcome=\"ok\"} 2"
        ));
        assert!(text.contains(
            "coldquery_tool_call_duration_seconds_bucket{tool=\"pg_query\",action=\"read\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains(
            "coldquery_tool_call_duration_seconds_bucket{tool=\"pg_query\",action=\"read\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("coldquery_pool_connections{state=\"in_use\"} 1"));
        assert!(text.contains("coldquery_mcp_sessions_open 3"));
        assert!(text.contains("\ncoldquery_mcp_session_loops 1\n"));
        assert!(text.contains("# TYPE coldquery_tool_call_duration_seconds histogram"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_string(&[("a", "x\"y\\z")]), "a=\"x\\\"y\\\\z\"");
        assert_eq!(
            label_string(&[("tool", "pg_query"), ("why", "a\nb")]),
            "tool=\"pg_query\",why=\"a\\nb\""
        );
        assert_eq!(label_string(&[]), "");
    }
}
