//! `update_source` (runbook step 3): the agent pulls updates from the source
//! the operator intends (the policy's first `expected` entry matching this
//! endpoint's labels), and an update agent serves the agent program and
//! HotFixes to its clients.

use std::collections::BTreeMap;

use rollcall_common::policy::{ExpectedSource, Policy};
use rollcall_common::product::{Choice, ProductDoc, ProductRole, UpdateSource, UpdateSourceKind, same_address};

use super::finding::Finding;

pub(crate) const NAME: &str = rollcall_common::checks::UPDATE_SOURCE;
pub(crate) const STEP: u32 = 3;
// Console paths as in rollcall_common::console_path (a test there holds them to it).
pub(crate) const REMEDIATION: &str = "In the web console (Updates > Agents > Update Source), check whether the agents use the standard or a custom update source and set the one intended. When the custom source is an update agent, enable \"Security agent program and HotFix\" for that update agent in the web console (Agents > Agent Management > the update agent's Settings > Update Agent Settings)";

pub(crate) fn evaluate(doc: &ProductDoc, policy: &Policy, labels: &BTreeMap<String, String>) -> Finding {
    Finding::combine(vec![
        source_matches(doc, policy.expected_update_source(labels)),
        update_agent_serves_the_program(doc),
    ])
}

fn source_matches(doc: &ProductDoc, expected: Option<&ExpectedSource>) -> Finding {
    let source = match doc.update_source() {
        Ok(source) => source,
        Err(error) => return Finding::product_error(&error),
    };
    let actual = describe(source.kind, source.address.as_deref());
    let mut finding = match expected {
        None => Finding::pass(format!(
            "update source is {actual}; the policy names no expected source for this endpoint's labels"
        ))
        .code("update-source-no-expectation"),
        Some(expected) if is_expected(&source, expected) => {
            Finding::pass(format!("update source is {actual}, as the policy expects")).code("update-source-as-expected")
        }
        Some(expected) => Finding::fail(format!(
            "update source is {actual}; the policy expects {}",
            describe(expected.source, expected.address.as_deref())
        ))
        .code("update-source-unexpected")
        .param("expected_source", expected.source.as_str())
        .param("expected_address", expected.address.as_deref().unwrap_or("")),
    };
    finding = finding
        .param("source", source.kind.as_str())
        .param("address", source.address.as_deref().unwrap_or(""));
    finding.add("source", source.kind.as_str());
    if let Some(address) = &source.address {
        finding.add("source_address", address);
    }
    if let Some(expected) = expected {
        finding.add("expected_source", expected.source.as_str());
        if let Some(address) = &expected.address {
            finding.add("expected_address", address);
        }
        finding.add("expected_match", describe_match(&expected.match_labels));
    }
    finding
}

fn is_expected(source: &UpdateSource, expected: &ExpectedSource) -> bool {
    if source.kind != expected.source {
        return false;
    }
    match (source.kind, &expected.address, &source.address) {
        (UpdateSourceKind::Standard, _, _) | (UpdateSourceKind::Custom, None, _) => true,
        (UpdateSourceKind::Custom, Some(wanted), Some(actual)) => same_address(wanted, actual),
        (UpdateSourceKind::Custom, Some(_), None) => false,
    }
}

fn describe(kind: UpdateSourceKind, address: Option<&str>) -> String {
    match (kind, address) {
        (UpdateSourceKind::Custom, Some(address)) => format!("custom ({address})"),
        (UpdateSourceKind::Custom, None) => "custom (any address)".to_string(),
        (UpdateSourceKind::Standard, _) => "standard (the product server)".to_string(),
    }
}

fn describe_match(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "(every endpoint)".to_string();
    }
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An update agent without "Security agent program and HotFix" keeps every
/// client behind it on the old program.
fn update_agent_serves_the_program(doc: &ProductDoc) -> Finding {
    let role = match doc.role() {
        Ok(role) => role,
        Err(error) => return Finding::product_error(&error),
    };
    if role != ProductRole::UpdateAgent {
        return Finding::pass("").with("role", role.as_str());
    }
    let finding = match doc.update_agent() {
        Ok(Some(settings)) if settings.program_and_hotfix => {
            Finding::pass("this update agent serves \"Security agent program and HotFix\"")
                .code("update-agent-serves-program")
        }
        Ok(_) => Finding::fail(
            "this update agent does not serve \"Security agent program and HotFix\", so its clients cannot upgrade",
        )
        .code("update-agent-lacks-program"),
        Err(error) => Finding::product_error(&error),
    };
    let program_and_hotfix = doc
        .update_agent()
        .ok()
        .flatten()
        .map(|settings| settings.program_and_hotfix.to_string())
        .unwrap_or_else(|| "unknown".to_string());
    finding
        .with("role", role.as_str())
        .with("program_and_hotfix", program_and_hotfix)
}

