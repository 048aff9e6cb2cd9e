//! One MCP session (2025-11-25 clients) as ColdQuery holds it: the inbox rmcp's service loop
//! reads, and the SSE streams its messages go out on.
//!
//! rmcp's `LocalSessionManager` ran a worker task per session and made five channels of
//! 376-byte message slots when the session started (tokio allocates a block of 32 slots per
//! channel at once): about 65 KB per session before it did anything. Here a session is two locks
//! and a few maps; its channels are the inbox (boxed messages: a block of 32 pointers) and one per
//! open SSE stream. What rmcp's manager did and this keeps:
//!
//! - a request's response, and its progress notifications, go on the POST stream that carried
//!   it; a server-to-client request (elicitation) on the stream of the call that made it (rmcp
//!   marks it with [`OriginatingRequestId`]); everything else on the standalone GET stream;
//! - every request stream starts with a priming event (an event id and `retry`), and the last
//!   [`KEPT_EVENTS`] events of each open stream are kept, so a client that reconnects with
//!   `Last-Event-ID` while its call runs gets what it missed and then the reply; a request's
//!   stream is forgotten once its reply is sent (nothing is kept after it: a large result
//!   would otherwise stay in memory);
//! - a client's `notifications/cancelled` ends the cancelled request's stream;
//! - a second GET while the first is open gets a quiet stream (keep-alives only), so that two
//!   event sources do not take the standalone stream from each other.
//!
//! Once rmcp's service has served a session's first tool call, the session keeps its handler
//! ([`SessionCalls`]), and later tool calls run on it in a task of their own, without the
//! service loop; their answers are routed by the same rules.
//!
//! The service loop itself runs only while a session needs one ([`service`]): the loop rmcp
//! starts for the handshake is let go once `initialize` is answered, and the first message
//! that needs a loop starts one, replaying the handshake to it.
// The truncation warning is a logging notification (deprecated by SEP-2577): see `crate::mcp::call`.
#![allow(deprecated)]

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetExtensions, GetMeta,
    JsonRpcRequest, LoggingMessageNotification, ProgressToken, RequestId, RequestMetaObject,
    ServerJsonRpcMessage, ServerNotification,
};
use rmcp::service::OriginatingRequestId;
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::caller::Caller;
use crate::mcp::call::SessionCalls;

mod service;

use service::{Handshake, Inbox};
pub use service::{SessionTransport, Start};

/// Events kept per stream for a client that reconnects (rmcp's default channel capacity).
pub const KEPT_EVENTS: usize = 16;
/// The `retry` a priming event tells the client (rmcp's default).
pub const SSE_RETRY: Duration = Duration::from_secs(3);
/// Quiet streams kept open per session at most (rmcp's limit for its "shadow" streams).
const MAX_QUIET: usize = 32;
/// Messages waiting for rmcp's service loop before a sender waits.
const INBOX: usize = 16;

/// Why a message could not be taken or a stream opened.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The session ended (closed, reaped, or its service stopped).
    #[error("the MCP session is closed; initialize a new one")]
    Closed,
    /// A `Last-Event-ID` this session does not know (any more).
    #[error("Last-Event-ID {0:?} names no stream this MCP session still keeps")]
    UnknownEvent(String),
}

/// One MCP session: shared by the session table and the transport rmcp's service loop owns.
pub struct Session {
    inbox: Mutex<Inbox>,
    /// What opened the session, replayed to each service loop started after the first.
    handshake: Mutex<Handshake>,
    /// rmcp's worker closes the session through the table once the loop that ran the
    /// handshake ends: set when that loop is let go, so that this one close is ignored.
    handshake_loop_ending: AtomicBool,
    /// The protocol version the handshake agreed on.
    version: OnceLock<String>,
    start: Start,
    routes: Mutex<Routes>,
    /// The session's handler, once rmcp has served its first tool call: later ones run on it
    /// directly ([`Session::request`]). Dropped at close, so that the handler's end (which
    /// closes the pg_tx handles the MCP session owned) is not held up.
    calls: Mutex<Option<Arc<SessionCalls>>>,
}

/// What a server message is routed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Request(RequestId),
    Progress(ProgressToken),
}

