//! The Apex One adapter end to end on any platform: an in-memory registry
//! (the test double for the Windows one) and real `.ini` files in a tempdir.

use std::path::Path;

use rollcall_common::product::{ProductRole, UpdatePermission, UpdateSourceKind};

use sha2::Digest as _;

use super::*;

const AGENT_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion";
const MISC_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion\Misc.";
const UPDATE_INFO_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion\UpdateInfo";
const REBOOT_REQUIRED_PARENT: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update";
const REFUSED: &str = "Client environment is not qualified to do upgrade or hotfix";
const UNINSTALL_64: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall";
const UNINSTALL_32: &str = r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall";
const SHIPPED: &str = include_str!("../../../../deploy/examples/apex-one.toml");

fn text(value: &str) -> RegValue {
    RegValue::String(value.to_string())
}

/// The registry of an update agent with Apex One installed in `install_dir`.
fn endpoint(install_dir: &Path) -> MemoryRegistry {
    let mut registry = MemoryRegistry::new();
    registry
        .set(
            AGENT_KEY,
            "Application Path",
            text(&format!("{}", install_dir.display())),
        )
        .set(AGENT_KEY, "server", text("apex.example:4343"))
        .set(MISC_KEY, "ProgramVer", text("14.0.12737"))
        .set(MISC_KEY, "PatternVer", text("19.851.00"))
        .set(MISC_KEY, "PatternDate", text("20261201"))
        .set(
            MISC_KEY,
            "UpdateFrom",
            text("http://apex.example:8080/officescan/download"),
        )
        .set(UPDATE_INFO_KEY, "LastUpdate", RegValue::Dword(1_796_083_200))
        .set(AGENT_KEY, "UpdateAgent", RegValue::Dword(1))
        .set(
            &format!(r"{AGENT_KEY}\UpdateAgent"),
            "ProgramAndHotFix",
            RegValue::Dword(1),
        )
        .set(
            &format!(r"{UNINSTALL_64}\{{1234}}"),
            "DisplayName",
            text("Some Other Program"),
        )
        .set(
            &format!(r"{UNINSTALL_32}\{{ABCD}}"),
            "DisplayName",
            text("Trend Micro Apex One Security Agent"),
        )
        .set(
            &format!(r"{UNINSTALL_32}\{{ABCD}}"),
            "DisplayVersion",
            text("14.0.12737"),
        );
    registry
}

/// The agent folder's files under their published names: the server
/// certificate and two upgrade logs, the newer one refused.
fn agent_folder(dir: &Path) {
    std::fs::write(dir.join("OfcNTCer.dat"), b"server certificate").expect("write OfcNTCer.dat");
    let temp = dir.join("Temp");
    std::fs::create_dir_all(&temp).expect("Temp");
    let old = temp.join("upgrade_20261120.log");
    std::fs::write(&old, "upgrade started\nupgrade done\n").expect("old log");
    let new = temp.join("upgrade_20261201.log");
    std::fs::write(
        &new,
        format!("12/01 10:00 start\r\n12/01 10:01 [ERROR] {REFUSED}\r\n12/01 10:01 end\r\n"),
    )
    .expect("new log");
    let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    let file = std::fs::File::options().write(true).open(&old).expect("open old log");
    file.set_modified(earlier).expect("age the old log");
}

/// Writes `ofcscan.ini` as UTF-16LE with a byte-order mark, as Windows
/// tools do.
fn write_ofcscan(dir: &Path, body: &str) {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in body.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    std::fs::write(dir.join("ofcscan.ini"), bytes).expect("write ofcscan.ini");
}

const OFCSCAN: &str =
    "[INI_UPDATE_SECTION]\r\nUpdateFromCustomSource=1\r\nCustomUpdateSource=ua-osaka-01.example:8080\r\n";

fn by_field<'a>(resolved: &'a [Resolved], field: &str) -> &'a Resolved {
    resolved
        .iter()
        .find(|item| item.field == field)
        .unwrap_or_else(|| panic!("{field} resolved"))
}

