//! ColdQuery: a PostgreSQL server for the Model Context Protocol.
//!
//! # How it fits together
//!
//! `main` parses [`config::Cli`], initialises [`telemetry`] and runs an [`app::App`]. The app
//! binds one axum router ([`http::router`]) with the MCP endpoint (rmcp's streamable HTTP
//! service, which builds one [`mcp::ColdQueryServer`] per session or per stateless request),
//! `/health` and `/metrics`. A tool call is parsed and classified by [`safety::classify`] with
//! the real PostgreSQL parser, then run by [`db::executor`] inside the transaction shape its
//! action calls for ([`db::run`]), with server-side timeouts and row/byte caps enforced
//! while rows stream in; [`db::values`] turns PostgreSQL's binary values into JSON.
// The map above names the crate's private modules on purpose: it is read with
// `cargo doc --document-private-items`, and only what the binary and the tests use is public.
#![allow(rustdoc::private_intra_doc_links)]

pub mod app;
pub mod caller;
pub mod check;
pub mod config;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod mcp;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod periodic;
pub(crate) mod safety;
pub mod state;
pub mod telemetry;
