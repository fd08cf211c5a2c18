//! One vocabulary (issue 27, point 2): every code that travels on the wire
//! — cause, runbook step, member state, role, check and check outcome — has
//! its words in both catalogues, every catalogue key the sources name
//! exists in both, and the English words of those codes are spelt nowhere
//! in the sources but the catalogue.
//!
//! The sources are read from disk at test time (not `include_str!`), so
//! the scan follows files as they move between folders.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cause::Cause;
use crate::i18n::{EN_FTL, JA_FTL, Lang, catalog, keys};
use crate::member_state::MemberState;

/// Every key the wire's codes need.
fn keys_of_codes() -> Vec<String> {
    let mut needed = Vec::new();
    for cause in Cause::ALL {
        needed.push(format!("cause-{}", cause.code()));
        needed.push(format!("remediation-{}", cause.code()));
    }
    for step in 1..=8 {
        needed.push(format!("step-{step}"));
    }
    needed.push("step-none".into());
    for state in MemberState::ALL {
        needed.push(format!("state-{}", state.word()));
        needed.push(format!("state-{}", state.storage()));
        if let Some(severity) = state.severity() {
            needed.push(format!("severity-{severity}"));
        }
    }
    for role in 0..=2 {
        needed.push(format!("role-{}", crate::proto::role_name(role)));
    }
    for status in 0..=4 {
        match crate::proto::status_word(status) {
            "unknown" => needed.push("status-unspecified".into()),
            word => needed.push(format!("status-{word}")),
        }
    }
    for check in crate::checks::ALL {
        needed.push(format!("check-{check}"));
    }
    for presence in ["online", "offline", "disconnected", "revoked"] {
        needed.push(format!("presence-{presence}"));
    }
    needed
}

#[test]
fn every_cause_step_state_role_check_and_outcome_has_english_and_japanese() {
    let en = catalog(Lang::En);
    let ja = catalog(Lang::Ja);
    let mut missing = Vec::new();
    let mut untranslated = Vec::new();
    for key in keys_of_codes() {
        for (lang, words) in [(Lang::En, en), (Lang::Ja, ja)] {
            if !words.has(&key) {
                missing.push(format!("{lang:?} {key}"));
            }
        }
        // A Japanese entry copied from the English one is no translation.
        if en.has(&key) && ja.has(&key) && en.tr(&key) == ja.tr(&key) {
            untranslated.push(key);
        }
    }
    assert!(missing.is_empty(), "no words for: {missing:?}");
    assert!(
        untranslated.is_empty(),
        "Japanese the same as English: {untranslated:?}"
    );
    // And the words module says each of them without falling back to a key.
    for lang in Lang::ALL {
        let words = catalog(lang);
        for state in MemberState::ALL {
            assert!(!crate::words::state(words, state).starts_with("state-"));
        }
        for role in 0..=2 {
            assert!(!crate::words::role(words, role).starts_with("role-"));
        }
        for status in 0..=4 {
            assert!(!crate::words::status(words, status).starts_with("status-"));
        }
        for cause in Cause::ALL {
            assert!(!crate::words::step(words, cause.runbook_step()).starts_with("step-"));
            assert!(!crate::words::remediation(words, cause.code()).is_empty());
        }
    }
}

// === the source scan ===

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The Rust files of the tools people read: the CLI, the coordinator
/// (dashboard, report), the probe's commands and common. The probe's
/// checks are left out: they still send an English `message` beside their
/// code for coordinators older than the codes (check_text.rs).
fn sources() -> Vec<(PathBuf, String)> {
    let root = workspace();
    let mut found = Vec::new();
    let mut pending: Vec<PathBuf> = ["cli/src", "server/src", "agent/src", "common/src"]
        .iter()
        .map(|dir| root.join(dir))
        .collect();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if relative.starts_with("agent/src/checks") || relative.starts_with("agent/src/sim") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if relative.ends_with(".rs")
                && !relative.ends_with("tests.rs")
                && !relative.contains("/tests/")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                // Unit tests may spell the English they check for.
                let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
                found.push((PathBuf::from(relative), code));
            }
        }
    }
    found.sort();
    found
}

