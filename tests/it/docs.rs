//! The documents, the man pages and the completions are made from the same source as the
//! program, and from each other: these tests keep them so. The key and rule tables of
//! docs/ are made from `src/config/reference.rs`; the man pages quote the README and the
//! docs/ pages by heading.

use std::path::{Path, PathBuf};
use std::process::Command;

use splitdns::Config;
use splitdns::config::reference::{KEYS, RULES, keys_markdown, rules_markdown};
use splitdns::config::{DEFAULT_INCLUDE_DIR, DEFAULT_PATH};
use splitdns::docs::{self, KEYS_END, PAGES, README};

use crate::support::daemon::BIN;
use crate::support::prereq;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The README and every docs/ page, as (path, text read now).
fn documents() -> Vec<(PathBuf, String)> {
    let paths = std::iter::once(Path::new(ROOT).join(README.file)).chain(
        PAGES
            .iter()
            .map(|p| Path::new(ROOT).join("docs").join(p.file)),
    );
    paths
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, text)
        })
        .collect()
}

/// Where the text between the line starting with `begin` and the line `end` lies.
fn between(text: &str, file: &str, begin: &str, end: &str) -> (usize, usize) {
    let start = text
        .find(begin)
        .unwrap_or_else(|| panic!("{file}: no {begin:?} line"));
    let start = start + text[start..].find('\n').unwrap() + 1;
    let stop = start
        + text[start..]
            .find(end)
            .unwrap_or_else(|| panic!("{file}: no {end:?}"));
    (start, stop)
}

/// The key table of docs/configuration.md and the rule table of docs/rules.md are exactly
/// what `src/config/reference.rs` makes, the source splitdns.toml(5) is made from too, with
/// each link to a heading on another page naming that page. With SPLITDNS_BLESS=1 the
/// pages are rewritten.
#[test]
fn docs_tables_are_made_from_the_config_reference() {
    let page = |file| docs::page(file).unwrap();
    let tables = [
        (
            "configuration.md",
            "<!-- keys: ",
            KEYS_END,
            docs::relink(&keys_markdown(), page("configuration.md")),
        ),
        (
            "rules.md",
            "<!-- rules: ",
            "<!-- end of rules -->",
            docs::relink(&rules_markdown(), page("rules.md")),
        ),
    ];
    let mut stale = Vec::new();
    for (file, begin, end, made) in tables {
        let path = Path::new(ROOT).join("docs").join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        let (start, stop) = between(&text, file, begin, end);
        if text[start..stop] == made {
            continue;
        }
        stale.push(file);
        if std::env::var_os("SPLITDNS_BLESS").is_some() {
            text.replace_range(start..stop, &made);
            std::fs::write(&path, text).unwrap();
        }
    }
    assert!(
        stale.is_empty() || std::env::var_os("SPLITDNS_BLESS").is_some(),
        "the tables of docs/{stale:?} differ from src/config/reference.rs; \
         SPLITDNS_BLESS=1 cargo test --test it docs rewrites them"
    );
}

