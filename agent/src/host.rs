//! Host facts (runbook step 6 and the step-8 report), read under `host_root`
//! like node_exporter's `--path.rootfs`, so a containerised probe can look at
//! the host through a bind mount.
//!
//! - OS: `ID` and `VERSION_ID` of `etc/os-release` (then `usr/lib/os-release`).
//! - Architecture: the probe's own (`std::env::consts::ARCH`, normalised to
//!   `x86_64`/`aarch64`), since it runs natively on the endpoint. A file
//!   `etc/rollcall-arch` under the host root overrides it; it exists for test
//!   roots and for emulated probes, and holds one name (`amd64` and `arm64`
//!   are accepted).
//! - Memory: `MemTotal` (and `MemAvailable` as evidence) of `proc/meminfo`.
//! - Free disk: `statvfs` of the product's install path under the host root.
//!
//! - Addresses: IP and MAC addresses ([`addresses`]), best effort.
//!
//! Each fact is read on its own; a missing file is an error naming that file
//! and hides no other fact. Absolute symlinks under the host root are
//! followed inside it ([`resolve_under`]), not into the probe's own root.

pub mod addresses;

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use rollcall_common::files::read_bounded_utf8;
use rollcall_common::policy::normalize_arch;
use rollcall_common::proto::HostFacts;

/// Bound on the small text files read here.
const MAX_FACT_FILE_BYTES: u64 = 256 * 1024;
const MIB: u64 = 1024 * 1024;

