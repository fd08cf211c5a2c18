//! `version`: the installed program version against the rollout's target.
//! Not a runbook step (0); it tells the coordinator who is behind. Whether a
//! straggler is still "pending" (inside the grace period) is the
//! coordinator's call, so being behind is only a warning here.

use rollcall_common::product::ProductDoc;
use rollcall_common::version;

use super::finding::Finding;

pub(crate) const NAME: &str = rollcall_common::checks::VERSION;
pub(crate) const STEP: u32 = 0;
pub(crate) const REMEDIATION: &str = "An upgrade can take a while depending on the environment: wait, then check again. If the agent is still behind the target after the rollout's grace period, work through runbook steps 1 to 6 for it";

pub(crate) fn evaluate(doc: &ProductDoc, target: Option<&str>) -> Finding {
    let installed = match doc.version() {
        Ok(installed) => installed,
        Err(error) => return Finding::product_error(&error),
    };
    let Some(target) = target.map(str::trim).filter(|target| !target.is_empty()) else {
        return Finding::pass(format!("installed {installed} (no target)"))
            .code("version-no-target")
            .param("installed", &installed)
            .with("installed", &installed);
    };
    let finding = match version::is_at_least(&installed, target) {
        Ok(true) => Finding::pass(format!("installed {installed}, at or above the target {target}"))
            .code("version-at-target")
            .param("installed", &installed)
            .param("target", target),
        Ok(false) => Finding::warn(format!("installed {installed}, behind the target {target}"))
            .code("version-behind")
            .param("installed", &installed)
            .param("target", target),
        Err(error) => Finding::error(format!("target version: {error}"))
            .code("version-bad-target")
            .param("detail", error),
    };
    finding.with("installed", &installed).with("target", target)
}

#[cfg(test)]
mod tests {
    use rollcall_common::proto::CheckStatus;

    use super::*;

    fn doc(version: &str) -> ProductDoc {
        ProductDoc::parse(&format!("version = \"{version}\"\n"))
    }

    #[test]
    fn at_or_above_the_target_passes() {
        for installed in ["14.0.12737", "14.0.12738", "14.1"] {
            let finding = evaluate(&doc(installed), Some("14.0.12737"));
            assert_eq!(finding.status, CheckStatus::Pass, "{installed}");
        }
    }

    #[test]
    fn behind_the_target_warns() {
        let finding = evaluate(&doc("14.0.9999"), Some("14.0.10000"));
        assert_eq!(finding.status, CheckStatus::Warn);
        assert_eq!(finding.message, "installed 14.0.9999, behind the target 14.0.10000");
    }

    #[test]
    fn without_a_target_it_passes_with_a_note() {
        for target in [None, Some(""), Some("  ")] {
            let finding = evaluate(&doc("14.0.1"), target);
            assert_eq!(finding.status, CheckStatus::Pass);
            assert_eq!(finding.message, "installed 14.0.1 (no target)");
        }
    }

    #[test]
    fn unknown_versions_are_errors() {
        let finding = evaluate(&ProductDoc::parse(""), Some("14.0"));
        assert_eq!(finding.status, CheckStatus::Error);
        assert_eq!(finding.message, "product state: version is missing");
        let finding = evaluate(&doc("14.0"), Some("latest"));
        assert_eq!(finding.status, CheckStatus::Error);
        assert!(finding.message.contains("latest"), "{}", finding.message);
    }
}
