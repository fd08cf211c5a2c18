//! Policy parsing, validation, defaults and round trips.

use super::*;

const SHIPPED: &str = include_str!("../../../deploy/examples/policy.toml");

/// The shipped example with its placeholders filled in, as an admin would.
fn example() -> String {
    fill_example(SHIPPED)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn refused(text: &str) -> String {
    Policy::from_toml_str(text).expect_err("refused").to_string()
}

#[test]
fn the_shipped_example_parses() {
    let policy = Policy::from_toml_str(&example()).expect("example policy");
    assert_eq!(policy.offline_after(), Duration::from_secs(600));
    assert_eq!(policy.update_sources().len(), 3);
    assert_eq!(policy.certificates().required.len(), 3);
    assert!(policy.certificates().required[2].thumbprint().is_some());
    assert!(policy.diagnosis().server_certificate_sha256.is_some());
    assert_eq!(policy.certificates().store.as_deref(), Some(Path::new("etc/ssl/certs")));
    assert_eq!(policy.system_requirements().os.len(), 4);
    let windows = policy
        .system_requirements()
        .os
        .iter()
        .find(|os| os.id == "windows")
        .expect("windows");
    assert_eq!(windows.min_build, Some(17763));
    assert_eq!(policy.system_requirements().min_memory_mb, Some(2048));
}

#[test]
fn an_empty_policy_is_the_default() {
    let policy = Policy::from_toml_str("").expect("empty");
    assert_eq!(policy, Policy::default());
    assert_eq!(policy.offline_after(), Duration::from_secs(600));
    assert_eq!(policy.license().warn_days, 30);
    assert_eq!(policy.update_permission().required, UpdatePermission::AllComponents);
    assert_eq!(policy.connectivity().timeout, Duration::from_secs(3));
    assert!(policy.certificates().required.is_empty());
    assert_eq!(policy.system_requirements(), &SystemRequirements::default());
    assert_eq!(policy.expected_update_source(&labels(&[])), None);
}

#[test]
fn first_matching_source_wins() {
    let policy = Policy::from_toml_str(&example()).expect("example policy");
    let osaka = policy
        .expected_update_source(&labels(&[("site", "osaka"), ("team", "x")]))
        .expect("osaka entry");
    assert_eq!(osaka.source, UpdateSourceKind::Custom);
    assert_eq!(osaka.address.as_deref(), Some("ua-osaka-01.example:8080"));
    // All match labels must be present.
    let nagoya_hq = policy
        .expected_update_source(&labels(&[("site", "nagoya")]))
        .expect("catch-all");
    assert_eq!(nagoya_hq.source, UpdateSourceKind::Standard);
    let nagoya_branch = policy
        .expected_update_source(&labels(&[("site", "nagoya"), ("network", "branch")]))
        .expect("branch entry");
    assert_eq!(nagoya_branch.source, UpdateSourceKind::Custom);
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    for (text, key) in [
        ("colour = \"blue\"\n", "colour"),
        ("[license]\nwarn_dayz = 3\n", "warn_dayz"),
        (
            "[[update_source.expected]]\nsource = \"standard\"\nadress = \"x\"\n",
            "adress",
        ),
        (
            "[[certificates.required]]\nname = \"a\"\nsha256 = \"00\"\nsha512 = \"00\"\n",
            "sha512",
        ),
        ("[system_requirements]\nmin_disk_mb = 1\n", "min_disk_mb"),
        (
            "[[system_requirements.os]]\nid = \"debian\"\nversion = \"11\"\n",
            "version",
        ),
        ("[connectivity]\nretries = 2\n", "retries"),
        ("[telemetry]\n", "telemetry"),
    ] {
        let error = refused(text);
        assert!(error.contains(key), "{error} should name {key}");
        assert!(!error.contains('\n'), "{error}");
    }
}

#[test]
fn bad_values_are_refused_with_their_key() {
    for (text, key) in [
        ("offline_after = \"soon\"\n", "offline_after"),
        ("offline_after = \"0s\"\n", "offline_after"),
        ("[license]\nwarn_days = -1\n", "warn_days"),
        ("[license]\nwarn_days = 5000\n", "license.warn_days"),
        ("[update_permission]\nrequired = \"all\"\n", "all"),
        ("[[update_source.expected]]\nsource = \"nearby\"\n", "nearby"),
        (
            "[[update_source.expected]]\nsource = \"standard\"\naddress = \"a:1\"\n",
            "update_source.expected[0].address",
        ),
        (
            "[[update_source.expected]]\nsource = \"custom\"\naddress = \"no-port\"\n",
            "update_source.expected[0].address",
        ),
        (
            "[[update_source.expected]]\nsource = \"standard\"\n[[update_source.expected]]\nmatch = { site = \"x\" }\nsource = \"custom\"\n",
            "update_source.expected[1]",
        ),
        ("[connectivity]\ntimeout = \"5m\"\n", "connectivity.timeout"),
        ("[certificates]\nstore = \"../etc\"\n", "certificates.store"),
        ("[system_requirements]\narch = [\"\"]\n", "system_requirements.arch[0]"),
        (
            "[[system_requirements.os]]\nid = \"debian\"\nmin_version = \"bookworm\"\n",
            "system_requirements.os[0].min_version",
        ),
        (
            "[[system_requirements.os]]\nid = \"debian\"\n[[system_requirements.os]]\nid = \"Debian\"\n",
            "system_requirements.os[1].id",
        ),
    ] {
        let error = refused(text);
        assert!(error.contains(key), "{error} should name {key}");
    }
}

#[test]
fn fingerprints_are_hex_with_optional_colons_and_exactly_32_bytes() {
    let colons = "AB:".repeat(31) + "AB";
    let lower = "ab".repeat(32);
    for good in [colons.as_str(), lower.as_str()] {
        assert_eq!(parse_fingerprint(good).expect(good), [0xab; 32]);
    }
    for bad in [
        "ab".repeat(31),
        "ab".repeat(33),
        "zz".repeat(32),
        "abc".to_string(),
        String::new(),
    ] {
        assert!(parse_fingerprint(&bad).is_err(), "{bad}");
        let text = format!("[[certificates.required]]\nname = \"Root\"\nsha256 = \"{bad}\"\n");
        let error = refused(&text);
        assert!(error.contains("certificates.required[0].sha256"), "{error}");
    }
    let twice = format!(
        "[[certificates.required]]\nname = \"a\"\nsha256 = \"{lower}\"\n\
         [[certificates.required]]\nname = \"b\"\nsha256 = \"{colons}\"\n"
    );
    assert!(refused(&twice).contains("certificates.required[1].sha256"));
}

#[test]
fn certificate_names_must_not_be_empty() {
    let text = format!(
        "[[certificates.required]]\nname = \" \"\nsha256 = \"{}\"\n",
        "00".repeat(32)
    );
    assert!(refused(&text).contains("certificates.required[0].name"));
}

#[test]
fn store_paths_are_relative_to_the_host_root() {
    let policy = Policy::from_toml_str("[certificates]\nstore = \"/etc/pki/tls/certs/ca-bundle.crt\"\n")
        .expect("absolute store");
    assert_eq!(
        policy.certificates().store.as_deref(),
        Some(Path::new("etc/pki/tls/certs/ca-bundle.crt"))
    );
}

#[test]
fn architectures_are_normalised() {
    let policy =
        Policy::from_toml_str("[system_requirements]\narch = [\"amd64\", \"x86_64\", \"ARM64\"]\n").expect("arch");
    assert_eq!(policy.system_requirements().arch, ["x86_64", "aarch64"]);
}

#[test]
fn round_trips_through_toml_and_serde() {
    let policy = Policy::from_toml_str(&example()).expect("example policy");
    let shown = policy.to_toml_string().expect("to toml");
    assert_eq!(Policy::from_toml_str(&shown).expect("reparse"), policy);
    let through_serde: Policy = toml::from_str(&shown).expect("deserialize");
    assert_eq!(through_serde, policy);
    // Defaults are written out, so an admin sees the effective values.
    let shown_default = Policy::default().to_toml_string().expect("default");
    assert!(shown_default.contains("warn_days = 30"), "{shown_default}");
    assert!(shown_default.contains("timeout = \"3s\""), "{shown_default}");
}

#[test]
fn serde_deserialize_validates_too() {
    let result: Result<Policy, _> = toml::from_str("[license]\nwarn_days = 5000\n");
    assert!(result.is_err());
}

#[test]
fn hostile_policies_are_refused() {
    let deep = format!("a = {}", "[".repeat(100_000));
    assert!(refused(&deep).contains("nests deeper"));
    let huge = format!("# {}", "x".repeat(MAX_POLICY_BYTES));
    assert!(refused(&huge).contains("larger"));
}

#[test]
fn a_required_certificate_takes_a_sha256_or_a_sha1_thumbprint() {
    let policy = Policy::from_toml_str(
        "[[certificates.required]]\nname = \"G5\"\nsha1 = \"4e b6 d5 78 49 9b 1c cf 5f 58 1e ad 56 be 3d 9b 67 44 a5 e5\"\n",
    )
    .expect("policy");
    let required = &policy.certificates().required[0];
    assert_eq!(
        required.thumbprint().as_deref(),
        Some("4eb6d578499b1ccf5f581ead56be3d9b6744a5e5")
    );
    assert_eq!(required.sha256, None);
    // It survives the round trip the coordinator pushes to agents.
    let again = Policy::from_toml_str(&policy.to_toml_string().expect("toml")).expect("again");
    assert_eq!(again, policy);
    let neither = Policy::from_toml_str("[[certificates.required]]\nname = \"x\"\n").expect_err("neither");
    assert!(neither.to_string().contains("sha1 thumbprint"), "{neither}");
    let short = Policy::from_toml_str("[[certificates.required]]\nname = \"x\"\nsha1 = \"4eb6\"\n").expect_err("short");
    assert!(short.to_string().contains("certificates.required[0].sha1"), "{short}");
}

#[test]
fn the_diagnosis_section_bounds_its_window_and_checks_the_hash() {
    let policy = Policy::from_toml_str(&format!(
        "[diagnosis]\npattern_window = \"3d\"\nserver_certificate_sha256 = \"{}\"\n",
        "AB".repeat(32)
    ))
    .expect("policy");
    assert_eq!(
        policy.diagnosis().pattern_window,
        std::time::Duration::from_secs(3 * 86_400)
    );
    assert_eq!(
        policy.diagnosis().server_certificate_sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    assert_eq!(Policy::default().diagnosis().pattern_window, DEFAULT_PATTERN_WINDOW);
    assert!(Policy::from_toml_str("[diagnosis]\npattern_window = \"1m\"\n").is_err());
    assert!(Policy::from_toml_str("[diagnosis]\nserver_certificate_sha256 = \"ab\"\n").is_err());
}

#[test]
fn the_shipped_example_names_every_placeholder_until_filled_in() {
    let error = Policy::from_toml_str(SHIPPED).expect_err("placeholders refused");
    let PolicyError::Placeholders(keys) = &error else {
        panic!("{error}");
    };
    let mut keys = keys.clone();
    keys.sort();
    assert_eq!(
        keys,
        [
            "certificates.required[0].sha256",
            "certificates.required[1].sha256",
            "update_source.expected[0].address",
            "update_source.expected[1].address",
        ]
    );
    let text = error.to_string();
    assert!(text.contains("certificates.required[1].sha256"), "{text}");
    assert!(Policy::from_toml_str(&example()).is_ok());
}