#[test]
fn the_shipped_example_parses_and_marks_what_is_unconfirmed() {
    let mapping = Mapping::parse(SHIPPED).expect("deploy/examples/apex-one.toml parses");
    let verified: Vec<&str> = mapping
        .rules
        .iter()
        .filter(|rule| rule.verified)
        .map(|rule| rule.field.as_str())
        .collect();
    // Verified = named by a public source and read back by the fixtures.
    assert_eq!(
        verified,
        [
            "version",
            "server.certificate_sha256",
            "pattern.version",
            "pattern.date"
        ]
    );
    assert!(mapping.install_dir.as_ref().is_some_and(|rule| rule.verified));
    for guessed in [
        "role",
        "update.source",
        "update.source_address",
        "update_agent.program_and_hotfix",
    ] {
        let rule = mapping.rules.iter().find(|rule| rule.field == guessed).expect(guessed);
        assert!(
            rule.note
                .as_deref()
                .is_some_and(|note| note.contains("No published name")),
            "{guessed} says it is a guess and how to find the name"
        );
    }
    for rule in mapping.rules.iter().chain(&mapping.install_dir) {
        assert!(
            rule.note.as_deref().is_some_and(|note| !note.trim().is_empty()),
            "{} has a note telling the admin how to confirm it",
            rule.field
        );
    }
}

#[test]
fn the_shipped_example_on_a_matching_endpoint_yields_the_whole_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_ofcscan(dir.path(), OFCSCAN);
    agent_folder(dir.path());
    let mut registry = endpoint(dir.path());
    registry.set(
        &format!(r"{REBOOT_REQUIRED_PARENT}\RebootRequired"),
        "x",
        RegValue::Dword(1),
    );
    let mapping = Mapping::parse(SHIPPED).expect("mapping");
    let resolved = resolve(&mapping, &registry);
    for item in &resolved {
        assert!(item.value.is_ok(), "{}: {:?}", item.field, item.value);
    }
    let doc = document(&resolved);
    assert_eq!(doc.version().expect("version"), "14.0.12737");
    assert_eq!(doc.role().expect("role"), ProductRole::UpdateAgent);
    assert_eq!(doc.server_address().expect("server"), "apex.example:4343");
    let source = doc.update_source().expect("source");
    assert_eq!(source.kind, UpdateSourceKind::Custom);
    assert_eq!(source.address.as_deref(), Some("ua-osaka-01.example:8080"));
    assert!(
        doc.update_agent()
            .expect("update agent")
            .expect("is one")
            .program_and_hotfix
    );
    assert_eq!(doc.pattern_version().expect("pattern").as_deref(), Some("19.851.00"));
    assert_eq!(doc.pattern_date().expect("pattern date").as_deref(), Some("20261201"));
    assert_eq!(
        doc.update_last_from().expect("from").as_deref(),
        Some("http://apex.example:8080/officescan/download")
    );
    assert_eq!(doc.update_last_at().expect("at"), Some(1_796_083_200));
    assert_eq!(
        doc.server_certificate_sha256().expect("hash").as_deref(),
        Some(hex::encode(sha2::Sha256::digest(b"server certificate")).as_str())
    );
    let refused = doc.upgrade_refused().expect("refused").expect("the newest log refuses");
    assert!(refused.ends_with(REFUSED) && !refused.contains('\r'), "{refused}");
    assert!(
        doc.restart_pending()
            .expect("restart")
            .is_some_and(|what| what.ends_with("RebootRequired")),
        "pending"
    );
    // Left out of the mapping (they live on the server): absent, reported missing.
    assert!(doc.license_expires().is_err());
    assert!(doc.update_permission().is_err());

    let version = by_field(&resolved, "version");
    assert!(version.verified);
    assert_eq!(version.source, format!(r"{MISC_KEY} ProgramVer (REG_SZ)"));
    assert_eq!(
        (version.source_index, version.short_source.as_str()),
        (0, r"Misc.\ProgramVer")
    );
    assert_eq!(by_field(&resolved, "pattern.date").short_source, r"Misc.\PatternDate");
    assert_eq!(
        by_field(&resolved, "upgrade.refused").short_source,
        r"Temp\upgrade_20261201.log"
    );
    let server = by_field(&resolved, "server.address");
    assert_eq!(server.source, format!("{AGENT_KEY} server (REG_SZ)"));
    let ini_source = by_field(&resolved, "update.source").source.clone();
    assert!(
        ini_source.ends_with("ofcscan.ini [INI_UPDATE_SECTION] UpdateFromCustomSource"),
        "{ini_source}"
    );
}

