//! Building a bundle: the files `[collect] paths` names, newest first by
//! modification time, whole files only, until `max_bundle_bytes`; a file
//! that would pass the cap is left out (an older, smaller one may still
//! fit) and the manifest says which and why. Files are read with the
//! bounded reader, so a file growing while it is read cannot pass the cap.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::config::{CollectConfig, expand};
use super::tar::TarWriter;

/// A finished bundle.
#[derive(Debug)]
pub struct Bundle {
    /// A ustar archive: `MANIFEST.txt`, then `NN-name` per file, newest first.
    pub tar: Vec<u8>,
    pub files: u32,
    pub skipped: u32,
}

struct Candidate {
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

struct Included {
    entry: String,
    path: PathBuf,
    modified_unix: u64,
    contents: Vec<u8>,
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|age| age.as_secs()).unwrap_or(0)
}

/// The entry name of the `position`-th file (1-based): its order and its
/// own name, so two `update.log` from different folders stay apart.
fn entry_name(position: usize, path: &std::path::Path) -> String {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".to_string());
    format!("{position:02}-{name}")
}

/// Gathers the bundle; never fails: what cannot be read is left out and named.
pub fn gather(config: &CollectConfig, command_id: &str, hostname: &str) -> Bundle {
    let mut left_out: Vec<(PathBuf, String)> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for configured in &config.paths {
        let found = expand(configured);
        if found.is_empty() {
            left_out.push((configured.clone(), "no file matches".into()));
        }
        for path in found {
            if !seen.insert(path.clone()) {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => candidates.push(Candidate {
                    size: meta.len(),
                    modified: meta.modified().unwrap_or(UNIX_EPOCH),
                    path,
                }),
                Ok(_) => left_out.push((path, "not a regular file".into())),
                Err(error) => left_out.push((path, error.to_string())),
            }
        }
    }
    candidates.sort_by(|left, right| right.modified.cmp(&left.modified).then(left.path.cmp(&right.path)));

    let mut budget = config.max_bundle_bytes;
    let mut included: Vec<Included> = Vec::new();
    for candidate in candidates {
        if candidate.size > budget {
            left_out.push((
                candidate.path,
                format!(
                    "{} bytes, more than the {budget} bytes left of max_bundle_bytes",
                    candidate.size
                ),
            ));
            continue;
        }
        match rollcall_common::files::read_bounded(&candidate.path, budget) {
            Ok(contents) => {
                budget -= contents.len() as u64;
                included.push(Included {
                    entry: entry_name(included.len() + 1, &candidate.path),
                    path: candidate.path,
                    modified_unix: unix_seconds(candidate.modified),
                    contents,
                });
            }
            Err(error) => left_out.push((candidate.path, format!("{error:#}"))),
        }
    }

    let now = unix_seconds(SystemTime::now());
    let mut manifest = String::new();
    let _ = writeln!(manifest, "rollcall log bundle (runbook step 8)");
    let _ = writeln!(manifest, "host: {hostname}");
    let _ = writeln!(manifest, "command: {command_id}");
    let _ = writeln!(
        manifest,
        "collected_at: {}",
        rollcall_common::timefmt::rfc3339(i64::try_from(now).unwrap_or(0).saturating_mul(1000))
    );
    let _ = writeln!(manifest, "max_bundle_bytes: {}", config.max_bundle_bytes);
    let _ = writeln!(manifest, "\nincluded (newest first):");
    for file in &included {
        let _ = writeln!(
            manifest,
            "  {}\t{}\t{} bytes\tmodified {}",
            file.entry,
            file.path.display(),
            file.contents.len(),
            rollcall_common::timefmt::rfc3339(i64::try_from(file.modified_unix).unwrap_or(0).saturating_mul(1000))
        );
    }
    let _ = writeln!(manifest, "\nleft out:");
    for (path, reason) in &left_out {
        let _ = writeln!(manifest, "  {}\t{reason}", path.display());
    }

    let mut tar = TarWriter::new();
    tar.append("MANIFEST.txt", now, manifest.as_bytes());
    for file in &included {
        tar.append(&file.entry, file.modified_unix, &file.contents);
    }
    Bundle {
        tar: tar.finish(),
        files: u32::try_from(included.len()).unwrap_or(u32::MAX),
        skipped: u32::try_from(left_out.len()).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn touch(path: &std::path::Path, bytes: usize, age: Duration) {
        std::fs::write(path, vec![b'x'; bytes]).expect("write");
        let file = std::fs::File::options().write(true).open(path).expect("open");
        file.set_modified(SystemTime::now() - age).expect("mtime");
    }

    #[test]
    fn newest_first_whole_files_within_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        touch(&dir.path().join("old.log"), 300, Duration::from_secs(3000));
        touch(&dir.path().join("big.log"), 5000, Duration::from_secs(2000));
        touch(&dir.path().join("new.log"), 400, Duration::from_secs(1000));
        let config = CollectConfig {
            paths: vec![dir.path().join("*.log"), dir.path().join("absent.log")],
            max_bundle_bytes: 1000,
        };
        let bundle = gather(&config, "c-1", "host-a");
        assert_eq!((bundle.files, bundle.skipped), (2, 2));
        let text = String::from_utf8_lossy(&bundle.tar);
        let new_at = text.find("01-new.log").expect("newest first");
        let old_at = text.find("02-old.log").expect("older one still fits");
        assert!(new_at < old_at);
        assert!(
            text.contains("big.log\t5000 bytes, more than the 600 bytes left"),
            "{text}"
        );
        assert!(text.contains("absent.log\t"), "a missing file is named: {text}");
    }
}
