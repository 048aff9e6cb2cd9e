//! Rendering a tool's outcome as an MCP `CallToolResult`: a structured result with one compact
//! text block, or an error with `isError: true` (contract §3), within the 1 MiB a message may
//! carry. The tools hand up a typed [`Outcome`]; after the boundary has read what it needs from
//! the typed fields ([`Outcome::cut_short`] for the truncation warning, [`Outcome::reported`]
//! for the audit row), a success becomes JSON text once ([`Rendered`]): the text block, and the
//! `structuredContent` of a reply written without rmcp's types. Only a reply that rmcp's types
//! carry builds the structured result as a JSON tree as well ([`Outcome::into_json`]).

use rmcp::model::{CallToolResult, ContentBlock, RequestId};
use serde_json::Value;

use crate::db::audit::Reported;
use crate::db::sessions::SessionHint;
use crate::error::ToolError;
use crate::mcp::results::{QueryResult, TruncatedBy};
use crate::mcp::tx::TxResult;

/// Largest tool result we send: default-configured SDK clients refuse messages over 1 MiB,
/// and the JSON-RPC envelope and SSE framing need a few bytes of their own.
pub(crate) const MAX_RESULT_MESSAGE: usize = 1024 * 1024 - 4096;

/// What a tool call returned, before it is rendered.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// pg_query (and pg_read's query, explain, fetch, close_cursor).
    Query(QueryResult),
    /// pg_tx (and pg_read tx_list).
    Tx(TxResult),
    /// pg_schema, pg_admin, pg_monitor: data from catalog queries, shaped as they read it.
    Catalog(Value),
}

impl From<QueryResult> for Outcome {
    fn from(r: QueryResult) -> Self {
        Outcome::Query(r)
    }
}

impl From<TxResult> for Outcome {
    fn from(r: TxResult) -> Self {
        Outcome::Tx(r)
    }
}

impl From<Value> for Outcome {
    fn from(v: Value) -> Self {
        Outcome::Catalog(v)
    }
}

/// A result a cap cut short (`truncated: true`), as the truncation warning and the metrics
/// describe it.
#[derive(Debug, PartialEq)]
pub(crate) struct CutShort {
    /// Which cap (row results only).
    pub(crate) truncated_by: Option<TruncatedBy>,
    /// The rows it carries.
    pub(crate) row_count: Option<Value>,
    /// What to do about it.
    pub(crate) hint: Option<Value>,
}

impl Outcome {
    /// How the result was cut short, if it was.
    pub(crate) fn cut_short(&self) -> Option<CutShort> {
        match self {
            Outcome::Query(QueryResult::Rows(r)) if r.truncated => Some(CutShort {
                truncated_by: r.truncated_by,
                row_count: Some(r.row_count.into()),
                hint: r.hint.clone().map(Value::String),
            }),
            Outcome::Query(_) | Outcome::Tx(_) => None,
            Outcome::Catalog(v) => (v["truncated"] == Value::Bool(true)).then(|| CutShort {
                truncated_by: None,
                row_count: v.get("row_count").cloned(),
                hint: v.get("hint").cloned(),
            }),
        }
    }

    /// What the audit log keeps of a successful call, read from the typed fields.
    pub(crate) fn reported(&self) -> Reported {
        let count = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        match self {
            Outcome::Query(QueryResult::Rows(r)) => Reported {
                rows_affected: count(r.rows_affected),
                session_id: None,
            },
            Outcome::Query(QueryResult::Transaction(t)) => Reported {
                rows_affected: Some(
                    t.results
                        .iter()
                        .filter_map(|r| count(r.rows_affected))
                        .sum(),
                ),
                session_id: None,
            },
            Outcome::Tx(TxResult::Begun(b)) => Reported {
                rows_affected: None,
                session_id: Some(b.session_id.clone()),
            },
            Outcome::Query(QueryResult::Explain(_) | QueryResult::CursorClosed(_))
            | Outcome::Tx(_)
            | Outcome::Catalog(_) => Reported::default(),
        }
    }

