//! The seam to the Windows registry: a [`Registry`] trait the adapter reads
//! through, the key-path syntax the mapping file uses (`HKLM\SOFTWARE\…`),
//! and the registry of this platform ([`system`]).
//!
//! The real registry exists only on Windows (`registry_windows.rs`, with the
//! `winreg` crate); elsewhere every read is an error, so a mapping run on
//! Linux fails loudly per field instead of pretending the values are absent.
//! Tests on any platform use [`MemoryRegistry`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A registry value, decoded; the variants are the types the adapter can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    /// `REG_SZ`.
    String(String),
    /// `REG_EXPAND_SZ`, kept as stored (`%VAR%` not expanded).
    ExpandString(String),
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_QWORD`.
    Qword(u64),
    /// `REG_MULTI_SZ`.
    MultiString(Vec<String>),
    /// Any other type (`REG_BINARY`, …), by its name: readable, not usable.
    Other(String),
}

impl RegValue {
    /// The type's name as `regedit` and `reg query` show it.
    pub fn type_name(&self) -> &str {
        match self {
            RegValue::String(_) => "REG_SZ",
            RegValue::ExpandString(_) => "REG_EXPAND_SZ",
            RegValue::Dword(_) => "REG_DWORD",
            RegValue::Qword(_) => "REG_QWORD",
            RegValue::MultiString(_) => "REG_MULTI_SZ",
            RegValue::Other(name) => name,
        }
    }
}

/// Read access to a registry. Implementations block (the adapter runs them
/// on a blocking thread).
pub trait Registry: Send + Sync {
    /// The value `name` of `key` (`""` is the key's default value); `Ok(None)`
    /// when the key or the value does not exist.
    fn value(&self, key: &str, name: &str) -> anyhow::Result<Option<RegValue>>;
    /// The names of `key`'s direct subkeys; empty when the key does not exist.
    fn subkeys(&self, key: &str) -> anyhow::Result<Vec<String>>;
}

/// The root a key path starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hive {
    LocalMachine,
    CurrentUser,
}

/// A parsed key path: `HKLM\SOFTWARE\TrendMicro` or
/// `HKEY_LOCAL_MACHINE\SOFTWARE\TrendMicro` (and `HKCU`, for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    pub hive: Hive,
    /// Below the hive, without leading or trailing backslashes.
    pub subkey: String,
}

impl KeyPath {
    /// Parses a key path; the error says what is accepted.
    pub fn parse(text: &str) -> Result<KeyPath, String> {
        let trimmed = text.trim().trim_end_matches('\\');
        let (root, subkey) = trimmed.split_once('\\').unwrap_or((trimmed, ""));
        let hive = match root.to_ascii_uppercase().as_str() {
            "HKLM" | "HKEY_LOCAL_MACHINE" => Hive::LocalMachine,
            "HKCU" | "HKEY_CURRENT_USER" => Hive::CurrentUser,
            _ => {
                return Err(format!(
                    "registry key {text:?} must start with HKLM\\ (HKEY_LOCAL_MACHINE\\) or HKCU\\ (HKEY_CURRENT_USER\\)"
                ));
            }
        };
        if subkey.split('\\').any(str::is_empty) {
            return Err(format!("registry key {text:?} has an empty part"));
        }
        Ok(KeyPath {
            hive,
            subkey: subkey.to_string(),
        })
    }

    /// `self\child`.
    pub fn child(&self, name: &str) -> KeyPath {
        KeyPath {
            hive: self.hive,
            subkey: format!("{}\\{name}", self.subkey),
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hive = match self.hive {
            Hive::LocalMachine => "HKLM",
            Hive::CurrentUser => "HKCU",
        };
        write!(formatter, "{hive}\\{}", self.subkey)
    }
}

/// This platform's registry: the real one on Windows.
#[cfg(windows)]
pub fn system() -> Arc<dyn Registry> {
    Arc::new(super::registry_windows::WindowsRegistry)
}

/// This platform's registry: none, every read fails.
#[cfg(not(windows))]
pub fn system() -> Arc<dyn Registry> {
    Arc::new(NoRegistry)
}

/// The registry on a platform that has none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRegistry;

const NO_REGISTRY: &str = "the Windows registry exists only on Windows";

impl Registry for NoRegistry {
    fn value(&self, _key: &str, _name: &str) -> anyhow::Result<Option<RegValue>> {
        anyhow::bail!(NO_REGISTRY)
    }
    fn subkeys(&self, _key: &str) -> anyhow::Result<Vec<String>> {
        anyhow::bail!(NO_REGISTRY)
    }
}

/// A registry held in memory, case-insensitive and case-preserving like the
/// real one: the test double for the OS registry (which Linux does not have).
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    /// Lowercased `HKLM\…` key path → the key.
    keys: BTreeMap<String, MemoryKey>,
    /// Lowercased key paths whose reads fail, with the error.
    failing: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
struct MemoryKey {
    /// The key's own name as first written.
    name: String,
    /// Lowercased value name → value.
    values: BTreeMap<String, RegValue>,
}

impl MemoryRegistry {
    pub fn new() -> MemoryRegistry {
        MemoryRegistry::default()
    }

    /// Sets `name` under `key` (a path as the mapping file writes it),
    /// creating the key and its parents.
    pub fn set(&mut self, key: &str, name: &str, value: RegValue) -> &mut MemoryRegistry {
        let spelled = canonical(key);
        let mut path = spelled.as_str();
        loop {
            let own_name = path.rsplit_once('\\').map_or(path, |(_, last)| last);
            self.keys.entry(path.to_lowercase()).or_insert_with(|| MemoryKey {
                name: own_name.to_string(),
                values: BTreeMap::new(),
            });
            match path.rsplit_once('\\') {
                Some((above, _)) => path = above,
                None => break,
            }
        }
        if let Some(entry) = self.keys.get_mut(&spelled.to_lowercase()) {
            entry.values.insert(name.to_lowercase(), value);
        }
        self
    }

    /// Makes every read of `key` fail with `error` (access denied, say).
    pub fn fail(&mut self, key: &str, error: &str) -> &mut MemoryRegistry {
        self.failing.insert(canonical(key).to_lowercase(), error.to_string());
        self
    }

    /// The lowercased path of `key`, or its configured failure.
    fn check(&self, key: &str) -> anyhow::Result<String> {
        let path = canonical(key).to_lowercase();
        match self.failing.get(&path) {
            Some(error) => anyhow::bail!("{error}"),
            None => Ok(path),
        }
    }
}

/// One spelling of the hive (`HKLM`), the rest as written.
fn canonical(key: &str) -> String {
    KeyPath::parse(key)
        .map(|path| path.to_string())
        .unwrap_or_else(|_| key.to_string())
}

impl Registry for MemoryRegistry {
    fn value(&self, key: &str, name: &str) -> anyhow::Result<Option<RegValue>> {
        let path = self.check(key)?;
        Ok(self
            .keys
            .get(&path)
            .and_then(|entry| entry.values.get(&name.to_lowercase()))
            .cloned())
    }

    fn subkeys(&self, key: &str) -> anyhow::Result<Vec<String>> {
        let path = self.check(key)?;
        let prefix = format!("{path}\\");
        Ok(self
            .keys
            .iter()
            .filter(|(candidate, _)| candidate.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('\\')))
            .map(|(_, entry)| entry.name.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_parse_in_both_spellings_and_refuse_other_roots() {
        let short = KeyPath::parse(r"HKLM\SOFTWARE\TrendMicro\").expect("short");
        let long = KeyPath::parse(r"hkey_local_machine\SOFTWARE\TrendMicro").expect("long");
        assert_eq!(short, long);
        assert_eq!(short.to_string(), r"HKLM\SOFTWARE\TrendMicro");
        assert_eq!(short.child("x").to_string(), r"HKLM\SOFTWARE\TrendMicro\x");
        for bad in [
            r"HKU\S-1-5-18\Software",
            r"SOFTWARE\TrendMicro",
            r"HKLM\SOFTWARE\\x",
            "HKLM",
        ] {
            assert!(KeyPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_memory_registry_is_case_insensitive_and_lists_direct_subkeys() {
        let mut registry = MemoryRegistry::new();
        registry.set(r"HKLM\Software\A\B", "Name", RegValue::Dword(1));
        registry.set(r"HKLM\Software\A\C\D", "x", RegValue::Dword(2));
        assert_eq!(
            registry.value(r"hklm\SOFTWARE\a\b", "NAME").expect("read"),
            Some(RegValue::Dword(1))
        );
        assert_eq!(registry.value(r"HKLM\Software\A\Z", "Name").expect("read"), None);
        let mut subkeys = registry.subkeys(r"HKLM\Software\A").expect("subkeys");
        subkeys.sort();
        assert_eq!(subkeys, ["B", "C"]);
        registry.fail(r"HKLM\Software\A\B", "access is denied");
        assert!(registry.value(r"HKLM\Software\A\B", "Name").is_err());
    }

    #[cfg(not(windows))]
    #[test]
    fn without_windows_every_read_says_why() {
        let error = system().value(r"HKLM\SOFTWARE", "x").expect_err("no registry");
        assert_eq!(error.to_string(), "the Windows registry exists only on Windows");
    }
}