#[test]
fn the_version_falls_back_to_the_uninstall_entry_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut registry = endpoint(dir.path());
    registry.set(MISC_KEY, "ProgramVer", text(""));
    let mapping = Mapping::parse(SHIPPED).expect("mapping");
    // An empty ProgramVer reads (as "absent"), so the first source wins; a
    // missing one falls back.
    let mut bare = MemoryRegistry::new();
    bare.set(
        &format!(r"{UNINSTALL_32}\{{ABCD}}"),
        "DisplayName",
        text("Trend Micro Apex One Security Agent"),
    )
    .set(
        &format!(r"{UNINSTALL_32}\{{ABCD}}"),
        "DisplayVersion",
        text("14.0.12000"),
    );
    let resolved = resolve(&mapping, &bare);
    let version = by_field(&resolved, "version");
    assert_eq!(version.value, Ok(toml::Value::String("14.0.12000".into())));
    assert_eq!(version.source_index, 1);
    assert!(
        version.source.starts_with(&format!(
            r"{UNINSTALL_32}\{{ABCD}} DisplayVersion (REG_SZ) (fallback 1; "
        )) && version.source.contains("ProgramVer: not found"),
        "{}",
        version.source
    );
    // Neither source: the error names both.
    let resolved = resolve(&mapping, &MemoryRegistry::new());
    let error = by_field(&resolved, "version").value.clone().expect_err("none");
    assert!(
        error.contains("ProgramVer: not found") && error.contains("none found under"),
        "{error}"
    );
    drop(registry);
}

#[test]
fn no_restart_marker_reads_false_and_no_log_reads_nothing_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let resolved = resolve(&Mapping::parse(SHIPPED).expect("mapping"), &endpoint(dir.path()));
    let restart = by_field(&resolved, "restart.pending");
    assert_eq!(restart.value, Ok(toml::Value::Boolean(false)));
    assert!(restart.source.starts_with("none present of: "), "{}", restart.source);
    assert_eq!(
        by_field(&resolved, "upgrade.refused").value,
        Ok(toml::Value::String(String::new()))
    );
    let doc = document(&resolved);
    assert_eq!(doc.restart_pending().expect("restart"), None);
    assert_eq!(doc.upgrade_refused().expect("refused"), None);
    // The certificate file is missing: that field's error, naming the file.
    let error = by_field(&resolved, "server.certificate_sha256")
        .value
        .clone()
        .expect_err("no file");
    assert!(error.contains("OfcNTCer.dat"), "{error}");
}

#[test]
fn a_utf16_upgrade_log_without_a_byte_order_mark_is_read_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("Temp")).expect("Temp");
    let text = format!("start\r\n[ERROR] {REFUSED}\r\n");
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    std::fs::write(dir.path().join("Temp").join("upgrade_1.log"), bytes).expect("log");
    let resolved = resolve(&Mapping::parse(SHIPPED).expect("mapping"), &endpoint(dir.path()));
    assert_eq!(
        by_field(&resolved, "upgrade.refused").value,
        Ok(toml::Value::String(format!("[ERROR] {REFUSED}")))
    );
}