    /// The result as JSON, with the reminders of the caller's other open sessions: the one
    /// place a typed result is serialized.
    pub(crate) fn into_json(self, hints: &[SessionHint]) -> Value {
        let mut v = match self {
            Outcome::Query(r) => r.into(),
            Outcome::Tx(r) => serde_json::to_value(r)
                .expect("results are plain data with string keys: they serialize"),
            Outcome::Catalog(v) => v,
        };
        with_hints(&mut v, hints);
        v
    }
}

/// `hints` on a result (an error's too), when the caller holds other sessions.
fn with_hints(v: &mut Value, hints: &[SessionHint]) {
    if !hints.is_empty()
        && let Value::Object(o) = v
    {
        o.insert(
            "hints".into(),
            serde_json::to_value(hints).expect("hints are plain data: they serialize"),
        );
    }
}

/// A successful result rendered once: its structured result as compact JSON text, in the
/// typed result's field order (contract §3). That text is the result's text block and, as it
/// stands, its `structuredContent` in a reply written here ([`Rendered::reply_body`]); only a
/// reply that rmcp's types carry needs the structured result as a JSON tree
/// ([`Rendered::into_result`]).
#[derive(Debug)]
pub(crate) struct Rendered {
    text: String,
    outcome: Outcome,
    hints: Vec<SessionHint>,
}

impl Rendered {
    /// `outcome` with `hints`, as text.
    fn new(outcome: Outcome, hints: Vec<SessionHint>) -> Rendered {
        const PLAIN: &str = "results are plain data with string keys: they serialize";
        let mut text = match &outcome {
            Outcome::Query(r) => serde_json::to_string(r).expect(PLAIN),
            Outcome::Tx(r) => serde_json::to_string(r).expect(PLAIN),
            Outcome::Catalog(v) => serde_json::to_string(v).expect(PLAIN),
        };
        // As `with_hints`: the hints go last into an object result.
        if !hints.is_empty() && text.starts_with('{') && text.ends_with('}') {
            text.pop();
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str("\"hints\":");
            text.push_str(
                &serde_json::to_string(&hints).expect("hints are plain data: they serialize"),
            );
            text.push('}');
        }
        Rendered {
            text,
            outcome,
            hints,
        }
    }

    /// The result as rmcp's tool result, for a reply that rmcp's types carry.
    pub(crate) fn into_result(self) -> CallToolResult {
        let mut r = CallToolResult::success(vec![ContentBlock::text(self.text)]);
        r.structured_content = Some(self.outcome.into_json(&self.hints));
        r
    }

