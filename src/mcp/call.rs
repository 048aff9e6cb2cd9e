//! `tools/call`: the tool name parsed once, the call dispatched, then audited, counted, logged
//! and rendered. The `ServerHandler` method in `mod.rs` boxes this future (see `dispatch`).
//!
//! A call runs from a [`CallContext`]: what it needs of its request, built from rmcp's
//! `RequestContext` ([`CallContext::of`]) or, for a stateless `tools/call` served without
//! rmcp's per-request service, by [`crate::http::direct`]. The truncation warning a call may
//! send before its result is handed back ([`Called::warning`]) for whichever of the two
//! delivers it.
// Logging notifications are deprecated by SEP-2577 but still what clients show: see log_rank.
#![allow(deprecated)]

use std::time::Instant;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientCapabilities, Implementation,
    LoggingLevel, LoggingMessageNotificationParam, ProgressToken, ProtocolVersion, RequestId,
    RequestMetaObject, ServerResult,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::names::{ToolAction, ToolName};
use super::render::{CutShort, Outcome, Rendered, failure, success};
use super::{ClientOf, ColdQueryServer, confirm, log_rank, progress};
use crate::caller::{Caller, digest};
use crate::error::ToolError;

/// What a `tools/call` needs of its request.
pub(crate) struct CallContext<'a> {
    /// The JSON-RPC request id, for the log.
    pub(crate) id: &'a RequestId,
    /// Who calls (the HTTP middleware's tag, made stateless outside an MCP session).
    pub(crate) caller: Caller,
    /// The client's own name and version, for the log.
    pub(crate) client: Option<Implementation>,
    /// Cancelled when the client cancels the call.
    pub(crate) ct: CancellationToken,
    /// The MCP session's peer: elicitation and progress notifications. `None` for a call
    /// served directly, which never needs them (it carries no progress token).
    pub(crate) peer: Option<&'a Peer<RoleServer>>,
    /// Whether the call came in an MCP session.
    pub(crate) in_session: bool,
    /// The request's protocol version (its `_meta`, or the session's).
    pub(crate) protocol_version: Option<ProtocolVersion>,
    /// The client's capabilities (its `_meta`, or the session's).
    pub(crate) client_capabilities: Option<ClientCapabilities>,
    /// The request's progress token.
    pub(crate) progress_token: Option<ProgressToken>,
    /// The log level the request's `_meta` names.
    pub(crate) log_level: Option<LoggingLevel>,
}

impl<'a> CallContext<'a> {
    /// From rmcp's request context.
    fn of(server: &ColdQueryServer, context: &'a RequestContext<RoleServer>) -> Self {
        let in_session = server
            .tag
            .in_session
            .load(std::sync::atomic::Ordering::Acquire);
        CallContext {
            id: &context.id,
            caller: server.caller(context),
            client: super::client_info(context),
            ct: context.ct.clone(),
            peer: Some(&context.peer),
            in_session,
            protocol_version: context.protocol_version(),
            client_capabilities: context.client_capabilities(),
            progress_token: context.meta.get_progress_token(),
            log_level: context.meta.log_level(),
        }
    }
}

/// An MCP session's handler and peer, kept by ColdQuery's session
/// ([`crate::http::mcp_streams::Session`]) once rmcp has served the session's first tool call,
/// so that its later `tools/call` requests run here without rmcp's service loop (its inbox,
/// the spawned handler task and its sink). The peer still carries what a call sends through
/// it (progress notifications) to the session's streams.
pub(crate) struct SessionCalls {
    server: ColdQueryServer,
    peer: Peer<RoleServer>,
}

impl SessionCalls {
    pub(crate) fn new(server: ColdQueryServer, peer: Peer<RoleServer>) -> Self {
        SessionCalls { server, peer }
    }

    /// Whether this call is served here. Not when it may ask the client to confirm with an
    /// elicitation: that request must go out on the call's own stream, which only rmcp's
    /// service knows to mark (`OriginatingRequestId`). Nor an unknown tool (rmcp answers it).
    /// Nor one that names a protocol version in its `_meta`, or a session that must carry it in
    /// every request: rmcp checks those against what it supports first.
    pub(crate) fn serves(&self, request: &CallToolRequest) -> bool {
        let Some(tool) = ToolName::parse(&request.params.name) else {
            return false;
        };
        let inline_version = request
            .extensions
            .get::<RequestMetaObject>()
            .is_some_and(|m| m.protocol_version().is_some());
        !inline_version
            // A session opened with `initialize` (an inline-lifecycle one keeps no peer info).
            && self.peer.peer_info().is_some()
            && !(confirm::can_elicit(&self.peer, true)
                && confirm::may_apply(tool, request.params.arguments.as_ref()))
    }

