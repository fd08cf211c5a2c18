//! The fleet policy: what the runbook's checks compare an endpoint against
//! (license warning window, required update permission, intended update
//! sources, required certificates, connectivity timeout, system minimums).
//!
//! An admin writes it as TOML; the coordinator sends that text to every
//! agent. It is parsed once, with unknown keys refused everywhere (a typo must
//! not silently disable a check), and validated into the checked [`Policy`]
//! the checks read. Every section is optional; [`Policy::default`] is what an
//! empty file means. Serializing a `Policy` writes every effective value, so
//! showing it again shows the defaults too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::product::{ServiceAddress, UpdatePermission, UpdateSourceKind};
use crate::version;

mod server_facts;
pub use server_facts::ServerFacts;

/// Largest policy text accepted.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Why a policy was refused; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy: {0}")]
    Syntax(String),
    #[error("policy: {key}: {detail}")]
    Invalid { key: String, detail: String },
    /// Values still to fill in (`"<…>"`, as deploy/examples/policy.toml
    /// ships them), each named by its key.
    #[error("policy: fill in these values first (they are still \"<…>\" placeholders): {}", .0.join(", "))]
    Placeholders(Vec<String>),
}

/// The placeholders deploy/examples/policy.toml ships, each with a value of
/// the right form (what the tests and the docs fill in).
pub const EXAMPLE_PLACEHOLDERS: &[(&str, &str)] = &[
    ("<host:port of the osaka update agent>", "ua-osaka-01.example:8080"),
    (
        "<URL of the nagoya branch update agent>",
        "http://ua-nagoya-01.example:8080",
    ),
    (
        "<SHA-256 of your code-signing root CA>",
        "3E:9A:8B:2C:11:0F:44:D5:6E:7A:90:1B:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:7D:8E:9F:A0:B1:C2:D3:E4:F5",
    ),
    (
        "<SHA-256 of your code-signing intermediate CA>",
        "5d0c7e2a9b4f13c8e6a1d2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7",
    ),
];

/// The example policy with [`EXAMPLE_PLACEHOLDERS`] filled in.
pub fn fill_example(text: &str) -> String {
    EXAMPLE_PLACEHOLDERS
        .iter()
        .fold(text.to_string(), |text, (placeholder, value)| {
            text.replace(placeholder, value)
        })
}

/// A value left as the example ships it: `"<…>"`.
fn is_placeholder(text: &str) -> bool {
    let text = text.trim();
    text.len() > 2 && text.starts_with('<') && text.ends_with('>')
}

/// The keys (`certificates.required[0].sha256`) whose values are
/// placeholders, in document order.
pub fn placeholders(value: &toml::Value, key: &str, found: &mut Vec<String>) {
    match value {
        toml::Value::String(text) if is_placeholder(text) => found.push(key.to_string()),
        toml::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                placeholders(item, &format!("{key}[{index}]"), found);
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table {
                let path = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                placeholders(item, &path, found);
            }
        }
        _ => {}
    }
}

fn invalid(key: impl Into<String>, detail: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        key: key.into(),
        detail: detail.into(),
    }
}

// === checked policy ===

/// A validated fleet policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyFile", into = "PolicyFile")]
pub struct Policy {
    offline_after: Duration,
    clock_skew_warn: Duration,
    update_now_window: Duration,
    license: LicensePolicy,
    update_permission: UpdatePermissionPolicy,
    update_sources: Vec<ExpectedSource>,
    certificates: CertificatePolicy,
    connectivity: ConnectivityPolicy,
    system_requirements: SystemRequirements,
    /// Facts from the product server, by label (`server_facts.rs`).
    server_facts: Vec<ServerFacts>,
    /// What the coordinator's diagnosis reads beyond the checks.
    diagnosis: DiagnosisPolicy,
}

/// `[diagnosis]`: the coordinator's reading of what agents report beyond
/// their checks (docs/PRODUCT_STATE.md, "Signals").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosisPolicy {
    /// A pattern date or last update within this long counts as "patterns
    /// arrive" (runbook step 2's inference).
    pub pattern_window: Duration,
    /// The SHA-256 of the server certificate (Apex One's OfcNTCer.dat) agents
    /// must hold; without it, the fleet's majority is the reference.
    pub server_certificate_sha256: Option<String>,
}

