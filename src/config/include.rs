//! `include = ["/etc/splitdns/conf.d"]`: drop-in files.
//!
//! Each entry is a directory, a glob pattern or one file; relative entries are
//! taken from the main config file's directory. A directory gives its `*.toml`
//! files and its dnsmasq rule files in name order. Rule files are `*.conf` and
//! files without an extension, so the `10-consul` that Consul's guide has
//! dnsmasq users write into /etc/dnsmasq.d works as it is (dnsmasq's
//! `conf-dir` reads every file it is not told to skip). Dot files and editor
//! backups (`~`) are passed over quietly, as `conf-dir` does; any other file
//! (`.dpkg-old`, `.bak`, `.disabled`) is named in a warning, so it is not
//! lost without a word. A directory that does not exist is a warning, not an error:
//! the packaged config includes `/etc/splitdns/conf.d`, which a host may not
//! have, and a mistyped path should be seen but not stop DNS.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::ConfigError;
use super::text::ConfigText;

/// What one drop-in file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `rules`, `[[route]]` and `[[record]]`, in TOML.
    Toml,
    /// dnsmasq rule lines.
    Conf,
}

/// The files the include entries name, in the order they are read.
#[derive(Debug, Default)]
pub(super) struct Expanded {
    pub(super) files: Vec<(PathBuf, Kind)>,
    pub(super) warnings: Vec<String>,
}

fn kind_of(path: &Path) -> Option<Kind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Some(Kind::Toml),
        Some("conf") | None => Some(Kind::Conf),
        Some(_) => None,
    }
}

/// Dot files and editor backups, which nobody means to include.
fn hidden(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.starts_with('.') || name.ends_with('~') || name.starts_with('#')
}

impl ConfigText<'_> {
    /// The files the `include` entries name, relative to `base`.
    pub(super) fn expand_includes(
        &self,
        entries: &[Spanned<String>],
        base: &Path,
    ) -> Result<Expanded, ConfigError> {
        let mut out = Expanded::default();
        for entry in entries {
            let path = base.join(entry.get_ref());
            let found = if entry.get_ref().contains(['*', '?', '[']) {
                self.glob(entry, &path, &mut out)?
            } else if path.is_dir() {
                directory(&path, &mut out)?
            } else if path.is_file() {
                let kind = kind_of(&path).ok_or_else(|| {
                    self.invalid(
                        "include",
                        entry,
                        "expected a directory, a glob pattern, or a file ending in .toml or .conf (or without an extension)",
                    )
                })?;
                vec![(path.clone(), kind)]
            } else {
                out.warnings.push(format!(
                    "{}: include {:?}: no such file or directory, nothing read from it",
                    self.path,
                    path.display()
                ));
                Vec::new()
            };
            for file in found {
                if !out.files.contains(&file) {
                    out.files.push(file);
                }
            }
        }
        Ok(out)
    }

    fn glob(
        &self,
        entry: &Spanned<String>,
        pattern: &Path,
        out: &mut Expanded,
    ) -> Result<Vec<(PathBuf, Kind)>, ConfigError> {
        let text = pattern.to_string_lossy();
        let paths = glob::glob(&text).map_err(|e| {
            self.invalid(
                "include",
                entry,
                format!("not a valid glob pattern: {}", e.msg),
            )
        })?;
        let mut files = Vec::new();
        for path in paths.flatten() {
            if !path.is_file() || hidden(&path) {
                continue;
            }
            match kind_of(&path) {
                Some(kind) => files.push((path, kind)),
                None => out.warnings.push(skipped(&path)),
            }
        }
        if files.is_empty() {
            out.warnings.push(format!(
                "{}: include {text:?} matches no .toml or .conf file",
                self.path
            ));
        }
        Ok(files)
    }
}

fn skipped(path: &Path) -> String {
    format!(
        "{}: not read: only files ending in .toml or .conf, or without an extension, are included (rename it to read it)",
        path.display()
    )
}

/// A directory's `*.toml` and rule files, in name order.
fn directory(dir: &Path, out: &mut Expanded) -> Result<Vec<(PathBuf, Kind)>, ConfigError> {
    let unreadable = |source| ConfigError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        paths.push(entry.map_err(unreadable)?.path());
    }
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        if !path.is_file() || hidden(&path) {
            continue;
        }
        match kind_of(&path) {
            Some(kind) => files.push((path, kind)),
            None => out.warnings.push(skipped(&path)),
        }
    }
    Ok(files)
}
