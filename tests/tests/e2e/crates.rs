//! The crates match the binaries (ARCHITECTURE.md, invariants): the
//! coordinator does not link the probe, and the admin CLI links neither the
//! coordinator nor the probe. Read from the workspace's own manifests, so
//! the check needs no cargo run and follows path dependencies transitively.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each workspace crate's package name and the workspace crates it depends
/// on (normal dependencies only: dev-dependencies are not linked into the
/// binaries).
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let read = |path: &Path| -> toml::Table {
        let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
        text.parse()
            .unwrap_or_else(|error| panic!("parse {}: {error}", path.display()))
    };
    let workspace = read(&root.join("Cargo.toml"));
    let members: Vec<String> = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .filter_map(|member| member.as_str().map(str::to_string))
        .collect();
    let mut packages = BTreeMap::new();
    let mut manifests = Vec::new();
    for member in &members {
        let manifest = read(&root.join(member).join("Cargo.toml"));
        let name = manifest["package"]["name"].as_str().expect("package name").to_string();
        packages.insert(name.clone(), BTreeSet::new());
        manifests.push((name, manifest));
    }
    for (name, manifest) in manifests {
        let mut tables: Vec<&toml::Table> = manifest
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .into_iter()
            .collect();
        // Platform-specific dependencies ([target.'cfg(…)'.dependencies]).
        if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
            tables.extend(
                targets
                    .values()
                    .filter_map(|target| target.get("dependencies").and_then(toml::Value::as_table)),
            );
        }
        let local: BTreeSet<String> = tables
            .iter()
            .flat_map(|table| table.keys())
            .filter(|dependency| packages.contains_key(*dependency))
            .cloned()
            .collect();
        packages.insert(name, local);
    }
    packages
}

/// Every workspace crate `package` links, itself excluded.
fn links(graph: &BTreeMap<String, BTreeSet<String>>, package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_string()];
    while let Some(next) = todo.pop() {
        for dependency in graph.get(&next).into_iter().flatten() {
            if seen.insert(dependency.clone()) {
                todo.push(dependency.clone());
            }
        }
    }
    seen
}

#[test]
fn the_coordinator_does_not_link_the_probe_and_the_cli_links_only_common() {
    let graph = workspace_dependencies();
    assert!(graph.contains_key("rollcall-agent"), "{graph:?}");
    let server = links(&graph, "rollcall-server");
    assert!(!server.contains("rollcall-agent"), "rollcall-server links {server:?}");
    let cli = links(&graph, "rollcall-cli");
    assert_eq!(
        cli,
        BTreeSet::from(["rollcall-common".to_string()]),
        "rollcall-cli links {cli:?}"
    );
    let common = links(&graph, "rollcall-common");
    assert!(common.is_empty(), "rollcall-common links {common:?}");
}