/// Every relative link in the README and the docs/ pages leads to a file that exists and,
/// with `#anchor`, to a heading of that file; a section that moves takes its links along.
#[test]
fn links_between_the_documents_lead_somewhere() {
    let mut broken = Vec::new();
    for (path, text) in documents() {
        for target in docs::links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let dest = match file {
                "" => path.clone(),
                file => path.parent().unwrap().join(file),
            };
            let found = match std::fs::read_to_string(&dest) {
                _ if anchor.is_empty() => dest.exists(),
                Ok(dest_text) => docs::anchors(&dest_text).iter().any(|a| a == anchor),
                Err(_) => false,
            };
            if !found {
                broken.push(format!("{}: {target}", path.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that lead nowhere:\n{}",
        broken.join("\n")
    );
}

/// docs/ holds exactly the pages the man pages can quote, and the README links each.
#[test]
fn the_readme_links_every_docs_page() {
    let mut on_disk: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = PAGES.iter().map(|p| p.file.to_string()).collect();
    known.sort();
    assert_eq!(on_disk, known, "docs/*.md and splitdns::docs::PAGES");
    let readme = &documents()[0].1;
    let linked = docs::links(readme);
    for page in PAGES {
        let target = format!("docs/{}", page.file);
        assert!(
            linked.contains(&target.as_str()),
            "the README does not link {target}"
        );
    }
}

/// The README's first screen says what splitdns is and gives exactly two set-up commands:
/// one runs splitdns on its built-in default, one runs every test. The reference lives in
/// docs/, so the README stays a front door.
#[test]
fn the_readme_opens_with_the_two_commands() {
    let readme = &documents()[0].1;
    let first = readme.find("```").unwrap();
    assert!(
        readme[..first].lines().count() < 15,
        "the commands are not on the first screen"
    );
    let block = &readme[first..];
    let block = &block[block.find('\n').unwrap() + 1..];
    let block = &block[..block.find("```").unwrap()];
    assert_eq!(block, "cargo run --release\ncargo test --all-targets\n");
    let lines = readme.lines().count();
    assert!(
        lines < 160,
        "the README has {lines} lines: reference belongs in docs/"
    );
}

fn generate(dir: &Path) -> String {
    let out = Command::new(BIN).arg("generate").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `.SH` titles of a roff page, in order.
fn sections(roff: &str) -> Vec<String> {
    roff.lines()
        .filter_map(|line| line.strip_prefix(".SH "))
        .map(|title| title.trim_matches('"').to_string())
        .collect()
}

/// The roff text of the section titled `title`.
fn section<'a>(roff: &'a str, title: &str) -> &'a str {
    let heading = if title.contains(' ') {
        format!(".SH \"{title}\"\n")
    } else {
        format!(".SH {title}\n")
    };
    let start = roff.find(&heading).unwrap_or_else(|| panic!("no {title}")) + heading.len();
    let end = roff[start..]
        .find("\n.SH ")
        .map_or(roff.len(), |e| start + e);
    &roff[start..end]
}

/// splitdns(8) has what dnsmasq(8) has, in man-pages(7) order: what splitdns does, its
/// options and commands, signals, exit status, environment, files, the Consul + Docker
/// set-up as the example, and where to read on. Its FILES names the built-in default as
/// the program has it.
#[test]
fn splitdns_8_has_the_sections_an_operator_looks_for() {
    let dir = tempfile::TempDir::new().unwrap();
    generate(dir.path());
    let page = std::fs::read_to_string(dir.path().join("man/splitdns.8")).unwrap();
    let want = [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "SIGNALS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "VERSION",
        "SEE ALSO",
    ];
    assert_eq!(sections(&page), want);
    let page = page.replace("\\-", "-");
    let files = section(&page, "FILES");
    for path in [DEFAULT_PATH, DEFAULT_INCLUDE_DIR] {
        assert!(files.contains(path), "FILES does not name {path}");
    }
    for listen in Config::builtin().listen {
        let listen = listen.to_string();
        assert!(files.contains(&listen), "FILES does not name {listen}");
    }
    for signal in ["SIGHUP", "SIGTERM", "SIGINT", "SIGUSR1"] {
        assert!(section(&page, "SIGNALS").contains(signal), "{signal}");
    }
    for variable in ["RUST_LOG", "JOURNAL_STREAM", "NOTIFY_SOCKET"] {
        assert!(
            section(&page, "ENVIRONMENT").contains(variable),
            "{variable}"
        );
    }
    assert!(section(&page, "EXAMPLES").contains("docker0:53"));
}

/// splitdns(8), one page per subcommand, and splitdns.toml(5) naming every key and rule
/// form; no Markdown mark is left in them, and each renders without warnings (groff -ww,
/// as `man` would) where groff is installed.
#[test]
fn man_pages_cover_every_command_and_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let listed = generate(dir.path());
    let man = dir.path().join("man");
    for page in [
        "splitdns.8",
        "splitdns-run.8",
        "splitdns-check.8",
        "splitdns-import-dnsmasq.8",
        "splitdns-control.8",
    ] {
        assert!(listed.contains(page), "{page} not in {listed}");
    }
    assert!(!listed.contains("splitdns-generate"), "{listed}");
    let toml5 = std::fs::read_to_string(man.join("splitdns.toml.5")).unwrap();
    // roff escapes `-` as `\-`.
    let toml5 = toml5.replace("\\-", "-");
    assert_eq!(
        sections(&toml5),
        [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "KEYS",
            "RULES",
            "DROP-IN FILES",
            "FILES",
            "SEE ALSO"
        ]
    );
    for key in KEYS {
        assert!(
            toml5.contains(&format!("\\fB{}\\fR", key.key)),
            "{} missing",
            key.name()
        );
        if !key.table.is_empty() {
            assert!(
                toml5.contains(&format!(".SS {}", key.table)),
                "{}",
                key.table
            );
        }
    }
    for rule in RULES {
        let form = splitdns::config::reference::plain(rule.form);
        assert!(toml5.contains(&form), "{form} missing");
    }
    for page in std::fs::read_dir(&man).unwrap() {
        let page = page.unwrap().path();
        let text = std::fs::read_to_string(&page).unwrap();
        // OPTIONS and SUBCOMMANDS are clap's help texts, written for `--help`.
        let quoted: String = text
            .split("\n.SH ")
            .filter(|s| !s.starts_with("OPTIONS") && !s.starts_with("SUBCOMMANDS"))
            .collect();
        for mark in ["`", "](", "**", "<!--"] {
            assert!(!quoted.contains(mark), "{}: {mark:?} left", page.display());
        }
    }
    if prereq::skip(
        "man_pages_cover_every_command_and_key",
        "groff",
        prereq::no_program("groff"),
    ) {
        return;
    }
    for page in std::fs::read_dir(&man).unwrap() {
        let page = page.unwrap().path();
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
    }
}

/// Completions for bash, zsh and fish offer the subcommands, and not the hidden one.
#[test]
fn completions_offer_the_subcommands() {
    let dir = tempfile::TempDir::new().unwrap();
    generate(dir.path());
    for file in ["splitdns.bash", "_splitdns", "splitdns.fish"] {
        let text = std::fs::read_to_string(dir.path().join("completions").join(file)).unwrap();
        for word in ["check", "import-dnsmasq", "config", "log-level"] {
            assert!(text.contains(word), "{file}: no {word}");
        }
        assert!(
            !text.contains("generate"),
            "{file} offers the hidden command"
        );
    }
}
