//! The runbook's checks (steps 1–6, plus the version against the rollout's
//! target), run locally on the endpoint. Each yields a `CheckResult` with a
//! status, a one-line message, evidence and the runbook's remediation.
//!
//! [`run_all`] reads the product document and the host facts once, then
//! runs every check concurrently, each with its own time budget
//! (the `runner` module), so one hung check never stalls the rest. Checks are pure
//! functions of their inputs where they can be (tests feed them fixtures);
//! only `certificates` reads files and `connectivity` touches the network.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rollcall_common::policy::Policy;
use rollcall_common::product::to_summary;
use rollcall_common::proto::{CheckResult, HostFacts, ProductSummary};

use crate::config::ProductConfig;
use crate::host::{self, HostObservation};
use crate::product_source;

mod acs;
mod certificates;
mod connectivity;
mod finding;
mod license;
mod reach;
mod runner;
mod system_requirements;
#[cfg(test)]
pub(crate) mod test_support;
mod trust_store;
mod update_permission;
mod update_source;
mod version;

pub use acs::{AcsFacts, kb_numbers};

pub use finding::{status_of, status_word};

/// The contract names of the checks, in runbook order (results come back in
/// this order too); the table lives in `rollcall_common::checks`.
pub const CHECK_NAMES: [&str; 7] = rollcall_common::checks::ALL;

/// Budget of a check that only reads what is already in memory or a few
/// small files.
const LOCAL_BUDGET: Duration = Duration::from_secs(10);

/// Evidence `source` of a fact the endpoint's own product state gave (the
/// alternative is the policy's `[[server_facts]]`, which names itself).
pub(crate) const ENDPOINT_SOURCE: &str = "endpoint product state";

/// A fact and where it came from: the endpoint's own product state, or,
/// only where that lacks the field, the policy's `[[server_facts]]` entry
/// for the endpoint's labels (`pick` takes the fact from the entry). Any
/// other read error stands.
pub(crate) fn endpoint_or_server_fact<T>(
    own: Result<T, rollcall_common::product::ProductError>,
    server_facts: Option<(usize, &rollcall_common::policy::ServerFacts)>,
    pick: impl FnOnce(&rollcall_common::policy::ServerFacts) -> Option<T>,
) -> Result<(T, String), rollcall_common::product::ProductError> {
    match own {
        Ok(value) => Ok((value, ENDPOINT_SOURCE.to_string())),
        Err(error @ rollcall_common::product::ProductError::Missing { .. }) => server_facts
            .and_then(|(index, facts)| Some((pick(facts)?, facts.source(index))))
            .ok_or(error),
        Err(error) => Err(error),
    }
}
/// Reading and parsing a whole trust store.
const CERTIFICATES_BUDGET: Duration = Duration::from_secs(30);
/// On top of the policy's connectivity timeout, so the check reports its
/// own, more precise timeout rather than the runner's.
const CONNECTIVITY_MARGIN: Duration = Duration::from_secs(5);
/// Reading the host facts (statvfs on a hung mount never returns).
const HOST_BUDGET: Duration = Duration::from_secs(10);

