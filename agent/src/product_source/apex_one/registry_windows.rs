//! The real registry, through `winreg`'s safe API. Keys are opened with
//! `KEY_READ | KEY_WOW64_64KEY`: the probe is a 64-bit program, and with the
//! 64-bit view an explicit `SOFTWARE\WOW6432Node\…` path in the mapping file
//! reads the 32-bit agent's keys exactly as `regedit` shows them, with no
//! redirection guessing.
//!
//! Values are decoded here from their raw bytes (UTF-16LE strings,
//! little-endian integers) so that a malformed value is an error, not a panic.

use std::io;

use anyhow::{Context, anyhow, bail};
use winreg::RegKey;
use winreg::enums::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_64KEY, RegType};

use super::registry::{Hive, KeyPath, RegValue, Registry};

/// The Windows registry of this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsRegistry;

impl Registry for WindowsRegistry {
    fn value(&self, key: &str, name: &str) -> anyhow::Result<Option<RegValue>> {
        let path = KeyPath::parse(key).map_err(|error| anyhow!(error))?;
        let Some(opened) = open(&path)? else {
            return Ok(None);
        };
        match opened.get_raw_value(name) {
            Ok(raw) => decode(&raw)
                .map(Some)
                .with_context(|| format!("decode {path} value {name:?}")),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("read {path} value {name:?}")),
        }
    }

    fn subkeys(&self, key: &str) -> anyhow::Result<Vec<String>> {
        let path = KeyPath::parse(key).map_err(|error| anyhow!(error))?;
        let Some(opened) = open(&path)? else {
            return Ok(Vec::new());
        };
        opened
            .enum_keys()
            .collect::<io::Result<Vec<String>>>()
            .with_context(|| format!("list the subkeys of {path}"))
    }
}

/// Opens a key for reading; `None` when it does not exist.
fn open(path: &KeyPath) -> anyhow::Result<Option<RegKey>> {
    let root = RegKey::predef(match path.hive {
        Hive::LocalMachine => HKEY_LOCAL_MACHINE,
        Hive::CurrentUser => HKEY_CURRENT_USER,
    });
    match root.open_subkey_with_flags(&path.subkey, KEY_READ | KEY_WOW64_64KEY) {
        Ok(key) => Ok(Some(key)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("open {path}")),
    }
}

/// Decodes a raw value by its type.
fn decode(raw: &winreg::RegValue) -> anyhow::Result<RegValue> {
    Ok(match raw.vtype {
        RegType::REG_SZ => RegValue::String(utf16_text(&raw.bytes)?),
        RegType::REG_EXPAND_SZ => RegValue::ExpandString(utf16_text(&raw.bytes)?),
        RegType::REG_MULTI_SZ => {
            let text = utf16_text(&raw.bytes)?;
            RegValue::MultiString(
                text.split('\0')
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect(),
            )
        }
        RegType::REG_DWORD => match <[u8; 4]>::try_from(raw.bytes.as_slice()) {
            Ok(bytes) => RegValue::Dword(u32::from_le_bytes(bytes)),
            Err(_) => bail!("a REG_DWORD of {} bytes", raw.bytes.len()),
        },
        RegType::REG_QWORD => match <[u8; 8]>::try_from(raw.bytes.as_slice()) {
            Ok(bytes) => RegValue::Qword(u64::from_le_bytes(bytes)),
            Err(_) => bail!("a REG_QWORD of {} bytes", raw.bytes.len()),
        },
        ref other => RegValue::Other(format!("{other:?}")),
    })
}

