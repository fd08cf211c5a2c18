//! Who may change what the agent runs: the agent runs as root or
//! LocalSystem, so a config, mapping, identity or command that a less
//! privileged user can change would let that user run a command as root
//! (issue 24 point 3). Before it starts, the agent refuses every such path
//! with an error naming it and what is wrong.
//!
//! - Unix, when running as root: each path, resolved and as written, and
//!   every directory above it must be owned by root and not writable by
//!   group or others (a sticky directory such as /tmp excepted: others
//!   cannot replace what root owns in it). Not running as root, there is
//!   nothing to escalate to and nothing is checked.
//! - Windows: each path and the directory holding it must be owned and
//!   changeable only by SYSTEM, Administrators or TrustedInstaller
//!   (`rollcall_common::files::ensure_admin_write_only`); not checkable
//!   under Wine, which keeps no ACLs (logged).

use std::path::{Path, PathBuf};

use anyhow::Context;
#[cfg(windows)]
use anyhow::bail;

use crate::config::{AgentConfig, ProductAdapter};

/// Every path whose writer decides what the agent does, with what it is:
/// the config itself, the mapping, the identity files and each command's
/// program (found on PATH when named bare) and the files its arguments name
/// by absolute path (a script run by an interpreter).
pub fn guarded_paths(config_path: &Path, config: &AgentConfig) -> Vec<(String, PathBuf)> {
    let mut paths = vec![("config".to_string(), config_path.to_path_buf())];
    if config.product.effective_adapter() == Some(ProductAdapter::ApexOne)
        && let Some(mapping) = &config.product.mapping
    {
        paths.push(("mapping".to_string(), mapping.clone()));
    }
    if let Ok(settings) = config.validate_for_run() {
        for (what, path) in [
            ("identity CA", settings.identity.ca),
            ("identity certificate", settings.identity.cert),
            ("identity key", settings.identity.key),
        ] {
            if path.exists() {
                paths.push((what.to_string(), path));
            }
        }
    }
    for (key, argv) in [
        ("state_command", &config.product.state_command),
        ("update_command", &config.product.update_command),
    ] {
        let Some(argv) = argv else { continue };
        let Some((program, arguments)) = argv.split_first() else {
            continue;
        };
        paths.push((format!("{key} program"), resolve_program(program)));
        for argument in arguments {
            let path = Path::new(argument);
            if path.is_absolute() && path.is_file() {
                paths.push((format!("{key} argument"), path.to_path_buf()));
            }
        }
    }
    paths
}

/// A bare program name as the command runner will find it on PATH; a name
/// found nowhere is returned as given (checking it fails: a program that
/// cannot be checked is not run).
fn resolve_program(program: &str) -> PathBuf {
    let path = Path::new(program);
    if path.components().count() > 1 || path.is_absolute() {
        return path.to_path_buf();
    }
    let candidates: Vec<String> = if cfg!(windows) && path.extension().is_none() {
        vec![program.to_string(), format!("{program}.exe")]
    } else {
        vec![program.to_string()]
    };
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|dir| candidates.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| path.to_path_buf())
}

/// Refuses to go on when anyone but root (Unix) or SYSTEM/Administrators
/// (Windows) can change a path in [`guarded_paths`].
pub fn ensure_trusted(config_path: &Path, config: &AgentConfig) -> anyhow::Result<()> {
    for (what, path) in guarded_paths(config_path, config) {
        check_path(&path).with_context(|| format!("refusing to run with this {what}"))?;
    }
    Ok(())
}

#[cfg(unix)]
fn check_path(path: &Path) -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    unix_rule::check(path, 0)
}

