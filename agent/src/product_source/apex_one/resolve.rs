//! Turns a checked [`Mapping`] into values: reads each source (registry,
//! `.ini`, uninstall entry, fixed), translates, appends the port, and says
//! where every value came from. A source that cannot be read is that
//! field's error, naming the source; nothing is silently left out.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ini::IniText;
use super::mapping::{Mapping, NameMatch, Rule, Source, is_absolute, split_file_name};
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
    /// Which of the field's sources gave the value: 0 its own, 1.. its
    /// `fallback` entries (0 too when none read).
    pub source_index: usize,
    /// A short name of the place read, for evidence on the coordinator:
    /// `Misc.\PatternDate`, `OfcNTCer.dat` (the key's last part and the
    /// value name, or the file name).
    pub short_source: String,
}

/// Largest file hashed (`OfcNTCer.dat` is about a kilobyte).
pub const MAX_HASHED_FILE_BYTES: u64 = 1024 * 1024;
/// Of a log file, only this much of its end is read.
pub const MAX_LOG_TAIL_BYTES: u64 = 1024 * 1024;
/// Most directory entries looked at for a `newest_line` pattern.
pub const MAX_DIR_ENTRIES: usize = 10_000;
/// Longest log line kept as a value (then cut, with `…`).
pub const MAX_LINE_CHARS: usize = 300;

/// What a source gave before translation.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Registry(RegValue),
    Text(String),
    Fixed(toml::Value),
    /// An `exists` source whose key or value is not there.
    Absent,
}