/// Everything the probe learnt about the host, each fact or why not.
#[derive(Debug)]
pub struct HostObservation {
    pub os: anyhow::Result<OsRelease>,
    pub arch: anyhow::Result<String>,
    pub memory: anyhow::Result<Memory>,
    pub free_disk_mb: anyhow::Result<u64>,
    /// Empty where unknown (matching the roster only, never a check).
    pub addresses: addresses::Addresses,
    /// The install path as configured (relative to the host root).
    pub install_path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`; rolling releases have none. On Windows
    /// `major.minor.build.UBR`, e.g. `10.0.19045.3803`.
    pub version_id: Option<String>,
    /// The OS build number (Windows' `CurrentBuildNumber`, e.g. 19045),
    /// which `min_build` in the policy compares; `None` on Linux.
    pub build: Option<u64>,
    /// What the OS calls itself (Windows' `ProductName` and
    /// `DisplayVersion`), evidence only.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    pub total_mb: u64,
    pub available_mb: Option<u64>,
}

impl HostObservation {
    /// The wire form: known facts, empty or zero where unknown.
    pub fn facts(&self) -> HostFacts {
        let os = self.os.as_ref().ok();
        HostFacts {
            os_id: os.map(|os| os.id.clone()).unwrap_or_default(),
            os_version: os.and_then(|os| os.version_id.clone()).unwrap_or_default(),
            arch: self.arch.as_ref().map(Clone::clone).unwrap_or_default(),
            memory_mb: self.memory.as_ref().map(|memory| memory.total_mb).unwrap_or_default(),
            free_disk_mb: self.free_disk_mb.as_ref().copied().unwrap_or_default(),
            ip_addresses: self.addresses.ips.clone(),
            mac_addresses: self.addresses.macs.clone(),
        }
    }

    /// An observation where every fact failed for one reason (a timeout).
    pub fn failed(reason: &str, install_path: &Path) -> HostObservation {
        HostObservation {
            os: Err(anyhow::anyhow!("{reason}")),
            arch: Err(anyhow::anyhow!("{reason}")),
            memory: Err(anyhow::anyhow!("{reason}")),
            free_disk_mb: Err(anyhow::anyhow!("{reason}")),
            addresses: addresses::Addresses::default(),
            install_path: install_path.to_path_buf(),
        }
    }
}

/// Reads every fact. Blocking file system calls: run it off the async
/// workers (statvfs on a hung network mount does not return). On Windows
/// the facts come from the OS itself ([`crate::platform::windows::host`]);
/// `host_root` is a Unix notion and is not used there.
pub fn observe(host_root: &Path, install_path: &Path) -> HostObservation {
    #[cfg(windows)]
    {
        let _ = host_root;
        crate::platform::windows::host::observe(install_path)
    }
    #[cfg(not(windows))]
    HostObservation {
        os: read_os_release(host_root),
        arch: read_arch(host_root),
        memory: read_meminfo(host_root),
        free_disk_mb: free_disk_mb(host_root, install_path),
        addresses: addresses::read(host_root),
        install_path: install_path.to_path_buf(),
    }
}

/// `ID` and `VERSION_ID` from os-release, as os-release(5) says to look.
pub fn read_os_release(host_root: &Path) -> anyhow::Result<OsRelease> {
    let primary = resolve_under(host_root, Path::new("etc/os-release"));
    let fallback = resolve_under(host_root, Path::new("usr/lib/os-release"));
    let path = if primary.exists() || !fallback.exists() {
        primary
    } else {
        fallback
    };
    let text = read_bounded_utf8(&path, MAX_FACT_FILE_BYTES)?;
    let fields = parse_os_release(&text);
    let Some(id) = fields.get("ID").filter(|id| !id.is_empty()) else {
        bail!("{} has no ID", path.display());
    };
    Ok(OsRelease {
        id: id.to_ascii_lowercase(),
        version_id: fields.get("VERSION_ID").filter(|version| !version.is_empty()).cloned(),
        build: None,
        name: fields.get("PRETTY_NAME").filter(|name| !name.is_empty()).cloned(),
    })
}

/// `KEY=value` lines, values optionally quoted (shell-style, simplified).
fn parse_os_release(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), unquote(value.trim())))
        .collect()
}

fn unquote(value: &str) -> String {
    let quoted = |quote: char| value.strip_prefix(quote).and_then(|inner| inner.strip_suffix(quote));
    if let Some(inner) = quoted('"') {
        let mut unescaped = String::with_capacity(inner.len());
        let mut characters = inner.chars();
        while let Some(character) = characters.next() {
            if character == '\\' {
                unescaped.extend(characters.next());
            } else {
                unescaped.push(character);
            }
        }
        unescaped
    } else if let Some(inner) = quoted('\'') {
        inner.to_string()
    } else {
        value.to_string()
    }
}

/// The architecture: the override file if present, else the probe's own.
pub fn read_arch(host_root: &Path) -> anyhow::Result<String> {
    let override_path = resolve_under(host_root, Path::new("etc/rollcall-arch"));
    if override_path.exists() {
        let text = read_bounded_utf8(&override_path, 256)?;
        let name = text.trim();
        if name.is_empty() {
            bail!("{} is empty", override_path.display());
        }
        return Ok(normalize_arch(name));
    }
    Ok(normalize_arch(std::env::consts::ARCH))
}

/// `MemTotal` and `MemAvailable` of `proc/meminfo`, in MiB.
pub fn read_meminfo(host_root: &Path) -> anyhow::Result<Memory> {
    let path = resolve_under(host_root, Path::new("proc/meminfo"));
    let text = read_bounded_utf8(&path, MAX_FACT_FILE_BYTES)?;
    let field_mb = |name: &str| -> anyhow::Result<Option<u64>> {
        let Some(line) = text.lines().find(|line| line.split(':').next() == Some(name)) else {
            return Ok(None);
        };
        let mut words = line
            .split_once(':')
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .split_whitespace();
        let amount: u64 = words
            .next()
            .and_then(|number| number.parse().ok())
            .with_context(|| format!("{}: {name} is not a number", path.display()))?;
        let bytes = match words.next() {
            Some("kB") => amount.saturating_mul(1024),
            None => amount,
            Some(unit) => bail!("{}: {name} has unknown unit {unit:?}", path.display()),
        };
        Ok(Some(bytes / MIB))
    };
    let Some(total_mb) = field_mb("MemTotal")? else {
        bail!("{} has no MemTotal", path.display());
    };
    Ok(Memory {
        total_mb,
        available_mb: field_mb("MemAvailable")?,
    })
}

/// Space available to unprivileged users at the install path, in MiB.
#[cfg(unix)]
pub fn free_disk_mb(host_root: &Path, install_path: &Path) -> anyhow::Result<u64> {
    let path = resolve_under(host_root, install_path);
    let stats = rustix::fs::statvfs(&path).with_context(|| format!("statvfs {}", path.display()))?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize) / MIB)
}

/// Most symlinks followed before giving up (a loop).
const MAX_SYMLINK_HOPS: usize = 40;

/// `path` (absolute or relative) read as if `host_root` were `/`: absolute
/// symlinks on the way are re-rooted under `host_root` and `..` stops at it.
/// Debian's `etc/ssl/certs/*.pem` are absolute links into
/// `/usr/share/ca-certificates`, which must mean the host's, not ours.
pub fn resolve_under(host_root: &Path, path: &Path) -> PathBuf {
    if host_root == Path::new("/") {
        // The kernel resolves correctly already.
        return Path::new("/").join(path);
    }
    let mut pending: Vec<PathBuf> = relative_parts(path).into_iter().rev().collect();
    let mut resolved: Vec<PathBuf> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == Path::new("..") {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = host_root.join(resolved.iter().collect::<PathBuf>()).join(&part);
        let link_target = fs::symlink_metadata(&candidate)
            .ok()
            .filter(|metadata| metadata.file_type().is_symlink())
            .and_then(|_| fs::read_link(&candidate).ok());
        match link_target {
            Some(target) if hops < MAX_SYMLINK_HOPS => {
                hops += 1;
                if target.is_absolute() {
                    resolved.clear();
                }
                pending.extend(relative_parts(&target).into_iter().rev());
            }
            _ => resolved.push(part),
        }
    }
    host_root.join(resolved.iter().collect::<PathBuf>())
}

/// Normal components and `..`, without the root or `.`.
fn relative_parts(path: &Path) -> Vec<PathBuf> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(PathBuf::from(part)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, contents: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, contents).expect("write");
    }

    #[test]
    fn reads_os_release_with_quotes_and_comments() {
        let root = tempfile::tempdir().expect("tempdir");
        write(
            root.path(),
            "etc/os-release",
            "# comment\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        let os = read_os_release(root.path()).expect("os-release");
        assert_eq!(
            os,
            OsRelease {
                id: "debian".to_string(),
                version_id: Some("12".to_string()),
                build: None,
                name: Some("Debian GNU/Linux 12 (bookworm)".to_string()),
            }
        );
    }

    #[test]
    fn falls_back_to_usr_lib_os_release() {
        let root = tempfile::tempdir().expect("tempdir");
        write(root.path(), "usr/lib/os-release", "ID='arch'\n");
        let os = read_os_release(root.path()).expect("os-release");
        assert_eq!(os.id, "arch");
        assert_eq!(os.version_id, None);
    }

    #[cfg(unix)]
    #[test]
    fn missing_files_are_errors_naming_the_file() {
        let root = tempfile::tempdir().expect("tempdir");
        let observation = observe(root.path(), Path::new("/opt/missing"));
        for error in [
            format!("{:#}", observation.os.expect_err("os")),
            format!("{:#}", observation.memory.expect_err("memory")),
        ] {
            assert!(error.contains(&root.path().display().to_string()), "{error}");
        }
        let disk = format!("{:#}", observation.free_disk_mb.expect_err("disk"));
        assert!(disk.contains("opt/missing"), "{disk}");
        // The architecture needs no file.
        assert!(observation.arch.is_ok());
    }

    #[test]
    fn reads_meminfo_in_mebibytes() {
        let root = tempfile::tempdir().expect("tempdir");
        write(
            root.path(),
            "proc/meminfo",
            "MemTotal:       16384000 kB\nMemFree:  100 kB\nMemAvailable:    8192000 kB\n",
        );
        let memory = read_meminfo(root.path()).expect("meminfo");
        assert_eq!(memory.total_mb, 16000);
        assert_eq!(memory.available_mb, Some(8000));
        write(root.path(), "proc/meminfo", "MemFree: 1 kB\n");
        let error = format!("{:#}", read_meminfo(root.path()).expect_err("no total"));
        assert!(error.contains("MemTotal"), "{error}");
        write(root.path(), "proc/meminfo", "MemTotal: lots kB\n");
        assert!(read_meminfo(root.path()).is_err());
    }

    #[test]
    fn arch_override_is_normalised() {
        let root = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            read_arch(root.path()).expect("native"),
            normalize_arch(std::env::consts::ARCH)
        );
        write(root.path(), "etc/rollcall-arch", "arm64\n");
        assert_eq!(read_arch(root.path()).expect("override"), "aarch64");
        write(root.path(), "etc/rollcall-arch", "\n");
        assert!(read_arch(root.path()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn free_disk_is_measured_at_the_install_path() {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(root.path().join("opt/product")).expect("mkdir");
        let free = free_disk_mb(root.path(), Path::new("/opt/product")).expect("statvfs");
        let facts = observe(root.path(), Path::new("/opt/product")).facts();
        // Both readings of the same file system, moments apart.
        assert!(facts.free_disk_mb.abs_diff(free) < 1024, "{free} vs {facts:?}");
    }

    #[cfg(unix)]
    #[test]
    fn absolute_symlinks_stay_under_the_host_root() {
        let root = tempfile::tempdir().expect("tempdir");
        write(root.path(), "usr/share/ca/a.pem", "inside");
        fs::create_dir_all(root.path().join("etc/ssl/certs")).expect("mkdir");
        std::os::unix::fs::symlink("/usr/share/ca/a.pem", root.path().join("etc/ssl/certs/a.pem")).expect("symlink");
        std::os::unix::fs::symlink("/usr/share", root.path().join("etc/shared")).expect("symlink");
        std::os::unix::fs::symlink("../../../../../../usr/share/ca/a.pem", root.path().join("etc/up.pem"))
            .expect("symlink");
        let expected = root.path().join("usr/share/ca/a.pem");
        assert_eq!(resolve_under(root.path(), Path::new("/etc/ssl/certs/a.pem")), expected);
        assert_eq!(resolve_under(root.path(), Path::new("etc/shared/ca/a.pem")), expected);
        assert_eq!(resolve_under(root.path(), Path::new("etc/up.pem")), expected);
        assert_eq!(
            fs::read_to_string(resolve_under(root.path(), Path::new("etc/ssl/certs/a.pem"))).expect("read"),
            "inside"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_end() {
        let root = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/loop", root.path().join("loop")).expect("symlink");
        let resolved = resolve_under(root.path(), Path::new("loop"));
        assert!(resolved.starts_with(root.path()));
    }
}
