//! The manual pages and shell completions. The pages are made from the clap
//! definitions ([`crate::cli`]), the config reference
//! ([`crate::config::reference`]) and sections of the README and the docs/
//! pages, quoted by their headings ([`markdown`]), so they cannot drift from
//! the program or from the documents. `splitdns generate DIR` writes them; the
//! Debian package ships what it wrote, and the documents beside them.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use roff::{Roff, bold, roman};

use crate::cli::Cli;
use crate::config::reference::KEYS;
use crate::config::{DEFAULT_INCLUDE_DIR, DEFAULT_PATH};

mod markdown;

pub use markdown::{anchors, links};
use markdown::{first_paragraph, section, title};

/// A document the man pages quote: its file name and its text, compiled in.
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

/// The README, whose first paragraph and Consul + Docker set-up splitdns(8) quotes.
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
        let parts = subcommand_parts(sub.get_name())?;
        pages.push(command_page(sub.clone(), parts)?);
    }
    let parts = main_parts(&command)?;
    pages.push(command_page(command, parts)?);
    pages.push(("splitdns.toml.5".to_string(), config_page()?));
    Ok(pages)
}

/// What a command's page has besides clap's NAME, SYNOPSIS, OPTIONS,
/// SUBCOMMANDS and VERSION: a DESCRIPTION (clap's one line when `None`), the
/// sections after the subcommands, and SEE ALSO.
struct Parts {
    description: Option<Roff>,
    sections: Vec<(&'static str, Roff)>,
    see_also: Roff,
}

/// splitdns(8): what dnsmasq(8) has. It describes what splitdns does, then
/// its signals, exit status, environment and files, and the Consul + Docker
/// set-up as the example.
fn main_parts(command: &clap::Command) -> io::Result<Parts> {
    let mut description = markdown::to_roff(first_paragraph(README.text), &suffix(&README));
    description.extend([quote("running.md", "Commands")?]);
    for heading in ["Routing", "Forwarding", "Cache", "When upstreams fail"] {
        description.extend([subsection(heading), quote("behaviour.md", heading)?]);
    }
    description.extend([subsection("Reloading"), quote("running.md", "Reloading")?]);
    let example = "Pointing the host and Docker at it";
    let sections = vec![
        ("SIGNALS", quote("running.md", "Signals")?),
        ("EXIT STATUS", quote("running.md", "Exit status")?),
        ("ENVIRONMENT", quote("running.md", "Environment")?),
        ("FILES", quote("running.md", "Files")?),
        ("EXAMPLES", quote("README.md", example)?),
    ];
    Ok(Parts {
        description: Some(description),
        sections,
        see_also: main_see_also(command),
    })
}

/// The other pages, the programs splitdns stands in for or beside, and the documents.
fn main_see_also(command: &clap::Command) -> Roff {
    let mut see_also: Vec<String> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("splitdns-{}(8)", s.get_name()))
        .collect();
    see_also.extend(
        [
            "splitdns.toml(5)",
            "dnsmasq(8)",
            "resolv.conf(5)",
            "systemd.service(5)",
            "systemd-resolved(8)",
        ]
        .map(String::from),
    );
    let mut roff = para(&see_also.join(", "));
    roff.extend([documents()]);
    roff
}

/// A subcommand's page quotes the document that tells of it in full.
fn subcommand_parts(name: &str) -> io::Result<Parts> {
    let (description, sections) = match name {
        "run" => (None, vec![("SIGNALS", quote("running.md", "Signals")?)]),
        "check" => (Some(quote("running.md", "`splitdns check`")?), vec![]),
        "control" => (Some(quote("running.md", "`splitdns control`")?), vec![]),
        "import-dnsmasq" => (
            Some(quote("migrating.md", "Importing a dnsmasq config")?),
            vec![
                (
                    "DNSMASQ OPTIONS",
                    quote("migrating.md", "Option by option")?,
                ),
                (
                    "DIFFERENCES FROM DNSMASQ",
                    quote("migrating.md", "Differences from dnsmasq")?,
                ),
            ],
        ),
        _ => (None, vec![]),
    };
    Ok(Parts {
        description,
        sections,
        see_also: para("splitdns(8), splitdns.toml(5)"),
    })
}

fn command_page(command: clap::Command, parts: Parts) -> io::Result<(String, String)> {
    let man = Man::new(command.clone())
        .section("8")
        .manual("System Manager's Manual")
        .source(format!("splitdns {}", env!("CARGO_PKG_VERSION")));
    let mut text = Roff::new().render();
    for render in [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
    ] {
        text.push_str(&clap_part(&man, render)?);
    }
    match parts.description {
        Some(description) => text.push_str(&rendered_section("DESCRIPTION", description)),
        None => text.push_str(&clap_part(&man, Man::render_description_section)?),
    }
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        text.push_str(&clap_part(&man, Man::render_options_section)?);
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        text.push_str(&clap_part(&man, Man::render_subcommands_section)?);
    }
    for (title, body) in parts.sections {
        text.push_str(&rendered_section(title, body));
    }
    if command
        .get_version()
        .or(command.get_long_version())
        .is_some()
    {
        text.push_str(&clap_part(&man, Man::render_version_section)?);
    }
    text.push_str(&rendered_section("SEE ALSO", parts.see_also));
    Ok((man.get_filename(), text))
}