#[test]
fn a_log_line_is_escaped_and_bounded() {
    let line = resolve::last_line_containing("a\nx NOT QUALIFIED \u{1b}[31m\nb\n", "not qualified").expect("found");
    assert_eq!(line, "x NOT QUALIFIED \\u{1b}[31m");
    let long = format!("not qualified {}", "y".repeat(2000));
    let bounded = resolve::bounded_line(&long);
    assert_eq!(bounded.chars().count(), resolve::MAX_LINE_CHARS + 1);
    assert!(bounded.ends_with('…'));
    assert_eq!(resolve::last_line_containing("nothing here", "not qualified"), None);
}

#[test]
fn a_failing_source_is_that_fields_error_naming_the_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No ofcscan.ini; the role value is an unknown number; the server key is denied.
    let mut registry = endpoint(dir.path());
    registry.set(AGENT_KEY, "UpdateAgent", RegValue::Dword(7));
    registry.fail(&format!(r"{AGENT_KEY}\UpdateAgent"), "access is denied");
    let resolved = resolve(&Mapping::parse(SHIPPED).expect("mapping"), &registry);
    let doc = document(&resolved);
    let role = doc.role().expect_err("untranslatable").to_string();
    assert_eq!(
        role,
        "product state: role could not be read: value \"7\" is not in the mapping's translate table (\"0\", \"1\")"
    );
    let source = doc.update_source().expect_err("no ini").to_string();
    assert!(
        source.starts_with("product state: update.source could not be read: ")
            && source.contains("ofcscan.ini [INI_UPDATE_SECTION] UpdateFromCustomSource: open "),
        "{source}"
    );
    let hotfix = by_field(&resolved, "update_agent.program_and_hotfix");
    assert_eq!(
        hotfix.value,
        Err(format!(r"{AGENT_KEY}\UpdateAgent ProgramAndHotFix: access is denied"))
    );
    // The version still reads: one broken source hides nothing else.
    assert_eq!(doc.version().expect("version"), "14.0.12737");
}

#[test]
fn a_missing_value_and_a_missing_install_dir_are_named() {
    let mut registry = MemoryRegistry::new();
    registry.set(AGENT_KEY, "server", text("apex.example"));
    let resolved = resolve(&Mapping::parse(SHIPPED).expect("mapping"), &registry);
    assert_eq!(
        by_field(&resolved, "server.address").value,
        Ok(toml::Value::String("apex.example".into()))
    );
    let source = by_field(&resolved, "update.source");
    let error = source.value.clone().expect_err("no install dir");
    assert_eq!(
        error,
        format!("the install directory could not be read: {AGENT_KEY} Application Path: not found")
    );
    assert_eq!(
        by_field(&resolved, "version").value,
        Err(format!(
            "{MISC_KEY} ProgramVer: not found; the uninstall entry with DisplayName \"Trend Micro Apex One Security \
             Agent\": none found under {UNINSTALL_64} and {UNINSTALL_32}"
        ))
    );
}

#[test]
fn uninstall_entries_match_by_prefix_and_must_agree() {
    let mapping =
        Mapping::parse("[version]\nuninstall = { display_name = \"trend micro apex one\", match = \"prefix\" }\n")
            .expect("mapping");
    let mut registry = MemoryRegistry::new();
    registry
        .set(
            &format!(r"{UNINSTALL_64}\A"),
            "DisplayName",
            text("Trend Micro Apex One Security Agent"),
        )
        .set(&format!(r"{UNINSTALL_64}\A"), "DisplayVersion", text("14.0.1"));
    let doc = document(&resolve(&mapping, &registry));
    assert_eq!(doc.version().expect("prefix match"), "14.0.1");
    registry
        .set(
            &format!(r"{UNINSTALL_32}\B"),
            "DisplayName",
            text("Trend Micro Apex One Agent"),
        )
        .set(&format!(r"{UNINSTALL_32}\B"), "DisplayVersion", text("14.0.2"));
    let error = document(&resolve(&mapping, &registry))
        .version()
        .expect_err("disagree")
        .to_string();
    assert!(error.contains("several entries disagree"), "{error}");
}

