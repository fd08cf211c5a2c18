//! The accept loop against real TLS clients on loopback.

use std::time::Duration;

use rollcall_common::pki::CertAuthority;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use tokio::net::TcpStream;

struct Served {
    port: u16,
    ca_pem: String,
    shutdown: CancellationToken,
}

/// A listener on loopback whose accepted streams echo what they read.
async fn serve(idle_timeout: Option<Duration>, anonymous_lifetime: Duration) -> Served {
    let (ca, _) = CertAuthority::generate("test ca").unwrap();
    let (cert, key) = ca
        .issue_server(&["127.0.0.1".to_string()], Duration::from_secs(3600))
        .unwrap();
    let tls = rollcall_common::tls::server_config(
        ca.cert_pem(),
        &cert,
        &key,
        Arc::new(crate::edge::revocation::RevocationList::default()),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let limits = ListenerLimits {
        max_pending_handshakes: 8,
        first_byte_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(2),
        max_connections: 16,
        sources: SourceLimits::new(8, 2, 60.0, 10.0),
        anonymous_lifetime,
        idle_timeout,
        shed: crate::metrics::Metrics::new().shed_counter("test"),
        proxy_from: ProxyTrust::default(),
    };
    let mut accepted = spawn(
        listener,
        TlsAcceptor::from(Arc::new(tls)),
        limits,
        Arc::new(ConnectionCount::default()),
        shutdown.clone(),
    );
    tokio::spawn(async move {
        while let Some(Ok(mut stream)) = accepted.recv().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 64];
                while let Ok(read @ 1..) = stream.read(&mut buffer).await {
                    if stream.write_all(&buffer[..read]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Served {
        port,
        ca_pem: ca.cert_pem().to_string(),
        shutdown,
    }
}

async fn connect(served: &Served) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = rollcall_common::tls::client_config(&served.ca_pem, None).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", served.port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// Whether the server closed the connection within `within`.
async fn closed_within(stream: &mut tokio_rustls::client::TlsStream<TcpStream>, within: Duration) -> bool {
    let mut buffer = [0u8; 8];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_a_talking_one_is_not() {
    let served = serve(Some(Duration::from_millis(400)), Duration::from_secs(60)).await;
    let mut talking = connect(&served).await;
    let mut idle = connect(&served).await;
    for _ in 0..8 {
        talking.write_all(b"x").await.unwrap();
        let mut echo = [0u8; 1];
        talking.read_exact(&mut echo).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(2)).await,
        "the idle connection stayed open"
    );
    talking.write_all(b"y").await.unwrap();
    let mut echo = [0u8; 1];
    talking.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"y");
    served.shutdown.cancel();
}

#[tokio::test]
async fn a_connection_without_a_certificate_is_closed_after_its_lifetime_even_when_busy() {
    let served = serve(None, Duration::from_millis(500)).await;
    let mut busy = connect(&served).await;
    let started = std::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(3) {
        if busy.write_all(b"x").await.is_err() {
            closed = true;
            break;
        }
        let mut echo = [0u8; 1];
        if !matches!(busy.read(&mut echo).await, Ok(1)) {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "a certificate-less connection outlived its lifetime");
    served.shutdown.cancel();
}