#[cfg(windows)]
fn check_path(path: &Path) -> anyhow::Result<()> {
    let absolute = std::path::absolute(path).with_context(|| format!("resolve {}", path.display()))?;
    // The path and the directory holding it; for a path not there yet, the
    // nearest directory that is (whoever can write there can create it).
    let mut existing = absolute.ancestors().filter(|ancestor| ancestor.exists());
    let Some(first) = existing.next() else {
        bail!("no part of {} exists", absolute.display());
    };
    rollcall_common::files::ensure_admin_write_only(first)?;
    if first == absolute.as_path()
        && let Some(parent) = existing.next()
    {
        rollcall_common::files::ensure_admin_write_only(parent)?;
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn check_path(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// The Unix rule, for a given trusted owner (root in the agent; the
/// tests' own user where they cannot be root).
#[cfg(unix)]
pub(crate) mod unix_rule {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    use anyhow::{Context, bail};

    /// `path` (as written and resolved) and each directory above it must be
    /// owned by `trusted_uid` and not writable by group or others (a
    /// sticky directory owned by `trusted_uid` or root may be). Parts that
    /// do not exist yet are skipped: whoever could create them needs write
    /// access to an existing directory above, which is checked.
    pub fn check(path: &Path, trusted_uid: u32) -> anyhow::Result<()> {
        let mut starts = vec![path.to_path_buf()];
        if path.exists() {
            starts.push(std::fs::canonicalize(path).with_context(|| format!("resolve {}", path.display()))?);
        }
        let mut seen: Vec<PathBuf> = Vec::new();
        for start in starts {
            for (index, ancestor) in start.ancestors().enumerate() {
                // A path not there yet (a program to be installed) is as safe
                // as the directories that would hold it.
                if ancestor.as_os_str().is_empty() || seen.iter().any(|done| done == ancestor) || !ancestor.exists() {
                    continue;
                }
                check_one(ancestor, index == 0, trusted_uid)?;
                seen.push(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn check_one(path: &Path, is_target: bool, trusted_uid: u32) -> anyhow::Result<()> {
        let metadata = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
        let mode = metadata.mode();
        let owner = metadata.uid();
        if let Some(problem) = problem(owner, mode, metadata.is_dir() && !is_target, trusted_uid) {
            bail!("{} {problem}", path.display());
        }
        Ok(())
    }

    /// What is wrong with an owner and mode, if anything.
    pub fn problem(owner: u32, mode: u32, is_ancestor_dir: bool, trusted_uid: u32) -> Option<String> {
        let sticky = mode & 0o1000 != 0;
        if owner != trusted_uid && !(is_ancestor_dir && owner == 0) {
            return Some(format!(
                "is owned by uid {owner}, not by uid {trusted_uid}: another user could change what the agent runs as root \
                 (chown {trusted_uid} it)"
            ));
        }
        if mode & 0o022 != 0 && !(is_ancestor_dir && sticky) {
            return Some(format!(
                "is writable by {} (mode {:o}): another user could change what the agent runs as root (chmod go-w it)",
                match (mode & 0o020 != 0, mode & 0o002 != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                },
                mode & 0o7777
            ));
        }
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::unix_rule::{check, problem};
    use super::*;

    #[test]
    fn owners_and_modes() {
        assert_eq!(problem(0, 0o100644, false, 0), None);
        assert_eq!(problem(0, 0o40755, true, 0), None);
        assert_eq!(problem(0, 0o41777, true, 0), None, "sticky /tmp above");
        let cases = [
            ((1000, 0o100644, false), "owned by uid 1000"),
            ((0, 0o100664, false), "writable by its group (mode 664)"),
            ((0, 0o100646, false), "writable by others (mode 646)"),
            ((0, 0o41777, false), "writable by group and others"),
            ((0, 0o40775, true), "writable by its group"),
            ((1000, 0o41777, true), "owned by uid 1000"),
        ];
        for ((owner, mode, ancestor), expected) in cases {
            let found = problem(owner, mode, ancestor, 0).unwrap_or_default();
            assert!(found.contains(expected), "{owner} {mode:o}: {found}");
        }
    }

    #[test]
    fn a_group_writable_file_or_directory_above_is_refused() {
        let uid = current_uid();
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("etc");
        std::fs::create_dir(&sub).expect("mkdir");
        let file = sub.join("agent.toml");
        std::fs::write(&file, "").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        check(&file, uid).expect("owner only");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        let error = format!("{:#}", check(&file, uid).expect_err("group-writable file"));
        assert!(error.contains("agent.toml is writable by its group"), "{error}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let error = format!("{:#}", check(&file, uid).expect_err("world-writable directory above"));
        assert!(error.contains("etc is writable by group and others"), "{error}");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // A link to it from a world-writable place is refused too.
        let link_dir = dir.path().join("open");
        std::fs::create_dir(&link_dir).expect("mkdir");
        std::fs::set_permissions(&link_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let link = link_dir.join("agent.toml");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let error = format!("{:#}", check(&link, uid).expect_err("through an open directory"));
        assert!(error.contains("open is writable"), "{error}");
    }

    #[test]
    fn guarded_paths_name_the_config_mapping_and_commands() {
        let config = AgentConfig::from_toml_str(
            "[product]\nstate_command = [\"sh\", \"/etc/rollcall/state.sh\", \"-x\"]\nupdate_command = [\"/opt/update\"]\n",
        )
        .expect("parse");
        let paths = guarded_paths(Path::new("/etc/rollcall/agent.toml"), &config);
        let names: Vec<&str> = paths.iter().map(|(what, _)| what.as_str()).collect();
        assert_eq!(names, ["config", "state_command program", "update_command program"]);
        assert!(paths[1].1.is_absolute(), "sh is found on PATH: {:?}", paths[1].1);
        assert_eq!(paths[2].1, PathBuf::from("/opt/update"));
    }

    fn current_uid() -> u32 {
        rustix::process::geteuid().as_raw()
    }
}