#[derive(Default)]
struct Routes {
    next_stream: u64,
    /// Open request streams by number (the part after `/` in their event ids).
    requests: HashMap<u64, Events>,
    /// Which request stream a request id or progress token belongs to, while it runs.
    owners: HashMap<Key, u64>,
    standalone: Events,
    quiet: Vec<mpsc::UnboundedSender<ServerSseMessage>>,
    /// Waiting for the answer to `initialize`.
    initialize: Option<oneshot::Sender<ServerJsonRpcMessage>>,
}

/// One SSE stream's sender and the events kept for reconnects.
#[derive(Default)]
struct Events {
    tx: Option<mpsc::UnboundedSender<ServerSseMessage>>,
    kept: VecDeque<(usize, ServerSseMessage)>,
    next: usize,
    keys: Vec<Key>,
    /// A call served directly: cancelled by the client's `notifications/cancelled` or when the
    /// session closes (rmcp's service cancels its own calls the same way).
    ct: Option<CancellationToken>,
}

impl Events {
    /// Number `event`, keep it, and send it if a client is listening.
    fn emit(&mut self, stream: Option<u64>, mut event: ServerSseMessage) {
        let index = self.next;
        self.next += 1;
        event.event_id = Some(match stream {
            Some(s) => format!("{index}/{s}"),
            None => index.to_string(),
        });
        if self.kept.len() == KEPT_EVENTS {
            self.kept.pop_front();
        }
        self.kept.push_back((index, event.clone()));
        if let Some(tx) = &self.tx
            && tx.send(event).is_err()
        {
            self.tx = None;
        }
    }

    fn listening(&self) -> bool {
        self.tx.as_ref().is_some_and(|tx| !tx.is_closed())
    }
}

impl Routes {
    /// End a request's stream (its sender dropped, so the client sees the end after what was
    /// sent) and forget it.
    fn finish(&mut self, stream: u64) {
        if let Some(events) = self.requests.remove(&stream) {
            if let Some(ct) = &events.ct {
                ct.cancel();
            }
            for key in &events.keys {
                self.owners.remove(key);
            }
        }
    }

    fn owner(&self, key: Key) -> Option<u64> {
        self.owners.get(&key).copied()
    }

    /// Send one server message where it belongs.
    fn route(&mut self, message: ServerJsonRpcMessage) {
        if matches!(
            message,
            ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_)
        ) && let Some(reply) = self.initialize.take()
        {
            let _ = reply.send(message);
            return;
        }
        let (stream, ends) = match &message {
            ServerJsonRpcMessage::Request(r) => (
                r.request
                    .extensions()
                    .get::<OriginatingRequestId>()
                    .and_then(|o| self.owner(Key::Request(o.0.clone()))),
                false,
            ),
            ServerJsonRpcMessage::Notification(n) => match &n.notification {
                ServerNotification::ProgressNotification(p) => (
                    self.owner(Key::Progress(p.params.progress_token.clone())),
                    false,
                ),
                ServerNotification::CancelledNotification(c) => (
                    c.params
                        .request_id
                        .clone()
                        .and_then(|id| self.owner(Key::Request(id))),
                    false,
                ),
                _ => (None, false),
            },
            ServerJsonRpcMessage::Response(r) => (self.owner(Key::Request(r.id.clone())), true),
            ServerJsonRpcMessage::Error(e) => (
                e.id.clone().and_then(|id| self.owner(Key::Request(id))),
                true,
            ),
        };
        let event = ServerSseMessage::from_message(message);
        match stream.and_then(|s| self.requests.get_mut(&s).map(|e| (s, e))) {
            Some((s, events)) => {
                events.emit(Some(s), event);
                if ends {
                    self.finish(s);
                }
            }
            None => self.standalone.emit(None, event),
        }
    }
}

/// An SSE stream handed to rmcp: what one [`Events`] sends.
pub struct Stream(mpsc::UnboundedReceiver<ServerSseMessage>);

