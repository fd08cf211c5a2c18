//! The coordinator's certificate authority and the identities it issues.
//!
//! Every key is ECDSA P-256. Identities live in a URI subject-alternative
//! name so they cannot be confused with host names:
//! - agents: `urn:rollcall:agent:<agent id>`
//! - admins: `urn:rollcall:admin:<role>:<name>`
//!
//! The coordinator decides every identity: from an agent's CSR it takes only
//! the public key, never the subject or names the CSR asks for.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

const AGENT_URI_PREFIX: &str = "urn:rollcall:agent:";
const ADMIN_URI_PREFIX: &str = "urn:rollcall:admin:";

/// What an admin certificate allows, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminRole {
    /// Scrapes `/metrics` on the dashboard listener, nothing else (for
    /// Prometheus: its key can read no agent, report or audit entry).
    Metrics,
    /// Reads everything.
    Viewer,
    /// Also starts rollouts and sends recheck / update-now.
    Operator,
    /// Also manages tokens, revocation, policy and admin certificates.
    Admin,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Metrics => "metrics",
            AdminRole::Viewer => "viewer",
            AdminRole::Operator => "operator",
            AdminRole::Admin => "admin",
        }
    }
}

impl fmt::Display for AdminRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AdminRole {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> anyhow::Result<Self> {
        match text {
            "metrics" => Ok(AdminRole::Metrics),
            "viewer" => Ok(AdminRole::Viewer),
            "operator" => Ok(AdminRole::Operator),
            "admin" => Ok(AdminRole::Admin),
            other => bail!("unknown role {other:?}; expected metrics, viewer, operator or admin"),
        }
    }
}

/// Who is on the other end of a TLS connection, read from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    Agent { id: String },
    Admin { name: String, role: AdminRole },
}

/// Facts about one certificate that the coordinator keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    pub identity: Option<PeerIdentity>,
    /// Lower-case hex of the serial number.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Reads the identity, serial and validity of a DER certificate.
pub fn cert_facts(der: &[u8]) -> anyhow::Result<CertFacts> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|error| anyhow::anyhow!("parse certificate: {error}"))?;
    let mut identity = None;
    for extension in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = extension.parsed_extension() {
            for name in &san.general_names {
                if let GeneralName::URI(uri) = name
                    && let Some(found) = parse_identity_uri(uri)
                {
                    identity = Some(found);
                }
            }
        }
    }
    Ok(CertFacts {
        identity,
        serial: hex::encode(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

fn parse_identity_uri(uri: &str) -> Option<PeerIdentity> {
    if let Some(id) = uri.strip_prefix(AGENT_URI_PREFIX) {
        return valid_agent_id(id).then(|| PeerIdentity::Agent { id: id.to_string() });
    }
    let rest = uri.strip_prefix(ADMIN_URI_PREFIX)?;
    let (role, name) = rest.split_once(':')?;
    let role = role.parse().ok()?;
    (!name.is_empty()).then(|| PeerIdentity::Admin {
        name: name.to_string(),
        role,
    })
}

/// Agent ids are UUIDs in their hyphenated lower-case form.
pub fn valid_agent_id(id: &str) -> bool {
    id.len() == 36
        && id
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte) || byte == b'-')
}

/// A fresh ECDSA P-256 key pair, PEM (PKCS#8).
pub fn generate_key() -> anyhow::Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generate an ECDSA P-256 key")
}

/// A CSR for `key`; the coordinator ignores everything in it but the key.
pub fn certificate_request(key: &KeyPair, hostname: &str) -> anyhow::Result<String> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, hostname.chars().take(64).collect::<String>());
    params
        .serialize_request(key)
        .and_then(|csr| csr.pem())
        .context("build a certificate signing request")
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Keep it positive and non-zero-leading in DER.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = OffsetDateTime::now_utc();
    // A little back-dating tolerates clock skew between coordinator and endpoint.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + lifetime;
}

