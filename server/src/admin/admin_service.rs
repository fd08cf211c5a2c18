//! `rollcall.v1.AdminService`: what the admin CLI asks.
//!
//! Every call first authenticates the caller's admin certificate and checks
//! its role: viewers read, operators also act on agents, admins also manage
//! tokens, revocation and policy.
//!
//! Longer than ~400 lines: tonic wants every method of the service in one
//! `impl`; each authorises and delegates to its area's module (`list_agents`
//! and `get_agent` still build their answers here).

use std::sync::Arc;
use std::time::Duration;

use rollcall_common::pki::AdminRole;
use rollcall_common::proto::{self, admin_service_server::AdminService};
use rollcall_common::timefmt::{now_ms, rfc3339, rfc3339_or_empty};

use tonic::{Request, Response, Status};

use crate::admin::policy_apply::{self, ApplyError};
use crate::agent_api::tokens::{self, TokenRequest};
use crate::domain::selector::Selector;
use crate::edge::auth::{AdminCaller, admin_caller};
use crate::state::Coordinator;
use crate::store::{AgentRow, Notice};

pub struct AdminApi {
    pub coordinator: Arc<Coordinator>,
}

impl AdminApi {
    /// The caller, refused (and audited) unless its role is at least `needed`.
    async fn authorize<T>(&self, request: &Request<T>, needed: AdminRole, action: &str) -> Result<AdminCaller, Status> {
        match admin_caller(request, &self.coordinator.revocation, needed) {
            Ok(caller) => Ok(caller),
            Err(status) => {
                if let Ok(identity) = crate::edge::auth::admin_identity(request, &self.coordinator.revocation) {
                    let denied: Result<(), Status> = Err(status.clone());
                    self.audit(&identity, action, "", &denied).await;
                }
                Err(status)
            }
        }
    }

    /// Records a state-changing call in the audit log. Only the outcome's
    /// text is kept, so the result itself need not be `Sync`.
    fn audit<T>(
        &self,
        caller: &AdminCaller,
        action: &str,
        target: &str,
        result: &Result<T, Status>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let outcome = crate::admin::audit::outcome(result);
        let (coordinator, caller) = (self.coordinator.clone(), caller.clone());
        let (action, target) = (action.to_string(), target.to_string());
        async move { crate::admin::audit::record(&coordinator, &caller, &action, &target, outcome).await }
    }

    fn online(&self, row: &AgentRow) -> bool {
        if self.coordinator.hub.is_connected(&row.id) {
            return true;
        }
        // Held by another replica: trust its connected flag while heartbeats are fresh.
        let fresh = (self.coordinator.config.heartbeat_interval * 3).max(Duration::from_secs(10));
        row.connected && now_ms() - row.last_seen_ms < i64::try_from(fresh.as_millis()).unwrap_or(i64::MAX)
    }

