//! Bad input of every kind gets a clear error, the coordinator keeps serving
//! everyone else, and nothing is stored.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use rollcall_common::proto::{self, agent_message, agent_service_client::AgentServiceClient};
use rollcall_common::tls::{DialOptions, channel, client_config};
use rollcall_server::store::traits::*;

use crate::harness::{AGENT, Agent, Coordinator, SERVER, product_state, wait_until};

pub(crate) fn agent_client(
    coordinator: &Coordinator,
    ca: &str,
    cert: &str,
    key: &str,
) -> AgentServiceClient<tonic::transport::Channel> {
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    let config = client_config(ca, Some((cert, key))).unwrap();
    AgentServiceClient::new(channel(&addr, Arc::new(config), &DialOptions::default()).unwrap())
}

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

pub(crate) fn hello(hostname: &str) -> proto::AgentMessage {
    proto::AgentMessage {
        body: Some(agent_message::Body::Hello(proto::Hello {
            agent_version: "test".into(),
            hostname: hostname.into(),
            role: proto::Role::Endpoint as i32,
            ..Default::default()
        })),
    }
}

pub(crate) async fn open_stream(
    client: &mut AgentServiceClient<tonic::transport::Channel>,
    messages: Vec<proto::AgentMessage>,
) -> Result<tonic::Streaming<proto::CoordinatorMessage>, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for message in messages {
        tx.send(message).await.unwrap();
    }
    // Keep the sender alive inside the stream so the request stays open.
    let stream =
        tokio_stream::StreamExt::chain(tokio_stream::wrappers::ReceiverStream::new(rx), tokio_stream::pending());
    let response = client.connect(stream).await?;
    drop(tx);
    Ok(response.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_refused_and_the_coordinator_keeps_serving() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let mut good = Agent::enroll(&coordinator, "good", &product_state("14.0.1", ""), &[]);
    good.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("good")),
        "{}",
        good.log()
    );
    let victim = Agent::enroll(&coordinator, "victim", &product_state("1", ""), &[]);
    let store = coordinator.store();
    let agents_before = store.list_agents().await.unwrap().len();

    // Unknown, expired and used-up tokens.
    let unknown = Agent::enroll_with_token(&coordinator, "x1", "", &[], "rct_nope")
        .err()
        .expect("unknown token refused");
    assert!(unknown.contains("unknown"), "{unknown}");
    let short = coordinator.token(&["--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let expired = Agent::enroll_with_token(&coordinator, "x2", "", &[], &short)
        .err()
        .expect("expired token refused");
    assert!(expired.contains("expired"), "{expired}");

    // Wrong CA: the agent does not trust a coordinator it was not told about.
    let foreign = Coordinator::init();
    let dir = tempfile::tempdir().unwrap();
    let token = coordinator.token(&[]);
    let output = std::process::Command::new(AGENT)
        .args(["enroll", "--coordinator", &coordinator.url(), "--ca"])
        .arg(foreign.data_dir().join("ca.pem"))
        .args(["--token", &token, "--hostname", "x3", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("enrollment refused") || stderr.contains("certificate"),
        "{stderr}"
    );
    // An untrusted coordinator is no outage: the agent fails at once.
    assert!(!stderr.contains("retrying"), "{stderr}");

    // A foreign certificate (another coordinator's admin) is refused at the handshake.
    let foreign_admin = foreign.data_dir().join("admin");
    let refused = coordinator.cli_as(&foreign_admin, &["agents"]);
    assert!(!refused.status.success());

    // An agent certificate signed by this CA but already expired.
    let ca = rollcall_common::pki::CertAuthority::from_pem(
        &read(coordinator.data_dir().join("ca.pem")),
        &read(coordinator.data_dir().join("ca-key.pem")),
    )
    .unwrap();
    let (expired_cert, expired_key) = expired_agent_cert(&coordinator, &victim.id);
    let mut client = agent_client(&coordinator, ca.cert_pem(), &expired_cert, &expired_key);
    let result = open_stream(&mut client, vec![hello("victim")]).await;
    assert!(result.is_err(), "expired certificate accepted");

    // A message that claims another agent's identity: the id comes from the
    // certificate, so a hello naming "good" from victim's certificate is
    // recorded under victim's id and good is untouched.
    let victim_cert = read(victim.data_dir().join("identity/cert.pem"));
    let key_pem = read(victim.data_dir().join("identity/key.pem"));
    let mut client = agent_client(&coordinator, ca.cert_pem(), &victim_cert, &key_pem);
    let mut stream = open_stream(&mut client, vec![hello("good")])
        .await
        .expect("stream opens");
    let welcome = tokio_stream::StreamExt::next(&mut stream).await.unwrap().unwrap();
    match welcome.body {
        Some(proto::coordinator_message::Body::Welcome(welcome)) => assert_eq!(welcome.agent_id, victim.id),
        other => panic!("expected welcome, got {other:?}"),
    }
    drop(stream);
    let good_row = store.get_agent(&good.id).await.unwrap().unwrap();
    assert_eq!(good_row.hostname, "good");

    // An admin certificate cannot open an agent stream.
    let admin = coordinator.admin_identity();
    let mut client = agent_client(
        &coordinator,
        ca.cert_pem(),
        &read(admin.join("cert.pem")),
        &read(admin.join("key.pem")),
    );
    let status = open_stream(&mut client, vec![hello("admin")])
        .await
        .expect_err("admin refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // An oversized message is refused; nothing is stored.
    let reports_before = store.count_reports(None).await.unwrap();
    let mut client = agent_client(&coordinator, ca.cert_pem(), &victim_cert, &key_pem);
    let huge = proto::AgentMessage {
        body: Some(agent_message::Body::Report(proto::Report {
            seq: 1,
            checks: vec![proto::CheckResult {
                name: "x".repeat(2 * 1024 * 1024),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    let mut stream = open_stream(&mut client, vec![hello("victim"), huge])
        .await
        .expect("stream opens");
    let mut ended_with_error = false;
    while let Some(message) = tokio_stream::StreamExt::next(&mut stream).await {
        if message.is_err() {
            ended_with_error = true;
            break;
        }
    }
    assert!(
        ended_with_error,
        "oversized report did not end the stream with an error"
    );
    assert_eq!(store.count_reports(None).await.unwrap(), reports_before);

    // Data nobody asked for: a log-bundle chunk answering no collect
    // command, and a check with more message parameters than allowed.
    let unsolicited = proto::AgentMessage {
        body: Some(agent_message::Body::Bundle(proto::BundleChunk {
            command_id: "no-such-command".into(),
            data: b"/etc/shadow".to_vec(),
            last: true,
            ..Default::default()
        })),
    };
    let bloated = proto::AgentMessage {
        body: Some(agent_message::Body::Report(proto::Report {
            seq: 1,
            checks: vec![proto::CheckResult {
                name: "license".into(),
                code: "license-valid".into(),
                params: (0..100).map(|i| (format!("p{i}"), "x".into())).collect(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    };
    for message in [unsolicited, bloated] {
        let mut client = agent_client(&coordinator, ca.cert_pem(), &victim_cert, &key_pem);
        let mut stream = open_stream(&mut client, vec![hello("victim"), message])
            .await
            .expect("stream opens");
        let mut ended_with = None;
        while let Some(message) = tokio_stream::StreamExt::next(&mut stream).await {
            if let Err(status) = message {
                ended_with = Some(status);
                break;
            }
        }
        let status = ended_with.expect("the stream ends with an error");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    }
    assert!(store.list_bundles().await.unwrap().is_empty());
    assert_eq!(store.count_reports(None).await.unwrap(), reports_before);

    // Garbage bytes on the port.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", coordinator.port)).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02 garbage")
        .unwrap();
    drop(raw);

    // Nothing was enrolled by any of the above, and the good agent is still served.
    assert_eq!(store.list_agents().await.unwrap().len(), agents_before);
    assert!(coordinator.is_online("good"));
    assert!(coordinator.cli(&["agents"]).status.success());
}

/// A certificate for `agent_id`, signed by the coordinator's CA, that
/// expired yesterday: (certificate PEM, key PEM).
fn expired_agent_cert(coordinator: &Coordinator, agent_id: &str) -> (String, String) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::from_pem(&read(coordinator.data_dir().join("ca-key.pem"))).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&read(coordinator.data_dir().join("ca.pem")), ca_key).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, agent_id);
    params.subject_alt_names = vec![SanType::URI(
        format!("urn:rollcall:agent:{agent_id}").try_into().unwrap(),
    )];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
}

#[test]
fn malformed_configs_exit_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "coordinator = 42\n[[[broken").unwrap();
    let output = std::process::Command::new(AGENT)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("agent.toml"), "{stderr}");

    std::fs::write(&config, [0xff, 0xfe, 0x00]).unwrap();
    let output = std::process::Command::new(AGENT)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("UTF-8"));

    // A coordinator without a data dir refuses before binding.
    let output = std::process::Command::new(SERVER)
        .args(["serve", "--listen", "127.0.0.1:1", "--data-dir"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("rollcall-server init"));

    // A world-readable CA key is refused.
    let coordinator = Coordinator::init();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = coordinator.data_dir().join("ca-key.pem");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let output = std::process::Command::new(SERVER)
            .args(["validate", "--data-dir"])
            .arg(coordinator.data_dir())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(78));
        assert!(String::from_utf8_lossy(&output.stderr).contains("readable by others"));
    }

    // init refuses to overwrite an existing CA.
    let output = std::process::Command::new(SERVER)
        .args(["init", "--data-dir"])
        .arg(coordinator.data_dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing to overwrite"));
}
