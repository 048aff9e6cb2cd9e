//! Configuration: one clap `Cli` whose every flag has an environment variable (contract §6),
//! plus the parsers for durations and sizes and the database connect options.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use sqlx::postgres::PgConnectOptions;

/// Where the database is when nothing is configured: the local PostgreSQL of a developer machine.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// ColdQuery: a PostgreSQL server for the Model Context Protocol.
#[derive(Debug, Parser)]
#[command(name = "coldquery", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server settings (shared by every command).
    #[command(flatten)]
    pub config: Config,
}

/// The commands of the binary.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve MCP over streamable HTTP, plus /health and /metrics (the default).
    Serve,
    /// Check configuration, connectivity and role privileges; exit 0 when usable, 1 when not.
    Check,
    /// Probe a running server's /health on this machine; exit 0 when it answers 200
    /// (for container healthchecks).
    Health,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for containers and log shippers.
    Json,
}

/// On/off switch used by flags such as `--audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// How destructive statements (DELETE/UPDATE without WHERE, TRUNCATE, DROP TABLE…) are
/// confirmed before they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfirmMode {
    /// Ask through MCP elicitation when the client offers it, else hand out a confirm token.
    On,
    /// Only a person may confirm, through MCP elicitation; a client without it cannot run
    /// destructive statements (the refusal says so, and carries no token).
    Elicit,
    /// Always a confirm token, even when the client offers elicitation.
    Token,
    /// No confirmation.
    Off,
}

