//! Who is looking at the dashboard: the identity in the client certificate
//! of the TLS connection, read once per connection with the same parsing
//! as the gRPC admin API ([`cert_facts`]).
//!
//! TLS only *offers* client authentication (the listener shares the
//! coordinator's rustls configuration), so a browser without a certificate
//! still gets an explanation instead of a bare handshake failure; the
//! requirement is enforced here, on every request: no certificate is 401,
//! an agent certificate or an unknown identity is 403, any admin role
//! (viewer and up) may read. A revoked certificate fails the handshake
//! already, and is checked again per request because a keep-alive
//! connection can outlive the revocation.

use std::sync::Arc;

use rollcall_common::pki::{AdminRole, PeerIdentity, cert_facts};
use rollcall_common::tls::RevocationCheck;
use rustls::pki_types::CertificateDer;

/// The peer of one connection, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// No client certificate was presented.
    Anonymous,
    /// A certificate that chains to our CA but carries no readable identity.
    Unidentified,
    Agent {
        id: String,
        serial: String,
    },
    Admin {
        name: String,
        role: AdminRole,
        serial: String,
    },
}

impl Peer {
    /// Reads the leaf certificate of a connection (verified by rustls).
    pub fn from_certs(certs: Option<Arc<Vec<CertificateDer<'static>>>>) -> Peer {
        let Some(leaf) = certs.as_ref().and_then(|certs| certs.first().cloned()) else {
            return Peer::Anonymous;
        };
        let Ok(facts) = cert_facts(&leaf) else {
            return Peer::Unidentified;
        };
        match facts.identity {
            Some(PeerIdentity::Agent { id }) => Peer::Agent {
                id,
                serial: facts.serial,
            },
            Some(PeerIdentity::Admin { name, role }) => Peer::Admin {
                name,
                role,
                serial: facts.serial,
            },
            None => Peer::Unidentified,
        }
    }
}

/// An admin allowed to read the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub name: String,
    pub role: AdminRole,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 401: present an admin certificate.
    Unauthenticated(&'static str),
    /// 403: the certificate is known but may not read the dashboard.
    Forbidden(String),
}

/// The dashboard is read-only: any admin role from viewer up may look.
pub const NEEDED: AdminRole = AdminRole::Viewer;
/// `/metrics` alone: also the metrics role (a Prometheus scraper).
pub const NEEDED_FOR_METRICS: AdminRole = AdminRole::Metrics;

/// The role a path needs.
pub fn needed_for(path: &str) -> AdminRole {
    if path == "/metrics" { NEEDED_FOR_METRICS } else { NEEDED }
}

pub fn authorize(peer: &Peer, revocation: &dyn RevocationCheck, needed: AdminRole) -> Result<Viewer, Denied> {
    match peer {
        Peer::Anonymous => Err(Denied::Unauthenticated(
            "the dashboard needs an admin client certificate issued by this coordinator \
(rollcall-server admin-cert --role viewer)",
        )),
        Peer::Unidentified => Err(Denied::Forbidden(
            "the client certificate carries no rollcall identity".into(),
        )),
        Peer::Agent { id, serial } => {
            if revocation.is_revoked(serial, Some(id)) {
                return Err(Denied::Forbidden("this certificate has been revoked".into()));
            }
            Err(Denied::Forbidden(
                "an agent certificate cannot open the dashboard".into(),
            ))
        }
        Peer::Admin { name, role, serial } => {
            if revocation.is_revoked(serial, None) {
                return Err(Denied::Forbidden("this certificate has been revoked".into()));
            }
            if *role < needed {
                return Err(Denied::Forbidden(format!(
                    "{name} has role {role}; this page needs {needed}"
                )));
            }
            Ok(Viewer {
                name: name.clone(),
                role: *role,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rollcall_common::pki::{CertAuthority, first_cert_der, generate_key};

    use super::*;
    use crate::edge::revocation::RevocationList;

    fn certs(pem: &str) -> Option<Arc<Vec<CertificateDer<'static>>>> {
        let der = first_cert_der(pem).expect("der");
        Some(Arc::new(vec![CertificateDer::from(der)]))
    }

    #[test]
    fn viewers_read_agents_and_strangers_do_not() {
        let (ca, _) = CertAuthority::generate("test CA").expect("ca");
        let (viewer_pem, _) = ca
            .issue_admin("vera", AdminRole::Viewer, Duration::from_secs(3600))
            .expect("admin cert");
        let key = generate_key().expect("key");
        let csr = rollcall_common::pki::certificate_request(&key, "pc-1").expect("csr");
        let agent_id = "0190a0b0-0000-7000-8000-000000000001";
        let agent_pem = ca
            .issue_agent(&csr, agent_id, Duration::from_secs(3600))
            .expect("agent cert");
        let revocation = RevocationList::default();

        let viewer = Peer::from_certs(certs(&viewer_pem));
        assert_eq!(
            authorize(&viewer, &revocation, NEEDED),
            Ok(Viewer {
                name: "vera".into(),
                role: AdminRole::Viewer
            })
        );
        assert!(matches!(
            authorize(&Peer::from_certs(None), &revocation, NEEDED),
            Err(Denied::Unauthenticated(_))
        ));
        assert!(matches!(
            authorize(&Peer::from_certs(certs(&agent_pem)), &revocation, NEEDED),
            Err(Denied::Forbidden(_))
        ));

        let Peer::Admin { serial, .. } = &viewer else {
            panic!("not an admin: {viewer:?}");
        };
        revocation.revoke_serial(serial);
        assert_eq!(
            authorize(&viewer, &revocation, NEEDED),
            Err(Denied::Forbidden("this certificate has been revoked".into()))
        );
    }

    #[test]
    fn the_metrics_role_scrapes_metrics_and_reads_nothing_else() {
        let (ca, _) = CertAuthority::generate("test CA").expect("ca");
        let (pem, _) = ca
            .issue_admin("prometheus", AdminRole::Metrics, Duration::from_secs(3600))
            .expect("admin cert");
        let scraper = Peer::from_certs(certs(&pem));
        let revocation = RevocationList::default();
        assert!(authorize(&scraper, &revocation, needed_for("/metrics")).is_ok());
        for path in ["/", "/agents/x", "/report", "/report.json", "/api/live"] {
            assert!(
                matches!(
                    authorize(&scraper, &revocation, needed_for(path)),
                    Err(Denied::Forbidden(_))
                ),
                "{path}"
            );
        }
    }
}
