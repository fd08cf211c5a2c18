//! Host facts on Windows (runbook step 6), from Windows itself:
//!
//! - OS: `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`:
//!   `CurrentMajorVersionNumber`.`CurrentMinorVersionNumber`.
//!   `CurrentBuildNumber`.`UBR` as the version (the form `winver` shows),
//!   the build number for the policy's `min_build`, and `ProductName` with
//!   `DisplayVersion` (e.g. "Windows 10 Pro 22H2") as evidence.
//! - Memory: `GlobalMemoryStatusEx`.
//! - Free disk: `GetDiskFreeSpaceExW` on the product's install path (the
//!   space available to the probe's account, quotas included).
//! - Architecture: the probe's own, as on Linux.
//! - Addresses: `GetAdaptersAddresses` ([`super::addresses`]).
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, bail};
use rollcall_common::policy::normalize_arch;
use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW;
use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
use winreg::RegKey;
use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_64KEY};

use crate::host::{HostObservation, Memory, OsRelease};

const CURRENT_VERSION_KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";
const MIB: u64 = 1024 * 1024;
/// Windows 11 kept "Windows 10" in `ProductName`; its builds start here.
const FIRST_WINDOWS_11_BUILD: u64 = 22000;

/// Every fact, each on its own.
pub fn observe(install_path: &Path) -> HostObservation {
    HostObservation {
        os: read_os(),
        arch: Ok(normalize_arch(std::env::consts::ARCH)),
        memory: read_memory(),
        free_disk_mb: free_disk_mb(install_path),
        addresses: super::addresses::read(),
        install_path: install_path.to_path_buf(),
    }
}

/// The OS version as Windows records it.
pub fn read_os() -> anyhow::Result<OsRelease> {
    let key = RegKey::predef(HKEY_LOCAL_MACHINE)
        .open_subkey_with_flags(CURRENT_VERSION_KEY, KEY_READ | KEY_WOW64_64KEY)
        .with_context(|| format!(r"open HKLM\{CURRENT_VERSION_KEY}"))?;
    let build_text: String = key
        .get_value("CurrentBuildNumber")
        .with_context(|| format!(r"read HKLM\{CURRENT_VERSION_KEY}\CurrentBuildNumber"))?;
    let Ok(build) = build_text.trim().parse::<u64>() else {
        bail!(r"HKLM\{CURRENT_VERSION_KEY}\CurrentBuildNumber is not a number: {build_text:?}");
    };
    // Windows 10 and later; older ones keep "6.3" in CurrentVersion.
    let major: Option<u32> = key.get_value("CurrentMajorVersionNumber").ok();
    let minor: Option<u32> = key.get_value("CurrentMinorVersionNumber").ok();
    let major_minor = match (major, minor) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => key
            .get_value::<String, _>("CurrentVersion")
            .map(|text| text.trim().to_string())
            .unwrap_or_else(|_| "10.0".to_string()),
    };
    let update_revision: Option<u32> = key.get_value("UBR").ok();
    let version_id = match update_revision {
        Some(revision) => format!("{major_minor}.{build}.{revision}"),
        None => format!("{major_minor}.{build}"),
    };
    Ok(OsRelease {
        id: "windows".to_string(),
        version_id: Some(version_id),
        build: Some(build),
        name: product_name(&key, build),
    })
}

/// Where Windows lists installed packages (updates among them, by KB).
const PACKAGES_KEY: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages";
/// Most package names looked at (a long-lived server has a few thousand).
const MAX_PACKAGES: usize = 50_000;

