//! The managed product's state document: what the security agent says about
//! itself (version, license, update settings, server), as TOML or JSON.
//!
//! The document comes from outside rollcall (a file the product writes, or a
//! command's output), so it is parsed leniently into a raw tree first and
//! each check then asks only for the fields it needs: one malformed field
//! yields an error naming that field and hides nothing else. Hostile input is
//! bounded before any parser sees it: at most [`MAX_DOCUMENT_BYTES`], and a
//! scan of the raw text refuses nesting deeper than [`MAX_NESTING_DEPTH`]
//! (the parsers and the drop of their trees recurse, so depth is a
//! stack-overflow risk).
//!
//! Contract (either format):
//!
//! ```toml
//! version = "14.0.12737"
//! role = "endpoint"              # or "update_agent"; absent means endpoint
//! [license]
//! expires = "2027-03-31"         # a TOML date literal is accepted too
//! [update]
//! permission = "all_components"  # or "pattern_files", "pattern_engine_driver"
//! source = "standard"            # or "custom"
//! source_address = "ua-osaka-01.example:8080"   # required with "custom"
//! [update_agent]                 # read only with role = "update_agent"
//! program_and_hotfix = true
//! address = "ua-osaka-01.example:8080"
//! [server]
//! address = "product-server.example:443"
//! certificate_sha256 = "9f86d0…"  # the server certificate the agent trusts
//! # Optional, for the coordinator's diagnosis (docs/PRODUCT_STATE.md):
//! [pattern]
//! version = "19.851.00"
//! date = "20261201"              # YYYYMMDD (or YYYY-MM-DD)
//! [update]
//! last_from = "http://apex.example:8080/activeupdate"
//! last_at = 1796083200           # Unix seconds (or RFC 3339 text)
//! [upgrade]
//! refused = "…Client environment is not qualified to do upgrade or hotfix"
//! [restart]
//! pending = "HKLM\…\RebootPending"   # or false
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::proto;
use crate::version;

mod address;
mod depth;

pub use address::{AddressError, ServiceAddress, address_key, same_address};
pub use depth::MAX_NESTING_DEPTH;
pub use depth::toml_depth_exceeds;

/// Largest product document accepted; the real one is a few hundred bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why the document, or one field of it, could not be used. Every message
/// starts with "product state" and names the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("product state could not be read: {0}")]
    Unreadable(String),
    #[error("product state is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("product state is not valid UTF-8 (at byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("product state nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("product state is not valid {format}: {detail}")]
    Syntax { format: Format, detail: String },
    #[error("product state: the top level must be an object, found {found}")]
    NotATable { found: &'static str },
    #[error("product state: {field} is missing")]
    Missing { field: String },
    #[error("product state: {field} must be {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("product state: {field}: {value:?} is not one of {allowed}")]
    NotAllowed {
        field: String,
        value: String,
        allowed: String,
    },
    #[error("product state: {field}: {detail}")]
    Invalid { field: String, detail: String },
    /// An adapter knew where this one field comes from but could not read it.
    #[error("product state: {field} could not be read: {detail}")]
    FieldUnreadable { field: String, detail: String },
}

