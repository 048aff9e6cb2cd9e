//! The MCP server handler: identity and instructions, the tool list with flat input schemas and
//! output schemas, and dispatch of `tools/call` to the tool families with metrics around it.
//! The tools return a typed [`render::Outcome`]; `tools/call` ([`call`]) reads the truncation
//! from it, then turns it into JSON once for the audit log and the rendered result. Tool and
//! action names are the enums of [`names`]: `tools/call` parses the tool's name once, `dispatch`
//! matches on it.

pub(crate) mod admin;
pub(crate) mod call;
pub(crate) mod catalog;
pub(crate) mod common;
pub(crate) mod complete;
pub(crate) mod confirm;
pub(crate) mod cursor;
pub(crate) mod gate;
mod instructions;
pub(crate) mod monitor;
pub(crate) mod names;
pub(crate) mod progress;
pub(crate) mod prompts;
pub(crate) mod query;
pub(crate) mod read;
pub(crate) mod render;
pub(crate) mod resources;
pub(crate) mod results;
pub(crate) mod schema;
pub(crate) mod support;
pub(crate) mod tools;
pub(crate) mod tx;

use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::ToolError;
use crate::state::AppState;
use instructions::{INSTRUCTIONS, READ_ONLY_INSTRUCTIONS};
use names::ToolName;
use render::Outcome;

/// One instance per MCP session (or per request for stateless clients): cheap to build, since
/// it only clones `AppState`'s `Arc`s.
#[derive(Clone)]
pub struct ColdQueryServer {
    state: AppState,
    tag: std::sync::Arc<McpSessionTag>,
    /// The least severe level this MCP session wants as `notifications/message` (set by
    /// `logging/setLevel`; rank of [`log_rank`]). Warnings are sent until a client says otherwise.
    log_level: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// Severity rank of an MCP logging level (debug 0 … emergency 7).
#[allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); 2025-era clients still use it.
fn log_rank(level: rmcp::model::LoggingLevel) -> u8 {
    use rmcp::model::LoggingLevel as L;
    match level {
        L::Debug => 0,
        L::Info => 1,
        L::Notice => 2,
        L::Warning => 3,
        L::Error => 4,
        L::Critical => 5,
        L::Alert => 6,
        L::Emergency => 7,
    }
}

/// Remembers which MCP session this handler serves. rmcp drops the handler when the MCP
/// session ends (HTTP DELETE or its keep-alive expiry); the last clone's drop then rolls back
/// and closes every pg_tx handle that MCP session owned (only unauthenticated callers' handles
/// are owned by an MCP session; a principal's outlive it unless the client DELETEs it). Closing
/// is idempotent, so a second trigger does no harm.
struct McpSessionTag {
    id: std::sync::OnceLock<String>,
    /// Set by `initialize`: only a handler rmcp built for an MCP session gets that call, so a
    /// handler without it serves one stateless request, whose `Mcp-Session-Id` is ignored.
    in_session: std::sync::atomic::AtomicBool,
    sessions: crate::db::sessions::Sessions,
}

impl Drop for McpSessionTag {
    fn drop(&mut self) {
        if let Some(id) = self.id.get() {
            let owner = format!("mcp:{id}");
            let sessions = self.sessions.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { sessions.close_owned_by(&owner).await });
            }
        }
    }
}

fn parse_args<T: serde::de::DeserializeOwned>(tool: ToolName, args: Value) -> Result<T, ToolError> {
    serde_json::from_value(args).map_err(|e| {
        ToolError::InvalidInput(format!(
            "bad arguments for {}: {e}; see the tool's input schema",
            tool.name()
        ))
    })
}

