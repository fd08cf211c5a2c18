//! `rollcall-agent setup`: what the MSI's deferred custom action runs (the
//! installed exe itself, as LocalSystem), and what a service started before
//! its enrolment finished does on its own.
//!
//! Setup secures the data directory before writing anything there, places
//! the shipped mapping unless an admin's copy is there, and enrols with the
//! retries of `enroll`. A kept `agent.toml` means an upgrade or a repair:
//! the identity stays and nothing is enrolled. An enrolment that does not
//! finish does not fail the install: what it needs is kept, owner-only, in
//! `pending-enrolment.toml`, and the service enrols from it, retrying until
//! it succeeds, saying so in its log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::enroll::{EnrollParams, enroll, write_enrollment};
use crate::platform::event::{Event, record};

/// Beside `agent.toml`: an enrolment the installer could not finish.
pub const PENDING_FILE: &str = "pending-enrolment.toml";
/// How long the service waits between enrolment rounds: 15 s at first,
/// growing to 5 min, so a token the coordinator refuses for good (used up,
/// expired) is not hammered while the admin replaces it.
const PENDING_RETRY: Duration = Duration::from_secs(15);
const PENDING_RETRY_MAX: Duration = Duration::from_secs(300);
/// One round (`enroll`'s own attempts with backoff) at most: an attempt
/// that hangs (a network that drops packets rather than refusing them) is
/// given up and the next round dials afresh.
const PENDING_ROUND: Duration = Duration::from_secs(60);

/// `rollcall-agent setup`'s arguments (MSI public properties, empty when
/// not given).
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// The data directory (the MSI: %ProgramData%\rollcall): secured first.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The coordinator URL (the MSI's COORDINATOR); empty: no enrolment now.
    #[arg(long, default_value = "")]
    pub coordinator: String,
    /// The coordinator's CA certificate file (the MSI's CA_FILE).
    #[arg(long, default_value = "")]
    pub ca: String,
    /// A file holding the enrolment token, e.g. on a share (the MSI's TOKENFILE).
    #[arg(long, default_value = "")]
    pub token_file: String,
    /// `k=v,k=v` (the MSI's LABELS property).
    #[arg(long, default_value = "")]
    pub labels: String,
    /// The host name to enrol as (the MSI's HOSTNAME); empty: the computer's.
    #[arg(long, default_value = "")]
    pub hostname: String,
    /// The shipped mapping, copied to DATA_DIR/apex-one.toml unless one is there.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// The agent.toml to start from.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// How long the install waits for the enrolment (with `enroll`'s
    /// retries) before leaving it to the service, in seconds (the MSI's
    /// ENROLL_TIMEOUT; empty or blank: 120).
    #[arg(long, default_value = "")]
    pub enroll_timeout: String,
}

/// ENROLL_TIMEOUT when not given.
const DEFAULT_ENROLL_TIMEOUT: Duration = Duration::from_secs(120);

/// An enrolment to finish later: everything `enroll` needs, the token
/// included (so the file is owner-only and removed once enrolled).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    coordinator: String,
    ca_pem: String,
    token: String,
    hostname: Option<String>,
    labels: BTreeMap<String, String>,
    template: Option<String>,
}

fn parse_labels(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            bail!("label {item:?} is not key=value (LABELS=\"site=osaka,role=branch\")");
        };
        labels.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(labels)
}