impl futures::Stream for Stream {
    type Item = ServerSseMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

impl Session {
    /// A new session and the transport for the service loop rmcp starts for its handshake.
    /// Once the handshake is answered that loop is let go: a session that only holds its
    /// streams (an idle client) keeps no task or channel of rmcp's. The first message that
    /// needs a service loop afterwards has `start` run one on a new transport, which is given
    /// the client's `initialize` (its answer dropped) and `notifications/initialized` first.
    pub fn new(start: Start) -> (Arc<Session>, SessionTransport) {
        let (tx, rx) = mpsc::channel(INBOX);
        let session = Arc::new(Session {
            inbox: Mutex::new(Inbox {
                tx: Some(tx),
                generation: 0,
                closed: false,
            }),
            handshake: Mutex::new(Handshake::default()),
            handshake_loop_ending: AtomicBool::new(false),
            version: OnceLock::new(),
            start,
            calls: Mutex::new(None),
            routes: Mutex::new(Routes {
                // 0 is the priming event rmcp puts first on a standalone stream.
                standalone: Events {
                    next: 1,
                    ..Events::default()
                },
                ..Routes::default()
            }),
        });
        let transport = SessionTransport {
            session: session.clone(),
            inbox: rx,
            generation: 0,
        };
        (session, transport)
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes
            .lock()
            .expect("the MCP session lock is never poisoned")
    }

    /// Serve this session's later tool calls on `calls` (see [`SessionCalls`]).
    pub(crate) fn attach(&self, calls: SessionCalls) {
        if self.ensure_open().is_ok() {
            *self
                .calls
                .lock()
                .expect("the MCP session lock is never poisoned") = Some(Arc::new(calls));
        }
    }

    /// The handler to run `message` on directly, when it is a tool call that one serves.
    fn direct(&self, message: &ClientJsonRpcMessage) -> Option<Arc<SessionCalls>> {
        let ClientJsonRpcMessage::Request(r) = message else {
            return None;
        };
        let ClientRequest::CallToolRequest(call) = &r.request else {
            return None;
        };
        let calls = self
            .calls
            .lock()
            .expect("the MCP session lock is never poisoned")
            .clone()?;
        calls.serves(call).then_some(calls)
    }

    /// Hand a request to the service; its answer comes on the returned stream. A tool call
    /// the session's handler serves runs on it in a task of its own instead, and its answer
    /// is routed as the service's would be.
    pub async fn request(
        self: &Arc<Self>,
        message: ClientJsonRpcMessage,
    ) -> Result<Stream, StreamError> {
        let direct = self.direct(&message);
        let ct = direct.as_ref().map(|_| CancellationToken::new());
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = {
            let mut routes = self.routes();
            let s = routes.next_stream;
            routes.next_stream += 1;
            let mut events = Events {
                tx: Some(tx),
                ct: ct.clone(),
                ..Events::default()
            };
            if let ClientJsonRpcMessage::Request(r) = &message {
                events.keys.push(Key::Request(r.id.clone()));
                if let Some(token) = r.request.get_meta().get_progress_token() {
                    events.keys.push(Key::Progress(token));
                }
            }
            for key in &events.keys {
                routes.owners.insert(key.clone(), s);
            }
            events.emit(Some(s), ServerSseMessage::retry(SSE_RETRY));
            routes.requests.insert(s, events);
            s
        };
        if let (Some(calls), Some(ct)) = (direct, ct) {
            self.spawn_call(calls, message, ct);
            return Ok(Stream(rx));
        }
        if let Err(e) = self.push(message).await {
            self.routes().finish(stream);
            return Err(e);
        }
        Ok(Stream(rx))
    }

