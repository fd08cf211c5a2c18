//! `xtask demo`: the runbook's story, told by the real programs, start to
//! end. It builds `rollcall-server`, `rollcall-agent` and `rollcall` in
//! release (left in `target/release` for what the README says next), then
//! runs a coordinator on the embedded store in a temporary directory and a
//! small fleet of real agents (the real agent code, real mTLS on loopback)
//! whose planted facts describe Windows endpoints with the Apex One
//! Security Agent (`demo/fleet.rs`). It starts a rollout with compressed
//! timings, prints the first causes as the coordinator finds them, plays
//! the admin (fixes three settings, sends rechecks and a manual update
//! notification), shows completion rising, prints the step-8 support
//! report (`--lang ja` for Japanese) and exits 0. `--keep-running` leaves
//! the fleet up afterwards and prints the commands to explore it.
//!
//! Output is one line per change (a straggler's state or cause, the
//! completion count), never the whole table again, whether or not it is a
//! terminal, so it reads the same in a log.

mod fleet;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rollcall_agent::config::SpoolConfig;
use rollcall_agent::spool::Spool;
use rollcall_common::i18n::{Catalog, Lang};
use rollcall_common::proto;
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use rollcall_cli::AdminClient;
use rollcall_server::config::ServeConfig;
use rollcall_server::data_dir::DataDir;

use fleet::{Addresses, FLEET, Fix, Prepared, TARGET, UPDATE_AGENT};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the coordinator listens (a free port is used if it is taken).
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: SocketAddr,
    /// Keep the demo's files here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Language of the step-8 report printed at the end.
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
    /// After the story, keep the coordinator and the fleet running (until
    /// Ctrl-C) and print the commands to explore them.
    #[arg(long)]
    pub keep_running: bool,
    /// Do not build the release binaries first (they are only needed to
    /// explore the fleet afterwards; the story itself runs in this process).
    #[arg(long)]
    pub no_build: bool,
    /// Also serve the web dashboard here (HTTPS with the admin certificate).
    #[arg(long)]
    pub dashboard_listen: Option<SocketAddr>,
}

/// How long the whole story may take before the demo gives up on a step.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(300);

type Api = proto::admin_service_client::AdminServiceClient<tonic::transport::Channel>;

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Where cargo puts the release binaries.
fn release_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("release")
}

/// Builds the three programs in release, before anything starts, so that
/// what the README says after the demo (`target/release/rollcall …`) works.
pub fn build_binaries() -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!(
        "building rollcall-server, rollcall-agent and rollcall (release) into {}",
        release_dir().display()
    );
    let status = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            "rollcall-server",
            "-p",
            "rollcall-agent",
            "-p",
            "rollcall-cli",
            "--bin",
            "rollcall-server",
            "--bin",
            "rollcall-agent",
            "--bin",
            "rollcall",
        ])
        .status()
        .context("run cargo build")?;
    anyhow::ensure!(
        status.success(),
        "cargo build of the release binaries failed ({status})"
    );
    Ok(())
}

/// One endpoint as the coordinator sees it in the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// completed, pending, soft or hard.
    state: String,
    cause: String,
    step: u32,
    blocks: u32,
}

/// What the coordinator says of the rollout at one moment.
#[derive(Debug, Default)]
struct Snapshot {
    hosts: BTreeMap<String, Seen>,
    ids: BTreeMap<String, String>,
    completed: u32,
    total: u32,
}

impl Snapshot {
    fn state(&self, host: &str) -> &str {
        self.hosts.get(host).map_or("", |seen| seen.state.as_str())
    }
    fn cause(&self, host: &str) -> &str {
        self.hosts.get(host).map_or("", |seen| seen.cause.as_str())
    }
}

