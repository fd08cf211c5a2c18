//! Issue 24 point 3 on Unix: the real `rollcall-agent`, running as root,
//! refuses to start when another user could change its config or a
//! command it would run (exit 78, the path and what is wrong named), and
//! starts when only root can.
//!
//! The rule applies only to an agent running as root; run as another user
//! (a developer's `cargo test`) this test says so and checks nothing. CI
//! runs as root.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::harness::AGENT;

fn agent(args: &[&str]) -> Output {
    Command::new(AGENT).args(args).output().expect("run rollcall-agent")
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn refusal(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(78), "refused as a bad config: {output:?}");
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn as_root_the_agent_refuses_a_config_or_command_others_can_change() {
    if !running_as_root() {
        eprintln!(
            "skipping: the agent checks who may change its files only when it runs as root, and this test is not root"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let script = dir.path().join("state.sh");
    std::fs::write(&script, "#!/bin/sh\necho 'version = \"1\"'\n").expect("write");
    chmod(&script, 0o755);
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "coordinator = \"https://127.0.0.1:1\"\ndata_dir = \"{}\"\n[product]\nstate_command = [\"sh\", \"{}\"]\n",
            data.display(),
            script.display()
        ),
    )
    .expect("write");
    chmod(&config, 0o644);
    let config_arg = config.display().to_string();

    let fine = agent(&["validate", "--config", &config_arg]);
    assert!(fine.status.success(), "only root can change these: {fine:?}");

    // A config its group may write.
    chmod(&config, 0o664);
    for command in ["validate", "run"] {
        let error = refusal(&agent(&[command, "--config", &config_arg]));
        assert!(
            error.contains(&format!("{config_arg} is writable by its group"))
                && error.contains("refusing to run with this config"),
            "{command}: {error}"
        );
    }
    chmod(&config, 0o644);

    // A script the state command runs, owned by another user.
    std::os::unix::fs::chown(&script, Some(65534), Some(65534)).expect("chown to nobody");
    let error = refusal(&agent(&["run", "--config", &config_arg]));
    assert!(
        error.contains(&format!("{} is owned by uid 65534", script.display()))
            && error.contains("state_command argument"),
        "{error}"
    );
    std::os::unix::fs::chown(&script, Some(0), Some(0)).expect("chown back");

    // A directory above the config that anyone may write (not sticky).
    chmod(dir.path(), 0o777);
    let error = refusal(&agent(&["run", "--config", &config_arg]));
    assert!(error.contains("is writable by group and others"), "{error}");
    chmod(dir.path(), 0o700);
    assert!(agent(&["validate", "--config", &config_arg]).status.success());
}

fn running_as_root() -> bool {
    // The e2e crate does not link rustix: ask the system.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