impl ProductError {
    /// The message's catalogue code (the coordinator renders `msg-CODE`
    /// with [`ProductError::params`] in the admin's language).
    pub fn code(&self) -> &'static str {
        match self {
            ProductError::Unreadable(_) => "product-unreadable",
            ProductError::TooLarge { .. } => "product-too-large",
            ProductError::NotUtf8 { .. } => "product-not-utf8",
            ProductError::TooDeep { .. } => "product-too-deep",
            ProductError::Syntax { .. } => "product-syntax",
            ProductError::NotATable { .. } => "product-not-a-table",
            ProductError::Missing { .. } => "product-missing",
            ProductError::WrongType { .. } => "product-wrong-type",
            ProductError::NotAllowed { .. } => "product-not-allowed",
            ProductError::Invalid { .. } => "product-invalid",
            ProductError::FieldUnreadable { .. } => "product-field-unreadable",
        }
    }

    /// The parameters of [`ProductError::code`]; `detail` is raw text from
    /// a parser or the OS, shown verbatim.
    pub fn params(&self) -> Vec<(String, String)> {
        let pairs: Vec<(&str, String)> = match self {
            ProductError::Unreadable(detail) => vec![("detail", detail.clone())],
            ProductError::TooLarge { limit } | ProductError::TooDeep { limit } => vec![("limit", limit.to_string())],
            ProductError::NotUtf8 { valid_up_to } => vec![("at", valid_up_to.to_string())],
            ProductError::Syntax { format, detail } => vec![("format", format.to_string()), ("detail", detail.clone())],
            ProductError::NotATable { found } => vec![("found", (*found).to_string())],
            ProductError::Missing { field } => vec![("field", field.clone())],
            ProductError::WrongType { field, expected, found } => vec![
                ("field", field.clone()),
                ("expected", (*expected).to_string()),
                ("found", (*found).to_string()),
            ],
            ProductError::NotAllowed { field, value, allowed } => vec![
                ("field", field.clone()),
                ("value", value.clone()),
                ("allowed", allowed.clone()),
            ],
            ProductError::Invalid { field, detail } | ProductError::FieldUnreadable { field, detail } => {
                vec![("field", field.clone()), ("detail", detail.clone())]
            }
        };
        pairs
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect()
    }
}

/// The two syntaxes a product document may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
}

impl fmt::Display for Format {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Format::Json => "JSON",
            Format::Toml => "TOML",
        })
    }
}

/// A closed set of lowercase words, as the document and the policy spell them.
pub trait Choice: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;

    fn from_word(word: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|choice| choice.as_str() == word)
    }

    /// "a, b, c", for error messages.
    fn allowed() -> String {
        Self::ALL
            .iter()
            .map(|choice| choice.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductRole {
    Endpoint,
    /// An agent designated to serve updates to other agents.
    UpdateAgent,
}

impl Choice for ProductRole {
    const ALL: &'static [Self] = &[ProductRole::Endpoint, ProductRole::UpdateAgent];
    fn as_str(self) -> &'static str {
        match self {
            ProductRole::Endpoint => "endpoint",
            ProductRole::UpdateAgent => "update_agent",
        }
    }
}

/// The web console's "update settings permission" (runbook step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdatePermission {
    AllComponents,
    PatternFiles,
    PatternEngineDriver,
}

impl Choice for UpdatePermission {
    const ALL: &'static [Self] = &[
        UpdatePermission::AllComponents,
        UpdatePermission::PatternFiles,
        UpdatePermission::PatternEngineDriver,
    ];
    fn as_str(self) -> &'static str {
        match self {
            UpdatePermission::AllComponents => "all_components",
            UpdatePermission::PatternFiles => "pattern_files",
            UpdatePermission::PatternEngineDriver => "pattern_engine_driver",
        }
    }
}

impl UpdatePermission {
    /// The label an admin sees in the web console.
    pub fn console_label(self) -> &'static str {
        match self {
            UpdatePermission::AllComponents => "All components",
            UpdatePermission::PatternFiles => "Pattern files",
            UpdatePermission::PatternEngineDriver => "Pattern files, engines, drivers",
        }
    }
}

/// Where agents pull updates from (runbook step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateSourceKind {
    Standard,
    Custom,
}

impl Choice for UpdateSourceKind {
    const ALL: &'static [Self] = &[UpdateSourceKind::Standard, UpdateSourceKind::Custom];
    fn as_str(self) -> &'static str {
        match self {
            UpdateSourceKind::Standard => "standard",
            UpdateSourceKind::Custom => "custom",
        }
    }
}

/// `[update] source` and `source_address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSource {
    pub kind: UpdateSourceKind,
    /// Required with `Custom`; kept when present with `Standard` for evidence.
    pub address: Option<String>,
}

/// `[update_agent]`, read only on an update agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAgentSettings {
    /// "Security agent program and HotFix" enabled in the update-agent settings.
    pub program_and_hotfix: bool,
    pub address: Option<String>,
}

