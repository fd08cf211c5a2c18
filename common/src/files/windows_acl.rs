//! Owner-only files on Windows: the counterpart of mode 0600/0700. Secret
//! files (the agent key, the spool) get a protected DACL granting SYSTEM
//! and the Administrators group full control and nobody else anything; a
//! secret whose DACL grants anyone else access is refused at load.
//!
//! The descriptors are written and read as SDDL through the Win32 security
//! API, never hand-built ACL bytes. This file and the agent's
//! `platform/windows` modules are the only places `unsafe` is allowed; each
//! block states why it is sound.
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;

use anyhow::bail;
use windows_sys::Win32::Foundation::{ERROR_SUCCESS, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, AdjustTokenPrivileges, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetSecurityDescriptorOwner,
    LUID_AND_ATTRIBUTES, LookupPrivilegeValueW, OBJECT_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SE_PRIVILEGE_ENABLED, TOKEN_ADJUST_PRIVILEGES,
    TOKEN_PRIVILEGES,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// SYSTEM and Administrators, full control, nothing inherited from above.
const FILE_SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";
/// The same for a directory, inherited by what is created inside it.
const DIR_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// The data directory's descriptor: owned by Administrators, SYSTEM and
/// Administrators only, inherited by what is created inside.
const OWNED_DIR_SDDL: &str = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";
/// The same for a file already inside it.
const OWNED_FILE_SDDL: &str = "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)";

/// Trustees an owner-only secret may grant access to (SDDL aliases and the
/// SIDs they stand for).
const ALLOWED_TRUSTEES: [&str; 4] = ["SY", "BA", "S-1-5-18", "S-1-5-32-544"];

/// Restricts a file to SYSTEM and Administrators.
pub fn restrict_file(path: &Path) -> anyhow::Result<()> {
    set_dacl(path, FILE_SDDL)
}

/// Restricts a directory (and, by inheritance, what is created in it).
pub fn restrict_dir(path: &Path) -> anyhow::Result<()> {
    set_dacl(path, DIR_SDDL)
}

/// Refuses a secret whose DACL lets anyone but SYSTEM and Administrators in.
///
/// Under Wine (where CI runs the Windows probe) there is no DACL to check:
/// Wine accepts a new DACL without keeping it and reports one made up from
/// the Unix mode bits, so the Unix permissions of the Wine prefix are the
/// only protection there is. The check says so in the log and passes;
/// everywhere else (real Windows) it is enforced.
pub fn ensure_admins_only(path: &Path) -> anyhow::Result<()> {
    if running_under_wine() {
        tracing::warn!(
            "running under Wine, which keeps no file ACLs: {} is protected only by the Unix permissions of the Wine prefix",
            path.display()
        );
        return Ok(());
    }
    let sddl = read_dacl_sddl(path)?;
    let strangers = strangers_in(&sddl);
    if !strangers.is_empty() {
        bail!(
            "{} is readable by others ({} in its ACL); allow only SYSTEM and Administrators: \
             icacls \"{}\" /inheritance:r /grant:r SYSTEM:F /grant:r Administrators:F",
            path.display(),
            strangers.join(", "),
            path.display()
        );
    }
    Ok(())
}

/// Trustees of the allow entries that are neither SYSTEM nor Administrators.
/// A DACL-less descriptor ("D:NO_ACCESS_CONTROL" or no "D:") lets everyone in.
fn strangers_in(sddl: &str) -> Vec<String> {
    let Some(dacl) = sddl.split("D:").nth(1) else {
        return vec!["everyone (no DACL)".to_string()];
    };
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        return vec!["everyone (no DACL)".to_string()];
    }
    dacl.split('(')
        .skip(1)
        .filter_map(|ace| ace.split(')').next())
        .filter_map(|ace| {
            let fields: Vec<&str> = ace.split(';').collect();
            let kind = fields.first().copied().unwrap_or_default();
            let trustee = fields.get(5).copied().unwrap_or_default();
            let allows = kind == "A" || kind == "OA";
            (allows && !ALLOWED_TRUSTEES.contains(&trustee)).then(|| trustee.to_string())
        })
        .collect()
}

/// True inside Wine: its ntdll exports `wine_get_version`, Windows' does not.
pub fn running_under_wine() -> bool {
    let ntdll = wide(OsStr::new("ntdll.dll"));
    // SAFETY: `ntdll` is NUL-terminated; ntdll is mapped into every process
    // for its whole life, so the module handle needs no release.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return false;
    }
    // SAFETY: a valid module handle and a NUL-terminated ASCII name; the
    // result is only compared with null, never called.
    unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }.is_some()
}

