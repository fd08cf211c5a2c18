//! `run`: one coordinator serving on a listener the caller bound, until the
//! caller's shutdown token fires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rollcall_common::proto::{
    self, admin_service_server::AdminServiceServer, agent_service_server::AgentServiceServer,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::admin::admin_service::AdminApi;
use crate::agent_api::agent_service::AgentApi;
use crate::agents::health::HealthState;
use crate::agents::hub::Hub;
use crate::config::ServeConfig;
use crate::data_dir::DataDir;
use crate::edge::listener::{self, ListenerLimits};
use crate::edge::revocation::RevocationList;
use crate::state::Coordinator;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

// Largest admin answer; the CLI accepts the same (a wire limit, in common).
use rollcall_common::proto::ADMIN_MAX_ANSWER_BYTES;

/// Opens the store the config names: PostgreSQL with `database_url`
/// (migrated at start), else SQLite under the data dir.
pub async fn open_store(config: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &config.database_url {
        let store = crate::store::postgres::PgStore::connect(url, &config.replica_id).await?;
        return Ok(Arc::new(store));
    }
    let data_dir = DataDir::new(&config.data_dir);
    Ok(Arc::new(SqliteStore::open(&data_dir.sqlite_path())?))
}

/// Serves until `shutdown` fires, then drains within `shutdown_grace`.
pub async fn run(config: ServeConfig, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate()?;
    let data_dir = DataDir::new(&config.data_dir);
    let pki = data_dir.load_pki()?;
    let store = open_store(&config).await?;
    // With PostgreSQL this clears only this replica's own agents.
    store.reset_connections().await.context("reset connection flags")?;

    let revocation = Arc::new(RevocationList::default());
    revocation.replace(store.revoked().await.context("load revocations")?);
    let tls = rollcall_common::tls::server_config(
        pki.ca.cert_pem(),
        &pki.server_cert_pem,
        pki.server_key_pem.expose(),
        revocation.clone(),
    )?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let health = HealthState::new(health_reporter);
    health.set_serving(true).await;

    let policy = store.current_policy().await.context("load policy")?.map(|row| {
        Arc::new(proto::PolicyDoc {
            version: row.version,
            toml: row.toml,
        })
    });
    let parsed_policy = policy
        .as_ref()
        .and_then(|doc| rollcall_common::policy::Policy::from_toml_str(&doc.toml).ok())
        .unwrap_or_default();
    let (policy_tx, _) = watch::channel(policy);

    // The ingest worker outlives the stream tasks: it drains after they stop.
    let ingest_shutdown = CancellationToken::new();
    let metrics = crate::metrics::Metrics::new();
    let (ingest, ingest_task) = crate::agents::ingest::spawn(
        store.clone(),
        health.clone(),
        metrics.clone(),
        config.ingest_batch,
        ingest_shutdown.clone(),
    );

    // Checked (key file owner-only, CA readable) before anything binds.
    let apex_central = config
        .apex_central
        .as_ref()
        .map(crate::apex_central::ApexCentral::new)
        .transpose()?;
    let streams = shutdown.child_token();
    let coordinator = Arc::new(Coordinator {
        ca_pem: pki.ca.cert_pem().to_string(),
        ca: pki.ca,
        store: store.clone(),
        hub: Hub::default(),
        revocation,
        ingest,
        health,
        policy: policy_tx,
        seen: Mutex::new(HashMap::new()),
        shutdown: streams.clone(),
        config: config.clone(),
        connections: Arc::new(listener::ConnectionCount::default()),
        parsed_policy: std::sync::RwLock::new(Arc::new(parsed_policy)),
        events: tokio::sync::broadcast::channel(crate::events::CAPACITY).0,
        metrics,
        sources: crate::edge::source_limits::SourceLimits::new(
            config.edge.max_unauthenticated_per_source,
            crate::edge::source_limits::handshakes_per_source(config.max_pending_handshakes),
            config.edge.enroll_per_minute_per_source,
            config.edge.enroll_burst_per_source,
        ),
        budgets: crate::agents::budget::AgentBudgets::new(config.budget_limits()),
        roster: crate::apex_central::source::RosterSource::new(apex_central, config.roster_refresh),
    });

    // Bound before anything serves, so a taken port fails the start.
    let dashboard_task = match config.dashboard_listen {
        Some(addr) => {
            let dashboard_listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen for the dashboard on {addr}"))?;
            Some(crate::dashboard::spawn(
                coordinator.clone(),
                dashboard_listener,
                tls.clone(),
                shutdown.clone(),
            )?)
        }
        None => None,
    };

    let heartbeat_task = tokio::spawn(flush_heartbeats(coordinator.clone(), shutdown.clone()));
    let checkpoint_task = tokio::spawn(checkpoint_store(store.clone(), shutdown.clone()));
    let engine_task = tokio::spawn(crate::rollouts::engine::run(coordinator.clone(), shutdown.clone()));
    let retention_task = tokio::spawn(crate::retention::run(coordinator.clone(), shutdown.clone()));
    let roster_task = tokio::spawn(crate::roster::run(coordinator.clone(), shutdown.clone()));
    // Wake-ups from other replicas (PostgreSQL only): commands, revocations, policy.
    let replication_task = crate::replication::spawn(coordinator.clone(), shutdown.clone())
        .await
        .context("listen for other replicas")?;

    let limits = ListenerLimits {
        max_pending_handshakes: config.max_pending_handshakes,
        first_byte_timeout: config.edge.first_byte_timeout,
        handshake_timeout: config.handshake_timeout,
        max_connections: config.max_connections,
        sources: coordinator.sources.clone(),
        anonymous_lifetime: config.edge.anonymous_connection_lifetime,
        // Agent streams are quiet between heartbeats; HTTP/2 keepalive
        // finds dead peers.
        idle_timeout: None,
        shed: coordinator.metrics.shed_counter("grpc"),
        proxy_from: config.edge.proxy_protocol_from.clone(),
    };
    let accepted = listener::spawn(
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        limits,
        coordinator.connections.clone(),
        shutdown.clone(),
    );

    // Reflection is off unless asked for, and then only for callers with a
    // certificate: it tells whoever asks the whole API surface.
    let (reflection, reflection_alpha) = if config.edge.reflection {
        // Both versions: grpcurl and older tools still ask v1alpha.
        let reflection_builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let gate = |revocation: Arc<RevocationList>| {
            move |request: tonic::Request<()>| {
                crate::edge::auth::any_certified_caller(&request, &revocation)?;
                Ok(request)
            }
        };
        let v1 = reflection_builder().build_v1().context("build reflection service")?;
        let v1alpha = reflection_builder()
            .build_v1alpha()
            .context("build reflection service")?;
        (
            Some(tonic::service::interceptor::InterceptedService::new(
                v1,
                gate(coordinator.revocation.clone()),
            )),
            Some(tonic::service::interceptor::InterceptedService::new(
                v1alpha,
                gate(coordinator.revocation.clone()),
            )),
        )
    } else {
        (None, None)
    };
    let max = config.max_message_bytes;
    let agent_api = AgentServiceServer::new(AgentApi {
        coordinator: coordinator.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);
    // Admin answers (a 100,000-agent list) may be large; what admins send
    // stays bounded like everything else.
    let admin_api = AdminServiceServer::new(AdminApi {
        coordinator: coordinator.clone(),
    })
    .max_decoding_message_size(max)
    .max_encoding_message_size(ADMIN_MAX_ANSWER_BYTES);

    let shutdown_signal = shutdown.clone();
    let serve = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .http2_max_pending_accept_reset_streams(Some(50))
        .http2_max_local_error_reset_streams(Some(256))
        .http2_max_header_list_size(16 * 1024)
        .max_concurrent_streams(Some(64))
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_optional_service(reflection_alpha)
        .add_service(agent_api)
        .add_service(admin_api)
        .serve_with_incoming_shutdown(ReceiverStream::new(accepted), async move {
            shutdown_signal.cancelled().await
        });

    tracing::info!(
        data_dir = %config.data_dir.display(),
        replica = config.replica_id,
        store = if config.database_url.is_some() { "postgresql" } else { "sqlite" },
        "coordinator serving"
    );
    let mut serve = std::pin::pin!(serve);
    crate::notify::ready();
    tokio::select! {
        result = &mut serve => result.context("serve gRPC")?,
        () = shutdown.cancelled() => {
            // Streams end when `streams` (a child of shutdown) is cancelled;
            // the HTTP/2 drain then finishes, bounded by the grace period.
            match tokio::time::timeout(config.shutdown_grace, &mut serve).await {
                Ok(result) => result.context("serve gRPC")?,
                Err(_) => tracing::warn!(grace = ?config.shutdown_grace, "drain exceeded the grace period; closing the rest"),
            }
        }
    }
    // Stop taking reports, store what is queued, then record last heartbeats.
    ingest_shutdown.cancel();
    let _ = tokio::time::timeout(config.shutdown_grace, ingest_task).await;
    let _ = heartbeat_task.await;
    let _ = checkpoint_task.await;
    let _ = engine_task.await;
    let _ = retention_task.await;
    let _ = tokio::time::timeout(config.shutdown_grace, roster_task).await;
    if let Some(task) = replication_task {
        let _ = task.await;
    }
    if let Some(task) = dashboard_task {
        let _ = task.await;
    }
    let seen = coordinator.take_seen();
    if let Err(error) = store.touch_agents(seen).await {
        tracing::warn!(%error, "could not record the last heartbeats");
    }
    tracing::info!("coordinator stopped");
    Ok(())
}

/// Runs the store's housekeeping once a second (see [`crate::store::Store::checkpoint`]).
async fn checkpoint_store(store: Arc<dyn crate::store::Store>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = store.checkpoint().await {
            tracing::debug!(%error, "store checkpoint did not run");
        }
    }
}

