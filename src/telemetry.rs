//! Logging set-up: `tracing` to stderr, as text or JSON, filtered by `RUST_LOG`.
//! Stdout stays free (a stdio transport may need it one day).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber. Call once, from `main`.
pub fn init(format: LogFormat) {
    // sqlx logs every statement at INFO, literal SQL included: keep it at WARN unless asked.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rmcp=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}
