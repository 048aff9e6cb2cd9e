//! Rendering a tool's outcome as an MCP `CallToolResult`: a structured result with one compact
//! text block, or an error with `isError: true` (contract §3), within the 1 MiB a message may
//! carry.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use crate::error::ToolError;

/// Largest tool result we send: default-configured SDK clients refuse messages over 1 MiB,
/// and the JSON-RPC envelope and SSE framing need a few bytes of their own.
pub(crate) const MAX_RESULT_MESSAGE: usize = 1024 * 1024 - 4096;

/// Render a structured result as a tool result: structuredContent plus one compact text block.
/// A result that would not fit in [`MAX_RESULT_MESSAGE`] (every cap upstream should prevent
/// it; this is the last line) becomes a `limit_exceeded` error instead.
pub(super) fn success(value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_else(|_| "{}".into());
    // The message holds the value once and its text once more, escaped (at most doubled):
    // only results that might be too large are measured exactly.
    let might_exceed = text.len().saturating_mul(3) > MAX_RESULT_MESSAGE;
    let text_len = text.len();
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(value);
    if might_exceed {
        let size = crate::db::capped::json_size(&r);
        if size > MAX_RESULT_MESSAGE {
            tracing::warn!(size, text_len, "a tool result exceeded the message limit");
            return failure(&ToolError::LimitExceeded(format!(
                "the result would take {size} bytes, more than the 1 MiB a message may carry; \
                 narrow the call (fewer rows or columns, a smaller part of the statement)"
            )));
        }
    }
    r
}

/// Render an error as a tool result with `isError: true` (contract §3).
pub(super) fn failure(e: &ToolError) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(e.to_text())]);
    r.structured_content = Some(serde_json::json!({ "error": e.to_json() }));
    r
}
