//! Reading a dnsmasq config as dnsmasq does: every option line in order, with the
//! files that `conf-file=`, `servers-file=` and `conf-dir=` bring in where they stand.

use std::path::{Path, PathBuf};

use crate::config::dnsmasq::{split_option, strip_comment};

/// Includes nested deeper than this are a loop.
const MAX_DEPTH: usize = 16;

/// One option line, with where it was written.
pub(super) struct OptionLine {
    pub(super) at: String,
    pub(super) key: String,
    pub(super) value: Option<String>,
    /// With `--split`: the conf-dir file (index into [`Reader::sources`]) it belongs to.
    pub(super) fragment: Option<usize>,
}

impl OptionLine {
    /// The line as dnsmasq reads it: `key=value`, or the bare key.
    pub(super) fn text(&self) -> String {
        match &self.value {
            Some(value) => format!("{}={value}", self.key),
            None => self.key.clone(),
        }
    }
}

/// The option lines of a dnsmasq config and the files it includes, in the
/// order dnsmasq reads them, and what could not be read.
#[derive(Default)]
pub(super) struct Reader {
    pub(super) lines: Vec<OptionLine>,
    pub(super) warnings: Vec<String>,
    /// Whether each conf-dir file is a fragment of its own.
    split: bool,
    /// With `split`: the conf-dir files read, in order.
    pub(super) sources: Vec<PathBuf>,
    /// The conf-dir file being read, if any.
    current: Option<usize>,
}

impl Reader {
    /// With `split`, each conf-dir file's lines are marked as its own fragment.
    pub(super) fn new(split: bool) -> Self {
        Self {
            split,
            ..Self::default()
        }
    }

    pub(super) fn text(&mut self, file: &Path, text: &str, depth: usize) {
        for (i, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("{}:{}", file.display(), i + 1);
            let (key, value) = split_option(line);
            match (key, value) {
                ("conf-file", Some(path)) => self.file(&at, Path::new(path), depth),
                ("servers-file", Some(path)) => {
                    self.note_servers_file(&at);
                    self.file(&at, Path::new(path), depth);
                }
                ("conf-dir", Some(spec)) => self.conf_dir(&at, spec, depth),
                _ => self.lines.push(OptionLine {
                    at,
                    key: key.to_string(),
                    value: value.map(str::to_string),
                    fragment: self.current,
                }),
            }
        }
    }

    fn note_servers_file(&mut self, at: &str) {
        self.lines.push(OptionLine {
            at: at.to_string(),
            key: "servers-file".into(),
            value: None,
            fragment: self.current,
        });
    }

    fn file(&mut self, at: &str, path: &Path, depth: usize) {
        if depth >= MAX_DEPTH {
            self.warnings.push(format!(
                "{at}: {}: ignored (included more than {MAX_DEPTH} levels deep: a loop?)",
                path.display()
            ));
            return;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => self.text(path, &text, depth + 1),
            Err(e) => self.warnings.push(format!(
                "{at}: {}: ignored (cannot read it: {e})",
                path.display()
            )),
        }
    }

    /// `conf-dir=DIR[,*.conf...][,.bak...]`: files in alphabetical order, minus
    /// editor and hidden files; `*.ext` entries include only those, others exclude.
    pub(super) fn conf_dir(&mut self, at: &str, spec: &str, depth: usize) {
        let mut parts = spec.split(',').map(str::trim);
        let dir = parts.next().unwrap_or_default();
        let (include, exclude): (Vec<&str>, Vec<&str>) = parts
            .filter(|p| !p.is_empty())
            .partition(|p| p.starts_with('*'));
        let include: Vec<&str> = include.iter().map(|p| &p[1..]).collect();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.warnings
                    .push(format!("{at}: conf-dir: ignored (cannot read {dir}: {e})"));
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let editor = name.ends_with('~')
                    || name.starts_with('.')
                    || (name.starts_with('#') && name.ends_with('#'));
                !editor
                    && (include.is_empty() || include.iter().any(|s| name.ends_with(s)))
                    && !exclude.iter().any(|s| name.ends_with(s))
            })
            .collect();
        files.sort();
        for file in files {
            let outer = self.current;
            if self.split {
                self.current = Some(self.sources.len());
                self.sources.push(file.clone());
            }
            self.file(at, &file, depth);
            self.current = outer;
        }
    }
}
