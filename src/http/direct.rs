//! Stateless `tools/call` served directly: a 2026-07-28 request that asks for nothing but a
//! tool call is run on the handler here, without rmcp's per-request service (a service loop,
//! a one-shot transport, four task spawns, the request deserialized as every message type in
//! turn and serialized again to check its headers). That machinery was about a third of the
//! server's instructions per point read (docs/benchmarks.md).
//!
//! Only a request that rmcp would certainly accept and serve the same way is taken: every
//! check below is the same as rmcp's or stricter, and anything else (another method, another
//! protocol version, an `Origin` header, a progress token, `Mcp-Param-*` headers, an unknown
//! tool, a body that does not parse as exactly this request) goes to rmcp unchanged, which
//! answers it as before. The reply is built from rmcp's own message types and serialized
//! as rmcp does: JSON, or, when a truncation warning goes first, the two messages as
//! server-sent events. `tests/direct.rs` sends each kind of request both ways and compares.
// The truncation warning is a logging notification (deprecated by SEP-2577): see log_rank.
#![allow(deprecated)]

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequest, JsonRpcRequest, LoggingMessageNotification, ProtocolVersion,
    RequestMetaObject, ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use tokio_util::sync::CancellationToken;

use crate::caller::Caller;
use crate::http::direct_session;
use crate::mcp::ColdQueryServer;
use crate::mcp::call::CallContext;
use crate::mcp::names::ToolName;
use crate::state::AppState;

/// The only protocol version served here.
const VERSION: &str = "2026-07-28";

/// The `/mcp` service: direct for the requests described above, rmcp for the rest.
#[derive(Clone)]
pub(crate) struct Direct<S> {
    inner: S,
    shared: Arc<Shared>,
}

struct Shared {
    state: AppState,
    /// rmcp's Host allowlist as configured (empty: any Host).
    allowed_hosts: Vec<String>,
    /// Largest body read here (the body limit in front of `/mcp`).
    max_body: usize,
    /// Cancelled at shutdown: a call still running then is cancelled, as rmcp's are.
    shutdown: CancellationToken,
}

impl<S> Direct<S> {
    /// Serve eligible requests directly, the rest with `inner`. `allowed_hosts` is the list
    /// rmcp was given (empty: any Host); `shutdown` the token rmcp was given.
    pub(crate) fn new(
        inner: S,
        state: AppState,
        allowed_hosts: Vec<String>,
        shutdown: CancellationToken,
    ) -> Self {
        let max_body = state.config.max_request_bytes;
        Direct {
            inner,
            shared: Arc::new(Shared {
                state,
                allowed_hosts,
                max_body,
                shutdown,
            }),
        }
    }
}

impl<S> tower::Service<Request<Body>> for Direct<S>
where
    S: tower::Service<Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let Some(path) = self.shared.eligible(&req) else {
            let call = self.inner.call(req);
            return Box::pin(async move { Ok(call.await.into_response()) });
        };
        let shared = self.shared.clone();
        // The inner service is ready (poll_ready); keep that one, leave a clone in its place.
        let inner = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, inner);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match axum::body::to_bytes(body, shared.max_body).await {
                Ok(b) => b,
                Err(_) => {
                    return Ok((
                        StatusCode::BAD_REQUEST,
                        "the request body could not be read",
                    )
                        .into_response());
                }
            };
            match path {
                Path::Stateless => {
                    if let Some(request) = shared.parse(&parts.headers, &bytes) {
                        return Ok(shared.serve(parts, request).await);
                    }
                }
                Path::Session => {
                    if let Some((session, request)) =
                        direct_session::parse(&shared.state, &parts.headers, &bytes)
                    {
                        return Ok(direct_session::serve(session, parts, request).await);
                    }
                }
            }
            Ok(inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
                .into_response())
        })
    }
}

impl Shared {
    /// Which direct path the headers alone allow (the body is checked in `parse`), if any.
    fn eligible(&self, req: &Request<Body>) -> Option<Path> {
        let h = req.headers();
        let common = req.method() == Method::POST
            && !h.contains_key(header::ORIGIN)
            && !h.keys().any(|k| k.as_str().starts_with("mcp-param-"))
            && content_type_is_json(h)
            && accepts_json_and_sse(h)
            && h.get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|n| n <= self.max_body)
            && single(h, "host").is_some_and(|host| host_allowed(host, &self.allowed_hosts));
        if !common {
            None
        } else if !h.contains_key("mcp-session-id") {
            let stateless = single(h, "mcp-protocol-version").is_some_and(|v| v == VERSION)
                && single(h, "mcp-method").is_some_and(|v| v == "tools/call")
                && single(h, "mcp-name").is_some();
            stateless.then_some(Path::Stateless)
        } else {
            direct_session::eligible(h).then_some(Path::Session)
        }
    }

    /// The body as a `tools/call` request that the direct path serves, or `None`.
    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Option<JsonRpcRequest<CallToolRequest>> {
        let request: JsonRpcRequest<CallToolRequest> = serde_json::from_slice(body).ok()?;
        let params = &request.request.params;
        // rmcp's deserializer keeps the request's `_meta` in its extensions.
        let meta = request.request.extensions.get::<RequestMetaObject>()?;
        let version = ProtocolVersion::V_2026_07_28;
        let served = single(headers, "mcp-name") == Some(params.name.as_ref())
            && ToolName::parse(&params.name).is_some()
            && meta.protocol_version() == Some(version.clone())
            && meta.missing_required_keys(&version).is_empty()
            && meta.get_progress_token().is_none();
        served.then_some(request)
    }

    /// Run the call and reply as rmcp would.
    async fn serve(
        &self,
        parts: axum::http::request::Parts,
        request: JsonRpcRequest<CallToolRequest>,
    ) -> Response {
        let JsonRpcRequest { id, request, .. } = request;
        let mut request = request;
        let meta = request
            .extensions
            .remove::<RequestMetaObject>()
            .unwrap_or_default();
        let params = request.params;
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::anonymous)
            .stateless();
        self.state
            .metrics
            .inc("coldquery_direct_tool_calls_total", &[]);
        let server = ColdQueryServer::new(self.state.clone());
        let context = CallContext {
            id: &id,
            caller,
            client: meta.client_info(),
            // Dropping this future (the client went away) drops the call, and the connection
            // guards cancel its statement, as rmcp's cancellation does; so does shutdown.
            ct: self.shutdown.child_token(),
            peer: None,
            in_session: false,
            protocol_version: meta.protocol_version(),
            client_capabilities: meta.client_capabilities(),
            progress_token: None,
            log_level: meta.log_level(),
        };
        let called = Box::pin(server.run_call(params, context)).await;
        let reply = match called.response {
            Ok(r) => ServerJsonRpcMessage::response(ServerResult::from(r), id),
            Err(e) => ServerJsonRpcMessage::error(e, Some(id)),
        };
        match called.warning {
            None => json_response(&reply),
            Some(param) => {
                let warning = ServerJsonRpcMessage::notification(
                    ServerNotification::LoggingMessageNotification(
                        LoggingMessageNotification::new(param),
                    ),
                );
                sse_response(&[warning, reply])
            }
        }
    }
}