    /// The call's response as rmcp's handler shapes it for the session's protocol version:
    /// sessions older than 2026-07-28 get results without `resultType` and without non-object
    /// structured output, newer ones the cache hints; `input_required` only from 2026-07-28.
    pub(crate) fn result(
        &self,
        response: Result<CallToolResponse, McpError>,
    ) -> Result<ServerResult, McpError> {
        let modern = self
            .peer
            .peer_info()
            .is_some_and(|p| p.protocol_version.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let mut result = ServerResult::from(response?);
        if matches!(result, ServerResult::InputRequiredResult(_)) && !modern {
            return Err(McpError::invalid_request(
                "InputRequiredResult requires negotiated protocol version 2026-07-28 or newer",
                None,
            ));
        }
        if modern {
            result.fill_missing_cache_hints();
        } else {
            result.strip_result_type_for_legacy_peer();
            result.strip_non_object_output_for_legacy_peer();
        }
        Ok(result)
    }

    /// Run a `tools/call` of the session, as [`CallContext::of`] would have set it up.
    pub(crate) async fn call(
        &self,
        id: &RequestId,
        request: CallToolRequestParams,
        meta: RequestMetaObject,
        caller: Caller,
        ct: CancellationToken,
    ) -> Called {
        self.server
            .state
            .metrics
            .inc("coldquery_direct_session_tool_calls_total", &[]);
        let peer_info = self.peer.peer_info();
        let peer_info = peer_info.as_deref();
        let context = CallContext {
            id,
            caller,
            client: meta.client_info().or_else(|| {
                peer_info
                    .map(|p| p.client_info.clone())
                    .filter(|i| i.name != Implementation::default().name)
            }),
            ct,
            peer: Some(&self.peer),
            in_session: true,
            protocol_version: meta
                .protocol_version()
                .or_else(|| peer_info.map(|p| p.protocol_version.clone())),
            client_capabilities: meta
                .client_capabilities()
                .or_else(|| peer_info.map(|p| p.capabilities.clone())),
            progress_token: meta.get_progress_token(),
            log_level: meta.log_level(),
        };
        Box::pin(self.server.run_call(request, context)).await
    }
}

/// A call's response, and the truncation warning to send before it.
pub(crate) struct Called {
    /// The `tools/call` response.
    pub(crate) response: Response,
    /// A `notifications/message` warning that the result was truncated.
    pub(crate) warning: Option<LoggingMessageNotificationParam>,
}

/// A `tools/call` response: a successful result as rendered text, which a reply written
/// without rmcp's types can carry as it stands, or anything else as rmcp's types.
pub(crate) enum Response {
    /// A tool result that is not an error.
    Rendered(Rendered),
    /// An error result, an `input_required` result, or a protocol error.
    Other(Result<CallToolResponse, McpError>),
}

impl Response {
    /// As rmcp's types, for a reply that rmcp's machinery serializes.
    pub(crate) fn into_rmcp(self) -> Result<CallToolResponse, McpError> {
        match self {
            Response::Rendered(r) => Ok(r.into_result().into()),
            Response::Other(r) => r,
        }
    }
}

impl ColdQueryServer {
    /// A truncated result is also a `notifications/message` warning, for clients that show
    /// logs: the model sees `truncated` and `hint` in the result itself. A 2026-07-28 request
    /// may name its own level in `_meta`; a session uses what `logging/setLevel` set.
    fn warning(
        &self,
        level: Option<LoggingLevel>,
        tool: &str,
        action: &str,
        cut: CutShort,
    ) -> Option<LoggingMessageNotificationParam> {
        let wanted = level
            .map(log_rank)
            .unwrap_or_else(|| self.log_level.load(std::sync::atomic::Ordering::Relaxed));
        if log_rank(LoggingLevel::Warning) < wanted {
            return None;
        }
        let data = serde_json::json!({
            "message": format!("{tool} {action}: the result was truncated"),
            "truncated_by": cut.truncated_by,
            "row_count": cut.row_count,
            "hint": cut.hint,
        });
        Some(
            LoggingMessageNotificationParam::new(LoggingLevel::Warning, data)
                .with_logger("coldquery"),
        )
    }

