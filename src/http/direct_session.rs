//! A 2025-11-25 session's `tools/call` taken before rmcp's HTTP handler: the request goes
//! straight to ColdQuery's session ([`Session::request`], which runs it on the session's
//! handler or hands it to the session's service loop), and the answer is framed here. A call
//! whose reply is the first thing it sends, within [`JSON_WITHIN`], is answered with that reply
//! as plain JSON (the streamable HTTP transport lets a server answer a POST either way); any
//! other call gets the SSE stream rmcp would have sent: its priming event, then what the call
//! sends (progress, an elicitation), then the reply, with keep-alives. A call that runs longer
//! than [`JSON_WITHIN`] is switched to the stream then, so that a client that loses the
//! connection can still resume it with `Last-Event-ID`.
//!
//! rmcp's handler tries the body as every client message type, checks its headers, asks the
//! session table, and wraps the reply in an SSE stream with a keep-alive timer; what skipping
//! that saves per session point read is in docs/benchmarks.md. Taken here: only a request
//! that rmcp would accept and serve the same way. The checks in [`super::direct`] that do not
//! depend on the session (method, `Accept`, `Content-Type`, `Host`, no `Origin`, no
//! `Mcp-Param-*`, the body limit), an `MCP-Protocol-Version` header equal to the version the
//! session negotiated, no `Mcp-Method`/`Mcp-Name` headers, a body that parses as exactly a
//! `tools/call` whose `_meta` names no protocol version, and a session that is open. Anything
//! else goes to rmcp unchanged.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rmcp::model::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, GetExtensions, JsonRpcRequest,
    RequestMetaObject, ServerJsonRpcMessage,
};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;

use crate::http::mcp_streams::Session;
use crate::state::AppState;

/// A call that has sent nothing but its reply by then is answered with plain JSON.
pub const JSON_WITHIN: Duration = Duration::from_secs(1);
/// Between keep-alive comments on a call's SSE stream (rmcp's default).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether the headers alone allow the session path (the common checks are the caller's).
pub(crate) fn eligible(h: &HeaderMap) -> bool {
    super::direct::single(h, &super::direct::SESSION_ID).is_some()
        && super::direct::single(h, &super::direct::PROTOCOL_VERSION).is_some()
        && !h.contains_key(&super::direct::MCP_METHOD)
        && !h.contains_key(&super::direct::MCP_NAME)
}

/// The open session and the body as a `tools/call` of it, or `None` (rmcp takes it).
pub(crate) fn parse(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<(Arc<Session>, JsonRpcRequest<CallToolRequest>)> {
    let request = super::direct::read_call(body)?;
    let inline_version = request
        .request
        .extensions
        .get::<RequestMetaObject>()
        .is_some_and(|m| m.protocol_version().is_some());
    if inline_version {
        return None;
    }
    let id = super::direct::single(headers, &super::direct::SESSION_ID)?;
    let version = super::direct::single(headers, &super::direct::PROTOCOL_VERSION)?;
    let session = state.mcp_sessions.find(id)?;
    (session.protocol_version() == Some(version)).then_some((session, request))
}

/// Hand the call to the session and answer with what it sends.
pub(crate) async fn serve(
    session: Arc<Session>,
    parts: Parts,
    request: JsonRpcRequest<CallToolRequest>,
) -> Response {
    let JsonRpcRequest { id, request, .. } = request;
    let mut request = ClientRequest::CallToolRequest(request);
    // As rmcp does: the handler finds the caller in the request's HTTP parts.
    request.extensions_mut().insert(parts);
    let message = ClientJsonRpcMessage::request(request, id);
    let Ok(mut stream) = session.request(message).await else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "Not Found: Session not found",
        )
            .into_response();
    };
    // The priming event is on the stream already.
    let priming = stream.next().await;
    let head = match tokio::time::timeout(JSON_WITHIN, stream.next()).await {
        Ok(Some(event)) if is_reply(&event) => return json_response(&event),
        Ok(head) => head,
        Err(_) => None,
    };
    let events = futures::stream::iter(priming.into_iter().chain(head))
        .chain(stream)
        .map(|m| Ok::<Event, Infallible>(event(m)));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn is_reply(event: &ServerSseMessage) -> bool {
    matches!(
        event.message.as_deref(),
        Some(ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_))
    )
}

/// One SSE event as rmcp frames it: its id, its `retry`, the message as its data (a priming
/// event's data is empty).
fn event(m: ServerSseMessage) -> Event {
    let data = m.message.as_deref().map_or_else(String::new, |msg| {
        serde_json::to_string(msg).expect("rmcp's messages serialize")
    });
    let mut e = Event::default().data(data);
    if let Some(id) = m.event_id {
        e = e.id(id);
    }
    if let Some(retry) = m.retry {
        e = e.retry(retry);
    }
    e
}

fn json_response(event: &ServerSseMessage) -> Response {
    let body = serde_json::to_vec(event.message.as_deref().expect("a reply has a message"))
        .expect("rmcp's messages serialize");
    let mut res = Response::new(Body::from(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