fn wide(text: &OsStr) -> Vec<u16> {
    text.encode_wide().chain(std::iter::once(0)).collect()
}

/// Frees memory the security API allocated with LocalAlloc.
struct LocalMemory(*mut core::ffi::c_void);

impl Drop for LocalMemory {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from an API documented to allocate it
            // with LocalAlloc, and is freed exactly once, here.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// Makes `path` (a directory, created if missing) and everything under it
/// owned by Administrators with a protected DACL for SYSTEM and
/// Administrators only: a directory someone else made beforehand is reset,
/// never trusted. Runs before the installer writes anything into it.
pub fn secure_tree(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).map_err(|error| anyhow::anyhow!("create directory {}: {error}", path.display()))?;
    // Taking ownership of what another user made needs these privileges;
    // LocalSystem and elevated administrators hold them, disabled.
    enable_privilege("SeTakeOwnershipPrivilege");
    enable_privilege("SeRestorePrivilege");
    set_descriptor(path, OWNED_DIR_SDDL, true)?;
    let entries = std::fs::read_dir(path).map_err(|error| anyhow::anyhow!("list {}: {error}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|error| anyhow::anyhow!("list {}: {error}", path.display()))?;
        let kind = entry
            .file_type()
            .map_err(|error| anyhow::anyhow!("stat {}: {error}", entry.path().display()))?;
        if kind.is_dir() {
            secure_tree(&entry.path())?;
        } else {
            // A link is reset too (its own descriptor), never followed.
            set_descriptor(&entry.path(), OWNED_FILE_SDDL, true)?;
        }
    }
    Ok(())
}

/// Refuses a file or directory that anyone but SYSTEM, Administrators and
/// TrustedInstaller owns or may change: what the agent runs as LocalSystem
/// (its config, mapping, identity, the commands it runs).
///
/// Under Wine there is nothing to check: it keeps no file ACLs and reports
/// one made up from the Unix mode bits. The check logs that and passes;
/// on Windows it is enforced.
pub fn ensure_admin_write_only(path: &Path) -> anyhow::Result<()> {
    if running_under_wine() {
        tracing::warn!(
            "running under Wine, which keeps no file ACLs: who may change {} is not checked",
            path.display()
        );
        return Ok(());
    }
    let sddl = read_sddl(path, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION)?;
    let writers = super::sddl::untrusted_writers(&sddl);
    if !writers.is_empty() {
        bail!(
            "{} can be changed by others ({}), and the agent runs it or reads what to run from it as LocalSystem; \
             allow only SYSTEM and Administrators: icacls \"{}\" /setowner Administrators /inheritance:r \
             /grant:r SYSTEM:F /grant:r Administrators:F (or reinstall, which resets the data directory)",
            path.display(),
            writers.join(", "),
            path.display()
        );
    }
    Ok(())
}

/// Enables a privilege the process token holds; best effort (without it
/// the descriptor change that needs it fails and says so).
fn enable_privilege(name: &str) {
    let name_wide = wide(OsStr::new(name));
    let mut token = null_mut();
    // SAFETY: the pseudo handle of this process is always valid; the API
    // writes one handle to `token`, closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES, &mut token) } == 0 {
        return;
    }
    let mut privileges = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES {
            Luid: windows_sys::Win32::Foundation::LUID {
                LowPart: 0,
                HighPart: 0,
            },
            Attributes: SE_PRIVILEGE_ENABLED,
        }],
    };
    // SAFETY: `name_wide` is NUL-terminated; the API writes the LUID into
    // the struct we own; `token` is the handle opened above.
    unsafe {
        if LookupPrivilegeValueW(null_mut(), name_wide.as_ptr(), &mut privileges.Privileges[0].Luid) != 0 {
            AdjustTokenPrivileges(token, 0, &privileges, 0, null_mut(), null_mut());
        }
        windows_sys::Win32::Foundation::CloseHandle(token);
    }
}

fn set_dacl(path: &Path, sddl: &str) -> anyhow::Result<()> {
    set_descriptor(path, sddl, false)
}