/// The coordinator's CA: its certificate and the key that signs with it.
pub struct CertAuthority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl CertAuthority {
    /// Creates a new self-signed CA valid for ten years.
    pub fn generate(common_name: &str) -> anyhow::Result<(Self, String)> {
        let key = generate_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name.push(DnType::OrganizationName, "rollcall");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        validity(&mut params, Duration::from_secs(10 * 365 * 24 * 3600));
        let cert = params.self_signed(&key).context("self-sign the CA certificate")?;
        let key_pem = key.serialize_pem();
        let authority = CertAuthority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        };
        Ok((authority, key_pem))
    }

    /// Loads a CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(key_pem).context("parse the CA key")?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).context("parse the CA certificate")?;
        Ok(CertAuthority {
            cert_pem: cert_pem.to_string(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Signs the key inside `csr_pem` as agent `agent_id`. Only P-256 keys are accepted.
    pub fn issue_agent(&self, csr_pem: &str, agent_id: &str, lifetime: Duration) -> anyhow::Result<String> {
        if !valid_agent_id(agent_id) {
            bail!("invalid agent id {agent_id:?}");
        }
        require_p256_key(csr_pem)?;
        // Parsing also verifies the CSR's signature: the asker holds the key.
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|error| anyhow::anyhow!("invalid certificate signing request: {error}"))?;
        if csr.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            bail!("the certificate signing request must be signed with ECDSA P-256 and SHA-256");
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, agent_id);
        params.subject_alt_names = vec![SanType::URI(format!("{AGENT_URI_PREFIX}{agent_id}").try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, lifetime);
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .context("sign the agent certificate")?;
        Ok(cert.pem())
    }

    /// Issues an admin identity: returns (certificate PEM, key PEM).
    pub fn issue_admin(&self, name: &str, role: AdminRole, lifetime: Duration) -> anyhow::Result<(String, String)> {
        let params = admin_params(name, role, lifetime)?;
        let key = generate_key()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("sign the admin certificate")?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs the key inside `csr_pem` as admin `name` with `role` (the key
    /// stays with whoever asked).
    pub fn issue_admin_from_csr(
        &self,
        csr_pem: &str,
        name: &str,
        role: AdminRole,
        lifetime: Duration,
    ) -> anyhow::Result<String> {
        let params = admin_params(name, role, lifetime)?;
        require_p256_key(csr_pem)?;
        // Parsing also verifies the CSR's signature: the asker holds the key.
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|error| anyhow::anyhow!("invalid certificate signing request: {error}"))?;
        if csr.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            bail!("the certificate signing request must be signed with ECDSA P-256 and SHA-256");
        }
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .context("sign the admin certificate")?;
        Ok(cert.pem())
    }

    /// Issues the coordinator's own server certificate: (certificate PEM, key PEM).
    pub fn issue_server(&self, names: &[String], lifetime: Duration) -> anyhow::Result<(String, String)> {
        let key = generate_key()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "rollcall coordinator");
        for name in names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    name.as_str()
                        .try_into()
                        .with_context(|| format!("server name {name:?}"))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, lifetime);
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("sign the server certificate")?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Admin names: what may appear in certificates, audit entries and URIs.
pub fn valid_admin_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

fn admin_params(name: &str, role: AdminRole, lifetime: Duration) -> anyhow::Result<CertificateParams> {
    if !valid_admin_name(name) {
        bail!("admin name {name:?} must be 1-64 characters of letters, digits, - _ . @");
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, role.as_str());
    params.subject_alt_names = vec![SanType::URI(format!("{ADMIN_URI_PREFIX}{role}:{name}").try_into()?)];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, lifetime);
    Ok(params)
}

/// Decodes the first certificate of a PEM text to DER.
pub fn first_cert_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(der)) => Ok(der.to_vec()),
        Some(Err(error)) => Err(anyhow::anyhow!("parse PEM certificate: {error}")),
        None => bail!("no certificate in PEM text"),
    }
}

