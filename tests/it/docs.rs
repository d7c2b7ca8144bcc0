//! The README's reference tables, the man pages and the completions are made from the same
//! source as the program: these tests keep them so.

use std::path::Path;
use std::process::Command;

use splitdns::config::reference::{KEYS, RULES, keys_markdown, rules_markdown};

use crate::support::daemon::BIN;
use crate::support::prereq;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// Where the text between the line starting with `begin` and the line `end` lies.
fn between(text: &str, begin: &str, end: &str) -> (usize, usize) {
    let start = text
        .find(begin)
        .unwrap_or_else(|| panic!("README: no {begin:?} line"));
    let start = start + text[start..].find('\n').unwrap() + 1;
    let stop = start
        + text[start..]
            .find(end)
            .unwrap_or_else(|| panic!("README: no {end:?}"));
    (start, stop)
}

/// The README's key and rule tables are exactly what `src/config/reference.rs` makes, the
/// source splitdns.toml(5) is made from too. With SPLITDNS_BLESS=1 the README is rewritten.
#[test]
fn readme_tables_are_made_from_the_config_reference() {
    let mut readme = std::fs::read_to_string(README).unwrap();
    let mut stale = Vec::new();
    for (begin, end, made) in [
        ("<!-- keys: ", "<!-- end of keys -->", keys_markdown()),
        ("<!-- rules: ", "<!-- end of rules -->", rules_markdown()),
    ] {
        let (start, stop) = between(&readme, begin, end);
        if readme[start..stop] != made {
            stale.push(begin);
            readme.replace_range(start..stop, &made);
        }
    }
    if stale.is_empty() {
        return;
    }
    if std::env::var_os("SPLITDNS_BLESS").is_some() {
        std::fs::write(README, readme).unwrap();
        return;
    }
    panic!(
        "README tables {stale:?} differ from src/config/reference.rs; \
         SPLITDNS_BLESS=1 cargo test --test it docs rewrites them"
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

/// splitdns(8), one page per subcommand, and splitdns.toml(5) naming every key and rule
/// form; each renders without warnings (groff -ww, as `man` would) where groff is installed.
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
    ] {
        assert!(listed.contains(page), "{page} not in {listed}");
    }
    assert!(!listed.contains("splitdns-generate"), "{listed}");
    let toml5 = std::fs::read_to_string(man.join("splitdns.toml.5")).unwrap();
    // roff escapes `-` as `\-`.
    let toml5 = toml5.replace("\\-", "-");
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
