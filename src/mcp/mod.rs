//! The MCP server handler: identity and instructions, the tool list with flat input schemas and
//! output schemas, and dispatch of `tools/call` to the tool families with metrics around it.

pub mod query;
pub mod tools;

use std::time::Instant;

use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::Value;

use crate::error::ToolError;
use crate::state::AppState;

/// Short instructions sent at initialize / discover.
const INSTRUCTIONS: &str = "ColdQuery gives safe access to one PostgreSQL database. \
Use pg_query read for SELECTs (read-only, capped rows), pg_query explain for plans, and \
pg_query write for INSERT/UPDATE/DELETE: writes are refused unless you pass autocommit: true \
(or use dry_run: true to preview). Pass values in params ($1, $2…), never inside the SQL text.";

/// One instance per MCP session (or per request for stateless clients): cheap to build, since
/// it only clones `AppState`'s `Arc`s.
#[derive(Clone)]
pub struct ColdQueryServer {
    state: AppState,
}

impl ColdQueryServer {
    /// A handler over the shared state.
    pub fn new(state: AppState) -> Self {
        ColdQueryServer { state }
    }

    async fn dispatch(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        match tool {
            "pg_query" => {
                let args: query::QueryArgs = serde_json::from_value(args).map_err(|e| {
                    ToolError::InvalidInput(format!(
                        "bad arguments for pg_query: {e}; see the tool's input schema"
                    ))
                })?;
                query::call(&self.state, args).await
            }
            _ => unreachable!("tool names are checked before dispatch"),
        }
    }
}

/// Render a structured result as a tool result: structuredContent plus one compact text block.
fn success(value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_else(|_| "{}".into());
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(value);
    r
}

/// Render an error as a tool result with `isError: true` (contract §3).
fn failure(e: &ToolError) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(e.to_text())]);
    r.structured_content = Some(serde_json::json!({ "error": e.to_json() }));
    r
}

impl ServerHandler for ColdQueryServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("coldquery", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::all()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::all().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tool = request.name.to_string();
        if !tools::NAMES.contains(&tool.as_str()) {
            // An unknown tool is a protocol error (contract §3), not a tool result.
            return Err(McpError::invalid_params(
                format!("unknown tool {tool:?}; tools: {}", tools::NAMES.join(", ")),
                None,
            ));
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        let action = args
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(32)
            .collect::<String>();
        // Metrics label values must come from a small set: unknown actions are bucketed.
        let action_label = if tools::is_known_action(&tool, &action) { action.as_str() } else { "invalid" };
        let started = Instant::now();
        let outcome = self.dispatch(&tool, args).await;
        let elapsed = started.elapsed();
        let metrics = &self.state.metrics;
        metrics.observe(
            "coldquery_tool_call_duration_seconds",
            &[("tool", &tool), ("action", action_label)],
            elapsed.as_secs_f64(),
        );
        let result = match outcome {
            Ok(value) => {
                metrics.inc(
                    "coldquery_tool_calls_total",
                    &[("tool", &tool), ("action", action_label), ("outcome", "ok")],
                );
                if let Some(reason) = value.get("truncated_by").and_then(Value::as_str) {
                    metrics.inc("coldquery_truncated_results_total", &[("reason", reason)]);
                }
                tracing::info!(tool, action = action_label, ms = elapsed.as_millis() as u64, "tool call ok");
                success(value)
            }
            Err(e) => {
                let category = e.category();
                metrics.inc(
                    "coldquery_tool_calls_total",
                    &[("tool", &tool), ("action", action_label), ("outcome", category)],
                );
                if let ToolError::PolicyDenied(_) = e {
                    metrics.inc("coldquery_policy_refusals_total", &[("tool", &tool), ("action", action_label)]);
                }
                if let ToolError::Database { sqlstate: Some(code), .. } = &e {
                    let class: String = code.chars().take(2).collect();
                    metrics.inc("coldquery_database_errors_total", &[("class", &class)]);
                }
                tracing::info!(tool, action = action_label, category, ms = elapsed.as_millis() as u64, "tool call failed");
                failure(&e)
            }
        };
        Ok(result.into())
    }
}
