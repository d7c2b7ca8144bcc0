//! `splitdns import-dnsmasq`: a dnsmasq.conf (with its conf-file, conf-dir and
//! servers-file includes) -> the equivalent splitdns TOML.
//!
//! Rule-shaped lines go through the same grammar as `rules` ([`Rule::parse`]),
//! so whatever is emitted there is what `check` accepts. dnsmasq's implicit
//! defaults are written out (hosts read from /etc/hosts, cache-size 150,
//! dns-forward-max 150, every interface on port 53), since splitdns's own
//! defaults differ; without `user=` the output runs as the `splitdns` user if
//! this host has it, else as dnsmasq's `nobody`, so it starts where it was
//! imported. Every option that cannot be carried over is a warning
//! `FILE:LINE: OPTION: ignored (why)`; options splitdns does not need become a
//! note in the output. Rule lines come out as they were written, in dnsmasq's
//! reading order, so repeated lines for one zone keep dnsmasq's meaning.
//!
//! With `--split DIR`, the rule lines of each conf-dir file go to a fragment
//! of their own in DIR ([`split`]) and the main config includes DIR.
//!
//! Why this file is long: it is one translation table, every dnsmasq option
//! the importer knows with what it becomes or why it is refused, then its
//! tests.

mod split;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::config::dnsmasq::{RULE_OPTIONS, Rule, split_option, strip_comment};
use crate::dns::zone::Zone;

/// dnsmasq's defaults, where splitdns's differ.
const DNSMASQ_CACHE_SIZE: u64 = 150;
const DNSMASQ_FORWARD_MAX: usize = 150;
const DNSMASQ_HOSTS: &str = "/etc/hosts";
/// Without `user=`: the user the package creates and the unit runs as, when
/// this host has it.
const SPLITDNS_USER: &str = "splitdns";
/// Without `user=` otherwise: dnsmasq's own default (dnsmasq(8), --user).
const DNSMASQ_USER: &str = "nobody";
/// Includes nested deeper than this are a loop.
const MAX_DEPTH: usize = 16;

/// Why a dnsmasq config could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read the dnsmasq config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: already exists, and --split writes new files only: move it away or give another directory"
    )]
    Exists { path: String },
    #[error(
        "{first} and {second} would both be written to {path}: rename one of them, or import without --split"
    )]
    SameName {
        first: String,
        second: String,
        path: String,
    },
    #[error("{path}: cannot write there for --split: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The TOML and what could not be carried over.
#[derive(Debug)]
pub struct Import {
    pub toml: String,
    /// `FILE:LINE: OPTION: ignored (why)`, in file order.
    pub warnings: Vec<String>,
}

/// One option line, with where it was written.
struct Line {
    at: String,
    key: String,
    value: Option<String>,
    /// With `--split`: the conf-dir file (index into [`Reader::sources`]) it belongs to.
    fragment: Option<usize>,
}

impl Line {
    /// The line as dnsmasq reads it: `key=value`, or the bare key.
    fn text(&self) -> String {
        match &self.value {
            Some(value) => format!("{}={value}", self.key),
            None => self.key.clone(),
        }
    }
}

/// Reads `path` (and `conf_dir` as if a `conf-dir=` line ended it) and translates
/// it. With `split`, each conf-dir file's rule lines are written to a fragment in
/// that directory (nothing is written if any of them cannot be), and the TOML
/// includes the directory. `default_user` is what the output runs as without `user=`
/// (see [`default_user`]).
pub fn import(
    path: &Path,
    conf_dir: Option<&Path>,
    split: Option<&Path>,
    default_user: &'static str,
) -> Result<Import, ImportError> {
    let mut reader = Reader {
        split: split.is_some(),
        ..Reader::default()
    };
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    reader.text(path, &text, 0);
    if let Some(dir) = conf_dir {
        reader.conf_dir(
            &format!("--conf-dir {}", dir.display()),
            &dir.display().to_string(),
            0,
        );
    }
    let mut out = Translation::new(&reader.lines, default_user);
    for line in &reader.lines {
        out.line(line);
    }
    let mut warnings = reader.warnings;
    warnings.extend(out.warnings.iter().cloned());
    let Some(dir) = split else {
        return Ok(Import {
            toml: out.render(path, None),
            warnings,
        });
    };
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let fragments = split::fragments(&out, &reader.sources, &dir)?;
    warnings.extend(split::order_warnings(&out, &fragments, &dir));
    warnings.extend(split::write(&dir, &fragments)?);
    Ok(Import {
        toml: out.render(path, Some(&dir)),
        warnings,
    })
}

