//! The folders of `src/` depend on each other one way only, as ARCHITECTURE.md draws them:
//! a folder may use the folders below it in [`LAYERS`], never one above it, and never the
//! crate root. A `use crate::serve::...` in `resolve/` (a leaf reaching up into the query
//! pipeline, as the SRV completion once did) fails here, naming the file.

use std::path::{Path, PathBuf};

/// The folders (and `state.rs`), lowest first. The files beside them at the top (`lib.rs`,
/// `main.rs`, `cli.rs`, `docs.rs`, `fuzzing.rs`) sit above them all.
const LAYERS: &[&str] = &[
    "dns", "config", "import", "observe", "resolve", "host", "state", "serve",
];

/// The first path segment after every `crate::` in `source`, comments left out: the
/// modules of this crate that `source` names. `use crate::{a, b::c}` names `a` and `b`.
fn crate_paths(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let head = item.trim().split([':', ' ']).next().unwrap_or("");
                if !head.is_empty() {
                    names.push(head.to_string());
                }
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..end].to_string());
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layer a file of `src/` belongs to: its folder, or `state` for `state.rs`;
/// `None` for the files at the top.
fn layer_of(relative: &Path) -> Option<usize> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    LAYERS.iter().position(|l| *l == name)
}

/// Every `crate::` path that points sideways into the root or up a layer, as
/// `file: layer -> target`.
fn wrong_edges(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let Some(from) = layer_of(relative) else {
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap();
        for target in crate_paths(&source) {
            let to = LAYERS.iter().position(|l| *l == target);
            if to.is_none_or(|to| to > from) {
                wrong.push(format!(
                    "{}: {} -> {target}",
                    relative.display(),
                    LAYERS[from]
                ));
            }
        }
    }
    wrong.dedup();
    wrong
}

#[test]
fn folders_depend_only_on_the_folders_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let wrong = wrong_edges(&src);
    assert!(
        wrong.is_empty(),
        "imports against the layering ({}, lowest first):\n{}",
        LAYERS.join(" < "),
        wrong.join("\n")
    );
}

#[test]
fn every_layer_is_a_folder_or_file_of_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for layer in LAYERS {
        assert!(
            src.join(layer).is_dir() || src.join(format!("{layer}.rs")).is_file(),
            "{layer} is in LAYERS but not in src/"
        );
    }
}

#[test]
fn crate_paths_are_read_from_single_and_grouped_uses() {
    let source = "use crate::dns::wire;\n\
                  use crate::{serve::handler, state};\n\
                  // crate::observe in a comment is not a use\n\
                  let x = crate::resolve::cache::key_of(q);";
    assert_eq!(crate_paths(source), ["dns", "serve", "state", "resolve"]);
}

#[test]
fn an_edge_up_a_layer_is_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("resolve")).unwrap();
    std::fs::write(
        dir.path().join("resolve/srv.rs"),
        "use crate::serve::handler::resolve_boxed;\nuse crate::dns::wire;\n",
    )
    .unwrap();
    assert_eq!(
        wrong_edges(dir.path()),
        ["resolve/srv.rs: resolve -> serve"]
    );
}