/// A product document parsed into a raw tree, or the reason it could not be.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductDoc {
    root: Result<BTreeMap<String, Raw>, ProductError>,
    /// Fields an adapter assembled the document from but could not read,
    /// with the reason: asking for one yields its own error instead of
    /// "missing", so a broken source is never mistaken for an absent field.
    unreadable_fields: BTreeMap<String, String>,
    /// Field -> the short name of the place an adapter read it from
    /// (`pattern.date` -> `Misc.\PatternDate`), for evidence.
    sources: BTreeMap<String, String>,
}

/// Most `field_sources` entries sent to the coordinator.
pub const MAX_FIELD_SOURCES: usize = 32;

/// Format-neutral raw values, so JSON and TOML documents read alike.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    /// A TOML date or date-time literal, kept in its text form.
    Datetime(String),
    Null,
    Array(Vec<Raw>),
    Table(BTreeMap<String, Raw>),
}

impl Raw {
    fn kind(&self) -> &'static str {
        match self {
            Raw::String(_) => "a string",
            Raw::Integer(_) => "an integer",
            Raw::Float(_) => "a float",
            Raw::Boolean(_) => "a boolean",
            Raw::Datetime(_) => "a date",
            Raw::Null => "null",
            Raw::Array(_) => "an array",
            Raw::Table(_) => "a table",
        }
    }

    fn from_json(value: serde_json::Value) -> Raw {
        match value {
            serde_json::Value::Null => Raw::Null,
            serde_json::Value::Bool(flag) => Raw::Boolean(flag),
            serde_json::Value::Number(number) => match number.as_i64() {
                Some(integer) => Raw::Integer(integer),
                None => Raw::Float(number.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(text) => Raw::String(text),
            serde_json::Value::Array(items) => Raw::Array(items.into_iter().map(Raw::from_json).collect()),
            serde_json::Value::Object(map) => Raw::Table(
                map.into_iter()
                    .map(|(key, value)| (key, Raw::from_json(value)))
                    .collect(),
            ),
        }
    }

    fn from_toml(value: toml::Value) -> Raw {
        match value {
            toml::Value::String(text) => Raw::String(text),
            toml::Value::Integer(integer) => Raw::Integer(integer),
            toml::Value::Float(float) => Raw::Float(float),
            toml::Value::Boolean(flag) => Raw::Boolean(flag),
            toml::Value::Datetime(datetime) => Raw::Datetime(datetime.to_string()),
            toml::Value::Array(items) => Raw::Array(items.into_iter().map(Raw::from_toml).collect()),
            toml::Value::Table(table) => Raw::Table(Raw::table_from_toml(table)),
        }
    }

    fn table_from_toml(table: toml::Table) -> BTreeMap<String, Raw> {
        table
            .into_iter()
            .map(|(key, value)| (key, Raw::from_toml(value)))
            .collect()
    }
}

// === impl ProductDoc: reading ===

impl ProductDoc {
    /// Parses raw bytes (size and UTF-8 checked here). Never fails: an
    /// unreadable document is kept as its error, which every field reports.
    pub fn from_bytes(bytes: &[u8]) -> ProductDoc {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return ProductDoc::failed(ProductError::TooLarge {
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => ProductDoc::parse(text),
            Err(error) => ProductDoc::failed(ProductError::NotUtf8 {
                valid_up_to: error.valid_up_to(),
            }),
        }
    }

    /// Parses a document: JSON when it starts with `{`, TOML otherwise.
    pub fn parse(text: &str) -> ProductDoc {
        ProductDoc {
            root: parse_root(text),
            unreadable_fields: BTreeMap::new(),
            sources: BTreeMap::new(),
        }
    }

    /// A document an adapter assembled field by field (the Apex One adapter
    /// reads the registry and `.ini` files): `fields` follows the contract
    /// above, `unreadable` maps a dotted field (`server.address`) to why its
    /// source could not be read.
    pub fn assembled(fields: toml::Table, unreadable: BTreeMap<String, String>) -> ProductDoc {
        ProductDoc {
            root: Ok(Raw::table_from_toml(fields)),
            unreadable_fields: unreadable,
            sources: BTreeMap::new(),
        }
    }

    /// Records where an adapter read each field (short names, for evidence).
    pub fn with_sources(mut self, sources: BTreeMap<String, String>) -> ProductDoc {
        self.sources = sources;
        self
    }

    /// Where an adapter read `field`, if it said.
    pub fn source_of(&self, field: &str) -> Option<&str> {
        self.sources.get(field).map(String::as_str)
    }

    /// A document that could not be obtained at all (the file is missing,
    /// the command failed).
    pub fn unreadable(reason: impl fmt::Display) -> ProductDoc {
        ProductDoc::failed(ProductError::Unreadable(reason.to_string()))
    }

    fn failed(error: ProductError) -> ProductDoc {
        ProductDoc {
            root: Err(error),
            unreadable_fields: BTreeMap::new(),
            sources: BTreeMap::new(),
        }
    }

    /// Why the document as a whole could not be used, if it could not.
    pub fn read_error(&self) -> Option<&ProductError> {
        self.root.as_ref().err()
    }
}

fn parse_root(text: &str) -> Result<BTreeMap<String, Raw>, ProductError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(ProductError::TooLarge {
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    // Windows tools like to start files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let format = if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Toml
    };
    let too_deep = match format {
        Format::Json => depth::json_depth_exceeds(text, MAX_NESTING_DEPTH),
        Format::Toml => depth::toml_depth_exceeds(text, MAX_NESTING_DEPTH),
    };
    if too_deep {
        return Err(ProductError::TooDeep {
            limit: MAX_NESTING_DEPTH,
        });
    }
    match format {
        Format::Json => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|error| ProductError::Syntax {
                format,
                detail: error.to_string(),
            })?;
            match Raw::from_json(value) {
                Raw::Table(table) => Ok(table),
                other => Err(ProductError::NotATable { found: other.kind() }),
            }
        }
        Format::Toml => {
            let table: toml::Table = toml::from_str(text).map_err(|error| ProductError::Syntax {
                format,
                detail: toml_error_line(text, &error),
            })?;
            Ok(Raw::table_from_toml(table))
        }
    }
}

