//! Every shape a product document can take, good and bad.

use super::*;

const FULL_TOML: &str = r#"
version = "14.0.12737"
role = "update_agent"
[license]
expires = "2027-03-31"
[update]
permission = "all_components"
source = "custom"
source_address = "ua-osaka-01.example:8080"
[update_agent]
program_and_hotfix = true
address = "ua-osaka-02.example:8080"
[server]
address = "product-server.example:443"
"#;

const FULL_JSON: &str = r#"
  {"version": "14.0.12737", "role": "update_agent",
   "license": {"expires": "2027-03-31"},
   "update": {"permission": "all_components", "source": "custom",
              "source_address": "ua-osaka-01.example:8080"},
   "update_agent": {"program_and_hotfix": true, "address": "ua-osaka-02.example:8080"},
   "server": {"address": "product-server.example:443"}}
"#;

fn message<T: std::fmt::Debug>(result: Result<T, ProductError>) -> String {
    result.expect_err("an error").to_string()
}

#[test]
fn toml_and_json_read_alike() {
    for text in [FULL_TOML, FULL_JSON] {
        let doc = ProductDoc::parse(text);
        assert_eq!(doc.read_error(), None);
        assert_eq!(doc.version().expect("version"), "14.0.12737");
        assert_eq!(doc.role().expect("role"), ProductRole::UpdateAgent);
        assert_eq!(
            doc.license_expires().expect("expires"),
            time::macros::date!(2027 - 03 - 31)
        );
        assert_eq!(
            doc.update_permission().expect("permission"),
            UpdatePermission::AllComponents
        );
        assert_eq!(
            doc.update_source().expect("source"),
            UpdateSource {
                kind: UpdateSourceKind::Custom,
                address: Some("ua-osaka-01.example:8080".to_string()),
            }
        );
        assert_eq!(
            doc.update_agent().expect("update agent"),
            Some(UpdateAgentSettings {
                program_and_hotfix: true,
                address: Some("ua-osaka-02.example:8080".to_string()),
            })
        );
        assert_eq!(doc.server_address().expect("server"), "product-server.example:443");
    }
}

#[test]
fn summary_carries_every_known_field() {
    let summary = to_summary(&ProductDoc::parse(FULL_TOML));
    assert_eq!(summary.version, "14.0.12737");
    assert_eq!(summary.role, proto::Role::UpdateAgent as i32);
    assert_eq!(summary.update_source, "custom");
    assert_eq!(summary.source_address, "ua-osaka-01.example:8080");
    assert_eq!(summary.update_agent_address, "ua-osaka-02.example:8080");
    assert!(summary.program_and_hotfix);
    assert_eq!(summary.update_permission, "all_components");
    assert_eq!(summary.license_expires, "2027-03-31");
    assert_eq!(summary.server_address, "product-server.example:443");
    assert_eq!(summary.read_error, "");
}

#[test]
fn summary_of_a_partly_broken_document_keeps_the_good_fields() {
    let doc = ProductDoc::parse("version = 14\n[update]\npermission = \"all_components\"\n");
    let summary = to_summary(&doc);
    assert_eq!(summary.version, "");
    assert_eq!(summary.update_permission, "all_components");
    assert_eq!(summary.role, proto::Role::Endpoint as i32);
    assert_eq!(summary.read_error, "");
}

#[test]
fn summary_of_an_unreadable_document_has_only_the_read_error() {
    let summary = to_summary(&ProductDoc::unreadable("state_command exited with 3"));
    assert!(summary.read_error.contains("exited with 3"));
    assert_eq!(summary.version, "");
}

