//! `rollcall-server demo`: a coordinator on the embedded store in a
//! temporary directory and a small local fleet of real agents (the real
//! agent code, real mTLS on loopback), each with its own fake host root and
//! product state. Serves until Ctrl-C.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rollcall_agent::config::{ProductConfig, ReconnectConfig, SpoolConfig};
use rollcall_agent::enroll::{EnrollParams, enroll};
use rollcall_agent::identity::IdentityStore;
use rollcall_agent::prober::LocalProber;
use rollcall_agent::runner::AgentOptions;
use rollcall_agent::spool::Spool;
use rollcall_common::tls::DialOptions;
use tokio_util::sync::CancellationToken;

use crate::cli::AdminClient;
use crate::config::ServeConfig;
use crate::data_dir::DataDir;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the coordinator listens (a free port is used if it is taken).
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: SocketAddr,
    /// Keep the demo's files here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Stop on its own after this long (default: serve until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

/// One demo endpoint.
struct DemoHost {
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
    state: &'static str,
}

const FLEET: &[DemoHost] = &[
    DemoHost {
        name: "ua-osaka-01",
        labels: &[("site", "osaka")],
        state: "version = \"14.0.12737\"\nrole = \"update_agent\"\n[license]\nexpires = \"2099-03-31\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[update_agent]\nprogram_and_hotfix = true\naddress = \"ua-osaka-01.example:8080\"\n[server]\naddress = \"127.0.0.1:9\"\n",
    },
    DemoHost {
        name: "osaka-pc-01",
        labels: &[("site", "osaka")],
        state: "version = \"14.0.12737\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-03-31\"\n[update]\npermission = \"all_components\"\nsource = \"custom\"\nsource_address = \"ua-osaka-01.example:8080\"\n[server]\naddress = \"127.0.0.1:9\"\n",
    },
    DemoHost {
        name: "tokyo-pc-01",
        labels: &[("site", "tokyo")],
        state: "version = \"14.0.12737\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-03-31\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[server]\naddress = \"127.0.0.1:9\"\n",
    },
    DemoHost {
        name: "tokyo-pc-02",
        labels: &[("site", "tokyo")],
        state: "version = \"14.0.11000\"\nrole = \"endpoint\"\n[license]\nexpires = \"2099-03-31\"\n[update]\npermission = \"pattern_files\"\nsource = \"standard\"\n[server]\naddress = \"127.0.0.1:9\"\n",
    },
    DemoHost {
        name: "nagoya-pc-01",
        labels: &[("site", "nagoya")],
        state: "version = \"14.0.11000\"\nrole = \"endpoint\"\n[license]\nexpires = \"2020-01-31\"\n[update]\npermission = \"all_components\"\nsource = \"standard\"\n[server]\naddress = \"127.0.0.1:9\"\n",
    },
];

fn write_host_root(root: &Path, state_path: &Path, state: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::create_dir_all(root.join("proc"))?;
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n")?;
    std::fs::write(
        root.join("proc/meminfo"),
        "MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n",
    )?;
    std::fs::write(state_path, state)?;
    Ok(())
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("create the demo directory")?;
    let base = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let data_dir = DataDir::new(base.join("coordinator"));
    data_dir.init(&["localhost".to_string(), "127.0.0.1".to_string()])?;

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
    config.heartbeat_interval = Duration::from_secs(2);
    let server = tokio::spawn(crate::server::run(config, listener, shutdown.clone()));

    let admin = AdminClient::connect(&url, Some(&data_dir.admin_dir())).map_err(|e| anyhow::anyhow!(e.message))?;
    let token = admin
        .inner
        .clone()
        .create_token(rollcall_common::proto::CreateTokenRequest {
            uses: FLEET.len() as u32,
            ttl_seconds: 600,
            labels: Default::default(),
        })
        .await
        .context("create the demo enrollment token")?
        .into_inner()
        .token;
    let ca_pem = std::fs::read_to_string(data_dir.ca_cert())?;

    let mut agents = Vec::new();
    for host in FLEET {
        let dir = base.join("agents").join(host.name);
        let root = dir.join("root");
        let state_path = dir.join("product-state.toml");
        write_host_root(&root, &state_path, host.state)?;
        let enrolled = enroll(&EnrollParams {
            coordinator: url.clone(),
            ca_pem: ca_pem.clone(),
            token: token.clone(),
            hostname: host.name.to_string(),
            dial: DialOptions::default(),
        })
        .await
        .with_context(|| format!("enroll demo agent {}", host.name))?;
        let labels: BTreeMap<String, String> = host
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let options = AgentOptions {
            urls: vec![url.clone()],
            identity: IdentityStore::Memory(Arc::new(std::sync::Mutex::new(enrolled.identity))),
            hostname: host.name.to_string(),
            labels: labels.clone(),
            check_interval: Duration::from_secs(30),
            data_dir: None,
            dial: DialOptions::default(),
            reconnect: ReconnectConfig {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(5),
            },
            check_at_start: true,
        };
        let prober = Arc::new(LocalProber {
            host_root: root,
            product: ProductConfig {
                state_file: Some(state_path),
                ..ProductConfig::default()
            },
            labels,
        });
        let spool = Spool::in_memory(SpoolConfig::default());
        agents.push(tokio::spawn(rollcall_agent::runner::run(
            options,
            prober,
            spool,
            shutdown.clone(),
        )));
    }

    let identity = data_dir.admin_dir();
    println!(
        "rollcall demo: coordinator at {url}, {} agents, data in {}",
        FLEET.len(),
        base.display()
    );
    println!();
    println!("explore it from another terminal:");
    println!("  export ROLLCALL_COORDINATOR={url}");
    println!("  export ROLLCALL_IDENTITY={}", identity.display());
    println!("  cargo run -p rollcall-server --bin rollcall -- agents");
    println!("  cargo run -p rollcall-server --bin rollcall -- agent <ID>");
    println!("  cargo run -p rollcall-server --bin rollcall -- --output json agents");
    println!();

    let signal = tokio::spawn(crate::main_entry::shutdown_on_signal(shutdown.clone()));
    if let Some(duration) = args.duration {
        let stopper = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stopper.cancel();
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let listed = admin.inner.clone().list_agents(rollcall_common::proto::ListAgentsRequest { selector: "all".into() }).await;
                if let Ok(listed) = listed {
                    let agents = listed.into_inner().agents;
                    let online = agents.iter().filter(|a| a.online).count();
                    println!("{} agents enrolled, {online} online:", agents.len());
                    for agent in &agents {
                        println!(
                            "  {:<14} {:<13} product {:<12} {}",
                            agent.hostname,
                            crate::admin_service::role_name(agent.role),
                            if agent.version.is_empty() { "-" } else { &agent.version },
                            if agent.online { "online" } else { "offline" }
                        );
                    }
                }
            }
        }
    }
    signal.abort();
    for agent in agents {
        let _ = agent.await;
    }
    server.await.context("coordinator task")??;
    println!("demo stopped");
    Ok(())
}
