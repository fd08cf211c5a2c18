//! Issue 24 point 2: a fleet behind NAT or a load balancer enrols. Every
//! endpoint of a site behind one NAT address, or behind a balancer that
//! does not pass the client's address, shares one source address: the
//! default per-source limits must let them all enrol (the probe retries
//! with the coordinator's hint), and with `--proxy-protocol-from` the
//! address inside a trusted PROXY v2 header is the one every per-source
//! limit counts, while a header from anyone else is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rollcall_agent::enroll::{EnrollParams, enroll};
use rollcall_common::proto::{EnrollRequest, agent_service_client::AgentServiceClient};
use rollcall_common::tls::DialOptions;
use tokio::io::AsyncWriteExt;

use crate::harness::Coordinator;

/// Enrolments from one address, many at once, with the default limits:
/// more at once than the per-source connection share and more than the
/// enrolment burst, so the coordinator sheds and refuses; every one of
/// them still enrols, by retrying with the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_behind_one_address_enrols_with_the_default_limits() {
    const SITE: usize = 400;
    let mut coordinator = Coordinator::init();
    tokio::task::block_in_place(|| coordinator.start());
    let token = tokio::task::block_in_place(|| coordinator.token(&["--uses", &SITE.to_string()]));
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let started = Instant::now();
    let mut enrolments = Vec::new();
    for index in 0..SITE {
        let params = EnrollParams {
            coordinator: coordinator.url(),
            ca_pem: ca_pem.clone(),
            token: token.clone().into(),
            hostname: format!("osaka-{index:04}"),
            dial: DialOptions::default(),
        };
        enrolments.push(tokio::spawn(async move { enroll(&params).await }));
    }
    let mut failed = Vec::new();
    for enrolment in enrolments {
        if let Err(error) = enrolment.await.unwrap() {
            failed.push(format!("{error:#}"));
        }
    }
    eprintln!("{SITE} enrolments from one address took {:?}", started.elapsed());
    assert!(
        failed.is_empty(),
        "{} of {SITE} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let log = coordinator.log();
    assert!(
        log.contains("enrolment rate limit")
            || coordinator
                .cli_json(&["agents"])
                .as_array()
                .is_some_and(|a| a.len() == SITE),
        "{log}"
    );
}

/// A gRPC client whose TCP connection starts with `header` (what a load
/// balancer with `send-proxy-v2` writes), then TLS as the probe does.
/// The connection comes from `from` (a loopback address of the test's
/// choosing: 127.0.0.2 plays the balancer).
fn client_behind(
    coordinator: &Coordinator,
    ca_pem: &str,
    from: [u8; 4],
    header: Vec<u8>,
) -> AgentServiceClient<tonic::transport::Channel> {
    let config = Arc::new(rollcall_common::tls::client_config(ca_pem, None).unwrap());
    let port = coordinator.port;
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let config = config.clone();
        let header = header.clone();
        async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((from, 0)))?;
            let mut tcp = socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await?;
            tcp.write_all(&header).await?;
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    AgentServiceClient::new(endpoint.connect_with_connector_lazy(connector))
}

fn proxy_header(client: &str) -> Vec<u8> {
    use ppp::v2::{Builder, Command, Protocol, Version};
    let source: SocketAddr = client.parse().unwrap();
    let destination: SocketAddr = "127.0.0.1:7443".parse().unwrap();
    Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, (source, destination))
        .build()
        .unwrap()
}

async fn try_enrol(
    client: &mut AgentServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Result<(), tonic::Status> {
    let key = rollcall_common::pki::generate_key().unwrap();
    let request = EnrollRequest {
        token: token.to_string(),
        csr_pem: rollcall_common::pki::certificate_request(&key, "branch-pc").unwrap(),
        hostname: "branch-pc".into(),
    };
    client.enroll(request).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_inside_a_trusted_proxy_header_is_the_one_limited() {
    let mut coordinator = Coordinator::init();
    coordinator.extra_args.extend(
        [
            // 127.0.0.2 plays the balancer; the admin CLI stays on 127.0.0.1.
            "--proxy-protocol-from",
            "127.0.0.2/32",
            // Small so the test reaches the limit in a few calls.
            "--enroll-burst-per-source",
            "2",
            "--enroll-rate-per-source",
            "1",
        ]
        .iter()
        .map(|arg| arg.to_string()),
    );
    tokio::task::block_in_place(|| coordinator.start());
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let token = tokio::task::block_in_place(|| coordinator.token(&["--uses", "10"]));
    const BALANCER: [u8; 4] = [127, 0, 0, 2];

    let mut osaka = client_behind(&coordinator, &ca_pem, BALANCER, proxy_header("198.51.100.7:50000"));
    try_enrol(&mut osaka, &token).await.expect("first from osaka");
    try_enrol(&mut osaka, &token).await.expect("second from osaka");
    let third = try_enrol(&mut osaka, &token)
        .await
        .expect_err("osaka is over its burst");
    assert_eq!(third.code(), tonic::Code::ResourceExhausted, "{third:?}");
    assert!(
        third.metadata().get("retry-after-ms").is_some(),
        "a retry hint: {third:?}"
    );
    // Another client behind the same balancer has its own budget.
    let mut kobe = client_behind(&coordinator, &ca_pem, BALANCER, proxy_header("203.0.113.9:50001"));
    try_enrol(&mut kobe, &token)
        .await
        .expect("kobe is limited apart from osaka");

    // From the trusted balancer, a connection without a header is refused.
    let mut bare = client_behind(&coordinator, &ca_pem, BALANCER, Vec::new());
    assert!(
        try_enrol(&mut bare, &token).await.is_err(),
        "a trusted address must send a header"
    );
    let agents = tokio::task::block_in_place(|| coordinator.cli_json(&["agents"]));
    assert_eq!(agents.as_array().map(Vec::len), Some(3), "{agents}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_from_an_untrusted_address_is_refused() {
    let mut coordinator = Coordinator::init();
    tokio::task::block_in_place(|| coordinator.start());
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let token = tokio::task::block_in_place(|| coordinator.token(&[]));
    let mut forged = client_behind(
        &coordinator,
        &ca_pem,
        [127, 0, 0, 1],
        proxy_header("198.51.100.7:50000"),
    );
    let refused = try_enrol(&mut forged, &token)
        .await
        .expect_err("a forged header is not believed");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    // Without the header the same client enrols.
    let mut plain = client_behind(&coordinator, &ca_pem, [127, 0, 0, 1], Vec::new());
    try_enrol(&mut plain, &token).await.expect("plain enrolment");
    let metrics_seen = tokio::task::block_in_place(|| coordinator.log());
    assert!(
        metrics_seen.contains("a PROXY header from an address not in --proxy-protocol-from"),
        "{metrics_seen}"
    );
}
