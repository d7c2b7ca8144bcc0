//! The files of `src/` depend on each other one way only, as ARCHITECTURE.md draws them. Two
//! checks keep it so.
//!
//! **Folders.** A folder may use the folders below it in [`LAYERS`], never one above it, and
//! never the crate root. A `use crate::serve::...` in `resolve/` (a leaf reaching up into the
//! query pipeline, as the SRV completion once did) fails here, naming the file.
//!
//! **Files.** No two files need each other, directly or round a longer circle. The file graph
//! has an edge A -> B when A's code names an item of file B:
//!
//! - through a path that starts with `crate::`, `super::` (any number of them), `self::`, the
//!   name of one of A's child modules, or a name A brought in with `use`; in a `use`
//!   declaration (groups and nested groups included) or anywhere in the code;
//! - the path is followed down to the file that defines the item: through the modules (a
//!   path ends in the file of its longest module prefix) and through the `use` items of the
//!   module it reaches, globs included, so `super::ConfigError` re-exported by `config/mod.rs`
//!   from `config/error.rs` is an edge to `config/error.rs`;
//! - comments, string literals and the items under `#[cfg(test)]` (the `mod tests` blocks,
//!   inline or in a file of their own, and test-only helpers) are not code;
//! - a module's own table of contents is not a dependency: its `mod child;` declarations and
//!   its `pub use child::...` / `pub(crate) use child::...` re-exports of its own descendants.
//!   A re-exported name the module itself uses elsewhere in its code is an edge again.
//!
//! The files are the ones the compiler reads: `lib.rs` and the `mod` declarations from there.
//! The strongly connected components of that graph with more than one file are its circles;
//! each fails with its files and the edges between them. When two files need each other, the
//! piece they share moves down into a third that both use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders (and `state.rs`), lowest first. The files beside them at the top (`lib.rs`,
/// `main.rs`, `cli.rs`, `docs.rs`, `fuzzing.rs`) sit above them all.
const LAYERS: &[&str] = &[
    "dns", "config", "import", "observe", "resolve", "host", "state", "serve",
];

// ---------------------------------------------------------------------------------------
// Reading Rust source

/// Rust source reduced to what the checks read: identifiers (keywords included), `::` and
/// single punctuation marks. Comments, string and character literals and lifetimes are left
/// out; a number is one `0`.
fn tokens(source: &str) -> Vec<String> {
    let s: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = after_block_comment(&s, i);
        } else if c == '"' {
            i = after_string(&s, i);
        } else if c == '\'' {
            i = after_quote(&s, i);
        } else if c == ':' && next == Some(':') {
            out.push("::".to_string());
            i += 2;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            i = after_word(&s, i);
            let word: String = s[start..i].iter().collect();
            match (word.as_str(), s.get(i)) {
                ("r" | "br" | "cr", Some('"' | '#')) if is_raw_string(&s, i) => {
                    i = after_raw_string(&s, i)
                }
                ("b" | "c", Some('"')) => i = after_string(&s, i),
                ("b", Some('\'')) => i = after_quote(&s, i),
                ("r", Some('#')) => i += 1, // r#ident: the identifier follows
                _ => out.push(word),
            }
        } else if c.is_ascii_digit() {
            i = after_word(&s, i);
            out.push("0".to_string());
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

fn after_word(s: &[char], mut i: usize) -> usize {
    while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
        i += 1;
    }
    i
}

