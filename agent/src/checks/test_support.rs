//! Fixtures shared by the checks' tests: loopback servers and certificates.

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use super::finding::Finding;

/// A loopback TLS server with a self-signed certificate that completes
/// handshakes, then drops the connection. Returns `127.0.0.1:port`.
pub(crate) async fn tls_server() -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["product-server.test".to_string()]).expect("self-signed");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    address.to_string()
}

/// A loopback port that accepts TCP but never says anything; keep the
/// listener alive for as long as the port is needed.
pub(crate) async fn silent_server() -> (String, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    (listener.local_addr().expect("address").to_string(), listener)
}

/// A loopback port with nothing listening.
pub(crate) async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    drop(listener);
    address
}

pub(crate) struct TestCertificate {
    pub(crate) pem: String,
    pub(crate) der: Vec<u8>,
    pub(crate) sha256_hex: String,
}

/// A self-signed certificate named `name`, valid from 2000 until `not_after`.
pub(crate) fn certificate(name: &str, not_after: (i32, u8, u8)) -> TestCertificate {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    params.distinguished_name = subject;
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let key = KeyPair::generate().expect("key");
    let certificate = params.self_signed(&key).expect("self-signed");
    let der = certificate.der().to_vec();
    TestCertificate {
        pem: certificate.pem(),
        sha256_hex: hex::encode(Sha256::digest(&der)),
        der,
    }
}

/// The value of one piece of evidence.
pub(crate) fn evidence(finding: &Finding, key: &str) -> Option<String> {
    finding
        .evidence
        .iter()
        .find(|evidence| evidence.key == key)
        .map(|evidence| evidence.value.clone())
}
