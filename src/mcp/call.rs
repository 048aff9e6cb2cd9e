//! `tools/call`: the tool name parsed once, the call dispatched, then audited, counted, logged
//! and rendered. The `ServerHandler` method in `mod.rs` boxes this future (see `dispatch`).

use std::time::Instant;

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolRequestParams, CallToolResponse};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::Value;

use super::names::{ToolAction, ToolName};
use super::render::{CutShort, Outcome, failure, success};
use super::{ColdQueryServer, client_of, confirm, log_rank, progress};
use crate::caller::digest;
use crate::error::ToolError;

impl ColdQueryServer {
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

    /// `tools/call`: parse the tool name, dispatch, then audit, count, log and render the
    /// outcome.
    pub(super) async fn handle_call(
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
            // Boxed: see `dispatch`.
            let mut dispatch = Box::pin(self.dispatch(tool_name, &caller, args, ask));
            match progress {
                Some((token, kind)) => {
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
        // The log line's identities: digests, never the raw MCP session id or handle, computed
        // only when the line is written.
        let (mcp_session, session) = (
            Digested(caller.mcp_session.as_deref()),
            Digested(session_arg.as_deref()),
        );
        let principal = caller.principal.as_deref().unwrap_or("anonymous");
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
                    request_id = %context.id, mcp_session = %mcp_session, principal, client, tool,
                    action = action_label, session = %session,
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
                    request_id = %context.id, mcp_session = %mcp_session, principal, client, tool,
                    action = action_label, session = %session,
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