    /// Hand a notification or a response (to an elicitation) to the service. A cancellation
    /// ends the cancelled request's stream, as rmcp's manager did.
    /// `notifications/initialized` is kept for later loops and starts none; a cancellation
    /// while no loop runs has nothing in the service to reach.
    pub async fn accept(
        self: &Arc<Self>,
        message: ClientJsonRpcMessage,
    ) -> Result<(), StreamError> {
        if let ClientJsonRpcMessage::Notification(n) = &message {
            match &n.notification {
                ClientNotification::CancelledNotification(c) => {
                    if let Some(id) = &c.params.request_id {
                        let mut routes = self.routes();
                        if let Some(s) = routes.owner(Key::Request(id.clone())) {
                            routes.finish(s);
                        }
                    }
                    if self.ensure_open()?.is_none() {
                        return Ok(());
                    }
                }
                ClientNotification::InitializedNotification(_) => {
                    self.handshake().initialized = Some(message.clone());
                    if self.ensure_open()?.is_none() {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        self.push(message).await
    }

    /// A GET stream: the standalone one, or a quiet one while the standalone one is open.
    pub fn standalone(&self) -> Result<Stream, StreamError> {
        self.ensure_open()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut routes = self.routes();
        if routes.standalone.listening() {
            routes.quiet.retain(|q| !q.is_closed());
            if routes.quiet.len() >= MAX_QUIET {
                routes.quiet.remove(0);
            }
            routes.quiet.push(tx);
        } else {
            routes.standalone.tx = Some(tx);
        }
        Ok(Stream(rx))
    }

    /// A reconnect with `Last-Event-ID`: the kept events after it, then what comes next. A
    /// request whose reply was sent is forgotten: its id is unknown.
    pub fn resume(&self, last_event_id: &str) -> Result<Stream, StreamError> {
        self.ensure_open()?;
        let unknown = || StreamError::UnknownEvent(last_event_id.to_owned());
        let (index, stream) = match last_event_id.split_once('/') {
            Some((i, s)) => (
                i.parse::<usize>(),
                Some(s.parse::<u64>().map_err(|_| unknown())?),
            ),
            None => (last_event_id.parse::<usize>(), None),
        };
        let index = index.map_err(|_| unknown())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut routes = self.routes();
        let events = match stream {
            Some(s) => routes.requests.get_mut(&s).ok_or_else(unknown)?,
            None => &mut routes.standalone,
        };
        for (_, event) in events.kept.iter().filter(|(i, _)| *i > index) {
            let _ = tx.send(event.clone());
        }
        events.tx = Some(tx);
        Ok(Stream(rx))
    }

    /// Run a tool call on the session's handler and route what it answers: the truncation
    /// warning first (on the standalone stream, where rmcp's service sends a notification),
    /// then the response (on the call's stream; after a cancellation, which ended that stream,
    /// on the standalone one, as rmcp's service does).
    fn spawn_call(
        self: &Arc<Self>,
        calls: Arc<SessionCalls>,
        message: ClientJsonRpcMessage,
        ct: CancellationToken,
    ) {
        let ClientJsonRpcMessage::Request(JsonRpcRequest { id, request, .. }) = message else {
            return;
        };
        let ClientRequest::CallToolRequest(mut call) = request else {
            return;
        };
        let meta = call
            .extensions
            .remove::<RequestMetaObject>()
            .unwrap_or_default();
        let caller = call
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
            .unwrap_or_else(Caller::anonymous);
        let session = self.clone();
        tokio::spawn(async move {
            let called = calls.call(&id, call.params, meta, caller, ct).await;
            let reply = match calls.result(called.response.into_rmcp()) {
                Ok(r) => ServerJsonRpcMessage::response(r, id),
                Err(e) => ServerJsonRpcMessage::error(e, Some(id)),
            };
            let mut routes = session.routes();
            if let Some(param) = called.warning {
                routes.route(ServerJsonRpcMessage::notification(
                    ServerNotification::LoggingMessageNotification(
                        LoggingMessageNotification::new(param),
                    ),
                ));
            }
            routes.route(reply);
        });
    }

    /// Open: the running loop's inbox, if one runs.
    fn ensure_open(&self) -> Result<Option<mpsc::Sender<Box<ClientJsonRpcMessage>>>, StreamError> {
        let inbox = self.inbox();
        match inbox.closed {
            false => Ok(inbox.tx.clone()),
            true => Err(StreamError::Closed),
        }
    }

    /// End the session: the service loop stops once it has read what is queued, and every
    /// open stream ends.
    pub fn close(&self) {
        {
            let mut inbox = self.inbox();
            inbox.closed = true;
            inbox.tx = None;
        }
        self.calls
            .lock()
            .expect("the MCP session lock is never poisoned")
            .take();
        let mut routes = self.routes();
        for events in routes.requests.values() {
            if let Some(ct) = &events.ct {
                ct.cancel();
            }
        }
        routes.requests.clear();
        routes.owners.clear();
        routes.standalone = Events::default();
        routes.quiet.clear();
        routes.initialize = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::transport::Transport;
    use serde_json::json;

    fn client(v: serde_json::Value) -> ClientJsonRpcMessage {
        serde_json::from_value(v).expect("a client message")
    }

    fn server(v: serde_json::Value) -> ServerJsonRpcMessage {
        serde_json::from_value(v).expect("a server message")
    }

    fn call(id: u64, progress: Option<&str>) -> ClientJsonRpcMessage {
        let mut params = json!({"name": "pg_query", "arguments": {}});
        if let Some(p) = progress {
            params["_meta"] = json!({"progressToken": p});
        }
        client(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}))
    }

    fn reply(id: u64) -> ServerJsonRpcMessage {
        server(json!({"jsonrpc": "2.0", "id": id, "result": {}}))
    }

    fn progress(token: &str) -> ServerJsonRpcMessage {
        server(json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": token, "progress": 1}}))
    }

    /// What a stream holds now, without waiting: (event id, JSON-RPC id or method or "priming").
    fn drain(s: &mut Stream) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(e) = s.0.try_recv() {
            let what = match e.message.as_deref() {
                None => "priming".to_owned(),
                Some(m) => {
                    let v = serde_json::to_value(m).unwrap();
                    v.get("id")
                        .map(|i| i.to_string())
                        .or_else(|| v["method"].as_str().map(str::to_owned))
                        .unwrap_or_default()
                }
            };
            out.push((e.event_id.unwrap_or_default(), what));
        }
        out
    }

    fn ended(s: &mut Stream) -> bool {
        matches!(s.0.try_recv(), Err(mpsc::error::TryRecvError::Disconnected))
    }

    #[tokio::test]
    async fn a_reply_and_its_progress_go_on_the_stream_of_their_request_which_then_ends() {
        let (session, mut t) = Session::new(Arc::new(drop));
        let mut one = session.request(call(1, Some("p1"))).await.unwrap();
        let mut two = session.request(call(2, None)).await.unwrap();
        let mut get = session.standalone().unwrap();
        assert!(t.receive().await.is_some() && t.receive().await.is_some());

        t.send(progress("p1")).await.unwrap();
        t.send(reply(2)).await.unwrap();
        t.send(server(
            json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": "x"}}),
        ))
        .await
        .unwrap();
        t.send(reply(1)).await.unwrap();

        let e = |id: &str, what: &str| (id.to_owned(), what.to_owned());
        assert_eq!(
            drain(&mut one),
            [
                e("0/0", "priming"),
                e("1/0", "notifications/progress"),
                e("2/0", "1")
            ]
        );
        assert!(ended(&mut one));
        assert_eq!(drain(&mut two), [e("0/1", "priming"), e("1/1", "2")]);
        assert!(ended(&mut two));
        assert_eq!(drain(&mut get), [e("1", "notifications/message")]);
        assert!(!ended(&mut get), "the standalone stream stays open");
        // The token is forgotten with its request: a late progress goes to the GET stream.
        t.send(progress("p1")).await.unwrap();
        assert_eq!(drain(&mut get), [e("2", "notifications/progress")]);
    }

    #[tokio::test]
    async fn an_elicitation_goes_on_the_stream_of_the_call_that_asked() {
        let (session, mut t) = Session::new(Arc::new(drop));
        let mut one = session.request(call(5, None)).await.unwrap();
        let mut get = session.standalone().unwrap();
        let mut ask = server(json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}));
        if let ServerJsonRpcMessage::Request(r) = &mut ask {
            r.request
                .extensions_mut()
                .insert(OriginatingRequestId(RequestId::Number(5)));
        }
        t.send(ask).await.unwrap();
        t.send(server(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})))
            .await
            .unwrap();
        let what: Vec<String> = drain(&mut one).into_iter().map(|(_, w)| w).collect();
        assert_eq!(what, ["priming", "0"]);
        let what: Vec<String> = drain(&mut get).into_iter().map(|(_, w)| w).collect();
        assert_eq!(what, ["1"], "a request no call made goes on the GET stream");
    }