/// The two requests served here.
#[derive(Clone, Copy)]
enum Path {
    /// A 2026-07-28 `tools/call`.
    Stateless,
    /// A `tools/call` in a 2025-11-25 session ([`direct_session`]).
    Session,
}

/// The one value of header `name`, if there is exactly one and it is text.
pub(crate) fn single<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = h.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// `Content-Type: application/json` (parameters allowed), as rmcp requires.
fn content_type_is_json(h: &HeaderMap) -> bool {
    single(h, "content-type").is_some_and(|v| {
        let essence = v.split_once(';').map_or(v, |(e, _)| e);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// One `Accept` header naming both `application/json` and `text/event-stream`, without
/// parameters (a weight is left to rmcp to interpret).
fn accepts_json_and_sse(h: &HeaderMap) -> bool {
    let Some(accept) = single(h, "accept") else {
        return false;
    };
    let (mut json, mut sse) = (false, false);
    for item in accept.split(',') {
        let item = item.trim();
        if item.contains(';') {
            return false;
        }
        json |= item.eq_ignore_ascii_case("application/json");
        sse |= item.eq_ignore_ascii_case("text/event-stream");
    }
    json && sse
}

/// rmcp's Host check: an entry without a port allows any port; names compare without case
/// and IPv6 brackets; an empty list allows any Host.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let normal = |h: &str| h.trim_matches('[').trim_matches(']').to_ascii_lowercase();
    let (name, port) = (normal(authority.host()), authority.port_u16());
    allowed.is_empty()
        || allowed.iter().any(|entry| {
            let entry = entry.trim();
            if entry.is_empty() {
                return false;
            }
            let (entry_name, entry_port) = match entry.parse::<axum::http::uri::Authority>() {
                Ok(a) => (normal(a.host()), a.port_u16()),
                Err(_) => (normal(entry), None),
            };
            entry_name == name && entry_port.is_none_or(|p| port == Some(p))
        })
}

/// The reply as one JSON body, as rmcp sends a stateless reply that is its only message.
fn json_response(message: &ServerJsonRpcMessage) -> Response {
    let body = serde_json::to_vec(message).expect("rmcp's messages serialize");
    let mut res = Response::new(Body::from(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The messages as server-sent events, framed as rmcp frames them.
fn sse_response(messages: &[ServerJsonRpcMessage]) -> Response {
    let mut body = Vec::new();
    for m in messages {
        body.extend_from_slice(b"data: ");
        body.extend_from_slice(&serde_json::to_vec(m).expect("rmcp's messages serialize"));
        body.extend_from_slice(b"\n\n");
    }
    let mut res = Response::new(Body::from(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn hosts_are_allowed_as_rmcp_allows_them() {
        let allowed = list(&["localhost", "127.0.0.1", "::1", "db.example:8443"]);
        for ok in [
            "localhost",
            "localhost:19002",
            "LOCALHOST:1",
            "127.0.0.1:19002",
            "[::1]:19002",
            "db.example:8443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok} should pass");
        }
        for refused in [
            "example.com",
            "db.example:8444",
            "db.example",
            "127.0.0.2:19002",
            "local host",
            "",
        ] {
            assert!(
                !host_allowed(refused, &allowed),
                "{refused} should not pass"
            );
        }
        assert!(
            host_allowed("anything:1", &[]),
            "an empty list allows any Host"
        );
    }

    #[test]
    fn accept_must_name_both_types_plainly() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_json_and_sse(&h(
            "application/json, text/event-stream"
        )));
        assert!(accepts_json_and_sse(&h(
            "text/event-stream,application/json"
        )));
        assert!(!accepts_json_and_sse(&h("application/json")));
        assert!(!accepts_json_and_sse(&h(
            "application/json;q=0, text/event-stream"
        )));
        assert!(!accepts_json_and_sse(&h("*/*")));
    }
}
