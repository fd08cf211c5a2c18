//! Each target takes arbitrary bytes and must never panic, hang or grow
//! without bound: it either parses and validates, or returns an error.

use prost::Message;

/// The managed product's state document (TOML or JSON).
pub fn product_state(data: &[u8]) {
    let doc = rollcall_common::product::ProductDoc::from_bytes(data);
    let _ = rollcall_common::product::to_summary(&doc);
    let _ = doc.version();
    let _ = doc.license_expires();
    let _ = doc.update_permission();
    let _ = doc.update_source();
    let _ = doc.update_agent();
    let _ = doc.server_address();
}

/// The fleet policy.
pub fn policy(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(policy) = rollcall_common::policy::Policy::from_toml_str(text)
    {
        // What parses must show again and parse to the same thing.
        let shown = policy.to_toml_string().expect("a parsed policy can be shown");
        let again = rollcall_common::policy::Policy::from_toml_str(&shown).expect("a shown policy parses");
        assert_eq!(policy, again);
    }
}

/// `agent.toml`.
pub fn agent_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(config) = rollcall_agent::config::AgentConfig::from_toml_str(text)
    {
        let _ = config.validate_for_run();
    }
}

/// What an agent sends, decoded and validated as the coordinator does at
/// its edge.
pub fn agent_message(data: &[u8]) {
    let Ok(message) = rollcall_common::proto::AgentMessage::decode(data) else {
        return;
    };
    match message.body {
        Some(rollcall_common::proto::agent_message::Body::Hello(hello)) => {
            let _ = rollcall_server::agents::inbound::ValidHello::try_from(hello);
        }
        Some(rollcall_common::proto::agent_message::Body::Report(report)) => {
            let _ = rollcall_server::agents::inbound::ValidReport::try_from(report);
        }
        _ => {}
    }
}

/// Selectors typed by admins.
pub fn selector(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(selector) = rollcall_server::domain::selector::Selector::parse(text)
    {
        let _ = selector.matches("0191c3a4-7d1e-7c3a-9a4b-0123456789ab", |_| Some(String::new()));
    }
}

/// A certificate signing request sent to Enroll.
pub fn csr(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rcgen::CertificateSigningRequestParams::from_pem(text);
    }
}
