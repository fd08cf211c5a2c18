//! The probe's life: connect, say hello, report, heartbeat, obey the
//! commands its config allows, reconnect with backoff — until shutdown.
//!
//! - [`run`] (here): the reconnect loop over the coordinator URLs.
//! - [`state`]: what outlives one connection (spool, policy, the
//!   coordinator's clock, the check queue), and checking while away.
//! - [`session`]: one connection's life, driven through a [`transport`]
//!   (tonic's stream in production, channels in the session's tests).
//! - [`check_jobs`]: the check worker and its queues; [`commands`]:
//!   recheck and update-now; [`renewal`]: when to ask for a new
//!   certificate; [`policy_file`], [`inbox`]: what the agent keeps in its
//!   data dir.

mod check_jobs;
mod commands;
mod inbox;
mod policy_file;
mod renewal;
mod session;
mod state;
mod transport;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rollcall_common::tls::DialOptions;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::ReconnectConfig;
use crate::identity::IdentityStore;
use crate::prober::Prober;
use crate::spool::Spool;

use session::{Session, SessionEnd};
use state::AgentState;
use transport::GrpcTransport;

pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a runner needs besides its prober and spool.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub urls: Vec<String>,
    pub identity: IdentityStore,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub check_interval: Duration,
    /// Where the last policy is kept (`policy.toml`) and local update-now
    /// outcomes arrive (`inbox/`); none for simulated agents.
    pub data_dir: Option<PathBuf>,
    pub dial: DialOptions,
    pub reconnect: ReconnectConfig,
    /// Run a check as soon as the agent starts.
    pub check_at_start: bool,
    /// Whether the agent's own config allows an update action
    /// (`product.update_command`); without one, `update_now` is refused.
    pub update_allowed: bool,
    /// The `[collect]` config, which alone decides what a collect command
    /// gathers (disabled: no paths, collect is refused).
    pub collect: crate::collect::CollectConfig,
}

pub async fn run(
    options: AgentOptions,
    prober: Arc<dyn Prober>,
    spool: Spool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if options.urls.is_empty() {
        anyhow::bail!("no coordinator URL");
    }
    crate::platform::ready();
    let (checks, worker) = check_jobs::spawn_worker(prober, shutdown.clone());
    let mut agent = AgentState::new(options, spool, checks);
    if agent.options.check_at_start {
        agent.first_check().await;
    }

    let mut backoff = Backoff::new(agent.options.reconnect.initial, agent.options.reconnect.max);
    let mut url_index = 0usize;
    loop {
        let url = agent.options.urls[url_index % agent.options.urls.len()].clone();
        let (lasted, reason) = match connect_once(&mut agent, &url, &shutdown).await {
            Ok(SessionEnd::Shutdown) => break,
            Ok(SessionEnd::Lost { lasted, reason }) => (lasted, reason),
            Err(error) => (Duration::ZERO, format!("{error:#}")),
        };
        if lasted > Duration::from_secs(60) {
            backoff.reset();
        }
        url_index += 1;
        let delay = backoff.next_delay();
        tracing::warn!(coordinator = url, reason, retry_in = ?delay, spooled = agent.spool.len(), "disconnected from coordinator");
        agent.keep_checking(delay, &shutdown).await;
        if shutdown.is_cancelled() {
            break;
        }
    }
    shutdown.cancel();
    let _ = worker.await;
    Ok(())
}

/// One connection to `url` over mTLS gRPC, with the identity as it is now
/// (a renewal in the last session replaced it).
async fn connect_once(agent: &mut AgentState, url: &str, shutdown: &CancellationToken) -> anyhow::Result<SessionEnd> {
    let identity = agent.options.identity.load().context("load the agent identity")?;
    let transport = GrpcTransport::new(url, &identity, &agent.options.dial)?;
    Session::new(agent, identity, url, shutdown).run(transport).await
}
