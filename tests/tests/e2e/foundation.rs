//! The foundation: enroll, see online, revoke, restart and reconnect.

use std::time::Duration;

use crate::harness::{Agent, Coordinator, product_state, wait_until};

#[test]
fn enrolled_agents_come_online_are_revoked_and_reconnect_after_restart() {
    let mut coordinator = Coordinator::init();
    coordinator.start();

    let mut agents: Vec<Agent> = ["alpha", "bravo", "charlie"]
        .iter()
        .map(|name| Agent::enroll(&coordinator, name, &product_state("14.0.1", ""), &[("site", "osaka")]))
        .collect();
    for agent in &mut agents {
        assert_eq!(agent.id.len(), 36, "enroll prints the agent id");
        agent.start();
    }
    for agent in &agents {
        assert!(
            wait_until(Duration::from_secs(20), || coordinator.is_online(&agent.hostname)),
            "{} never came online:\n{}",
            agent.hostname,
            agent.log()
        );
    }

    // The JSON contract of `rollcall agents`.
    let by_name = coordinator.agents_by_hostname();
    let alpha = &by_name["alpha"];
    assert_eq!(alpha["id"], agents[0].id.as_str());
    assert_eq!(alpha["online"], true);
    assert_eq!(alpha["role"], "endpoint");
    assert_eq!(alpha["labels"]["site"], "osaka");
    assert!(alpha["last_seen"].as_str().is_some_and(|t| t.ends_with('Z')), "{alpha}");
    assert!(
        wait_until(
            Duration::from_secs(10),
            || coordinator.agents_by_hostname()["alpha"]["version"] == "14.0.1"
        ),
        "product version never reported"
    );

    // Identity files are owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(agents[0].data_dir().join("identity/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "agent key must be owner-only");
        let mode = std::fs::metadata(coordinator.data_dir().join("admin/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "admin key must be owner-only");
    }

    // Revoke bravo: its stream is cut within seconds and it stays out.
    let revoked = coordinator.cli(&["revoke", &agents[1].id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    assert!(
        wait_until(Duration::from_secs(5), || !coordinator.is_online("bravo")),
        "revoked agent still online"
    );
    assert!(
        !wait_until(Duration::from_secs(3), || coordinator.is_online("bravo")),
        "revoked agent came back"
    );
    assert_eq!(coordinator.agents_by_hostname()["bravo"]["revoked"], true);

    // Restart: the others reconnect on their own; bravo does not.
    let drain = coordinator.stop();
    assert!(drain < Duration::from_secs(12), "graceful drain took {drain:?}");
    assert!(
        coordinator.log().contains("coordinator stopped"),
        "{}",
        coordinator.log()
    );
    coordinator.start();
    for name in ["alpha", "charlie"] {
        assert!(
            wait_until(Duration::from_secs(20), || coordinator.is_online(name)),
            "{name} did not reconnect after restart"
        );
    }
    assert!(!coordinator.is_online("bravo"));
    assert!(
        agents[1].log().contains("revoked") || agents[1].log().contains("refused"),
        "{}",
        agents[1].log()
    );
}

#[test]
fn tokens_are_single_use_by_default_and_listed_without_secrets() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let token = coordinator.token(&["--label", "site=kyoto"]);
    assert!(token.starts_with("rct_"), "{token}");
    let first = Agent::enroll_with_token(&coordinator, "one", &product_state("1", ""), &[], &token);
    assert!(first.is_ok(), "{:?}", first.err());
    let second = Agent::enroll_with_token(&coordinator, "two", &product_state("1", ""), &[], &token);
    let error = second.err().expect("second use refused");
    assert!(error.contains("used up"), "{error}");

    let tokens = coordinator.cli_json(&["token", "list"]);
    let listed = tokens.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["uses_left"], 0);
    assert_eq!(listed[0]["labels"]["site"], "kyoto");
    assert!(
        !tokens.to_string().contains(&token),
        "token list must never show the secret"
    );

    // The token's label reaches the agent's config.
    let config = std::fs::read_to_string(first.unwrap().config_path()).unwrap();
    assert!(config.contains("kyoto"), "{config}");
}

#[test]
fn agent_certificates_are_renewed_over_the_stream_before_they_expire() {
    let mut coordinator = Coordinator::init();
    coordinator
        .extra_args
        .extend(["--agent-cert-lifetime".to_string(), "12s".to_string()]);
    coordinator.start();
    let mut agent = Agent::enroll(&coordinator, "renewer", &product_state("1.0", ""), &[]);
    let cert_path = agent.data_dir().join("identity/cert.pem");
    let first = std::fs::read_to_string(&cert_path).unwrap();
    agent.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("renewer")),
        "{}",
        agent.log()
    );
    // Renewed at about half its life (6s), over the authenticated stream.
    assert!(
        wait_until(Duration::from_secs(20), || std::fs::read_to_string(&cert_path).unwrap()
            != first),
        "certificate never renewed:\n{}",
        agent.log()
    );
    assert!(agent.log().contains("certificate renewed"), "{}", agent.log());
    // Past the first certificate's expiry, a fresh connection works with the
    // renewed one.
    std::thread::sleep(Duration::from_secs(7));
    coordinator.stop();
    coordinator.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("renewer")),
        "agent could not reconnect with its renewed certificate:\n{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_answers_without_a_client_certificate() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let ca = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let config = rollcall_common::tls::client_config(&ca, None).unwrap();
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    let channel = rollcall_common::tls::channel(&addr, std::sync::Arc::new(config), &Default::default()).unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "rollcall.v1.AgentService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reflection_lists_the_services_for_grpcurl() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut coordinator = Coordinator::init();
    // Off by default (hardening.rs); on, it answers certificate holders.
    coordinator.extra_args.push("--reflection".into());
    coordinator.start();
    let admin = coordinator.admin_identity();
    let read = |name: &str| std::fs::read_to_string(admin.join(name)).unwrap();
    let config =
        rollcall_common::tls::client_config(&read("ca.pem"), Some((&read("cert.pem"), &read("key.pem")))).unwrap();
    let addr = rollcall_common::net::parse_coordinator_url(&coordinator.url()).unwrap();
    let channel = rollcall_common::tls::channel(&addr, std::sync::Arc::new(config), &Default::default()).unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "rollcall.v1.AgentService",
        "rollcall.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} missing from {names:?}");
    }
}

