//! Accepts TCP connections and completes TLS handshakes with bounds, so that
//! no peer that has not proved who it is can keep others out:
//!
//! - accept first, then decide: a connection over a limit is closed at once
//!   (counted in `rollcall_connections_shed_total`), never left waiting in
//!   the kernel's queue where it would hold up everyone behind it;
//! - at most `max_unauthenticated_per_source` connections per source
//!   address that are in the handshake or have no client certificate;
//! - the first byte (the ClientHello) within `first_byte_timeout`: a silent
//!   connection never holds a handshake slot;
//! - at most `max_pending_handshakes` handshakes at once, an eighth of
//!   them per source address; a connection
//!   waits at most `first_byte_timeout` for a slot (a reconnect storm
//!   queues briefly, then the agents' backoff spreads it), and the
//!   handshake must finish within `handshake_timeout`;
//! - a connection without a client certificate (it may only enrol) is
//!   closed after `anonymous_lifetime`; a connection with no traffic for
//!   `idle_timeout` (the dashboard) too;
//! - at most `max_connections` established.
//!
//! Garbage on the port costs one failed handshake and a log line at debug
//! level, nothing else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::edge::proxy_protocol::{ClientTcp, ProxyTrust};
use crate::edge::source_limits::{SourceLimits, SourceSlot};
use crate::metrics::ShedCounter;

/// A TLS stream that holds one connection slot until dropped, and for a
/// connection without a client certificate its source's slot and deadline.
/// Its peer address is the client's: from the PROXY header when a trusted
/// balancer sent one (see [`crate::edge::proxy_protocol`]).
pub struct Accepted {
    inner: TlsStream<ClientTcp>,
    _slot: ConnectionSlot,
    _source: Option<SourceSlot>,
    anonymous_deadline: Option<Pin<Box<Sleep>>>,
    idle: Option<IdleTimer>,
    /// Set once a timer fired: every later read and write fails too.
    expired: Option<&'static str>,
    shed: ShedCounter,
}

struct IdleTimer {
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

struct ConnectionSlot(Arc<ConnectionCount>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Accepted {
    /// Whether the peer presented a (verified) client certificate.
    pub fn is_authenticated(&self) -> bool {
        self.anonymous_deadline.is_none()
    }

    /// An error once the connection has outlived what it may: polled on
    /// every read and write, so the timers wake the connection's task.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        if self.expired.is_none() {
            if let Some(deadline) = self.anonymous_deadline.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                self.shed.shed("anonymous_lifetime");
                self.expired = Some("a connection without a client certificate outlived its lifetime");
            } else if let Some(idle) = self.idle.as_mut()
                && idle.sleep.as_mut().poll(cx).is_ready()
            {
                self.expired = Some("idle connection closed");
            }
        }
        self.expired
            .map(|reason| std::io::Error::new(std::io::ErrorKind::TimedOut, reason))
    }

    fn active(&mut self) {
        if let Some(idle) = self.idle.as_mut() {
            let deadline = Instant::now() + idle.timeout;
            idle.sleep.as_mut().reset(deadline);
        }
    }
}

