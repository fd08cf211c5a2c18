//! What the runner asks of the endpoint: run the checks, run the allowed
//! update action. The real prober reads the host; the fleet simulator
//! supplies its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rollcall_common::policy::Policy;
use rollcall_common::proto::UpdateNowOutcome;

use crate::checks::{CheckContext, CheckRun};
use crate::config::ProductConfig;

#[async_trait]
pub trait Prober: Send + Sync + 'static {
    /// One run of every check.
    async fn check(&self, policy: Arc<Policy>, target_version: Option<String>) -> CheckRun;
    /// The local "Update Now" action, if the agent's own config allows one.
    async fn update_now(&self) -> UpdateNowOutcome;
    /// Whether an update action is configured at all.
    fn update_allowed(&self) -> bool;
}

/// The real endpoint: checks under `host_root`, the product adapter of `agent.toml`.
pub struct LocalProber {
    pub host_root: PathBuf,
    pub product: ProductConfig,
    pub labels: BTreeMap<String, String>,
}

#[async_trait]
impl Prober for LocalProber {
    async fn check(&self, policy: Arc<Policy>, target_version: Option<String>) -> CheckRun {
        let context = CheckContext {
            host_root: self.host_root.clone(),
            product: self.product.clone(),
            policy,
            labels: self.labels.clone(),
            target_version,
        };
        crate::checks::run_all(&context).await
    }

    async fn update_now(&self) -> UpdateNowOutcome {
        crate::update_action::run_update_command(&self.product).await
    }

    fn update_allowed(&self) -> bool {
        self.product.update_command.is_some()
    }
}
