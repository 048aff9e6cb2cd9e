//! The HTTP accept loop: hyper's HTTP/1 server with a timer, so that a client must send its
//! request headers within `COLDQUERY_HEADER_READ_TIMEOUT` and its body within
//! `COLDQUERY_BODY_READ_TIMEOUT`; a half-sent request never holds a socket for long.
//! (`axum::serve` sets no timer, so hyper's header timeout never fires there.) Graceful
//! shutdown as before: stop accepting, let running requests finish, then return.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::DeadlineBody;

/// How long a shutdown waits for running requests before it returns anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Read timeouts of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time to send the request headers (and how long an idle keep-alive connection waits).
    pub header: Duration,
    /// Time to send the whole body once the headers are in.
    pub body: Duration,
}

/// Serve `router` on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Small JSON-RPC responses and SSE events must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let body_timeout = timeouts.body;
        let service = router
            .clone()
            .map_request(move |req: hyper::Request<Incoming>| {
                // A hard deadline on the whole body: a client that trickles or stalls is cut
                // off, and hyper then closes the connection (the body was not read to its end).
                req.map(|b| axum::body::Body::new(DeadlineBody::new(body_timeout, b)))
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.header);
        let conn = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("shutdown: some connections did not finish in time");
        }
    }
}
