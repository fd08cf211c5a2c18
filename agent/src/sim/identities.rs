//! Identities of simulated agents: each enrolled through the real Enroll
//! RPC (one multi-use token), with at most `concurrency` enrollments in
//! flight, and cached in the sim dir (`identities/<index>.json`, owner-only)
//! so reruns against the same coordinator skip enrollment. The cache is
//! keyed by the coordinator's CA: a different CA empties it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::enroll::{EnrollParams, enroll};
use crate::identity::Identity;
use rollcall_common::tls::DialOptions;

/// Largest cached identity file read back.
const MAX_CACHED: u64 = 64 * 1024;

/// One cached identity (the CA lives once in `ca.pem`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    agent_id: String,
    cert_pem: String,
    key_pem: rollcall_common::secret::Secret,
}

/// What enrolling a range of agents needs.
#[derive(Debug, Clone)]
pub struct EnrollPlan {
    pub sim_dir: PathBuf,
    pub coordinator: String,
    pub ca_pem: String,
    pub token: Option<rollcall_common::secret::Secret>,
    pub first_index: u64,
    pub count: u64,
    pub concurrency: usize,
    pub dial: DialOptions,
}

pub fn hostname(index: u64) -> String {
    format!("sim-{index:06}")
}

fn cache_path(sim_dir: &Path, index: u64) -> PathBuf {
    sim_dir.join("identities").join(format!("{index:06}.json"))
}

fn load_cached(sim_dir: &Path, index: u64, ca_pem: &str) -> Option<Identity> {
    let raw = rollcall_common::files::read_bounded(&cache_path(sim_dir, index), MAX_CACHED).ok()?;
    let cached: Cached = serde_json::from_slice(&raw).ok()?;
    Some(Identity {
        ca_pem: ca_pem.to_string(),
        cert_pem: cached.cert_pem,
        key_pem: cached.key_pem,
    })
}

/// Empties the cache when it was made for another coordinator CA.
fn prepare_cache(sim_dir: &Path, ca_pem: &str) -> anyhow::Result<()> {
    rollcall_common::files::create_private_dir(sim_dir)?;
    let ca_path = sim_dir.join("ca.pem");
    let same = std::fs::read_to_string(&ca_path).is_ok_and(|cached| cached == ca_pem);
    if !same {
        let identities = sim_dir.join("identities");
        if identities.exists() {
            std::fs::remove_dir_all(&identities).context("clear identities cached for another CA")?;
        }
        rollcall_common::files::write_atomic(&ca_path, ca_pem.as_bytes(), false)?;
    }
    rollcall_common::files::create_private_dir(&sim_dir.join("identities"))?;
    Ok(())
}

/// Loads or enrolls identities `first_index .. first_index + count`, in
/// index order.
pub async fn ensure(plan: &EnrollPlan, shutdown: &CancellationToken) -> anyhow::Result<Vec<Identity>> {
    prepare_cache(&plan.sim_dir, &plan.ca_pem)?;
    let indexes = plan.first_index..plan.first_index + plan.count;
    let mut identities: Vec<Option<Identity>> = indexes
        .clone()
        .map(|index| load_cached(&plan.sim_dir, index, &plan.ca_pem))
        .collect();
    let missing: Vec<u64> = indexes
        .filter(|index| identities[slot(plan, *index)].is_none())
        .collect();
    if missing.is_empty() {
        return Ok(identities.into_iter().flatten().collect());
    }
    let Some(token) = plan.token.clone() else {
        bail!(
            "{} simulated agents are not enrolled yet and no --token was given",
            missing.len()
        );
    };
    tracing::info!(
        missing = missing.len(),
        concurrency = plan.concurrency,
        "enrolling simulated agents"
    );
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for index in missing {
        let permit = tokio::select! {
            () = shutdown.cancelled() => bail!("stopped while enrolling"),
            permit = permits.clone().acquire_owned() => permit.context("enrollment semaphore closed")?,
        };
        let params = EnrollParams {
            coordinator: plan.coordinator.clone(),
            ca_pem: plan.ca_pem.clone(),
            token: token.clone(),
            hostname: hostname(index),
            dial: plan.dial.clone(),
        };
        let sim_dir = plan.sim_dir.clone();
        let cancel = shutdown.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let enrolled = tokio::select! {
                () = cancel.cancelled() => bail!("stopped while enrolling"),
                enrolled = enroll(&params) => enrolled.with_context(|| format!("enroll simulated agent {index}"))?,
            };
            let cached = Cached {
                agent_id: enrolled.agent_id,
                cert_pem: enrolled.identity.cert_pem.clone(),
                key_pem: enrolled.identity.key_pem.clone(),
            };
            let text = serde_json::to_vec(&cached).context("encode a cached identity")?;
            rollcall_common::files::write_atomic(&cache_path(&sim_dir, index), &text, true)?;
            Ok((index, enrolled.identity))
        });
        // Reap finished enrollments as we go so errors surface early.
        while let Some(done) = tasks.try_join_next() {
            let (index, identity) = done.context("enrollment task")??;
            identities[slot(plan, index)] = Some(identity);
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (index, identity) = done.context("enrollment task")??;
        identities[slot(plan, index)] = Some(identity);
    }
    identities
        .into_iter()
        .enumerate()
        .map(|(offset, identity)| identity.with_context(|| format!("identity {offset} missing after enrollment")))
        .collect()
}

fn slot(plan: &EnrollPlan, index: u64) -> usize {
    usize::try_from(index - plan.first_index).unwrap_or(usize::MAX)
}
