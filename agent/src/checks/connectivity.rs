//! `connectivity` (runbook step 5): from this endpoint, the product server
//! and the update source resolve, accept TCP and complete a TLS handshake
//! within the policy's timeout. The update source is the custom
//! `source_address` (often an update agent), or the product server itself
//! when the source is standard. Latency of each phase is evidence.

use std::time::Duration;

use rollcall_common::product::{ProductDoc, ServiceAddress, UpdateSourceKind};

use super::finding::Finding;
use super::reach::{self, Probe};

pub(crate) const NAME: &str = rollcall_common::checks::CONNECTIVITY;
pub(crate) const STEP: u32 = 5;
pub(crate) const REMEDIATION: &str = "Work through the vendor's connectivity troubleshooting even if the agent icon shows online: name resolution, firewall and proxy rules between the agent and the product server and update source, and whether the web console shows the agent as offline";

/// A service to probe, or why its address is unknown.
struct Target {
    key: &'static str,
    label: &'static str,
    /// Why the address is unknown: an error finding, coded.
    address: Result<ServiceAddress, Finding>,
}

pub(crate) async fn evaluate(doc: &ProductDoc, timeout: Duration) -> Finding {
    let server = Target {
        key: "server",
        label: "product server",
        address: doc
            .server_address()
            .map_err(|error| Finding::product_error(&error))
            .and_then(|text| parse("server.address", &text)),
    };
    let source = match doc.update_source() {
        Ok(source) if source.kind == UpdateSourceKind::Custom => match source.address {
            Some(text) => Some(Target {
                key: "update_source",
                label: "update source",
                address: parse("update.source_address", &text),
            }),
            None => Some(Target {
                key: "update_source",
                label: "update source",
                address: Err(Finding::product_error(
                    &rollcall_common::product::ProductError::Missing {
                        field: "update.source_address".to_string(),
                    },
                )),
            }),
        },
        // A standard source is the product server: probing it once is enough.
        Ok(_) => None,
        Err(error) => Some(Target {
            key: "update_source",
            label: "update source",
            address: Err(Finding::product_error(&error)),
        }),
    };
    let same_as_server = matches!(
        (&server.address, source.as_ref().map(|target| &target.address)),
        (Ok(server), Some(Ok(source))) if server == source
    );
    let (server_probe, source_probe) = tokio::join!(probe_target(&server, timeout), async {
        match &source {
            Some(target) if !same_as_server => Some(probe_target(target, timeout).await),
            _ => None,
        }
    });
    let mut parts = vec![judge(&server, server_probe)];
    match (&source, source_probe) {
        (Some(target), Some(probe)) => parts.push(judge(target, probe)),
        (Some(_), None) => {
            parts.push(Finding::pass("").with("update_source.address", "(the product server, probed once)"))
        }
        (None, _) => parts.push(Finding::pass("").with("update_source.address", "(standard: the product server)")),
    }
    Finding::combine(parts)
}

fn parse(field: &str, text: &str) -> Result<ServiceAddress, Finding> {
    ServiceAddress::parse(text).map_err(|error| {
        Finding::product_error(&rollcall_common::product::ProductError::Invalid {
            field: field.to_string(),
            detail: error.to_string(),
        })
    })
}

async fn probe_target(target: &Target, timeout: Duration) -> Option<Probe> {
    match &target.address {
        Ok(address) => Some(reach::probe(address, timeout).await),
        Err(_) => None,
    }
}

fn judge(target: &Target, probe: Option<Probe>) -> Finding {
    let (address, probe) = match (&target.address, probe) {
        (Err(error), _) => return error.clone(),
        (Ok(address), Some(probe)) => (address, probe),
        (Ok(address), None) => {
            return Finding::error(format!("{} {address} was not probed", target.label))
                .code("connectivity-not-probed")
                .param("service", target.key)
                .param("address", address);
        }
    };
    let key = |suffix: &str| format!("{}.{suffix}", target.key);
    let mut finding = match (&probe.error, probe.tls_ms, probe.tcp_ms) {
        (Some(error), _, _) => Finding::fail(format!("{} {address} unreachable: {error}", target.label))
            .code("connectivity-unreachable")
            .param("error", error),
        (None, Some(tls_ms), _) => Finding::pass(format!(
            "{} {address} reachable (TLS handshake in {tls_ms} ms)",
            target.label
        ))
        .code("connectivity-reachable-tls")
        .param("ms", tls_ms),
        (None, None, tcp_ms) => Finding::pass(format!(
            "{} {address} reachable (TCP in {} ms, plain HTTP)",
            target.label,
            tcp_ms.unwrap_or_default()
        ))
        .code("connectivity-reachable-tcp")
        .param("ms", tcp_ms.unwrap_or_default()),
    };
    finding = finding.param("service", target.key).param("address", address);
    finding.add(&key("address"), address);
    if !probe.resolved.is_empty() {
        let resolved: Vec<String> = probe
            .resolved
            .iter()
            .take(4)
            .map(|socket| socket.ip().to_string())
            .collect();
        finding.add(&key("resolved"), resolved.join(", "));
    }
    for (suffix, value) in [
        ("resolve_ms", probe.resolve_ms),
        ("tcp_ms", probe.tcp_ms),
        ("tls_ms", probe.tls_ms),
    ] {
        if let Some(value) = value {
            finding.add(&key(suffix), value);
        }
    }
    if let Some(version) = &probe.tls_version {
        finding.add(&key("tls_version"), version);
    }
    if let Some(error) = &probe.error {
        finding.add(&key("error"), error);
    }
    finding
}