/// The setup step; the message printed says what happened.
pub async fn run(args: SetupArgs) -> anyhow::Result<String> {
    let data_dir = &args.data_dir;
    rollcall_common::files::secure_data_dir(data_dir)
        .with_context(|| format!("secure the data directory {}", data_dir.display()))?;
    if let Some(mapping) = &args.mapping {
        let placed = data_dir.join("apex-one.toml");
        if !placed.exists() {
            let text = rollcall_common::files::read_bounded(mapping, 1024 * 1024)
                .with_context(|| format!("read the shipped mapping {}", mapping.display()))?;
            rollcall_common::files::write_atomic(&placed, &text, true)?;
        }
    }
    let config_path = data_dir.join("agent.toml");
    if config_path.exists() {
        let said = format!(
            "rollcall agent installed: {} exists, enrolment and identity kept (upgrade or repair)",
            config_path.display()
        );
        record(Event::InstalledKept, &said);
        return Ok(said);
    }
    if args.coordinator.trim().is_empty() {
        bail!(
            "no COORDINATOR given and {} does not exist: a first install needs COORDINATOR, CA_FILE and TOKENFILE",
            config_path.display()
        );
    }
    let ca_pem = rollcall_common::files::read_bounded_utf8(Path::new(args.ca.trim()), 64 * 1024)
        .with_context(|| format!("read CA_FILE {:?}", args.ca))?;
    let token_text = rollcall_common::secret::Secret::new(
        rollcall_common::files::read_bounded_utf8(Path::new(args.token_file.trim()), 4096)
            .with_context(|| format!("read TOKENFILE {:?}", args.token_file))?,
    );
    let token = token_text
        .expose()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if token.is_empty() {
        bail!("TOKENFILE {:?} holds no token", args.token_file);
    }
    let template = match &args.template {
        Some(path) => Some(
            rollcall_common::files::read_bounded_utf8(path, crate::config::MAX_CONFIG_BYTES)
                .with_context(|| format!("read the template {}", path.display()))?,
        ),
        None => None,
    };
    let pending = Pending {
        coordinator: args.coordinator.trim().to_string(),
        ca_pem,
        token,
        hostname: Some(args.hostname.trim().to_string()).filter(|name| !name.is_empty()),
        labels: parse_labels(&args.labels)?,
        template,
    };
    let timeout = match args.enroll_timeout.trim() {
        "" => DEFAULT_ENROLL_TIMEOUT,
        seconds => Duration::from_secs(
            seconds
                .parse()
                .with_context(|| format!("ENROLL_TIMEOUT {seconds:?} is not a number of seconds"))?,
        ),
    };
    let outcome = match tokio::time::timeout(timeout, enroll_pending(data_dir, &pending)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(anyhow::anyhow!("no answer within {}s", timeout.as_secs())),
    };
    match outcome {
        Ok(agent_id) => {
            let said = format!(
                "rollcall agent installed and enrolled with {} as {agent_id}",
                pending.coordinator
            );
            record(Event::InstalledEnrolled, &said);
            Ok(said)
        }
        Err(error) => {
            let text = toml::to_string(&pending).context("encode the pending enrolment")?;
            rollcall_common::files::write_atomic(&data_dir.join(PENDING_FILE), text.as_bytes(), true)?;
            let said = format!(
                "rollcall agent installed, but its enrolment with {} did not finish ({error:#}); the service keeps retrying on its own and logs each attempt in {}",
                pending.coordinator,
                data_dir.join("logs").display()
            );
            record(Event::EnrolmentLeftToService, &said);
            Ok(said)
        }
    }
}

async fn enroll_pending(data_dir: &Path, pending: &Pending) -> anyhow::Result<String> {
    let template = match &pending.template {
        Some(text) => Some(AgentConfig::from_toml_str(text).context("parse the template agent config")?),
        None => None,
    };
    let params = EnrollParams {
        coordinator: pending.coordinator.clone(),
        ca_pem: pending.ca_pem.clone(),
        token: rollcall_common::secret::Secret::new(pending.token.as_str()),
        hostname: pending
            .hostname
            .clone()
            .unwrap_or_else(crate::main_entry::system_hostname),
        dial: Default::default(),
    };
    let enrolled = enroll(&params).await?;
    write_enrollment(
        data_dir,
        &pending.coordinator,
        &enrolled,
        pending.hostname.clone(),
        pending.labels.clone(),
        template,
    )?;
    Ok(enrolled.agent_id)
}

