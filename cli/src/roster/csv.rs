//! A console export of the roster (docs/ROSTER.md, "Importing a console
//! export"): Apex Central's "Pattern/Rule Status" query saved as CSV.
//!
//! - Decoding: a UTF-8 BOM, a UTF-16 BOM (LE or BE) decide; without one the
//!   bytes are UTF-8 when they are valid UTF-8, else Shift_JIS/CP932 (what
//!   Excel on Japanese Windows saves), else the file is refused.
//! - The delimiter is the header's: a tab (Excel's "Unicode text") or a comma.
//! - The header row is found by name: the first row holding a host name
//!   column ([`Columns`]); rows above it (a title, the query) are skipped.
//! - A row that cannot be read (no host name, a version that is not a
//!   dotted number) is reported with its line number and skipped.

use std::collections::BTreeMap;

use rollcall_common::proto;
use serde::{Deserialize, Serialize};

/// The fields an entry has, as a mapping file names them.
const FIELDS: &[&str] = &[
    "host_name",
    "entity_id",
    "ip_addresses",
    "mac_addresses",
    "version",
    "connection_status",
    "managing_server",
    "domain",
    "folder_path",
    "os",
    "product",
];

/// Which column names each field, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns(BTreeMap<String, Vec<String>>);

/// `--columns MAP.toml`: `[columns]` with a field = a column name or a list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    columns: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for Columns {
    /// The English names Apex Central documents for the "Pattern/Rule
    /// Status" data view, then the Japanese ones Control Manager 6.0's
    /// Japanese help gives for the same data (docs/ROSTER.md cites both).
    fn default() -> Self {
        let pairs: &[(&str, &[&str])] = &[
            (
                "host_name",
                &[
                    "Product Host/Endpoint",
                    "Product Entity/Endpoint",
                    "Endpoint",
                    "Host Name",
                    "製品のホスト名",
                    "エンドポイント",
                ],
            ),
            (
                "entity_id",
                &["Product Entity/Endpoint", "Entity ID", "製品のエンティティ名"],
            ),
            (
                "ip_addresses",
                &["Product/Endpoint IP", "IP Address", "IP", "製品のIPアドレス"],
            ),
            ("mac_addresses", &["MAC Address", "MAC", "製品のMACアドレス"]),
            ("version", &["Product Version", "製品バージョン"]),
            ("connection_status", &["Connection Status"]),
            ("managing_server", &["Managing Server Entity Display Name"]),
            ("domain", &["Domain"]),
            ("folder_path", &["Folder", "Folder Path"]),
            ("os", &["Operating System"]),
            ("product", &["Product", "製品"]),
        ];
        Columns(
            pairs
                .iter()
                .map(|(field, names)| (field.to_string(), names.iter().map(|n| n.to_string()).collect()))
                .collect(),
        )
    }
}

impl Columns {
    /// The defaults with the mapping file's fields replacing theirs.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let file: MappingFile =
            toml::from_str(text).map_err(|error| anyhow::anyhow!("read the column map: {error}"))?;
        let mut columns = Columns::default();
        for (field, names) in file.columns {
            if !FIELDS.contains(&field.as_str()) {
                anyhow::bail!(
                    "the column map names no field {field:?} (fields: {})",
                    FIELDS.join(", ")
                );
            }
            let names = match names {
                OneOrMany::One(name) => vec![name],
                OneOrMany::Many(names) => names,
            };
            if names.iter().any(|name| name.trim().is_empty()) || names.is_empty() {
                anyhow::bail!("the column map gives {field} an empty column name");
            }
            columns.0.insert(field, names);
        }
        Ok(columns)
    }

    fn names(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or_default()
    }
}

/// A row set aside, by its line in the file (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub line: u64,
    pub reason: String,
}

/// What a file gave.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub entries: Vec<proto::RosterEntry>,
    pub skipped: Vec<Skipped>,
    /// How the bytes were read (utf-8, utf-8 (BOM), utf-16le, shift_jis).
    pub encoding: &'static str,
}

/// The file's text, decoded as the module doc says.
pub fn decode(bytes: &[u8]) -> anyhow::Result<(String, &'static str)> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        let text = std::str::from_utf8(rest)
            .map_err(|error| anyhow::anyhow!("the file has a UTF-8 BOM but is not UTF-8: {error}"))?;
        return Ok((text.to_string(), "utf-8 (BOM)"));
    }
    for (bom, encoding, name) in [
        (&b"\xFF\xFE"[..], encoding_rs::UTF_16LE, "utf-16le"),
        (&b"\xFE\xFF"[..], encoding_rs::UTF_16BE, "utf-16be"),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            let (text, had_errors) = encoding.decode_without_bom_handling(rest);
            if had_errors {
                anyhow::bail!("the file has a {name} BOM but is not valid {name}");
            }
            return Ok((text.into_owned(), name));
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_string(), "utf-8"));
    }
    match encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok((text.into_owned(), "shift_jis")),
        None => anyhow::bail!("the file is neither UTF-8, UTF-16 with a BOM, nor Shift_JIS (CP932)"),
    }
}

