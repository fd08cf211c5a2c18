//! Turns a checked [`Mapping`] into values: reads each source (registry,
//! `.ini`, uninstall entry, fixed), translates, appends the port, and says
//! where every value came from. A source that cannot be read is that
//! field's error, naming the source; nothing is silently left out.

use std::path::PathBuf;

use super::ini::IniText;
use super::mapping::{Mapping, NameMatch, Rule, Source, is_absolute};
use super::registry::{KeyPath, RegValue, Registry};

/// One field's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Dotted document field: `server.address`.
    pub field: String,
    /// The document value, or why it could not be obtained.
    pub value: Result<toml::Value, String>,
    /// Where it came from, for a human: `HKLM\…\CurrentVersion Server (REG_SZ)`.
    pub source: String,
    /// The mapping marks this source as confirmed.
    pub verified: bool,
    pub note: Option<String>,
}

/// What a source gave before translation.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Registry(RegValue),
    Text(String),
    Fixed(toml::Value),
}

/// A value read from a source, with its provenance.
struct Read {
    raw: Result<Raw, String>,
    source: String,
}

/// Resolves every rule of `mapping`, in the mapping's order.
pub fn resolve(mapping: &Mapping, registry: &dyn Registry) -> Vec<Resolved> {
    let mut resolver = Resolver {
        mapping,
        registry,
        install_dir: None,
    };
    mapping.rules.iter().map(|rule| resolver.rule(rule)).collect()
}

struct Resolver<'a> {
    mapping: &'a Mapping,
    registry: &'a dyn Registry,
    /// Read once, on first need.
    install_dir: Option<Result<(PathBuf, String), String>>,
}

impl Resolver<'_> {
    fn rule(&mut self, rule: &Rule) -> Resolved {
        let read = self.read(&rule.source);
        let mut source = read.source;
        let mut value = read.raw.and_then(|raw| translate(raw, rule));
        if let Some(port_source) = &rule.port {
            let port = self.read(port_source);
            source = format!("{source}, port from {}", port.source);
            value = value.and_then(|host| with_port(host, port.raw));
        }
        Resolved {
            field: rule.field.clone(),
            value,
            source,
            verified: rule.verified,
            note: rule.note.clone(),
        }
    }

    fn read(&mut self, source: &Source) -> Read {
        match source {
            Source::Registry { key, value } => read_registry(self.registry, key, value),
            Source::Ini { file, section, key } => self.read_ini(file, section, key),
            Source::Uninstall {
                display_name,
                name_match,
                value,
            } => read_uninstall(
                self.registry,
                &self.mapping.uninstall_roots,
                display_name,
                *name_match,
                value,
            ),
            Source::Fixed(value) => Read {
                raw: Ok(Raw::Fixed(value.clone())),
                source: "fixed in the mapping".to_string(),
            },
        }
    }

    fn read_ini(&mut self, file: &str, section: &str, key: &str) -> Read {
        let path = if is_absolute(file) {
            Ok(PathBuf::from(file))
        } else {
            match self.install_dir() {
                Ok((dir, _)) => Ok(dir.join(file)),
                Err(error) => Err(error),
            }
        };
        let path = match path {
            Ok(path) => path,
            Err(error) => {
                return Read {
                    source: format!("{file} [{section}] {key} (in the install directory)"),
                    raw: Err(format!("the install directory could not be read: {error}")),
                };
            }
        };
        let source = format!("{} [{section}] {key}", path.display());
        let raw = match IniText::read(&path).and_then(|text| text.get(section, key)) {
            Ok(Some(text)) => Ok(Raw::Text(text)),
            Ok(None) => Err(format!("{source}: not found")),
            Err(error) => Err(format!("{source}: {error:#}")),
        };
        Read { raw, source }
    }

    /// The install directory and where it came from, read once.
    fn install_dir(&mut self) -> Result<(PathBuf, String), String> {
        if let Some(known) = &self.install_dir {
            return known.clone();
        }
        let found = match &self.mapping.install_dir {
            None => Err("the mapping has no [install_dir]".to_string()),
            Some(rule) => {
                let read = self.read(&rule.source);
                match read.raw {
                    Ok(Raw::Registry(RegValue::String(text) | RegValue::ExpandString(text)) | Raw::Text(text))
                    | Ok(Raw::Fixed(toml::Value::String(text)))
                        if !text.trim().is_empty() =>
                    {
                        Ok((PathBuf::from(text.trim()), read.source))
                    }
                    Ok(_) => Err(format!("{}: not a directory path", read.source)),
                    Err(error) => Err(error),
                }
            }
        };
        self.install_dir = Some(found.clone());
        found
    }
}

