//! The Apex One mapping file: for each product-state field, where this
//! endpoint keeps it. Data rather than code because registry value and
//! `.ini` key names differ between Apex One builds, and an admin must be
//! able to correct one without a new rollcall release.
//!
//! The file mirrors the product-state contract (`[version]`, `[role]`,
//! `[license.expires]`, `[update.permission]`, `[update.source]`,
//! `[update.source_address]`, `[update_agent.program_and_hotfix]`,
//! `[update_agent.address]`, `[server.address]`); each field names exactly
//! one source:
//!
//! ```toml
//! [server.address]
//! registry = { key = 'HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion', value = "Server" }
//! port = { registry = { key = '…\CurrentVersion', value = "ServerPort" } }  # appended as host:port
//! verified = false
//! note = "confirm with: reg query …"
//! ```
//!
//! Sources: `registry = { key, value }`, `ini = { file, section, key }`
//! (a relative `file` is under `[install_dir]`), `uninstall = { display_name,
//! match = "exact"|"prefix", value = "DisplayVersion" }` (the Windows
//! uninstall entry), `fixed = <any TOML value>`. Optional per field:
//! `translate = { "1" = "update_agent" }` (raw value as text → document
//! value), `port` (address fields), `verified`, `note`. Unknown keys are
//! refused; everything is checked here, before any registry read.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::registry::KeyPath;

/// Largest mapping file accepted; the shipped one is a few kilobytes.
pub const MAX_MAPPING_BYTES: u64 = 256 * 1024;

/// Where Windows lists installed programs, 64-bit view first.
pub const DEFAULT_UNINSTALL_ROOTS: [&str; 2] = [
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
];

/// Most sources one field may list (its own plus `fallback`).
pub const MAX_SOURCES_PER_FIELD: usize = 8;

/// The document fields that hold `host:port` and so may take a `port`.
const ADDRESS_FIELDS: [&str; 3] = ["server.address", "update.source_address", "update_agent.address"];

