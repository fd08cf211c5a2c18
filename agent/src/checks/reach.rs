//! Whether one service address is reachable from this endpoint: the name
//! resolves, a TCP connection opens and (for TLS services) a TLS handshake
//! completes, all within one timeout, with the time each phase took.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rollcall_common::product::ServiceAddress;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How far a probe got, and how long each phase took.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Probe {
    pub(crate) resolved: Vec<SocketAddr>,
    pub(crate) resolve_ms: Option<u64>,
    pub(crate) connected_to: Option<SocketAddr>,
    pub(crate) tcp_ms: Option<u64>,
    pub(crate) tls_ms: Option<u64>,
    /// e.g. `TLSv1_3`.
    pub(crate) tls_version: Option<String>,
    /// Why the probe stopped, naming the phase; `None` when it got through.
    pub(crate) error: Option<String>,
}

#[derive(Clone, Copy)]
enum Phase {
    Resolving,
    Connecting,
    Handshaking,
}

impl Phase {
    fn doing(self) -> &'static str {
        match self {
            Phase::Resolving => "resolving the name",
            Phase::Connecting => "connecting",
            Phase::Handshaking => "in the TLS handshake",
        }
    }
}

/// Probes `address`; everything together is bounded by `timeout`.
pub(crate) async fn probe(address: &ServiceAddress, timeout: Duration) -> Probe {
    let mut probe = Probe::default();
    let mut phase = Phase::Resolving;
    let outcome = tokio::time::timeout(timeout, phases(address, &mut probe, &mut phase)).await;
    probe.error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some(message),
        Err(_elapsed) => Some(format!(
            "timed out after {} {}",
            humantime::format_duration(timeout),
            phase.doing()
        )),
    };
    probe
}

async fn phases(address: &ServiceAddress, probe: &mut Probe, phase: &mut Phase) -> Result<(), String> {
    let started = Instant::now();
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((address.host.as_str(), address.port))
        .await
        .map_err(|error| format!("resolve {}: {error}", address.host))?
        .collect();
    probe.resolve_ms = Some(elapsed_ms(started));
    if resolved.is_empty() {
        return Err(format!("resolve {}: no addresses", address.host));
    }
    probe.resolved = resolved.clone();

    *phase = Phase::Connecting;
    let started = Instant::now();
    let mut last_error = String::new();
    let mut stream = None;
    // In resolver order, like most clients; the shared timeout bounds the lot.
    for socket_address in &resolved {
        match TcpStream::connect(socket_address).await {
            Ok(connected) => {
                probe.connected_to = Some(*socket_address);
                stream = Some(connected);
                break;
            }
            Err(error) => last_error = format!("connect {socket_address}: {error}"),
        }
    }
    let Some(stream) = stream else {
        return Err(last_error);
    };
    probe.tcp_ms = Some(elapsed_ms(started));
    if !address.tls {
        return Ok(());
    }

    *phase = Phase::Handshaking;
    let started = Instant::now();
    let server_name = ServerName::try_from(address.host.clone())
        .map_err(|error| format!("TLS server name {:?}: {error}", address.host))?;
    let config = REACHABILITY_TLS.as_ref().map_err(Clone::clone)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let tls = connector
        .connect(server_name, stream)
        .await
        .map_err(|error| format!("TLS handshake with {}: {error}", address.authority()))?;
    probe.tls_ms = Some(elapsed_ms(started));
    probe.tls_version = tls.get_ref().1.protocol_version().map(|version| format!("{version:?}"));
    Ok(())
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A client configuration for reachability only. It accepts any server
/// certificate on purpose: this check asks whether the TLS layer of the
/// product server or update source answers from this endpoint, not whether
/// it is trusted (the product has its own trust settings, and runbook step 4
/// covers certificates). Nothing is sent over the connection after the
/// handshake. TLS 1.2 is allowed because product servers may not speak 1.3.
static REACHABILITY_TLS: LazyLock<Result<Arc<ClientConfig>, String>> = LazyLock::new(|| {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(rollcall_common::tls::AnyServerCertificate::new(provider.clone()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| format!("TLS set-up: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
});
