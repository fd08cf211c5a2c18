//! No import loop in the coordinator (issue 27 point 1): this test reads
//! every `server/src` file and fails on a cycle between its modules.
//!
//! Granularity, checked at two levels:
//!
//! - **File level.** Every file is a node: `a/b.rs` is module `a::b`,
//!   `a/mod.rs` is module `a`. Module A depends on module B when A's code
//!   (comments left out, its test modules included) names a `crate::` path
//!   whose longest module prefix is B; `crate::a::{b, c::d}` names
//!   `crate::a::b` and `crate::a::c::d`. A parent's `mod child;` is not a
//!   `crate::` path and adds no edge; a child that names its ancestor by a
//!   `crate::` path does. Relative paths (`super::`, a sibling by name)
//!   stay inside one folder and are not read.
//! - **Folder level.** Every top-level module is a node (a folder under
//!   `src/` with everything in it, or one file directly in `src/`); a
//!   file-level edge between two of them is an edge between them.
//!
//! `lib.rs` and `main.rs` only declare and call; they are not nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_module_imports_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = read_modules(&src);
    assert!(
        modules.len() > 40,
        "only {} modules found under {}",
        modules.len(),
        src.display()
    );
    let files = file_graph(&modules);
    let edges: usize = files.values().map(BTreeSet::len).sum();
    // The parser still sees the imports (the coordinator holds the store).
    assert!(edges > 100, "only {edges} edges found");
    assert!(files["state"].contains("store"), "state -> store not seen");

    let mut failures = Vec::new();
    for cycle in cycles(&files) {
        failures.push(format!("file level: {}", cycle.join(" -> ")));
    }
    for cycle in cycles(&folder_graph(&files)) {
        failures.push(format!("folder level: {}", cycle.join(" -> ")));
    }
    assert!(
        failures.is_empty(),
        "import loops in server/src (break them by moving what both sides need below both):\n{}",
        failures.join("\n")
    );
}

/// Module path → the file's code without comments.
fn read_modules(src: &Path) -> BTreeMap<String, String> {
    let mut modules = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read server/src") {
            let path = entry.expect("read a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs")
                && let Some(module) = module_of(src, &path)
            {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                modules.insert(module, strip_comments(&text));
            }
        }
    }
    modules
}

fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative: PathBuf = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    let module = parts.join("::");
    (!matches!(module.as_str(), "" | "lib" | "main")).then_some(module)
}

/// Drops `//` comments (doc comments too: a doc link is not an import) and
/// `/* */` blocks. String literals holding `//` are rare enough here that
/// cutting a line short only ever loses an edge, never invents one.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
        } else if rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |end| &rest[end..]);
        } else {
            let mut chars = rest.chars();
            out.extend(chars.next());
            rest = chars.as_str();
        }
    }
    out
}

fn file_graph(modules: &BTreeMap<String, String>) -> Graph {
    let mut graph = Graph::new();
    for (module, code) in modules {
        let targets = graph.entry(module.clone()).or_default();
        for path in crate_paths(code) {
            let segments: Vec<&str> = path.split("::").collect();
            let target = (1..=segments.len())
                .rev()
                .map(|len| segments[..len].join("::"))
                .find(|prefix| modules.contains_key(prefix));
            if let Some(target) = target
                && target != *module
            {
                targets.insert(target);
            }
        }
    }
    graph
}

/// Every `crate::…` path in `code`, a `{…}` group expanded one level.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        if code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[start + "crate::".len()..];
        let head: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let head = head.trim_end_matches(':');
        let after = &rest[head.len()..];
        match after.trim_start_matches(':').strip_prefix('{') {
            Some(group) if rest[head.len()..].starts_with("::{") => {
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let item: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    let item = item.trim_end_matches(':');
                    if item.is_empty() || item == "self" {
                        paths.push(head.to_string());
                    } else {
                        paths.push(format!("{head}::{item}"));
                    }
                }
            }
            _ => paths.push(head.to_string()),
        }
    }
    paths
}

fn folder_graph(files: &Graph) -> Graph {
    let top = |module: &str| module.split("::").next().unwrap_or(module).to_string();
    let mut graph = Graph::new();
    for (from, targets) in files {
        let entry = graph.entry(top(from)).or_default();
        for to in targets {
            if top(to) != top(from) {
                entry.insert(top(to));
            }
        }
    }
    graph
}

/// One cycle (as a path that returns to its start) for every strongly
/// connected component of more than one node (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let at = self.index.len();
            self.index.insert(node, at);
            self.low.insert(node, at);
            self.stack.push(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    component.push(top);
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.components.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.components
        .iter()
        .map(|component| cycle_within(graph, component))
        .collect()
}

/// A shortest way round from the component's first node back to itself.
fn cycle_within(graph: &Graph, component: &[&str]) -> Vec<String> {
    let members: BTreeSet<&str> = component.iter().copied().collect();
    let start = component[0];
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut next_frontier = Vec::new();
        for node in frontier {
            for next in graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if next == start {
                    let mut back = vec![node];
                    let mut at = node;
                    while at != start {
                        at = came_from[at];
                        back.push(at);
                    }
                    back.reverse();
                    let mut cycle: Vec<String> = back.into_iter().map(String::from).collect();
                    cycle.push(start.to_string());
                    return cycle;
                }
                if members.contains(next) && !came_from.contains_key(next) {
                    came_from.insert(next, node);
                    next_frontier.push(next);
                }
            }
        }
        frontier = next_frontier;
    }
    component.iter().map(|node| node.to_string()).collect()
}

#[test]
fn a_loop_is_found_and_named() {
    let modules: BTreeMap<String, String> = [
        ("a", "use crate::b::Thing;"),
        ("b", "fn f() { crate::c::{g, h::i}(); }"),
        ("c", "// crate::a is only a comment\nuse crate::a;"),
        ("c::h", "use crate::c::X;"),
        ("d", "/* crate::a */ use crate::c;"),
    ]
    .into_iter()
    .map(|(module, code)| (module.to_string(), strip_comments(code)))
    .collect();
    let files = file_graph(&modules);
    assert_eq!(files["b"], BTreeSet::from(["c".to_string(), "c::h".to_string()]));
    assert_eq!(files["d"], BTreeSet::from(["c".to_string()]));
    assert_eq!(files["c::h"], BTreeSet::from(["c".to_string()]));
    let found = cycles(&files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].first(), found[0].last());
    for module in ["a", "b", "c"] {
        assert!(found[0].iter().any(|node| node == module), "{found:?}");
    }
    let folders = folder_graph(&files);
    assert!(
        !folders["c"].contains("c"),
        "an edge inside one folder is not a folder edge"
    );
}