fn delimiter(text: &str) -> u8 {
    // The first line with a tab or a comma decides (a title line may have neither).
    for line in text.lines() {
        let (tabs, commas) = (line.matches('\t').count(), line.matches(',').count());
        if tabs > 0 || commas > 0 {
            return if tabs > commas { b'\t' } else { b',' };
        }
    }
    b','
}

fn clean(cell: &str) -> String {
    cell.trim().trim_matches('\u{feff}').trim().to_string()
}

/// A cell that says "nothing here".
fn blank(cell: &str) -> bool {
    matches!(cell, "" | "-" | "--" | "N/A" | "n/a" | "NA")
}

fn list(cell: &str) -> Vec<String> {
    cell.split([',', ';', ' ', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

/// The 1-based line at a byte offset of the text (what an editor shows).
fn line_of(text: &str, byte: u64) -> u64 {
    let mut end = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
    // A record's position may be the line end before it (`\r\n`).
    while matches!(text.as_bytes().get(end), Some(b'\r' | b'\n')) {
        end += 1;
    }
    let newlines = text
        .as_bytes()
        .get(..end)
        .unwrap_or_default()
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    u64::try_from(newlines).unwrap_or(u64::MAX) + 1
}

/// Parses a decoded export.
pub fn parse_text(text: &str, columns: &Columns) -> anyhow::Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(text))
        .from_reader(text.as_bytes());
    let host_names: Vec<String> = columns.names("host_name").iter().map(|n| n.to_lowercase()).collect();
    let mut header: Option<BTreeMap<&'static str, usize>> = None;
    let mut parsed = Parsed::default();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map(|p| line_of(text, p.byte())).unwrap_or(0);
                parsed.skipped.push(Skipped {
                    line,
                    reason: format!("unreadable row: {error}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| line_of(text, p.byte())).unwrap_or(0);
        let cells: Vec<String> = record.iter().map(clean).collect();
        let Some(positions) = &header else {
            // Still looking for the header: the first row naming a host column.
            let lowered: Vec<String> = cells.iter().map(|c| c.to_lowercase()).collect();
            if lowered.iter().any(|cell| host_names.contains(cell)) {
                let mut positions = BTreeMap::new();
                for field in FIELDS {
                    // The first of the field's names the header has.
                    let at = columns
                        .names(field)
                        .iter()
                        .find_map(|name| lowered.iter().position(|cell| *cell == name.to_lowercase()));
                    if let Some(at) = at {
                        positions.insert(*field, at);
                    }
                }
                header = Some(positions);
            }
            continue;
        };
        if cells.iter().all(|cell| cell.is_empty()) {
            continue;
        }
        let cell = |field: &str| -> Option<String> {
            positions
                .get(field)
                .and_then(|at| cells.get(*at))
                .filter(|cell| !blank(cell))
                .cloned()
        };
        let Some(host_name) = cell("host_name") else {
            parsed.skipped.push(Skipped {
                line,
                reason: format!(
                    "no host name (column {:?})",
                    columns.names("host_name").first().map(String::as_str).unwrap_or("")
                ),
            });
            continue;
        };
        let version = cell("version");
        if let Some(version) = &version
            && let Err(error) = rollcall_common::version::validate(version)
        {
            parsed.skipped.push(Skipped {
                line,
                reason: format!("{host_name}: product version {version:?} is not a version: {error}"),
            });
            continue;
        }
        parsed.entries.push(proto::RosterEntry {
            entity_id: cell("entity_id").unwrap_or_default(),
            ip_addresses: cell("ip_addresses").map(|c| list(&c)).unwrap_or_default(),
            mac_addresses: cell("mac_addresses").map(|c| list(&c)).unwrap_or_default(),
            version: version.unwrap_or_default(),
            connection_status: cell("connection_status").unwrap_or_default(),
            managing_server: cell("managing_server").unwrap_or_default(),
            domain: cell("domain").unwrap_or_default(),
            folder_path: cell("folder_path").unwrap_or_default(),
            os: cell("os").unwrap_or_default(),
            product: cell("product").unwrap_or_default(),
            host_name,
        });
    }
    if header.is_none() {
        anyhow::bail!(
            "no header row names a host name column ({}); map the file's columns with --columns",
            columns.names("host_name").join(", ")
        );
    }
    Ok(parsed)
}

/// Decodes and parses an export.
pub fn parse(bytes: &[u8], columns: &Columns) -> anyhow::Result<Parsed> {
    let (text, encoding) = decode(bytes)?;
    let mut parsed = parse_text(&text, columns)?;
    parsed.encoding = encoding;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = "Pattern/Rule Status\r\n\
        Product Entity/Endpoint,Operating System,Product Host/Endpoint,Product/Endpoint IP,Update Agent,Domain,Managing Server Entity Display Name,Connection Status,Product,Product Version,Product Role\r\n\
        PC01,Windows 10,PC01,10.0.0.1,No,CORP,ApexOne-1,Normal,Apex One,14.0.12345,Agent\r\n\
        ,Windows 10,,10.0.0.2,No,CORP,ApexOne-1,Normal,Apex One,14.0.1,Agent\r\n\
        PC03,Windows 11,PC03,\"10.0.0.3, 10.0.0.4\",No,CORP,ApexOne-1,Offline,Apex One,Apex One 2019,Agent\r\n\
        PC04,Windows 11,pc04.corp.example,10.0.0.5,Yes,CORP,ApexOne-1,Abnormal,Apex One,,Update Agent\r\n";

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut bytes = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        for unit in text.encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        bytes
    }

    fn check(bytes: &[u8], encoding: &str) {
        let parsed = parse(bytes, &Columns::default()).unwrap();
        assert_eq!(parsed.encoding, encoding);
        let hosts: Vec<&str> = parsed.entries.iter().map(|e| e.host_name.as_str()).collect();
        assert_eq!(hosts, vec!["PC01", "pc04.corp.example"]);
        assert_eq!(parsed.entries[0].version, "14.0.12345");
        assert_eq!(parsed.entries[0].connection_status, "Normal");
        assert_eq!(parsed.entries[0].managing_server, "ApexOne-1");
        assert_eq!(parsed.entries[1].version, "");
        let lines: Vec<u64> = parsed.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![4, 5], "{:?}", parsed.skipped);
        assert!(
            parsed.skipped[0].reason.contains("no host name"),
            "{:?}",
            parsed.skipped
        );
        assert!(
            parsed.skipped[1].reason.contains("Apex One 2019"),
            "{:?}",
            parsed.skipped
        );
    }

    #[test]
    fn utf8_with_and_without_bom_and_utf16le_read_alike() {
        check(EXPORT.as_bytes(), "utf-8");
        check(&[b"\xEF\xBB\xBF".as_slice(), EXPORT.as_bytes()].concat(), "utf-8 (BOM)");
        check(&utf16le(EXPORT, true), "utf-16le");
        // Excel's "Unicode text": UTF-16LE, tab-separated.
        check(
            &utf16le(
                &EXPORT.replace(',', "\t").replace("\"10.0.0.3\t 10.0.0.4\"", "10.0.0.3"),
                true,
            ),
            "utf-16le",
        );
    }

    #[test]
    fn shift_jis_with_a_japanese_host_name_and_japanese_columns() {
        let text = "製品のホスト名,製品のIPアドレス,製品バージョン\r\n営業部-PC01,10.0.0.1,14.0.9000\r\n";
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err(), "the test must not be UTF-8");
        let parsed = parse(&bytes, &Columns::default()).unwrap();
        assert_eq!(parsed.encoding, "shift_jis");
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].host_name, "営業部-PC01");
        assert_eq!(parsed.entries[0].ip_addresses, vec!["10.0.0.1"]);
        assert_eq!(parsed.entries[0].version, "14.0.9000");
    }

    #[test]
    fn a_column_map_renames_columns_and_rejects_unknown_fields() {
        let columns = Columns::from_toml("[columns]\nhost_name = \"Rechner\"\nversion = [\"Version\"]\n").unwrap();
        let parsed = parse(b"Rechner,Version\nPC9;x,1.2.3\n", &columns).unwrap();
        assert_eq!(parsed.entries[0].host_name, "PC9;x");
        assert_eq!(parsed.entries[0].version, "1.2.3");
        let error = Columns::from_toml("[columns]\nhostname = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("hostname"), "{error}");
        let error = parse(b"a,b\n1,2\n", &Columns::default()).unwrap_err().to_string();
        assert!(error.contains("--columns"), "{error}");
    }
}
