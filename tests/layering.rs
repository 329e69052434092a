//! The layering of `src/`, checked: every `crate::` path between top-level modules points down
//! the layers, so no two modules reach each other (no cycle), and the bottom layers know nothing
//! of Telegram. A new top-level module must be given its layer here, which makes its place in
//! the design a decision rather than an accident.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top: a module may use only modules of a lower layer.
const LAYERS: &[(&str, u8)] = &[
    // Leaves: the vocabulary, the chat texts, metrics, log redaction, error lines, the allocator.
    ("domain", 0),
    ("i18n", 0),
    ("telemetry", 0),
    ("redact", 0),
    ("report", 0),
    ("alloc", 0),
    // What the bot keeps and whom it asks; neither knows the other.
    ("store", 1),
    ("wechat", 1),
    // Settings, and Telegram below any handler (views, callback data, approvers).
    ("config", 2),
    ("telegram", 2),
    // The card's lifecycle: the app, the poller, decisions, reminders.
    ("lifecycle", 3),
    // What people do in the chat: presses, replies, commands.
    ("chat", 4),
    // The running process.
    ("bot", 5),
    // Not the bot: sandbox, fake Bot API, demo.
    ("testbed", 6),
    ("cli", 7),
];

/// Layers that must not know Telegram at all.
const NO_TELEGRAM: &[&str] = &[
    "domain",
    "store",
    "wechat",
    "i18n",
    "telemetry",
    "redact",
    "report",
    "alloc",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/wechat/token.rs` → `wechat`), or `None` for the
/// crate root and the binary.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// A file's code without its `#[cfg(test)]` module (tests may reach anywhere) and comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let code = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named after `crate::` in `code`, including `use crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

/// Module → the modules it uses, and module → whether it names teloxide.
fn graph() -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|p| module_of(p)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut telegram = BTreeSet::new();
    for path in &files {
        let Some(module) = module_of(path) else {
            continue;
        };
        let code = code_of(path);
        if code.contains("teloxide") {
            telegram.insert(module.clone());
        }
        let uses = edges.entry(module.clone()).or_default();
        for target in crate_paths(&code) {
            if target != module && modules.contains(&target) {
                uses.insert(target);
            }
        }
    }
    (edges, telegram)
}

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

#[test]
fn every_module_has_a_layer() {
    let (edges, _) = graph();
    let unplaced: Vec<&String> = edges.keys().filter(|m| layer(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "give these top-level modules a layer in tests/layering.rs: {unplaced:?}"
    );
}

#[test]
fn modules_use_only_lower_layers() {
    let (edges, _) = graph();
    let mut upward = Vec::new();
    for (from, targets) in &edges {
        let Some(from_layer) = layer(from) else {
            continue;
        };
        for to in targets {
            if layer(to).is_none_or(|to_layer| to_layer >= from_layer) {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "these uses point sideways or up the layers (a cycle in the making): {upward:?}"
    );
}

#[test]
fn the_bottom_layers_know_nothing_of_telegram() {
    let (_, telegram) = graph();
    let leaks: Vec<&&str> = NO_TELEGRAM
        .iter()
        .filter(|m| telegram.contains(**m))
        .collect();
    assert!(leaks.is_empty(), "these modules name teloxide: {leaks:?}");
}

#[test]
fn the_scanner_sees_grouped_and_nested_paths() {
    let code = "use crate::{domain::card::Card, store};\nfn f() { crate::wechat::x(); }";
    let found: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(found, ["domain", "store", "wechat"]);
}
