//! The manual pages and shell completions, made from the clap definitions
//! ([`crate::cli`]) and the config reference ([`crate::config::reference`]),
//! so they cannot drift from the program. `splitdns generate DIR` writes them;
//! the Debian package ships what it wrote.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{Roff, bold, roman};

use crate::cli::Cli;
use crate::config::reference::{KEYS, RULES, plain};
use crate::config::{Config, DEFAULT_PATH};

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
        page.text([roman(format!(
            "{}. Default: {}. {}",
            plain(key.kind),
            plain(key.default),
            plain(key.meaning)
        ))]);
    }
    page.extend([
        section("RULES"),
        para(
            "Each string in rules is one line in dnsmasq's syntax; lines copied from a \
             dnsmasq.conf work as they are. ZONE means the zone and every name below it; \
             several zones can share a line: /a/b/.",
        ),
    ]);
    for rule in RULES {
        page.extend([definition(&plain(rule.form), &plain(rule.meaning))]);
    }
    page.extend([
        section("FILES"),
        definition(DEFAULT_PATH, "The config splitdns reads without --config."),
        section("SEE ALSO"),
        para("splitdns(8), dnsmasq(8), systemd-resolved(8)"),
    ]);
    page.render()
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
