//! `certificates` (runbook step 4): the product checks its files' digital
//! signatures, which needs the code-signing root and intermediate
//! certificates in the endpoint's trust store. Each certificate the policy
//! requires (by SHA-256 of its DER, or by the SHA-1 thumbprint Windows'
//! certificate manager shows) must be there and not expired. For an Apex
//! One target of the Azure Code Signing era, the endpoint's Windows must
//! also have the update that trusts it ([`super::acs`]).

use rollcall_common::policy::CertificatePolicy;

use super::finding::Finding;
use super::trust_store::TrustStore;

pub(crate) const NAME: &str = rollcall_common::checks::CERTIFICATES;
pub(crate) const STEP: u32 = 4;
pub(crate) const REMEDIATION: &str = "Install the missing or expired code-signing root and intermediate certificates (listed in the vendor's article on problems caused by digital signatures) into the trust store of the product server and of every agent, then check again";

/// `store` is `None` when the policy requires nothing (the store is then not
/// read at all); `now` is Unix seconds.
pub(crate) fn evaluate(policy: &CertificatePolicy, store: Option<anyhow::Result<TrustStore>>, now: i64) -> Finding {
    if policy.required.is_empty() {
        return Finding::pass("the policy requires no certificates").code("certificates-none-required");
    }
    let store = match store {
        Some(Ok(store)) => store,
        Some(Err(error)) => {
            return Finding::error(format!("{error:#}"))
                .code("certificates-store-unreadable")
                .param("detail", format!("{error:#}"));
        }
        None => return Finding::error("the trust store was not read").code("certificates-store-not-read"),
    };
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let mut expired = Vec::new();
    for required in &policy.required {
        let sha256 = required
            .sha256
            .or_else(|| required.sha1.and_then(|sha1| store.by_sha1.get(&sha1).copied()));
        match sha256.and_then(|sha256| store.certificates.get(&sha256)) {
            None => missing.push(required.name.clone()),
            Some(stored) => match stored.not_after {
                Some(not_after) if not_after < now => {
                    expired.push(format!("{} (expired {})", required.name, unix_date(not_after)))
                }
                _ => present.push(required.name.clone()),
            },
        }
    }
    let location = store.location.display().to_string();
    let mut finding = if missing.is_empty() && expired.is_empty() {
        Finding::pass(format!(
            "all {} required certificates are in {location} and valid",
            present.len()
        ))
        .code("certificates-present")
        .param("count", present.len())
        .param("store", &location)
    } else {
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(
                Finding::fail(format!("missing from {location}: {}", missing.join(", ")))
                    .code("certificates-missing")
                    .param("store", &location)
                    .param("names", missing.join(", ")),
            );
        }
        if !expired.is_empty() {
            problems.push(
                Finding::fail(format!("expired: {}", expired.join(", ")))
                    .code("certificates-expired")
                    .param("names", expired.join(", ")),
            );
        }
        Finding::combine(problems)
    };
    finding.add("store", &location);
    finding.add("store_certificates", store.certificates.len());
    for (key, names) in [("present", &present), ("missing", &missing), ("expired", &expired)] {
        if !names.is_empty() {
            finding.add(key, names.join(", "));
        }
    }
    if store.unreadable_files > 0 {
        finding.add("unreadable_files", store.unreadable_files);
    }
    if store.truncated {
        finding.add("truncated", "the store is larger than the probe reads");
    }
    finding
}

