//! Runbook step 4 on Windows: the LocalMachine certificate stores the
//! runbook means ("Trusted Root Certification Authorities", the third-party
//! roots Windows Update fills in, and "Intermediate Certification
//! Authorities"), read through the Windows crypto API (`schannel`'s safe
//! wrapper of CertOpenStore/CertEnumCertificatesInStore).

use schannel::cert_store::CertStore;

/// `Root`, `AuthRoot` and `CA` of the LocalMachine location.
pub const SYSTEM_STORES: [&str; 3] = ["Root", "AuthRoot", "CA"];

/// Bound on certificates taken from all stores together (a real machine
/// holds a few hundred).
const MAX_CERTIFICATES: usize = 20_000;

/// The stores' certificates (DER) and the names of the stores read; a store
/// that does not open (AuthRoot is absent on some machines) is skipped, but
/// not all of them.
pub fn local_machine_certificates() -> anyhow::Result<(Vec<Vec<u8>>, Vec<String>)> {
    let mut certificates = Vec::new();
    let mut opened = Vec::new();
    let mut failures = Vec::new();
    for name in SYSTEM_STORES {
        match CertStore::open_local_machine(name) {
            Ok(store) => {
                opened.push(format!(r"LocalMachine\{name}"));
                for certificate in store.certs() {
                    if certificates.len() >= MAX_CERTIFICATES {
                        break;
                    }
                    certificates.push(certificate.to_der().to_vec());
                }
            }
            Err(error) => failures.push(format!(r"LocalMachine\{name}: {error}")),
        }
    }
    if opened.is_empty() {
        anyhow::bail!("no certificate store opened: {}", failures.join("; "));
    }
    Ok((certificates, opened))
}

#[cfg(test)]
mod tests {
    use sha1::Digest as _;
    use winreg::enums::{HKEY_LOCAL_MACHINE, REG_BINARY};
    use winreg::{RegKey, RegValue};

    use super::*;
    use crate::checks::test_support::certificate;

    /// A certificate as a registry certificate store keeps it: serialized
    /// properties, here only CERT_CERT_PROP_ID (32) holding the DER.
    fn store_blob(der: &[u8]) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.extend_from_slice(&32u32.to_le_bytes());
        blob.extend_from_slice(&1u32.to_le_bytes());
        blob.extend_from_slice(&u32::try_from(der.len()).expect("small").to_le_bytes());
        blob.extend_from_slice(der);
        blob
    }

    #[test]
    fn a_certificate_in_the_intermediate_store_is_found_and_its_removal_seen() {
        let ca = certificate("rollcall cert_store test CA", (2099, 1, 1));
        let name = hex::encode_upper(sha1::Sha1::digest(&ca.der));
        let path = format!(r"SOFTWARE\Microsoft\SystemCertificates\CA\Certificates\{name}");
        let machine = RegKey::predef(HKEY_LOCAL_MACHINE);
        let (key, _) = machine.create_subkey(&path).expect("create the store entry");
        key.set_raw_value(
            "Blob",
            &RegValue {
                bytes: store_blob(&ca.der).into(),
                vtype: REG_BINARY,
            },
        )
        .expect("write the blob");
        drop(key);
        let (found, stores) = local_machine_certificates().expect("read the stores");
        assert!(stores.iter().any(|store| store == r"LocalMachine\CA"), "{stores:?}");
        assert!(found.contains(&ca.der), "the CA store lacks the planted certificate");
        machine.delete_subkey_all(&path).expect("remove the entry");
        let (found, _) = local_machine_certificates().expect("read the stores");
        assert!(!found.contains(&ca.der), "the removed certificate is still listed");
    }
}
