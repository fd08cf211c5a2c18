//! Reading one key of a Windows `.ini` file (the Apex One agent keeps its
//! settings in `ofcscan.ini` and friends), the way `GetPrivateProfileString`
//! finds it: section and key names compared case-insensitively, the first
//! matching section and the first matching key win, `;` starts a comment
//! line, the value is trimmed and one pair of enclosing quotes is removed.
//! No escapes are interpreted: `C:\Program Files` stays as written.
//!
//! Windows tools write these files as UTF-8 (with or without a byte-order
//! mark), UTF-16 with a byte-order mark, or in the legacy code page. The
//! first three are decoded exactly; legacy bytes are decoded lossily so the
//! ASCII section and key names still match, and a value that contains such
//! bytes is refused rather than returned garbled. A hand-written parser
//! rather than an ini crate: the common crates interpret backslash escapes
//! and quotes differently from Windows and know nothing of UTF-16.

use std::path::Path;

use anyhow::{Context, bail};

/// Largest `.ini` file read; `ofcscan.ini` is tens of kilobytes.
pub const MAX_INI_BYTES: u64 = 4 * 1024 * 1024;

/// An `.ini` file's text and whether it was decoded exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniText {
    text: String,
    /// Not UTF-8 nor UTF-16: invalid bytes became U+FFFD.
    lossy: bool,
}

impl IniText {
    /// Reads a file, bounded, and decodes it.
    pub fn read(path: &Path) -> anyhow::Result<IniText> {
        let bytes = rollcall_common::files::read_bounded(path, MAX_INI_BYTES)?;
        IniText::decode(&bytes).with_context(|| format!("decode {}", path.display()))
    }

    /// Decodes by byte-order mark: UTF-8, UTF-16LE, UTF-16BE; no mark means
    /// UTF-8, lossily when the bytes are not UTF-8.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<IniText> {
        if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
            let text =
                std::str::from_utf8(rest).context("the file starts with a UTF-8 byte-order mark but is not UTF-8")?;
            return Ok(IniText {
                text: text.to_string(),
                lossy: false,
            });
        }
        let utf16 = match bytes {
            [0xFF, 0xFE, rest @ ..] => Some((rest, u16::from_le_bytes as fn([u8; 2]) -> u16)),
            [0xFE, 0xFF, rest @ ..] => Some((rest, u16::from_be_bytes as fn([u8; 2]) -> u16)),
            _ => None,
        };
        if let Some((rest, unit)) = utf16 {
            if rest.len() % 2 != 0 {
                bail!("the file starts with a UTF-16 byte-order mark but has an odd number of bytes");
            }
            let units: Vec<u16> = rest.chunks_exact(2).map(|pair| unit([pair[0], pair[1]])).collect();
            let text = String::from_utf16(&units)
                .context("the file starts with a UTF-16 byte-order mark but is not UTF-16")?;
            return Ok(IniText { text, lossy: false });
        }
        Ok(match std::str::from_utf8(bytes) {
            Ok(text) => IniText {
                text: text.to_string(),
                lossy: false,
            },
            Err(_) => IniText {
                text: String::from_utf8_lossy(bytes).into_owned(),
                lossy: true,
            },
        })
    }

    /// The decoded text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value of `key` in `section`; `Ok(None)` when either is absent.
    pub fn get(&self, section: &str, key: &str) -> anyhow::Result<Option<String>> {
        let Some(value) = find(&self.text, section, key) else {
            return Ok(None);
        };
        if self.lossy && value.contains('\u{FFFD}') {
            bail!(
                "the value is neither UTF-8 nor UTF-16 (a legacy code page?): save the file as UTF-8 or read this field \
                 from elsewhere"
            );
        }
        Ok(Some(value))
    }
}

fn find(text: &str, section: &str, key: &str) -> Option<String> {
    let section = section.trim().to_lowercase();
    let key = key.trim().to_lowercase();
    let mut in_section = false;
    let mut seen_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            if in_section {
                // Only the first section of that name counts.
                return None;
            }
            let name = header.split_once(']').map_or(header, |(name, _)| name);
            in_section = !seen_section && name.trim().to_lowercase() == section;
            seen_section |= in_section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((name, value)) = line.split_once('=')
            && name.trim().to_lowercase() == key
        {
            return Some(unquote(value.trim()).to_string());
        }
    }
    None
}