/// Refuses a CSR whose *key* is not an uncompressed ECDSA P-256 point. The
/// signature algorithm says nothing about the curve (a P-384 key signs with
/// ecdsa-with-SHA256 just as well), so the subject public key info is read.
fn require_p256_key(csr_pem: &str) -> anyhow::Result<()> {
    use rustls::pki_types::{CertificateSigningRequestDer, pem::PemObject};
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
    use x509_parser::prelude::FromDer;

    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map_err(|error| anyhow::anyhow!("invalid certificate signing request: {error}"))?;
    let (_, csr) = X509CertificationRequest::from_der(der.as_ref())
        .map_err(|error| anyhow::anyhow!("invalid certificate signing request: {error}"))?;
    let spki = &csr.certification_request_info.subject_pki;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.as_oid().ok());
    let key = &spki.subject_public_key.data;
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY
        || curve.as_ref() != Some(&OID_EC_P256)
        || key.len() != 65
        || key.first() != Some(&0x04)
    {
        bail!("the certificate signing request must carry an ECDSA P-256 key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_p256_keys_are_signed_whatever_the_csr_says() {
        let (ca, _) = CertAuthority::generate("test ca").expect("ca");
        let agent_id = "0190a0b0-0000-7000-8000-000000000001";
        let good = certificate_request(&generate_key().expect("key"), "pc-1").expect("csr");
        assert!(ca.issue_agent(&good, agent_id, Duration::from_secs(60)).is_ok());
        for algorithm in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let key = KeyPair::generate_for(algorithm).expect("key");
            let csr = certificate_request(&key, "pc-1").expect("csr");
            let error = ca.issue_agent(&csr, agent_id, Duration::from_secs(60)).unwrap_err();
            assert!(error.to_string().contains("P-256 key"), "{error}");
            let error = ca
                .issue_admin_from_csr(&csr, "eve", AdminRole::Viewer, Duration::from_secs(60))
                .unwrap_err();
            assert!(error.to_string().contains("P-256 key"), "{error}");
        }
        let garbage = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(ca.issue_agent(garbage, agent_id, Duration::from_secs(60)).is_err());
    }

    #[test]
    fn agent_certificates_carry_the_coordinator_chosen_id() {
        let (ca, _) = CertAuthority::generate("test ca").expect("ca");
        let key = generate_key().expect("key");
        let csr = certificate_request(&key, "laptop-7").expect("csr");
        let id = "0191c3a4-7d1e-7c3a-9a4b-0123456789ab";
        let pem = ca.issue_agent(&csr, id, Duration::from_secs(3600)).expect("issue");
        let facts = cert_facts(&first_cert_der(&pem).expect("der")).expect("facts");
        assert_eq!(facts.identity, Some(PeerIdentity::Agent { id: id.to_string() }));
        assert!(facts.not_after > OffsetDateTime::now_utc());
    }

    #[test]
    fn admin_certificates_carry_name_and_role() {
        let (ca, _) = CertAuthority::generate("test ca").expect("ca");
        let (pem, _key) = ca
            .issue_admin("alice", AdminRole::Operator, Duration::from_secs(60))
            .expect("issue");
        let facts = cert_facts(&first_cert_der(&pem).expect("der")).expect("facts");
        assert_eq!(
            facts.identity,
            Some(PeerIdentity::Admin {
                name: "alice".into(),
                role: AdminRole::Operator
            })
        );
        assert!(
            ca.issue_admin("bad name", AdminRole::Viewer, Duration::from_secs(60))
                .is_err()
        );
    }

    #[test]
    fn garbage_csr_is_refused() {
        let (ca, _) = CertAuthority::generate("test ca").expect("ca");
        let id = "0191c3a4-7d1e-7c3a-9a4b-0123456789ab";
        assert!(ca.issue_agent("not a csr", id, Duration::from_secs(60)).is_err());
        let key = generate_key().expect("key");
        let csr = certificate_request(&key, "h").expect("csr");
        assert!(ca.issue_agent(&csr, "../etc/passwd", Duration::from_secs(60)).is_err());
    }

    #[test]
    fn ca_round_trips_through_pem() {
        let (ca, key_pem) = CertAuthority::generate("test ca").expect("ca");
        let loaded = CertAuthority::from_pem(ca.cert_pem(), &key_pem).expect("load");
        let (pem, _) = loaded
            .issue_server(&["localhost".into(), "127.0.0.1".into()], Duration::from_secs(60))
            .expect("server");
        assert!(pem.contains("BEGIN CERTIFICATE"));
    }
}
