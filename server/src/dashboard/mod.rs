//! The web dashboard and Prometheus `/metrics`, on their own HTTPS listener
//! (`serve --dashboard-listen ADDR`, off by default).
//!
//! - TLS: the coordinator's rustls configuration (its CA, certificate and
//!   the shared [`RevocationList`](crate::edge::revocation::RevocationList)), with
//!   HTTP/1.1 added to ALPN for browsers and Prometheus. Connections go
//!   through the same bounded accept loop as the gRPC port
//!   ([`crate::edge::listener`]), with smaller limits.
//! - Routes: `/` the current rollout (filters as query parameters),
//!   `/agents/{id}`, `/api/live…` their fresh fragments as JSON, `/report`
//!   with `/report.md` and `/report.json` (runbook step 8), `/metrics`.
//! - Who may look: any admin certificate (viewer and up), checked on every
//!   request ([`access`]); no certificate is 401, an agent's is 403.
//! - Pages are rendered on the server ([`pages`], charts in [`svg`]); a
//!   small inline script polls `/api/live…` for fresh fragments. No
//!   external assets; the CSP allows only inline style and the one script
//!   carrying this response's nonce.
//! - Bounds: request head ≤ [`MAX_HEAD_BYTES`] (read within
//!   [`HEADER_READ_TIMEOUT`]), URI ≤ [`MAX_URI_BYTES`], no request bodies,
//!   each request answered within [`REQUEST_TIMEOUT`].
//! - Shutdown: the accept loop stops with the coordinator's token; open
//!   connections finish their request and close within [`DRAIN_GRACE`].

pub mod access;
mod data;
mod html;
mod metrics;
mod pages;
mod report_page;
mod svg;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::Connected;
use tower::ServiceExt;

use crate::edge::listener::{Accepted, ConnectionCount, ListenerLimits};
use crate::state::Coordinator;
use access::{Denied, Peer, Viewer};

/// Dashboard connections at once: a few admins and a Prometheus, not a fleet.
pub const MAX_CONNECTIONS: usize = 256;
const MAX_PENDING_HANDSHAKES: usize = 32;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one source address may hold in the handshake or without a
/// client certificate: a browser opens a handful.
const MAX_UNAUTHENTICATED_PER_SOURCE: usize = 16;
/// A connection with no request or answer for this long is closed (a
/// browser reconnects; the live pages poll well within it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Request line and headers together (hyper's HTTP/1 read buffer; its minimum is 8 KiB).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_URI_BYTES: usize = 2048;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    pub coordinator: Arc<Coordinator>,
}

/// The CSP nonce of one response.
#[derive(Debug, Clone)]
pub struct Nonce(pub String);

/// Starts serving on `listener` until `shutdown`; the task ends once the
/// open connections are drained (bounded by [`DRAIN_GRACE`]).
pub fn spawn(
    coordinator: Arc<Coordinator>,
    listener: TcpListener,
    mut tls: rustls::ServerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    // Browsers and Prometheus speak HTTP/1.1; h2 stays for clients that offer it.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let local = listener.local_addr()?;
    let edge = &coordinator.config.edge;
    let limits = ListenerLimits {
        max_pending_handshakes: MAX_PENDING_HANDSHAKES,
        first_byte_timeout: edge.first_byte_timeout,
        handshake_timeout: HANDSHAKE_TIMEOUT,
        max_connections: MAX_CONNECTIONS,
        // Its own accounting: a dashboard flood must not shed agents.
        sources: crate::edge::source_limits::SourceLimits::new(
            MAX_UNAUTHENTICATED_PER_SOURCE,
            crate::edge::source_limits::handshakes_per_source(MAX_PENDING_HANDSHAKES),
            1.0,
            1.0,
        ),
        anonymous_lifetime: edge.anonymous_connection_lifetime,
        idle_timeout: Some(IDLE_TIMEOUT),
        shed: coordinator.metrics.shed_counter("dashboard"),
        // Admins reach the dashboard directly; the agents' balancer sits
        // in front of the gRPC port only.
        proxy_from: crate::edge::proxy_protocol::ProxyTrust::default(),
    };
    let accepted = crate::edge::listener::spawn(
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        limits,
        Arc::new(ConnectionCount::default()),
        shutdown.clone(),
    );
    let app = router(App { coordinator });
    tracing::info!(listen = %local, "dashboard serving");
    Ok(tokio::spawn(serve(accepted, app, shutdown)))
}

