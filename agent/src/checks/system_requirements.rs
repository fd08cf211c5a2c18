//! `system_requirements` (runbook step 6): the endpoint's OS and version,
//! architecture, free disk at the install path and memory meet the policy's
//! minimums. A fact the policy does not constrain is only evidence, so an
//! unreadable one does not make the check an error.

use std::cmp::Ordering;

use rollcall_common::policy::{OsRequirement, SystemRequirements};
use rollcall_common::version;

use super::finding::Finding;
use crate::host::{HostObservation, OsRelease};

pub(crate) const NAME: &str = rollcall_common::checks::SYSTEM_REQUIREMENTS;
pub(crate) const STEP: u32 = 6;
pub(crate) const REMEDIATION: &str = "Bring the endpoint within the agent's system requirements (a supported OS and version, the OS update level that newer code signing needs, a supported architecture, enough free disk and memory), or upgrade or replace it";

pub(crate) fn evaluate(host: &HostObservation, requirements: &SystemRequirements) -> Finding {
    let finding = Finding::combine(vec![
        operating_system(host, requirements),
        architecture(host, requirements),
        free_disk(host, requirements),
        memory(host, requirements),
    ]);
    if finding.status == rollcall_common::proto::CheckStatus::Pass {
        let mut summary =
            Finding::pass("the endpoint meets the policy's system requirements").code("system-requirements-met");
        summary.evidence = finding.evidence;
        return summary;
    }
    finding
}

/// A host fact that could not be read: the reader's own words, verbatim.
fn host_error(error: &anyhow::Error) -> Finding {
    Finding::error(format!("{error:#}"))
        .code("host-unreadable")
        .param("detail", format!("{error:#}"))
}

fn operating_system(host: &HostObservation, requirements: &SystemRequirements) -> Finding {
    let os = match &host.os {
        Ok(os) => os,
        Err(error) if !requirements.os.is_empty() => return host_error(error),
        Err(_) => return Finding::pass(""),
    };
    let version_text = os.version_id.clone().unwrap_or_default();
    let mut finding = if requirements.os.is_empty() {
        Finding::pass("")
    } else {
        match requirements.os.iter().find(|required| required.id == os.id) {
            None => {
                let supported: Vec<&str> = requirements.os.iter().map(|required| required.id.as_str()).collect();
                Finding::fail(format!(
                    "OS {} is not one the policy supports ({})",
                    os.id,
                    supported.join(", ")
                ))
                .code("os-unsupported")
                .param("os", &os.id)
                .param("supported", supported.join(", "))
            }
            Some(required) => match (&required.min_version, &os.version_id) {
                (None, _) => Finding::pass(""),
                (Some(minimum), None) => Finding::error(format!(
                    "os-release has no VERSION_ID to compare with the minimum {} {minimum}",
                    os.id
                ))
                .code("os-version-unknown")
                .param("os", &os.id)
                .param("minimum", minimum),
                (Some(minimum), Some(installed)) => match version::compare(installed, minimum) {
                    Ok(Ordering::Less) => {
                        Finding::fail(format!("OS {} {installed} is older than the minimum {minimum}", os.id))
                            .code("os-too-old")
                            .param("os", &os.id)
                            .param("version", installed)
                            .param("minimum", minimum)
                    }
                    Ok(_) => Finding::pass(""),
                    Err(error) => Finding::error(format!("os-release VERSION_ID: {error}"))
                        .code("os-version-invalid")
                        .param("detail", error),
                }
                .with("os_min_version", minimum),
            },
        }
    };
    if let Some(required) = requirements.os.iter().find(|required| required.id == os.id) {
        finding = Finding::combine(vec![finding, os_build(os, required)]);
    }
    finding.add("os_id", &os.id);
    finding.add("os_version", version_text);
    if let Some(build) = os.build {
        finding.add("os_build", build);
    }
    if let Some(name) = &os.name {
        finding.add("os_name", name);
    }
    finding
}

