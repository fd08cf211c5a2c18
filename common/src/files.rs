//! Careful file I/O: bounded reads of outside input, owner-only writes of
//! secrets, atomic replacement.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};

mod sddl;
#[cfg(windows)]
mod windows_acl;

pub use sddl::untrusted_writers;

/// Reads at most `limit` bytes of UTF-8 text; a larger file or invalid UTF-8
/// is an error, never a truncated read.
pub fn read_bounded_utf8(path: &Path, limit: u64) -> anyhow::Result<String> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|error| {
        anyhow::anyhow!(
            "{} is not valid UTF-8 (at byte {})",
            path.display(),
            error.utf8_error().valid_up_to()
        )
    })
}

/// Reads at most `limit` bytes; a larger file is an error.
pub fn read_bounded(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("read {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("{} is larger than the limit of {limit} bytes", path.display());
    }
    Ok(bytes)
}

/// Writes `contents` to `path` atomically (temp file, fsync, rename) with
/// mode 0600 when `private`, 0644 otherwise. On Windows a private file gets
/// an ACL for SYSTEM and Administrators only, set before anything secret is
/// written to it.
pub fn write_atomic(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("create directory {}", dir.display()))?;
    let file_name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    // Never through a link (issue 24 point 9): a leftover temp file, or a
    // link someone planted at its name, is removed (unlinking a link leaves
    // its target alone) and the file created anew, exclusively; the rename
    // then replaces `path` itself, even where `path` is a link.
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("remove stale {}", temp.display())),
    }
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if private { 0o600 } else { 0o644 });
        }
        let mut file = options
            .open(&temp)
            .with_context(|| format!("create {}", temp.display()))?;
        #[cfg(windows)]
        if private {
            windows_acl::restrict_file(&temp)?;
        }
        #[cfg(not(any(unix, windows)))]
        let _ = private;
        file.write_all(contents)
            .with_context(|| format!("write {}", temp.display()))?;
        file.sync_all().with_context(|| format!("sync {}", temp.display()))?;
    }
    fs::rename(&temp, path).with_context(|| format!("rename into {}", path.display()))?;
    if let Ok(dir_handle) = fs::File::open(dir) {
        // Make the rename itself durable; failure here is not worth failing the write.
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

/// Creates a directory (and parents) readable by its owner only.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(path).with_context(|| format!("create directory {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restrict permissions of {}", path.display()))?;
    }
    #[cfg(windows)]
    windows_acl::restrict_dir(path)?;
    Ok(())
}

/// Windows: creates the directory, or resets one that exists, owned by
/// Administrators with SYSTEM and Administrators only (inheritance from
/// above removed), everything inside it included. Elsewhere: creates it
/// owner-only (mode 0700).
pub fn secure_data_dir(path: &Path) -> anyhow::Result<()> {
    #[cfg(windows)]
    return windows_acl::secure_tree(path);
    #[cfg(not(windows))]
    create_private_dir(path)
}

/// Windows: refuses a file or directory that anyone but SYSTEM,
/// Administrators and TrustedInstaller owns or may change (not checked
/// under Wine, which keeps no ACLs; it logs that). The Unix rule, which
/// needs the process's user, is the agent's (`agent/src/trust.rs`).
#[cfg(windows)]
pub fn ensure_admin_write_only(path: &Path) -> anyhow::Result<()> {
    windows_acl::ensure_admin_write_only(path)
}

/// Refuses a secret file that group or others can read (on Windows: whose
/// ACL lets in anyone but SYSTEM and Administrators).
pub fn ensure_owner_only(path: &Path) -> anyhow::Result<()> {
    #[cfg(windows)]
    windows_acl::ensure_admins_only(path)?;
    #[cfg(not(any(unix, windows)))]
    let _ = path;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .with_context(|| format!("stat {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_read_refuses_large_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        fs::write(&path, vec![b'a'; 100]).expect("write");
        assert!(read_bounded(&path, 99).is_err());
        assert_eq!(read_bounded(&path, 100).expect("read").len(), 100);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad");
        fs::write(&path, [0x66, 0xff, 0xfe]).expect("write");
        let error = read_bounded_utf8(&path, 10).expect_err("invalid");
        assert!(error.to_string().contains("UTF-8"));
    }

    #[test]
    fn private_writes_are_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        write_atomic(&path, b"secret", true).expect("write");
        ensure_owner_only(&path).expect("owner only");
        write_atomic(&path, b"public", false).expect("write");
        #[cfg(windows)]
        if windows_acl::running_under_wine() {
            // Wine keeps no ACLs: nothing to refuse there.
            return;
        }
        assert!(ensure_owner_only(&path).is_err());
    }
}

#[cfg(all(test, unix))]
mod no_link_tests {
    use super::*;

    #[test]
    fn an_atomic_write_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        let path = dir.path().join("state.json");
        // A link at the temp file's name, and the destination itself a link.
        let temp = dir.path().join(format!(".state.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &temp).expect("plant temp link");
        write_atomic(&path, b"new", true).expect("write");
        assert_eq!(fs::read(&victim).expect("read"), b"precious");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink(&victim, &path).expect("plant destination link");
        write_atomic(&path, b"newer", true).expect("write");
        assert_eq!(
            fs::read(&victim).expect("read"),
            b"precious",
            "the link is replaced, not followed"
        );
        assert!(!fs::symlink_metadata(&path).expect("meta").file_type().is_symlink());
    }
}
