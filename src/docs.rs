//! The manual pages and shell completions, made from the clap definitions
//! ([`crate::cli`]) and the config reference ([`crate::config::reference`]),
//! so they cannot drift from the program. `splitdns generate DIR` writes them;
//! the Debian package ships what it wrote, and the documents beside them. The
//! README and the docs/ pages are listed here ([`PAGES`]), so that a link in
//! the config reference names the page that has its heading.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{Roff, bold, roman};

use crate::cli::Cli;
use crate::config::reference::{KEYS, RULES};
use crate::config::{Config, DEFAULT_PATH};

mod markdown;

use markdown::Font;
pub use markdown::{anchors, links};

/// A document: its file name and its text, compiled in.
#[derive(Debug)]
pub struct Page {
    pub file: &'static str,
    pub text: &'static str,
}

macro_rules! page {
    ($file:literal) => {
        Page {
            file: $file,
            text: include_str!(concat!("../docs/", $file)),
        }
    };
}

/// The README.
pub const README: Page = Page {
    file: "README.md",
    text: include_str!("../README.md"),
};

/// Every page of docs/, in the order the README lists them.
pub const PAGES: &[Page] = &[
    page!("running.md"),
    page!("configuration.md"),
    page!("rules.md"),
    page!("behaviour.md"),
    page!("encrypted-upstreams.md"),
    page!("observing.md"),
    page!("migrating.md"),
    page!("installing.md"),
    page!("testing.md"),
    page!("reliability.md"),
];

/// The README or the docs/ page named `file`.
pub fn page(file: &str) -> Option<&'static Page> {
    std::iter::once(&README)
        .chain(PAGES)
        .find(|page| page.file == file)
}

/// Where the package installs the README and, under `docs/`, the pages.
const DOC_DIR: &str = "/usr/share/doc/splitdns";

/// Writes `DIR/man/*.8`, `DIR/man/splitdns.toml.5` and
/// `DIR/completions/{splitdns.bash,_splitdns,splitdns.fish}`; returns the files written.
pub fn generate(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    for (name, text) in man_pages()? {
        let path = man.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for (shell, name) in [
        (Shell::Bash, "splitdns.bash"),
        (Shell::Zsh, "_splitdns"),
        (Shell::Fish, "splitdns.fish"),
    ] {
        let path = completions.join(name);
        let mut file = std::fs::File::create(&path)?;
        clap_complete::generate(shell, &mut visible_command(), "splitdns", &mut file);
        written.push(path);
    }
    Ok(written)
}

/// The command line without its hidden subcommands, which clap_complete would
/// otherwise offer.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    clap::Command::new("splitdns")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Every page as (file name, roff text): splitdns(8), one splitdns-COMMAND(8)
/// per visible subcommand, and splitdns.toml(5).
pub fn man_pages() -> io::Result<Vec<(String, String)>> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(command_page(sub.clone(), &[])?);
    }
    pages.push(command_page(command, &main_page_extra())?);
    pages.push(("splitdns.toml.5".to_string(), config_page()));
    Ok(pages)
}

fn command_page(command: clap::Command, extra: &[Roff]) -> io::Result<(String, String)> {
    let man = clap_mangen::Man::new(command)
        .section("8")
        .manual("System Manager's Manual")
        .source(format!("splitdns {}", env!("CARGO_PKG_VERSION")));
    let mut text = Vec::new();
    man.render(&mut text)?;
    let mut text = String::from_utf8(text).expect("clap_mangen writes UTF-8");
    let see_also = [section("SEE ALSO"), para("splitdns(8), splitdns.toml(5)")];
    for part in extra.iter().chain(&see_also) {
        text.push_str(&part.to_roff());
    }
    Ok((man.get_filename(), text))
}

fn main_page_extra() -> [Roff; 4] {
    let builtin: Vec<String> = Config::builtin()
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    [
        section("FILES"),
        definition(
            DEFAULT_PATH,
            &format!(
                "The config, read when --config is not given; without it, the built-in \
                 default: listening on {}, consul to 127.0.0.1:8600, names from /etc/hosts. \
                 See splitdns.toml(5).",
                builtin.join(" and ")
            ),
        ),
        section("SIGNALS"),
        para(
            "SIGHUP reloads the config (systemctl reload splitdns); a config that check would \
             refuse is refused and the running one keeps serving. SIGTERM and SIGINT stop, \
             giving queries in flight up to 5 seconds. SIGUSR1 logs the statistics.",
        ),
    ]
}