/// `min_build`: Windows names its update levels by build number.
fn os_build(os: &OsRelease, required: &OsRequirement) -> Finding {
    let Some(minimum) = required.min_build else {
        return Finding::pass("");
    };
    match os.build {
        None => Finding::error(format!(
            "the OS reports no build number to compare with the minimum {} build {minimum}",
            os.id
        ))
        .code("os-build-unknown")
        .param("os", &os.id)
        .param("minimum", minimum),
        Some(build) if build < minimum => Finding::fail(format!(
            "OS {} build {build} is older than the minimum build {minimum}",
            os.id
        ))
        .code("os-build-too-old")
        .param("os", &os.id)
        .param("build", build)
        .param("minimum", minimum),
        Some(_) => Finding::pass(""),
    }
    .with("os_min_build", minimum)
}

fn architecture(host: &HostObservation, requirements: &SystemRequirements) -> Finding {
    let arch = match &host.arch {
        Ok(arch) => arch,
        Err(error) if !requirements.arch.is_empty() => return host_error(error),
        Err(_) => return Finding::pass(""),
    };
    let finding = if requirements.arch.is_empty() || requirements.arch.contains(arch) {
        Finding::pass("")
    } else {
        Finding::fail(format!(
            "architecture {arch} is not one the policy supports ({})",
            requirements.arch.join(", ")
        ))
        .code("arch-unsupported")
        .param("arch", arch)
        .param("supported", requirements.arch.join(", "))
    };
    finding.with("arch", arch)
}

fn free_disk(host: &HostObservation, requirements: &SystemRequirements) -> Finding {
    let install_path = host.install_path.display().to_string();
    let free = match &host.free_disk_mb {
        Ok(free) => *free,
        Err(error) if requirements.min_free_disk_mb.is_some() => {
            return host_error(error).with("install_path", install_path);
        }
        Err(_) => return Finding::pass(""),
    };
    let mut finding = match requirements.min_free_disk_mb {
        Some(minimum) if free < minimum => Finding::fail(format!(
            "{free} MiB free at {install_path}, below the minimum {minimum} MiB"
        ))
        .code("disk-low")
        .param("free", free)
        .param("path", &install_path)
        .param("minimum", minimum)
        .with("min_free_disk_mb", minimum),
        Some(minimum) => Finding::pass("").with("min_free_disk_mb", minimum),
        None => Finding::pass(""),
    };
    finding.add("free_disk_mb", free);
    finding.add("install_path", install_path);
    finding
}

