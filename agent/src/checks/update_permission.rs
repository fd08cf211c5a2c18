//! `update_permission` (runbook step 2): with "Pattern files" or "Pattern
//! files, engines, drivers", agents update patterns but never the program.

use rollcall_common::policy::{ServerFacts, UpdatePermissionPolicy};
use rollcall_common::product::{Choice, ProductDoc, UpdatePermission};

use super::finding::Finding;

pub(crate) const NAME: &str = rollcall_common::checks::UPDATE_PERMISSION;
pub(crate) const STEP: u32 = 2;

/// The runbook's fix, naming the value the policy requires.
pub(crate) fn remediation(required: UpdatePermission) -> String {
    format!(
        "Set the update settings permission to \"{}\" in the web console, then send a manual update notification to the affected agents and check again",
        required.console_label()
    )
}

/// As for the license, the console's setting may come from the policy's
/// `[[server_facts]]` where the endpoint does not report it.
pub(crate) fn evaluate(
    doc: &ProductDoc,
    policy: &UpdatePermissionPolicy,
    server_facts: Option<(usize, &ServerFacts)>,
) -> Finding {
    let (permission, source) =
        match super::endpoint_or_server_fact(doc.update_permission(), server_facts, |facts| facts.update_permission) {
            Ok(fact) => fact,
            Err(error) => return Finding::product_error(&error),
        };
    let finding = if permission == policy.required {
        Finding::pass(format!(
            "update settings permission is \"{}\"",
            permission.console_label()
        ))
        .code("update-permission-ok")
        .param("permission", permission.as_str())
    } else {
        Finding::fail(format!(
            "update settings permission is \"{}\"; the policy requires \"{}\"",
            permission.console_label(),
            policy.required.console_label()
        ))
        .code("update-permission-wrong")
        .param("permission", permission.as_str())
        .param("required", policy.required.as_str())
    };
    finding
        .with("permission", permission.as_str())
        .with("required", policy.required.as_str())
        .with("source", source)
}

#[cfg(test)]
mod tests {
    use rollcall_common::proto::CheckStatus;

    use super::*;

    fn check(permission: &str, required: UpdatePermission) -> Finding {
        let doc = ProductDoc::parse(&format!("[update]\npermission = \"{permission}\"\n"));
        evaluate(&doc, &UpdatePermissionPolicy { required }, None)
    }

    #[test]
    fn all_components_passes() {
        let finding = check("all_components", UpdatePermission::AllComponents);
        assert_eq!(finding.status, CheckStatus::Pass);
    }

    #[test]
    fn pattern_only_permissions_fail() {
        for permission in ["pattern_files", "pattern_engine_driver"] {
            let finding = check(permission, UpdatePermission::AllComponents);
            assert_eq!(finding.status, CheckStatus::Fail, "{permission}");
            assert!(finding.message.contains("\"All components\""));
        }
    }

    #[test]
    fn the_policy_decides_what_is_required() {
        let finding = check("pattern_files", UpdatePermission::PatternFiles);
        assert_eq!(finding.status, CheckStatus::Pass);
    }

    #[test]
    fn unknown_values_are_errors_listing_the_allowed_ones() {
        let finding = check("all", UpdatePermission::AllComponents);
        assert_eq!(finding.status, CheckStatus::Error);
        assert!(finding.message.contains("update.permission"), "{}", finding.message);
        assert!(
            finding.message.contains("all_components, pattern_files"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn the_default_remediation_is_the_runbook_text() {
        assert_eq!(
            remediation(UpdatePermission::AllComponents),
            "Set the update settings permission to \"All components\" in the web console, then send a manual update notification to the affected agents and check again"
        );
    }
}
