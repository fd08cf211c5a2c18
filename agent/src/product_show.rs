//! `rollcall-agent product show`: what the product adapter finds on this
//! endpoint, field by field, with where each value came from and whether
//! the mapping marks that source as verified. The tool an admin runs on one
//! machine of each Apex One build before trusting a mapping fleet-wide.
//!
//! JSON output is stable: `{"adapter", "fields": [{"field", "value",
//! "source", "verified", "note", "error"}]}` (`verified` is null for the
//! file and command adapters, whose document speaks for itself). Exit code
//! 0 when the mapping (or document) could be read, whatever the fields
//! say; 1 when it could not be read or is invalid.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rollcall_common::i18n::{Catalog, Lang};
use rollcall_common::product::{Choice, ProductDoc, ProductError, format_date};
use serde_json::{Value, json};

use crate::config::{AgentConfig, ProductAdapter, ProductConfig};
use crate::product_source::{self, apex_one};

/// `rollcall-agent product …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ProductCommand {
    /// Print each product-state field the adapter finds, where it came from
    /// and whether the mapping marks that source verified.
    #[command(
        after_help = "Example:\n  rollcall-agent product show --config \"%ProgramData%\\rollcall\\agent.toml\" --output json"
    )]
    Show(ShowArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The agent configuration (`agent.toml`).
    #[arg(long, env = "ROLLCALL_AGENT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// How to print the fields.
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub output: ShowFormat,
    /// Language of the text (default: from LC_ALL, LC_MESSAGES or LANG); JSON is the same in both.
    #[arg(long, value_enum)]
    pub lang: Option<Lang>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
}

/// The contract's fields, in document order.
pub const CONTRACT_FIELDS: [&str; 16] = [
    "version",
    "role",
    "license.expires",
    "update.permission",
    "update.source",
    "update.source_address",
    "update_agent.program_and_hotfix",
    "update_agent.address",
    "server.address",
    "pattern.version",
    "pattern.date",
    "update.last_from",
    "update.last_at",
    "server.certificate_sha256",
    "upgrade.refused",
    "restart.pending",
];

/// One field as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownField {
    pub field: String,
    pub value: Option<Value>,
    pub source: String,
    /// `None` where the adapter has no notion of verification.
    pub verified: Option<bool>,
    pub note: Option<String>,
    pub error: Option<String>,
}

/// What `product show` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub adapter: String,
    /// The mapping file or the document could not be read at all.
    pub error: Option<String>,
    pub fields: Vec<ShownField>,
}