    /// `tools/call` through rmcp: the warning, if any, goes out through the peer first.
    pub(super) async fn handle_call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let called = Box::pin(self.run_call(request, CallContext::of(self, &context))).await;
        if let Some(param) = called.warning {
            // Best effort: a client that went away does not make the call fail.
            let _ = context.peer.notify_logging_message(param).await;
        }
        called.response.into_rmcp()
    }

    /// `tools/call`: parse the tool name, dispatch, then audit, count, log and render the
    /// outcome.
    pub(crate) async fn run_call(
        &self,
        mut request: CallToolRequestParams,
        context: CallContext<'_>,
    ) -> Called {
        let done = |response| Called {
            response: Response::Other(response),
            warning: None,
        };
        let caller = context.caller.clone();
        let client = ClientOf(context.client.as_ref());
        let Some(tool_name) = ToolName::parse(&request.name) else {
            // An unknown tool is a protocol error (contract §3), not a tool result.
            let tool = request.name.to_string();
            return done(Err(McpError::invalid_params(
                format!(
                    "unknown tool {tool:?}; tools: {}",
                    ToolName::NAMES.join(", ")
                ),
                None,
            )));
        };
        // The metric label, log field and audit column: the tool's wire name.
        let tool = tool_name.name();
        let in_session = context.in_session;
        let args = Value::Object(request.arguments.take().unwrap_or_default());
        let ask = confirm::Ask {
            peer: context
                .peer
                .filter(|peer| confirm::can_elicit(peer, in_session)),
            round_trip: confirm::can_round_trip(
                context.protocol_version.clone(),
                context.client_capabilities.clone(),
                in_session,
            ),
            responses: request.input_responses.as_ref(),
            state: request.request_state.as_deref(),
        };
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
            .progress_token
            .clone()
            .zip(context.peer)
            .zip(progress::kind_of(tool_name, &args));
        let work = async {
            // Boxed: see `dispatch`.
            let mut dispatch = Box::pin(self.dispatch(tool_name, &caller, args, ask));
            match progress {
                Some(((token, peer), kind)) => {
                    let report = progress::report(self.state.clone(), peer.clone(), token, kind);
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
                tracing::info!(request_id = %context.id, client = %client, tool, "asking the client (input_required)");
                return done(Ok(rmcp::model::CallToolResponse::InputRequired(*r)));
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
        let metrics = &self.state.metrics;
        metrics.observe(
            "coldquery_tool_call_duration_seconds",
            &[("tool", tool), ("action", action_label)],
            elapsed.as_secs_f64(),
        );
        // The log line's identities: digests, never the raw MCP session id or handle, computed
        // only when the line is written.
        let (mcp_session, session) = (
            Digested(caller.mcp_session.as_deref()),
            Digested(session_arg.as_deref()),
        );
        let principal = caller.principal.as_deref().unwrap_or("anonymous");
        let mut warning = None;
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
                    request_id = %context.id, mcp_session = %mcp_session, principal, client = %client, tool,
                    action = action_label, session = %session,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "tool call ok"
                );
                if let Some(cut) = cut {
                    warning = self.warning(context.log_level, tool, action_label, cut);
                }
                match success(value, hints) {
                    Ok(rendered) => Response::Rendered(rendered),
                    Err(result) => Response::Other(Ok(result.into())),
                }
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
                    request_id = %context.id, mcp_session = %mcp_session, principal, client = %client, tool,
                    action = action_label, session = %session,
                    category,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "tool call failed"
                );
                Response::Other(Ok(failure(&e, &hints).into()))
            }
        };
        Called {
            response: result,
            warning,
        }
    }
}

/// An id in a log line: its digest, or `-` when there is none. Formatted lazily, so a filtered-out
/// line costs no hashing.
struct Digested<'a>(Option<&'a str>);

impl std::fmt::Display for Digested<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => f.write_str(&digest(id)),
            None => f.write_str("-"),
        }
    }
}