    #[tokio::test]
    async fn a_reconnect_gets_the_events_after_its_last_event_id_then_the_reply() {
        let (session, mut t) = Session::new(Arc::new(drop));
        let mut one = session.request(call(1, Some("p"))).await.unwrap();
        t.send(progress("p")).await.unwrap();
        drop(one.0.try_recv());
        drop(one); // the client's connection broke after the priming event
        t.send(progress("p")).await.unwrap();
        let mut again = session.resume("0/0").unwrap();
        t.send(reply(1)).await.unwrap();
        let ids: Vec<String> = drain(&mut again).into_iter().map(|(i, _)| i).collect();
        assert_eq!(ids, ["1/0", "2/0", "3/0"]);
        assert!(ended(&mut again));
        // Once the reply is sent the stream is forgotten; unknown ids are refused.
        for id in ["2/0", "0/9", "x", "1/x"] {
            assert!(
                matches!(session.resume(id), Err(StreamError::UnknownEvent(_))),
                "{id}"
            );
        }
        assert!(session.routes().requests.is_empty() && session.routes().owners.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_request_ends_its_stream_and_the_cancellation_reaches_the_service() {
        let (session, mut t) = Session::new(Arc::new(drop));
        let mut one = session.request(call(3, None)).await.unwrap();
        t.receive().await.unwrap();
        session
            .accept(client(
                json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 3}}),
            ))
            .await
            .unwrap();
        assert!(matches!(
            t.receive().await,
            Some(ClientJsonRpcMessage::Notification(_))
        ));
        drain(&mut one);
        assert!(ended(&mut one));
    }

    fn init() -> ClientJsonRpcMessage {
        client(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
    }

    fn method(m: &ClientJsonRpcMessage) -> String {
        serde_json::to_value(m).unwrap()["method"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn after_its_handshake_a_session_runs_no_loop_until_a_message_needs_one() {
        let started = Arc::new(Mutex::new(Vec::new()));
        let start: Start = {
            let started = started.clone();
            Arc::new(move |t| started.lock().unwrap().push(t))
        };
        let (session, mut t) = Session::new(start);
        let s = session.clone();
        let waiting = tokio::spawn(async move { s.initialize(init()).await });
        assert!(t.receive().await.is_some());
        t.send(reply(0)).await.unwrap();
        assert!(waiting.await.unwrap().is_ok());
        assert!(
            t.receive().await.is_none(),
            "the handshake's loop is let go"
        );
        assert!(session.handshake_loop_ended() && !session.handshake_loop_ended());

        let mut get = session.standalone().unwrap();
        let initialized = client(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let cancelled = client(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 7}}),
        );
        session.accept(initialized).await.unwrap();
        session.accept(cancelled).await.unwrap();
        assert!(started.lock().unwrap().is_empty(), "neither needs a loop");

        let mut one = session.request(call(1, None)).await.unwrap();
        let mut t2 = started.lock().unwrap().pop().expect("a loop was started");
        let replayed = [
            t2.receive().await.unwrap(),
            t2.receive().await.unwrap(),
            t2.receive().await.unwrap(),
        ];
        assert_eq!(
            replayed.iter().map(method).collect::<Vec<_>>(),
            ["initialize", "notifications/initialized", "tools/call"]
        );
        t2.send(reply(0)).await.unwrap();
        t2.send(reply(1)).await.unwrap();
        assert!(
            drain(&mut get).is_empty(),
            "the replayed handshake's answer goes nowhere"
        );
        let what: Vec<String> = drain(&mut one).into_iter().map(|(_, w)| w).collect();
        assert_eq!(what, ["priming", "1"]);
        // The running loop is used again; none is started.
        let _two = session.request(call(2, None)).await.unwrap();
        assert_eq!(method(&t2.receive().await.unwrap()), "tools/call");
        assert!(started.lock().unwrap().is_empty());
        // A loop that ends by itself closes the session.
        drop(t2);
        assert!(session.is_closed());
        assert!(ended(&mut get));
    }

    #[tokio::test]
    async fn a_second_get_is_quiet_and_initialize_waits_for_its_answer() {
        let (session, mut t) = Session::new(Arc::new(drop));
        let s = session.clone();
        let waiting = tokio::spawn(async move { s.initialize(init()).await });
        assert!(t.receive().await.is_some());
        t.send(reply(0)).await.unwrap();
        assert!(matches!(
            waiting.await.unwrap(),
            Ok(ServerJsonRpcMessage::Response(_))
        ));

        let mut first = session.standalone().unwrap();
        let mut second = session.standalone().unwrap();
        t.send(server(
            json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
        ))
        .await
        .unwrap();
        assert_eq!(drain(&mut first).len(), 1);
        assert!(drain(&mut second).is_empty() && !ended(&mut second));

        session.close();
        assert!(ended(&mut first) && ended(&mut second));
        assert!(t.receive().await.is_none(), "the service loop ends");
        assert!(matches!(
            session.request(call(9, None)).await,
            Err(StreamError::Closed)
        ));
        assert!(matches!(session.standalone(), Err(StreamError::Closed)));
    }
}