#[cfg(test)]
mod tests {
    use rollcall_common::proto::CheckStatus;

    use super::super::test_support::{closed_port, evidence, silent_server, tls_server};
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn doc(server: &str, source: Option<&str>) -> ProductDoc {
        let mut text = format!("[server]\naddress = \"{server}\"\n[update]\n");
        match source {
            Some(source) => text.push_str(&format!("source = \"custom\"\nsource_address = \"{source}\"\n")),
            None => text.push_str("source = \"standard\"\n"),
        }
        ProductDoc::parse(&text)
    }

    #[tokio::test]
    async fn reachable_tls_services_pass_with_latency() {
        let server = tls_server().await;
        let update_agent = tls_server().await;
        let finding = evaluate(&doc(&server, Some(&update_agent)), TIMEOUT).await;
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
        assert!(finding.message.contains("product server"), "{}", finding.message);
        assert!(finding.message.contains("update source"), "{}", finding.message);
        assert!(evidence(&finding, "server.tls_ms").is_some());
        assert!(evidence(&finding, "update_source.tcp_ms").is_some());
        assert_eq!(evidence(&finding, "server.resolved").as_deref(), Some("127.0.0.1"));
        assert!(evidence(&finding, "server.tls_version").is_some_and(|version| version.starts_with("TLSv1_")));
    }

    #[tokio::test]
    async fn a_standard_source_is_the_server_probed_once() {
        let server = tls_server().await;
        let finding = evaluate(&doc(&server, None), TIMEOUT).await;
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
        assert_eq!(
            evidence(&finding, "update_source.address").as_deref(),
            Some("(standard: the product server)")
        );
    }

    #[tokio::test]
    async fn a_closed_port_fails_naming_the_service() {
        let server = tls_server().await;
        let closed = closed_port().await;
        let finding = evaluate(&doc(&server, Some(&closed)), TIMEOUT).await;
        assert_eq!(finding.status, CheckStatus::Fail);
        assert!(
            finding
                .message
                .starts_with(&format!("update source {closed} unreachable: connect {closed}")),
            "{}",
            finding.message
        );
        assert!(evidence(&finding, "update_source.error").is_some());
        assert!(evidence(&finding, "server.tls_ms").is_some());
    }

    #[tokio::test]
    async fn a_service_that_never_answers_times_out_in_the_handshake() {
        let (silent, _listener) = silent_server().await;
        let finding = evaluate(&doc(&silent, None), Duration::from_millis(300)).await;
        assert_eq!(finding.status, CheckStatus::Fail);
        assert!(
            finding.message.contains("timed out after 300ms in the TLS handshake"),
            "{}",
            finding.message
        );
        assert!(evidence(&finding, "server.tcp_ms").is_some());
    }

    #[tokio::test]
    async fn a_plain_http_source_needs_only_tcp() {
        let server = tls_server().await;
        let (plain, _listener) = silent_server().await;
        let finding = evaluate(&doc(&server, Some(&format!("http://{plain}/ua"))), TIMEOUT).await;
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
        assert!(finding.message.contains("plain HTTP"), "{}", finding.message);
    }

    #[tokio::test]
    async fn unusable_addresses_are_errors_naming_the_field() {
        let finding = evaluate(&doc("server-without-port", None), TIMEOUT).await;
        assert_eq!(finding.status, CheckStatus::Error);
        assert!(finding.message.contains("server.address"), "{}", finding.message);
        let finding = evaluate(&ProductDoc::parse(""), TIMEOUT).await;
        assert_eq!(finding.status, CheckStatus::Error);
        assert!(
            finding.message.contains("server.address is missing"),
            "{}",
            finding.message
        );
        assert!(
            finding.message.contains("update.source is missing"),
            "{}",
            finding.message
        );
    }

    #[tokio::test]
    async fn a_broken_source_still_probes_the_server() {
        let closed = closed_port().await;
        let text = format!("[server]\naddress = \"{closed}\"\n[update]\nsource = \"custom\"\n");
        let finding = evaluate(&ProductDoc::parse(&text), TIMEOUT).await;
        assert_eq!(finding.status, CheckStatus::Fail);
        assert!(finding.message.contains("product server"), "{}", finding.message);
        assert!(finding.message.contains("update.source_address"), "{}", finding.message);
    }
}