async fn snapshot(api: &mut Api) -> Option<Snapshot> {
    let status = api
        .status(proto::StatusRequest {
            rollout_id: String::new(),
            history: false,
        })
        .await
        .ok()?
        .into_inner();
    let stragglers = api
        .stragglers(proto::StragglersRequest {
            rollout_id: String::new(),
        })
        .await
        .ok()?
        .into_inner()
        .stragglers;
    let agents = api
        .list_agents(proto::ListAgentsRequest { selector: "all".into() })
        .await
        .ok()?
        .into_inner()
        .agents;
    let mut snapshot = Snapshot {
        completed: status.completed,
        total: status.total,
        ..Snapshot::default()
    };
    for agent in agents {
        let state = if rollcall_common::version::is_at_least(&agent.version, TARGET).unwrap_or(false) {
            "completed"
        } else {
            "pending"
        };
        snapshot.ids.insert(agent.hostname.clone(), agent.id.clone());
        snapshot.hosts.insert(
            agent.hostname,
            Seen {
                state: state.into(),
                cause: String::new(),
                step: 0,
                blocks: 0,
            },
        );
    }
    for straggler in stragglers {
        snapshot.hosts.insert(
            straggler.hostname,
            Seen {
                state: straggler.state,
                cause: straggler.cause,
                step: straggler.runbook_step,
                blocks: straggler.blocks,
            },
        );
    }
    Some(snapshot)
}

/// Prints what changed since the last snapshot, one line per change.
struct Narrator {
    last: BTreeMap<String, Seen>,
    completed: Option<(u32, u32)>,
}

impl Narrator {
    fn tell(&mut self, snapshot: &Snapshot) {
        for (host, seen) in &snapshot.hosts {
            if self.last.get(host) == Some(seen) {
                continue;
            }
            let was = self.last.get(host).map_or("new", |old| old.state.as_str());
            let line = match seen.state.as_str() {
                "completed" => format!("  {host:<15} {was} -> completed"),
                "pending" => format!("  {host:<15} pending (grace period)"),
                state => {
                    let blocks = if seen.blocks > 0 {
                        format!(", blocks {} clients", seen.blocks)
                    } else {
                        String::new()
                    };
                    let step = if seen.step == 0 {
                        "no runbook step".to_string()
                    } else {
                        format!("step {}", seen.step)
                    };
                    format!(
                        "  {host:<15} {was} -> straggler ({state}): {} ({step}){blocks}",
                        seen.cause
                    )
                }
            };
            println!("{line}");
        }
        self.last = snapshot.hosts.clone();
        let completion = (snapshot.completed, snapshot.total);
        if snapshot.total > 0 && self.completed != Some(completion) {
            println!(
                "  completion {}",
                rollcall_cli::progress_bar(snapshot.completed, snapshot.total, 20)
            );
            self.completed = Some(completion);
        }
    }
}