/// A value read from a source, with its provenance.
struct Read {
    raw: Result<Raw, String>,
    source: String,
    short: String,
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
        let (index, read) = self.first_that_reads(rule);
        let mut source = read.source;
        let mut value = read.raw.and_then(|raw| match raw {
            // Every source was an absent `exists`: the thing is not there.
            Raw::Absent => Ok(toml::Value::Boolean(false)),
            raw => translate(raw, rule),
        });
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
            source_index: index,
            short_source: read.short,
        }
    }

    /// The rule's sources in order; the first that reads wins. When none
    /// does, the error lists every source's reason.
    fn first_that_reads(&mut self, rule: &Rule) -> (usize, Read) {
        let mut failures: Vec<String> = Vec::new();
        let mut absent: Vec<String> = Vec::new();
        let sources: Vec<&Source> = std::iter::once(&rule.source).chain(&rule.fallback).collect();
        let last = sources.len() - 1;
        for (index, source) in sources.into_iter().enumerate() {
            let read = self.read(source);
            match &read.raw {
                Ok(Raw::Absent) => absent.push(read.source),
                Ok(_) if index == 0 => return (0, read),
                Ok(_) => {
                    let mut earlier = failures.clone();
                    earlier.extend(absent.iter().map(|place| format!("{place}: not present")));
                    let source = format!("{} (fallback {index}; {})", read.source, earlier.join("; "));
                    return (index, Read { source, ..read });
                }
                Err(error) => failures.push(error.clone()),
            }
            if index == last {
                break;
            }
        }
        if failures.is_empty() {
            let source = format!("none present of: {}", absent.join(", "));
            return (
                0,
                Read {
                    raw: Ok(Raw::Absent),
                    source,
                    short: String::new(),
                },
            );
        }
        failures.extend(absent.iter().map(|place| format!("{place}: not present")));
        let first = self.describe(&rule.source);
        (
            0,
            Read {
                raw: Err(failures.join("; ")),
                source: first,
                short: String::new(),
            },
        )
    }

    /// How a source is named when it could not be read.
    fn describe(&self, source: &Source) -> String {
        match source {
            Source::Registry { key, value } => format!("{key} {}", value_label(value)),
            Source::Ini { file, section, key } => format!("{file} [{section}] {key}"),
            Source::Uninstall { display_name, .. } => format!("the uninstall entry {display_name:?}"),
            Source::Fixed(_) => "fixed in the mapping".to_string(),
            Source::FileSha256 { file } => format!("SHA-256 of {file}"),
            Source::NewestLine { file, .. } => format!("the newest {file}"),
            Source::Exists { key, value } => match value {
                Some(value) => format!("{key} {}", value_label(value)),
                None => key.to_string(),
            },
        }
    }

    /// A path in the install directory (or absolute as written).
    fn path_of(&mut self, file: &str) -> Result<PathBuf, String> {
        if is_absolute(file) {
            return Ok(PathBuf::from(file));
        }
        match self.install_dir() {
            Ok((dir, _)) => Ok(join_windows(&dir, file)),
            Err(error) => Err(format!("the install directory could not be read: {error}")),
        }
    }

    fn read_sha256(&mut self, file: &str) -> Read {
        let short = split_file_name(file).1.to_string();
        let path = match self.path_of(file) {
            Ok(path) => path,
            Err(error) => {
                return Read {
                    raw: Err(error),
                    source: format!("SHA-256 of {file} (in the install directory)"),
                    short,
                };
            }
        };
        let source = format!("SHA-256 of {}", path.display());
        let raw = match rollcall_common::files::read_bounded(&path, MAX_HASHED_FILE_BYTES) {
            Ok(bytes) => Ok(Raw::Text(hex::encode(Sha256::digest(&bytes)))),
            Err(error) => Err(format!("{source}: {error:#}")),
        };
        Read { raw, source, short }
    }

    fn read_newest_line(&mut self, file: &str, contains: &str) -> Read {
        let (folder, pattern) = split_file_name(file);
        let described = format!("the newest {file}");
        let dir = match self.path_of(if folder.is_empty() { "." } else { folder }) {
            Ok(dir) => dir,
            Err(error) => {
                return Read {
                    raw: Err(error),
                    source: described,
                    short: pattern.to_string(),
                };
            }
        };
        match newest_matching(&dir, pattern) {
            Err(error) => Read {
                raw: Err(format!("{}: {error}", dir.display())),
                source: format!("{} {pattern}", dir.display()),
                short: pattern.to_string(),
            },
            Ok(None) => Read {
                // No upgrade attempt logged: nothing was refused.
                raw: Ok(Raw::Text(String::new())),
                source: format!("{}{}{pattern} (none found)", dir.display(), std::path::MAIN_SEPARATOR),
                short: pattern.to_string(),
            },
            Ok(Some((path, count))) => {
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let short = format!("{folder}{name}");
                let source = format!("{} (newest of {count} {pattern})", path.display());
                let raw = match read_tail(&path, MAX_LOG_TAIL_BYTES) {
                    Ok(text) => Ok(Raw::Text(last_line_containing(&text, contains).unwrap_or_default())),
                    Err(error) => Err(format!("{source}: {error:#}")),
                };
                Read { raw, source, short }
            }
        }
    }

    fn read_exists(&self, key: &KeyPath, value: Option<&str>) -> Read {
        match value {
            Some(name) => {
                let described = format!("{key} {}", value_label(name));
                match self.registry.value(&key.to_string(), name) {
                    Ok(Some(_)) => Read {
                        raw: Ok(Raw::Text(described.clone())),
                        short: short_registry(key, name),
                        source: described,
                    },
                    Ok(None) => Read {
                        raw: Ok(Raw::Absent),
                        source: described,
                        short: String::new(),
                    },
                    Err(error) => Read {
                        raw: Err(format!("{described}: {error:#}")),
                        source: described,
                        short: String::new(),
                    },
                }
            }
            None => {
                let described = key.to_string();
                let (parent, child) = match key.subkey.rsplit_once('\\') {
                    Some((parent, child)) => (
                        KeyPath {
                            hive: key.hive,
                            subkey: parent.to_string(),
                        },
                        child,
                    ),
                    None => (
                        KeyPath {
                            hive: key.hive,
                            subkey: String::new(),
                        },
                        key.subkey.as_str(),
                    ),
                };
                match self.registry.subkeys(&parent.to_string()) {
                    Ok(children) if children.iter().any(|name| name.eq_ignore_ascii_case(child)) => Read {
                        raw: Ok(Raw::Text(described.clone())),
                        short: child.to_string(),
                        source: described,
                    },
                    Ok(_) => Read {
                        raw: Ok(Raw::Absent),
                        source: described,
                        short: String::new(),
                    },
                    Err(error) => Read {
                        raw: Err(format!("{described}: {error:#}")),
                        source: described,
                        short: String::new(),
                    },
                }
            }
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
                short: "mapping".to_string(),
            },
            Source::FileSha256 { file } => self.read_sha256(file),
            Source::NewestLine { file, contains } => self.read_newest_line(file, contains),
            Source::Exists { key, value } => self.read_exists(key, value.as_deref()),
        }
    }

    fn read_ini(&mut self, file: &str, section: &str, key: &str) -> Read {
        let path = if is_absolute(file) {
            Ok(PathBuf::from(file))
        } else {
            match self.install_dir() {
                Ok((dir, _)) => Ok(join_windows(&dir, file)),
                Err(error) => Err(error),
            }
        };
        let short = format!("{} [{section}] {key}", split_file_name(file).1);
        let path = match path {
            Ok(path) => path,
            Err(error) => {
                return Read {
                    source: format!("{file} [{section}] {key} (in the install directory)"),
                    raw: Err(format!("the install directory could not be read: {error}")),
                    short,
                };
            }
        };
        let source = format!("{} [{section}] {key}", path.display());
        let raw = match IniText::read(&path).and_then(|text| text.get(section, key)) {
            Ok(Some(text)) => Ok(Raw::Text(text)),
            Ok(None) => Err(format!("{source}: not found")),
            Err(error) => Err(format!("{source}: {error:#}")),
        };
        Read { raw, source, short }
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
    let short = short_registry(key, name);
    match registry.value(&key.to_string(), name) {
        Ok(Some(value)) => Read {
            source: format!("{described} ({})", value.type_name()),
            raw: Ok(Raw::Registry(value)),
            short,
        },
        Ok(None) => Read {
            raw: Err(format!("{described}: not found")),
            source: described,
            short,
        },
        Err(error) => Read {
            raw: Err(format!("{described}: {error:#}")),
            source: described,
            short,
        },
    }
}