    fn agent_info(&self, row: AgentRow) -> proto::AgentInfo {
        let online = self.online(&row);
        let last_seen = self
            .coordinator
            .seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(&row.id).copied())
            .unwrap_or(0)
            .max(row.last_seen_ms);
        let clock_skew_warn = self.coordinator.current_policy().clock_skew_warn();
        proto::AgentInfo {
            clock_skew_ms: row.clock_skew_ms,
            clock_skew_flagged: crate::domain::clock_skew::flagged(row.clock_skew_ms, clock_skew_warn),
            unreadable: row.unreadable,
            dropped_reports: row.dropped_reports,
            dead_letters: row.dead_letters,
            id: row.id,
            hostname: row.hostname,
            online,
            last_seen: rfc3339_or_empty(last_seen),
            version: row.product.version.clone(),
            role: row.role,
            labels: row.labels.into_iter().collect(),
            agent_version: row.agent_version,
            enrolled_at: rfc3339(row.enrolled_at_ms),
            revoked: row.revoked,
            host: Some(row.host),
            product: Some(row.product),
            last_seq: row.last_seq,
            state: String::new(),
            cause: String::new(),
            roster: String::new(),
            roster_hosts: Vec::new(),
        }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_agents(
        &self,
        request: Request<proto::ListAgentsRequest>,
    ) -> Result<Response<proto::ListAgentsResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        let selector = Selector::parse(&request.get_ref().selector)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        let rollouts = self.coordinator.store.list_rollouts().await.map_err(Status::from)?;
        let views =
            crate::rollouts::fleet::snapshot(&self.coordinator, crate::rollouts::fleet::current_rollout(&rollouts))
                .await
                .map_err(Status::from)?;
        let roster = crate::roster::RosterView::load(&self.coordinator, &views)
            .await
            .map_err(Status::from)?;
        let agents = views
            .into_iter()
            .filter(|view| selector.matches(&view.row.id, |key| view.field(key)))
            .map(|view| {
                let (state, cause) = view
                    .member
                    .as_ref()
                    .map(|m| {
                        (
                            crate::rollouts::engine::machine::display_state(m).to_string(),
                            m.cause.clone(),
                        )
                    })
                    .unwrap_or_default();
                let matched = roster.as_ref().and_then(|roster| roster.agent_match(&view.row.id));
                let mut info = self.agent_info(view.row);
                if let Some((word, hosts)) = matched {
                    info.roster = word.to_string();
                    info.roster_hosts = hosts;
                }
                info.online = view.connected;
                info.state = state;
                info.cause = cause;
                info
            })
            .collect();
        Ok(Response::new(proto::ListAgentsResponse { agents }))
    }

    async fn get_agent(
        &self,
        request: Request<proto::GetAgentRequest>,
    ) -> Result<Response<proto::AgentDetail>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        let id = request.into_inner().id;
        let row = self
            .coordinator
            .store
            .get_agent(&id)
            .await
            .map_err(Status::from)?
            .ok_or_else(|| Status::not_found(format!("no agent {id}")))?;
        let (checks, checked_at) = self.coordinator.store.latest_checks(&id).await.map_err(Status::from)?;
        let history = self
            .coordinator
            .store
            .agent_transitions(&id)
            .await
            .map_err(Status::from)?
            .into_iter()
            .map(|t| proto::AgentTransition {
                rollout_id: t.rollout_id,
                at: rfc3339(t.at_ms),
                from_state: t.from_state,
                to_state: t.to_state,
                cause: t.cause,
            })
            .collect();
        // Its update agent: the one claiming its custom source address (by
        // address key, as the diagnosis links them); several claimants are
        // named, none chosen.
        let (mut update_agent_id, mut update_agent_hostname) = (String::new(), String::new());
        let mut update_agent_claimants = Vec::new();
        if row.product.update_source == "custom" && !row.product.source_address.is_empty() {
            let key = rollcall_common::product::address_key(&row.product.source_address);
            let agents = self.coordinator.store.list_agents().await.map_err(Status::from)?;
            let mut claimants: Vec<&crate::store::AgentRow> = agents
                .iter()
                .filter(|a| {
                    a.role == proto::Role::UpdateAgent as i32
                        && !a.revoked
                        && !a.product.update_agent_address.is_empty()
                        && rollcall_common::product::address_key(&a.product.update_agent_address) == key
                })
                .collect();
            claimants.sort_by(|left, right| left.id.cmp(&right.id));
            match claimants.as_slice() {
                [] => {}
                [ua] => {
                    update_agent_id = ua.id.clone();
                    update_agent_hostname = ua.hostname.clone();
                }
                several => update_agent_claimants = several.iter().map(|ua| ua.id.clone()).collect(),
            }
        }
        let rollouts = self.coordinator.store.list_rollouts().await.map_err(Status::from)?;
        let (mut state, mut cause) = (String::new(), String::new());
        if let Some(rollout) = crate::rollouts::fleet::current_rollout(&rollouts)
            && let Some(member) = self
                .coordinator
                .store
                .members(&rollout.id)
                .await
                .map_err(Status::from)?
                .into_iter()
                .find(|m| m.agent_id == id)
        {
            state = crate::rollouts::engine::machine::display_state(&member).to_string();
            cause = member.cause;
        }
        let mut agent = self.agent_info(row);
        let fleet = crate::rollouts::fleet::snapshot(&self.coordinator, None)
            .await
            .map_err(Status::from)?;
        if let Some(roster) = crate::roster::RosterView::load(&self.coordinator, &fleet)
            .await
            .map_err(Status::from)?
            && let Some((word, hosts)) = roster.agent_match(&id)
        {
            agent.roster = word.to_string();
            agent.roster_hosts = hosts;
        }
        Ok(Response::new(proto::AgentDetail {
            agent: Some(agent),
            checks,
            checked_at: rfc3339_or_empty(checked_at),
            history,
            update_agent_id,
            update_agent_hostname,
            state,
            cause,
            update_agent_claimants,
        }))
    }

    async fn revoke_agent(
        &self,
        request: Request<proto::RevokeAgentRequest>,
    ) -> Result<Response<proto::RevokeAgentResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Admin, "agent.revoke").await?;
        let target = request.get_ref().id.clone();
        let result = async {
            let id = request.into_inner().id;
            let existed = self
                .coordinator
                .store
                .revoke_agent(&id, now_ms())
                .await
                .map_err(Status::from)?;
            if !existed {
                return Err(Status::not_found(format!("no agent {id}")));
            }
            self.coordinator.revocation.revoke_agent(&id);
            let disconnected = self
                .coordinator
                .hub
                .disconnect(&id, Status::permission_denied("this agent has been revoked"));
            // Other replicas cut its stream there and refuse its certificate.
            self.coordinator
                .tell_others(Notice::Revoked { agent_id: id.clone() })
                .await;
            tracing::warn!(agent_id = id, by = caller.name, disconnected, "agent revoked");
            Ok(Response::new(proto::RevokeAgentResponse { disconnected }))
        }
        .await;
        self.audit(&caller, "agent.revoke", &target, &result).await;
        result
    }

    async fn create_token(
        &self,
        request: Request<proto::CreateTokenRequest>,
    ) -> Result<Response<proto::CreateTokenResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Admin, "token.create").await?;
        let target = {
            let b = request.get_ref();
            format!("uses={} ttl_seconds={} labels={:?}", b.uses, b.ttl_seconds, b.labels)
        };
        let result = async {
            let body = request.into_inner();
            let request = TokenRequest {
                uses: body.uses,
                ttl_seconds: body.ttl_seconds,
                labels: body.labels.into_iter().collect(),
            };
            let terms = tokens::terms(request, self.coordinator.config.token_default_ttl)
                .map_err(|error| Status::invalid_argument(error.to_string()))?;
            let created = tokens::create(self.coordinator.store.as_ref(), terms, &caller.name, now_ms())
                .await
                .map_err(Status::from)?;
            tracing::info!(
                token_id = created.id,
                uses = created.uses,
                by = caller.name,
                "enrollment token created"
            );
            Ok(Response::new(proto::CreateTokenResponse {
                token: created.token.expose().to_string(),
                id: created.id,
                expires_at: rfc3339(created.expires_at_ms),
            }))
        }
        .await;
        self.audit(&caller, "token.create", &target, &result).await;
        result
    }

    async fn list_tokens(
        &self,
        request: Request<proto::ListTokensRequest>,
    ) -> Result<Response<proto::ListTokensResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Admin)?;
        let rows = self.coordinator.store.list_tokens().await.map_err(Status::from)?;
        let tokens = rows
            .into_iter()
            .map(|row| proto::TokenInfo {
                id: row.id,
                created_at: rfc3339(row.created_at_ms),
                expires_at: rfc3339(row.expires_at_ms),
                uses_left: row.uses_left,
                uses_total: row.uses_total,
                labels: row.labels.into_iter().collect(),
                revoked: row.revoked,
                created_by: row.created_by,
            })
            .collect();
        Ok(Response::new(proto::ListTokensResponse { tokens }))
    }

    async fn revoke_token(
        &self,
        request: Request<proto::RevokeTokenRequest>,
    ) -> Result<Response<proto::RevokeTokenResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Admin, "token.revoke").await?;
        let target = request.get_ref().id.clone();
        let result = async {
            let id = request.into_inner().id;
            if !self.coordinator.store.revoke_token(&id).await.map_err(Status::from)? {
                return Err(Status::not_found(format!("no token {id}")));
            }
            tracing::info!(token_id = id, by = caller.name, "enrollment token revoked");
            Ok(Response::new(proto::RevokeTokenResponse {}))
        }
        .await;
        self.audit(&caller, "token.revoke", &target, &result).await;
        result
    }

    async fn apply_policy(
        &self,
        request: Request<proto::ApplyPolicyRequest>,
    ) -> Result<Response<proto::ApplyPolicyResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Admin, "policy.apply").await?;
        let target = format!("policy ({} bytes)", request.get_ref().toml.len());
        let text = request.into_inner().toml;
        let result = policy_apply::apply(&self.coordinator, text, &caller.name, now_ms())
            .await
            .map(|applied| {
                Response::new(proto::ApplyPolicyResponse {
                    version: applied.version,
                    pushed: applied.pushed,
                })
            })
            .map_err(|error| match error {
                ApplyError::Store(error) => Status::from(error),
                refused => Status::invalid_argument(refused.to_string()),
            });
        self.audit(&caller, "policy.apply", &target, &result).await;
        result
    }

    async fn start_rollout(
        &self,
        request: Request<proto::StartRolloutRequest>,
    ) -> Result<Response<proto::RolloutInfo>, Status> {
        let caller = self.authorize(&request, AdminRole::Operator, "rollout.start").await?;
        let target = {
            let b = request.get_ref();
            format!(
                "target={} selector={:?} grace_ms={} recheck_every_ms={} max_attempts={} auto_update_now={}",
                b.target, b.selector, b.grace_ms, b.recheck_every_ms, b.max_attempts, b.auto_update_now
            )
        };
        let result = async {
            crate::admin::admin_rollouts::start(&self.coordinator, &caller, request.into_inner())
                .await
                .map(Response::new)
        }
        .await;
        self.audit(&caller, "rollout.start", &target, &result).await;
        result
    }

    async fn list_rollouts(
        &self,
        request: Request<proto::ListRolloutsRequest>,
    ) -> Result<Response<proto::ListRolloutsResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        let rows = self.coordinator.store.list_rollouts().await.map_err(Status::from)?;
        Ok(Response::new(proto::ListRolloutsResponse {
            rollouts: rows.iter().map(crate::read::rollouts::rollout_info).collect(),
        }))
    }

    async fn get_rollout(
        &self,
        request: Request<proto::GetRolloutRequest>,
    ) -> Result<Response<proto::RolloutInfo>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        let rollout = crate::read::rollouts::resolve(&self.coordinator, &request.get_ref().id).await?;
        Ok(Response::new(crate::read::rollouts::rollout_info(&rollout)))
    }

    async fn cancel_rollout(
        &self,
        request: Request<proto::CancelRolloutRequest>,
    ) -> Result<Response<proto::RolloutInfo>, Status> {
        let caller = self.authorize(&request, AdminRole::Operator, "rollout.cancel").await?;
        let target = request.get_ref().id.clone();
        let result = async {
            crate::admin::admin_rollouts::cancel(&self.coordinator, &caller, &request.get_ref().id)
                .await
                .map(Response::new)
        }
        .await;
        self.audit(&caller, "rollout.cancel", &target, &result).await;
        result
    }

    async fn status(&self, request: Request<proto::StatusRequest>) -> Result<Response<proto::StatusResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        crate::admin::admin_rollouts::status(&self.coordinator, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn stragglers(
        &self,
        request: Request<proto::StragglersRequest>,
    ) -> Result<Response<proto::StragglersResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        crate::admin::admin_rollouts::stragglers(&self.coordinator, request.into_inner())
            .await
            .map(Response::new)
    }

    type SendCommandStream = crate::admin::admin_rollouts::ProgressStream;

    async fn send_command(
        &self,
        request: Request<proto::SendCommandRequest>,
    ) -> Result<Response<Self::SendCommandStream>, Status> {
        let caller = self.authorize(&request, AdminRole::Operator, "command.send").await?;
        let target = {
            let b = request.get_ref();
            format!(
                "{} selector={:?} wait_ms={}",
                proto::CommandKind::try_from(b.kind)
                    .map(|k| k.as_str_name())
                    .unwrap_or("?"),
                b.selector,
                b.wait_ms
            )
        };
        let result = async {
            crate::admin::admin_rollouts::send_command(&self.coordinator, &caller, request.into_inner())
                .await
                .map(Response::new)
        }
        .await;
        self.audit(&caller, "command.send", &target, &result).await;
        result
    }

    async fn collect(
        &self,
        request: Request<proto::CollectRequest>,
    ) -> Result<Response<proto::CollectResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Operator, "bundle.collect").await?;
        let target = {
            let b = request.get_ref();
            format!("selector={:?} wait_ms={}", b.selector, b.wait_ms)
        };
        let result = crate::admin::admin_bundles::collect(&self.coordinator, &caller, request.into_inner())
            .await
            .map(Response::new);
        self.audit(&caller, "bundle.collect", &target, &result).await;
        result
    }

    async fn list_bundles(
        &self,
        request: Request<proto::ListBundlesRequest>,
    ) -> Result<Response<proto::ListBundlesResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        crate::admin::admin_bundles::list(&self.coordinator, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_bundle(&self, request: Request<proto::GetBundleRequest>) -> Result<Response<proto::Bundle>, Status> {
        // Logs may hold what a viewer should not read: operators and up.
        let caller = self.authorize(&request, AdminRole::Operator, "bundle.get").await?;
        let target = {
            let b = request.get_ref();
            format!("agent={} command={}", b.agent_id, b.command_id)
        };
        let result = crate::admin::admin_bundles::get(&self.coordinator, request.into_inner())
            .await
            .map(Response::new);
        // The outcome only: the bytes stay out of the audit log.
        self.audit(&caller, "bundle.get", &target, &result).await;
        result
    }

    async fn get_report(
        &self,
        request: Request<proto::ReportRequest>,
    ) -> Result<Response<proto::ReportResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        let id = request.into_inner().rollout_id;
        let report = crate::read::report::build(&self.coordinator, (!id.is_empty()).then_some(id.as_str())).await?;
        let json = serde_json::to_string(&report).map_err(crate::status::internal)?;
        Ok(Response::new(proto::ReportResponse { json }))
    }

    type WatchStream = crate::admin::admin_watch::EventStream;

    async fn watch(&self, request: Request<proto::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        let certificate = crate::edge::auth::caller_certificate(&request, &self.coordinator.revocation)?;
        Ok(Response::new(crate::admin::admin_watch::watch(
            &self.coordinator,
            certificate,
        )))
    }

    async fn audit(&self, request: Request<proto::AuditRequest>) -> Result<Response<proto::AuditResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Admin)?;
        let limit = match request.get_ref().limit {
            0 => 1000,
            limit => limit.min(100_000),
        };
        let rows = self.coordinator.store.list_audit(limit).await.map_err(Status::from)?;
        Ok(Response::new(proto::AuditResponse {
            entries: rows
                .into_iter()
                .map(|row| proto::AuditEntry {
                    at: rfc3339(row.at_ms),
                    actor: row.actor,
                    role: row.role,
                    action: row.action,
                    target: row.target,
                    result: row.result,
                })
                .collect(),
        }))
    }

    async fn issue_admin(
        &self,
        request: Request<proto::IssueAdminRequest>,
    ) -> Result<Response<proto::IssueAdminResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Admin, "admin.issue").await?;
        let target = format!("name={} role={}", request.get_ref().name, request.get_ref().role);
        let result = crate::admin::admin_identities::issue(&self.coordinator, &caller, request.into_inner())
            .await
            .map(Response::new);
        self.audit(&caller, "admin.issue", &target, &result).await;
        result
    }

    async fn list_admins(
        &self,
        request: Request<proto::ListAdminsRequest>,
    ) -> Result<Response<proto::ListAdminsResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Admin)?;
        crate::admin::admin_identities::list(&self.coordinator)
            .await
            .map(Response::new)
    }

    async fn revoke_admin(
        &self,
        request: Request<proto::RevokeAdminRequest>,
    ) -> Result<Response<proto::RevokeAdminResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Admin, "admin.revoke").await?;
        let name = request.into_inner().name;
        let result = crate::admin::admin_identities::revoke(&self.coordinator, &caller, &name)
            .await
            .map(Response::new);
        self.audit(&caller, "admin.revoke", &name, &result).await;
        result
    }

    async fn import_roster(
        &self,
        request: Request<tonic::Streaming<proto::ImportRosterRequest>>,
    ) -> Result<Response<proto::ImportRosterResponse>, Status> {
        let caller = self.authorize(&request, AdminRole::Operator, "roster.import").await?;
        let result = crate::admin::admin_roster::import(&self.coordinator, request.into_inner())
            .await
            .map(Response::new);
        let target = match &result {
            Ok(response) => format!("entries={}", response.get_ref().imported),
            Err(_) => String::new(),
        };
        self.audit(&caller, "roster.import", &target, &result).await;
        result
    }

    async fn refresh_roster(
        &self,
        request: Request<proto::RefreshRosterRequest>,
    ) -> Result<Response<proto::RosterStatus>, Status> {
        let caller = self.authorize(&request, AdminRole::Operator, "roster.refresh").await?;
        let result = crate::admin::admin_roster::refresh(&self.coordinator)
            .await
            .map(Response::new);
        self.audit(&caller, "roster.refresh", "apex_central", &result).await;
        result
    }

    async fn get_roster_status(
        &self,
        request: Request<proto::RosterStatusRequest>,
    ) -> Result<Response<proto::RosterStatus>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        crate::admin::admin_roster::status(&self.coordinator)
            .await
            .map(Response::new)
    }

    async fn list_roster(
        &self,
        request: Request<proto::ListRosterRequest>,
    ) -> Result<Response<proto::ListRosterResponse>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        crate::admin::admin_roster::list(&self.coordinator)
            .await
            .map(Response::new)
    }

    async fn get_policy(
        &self,
        request: Request<proto::GetPolicyRequest>,
    ) -> Result<Response<proto::PolicyDoc>, Status> {
        admin_caller(&request, &self.coordinator.revocation, AdminRole::Viewer)?;
        let doc = self.coordinator.policy.borrow().clone();
        match doc {
            Some(doc) => Ok(Response::new((*doc).clone())),
            None => Ok(Response::new(proto::PolicyDoc {
                version: 0,
                toml: String::new(),
            })),
        }
    }
}
