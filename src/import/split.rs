//! `import-dnsmasq --split DIR`: a dnsmasq conf-dir layout kept as one fragment
//! per file. `/etc/dnsmasq.d/10-consul` becomes `DIR/10-consul.conf` holding the
//! file's rule lines as written (splitdns reads `*.conf` fragments as dnsmasq rule
//! lines, record lines included); its other options, which only the main config
//! may set, are carried there, and the fragment says so in a comment.
//!
//! dnsmasq reads a conf-dir's files "in alphabetical order of filename" where the
//! `conf-dir=` line stands (dnsmasq(8), --conf-dir); splitdns reads the main
//! file's rules, then an include directory's files by name. Where that changes the
//! order of one zone's lines (so the order of its servers), a warning says so.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::ImportError;
use super::translate::{RuleLine, Translation};
use crate::config::dnsmasq::Rule;

/// One fragment of a split import.
pub(super) struct Fragment {
    /// Its file name in the split directory, such as `10-consul.conf`.
    name: String,
    text: String,
}

/// The fragments of the conf-dir files in `sources`, in dnsmasq's reading order.
pub(super) fn fragments(
    out: &Translation,
    sources: &[PathBuf],
    dir: &Path,
) -> Result<Vec<Fragment>, ImportError> {
    let mut seen: HashMap<String, &Path> = HashMap::new();
    let mut fragments = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        let name = fragment_name(source);
        if let Some(first) = seen.insert(name.clone(), source) {
            return Err(ImportError::SameName {
                first: first.display().to_string(),
                second: source.display().to_string(),
                path: dir.join(name).display().to_string(),
            });
        }
        fragments.push(Fragment {
            text: render(out, i, source),
            name,
        });
    }
    Ok(fragments)
}

/// `10-consul` and `10-consul.conf` both become `10-consul.conf`.
fn fragment_name(source: &Path) -> String {
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}.conf", name.strip_suffix(".conf").unwrap_or(&name))
}

fn render(out: &Translation, index: usize, source: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# splitdns rules imported from dnsmasq conf-dir file {}.",
        source.display()
    );
    t.push_str("# One dnsmasq rule line per line, read through the main config's include.\n");
    for rule in out.rules.iter().filter(|r| r.fragment == Some(index)) {
        let _ = writeln!(t, "{}", rule.text);
    }
    let notes: Vec<&String> = out
        .fragment_notes
        .iter()
        .filter(|(i, _)| *i == index)
        .map(|(_, note)| note)
        .collect();
    if !notes.is_empty() {
        t.push_str("#\n# The file's other lines:\n");
        for note in notes {
            let _ = writeln!(t, "#   {note}");
        }
    }
    t
}

/// Zones (and the default upstreams) whose lines splitdns would read in another
/// order than dnsmasq did.
pub(super) fn order_warnings(out: &Translation, fragments: &[Fragment], dir: &Path) -> Vec<String> {
    let dnsmasq: Vec<&RuleLine> = out.rules.iter().collect();
    let mut by_name: Vec<(usize, &Fragment)> = fragments.iter().enumerate().collect();
    by_name.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let mut splitdns: Vec<&RuleLine> = out.rules.iter().filter(|r| r.fragment.is_none()).collect();
    for (i, _) in by_name {
        splitdns.extend(out.rules.iter().filter(|r| r.fragment == Some(i)));
    }
    let (before, after) = (per_zone(&dnsmasq), per_zone(&splitdns));
    after
        .into_iter()
        .filter(|(zone, lines)| before.get(zone) != Some(lines))
        .map(|(zone, lines)| {
            format!(
                "{}: {zone}: splitdns reads its lines in another order than dnsmasq did (the main config's rules before the fragments, fragments by name): {}",
                dir.display(),
                lines.join(", ")
            )
        })
        .collect()
}

/// Each zone's lines (`TEXT (FILE:LINE)`), in the order given.
fn per_zone(rules: &[&RuleLine]) -> BTreeMap<String, Vec<String>> {
    let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rule in rules {
        let keys = match Rule::parse(&rule.text) {
            Ok(Rule::DefaultServer(_)) => vec!["the default upstreams".to_string()],
            Ok(Rule::Zones { zones, .. } | Rule::Rewrite { zones, .. }) => {
                zones.iter().map(ToString::to_string).collect()
            }
            _ => Vec::new(),
        };
        for key in keys {
            let line = format!("{} ({})", rule.text, rule.at);
            zones.entry(key).or_default().push(line);
        }
    }
    zones
}

/// Writes the fragments into `dir` (created if need be), none if any exists
/// already. Returns a warning for each other fragment splitdns will read there.
pub(super) fn write(dir: &Path, fragments: &[Fragment]) -> Result<Vec<String>, ImportError> {
    for fragment in fragments {
        let path = dir.join(&fragment.name);
        if path.symlink_metadata().is_ok() {
            return Err(ImportError::Exists {
                path: path.display().to_string(),
            });
        }
    }
    let others = others(dir, fragments);
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |source| ImportError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    for fragment in fragments {
        let path = dir.join(&fragment.name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| file.write_all(fragment.text.as_bytes()))
            .map_err(failed(&path))?;
    }
    Ok(others)
}

/// Files already in `dir` that splitdns's include will read beside the fragments.
fn others(dir: &Path, fragments: &[Fragment]) -> Vec<String> {
    let mut others: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf" || e == "toml"))
        .filter(|p| {
            !fragments
                .iter()
                .any(|f| p.file_name() == Some(f.name.as_ref()))
        })
        .collect();
    others.sort();
    others
        .iter()
        .map(|p| {
            format!(
                "{}: not from this import, and splitdns will read it too (the main config includes its directory)",
                p.display()
            )
        })
        .collect()
}