impl Default for DiagnosisPolicy {
    fn default() -> Self {
        DiagnosisPolicy {
            pattern_window: DEFAULT_PATTERN_WINDOW,
            server_certificate_sha256: None,
        }
    }
}

/// Runbook step 2's inference window: a week, a pattern release cadence
/// with room (Trend Micro releases patterns several times a day).
pub const DEFAULT_PATTERN_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runbook step 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensePolicy {
    /// Warn when the license expires within this many days.
    pub warn_days: u32,
}

/// Runbook step 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePermissionPolicy {
    pub required: UpdatePermission,
}

/// Runbook step 3: one `[[update_source.expected]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSource {
    /// Labels an endpoint must carry for this entry to apply; empty matches all.
    pub match_labels: BTreeMap<String, String>,
    pub source: UpdateSourceKind,
    /// With `Custom`: the intended address; `None` accepts any custom source.
    pub address: Option<String>,
}

impl ExpectedSource {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }
}

/// Runbook step 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePolicy {
    /// Trust store relative to the host root; `None` tries the usual places.
    pub store: Option<PathBuf>,
    pub required: Vec<RequiredCertificate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredCertificate {
    pub name: String,
    /// SHA-256 of the certificate's DER encoding.
    pub sha256: Option<[u8; 32]>,
    /// SHA-1 of the DER: the thumbprint Windows' certificate manager shows
    /// (e.g. VeriSign Class 3 Public Primary Certification Authority - G5,
    /// `4eb6d578499b1ccf5f581ead56be3d9b6744a5e5`). At least one of the two.
    pub sha1: Option<[u8; 20]>,
}

impl RequiredCertificate {
    /// `AB:CD:…`, the way certificate viewers show fingerprints (the
    /// SHA-256 one; empty when only a thumbprint is given).
    pub fn fingerprint(&self) -> String {
        self.sha256
            .map(|sha256| format_fingerprint(&sha256))
            .unwrap_or_default()
    }

    /// The SHA-1 thumbprint as Windows shows it (lowercase hex), if given.
    pub fn thumbprint(&self) -> Option<String> {
        self.sha1.map(hex::encode)
    }
}

/// Runbook step 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectivityPolicy {
    /// Bound on resolving, connecting and the TLS handshake, per target.
    pub timeout: Duration,
}

/// Runbook step 6. Empty lists and `None` mean "no constraint".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemRequirements {
    /// Normalised names (see [`normalize_arch`]).
    pub arch: Vec<String>,
    pub min_free_disk_mb: Option<u64>,
    pub min_memory_mb: Option<u64>,
    pub os: Vec<OsRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRequirement {
    /// os-release `ID`, lowercase.
    pub id: String,
    /// Lowest os-release `VERSION_ID` (Windows: `major.minor.build.UBR`),
    /// a dotted number.
    pub min_version: Option<String>,
    /// Lowest OS build number (Windows' `CurrentBuildNumber`, e.g. 19045
    /// for Windows 10 22H2): the update level newer code signing needs.
    pub min_build: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            offline_after: DEFAULT_OFFLINE_AFTER,
            clock_skew_warn: DEFAULT_CLOCK_SKEW_WARN,
            update_now_window: DEFAULT_UPDATE_NOW_WINDOW,
            license: LicensePolicy {
                warn_days: DEFAULT_WARN_DAYS,
            },
            update_permission: UpdatePermissionPolicy {
                required: UpdatePermission::AllComponents,
            },
            update_sources: Vec::new(),
            certificates: CertificatePolicy {
                store: None,
                required: Vec::new(),
            },
            connectivity: ConnectivityPolicy {
                timeout: DEFAULT_CONNECT_TIMEOUT,
            },
            system_requirements: SystemRequirements::default(),
            server_facts: Vec::new(),
            diagnosis: DiagnosisPolicy::default(),
        }
    }
}

const DEFAULT_OFFLINE_AFTER: Duration = Duration::from_secs(10 * 60);
const DEFAULT_CLOCK_SKEW_WARN: Duration = Duration::from_secs(5 * 60);
const DEFAULT_UPDATE_NOW_WINDOW: Duration = Duration::from_secs(30 * 60);
const DEFAULT_WARN_DAYS: u32 = 30;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