fn set_descriptor(path: &Path, sddl: &str, with_owner: bool) -> anyhow::Result<()> {
    let sddl_wide = wide(OsStr::new(sddl));
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: `sddl_wide` is NUL-terminated and outlives the call; the API
    // writes one pointer to `descriptor`, which we free with LocalFree.
    let converted = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl_wide.as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            null_mut(),
        )
    };
    if converted == 0 {
        bail!(
            "build the security descriptor {sddl}: {}",
            std::io::Error::last_os_error()
        );
    }
    let _descriptor = LocalMemory(descriptor);
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = null_mut();
    // SAFETY: `descriptor` is the valid descriptor converted above; the
    // DACL pointer it yields points into it and is used while it lives.
    let found = unsafe { GetSecurityDescriptorDacl(descriptor, &mut present, &mut dacl, &mut defaulted) };
    if found == 0 || present == 0 {
        bail!("the security descriptor {sddl} has no DACL");
    }
    let mut owner: PSID = null_mut();
    let mut what: OBJECT_SECURITY_INFORMATION = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
    if with_owner {
        // SAFETY: as above; the owner SID points into `descriptor`.
        if unsafe { GetSecurityDescriptorOwner(descriptor, &mut owner, &mut defaulted) } == 0 || owner.is_null() {
            bail!("the security descriptor {sddl} has no owner");
        }
        what |= OWNER_SECURITY_INFORMATION;
    }
    let path_wide = wide(path.as_os_str());
    // SAFETY: `path_wide` is NUL-terminated; `dacl` and `owner` (null when
    // the owner is kept) are valid (above); group and SACL are not changed.
    let status = unsafe {
        SetNamedSecurityInfoW(
            path_wide.as_ptr(),
            SE_FILE_OBJECT,
            what,
            owner,
            null_mut(),
            dacl,
            null_mut(),
        )
    };
    if status != ERROR_SUCCESS {
        bail!(
            "restrict the owner and ACL of {} to SYSTEM and Administrators: {}",
            path.display(),
            std::io::Error::from_raw_os_error(status as i32)
        );
    }
    Ok(())
}

fn read_dacl_sddl(path: &Path) -> anyhow::Result<String> {
    read_sddl(path, DACL_SECURITY_INFORMATION)
}

fn read_sddl(path: &Path, what: OBJECT_SECURITY_INFORMATION) -> anyhow::Result<String> {
    let path_wide = wide(path.as_os_str());
    let mut dacl: *mut ACL = null_mut();
    let mut owner: PSID = null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: `path_wide` is NUL-terminated; the API allocates the
    // descriptor (freed below) and points `owner` and `dacl` into it.
    let status = unsafe {
        GetNamedSecurityInfoW(
            path_wide.as_ptr(),
            SE_FILE_OBJECT,
            what,
            &mut owner,
            null_mut(),
            &mut dacl,
            null_mut(),
            &mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        bail!(
            "read the ACL of {}: {}",
            path.display(),
            std::io::Error::from_raw_os_error(status as i32)
        );
    }
    let _descriptor = LocalMemory(descriptor);
    let mut text: *mut u16 = null_mut();
    let mut length = 0u32;
    // SAFETY: `descriptor` is valid (above); the API allocates `text`
    // (freed below) holding `length` UTF-16 units.
    let converted = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(descriptor, SDDL_REVISION_1, what, &mut text, &mut length)
    };
    if converted == 0 || text.is_null() {
        bail!(
            "describe the ACL of {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    let _text = LocalMemory(text.cast());
    // SAFETY: the API wrote `length` units at `text`, alive until `_text`
    // drops at the end of this function.
    let units = unsafe { std::slice::from_raw_parts(text, length as usize) };
    Ok(String::from_utf16_lossy(units).trim_end_matches('\0').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_system_and_administrators_are_allowed() {
        assert!(strangers_in(FILE_SDDL).is_empty());
        assert!(strangers_in(DIR_SDDL).is_empty());
        assert_eq!(strangers_in("D:P(A;;FA;;;SY)(A;;FR;;;BU)"), vec!["BU"]);
        assert_eq!(strangers_in("D:(A;;0x1200a9;;;WD)(D;;FA;;;AN)"), vec!["WD"]);
        assert_eq!(strangers_in("O:SY"), vec!["everyone (no DACL)"]);
        assert_eq!(strangers_in("D:NO_ACCESS_CONTROL"), vec!["everyone (no DACL)"]);
    }

    #[test]
    fn a_restricted_file_passes_and_an_open_one_is_refused() {
        if running_under_wine() {
            // Wine keeps no ACLs (see ensure_admins_only); this runs on Windows.
            crate::test_skip::skip(
                "Wine keeps no file ACLs, so there is nothing to check here",
                "run the Windows unit tests on a real Windows to run it",
            );
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "secret").expect("write");
        set_dacl(&path, "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;WD)").expect("open to everyone");
        let error = format!("{:#}", ensure_admins_only(&path).expect_err("everyone may read"));
        assert!(error.contains("WD"), "{error}");
        restrict_file(&path).expect("restrict");
        ensure_admins_only(&path).expect("restricted");
    }
}