impl ColdQueryServer {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        let tag = std::sync::Arc::new(McpSessionTag {
            id: std::sync::OnceLock::new(),
            in_session: std::sync::atomic::AtomicBool::new(false),
            sessions: state.sessions.clone(),
        });
        ColdQueryServer {
            state,
            tag,
            log_level: std::sync::Arc::new(std::sync::atomic::AtomicU8::new(3)),
        }
    }

    /// The caller of this request as ownership sees it: stateless calls ignore any
    /// `Mcp-Session-Id`; calls in an MCP session carry the id rmcp routed them by (the HTTP
    /// layer has already checked that the principal initialized it).
    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        let caller = caller_of(context);
        if !self
            .tag
            .in_session
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return caller.stateless();
        }
        // The session's first call through rmcp: its later ones can skip rmcp's service loop.
        if let Some(id) = &caller.mcp_session
            && self.tag.id.set(id.clone()).is_ok()
        {
            let calls = call::SessionCalls::new(self.clone(), context.peer.clone());
            self.state.mcp_sessions.attach(id, calls);
        }
        caller
    }

    async fn dispatch(
        &self,
        tool: ToolName,
        caller: &Caller,
        args: Value,
        ask: confirm::Ask<'_>,
    ) -> Result<Outcome, ToolError> {
        let (tool, args) = if tool == ToolName::Read {
            read::route(args)?
        } else {
            (tool, args)
        };
        if self.state.config.read_only
            && let Some(refusal) = read::read_only_refusal(tool, &args)
        {
            return Err(refusal);
        }
        // Calls served by the shared main pool count against the caller's share of it;
        // pg_tx and session calls have dedicated connections, pg_monitor a pool of its own.
        let pooled = !matches!(tool, ToolName::Tx | ToolName::Monitor)
            && args.get("session_id").is_none_or(Value::is_null);
        let _permit = match pooled {
            true => Some(
                self.state
                    .caller_limits
                    .acquire(&concurrency_key(caller))
                    .await?,
            ),
            false => None,
        };
        // Destructive statements are confirmed (elicitation or a one-time token) before they run.
        let mut args = args;
        if confirm::applies(tool, &args) {
            let check = Box::pin(confirm::check(&self.state, caller, tool, &mut args, ask));
            check.await?;
        }
        // Each future is boxed and awaited in its own statement: inline, or boxed within the
        // `.await` expression (whose temporaries the compiler keeps across the await), every
        // call would carry the largest tool's state, tens of kilobytes, copy it as it is
        // moved, and size rmcp's per-session task by it.
        let run = self.tool_future(tool, caller, args)?;
        run.await
    }

    /// The boxed future of one tool's call.
    fn tool_future<'a>(
        &'a self,
        tool: ToolName,
        caller: &'a Caller,
        args: Value,
    ) -> Result<ToolFuture<'a>, ToolError> {
        let state = &self.state;
        Ok(match tool {
            ToolName::Query => {
                let args = parse_args(tool, args)?;
                Box::pin(async move { query::call(state, caller, args).await.map(Into::into) })
            }
            ToolName::Schema => {
                let args = parse_args(tool, args)?;
                Box::pin(async move { schema::call(state, caller, args).await.map(Into::into) })
            }
            ToolName::Admin => {
                let args = parse_args(tool, args)?;
                Box::pin(async move { admin::call(state, caller, args).await.map(Into::into) })
            }
            ToolName::Tx => {
                let args = parse_args(tool, args)?;
                Box::pin(async move { tx::call(state, caller, args).await.map(Into::into) })
            }
            ToolName::Monitor => {
                let args = parse_args(tool, args)?;
                Box::pin(async move { monitor::call(state, caller, args).await.map(Into::into) })
            }
            ToolName::Read => unreachable!("pg_read was routed to its owning tool above"),
        })
    }
}

/// A tool's call, boxed (see `dispatch`).
type ToolFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, ToolError>> + Send + 'a>>;

/// Whose share of the pool a call uses: the authenticated principal, else every anonymous
/// caller together (MCP session ids cost nothing to mint, so they cannot be the key).
fn concurrency_key(caller: &Caller) -> String {
    match &caller.principal {
        Some(p) => format!("principal:{p}"),
        None => "anonymous".to_owned(),
    }
}

/// The caller the HTTP middleware attached to this request.
fn caller_of(context: &RequestContext<RoleServer>) -> Caller {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}

/// The calling client's own name and version. A 2026-07-28 request carries it in its `_meta`
/// (`io.modelcontextprotocol/clientInfo`); rmcp's stand-in peer info for stateless requests is
/// its own default (`rmcp`), so `_meta` comes first. A session client sent it at initialize.
fn client_info(context: &RequestContext<RoleServer>) -> Option<Implementation> {
    context.meta.client_info().or_else(|| {
        context
            .peer
            .peer_info()
            .map(|p| p.client_info.clone())
            .filter(|i| i.name != rmcp::model::Implementation::default().name)
    })
}

/// A client's name and version for the log, formatted only when a line is written.
struct ClientOf<'a>(Option<&'a Implementation>);

impl std::fmt::Display for ClientOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(i) => {
                let name: String = i.name.chars().take(64).collect();
                let version: String = i.version.chars().take(32).collect();
                write!(f, "{name}/{version}")
            }
            None => f.write_str("unknown"),
        }
    }
}

impl ServerHandler for ColdQueryServer {
    #[allow(deprecated)] // enable_logging: see log_rank
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_prompts()
                .enable_resources()
                .enable_tools()
                .enable_completions()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new("coldquery", env!("CARGO_PKG_VERSION")))
        .with_instructions(if self.state.config.read_only {
            READ_ONLY_INSTRUCTIONS
        } else {
            INSTRUCTIONS
        })
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        // rmcp routes the handshake only to a handler it made for a new MCP session.
        self.tag
            .in_session
            .store(true, std::sync::atomic::Ordering::Release);
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            tools::listed(self.state.config.read_only).to_vec(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::get(name).cloned()
    }

    async fn complete(
        &self,
        request: rmcp::model::CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CompleteResult, McpError> {
        let caller = caller_of(&context);
        match Box::pin(complete::complete(&self.state, &caller, &request)).await {
            Ok(info) => Ok(rmcp::model::CompleteResult::new(info)),
            Err(e) => Err(McpError::internal_error(e.to_text(), None)),
        }
    }

    #[allow(deprecated)] // see log_rank
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.log_level.store(
            log_rank(request.level),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = self.caller(&context);
        // A cancelled read drops the future; the pooled transaction's guard cancels the query.
        let read = Box::pin(resources::read(&self.state, &caller, &request.uri));
        let result = tokio::select! {
            r = read => r?,
            _ = context.ct.cancelled() => {
                return Err(McpError::internal_error("the read was cancelled by the client", None));
            }
        };
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        prompts::get(&request.name, request.arguments.as_ref()).map(Into::into)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // Boxed: see `dispatch`. The handler future rmcp runs is as large as its largest arm.
        let call = Box::pin(self.handle_call(request, context));
        call.await
    }
}
