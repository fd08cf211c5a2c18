//! English and Japanese messages through Fluent (`fluent-bundle`), from
//! `common/locales/{en,ja}.ftl`, compiled into the binary. The Japanese
//! file uses the product's own Japanese names for its settings
//! (「アップデート設定権限」, 「すべてのコンポーネント」, …).

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

use std::sync::LazyLock;

pub const EN_FTL: &str = include_str!("../locales/en.ftl");
pub const JA_FTL: &str = include_str!("../locales/ja.ftl");

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ja];

    /// The language's tag (`en`, `ja`): the dashboard's `lang` parameter
    /// and cookie, and the HTML `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code() == code)
    }

    /// The best of an `Accept-Language` header (`ja,en-US;q=0.8`): the
    /// first tag by quality that is Japanese or English; English when none is.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(u32, Lang)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|part| part.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            // Thousandths, so the order is total.
            let rank = (quality.clamp(0.0, 1.0) * 1000.0) as u32;
            let lang = match tag.split('-').next() {
                Some("ja") => Lang::Ja,
                Some("en") => Lang::En,
                _ => continue,
            };
            if rank > 0 && best.is_none_or(|(seen, _)| rank > seen) {
                best = Some((rank, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    /// From `LC_ALL`, `LC_MESSAGES` or `LANG` (in that order): `ja*` → Japanese.
    pub fn from_env(vars: impl Fn(&str) -> Option<String>) -> Lang {
        for name in ["LC_ALL", "LC_MESSAGES", "LANG"] {
            if let Some(value) = vars(name).filter(|value| !value.is_empty()) {
                return if value.starts_with("ja") { Lang::Ja } else { Lang::En };
            }
        }
        Lang::En
    }
}

pub struct Catalog {
    bundle: FluentBundle<FluentResource>,
    lang: Lang,
}

static EN: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(Lang::En));
static JA: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(Lang::Ja));

/// The catalogue of `lang`, parsed once per process (the dashboard answers
/// many requests; each `Catalog::new` parses the whole file).
pub fn catalog(lang: Lang) -> &'static Catalog {
    match lang {
        Lang::En => &EN,
        Lang::Ja => &JA,
    }
}

impl Catalog {
    pub fn lang(&self) -> Lang {
        self.lang
    }

    pub fn new(lang: Lang) -> Self {
        let (tag, source) = match lang {
            Lang::En => ("en", EN_FTL),
            Lang::Ja => ("ja", JA_FTL),
        };
        let langid = tag.parse().unwrap_or_default();
        let mut bundle = FluentBundle::new_concurrent(vec![langid]);
        // Terminals and Markdown do not want Unicode isolation marks.
        bundle.set_use_isolating(false);
        // The files are compiled in and checked by tests; a syntax error
        // leaves the broken messages out (shown as their keys), never a panic.
        let resource = FluentResource::try_new(source.to_string()).unwrap_or_else(|(partial, _)| partial);
        let _ = bundle.add_resource(resource);
        // The Apex One console paths, one table for every text that names one
        // (`{ -console-ID }` in the catalogues; console_path.rs).
        let terms =
            FluentResource::try_new(crate::console_path::fluent_terms(lang)).unwrap_or_else(|(partial, _)| partial);
        let _ = bundle.add_resource(terms);
        Catalog { bundle, lang }
    }

    /// Whether the catalogue defines `key`.
    pub fn has(&self, key: &str) -> bool {
        self.bundle.has_message(key)
    }

    /// The message for `key`, or the key itself when it is missing.
    pub fn tr(&self, key: &str) -> String {
        self.tr_args(key, &[])
    }

    pub fn tr_args(&self, key: &str, args: &[(&str, String)]) -> String {
        let Some(pattern) = self.bundle.get_message(key).and_then(|message| message.value()) else {
            return key.to_string();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, value.clone());
        }
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors)
            .into_owned()
    }
}