/// One section as clap_mangen renders it, without the preamble every render
/// repeats (the page starts with it once).
fn clap_part(
    man: &Man,
    render: fn(&Man, &mut dyn io::Write) -> io::Result<()>,
) -> io::Result<String> {
    let mut out = Vec::new();
    render(man, &mut out)?;
    let text = String::from_utf8(out).expect("clap_mangen writes UTF-8");
    Ok(without_preamble(text))
}

/// `.SH TITLE` and the body, apostrophes kept upright as in the rest of the page.
fn rendered_section(title: &str, body: Roff) -> String {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    roff.extend([body]);
    without_preamble(roff.render())
}

fn without_preamble(text: String) -> String {
    let preamble = Roff::new().render();
    match text.strip_prefix(&preamble) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// splitdns.toml(5): the file as docs/configuration.md describes it, every
/// table and key from [`KEYS`], and the rule lines and drop-in files.
fn config_page() -> io::Result<String> {
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
        section_title("NAME"),
        para("splitdns.toml - the splitdns configuration file"),
        section_title("SYNOPSIS"),
        para(DEFAULT_PATH),
        section_title("DESCRIPTION"),
        quote("configuration.md", "The config file")?,
        section_title("KEYS"),
        keys_notes()?,
        keys(),
        section_title("RULES"),
        quote("rules.md", "Rules")?,
        section_title("DROP-IN FILES"),
        quote("configuration.md", "Drop-in files")?,
        section_title("FILES"),
        definition(DEFAULT_PATH, "The config splitdns reads without --config."),
        definition(
            &format!("{DEFAULT_INCLUDE_DIR}/"),
            "Drop-in files, which the packaged config includes.",
        ),
        section_title("SEE ALSO"),
        para("splitdns(8), dnsmasq(8), systemd-resolved(8)"),
        documents(),
    ]);
    Ok(page.render())
}

/// Every key from [`KEYS`], one subsection per table.
fn keys() -> Roff {
    let mut roff = Roff::new();
    let mut table = None;
    let configuration = page("configuration.md").expect("docs/configuration.md is compiled in");
    let links = suffix(configuration);
    for key in KEYS {
        if table != Some(key.table) {
            table = Some(key.table);
            let title = if key.table.is_empty() {
                "Top level"
            } else {
                key.table
            };
            roff.control("SS", [title]);
        }
        roff.control("TP", []).text([bold(key.key)]);
        let text = format!("{}. Default: {}. {}", key.kind, key.default, key.meaning);
        roff.text(markdown::inlines(&text, &links, markdown::Font::Roman));
    }
    roff
}

/// What docs/configuration.md says below its key table, of all tables.
fn keys_notes() -> io::Result<Roff> {
    let (page, keys) = quoted("configuration.md", "Keys")?;
    let (_, notes) = keys
        .split_once(KEYS_END)
        .ok_or_else(|| missing(page.file, KEYS_END))?;
    Ok(markdown::to_roff(notes, &suffix(page)))
}

/// The line after the generated key table.
pub const KEYS_END: &str = "<!-- end of keys -->";

/// The docs/ pages, for SEE ALSO, by their titles.
fn documents() -> Roff {
    let mut roff = para(&format!(
        "{DOC_DIR}/README.md, and the pages of {DOC_DIR}/docs/, which these manual pages \
         quote and name as docs/PAGE.md:"
    ));
    for page in PAGES {
        roff.extend([definition(&format!("docs/{}", page.file), title(page.text))]);
    }
    roff
}

/// The text under `heading` on `page` as man page text. The headings named in
/// this file must stay in the documents: every `generate` fails without them.
fn quote(file: &str, heading: &str) -> io::Result<Roff> {
    let (page, text) = quoted(file, heading)?;
    Ok(markdown::to_roff(text, &suffix(page)))
}

fn quoted(file: &str, heading: &str) -> io::Result<(&'static Page, &'static str)> {
    let page = page(file).ok_or_else(|| missing(file, "page"))?;
    let text = section(page.text, heading).ok_or_else(|| missing(file, heading))?;
    Ok((page, text))
}

fn missing(file: &str, what: &str) -> io::Error {
    io::Error::other(format!("{file}: no {what:?} to quote"))
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

fn section_title(title: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    roff
}

fn subsection(title: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("SS", [title]);
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
