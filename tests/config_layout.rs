//! The shape of `src/config`: every file stays under 600 lines, and the
//! modules that name each other through `super::` form no circle (the
//! shared pieces live in a module that the table validators use, never
//! the other way round).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MAX_LINES: usize = 600;

/// Module name → source text, without its `#[cfg(test)]` part.
fn modules() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        out.insert(name, text);
    }
    out
}

/// The sibling modules a file's code (not its comments or tests) names
/// through `super::NAME` or `super::{A, B}`.
fn uses(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or(text)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("super::") {
        let rest = &code[i + "super::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for n in names {
            let ident: String = n
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if known.contains(&ident) {
                found.insert(ident);
            }
        }
    }
    found
}

#[test]
fn config_files_stay_under_the_line_limit() {
    let modules = modules();
    assert!(modules.len() >= 5, "{:?}", modules.keys());
    for (name, text) in &modules {
        let lines = text.lines().count();
        assert!(
            lines <= MAX_LINES,
            "src/config/{name}.rs has {lines} lines (at most {MAX_LINES})"
        );
    }
}

#[test]
fn config_modules_form_no_circle() {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().filter(|k| *k != "mod").cloned().collect();
    let graph: BTreeMap<&String, BTreeSet<String>> = modules
        .iter()
        .filter(|(k, _)| *k != "mod")
        .map(|(k, text)| (k, uses(text, &known)))
        .collect();
    assert!(
        graph.values().any(|deps| !deps.is_empty()),
        "the scan found no `super::` use at all: {graph:?}"
    );
    // Depth-first search from every module; a module met again on the
    // current path closes a circle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<&String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|n| *n == node) {
            panic!("circle between config modules: {:?}", &path[at..]);
        }
        path.push(node);
        for dep in graph.get(&node.to_string()).into_iter().flatten() {
            visit(dep, graph, path, done);
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}
