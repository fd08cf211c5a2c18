//! `xtask demo`: a coordinator on the embedded store in a
//! temporary directory and a small local fleet of real agents (the real
//! agent code, real mTLS on loopback), each with its own fake host root and
//! product state, chosen so that every runbook cause shows up. It starts a
//! rollout with compressed timings, plays the admin (fixes a setting, sends
//! a manual update notification) and prints status and stragglers as the
//! cycles run. Serves until Ctrl-C.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rollcall_agent::config::{ProductConfig, ReconnectConfig, SpoolConfig};
use rollcall_agent::enroll::{EnrollParams, enroll};
use rollcall_agent::identity::IdentityStore;
use rollcall_agent::prober::LocalProber;
use rollcall_agent::runner::AgentOptions;
use rollcall_agent::spool::Spool;
use rollcall_common::proto;
use rollcall_common::tls::DialOptions;
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use rollcall_cli::AdminClient;
use rollcall_server::config::ServeConfig;
use rollcall_server::data_dir::DataDir;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the coordinator listens (a free port is used if it is taken).
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: SocketAddr,
    /// Keep the demo's files here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Stop on its own after this long (default: serve until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Also serve the web dashboard here (HTTPS with the admin certificate).
    #[arg(long)]
    pub dashboard_listen: Option<SocketAddr>,
}

const FROM: &str = "14.0.12737";
const TARGET: &str = "14.0.13000";

/// One demo endpoint and the runbook cause it is built to show.
struct DemoHost {
    name: &'static str,
    site: &'static str,
    shows: &'static str,
    version: &'static str,
    role: &'static str,
    license: &'static str,
    permission: &'static str,
    /// "standard" or the custom source address.
    source: &'static str,
    /// The update agent section, for update agents.
    update_agent: &'static str,
    /// Product server reachable?
    reachable: bool,
    os: &'static str,
    has_certificate: bool,
    /// The local update action installs the target.
    can_update: bool,
    /// Reports once, then goes away.
    goes_offline: bool,
}

const BASE: DemoHost = DemoHost {
    name: "",
    site: "tokyo",
    shows: "",
    version: FROM,
    role: "endpoint",
    license: "2099-03-31",
    permission: "all_components",
    source: "standard",
    update_agent: "",
    reachable: true,
    os: "ID=debian\nVERSION_ID=\"12\"\n",
    has_certificate: true,
    can_update: false,
    goes_offline: false,
};

const FLEET: &[DemoHost] = &[
    DemoHost {
        name: "ua-osaka-01",
        site: "osaka-ua",
        shows: "update agent without \"program and HotFix\", blocking its clients",
        role: "update_agent",
        update_agent: "[update_agent]\nprogram_and_hotfix = false\naddress = \"ua-osaka-01.example:8080\"\n",
        ..BASE
    },
    DemoHost {
        name: "osaka-pc-01",
        site: "osaka",
        shows: "update_agent",
        source: "ua-osaka-01.example:8080",
        ..BASE
    },
    DemoHost {
        name: "osaka-pc-02",
        site: "osaka",
        shows: "update_agent",
        source: "ua-osaka-01.example:8080",
        ..BASE
    },
    DemoHost {
        name: "tokyo-pc-01",
        shows: "completed",
        version: TARGET,
        ..BASE
    },
    DemoHost {
        name: "tokyo-pc-02",
        shows: "update_permission, fixed by the admin, then update-now",
        permission: "pattern_files",
        can_update: true,
        ..BASE
    },
    DemoHost {
        name: "nagoya-pc-01",
        site: "nagoya",
        shows: "license",
        license: "2024-03-31",
        ..BASE
    },
    DemoHost {
        name: "kyoto-pc-01",
        site: "kyoto",
        shows: "update_source",
        ..BASE
    },
    DemoHost {
        name: "kobe-pc-01",
        site: "kobe",
        shows: "certificates",
        has_certificate: false,
        ..BASE
    },
    DemoHost {
        name: "sapporo-pc-01",
        site: "sapporo",
        shows: "connectivity",
        reachable: false,
        ..BASE
    },
    DemoHost {
        name: "sendai-pc-01",
        site: "sendai",
        shows: "offline",
        goes_offline: true,
        ..BASE
    },
    DemoHost {
        name: "fukuoka-pc-01",
        site: "fukuoka",
        shows: "system_requirements",
        os: "ID=centos\nVERSION_ID=\"7\"\n",
        ..BASE
    },
    DemoHost {
        name: "nara-pc-01",
        site: "nara",
        shows: "unknown, then fixed by a manual update notification",
        can_update: true,
        ..BASE
    },
];

