//! `App`: build (pools, router, listener), run until SIGTERM/SIGINT or a cancel, shut down in
//! order: stop accepting, let rmcp close its sessions, then close the pools.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Switch};
use crate::db::Pools;
use crate::db::audit::Audit;
use crate::db::executor::Limits;
use crate::db::sessions::Sessions;
use crate::http;
use crate::metrics::Metrics;
use crate::state::AppState;

/// A built server, bound to its port, not yet serving.
pub struct App {
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
}

impl App {
    /// Bind the listener and create the (lazy) pools. Does not need the database to be up.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let options = config
            .connect_options()
            .context("reading the database configuration")?;
        let limits = Limits {
            max_rows: config.max_rows as usize,
            max_bytes: config.max_result_bytes,
            statement_timeout: config.statement_timeout,
            lock_timeout: config.lock_timeout,
            fresh_statements: false,
            uncached: false,
            ceiling: crate::db::cost::Ceiling::default(),
        };
        let pools = Pools::connect_lazy(options.clone(), config.pool_size, &limits);
        let metrics = Arc::new(Metrics::default());
        let cursors = crate::db::cursors::Cursors::new(
            options.clone(),
            config.cursor_ttl,
            config.max_cursors as usize,
            limits,
            pools.health.clone(),
        );
        let sessions = Sessions::new(
            options.clone(),
            config.max_sessions,
            config.session_ttl,
            limits,
            metrics.clone(),
            pools.health.clone(),
        )
        .with_max_per_owner(config.sessions_per_caller())
        .with_cursors(cursors)
        // A connection that may have run procedural code is closed, never reused (contract).
        .with_spares(config.spare_connections as usize, !config.allow_procedural);
        let auth = crate::http::auth::AuthConfig::from_config(&config)
            .map_err(anyhow::Error::msg)
            .context("reading the bearer tokens")?;
        if config.allow_procedural && !auth.mapped_roles().is_empty() {
            // Procedural code is not checked statement by statement, and `RESET ROLE` in a DO
            // block or a plpgsql function would run the rest as the login role.
            anyhow::bail!(
                "COLDQUERY_ALLOW_PROCEDURAL=true cannot be combined with caller roles \
                 (name=token@role, COLDQUERY_TAILSCALE_ROLES, COLDQUERY_DEFAULT_ROLE): procedural \
                 code could RESET ROLE and run as the login role; turn one of them off"
            );
        }
        let audit = Audit::new(options.clone(), config.audit == Switch::On);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {} (COLDQUERY_LISTEN)", config.listen))?;
        let rules = crate::safety::functions::Rules::new(
            &config.allowed_extensions,
            &config.allowed_functions,
            &config.excluded_functions,
            config.allow_procedural,
        );
        let catalog = crate::db::catalog::CatalogCache::new(pools.clone());
        let caller_limits = Arc::new(crate::db::per_caller::CallerLimits::new(
            config.concurrent_per_caller(),
            // As long as a pool acquire may wait: a caller queues behind its own calls as it
            // did behind a full pool, but never behind anyone else's.
            std::time::Duration::from_secs(5),
        ));
        let state = AppState {
            catalog,
            rules: Arc::new(rules),
            caller_limits,
            pools,
            audit,
            auth: Arc::new(auth),
            sessions,
            metrics,
            started: Instant::now(),
            confirmations: Arc::new(crate::mcp::confirm::Confirmations::new()),
            // A session is closed after this much inactivity whatever it holds. It must outlive
            // the pg_tx session TTL, or a quiet client would lose its open transaction early.
            mcp_sessions: Arc::new(crate::http::mcp_sessions::BoundedSessions::new(
                config.max_mcp_sessions as usize,
                config.session_ttl.max(std::time::Duration::from_secs(300)),
            )),
            config: Arc::new(config),
        };
        Ok(App {
            listener,
            state,
            shutdown: CancellationToken::new(),
        })
    }

    /// The address actually bound (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// A token that stops the server when cancelled (tests use it instead of a signal).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The shared state (tests read metrics from it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serve until SIGTERM/SIGINT or the shutdown token, then shut down gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let App {
            listener,
            state,
            shutdown,
        } = self;
        let addr = listener.local_addr().ok();
        let router = http::router(state.clone(), shutdown.child_token());
        tracing::info!(
            listen = ?addr,
            database = %state.config.database_label(),
            version = env!("CARGO_PKG_VERSION"),
            "coldquery serving MCP on /mcp"
        );
        let reaper = state.sessions.spawn_reaper(shutdown.clone());
        state.pools.spawn_warm_sweeper(shutdown.clone());
        if state.auth.enabled() {
            tracing::info!("bearer tokens required on /mcp");
        } else {
            tracing::warn!(
                "no COLDQUERY_AUTH_TOKENS: /mcp accepts any client that passes the Host/Origin checks"
            );
        }
        let startup = {
            let state = state.clone();
            // Migrations and the privilege report wait for the database without delaying
            // readiness: /health answers (503) even while PostgreSQL is still starting.
            tokio::spawn(async move {
                state.audit.migrate().await;
                crate::check::warn_about_privileges(&state.pools.health).await;
                crate::check::warn_about_caller_roles(
                    &state.pools.health,
                    &state.auth.mapped_roles(),
                )
                .await;
            })
        };
        let stop = shutdown.clone();
        let mcp_sessions = state.mcp_sessions.clone();
        let timeouts = http::serve::Timeouts {
            header: state.config.header_read_timeout,
            body: state.config.body_read_timeout,
        };
        http::serve::serve(listener, router, timeouts, async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = shutdown_signal() => {}
            }
            tracing::info!("shutting down: no new requests; closing MCP sessions");
            // Cancelling the token makes rmcp end its SSE streams and sessions, which lets
            // the graceful shutdown finish instead of waiting on long-lived streams.
            stop.cancel();
            mcp_sessions.close_all();
        })
        .await;
        // Order matters: no request is running now, so every open transaction is rolled back
        // and its connection closed before the pools go.
        reaper.abort();
        startup.abort();
        state.sessions.close_all().await;
        state.audit.close().await;
        state.pools.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