#[test]
fn a_toml_date_literal_and_a_datetime_are_accepted_for_the_expiry() {
    let doc = ProductDoc::parse("[license]\nexpires = 2027-03-31\n");
    assert_eq!(
        doc.license_expires().expect("date"),
        time::macros::date!(2027 - 03 - 31)
    );
    let doc = ProductDoc::parse(r#"{"license": {"expires": "2027-03-31T00:00:00Z"}}"#);
    assert_eq!(
        doc.license_expires().expect("date"),
        time::macros::date!(2027 - 03 - 31)
    );
}

#[test]
fn missing_fields_are_named() {
    let doc = ProductDoc::parse("");
    assert_eq!(
        message(doc.license_expires()),
        "product state: license.expires is missing"
    );
    assert_eq!(message(doc.version()), "product state: version is missing");
    assert!(message(doc.update_permission()).contains("update.permission is missing"));
    assert!(message(doc.update_source()).contains("update.source is missing"));
    assert!(message(doc.server_address()).contains("server.address is missing"));
    // An endpoint without a role is an endpoint, with no update-agent settings.
    assert_eq!(doc.role().expect("role"), ProductRole::Endpoint);
    assert_eq!(doc.update_agent().expect("none"), None);
}

#[test]
fn custom_source_needs_an_address() {
    let doc = ProductDoc::parse("[update]\nsource = \"custom\"\n");
    let error = message(doc.update_source());
    assert!(error.contains("update.source_address"), "{error}");
    let doc = ProductDoc::parse("[update]\nsource = \"custom\"\nsource_address = \"  \"\n");
    assert_eq!(
        message(doc.update_source()),
        "product state: update.source_address: is empty"
    );
}

#[test]
fn an_update_agent_needs_its_program_and_hotfix_setting() {
    let doc = ProductDoc::parse("role = \"update_agent\"\n");
    assert_eq!(
        message(doc.update_agent()),
        "product state: update_agent.program_and_hotfix is missing"
    );
    let doc = ProductDoc::parse("role = \"update_agent\"\n[update_agent]\nprogram_and_hotfix = \"yes\"\n");
    assert_eq!(
        message(doc.update_agent()),
        "product state: update_agent.program_and_hotfix must be a boolean, found a string"
    );
}

#[test]
fn wrong_types_are_named_with_what_was_found() {
    let doc = ProductDoc::parse(
        r#"{"version": 14.0, "license": "2027-03-31", "update": {"permission": ["all_components"]},
            "server": {"address": null}}"#,
    );
    assert_eq!(
        message(doc.version()),
        "product state: version must be a string, found a float"
    );
    assert_eq!(
        message(doc.license_expires()),
        "product state: license must be a table, found a string"
    );
    assert_eq!(
        message(doc.update_permission()),
        "product state: update.permission must be a string, found an array"
    );
    assert_eq!(
        message(doc.server_address()),
        "product state: server.address must be a string, found null"
    );
}

#[test]
fn unknown_enum_values_list_the_allowed_ones() {
    let doc = ProductDoc::parse("role = \"relay\"\n[update]\npermission = \"all\"\nsource = \"nearby\"\n");
    assert_eq!(
        message(doc.update_permission()),
        "product state: update.permission: \"all\" is not one of all_components, pattern_files, pattern_engine_driver"
    );
    assert!(message(doc.update_source()).contains("\"nearby\" is not one of standard, custom"));
    assert!(message(doc.role()).contains("\"relay\" is not one of endpoint, update_agent"));
    // The role is broken, so is everything that depends on it; nothing else.
    assert!(doc.update_agent().is_err());
}

#[test]
fn bad_values_are_named() {
    let doc = ProductDoc::parse("version = \"14.0.x\"\n[license]\nexpires = \"next year\"\n[server]\naddress = \"\"\n");
    let error = message(doc.version());
    assert!(error.starts_with("product state: version: "), "{error}");
    assert!(error.contains("14.0.x"), "{error}");
    assert_eq!(
        message(doc.license_expires()),
        "product state: license.expires: \"next year\" is not a date (YYYY-MM-DD)"
    );
    assert!(
        ProductDoc::parse("[license]\nexpires = \"2027-02-30\"\n")
            .license_expires()
            .is_err()
    );
    assert_eq!(message(doc.server_address()), "product state: server.address: is empty");
}

