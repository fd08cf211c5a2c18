//! Output: readable tables for people, stable JSON for scripts.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    /// Markdown (the report); other commands print their table.
    Markdown,
}

/// A table whose header names are catalogue keys (`cli-col-*`), in the
/// reader's language.
pub fn table_in(catalog: &rollcall_common::i18n::Catalog, keys: &[&str]) -> Table {
    let names: Vec<String> = keys.iter().map(|key| catalog.tr(key)).collect();
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(names);
    table
}

pub fn print_json<T: Serialize>(value: &T) -> Result<(), super::CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| super::CliError::new(1, format!("encode JSON: {error}")))?;
    println!("{text}");
    Ok(())
}