/// The user the output runs as without `user=`: one this host has (`has_user` looks it
/// up), so that it starts here.
pub fn default_user(has_user: impl Fn(&str) -> bool) -> &'static str {
    if has_user(SPLITDNS_USER) {
        SPLITDNS_USER
    } else {
        DNSMASQ_USER
    }
}

#[derive(Default)]
struct Reader {
    lines: Vec<Line>,
    warnings: Vec<String>,
    /// Whether each conf-dir file is a fragment of its own.
    split: bool,
    /// With `split`: the conf-dir files read, in order.
    sources: Vec<PathBuf>,
    /// The conf-dir file being read, if any.
    current: Option<usize>,
}

impl Reader {
    fn text(&mut self, file: &Path, text: &str, depth: usize) {
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
                _ => self.lines.push(Line {
                    at,
                    key: key.to_string(),
                    value: value.map(str::to_string),
                    fragment: self.current,
                }),
            }
        }
    }

    fn note_servers_file(&mut self, at: &str) {
        self.lines.push(Line {
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
    fn conf_dir(&mut self, at: &str, spec: &str, depth: usize) {
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

/// A rule line as it will be written, with where it came from.
struct RuleLine {
    text: String,
    at: String,
    fragment: Option<usize>,
}

/// What the lines add up to.
#[derive(Default)]
struct Translation {
    /// In dnsmasq's reading order: repeated lines for one zone accumulate in
    /// splitdns as in dnsmasq, so they are written as they were.
    rules: Vec<RuleLine>,
    /// With `--split`: what became of a conf-dir file's other lines.
    fragment_notes: Vec<(usize, String)>,
    listen_addresses: Vec<String>,
    interfaces: Vec<String>,
    port: Option<u16>,
    no_hosts: bool,
    hosts_files: Vec<String>,
    no_resolv: bool,
    resolv_file: Option<String>,
    default_servers: bool,
    cache_size: Option<u64>,
    min_ttl: Option<u32>,
    max_ttl: Option<u32>,
    no_negcache: bool,
    local_ttl: Option<u32>,
    forward_max: Option<usize>,
    domain_needed: bool,
    bogus_priv: bool,
    filter_aaaa: bool,
    /// `stop-dns-rebind` anywhere in the config.
    rebind: bool,
    rebind_allow: Vec<Zone>,
    log_queries: bool,
    user: Option<String>,
    /// What `user` is without `user=` ([`default_user`]).
    default_user: &'static str,
    notes: Vec<String>,
    warnings: Vec<String>,
}

impl Translation {
    /// `stop-dns-rebind` is known before the lines are read: whether
    /// `rebind-localhost-ok` matters does not depend on which came first.
    fn new(lines: &[Line], default_user: &'static str) -> Self {
        Self {
            rebind: lines.iter().any(|l| l.key == "stop-dns-rebind"),
            default_user,
            ..Self::default()
        }
    }

    fn ignore(&mut self, line: &Line, why: &str) {
        self.warnings
            .push(format!("{}: {}: ignored ({why})", line.at, line.key));
    }

    fn note(&mut self, line: &Line, what: &str) {
        self.notes
            .push(format!("{} ({}): {what}", line.key, line.at));
    }

    fn number<T: std::str::FromStr>(&mut self, line: &Line) -> Option<T> {
        let parsed = line.value.as_deref().and_then(|v| v.parse().ok());
        if parsed.is_none() {
            self.ignore(line, "expected a number");
        }
        parsed
    }

    fn line(&mut self, line: &Line) {
        let warned = self.warnings.len();
        let rule = RULE_OPTIONS.contains(&line.key.as_str());
        if rule {
            self.rule(line);
        } else {
            self.option(line);
        }
        let Some(fragment) = line.fragment else {
            return;
        };
        let outcome = if self.warnings.len() > warned {
            "not carried over (see the import's warnings)"
        } else if rule {
            return;
        } else {
            "in the main config"
        };
        self.fragment_notes.push((
            fragment,
            format!("{} ({}): {outcome}", line.text(), line.at),
        ));
    }

    fn option(&mut self, line: &Line) {
        let key = line.key.as_str();
        let value = line.value.as_deref().unwrap_or_default();
        match key {
            "listen-address" => self
                .listen_addresses
                .extend(value.split(',').map(|a| a.trim().to_string())),
            "interface" => {
                for name in value.split(',').map(str::trim) {
                    if name.contains('*') {
                        self.ignore(
                            line,
                            "interface wildcards are not supported; name each interface",
                        );
                    } else {
                        self.interfaces.push(name.to_string());
                    }
                }
            }
            "port" => match self.number::<u16>(line) {
                Some(0) => self.ignore(line, "port=0 turns DNS off, and splitdns is only DNS"),
                port => self.port = port.or(self.port),
            },
            "no-resolv" => self.no_resolv = true,
            "resolv-file" if self.resolv_file.is_none() => self.resolv_file = Some(value.into()),
            "resolv-file" => self.ignore(line, "splitdns reads one resolv.conf; the first is kept"),
            "no-hosts" => self.no_hosts = true,
            "addn-hosts" | "hostsdir" => self.hosts_path(line, value),
            "cache-size" => self.cache_size = self.number(line),
            "min-cache-ttl" => self.min_ttl = self.number(line),
            "max-cache-ttl" | "max-ttl" => {
                if let Some(ttl) = self.number::<u32>(line) {
                    self.max_ttl = Some(self.max_ttl.map_or(ttl, |t| t.min(ttl)));
                }
            }
            "no-negcache" => self.no_negcache = true,
            "local-ttl" => self.local_ttl = self.number(line),
            "dns-forward-max" => self.forward_max = self.number(line),
            "domain-needed" => self.domain_needed = true,
            "bogus-priv" => self.bogus_priv = true,
            "filter-AAAA" | "filter-aaaa" => self.filter_aaaa = true,
            "stop-dns-rebind" => {}
            "rebind-domain-ok" => self.rebind_ok(line, value),
            "rebind-localhost-ok" if self.rebind => self.ignore(
                line,
                "splitdns's rebind protection always removes 127.0.0.0/8 and ::1; list the zones that answer with them in rebind_allow",
            ),
            "rebind-localhost-ok" => {
                self.note(line, "not needed: there is no stop-dns-rebind")
            }
            "log-queries" => self.log_queries = true,
            "user" => self.user(line, value),
            "servers-file" => self.note(
                line,
                "its lines are copied into rules; edit them there and reload",
            ),
            _ => self.other(line),
        }
    }

    /// The line as written: `server=/z/a` then `server=/z/b` is one route with
    /// servers a then b in splitdns as in dnsmasq.
    fn rule(&mut self, line: &Line) {
        let text = line.text();
        match Rule::parse(&text) {
            Ok(rule) => {
                self.default_servers |= matches!(rule, Rule::DefaultServer(_));
                self.rules.push(RuleLine {
                    text,
                    at: line.at.clone(),
                    fragment: line.fragment,
                });
            }
            Err(why) => self.ignore(line, &why.to_string()),
        }
    }

    /// `rebind-domain-ok=lan` or `rebind-domain-ok=/a/b/` (dnsmasq(8): "either a
    /// single domain, or multiple domains surrounded by '/'").
    fn rebind_ok(&mut self, line: &Line, value: &str) {
        let names: Vec<&str> = match value.strip_prefix('/') {
            Some(rest) => rest.strip_suffix('/').unwrap_or(rest).split('/').collect(),
            None => vec![value],
        };
        let mut zones = Vec::new();
        for name in names {
            if name.is_empty() {
                return self.ignore(line, "expected a domain, as in rebind-domain-ok=/consul/");
            }
            match Zone::parse(name) {
                Ok(zone) => zones.push(zone),
                Err(why) => return self.ignore(line, &why),
            }
        }
        self.rebind_allow.extend(zones);
    }

    /// Kept as given when `check` will take it.
    fn user(&mut self, line: &Line, value: &str) {
        if accepts(&format!("[server]\nuser = {}\n", quote(value))) {
            self.user = Some(value.to_string());
        } else {
            let why = format!(
                "not a user name splitdns takes (letters, digits, '_', '.', '-', at most 32); the output runs as {}",
                quote(self.default_user)
            );
            self.ignore(line, &why);
        }
    }

    /// A hosts file is listed; a directory's files are listed as they are now.
    fn hosts_path(&mut self, line: &Line, value: &str) {
        let path = Path::new(value);
        if !path.is_dir() {
            self.hosts_files.push(value.to_string());
            return;
        }
        let mut files: Vec<String> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        files.sort();
        self.hosts_files.extend(files);
        self.ignore(
            line,
            "hosts_files takes files, not directories: the files in it now are listed, later ones are not read",
        );
    }

    /// Everything splitdns does not need, does differently, or cannot do.
    fn other(&mut self, line: &Line) {
        let key = line.key.as_str();
        let not_needed = match key {
            "bind-interfaces" | "bind-dynamic" => {
                Some("not needed: splitdns binds each listen address, never the wildcard")
            }
            "strict-order" => Some("not needed: splitdns always asks servers in order"),
            "local-service" => Some(
                "not needed: splitdns's default allow list is loopback plus the listened subnets",
            ),
            "no-poll" => Some("not needed: resolv_conf is read by splitdns itself"),
            "keep-in-foreground" | "no-daemon" | "pid-file" => {
                Some("not needed: splitdns runs in the foreground under systemd")
            }
            "log-facility" | "log-async" => {
                Some("splitdns logs to stderr (the journal under systemd)")
            }
            "group" => Some("splitdns takes the user's primary group"),
            _ => None,
        };
        if let Some(what) = not_needed {
            return self.note(line, what);
        }
        let why = match key {
            k if is_dhcp_tftp_ra(k) => {
                "DHCP, TFTP and router advertisements: splitdns serves DNS only"
            }
            "all-servers" => {
                "splitdns asks servers in order and moves on after a timeout, SERVFAIL or REFUSED"
            }
            "neg-ttl" => {
                "negative answers without an SOA are not cached; see [cache] max_negative_ttl"
            }
            "edns-packet-max" => "splitdns always advertises 1232 bytes (DNS flag day 2020)",
            "query-port" | "min-port" | "max-port" | "port-limit" => {
                "splitdns always uses random source ports"
            }
            "except-interface" | "no-dhcp-interface" => {
                "exclusions are not supported; list what to listen on"
            }
            k if k.starts_with("dnssec") || k == "trust-anchor" || k == "proxy-dnssec" => {
                "splitdns does not validate DNSSEC; DO, CD and AD pass through"
            }
            "expand-hosts" | "domain" => {
                "local domain suffixes are not supported; name hosts in full"
            }
            "clear-on-reload" => "a reload keeps the cache of unchanged routes",
            _ => "not supported by splitdns",
        };
        self.ignore(line, why);
    }

    /// The main config; with `split`, it includes that directory and holds only
    /// the rules read outside conf-dir files.
    fn render(&self, origin: &Path, split: Option<&Path>) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# splitdns config imported from dnsmasq config {}.",
            origin.display()
        );
        let _ = writeln!(t, "# Check it with `splitdns check --config FILE`.");
        if !self.notes.is_empty() {
            let _ = writeln!(t, "#\n# dnsmasq options with nothing to carry over:");
            for note in &self.notes {
                let _ = writeln!(t, "#   {note}");
            }
        }
        t.push('\n');
        if let Some(dir) = split {
            t.push_str("# The rules of each dnsmasq conf-dir file, one fragment per file.\n");
            let _ = writeln!(t, "include = [{}]", quote(&dir.display().to_string()));
        }
        self.render_rules(&mut t, split.is_some());
        self.render_server(&mut t);
        self.render_upstream(&mut t);
        self.render_cache(&mut t);
        self.render_local(&mut t);
        self.render_log(&mut t);
        t
    }

    fn render_rules(&self, t: &mut String, split: bool) {
        let rules: Vec<&RuleLine> = self
            .rules
            .iter()
            .filter(|r| !split || r.fragment.is_none())
            .collect();
        if rules.is_empty() {
            t.push_str("rules = []\n");
            return;
        }
        t.push_str("rules = [\n");
        for rule in rules {
            let _ = writeln!(t, "    {},  # {}", quote(&rule.text), rule.at);
        }
        t.push_str("]\n");
    }

    fn render_server(&self, t: &mut String) {
        let port = self.port.unwrap_or(53);
        let mut listen: Vec<String> = Vec::new();
        for addr in &self.listen_addresses {
            listen.push(match addr.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
                _ => format!("{addr}:{port}"),
            });
        }
        if !self.interfaces.is_empty() && !self.interfaces.iter().any(|i| i == "lo") {
            // interface= adds loopback implicitly (dnsmasq(8), --interface).
            let loopback = format!("127.0.0.1:{port}");
            if !listen.contains(&loopback) {
                listen.push(loopback);
            }
        }
        listen.extend(self.interfaces.iter().map(|i| format!("{i}:{port}")));
        t.push_str("\n[server]\n");
        if listen.is_empty() {
            t.push_str(
                "# dnsmasq's default: every interface; the default allow list keeps it to\n",
            );
            t.push_str("# loopback and the local subnets, like dnsmasq's local-service.\n");
            let _ = writeln!(t, "listen = [\"0.0.0.0:{port}\", \"[::]:{port}\"]");
        } else {
            let _ = writeln!(t, "listen = [{}]", list(&listen));
        }
        self.render_rebind(t);
        self.render_default_user(t);
        let user = self.user.as_deref().unwrap_or(self.default_user);
        let _ = writeln!(t, "user = {}", quote(user));
    }

    /// Without `user=`, why the user is the one written and how to change it.
    fn render_default_user(&self, t: &mut String) {
        if self.user.is_some() {
            return;
        }
        t.push_str("# dnsmasq ran as \"nobody\" without user=.\n");
        if self.default_user == SPLITDNS_USER {
            t.push_str("# splitdns runs as its own user, which this host has.\n");
            return;
        }
        t.push_str("# So does splitdns: this host has no \"splitdns\" user. To run as that\n");
        t.push_str("# user instead, create it (install the splitdns package, which does, or run\n");
        t.push_str(
            "# `useradd --system --no-create-home splitdns`) and set user = \"splitdns\".\n",
        );
    }

    /// Written out either way: dnsmasq screens nothing without `stop-dns-rebind`.
    fn render_rebind(&self, t: &mut String) {
        if self.rebind {
            t.push_str(
                "# stop-dns-rebind: private addresses are removed from the answers of the\n",
            );
            t.push_str("# default upstreams. Unlike dnsmasq, zones with servers of their own\n");
            t.push_str("# (server=/consul/...) are trusted without rebind-domain-ok.\n");
        } else {
            t.push_str("# dnsmasq without stop-dns-rebind: answers are not screened.\n");
        }
        let _ = writeln!(t, "rebind_protection = {}", self.rebind);
        if !self.rebind_allow.is_empty() {
            let zones: Vec<String> = self.rebind_allow.iter().map(ToString::to_string).collect();
            let _ = writeln!(t, "rebind_allow = [{}]", list(&zones));
        }
    }

    fn render_upstream(&self, t: &mut String) {
        t.push_str("\n[upstream]\n");
        match (self.no_resolv, self.default_servers) {
            (true, false) => {
                t.push_str(
                    "# no-resolv and no server=ADDR: names outside the rules have no upstream\n",
                );
                t.push_str("# (dnsmasq answered REFUSED, splitdns answers SERVFAIL).\n");
                t.push_str("resolv_conf = \"/dev/null\"\n");
            }
            (false, true) => {
                t.push_str(
                    "# dnsmasq also asked the resolv.conf servers; splitdns reads resolv_conf\n",
                );
                t.push_str("# only when no server=ADDR is given: list them in rules if needed.\n");
            }
            _ => {}
        }
        if let (false, Some(file)) = (self.no_resolv, &self.resolv_file) {
            let _ = writeln!(t, "resolv_conf = {}", quote(file));
        }
        let forward_max = self.forward_max.unwrap_or(DNSMASQ_FORWARD_MAX);
        let _ = writeln!(t, "max_inflight = {forward_max}");
        let _ = writeln!(t, "filter_aaaa = {}", self.filter_aaaa);
    }

    fn render_cache(&self, t: &mut String) {
        t.push_str("\n[cache]\n");
        if self.cache_size.is_none() {
            t.push_str("# dnsmasq's default; splitdns's own is 10000.\n");
        }
        let _ = writeln!(
            t,
            "size = {}",
            self.cache_size.unwrap_or(DNSMASQ_CACHE_SIZE)
        );
        if let Some(min) = self.min_ttl {
            let _ = writeln!(t, "min_ttl = {min}");
        }
        if let Some(max) = self.max_ttl {
            let _ = writeln!(t, "max_ttl = {max}");
        }
        if self.no_negcache {
            t.push_str("max_negative_ttl = 0\n");
        }
    }

    fn render_local(&self, t: &mut String) {
        t.push_str("\n[local]\n");
        let mut hosts: Vec<String> = Vec::new();
        if !self.no_hosts {
            hosts.push(DNSMASQ_HOSTS.into());
        }
        hosts.extend(self.hosts_files.iter().cloned());
        let _ = writeln!(t, "hosts_files = [{}]", list(&hosts));
        let _ = writeln!(t, "domain_needed = {}", self.domain_needed);
        let _ = writeln!(t, "bogus_priv = {}", self.bogus_priv);
        let _ = writeln!(t, "ttl = {}", self.local_ttl.unwrap_or(0));
    }

    fn render_log(&self, t: &mut String) {
        if self.log_queries {
            t.push_str("\n[log]\n# log-queries: one line per query, with the client's address.\n");
            t.push_str("queries = true\n");
        }
    }
}

fn is_dhcp_tftp_ra(key: &str) -> bool {
    [
        "dhcp",
        "tftp",
        "enable-tftp",
        "enable-ra",
        "ra-param",
        "pxe",
        "bootp",
        "quiet-dhcp",
        "log-dhcp",
    ]
    .iter()
    .any(|p| key.starts_with(p))
        || matches!(
            key,
            "leasefile-ro"
                | "read-ethers"
                | "no-ping"
                | "slaac"
                | "bridge-interface"
                | "shared-network"
        )
}

/// Whether the config parser accepts `snippet`, so that what is emitted passes `check`.
fn accepts(snippet: &str) -> bool {
    Config::from_toml(snippet, Path::new("probe")).is_ok()
}

fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| quote(i))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As on a host with the `splitdns` user.
    fn translate(text: &str) -> (String, Vec<String>) {
        translate_for(text, SPLITDNS_USER)
    }

    /// As on a host where [`default_user`] is `default_user`.
    fn translate_for(text: &str, default_user: &'static str) -> (String, Vec<String>) {
        let mut reader = Reader::default();
        reader.text(Path::new("dnsmasq.conf"), text, 0);
        let mut out = Translation::new(&reader.lines, default_user);
        for line in &reader.lines {
            out.line(line);
        }
        let mut warnings = reader.warnings;
        warnings.extend(out.warnings.iter().cloned());
        (out.render(Path::new("dnsmasq.conf"), None), warnings)
    }

    fn rules(toml: &str) -> Vec<String> {
        let table: toml::Table = toml::from_str(toml).unwrap();
        let rules = table["rules"].as_array().unwrap().iter();
        rules.map(|r| r.as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn an_empty_config_spells_out_dnsmasqs_defaults() {
        let (toml, warnings) = translate("");
        assert!(warnings.is_empty());
        let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
        assert_eq!(config.cache.size, 150);
        assert_eq!(config.upstream.max_inflight, 150);
        assert_eq!(config.local.hosts_files, [PathBuf::from("/etc/hosts")]);
        assert_eq!(config.listen.len(), 2, "{toml}");
    }

    /// dnsmasq's repeated `server=` lines for one zone accumulate in splitdns's
    /// `rules` as they do in dnsmasq, so the import writes them as they were.
    #[test]
    fn repeated_server_lines_stay_rules_in_their_order() {
        let lines = [
            "server=/consul/10.0.0.1#8600",
            "address=/blocked.consul/0.0.0.0",
            "server=/Consul/10.0.0.3#8600",
            "server=/consul/infra.local/10.0.0.2#8600",
        ];
        let (toml, warnings) = translate(&lines.join("\n"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(rules(&toml), lines);
        assert!(!toml.contains("[[route]]"), "{toml}");
    }

    /// dnsmasq(8), --rebind-domain-ok: "The argument may be either a single
    /// domain, or multiple domains surrounded by '/'".
    #[test]
    fn rebind_domain_ok_takes_both_forms_and_reports_a_bad_name() {
        let (toml, warnings) = translate(
            "rebind-domain-ok=lan\nrebind-domain-ok=/a.example/b.example/\nrebind-domain-ok=/x//\n",
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("dnsmasq.conf:3: rebind-domain-ok: ignored ("));
        let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
        let zones: Vec<String> = config
            .guard
            .rebind_allow
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(zones, ["lan.", "a.example.", "b.example."]);
        assert!(
            !config.guard.rebind_protection,
            "no stop-dns-rebind: {toml}"
        );
    }

    #[test]
    fn a_user_name_splitdns_cannot_take_is_reported_and_the_default_used() {
        for default in [SPLITDNS_USER, DNSMASQ_USER] {
            let (toml, warnings) = translate_for("user=no body\n", default);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].starts_with("dnsmasq.conf:1: user: ignored ("));
            assert!(
                warnings[0].ends_with(&format!("the output runs as \"{default}\")")),
                "{warnings:?}"
            );
            let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
            assert_eq!(config.user.as_deref(), Some(default));
        }
    }

    /// dnsmasq(8), --user: "Normally this user is "nobody"". Without `user=` the output
    /// names `splitdns` only where that user exists, else `nobody`, saying how to switch.
    #[test]
    fn without_user_the_output_runs_as_a_user_the_host_has() {
        let (own, _) = translate_for("", SPLITDNS_USER);
        let (nobody, _) = translate_for("", DNSMASQ_USER);
        let (named, _) = translate_for("user=dnsmasq\n", DNSMASQ_USER);

        let user = |toml: &str| Config::from_toml(toml, Path::new("out.toml")).unwrap().user;
        assert_eq!(user(&own).as_deref(), Some("splitdns"));
        assert_eq!(user(&nobody).as_deref(), Some("nobody"));
        assert_eq!(user(&named).as_deref(), Some("dnsmasq"));
        assert!(
            nobody.contains("useradd --system --no-create-home splitdns"),
            "{nobody}"
        );
        assert!(
            nobody
                .lines()
                .any(|l| l.starts_with('#') && l.contains("set user = \"splitdns\"")),
            "{nobody}"
        );
        assert!(!own.contains("useradd") && !named.contains("useradd"));
    }

    #[test]
    fn unsupported_options_warn_with_file_line_and_why() {
        let (_, warnings) = translate(
            "dhcp-range=192.168.0.50,192.168.0.150,12h\n\nall-servers\nserver=/x/1.2.3.4@eth0\n",
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].starts_with("dnsmasq.conf:1: dhcp-range: ignored (DHCP"),
            "{warnings:?}"
        );
        assert!(warnings[1].starts_with("dnsmasq.conf:3: all-servers: ignored ("));
        assert!(warnings[2].starts_with("dnsmasq.conf:4: server: ignored ("));
    }
}