fn product_state(host: &DemoHost, version: &str, permission: &str, server: &str) -> String {
    let source = if host.source == "standard" {
        "source = \"standard\"\n".to_string()
    } else {
        format!("source = \"custom\"\nsource_address = \"{}\"\n", host.source)
    };
    format!(
        "version = \"{version}\"\nrole = \"{}\"\n[license]\nexpires = \"{}\"\n[update]\npermission = \"{permission}\"\n{source}{}[server]\naddress = \"{server}\"\n",
        host.role, host.license, host.update_agent
    )
}

fn policy(fingerprint: &str) -> String {
    format!(
        r#"offline_after = "6s"
[[update_source.expected]]
match = {{ site = "osaka" }}
source = "custom"
address = "ua-osaka-01.example:8080"
[[update_source.expected]]
match = {{ site = "kyoto" }}
source = "custom"
address = "ua-kyoto-01.example:8080"
[[update_source.expected]]
source = "standard"
[certificates]
store = "etc/ssl/certs"
[[certificates.required]]
name = "Example Code Signing Root"
sha256 = "{fingerprint}"
[connectivity]
timeout = "1s"
[[system_requirements.os]]
id = "debian"
min_version = "11"
"#
    )
}

struct Prepared {
    options: AgentOptions,
    prober: Arc<LocalProber>,
    state_path: PathBuf,
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    host: &DemoHost,
    base: &Path,
    url: &str,
    ca_pem: &str,
    token: &str,
    server: &str,
    closed: &str,
    certificate_pem: &str,
) -> anyhow::Result<Prepared> {
    let dir = base.join("agents").join(host.name);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc/ssl/certs"))?;
    std::fs::create_dir_all(root.join("proc"))?;
    std::fs::write(root.join("etc/os-release"), host.os)?;
    std::fs::write(
        root.join("proc/meminfo"),
        "MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n",
    )?;
    if host.has_certificate {
        std::fs::write(root.join("etc/ssl/certs/code-signing-root.pem"), certificate_pem)?;
    }
    let server = if host.reachable { server } else { closed };
    let state_path = dir.join("product-state.toml");
    std::fs::write(&state_path, product_state(host, host.version, host.permission, server))?;
    // The local "Update Now": installs the target (copies the upgraded state in).
    let upgraded = dir.join("upgraded-state.toml");
    std::fs::write(&upgraded, product_state(host, TARGET, "all_components", server))?;
    let update_command = host.can_update.then(|| {
        vec![
            "/bin/cp".to_string(),
            upgraded.display().to_string(),
            state_path.display().to_string(),
        ]
    });
    let enrolled = enroll(&EnrollParams {
        coordinator: url.to_string(),
        ca_pem: ca_pem.to_string(),
        token: token.to_string().into(),
        hostname: host.name.to_string(),
        dial: DialOptions::default(),
    })
    .await
    .with_context(|| format!("enroll demo agent {}", host.name))?;
    let labels: BTreeMap<String, String> = [("site".to_string(), host.site.to_string())].into();
    let options = AgentOptions {
        urls: vec![url.to_string()],
        identity: IdentityStore::Memory(Arc::new(std::sync::Mutex::new(enrolled.identity))),
        hostname: host.name.to_string(),
        labels: labels.clone(),
        check_interval: Duration::from_secs(60),
        data_dir: None,
        dial: DialOptions::default(),
        reconnect: ReconnectConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(5),
            ..ReconnectConfig::default()
        },
        check_at_start: true,
        update_allowed: update_command.is_some(),
        collect: Default::default(),
    };
    let prober = Arc::new(LocalProber {
        host_root: root,
        product: ProductConfig {
            state_file: Some(state_path.clone()),
            update_command,
            ..ProductConfig::default()
        },
        labels,
    });
    Ok(Prepared {
        options,
        prober,
        state_path,
    })
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

    let admin = AdminClient::connect(&url, Some(&data_dir.admin_dir())).map_err(|e| anyhow::anyhow!(e.message))?;
    let mut api = admin.inner.clone();
    let (code_signing, _) = rollcall_common::pki::CertAuthority::generate("Example Code Signing Root")?;
    let der = rollcall_common::pki::first_cert_der(code_signing.cert_pem())?;
    let fingerprint = hex::encode(sha2::Sha256::digest(&der));
    api.apply_policy(proto::ApplyPolicyRequest {
        toml: policy(&fingerprint),
    })
    .await
    .context("apply the demo policy")?;
    let token = api
        .create_token(proto::CreateTokenRequest {
            uses: FLEET.len() as u32,
            ttl_seconds: 600,
            labels: Default::default(),
        })
        .await
        .context("create the demo enrollment token")?
        .into_inner()
        .token;
    let ca_pem = std::fs::read_to_string(data_dir.ca_cert())?;
    // The product server the probes check (runbook step 5): the coordinator's
    // own TLS port stands in for it; a closed port for the unreachable one.
    let server = addr.to_string();
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.to_string()
    };

    let mut agents = Vec::new();
    let mut states = BTreeMap::new();
    for host in FLEET {
        let prepared = prepare(
            host,
            &base,
            &url,
            &ca_pem,
            &token,
            &server,
            &closed,
            code_signing.cert_pem(),
        )
        .await?;
        states.insert(
            host.name,
            (
                prepared.state_path.clone(),
                product_state(host, host.version, "all_components", &server),
            ),
        );
        let agent_shutdown = shutdown.child_token();
        let spool = Spool::in_memory(SpoolConfig::default());
        let task = tokio::spawn(rollcall_agent::runner::run(
            prepared.options,
            prepared.prober,
            spool,
            agent_shutdown.clone(),
        ));
        agents.push((host, agent_shutdown, task));
    }

    println!(
        "rollcall demo: coordinator at {url}, {} agents, files in {}",
        FLEET.len(),
        base.display()
    );
    println!();
    for host in FLEET {
        println!("  {:<14} shows {}", host.name, host.shows);
    }
    println!();
    println!("explore it from another terminal while it runs:");
    println!("  export ROLLCALL_COORDINATOR={url}");
    println!("  export ROLLCALL_IDENTITY={}", data_dir.admin_dir().display());
    println!("  cargo run -p rollcall-cli -- status --history");
    println!("  cargo run -p rollcall-cli -- stragglers");
    println!("  cargo run -p rollcall-cli -- agent <ID>");
    println!("  cargo run -p rollcall-cli -- report          (add --lang ja for Japanese)");
    println!("  cargo run -p rollcall-cli -- watch");
    if let Some(dashboard) = args.dashboard_listen {
        println!(
            "  dashboard: https://{dashboard}/ (client certificate {}/cert.pem + key.pem)",
            data_dir.admin_dir().display()
        );
    }
    println!();

    let signal = tokio::spawn(rollcall_server::main_entry::shutdown_on_signal(shutdown.clone()));
    if let Some(duration) = args.duration {
        let stopper = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stopper.cancelled() => {}
                () = tokio::time::sleep(duration) => stopper.cancel(),
            }
        });
    }

    // Wait for every probe's first report, then start the rollout.
    let ready = async {
        loop {
            let listed = api
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
        () = shutdown.cancelled() => {}
        () = ready => {}
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
            grace_ms: 4000,
            recheck_every_ms: 3000,
            max_attempts: 3,
            selector: "all".into(),
            auto_update_now: true,
            adapter: String::new(),
        })
        .await
        .context("start the demo rollout")?
        .into_inner();
    println!(
        "started rollout {} to {TARGET} (grace 4s, recheck every 3s doubling, 3 attempts, auto update-now)\n",
        rollout.id
    );

    let started = tokio::time::Instant::now();
    let (mut fixed_permission, mut notified) = (false, false);
    let mut tick = tokio::time::interval(Duration::from_secs(4));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let elapsed = started.elapsed();
        if !fixed_permission && elapsed > Duration::from_secs(10) {
            // Runbook step 2: the admin sets "All components"; the coordinator
            // sees the cause clear at the next recheck and sends update_now.
            if let Some((path, fixed)) = states.get("tokyo-pc-02") {
                let _ = std::fs::write(path, fixed);
                println!(">>> admin: set \"Update settings permission\" to \"All components\" for tokyo-pc-02\n");
            }
            fixed_permission = true;
        }
        if !notified && elapsed > Duration::from_secs(18) {
            println!(">>> admin: rollcall update-now cause=unknown   (the manual update notification)");
            let sent = api
                .send_command(proto::SendCommandRequest {
                    selector: "cause=unknown,role=endpoint".into(),
                    kind: proto::CommandKind::UpdateNow as i32,
                    wait_ms: 5000,
                })
                .await;
            if let Ok(stream) = sent {
                let mut stream = stream.into_inner();
                while let Some(Ok(progress)) = tokio_stream::StreamExt::next(&mut stream).await {
                    if progress.done {
                        println!(
                            "    {} targeted, {} answered, {} completed, {} refused\n",
                            progress.targeted, progress.answered, progress.completed, progress.refused
                        );
                    }
                }
            }
            notified = true;
        }
        print_progress(&mut api).await;
    }
    signal.abort();
    for (_, _, task) in agents {
        let _ = task.await;
    }
    server_task.await.context("coordinator task")??;
    println!("demo stopped");
    Ok(())
}