    /// The JSON-RPC response to request `id` carrying this result, written as rmcp serializes
    /// `ServerJsonRpcMessage::response(ServerResult::from(self.into_result()), id)` for a
    /// 2026-07-28 peer (`resultType` first), without the JSON tree: the text once escaped
    /// as the text block, once as it stands as `structuredContent`.
    pub(crate) fn reply_body(&self, id: &RequestId) -> Vec<u8> {
        let mut body = Vec::with_capacity(2 * self.text.len() + 160);
        body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        serde_json::to_writer(&mut body, id).expect("request ids serialize");
        body.extend_from_slice(
            br#","result":{"resultType":"complete","content":[{"type":"text","text":"#,
        );
        push_json_string(&mut body, &self.text);
        body.extend_from_slice(br#"}],"structuredContent":"#);
        body.extend_from_slice(self.text.as_bytes());
        body.extend_from_slice(br#","isError":false}}"#);
        body
    }
}

/// `text` as a JSON string, escaped as serde_json escapes it. The text is compact JSON, so
/// quotes are dense in it: a byte at a time into room reserved once is cheaper than copying
/// the runs between them.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * text.len() + 2);
    out.push(b'"');
    for &b in text.as_bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0x20.. => out.push(b),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
    out.push(b'"');
}

/// Render a successful outcome: the text block and structuredContent ([`Rendered`]). A result
/// large enough that it might not fit in [`MAX_RESULT_MESSAGE`] is built as rmcp's tool result
/// to be measured, and comes back as that (`Err`): itself if it fits, otherwise (every cap
/// upstream should prevent it; this is the last line) a `limit_exceeded` error.
pub(super) fn success(
    outcome: Outcome,
    hints: Vec<SessionHint>,
) -> Result<Rendered, CallToolResult> {
    let rendered = Rendered::new(outcome, hints);
    // The message holds the text once as it stands and once escaped (at most doubled): only
    // results that might be too large are measured exactly.
    let text_len = rendered.text.len();
    if text_len.saturating_mul(3) > MAX_RESULT_MESSAGE {
        let r = rendered.into_result();
        let size = crate::db::capped::json_size(&r);
        if size > MAX_RESULT_MESSAGE {
            tracing::warn!(size, text_len, "a tool result exceeded the message limit");
            return Err(failure(
                &ToolError::LimitExceeded(format!(
                    "the result would take {size} bytes, more than the 1 MiB a message may carry; \
                     narrow the call (fewer rows or columns, a smaller part of the statement)"
                )),
                &[],
            ));
        }
        return Err(r);
    }
    Ok(rendered)
}

/// Render an error as a tool result with `isError: true` (contract §3), with `hints` as a
/// result would have them.
pub(super) fn failure(e: &ToolError, hints: &[SessionHint]) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(e.to_text())]);
    let mut v = serde_json::json!({ "error": e.to_json() });
    with_hints(&mut v, hints);
    r.structured_content = Some(v);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sessions::SessionState;
    use crate::mcp::results::{CursorClosed, RowResult};
    use serde_json::json;

    fn hint() -> SessionHint {
        SessionHint {
            session_id: "tx_1".into(),
            idle_s: 1,
            expires_in_s: 299,
            state: SessionState::Idle,
            message: "session tx_1 is still open (idle); …".into(),
        }
    }

    fn rows(truncated_by: Option<TruncatedBy>) -> RowResult {
        RowResult {
            columns: vec![],
            rows: vec![vec![json!(1)]],
            row_count: 1,
            truncated: truncated_by.is_some(),
            command: "SELECT".into(),
            rows_affected: None,
            duration_ms: 0.1,
            truncated_by,
            hint: truncated_by.map(|_| "narrow it".into()),
            next_cursor: None,
            dry_run: false,
            committed: None,
            session: None,
        }
    }

    #[test]
    fn hints_are_added_to_results_and_errors_only_when_there_are_some() {
        let closed = || {
            Outcome::Query(QueryResult::CursorClosed(CursorClosed {
                cursor: "c".into(),
                closed: true,
            }))
        };
        assert_eq!(
            closed().into_json(&[]),
            json!({"cursor": "c", "closed": true})
        );
        let v = closed().into_json(&[hint()]);
        assert_eq!(v["hints"][0]["session_id"], "tx_1");
        assert_eq!(v["hints"][0]["state"], "idle");
        let e = ToolError::InvalidInput("no".into());
        let r = failure(&e, &[]);
        assert!(r.structured_content.unwrap().get("hints").is_none());
        let r = failure(&e, &[hint()]);
        assert_eq!(
            r.structured_content.unwrap()["hints"][0]["expires_in_s"],
            299
        );
    }

    #[test]
    fn the_audit_row_reads_rows_affected_from_the_typed_result() {
        let write = |n| RowResult {
            rows_affected: Some(n),
            command: "DELETE".into(),
            ..rows(None)
        };
        assert_eq!(
            Outcome::Query(write(3).into()).reported().rows_affected,
            Some(3)
        );
        assert_eq!(
            Outcome::Query(rows(None).into()).reported().rows_affected,
            None
        );
        let tx = crate::mcp::results::TransactionResult {
            committed: true,
            applied_to_session: None,
            results: vec![write(1), rows(None), write(3)],
            dry_run: false,
            session: None,
        };
        let reported = Outcome::Query(QueryResult::Transaction(tx)).reported();
        assert_eq!(
            reported.rows_affected,
            Some(4),
            "summed over the operations"
        );
        assert_eq!(
            Outcome::Catalog(json!({"rows_affected": 9})).reported(),
            Reported::default(),
            "catalog results carry no counts"
        );
    }

    #[test]
    fn a_truncated_row_result_or_catalog_result_is_cut_short() {
        assert_eq!(Outcome::Query(rows(None).into()).cut_short(), None);
        assert_eq!(
            Outcome::Query(rows(Some(TruncatedBy::MaxRows)).into()).cut_short(),
            Some(CutShort {
                truncated_by: Some(TruncatedBy::MaxRows),
                row_count: Some(json!(1)),
                hint: Some(json!("narrow it")),
            })
        );
        let catalog = Outcome::Catalog(json!({"truncated": true, "hint": "page on"}));
        assert_eq!(
            catalog.cut_short(),
            Some(CutShort {
                truncated_by: None,
                row_count: None,
                hint: Some(json!("page on")),
            })
        );
        assert_eq!(
            Outcome::Catalog(json!({"truncated": false})).cut_short(),
            None
        );
    }

    #[test]
    fn text_is_escaped_as_serde_json_escapes_it() {
        let mut all: String = (0u8..0x20).map(char::from).collect();
        all.push_str(r#"plain "quoted" back\slash / é 🐘 \u0041"#);
        for text in [all.as_str(), "", "\"", r#"{"a":"b\"c"}"#] {
            let mut out = Vec::new();
            push_json_string(&mut out, text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
    }

    #[test]
    fn a_reply_written_from_the_text_is_what_rmcp_would_send() {
        use rmcp::model::{ServerJsonRpcMessage, ServerResult};
        let odd = RowResult {
            columns: vec![crate::db::executor::ColumnInfo {
                name: "a \"b\" \\ c\n".into(),
                type_name: "text".into(),
            }],
            rows: vec![
                vec![json!("line\none\ttab \u{1} \"q\" é")],
                vec![json!(null)],
            ],
            ..rows(Some(TruncatedBy::MaxRows))
        };
        let outcome = |o| match o {
            0 => Outcome::Query(odd_clone(&odd).into()),
            1 => Outcome::Catalog(json!({"tables": [{"name": "t"}], "z": 1})),
            _ => Outcome::Catalog(json!({})),
        };
        for (n, hints) in [vec![], vec![hint()]].into_iter().enumerate() {
            for o in 0..3 {
                for id in [
                    RequestId::Number(7),
                    RequestId::String(format!("r-{n}-{o}").into()),
                ] {
                    let (mine, theirs) = (outcome(o), outcome(o));
                    let rendered = success(mine, hints.clone()).unwrap();
                    let body: Value = serde_json::from_slice(&rendered.reply_body(&id)).unwrap();
                    let result = success(theirs, hints.clone()).unwrap().into_result();
                    let rmcp = ServerJsonRpcMessage::response(
                        ServerResult::from(rmcp::model::CallToolResponse::from(result)),
                        id,
                    );
                    assert_eq!(
                        body,
                        serde_json::to_value(&rmcp).unwrap(),
                        "outcome {o}, hints {n}"
                    );
                    let text = body["result"]["content"][0]["text"].as_str().unwrap();
                    let structured: Value = serde_json::from_str(text).unwrap();
                    assert_eq!(
                        structured, body["result"]["structuredContent"],
                        "the same data twice"
                    );
                    assert_eq!(structured.get("hints").is_some(), n == 1);
                    // The text keeps the typed result's field order, hints last.
                    if o == 0 {
                        assert!(text.starts_with(r#"{"columns":"#), "{text}");
                    }
                    if n == 1 {
                        assert!(text.contains(r#""hints":[{"#), "{text}");
                        assert!(text.ends_with("]}"), "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_large_result_is_measured_and_one_past_the_message_limit_is_an_error() {
        let sized = |n: usize| Outcome::Catalog(json!({ "s": "x".repeat(n) }));
        let small = success(sized(100), vec![]);
        assert!(small.is_ok(), "a small result is rendered text");
        let large = success(sized(MAX_RESULT_MESSAGE / 3), vec![]).unwrap_err();
        assert_ne!(large.is_error, Some(true), "it fits: still the result");
        assert_eq!(
            large.structured_content.unwrap()["s"]
                .as_str()
                .unwrap()
                .len(),
            MAX_RESULT_MESSAGE / 3
        );
        let too_large = success(sized(MAX_RESULT_MESSAGE / 2 + 1), vec![]).unwrap_err();
        assert_eq!(too_large.is_error, Some(true));
        assert_eq!(
            too_large.structured_content.unwrap()["error"]["category"],
            "limit_exceeded"
        );
    }

    fn odd_clone(r: &RowResult) -> RowResult {
        RowResult {
            columns: r.columns.clone(),
            rows: r.rows.clone(),
            command: r.command.clone(),
            hint: r.hint.clone(),
            ..rows(r.truncated_by)
        }
    }
}
