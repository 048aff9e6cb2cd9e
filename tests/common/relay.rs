//! Counting database round trips from outside: a TCP relay between the server and PostgreSQL
//! that reads the frontend protocol and counts every `Sync` and simple `Query` message (each is
//! one round trip: the client waits for `ReadyForQuery`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use coldquery::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{TestApp, admin_url, spawn_app_with};

/// The round trips the server's connections have made so far.
#[derive(Clone)]
pub struct RoundTrips(Arc<AtomicU64>);

impl RoundTrips {
    /// The count once the release ping of the last call (a task of its own) has gone out.
    pub async fn settled(&self) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        self.0.load(Ordering::Relaxed)
    }
}

/// Start the app with its database connections going through a counting relay. Audit rows go
/// over connections of their own, so the audit log is off to keep them out of the count.
/// `tweak` adjusts the rest of the configuration.
pub async fn spawn_app_counted(tweak: impl FnOnce(&mut Config)) -> (TestApp, RoundTrips) {
    let (port, trips) = relay().await;
    let app = spawn_app_with(|c| {
        let url = c.database_url.as_ref().unwrap().expose().to_owned();
        let db = url.rsplit_once('/').unwrap().1.to_owned();
        c.database_url = Some(
            format!("postgres://postgres@127.0.0.1:{port}/{db}")
                .as_str()
                .into(),
        );
        c.audit = coldquery::config::Switch::Off;
        tweak(c);
    })
    .await;
    (app, RoundTrips(trips))
}

/// `host:port` of the admin URL's server.
fn upstream() -> String {
    let url = admin_url();
    let after_at = url.rsplit_once('@').map(|(_, r)| r).unwrap_or(&url);
    let after_scheme = after_at
        .rsplit_once("://")
        .map(|(_, r)| r)
        .unwrap_or(after_at);
    after_scheme.split('/').next().unwrap().to_owned()
}

/// Start the counting relay; returns its port and the counter.
async fn relay() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream()).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                let _ = frontend(&mut cr, &mut sw, &c).await;
            });
        }
    });
    (port, count)
}

/// Copy the frontend stream, counting `S` and `Q` messages after the startup packet.
async fn frontend(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    count: &AtomicU64,
) -> std::io::Result<()> {
    // Untyped start-up messages: an SSL or GSS request (answered by one byte), then the
    // start-up packet itself.
    loop {
        let mut len = [0u8; 4];
        from.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; n - 4];
        from.read_exact(&mut body).await?;
        to.write_all(&len).await?;
        to.write_all(&body).await?;
        let code = u32::from_be_bytes(body[..4].try_into().unwrap());
        if code != 80877103 && code != 80877104 {
            break;
        }
    }
    loop {
        let mut head = [0u8; 5];
        from.read_exact(&mut head).await?;
        if matches!(head[0], b'S' | b'Q') {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let n = u32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
        let mut body = vec![0u8; n - 4];
        from.read_exact(&mut body).await?;
        to.write_all(&head).await?;
        to.write_all(&body).await?;
    }
}
