//! The MCP server handler: identity and instructions, the tool list with flat input schemas and
//! output schemas, and dispatch of `tools/call` to the tool families with metrics around it.
//! The tools return a typed [`render::Outcome`]; `call_tool` reads the truncation from it, then
//! turns it into JSON once for the audit log and the rendered result. Tool and action names are
//! the enums of [`names`]: `call_tool` parses the tool's name once, `dispatch` matches on it.

pub(crate) mod admin;
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

use std::time::Instant;

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

use crate::caller::{Caller, digest};
use crate::error::ToolError;
use crate::state::AppState;
use instructions::{INSTRUCTIONS, READ_ONLY_INSTRUCTIONS};
use names::{ToolAction, ToolName};
use render::{CutShort, Outcome, failure, success};

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

    /// A truncated result is also a `notifications/message` warning, for clients that show
    /// logs: the model sees `truncated` and `hint` in the result itself. A 2026-07-28 request
    /// may name its own level in `_meta`; a session uses what `logging/setLevel` set.
    #[allow(deprecated)] // see log_rank
    async fn warn(
        &self,
        context: &RequestContext<RoleServer>,
        tool: &str,
        action: &str,
        cut: CutShort,
    ) {
        let wanted = context
            .meta
            .log_level()
            .map(log_rank)
            .unwrap_or_else(|| self.log_level.load(std::sync::atomic::Ordering::Relaxed));
        if log_rank(rmcp::model::LoggingLevel::Warning) < wanted {
            return;
        }
        let data = serde_json::json!({
            "message": format!("{tool} {action}: the result was truncated"),
            "truncated_by": cut.truncated_by,
            "row_count": cut.row_count,
            "hint": cut.hint,
        });
        let param = rmcp::model::LoggingMessageNotificationParam::new(
            rmcp::model::LoggingLevel::Warning,
            data,
        )
        .with_logger("coldquery");
        // Best effort: a client that went away does not make the call fail.
        let _ = context.peer.notify_logging_message(param).await;
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
        if let Some(id) = &caller.mcp_session {
            let _ = self.tag.id.set(id.clone());
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
        // Each tool's future is boxed, at its own size: inline, every call (and the task rmcp
        // keeps per MCP session, whose handler future is sized for the largest request) would
        // carry the largest tool's state, tens of kilobytes, and copy it as it is moved.
        Box::pin(confirm::check(&self.state, caller, tool, &mut args, ask)).await?;
        match tool {
            ToolName::Query => Box::pin(query::call(&self.state, caller, parse_args(tool, args)?))
                .await
                .map(Into::into),
            ToolName::Schema => {
                Box::pin(schema::call(&self.state, caller, parse_args(tool, args)?))
                    .await
                    .map(Into::into)
            }
            ToolName::Admin => Box::pin(admin::call(&self.state, caller, parse_args(tool, args)?))
                .await
                .map(Into::into),
            ToolName::Tx => Box::pin(tx::call(&self.state, caller, parse_args(tool, args)?))
                .await
                .map(Into::into),
            ToolName::Monitor => {
                Box::pin(monitor::call(&self.state, caller, parse_args(tool, args)?))
                    .await
                    .map(Into::into)
            }
            ToolName::Read => unreachable!("pg_read was routed to its owning tool above"),
        }
    }
}

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

/// The calling client's own name and version, for the log. A 2026-07-28 request carries it in
/// its `_meta` (`io.modelcontextprotocol/clientInfo`); rmcp's stand-in peer info for stateless
/// requests is its own default (`rmcp`), so `_meta` comes first. A session client sent it at
/// initialize.
fn client_of(context: &RequestContext<RoleServer>) -> String {
    let info = context.meta.client_info().or_else(|| {
        context
            .peer
            .peer_info()
            .map(|p| p.client_info.clone())
            .filter(|i| i.name != rmcp::model::Implementation::default().name)
    });
    match info {
        Some(i) => format!(
            "{}/{}",
            i.name.chars().take(64).collect::<String>(),
            i.version.chars().take(32).collect::<String>()
        ),
        None => "unknown".into(),
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
        Box::pin(self.handle_call(request, context)).await
    }
}