fn read_registry(registry: &dyn Registry, key: &KeyPath, name: &str) -> Read {
    let described = format!("{key} {}", value_label(name));
    match registry.value(&key.to_string(), name) {
        Ok(Some(value)) => Read {
            source: format!("{described} ({})", value.type_name()),
            raw: Ok(Raw::Registry(value)),
        },
        Ok(None) => Read {
            raw: Err(format!("{described}: not found")),
            source: described,
        },
        Err(error) => Read {
            raw: Err(format!("{described}: {error:#}")),
            source: described,
        },
    }
}

/// `Server`, or `(Default)` for the unnamed value, as regedit shows it.
fn value_label(name: &str) -> String {
    if name.is_empty() {
        "(Default)".to_string()
    } else {
        name.to_string()
    }
}

/// Finds the uninstall entry whose `DisplayName` matches and reads `value`.
fn read_uninstall(
    registry: &dyn Registry,
    roots: &[KeyPath],
    display_name: &str,
    name_match: NameMatch,
    value: &str,
) -> Read {
    let wanted = display_name.trim().to_lowercase();
    let matches = |name: &str| {
        let name = name.trim().to_lowercase();
        match name_match {
            NameMatch::Exact => name == wanted,
            NameMatch::Prefix => name.starts_with(&wanted),
        }
    };
    let described = format!(
        "the uninstall entry with DisplayName {}{display_name:?}",
        if name_match == NameMatch::Prefix {
            "starting with "
        } else {
            ""
        }
    );
    let mut found: Vec<(KeyPath, RegValue)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for root in roots {
        let subkeys = match registry.subkeys(&root.to_string()) {
            Ok(subkeys) => subkeys,
            Err(error) => {
                problems.push(format!("{root}: {error:#}"));
                continue;
            }
        };
        for subkey in subkeys {
            let entry = root.child(&subkey);
            match registry.value(&entry.to_string(), "DisplayName") {
                Ok(Some(RegValue::String(name) | RegValue::ExpandString(name))) if matches(&name) => {
                    match registry.value(&entry.to_string(), value) {
                        Ok(Some(version)) => found.push((entry, version)),
                        Ok(None) => problems.push(format!("{entry} has no {value}")),
                        Err(error) => problems.push(format!("{entry} {value}: {error:#}")),
                    }
                }
                Ok(_) => {}
                // One unreadable entry of another program must not hide ours;
                // it is reported only if ours is not found.
                Err(error) => problems.push(format!("{entry}: {error:#}")),
            }
        }
    }
    let searched = roots.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ");
    match found.as_slice() {
        [] => {
            let detail = if problems.is_empty() {
                String::new()
            } else {
                format!(" ({})", problems.join("; "))
            };
            Read {
                raw: Err(format!("{described}: none found under {searched}{detail}")),
                source: described,
            }
        }
        [(entry, first), rest @ ..] => {
            if let Some((other, different)) = rest.iter().find(|(_, other)| other != first) {
                return Read {
                    raw: Err(format!(
                        "{described}: several entries disagree ({entry} {value} = {}, {other} {value} = {})",
                        show(first),
                        show(different)
                    )),
                    source: described,
                };
            }
            Read {
                source: format!("{entry} {value} ({})", first.type_name()),
                raw: Ok(Raw::Registry(first.clone())),
            }
        }
    }
}