impl Connected for Accepted {
    type ConnectInfo = <TlsStream<ClientTcp> as Connected>::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Accepted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.expired(cx) {
            return Poll::Ready(Err(error));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.active();
        }
        result
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Some(error) = self.expired(cx) {
            return Poll::Ready(Err(error));
        }
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.active();
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.expired(cx) {
            return Poll::Ready(Err(error));
        }
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
        if let Some(error) = self.expired(cx) {
            return Poll::Ready(Err(error));
        }
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.active();
        }
        result
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
    pub first_byte_timeout: Duration,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
    /// Per source address: connections in the handshake or without a
    /// client certificate.
    pub sources: Arc<SourceLimits>,
    /// How long a connection without a client certificate may live.
    pub anonymous_lifetime: Duration,
    /// Close a connection with no traffic in either direction for this
    /// long. `None`: HTTP/2 keepalive decides (agent streams are quiet
    /// between heartbeats by design).
    pub idle_timeout: Option<Duration>,
    pub shed: ShedCounter,
    /// Balancers whose connections start with a PROXY v2 header naming
    /// the client (`--proxy-protocol-from`); empty: none.
    pub proxy_from: ProxyTrust,
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
    let limits = Arc::new(limits);
    tokio::spawn(async move {
        loop {
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
            // Decide now and close what is over a limit: a connection left
            // unaccepted would queue every later one behind it.
            if connections.get() >= limits.max_connections {
                tracing::warn!(%peer, limit = limits.max_connections, "connection limit reached; closing new connection");
                limits.shed.shed("connection_limit");
                continue;
            }
            // A trusted balancer's connection is accounted to the client its
            // header names, once the header is read (in the task below).
            let early_source = if limits.proxy_from.trusts(peer.ip()) {
                None
            } else {
                let Some(source) = limits.sources.try_unauthenticated(peer.ip()) else {
                    tracing::debug!(%peer, "source holds its share of unauthenticated connections; closing");
                    limits.shed.shed("per_source");
                    continue;
                };
                Some(source)
            };
            connections.0.fetch_add(1, Ordering::Relaxed);
            let slot = ConnectionSlot(connections.clone());
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let limits = limits.clone();
            let handshakes = handshakes.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut tcp = tcp;
                let direct = early_source.is_some();
                let handshake = async {
                    let (client, source) = match early_source {
                        Some(source) => (peer, source),
                        None => {
                            let client =
                                crate::edge::proxy_protocol::read_header(&mut tcp, peer, limits.first_byte_timeout)
                                    .await?;
                            let source = limits.sources.try_unauthenticated(client.ip()).ok_or("per_source")?;
                            (client, source)
                        }
                    };
                    // A silent connection is closed before it ever holds a
                    // handshake slot.
                    // (`peek`, not `readable`: readiness can be spurious.)
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(limits.first_byte_timeout, tcp.peek(&mut first)).await {
                        Ok(Ok(1..)) => {}
                        Ok(Ok(0)) | Ok(Err(_)) => return Err("closed_by_peer"),
                        Err(_) => return Err("first_byte_timeout"),
                    }
                    // A header's claim is believed only from a trusted
                    // balancer: from anyone else it is refused, not skipped.
                    if direct && crate::edge::proxy_protocol::starts_a_header(first[0]) {
                        tracing::warn!(%peer, "a PROXY header from an address not in --proxy-protocol-from; closing");
                        return Err("untrusted_proxy_header");
                    }
                    // A reconnect storm waits its turn briefly; past that
                    // the agent's backoff is the better queue.
                    // The source's own slots first, so a few addresses
                    // cannot queue ahead of everyone for the shared ones.
                    let permits = async {
                        let own = source.handshake().await?;
                        let shared = handshakes.acquire_owned().await.ok()?;
                        Some((own, shared))
                    };
                    let permit = match tokio::time::timeout(limits.first_byte_timeout, permits).await {
                        Ok(Some(permits)) => permits,
                        _ => return Err("handshakes_busy"),
                    };
                    let tcp = ClientTcp::new(tcp, client);
                    let result = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => Ok((stream, source)),
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            Err("handshake_failed")
                        }
                        Err(_) => Err("handshake_timeout"),
                    };
                    drop(permit);
                    result
                };
                let result = tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = handshake => result,
                };
                let (inner, source) = match result {
                    Ok(accepted) => accepted,
                    Err(reason) => {
                        tracing::debug!(%peer, reason, "connection closed before it was established");
                        limits.shed.shed(reason);
                        return;
                    }
                };
                let authenticated = inner
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|certs| !certs.is_empty());
                // A verified certificate ends the source's accounting; an
                // anonymous connection keeps its slot and gets a deadline.
                let (source, anonymous_deadline) = if authenticated {
                    drop(source);
                    (None, None)
                } else {
                    (
                        Some(source),
                        Some(Box::pin(tokio::time::sleep(limits.anonymous_lifetime))),
                    )
                };
                let idle = limits.idle_timeout.map(|timeout| IdleTimer {
                    timeout,
                    sleep: Box::pin(tokio::time::sleep(timeout)),
                });
                let accepted = Accepted {
                    inner,
                    _slot: slot,
                    _source: source,
                    anonymous_deadline,
                    idle,
                    expired: None,
                    shed: limits.shed.clone(),
                };
                let _ = tx.send(Ok(accepted)).await;
            });
        }
    });
    rx
}

#[cfg(test)]
mod tests;
