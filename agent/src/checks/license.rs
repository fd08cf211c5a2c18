//! `license` (runbook step 1): an expired license stops every agent from
//! upgrading, so it is checked per agent and, by the coordinator, across the
//! fleet.

use rollcall_common::policy::{LicensePolicy, ServerFacts};
use rollcall_common::product::{ProductDoc, format_date};

use super::finding::Finding;

pub(crate) const NAME: &str = rollcall_common::checks::LICENSE;
pub(crate) const STEP: u32 = 1;
pub(crate) const REMEDIATION: &str = "Check the license expiry date in the web console and renew the license if it has expired: while it is expired, no agent can upgrade";

/// `today` is the UTC date; `expires` is the last valid day. Where the
/// endpoint does not know its license (Apex One keeps it on the server),
/// the policy's `[[server_facts]]` for its labels may say; the evidence
/// `source` tells which was used.
pub(crate) fn evaluate(
    doc: &ProductDoc,
    policy: &LicensePolicy,
    server_facts: Option<(usize, &ServerFacts)>,
    today: time::Date,
) -> Finding {
    let (expires, source) =
        match super::endpoint_or_server_fact(doc.license_expires(), server_facts, |facts| facts.license_expires) {
            Ok(fact) => fact,
            Err(error) => return Finding::product_error(&error),
        };
    let days_left = (expires - today).whole_days();
    let expires_text = format_date(expires);
    let finding = if days_left < 0 {
        Finding::fail(format!("license expired on {expires_text} ({} days ago)", -days_left))
            .code("license-expired")
            .param("expires", &expires_text)
            .param("days", -days_left)
    } else if days_left < i64::from(policy.warn_days) {
        Finding::warn(format!(
            "license expires on {expires_text}, in {days_left} days (warning window {} days)",
            policy.warn_days
        ))
        .code("license-expiring")
        .param("expires", &expires_text)
        .param("days", days_left)
        .param("warn_days", policy.warn_days)
    } else {
        Finding::pass(format!("license valid until {expires_text} ({days_left} days left)"))
            .code("license-valid")
            .param("expires", &expires_text)
            .param("days", days_left)
    };
    finding
        .with("expires", expires_text)
        .with("days_left", days_left)
        .with("warn_days", policy.warn_days)
        .with("source", source)
}

#[cfg(test)]
mod tests {
    use rollcall_common::proto::CheckStatus;
    use time::macros::date;

    use super::*;

    const TODAY: time::Date = date!(2026 - 11 - 27);

    fn check(expires: &str) -> Finding {
        let doc = ProductDoc::parse(&format!("[license]\nexpires = \"{expires}\"\n"));
        evaluate(&doc, &LicensePolicy { warn_days: 30 }, None, TODAY)
    }

    #[test]
    fn the_coordinator_states_what_the_endpoint_does_not_know() {
        let policy = rollcall_common::policy::Policy::from_toml_str(
            "[[server_facts]]\nmatch = { site = \"osaka\" }\nlicense_expires = \"2026-11-01\"\n",
        )
        .expect("policy");
        let osaka = [("site".to_string(), "osaka".to_string())].into();
        let facts = policy.server_facts_for(&osaka);
        let unknown = ProductDoc::parse("version = \"14.0.1\"\n");
        let finding = evaluate(&unknown, &LicensePolicy { warn_days: 30 }, facts, TODAY);
        assert_eq!(finding.status, CheckStatus::Fail, "{}", finding.message);
        assert_eq!(
            super::super::test_support::evidence(&finding, "source").as_deref(),
            Some("coordinator policy server_facts[0] (match site=osaka)")
        );
        // What the endpoint reports itself wins.
        let known = ProductDoc::parse("[license]\nexpires = \"2027-03-31\"\n");
        let finding = evaluate(&known, &LicensePolicy { warn_days: 30 }, facts, TODAY);
        assert_eq!(finding.status, CheckStatus::Pass);
        assert_eq!(
            super::super::test_support::evidence(&finding, "source").as_deref(),
            Some(super::super::ENDPOINT_SOURCE)
        );
        // Without a fact for these labels, the missing field is an error.
        let finding = evaluate(&unknown, &LicensePolicy { warn_days: 30 }, None, TODAY);
        assert_eq!(finding.status, CheckStatus::Error);
    }

    #[test]
    fn far_expiry_passes() {
        let finding = check("2027-03-31");
        assert_eq!(finding.status, CheckStatus::Pass);
        assert_eq!(finding.message, "license valid until 2027-03-31 (124 days left)");
    }

    #[test]
    fn inside_the_warning_window_warns() {
        assert_eq!(check("2026-12-26").status, CheckStatus::Warn);
        // The expiry day itself is still valid.
        let finding = check("2026-11-27");
        assert_eq!(finding.status, CheckStatus::Warn);
        assert!(finding.message.contains("in 0 days"), "{}", finding.message);
        // Exactly warn_days left is outside the window.
        assert_eq!(check("2026-12-27").status, CheckStatus::Pass);
    }

    #[test]
    fn past_expiry_fails() {
        let finding = check("2026-11-26");
        assert_eq!(finding.status, CheckStatus::Fail);
        assert_eq!(finding.message, "license expired on 2026-11-26 (1 days ago)");
    }

    #[test]
    fn a_missing_or_bad_expiry_is_an_error_naming_the_field() {
        let finding = evaluate(&ProductDoc::parse(""), &LicensePolicy { warn_days: 30 }, None, TODAY);
        assert_eq!(finding.status, CheckStatus::Error);
        assert_eq!(finding.message, "product state: license.expires is missing");
        assert!(check("soon").message.contains("license.expires"));
    }
}
