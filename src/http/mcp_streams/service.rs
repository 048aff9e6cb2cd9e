//! A session's rmcp service loop: started for the handshake, let go once it is answered, and
//! started again (the handshake replayed to it) by the first message that needs one; see
//! [`Session::new`].
// The truncation warning is a logging notification (deprecated by SEP-2577): see `crate::mcp::call`.
#![allow(deprecated)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage, ServerResult};
use rmcp::transport::Transport;
use tokio::sync::{mpsc, oneshot};

use super::{INBOX, Session, StreamError};

/// Starts rmcp's service loop for a session on the transport given (see [`Session::new`]).
pub type Start = Arc<dyn Fn(SessionTransport) + Send + Sync>;

/// The way into the session's service loop.
pub(super) struct Inbox {
    /// Into the running loop; `None` while none runs (the next message that needs one starts
    /// it) and once closed.
    pub(super) tx: Option<mpsc::Sender<Box<ClientJsonRpcMessage>>>,
    /// Counts the loops started: a loop that ends by itself closes the session only if it is
    /// still the current one.
    pub(super) generation: u64,
    pub(super) closed: bool,
}

#[derive(Default)]
pub(super) struct Handshake {
    pub(super) initialize: Option<ClientJsonRpcMessage>,
    pub(super) initialized: Option<ClientJsonRpcMessage>,
}

impl Session {
    pub(super) fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox
            .lock()
            .expect("the MCP session lock is never poisoned")
    }

    pub(super) fn handshake(&self) -> MutexGuard<'_, Handshake> {
        self.handshake
            .lock()
            .expect("the MCP session lock is never poisoned")
    }

    /// The running loop's inbox; a new loop if none runs.
    fn sender(self: &Arc<Self>) -> Result<mpsc::Sender<Box<ClientJsonRpcMessage>>, StreamError> {
        let mut inbox = self.inbox();
        if inbox.closed {
            return Err(StreamError::Closed);
        }
        if let Some(tx) = &inbox.tx {
            return Ok(tx.clone());
        }
        let (tx, rx) = mpsc::channel(INBOX);
        {
            let handshake = self.handshake();
            let init = handshake.initialize.clone().ok_or(StreamError::Closed)?;
            // The new loop answers the replayed `initialize` before anything else; that
            // answer is not for the client.
            self.routes().initialize = Some(oneshot::channel().0);
            // The channel is new and has room for both.
            let _ = tx.try_send(Box::new(init));
            if let Some(n) = handshake.initialized.clone() {
                let _ = tx.try_send(Box::new(n));
            }
        }
        inbox.generation += 1;
        inbox.tx = Some(tx.clone());
        let transport = SessionTransport {
            session: self.clone(),
            inbox: rx,
            generation: inbox.generation,
        };
        drop(inbox);
        (self.start)(transport);
        Ok(tx)
    }

    pub(super) async fn push(
        self: &Arc<Self>,
        message: ClientJsonRpcMessage,
    ) -> Result<(), StreamError> {
        self.sender()?
            .send(Box::new(message))
            .await
            .map_err(|_| StreamError::Closed)
    }

    /// Whether the close rmcp's worker asks for is the one that follows letting the
    /// handshake's loop go (asked once; see [`Session::new`]).
    pub fn handshake_loop_ended(&self) -> bool {
        self.handshake_loop_ending.swap(false, Ordering::AcqRel)
    }

    /// A loop ended: unless the session let it go (closed, or parked it), nothing runs the
    /// session any more, and it is closed.
    fn service_ended(&self, generation: u64) {
        let current = {
            let inbox = self.inbox();
            !inbox.closed && inbox.tx.is_some() && inbox.generation == generation
        };
        if current {
            self.close();
        }
    }

    /// The protocol version the session's handshake agreed on.
    pub fn protocol_version(&self) -> Option<&str> {
        self.version.get().map(String::as_str)
    }

    /// Whether a service loop runs for the session now.
    pub fn has_loop(&self) -> bool {
        self.inbox().tx.is_some()
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.inbox().closed
    }

    /// Hand `initialize` to the service and wait for its answer.
    pub async fn initialize(
        &self,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, StreamError> {
        let (tx, rx) = oneshot::channel();
        self.routes().initialize = Some(tx);
        self.handshake().initialize = Some(message.clone());
        let tx = self.inbox().tx.clone().ok_or(StreamError::Closed)?;
        tx.send(Box::new(message))
            .await
            .map_err(|_| StreamError::Closed)?;
        let answer = rx.await.map_err(|_| StreamError::Closed)?;
        if let ServerJsonRpcMessage::Response(r) = &answer {
            if let ServerResult::InitializeResult(i) = &r.result {
                let _ = self.version.set(i.protocol_version.to_string());
            }
            // Let the handshake's loop go: its inbox's sender dropped, it ends.
            let mut inbox = self.inbox();
            if inbox.generation == 0 && inbox.tx.take().is_some() {
                self.handshake_loop_ending.store(true, Ordering::Release);
            }
        }
        Ok(answer)
    }
}

/// The transport rmcp's service loop runs a session on.
pub struct SessionTransport {
    pub(super) session: Arc<Session>,
    pub(super) inbox: mpsc::Receiver<Box<ClientJsonRpcMessage>>,
    pub(super) generation: u64,
}

impl Drop for SessionTransport {
    fn drop(&mut self) {
        self.session.service_ended(self.generation);
    }
}

impl Transport<RoleServer> for SessionTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        // Routed now, not when the future runs: rmcp may run send futures concurrently, and a
        // response must not overtake the progress notifications before it.
        self.session.routes().route(item);
        std::future::ready(Ok(()))
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        self.inbox.recv().await.map(|m| *m)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inbox.close();
        Ok(())
    }
}