#[test]
fn syntax_errors_make_the_whole_document_unreadable_with_one_line_messages() {
    for (text, format) in [
        ("version = \n", "TOML"),
        ("{\"version\": ", "JSON"),
        ("version = \"1\"\nversion = \"2\"\n", "TOML"),
    ] {
        let doc = ProductDoc::parse(text);
        let error = doc.read_error().expect("unreadable").to_string();
        assert!(error.contains(format), "{error}");
        assert!(!error.contains('\n'), "{error}");
        // Every field reports the same reason.
        assert_eq!(message(doc.version()), error);
    }
}

#[test]
fn a_json_document_must_be_an_object() {
    // Starts with `{` after whitespace is JSON; anything else is TOML.
    let doc = ProductDoc::parse("  [1, 2]");
    assert!(doc.read_error().is_some());
    let doc = ProductDoc::parse("\u{feff}{\"version\": \"1.2\"}");
    assert_eq!(doc.version().expect("bom stripped"), "1.2");
}

#[test]
fn invalid_utf8_is_refused() {
    let doc = ProductDoc::from_bytes(b"version = \"14.0\xff\"\n");
    assert_eq!(doc.read_error(), Some(&ProductError::NotUtf8 { valid_up_to: 15 }));
}

#[test]
fn huge_documents_are_refused_before_parsing() {
    let mut text = String::from("version = \"1\"\n# ");
    text.push_str(&"x".repeat(MAX_DOCUMENT_BYTES));
    let doc = ProductDoc::parse(&text);
    assert_eq!(
        doc.read_error(),
        Some(&ProductError::TooLarge {
            limit: MAX_DOCUMENT_BYTES
        })
    );
    let doc = ProductDoc::from_bytes(text.as_bytes());
    assert!(matches!(doc.read_error(), Some(ProductError::TooLarge { .. })));
}

#[test]
fn deeply_nested_documents_are_refused_without_overflowing_the_stack() {
    // Each of these would recurse hundreds of thousands of levels in a parser.
    let levels = 200_000;
    let hostile = [
        format!("{{\"a\": {}", "[".repeat(levels)),
        "{\"a\":".repeat(levels),
        format!("a = {}", "[".repeat(levels)),
        format!("a = {}", "{b = ".repeat(levels)),
        format!("{}= 1\n", "a.".repeat(levels)),
        format!("[{}a]\n", "a.".repeat(levels)),
        format!("a = '''x''''\nb = {}", "[".repeat(levels)),
        format!("a = \"x\\\nb = {}", "[".repeat(levels)),
    ];
    for text in hostile {
        let doc = ProductDoc::parse(&text);
        assert_eq!(
            doc.read_error(),
            Some(&ProductError::TooDeep {
                limit: MAX_NESTING_DEPTH
            }),
            "{}",
            &text[..40]
        );
    }
}

#[test]
fn moderately_nested_unknown_fields_are_fine() {
    let doc = ProductDoc::parse("version = \"1.0\"\n[vendor.extra.deep]\nlist = [[1, 2], [3, {a = 1}]]\n");
    assert_eq!(doc.read_error(), None);
    assert_eq!(doc.version().expect("version"), "1.0");
}

#[test]
fn an_assembled_document_reports_its_unreadable_fields_by_name() {
    let mut fields = toml::Table::new();
    fields.insert("version".to_string(), toml::Value::String("14.0.12737".to_string()));
    let unreadable = BTreeMap::from([(
        "server.address".to_string(),
        "HKLM\\SOFTWARE\\Example value Server not found".to_string(),
    )]);
    let doc = ProductDoc::assembled(fields, unreadable);
    assert_eq!(doc.version().expect("version"), "14.0.12737");
    assert_eq!(
        message(doc.server_address()),
        "product state: server.address could not be read: HKLM\\SOFTWARE\\Example value Server not found"
    );
    assert_eq!(
        message(doc.update_permission()),
        "product state: update.permission is missing"
    );
    let summary = to_summary(&doc);
    assert_eq!(summary.version, "14.0.12737");
    assert!(summary.server_address.is_empty() && summary.read_error.is_empty());
}