/// Polls and narrates until `done` holds (or the step times out, which
/// the story says and goes on from).
async fn wait_for(
    api: &mut Api,
    narrator: &mut Narrator,
    shutdown: &CancellationToken,
    what: &str,
    done: impl Fn(&Snapshot) -> bool,
) -> Option<Snapshot> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(snapshot) = snapshot(api).await {
            narrator.tell(&snapshot);
            if done(&snapshot) {
                return Some(snapshot);
            }
        }
        if tokio::time::Instant::now() > deadline {
            println!(
                "  (still waiting for {what} after {}s; going on)",
                STEP_TIMEOUT.as_secs()
            );
            return snapshot(api).await;
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Sends a command to the agents a selector picks and waits for their answers.
async fn command(api: &mut Api, kind: proto::CommandKind, selector: &str) -> anyhow::Result<()> {
    let mut stream = api
        .send_command(proto::SendCommandRequest {
            selector: selector.into(),
            kind: kind as i32,
            wait_ms: 8000,
        })
        .await
        .with_context(|| format!("send {kind:?} to {selector}"))?
        .into_inner();
    while let Some(progress) = tokio_stream::StreamExt::next(&mut stream).await {
        let Ok(progress) = progress else { break };
        if progress.done {
            println!(
                "    {} targeted, {} answered, {} refused",
                progress.targeted, progress.answered, progress.refused
            );
        }
    }
    Ok(())
}

fn admin(says: &str) {
    println!();
    println!(">>> admin: {says}");
}

fn intro(url: &str, base: &Path, addresses: &Addresses) {
    println!();
    println!("rollcall demo: why did the Apex One agent upgrade not finish on some endpoints?");
    println!();
    println!(
        "A coordinator at {url} and {} endpoints with the Trend Micro Apex One",
        FLEET.len()
    );
    println!(
        "Security Agent {}, about to be upgraded to {TARGET}. Each endpoint is planted",
        fleet::FROM
    );
    println!("with one cause from the vendor's runbook (steps 1-7). The probes run here, on");
    println!("Linux, in this process, and read the planted facts from files (files in");
    println!(
        "{}); real endpoints run the Windows probe (rollcall-agent.exe, a",
        base.display()
    );
    println!("service), which reads the same facts from Apex One's registry and .ini files.");
    println!("The Apex One server and update agent ua-osaka-01 are played by the");
    println!(
        "coordinator's port ({}); sapporo's server address is a closed port.",
        addresses.server
    );
    println!();
    for host in FLEET {
        let os = host
            .os
            .lines()
            .find_map(|line| line.strip_prefix("PRETTY_NAME="))
            .unwrap_or("")
            .trim_matches('"');
        println!(
            "  {:<15} {:<9} {:<12} {:<10} {:<32} {}",
            host.name,
            host.site,
            host.role,
            host.version,
            os,
            host.story()
        );
    }
    println!();
    println!("How to read what follows: every endpoint is pending during the grace period.");
    println!("After it, one still behind is a straggler with its runbook cause. It is soft");
    println!("while the coordinator still rechecks it (at once, then after 2s, doubling, 2");
    println!("attempts here); hard once the attempts are spent: a person must act. A hard");
    println!("straggler whose cause is fixed is rechecked on request and completes like any.");
    println!();
}

async fn print_report(api: &mut Api, lang: Lang) -> anyhow::Result<()> {
    let response = api
        .get_report(proto::ReportRequest {
            rollout_id: String::new(),
        })
        .await
        .context("get the step-8 report")?
        .into_inner();
    let report: rollcall_common::report::Report =
        serde_json::from_str(&response.json).context("read the step-8 report")?;
    println!();
    println!(
        "=== runbook step 8: the report for support (rollcall report{}) ===",
        match lang {
            Lang::En => "",
            Lang::Ja => " --lang ja",
        }
    );
    println!();
    print!(
        "{}",
        rollcall_common::report::markdown::render(&report, &Catalog::new(lang))
    );
    Ok(())
}

fn explore(url: &str, data_dir: &DataDir, ids: &BTreeMap<String, String>, dashboard: Option<SocketAddr>) {
    let cli = release_dir().join("rollcall");
    let ua = ids.get(UPDATE_AGENT).map_or("<ID>", String::as_str);
    let straggler = ids.get("kanazawa-pc-01").map_or("<ID>", String::as_str);
    println!();
    println!("The fleet keeps running (Ctrl-C stops it). Explore it from another terminal:");
    println!();
    println!("  export ROLLCALL_COORDINATOR={url}");
    println!("  export ROLLCALL_IDENTITY={}", data_dir.admin_dir().display());
    println!("  {} status --history", cli.display());
    println!("  {} stragglers", cli.display());
    println!("  {} agent {ua}", cli.display());
    println!("  {} agent {straggler}", cli.display());
    println!("  {} report --lang ja", cli.display());
    println!("  {} watch", cli.display());
    println!("  {} recheck cause=unknown", cli.display());
    if let Some(dashboard) = dashboard {
        println!(
            "  dashboard: https://{dashboard}/ (client certificate {}/cert.pem + key.pem)",
            data_dir.admin_dir().display()
        );
    }
    if !cli.exists() {
        println!(
            "  ({} is not built: run the demo without --no-build, or cargo build --release)",
            cli.display()
        );
    }
    println!();
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("create the demo directory")?;
    let base = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let data_dir = DataDir::new(base.join("coordinator"));
    data_dir.init(&["localhost".to_string(), "127.0.0.1".to_string()], true)?;

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a loopback port")?,
    };
    let addr = listener.local_addr()?;
    let url = format!("https://{addr}");
    let shutdown = CancellationToken::new();
    let mut config = ServeConfig::new(data_dir.root());
    config.heartbeat_interval = Duration::from_secs(1);
    config.engine_interval = Duration::from_millis(500);
    config.dashboard_listen = args.dashboard_listen;
    let server_task = tokio::spawn(rollcall_server::server::run(config, listener, shutdown.clone()));
    let signal = tokio::spawn(rollcall_server::main_entry::shutdown_on_signal(shutdown.clone()));

    let story = tell(&args, &base, &data_dir, &url, addr, &shutdown).await;
    if story.is_err() {
        shutdown.cancel();
    }
    shutdown.cancel();
    signal.abort();
    server_task.await.context("coordinator task")??;
    story
}