// === the file as written ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    /// Where uninstall entries are searched (default: both Uninstall keys).
    #[serde(default)]
    uninstall_roots: Option<Vec<String>>,
    #[serde(default)]
    install_dir: Option<InstallDirSpec>,
    #[serde(default)]
    version: Option<FieldSpec>,
    #[serde(default)]
    role: Option<FieldSpec>,
    #[serde(default)]
    license: Option<LicenseSpec>,
    #[serde(default)]
    update: Option<UpdateSpec>,
    #[serde(default)]
    update_agent: Option<UpdateAgentSpec>,
    #[serde(default)]
    server: Option<ServerSpec>,
    #[serde(default)]
    pattern: Option<PatternSpec>,
    #[serde(default)]
    upgrade: Option<UpgradeSpec>,
    #[serde(default)]
    restart: Option<RestartSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    version: Option<FieldSpec>,
    date: Option<FieldSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeSpec {
    refused: Option<FieldSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartSpec {
    pending: Option<FieldSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseSpec {
    expires: Option<FieldSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSpec {
    permission: Option<FieldSpec>,
    source: Option<FieldSpec>,
    source_address: Option<FieldSpec>,
    last_from: Option<FieldSpec>,
    last_at: Option<FieldSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAgentSpec {
    program_and_hotfix: Option<FieldSpec>,
    address: Option<FieldSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSpec {
    address: Option<FieldSpec>,
    certificate_sha256: Option<FieldSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrySpec {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IniSpec {
    file: String,
    section: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UninstallSpec {
    display_name: String,
    #[serde(default, rename = "match")]
    name_match: NameMatch,
    #[serde(default = "default_uninstall_value")]
    value: String,
}

fn default_uninstall_value() -> String {
    "DisplayVersion".to_string()
}

/// How an uninstall entry's `DisplayName` is compared (case-insensitively).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameMatch {
    #[default]
    Exact,
    Prefix,
}

/// A file in (or under) the agent folder, by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    file: String,
}

/// The newest file matching `file` (one `*` in its last component), and its
/// last line containing `contains`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewestLineSpec {
    file: String,
    contains: String,
}

/// A registry key (or, with `value`, a value) that is there or not.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExistsSpec {
    key: String,
    value: Option<String>,
}

/// One source in a field's `fallback` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSpec {
    registry: Option<RegistrySpec>,
    ini: Option<IniSpec>,
    uninstall: Option<UninstallSpec>,
    fixed: Option<toml::Value>,
    file_sha256: Option<FileSpec>,
    newest_line: Option<NewestLineSpec>,
    exists: Option<ExistsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldSpec {
    registry: Option<RegistrySpec>,
    ini: Option<IniSpec>,
    uninstall: Option<UninstallSpec>,
    fixed: Option<toml::Value>,
    file_sha256: Option<FileSpec>,
    newest_line: Option<NewestLineSpec>,
    exists: Option<ExistsSpec>,
    /// Sources tried in order when the one above does not read.
    fallback: Option<Vec<SourceSpec>>,
    port: Option<PortSpec>,
    translate: Option<BTreeMap<String, toml::Value>>,
    #[serde(default)]
    verified: bool,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortSpec {
    registry: Option<RegistrySpec>,
    ini: Option<IniSpec>,
    fixed: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallDirSpec {
    registry: Option<RegistrySpec>,
    fixed: Option<String>,
    #[serde(default)]
    verified: bool,
    note: Option<String>,
}

// === the checked mapping ===

/// Where one value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Registry {
        key: KeyPath,
        value: String,
    },
    /// `file` absolute, or relative to the install directory.
    Ini {
        file: String,
        section: String,
        key: String,
    },
    /// The uninstall entry whose `DisplayName` matches; `value` of it.
    Uninstall {
        display_name: String,
        name_match: NameMatch,
        value: String,
    },
    Fixed(toml::Value),
    /// The SHA-256 of a file (lowercase hex); relative to the install directory.
    FileSha256 {
        file: String,
    },
    /// The newest file matching `file` (one `*` in its name), relative to
    /// the install directory, and its last line containing `contains`
    /// (empty text when it has none: "nothing refused").
    NewestLine {
        file: String,
        contains: String,
    },
    /// Whether a registry key (or one of its values) is present: its path
    /// when present; absent means "try the next source", and a field whose
    /// every source is an absent `exists` reads `false`.
    Exists {
        key: KeyPath,
        value: Option<String>,
    },
}

impl Source {
    /// A file this source reads relative to the install directory.
    fn relative_file(&self) -> Option<&str> {
        match self {
            Source::Ini { file, .. } | Source::FileSha256 { file } | Source::NewestLine { file, .. }
                if !is_absolute(file) =>
            {
                Some(file)
            }
            _ => None,
        }
    }
}

/// One document field and how to obtain it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Dotted document field: `server.address`.
    pub field: String,
    pub source: Source,
    /// Tried in order when `source` does not read; the first that reads wins.
    pub fallback: Vec<Source>,
    /// Appended as `host:port` (address fields only).
    pub port: Option<Source>,
    /// Raw value as text → document value.
    pub translate: Option<BTreeMap<String, toml::Value>>,
    /// The mapping's author confirmed this source on a real agent.
    pub verified: bool,
    pub note: Option<String>,
}

/// A checked mapping file.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub uninstall_roots: Vec<KeyPath>,
    /// The agent's install directory (a registry value or fixed), for
    /// relative `.ini` paths.
    pub install_dir: Option<Rule>,
    /// In document order.
    pub rules: Vec<Rule>,
}

impl Mapping {
    /// Reads (bounded) and checks a mapping file; errors name the file.
    pub fn load(path: &Path) -> anyhow::Result<Mapping> {
        let text = rollcall_common::files::read_bounded_utf8(path, MAX_MAPPING_BYTES)
            .with_context(|| format!("read the apex-one mapping {}", path.display()))?;
        Mapping::parse(&text).with_context(|| format!("parse the apex-one mapping {}", path.display()))
    }

    /// Parses and checks mapping text.
    pub fn parse(text: &str) -> anyhow::Result<Mapping> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let depth_limit = rollcall_common::product::MAX_NESTING_DEPTH;
        if rollcall_common::product::toml_depth_exceeds(text, depth_limit) {
            bail!("the mapping nests deeper than {depth_limit} levels");
        }
        let file: MappingFile = toml::from_str(text)?;
        file.check()
    }
}

impl MappingFile {
    fn check(self) -> anyhow::Result<Mapping> {
        let uninstall_roots = self
            .uninstall_roots
            .unwrap_or_else(|| DEFAULT_UNINSTALL_ROOTS.iter().map(|root| root.to_string()).collect())
            .iter()
            .map(|root| KeyPath::parse(root).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("uninstall_roots")?;
        let install_dir = self
            .install_dir
            .map(check_install_dir)
            .transpose()
            .context("[install_dir]")?;
        let mut specs: Vec<(&str, Option<FieldSpec>)> = vec![("version", self.version), ("role", self.role)];
        let license = self.license.map(|license| license.expires);
        specs.push(("license.expires", license.flatten()));
        let (permission, source, source_address, last_from, last_at) =
            self.update.map_or((None, None, None, None, None), |update| {
                (
                    update.permission,
                    update.source,
                    update.source_address,
                    update.last_from,
                    update.last_at,
                )
            });
        specs.extend([
            ("update.permission", permission),
            ("update.source", source),
            ("update.source_address", source_address),
            ("update.last_from", last_from),
            ("update.last_at", last_at),
        ]);
        let (program_and_hotfix, agent_address) = self
            .update_agent
            .map_or((None, None), |agent| (agent.program_and_hotfix, agent.address));
        specs.extend([
            ("update_agent.program_and_hotfix", program_and_hotfix),
            ("update_agent.address", agent_address),
        ]);
        let (server_address, certificate) = self
            .server
            .map_or((None, None), |server| (server.address, server.certificate_sha256));
        specs.extend([
            ("server.address", server_address),
            ("server.certificate_sha256", certificate),
        ]);
        let (pattern_version, pattern_date) = self
            .pattern
            .map_or((None, None), |pattern| (pattern.version, pattern.date));
        specs.extend([("pattern.version", pattern_version), ("pattern.date", pattern_date)]);
        specs.push(("upgrade.refused", self.upgrade.and_then(|upgrade| upgrade.refused)));
        specs.push(("restart.pending", self.restart.and_then(|restart| restart.pending)));
        let mut rules = Vec::new();
        for (field, spec) in specs {
            let Some(spec) = spec else { continue };
            let rule = check_field(field, spec).with_context(|| format!("[{field}]"))?;
            let relative = std::iter::once(&rule.source)
                .chain(&rule.fallback)
                .chain(rule.port.as_ref())
                .any(|source| source.relative_file().is_some());
            if install_dir.is_none() && relative {
                bail!("[{field}]: a relative file needs [install_dir] (or give an absolute path)");
            }
            rules.push(rule);
        }
        Ok(Mapping {
            uninstall_roots,
            install_dir,
            rules,
        })
    }
}

fn check_field(field: &str, spec: FieldSpec) -> anyhow::Result<Rule> {
    let source = one_source(SourceSpec {
        registry: spec.registry,
        ini: spec.ini,
        uninstall: spec.uninstall,
        fixed: spec.fixed,
        file_sha256: spec.file_sha256,
        newest_line: spec.newest_line,
        exists: spec.exists,
    })?;
    let fallback_specs = spec.fallback.unwrap_or_default();
    if fallback_specs.len() + 1 > MAX_SOURCES_PER_FIELD {
        bail!("at most {MAX_SOURCES_PER_FIELD} sources per field (its own and `fallback`)");
    }
    let fallback = fallback_specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| one_source(spec).with_context(|| format!("fallback[{index}]")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let port = match spec.port {
        None => None,
        Some(_) if !ADDRESS_FIELDS.contains(&field) => {
            bail!("`port` is only for address fields ({})", ADDRESS_FIELDS.join(", "))
        }
        Some(port) => Some(
            one_source(SourceSpec {
                registry: port.registry,
                ini: port.ini,
                uninstall: None,
                fixed: port.fixed,
                file_sha256: None,
                newest_line: None,
                exists: None,
            })
            .context("port")?,
        ),
    };
    if let Some(table) = &spec.translate
        && table.is_empty()
    {
        bail!("`translate` is empty");
    }
    Ok(Rule {
        field: field.to_string(),
        source,
        fallback,
        port,
        translate: spec.translate,
        verified: spec.verified,
        note: spec.note,
    })
}

fn check_install_dir(spec: InstallDirSpec) -> anyhow::Result<Rule> {
    let source = one_source(SourceSpec {
        registry: spec.registry,
        ini: None,
        uninstall: None,
        fixed: spec.fixed.map(toml::Value::String),
        file_sha256: None,
        newest_line: None,
        exists: None,
    })?;
    Ok(Rule {
        field: "install_dir".to_string(),
        source,
        fallback: Vec::new(),
        port: None,
        translate: None,
        verified: spec.verified,
        note: spec.note,
    })
}

/// Exactly one of the sources, checked.
fn one_source(spec: SourceSpec) -> anyhow::Result<Source> {
    let SourceSpec {
        registry,
        ini,
        uninstall,
        fixed,
        file_sha256,
        newest_line,
        exists,
    } = spec;
    let given = [
        registry.is_some(),
        ini.is_some(),
        uninstall.is_some(),
        fixed.is_some(),
        file_sha256.is_some(),
        newest_line.is_some(),
        exists.is_some(),
    ]
    .into_iter()
    .filter(|given| *given)
    .count();
    if given != 1 {
        bail!(
            "give exactly one source (registry, ini, uninstall, fixed, file_sha256, newest_line or exists), found {given}"
        );
    }
    let non_empty = |what: &str, text: &str| -> anyhow::Result<()> {
        if text.trim().is_empty() {
            bail!("{what} is empty");
        }
        Ok(())
    };
    if let Some(spec) = registry {
        // An empty value name is the key's default value: allowed.
        let key = KeyPath::parse(&spec.key).map_err(anyhow::Error::msg)?;
        return Ok(Source::Registry { key, value: spec.value });
    }
    if let Some(spec) = file_sha256 {
        non_empty("file_sha256.file", &spec.file)?;
        return Ok(Source::FileSha256 { file: spec.file });
    }
    if let Some(spec) = newest_line {
        non_empty("newest_line.file", &spec.file)?;
        non_empty("newest_line.contains", &spec.contains)?;
        let (folder, name) = split_file_name(&spec.file);
        if name.matches('*').count() != 1 || folder.contains('*') {
            bail!(
                "newest_line.file: the file name, and only it, must hold exactly one `*` (e.g. 'Temp\\upgrade_*.log')"
            );
        }
        return Ok(Source::NewestLine {
            file: spec.file,
            contains: spec.contains,
        });
    }
    if let Some(spec) = exists {
        let key = KeyPath::parse(&spec.key).map_err(anyhow::Error::msg)?;
        return Ok(Source::Exists { key, value: spec.value });
    }
    if let Some(spec) = ini {
        non_empty("ini.file", &spec.file)?;
        non_empty("ini.section", &spec.section)?;
        non_empty("ini.key", &spec.key)?;
        return Ok(Source::Ini {
            file: spec.file,
            section: spec.section,
            key: spec.key,
        });
    }
    if let Some(spec) = uninstall {
        non_empty("uninstall.display_name", &spec.display_name)?;
        non_empty("uninstall.value", &spec.value)?;
        return Ok(Source::Uninstall {
            display_name: spec.display_name,
            name_match: spec.name_match,
            value: spec.value,
        });
    }
    match fixed {
        Some(value) => Ok(Source::Fixed(value)),
        None => bail!("no source"),
    }
}

/// Absolute on Windows (`C:\…`, `\\server\share`) or on this platform.
/// `Temp\upgrade_*.log` as (`Temp\`, `upgrade_*.log`): the folder part
/// keeps its trailing separator (empty when there is none).
pub fn split_file_name(file: &str) -> (&str, &str) {
    match file.rfind(['\\', '/']) {
        Some(at) => (&file[..=at], &file[at + 1..]),
        None => ("", file),
    }
}

pub fn is_absolute(file: &str) -> bool {
    let bytes = file.as_bytes();
    let drive =
        bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/');
    drive || file.starts_with(r"\\") || Path::new(file).is_absolute()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!("{:#}", Mapping::parse(text).expect_err(text))
    }

    #[test]
    fn a_full_mapping_is_checked_into_rules_in_document_order() {
        let mapping = Mapping::parse(
            r#"
[install_dir]
registry = { key = 'HKLM\SOFTWARE\WOW6432Node\TrendMicro\PC-cillinNTCorp\CurrentVersion', value = "Application Path" }
[server.address]
ini = { file = "ofcscan.ini", section = "INI_SERVER_SECTION", key = "Master_DomainName" }
port = { fixed = 8080 }
[version]
uninstall = { display_name = "Trend Micro Apex One", match = "prefix" }
verified = true
note = "Windows' own record"
[license.expires]
fixed = 2027-03-31
"#,
        )
        .expect("mapping");
        let fields: Vec<&str> = mapping.rules.iter().map(|rule| rule.field.as_str()).collect();
        assert_eq!(fields, ["version", "license.expires", "server.address"]);
        assert_eq!(mapping.uninstall_roots.len(), 2);
        assert!(mapping.rules[0].verified && !mapping.rules[2].verified);
        assert_eq!(
            mapping.rules[0].source,
            Source::Uninstall {
                display_name: "Trend Micro Apex One".to_string(),
                name_match: NameMatch::Prefix,
                value: "DisplayVersion".to_string(),
            }
        );
    }

    #[test]
    fn mistakes_are_refused_with_the_field_named() {
        assert!(error("[versoin]\nfixed = \"1\"\n").contains("versoin"));
        assert!(error("[version]\nfixed = \"1\"\nverifed = true\n").contains("verifed"));
        assert!(error("[version]\nverified = true\n").contains("[version]: give exactly one source"));
        assert!(error("[version]\nfixed = \"1\"\nregistry = { key = 'HKLM\\x', value = 'v' }\n").contains("found 2"));
        assert!(error("[role]\nregistry = { key = 'HKU\\x', value = 'v' }\n").contains("must start with HKLM"));
        assert!(error("[role]\nfixed = \"endpoint\"\nport = { fixed = 1 }\n").contains("only for address fields"));
        assert!(error("[role]\nfixed = \"1\"\ntranslate = {}\n").contains("`translate` is empty"));
        assert!(
            error("[server.address]\nini = { file = 'ofcscan.ini', section = 's', key = 'k' }\n")
                .contains("needs [install_dir]")
        );
        assert!(error("[server.address]\nini = { file = 'a.ini', section = '', key = 'k' }\n").contains("ini.section"));
    }

    #[test]
    fn absolute_paths_are_recognised_in_windows_spelling() {
        for absolute in [r"C:\ProgramData\x.ini", "d:/x.ini", r"\\server\share\x.ini"] {
            assert!(is_absolute(absolute), "{absolute}");
        }
        for relative in ["ofcscan.ini", r"sub\ofcscan.ini", "C:x.ini"] {
            assert!(!is_absolute(relative), "{relative}");
        }
    }

    #[test]
    fn a_huge_mapping_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("apex-one.toml");
        std::fs::write(&path, "#".repeat(MAX_MAPPING_BYTES as usize + 1)).expect("write");
        let error = format!("{:#}", Mapping::load(&path).expect_err("huge"));
        assert!(
            error.contains("larger than") && error.contains("apex-one.toml"),
            "{error}"
        );
    }
}