impl Policy {
    /// Parses and validates policy text; errors name the offending key.
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::Syntax(format!(
                "larger than the limit of {MAX_POLICY_BYTES} bytes"
            )));
        }
        // The policy travels over the network: same stack guard as the
        // product document.
        if crate::product::toml_depth_exceeds(text, crate::product::MAX_NESTING_DEPTH) {
            return Err(PolicyError::Syntax(format!(
                "nests deeper than {} levels",
                crate::product::MAX_NESTING_DEPTH
            )));
        }
        // Placeholders first, all of them, so an admin applying the example
        // as shipped learns every value to fill in at once.
        if text.contains('<')
            && let Ok(document) = text.parse::<toml::Table>()
        {
            let mut found = Vec::new();
            placeholders(&toml::Value::Table(document), "", &mut found);
            if !found.is_empty() {
                return Err(PolicyError::Placeholders(found));
            }
        }
        let file: PolicyFile = toml::from_str(text).map_err(|error| PolicyError::Syntax(describe(text, &error)))?;
        Policy::try_from(file)
    }

    /// The policy as TOML, every effective value written out.
    pub fn to_toml_string(&self) -> Result<String, PolicyError> {
        toml::to_string(&PolicyFile::from(self.clone()))
            .map_err(|error| PolicyError::Syntax(format!("cannot be written as TOML: {error}")))
    }

    /// How long without contact before the coordinator calls an agent offline.
    pub fn offline_after(&self) -> Duration {
        self.offline_after
    }

    /// How far an agent's clock may be off the coordinator's before the
    /// agent is flagged (`clock_skew_flagged`).
    pub fn clock_skew_warn(&self) -> Duration {
        self.clock_skew_warn
    }

    /// How long after an Update Now a report at the target version still
    /// counts as that Update Now having helped (runbook step 8).
    pub fn update_now_window(&self) -> Duration {
        self.update_now_window
    }

    pub fn license(&self) -> &LicensePolicy {
        &self.license
    }

    pub fn update_permission(&self) -> &UpdatePermissionPolicy {
        &self.update_permission
    }

    /// Every `[[update_source.expected]]` entry, in order.
    pub fn update_sources(&self) -> &[ExpectedSource] {
        &self.update_sources
    }

    /// The first expected update source whose `match` labels the endpoint
    /// carries; `None` when the policy says nothing for these labels.
    pub fn expected_update_source(&self, labels: &BTreeMap<String, String>) -> Option<&ExpectedSource> {
        self.update_sources.iter().find(|expected| expected.matches(labels))
    }

    /// The first `[[server_facts]]` entry (and its index) whose `match`
    /// labels the endpoint carries.
    pub fn server_facts_for(&self, labels: &BTreeMap<String, String>) -> Option<(usize, &ServerFacts)> {
        self.server_facts
            .iter()
            .enumerate()
            .find(|(_, facts)| facts.matches(labels))
    }

    pub fn certificates(&self) -> &CertificatePolicy {
        &self.certificates
    }

    pub fn connectivity(&self) -> &ConnectivityPolicy {
        &self.connectivity
    }

    pub fn system_requirements(&self) -> &SystemRequirements {
        &self.system_requirements
    }

    pub fn diagnosis(&self) -> &DiagnosisPolicy {
        &self.diagnosis
    }
}

/// One line naming the key: toml's messages name unknown keys but not the
/// key whose value is wrong, and its Display spans several lines.
fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    let Some(start) = error.span().map(|span| span.start) else {
        return message;
    };
    let Some(before) = text.get(..start) else {
        return message;
    };
    let line_number = before.matches('\n').count() + 1;
    match key_at(text, start) {
        Some(key) => format!("{key}: {message} (line {line_number})"),
        None => format!("{message} (line {line_number})"),
    }
}

/// The dotted key written on the line holding `offset`, prefixed with the
/// table header in force (`license.warn_days`), when the line has a `key =`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |index| index + 1);
    let line = text.get(line_start..)?.lines().next()?;
    let key = line.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let header = text
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|earlier| earlier.starts_with('['))
        .map(|header| header.trim_matches(|character| character == '[' || character == ']'));
    Some(match header {
        Some(header) => format!("{header}.{key}"),
        None => key.to_string(),
    })
}