async fn print_progress(api: &mut proto::admin_service_client::AdminServiceClient<tonic::transport::Channel>) {
    let Ok(status) = api
        .status(proto::StatusRequest {
            rollout_id: String::new(),
            history: false,
        })
        .await
    else {
        return;
    };
    let status = status.into_inner();
    if status.total == 0 {
        return;
    }
    let mut by_cause: Vec<(&String, &u32)> = status.by_cause.iter().collect();
    by_cause.sort_by_key(|(cause, _)| rollcall_common::cause::Cause::from_code(cause));
    let causes: Vec<String> = by_cause
        .iter()
        .map(|(cause, count)| format!("{cause}={count}"))
        .collect();
    println!(
        "{}  completed {} pending {} stragglers {} (soft {}, hard {}) offline {}  [{}]",
        rollcall_cli::progress_bar(status.completed, status.total, 24),
        status.completed,
        status.pending,
        status.stragglers,
        status.soft,
        status.hard,
        status.offline,
        causes.join(" ")
    );
    if let Ok(list) = api
        .stragglers(proto::StragglersRequest {
            rollout_id: String::new(),
        })
        .await
    {
        for straggler in list.into_inner().stragglers {
            println!(
                "    {:<14} {:<20} step {} {:<4}{}",
                straggler.hostname,
                straggler.cause,
                straggler.runbook_step,
                straggler.state,
                if straggler.blocks > 0 {
                    format!("  blocks {} clients", straggler.blocks)
                } else {
                    String::new()
                }
            );
        }
    }
    println!();
}
