//! The Apex One adapter end to end on any platform: an in-memory registry
//! (the test double for the Windows one) and real `.ini` files in a tempdir.

use std::path::Path;

use rollcall_common::product::{ProductRole, UpdatePermission, UpdateSourceKind};

use super::*;

const AGENT_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion";
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
        .set(AGENT_KEY, "Server", text("apex.example"))
        .set(AGENT_KEY, "ServerPort", RegValue::Dword(4343))
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
    assert_eq!(verified, ["version"], "only Windows' own uninstall entry is verified");
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
    let mapping = Mapping::parse(SHIPPED).expect("mapping");
    let resolved = resolve(&mapping, &endpoint(dir.path()));
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
    // Left out of the mapping (they live on the server): absent, reported missing.
    assert!(doc.license_expires().is_err());
    assert!(doc.update_permission().is_err());

    let version = by_field(&resolved, "version");
    assert!(version.verified);
    assert_eq!(
        version.source,
        format!(r"{UNINSTALL_32}\{{ABCD}} DisplayVersion (REG_SZ)")
    );
    let server = by_field(&resolved, "server.address");
    assert_eq!(
        server.source,
        format!("{AGENT_KEY} Server (REG_SZ), port from {AGENT_KEY} ServerPort (REG_DWORD)")
    );
    let ini_source = by_field(&resolved, "update.source").source.clone();
    assert!(
        ini_source.ends_with("ofcscan.ini [INI_UPDATE_SECTION] UpdateFromCustomSource"),
        "{ini_source}"
    );
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
    registry.set(AGENT_KEY, "Server", text("apex.example"));
    let resolved = resolve(&Mapping::parse(SHIPPED).expect("mapping"), &registry);
    assert_eq!(
        by_field(&resolved, "server.address").value,
        Err(format!("port: {AGENT_KEY} ServerPort: not found"))
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
            "the uninstall entry with DisplayName \"Trend Micro Apex One Security Agent\": none found under \
             {UNINSTALL_64} and {UNINSTALL_32}"
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