// === the file form ===

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    offline_after: Option<Duration>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    clock_skew_warn: Option<Duration>,
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    update_now_window: Option<Duration>,
    #[serde(default)]
    license: LicenseFile,
    #[serde(default)]
    update_permission: UpdatePermissionFile,
    #[serde(default)]
    update_source: UpdateSourceFile,
    #[serde(default)]
    certificates: CertificatesFile,
    #[serde(default)]
    connectivity: ConnectivityFile,
    #[serde(default)]
    system_requirements: SystemRequirementsFile,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    server_facts: Vec<server_facts::ServerFactsFile>,
    #[serde(default)]
    diagnosis: DiagnosisFile,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiagnosisFile {
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pattern_window: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_certificate_sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warn_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePermissionFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    required: Option<UpdatePermission>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSourceFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expected: Vec<ExpectedSourceFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedSourceFile {
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    match_labels: BTreeMap<String, String>,
    source: UpdateSourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificatesFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    required: Vec<RequiredCertificateFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequiredCertificateFile {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectivityFile {
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemRequirementsFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    arch: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_free_disk_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    os: Vec<OsRequirementFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OsRequirementFile {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_build: Option<u64>,
}

// === validation: file form -> checked policy ===

impl TryFrom<PolicyFile> for Policy {
    type Error = PolicyError;

    fn try_from(file: PolicyFile) -> Result<Policy, PolicyError> {
        let defaults = Policy::default();
        let offline_after = file.offline_after.unwrap_or(defaults.offline_after);
        if offline_after < Duration::from_secs(1) {
            return Err(invalid("offline_after", "must be at least 1s"));
        }
        let clock_skew_warn = file.clock_skew_warn.unwrap_or(DEFAULT_CLOCK_SKEW_WARN);
        if clock_skew_warn < Duration::from_secs(1) {
            return Err(invalid("clock_skew_warn", "must be at least 1s"));
        }
        let update_now_window = file.update_now_window.unwrap_or(DEFAULT_UPDATE_NOW_WINDOW);
        if update_now_window < Duration::from_secs(1) || update_now_window > Duration::from_secs(7 * 24 * 3600) {
            return Err(invalid("update_now_window", "must be between 1s and 7d"));
        }
        let warn_days = file.license.warn_days.unwrap_or(DEFAULT_WARN_DAYS);
        if warn_days > 3650 {
            return Err(invalid("license.warn_days", "must be at most 3650"));
        }
        let timeout = file.connectivity.timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(60) {
            return Err(invalid("connectivity.timeout", "must be between 100ms and 60s"));
        }
        Ok(Policy {
            offline_after,
            clock_skew_warn,
            update_now_window,
            license: LicensePolicy { warn_days },
            update_permission: UpdatePermissionPolicy {
                required: file
                    .update_permission
                    .required
                    .unwrap_or(UpdatePermission::AllComponents),
            },
            update_sources: validate_sources(file.update_source.expected)?,
            certificates: validate_certificates(file.certificates)?,
            connectivity: ConnectivityPolicy { timeout },
            system_requirements: validate_system(file.system_requirements)?,
            server_facts: server_facts::validate(file.server_facts)?,
            diagnosis: validate_diagnosis(file.diagnosis)?,
        })
    }
}

fn validate_diagnosis(file: DiagnosisFile) -> Result<DiagnosisPolicy, PolicyError> {
    let pattern_window = file.pattern_window.unwrap_or(DEFAULT_PATTERN_WINDOW);
    if pattern_window < Duration::from_secs(3600) || pattern_window > Duration::from_secs(365 * 24 * 3600) {
        return Err(invalid("diagnosis.pattern_window", "must be between 1h and 365d"));
    }
    let server_certificate_sha256 = match file.server_certificate_sha256 {
        None => None,
        // Lowercase hex without colons, as agents report it.
        Some(text) => {
            Some(hex::encode(parse_fingerprint(&text).map_err(|detail| {
                invalid("diagnosis.server_certificate_sha256", detail)
            })?))
        }
    };
    Ok(DiagnosisPolicy {
        pattern_window,
        server_certificate_sha256,
    })
}

fn validate_sources(entries: Vec<ExpectedSourceFile>) -> Result<Vec<ExpectedSource>, PolicyError> {
    let mut checked = Vec::with_capacity(entries.len());
    let mut catch_all: Option<usize> = None;
    for (index, entry) in entries.into_iter().enumerate() {
        let key = format!("update_source.expected[{index}]");
        if let Some(first) = catch_all {
            // First match wins, so nothing after a catch-all is ever used.
            return Err(invalid(
                key,
                format!("can never match: update_source.expected[{first}] has no `match` and matches every endpoint"),
            ));
        }
        if entry.match_labels.keys().any(|label| label.trim().is_empty()) {
            return Err(invalid(format!("{key}.match"), "label names must not be empty"));
        }
        let address = match (entry.source, entry.address) {
            (UpdateSourceKind::Standard, Some(_)) => {
                return Err(invalid(format!("{key}.address"), "only a custom source has an address"));
            }
            (_, Some(address)) => {
                ServiceAddress::parse(&address)
                    .map_err(|error| invalid(format!("{key}.address"), error.to_string()))?;
                Some(address.trim().to_string())
            }
            (_, None) => None,
        };
        if entry.match_labels.is_empty() {
            catch_all = Some(index);
        }
        checked.push(ExpectedSource {
            match_labels: entry.match_labels,
            source: entry.source,
            address,
        });
    }
    Ok(checked)
}

fn validate_certificates(file: CertificatesFile) -> Result<CertificatePolicy, PolicyError> {
    let store = file.store.map(|store| relative_store_path(&store)).transpose()?;
    let mut seen = BTreeSet::new();
    let mut required = Vec::with_capacity(file.required.len());
    for (index, entry) in file.required.into_iter().enumerate() {
        let key = format!("certificates.required[{index}]");
        let name = entry.name.trim().to_string();
        if name.is_empty() {
            return Err(invalid(format!("{key}.name"), "must not be empty"));
        }
        let sha256 = entry
            .sha256
            .as_deref()
            .map(parse_fingerprint)
            .transpose()
            .map_err(|detail| invalid(format!("{key}.sha256"), detail))?;
        let sha1 = entry
            .sha1
            .as_deref()
            .map(parse_thumbprint)
            .transpose()
            .map_err(|detail| invalid(format!("{key}.sha1"), detail))?;
        let identity = match (sha256, sha1) {
            (Some(sha256), _) => sha256.to_vec(),
            (None, Some(sha1)) => sha1.to_vec(),
            (None, None) => {
                return Err(invalid(
                    format!("{key}.sha256"),
                    "give the certificate's sha256 fingerprint or its sha1 thumbprint",
                ));
            }
        };
        if !seen.insert(identity) {
            let field = if sha256.is_some() { "sha256" } else { "sha1" };
            return Err(invalid(
                format!("{key}.{field}"),
                "the same fingerprint is listed twice",
            ));
        }
        required.push(RequiredCertificate { name, sha256, sha1 });
    }
    Ok(CertificatePolicy { store, required })
}

/// The store is read under the host root: a leading `/` is dropped, and
/// `..` is refused so a policy cannot point outside it.
fn relative_store_path(store: &Path) -> Result<PathBuf, PolicyError> {
    let mut relative = PathBuf::new();
    for component in store.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid("certificates.store", "must stay under the host root (no `..`)"));
            }
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(invalid("certificates.store", "must name a directory or file"));
    }
    Ok(relative)
}

/// Hex SHA-256, colons optional, any case; exactly 32 bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let digits: String = text.trim().chars().filter(|character| *character != ':').collect();
    let bytes = hex::decode(&digits).map_err(|_| format!("{text:?} is not hexadecimal (colons allowed)"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{text:?} is {} bytes; a SHA-256 fingerprint is 32", bytes.len()))
}

/// Uppercase hex with colons.
/// A SHA-1 thumbprint: 40 hex digits, spaces or colons allowed (Windows'
/// certificate dialog shows it with spaces).
pub fn parse_thumbprint(text: &str) -> Result<[u8; 20], String> {
    let digits: String = text
        .trim()
        .chars()
        .filter(|character| !matches!(character, ':' | ' ' | '\u{200e}'))
        .collect();
    let bytes = hex::decode(&digits).map_err(|_| format!("{text:?} is not hexadecimal (colons or spaces allowed)"))?;
    <[u8; 20]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{text:?} is {} bytes; a SHA-1 thumbprint is 20", bytes.len()))
}

pub fn format_fingerprint(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn validate_system(file: SystemRequirementsFile) -> Result<SystemRequirements, PolicyError> {
    let mut arch = Vec::with_capacity(file.arch.len());
    for (index, name) in file.arch.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(invalid(
                format!("system_requirements.arch[{index}]"),
                "must not be empty",
            ));
        }
        let normalized = normalize_arch(name);
        if !arch.contains(&normalized) {
            arch.push(normalized);
        }
    }
    let mut os: Vec<OsRequirement> = Vec::with_capacity(file.os.len());
    for (index, entry) in file.os.into_iter().enumerate() {
        let key = format!("system_requirements.os[{index}]");
        let id = entry.id.trim().to_ascii_lowercase();
        if id.is_empty() {
            return Err(invalid(format!("{key}.id"), "must not be empty"));
        }
        if os.iter().any(|existing| existing.id == id) {
            return Err(invalid(format!("{key}.id"), format!("{id:?} is listed twice")));
        }
        if let Some(min_version) = &entry.min_version {
            version::validate(min_version).map_err(|error| invalid(format!("{key}.min_version"), error.to_string()))?;
        }
        os.push(OsRequirement {
            id,
            min_version: entry.min_version.map(|text| text.trim().to_string()),
            min_build: entry.min_build,
        });
    }
    Ok(SystemRequirements {
        arch,
        min_free_disk_mb: file.min_free_disk_mb,
        min_memory_mb: file.min_memory_mb,
        os,
    })
}

/// One name per architecture, whoever spells it: `amd64`/`x64` are `x86_64`,
/// `arm64` is `aarch64`; anything else is kept, lowercase.
pub fn normalize_arch(name: &str) -> String {
    let lowercase = name.trim().to_ascii_lowercase();
    match lowercase.as_str() {
        "amd64" | "x64" | "x86-64" => "x86_64".to_string(),
        "arm64" => "aarch64".to_string(),
        _ => lowercase,
    }
}

// === checked policy -> file form, for showing it again ===

impl From<Policy> for PolicyFile {
    fn from(policy: Policy) -> PolicyFile {
        let requirements = policy.system_requirements;
        PolicyFile {
            offline_after: Some(policy.offline_after),
            clock_skew_warn: Some(policy.clock_skew_warn),
            update_now_window: Some(policy.update_now_window),
            license: LicenseFile {
                warn_days: Some(policy.license.warn_days),
            },
            update_permission: UpdatePermissionFile {
                required: Some(policy.update_permission.required),
            },
            update_source: UpdateSourceFile {
                expected: policy
                    .update_sources
                    .into_iter()
                    .map(|expected| ExpectedSourceFile {
                        match_labels: expected.match_labels,
                        source: expected.source,
                        address: expected.address,
                    })
                    .collect(),
            },
            certificates: CertificatesFile {
                store: policy.certificates.store,
                required: policy
                    .certificates
                    .required
                    .into_iter()
                    .map(|certificate| RequiredCertificateFile {
                        sha256: certificate.sha256.map(|sha256| format_fingerprint(&sha256)),
                        sha1: certificate.thumbprint(),
                        name: certificate.name,
                    })
                    .collect(),
            },
            connectivity: ConnectivityFile {
                timeout: Some(policy.connectivity.timeout),
            },
            system_requirements: SystemRequirementsFile {
                arch: requirements.arch,
                min_free_disk_mb: requirements.min_free_disk_mb,
                min_memory_mb: requirements.min_memory_mb,
                os: requirements
                    .os
                    .into_iter()
                    .map(|os| OsRequirementFile {
                        id: os.id,
                        min_version: os.min_version,
                        min_build: os.min_build,
                    })
                    .collect(),
            },
            server_facts: policy.server_facts.into_iter().map(Into::into).collect(),
            diagnosis: DiagnosisFile {
                pattern_window: Some(policy.diagnosis.pattern_window),
                server_certificate_sha256: policy.diagnosis.server_certificate_sha256,
            },
        }
    }
}

#[cfg(test)]
mod tests;