/// Every setting of the server. Field docs become `--help`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Target database URL. When unset, libpq's PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE are
    /// honoured, then the DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_DATABASE variables of the
    /// Python ColdQuery, then the local default postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Address to listen on (the container sets 0.0.0.0:19002).
    #[arg(long, env = "COLDQUERY_LISTEN", default_value = "127.0.0.1:19002")]
    pub listen: SocketAddr,

    /// Host header values accepted on /mcp (DNS-rebinding protection), comma-separated;
    /// `host` or `host:port`; `*` accepts any Host.
    #[arg(
        long,
        env = "COLDQUERY_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,::1"
    )]
    pub allowed_hosts: Vec<String>,

    /// Origin header values accepted on /mcp, comma-separated (`scheme://host:port`, `:*` for any
    /// port); requests without Origin pass; `*` accepts any Origin.
    #[arg(
        long,
        env = "COLDQUERY_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:*,http://127.0.0.1:*,http://[::1]:*,https://localhost:*,https://127.0.0.1:*,https://[::1]:*"
    )]
    pub allowed_origins: Vec<String>,

    /// Extensions whose functions may run in reads, dry runs and stored code, besides the
    /// curated default list (pg_trgm, vector, citext, hstore, pgcrypto, …), comma-separated.
    #[arg(long, env = "COLDQUERY_ALLOWED_EXTENSIONS", value_delimiter = ',')]
    pub allowed_extensions: Vec<String>,

    /// Single functions (`name` or `schema.name`) allowed in reads, dry runs and stored code
    /// although the allowlist refuses them, comma-separated.
    #[arg(long, env = "COLDQUERY_ALLOWED_FUNCTIONS", value_delimiter = ',')]
    pub allowed_functions: Vec<String>,

    /// Functions (`name` or `schema.name`) refused everywhere, whatever the allowlist says
    /// (for example a user-defined function with side effects), comma-separated.
    #[arg(long, env = "COLDQUERY_EXCLUDED_FUNCTIONS", value_delimiter = ',')]
    pub excluded_functions: Vec<String>,

    /// Allow DO blocks, CALL of procedural code, calls of user-defined procedural functions and
    /// CREATE FUNCTION in procedural languages. Their dynamic SQL cannot be checked; the
    /// connection that ran them is closed afterwards, never reused.
    #[arg(long, env = "COLDQUERY_ALLOW_PROCEDURAL", default_value_t = false)]
    pub allow_procedural: bool,

    /// Connections in the pool that serves stateless calls.
    #[arg(long, env = "COLDQUERY_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,

    /// Open pg_tx sessions allowed at once (each holds its own connection).
    #[arg(long, env = "COLDQUERY_MAX_SESSIONS", default_value_t = 10)]
    pub max_sessions: usize,

    /// Idle time after which a pg_tx session is rolled back and closed (sliding).
    #[arg(long, env = "COLDQUERY_SESSION_TTL", default_value = "30m", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// Idle time after which a continuation cursor (next_cursor of a truncated read) is
    /// closed (sliding).
    #[arg(long, env = "COLDQUERY_CURSOR_TTL", default_value = "60s", value_parser = parse_duration)]
    pub cursor_ttl: Duration,

    /// Open continuation cursors one caller may hold (each pooled one holds a connection);
    /// separate from COLDQUERY_MAX_SESSIONS.
    #[arg(long, env = "COLDQUERY_MAX_CURSORS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_cursors: u32,

    /// Server-side statement_timeout for every call (SET LOCAL).
    #[arg(long, env = "COLDQUERY_STATEMENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub statement_timeout: Duration,

    /// Server-side lock_timeout for every call (SET LOCAL): how long a statement may wait for a lock.
    #[arg(long, env = "COLDQUERY_LOCK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub lock_timeout: Duration,

    /// Most rows a result carries; a larger max_rows argument is clamped to this.
    #[arg(long, env = "COLDQUERY_MAX_ROWS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_rows: u64,

    /// Connections kept open ahead for `pg_tx begin` (0: every begin connects). They count
    /// against PostgreSQL's max_connections like any other.
    #[arg(long, env = "COLDQUERY_SPARE_CONNECTIONS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub spare_connections: u16,

    /// Cost ceiling: a read, write or transaction operation whose planned total cost
    /// (PostgreSQL's planner units) is above this is refused before it runs (`cost_exceeded`).
    /// Unset: no ceiling.
    #[arg(long, env = "COLDQUERY_MAX_QUERY_COST", value_parser = parse_ceiling)]
    pub max_query_cost: Option<f64>,

    /// Like COLDQUERY_MAX_QUERY_COST, for the planner's estimate of the rows a statement
    /// produces. Unset: no ceiling.
    #[arg(long, env = "COLDQUERY_MAX_ESTIMATED_ROWS", value_parser = parse_ceiling)]
    pub max_estimated_rows: Option<f64>,

    /// Most bytes of serialized rows a result carries (at most 400KiB, so that the whole
    /// message, text copy included, stays under 1 MiB).
    #[arg(long, env = "COLDQUERY_MAX_RESULT_BYTES", default_value = "256KiB", value_parser = parse_result_bytes)]
    pub max_result_bytes: usize,

    /// Audit every write, DDL and admin action to coldquery.audit_log (created at start-up).
    #[arg(long, env = "COLDQUERY_AUDIT", default_value = "on")]
    pub audit: Switch,

    /// Bearer tokens for /mcp, comma-separated `name=token` (a bare token is named token-N);
    /// `name=token@role` runs that caller's statements as the PostgreSQL role `role`.
    /// Empty: no authentication.
    #[arg(long, env = "COLDQUERY_AUTH_TOKENS", hide_env_values = true)]
    pub auth_tokens: Option<Secret>,

    /// File of bearer tokens, one `name=token` (or `name=token@role`) per line (`#` comments
    /// allowed).
    #[arg(long, env = "COLDQUERY_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<std::path::PathBuf>,

    /// The PostgreSQL role the statements of callers without a role of their own run as
    /// (`SET LOCAL ROLE`; the login role must be a member). Unset: the login role.
    #[arg(long, env = "COLDQUERY_DEFAULT_ROLE")]
    pub default_role: Option<String>,

    /// Roles for Tailscale identities (with COLDQUERY_TRUST_TAILSCALE_HEADERS), comma-separated
    /// `login=role`, e.g. alice@example.com=app_reader.
    #[arg(long, env = "COLDQUERY_TAILSCALE_ROLES")]
    pub tailscale_roles: Option<String>,

    /// Trust the Tailscale-User-Login header as the principal. Only safe when /mcp is reachable
    /// through `tailscale serve` alone: anyone who can reach the port directly can forge it.
    #[arg(
        long,
        env = "COLDQUERY_TRUST_TAILSCALE_HEADERS",
        default_value_t = false
    )]
    pub trust_tailscale_headers: bool,

    /// Log format on stderr.
    #[arg(long, env = "COLDQUERY_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Largest accepted HTTP request body on /mcp.
    #[arg(long, env = "COLDQUERY_MAX_REQUEST_BYTES", default_value = "4MiB", value_parser = parse_size)]
    pub max_request_bytes: usize,

    /// Open pg_tx sessions one caller (principal, or MCP session without authentication) may
    /// hold at once, so that one caller's leftovers cannot use up COLDQUERY_MAX_SESSIONS.
    /// Unset: max(1, max_sessions / 2).
    #[arg(long, env = "COLDQUERY_MAX_SESSIONS_PER_CALLER", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_sessions_per_caller: Option<u32>,

    /// Concurrent pooled database calls one caller (bearer-token principal, or all anonymous
    /// callers together) may run; more wait up to 5 s, then get limit_exceeded. Unset:
    /// max(1, pool_size / 2).
    #[arg(long, env = "COLDQUERY_MAX_CONCURRENT_PER_CALLER", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_concurrent_per_caller: Option<u32>,

    /// MCP sessions (Mcp-Session-Id) open at once; one more initialize gets HTTP 503 with a
    /// JSON-RPC error naming this setting.
    #[arg(long, env = "COLDQUERY_MAX_MCP_SESSIONS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_mcp_sessions: u32,

    /// Idle time after which an MCP session that holds no pg_tx handle is closed (sessions
    /// holding a handle live as long as COLDQUERY_SESSION_TTL).
    #[arg(long, env = "COLDQUERY_MCP_SESSION_IDLE", default_value = "10m", value_parser = parse_duration)]
    pub mcp_session_idle: Duration,

    /// Time a client has to send a request's headers; a slower connection is closed. Also
    /// how long an idle keep-alive connection may wait for its next request.
    #[arg(long, env = "COLDQUERY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's whole body once its headers are in.
    #[arg(long, env = "COLDQUERY_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Serve only read-only operations: tools/list offers only tools annotated readOnlyHint,
    /// and every write, DDL, maintenance, setting change or read-write pg_tx begin is refused.
    #[arg(long, env = "COLDQUERY_READ_ONLY", default_value_t = false)]
    pub read_only: bool,

    /// Confirmation of destructive statements (DELETE/UPDATE without WHERE, TRUNCATE, DROP of a
    /// table, schema or column, ALTER COLUMN … TYPE, any DROP … CASCADE): `on` asks through MCP
    /// elicitation when the client offers it and otherwise refuses with a one-time confirm
    /// token; `elicit` accepts only elicitation; `token` always uses tokens; `off` disables it.
    #[arg(
        long,
        env = "COLDQUERY_CONFIRM_DESTRUCTIVE",
        value_enum,
        default_value = "on"
    )]
    pub confirm_destructive: ConfirmMode,
}