/// toml's own Display spans several lines with a source excerpt; a check
/// message is one line, so keep the message and the line number.
fn toml_error_line(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(1, |before| before.matches('\n').count() + 1);
            format!("{message} (line {line})")
        }
        None => message,
    }
}

// === impl ProductDoc: fields ===

impl ProductDoc {
    /// `version`: the installed program version, a dotted number.
    pub fn version(&self) -> Result<String, ProductError> {
        let text = self.non_empty_string("version")?;
        version::validate(text).map_err(|error| ProductError::Invalid {
            field: "version".to_string(),
            detail: error.to_string(),
        })?;
        Ok(text.trim().to_string())
    }

    /// `role`; a document without one is an ordinary endpoint, since products
    /// that know nothing of update agents do not write it.
    pub fn role(&self) -> Result<ProductRole, ProductError> {
        match self.optional("role")? {
            None => Ok(ProductRole::Endpoint),
            Some(_) => self.choice("role"),
        }
    }

    /// `license.expires`: the last day the license is valid.
    pub fn license_expires(&self) -> Result<time::Date, ProductError> {
        const FIELD: &str = "license.expires";
        let raw = self.field(FIELD)?;
        let text = match raw {
            Raw::String(text) | Raw::Datetime(text) => text.trim(),
            other => return Err(wrong_type(FIELD, "a date (YYYY-MM-DD)", other)),
        };
        parse_date(text).ok_or_else(|| ProductError::Invalid {
            field: FIELD.to_string(),
            detail: format!("{text:?} is not a date (YYYY-MM-DD)"),
        })
    }

    /// `update.permission`.
    pub fn update_permission(&self) -> Result<UpdatePermission, ProductError> {
        self.choice("update.permission")
    }

