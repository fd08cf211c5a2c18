//! `[collect]` in agent.toml: the only files a collect command may gather.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// A bundle at most, by default (file contents; the archive adds headers).
pub const DEFAULT_MAX_BUNDLE_BYTES: u64 = 8 * 1024 * 1024;
/// The largest `max_bundle_bytes` accepted: the coordinator refuses bundles
/// over 64 MiB (server/src/inbound/limits.rs), archive headers included.
pub const MAX_MAX_BUNDLE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectConfig {
    /// Absolute paths of log files; the last component may hold `*` and `?`
    /// (e.g. `C:\...\Security Agent\*.log`). Empty: collect is refused.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// File bytes in one bundle at most: newest files first, a file that
    /// would pass it is left out (and named in the manifest).
    #[serde(default = "default_max_bundle_bytes")]
    pub max_bundle_bytes: u64,
}

fn default_max_bundle_bytes() -> u64 {
    DEFAULT_MAX_BUNDLE_BYTES
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig {
            paths: Vec::new(),
            max_bundle_bytes: DEFAULT_MAX_BUNDLE_BYTES,
        }
    }
}

/// Absolute here, or a Windows drive path (`C:\...`): agent.toml templates
/// for Windows are checked on every platform.
fn is_absolute(path: &Path) -> bool {
    let text = path.to_string_lossy();
    let bytes = text.as_bytes();
    path.is_absolute()
        || (bytes.len() > 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/'))
}

fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

impl CollectConfig {
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.max_bundle_bytes == 0 || self.max_bundle_bytes > MAX_MAX_BUNDLE_BYTES {
            bail!("[collect] max_bundle_bytes must be 1..={MAX_MAX_BUNDLE_BYTES}");
        }
        for path in &self.paths {
            if !is_absolute(path) {
                bail!("[collect] path {} must be absolute", path.display());
            }
            let parent_has_wildcard = path
                .parent()
                .is_some_and(|parent| has_wildcard(&parent.to_string_lossy()));
            if parent_has_wildcard {
                bail!(
                    "[collect] path {}: `*` and `?` are allowed in the file name only",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Whether a collect command can be answered at all.
    pub fn enabled(&self) -> bool {
        !self.paths.is_empty()
    }
}

/// Whether `name` matches `pattern` (`*` any run, `?` one character).
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with one backtrack point: linear enough
    // for file names, and no recursion on hostile patterns.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The files a configured path names now: itself, or the regular files of
/// its directory whose names match its pattern (sorted).
pub(crate) fn expand(path: &Path) -> Vec<PathBuf> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_default();
    if !has_wildcard(&name) {
        return vec![path.to_path_buf()];
    }
    let Some(dir) = path.parent() else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter(|entry| matches(&name, &entry.file_name().to_string_lossy()))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_file_names() {
        assert!(matches("*.log", "TmuDump.log"));
        assert!(matches("Tmu*.lo?", "TmuDump.log"));
        assert!(!matches("*.log", "TmuDump.log.1"));
        assert!(matches("*", ""));
        assert!(!matches("a*b*c", "abca"));
        assert!(matches("a*b*c", "aXbYc"));
    }

    #[test]
    fn paths_must_be_absolute_with_wildcards_in_the_name_only() {
        let config = |paths: &[&str]| CollectConfig {
            paths: paths.iter().map(PathBuf::from).collect(),
            ..CollectConfig::default()
        };
        // Absolute as the endpoint's platform means it.
        #[cfg(windows)]
        let (good, wild_dir) = (r"C:\Program Files (x86)\Trend Micro\*.log", r"C:\Logs\*\a.log");
        #[cfg(not(windows))]
        let (good, wild_dir) = ("/var/log/product/*.log", "/var/log/*/a.log");
        assert!(config(&[good]).validate().is_ok());
        assert!(config(&["logs/a.log"]).validate().is_err());
        assert!(config(&[wild_dir]).validate().is_err());
        let huge = CollectConfig {
            max_bundle_bytes: MAX_MAX_BUNDLE_BYTES + 1,
            ..CollectConfig::default()
        };
        assert!(huge.validate().is_err());
    }

    #[test]
    fn a_pattern_expands_to_the_matching_regular_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.log", "b.log", "c.txt"] {
            std::fs::write(dir.path().join(name), name).expect("write");
        }
        std::fs::create_dir(dir.path().join("d.log")).expect("mkdir");
        let found = expand(&dir.path().join("*.log"));
        assert_eq!(found, vec![dir.path().join("a.log"), dir.path().join("b.log")]);
    }
}