/// The string literals of a Rust source (plain and raw), comments skipped.
fn literals(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let here = chars[index];
        let next = chars.get(index + 1).copied();
        if here == '/' && next == Some('/') {
            while index < chars.len() && chars[index] != '\n' {
                index += 1;
            }
        } else if here == '\'' && (chars.get(index + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal ('"', '\n'); lifetimes fall through.
            index += if next == Some('\\') { 4 } else { 3 };
            continue;
        } else if here == 'r' && (next == Some('#') || next == Some('"')) && !is_ident(chars.get(index.wrapping_sub(1)))
        {
            let hashes = chars[index + 1..].iter().take_while(|c| **c == '#').count();
            if chars.get(index + 1 + hashes) == Some(&'"') {
                let start = index + 2 + hashes;
                let mut end = start;
                while end < chars.len() {
                    if chars[end] == '"'
                        && chars[end + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes
                    {
                        break;
                    }
                    end += 1;
                }
                out.push(chars[start..end.min(chars.len())].iter().collect());
                index = end + 1 + hashes;
                continue;
            }
        } else if here == '"' {
            let mut text = String::new();
            index += 1;
            while index < chars.len() && chars[index] != '"' {
                if chars[index] == '\\' {
                    index += 1;
                    // A line continuation eats the newline and the indent.
                    if chars.get(index) == Some(&'\n') {
                        while chars.get(index + 1).is_some_and(|c| c.is_whitespace()) {
                            index += 1;
                        }
                    } else if let Some(escaped) = chars.get(index) {
                        text.push(*escaped);
                    }
                } else {
                    text.push(chars[index]);
                }
                index += 1;
            }
            out.push(text);
        }
        index += 1;
    }
    out
}

fn is_ident(character: Option<&char>) -> bool {
    character.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// Key prefixes of the catalogue.
const PREFIXES: [&str; 21] = [
    "agent",
    "attribute",
    "cause",
    "check",
    "cli",
    "dash",
    "detail",
    "evidence",
    "list",
    "msg",
    "presence",
    "report",
    "remediation",
    "role",
    "severity",
    "signal",
    "state",
    "status",
    "step",
    "value",
    "word",
];

/// Literals shaped like keys that are not: the dashboard's element ids.
const NOT_KEYS: [&str; 4] = ["agent-rollout", "agent-facts", "agent-checks", "cause-bars"];

#[test]
fn every_catalogue_key_the_sources_name_is_in_both_languages() {
    let en: BTreeSet<String> = keys(EN_FTL).into_iter().collect();
    let ja: BTreeSet<String> = keys(JA_FTL).into_iter().collect();
    let mut missing = Vec::new();
    let mut named = 0;
    for (path, source) in sources() {
        for literal in literals(&source) {
            let is_key = literal.split_once('-').is_some_and(|(prefix, rest)| {
                PREFIXES.contains(&prefix)
                    && !rest.is_empty()
                    && literal
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            });
            if !is_key || NOT_KEYS.contains(&literal.as_str()) {
                continue;
            }
            named += 1;
            if !en.contains(&literal) || !ja.contains(&literal) {
                missing.push(format!("{}: {literal}", path.display()));
            }
        }
    }
    assert!(named > 150, "only {named} keys found: is the scan reading the sources?");
    assert!(
        missing.is_empty(),
        "keys named but not in both catalogues:\n{}",
        missing.join("\n")
    );
}

/// English a tool once spelt itself instead of asking the catalogue (the
/// dashboard's own step titles, which disagreed with en.ftl).
const FORMER_ENGLISH: [&str; 4] = [
    "Code-signing certificates",
    "Facts for support",
    "Renew the license: while it is expired",
    "Point the agent at the update source",
];

#[test]
fn the_words_of_the_codes_are_spelt_only_in_the_catalogue() {
    let en = catalog(Lang::En);
    // The English of every multi-word entry for a code (one-word entries
    // such as "pass" are also the codes themselves).
    let mut phrases: Vec<String> = keys_of_codes()
        .iter()
        .map(|key| en.tr(key).to_lowercase())
        .filter(|text| text.split_whitespace().count() >= 2)
        .collect();
    phrases.extend(FORMER_ENGLISH.iter().map(|text| text.to_lowercase()));
    phrases.sort();
    phrases.dedup();
    assert!(phrases.len() > 30, "{phrases:?}");
    let mut spelt = Vec::new();
    let files = sources();
    assert!(
        files.iter().any(|(path, _)| path.ends_with("pages.rs")),
        "the dashboard was not scanned"
    );
    for (path, source) in &files {
        if path.ends_with("i18n.rs") {
            continue;
        }
        for literal in literals(source) {
            let lower = literal.to_lowercase();
            let bare = lower.trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace());
            for phrase in &phrases {
                // The word itself as a literal; a longer phrase anywhere in one
                // (two-word ones such as "update agent" also name things in
                // SQL and console paths).
                let long = phrase.split_whitespace().count() >= 3;
                if bare == phrase.as_str() || (long && lower.contains(phrase.as_str())) {
                    spelt.push(format!("{}: {phrase:?} in {literal:?}", path.display()));
                }
            }
        }
    }
    assert!(spelt.is_empty(), "spelt outside the catalogue:\n{}", spelt.join("\n"));
}

#[test]
fn the_literal_reader_reads_plain_raw_and_continued_strings() {
    let source = "let a = \"one\"; // \"not this\"\nlet b = r#\"two \"x\"\"#; let c = '\"'; let d = \"th\\\n    ree\";";
    assert_eq!(literals(source), vec!["one", "two \"x\"", "three"]);
}