    /// `update.source` alone, without the address it may require.
    pub fn update_source_kind(&self) -> Result<UpdateSourceKind, ProductError> {
        self.choice("update.source")
    }

    /// `update.source`, with `update.source_address` (required when custom).
    pub fn update_source(&self) -> Result<UpdateSource, ProductError> {
        let kind = self.update_source_kind()?;
        let address = match kind {
            UpdateSourceKind::Custom => match self.optional("update.source_address")? {
                Some(_) => Some(self.non_empty_string("update.source_address")?.to_string()),
                None => {
                    return Err(ProductError::Missing {
                        field: "update.source_address (required with update.source = \"custom\")".to_string(),
                    });
                }
            },
            UpdateSourceKind::Standard => self.optional_string("update.source_address")?,
        };
        Ok(UpdateSource { kind, address })
    }

    /// `[update_agent]`: `None` on an endpoint, required on an update agent.
    pub fn update_agent(&self) -> Result<Option<UpdateAgentSettings>, ProductError> {
        if self.role()? != ProductRole::UpdateAgent {
            return Ok(None);
        }
        let program_and_hotfix = match self.field("update_agent.program_and_hotfix")? {
            Raw::Boolean(flag) => *flag,
            other => {
                return Err(wrong_type("update_agent.program_and_hotfix", "a boolean", other));
            }
        };
        Ok(Some(UpdateAgentSettings {
            program_and_hotfix,
            address: self.optional_string("update_agent.address")?,
        }))
    }

    /// `server.address`: the product server, `host:port`.
    pub fn server_address(&self) -> Result<String, ProductError> {
        Ok(self.non_empty_string("server.address")?.to_string())
    }

    /// `pattern.version` (optional).
    pub fn pattern_version(&self) -> Result<Option<String>, ProductError> {
        self.optional_text("pattern.version")
    }

    /// `pattern.date` (optional): `YYYYMMDD` as Apex One writes it, or
    /// `YYYY-MM-DD`; given back as `YYYYMMDD`.
    pub fn pattern_date(&self) -> Result<Option<String>, ProductError> {
        const FIELD: &str = "pattern.date";
        let text = match self.optional(FIELD)? {
            None => return Ok(None),
            Some(Raw::Integer(number)) => number.to_string(),
            Some(Raw::String(text) | Raw::Datetime(text)) => text.trim().to_string(),
            Some(other) => return Err(wrong_type(FIELD, "a date (YYYYMMDD)", other)),
        };
        if text.is_empty() {
            return Ok(None);
        }
        let compact = text.replace('-', "");
        let date = compact
            .get(..8)
            .and_then(|head| time::Date::parse(head, time::macros::format_description!("[year][month][day]")).ok());
        match date {
            Some(_) if compact.len() == 8 => Ok(Some(compact)),
            _ => Err(ProductError::Invalid {
                field: FIELD.to_string(),
                detail: format!("{text:?} is not a date (YYYYMMDD)"),
            }),
        }
    }

    /// `update.last_from` (optional): where the last update came from.
    pub fn update_last_from(&self) -> Result<Option<String>, ProductError> {
        self.optional_text("update.last_from")
    }

    /// `update.last_at` (optional): when the last update happened, Unix
    /// seconds (an integer, its text, or an RFC 3339 date-time).
    pub fn update_last_at(&self) -> Result<Option<i64>, ProductError> {
        const FIELD: &str = "update.last_at";
        let invalid = |text: &str| ProductError::Invalid {
            field: FIELD.to_string(),
            detail: format!("{text:?} is neither Unix seconds nor an RFC 3339 time"),
        };
        match self.optional(FIELD)? {
            None => Ok(None),
            Some(Raw::Integer(0)) => Ok(None),
            Some(Raw::Integer(seconds)) if *seconds > 0 => Ok(Some(*seconds)),
            Some(Raw::Integer(seconds)) => Err(invalid(&seconds.to_string())),
            Some(Raw::String(text) | Raw::Datetime(text)) => {
                let text = text.trim();
                if text.is_empty() || text == "0" {
                    return Ok(None);
                }
                if let Ok(seconds) = text.parse::<i64>() {
                    return if seconds > 0 {
                        Ok(Some(seconds))
                    } else {
                        Err(invalid(text))
                    };
                }
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map(|moment| Some(moment.unix_timestamp()))
                    .map_err(|_| invalid(text))
            }
            Some(other) => Err(wrong_type(FIELD, "Unix seconds", other)),
        }
    }