/// Runs a `product` subcommand.
pub async fn run(command: ProductCommand) -> anyhow::Result<ExitCode> {
    let ProductCommand::Show(args) = command;
    let config = AgentConfig::load(&args.config)?;
    let shown = show(&config.product, apex_one::registry::system()).await;
    let text = match args.output {
        ShowFormat::Json => {
            let mut text = serde_json::to_string_pretty(&to_json(&shown))?;
            text.push('\n');
            text
        }
        ShowFormat::Text => {
            let lang = args
                .lang
                .unwrap_or_else(|| Lang::from_env(|name| std::env::var(name).ok()));
            to_text(&shown, &Catalog::new(lang))
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("write to stdout")?;
    stdout.flush().context("write to stdout")?;
    if let Some(error) = &shown.error {
        eprintln!("error: {error}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the product state through the configured adapter, for showing.
pub async fn show(product: &ProductConfig, registry: Arc<dyn apex_one::Registry>) -> Shown {
    match product.effective_adapter() {
        Some(ProductAdapter::ApexOne) => show_apex_one(product, registry).await,
        Some(adapter @ (ProductAdapter::File | ProductAdapter::Command)) => {
            let source = match adapter {
                ProductAdapter::File => match &product.state_file {
                    Some(path) => format!("state_file {}", path.display()),
                    None => "state_file".to_string(),
                },
                _ => format!("state_command {:?}", product.state_command.clone().unwrap_or_default()),
            };
            let doc = product_source::load_with_registry(product, registry).await;
            if let Some(error) = doc.read_error() {
                return failed(adapter.as_str(), error.to_string());
            }
            let fields = contract_values(&doc)
                .into_iter()
                .map(|(field, outcome)| ShownField {
                    field: field.to_string(),
                    value: outcome.value,
                    source: source.clone(),
                    verified: None,
                    note: None,
                    error: outcome.error,
                })
                .collect();
            Shown {
                adapter: adapter.as_str().to_string(),
                error: None,
                fields,
            }
        }
        None => failed(
            "none",
            "no [product] adapter, state_file or state_command configured".to_string(),
        ),
    }
}

fn failed(adapter: &str, error: String) -> Shown {
    Shown {
        adapter: adapter.to_string(),
        error: Some(error),
        fields: Vec::new(),
    }
}

async fn show_apex_one(product: &ProductConfig, registry: Arc<dyn apex_one::Registry>) -> Shown {
    let adapter = ProductAdapter::ApexOne.as_str();
    let Some(mapping) = product.mapping.clone() else {
        return failed(adapter, "adapter = \"apex-one\" without a `mapping`".to_string());
    };
    let timeout = product_source::state_timeout(product);
    let resolved = match product_source::read_apex_one(mapping, registry, timeout).await {
        Ok(resolved) => resolved,
        Err(error) => return failed(adapter, error),
    };
    // What the checks will make of the values: a value that reads but is not
    // what the contract allows (a role of "2") is shown as that field's error.
    let doc = apex_one::document(&resolved);
    let judged: BTreeMap<&str, Outcome> = contract_values(&doc).into_iter().collect();
    let mut fields: Vec<ShownField> = resolved
        .iter()
        .map(|item| {
            let (value, error) = match &item.value {
                Ok(value) => (
                    Some(toml_to_json(value)),
                    judged
                        .get(item.field.as_str())
                        .and_then(|outcome| outcome.error.clone()),
                ),
                Err(error) => (None, Some(error.clone())),
            };
            ShownField {
                field: item.field.clone(),
                value,
                source: item.source.clone(),
                verified: Some(item.verified),
                note: item.note.clone(),
                error,
            }
        })
        .collect();
    for field in CONTRACT_FIELDS {
        if !resolved.iter().any(|item| item.field == field) {
            fields.push(ShownField {
                field: field.to_string(),
                value: None,
                source: "not in the mapping".to_string(),
                verified: Some(false),
                note: None,
                error: Some("not in the mapping: the checks report it missing".to_string()),
            });
        }
    }
    Shown {
        adapter: adapter.to_string(),
        error: None,
        fields,
    }
}

/// A TOML value as JSON; dates as their text (serde would expose toml's
/// private date encoding).
fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(text) => json!(text),
        toml::Value::Integer(number) => json!(number),
        toml::Value::Float(number) => json!(number),
        toml::Value::Boolean(flag) => json!(flag),
        toml::Value::Datetime(datetime) => json!(datetime.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(key, item)| (key.clone(), toml_to_json(item)))
                .collect(),
        ),
    }
}

/// A field's value as the checks read it, or the error about this field.
#[derive(Debug, Clone, Default)]
struct Outcome {
    value: Option<Value>,
    error: Option<String>,
}

/// Every contract field through the document's own accessors. An error is
/// shown on the field it names (a missing `update.source` is not repeated
/// on `update.source_address`).
fn contract_values(doc: &ProductDoc) -> Vec<(&'static str, Outcome)> {
    let source = doc.update_source();
    let update_agent = doc.update_agent();
    let mut outcomes: Vec<(&'static str, Result<Option<Value>, ProductError>)> = vec![
        ("version", doc.version().map(|version| Some(json!(version)))),
        ("role", doc.role().map(|role| Some(json!(role.as_str())))),
        (
            "license.expires",
            doc.license_expires().map(|date| Some(json!(format_date(date)))),
        ),
        (
            "update.permission",
            doc.update_permission()
                .map(|permission| Some(json!(permission.as_str()))),
        ),
        (
            "update.source",
            doc.update_source_kind().map(|kind| Some(json!(kind.as_str()))),
        ),
        (
            "update.source_address",
            source.map(|source| source.address.map(Value::from)),
        ),
        (
            "update_agent.program_and_hotfix",
            update_agent
                .clone()
                .map(|settings| settings.map(|settings| json!(settings.program_and_hotfix))),
        ),
        (
            "update_agent.address",
            update_agent.map(|settings| settings.and_then(|settings| settings.address).map(Value::from)),
        ),
        (
            "server.address",
            doc.server_address().map(|address| Some(json!(address))),
        ),
        (
            "pattern.version",
            doc.pattern_version().map(|text| text.map(Value::from)),
        ),
        ("pattern.date", doc.pattern_date().map(|text| text.map(Value::from))),
        (
            "update.last_from",
            doc.update_last_from().map(|text| text.map(Value::from)),
        ),
        (
            "update.last_at",
            doc.update_last_at().map(|seconds| seconds.map(Value::from)),
        ),
        (
            "server.certificate_sha256",
            doc.server_certificate_sha256().map(|text| text.map(Value::from)),
        ),
        (
            "upgrade.refused",
            doc.upgrade_refused().map(|text| text.map(Value::from)),
        ),
        (
            "restart.pending",
            doc.restart_pending().map(|text| text.map(Value::from)),
        ),
    ];
    outcomes
        .drain(..)
        .map(|(field, result)| {
            let outcome = match result {
                Ok(value) => Outcome { value, error: None },
                Err(error) if error_field(&error).is_none_or(|named| named == field) => Outcome {
                    value: None,
                    error: Some(error.to_string()),
                },
                Err(_) => Outcome::default(),
            };
            (field, outcome)
        })
        .collect()
}

/// The field an error is about, when it names one.
fn error_field(error: &ProductError) -> Option<&str> {
    match error {
        ProductError::Missing { field }
        | ProductError::WrongType { field, .. }
        | ProductError::NotAllowed { field, .. }
        | ProductError::Invalid { field, .. }
        | ProductError::FieldUnreadable { field, .. } => {
            // "update.source_address (required with …)" names update.source_address.
            Some(field.split(' ').next().unwrap_or(field))
        }
        _ => None,
    }
}

/// The stable JSON shape.
pub fn to_json(shown: &Shown) -> Value {
    let fields: Vec<Value> = shown
        .fields
        .iter()
        .map(|field| {
            json!({
                "field": field.field,
                "value": field.value,
                "source": field.source,
                "verified": field.verified,
                "note": field.note,
                "error": field.error,
            })
        })
        .collect();
    let unverified: Vec<&str> = shown
        .fields
        .iter()
        .filter(|field| field.verified == Some(false))
        .map(|field| field.field.as_str())
        .collect();
    let mut out = json!({ "adapter": shown.adapter, "fields": fields, "unverified": unverified });
    if let (Some(error), Some(map)) = (&shown.error, out.as_object_mut()) {
        map.insert("error".to_string(), json!(error));
    }
    out
}

/// For a person at the console, in the catalogue's words. Field names are
/// the contract's and sources are registry paths or files: data, shown as
/// they are; the adapter's error texts stay its own.
pub fn to_text(shown: &Shown, c: &Catalog) -> String {
    let mut out = c.tr_args("agent-show-adapter", &[("adapter", shown.adapter.clone())]);
    out.push('\n');
    if let Some(error) = &shown.error {
        out.push_str(&c.tr_args("agent-show-error", &[("error", error.clone())]));
        out.push('\n');
    }
    // Verified fields (and those of adapters without the notion) first; the
    // unverified ones apart, so an admin sees what to confirm before rollout.
    let (unverified, verified): (Vec<&ShownField>, Vec<&ShownField>) =
        shown.fields.iter().partition(|field| field.verified == Some(false));
    for (index, field) in verified.iter().chain(&unverified).enumerate() {
        if index == verified.len() && !unverified.is_empty() {
            out.push_str(&format!(
                "\n== {} ==\n",
                c.tr_args("agent-show-unverified", &[("count", unverified.len().to_string())])
            ));
        }
        out.push('\n');
        let headline = match (&field.error, &field.value) {
            (Some(error), _) => c.tr_args("agent-show-field-error", &[("error", error.clone())]),
            (None, Some(Value::String(text))) => text.clone(),
            (None, Some(value)) => value.to_string(),
            (None, None) => c.tr("agent-show-absent"),
        };
        out.push_str(&format!("{}: {headline}\n", field.field));
        // "  label:   value", labels padded to eight columns as always.
        let line = |key: &str, value: &str| format!("  {:<9} {value}\n", format!("{}:", c.tr(key)));
        out.push_str(&line("agent-show-source", &field.source));
        if let Some(verified) = field.verified {
            let answer = c.tr(if verified {
                "agent-show-verified-yes"
            } else {
                "agent-show-verified-no"
            });
            out.push_str(&line("agent-show-verified", &answer));
        }
        if let Some(note) = &field.note {
            out.push_str(&line(
                "agent-show-note",
                &note.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product_source::apex_one::{MemoryRegistry, RegValue};

    const AGENT_KEY: &str = r"HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion";

    fn apex_product(mapping: &std::path::Path) -> ProductConfig {
        ProductConfig {
            adapter: Some(ProductAdapter::ApexOne),
            mapping: Some(mapping.to_path_buf()),
            ..ProductConfig::default()
        }
    }

    fn field<'a>(shown: &'a Shown, name: &str) -> &'a ShownField {
        shown
            .fields
            .iter()
            .find(|field| field.field == name)
            .unwrap_or_else(|| panic!("{name} shown"))
    }

    #[tokio::test]
    async fn apex_one_fields_show_value_source_verification_and_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mapping = dir.path().join("apex-one.toml");
        std::fs::write(
            &mapping,
            format!(
                r#"
[version]
registry = {{ key = '{AGENT_KEY}', value = "ProgramVer" }}
verified = true
[role]
registry = {{ key = '{AGENT_KEY}', value = "Role" }}
note = "confirm with reg query"
[server.address]
registry = {{ key = '{AGENT_KEY}', value = "Server" }}
[license.expires]
fixed = 2027-03-31
"#
            ),
        )
        .expect("write");
        let mut registry = MemoryRegistry::new();
        registry
            .set(AGENT_KEY, "ProgramVer", RegValue::String("14.0.12737".to_string()))
            .set(AGENT_KEY, "Role", RegValue::String("master".to_string()));
        let shown = show(&apex_product(&mapping), Arc::new(registry)).await;
        assert_eq!(shown.adapter, "apex-one");
        assert_eq!(shown.error, None);
        let version = field(&shown, "version");
        assert_eq!(version.value, Some(json!("14.0.12737")));
        assert_eq!(version.source, format!("{AGENT_KEY} ProgramVer (REG_SZ)"));
        assert_eq!((version.verified, &version.error), (Some(true), &None));
        let role = field(&shown, "role");
        assert_eq!(role.value, Some(json!("master")));
        assert_eq!(role.verified, Some(false));
        assert_eq!(role.note.as_deref(), Some("confirm with reg query"));
        assert_eq!(
            role.error.as_deref(),
            Some("product state: role: \"master\" is not one of endpoint, update_agent")
        );
        let server = field(&shown, "server.address");
        assert_eq!(server.value, None);
        assert_eq!(server.error, Some(format!("{AGENT_KEY} Server: not found")));
        let license = field(&shown, "license.expires");
        assert_eq!(license.value, Some(json!("2027-03-31")));
        assert_eq!(license.source, "fixed in the mapping");
        let permission = field(&shown, "update.permission");
        assert_eq!(
            (&permission.source[..], permission.error.as_deref()),
            (
                "not in the mapping",
                Some("not in the mapping: the checks report it missing")
            )
        );
        assert_eq!(shown.fields.len(), CONTRACT_FIELDS.len());

        let json = to_json(&shown);
        assert_eq!(json["adapter"], "apex-one");
        assert_eq!(json["fields"][0]["field"], "version");
        assert_eq!(json["fields"][0]["verified"], true);
        let fields = json["fields"].as_array().expect("fields");
        let server_json = fields
            .iter()
            .find(|field| field["field"] == "server.address")
            .expect("server");
        assert!(server_json["error"].is_string() && server_json["value"].is_null());
        let license_json = fields
            .iter()
            .find(|field| field["field"] == "license.expires")
            .expect("license");
        assert_eq!(license_json["value"], "2027-03-31");
        // Every field has a source, a verified flag and a value or an error.
        for field in fields {
            assert!(field["source"].is_string() && field["verified"].is_boolean(), "{field}");
            assert!(
                field["value"].is_null() != field["error"].is_null() || field["error"].is_string(),
                "{field}"
            );
        }
        let unverified = json["unverified"].as_array().expect("unverified listed apart");
        assert!(unverified.contains(&json!("role")) && !unverified.contains(&json!("version")));
        let japanese = to_text(&shown, &Catalog::new(Lang::Ja));
        for words in [
            "アダプタ: ",
            "取得元:",
            "検証済み:",
            "いいえ(確認してください)",
            "== 未検証: ",
        ] {
            assert!(japanese.contains(words), "{words} missing:\n{japanese}");
        }
        for english in ["adapter:", "  source:", "verified:", "== unverified", "ERROR:"] {
            assert!(!japanese.contains(english), "{english} in:\n{japanese}");
        }
        let text = to_text(&shown, &Catalog::new(Lang::En));
        assert!(text.contains("version: 14.0.12737\n"), "{text}");
        assert!(text.contains("verified: no, confirm it"), "{text}");
        let apart = text.find("== unverified:").expect("an unverified section");
        assert!(
            text[..apart].contains("version: 14.0.12737") && text[apart..].contains("role: ERROR"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_invalid_mapping_is_the_whole_shows_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mapping = dir.path().join("apex-one.toml");
        std::fs::write(&mapping, "[versoin]\nfixed = \"1\"\n").expect("write");
        let shown = show(&apex_product(&mapping), Arc::new(MemoryRegistry::new())).await;
        let error = shown.error.expect("invalid mapping");
        assert!(error.contains("versoin") && error.contains("apex-one.toml"), "{error}");
        assert!(shown.fields.is_empty());
        assert_eq!(
            to_json(&Shown {
                error: Some(error),
                ..shown
            })["fields"],
            json!([])
        );
    }

    #[tokio::test]
    async fn file_documents_show_their_fields_once_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state.toml");
        std::fs::write(&state, "version = \"14.0.1\"\n[update]\nsource = \"custom\"\n").expect("write");
        let product = ProductConfig {
            state_file: Some(state.clone()),
            ..ProductConfig::default()
        };
        let shown = show(&product, Arc::new(MemoryRegistry::new())).await;
        assert_eq!(shown.adapter, "file");
        assert_eq!(field(&shown, "version").value, Some(json!("14.0.1")));
        assert_eq!(field(&shown, "version").verified, None);
        assert_eq!(
            field(&shown, "version").source,
            format!("state_file {}", state.display())
        );
        // The missing custom address is reported on its own field only.
        let address = field(&shown, "update.source_address");
        assert!(
            address
                .error
                .as_deref()
                .is_some_and(|error| error.contains("required with"))
        );
        assert_eq!(field(&shown, "update.source").error, None);
        assert_eq!(field(&shown, "update.source").value, Some(json!("custom")));
    }
}
