//! Accepts TCP connections and completes TLS handshakes with bounds: at most
//! `max_pending_handshakes` at once (a permit is taken *before* the
//! handshake starts), each within `handshake_timeout`, and at most
//! `max_connections` established. Garbage on the port costs one failed
//! handshake and a log line at debug level, nothing else.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// A TLS stream that holds one connection slot until dropped.
pub struct Accepted {
    inner: TlsStream<TcpStream>,
    _slot: ConnectionSlot,
}

struct ConnectionSlot(Arc<ConnectionCount>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connected for Accepted {
    type ConnectInfo = <TlsStream<TcpStream> as Connected>::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Accepted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// File descriptors kept for everything but agent connections (the store,
/// logs, the admin CLI, the dashboard).
const FD_HEADROOM: u64 = 256;

/// Raises this process's soft open-file limit to its hard limit (each
/// connection is a descriptor) and warns when even that is below what
/// `max_connections` needs. Call once at start, from the binary: the limit
/// is process-wide. Returns the soft limit now in force.
pub fn raise_open_file_limit(max_connections: usize) -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        limit.current = Some(maximum);
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "could not raise the open-file limit to the hard limit");
        }
    } else if limit.current.is_some() && limit.maximum.is_none() {
        // Unlimited hard limit: take a generous finite soft limit.
        limit.current = Some(1 << 20);
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let now = getrlimit(Resource::Nofile).current;
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(FD_HEADROOM);
    if let Some(soft) = now
        && soft < needed
    {
        tracing::warn!(
            open_file_limit = soft,
            max_connections,
            needed,
            "the open-file limit is below what --max-connections needs; connections beyond it fail to be accepted \
             (raise LimitNOFILE in the systemd unit, or lower --max-connections)"
        );
    }
    now
}

pub struct ListenerLimits {
    pub max_pending_handshakes: usize,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
}

/// Counts live connections, shared with metrics.
#[derive(Debug, Default)]
pub struct ConnectionCount(AtomicUsize);

impl ConnectionCount {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs the accept loop until `shutdown`; handshaken streams go to the
/// returned bounded channel, which tonic serves.
pub fn spawn(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    limits: ListenerLimits,
    connections: Arc<ConnectionCount>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<std::io::Result<Accepted>> {
    let (tx, rx) = mpsc::channel(limits.max_pending_handshakes.max(1));
    let handshakes = Arc::new(Semaphore::new(limits.max_pending_handshakes));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                () = shutdown.cancelled() => return,
                permit = handshakes.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let (tcp, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            if connections.get() >= limits.max_connections {
                tracing::warn!(%peer, limit = limits.max_connections, "connection limit reached; closing new connection");
                drop(tcp);
                continue;
            }
            connections.0.fetch_add(1, Ordering::Relaxed);
            let slot = ConnectionSlot(connections.clone());
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let timeout = limits.handshake_timeout;
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(timeout, acceptor.accept(tcp));
                let result = tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = handshake => result,
                };
                drop(permit);
                match result {
                    Ok(Ok(inner)) => {
                        let _ = tx.send(Ok(Accepted { inner, _slot: slot })).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    rx
}