/// Every route, behind the access and limits layer.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/api/live", get(pages::index_live))
        .route("/agents/{id}", get(pages::agent))
        .route("/api/live/agents/{id}", get(pages::agent_live))
        .route("/metrics", get(metrics::scrape))
        .route("/report", get(report_page::html))
        .route("/report.md", get(report_page::markdown))
        .route("/report.json", get(report_page::json))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn serve(mut accepted: mpsc::Receiver<std::io::Result<Accepted>>, app: Router, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            next = accepted.recv() => match next {
                Some(Ok(stream)) => stream,
                Some(Err(error)) => {
                    tracing::debug!(%error, "dashboard connection failed");
                    continue;
                }
                None => break,
            },
        };
        let peer = Peer::from_certs(stream.connect_info().peer_certs());
        connections.spawn(serve_connection(stream, app.clone(), peer, shutdown.clone()));
    }
    connections.close();
    if tokio::time::timeout(DRAIN_GRACE * 2, connections.wait()).await.is_err() {
        tracing::warn!("dashboard connections outlived the drain");
    }
    tracing::info!("dashboard stopped");
}

async fn serve_connection(stream: Accepted, app: Router, peer: Peer, shutdown: CancellationToken) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        // The identity belongs to the connection; each request carries it.
        request.extensions_mut().insert(peer.clone());
        app.clone().oneshot(request)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(32)
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX));
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "dashboard connection ended with an error");
            }
            return;
        }
        () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    let _ = tokio::time::timeout(DRAIN_GRACE, connection).await;
}

/// Runs before every handler: limits, who is asking, and the headers every
/// response carries (CSP with a fresh nonce, no sniffing, no framing, no
/// caching, no referrer).
async fn guard(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let nonce = Nonce(hex::encode(rand::random::<[u8; 16]>()));
    let peer = request.extensions().get::<Peer>().cloned().unwrap_or(Peer::Anonymous);
    let uri_length = request.uri().path_and_query().map_or(0, |path| path.as_str().len());
    let response = if uri_length > MAX_URI_BYTES {
        plain(StatusCode::URI_TOO_LONG, "the request URI is too long")
    } else if !request.body().is_end_stream() {
        // Everything here is a GET: a body is never needed, so none is read.
        plain(StatusCode::PAYLOAD_TOO_LARGE, "requests to the dashboard carry no body")
    } else {
        match access::authorize(
            &peer,
            app.coordinator.revocation.as_ref(),
            access::needed_for(request.uri().path()),
        ) {
            Err(Denied::Unauthenticated(message)) => {
                pages::error_page(None, &nonce.0, StatusCode::UNAUTHORIZED, message)
            }
            Err(Denied::Forbidden(message)) => {
                tracing::info!(?peer, reason = message, "dashboard request refused");
                pages::error_page(None, &nonce.0, StatusCode::FORBIDDEN, &message)
            }
            Ok(viewer) => {
                request.extensions_mut().insert(viewer);
                request.extensions_mut().insert(nonce.clone());
                match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the coordinator took too long to answer",
                    ),
                }
            }
        }
    };
    with_security_headers(response, &nonce.0)
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn with_security_headers(mut response: Response, nonce: &str) -> Response {
    let headers = response.headers_mut();
    let csp = format!(
        "default-src 'self'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; img-src 'self' data:; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found(viewer: Option<axum::Extension<Viewer>>, nonce: Option<axum::Extension<Nonce>>) -> Response {
    let nonce = nonce.map(|axum::Extension(nonce)| nonce.0).unwrap_or_default();
    let viewer = viewer.map(|axum::Extension(viewer)| viewer);
    pages::error_page(viewer.as_ref(), &nonce, StatusCode::NOT_FOUND, "no such page")
}
