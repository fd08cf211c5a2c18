//! The coordinator's data directory: its PKI and the embedded store.
//!
//! ```text
//! DIR/ca.pem            the CA certificate agents and admins trust
//! DIR/ca-key.pem        the CA key (0600; the coordinator refuses to start otherwise)
//! DIR/server.pem        the coordinator's TLS certificate
//! DIR/server-key.pem    its key (0600)
//! DIR/admin/            the local operator's admin identity: ca.pem cert.pem key.pem
//! DIR/rollcall.db       the SQLite store (WAL)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rollcall_common::files::{create_private_dir, ensure_owner_only, read_bounded_utf8, write_atomic};
use rollcall_common::pki::{AdminRole, CertAuthority, cert_facts, first_cert_der};
use rollcall_common::timefmt::{ms_of, now_ms};

use crate::store::AdminCertRow;

const MAX_PEM_BYTES: u64 = 64 * 1024;
/// The coordinator's own certificate is renewed by re-running init tooling;
/// a year keeps operators from being surprised.
const SERVER_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
pub const ADMIN_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// The files a coordinator serves with, loaded and checked.
pub struct LoadedPki {
    pub ca: CertAuthority,
    pub server_cert_pem: String,
    pub server_key_pem: rollcall_common::secret::Secret,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca-key.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server-key.pem")
    }
    pub fn admin_dir(&self) -> PathBuf {
        self.root.join("admin")
    }
    pub fn sqlite_path(&self) -> PathBuf {
        self.root.join("rollcall.db")
    }

    /// Creates the CA, the server certificate for `server_names`, the local
    /// admin identity and, unless the coordinator will use PostgreSQL
    /// (`embedded_store` false), the embedded store. Refuses to overwrite an
    /// existing CA. Returns the local admin's certificate (PEM).
    pub fn init(&self, server_names: &[String], embedded_store: bool) -> anyhow::Result<String> {
        if self.ca_cert().exists() || self.ca_key().exists() {
            bail!(
                "{} already holds a CA; refusing to overwrite it (move it away to start over)",
                self.root.display()
            );
        }
        create_private_dir(&self.root)?;
        let (ca, ca_key_pem) = CertAuthority::generate("rollcall CA")?;
        write_atomic(&self.ca_key(), ca_key_pem.as_bytes(), true)?;
        write_atomic(&self.ca_cert(), ca.cert_pem().as_bytes(), false)?;
        let (server_cert, server_key) = ca.issue_server(server_names, SERVER_CERT_LIFETIME)?;
        write_atomic(&self.server_key(), server_key.as_bytes(), true)?;
        write_atomic(&self.server_cert(), server_cert.as_bytes(), false)?;
        let admin_cert = write_admin_identity(&ca, "local-admin", AdminRole::Admin, &self.admin_dir())?;
        if embedded_store {
            crate::store::sqlite::SqliteStore::open(&self.sqlite_path())?;
            self.record_admin_offline(&admin_cert, "local-admin", AdminRole::Admin)?;
        }
        Ok(admin_cert)
    }

    /// Loads the PKI, refusing keys that others can read.
    pub fn load_pki(&self) -> anyhow::Result<LoadedPki> {
        if !self.ca_cert().exists() {
            bail!(
                "no CA in {}; run `rollcall-server init --data-dir {}` first",
                self.root.display(),
                self.root.display()
            );
        }
        ensure_owner_only(&self.ca_key()).context("check the CA key's permissions")?;
        ensure_owner_only(&self.server_key()).context("check the server key's permissions")?;
        let ca_cert = read_bounded_utf8(&self.ca_cert(), MAX_PEM_BYTES)?;
        let ca_key = read_bounded_utf8(&self.ca_key(), MAX_PEM_BYTES)?;
        Ok(LoadedPki {
            ca: CertAuthority::from_pem(&ca_cert, &ca_key)?,
            server_cert_pem: read_bounded_utf8(&self.server_cert(), MAX_PEM_BYTES)?,
            server_key_pem: read_bounded_utf8(&self.server_key(), MAX_PEM_BYTES)?.into(),
        })
    }

    /// Records an admin certificate issued without a running coordinator
    /// (init, `admin-cert`) in the embedded store, so it can be listed and
    /// revoked like one issued through the API.
    pub fn record_admin_offline(&self, cert_pem: &str, name: &str, role: AdminRole) -> anyhow::Result<()> {
        if !self.sqlite_path().exists() {
            return Ok(());
        }
        let row = cert_row(cert_pem, name, role, "rollcall-server")?;
        let store = crate::store::sqlite::SqliteStore::open(&self.sqlite_path())?;
        // A runtime of its own on a thread of its own: callers may already be
        // inside one (init runs from async code), and runtimes do not nest.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
                    runtime
                        .block_on(crate::store::AuditStore::record_admin_certificate(&store, row))
                        .map_err(|error| anyhow::anyhow!("record the admin certificate: {error}"))
                })
                .join()
                .map_err(|_| anyhow::anyhow!("record the admin certificate: worker panicked"))?
        })
    }

    /// Loads only the CA (for `admin-cert`).
    pub fn load_ca(&self) -> anyhow::Result<CertAuthority> {
        ensure_owner_only(&self.ca_key()).context("check the CA key's permissions")?;
        let ca_cert = read_bounded_utf8(&self.ca_cert(), MAX_PEM_BYTES)
            .with_context(|| format!("no CA in {}; run `rollcall-server init` first", self.root.display()))?;
        let ca_key = read_bounded_utf8(&self.ca_key(), MAX_PEM_BYTES)?;
        CertAuthority::from_pem(&ca_cert, &ca_key)
    }
}

/// Writes `ca.pem`, `cert.pem`, `key.pem` (0600) into `out`.
/// Returns the certificate PEM (to record it in the store).
pub fn write_admin_identity(ca: &CertAuthority, name: &str, role: AdminRole, out: &Path) -> anyhow::Result<String> {
    let (cert, key) = ca.issue_admin(name, role, ADMIN_CERT_LIFETIME)?;
    create_private_dir(out)?;
    write_atomic(&out.join("key.pem"), key.as_bytes(), true)?;
    write_atomic(&out.join("cert.pem"), cert.as_bytes(), false)?;
    write_atomic(&out.join("ca.pem"), ca.cert_pem().as_bytes(), false)?;
    Ok(cert)
}

/// Records an issued admin certificate so it can be listed and revoked.
pub fn cert_row(cert_pem: &str, name: &str, role: AdminRole, issued_by: &str) -> anyhow::Result<AdminCertRow> {
    let facts = cert_facts(&first_cert_der(cert_pem)?)?;
    Ok(AdminCertRow {
        serial: facts.serial,
        name: name.to_string(),
        role: role.to_string(),
        issued_at_ms: now_ms(),
        not_after_ms: ms_of(facts.not_after),
        issued_by: issued_by.to_string(),
        revoked_at_ms: None,
    })
}
