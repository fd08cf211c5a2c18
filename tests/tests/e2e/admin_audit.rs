//! Issue 24 point 9, over real mTLS gRPC against a real coordinator: every
//! admin call is audited, reads and refusals compactly, so a flood of
//! refused reads (a viewer's certificate, an agent's certificate) leaves a
//! bounded number of entries and a count of what was suppressed; and a
//! kept-alive admin connection is refused once its certificate expires.

use std::sync::Arc;
use std::time::Duration;

use rollcall_common::proto::{self, admin_service_client::AdminServiceClient};
use rollcall_common::tls::{DialOptions, channel, client_config};

use crate::dashboard::{Identity, get};
use crate::harness::{Agent, Coordinator, free_port, product_state};

/// An admin API client over one channel (one kept-alive connection).
fn admin_client(coordinator: &Coordinator, cert: &str, key: &str) -> AdminServiceClient<tonic::transport::Channel> {
    let ca = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    let config = client_config(&ca, Some((cert, key))).unwrap();
    AdminServiceClient::new(channel(&addr, Arc::new(config), &DialOptions::default()).unwrap())
}

fn identity_client(coordinator: &Coordinator, dir: &std::path::Path) -> AdminServiceClient<tonic::transport::Channel> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    admin_client(coordinator, &read("cert.pem"), &read("key.pem"))
}

/// `name{kind="…"} value` in the Prometheus text.
fn suppressed(metrics: &str, kind: &str) -> f64 {
    let prefix = format!("rollcall_audit_suppressed_total{{kind=\"{kind}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_call_is_audited_and_a_flood_of_refused_reads_stays_bounded() {
    let dashboard_port = free_port();
    let mut coordinator = Coordinator::init();
    coordinator
        .extra_args
        .extend(["--dashboard-listen".to_string(), format!("127.0.0.1:{dashboard_port}")]);
    coordinator.start();
    let viewer_dir = coordinator.dir.path().join("vera");
    let issued = coordinator.cli(&[
        "admin",
        "issue",
        "--name",
        "vera",
        "--role",
        "viewer",
        "--out",
        viewer_dir.to_str().unwrap(),
    ]);
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    let agent = Agent::enroll(&coordinator, "mallory", &product_state("14.0.1", ""), &[]);

    // Every read, once, as the local admin: each is audited.
    let mut admin = identity_client(&coordinator, &coordinator.admin_identity());
    admin.list_agents(proto::ListAgentsRequest::default()).await.unwrap();
    // (No rollout yet: answered NOT_FOUND, after the caller was authorised.)
    let no_rollout = admin.status(proto::StatusRequest::default()).await;
    assert_eq!(no_rollout.unwrap_err().code(), tonic::Code::NotFound);
    admin
        .list_rollouts(proto::ListRolloutsRequest::default())
        .await
        .unwrap();
    admin.list_tokens(proto::ListTokensRequest::default()).await.unwrap();
    admin.list_admins(proto::ListAdminsRequest::default()).await.unwrap();
    admin
        .get_roster_status(proto::RosterStatusRequest::default())
        .await
        .unwrap();

    // The flood: a viewer asks 400 times for what needs the admin role, an
    // agent's certificate 200 times for the fleet status, and the viewer
    // reads the agents 300 times (allowed).
    let mut viewer = identity_client(&coordinator, &viewer_dir);
    for _ in 0..400 {
        let refused = viewer.list_tokens(proto::ListTokensRequest::default()).await;
        assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    }
    let identity = agent.data_dir().join("identity");
    let mut as_agent = identity_client(&coordinator, &identity);
    for _ in 0..200 {
        let refused = as_agent.status(proto::StatusRequest::default()).await;
        assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    }
    for _ in 0..300 {
        viewer.list_agents(proto::ListAgentsRequest::default()).await.unwrap();
    }

    let entries = admin
        .audit(proto::AuditRequest { limit: 100_000 })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let count = |actor: &str, action: &str, prefix: &str| {
        entries
            .iter()
            .filter(|e| e.actor == actor && e.action == action && e.result.starts_with(prefix))
            .count()
    };
    for action in [
        "agent.list",
        "status",
        "rollout.list",
        "token.list",
        "admin.list",
        "roster.status",
    ] {
        assert_eq!(count("local-admin", action, "ok"), 1, "{action}: {entries:#?}");
    }
    // One entry per caller and call a minute (two if the minute turned).
    let agent_actor = format!("agent:{}", agent.id);
    let flooded = [
        count("vera", "token.list", "denied"),
        count(&agent_actor, "status", "denied"),
        count("vera", "agent.list", "ok"),
    ];
    assert!(flooded.iter().all(|n| (1..=2).contains(n)), "{flooded:?}: {entries:#?}");
    assert!(entries.len() < 100, "{} audit entries after the flood", entries.len());

    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let me = Identity::from_dir(&coordinator.admin_identity());
    let metrics = get(
        dashboard_port,
        crate::dashboard::client_config(&ca_pem, Some(&me)),
        "/metrics",
    )
    .await
    .unwrap()
    .body;
    eprintln!(
        "audit entries: {}; suppressed: refused {}, read {}",
        entries.len(),
        suppressed(&metrics, "refused"),
        suppressed(&metrics, "read")
    );
    assert!(suppressed(&metrics, "refused") >= 598.0, "{metrics}");
    assert!(suppressed(&metrics, "read") >= 299.0, "{metrics}");
    coordinator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_admin_connection_is_refused_once_its_certificate_expires() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let ca = rollcall_common::pki::CertAuthority::from_pem(
        &std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap(),
        &std::fs::read_to_string(coordinator.data_dir().join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let (cert, key) = ca
        .issue_admin("brief", rollcall_common::pki::AdminRole::Viewer, Duration::from_secs(4))
        .unwrap();
    let mut client = admin_client(&coordinator, &cert, &key);
    client.list_agents(proto::ListAgentsRequest::default()).await.unwrap();

    // The same channel, kept alive past notAfter: a new handshake would fail
    // in TLS; this connection gets an answer, and it is a refusal.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        match client.list_agents(proto::ListAgentsRequest::default()).await {
            Ok(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(_) => panic!("the connection was still served 20 s after its certificate's 4 s"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");

    // The refusal is audited under the certificate's name.
    let mut admin = identity_client(&coordinator, &coordinator.admin_identity());
    let entries = admin
        .audit(proto::AuditRequest { limit: 1000 })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(
        entries
            .iter()
            .any(|e| e.actor == "brief" && e.action == "agent.list" && e.result.contains("expired")),
        "{entries:#?}"
    );
    coordinator.stop();
}