/// splitdns.toml(5): every table and key from [`KEYS`], every rule form from [`RULES`].
fn config_page() -> String {
    let configuration = page("configuration.md").expect("docs/configuration.md is compiled in");
    let rules = page("rules.md").expect("docs/rules.md is compiled in");
    let mut page = Roff::new();
    page.control(
        "TH",
        [
            "SPLITDNS.TOML",
            "5",
            "",
            &format!("splitdns {}", env!("CARGO_PKG_VERSION")),
            "File Formats Manual",
        ],
    );
    page.extend([
        section("NAME"),
        para("splitdns.toml - the splitdns configuration file"),
        section("SYNOPSIS"),
        para(DEFAULT_PATH),
        section("DESCRIPTION"),
        para(
            "A TOML file. Every key may be left out, and then takes its default. Unknown keys \
             are errors in every table; each mistake is reported on one line naming the file, \
             the line, the key and the value. splitdns check validates a file without binding \
             anything.",
        ),
        para(
            "Durations are strings such as \"2s\", \"500ms\" or \"1m 30s\". TTLs are whole \
             seconds. Server addresses are written IP, IP#PORT, IP:PORT or [V6]:PORT, and the \
             port is 53 when none is given. Host names are not accepted.",
        ),
        section("KEYS"),
    ]);
    let mut table = None;
    let links = suffix(configuration);
    for key in KEYS {
        if table != Some(key.table) {
            table = Some(key.table);
            let title = if key.table.is_empty() {
                "Top level"
            } else {
                key.table
            };
            page.control("SS", [title]);
        }
        page.control("TP", []);
        page.text([bold(key.key)]);
        let text = format!("{}. Default: {}. {}", key.kind, key.default, key.meaning);
        page.text(markdown::inlines(&text, &links, Font::Roman));
    }
    page.extend([
        section("RULES"),
        para(
            "Each string in rules is one line in dnsmasq's syntax; lines copied from a \
             dnsmasq.conf work as they are. ZONE means the zone and every name below it; \
             several zones can share a line: /a/b/.",
        ),
    ]);
    let links = suffix(rules);
    for rule in RULES {
        page.control("TP", []);
        page.text(markdown::inlines(rule.form, &links, Font::Bold));
        page.text(markdown::inlines(rule.meaning, &links, Font::Roman));
    }
    page.extend([
        section("FILES"),
        definition(DEFAULT_PATH, "The config splitdns reads without --config."),
        section("SEE ALSO"),
        para("splitdns(8), dnsmasq(8), systemd-resolved(8)"),
        para(&format!(
            "{DOC_DIR}/README.md, and the pages of {DOC_DIR}/docs/, which these manual pages \
             name as docs/PAGE.md."
        )),
    ]);
    page.render()
}

/// What a link on `here` adds after its text in a man page: where the reader
/// finds the target, unless the text names it already.
fn suffix(here: &'static Page) -> impl Fn(&str, &str) -> String {
    move |target: &str, shown: &str| {
        if target.contains("://") {
            return format!(" ({target})");
        }
        match place(target, here) {
            Some(place) if !shown.contains(place.trim_start_matches("docs/")) => {
                format!(" in {place}")
            }
            _ => String::new(),
        }
    }
}

/// `docs/PAGE.md` or `README.md` for a link to one of them (or to a heading on
/// one); `None` for a file of the source tree, which the link's text names.
fn place(target: &str, here: &'static Page) -> Option<String> {
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let page = if path.is_empty() {
        Some(here)
            .filter(|page| anchors(page.text).iter().any(|a| a == anchor))
            .or_else(|| page_with(anchor))?
    } else {
        page(path.rsplit('/').next()?)?
    };
    Some(match page.file {
        "README.md" => page.file.to_string(),
        file => format!("docs/{file}"),
    })
}

/// The docs/ page with a heading whose anchor is `anchor`.
pub fn page_with(anchor: &str) -> Option<&'static Page> {
    PAGES
        .iter()
        .find(|page| anchors(page.text).iter().any(|a| a == anchor))
}

/// `markdown`, written with `](#anchor)` links as if every heading were on one
/// page (the config reference's tables), as it stands on `here`: a link to a
/// heading of another docs/ page names that page, and the page alone when the
/// heading is its title.
pub fn relink(markdown: &str, here: &Page) -> String {
    let local = anchors(here.text);
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(at) = rest.find("](#") {
        let (before, link) = rest.split_at(at + 2);
        out.push_str(before);
        let end = link.find(')').unwrap_or(link.len());
        let anchor = &link[1..end];
        match page_with(anchor).filter(|_| !local.iter().any(|a| a == anchor)) {
            Some(page) if anchors(page.text).first().map(String::as_str) == Some(anchor) => {
                out.push_str(page.file)
            }
            Some(page) => out.push_str(&format!("{}#{anchor}", page.file)),
            None => out.push_str(&link[..end]),
        }
        rest = &link[end..];
    }
    out.push_str(rest);
    out
}

fn section(title: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    roff
}

fn para(text: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("PP", []).text([roman(text)]);
    roff
}

fn definition(term: &str, text: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("TP", [])
        .text([bold(term)])
        .text([roman(text)]);
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_a_man_page_say_which_document() {
        let links = suffix(page("configuration.md").unwrap());
        assert_eq!(links("#behaviour", "Interfaces"), " in docs/behaviour.md");
        assert_eq!(links("#drop-in-files", "x"), " in docs/configuration.md");
        assert_eq!(links("rules.md", "Rules"), " in docs/rules.md");
        assert_eq!(links("rules.md", "rules.md"), "");
        assert_eq!(links("../conf/splitdns.toml", "conf/splitdns.toml"), "");
        assert_eq!(
            links("../README.md#installing", "The README"),
            " in README.md"
        );
        assert_eq!(
            links("https://example.org/", "a"),
            " (https://example.org/)"
        );
    }

    #[test]
    fn relink_names_the_page_of_another_pages_heading() {
        let table = "(see [Drop-in files](#drop-in-files)), [Rules](#rules), \
                     [Interfaces](#behaviour), [x](#local-data), [y](#nowhere)";
        assert_eq!(
            relink(table, page("configuration.md").unwrap()),
            "(see [Drop-in files](#drop-in-files)), [Rules](rules.md), \
             [Interfaces](behaviour.md), [x](behaviour.md#local-data), [y](#nowhere)"
        );
    }
}
