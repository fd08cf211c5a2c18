//! Reads an endpoint's certificate trust store under the host root: a
//! directory of PEM or DER files (`etc/ssl/certs`, with its hash links and
//! bundle) or one bundle file. Each certificate is kept as its SHA-256
//! fingerprint and validity, deduplicated.
//!
//! Reading is bounded (files, bytes per file, bytes in total) because a
//! store is outside input too; files that cannot be read or parsed are
//! counted, not fatal: one odd file must not hide the rest of the store.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use crate::host::resolve_under;

/// Where stores are, relative to the host root, when the policy names none.
pub(crate) const DEFAULT_STORES: [&str; 2] = ["etc/ssl/certs", "etc/pki/tls/certs"];

const MAX_FILES: usize = 10_000;
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_TOTAL_BYTES: u64 = 128 * 1024 * 1024;

/// What a store holds.
#[derive(Debug, Default)]
pub(crate) struct TrustStore {
    /// The store as named (relative to the host root), for evidence.
    pub(crate) location: PathBuf,
    pub(crate) certificates: BTreeMap<[u8; 32], StoredCertificate>,
    /// SHA-1 of each certificate's DER (Windows' thumbprint) -> its SHA-256.
    pub(crate) by_sha1: BTreeMap<[u8; 20], [u8; 32]>,
    /// Files that could not be read or held no certificate.
    pub(crate) unreadable_files: usize,
    /// True when a limit stopped the reading early.
    pub(crate) truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredCertificate {
    /// Unix seconds; `None` when the certificate did not parse as X.509.
    pub(crate) not_after: Option<i64>,
}

/// Loads the policy's store, or the first default store that exists. On
/// Windows the LocalMachine certificate stores (Root, AuthRoot, CA) are
/// read through the Windows crypto API, unless the policy names a folder
/// that exists there: one fleet policy serves Linux endpoints (whose
/// `store` is a folder such as `etc/ssl/certs`) and Windows ones alike.
pub(crate) fn load(host_root: &Path, store: Option<&Path>) -> anyhow::Result<TrustStore> {
    #[cfg(windows)]
    if !store.is_some_and(|store| resolve_under(host_root, store).exists()) {
        return load_windows_stores();
    }
    let candidates: Vec<PathBuf> = match store {
        Some(store) => vec![store.to_path_buf()],
        None => DEFAULT_STORES.iter().map(PathBuf::from).collect(),
    };
    for candidate in &candidates {
        let path = resolve_under(host_root, candidate);
        if path.exists() {
            let mut loaded = TrustStore {
                location: candidate.clone(),
                ..TrustStore::default()
            };
            read_store(host_root, candidate, &path, &mut loaded)
                .with_context(|| format!("read trust store {}", path.display()))?;
            return Ok(loaded);
        }
    }
    let names: Vec<String> = candidates
        .iter()
        .map(|candidate| candidate.display().to_string())
        .collect();
    bail!("no trust store at {} under {}", names.join(" or "), host_root.display())
}

#[cfg(windows)]
fn load_windows_stores() -> anyhow::Result<TrustStore> {
    let (certificates, stores) = crate::platform::windows::cert_store::local_machine_certificates()?;
    let mut loaded = TrustStore {
        location: PathBuf::from(stores.join(", ")),
        ..TrustStore::default()
    };
    for der in &certificates {
        add_der(der, &mut loaded);
    }
    Ok(loaded)
}

/// `relative` is the store under `host_root`, `path` where it resolved to.
fn read_store(host_root: &Path, relative: &Path, path: &Path, store: &mut TrustStore) -> anyhow::Result<()> {
    if !path.is_dir() {
        let bytes = rollcall_common::files::read_bounded(path, MAX_FILE_BYTES)?;
        add_file(&bytes, store);
        if store.certificates.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        return Ok(());
    }
    let mut entries: Vec<std::ffi::OsString> = fs::read_dir(path)?
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .collect();
    entries.sort();
    let mut total_bytes = 0u64;
    for (index, entry) in entries.iter().enumerate() {
        if index >= MAX_FILES || total_bytes > MAX_TOTAL_BYTES {
            store.truncated = true;
            break;
        }
        // Entries are often absolute links into /usr/share/ca-certificates,
        // which must resolve under the host root too.
        let target = resolve_under(host_root, &relative.join(entry));
        if target.is_dir() {
            continue;
        }
        match rollcall_common::files::read_bounded(&target, MAX_FILE_BYTES) {
            Ok(bytes) => {
                total_bytes += bytes.len() as u64;
                if !add_file(&bytes, store) {
                    store.unreadable_files += 1;
                }
            }
            Err(_) => store.unreadable_files += 1,
        }
    }
    Ok(())
}

/// Adds every certificate in one file (PEM, possibly a bundle, or DER);
/// false when the file held none.
fn add_file(bytes: &[u8], store: &mut TrustStore) -> bool {
    let mut found = false;
    if bytes.windows(11).any(|window| window == b"-----BEGIN ") {
        // A damaged PEM section is skipped; the others still count.
        for der in CertificateDer::pem_slice_iter(bytes).flatten() {
            add_der(der.as_ref(), store);
            found = true;
        }
    } else if x509_parser::parse_x509_certificate(bytes).is_ok() {
        add_der(bytes, store);
        found = true;
    }
    found
}

fn add_der(der: &[u8], store: &mut TrustStore) {
    let sha256: [u8; 32] = Sha256::digest(der).into();
    let sha1: [u8; 20] = sha1::Sha1::digest(der).into();
    store.by_sha1.entry(sha1).or_insert(sha256);
    let not_after = x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, certificate)| certificate.validity().not_after.timestamp());
    store
        .certificates
        .entry(sha256)
        .or_insert(StoredCertificate { not_after });
}