#[cfg(test)]
mod tests {
    use rollcall_common::proto::CheckStatus;

    use super::super::test_support::evidence;
    use super::*;

    const POLICY: &str = r#"
[[update_source.expected]]
match = { site = "osaka" }
source = "custom"
address = "ua-osaka-01.example:8080"
[[update_source.expected]]
match = { site = "kobe" }
source = "custom"
[[update_source.expected]]
match = { site = "tokyo" }
source = "standard"
"#;

    fn check(doc: &str, site: &str) -> Finding {
        let policy = Policy::from_toml_str(POLICY).expect("policy");
        let labels = BTreeMap::from([("site".to_string(), site.to_string())]);
        evaluate(&ProductDoc::parse(doc), &policy, &labels)
    }

    const OSAKA_CLIENT: &str = "[update]\nsource = \"custom\"\nsource_address = \"UA-OSAKA-01.example:8080\"\n";

    #[test]
    fn the_intended_custom_source_passes() {
        let finding = check(OSAKA_CLIENT, "osaka");
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
        assert_eq!(evidence(&finding, "expected_match").as_deref(), Some("site=osaka"));
        assert_eq!(evidence(&finding, "role").as_deref(), Some("endpoint"));
    }

    #[test]
    fn another_address_fails() {
        let doc = "[update]\nsource = \"custom\"\nsource_address = \"ua-osaka-02.example:8080\"\n";
        let finding = check(doc, "osaka");
        assert_eq!(finding.status, CheckStatus::Fail);
        assert_eq!(
            finding.message,
            "update source is custom (ua-osaka-02.example:8080); the policy expects custom (ua-osaka-01.example:8080)"
        );
    }

    #[test]
    fn another_kind_fails() {
        let finding = check("[update]\nsource = \"standard\"\n", "osaka");
        assert_eq!(finding.status, CheckStatus::Fail);
        let finding = check(OSAKA_CLIENT, "tokyo");
        assert_eq!(finding.status, CheckStatus::Fail);
    }

    #[test]
    fn a_custom_expectation_without_address_accepts_any() {
        assert_eq!(check(OSAKA_CLIENT, "kobe").status, CheckStatus::Pass);
    }

    #[test]
    fn no_matching_entry_passes_with_a_note() {
        let finding = check("[update]\nsource = \"standard\"\n", "nagoya");
        assert_eq!(finding.status, CheckStatus::Pass);
        assert!(
            finding.message.contains("names no expected source"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn an_update_agent_must_serve_the_program() {
        let base = "role = \"update_agent\"\n[update]\nsource = \"standard\"\n";
        let off = format!("{base}[update_agent]\nprogram_and_hotfix = false\n");
        let finding = check(&off, "tokyo");
        assert_eq!(finding.status, CheckStatus::Fail);
        assert!(finding.message.contains("Security agent program and HotFix"));
        assert_eq!(evidence(&finding, "program_and_hotfix").as_deref(), Some("false"));
        let on = format!("{base}[update_agent]\nprogram_and_hotfix = true\n");
        assert_eq!(check(&on, "tokyo").status, CheckStatus::Pass);
        let missing = check(base, "tokyo");
        assert_eq!(missing.status, CheckStatus::Error);
        assert!(missing.message.contains("update_agent.program_and_hotfix is missing"));
    }

    #[test]
    fn a_wrong_source_and_a_broken_role_are_both_reported() {
        let doc = "role = \"relay\"\n[update]\nsource = \"standard\"\n";
        let finding = check(doc, "osaka");
        assert_eq!(finding.status, CheckStatus::Fail);
        assert!(
            finding.message.contains("the policy expects custom"),
            "{}",
            finding.message
        );
        assert!(finding.message.contains("role"), "{}", finding.message);
    }

    #[test]
    fn missing_fields_are_errors_naming_them() {
        let finding = check("", "osaka");
        assert_eq!(finding.status, CheckStatus::Error);
        assert_eq!(finding.message, "product state: update.source is missing");
    }
}