fn unix_date(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|moment| rollcall_common::product::format_date(moment.date()))
        .unwrap_or_else(|_| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use rollcall_common::policy::Policy;
    use rollcall_common::proto::CheckStatus;

    use super::super::test_support::{TestCertificate, certificate};
    use super::super::trust_store;
    use super::*;

    fn policy(required: &[(&str, &TestCertificate)], store: Option<&str>) -> Policy {
        let mut text = String::new();
        if let Some(store) = store {
            text.push_str(&format!("[certificates]\nstore = \"{store}\"\n"));
        }
        for (name, certificate) in required {
            text.push_str(&format!(
                "[[certificates.required]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
                certificate.sha256_hex
            ));
        }
        Policy::from_toml_str(&text).expect("policy")
    }

    fn check(root: &Path, policy: &Policy) -> Finding {
        let store = trust_store::load(root, policy.certificates().store.as_deref());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        evaluate(policy.certificates(), Some(store), now)
    }

    fn write(root: &Path, relative: &str, bytes: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
    }

    #[test]
    fn nothing_required_passes_without_reading_a_store() {
        let finding = evaluate(Policy::default().certificates(), None, 0);
        assert_eq!(finding.status, CheckStatus::Pass);
    }

    #[cfg(unix)]
    #[test]
    fn present_and_valid_certificates_pass_in_pem_der_and_bundles() {
        let root = tempfile::tempdir().expect("tempdir");
        let signing_root = certificate("Example Code Signing Root", (2099, 1, 1));
        let intermediate = certificate("Example Code Signing CA", (2099, 1, 1));
        let other = certificate("Unrelated", (2099, 1, 1));
        write(root.path(), "etc/ssl/certs/root.der", &signing_root.der);
        write(
            root.path(),
            "etc/ssl/certs/ca-certificates.crt",
            // A damaged section must not hide the certificates after it.
            format!(
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n{}\n{}",
                other.pem, intermediate.pem
            )
            .as_bytes(),
        );
        write(root.path(), "etc/ssl/certs/README", b"not a certificate");
        let policy = policy(&[("Root", &signing_root), ("Intermediate", &intermediate)], None);
        let finding = check(root.path(), &policy);
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
        assert_eq!(
            finding.message,
            "all 2 required certificates are in etc/ssl/certs and valid"
        );
        let evidence: Vec<(&str, &str)> = finding
            .evidence
            .iter()
            .map(|evidence| (evidence.key.as_str(), evidence.value.as_str()))
            .collect();
        assert!(evidence.contains(&("store_certificates", "3")), "{evidence:?}");
        assert!(evidence.contains(&("unreadable_files", "1")), "{evidence:?}");
    }

    #[cfg(unix)]
    #[test]
    fn missing_and_expired_certificates_fail_by_name() {
        let root = tempfile::tempdir().expect("tempdir");
        let valid = certificate("Valid", (2099, 1, 1));
        let old = certificate("Old", (2020, 6, 30));
        let absent = certificate("Absent", (2099, 1, 1));
        write(root.path(), "etc/pki/tls/certs/valid.pem", valid.pem.as_bytes());
        write(root.path(), "etc/pki/tls/certs/old.pem", old.pem.as_bytes());
        let policy = policy(&[("Valid", &valid), ("Old", &old), ("Absent", &absent)], None);
        let finding = check(root.path(), &policy);
        assert_eq!(finding.status, CheckStatus::Fail);
        assert_eq!(
            finding.message,
            "missing from etc/pki/tls/certs: Absent; expired: Old (expired 2020-06-30)"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_certificate_may_be_required_by_its_windows_sha1_thumbprint() {
        use sha1::Digest as _;
        let root = tempfile::tempdir().expect("tempdir");
        let present = certificate(
            "VeriSign Class 3 Public Primary Certification Authority - G5",
            (2099, 1, 1),
        );
        let absent = certificate("Absent", (2099, 1, 1));
        write(root.path(), "etc/ssl/certs/g5.pem", present.pem.as_bytes());
        // As Windows' certificate dialog shows it: spaced, upper case.
        let spaced = |der: &[u8]| {
            hex::encode_upper(sha1::Sha1::digest(der))
                .as_bytes()
                .chunks(2)
                .map(|pair| String::from_utf8_lossy(pair).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let policy = Policy::from_toml_str(&format!(
            "[[certificates.required]]\nname = \"G5\"\nsha1 = \"{}\"\n[[certificates.required]]\nname = \"Absent\"\nsha1 = \"{}\"\n",
            spaced(&present.der),
            hex::encode(sha1::Sha1::digest(&absent.der))
        ))
        .expect("policy");
        let finding = check(root.path(), &policy);
        assert_eq!(finding.status, CheckStatus::Fail);
        assert_eq!(finding.message, "missing from etc/ssl/certs: Absent");
        assert!(
            finding
                .evidence
                .iter()
                .any(|item| item.key == "present" && item.value == "G5"),
            "{:?}",
            finding.evidence
        );
    }

    #[test]
    fn a_bundle_file_can_be_the_store() {
        let root = tempfile::tempdir().expect("tempdir");
        let valid = certificate("Valid", (2099, 1, 1));
        write(root.path(), "etc/bundle.pem", valid.pem.as_bytes());
        let finding = check(root.path(), &policy(&[("Valid", &valid)], Some("/etc/bundle.pem")));
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
    }

    #[cfg(unix)]
    #[test]
    fn absolute_links_in_the_store_resolve_under_the_host_root() {
        let root = tempfile::tempdir().expect("tempdir");
        let valid = certificate("Valid", (2099, 1, 1));
        write(root.path(), "usr/share/ca-certificates/valid.crt", valid.pem.as_bytes());
        fs::create_dir_all(root.path().join("etc/ssl/certs")).expect("mkdir");
        std::os::unix::fs::symlink(
            "/usr/share/ca-certificates/valid.crt",
            root.path().join("etc/ssl/certs/valid.pem"),
        )
        .expect("symlink");
        let finding = check(root.path(), &policy(&[("Valid", &valid)], None));
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
    }

    #[cfg(unix)]
    #[test]
    fn no_store_is_an_error_naming_where_it_looked() {
        let root = tempfile::tempdir().expect("tempdir");
        let valid = certificate("Valid", (2099, 1, 1));
        let finding = check(root.path(), &policy(&[("Valid", &valid)], None));
        assert_eq!(finding.status, CheckStatus::Error);
        assert!(
            finding.message.contains("etc/ssl/certs or etc/pki/tls/certs"),
            "{}",
            finding.message
        );
    }
}
