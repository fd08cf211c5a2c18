//! Enrollment: exchange a one-time token and a CSR for a certificate.
//!
//! The key is generated here and only its public half leaves the endpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rollcall_common::proto::{EnrollRequest, agent_service_client::AgentServiceClient};
use rollcall_common::tls::{DialOptions, channel, client_config};

use crate::config::{AgentConfig, CoordinatorUrls, IdentityPaths};
use crate::identity::Identity;

#[derive(Debug, Clone)]
pub struct EnrollParams {
    pub coordinator: String,
    pub ca_pem: String,
    pub token: rollcall_common::secret::Secret,
    pub hostname: String,
    pub dial: DialOptions,
}

#[derive(Debug, Clone)]
pub struct Enrolled {
    pub agent_id: String,
    pub identity: Identity,
    /// Labels the token carries.
    pub labels: BTreeMap<String, String>,
}

/// How long a shedding coordinator is asked again (issue 24 point 2): a
/// site of thousands behind one NAT address enrols at the per-source rate,
/// so an install keeps trying until the coordinator says the token is no
/// longer good (expired, used up: PERMISSION_DENIED ends it at once) or
/// this long has passed, whichever is first.
const ENROLL_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
const ENROLL_RETRY_INITIAL: std::time::Duration = std::time::Duration::from_secs(2);
const ENROLL_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);
/// The coordinator's retry hint (server/src/agent_service.rs).
const RETRY_AFTER_MS: &str = "retry-after-ms";

/// Runs the enrollment call.
pub async fn enroll(params: &EnrollParams) -> anyhow::Result<Enrolled> {
    let addr = rollcall_common::net::parse_coordinator_url(&params.coordinator)?;
    let key = rollcall_common::pki::generate_key()?;
    let csr_pem = rollcall_common::pki::certificate_request(&key, &params.hostname)?;
    let config = client_config(&params.ca_pem, None).context("load the coordinator CA")?;
    let mut client = AgentServiceClient::new(channel(&addr, Arc::new(config), &params.dial)?);
    let request = EnrollRequest {
        token: params.token.expose().trim().to_string(),
        csr_pem,
        hostname: params.hostname.clone(),
    };
    // A coordinator that sheds (many endpoints behind one NAT enrolling at
    // once, a restart) says so with these codes: wait and try again, a
    // bounded number of times, instead of failing an unattended install.
    let mut backoff = crate::backoff::Backoff::new(ENROLL_RETRY_INITIAL, ENROLL_RETRY_MAX);
    let started = std::time::Instant::now();
    let mut attempt = 1u32;
    let response = loop {
        match client.enroll(request.clone()).await {
            Ok(response) => break response.into_inner(),
            Err(status)
                if started.elapsed() < ENROLL_RETRY_FOR
                    && matches!(status.code(), tonic::Code::ResourceExhausted | tonic::Code::Unavailable)
                    && !tls_failure(&status) =>
            {
                let delay = retry_delay(&status, backoff.next_delay());
                // A log line, not a print: the service and the MSI's
                // custom action have no usable stderr, and their log is
                // where an admin looks for the enrolment's progress.
                tracing::warn!(
                    attempt,
                    code = ?status.code(),
                    retry_in_s = delay.as_secs().max(1),
                    "enrolment attempt {attempt} to {}: {}; retrying in {}s ({}s so far; {})",
                    params.coordinator,
                    status.message(),
                    delay.as_secs().max(1),
                    started.elapsed().as_secs(),
                    retry_hint(&status)
                );
                tokio::time::sleep(delay).await;
                attempt = attempt.saturating_add(1);
            }
            Err(status) => bail!("enrollment refused by {}: {}", params.coordinator, status.message()),
        }
    };
    if !rollcall_common::pki::valid_agent_id(&response.agent_id) {
        bail!("coordinator returned an invalid agent id");
    }
    Ok(Enrolled {
        agent_id: response.agent_id,
        identity: Identity {
            ca_pem: params.ca_pem.clone(),
            cert_pem: response.certificate_pem,
            key_pem: key.serialize_pem().into(),
        },
        labels: response.labels.into_iter().collect(),
    })
}

/// The wait before the next attempt: the backoff's (jittered), but never
/// less than the coordinator's hint, plus up to a fifth of the hint again
/// so the endpoints it turned away do not all come back in the same second.
fn retry_delay(status: &tonic::Status, backoff: std::time::Duration) -> std::time::Duration {
    use rand::Rng;
    let hint = status
        .metadata()
        .get(RETRY_AFTER_MS)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok())
        .map(|ms| std::time::Duration::from_millis(ms.min(3_600_000)));
    match hint {
        Some(hint) => {
            let spread = hint.mul_f64(rand::rng().random_range(0.0..=0.2));
            backoff.max(hint + spread)
        }
        None => backoff,
    }
}