/// What installers do: the token comes from a file (never the process
/// list) and a site template supplies the rest of agent.toml; enroll fills
/// in the coordinator, data dir, identity and hostname and merges labels.
#[test]
fn enroll_reads_the_token_from_a_file_and_starts_from_a_template() {
    let mut coordinator = Coordinator::init();
    coordinator.start();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token.txt");
    std::fs::write(
        &token_file,
        format!("{}\n", coordinator.token(&["--label", "site=osaka"])),
    )
    .unwrap();
    let template = dir.path().join("agent.toml.template");
    std::fs::write(
        &template,
        "check_interval = \"7m\"\n[labels]\nos = \"windows\"\nsite = \"template-site\"\n[product]\nstate_file = \"/srv/state.toml\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let enroll = |extra: &[&str]| {
        std::process::Command::new(crate::harness::AGENT)
            .args(["enroll", "--coordinator", &coordinator.url(), "--ca"])
            .arg(coordinator.data_dir().join("ca.pem"))
            .arg("--token-file")
            .arg(&token_file)
            .arg("--template")
            .arg(&template)
            .args(["--hostname", "tmpl", "--data-dir"])
            .arg(&data)
            .args(extra)
            .env_remove("ROLLCALL_ENROLL_TOKEN")
            .output()
            .unwrap()
    };
    let output = enroll(&["--label", "room=3f", "--label", "site=kyoto"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The token's label is bound: a contradicting --label is said and loses.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--label site=kyoto contradicts the token's label site=osaka"),
        "{stderr}"
    );
    let config: toml::Table = std::fs::read_to_string(data.join("agent.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(config["check_interval"].as_str(), Some("7m"));
    assert_eq!(config["product"]["state_file"].as_str(), Some("/srv/state.toml"));
    assert_eq!(config["hostname"].as_str(), Some("tmpl"));
    assert_eq!(config["coordinator"].as_str(), Some(coordinator.url().as_str()));
    let labels = config["labels"].as_table().unwrap();
    assert_eq!(labels["os"].as_str(), Some("windows"));
    assert_eq!(labels["room"].as_str(), Some("3f"));
    // The token's label wins over --label and the template's.
    assert_eq!(labels["site"].as_str(), Some("osaka"));

    // The token was single-use; an empty token file is refused by name.
    std::fs::write(&token_file, "\n").unwrap();
    let output = enroll(&["--force"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("token is empty"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