impl ColdQueryServer {
    /// `tools/call`: parse the tool name, dispatch, then audit, count, log and render the
    /// outcome.
    async fn handle_call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context);
        let client = client_of(&context);
        let Some(tool_name) = ToolName::parse(&request.name) else {
            // An unknown tool is a protocol error (contract §3), not a tool result.
            let tool = request.name.to_string();
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool {tool:?}; tools: {}",
                    ToolName::NAMES.join(", ")
                ),
                None,
            ));
        };
        // The metric label, log field and audit column: the tool's wire name.
        let tool = tool_name.name();
        let in_session = self
            .tag
            .in_session
            .load(std::sync::atomic::Ordering::Acquire);
        let ask = confirm::Ask {
            peer: confirm::can_elicit(&context.peer, in_session).then_some(&context.peer),
            round_trip: confirm::can_round_trip(
                context.protocol_version(),
                context.client_capabilities(),
                in_session,
            ),
            responses: request.input_responses.as_ref(),
            state: request.request_state.as_deref(),
        };
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let action = args
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(32)
            .collect::<String>();
        // Metrics label values must come from a small set: unknown actions are bucketed.
        let action_label = match ToolAction::parse(tool_name, &action) {
            Some(a) => a.name(),
            None => "invalid",
        };
        let audit_args =
            crate::db::audit::is_audited(tool, action_label, &args).then(|| args.clone());
        let started = Instant::now();
        let session_arg = args
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        // A cancelled call (notifications/cancelled, or the HTTP request went away) drops the
        // dispatch future; the connection guards inside then cancel the statement in PostgreSQL.
        let progress = context
            .meta
            .get_progress_token()
            .zip(progress::kind_of(tool_name, &args));
        let work = async {
            let dispatch = self.dispatch(tool_name, &caller, args, ask);
            match progress {
                Some((token, kind)) => {
                    tokio::pin!(dispatch);
                    let report =
                        progress::report(self.state.clone(), context.peer.clone(), token, kind);
                    tokio::select! {
                        r = &mut dispatch => r,
                        // The client stopped taking updates: finish the call without them.
                        () = report => dispatch.await,
                    }
                }
                None => dispatch.await,
            }
        };
        let outcome = tokio::select! {
            r = work => r,
            _ = context.ct.cancelled() => Err(ToolError::Timeout(
                "the call was cancelled by the client; its statement was cancelled in PostgreSQL".into(),
            )),
        };
        // A stateless call that must ask its client first: no tool result yet (the repeat
        // with the answer is the call that is audited and counted).
        let outcome = match outcome {
            Err(ToolError::InputRequired(r)) => {
                tracing::info!(request_id = %context.id, client, tool, "asking the client (input_required)");
                return Ok(rmcp::model::CallToolResponse::InputRequired(*r));
            }
            other => other,
        };
        // Remind the caller of transactions it still holds, so a model does not forget them.
        let hints = if tool_name == ToolName::Tx {
            Vec::new()
        } else {
            self.state
                .sessions
                .hints(&caller.owner, session_arg.as_deref())
        };
        let elapsed = started.elapsed();
        // Read from the typed result what the metrics and the warning need; then it becomes
        // JSON, once, for the audit row and the rendered result.
        let cut = outcome.as_ref().ok().and_then(Outcome::cut_short);
        if let Some(args) = audit_args {
            // Written on the audit pool, outside any transaction of the caller's: a rollback
            // cannot erase it.
            let reported = outcome.as_ref().map(Outcome::reported);
            let row = crate::db::audit::row_for(
                &caller,
                tool,
                action_label,
                &args,
                reported.as_ref().map_err(|e| *e),
                elapsed.as_secs_f64() * 1000.0,
            );
            self.state.audit.record(row).await;
        }
        let outcome = outcome.map(|o| o.into_json(&hints));
        let metrics = &self.state.metrics;
        metrics.observe(
            "coldquery_tool_call_duration_seconds",
            &[("tool", tool), ("action", action_label)],
            elapsed.as_secs_f64(),
        );
        let result = match outcome {
            Ok(value) => {
                metrics.inc(
                    "coldquery_tool_calls_total",
                    &[("tool", tool), ("action", action_label), ("outcome", "ok")],
                );
                if let Some(reason) = cut.as_ref().and_then(|c| c.truncated_by) {
                    metrics.inc(
                        "coldquery_truncated_results_total",
                        &[("reason", reason.as_str())],
                    );
                }
                tracing::info!(
                    request_id = %context.id,
                    mcp_session = caller.mcp_session.as_deref().map(digest).as_deref().unwrap_or("-"),
                    principal = caller.principal.as_deref().unwrap_or("anonymous"),
                    client,
                    tool,
                    action = action_label,
                    session = session_arg.as_deref().map(digest).as_deref().unwrap_or("-"),
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "tool call ok"
                );
                if let Some(cut) = cut {
                    self.warn(&context, tool, action_label, cut).await;
                }
                success(value)
            }
            Err(e) => {
                let category = e.category();
                metrics.inc(
                    "coldquery_tool_calls_total",
                    &[
                        ("tool", tool),
                        ("action", action_label),
                        ("outcome", category),
                    ],
                );
                if let ToolError::PolicyDenied(_) = e {
                    metrics.inc(
                        "coldquery_policy_refusals_total",
                        &[("tool", tool), ("action", action_label)],
                    );
                }
                if let Some(code) = e.sqlstate() {
                    let class: String = code.chars().take(2).collect();
                    metrics.inc("coldquery_database_errors_total", &[("class", &class)]);
                }
                tracing::info!(
                    request_id = %context.id,
                    mcp_session = caller.mcp_session.as_deref().map(digest).as_deref().unwrap_or("-"),
                    principal = caller.principal.as_deref().unwrap_or("anonymous"),
                    client,
                    tool,
                    action = action_label,
                    session = session_arg.as_deref().map(digest).as_deref().unwrap_or("-"),
                    category,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "tool call failed"
                );
                failure(&e, &hints)
            }
        };
        Ok(result.into())
    }
}
