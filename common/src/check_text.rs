//! What a check said, in the admin's language: agents send a message code
//! and parameters with every result (`CheckResult.code`, `.params`), and
//! the coordinator's tools render `msg-CODE` from the Fluent catalogue
//! (`locales/{en,ja}.ftl`). A code the catalogue does not know, or a result
//! from a probe older than the codes, falls back to the agent's English
//! `message`, so nothing is lost, only untranslated.
//!
//! A check made of several parts sends their codes joined by "," with each
//! part's parameters prefixed by its index ("0.field", "1.field").
//!
//! Parameters named in [`RAW_PARAMS`] hold text rollcall cannot translate
//! (a parser's or the OS's own words, e.g. "Connection refused"); the
//! catalogue quotes them as code, and they are made safe for that here.

use std::collections::BTreeMap;

use crate::i18n::Catalog;

/// Parameters quoted verbatim (inside backticks) by the catalogue.
pub const RAW_PARAMS: [&str; 2] = ["detail", "error"];

/// Parameters holding check names ("license, certificates"), said by
/// their catalogue names.
const CHECK_LIST_PARAMS: [&str; 1] = ["checks"];

/// Parameters holding a product value code, said by the catalogue's
/// `value-KIND-CODE` (the console's own words, e.g. 「パターンファイル」).
const VALUE_PARAMS: [(&str, &str); 5] = [
    ("permission", "permission"),
    ("required", "permission"),
    ("source", "source"),
    ("expected_source", "source"),
    ("service", "service"),
];

/// Text for inside a Markdown code span: one line, no backtick.
pub fn code_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '`' => '\'',
            '\n' | '\r' | '\t' => ' ',
            other => other,
        })
        .collect()
}

pub fn param_value(catalog: &Catalog, name: &str, value: &str, escape: &dyn Fn(&str) -> String) -> String {
    if RAW_PARAMS.contains(&name) {
        return code_safe(value);
    }
    if let Some((_, kind)) = VALUE_PARAMS.iter().find(|(param, _)| *param == name) {
        let key = format!("value-{kind}-{value}");
        if catalog.has(&key) {
            return catalog.tr(&key);
        }
    }
    if CHECK_LIST_PARAMS.contains(&name) {
        let names: Vec<String> = value
            .split(", ")
            .filter(|name| !name.is_empty())
            .map(|check| catalog.tr(&format!("check-{check}")))
            .collect();
        return escape(&names.join(&catalog.tr("list-separator")));
    }
    escape(value)
}

/// Renders a coded message; `None` when there is no code or the catalogue
/// lacks one of its parts (the caller then shows the English fallback).
/// `escape` makes parameter values safe for the output (Markdown, HTML, or
/// nothing for a terminal).
pub fn render(
    catalog: &Catalog,
    code: &str,
    params: &BTreeMap<String, String>,
    escape: &dyn Fn(&str) -> String,
) -> Option<String> {
    if code.is_empty() {
        return None;
    }
    let codes: Vec<&str> = code.split(',').collect();
    let mut parts = Vec::with_capacity(codes.len());
    for (index, part_code) in codes.iter().enumerate() {
        let key = format!("msg-{part_code}");
        if !catalog.has(&key) {
            return None;
        }
        let prefix = format!("{index}.");
        let args: Vec<(&str, String)> = params
            .iter()
            .filter_map(|(name, value)| {
                let name = if codes.len() == 1 {
                    name.as_str()
                } else {
                    name.strip_prefix(&prefix)?
                };
                Some((name, param_value(catalog, name, value, escape)))
            })
            .collect();
        parts.push(catalog.tr_args(&key, &args));
    }
    Some(parts.join(&catalog.tr("msg-separator")))
}

/// A check's message: rendered from its code, else its English message
/// (escaped).
pub fn message(
    catalog: &Catalog,
    code: &str,
    params: &BTreeMap<String, String>,
    english: &str,
    escape: &dyn Fn(&str) -> String,
) -> String {
    render(catalog, code, params, escape).unwrap_or_else(|| escape(english))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_update_permission_speaks_the_runbooks_japanese() {
        let ja = Catalog::new(Lang::Ja);
        let plain = |text: &str| text.to_string();
        for (value, label) in [
            ("pattern_files", "「パターンファイル」"),
            ("pattern_engine_driver", "「パターンファイル、エンジン、ドライバ」"),
        ] {
            let text = render(
                &ja,
                "update-permission-wrong",
                &params(&[("permission", value), ("required", "all_components")]),
                &plain,
            )
            .expect("rendered");
            assert!(text.contains(label), "{text}");
            assert!(text.contains("「すべてのコンポーネント」"), "{text}");
        }
    }

    #[test]
    fn several_parts_render_each_with_their_own_parameters() {
        let en = Catalog::new(Lang::En);
        let plain = |text: &str| text.to_string();
        let text = render(
            &en,
            "disk-low,memory-low",
            &params(&[
                ("0.free", "10"),
                ("0.path", "/opt"),
                ("0.minimum", "500"),
                ("1.total", "256"),
                ("1.minimum", "1024"),
            ]),
            &plain,
        )
        .expect("rendered");
        assert!(text.contains("10 MiB free at /opt"), "{text}");
        assert!(text.contains("256 MiB of memory"), "{text}");
    }

    #[test]
    fn unknown_codes_fall_back_to_the_agents_english() {
        let ja = Catalog::new(Lang::Ja);
        let plain = |text: &str| text.to_string();
        assert_eq!(
            message(&ja, "no-such-code", &BTreeMap::new(), "as sent", &plain),
            "as sent"
        );
        assert_eq!(message(&ja, "", &BTreeMap::new(), "as sent", &plain), "as sent");
    }

    #[test]
    fn raw_text_stays_inside_its_code_span() {
        let ja = Catalog::new(Lang::Ja);
        let escape = |text: &str| format!("<{text}>");
        let text = render(
            &ja,
            "connectivity-unreachable",
            &params(&[("service", "server"), ("address", "a:1"), ("error", "bad `x`\nthing")]),
            &escape,
        )
        .expect("rendered");
        assert!(text.contains("`bad 'x' thing`"), "{text}");
        assert!(text.contains("<a:1>"), "{text}");
    }
}
