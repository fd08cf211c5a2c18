//! Who is calling: the identity in the peer certificate, and what it may do.
//!
//! Agent ids come from the certificate only; a message body never names the
//! caller.

use rollcall_common::pki::{AdminRole, PeerIdentity, cert_facts};
use tonic::{Request, Status};

use crate::edge::revocation::RevocationList;
use rollcall_common::tls::RevocationCheck;

/// The authenticated caller of an admin call.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub name: String,
    pub role: AdminRole,
}

fn peer_identity<T>(request: &Request<T>, revocation: &RevocationList) -> Result<(PeerIdentity, String), Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate issued by this coordinator is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let facts = cert_facts(leaf).map_err(|_| Status::unauthenticated("unreadable client certificate"))?;
    let identity = facts
        .identity
        .ok_or_else(|| Status::unauthenticated("the client certificate carries no rollcall identity"))?;
    let agent_id = match &identity {
        PeerIdentity::Agent { id } => Some(id.as_str()),
        PeerIdentity::Admin { .. } => None,
    };
    // The handshake already checked this; an HTTP/2 connection can outlive a
    // revocation though, so every call checks again.
    if revocation.is_revoked(&facts.serial, agent_id) {
        return Err(Status::permission_denied("this certificate has been revoked"));
    }
    Ok((identity, facts.serial))
}

/// The caller's certificate, for calls that outlive a moment (`watch`):
/// they end when it is revoked or expires.
#[derive(Debug, Clone)]
pub struct CallerCertificate {
    pub serial: String,
    pub agent_id: Option<String>,
    pub not_after_ms: i64,
}

pub fn caller_certificate<T>(request: &Request<T>, revocation: &RevocationList) -> Result<CallerCertificate, Status> {
    let (identity, serial) = peer_identity(request, revocation)?;
    let not_after_ms = request
        .peer_certs()
        .and_then(|certs| certs.first().and_then(|leaf| cert_facts(leaf).ok()))
        .map(|facts| rollcall_common::timefmt::ms_of(facts.not_after))
        .ok_or_else(|| Status::unauthenticated("unreadable client certificate"))?;
    let agent_id = match identity {
        PeerIdentity::Agent { id } => Some(id),
        PeerIdentity::Admin { .. } => None,
    };
    Ok(CallerCertificate {
        serial,
        agent_id,
        not_after_ms,
    })
}

/// Any caller with a valid, unrevoked rollcall certificate (agent or admin):
/// the gate in front of services that are not rollcall's own (reflection).
pub fn any_certified_caller<T>(request: &Request<T>, revocation: &RevocationList) -> Result<(), Status> {
    peer_identity(request, revocation).map(|_| ())
}

/// The agent id of the calling agent.
pub fn agent_caller<T>(request: &Request<T>, revocation: &RevocationList) -> Result<String, Status> {
    match peer_identity(request, revocation)?.0 {
        PeerIdentity::Agent { id } => Ok(id),
        PeerIdentity::Admin { .. } => Err(Status::permission_denied("an admin certificate cannot act as an agent")),
    }
}

/// The calling admin, whatever its role.
pub fn admin_identity<T>(request: &Request<T>, revocation: &RevocationList) -> Result<AdminCaller, Status> {
    match peer_identity(request, revocation)?.0 {
        PeerIdentity::Admin { name, role } => Ok(AdminCaller { name, role }),
        PeerIdentity::Agent { .. } => Err(Status::permission_denied(
            "an agent certificate cannot make admin calls",
        )),
    }
}

/// The calling admin, refused unless its role is at least `needed`.
pub fn admin_caller<T>(
    request: &Request<T>,
    revocation: &RevocationList,
    needed: AdminRole,
) -> Result<AdminCaller, Status> {
    match peer_identity(request, revocation)?.0 {
        PeerIdentity::Admin { name, role } if role >= needed => Ok(AdminCaller { name, role }),
        PeerIdentity::Admin { name, role } => Err(Status::permission_denied(format!(
            "{name} has role {role}; this call needs {needed}"
        ))),
        PeerIdentity::Agent { .. } => Err(Status::permission_denied(
            "an agent certificate cannot make admin calls",
        )),
    }
}