/// What Azure Code Signing readiness needs (runbook step 4): the build, its
/// UBR and the installed updates (Component Based Servicing's packages by
/// KB number; a missing key is no updates, not an error).
pub fn read_acs() -> anyhow::Result<crate::checks::AcsFacts> {
    let key = RegKey::predef(HKEY_LOCAL_MACHINE)
        .open_subkey_with_flags(CURRENT_VERSION_KEY, KEY_READ | KEY_WOW64_64KEY)
        .with_context(|| format!(r"open HKLM\{CURRENT_VERSION_KEY}"))?;
    let build_text: String = key
        .get_value("CurrentBuildNumber")
        .with_context(|| format!(r"read HKLM\{CURRENT_VERSION_KEY}\CurrentBuildNumber"))?;
    let Ok(build) = build_text.trim().parse::<u64>() else {
        bail!(r"HKLM\{CURRENT_VERSION_KEY}\CurrentBuildNumber is not a number: {build_text:?}");
    };
    let ubr: Option<u32> = key.get_value("UBR").ok();
    let names: Vec<String> =
        match RegKey::predef(HKEY_LOCAL_MACHINE).open_subkey_with_flags(PACKAGES_KEY, KEY_READ | KEY_WOW64_64KEY) {
            Ok(packages) => packages.enum_keys().take(MAX_PACKAGES).filter_map(Result::ok).collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error).with_context(|| format!(r"open HKLM\{PACKAGES_KEY}")),
        };
    Ok(crate::checks::AcsFacts {
        build,
        ubr: ubr.map(u64::from),
        updates: crate::checks::kb_numbers(names.iter().map(String::as_str)),
    })
}

/// "Windows 10 Pro 22H2", corrected to 11 where Windows did not.
fn product_name(key: &RegKey, build: u64) -> Option<String> {
    let mut name: String = key.get_value("ProductName").ok()?;
    if build >= FIRST_WINDOWS_11_BUILD && name.contains("Windows 10") {
        name = name.replace("Windows 10", "Windows 11");
    }
    let release: Option<String> = key
        .get_value("DisplayVersion")
        .or_else(|_| key.get_value("ReleaseId"))
        .ok();
    Some(match release {
        Some(release) if !release.trim().is_empty() => format!("{} {}", name.trim(), release.trim()),
        _ => name.trim().to_string(),
    })
}

/// Physical memory, total and available, in MiB.
pub fn read_memory() -> anyhow::Result<Memory> {
    let mut status = MEMORYSTATUSEX {
        dwLength: std::mem::size_of::<MEMORYSTATUSEX>() as u32,
        dwMemoryLoad: 0,
        ullTotalPhys: 0,
        ullAvailPhys: 0,
        ullTotalPageFile: 0,
        ullAvailPageFile: 0,
        ullTotalVirtual: 0,
        ullAvailVirtual: 0,
        ullAvailExtendedVirtual: 0,
    };
    // SAFETY: `status` is a live, writable MEMORYSTATUSEX with dwLength set
    // as the API requires.
    if unsafe { GlobalMemoryStatusEx(&mut status) } == 0 {
        bail!("GlobalMemoryStatusEx: {}", std::io::Error::last_os_error());
    }
    Ok(Memory {
        total_mb: status.ullTotalPhys / MIB,
        available_mb: Some(status.ullAvailPhys / MIB),
    })
}

/// Space available to this account on the volume holding `path`, in MiB.
pub fn free_disk_mb(path: &Path) -> anyhow::Result<u64> {
    let wide: Vec<u16> = OsStr::new(path).encode_wide().chain(std::iter::once(0)).collect();
    let mut available = 0u64;
    let mut total = 0u64;
    let mut free = 0u64;
    // SAFETY: `wide` is NUL-terminated and outlives the call; the three
    // out-pointers are live u64s.
    if unsafe { GetDiskFreeSpaceExW(wide.as_ptr(), &mut available, &mut total, &mut free) } == 0 {
        bail!(
            "GetDiskFreeSpaceEx {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(available / MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_is_windows_with_a_build_number() {
        let os = read_os().expect("read the OS version");
        assert_eq!(os.id, "windows");
        let build = os.build.expect("build");
        assert!(build > 0);
        let version = os.version_id.expect("version");
        assert!(version.contains(&format!(".{build}")), "{version} lacks {build}");
    }

    #[test]
    fn memory_and_disk_are_measured() {
        let memory = read_memory().expect("memory");
        assert!(memory.total_mb > 0);
        let dir = tempfile::tempdir().expect("tempdir");
        free_disk_mb(dir.path()).expect("free disk");
        let error = format!(
            "{:#}",
            free_disk_mb(&dir.path().join("absent")).expect_err("missing path")
        );
        assert!(error.contains("absent"), "{error}");
    }
}