/// How often a replica on a shared store reasserts the presence of the
/// agents it holds (see [`crate::store::Store::reassert_presence`]).
const PRESENCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

async fn flush_heartbeats(coordinator: Arc<Coordinator>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(
        coordinator
            .config
            .heartbeat_interval
            .min(std::time::Duration::from_secs(5)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut presence = tokio::time::interval_at(tokio::time::Instant::now() + PRESENCE_INTERVAL, PRESENCE_INTERVAL);
    presence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Only replicas sharing a database can be overwritten by one another.
    let shared = coordinator.config.database_url.is_some();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let seen = coordinator.take_seen();
                match coordinator.store.touch_agents(seen).await {
                    Ok(()) => {}
                    Err(crate::store::StoreError::Unavailable(reason)) => coordinator.health.store_failed(&reason),
                    Err(error) => tracing::warn!(%error, "could not record heartbeats"),
                }
            }
            _ = presence.tick(), if shared => {
                let held: Vec<String> = coordinator.hub.all().into_iter().map(|(id, _)| id).collect();
                match coordinator.store.reassert_presence(held).await {
                    Ok(0) => {}
                    Ok(fixed) => tracing::info!(fixed, "rows of agents held here said otherwise; marked connected here"),
                    Err(error) => tracing::warn!(%error, "could not reassert presence"),
                }
            }
        }
    }
}