fn show(value: &RegValue) -> String {
    match value {
        RegValue::String(text) | RegValue::ExpandString(text) => format!("{text:?}"),
        RegValue::Dword(number) => number.to_string(),
        RegValue::Qword(number) => number.to_string(),
        RegValue::MultiString(items) => format!("{items:?}"),
        RegValue::Other(kind) => format!("a {kind}"),
    }
}

/// The raw value as the document value: through `translate` when the rule
/// has one (keyed by the value's text, case-insensitively), else by type.
fn translate(raw: Raw, rule: &Rule) -> Result<toml::Value, String> {
    let Some(table) = &rule.translate else {
        return plain(raw);
    };
    let text = match &raw {
        Raw::Registry(RegValue::String(text) | RegValue::ExpandString(text)) | Raw::Text(text) => {
            text.trim().to_string()
        }
        Raw::Registry(RegValue::Dword(number)) => number.to_string(),
        Raw::Registry(RegValue::Qword(number)) => number.to_string(),
        Raw::Registry(other) => return Err(format!("a {} cannot be translated", other.type_name())),
        Raw::Fixed(toml::Value::String(text)) => text.trim().to_string(),
        Raw::Fixed(other) => other.to_string(),
    };
    table
        .iter()
        .find(|(from, _)| from.trim().eq_ignore_ascii_case(&text))
        .map(|(_, to)| to.clone())
        .ok_or_else(|| {
            let known = table
                .keys()
                .map(|key| format!("{key:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("value {text:?} is not in the mapping's translate table ({known})")
        })
}

/// A raw value as the nearest TOML value.
fn plain(raw: Raw) -> Result<toml::Value, String> {
    Ok(match raw {
        Raw::Registry(RegValue::String(text) | RegValue::ExpandString(text)) | Raw::Text(text) => {
            toml::Value::String(text.trim().to_string())
        }
        Raw::Registry(RegValue::Dword(number)) => toml::Value::Integer(i64::from(number)),
        Raw::Registry(RegValue::Qword(number)) => match i64::try_from(number) {
            Ok(number) => toml::Value::Integer(number),
            Err(_) => return Err(format!("the REG_QWORD {number} is too large")),
        },
        Raw::Registry(RegValue::MultiString(items)) => {
            toml::Value::Array(items.into_iter().map(toml::Value::String).collect())
        }
        Raw::Registry(RegValue::Other(kind)) => return Err(format!("a {kind} value cannot be used")),
        Raw::Fixed(value) => value,
    })
}

/// `host:port`; an empty host stays empty (the document reports it).
fn with_port(host: toml::Value, port: Result<Raw, String>) -> Result<toml::Value, String> {
    let toml::Value::String(host) = host else {
        return Err("a port can only be added to a text address".to_string());
    };
    let port = port.map_err(|error| format!("port: {error}"))?;
    let text = match &port {
        Raw::Registry(RegValue::Dword(number)) => number.to_string(),
        Raw::Registry(RegValue::Qword(number)) => number.to_string(),
        Raw::Registry(RegValue::String(text) | RegValue::ExpandString(text)) | Raw::Text(text) => {
            text.trim().to_string()
        }
        Raw::Fixed(toml::Value::Integer(number)) => number.to_string(),
        Raw::Fixed(toml::Value::String(text)) => text.trim().to_string(),
        Raw::Registry(other) => return Err(format!("port: a {} is not a port", other.type_name())),
        Raw::Fixed(other) => return Err(format!("port: {other} is not a port")),
    };
    match text.parse::<u16>() {
        Ok(number) if number > 0 => {}
        _ => return Err(format!("port: {text:?} is not a port number (1-65535)")),
    }
    if host.trim().is_empty() {
        return Ok(toml::Value::String(host));
    }
    Ok(toml::Value::String(format!("{}:{text}", host.trim())))
}
