//! rustls set-up for both ends: TLS 1.3 only, the coordinator's CA as the
//! only trust anchor, HTTP/2 via ALPN.
//!
//! The server offers client authentication but does not demand it at the TLS
//! layer, because `Enroll` (and the health service) must work before an agent
//! holds a certificate; every other call checks the peer identity itself. A
//! certificate that *is* presented must chain to the CA and must not be
//! revoked: [`RevocationCheck`] is consulted during the handshake, so a
//! revoked agent cannot even complete TLS.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tokio::net::TcpSocket;
use tonic::transport::{Channel, Endpoint};

use crate::net::CoordinatorAddr;

/// Decides during the handshake whether a chain-valid client certificate
/// has been revoked.
pub trait RevocationCheck: Send + Sync + std::fmt::Debug {
    /// `serial_hex` is the lower-case hex serial; `agent_id` is set for agent
    /// certificates.
    fn is_revoked(&self, serial_hex: &str, agent_id: Option<&str>) -> bool;
}

/// Nothing is revoked (tools and tests that run without a store).
#[derive(Debug, Default)]
pub struct NoRevocation;

impl RevocationCheck for NoRevocation {
    fn is_revoked(&self, _serial_hex: &str, _agent_id: Option<&str>) -> bool {
        false
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in a PEM text.
pub fn certs_from_pem(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parse PEM certificates")?;
    if certs.is_empty() {
        bail!("no certificate found in PEM text");
    }
    Ok(certs)
}

/// Parses the private key in a PEM text.
pub fn key_from_pem(pem: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!("no private key found in PEM text"),
        error => anyhow::anyhow!("parse PEM private key: {error}"),
    })
}

fn root_store(ca_pem: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem)? {
        roots.add(cert).context("add CA certificate to trust store")?;
    }
    Ok(roots)
}

/// A client-certificate verifier that checks the chain with webpki and then
/// asks the revocation list.
#[derive(Debug)]
struct RevocationAwareVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revocation: Arc<dyn RevocationCheck>,
}

impl ClientCertVerifier for RevocationAwareVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let facts = crate::pki::cert_facts(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        let agent_id = match &facts.identity {
            Some(crate::pki::PeerIdentity::Agent { id }) => Some(id.as_str()),
            _ => None,
        };
        if self.revocation.is_revoked(&facts.serial, agent_id) {
            return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked));
        }
        Ok(verified)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A server verifier that trusts any certificate but still checks the
/// handshake signature against it, so the peer holds the key of what it
/// sent; who that peer is stays unknown. For the probe's reachability
/// checks (runbook step 5 asks whether TLS answers, step 4 covers trust)
/// and PostgreSQL's `sslmode=prefer|require` without a root (encrypted,
/// unauthenticated: libpq's meaning). Never for rollcall's own links.
#[derive(Debug)]
pub struct AnyServerCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl AnyServerCertificate {
    pub fn new(provider: Arc<rustls::crypto::CryptoProvider>) -> Self {
        AnyServerCertificate { provider }
    }
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The coordinator's TLS configuration.
pub fn server_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    revocation: Arc<dyn RevocationCheck>,
) -> anyhow::Result<rustls::ServerConfig> {
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca_pem)?), provider())
        .allow_unauthenticated()
        .build()
        .context("build client certificate verifier")?;
    let verifier = Arc::new(RevocationAwareVerifier { inner, revocation });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("select TLS 1.3")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs_from_pem(cert_pem)?, key_from_pem(key_pem)?)
        .context("load the server certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    // Session tickets would let a revoked client resume without a fresh
    // certificate check; full handshakes keep revocation immediate.
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A client configuration trusting only `ca_pem`, presenting `identity`
/// (certificate PEM, key PEM) when given.
pub fn client_config(ca_pem: &str, identity: Option<(&str, &str)>) -> anyhow::Result<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("select TLS 1.3")?
        .with_root_certificates(root_store(ca_pem)?);
    let mut config = match identity {
        Some((cert_pem, key_pem)) => builder
            .with_client_auth_cert(certs_from_pem(cert_pem)?, key_from_pem(key_pem)?)
            .context("load the client certificate and key")?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// How a channel dials.
#[derive(Debug, Clone)]
pub struct DialOptions {
    pub connect_timeout: Duration,
    /// HTTP/2 keepalive pings, so a stalled network is noticed.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Bind to this local address first (the simulator spreads connections
    /// over several loopback addresses).
    pub local_ip: Option<IpAddr>,
    /// Largest message accepted from the coordinator.
    pub max_decoding_message_size: usize,
}

impl Default for DialOptions {
    fn default() -> Self {
        DialOptions {
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            local_ip: None,
            max_decoding_message_size: 4 * 1024 * 1024,
        }
    }
}

/// A lazily connecting gRPC channel over rustls to `addr`.
///
/// TLS is done here rather than by tonic so that both ends share one
/// configuration (TLS 1.3 only, the CA as the only anchor) and so the local
/// address can be chosen.
pub fn channel(
    addr: &CoordinatorAddr,
    config: Arc<rustls::ClientConfig>,
    options: &DialOptions,
) -> anyhow::Result<Channel> {
    let server_name =
        ServerName::try_from(addr.host.clone()).context("coordinator host is not a valid TLS server name")?;
    let authority = addr.authority();
    let local_ip = options.local_ip;
    let connect_timeout = options.connect_timeout;
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let server_name = server_name.clone();
        let config = config.clone();
        let authority = authority.clone();
        async move {
            let stream = tokio::time::timeout(connect_timeout, async {
                let target = resolve(&authority).await?;
                let socket = if target.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                if let Some(ip) = local_ip {
                    socket.bind(SocketAddr::new(ip, 0))?;
                }
                let tcp = socket.connect(target).await?;
                tcp.set_nodelay(true)?;
                tokio_rustls::TlsConnector::from(config).connect(server_name, tcp).await
            })
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    // The scheme here only satisfies tonic; TLS happens in the connector.
    let endpoint = Endpoint::from_shared(format!("http://{}", addr.authority()))
        .context("build endpoint")?
        .connect_timeout(options.connect_timeout)
        .http2_keep_alive_interval(options.keepalive_interval)
        .keep_alive_timeout(options.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    Ok(endpoint.connect_with_connector_lazy(connector))
}

async fn resolve(authority: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "coordinator host did not resolve"))
}