/// Everything one run of the checks needs.
#[derive(Debug, Clone)]
pub struct CheckContext {
    pub host_root: PathBuf,
    pub product: ProductConfig,
    pub policy: Arc<Policy>,
    /// The endpoint's labels (they select the expected update source).
    pub labels: BTreeMap<String, String>,
    /// The rollout's target version, when one is known.
    pub target_version: Option<String>,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRun {
    pub product: ProductSummary,
    pub host: HostFacts,
    /// One result per name in [`CHECK_NAMES`], in that order.
    pub checks: Vec<CheckResult>,
}

/// Runs every check once. Never panics and never fails: what could not be
/// evaluated is a result with status error.
pub async fn run_all(context: &CheckContext) -> CheckRun {
    let (doc, host) = tokio::join!(product_source::load(&context.product), observe_host(context),);
    let doc = Arc::new(doc);
    let host = Arc::new(host);
    let policy = Arc::clone(&context.policy);
    let now = time::OffsetDateTime::now_utc();

    let specs = vec![
        runner::Spec::new(version::NAME, version::STEP, version::REMEDIATION, LOCAL_BUDGET, {
            let doc = Arc::clone(&doc);
            let target = context.target_version.clone();
            async move { version::evaluate(&doc, target.as_deref()) }
        }),
        runner::Spec::new(license::NAME, license::STEP, license::REMEDIATION, LOCAL_BUDGET, {
            let doc = Arc::clone(&doc);
            let policy = Arc::clone(&policy);
            let labels = context.labels.clone();
            async move { license::evaluate(&doc, policy.license(), policy.server_facts_for(&labels), now.date()) }
        }),
        runner::Spec::new(
            update_permission::NAME,
            update_permission::STEP,
            update_permission::remediation(policy.update_permission().required),
            LOCAL_BUDGET,
            {
                let doc = Arc::clone(&doc);
                let policy = Arc::clone(&policy);
                let labels = context.labels.clone();
                async move {
                    update_permission::evaluate(&doc, policy.update_permission(), policy.server_facts_for(&labels))
                }
            },
        ),
        runner::Spec::new(
            update_source::NAME,
            update_source::STEP,
            update_source::REMEDIATION,
            LOCAL_BUDGET,
            {
                let doc = Arc::clone(&doc);
                let policy = Arc::clone(&policy);
                let labels = context.labels.clone();
                async move { update_source::evaluate(&doc, &policy, &labels) }
            },
        ),
        runner::Spec::new(
            certificates::NAME,
            certificates::STEP,
            certificates::REMEDIATION,
            CERTIFICATES_BUDGET,
            check_certificates(
                context.host_root.clone(),
                Arc::clone(&policy),
                now,
                context.target_version.clone(),
            ),
        ),
        runner::Spec::new(
            connectivity::NAME,
            connectivity::STEP,
            connectivity::REMEDIATION,
            policy.connectivity().timeout + CONNECTIVITY_MARGIN,
            {
                let doc = Arc::clone(&doc);
                let timeout = policy.connectivity().timeout;
                async move { connectivity::evaluate(&doc, timeout).await }
            },
        ),
        runner::Spec::new(
            system_requirements::NAME,
            system_requirements::STEP,
            system_requirements::REMEDIATION,
            LOCAL_BUDGET,
            {
                let host = Arc::clone(&host);
                let policy = Arc::clone(&policy);
                async move { system_requirements::evaluate(&host, policy.system_requirements()) }
            },
        ),
    ];
    let checks = runner::run(specs).await;
    let mut product = to_summary(&doc);
    product.adapter = context
        .product
        .effective_adapter()
        .map(|adapter| adapter.as_str().to_string())
        .unwrap_or_default();
    CheckRun {
        product,
        host: host.facts(),
        checks,
    }
}

/// Host facts, read off the async workers and bounded in time.
async fn observe_host(context: &CheckContext) -> HostObservation {
    let host_root = context.host_root.clone();
    let install_path = context.product.install_path.clone();
    let reading = tokio::task::spawn_blocking(move || host::observe(&host_root, &install_path));
    match tokio::time::timeout(HOST_BUDGET, reading).await {
        Ok(Ok(observation)) => observation,
        Ok(Err(join_error)) => HostObservation::failed(
            &format!("reading host facts failed: {join_error}"),
            &context.product.install_path,
        ),
        Err(_elapsed) => HostObservation::failed(
            &format!(
                "reading host facts timed out after {}",
                humantime::format_duration(HOST_BUDGET)
            ),
            &context.product.install_path,
        ),
    }
}

/// The trust store is read (blocking) only when the policy requires
/// certificates.
async fn check_certificates(
    host_root: PathBuf,
    policy: Arc<Policy>,
    now: time::OffsetDateTime,
    target: Option<String>,
) -> finding::Finding {
    let acs_facts = read_acs_facts(target.as_deref()).await;
    let acs = acs::finding(target.as_deref(), acs_facts);
    let required = policy.certificates();
    let stores = if required.required.is_empty() {
        certificates::evaluate(required, None, now.unix_timestamp())
    } else {
        let store_path = required.store.clone();
        let loading = tokio::task::spawn_blocking(move || trust_store::load(&host_root, store_path.as_deref()));
        let store = match loading.await {
            Ok(store) => store,
            Err(join_error) => Err(anyhow::anyhow!("reading the trust store failed: {join_error}")),
        };
        certificates::evaluate(required, Some(store), now.unix_timestamp())
    };
    match acs {
        None => stores,
        // The store part's "no certificates required" says nothing then.
        Some(acs) if required.required.is_empty() => acs,
        Some(acs) => finding::Finding::combine(vec![acs, stores]),
    }
}

/// The Windows facts ACS readiness needs, when the target needs it (a
/// blocking registry read, off the async workers); `None` off Windows.
async fn read_acs_facts(target: Option<&str>) -> Option<anyhow::Result<AcsFacts>> {
    if !target.is_some_and(acs::target_needs_acs) {
        return None;
    }
    #[cfg(windows)]
    {
        Some(
            match tokio::task::spawn_blocking(crate::platform::windows::host::read_acs).await {
                Ok(facts) => facts,
                Err(join_error) => Err(anyhow::anyhow!("reading the Windows build failed: {join_error}")),
            },
        )
    }
    #[cfg(not(windows))]
    {
        None
    }
}

#[cfg(test)]
mod tests;
