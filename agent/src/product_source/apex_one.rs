//! The Trend Micro Apex One adapter (`[product] adapter = "apex-one"`): no
//! Apex One build writes rollcall's product-state document, so this reads
//! what the Windows endpoint itself knows (registry values, the agent's
//! `.ini` files, Windows' uninstall entry) at the places a mapping file
//! names, and assembles the same document every check reads.
//!
//! - [`mapping`]: the mapping file (`deploy/examples/apex-one.toml`).
//! - [`registry`]: the registry seam; `registry_windows` is the real one.
//! - [`ini`]: `.ini` lookups as Windows does them.
//! - [`resolve`]: from mapping to values with their provenance.
//!
//! Everything here blocks; [`crate::product_source::load`] runs it on a
//! blocking thread under `state_timeout`.

use std::collections::BTreeMap;
use std::path::Path;

use rollcall_common::product::ProductDoc;

pub mod ini;
pub mod mapping;
pub mod registry;
#[cfg(windows)]
pub mod registry_windows;
pub mod resolve;

pub use mapping::Mapping;
pub use registry::{MemoryRegistry, RegValue, Registry};
pub use resolve::{Resolved, resolve};

/// Loads the mapping file and resolves every field it maps. Only a mapping
/// that cannot be read or is invalid is an error; a field whose source fails
/// carries its own error.
pub fn read(mapping_path: &Path, registry: &dyn Registry) -> anyhow::Result<Vec<Resolved>> {
    let mapping = Mapping::load(mapping_path)?;
    Ok(resolve(&mapping, registry))
}

/// The product-state document of resolved fields: values in place, failed
/// sources as per-field errors, unmapped fields absent. An empty text value
/// counts as absent too: Apex One leaves a setting it does not use empty
/// (`CustomSource=` while the standard source is in use), which means "not
/// set", not a malformed value.
pub fn document(resolved: &[Resolved]) -> ProductDoc {
    let mut fields = toml::Table::new();
    let mut unreadable = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for item in resolved {
        match &item.value {
            Ok(toml::Value::String(text)) if text.trim().is_empty() => {}
            Ok(value) => {
                insert(&mut fields, &item.field, value.clone());
                if !item.short_source.is_empty() {
                    sources.insert(item.field.clone(), item.short_source.clone());
                }
            }
            Err(error) => {
                unreadable.insert(item.field.clone(), error.clone());
            }
        }
    }
    ProductDoc::assembled(fields, unreadable).with_sources(sources)
}

/// Puts `value` at a dotted path (`update.source`), creating tables.
fn insert(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let inner = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = inner {
                insert(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests;