/// A string that must never be printed: `Debug` shows `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl Config {
    /// The per-caller session cap in effect: the setting, or max(1, max_sessions / 2).
    pub fn sessions_per_caller(&self) -> usize {
        self.max_sessions_per_caller
            .map(|n| n as usize)
            .unwrap_or((self.max_sessions / 2).max(1))
    }

    /// The per-caller limit on concurrent pooled calls, with its default resolved.
    pub fn concurrent_per_caller(&self) -> usize {
        self.max_concurrent_per_caller
            .map(|n| n as usize)
            .unwrap_or((self.pool_size as usize / 2).max(1))
    }

    /// A configuration with every default, for tests and embedding; `database_url` set.
    /// Unlike the command line it reads no `COLDQUERY_*` (or other) environment variable, so a
    /// developer's shell cannot change what a test runs against.
    pub fn with_database_url(url: &str) -> Config {
        let cmd = Cli::command().mut_args(|a| a.env(None));
        let matches = cmd
            .try_get_matches_from(["coldquery"])
            .expect("the defaults parse");
        let mut cli = Cli::from_arg_matches(&matches).expect("the defaults are a configuration");
        cli.config.database_url = Some(url.into());
        cli.config
    }

    /// Connect options for the target database, following the precedence documented on
    /// `database_url`. Never logged: the options carry the password.
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        // An empty DATABASE_URL (a blank line in an .env file) means "not set", like empty PG*.
        let url = self
            .database_url
            .as_ref()
            .filter(|u| !u.expose().trim().is_empty());
        connect_options(url, &|name| std::env::var(name).ok())
    }

    /// A description of the target that is safe to log: user@host:port/database, no password.
    pub fn database_label(&self) -> String {
        match self.connect_options() {
            Ok(o) => format!(
                "{}@{}:{}/{}",
                o.get_username(),
                o.get_host(),
                o.get_port(),
                o.get_database().unwrap_or("")
            ),
            Err(_) => "(invalid database configuration)".to_owned(),
        }
    }
}

