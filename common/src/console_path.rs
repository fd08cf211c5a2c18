//! Where a setting lives in the Apex One web console: the one table every
//! remediation (the catalogues `locales/*.ftl`, the probe's English
//! fallbacks in `agent/src/checks/`) and every mapping note
//! (`deploy/examples/apex-one.toml`) takes its console paths from, so no two
//! texts send an admin down different menus. A test below fails when one of
//! those files spells a console path that is not in this table.
//!
//! The catalogues reach the table as Fluent terms (`{ -console-ID }`), added
//! to every [`crate::i18n::Catalog`] from [`CONSOLE_PATHS`] in its language.
//!
//! Sources (public):
//! - Japanese: the vendor's own runbook for this case, step 3 (the article
//!   this project automates, `../shared/seed/runbook-ja.txt`): 「Web管理コンソール
//!   →「アップデート」→「エージェント」→「アップデート元」」 and 「→「エージェント」
//!   →「エージェント管理」→アップデートエージェントに指定しているエージェントの「設定」
//!   →「アップデートエージェント設定」」.
//! - English: the Trend Micro Apex One Server Online Help, whose menus are
//!   `Updates > Agents > …` ("Configuring Security Agent Automatic Updates":
//!   "Go to Updates > Agents > Automatic Update",
//!   <https://docs.trendmicro.com/en-us/enterprise/trend-micro-apex-one-2019-server-online-help/protecting-trend_cli/keeping-protection-u_001/trend_client_program_008/trend_client_program_011/trend_client_program_012/configuring-trend_cl.aspx>)
//!   and `Agents > Agent Management`, then `Settings > …` for the selected
//!   agents ("Security Agent Update Process": "Agents > Agent Management,
//!   click Settings > Privileges and Other Settings > …",
//!   <https://docs.trendmicro.com/en-us/enterprise/trend-micro-apex-one-2019-server-online-help/protecting-trend_cli/keeping-protection-u_001/trend_client_program_008/-trend_client_progra/osce-standard-update/trend_client_program_009.aspx>);
//!   the last items are the English names of the runbook's 「アップデート元」
//!   (Update Source) and 「アップデートエージェント設定」 (Update Agent Settings).
//!
//! Add a row here (with its source) before writing a new path anywhere.

/// One console path, in both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsolePath {
    /// The Fluent term is `-console-{id}`.
    pub id: &'static str,
    pub en: &'static str,
    pub ja: &'static str,
}

/// The agents' update source (runbook step 3).
pub const UPDATE_SOURCE: ConsolePath = ConsolePath {
    id: "update-source",
    en: "Updates > Agents > Update Source",
    ja: "Web管理コンソール→「アップデート」→「エージェント」→「アップデート元」",
};

/// An update agent's own settings, where "Security agent program and
/// HotFix" is enabled (runbook step 3).
pub const UPDATE_AGENT_SETTINGS: ConsolePath = ConsolePath {
    id: "update-agent-settings",
    en: "Agents > Agent Management > the update agent's Settings > Update Agent Settings",
    ja: "Web管理コンソール→「エージェント」→「エージェント管理」→アップデートエージェントに指定しているエージェントの「設定」→「アップデートエージェント設定」",
};

/// Every console path rollcall names.
pub const CONSOLE_PATHS: &[ConsolePath] = &[UPDATE_SOURCE, UPDATE_AGENT_SETTINGS];

impl ConsolePath {
    pub fn text(&self, lang: crate::i18n::Lang) -> &'static str {
        match lang {
            crate::i18n::Lang::En => self.en,
            crate::i18n::Lang::Ja => self.ja,
        }
    }
}

/// The table as Fluent terms in one language, for the catalogues.
pub fn fluent_terms(lang: crate::i18n::Lang) -> String {
    CONSOLE_PATHS
        .iter()
        .map(|path| format!("-console-{} = {}\n", path.id, path.text(lang)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Catalog, Lang};

    /// What marks a console path in running text.
    const MARKERS: &[&str] = &["Updates >", "Agents >", "Administration >", "→「", "Web管理コンソール→"];

    /// The path-like fragments of `text` that are not table entries.
    fn stray_paths(text: &str) -> Vec<String> {
        let mut rest = text.to_string();
        for path in CONSOLE_PATHS {
            rest = rest.replace(path.en, "").replace(path.ja, "");
        }
        MARKERS
            .iter()
            .filter_map(|marker| {
                rest.find(marker)
                    .map(|at| rest[at..].chars().take(60).collect::<String>())
            })
            .collect()
    }

    #[test]
    fn every_remediation_and_mapping_note_takes_its_console_paths_from_the_table() {
        let files = [
            (
                "agent/src/checks/update_source.rs",
                include_str!("../../agent/src/checks/update_source.rs"),
            ),
            (
                "agent/src/checks/update_permission.rs",
                include_str!("../../agent/src/checks/update_permission.rs"),
            ),
            (
                "agent/src/checks/license.rs",
                include_str!("../../agent/src/checks/license.rs"),
            ),
            (
                "deploy/examples/apex-one.toml",
                include_str!("../../deploy/examples/apex-one.toml"),
            ),
            ("common/locales/en.ftl", crate::i18n::EN_FTL),
            ("common/locales/ja.ftl", crate::i18n::JA_FTL),
        ];
        for (name, text) in files {
            let stray = stray_paths(text);
            assert!(
                stray.is_empty(),
                "{name} spells a console path not in console_path.rs: {stray:?}"
            );
        }
    }

    #[test]
    fn the_catalogues_say_each_path_in_their_language() {
        for (lang, path) in [
            (Lang::En, UPDATE_AGENT_SETTINGS.en),
            (Lang::Ja, UPDATE_AGENT_SETTINGS.ja),
        ] {
            let text = Catalog::new(lang).tr("remediation-update_agent_program");
            assert!(text.contains(path), "{lang:?}: {text}");
        }
        for (lang, path) in [(Lang::En, UPDATE_SOURCE.en), (Lang::Ja, UPDATE_SOURCE.ja)] {
            let text = Catalog::new(lang).tr("remediation-update_source");
            assert!(text.contains(path), "{lang:?}: {text}");
        }
        assert_eq!(stray_paths("Go to Updates > Update Agents").len(), 1);
    }
}