/// Past a `/* */` comment starting at `i`; they nest.
fn after_block_comment(s: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < s.len() {
        match (s[i], s.get(i + 1)) {
            ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
            ('*', Some('/')) => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
        if depth == 0 {
            break;
        }
    }
    i
}

/// Past a `"..."` string whose opening quote is at `i`.
fn after_string(s: &[char], mut i: usize) -> usize {
    i += 1;
    while i < s.len() {
        match s[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `i` is just past an `r`: is a raw string's `#...#"` there?
fn is_raw_string(s: &[char], mut i: usize) -> bool {
    while s.get(i) == Some(&'#') {
        i += 1;
    }
    s.get(i) == Some(&'"')
}

fn after_raw_string(s: &[char], mut i: usize) -> usize {
    let hashes = s[i..].iter().take_while(|c| **c == '#').count();
    i += hashes + 1;
    while i < s.len() {
        if s[i] == '"'
            && s[i + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// Past a character literal or a lifetime whose quote is at `i`.
fn after_quote(s: &[char], i: usize) -> usize {
    if s.get(i + 1) == Some(&'\\') {
        // '\n', '\'', '\u{1F600}': the closing quote comes after the escaped character.
        let close = s[i + 3..].iter().position(|c| *c == '\'').unwrap_or(0);
        i + 3 + close + 1
    } else if s.get(i + 2) == Some(&'\'') {
        i + 3
    } else {
        after_word(s, i + 1)
    }
}

fn is_ident(token: &str) -> bool {
    token.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

/// Does `pattern` start at `tokens[i]`?
fn at(tokens: &[String], i: usize, pattern: &[&str]) -> bool {
    tokens.len() >= i + pattern.len() && pattern.iter().zip(&tokens[i..]).all(|(p, t)| p == t)
}

/// The index of the bracket that closes the one at `open`.
fn closing(tokens: &[String], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "{" | "(" | "[" => depth += 1,
            "}" | ")" | "]" => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return i;
        }
    }
    tokens.len()
}

/// The keywords an item under `#[cfg(test)]` starts with, after its visibility.
const ITEMS: &[&str] = &[
    "mod", "fn", "use", "impl", "struct", "enum", "const", "static", "type", "trait",
];

/// The keywords that define a name at the top of a file (`mod` is read on its own).
const DEFINES: &[&str] = &[
    "fn", "struct", "enum", "union", "const", "static", "type", "trait",
];

/// `tokens` without the items under `#[cfg(test)]`.
fn without_tests(tokens: &[String]) -> Vec<String> {
    const CFG_TEST: &[&str] = &["#", "[", "cfg", "(", "test", ")", "]"];
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !at(tokens, i, CFG_TEST) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += CFG_TEST.len();
        while at(tokens, i, &["#", "["]) {
            i = closing(tokens, i + 1) + 1;
        }
        let mut item = i;
        if at(tokens, item, &["pub", "("]) {
            item = closing(tokens, item + 1) + 1;
        } else if at(tokens, item, &["pub"]) {
            item += 1;
        }
        if tokens
            .get(item)
            .is_some_and(|t| ITEMS.contains(&t.as_str()))
        {
            i = item_end(tokens, item);
        }
    }
    out
}

/// Past the item starting at `i`: its `;` or its body's closing brace, whichever is first.
fn item_end(tokens: &[String], mut i: usize) -> usize {
    while i < tokens.len() {
        match tokens[i].as_str() {
            ";" => return i + 1,
            "{" => return closing(tokens, i) + 1,
            "(" | "[" => i = closing(tokens, i) + 1,
            _ => i += 1,
        }
    }
    i
}

/// One name a `use` declaration brings in.
#[derive(Debug, PartialEq)]
struct Use {
    /// The inline module it sits in, from the file's own module (empty at the top).
    inline: Vec<String>,
    /// `pub` or `pub(...)`: a re-export.
    public: bool,
    /// The path as written, `self` in a group resolved to its prefix.
    path: Vec<String>,
    /// The name it is known by here, after `as`; `None` for a glob.
    name: Option<String>,
}

/// What one file says, read from its tokens.
#[derive(Debug, Default)]
struct Scan {
    /// `mod NAME` declarations, as paths from the file's module (`mod a { mod b; }` declares
    /// `[a]` and `[a, b]`), each with whether it lives in a file of its own.
    mods: Vec<(Vec<String>, bool)>,
    uses: Vec<Use>,
    /// Paths outside `use` declarations, each with the inline module it sits in.
    paths: Vec<(Vec<String>, Vec<String>)>,
    /// The names the file defines at its top level.
    items: BTreeSet<String>,
    /// Identifiers used on their own outside `use` declarations (not after `.` or `::`, and
    /// not the start of a path).
    bare: BTreeSet<String>,
}

fn scan(tokens: &[String]) -> Scan {
    let mut scan = Scan::default();
    // One entry per open brace: the inline module it opened, if any.
    let mut braces: Vec<Option<String>> = Vec::new();
    let inline = |braces: &[Option<String>]| braces.iter().flatten().cloned().collect::<Vec<_>>();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i].as_str();
        let prev = if i > 0 { tokens[i - 1].as_str() } else { "" };
        let next = tokens.get(i + 1).map_or("", String::as_str);
        match token {
            "{" => braces.push(None),
            "}" => drop(braces.pop()),
            "mod" if is_ident(next) => {
                let mut path = inline(&braces);
                path.push(next.to_string());
                if braces.is_empty() {
                    scan.items.insert(next.to_string());
                }
                let opens = tokens.get(i + 2).is_some_and(|t| t == "{");
                scan.mods.push((path, !opens));
                if opens {
                    braces.push(Some(next.to_string()));
                    i += 1;
                }
                i += 2;
                continue;
            }
            "use" => {
                let public = is_public(tokens, i);
                let here = inline(&braces);
                let mut leaves = Vec::new();
                i += 1;
                use_tree(tokens, &mut i, Vec::new(), &mut leaves);
                for (path, name) in leaves {
                    let inline = here.clone();
                    scan.uses.push(Use {
                        inline,
                        public,
                        path,
                        name,
                    });
                }
                continue;
            }
            _ if is_ident(token) && next == "::" && prev != "::" && prev != "in" => {
                let mut path = vec![token.to_string()];
                i += 1;
                while at(tokens, i, &["::"]) && tokens.get(i + 1).is_some_and(|t| is_ident(t)) {
                    path.push(tokens[i + 1].clone());
                    i += 2;
                }
                scan.paths.push((inline(&braces), path));
                continue;
            }
            _ if is_ident(token) => {
                if braces.is_empty() && DEFINES.contains(&prev) {
                    scan.items.insert(token.to_string());
                }
                if prev != "." && prev != "::" {
                    scan.bare.insert(token.to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// Is the `use` at `tokens[at]` a `pub` or `pub(...)` one?
fn is_public(tokens: &[String], at: usize) -> bool {
    match at.checked_sub(1).map(|i| tokens[i].as_str()) {
        Some("pub") => true,
        Some(")") => {
            let open = (0..at - 1).rev().find(|i| closing(tokens, *i) == at - 1);
            open.is_some_and(|open| open > 0 && tokens[open - 1] == "pub")
        }
        _ => false,
    }
}

/// Reads one use tree from `tokens[*i]`, below `path`, into `out` as (path, name) leaves.
fn use_tree(
    tokens: &[String],
    i: &mut usize,
    mut path: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    loop {
        match tokens.get(*i).map(String::as_str) {
            Some("::") => *i += 1,
            Some("*") => {
                *i += 1;
                out.push((path, None));
                return;
            }
            Some("{") => {
                *i += 1;
                while tokens.get(*i).is_some_and(|t| t != "}") {
                    let before = *i;
                    use_tree(tokens, i, path.clone(), out);
                    if at(tokens, *i, &[","]) {
                        *i += 1;
                    } else if *i == before {
                        break;
                    }
                }
                *i += 1;
                return;
            }
            Some(word) if is_ident(word) => {
                *i += 1;
                // `{self, ...}` is the module the group is in.
                if word != "self" || path.is_empty() {
                    path.push(word.to_string());
                }
                if at(tokens, *i, &["::"]) {
                    continue;
                }
                let name = if at(tokens, *i, &["as"]) {
                    *i += 2;
                    tokens.get(*i - 1).cloned()
                } else {
                    path.last().cloned()
                };
                out.push((path, name));
                return;
            }
            _ => return,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The file graph

/// One file of the crate, scanned.
struct Source {
    /// Relative to `src/`, `/`-separated.
    file: String,
    /// Its module path from the crate root.
    module: Vec<String>,
    scan: Scan,
}

/// The files the compiler reads, from `lib.rs` down the `mod` declarations (none under
/// `#[cfg(test)]`).
fn read_crate(src: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    read_module(src, PathBuf::from("lib.rs"), Vec::new(), &mut out);
    out
}

fn read_module(src: &Path, relative: PathBuf, module: Vec<String>, out: &mut Vec<Source>) {
    let text = std::fs::read_to_string(src.join(&relative))
        .unwrap_or_else(|e| panic!("{}: {e}", relative.display()));
    let scan = scan(&without_tests(&tokens(&text)));
    let owns_folder = relative.ends_with("lib.rs") || relative.ends_with("mod.rs");
    let folder = if owns_folder {
        relative.parent().unwrap().to_path_buf()
    } else {
        relative.with_extension("")
    };
    for (path, own_file) in &scan.mods {
        if !own_file {
            continue;
        }
        let base = folder.join(path.join("/"));
        let flat = base.with_extension("rs");
        let child = if src.join(&flat).is_file() {
            flat
        } else {
            base.join("mod.rs")
        };
        let child_module = [module.clone(), path.clone()].concat();
        read_module(src, child, child_module, out);
    }
    let file = relative.to_str().unwrap().replace('\\', "/");
    out.push(Source { file, module, scan });
}

/// The crate's modules and what each brings in with `use`, to follow paths down to files.
struct Crate<'a> {
    sources: &'a [Source],
    /// Every module, in a file of its own or inline: the source it is in.
    modules: BTreeMap<Vec<String>, usize>,
    /// Per module, every name its `use` declarations bring in.
    imports: BTreeMap<Vec<String>, Vec<Import>>,
}

/// A name a `use` declaration brings in (`None` for a glob) and the path from the crate root
/// it stands for.
type Import = (Option<String>, Vec<String>);

impl<'a> Crate<'a> {
    fn new(sources: &'a [Source]) -> Self {
        let mut modules = BTreeMap::new();
        for (index, source) in sources.iter().enumerate() {
            modules.insert(source.module.clone(), index);
            for (path, own_file) in &source.scan.mods {
                if !own_file {
                    modules.insert([source.module.clone(), path.clone()].concat(), index);
                }
            }
        }
        let mut krate = Self {
            sources,
            modules,
            imports: BTreeMap::new(),
        };
        // A `use` path may start with a name another `use` brought in: a few rounds settle it.
        for _ in 0..3 {
            let mut imports: BTreeMap<_, Vec<_>> = BTreeMap::new();
            for source in sources {
                for used in &source.scan.uses {
                    let module = [source.module.clone(), used.inline.clone()].concat();
                    if let Some(target) = krate.absolute(&module, &used.path) {
                        let entry = imports.entry(module).or_default();
                        entry.push((used.name.clone(), target));
                    }
                }
            }
            krate.imports = imports;
        }
        krate
    }

    /// `path`, written in `module`, from the crate root; `None` when it leaves the crate.
    fn absolute(&self, module: &[String], path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        match first.as_str() {
            "crate" => Some(rest.to_vec()),
            "self" => Some([module, rest].concat()),
            "super" => {
                let mut base = module.to_vec();
                let ups = path.iter().take_while(|s| *s == "super").count();
                for _ in 0..ups {
                    base.pop()?;
                }
                Some([&base, &path[ups..]].concat())
            }
            _ if self.modules.contains_key(&[module, &path[..1]].concat()) => {
                Some([module, path].concat())
            }
            _ => {
                let imported = self.imports.get(module)?;
                let (_, target) = imported
                    .iter()
                    .find(|(name, _)| name.as_ref() == Some(first))?;
                Some([target, rest].concat())
            }
        }
    }

    /// The module that `path` (absolute) lies in: its longest prefix that is a module.
    fn module_of<'p>(&self, path: &'p [String]) -> (&'p [String], &'p [String]) {
        let k = (0..=path.len())
            .rev()
            .find(|k| self.modules.contains_key(&path[..*k]))
            .unwrap_or(0);
        path.split_at(k)
    }

    /// The source that defines what `path` (absolute) names, through `use` items.
    fn source_of(&self, path: &[String]) -> usize {
        self.follow(path, 0)
    }

    fn follow(&self, path: &[String], depth: usize) -> usize {
        let (module, rest) = self.module_of(path);
        let here = self.modules.get(module).copied().unwrap_or(0);
        let (Some(first), true) = (rest.first(), depth < 16) else {
            return here;
        };
        for (name, target) in self.imports.get(module).into_iter().flatten() {
            match name {
                Some(name) if name == first => {
                    return self.follow(&[target, &rest[1..]].concat(), depth + 1);
                }
                None if self.defines(target, first) => {
                    return self.follow(&[target, rest].concat(), depth + 1);
                }
                _ => {}
            }
        }
        here
    }

    /// Does `module` define or bring in `name`?
    fn defines(&self, module: &[String], name: &str) -> bool {
        let Some(&index) = self.modules.get(module) else {
            return false;
        };
        let source = &self.sources[index];
        let named = |(n, _): &Import| n.as_deref() == Some(name);
        (source.module == module && source.scan.items.contains(name))
            || self
                .imports
                .get(module)
                .is_some_and(|i| i.iter().any(named))
    }

    /// Is a `pub use` of `target` in `module` part of its table of contents: a re-export of
    /// one of its own descendants?
    fn is_contents(&self, module: &[String], target: &[String]) -> bool {
        target.len() > module.len()
            && target.starts_with(module)
            && self.modules.contains_key(&target[..module.len() + 1])
    }

    /// Every edge of the file graph, with the first path that made it.
    fn edges(&self) -> BTreeMap<(String, String), String> {
        let mut edges = BTreeMap::new();
        for source in self.sources {
            for used in &source.scan.uses {
                let module = [source.module.clone(), used.inline.clone()].concat();
                let Some(target) = self.absolute(&module, &used.path) else {
                    continue;
                };
                if used.public
                    && self.is_contents(&module, &target)
                    && !self.used_elsewhere(source, used, &target)
                {
                    continue;
                }
                let to = self.source_of(&target);
                self.add(&mut edges, source, to, &used.path);
            }
            for (inline, path) in &source.scan.paths {
                let module = [source.module.clone(), inline.clone()].concat();
                if let Some(target) = self.absolute(&module, path) {
                    let to = self.source_of(&target);
                    self.add(&mut edges, source, to, path);
                }
            }
        }
        edges
    }

    /// Does the file that re-exports `used` also use the name itself?
    fn used_elsewhere(&self, source: &Source, used: &Use, target: &[String]) -> bool {
        match &used.name {
            Some(name) => source.scan.bare.contains(name),
            None => source
                .scan
                .bare
                .iter()
                .any(|name| self.defines(target, name)),
        }
    }

    fn add(
        &self,
        edges: &mut BTreeMap<(String, String), String>,
        from: &Source,
        to: usize,
        path: &[String],
    ) {
        let to = &self.sources[to].file;
        if *to != from.file {
            let key = (from.file.clone(), to.clone());
            edges.entry(key).or_insert_with(|| path.join("::"));
        }
    }
}

/// The strongly connected components with more than one file (Tarjan), each sorted.
fn circles(edges: &BTreeMap<(String, String), String>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    let mut tarjan = Tarjan {
        next: &next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        circles: Vec::new(),
    };
    for node in next.keys() {
        if !tarjan.index.contains_key(node) {
            tarjan.visit(node);
        }
    }
    tarjan.circles.sort();
    tarjan.circles
}

struct Tarjan<'a> {
    next: &'a BTreeMap<&'a str, Vec<&'a str>>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    circles: Vec<Vec<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, node: &'a str) {
        let index = self.index.len();
        self.index.insert(node, index);
        self.low.insert(node, index);
        self.stack.push(node);
        for &to in &self.next[node] {
            if !self.index.contains_key(to) {
                self.visit(to);
                self.low.insert(node, self.low[node].min(self.low[to]));
            } else if self.stack.contains(&to) {
                self.low.insert(node, self.low[node].min(self.index[to]));
            }
        }
        if self.low[node] == index {
            let at = self.stack.iter().position(|n| *n == node).unwrap();
            let mut component: Vec<String> = self.stack.drain(at..).map(str::to_string).collect();
            if component.len() > 1 {
                component.sort();
                self.circles.push(component);
            }
        }
    }
}

/// The circles in the crate at `src`, each as its files and the edges between them.
fn file_circles(src: &Path) -> Vec<(Vec<String>, Vec<String>)> {
    let sources = read_crate(src);
    let edges = Crate::new(&sources).edges();
    let mut found = Vec::new();
    for circle in circles(&edges) {
        let inside = edges
            .iter()
            .filter(|((from, to), _)| circle.contains(from) && circle.contains(to))
            .map(|((from, to), path)| format!("  {from} -> {to} ({path})"))
            .collect();
        found.push((circle, inside));
    }
    found
}

#[test]
fn files_do_not_need_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found: Vec<String> = file_circles(&src)
        .iter()
        .map(|(circle, edges)| format!("{}:\n{}", circle.join(", "), edges.join("\n")))
        .collect();
    assert!(
        found.is_empty(),
        "files that need each other (move what they share down into a file both use):\n{}",
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Folders

/// The first path segment after every `crate::` in `source`, comments and strings left out:
/// the modules of this crate that `source` names. `use crate::{a, b::c}` names `a` and `b`.
fn crate_paths(source: &str) -> Vec<String> {
    let tokens = tokens(source);
    let mut names = Vec::new();
    for i in 0..tokens.len() {
        if !at(&tokens, i, &["crate", "::"]) {
            continue;
        }
        let Some(head) = tokens.get(i + 2) else {
            continue;
        };
        if head != "{" {
            names.push(head.clone());
            continue;
        }
        let mut depth = 0;
        for j in i + 2..closing(&tokens, i + 2) {
            match tokens[j].as_str() {
                "{" => depth += 1,
                "}" => depth -= 1,
                word if depth == 1 && is_ident(word) && at(&tokens, j - 1, &["{"]) => {
                    names.push(word.to_string())
                }
                word if depth == 1 && is_ident(word) && at(&tokens, j - 1, &[","]) => {
                    names.push(word.to_string())
                }
                _ => {}
            }
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

// ---------------------------------------------------------------------------------------
// The checks' own tests

#[test]
fn crate_paths_are_read_from_single_and_grouped_uses() {
    let source = "use crate::dns::wire;\n\
                  use crate::{serve::handler, state};\n\
                  // crate::observe in a comment is not a use\n\
                  let s = \"crate::host in a string is not one either\";\n\
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

fn uses_of(source: &str) -> Vec<(String, Option<String>, bool)> {
    let scan = scan(&without_tests(&tokens(source)));
    let leaf = |u: Use| (u.path.join("::"), u.name, u.public);
    scan.uses.into_iter().map(leaf).collect()
}

#[test]
fn uses_are_read_through_groups_nested_groups_renames_and_globs() {
    let source = "use crate::{dns::{wire::{self, Query as Q}, zone}, state};\n\
                  pub(crate) use super::super::x::*;\n\
                  pub use self::child::Leaf;";
    let leaf = |path: &str, name: Option<&str>, public| (path.into(), name.map(Into::into), public);
    assert_eq!(
        uses_of(source),
        [
            leaf("crate::dns::wire", Some("wire"), false),
            leaf("crate::dns::wire::Query", Some("Q"), false),
            leaf("crate::dns::zone", Some("zone"), false),
            leaf("crate::state", Some("state"), false),
            leaf("super::super::x", None, true),
            leaf("self::child::Leaf", Some("Leaf"), true),
        ]
    );
}

#[test]
fn comments_strings_and_test_items_are_not_code() {
    let source = "/* use crate::a; /* nested */ use crate::b; */\n\
                  const S: &str = r#\"use crate::c;\"#;\n\
                  fn f<'a>(x: &'a str) -> char { '\"' }\n\
                  #[cfg(test)]\n\
                  fn helper() -> crate::d::D { todo!() }\n\
                  #[cfg(test)]\n\
                  #[allow(unused)]\n\
                  mod tests { use crate::e; }\n\
                  #[cfg(test)]\n\
                  mod more;\n\
                  use crate::kept;";
    assert_eq!(
        uses_of(source),
        [("crate::kept".into(), Some("kept".into()), false)]
    );
    let scan = scan(&without_tests(&tokens(source)));
    assert!(scan.paths.is_empty(), "{:?}", scan.paths);
    assert!(scan.mods.is_empty(), "{:?}", scan.mods);
}

/// Writes a crate of `(file, text)` pairs into a temporary `src/`.
fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn edges_of(src: &Path) -> Vec<String> {
    let sources = read_crate(src);
    let edges = Crate::new(&sources).edges();
    edges
        .keys()
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect()
}

#[test]
fn edges_follow_paths_to_the_file_that_defines_the_item() {
    let src = fixture(&[
        ("lib.rs", "mod config;\nmod dns;\npub use config::Config;\n"),
        // A glob re-export: `super::MAX` in zone.rs is codes.rs's.
        (
            "dns/mod.rs",
            "mod codes;\npub(crate) mod wire;\npub(crate) mod zone;\npub(crate) use codes::*;\n",
        ),
        ("dns/codes.rs", "pub const MAX: usize = 255;\n"),
        ("dns/wire.rs", "pub struct Query;\n"),
        (
            "dns/zone.rs",
            // A nested group; a comment, a string and the tests name config/ but are not code.
            "use crate::{dns::{wire::{self, Query}}};\n\
             pub struct Zone([u8; super::MAX]);\n\
             // crate::config::Config\n\
             fn f() -> &'static str { \"crate::config::Config\" }\n\
             #[cfg(test)]\n\
             mod tests { use crate::config::Config; }\n",
        ),
        (
            "config/mod.rs",
            // Table of contents: `mod`s and a re-export it does not use itself. The re-export
            // of `Server` is used below, so it is an edge; so is a path through a child.
            "mod error;\nmod server;\n\
             pub use error::ConfigError;\n\
             pub(crate) use self::server::Server;\n\
             pub struct Config { server: Server, listen: server::Listen }\n",
        ),
        (
            "config/error.rs",
            "pub struct ConfigError;\nfn q() -> super::super::dns::wire::Query { todo!() }\n",
        ),
        (
            "config/server.rs",
            // `super::ConfigError` is re-exported by config/mod.rs: the edge is to error.rs.
            "use super::ConfigError;\npub struct Server;\npub struct Listen;\n\
             fn zone() -> crate::dns::zone::Zone { todo!() }\n",
        ),
    ]);
    assert_eq!(
        edges_of(src.path()),
        [
            "config/error.rs -> dns/wire.rs",
            "config/mod.rs -> config/server.rs",
            "config/server.rs -> config/error.rs",
            "config/server.rs -> dns/zone.rs",
            "dns/zone.rs -> dns/codes.rs",
            "dns/zone.rs -> dns/wire.rs",
        ]
    );
    assert!(file_circles(src.path()).is_empty());
}

#[test]
fn a_circle_between_files_is_found_with_its_edges() {
    let src = fixture(&[
        ("lib.rs", "mod config;\nmod resolve;\n"),
        // mod.rs calls a table while the table reports through mod.rs's error.
        (
            "config/mod.rs",
            "mod server;\nuse server::RawServer;\npub struct ConfigError;\n",
        ),
        (
            "config/server.rs",
            "use super::ConfigError;\npub struct RawServer;\n",
        ),
        // Three files round a longer circle, and one outside it.
        (
            "resolve/mod.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
        ),
        ("resolve/a.rs", "use super::b::B;\npub struct A;\n"),
        ("resolve/b.rs", "pub struct B(crate::resolve::c::C);\n"),
        ("resolve/c.rs", "pub struct C(super::a::A, super::d::D);\n"),
        ("resolve/d.rs", "pub struct D;\n"),
    ]);
    let found = file_circles(src.path());
    assert_eq!(
        found,
        [
            (
                vec!["config/mod.rs".into(), "config/server.rs".into()],
                vec![
                    "  config/mod.rs -> config/server.rs (server::RawServer)".into(),
                    "  config/server.rs -> config/mod.rs (super::ConfigError)".into(),
                ]
            ),
            (
                vec![
                    "resolve/a.rs".into(),
                    "resolve/b.rs".into(),
                    "resolve/c.rs".into()
                ],
                vec![
                    "  resolve/a.rs -> resolve/b.rs (super::b::B)".into(),
                    "  resolve/b.rs -> resolve/c.rs (crate::resolve::c::C)".into(),
                    "  resolve/c.rs -> resolve/a.rs (super::a::A)".into(),
                ]
            ),
        ]
    );
}