/// What an admin reading the log should make of a retried attempt.
fn retry_hint(status: &tonic::Status) -> String {
    let asked = status
        .metadata()
        .get(RETRY_AFTER_MS)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    match (status.code(), asked) {
        (_, Some(ms)) => format!(
            "the coordinator is shedding enrolments and asks to wait {}s",
            ms.div_ceil(1000)
        ),
        (tonic::Code::ResourceExhausted, None) => {
            "the coordinator is shedding enrolments (many from one address?)".to_string()
        }
        _ => "is the coordinator running and reachable from here (address, port, firewall)?".to_string(),
    }
}

/// Whether the call failed in the TLS handshake (an untrusted or wrong
/// coordinator certificate, say). tonic reports it as `Unavailable` like a
/// coordinator that is down, but waiting cannot mend it: the install should
/// fail at once and name the cause. tokio-rustls wraps the rustls error in
/// an `io::Error`, whose `source()` skips it, so both are looked into.
fn tls_failure(status: &tonic::Status) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = next {
        if error.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// Writes the identity under `data_dir/identity/` and a ready-to-run
/// `data_dir/agent.toml`; returns the config path.
pub fn write_enrollment(
    data_dir: &Path,
    coordinator: &str,
    enrolled: &Enrolled,
    hostname: Option<String>,
    mut labels: BTreeMap<String, String>,
    template: Option<AgentConfig>,
) -> anyhow::Result<PathBuf> {
    rollcall_common::files::create_private_dir(data_dir)?;
    let paths = IdentityPaths::under(data_dir);
    rollcall_common::files::create_private_dir(paths.key.parent().unwrap_or(data_dir))?;
    crate::identity::IdentityStore::Files(paths.clone()).save(&enrolled.identity)?;
    let from_template = template.is_some();
    let base = match template {
        Some(template) => template,
        None => AgentConfig::from_toml_str("").context("default agent config")?,
    };
    // Precedence in agent.toml: the token's labels (bound: the coordinator
    // keeps them over any hello label of the same key,
    // server/src/bound_labels.rs, so the file says what the coordinator
    // will), then --label, then the template's.
    for (key, value) in &enrolled.labels {
        if let Some(local) = labels.get(key).filter(|local| *local != value) {
            tracing::warn!(
                "--label {key}={local} contradicts the token's label {key}={value}; the token's is bound and kept"
            );
        }
        labels.insert(key.clone(), value.clone());
    }
    for (key, value) in &base.labels {
        labels.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let config = AgentConfig {
        coordinator: Some(CoordinatorUrls::One(coordinator.to_string())),
        data_dir: Some(data_dir.to_path_buf()),
        identity: Some(paths),
        hostname: hostname.or(base.hostname.clone()),
        labels,
        ..base
    };
    let mut text = format!("# written by `rollcall-agent enroll` for agent {}\n", enrolled.agent_id);
    text.push_str(&toml::to_string_pretty(&config).context("encode agent.toml")?);
    if !from_template {
        text.push_str("\n# Point the probe at the managed security agent: in [product] above set\n# state_file = \"/var/lib/product/state.toml\"\n# update_command = [\"/usr/local/bin/product-update\"]\n");
    }
    let path = data_dir.join("agent.toml");
    rollcall_common::files::write_atomic(&path, text.as_bytes(), true)?;
    Ok(path)
}

#[cfg(test)]
mod retry_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_coordinators_hint_is_a_floor_with_a_spread() {
        let mut status = tonic::Status::resource_exhausted("too many enrolments from this address; retry in 5s");
        status
            .metadata_mut()
            .insert(RETRY_AFTER_MS, "5000".parse().expect("ascii"));
        for _ in 0..50 {
            let delay = retry_delay(&status, Duration::from_secs(2));
            assert!(
                delay >= Duration::from_secs(5) && delay <= Duration::from_secs(6),
                "{delay:?}"
            );
        }
        assert_eq!(retry_delay(&status, Duration::from_secs(30)), Duration::from_secs(30));
        let plain = tonic::Status::unavailable("down");
        assert_eq!(retry_delay(&plain, Duration::from_secs(3)), Duration::from_secs(3));
        assert!(
            retry_hint(&status).contains("asks to wait 5s"),
            "{}",
            retry_hint(&status)
        );
        assert!(retry_hint(&plain).contains("reachable"), "{}", retry_hint(&plain));
    }
}