    /// `server.certificate_sha256` (optional): 64 hex digits, lowercased.
    pub fn server_certificate_sha256(&self) -> Result<Option<String>, ProductError> {
        const FIELD: &str = "server.certificate_sha256";
        let Some(text) = self.optional_text(FIELD)? else {
            return Ok(None);
        };
        let hex_text: String = text.chars().filter(|character| *character != ':').collect();
        if hex_text.len() != 64 || !hex_text.chars().all(|character| character.is_ascii_hexdigit()) {
            return Err(ProductError::Invalid {
                field: FIELD.to_string(),
                detail: format!("{text:?} is not a SHA-256 (64 hex digits)"),
            });
        }
        Ok(Some(hex_text.to_ascii_lowercase()))
    }

    /// `upgrade.refused` (optional): the line an upgrade attempt was refused with.
    pub fn upgrade_refused(&self) -> Result<Option<String>, ProductError> {
        self.optional_text("upgrade.refused")
    }

    /// `restart.pending` (optional): what says a restart is pending; `false`
    /// or absent means none, `true` an unnamed one.
    pub fn restart_pending(&self) -> Result<Option<String>, ProductError> {
        const FIELD: &str = "restart.pending";
        match self.optional(FIELD)? {
            None | Some(Raw::Boolean(false)) => Ok(None),
            Some(Raw::Boolean(true)) => Ok(Some("restart pending".to_string())),
            Some(Raw::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Raw::String(text)) => Ok(Some(text.trim().to_string())),
            Some(other) => Err(wrong_type(FIELD, "a boolean or text", other)),
        }
    }

    /// An optional string field; empty text counts as absent.
    fn optional_text(&self, path: &str) -> Result<Option<String>, ProductError> {
        match self.optional(path)? {
            None => Ok(None),
            Some(Raw::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Raw::String(text)) => Ok(Some(text.trim().to_string())),
            Some(other) => Err(wrong_type(path, "a string", other)),
        }
    }
}

// === impl ProductDoc: raw access ===

impl ProductDoc {
    /// The value at a dotted path; a missing field or a non-table on the way
    /// is an error naming the path.
    fn field(&self, path: &str) -> Result<&Raw, ProductError> {
        self.optional(path)?.ok_or_else(|| ProductError::Missing {
            field: path.to_string(),
        })
    }

    fn optional(&self, path: &str) -> Result<Option<&Raw>, ProductError> {
        let root = self.root.as_ref().map_err(Clone::clone)?;
        if let Some(reason) = self.unreadable_fields.get(path) {
            return Err(ProductError::FieldUnreadable {
                field: path.to_string(),
                detail: reason.clone(),
            });
        }
        let mut table = root;
        let mut walked = String::new();
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(segment);
            let Some(value) = table.get(segment) else {
                return Ok(None);
            };
            if segments.peek().is_none() {
                return Ok(Some(value));
            }
            match value {
                Raw::Table(inner) => table = inner,
                other => return Err(wrong_type(&walked, "a table", other)),
            }
        }
        Ok(None)
    }

    fn string(&self, path: &str) -> Result<&str, ProductError> {
        match self.field(path)? {
            Raw::String(text) => Ok(text),
            other => Err(wrong_type(path, "a string", other)),
        }
    }

    fn non_empty_string(&self, path: &str) -> Result<&str, ProductError> {
        let text = self.string(path)?;
        if text.trim().is_empty() {
            return Err(ProductError::Invalid {
                field: path.to_string(),
                detail: "is empty".to_string(),
            });
        }
        Ok(text.trim())
    }

    fn optional_string(&self, path: &str) -> Result<Option<String>, ProductError> {
        match self.optional(path)? {
            None => Ok(None),
            Some(_) => Ok(Some(self.non_empty_string(path)?.to_string())),
        }
    }

    fn choice<T: Choice>(&self, path: &str) -> Result<T, ProductError> {
        let word = self.string(path)?;
        T::from_word(word.trim()).ok_or_else(|| ProductError::NotAllowed {
            field: path.to_string(),
            value: word.to_string(),
            allowed: T::allowed(),
        })
    }
}

