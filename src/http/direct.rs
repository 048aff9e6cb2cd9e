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
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequest, CallToolRequestMethod, CallToolRequestParams, JsonRpcRequest,
    JsonRpcVersion2_0, LoggingMessageNotification, ProtocolVersion, RequestId, RequestMetaObject,
    ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use tokio_util::sync::CancellationToken;

use crate::caller::Caller;
use crate::http::direct_session;
use crate::mcp::ColdQueryServer;
use crate::mcp::call::{CallContext, Response as CallResponse};
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
    /// rmcp's Host allowlist as configured, each entry parsed once; `None` (configured
    /// empty): any Host.
    allowed_hosts: Option<Vec<AllowedHost>>,
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
                allowed_hosts: (!allowed_hosts.is_empty()).then(|| {
                    allowed_hosts
                        .iter()
                        .filter_map(|e| AllowedHost::parse(e))
                        .collect()
                }),
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
            && content_type_is_json(h)
            && accepts_json_and_sse(h)
            && h.get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|n| n <= self.max_body)
            && single(h, header::HOST)
                .is_some_and(|host| host_allowed(host, self.allowed_hosts.as_deref()))
            && !h.keys().any(|k| k.as_str().starts_with("mcp-param-"));
        if !common {
            None
        } else if !h.contains_key(&SESSION_ID) {
            let stateless = single(h, &PROTOCOL_VERSION).is_some_and(|v| v == VERSION)
                && single(h, &MCP_METHOD).is_some_and(|v| v == "tools/call")
                && single(h, &MCP_NAME).is_some();
            stateless.then_some(Path::Stateless)
        } else {
            direct_session::eligible(h).then_some(Path::Session)
        }
    }

    /// The body as a `tools/call` request that the direct path serves, or `None`.
    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Option<JsonRpcRequest<CallToolRequest>> {
        let request = read_call(body)?;
        let params = &request.request.params;
        // rmcp's deserializer keeps the request's `_meta` in its extensions.
        let meta = request.request.extensions.get::<RequestMetaObject>()?;
        let version = ProtocolVersion::V_2026_07_28;
        let served = single(headers, &MCP_NAME) == Some(params.name.as_ref())
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
        let response = match called.response {
            // A result alone: written here, without rmcp's message types.
            CallResponse::Rendered(r) if called.warning.is_none() => {
                return json_body(r.reply_body(&id));
            }
            other => other.into_rmcp(),
        };
        let reply = match response {
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

/// The body as a `tools/call` request, read into the same rmcp types that rmcp's own message
/// types read it to, without their flattened layers (which buffer the whole body as a
/// generic tree and read it a second time: about a tenth of a point read's instructions).
/// A body that rmcp would read differently, or not at all, is not read here either (`None`:
/// rmcp takes it): the fields are rmcp's own types; unknown fields are ignored at every level,
/// as rmcp's flattened types ignore them; a repeated field fails here, as it does there.
pub(crate) fn read_call(body: &[u8]) -> Option<JsonRpcRequest<CallToolRequest>> {
    #[derive(serde::Deserialize)]
    struct Call {
        jsonrpc: JsonRpcVersion2_0,
        id: RequestId,
        // `method` is rmcp's constant "tools/call": anything else fails.
        #[allow(dead_code)]
        method: CallToolRequestMethod,
        params: CallToolRequestParams,
    }
    let Call {
        jsonrpc,
        id,
        mut params,
        ..
    } = serde_json::from_slice(body).ok()?;
    // rmcp keeps `_meta` in the request's extensions, not in its params.
    let meta = params.meta.take();
    let mut request = CallToolRequest::new(params);
    if let Some(meta) = meta {
        request.extensions.insert(meta);
    }
    Some(JsonRpcRequest {
        jsonrpc,
        id,
        request,
    })
}

/// The two requests served here.
#[derive(Clone, Copy)]
enum Path {
    /// A 2026-07-28 `tools/call`.
    Stateless,
    /// A `tools/call` in a 2025-11-25 session ([`direct_session`]).
    Session,
}

/// The MCP headers looked at here, parsed once rather than from a string on every lookup.
pub(crate) static SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub(crate) static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub(crate) static MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub(crate) static MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// The one value of header `name`, if there is exactly one and it is text.
pub(crate) fn single<K: header::AsHeaderName>(h: &HeaderMap, name: K) -> Option<&str> {
    let mut values = h.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// `Content-Type: application/json` (parameters allowed), as rmcp requires.
fn content_type_is_json(h: &HeaderMap) -> bool {
    single(h, header::CONTENT_TYPE).is_some_and(|v| {
        let essence = v.split_once(';').map_or(v, |(e, _)| e);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// One `Accept` header naming both `application/json` and `text/event-stream`, without
/// parameters (a weight is left to rmcp to interpret).
fn accepts_json_and_sse(h: &HeaderMap) -> bool {
    let Some(accept) = single(h, header::ACCEPT) else {
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

/// An entry of the Host allowlist: a name (IPv6 brackets removed) and, if it has one, a port.
struct AllowedHost {
    name: String,
    port: Option<u16>,
}

impl AllowedHost {
    /// The entry as rmcp reads it; `None` for an empty one, which allows nothing.
    fn parse(entry: &str) -> Option<AllowedHost> {
        let entry = entry.trim();
        if entry.is_empty() {
            return None;
        }
        let (name, port) = match entry.parse::<axum::http::uri::Authority>() {
            Ok(a) => (unbracket(a.host()).to_owned(), a.port_u16()),
            Err(_) => (unbracket(entry).to_owned(), None),
        };
        Some(AllowedHost { name, port })
    }
}

/// A host name without the brackets of an IPv6 literal.
fn unbracket(host: &str) -> &str {
    host.trim_matches('[').trim_matches(']')
}

/// rmcp's Host check: an entry without a port allows any port; names compare without case
/// and IPv6 brackets; no list (configured empty) allows any Host, a list of empty entries none.
fn host_allowed(host: &str, allowed: Option<&[AllowedHost]>) -> bool {
    let Some(allowed) = allowed else {
        return true;
    };
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let (name, port) = (unbracket(authority.host()), authority.port_u16());
    allowed.iter().any(|entry| {
        entry.name.eq_ignore_ascii_case(name) && entry.port.is_none_or(|p| port == Some(p))
    })
}

/// The reply as one JSON body, as rmcp sends a stateless reply that is its only message.
fn json_response(message: &ServerJsonRpcMessage) -> Response {
    json_body(serde_json::to_vec(message).expect("rmcp's messages serialize"))
}

/// `body`, a JSON-RPC message, as the response.
fn json_body(body: Vec<u8>) -> Response {
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

    fn list(v: &[&str]) -> Vec<AllowedHost> {
        v.iter().filter_map(|s| AllowedHost::parse(s)).collect()
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
            assert!(host_allowed(ok, Some(&allowed)), "{ok} should pass");
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
                !host_allowed(refused, Some(&allowed)),
                "{refused} should not pass"
            );
        }
        assert!(host_allowed("anything:1", None), "no list allows any Host");
        assert!(
            !host_allowed("localhost", Some(&list(&["", " "]))),
            "a list of empty entries allows none"
        );
    }

    #[test]
    fn a_call_read_here_is_the_call_rmcp_reads() {
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","k":[1,2.5,"\u00e9"]}"#;
        let taken = [
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"pg_query","arguments":{{"sql":"SELECT \"a\"","n":-3,"f":1e3,"big":18446744073709551616}},{meta}}}}}"#),
            r#"{"jsonrpc":"2.0","id":"x-1","method":"tools/call","params":{"name":"pg_query"}}"#.to_owned(),
            r#"{"params":{"arguments":null,"_meta":null,"name":"t"},"method":"tools/call","id":-7,"jsonrpc":"2.0"}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","extra":{"a":1},"params":{"name":"t","other":true,"requestState":"s","arguments":{"x":{"y":[null]}}}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"a":1,"a":2}}}  "#.to_owned(),
        ];
        let others = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","name":"u"}}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}} x"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}]"#,
        ];
        let theirs = |body: &str| {
            serde_json::from_slice::<JsonRpcRequest<CallToolRequest>>(body.as_bytes()).ok()
        };
        let same = |body: &str| {
            let (mine, theirs) = (read_call(body.as_bytes()), theirs(body));
            match (&mine, &theirs) {
                (Some(m), Some(t)) => {
                    assert_eq!(
                        serde_json::to_value(m).unwrap(),
                        serde_json::to_value(t).unwrap(),
                        "{body}"
                    );
                    assert_eq!(
                        m.request.extensions.get::<RequestMetaObject>(),
                        t.request.extensions.get::<RequestMetaObject>(),
                        "{body}"
                    );
                    assert_eq!(m.request.params, t.request.params, "{body}");
                }
                (Some(_), None) => panic!("read here but refused by rmcp: {body}"),
                _ => {}
            }
            mine.is_some()
        };
        for body in &taken {
            assert!(same(body), "the direct path should read {body}");
        }
        for body in others {
            assert!(!same(body), "left to rmcp: {body}");
        }
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