/// UTF-16LE bytes to text, trailing NULs removed; an odd length or an
/// unpaired surrogate is an error.
fn utf16_text(bytes: &[u8]) -> anyhow::Result<String> {
    if bytes.len() % 2 != 0 {
        bail!("a string value of an odd number of bytes ({})", bytes.len());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let text = String::from_utf16(&units).context("the string value is not valid UTF-16")?;
    Ok(text.trim_end_matches('\0').to_string())
}

#[cfg(test)]
mod tests {
    //! Real keys under `HKCU\Software\rollcall-test-<pid>`, removed afterwards
    //! (CI runs these under Wine).

    use super::*;
    use crate::product_source::apex_one;

    /// A scratch key, deleted with everything under it when dropped.
    struct ScratchKey {
        subkey: String,
    }

    impl ScratchKey {
        fn new(name: &str) -> ScratchKey {
            let subkey = format!("Software\\rollcall-test-{}-{name}", std::process::id());
            ScratchKey { subkey }
        }

        fn path(&self) -> String {
            format!("HKCU\\{}", self.subkey)
        }

        fn create(&self, below: &str) -> RegKey {
            let path = if below.is_empty() {
                self.subkey.clone()
            } else {
                format!("{}\\{below}", self.subkey)
            };
            let (key, _) = RegKey::predef(HKEY_CURRENT_USER)
                .create_subkey(&path)
                .expect("create a test key");
            key
        }
    }

    impl Drop for ScratchKey {
        fn drop(&mut self) {
            let _ = RegKey::predef(HKEY_CURRENT_USER).delete_subkey_all(&self.subkey);
        }
    }

    #[test]
    fn values_of_every_usable_type_are_read() {
        let scratch = ScratchKey::new("types");
        let key = scratch.create("CurrentVersion");
        key.set_value("Server", &"apex.example".to_string()).expect("set");
        key.set_value("ServerPort", &8080u32).expect("set");
        key.set_value("Big", &(u64::from(u32::MAX) + 1)).expect("set");
        key.set_value("List", &vec!["a".to_string(), "b".to_string()])
            .expect("set");
        let registry = WindowsRegistry;
        let at = format!("{}\\CurrentVersion", scratch.path());
        assert_eq!(
            registry.value(&at, "server").expect("read"),
            Some(RegValue::String("apex.example".to_string()))
        );
        assert_eq!(
            registry.value(&at, "ServerPort").expect("read"),
            Some(RegValue::Dword(8080))
        );
        assert_eq!(
            registry.value(&at, "Big").expect("read"),
            Some(RegValue::Qword(u64::from(u32::MAX) + 1))
        );
        assert_eq!(
            registry.value(&at, "List").expect("read"),
            Some(RegValue::MultiString(vec!["a".to_string(), "b".to_string()]))
        );
        assert_eq!(registry.value(&at, "Absent").expect("read"), None);
        assert_eq!(registry.value(&format!("{at}\\Nope"), "Server").expect("read"), None);
        assert_eq!(registry.subkeys(&scratch.path()).expect("list"), ["CurrentVersion"]);
    }

    #[test]
    fn a_mapping_pointing_at_real_keys_resolves() {
        let scratch = ScratchKey::new("mapping");
        let agent = scratch.create("PC-cillinNTCorp\\CurrentVersion");
        agent.set_value("Server", &"apex.example".to_string()).expect("set");
        agent.set_value("ServerPort", &443u32).expect("set");
        agent.set_value("UpdateAgent", &1u32).expect("set");
        let product = scratch.create("Uninstall\\{ABC}");
        product
            .set_value("DisplayName", &"Trend Micro Apex One Security Agent".to_string())
            .expect("set");
        product
            .set_value("DisplayVersion", &"14.0.12737".to_string())
            .expect("set");
        let base = scratch.path();
        let mapping = format!(
            r#"
uninstall_roots = ['{base}\Uninstall']
[version]
uninstall = {{ display_name = "Trend Micro Apex One Security Agent" }}
verified = true
[role]
registry = {{ key = '{base}\PC-cillinNTCorp\CurrentVersion', value = "UpdateAgent" }}
translate = {{ "0" = "endpoint", "1" = "update_agent" }}
[server.address]
registry = {{ key = '{base}\PC-cillinNTCorp\CurrentVersion', value = "Server" }}
port = {{ registry = {{ key = '{base}\PC-cillinNTCorp\CurrentVersion', value = "ServerPort" }} }}
"#
        );
        let mapping = apex_one::Mapping::parse(&mapping).expect("mapping");
        let doc = apex_one::document(&apex_one::resolve(&mapping, &WindowsRegistry));
        assert_eq!(doc.version().expect("version"), "14.0.12737");
        assert_eq!(doc.server_address().expect("server"), "apex.example:443");
        assert_eq!(
            doc.role().expect("role"),
            rollcall_common::product::ProductRole::UpdateAgent
        );
    }
}
