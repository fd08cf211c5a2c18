//! Admin identities through the API: issue from a CSR (the new admin's key
//! stays where it was made), list, revoke. Revoking an admin's certificates
//! refuses them from the next handshake and the next call on.

use std::sync::Arc;

use rollcall_common::pki::{AdminRole, valid_admin_name};
use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339};
use tonic::Status;

use crate::data_dir::{ADMIN_CERT_LIFETIME, cert_row};
use crate::edge::auth::AdminCaller;
use crate::state::Coordinator;
use crate::store::Notice;

pub async fn issue(
    coordinator: &Arc<Coordinator>,
    caller: &AdminCaller,
    request: proto::IssueAdminRequest,
) -> Result<proto::IssueAdminResponse, Status> {
    if !valid_admin_name(&request.name) {
        return Err(Status::invalid_argument(
            "admin name must be 1-64 characters of letters, digits, - _ . @",
        ));
    }
    let role: AdminRole = request
        .role
        .parse()
        .map_err(|error: anyhow::Error| Status::invalid_argument(error.to_string()))?;
    if request.csr_pem.len() > 16 * 1024 {
        return Err(Status::invalid_argument("certificate signing request is too large"));
    }
    let certificate_pem = coordinator
        .ca
        .issue_admin_from_csr(&request.csr_pem, &request.name, role, ADMIN_CERT_LIFETIME)
        .map_err(|error| Status::invalid_argument(format!("{error:#}")))?;
    let row = cert_row(&certificate_pem, &request.name, role, &caller.name).map_err(crate::status::internal)?;
    coordinator
        .store
        .record_admin_certificate(row)
        .await
        .map_err(Status::from)?;
    tracing::info!(name = request.name, %role, by = caller.name, "admin certificate issued");
    Ok(proto::IssueAdminResponse {
        certificate_pem,
        ca_pem: coordinator.ca_pem.clone(),
    })
}

pub async fn list(coordinator: &Arc<Coordinator>) -> Result<proto::ListAdminsResponse, Status> {
    let rows = coordinator
        .store
        .list_admin_certificates()
        .await
        .map_err(Status::from)?;
    Ok(proto::ListAdminsResponse {
        admins: rows
            .into_iter()
            .map(|row| proto::AdminCertInfo {
                name: row.name,
                role: row.role,
                serial: row.serial,
                issued_at: rfc3339(row.issued_at_ms),
                not_after: rfc3339(row.not_after_ms),
                issued_by: row.issued_by,
                revoked: row.revoked_at_ms.is_some(),
            })
            .collect(),
    })
}

pub async fn revoke(
    coordinator: &Arc<Coordinator>,
    caller: &AdminCaller,
    name: &str,
) -> Result<proto::RevokeAdminResponse, Status> {
    if name == caller.name {
        return Err(Status::failed_precondition(
            "refusing to revoke your own certificate; ask another admin",
        ));
    }
    let serials = coordinator
        .store
        .revoke_admin_certificates(name, now_ms())
        .await
        .map_err(Status::from)?;
    if serials.is_empty() {
        return Err(Status::not_found(format!("no live certificate for admin {name}")));
    }
    for serial in &serials {
        coordinator.revocation.revoke_serial(serial);
    }
    // The other replicas refuse the certificates from their next handshake
    // or call on, not only after a restart.
    coordinator
        .tell_others(Notice::AdminRevoked { name: name.to_string() })
        .await;
    tracing::warn!(
        name,
        count = serials.len(),
        by = caller.name,
        "admin certificates revoked"
    );
    Ok(proto::RevokeAdminResponse {
        revoked: u32::try_from(serials.len()).unwrap_or(u32::MAX),
    })
}