/// For a service whose config is not there yet: when an installer left a
/// pending enrolment beside it, enrols from it (retrying, logging each
/// failure) until it succeeds or `shutdown`. Returns whether the config
/// exists afterwards.
pub async fn finish_pending(config_path: &Path, shutdown: &CancellationToken) -> anyhow::Result<bool> {
    if config_path.exists() {
        return Ok(true);
    }
    let data_dir = config_path.parent().unwrap_or(Path::new("."));
    let pending_path = data_dir.join(PENDING_FILE);
    if !pending_path.exists() {
        return Ok(false);
    }
    rollcall_common::files::ensure_owner_only(&pending_path)?;
    let text = rollcall_common::files::read_bounded_utf8(&pending_path, 256 * 1024)?;
    let pending: Pending =
        toml::from_str(&text).with_context(|| format!("parse the pending enrolment {}", pending_path.display()))?;
    record(
        Event::EnrolmentPending,
        &format!(
            "enrolment pending: the installer could not finish it; enrolling with {} from {}, retrying until it succeeds",
            pending.coordinator,
            pending_path.display()
        ),
    );
    let mut backoff = crate::backoff::Backoff::new(PENDING_RETRY, PENDING_RETRY_MAX);
    let mut round = 1u32;
    loop {
        tracing::info!(
            "enrolment pending: round {round}, enrolling with {} (each attempt is logged)",
            pending.coordinator
        );
        let outcome = match tokio::time::timeout(PENDING_ROUND, enroll_pending(data_dir, &pending)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("no answer within {}s", PENDING_ROUND.as_secs())),
        };
        match outcome {
            Ok(agent_id) => {
                record(
                    Event::EnrolmentFinished,
                    &format!(
                        "enrolled with {} as {agent_id} (round {round}), which the installer could not finish; the agent now runs",
                        pending.coordinator
                    ),
                );
                if let Err(error) = std::fs::remove_file(&pending_path) {
                    tracing::warn!("remove {}: {error}", pending_path.display());
                }
                return Ok(true);
            }
            Err(error) => {
                let wait = backoff.next_delay();
                tracing::warn!(
                    "enrolment pending: round {round} failed: {error:#}; retrying in {}s ({})",
                    wait.as_secs().max(1),
                    pending_hint(&error)
                );
                round = round.saturating_add(1);
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        tracing::info!("enrolment pending: the service is stopping; it carries on at its next start");
                        return Ok(false);
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// What the admin can do about a failed round.
fn pending_hint(error: &anyhow::Error) -> &'static str {
    let text = format!("{error:#}");
    if text.contains("refused by") {
        "the coordinator refused the enrolment (the reason is above): a used-up or expired token needs a new TOKENFILE, another coordinator CA a new CA_FILE; reinstall with them"
    } else {
        "is the coordinator running and reachable from here? nothing to do if it is on its way back"
    }
}

/// How long the purge keeps trying: the service was stopped just before,
/// and the service manager reports it stopped while its process may still
/// be closing its log file. A file deleted while open stays in the
/// directory until it is closed, so the directory is not empty yet (seen
/// under Wine: "Directory is not empty", os error 145, and KEEP_DATA=0
/// left the data behind).
const PURGE_WAIT: Duration = Duration::from_secs(30);
const PURGE_RETRY: Duration = Duration::from_millis(250);

/// `rollcall-agent purge-data-dir`: the MSI's uninstall with KEEP_DATA=0.
/// Blocking (a one-shot command, nothing else runs beside it).
pub fn purge(data_dir: &Path) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + PURGE_WAIT;
    loop {
        match std::fs::remove_dir_all(data_dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) if std::time::Instant::now() < deadline => {
                tracing::debug!("remove {}: {error}; trying again", data_dir.display());
                std::thread::sleep(PURGE_RETRY);
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "remove {} (tried for {}s; a process still has a file there open)",
                        data_dir.display(),
                        PURGE_WAIT.as_secs()
                    )
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_property() {
        let labels = parse_labels("site=osaka, role=branch,").expect("labels");
        assert_eq!(labels.get("site").map(String::as_str), Some("osaka"));
        assert_eq!(labels.get("role").map(String::as_str), Some("branch"));
        assert!(parse_labels("").expect("none").is_empty());
        let error = format!("{:#}", parse_labels("site").expect_err("no ="));
        assert!(error.contains("not key=value"), "{error}");
    }

    #[test]
    fn purge_removes_the_tree_and_a_missing_one_is_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("rollcall");
        std::fs::create_dir_all(data.join("logs")).expect("mkdir");
        std::fs::create_dir_all(data.join("identity")).expect("mkdir");
        std::fs::write(data.join("logs/rollcall-agent.log"), "a line").expect("write");
        std::fs::write(data.join("identity/key.pem"), "key").expect("write");
        std::fs::write(data.join("pending-enrolment.toml"), "token").expect("write");
        purge(&data).expect("purge");
        assert!(!data.exists());
        purge(&data).expect("nothing left to purge");
    }

    #[tokio::test]
    async fn a_kept_config_is_an_upgrade_and_the_mapping_is_not_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("agent.toml"), "").expect("write");
        std::fs::write(data.join("apex-one.toml"), "# edited").expect("write");
        let shipped = dir.path().join("shipped.toml");
        std::fs::write(&shipped, "# shipped").expect("write");
        let said = run(SetupArgs {
            data_dir: data.clone(),
            coordinator: String::new(),
            ca: String::new(),
            token_file: String::new(),
            labels: String::new(),
            hostname: String::new(),
            mapping: Some(shipped),
            template: None,
            enroll_timeout: String::new(),
        })
        .await
        .expect("setup");
        assert!(said.contains("kept"), "{said}");
        assert_eq!(
            std::fs::read_to_string(data.join("apex-one.toml")).expect("read"),
            "# edited"
        );
    }
}
