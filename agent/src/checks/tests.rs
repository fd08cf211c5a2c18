//! One whole run of the checks against a fake host root.

#[cfg(unix)]
use std::fs;
#[cfg(unix)]
use std::path::Path;

use rollcall_common::proto::CheckStatus;
#[cfg(unix)]
use rollcall_common::proto::Role;

#[cfg(unix)]
use super::test_support::{certificate, tls_server};
use super::*;

#[cfg(unix)]
fn write(root: &Path, relative: &str, contents: &[u8]) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, contents).expect("write");
}

/// A healthy Debian host with the code-signing root installed, a product
/// state file pointing at a loopback TLS server, and a policy for it.
#[cfg(unix)]
async fn healthy_host(root: &Path) -> CheckContext {
    let server = tls_server().await;
    let signing_root = certificate("Example Code Signing Root", (2099, 1, 1));
    write(root, "etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n");
    write(root, "etc/rollcall-arch", b"x86_64\n");
    write(
        root,
        "proc/meminfo",
        b"MemTotal: 8388608 kB\nMemAvailable: 4194304 kB\n",
    );
    write(root, "etc/ssl/certs/root.pem", signing_root.pem.as_bytes());
    fs::create_dir_all(root.join("opt/product")).expect("mkdir");
    let state = format!(
        "version = \"14.0.12737\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-03-31\"\n\
         [update]\npermission = \"all_components\"\nsource = \"standard\"\n\
         [server]\naddress = \"{server}\"\n"
    );
    write(root, "state.toml", state.as_bytes());
    let policy = Policy::from_toml_str(&format!(
        "[[update_source.expected]]\nsource = \"standard\"\n\
         [[certificates.required]]\nname = \"Example Code Signing Root\"\nsha256 = \"{}\"\n\
         [system_requirements]\narch = [\"x86_64\"]\nmin_memory_mb = 2048\nmin_free_disk_mb = 1\n\
         [[system_requirements.os]]\nid = \"debian\"\nmin_version = \"11\"\n",
        signing_root.sha256_hex
    ))
    .expect("policy");
    CheckContext {
        host_root: root.to_path_buf(),
        product: ProductConfig {
            state_file: Some(root.join("state.toml")),
            install_path: "/opt/product".into(),
            ..ProductConfig::default()
        },
        policy: Arc::new(policy),
        labels: BTreeMap::from([("site".to_string(), "osaka".to_string())]),
        target_version: Some("14.0.12737".to_string()),
    }
}

// The fixture is a Linux host root (os-release, meminfo, PEM folder).
#[cfg(unix)]
#[tokio::test]
async fn a_healthy_endpoint_passes_every_check_in_runbook_order() {
    let root = tempfile::tempdir().expect("tempdir");
    let context = healthy_host(root.path()).await;
    let run = run_all(&context).await;
    let names: Vec<&str> = run.checks.iter().map(|check| check.name.as_str()).collect();
    assert_eq!(names, CHECK_NAMES);
    let steps: Vec<u32> = run.checks.iter().map(|check| check.runbook_step).collect();
    assert_eq!(steps, [0, 1, 2, 3, 4, 5, 6]);
    for check in &run.checks {
        assert_eq!(status_of(check), CheckStatus::Pass, "{}: {}", check.name, check.message);
        assert!(!check.remediation.is_empty(), "{}", check.name);
        assert!(!check.message.contains('\n'), "{}", check.message);
    }
    assert_eq!(run.product.version, "14.0.12737");
    assert_eq!(run.product.role, Role::Endpoint as i32);
    assert_eq!(run.host.os_id, "debian");
    assert_eq!(run.host.arch, "x86_64");
    assert_eq!(run.host.memory_mb, 8192);
}

// The fixture is a Linux host root (os-release, meminfo, PEM folder).
#[cfg(unix)]
#[tokio::test]
async fn an_unreadable_product_document_errors_its_checks_but_not_the_host_ones() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut context = healthy_host(root.path()).await;
    context.product.state_file = Some(root.path().join("missing.toml"));
    let run = run_all(&context).await;
    assert!(
        run.product.read_error.contains("missing.toml"),
        "{}",
        run.product.read_error
    );
    for check in &run.checks {
        let expected = match check.name.as_str() {
            "certificates" | "system_requirements" => CheckStatus::Pass,
            _ => CheckStatus::Error,
        };
        assert_eq!(status_of(check), expected, "{}: {}", check.name, check.message);
    }
}

#[tokio::test]
async fn nothing_configured_still_yields_every_result() {
    let root = tempfile::tempdir().expect("tempdir");
    let context = CheckContext {
        host_root: root.path().to_path_buf(),
        product: ProductConfig::default(),
        policy: Arc::new(Policy::default()),
        labels: BTreeMap::new(),
        target_version: None,
    };
    let run = run_all(&context).await;
    assert_eq!(run.checks.len(), CHECK_NAMES.len());
    let version = &run.checks[0];
    assert_eq!(status_of(version), CheckStatus::Error);
    assert!(
        version
            .message
            .contains("no [product] state_file or state_command configured"),
        "{}",
        version.message
    );
    // No requirements in the default policy: nothing to fail on the host.
    assert_eq!(status_of(&run.checks[6]), CheckStatus::Pass);
    assert_eq!(status_of(&run.checks[4]), CheckStatus::Pass);
}

// The fixture is a Linux host root (os-release, meminfo, PEM folder).
#[cfg(unix)]
#[tokio::test]
async fn a_straggler_shows_what_is_wrong() {
    let root = tempfile::tempdir().expect("tempdir");
    let context = healthy_host(root.path()).await;
    write(
        root.path(),
        "state.toml",
        b"version = \"14.0.9999\"\n[license]\nexpires = \"2020-01-01\"\n\
          [update]\npermission = \"pattern_files\"\nsource = \"custom\"\nsource_address = \"127.0.0.1:1\"\n\
          [server]\naddress = \"127.0.0.1:1\"\n",
    );
    fs::remove_file(root.path().join("etc/ssl/certs/root.pem")).expect("remove");
    let mut context = context;
    context.target_version = Some("14.0.10000".to_string());
    let run = run_all(&context).await;
    let statuses: Vec<CheckStatus> = run.checks.iter().map(status_of).collect();
    assert_eq!(
        statuses,
        [
            CheckStatus::Warn,
            CheckStatus::Fail,
            CheckStatus::Fail,
            CheckStatus::Fail,
            CheckStatus::Fail,
            CheckStatus::Fail,
            CheckStatus::Pass,
        ],
        "{:#?}",
        run.checks
    );
}