fn wrong_type(field: &str, expected: &'static str, found: &Raw) -> ProductError {
    ProductError::WrongType {
        field: field.to_string(),
        expected,
        found: found.kind(),
    }
}

/// `YYYY-MM-DD`, or the date part of an RFC 3339 date-time.
fn parse_date(text: &str) -> Option<time::Date> {
    let date_part = match text.get(10..11) {
        Some("T" | "t" | " ") => text.get(..10)?,
        _ => text,
    };
    time::Date::parse(date_part, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// What the coordinator is told about the product: every field that could be
/// read, empty where unknown, `read_error` when nothing could be read.
pub fn to_summary(doc: &ProductDoc) -> proto::ProductSummary {
    if let Some(error) = doc.read_error() {
        return proto::ProductSummary {
            read_error: error.to_string(),
            ..proto::ProductSummary::default()
        };
    }
    let role = match doc.role() {
        Ok(ProductRole::Endpoint) => proto::Role::Endpoint,
        Ok(ProductRole::UpdateAgent) => proto::Role::UpdateAgent,
        Err(_) => proto::Role::Unspecified,
    };
    let source = doc.update_source().ok();
    let update_agent = doc.update_agent().ok().flatten();
    proto::ProductSummary {
        version: doc.version().unwrap_or_default(),
        role: role as i32,
        update_source: source
            .as_ref()
            .map(|source| source.kind.as_str().to_string())
            .unwrap_or_default(),
        source_address: source.and_then(|source| source.address).unwrap_or_default(),
        update_agent_address: update_agent
            .as_ref()
            .and_then(|settings| settings.address.clone())
            .unwrap_or_default(),
        program_and_hotfix: update_agent.is_some_and(|settings| settings.program_and_hotfix),
        update_permission: doc
            .update_permission()
            .map(|permission| permission.as_str().to_string())
            .unwrap_or_default(),
        license_expires: doc.license_expires().map(format_date).unwrap_or_default(),
        server_address: doc.server_address().unwrap_or_default(),
        read_error: String::new(),
        pattern_version: bounded(doc.pattern_version().ok().flatten()),
        pattern_date: doc.pattern_date().ok().flatten().unwrap_or_default(),
        update_last_from: bounded(doc.update_last_from().ok().flatten()),
        update_last_at: doc.update_last_at().ok().flatten().unwrap_or_default(),
        server_certificate_sha256: doc.server_certificate_sha256().ok().flatten().unwrap_or_default(),
        upgrade_refused: bounded_text(doc.upgrade_refused().ok().flatten(), MAX_SUMMARY_LINE),
        restart_pending: bounded(doc.restart_pending().ok().flatten()),
        field_sources: doc
            .sources
            .iter()
            .take(MAX_FIELD_SOURCES)
            .map(|(field, source)| (field.clone(), cut(source, MAX_SUMMARY_SHORT)))
            .collect(),
        adapter: String::new(),
    }
}

/// The coordinator's bound on a short summary string (inbound `MAX_SHORT`).
pub const MAX_SUMMARY_SHORT: usize = 256;
/// The bound on the refused upgrade line.
pub const MAX_SUMMARY_LINE: usize = 1024;

fn bounded(text: Option<String>) -> String {
    bounded_text(text, MAX_SUMMARY_SHORT)
}

fn bounded_text(text: Option<String>, limit: usize) -> String {
    text.map(|text| cut(&text, limit)).unwrap_or_default()
}

/// At most `limit` bytes, cut on a character boundary.
fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests;