/// A configuration problem found after parsing, e.g. a malformed DATABASE_URL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Resolve connect options: DATABASE_URL, else libpq `PG*`, else the Python version's `DB_*`,
/// else the local default. `env` is injected so that tests need not touch the process env.
pub(crate) fn connect_options(
    url: Option<&Secret>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PgConnectOptions, ConfigError> {
    let base = match url {
        Some(url) => url.expose().parse::<PgConnectOptions>().map_err(|_| {
            // The parser's message may echo the URL, password included: keep our own words.
            ConfigError(
                "DATABASE_URL is not a valid PostgreSQL URL; expected e.g. \
                 postgres://user:password@host:5432/dbname"
                    .to_owned(),
            )
        })?,
        None => {
            // Start from the local default, then let the legacy DB_* and then the libpq PG*
            // variables override field by field (PG* wins: it is what libpq users expect).
            let mut o: PgConnectOptions = DEFAULT_DATABASE_URL
                .parse()
                .expect("the default database URL is valid");
            let pick = |pg: &str, db: &str| env(pg).or_else(|| env(db)).filter(|v| !v.is_empty());
            if let Some(h) = pick("PGHOST", "DB_HOST") {
                o = o.host(&h);
            }
            if let Some(p) = pick("PGPORT", "DB_PORT") {
                let port = p.parse::<u16>().map_err(|_| {
                    ConfigError(format!(
                        "PGPORT/DB_PORT must be a port number like 5432, got {p:?}"
                    ))
                })?;
                o = o.port(port);
            }
            if let Some(u) = pick("PGUSER", "DB_USER") {
                o = o.username(&u);
            }
            if let Some(pw) = pick("PGPASSWORD", "DB_PASSWORD") {
                o = o.password(&pw);
            }
            if let Some(d) = pick("PGDATABASE", "DB_DATABASE") {
                o = o.database(&d);
            }
            o
        }
    };
    // TLS to a server on this machine buys nothing and costs a handshake per connection (about
    // 85 ms here with rustls, paid by every pg_tx begin). Unless sslmode was asked for
    // explicitly, loopback and Unix-socket targets connect without it; anything else keeps
    // libpq's default, prefer.
    let explicit_ssl = url.is_some_and(|u| u.expose().to_ascii_lowercase().contains("sslmode="))
        || env("PGSSLMODE").is_some_and(|v| !v.is_empty());
    let host = base.get_host().to_ascii_lowercase();
    let local = base.get_socket().is_some()
        || host.starts_with('/')
        || matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1" | "[::1]");
    let base = if local && !explicit_ssl {
        base.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    } else {
        base
    };
    // Fixed session settings make the text forms we return deterministic (timestamps in UTC,
    // ISO dates, postgres-style intervals), whatever the server's defaults are.
    // standard_conforming_strings is pinned because the classifier lexes SQL with it on: with
    // it off, `'\''` is one literal to libpg_query but an escaped quote to the server, and the
    // rest of the text would run unchecked. A startup option outranks ALTER ROLE/DATABASE SET.
    // The statement cache's size is fixed (a `statement-cache-capacity` in the URL is
    // overridden): `db::executor::prepare` empties the cache just before it is full, which
    // only works if it knows when that is.
    Ok(base
        .application_name("coldquery")
        .options([
            ("TimeZone", "UTC"),
            ("DateStyle", "ISO, YMD"),
            ("IntervalStyle", "postgres"),
            ("standard_conforming_strings", "on"),
        ])
        .statement_cache_capacity(crate::db::executor::STATEMENT_CACHE))
}

/// A cost or row ceiling: a positive, finite number (`1e6` and `1000000` alike).
pub fn parse_ceiling(s: &str) -> Result<f64, String> {
    match s.trim().replace('_', "").parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "invalid ceiling {s:?}: expected a positive number, e.g. 100000 or 1e6"
        )),
    }
}

/// Parse `30m`, `3s`, `500ms`, `1h`, `2d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let err = || format!("invalid duration {s:?}: expected e.g. 30s, 500ms, 30m or 1h");
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| err())?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" | "mins" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(err()),
    };
    if !secs.is_finite() || !(0.0..=365.0 * 86400.0).contains(&secs) {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse `1MiB`, `64KiB`, `256KB`, `1MB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let err = || format!("invalid size {s:?}: expected e.g. 256KiB, 1MiB or 65536");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| err())?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "kb" | "k" => 1024,
        "mib" | "mb" | "m" => 1024 * 1024,
        "gib" | "gb" | "g" => 1024 * 1024 * 1024,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// The largest `max_result_bytes`: the structured copy and the text copy of a result must fit
/// together, JSON-escaped, in the 1 MiB that default-configured SDK clients accept.
pub const MAX_RESULT_BYTES_CEILING: usize = 400 * 1024;

fn parse_result_bytes(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if !(1024..=MAX_RESULT_BYTES_CEILING).contains(&n) {
        return Err(format!(
            "{s:?} is out of range: use 1KiB..400KiB (e.g. 256KiB) so a whole result stays under 1 MiB"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
