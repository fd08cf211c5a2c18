//! Serving state: the standard `grpc.health.v1` service, turned NOT_SERVING
//! while the store refuses writes and back to SERVING when it takes them
//! again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tonic_health::server::HealthReporter;

#[derive(Clone)]
pub struct HealthState {
    reporter: HealthReporter,
    store_failing: Arc<AtomicBool>,
}

/// Service names reported besides the overall "" entry.
pub const SERVICES: [&str; 2] = ["rollcall.v1.AgentService", "rollcall.v1.AdminService"];

impl HealthState {
    pub fn new(reporter: HealthReporter) -> Self {
        HealthState {
            reporter,
            store_failing: Arc::new(AtomicBool::new(false)),
        }
    }

    pub async fn set_serving(&self, serving: bool) {
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        for name in SERVICES.iter().chain(std::iter::once(&"")) {
            self.reporter.set_service_status(*name, status).await;
        }
    }

    pub fn is_store_failing(&self) -> bool {
        self.store_failing.load(Ordering::Relaxed)
    }

    pub fn store_failed(&self, reason: &str) {
        if !self.store_failing.swap(true, Ordering::Relaxed) {
            tracing::error!(reason, "store is refusing writes; health is NOT_SERVING");
            let this = self.clone();
            tokio::spawn(async move { this.set_serving(false).await });
        }
    }

    pub fn store_ok(&self) {
        if self.store_failing.swap(false, Ordering::Relaxed) {
            tracing::info!("store takes writes again; health is SERVING");
            let this = self.clone();
            tokio::spawn(async move { this.set_serving(true).await });
        }
    }
}