/// The message keys a Fluent source defines.
pub fn keys(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with(' '))
        .filter_map(|line| line.split_once(" = ").map(|(key, _)| key.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn both_languages_define_the_same_keys() {
        let en: BTreeSet<String> = keys(EN_FTL).into_iter().collect();
        let ja: BTreeSet<String> = keys(JA_FTL).into_iter().collect();
        assert!(en.len() > 40);
        assert_eq!(
            en.difference(&ja).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "missing in ja.ftl"
        );
        assert_eq!(
            ja.difference(&en).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "missing in en.ftl"
        );
        for source in [EN_FTL, JA_FTL] {
            FluentResource::try_new(source.to_string()).expect("valid Fluent");
        }
    }

    #[test]
    fn every_key_the_code_uses_exists() {
        let en: BTreeSet<String> = keys(EN_FTL).into_iter().collect();
        let mut used = BTreeSet::new();
        for cause in crate::cause::Cause::ALL {
            used.insert(format!("cause-{}", cause.code()));
            used.insert(format!("remediation-{}", cause.code()));
        }
        for step in 1..=8 {
            used.insert(format!("step-{step}"));
        }
        // Chosen at run time in report/markdown.rs.
        used.insert("report-straggler-line".into());
        used.insert("report-straggler-line-no-step".into());
        for check in crate::checks::ALL {
            used.insert(format!("check-{check}"));
        }
        for status in ["pass", "warn", "fail", "error", "unspecified"] {
            used.insert(format!("status-{status}"));
        }
        // Literal keys in the sources that render text (the admin CLI checks
        // its own: cli/src/lib.rs, `every_catalogue_key_the_cli_uses_exists`).
        let sources = [include_str!("report/markdown.rs")];
        for source in sources {
            for piece in source.split("tr(\"").skip(1).chain(source.split("tr_args(\"").skip(1)) {
                if let Some(key) = piece.split('"').next() {
                    used.insert(key.to_string());
                }
            }
        }
        let missing: Vec<_> = used.difference(&en).collect();
        assert!(missing.is_empty(), "keys used but not defined: {missing:?}");
    }

    /// Every message code a probe sends (`.code("…")` in the checks,
    /// `ProductError::code`) has a message in both catalogues.
    #[test]
    fn every_message_code_the_probe_sends_is_in_the_catalogue() {
        let sources = [
            include_str!("../../agent/src/checks/license.rs"),
            include_str!("../../agent/src/checks/update_permission.rs"),
            include_str!("../../agent/src/checks/version.rs"),
            include_str!("../../agent/src/checks/update_source.rs"),
            include_str!("../../agent/src/checks/certificates.rs"),
            include_str!("../../agent/src/checks/connectivity.rs"),
            include_str!("../../agent/src/checks/system_requirements.rs"),
            include_str!("../../agent/src/checks/runner.rs"),
            include_str!("../../common/src/product.rs"),
        ];
        let mut codes = BTreeSet::new();
        for source in sources {
            for piece in source.split(".code(\"").skip(1) {
                codes.extend(piece.split('"').next().map(str::to_string));
            }
            for piece in source.split("=> \"product-").skip(1) {
                codes.extend(piece.split('"').next().map(|rest| format!("product-{rest}")));
            }
        }
        assert!(codes.len() > 40, "{codes:?}");
        for lang in [Lang::En, Lang::Ja] {
            let catalog = Catalog::new(lang);
            let missing: Vec<&String> = codes
                .iter()
                .filter(|code| !catalog.has(&format!("msg-{code}")))
                .collect();
            assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
        }
    }

    #[test]
    fn japanese_uses_the_products_own_names() {
        let ja = Catalog::new(Lang::Ja);
        assert!(
            ja.tr("remediation-update_permission")
                .contains("すべてのコンポーネント")
        );
        assert!(ja.tr("step-2").contains("アップデート設定権限"));
        let text = ja.tr_args("report-affected", &[("count", "3".into()), ("total", "10".into())]);
        assert!(text.contains("10 台中 3 台"), "{text}");
        assert_eq!(
            Lang::from_env(|name| (name == "LANG").then(|| "ja_JP.UTF-8".to_string())),
            Lang::Ja
        );
        assert_eq!(Lang::from_env(|_| None), Lang::En);
    }
}