fn memory(host: &HostObservation, requirements: &SystemRequirements) -> Finding {
    let memory = match &host.memory {
        Ok(memory) => memory,
        Err(error) if requirements.min_memory_mb.is_some() => {
            return host_error(error);
        }
        Err(_) => return Finding::pass(""),
    };
    let mut finding = match requirements.min_memory_mb {
        Some(minimum) if memory.total_mb < minimum => Finding::fail(format!(
            "{} MiB of memory, below the minimum {minimum} MiB",
            memory.total_mb
        ))
        .code("memory-low")
        .param("total", memory.total_mb)
        .param("minimum", minimum)
        .with("min_memory_mb", minimum),
        Some(minimum) => Finding::pass("").with("min_memory_mb", minimum),
        None => Finding::pass(""),
    };
    finding.add("memory_total_mb", memory.total_mb);
    if let Some(available) = memory.available_mb {
        finding.add("memory_available_mb", available);
    }
    finding
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rollcall_common::policy::Policy;
    use rollcall_common::proto::CheckStatus;

    use super::super::test_support::evidence;
    use super::*;
    use crate::host::{Memory, OsRelease};

    const POLICY: &str = r#"
[system_requirements]
arch = ["x86_64", "aarch64"]
min_free_disk_mb = 1024
min_memory_mb = 2048
[[system_requirements.os]]
id = "debian"
min_version = "11"
[[system_requirements.os]]
id = "ubuntu"
min_version = "20.04"
"#;

    fn host(os: (&str, Option<&str>), arch: &str, free_disk_mb: u64, total_mb: u64) -> HostObservation {
        HostObservation {
            os: Ok(OsRelease {
                id: os.0.to_string(),
                version_id: os.1.map(str::to_string),
                build: None,
                name: None,
            }),
            arch: Ok(arch.to_string()),
            memory: Ok(Memory {
                total_mb,
                available_mb: Some(total_mb / 2),
            }),
            free_disk_mb: Ok(free_disk_mb),
            addresses: Default::default(),
            install_path: PathBuf::from("/opt/product"),
        }
    }

    fn check(host: &HostObservation) -> Finding {
        let policy = Policy::from_toml_str(POLICY).expect("policy");
        evaluate(host, policy.system_requirements())
    }

    #[test]
    fn a_supported_host_passes_with_its_facts() {
        let finding = check(&host(("ubuntu", Some("22.04")), "x86_64", 50_000, 16_000));
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
        assert_eq!(evidence(&finding, "os_version").as_deref(), Some("22.04"));
        assert_eq!(evidence(&finding, "free_disk_mb").as_deref(), Some("50000"));
        assert_eq!(evidence(&finding, "memory_available_mb").as_deref(), Some("8000"));
    }

    #[test]
    fn each_shortfall_fails_and_all_are_named() {
        let finding = check(&host(("debian", Some("10")), "riscv64", 100, 1024));
        assert_eq!(finding.status, CheckStatus::Fail);
        for part in [
            "OS debian 10 is older than the minimum 11",
            "architecture riscv64",
            "100 MiB free at /opt/product",
            "1024 MiB of memory",
        ] {
            assert!(finding.message.contains(part), "{} lacks {part}", finding.message);
        }
    }

    #[test]
    fn an_unlisted_os_fails() {
        let finding = check(&host(("alpine", Some("3.20")), "x86_64", 50_000, 16_000));
        assert_eq!(finding.status, CheckStatus::Fail);
        assert_eq!(
            finding.message,
            "OS alpine is not one the policy supports (debian, ubuntu)"
        );
    }

    #[test]
    fn an_unreadable_constrained_fact_is_an_error() {
        let mut observation = host(("debian", Some("12")), "x86_64", 50_000, 16_000);
        observation.memory = Err(anyhow::anyhow!("open /host/proc/meminfo: No such file"));
        let finding = check(&observation);
        assert_eq!(finding.status, CheckStatus::Error);
        assert!(finding.message.contains("proc/meminfo"), "{}", finding.message);
        let mut observation = host(("debian", None), "x86_64", 50_000, 16_000);
        observation.os = Ok(OsRelease {
            id: "debian".to_string(),
            version_id: None,
            build: None,
            name: None,
        });
        assert_eq!(check(&observation).status, CheckStatus::Error);
    }

    #[test]
    fn windows_builds_are_compared_by_number() {
        let policy =
            Policy::from_toml_str("[[system_requirements.os]]\nid = \"windows\"\nmin_build = 19045\n").expect("policy");
        let windows = |build: Option<u64>| {
            let mut observation = host(("windows", Some("10.0.17763.1")), "x86_64", 50_000, 16_000);
            observation.os = Ok(OsRelease {
                id: "windows".to_string(),
                version_id: build.map(|build| format!("10.0.{build}.1")),
                build,
                name: Some("Windows 10 Pro".to_string()),
            });
            evaluate(&observation, policy.system_requirements())
        };
        let old = windows(Some(17763));
        assert_eq!(old.status, CheckStatus::Fail);
        assert_eq!(
            old.message,
            "OS windows build 17763 is older than the minimum build 19045"
        );
        assert_eq!(evidence(&old, "os_build").as_deref(), Some("17763"));
        assert_eq!(windows(Some(19045)).status, CheckStatus::Pass);
        assert_eq!(windows(Some(22631)).status, CheckStatus::Pass);
        assert_eq!(windows(None).status, CheckStatus::Error);
    }

    #[test]
    fn without_constraints_unreadable_facts_do_not_matter() {
        let observation = HostObservation::failed("no host", std::path::Path::new("/"));
        let finding = evaluate(&observation, Policy::default().system_requirements());
        assert_eq!(finding.status, CheckStatus::Pass, "{}", finding.message);
    }
}