/// `Misc.\PatternDate`: the key's last part and the value name.
fn short_registry(key: &KeyPath, name: &str) -> String {
    let last = key.subkey.rsplit('\\').next().unwrap_or(&key.subkey);
    format!("{last}\\{}", value_label(name))
}

/// `dir` joined with a Windows-style relative path (`Temp\upgrade.log`):
/// each part is pushed separately so the result is right on either
/// platform.
fn join_windows(dir: &Path, relative: &str) -> PathBuf {
    let mut path = dir.to_path_buf();
    for part in relative
        .split(['\\', '/'])
        .filter(|part| !part.is_empty() && *part != ".")
    {
        path.push(part);
    }
    path
}

/// The newest file in `dir` whose name matches `pattern` (one `*`, case
/// insensitive), by modification time then name, and how many matched.
/// `Ok(None)` when the folder is missing or nothing matches.
fn newest_matching(dir: &Path, pattern: &str) -> Result<Option<(PathBuf, usize)>, String> {
    let (prefix, suffix) = pattern.split_once('*').unwrap_or((pattern, ""));
    let (prefix, suffix) = (prefix.to_lowercase(), suffix.to_lowercase());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("list the folder: {error}")),
    };
    let mut best: Option<(std::time::SystemTime, String, PathBuf)> = None;
    let mut count = 0;
    for entry in entries.take(MAX_DIR_ENTRIES) {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if name.len() < prefix.len() + suffix.len() || !name.starts_with(&prefix) || !name.ends_with(&suffix) {
            continue;
        }
        let Ok(metadata) = entry.metadata() else { continue };
        if !metadata.is_file() {
            continue;
        }
        count += 1;
        let modified = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
        let newer = match &best {
            None => true,
            Some((time, best_name, _)) => (modified, &name) > (*time, best_name),
        };
        if newer {
            best = Some((modified, name, entry.path()));
        }
    }
    Ok(best.map(|(_, _, path)| (path, count)))
}

/// The last `limit` bytes of a file, decoded as the `.ini` reader does
/// (UTF-8, UTF-16 with a byte-order mark, else lossily).
fn read_tail(path: &Path, limit: u64) -> anyhow::Result<String> {
    use std::io::{Read as _, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let mut bytes = Vec::new();
    if length > limit {
        // Keep UTF-16 aligned: start on an even offset.
        let start = (length - limit) & !1;
        file.seek(SeekFrom::Start(start))?;
    }
    file.take(limit).read_to_end(&mut bytes)?;
    if let Some(text) = utf16le_without_mark(&bytes) {
        return Ok(text);
    }
    let text = IniText::decode(&bytes)?;
    Ok(text.as_str().to_string())
}

/// Text that is UTF-16LE without a byte-order mark (as some Windows tools
/// write logs): many NUL bytes at odd offsets and none at even ones. Lossy:
/// a log line is evidence, not a value.
fn utf16le_without_mark(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 4 || bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return None;
    }
    let odd_nuls = bytes.iter().skip(1).step_by(2).filter(|byte| **byte == 0).count();
    let even_nuls = bytes.iter().step_by(2).filter(|byte| **byte == 0).count();
    if even_nuls > 0 || odd_nuls * 2 < bytes.len() / 2 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// The last line of `text` containing `needle` (case-insensitive), trimmed,
/// control characters escaped and cut at [`MAX_LINE_CHARS`].
pub fn last_line_containing(text: &str, needle: &str) -> Option<String> {
    let needle = needle.to_lowercase();
    let line = text.lines().rev().find(|line| line.to_lowercase().contains(&needle))?;
    Some(bounded_line(line.trim()))
}

/// A log line made safe to show: control characters as `\u{..}` escapes,
/// at most [`MAX_LINE_CHARS`] characters (then `…`).
pub fn bounded_line(line: &str) -> String {
    let mut out = String::new();
    for (count, character) in line.chars().enumerate() {
        if count >= MAX_LINE_CHARS {
            out.push('…');
            break;
        }
        if character.is_control() {
            out.extend(character.escape_default());
        } else {
            out.push(character);
        }
    }
    out
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
                short: format!("Uninstall\\{value}"),
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
                    short: format!("Uninstall\\{value}"),
                };
            }
            Read {
                source: format!("{entry} {value} ({})", first.type_name()),
                raw: Ok(Raw::Registry(first.clone())),
                short: format!("Uninstall\\{value}"),
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
        Raw::Absent => "false".to_string(),
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
        Raw::Absent => toml::Value::Boolean(false),
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
        Raw::Absent => return Err("port: not present".to_string()),
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