#[test]
fn fixed_values_translations_and_absolute_ini_paths_work_without_an_install_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ini = dir.path().join("custom.ini");
    std::fs::write(&ini, "\u{feff}[Server]\nHost = \"apex.example\"\nPort=443\n").expect("write");
    let mapping = Mapping::parse(&format!(
        r#"
[license.expires]
fixed = 2027-03-31
[update.permission]
fixed = "ALL"
translate = {{ "all" = "all_components" }}
[server.address]
ini = {{ file = '{path}', section = "server", key = "host" }}
port = {{ ini = {{ file = '{path}', section = "SERVER", key = "PORT" }} }}
"#,
        path = ini.display()
    ))
    .expect("mapping");
    let doc = document(&resolve(&mapping, &MemoryRegistry::new()));
    assert_eq!(
        rollcall_common::product::format_date(doc.license_expires().expect("date")),
        "2027-03-31"
    );
    assert_eq!(
        doc.update_permission().expect("translated"),
        UpdatePermission::AllComponents
    );
    assert_eq!(doc.server_address().expect("ini"), "apex.example:443");
}

#[test]
fn bad_ports_and_untranslated_numbers_are_refused() {
    let mut registry = MemoryRegistry::new();
    registry
        .set(AGENT_KEY, "Server", text("apex.example"))
        .set(AGENT_KEY, "ServerPort", RegValue::Dword(70000))
        .set(AGENT_KEY, "Flag", RegValue::Dword(1));
    let mapping = Mapping::parse(&format!(
        r#"
[server.address]
registry = {{ key = '{AGENT_KEY}', value = "Server" }}
port = {{ registry = {{ key = '{AGENT_KEY}', value = "ServerPort" }} }}
[update_agent.program_and_hotfix]
registry = {{ key = '{AGENT_KEY}', value = "Flag" }}
[role]
fixed = "update_agent"
"#
    ))
    .expect("mapping");
    let doc = document(&resolve(&mapping, &registry));
    let server = doc.server_address().expect_err("bad port").to_string();
    assert!(server.contains("\"70000\" is not a port number"), "{server}");
    // Without a translate table a DWORD stays a number, which the document refuses.
    let hotfix = doc.update_agent().expect_err("not a boolean").to_string();
    assert_eq!(
        hotfix,
        "product state: update_agent.program_and_hotfix must be a boolean, found an integer"
    );
}

#[test]
fn an_unreadable_mapping_is_an_error_of_the_whole_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("apex-one.toml");
    let error = format!("{:#}", read(&path, &MemoryRegistry::new()).expect_err("absent"));
    assert!(error.contains("apex-one.toml"), "{error}");
    std::fs::write(&path, "[version]\nregistry = { key = 'HKLM\\x' }\n").expect("write");
    let error = format!("{:#}", read(&path, &MemoryRegistry::new()).expect_err("invalid"));
    assert!(
        error.contains("parse the apex-one mapping") && error.contains("value"),
        "{error}"
    );
}

#[test]
fn an_empty_setting_is_absent_not_malformed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ini = dir.path().join("ofcscan.ini");
    std::fs::write(&ini, "[INI_UPDATE_SECTION]\r\nUpdateFrom=0\r\nCustomSource=\r\n").expect("write");
    let mapping = Mapping::parse(&format!(
        r#"
[update.source]
ini = {{ file = '{path}', section = "INI_UPDATE_SECTION", key = "UpdateFrom" }}
translate = {{ "0" = "standard", "1" = "custom" }}
[update.source_address]
ini = {{ file = '{path}', section = "INI_UPDATE_SECTION", key = "CustomSource" }}
"#,
        path = ini.display()
    ))
    .expect("mapping");
    let doc = document(&resolve(&mapping, &MemoryRegistry::new()));
    let source = doc.update_source().expect("standard source, no address");
    assert_eq!(source.kind, UpdateSourceKind::Standard);
    assert_eq!(source.address, None);
}
