//! The rooms of `src/compliance/` keep their doors: no module imports one that imports it back,
//! directly or through others, and the assessment model and its renderers import nothing but
//! what they render. Read from the source, so a new import that closes a cycle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The compliance modules each top-level compliance module imports (`super::x`,
/// `crate::compliance::x`, and from inside `checks/`, `crate::compliance::x` only), outside
/// its tests. A module directory counts as one module.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/compliance");
    let mut files: Vec<(String, bool, String)> = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).unwrap() {
                let f = f.unwrap().path();
                files.push((name.clone(), true, std::fs::read_to_string(f).unwrap()));
            }
        } else if name != "mod" {
            files.push((name, false, std::fs::read_to_string(&p).unwrap()));
        }
    }
    let modules: BTreeSet<String> = files.iter().map(|(n, _, _)| n.clone()).collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, nested, text) in &files {
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let deps = out.entry(name.clone()).or_default();
        // Inside a module directory, `super::` is the directory's own module.
        let prefixes: &[&str] = if *nested {
            &["crate::compliance::"]
        } else {
            &["super::", "crate::compliance::"]
        };
        for prefix in prefixes {
            for (i, _) in code.match_indices(prefix) {
                let rest = &code[i + prefix.len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(list) => list
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim().split("::").next().unwrap_or_default())
                        .collect(),
                    None => vec![rest
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or_default()],
                };
                deps.extend(
                    names
                        .into_iter()
                        .filter(|n| modules.contains(*n) && *n != name)
                        .map(String::from),
                );
            }
        }
    }
    out
}

#[test]
fn no_compliance_module_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(graph.len() > 10, "the walk found the modules: {graph:?}");
    // Depth-first from every module: reaching a module still on the path closes a cycle.
    fn walk<'a>(
        g: &'a BTreeMap<String, BTreeSet<String>>,
        m: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(i) = path.iter().position(|p| *p == m) {
            panic!("import cycle: {} -> {m}", path[i..].join(" -> "));
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for d in g.get(m).into_iter().flatten() {
            walk(g, d, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        walk(&graph, m, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_model_and_its_renderers_import_only_what_they_render() {
    let graph = imports();
    for (module, allowed) in [
        ("model", &[][..]),
        ("dashboard", &["model"][..]),
        ("prom", &["model", "util"][..]),
        ("netscan", &["model", "util"][..]),
    ] {
        let extra: Vec<&String> = graph[module]
            .iter()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(extra.is_empty(), "{module} imports {extra:?}");
    }
    // The walk sees imports at all: report renders through the model and the renderers.
    for d in ["model", "dashboard", "prom", "netscan", "checks"] {
        assert!(graph["report"].contains(d), "report -> {d}: {graph:?}");
    }
}