/// The story, from enrolment to the report.
async fn tell(
    args: &DemoArgs,
    base: &Path,
    data_dir: &DataDir,
    url: &str,
    addr: SocketAddr,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let admin_client =
        AdminClient::connect(url, Some(&data_dir.admin_dir())).map_err(|e| anyhow::anyhow!(e.message))?;
    let mut api = admin_client.inner.clone();
    let (code_signing, _) = rollcall_common::pki::CertAuthority::generate("Trend Micro code-signing root (demo)")?;
    let der = rollcall_common::pki::first_cert_der(code_signing.cert_pem())?;
    let fingerprint = hex::encode(sha2::Sha256::digest(&der));
    let addresses = Addresses {
        server: addr.to_string(),
        closed: {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.to_string()
        },
        update_agent: addr.to_string(),
    };
    api.apply_policy(proto::ApplyPolicyRequest {
        toml: fleet::policy(&fingerprint, &addresses.update_agent),
    })
    .await
    .context("apply the demo policy")?;
    let token = api
        .create_token(proto::CreateTokenRequest {
            uses: u32::try_from(FLEET.len()).unwrap_or(u32::MAX),
            ttl_seconds: 600,
            labels: Default::default(),
        })
        .await
        .context("create the demo enrollment token")?
        .into_inner()
        .token;
    let ca_pem = std::fs::read_to_string(data_dir.ca_cert())?;

    // The admin's fixes, kept in runbook order (step 2, 3, 4).
    let mut fixes: Vec<Prepared> = Vec::new();
    let mut agents = Vec::new();
    for host in FLEET {
        let prepared = fleet::prepare(host, base, url, &ca_pem, &token, &addresses, code_signing.cert_pem()).await?;
        let agent_shutdown = shutdown.child_token();
        let spool = Spool::in_memory(SpoolConfig::default());
        let task = tokio::spawn(rollcall_agent::runner::run(
            prepared.options.clone(),
            prepared.prober.clone(),
            spool,
            agent_shutdown.clone(),
        ));
        agents.push((host, agent_shutdown, task));
        if host.fix != Fix::None {
            fixes.push(prepared);
        }
    }
    fixes.sort_by_key(|prepared| prepared.host.fix as u8);
    intro(url, base, &addresses);

    let mut narrator = Narrator {
        last: BTreeMap::new(),
        completed: None,
    };
    // Every probe's first report, then the rollout.
    println!("waiting for every probe's first report …");
    let reported = async {
        loop {
            let listed = api
                .clone()
                .list_agents(proto::ListAgentsRequest { selector: "all".into() })
                .await;
            if listed
                .is_ok_and(|l| l.into_inner().agents.iter().filter(|a| !a.version.is_empty()).count() == FLEET.len())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        () = reported => {}
        () = tokio::time::sleep(STEP_TIMEOUT) => anyhow::bail!("the demo probes did not report within {}s", STEP_TIMEOUT.as_secs()),
    }
    // sendai-pc-01 reported once; now its laptop lid closes.
    for (host, agent_shutdown, _) in &agents {
        if host.goes_offline {
            agent_shutdown.cancel();
        }
    }
    let rollout = api
        .start_rollout(proto::StartRolloutRequest {
            target: TARGET.into(),
            grace_ms: 3000,
            recheck_every_ms: 2000,
            max_attempts: 2,
            selector: "all".into(),
            auto_update_now: true,
            adapter: String::new(),
        })
        .await
        .context("start the demo rollout")?
        .into_inner();
    println!();
    println!(
        "== rollcall rollout start --target {TARGET} --grace 3s --recheck-every 2s --max-attempts 2 --auto-update-now"
    );
    println!(
        "   (rollout {}; with --auto-update-now the coordinator sends \"update now\" by itself",
        rollout.id
    );
    println!("   to a straggler whose blocking cause clears)");

    // First causes: every planted cause found, the offline laptop included.
    println!();
    println!("== the coordinator waits, rechecks and diagnoses (preamble, steps 1-7)");
    let planted = |snapshot: &Snapshot| {
        FLEET.iter().all(|host| match host.shows {
            "completed" => snapshot.state(host.name) == "completed",
            "unknown" => matches!(snapshot.cause(host.name), "unknown"),
            cause => snapshot.cause(host.name) == cause,
        })
    };
    if wait_for(&mut api, &mut narrator, shutdown, "every planted cause", planted)
        .await
        .is_none()
    {
        return Ok(());
    }

    // The admin's fixes, in runbook order, each followed by a recheck.
    for prepared in &fixes {
        let host = prepared.host.name;
        let (says, path) = match prepared.host.fix {
            Fix::Permission => (
                format!("step 2: set \"Update settings permission\" to \"All components\" ({host})"),
                String::new(),
            ),
            Fix::ProgramAndHotfix => (
                format!("step 3: enable \"Security agent program and HotFix\" for update agent {host}"),
                format!(
                    "           web console: {}",
                    rollcall_common::console_path::UPDATE_AGENT_SETTINGS.en
                ),
            ),
            Fix::Certificate => (
                format!("step 4: install the code-signing root certificate on {host}"),
                String::new(),
            ),
            Fix::None => continue,
        };
        admin(&says);
        if !path.is_empty() {
            println!("{path}");
        }
        prepared.apply_fix(code_signing.cert_pem())?;
        println!(">>> admin: rollcall recheck hostname={host}");
        command(&mut api, proto::CommandKind::Recheck, &format!("hostname={host}")).await?;
        let done = |snapshot: &Snapshot| snapshot.state(host) == "completed";
        if wait_for(&mut api, &mut narrator, shutdown, &format!("{host} to complete"), done)
            .await
            .is_none()
        {
            return Ok(());
        }
        if prepared.host.fix == Fix::ProgramAndHotfix {
            admin("rollcall recheck cause=update_agent   (its clients look again)");
            command(&mut api, proto::CommandKind::Recheck, "cause=update_agent").await?;
            let clients = |snapshot: &Snapshot| {
                FLEET
                    .iter()
                    .filter(|client| client.pulls_from == Some(host))
                    .all(|client| snapshot.state(client.name) == "completed")
            };
            if wait_for(&mut api, &mut narrator, shutdown, "its clients to complete", clients)
                .await
                .is_none()
            {
                return Ok(());
            }
        }
    }

    // Steps 1-6 pass on nara and kanazawa: the manual update notification.
    admin("rollcall update-now cause=unknown   (the manual update notification, runbook step 2/8)");
    command(&mut api, proto::CommandKind::UpdateNow, "cause=unknown").await?;
    let nara = |snapshot: &Snapshot| snapshot.state("nara-pc-01") == "completed";
    if wait_for(&mut api, &mut narrator, shutdown, "nara-pc-01 to complete", nara)
        .await
        .is_none()
    {
        return Ok(());
    }

    // What is left: hard stragglers for a person (and for support).
    println!();
    println!("== what is left needs a person: every remaining straggler turns hard");
    let settled = |snapshot: &Snapshot| {
        snapshot
            .hosts
            .values()
            .all(|seen| matches!(seen.state.as_str(), "completed" | "hard"))
    };
    let Some(last) = wait_for(&mut api, &mut narrator, shutdown, "the stragglers to settle", settled).await else {
        return Ok(());
    };
    println!();
    println!(
        "completed {}/{}: the permission, the update agent (and so its clients), the certificate",
        last.completed, last.total
    );
    println!("and a manual update notification fixed those; the rest is in the report below.");
    print_report(&mut api, args.lang).await?;

    if args.keep_running {
        explore(url, data_dir, &last.ids, args.dashboard_listen);
        shutdown.cancelled().await;
    }
    for (_, agent_shutdown, _) in &agents {
        agent_shutdown.cancel();
    }
    for (_, _, task) in agents {
        let _ = task.await;
    }
    println!("demo finished");
    Ok(())
}