/// Removes one pair of matching enclosing quotes.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2
            && let Some(inner) = value.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFCSCAN: &str = "; written by the agent\r\n[INI_CLIENT_SECTION]\r\nLocal_Path = C:\\Program Files (x86)\\Trend Micro\\Security Agent\\ \r\n\r\n[INI_SERVER_SECTION]\r\nMaster_DomainName=apex.example\r\nMaster_DomainPort=\"8080\"\r\nEmpty=\r\nWith=equals=inside\r\n[ini_server_section]\r\nLater=ignored\r\n";

    fn get(text: &IniText, section: &str, key: &str) -> Option<String> {
        text.get(section, key).expect("lookup")
    }

    #[test]
    fn lookups_follow_get_private_profile_string() {
        let text = IniText::decode(OFCSCAN.as_bytes()).expect("decode");
        assert_eq!(
            get(&text, "ini_server_section", "MASTER_DOMAINNAME").as_deref(),
            Some("apex.example")
        );
        assert_eq!(
            get(&text, "INI_SERVER_SECTION", "Master_DomainPort").as_deref(),
            Some("8080")
        );
        assert_eq!(get(&text, "INI_SERVER_SECTION", "Empty").as_deref(), Some(""));
        assert_eq!(
            get(&text, "INI_SERVER_SECTION", "With").as_deref(),
            Some("equals=inside")
        );
        assert_eq!(
            get(&text, "INI_CLIENT_SECTION", "Local_Path").as_deref(),
            Some("C:\\Program Files (x86)\\Trend Micro\\Security Agent\\")
        );
        assert_eq!(
            get(&text, "INI_SERVER_SECTION", "Later"),
            None,
            "only the first section counts"
        );
        assert_eq!(get(&text, "INI_CLIENT_SECTION", "Master_DomainName"), None);
        assert_eq!(get(&text, "NO_SECTION", "Master_DomainName"), None);
    }

    #[test]
    fn byte_order_marks_pick_the_encoding() {
        let mut utf8 = vec![0xEF, 0xBB, 0xBF];
        utf8.extend_from_slice(OFCSCAN.as_bytes());
        let mut utf16le = vec![0xFF, 0xFE];
        let mut utf16be = vec![0xFE, 0xFF];
        for unit in OFCSCAN.encode_utf16() {
            utf16le.extend_from_slice(&unit.to_le_bytes());
            utf16be.extend_from_slice(&unit.to_be_bytes());
        }
        for bytes in [utf8, utf16le, utf16be] {
            let text = IniText::decode(&bytes).expect("decode");
            assert_eq!(
                get(&text, "INI_SERVER_SECTION", "Master_DomainName").as_deref(),
                Some("apex.example")
            );
        }
        assert!(IniText::decode(&[0xFF, 0xFE, 0x41]).is_err(), "odd UTF-16");
        assert!(IniText::decode(&[0xFF, 0xFE, 0x00, 0xD8]).is_err(), "lone surrogate");
    }

    #[test]
    fn legacy_code_page_bytes_are_refused_only_where_they_matter() {
        // Shift-JIS bytes in one value; the ASCII ones still read.
        let bytes = b"[S]\r\nName=\x93\xfa\x96\x7b\r\nServer=apex.example\r\n";
        let text = IniText::decode(bytes).expect("decode");
        assert_eq!(get(&text, "S", "Server").as_deref(), Some("apex.example"));
        let error = text.get("S", "Name").expect_err("garbled");
        assert!(error.to_string().contains("legacy code page"), "{error}");
    }

    #[test]
    fn files_are_read_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.ini");
        std::fs::write(&path, vec![b';'; MAX_INI_BYTES as usize + 1]).expect("write");
        let error = IniText::read(&path).expect_err("too big");
        assert!(format!("{error:#}").contains("larger than"), "{error:#}");
    }
}
