//! TOML -> a validated [`Config`].
//!
//! Everything a user can get wrong in the file is caught here, before a socket is
//! opened, and reported as a [`ConfigError`] that names the file, the line, the key
//! and what to write instead. The rest of the program only sees typed values.
//!
//! Each table has a file of its own, its validated type beside its raw serde form
//! and its checks: `server.rs` (`[server]`: listen, allow, user, TCP limits, guard),
//! `upstream.rs`, `route.rs` (`[[route]]` and [`RouteAction`]), `cache.rs`,
//! `local.rs` (`[local]`, `[[record]]`), `observe.rs` (`[metrics]`, `[log]`) and
//! `control.rs`. Rule lines are `dnsmasq/` (what one line says) and `rules.rs`
//! (the lines of one zone folded into its route), drop-in files `include.rs`,
//! server entries `server_spec.rs`. Every table reports through the located error
//! ([`ConfigError`], `error.rs`) and the text it points into (`ConfigText`,
//! `text.rs`), which sit below the tables. This file keeps [`Config`], loading and
//! discovery, and the assembly of the tables into one [`Config`].

mod cache;
mod consul;
pub mod control;
pub mod dnsmasq;
pub mod dnssec;
mod error;
mod include;
pub mod local;
mod observe;
pub mod reference;
mod route;
mod rules;
mod server;
pub(crate) mod server_spec;
mod text;
pub(crate) mod trust;
mod upstream;

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use server_spec::ServerSpec;
use sha2::{Digest, Sha256};
use toml::Spanned;

pub use cache::CacheConfig;
use cache::RawCache;
pub use consul::ConsulConfig;
use consul::RawConsul;
pub use control::ControlConfig;
use control::RawControl;
use dnsmasq::{Rule, RuleAction, RuleError};
pub use dnssec::DnssecConfig;
use dnssec::{DnssecLine, RawDnssec};
pub use error::ConfigError;
pub use local::{LocalConfig, StaticRecord};
use local::{RawLocal, RawRecord};
pub use observe::{DEFAULT_HEALTH_WINDOW, LogConfig, LogFormat, MetricsConfig};
use observe::{RawLog, RawMetrics};
use route::RawRoute;
pub use route::{RouteAction, RouteConfig};
use server::RawServer;
pub use server::{GuardConfig, Listen, ListenError, TcpConfig, parse_listen};
use text::ConfigText;
use upstream::RawUpstream;
pub use upstream::{MAX_INFLIGHT, Strategy, UpstreamConfig};

/// Where splitdns looks for its config when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/splitdns/splitdns.toml";
/// The drop-in directory the packaged config includes, and the built-in
/// default too when it exists.
pub const DEFAULT_INCLUDE_DIR: &str = "/etc/splitdns/conf.d";

/// A validated configuration: every address parsed, every zone normalised,
/// every duration checked. Built by [`Config::from_toml`] or [`Config::builtin`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from, for logs and error messages.
    pub origin: String,
    /// The file it was read from, which a reload reads again; `None` for the
    /// built-in default and text parsed directly.
    pub source: Option<PathBuf>,
    /// `[server] user`: when started as root, run as this user once the
    /// listeners are open. `None`: stay who we are.
    pub user: Option<String>,
    pub listen: Vec<Listen>,
    /// `None`: loopback plus the subnets of the listened addresses' interfaces.
    pub allow: Option<Vec<IpNet>>,
    pub upstream: UpstreamConfig,
    /// Every zone route, from `rules` and `[[route]]`, in file order.
    pub routes: Vec<RouteConfig>,
    pub cache: CacheConfig,
    pub guard: GuardConfig,
    pub tcp: TcpConfig,
    /// `[server] threads`: how many threads answer UDP.
    pub threads: usize,
    /// `[metrics]`: `None` when the table is absent (no HTTP endpoint).
    pub metrics: Option<MetricsConfig>,
    pub log: LogConfig,
    /// `[local]`, `[[record]]` and the record rules.
    pub local: LocalConfig,
    /// `[control]`: the socket of `splitdns control`.
    pub control: ControlConfig,
    /// `[consul]`: `None` when the table is absent (no mirror).
    pub consul: Option<ConsulConfig>,
    /// `[dnssec]` and the DNSSEC rule lines.
    pub dnssec: DnssecConfig,
    /// The drop-in files read for `include`, in the order they were read.
    pub included: Vec<PathBuf>,
    /// SHA-256, in hex, of the bytes read: the config text, then each file in
    /// `included` in order. With no includes it is what `sha256sum` prints
    /// for the config file.
    pub hash: String,
    /// What the operator should hear about but is no reason to refuse the
    /// config: an include path that does not exist, a file that was not read.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    local: RawLocal,
    #[serde(default)]
    record: Vec<Spanned<RawRecord>>,
    metrics: Option<RawMetrics>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    control: RawControl,
    consul: Option<RawConsul>,
    #[serde(default)]
    dnssec: RawDnssec,
}

/// A drop-in `*.toml` file: only the tables that add routes and records.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFragment {
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    record: Vec<Spanned<RawRecord>>,
}

/// The keys a drop-in `*.toml` file may hold.
const FRAGMENT_KEYS: &[&str] = &["rules", "route", "record"];

impl Config {
    /// Reads and validates the file at `path`, and the drop-in files it includes.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::from_toml(&text, path)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates `text`; `origin` names the file in error messages,
    /// and relative `include` entries are taken from its directory.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let src = ConfigText {
            path: origin.display().to_string(),
            text,
            fragment: false,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: src.path.clone(),
            message: one_line(&e.to_string()),
        })?;
        let base = origin.parent().unwrap_or(Path::new(""));
        let expanded = src.expand_includes(&raw.include, base)?;
        let mut hash = Sha256::new();
        hash.update(text.as_bytes());
        let mut entries = Entries {
            encrypted: src.encrypted_defaults(&raw.upstream)?,
            ..Entries::default()
        };
        entries.default_servers = src.servers(
            "[upstream] servers",
            &raw.upstream.servers,
            None,
            &entries.encrypted,
        )?;
        src.add_entries(&raw.rules, &raw.route, &raw.record, &mut entries)?;
        let mut included = Vec::new();
        for (path, kind) in expanded.files {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            hash.update(text.as_bytes());
            let fragment = ConfigText {
                path: path.display().to_string(),
                text: &text,
                fragment: true,
            };
            match kind {
                include::Kind::Toml => fragment.add_toml_fragment(&mut entries)?,
                include::Kind::Conf => fragment.add_conf_lines(&mut entries)?,
            }
            included.push(path);
        }
        let mut config = src.validate(raw, entries)?;
        config.included = included;
        config.hash = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        config.warnings = expanded.warnings;
        Ok(config)
    }

    /// The built-in default: unprivileged, loopback only, resolv.conf upstreams,
    /// `consul` to a local agent on 127.0.0.1:8600, names from /etc/hosts.
    /// Includes nothing (see [`Config::builtin_default`]).
    pub fn builtin() -> Self {
        Self::from_toml(&builtin_text(None), Path::new("<built-in default>"))
            .expect("the built-in default config is valid")
    }

    /// The built-in default as `run` uses it: it also includes
    /// [`DEFAULT_INCLUDE_DIR`] when that directory exists, so it fails when a
    /// drop-in file there is not valid.
    pub fn builtin_default() -> Result<Self, ConfigError> {
        let include = Path::new(DEFAULT_INCLUDE_DIR)
            .is_dir()
            .then_some(DEFAULT_INCLUDE_DIR);
        Self::from_toml(&builtin_text(include), Path::new("<built-in default>"))
    }

    /// `--config PATH`, else [`DEFAULT_PATH`] when it exists, else the built-in default.
    pub fn discover(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(path) => Self::load(path),
            None if Path::new(DEFAULT_PATH).exists() => Self::load(Path::new(DEFAULT_PATH)),
            None => Self::builtin_default(),
        }
    }
}

/// The built-in default's text, including `include` when given.
/// Port 5380: unassigned by IANA and used by no DNS software we know of, where
/// 5353 is mDNS (avahi holds it on most desktops), 5355 LLMNR (systemd-resolved),
/// 5335 Unbound behind Pi-hole, 8053 and 8600 other resolvers and Consul.
fn builtin_text(include: Option<&str>) -> String {
    let include = include
        .map(|dir| format!("include = [{dir:?}]\n"))
        .unwrap_or_default();
    format!(
        "{include}rules = [\"server=/consul/127.0.0.1#8600\"]
[server]
listen = [\"127.0.0.1:5380\", \"[::1]:5380\"]
[local]
hosts_files = [\"/etc/hosts\"]
"
    )
}

/// The routes, rules and records of the main file and its drop-in files,
/// gathered before they are checked against each other.
#[derive(Default)]
struct Entries {
    default_servers: Vec<ServerSpec>,
    /// Zone rule lines, folded into routes once all are read.
    zone_rules: Vec<rules::Placed>,
    /// `[[route]]` tables.
    routes: Vec<RouteConfig>,
    records: Vec<StaticRecord>,
    /// `dnssec`, `trust-anchor=` and `dnssec-check-unsigned` lines.
    dnssec: Vec<DnssecLine>,
    /// `[upstream]`'s trust and bootstrap addresses for encrypted servers.
    encrypted: server_spec::Defaults,
}

impl ConfigText<'_> {
    /// Adds `rules`, `[[route]]` and `[[record]]` entries to `into`.
    fn add_entries(
        &self,
        rules: &[Spanned<String>],
        routes: &[Spanned<RawRoute>],
        records: &[Spanned<RawRecord>],
        into: &mut Entries,
    ) -> Result<(), ConfigError> {
        for (i, rule) in rules.iter().enumerate() {
            let at = self.place(format!("rules[{i}] (line {})", self.line_of(rule.span())));
            Rule::parse(rule.get_ref())
                .and_then(|parsed| into.add_rule(parsed, at))
                .map_err(|problem| self.invalid(&format!("rules[{i}]"), rule, problem))?;
        }
        for (i, route) in routes.iter().enumerate() {
            let route = self.route(i, route, &into.encrypted)?;
            into.routes.push(route);
        }
        for record in records {
            into.records.push(self.record(record)?);
        }
        Ok(())
    }

    /// A drop-in `*.toml` file: its `rules`, `[[route]]` and `[[record]]`.
    fn add_toml_fragment(&self, into: &mut Entries) -> Result<(), ConfigError> {
        let table: toml::Table = toml::from_str(self.text).map_err(|e| ConfigError::Syntax {
            path: self.path.clone(),
            message: one_line(&e.to_string()),
        })?;
        if let Some(key) = table.keys().find(|k| !FRAGMENT_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::FragmentKey {
                path: self.path.clone(),
                line: self.line_of_key(key),
                key: match table[key] {
                    toml::Value::Table(_) => format!("[{key}]"),
                    toml::Value::Array(_) if key == "include" => key.clone(),
                    toml::Value::Array(_) => format!("[[{key}]]"),
                    _ => key.clone(),
                },
            });
        }
        let raw: RawFragment = toml::from_str(self.text).map_err(|e| ConfigError::Syntax {
            path: self.path.clone(),
            message: one_line(&e.to_string()),
        })?;
        self.add_entries(&raw.rules, &raw.route, &raw.record, into)
    }

    /// The line that sets top-level `key`, for an error about it.
    fn line_of_key(&self, key: &str) -> usize {
        let sets = |line: &str| {
            let line = line.trim_start().trim_start_matches('[').trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(['=', ']', '.']))
        };
        self.text.lines().position(sets).map_or(1, |i| i + 1)
    }

    /// A drop-in `*.conf` file: dnsmasq rule lines, one per line, `#` comments.
    fn add_conf_lines(&self, into: &mut Entries) -> Result<(), ConfigError> {
        for (i, line) in self.text.lines().enumerate() {
            let text = dnsmasq::strip_comment(line).trim();
            if text.is_empty() {
                continue;
            }
            let at = format!("{}:{}", self.path, i + 1);
            Rule::parse(text)
                .and_then(|rule| into.add_rule(rule, at))
                .map_err(|problem| ConfigError::Line {
                    path: self.path.clone(),
                    line: i + 1,
                    text: text.to_string(),
                    problem: problem.to_string(),
                })?;
        }
        Ok(())
    }

    fn validate(&self, raw: RawConfig, entries: Entries) -> Result<Config, ConfigError> {
        let Entries {
            default_servers,
            zone_rules,
            routes: tables,
            records,
            dnssec,
            encrypted: _,
        } = entries;
        let mut routes = rules::fold(&zone_rules).map_err(|c| ConfigError::RuleConflict {
            path: self.path.clone(),
            zone: c.zone.to_string(),
            first: c.first,
            second: c.second,
            problem: c.problem,
        })?;
        routes.extend(tables);
        self.reject_duplicate_zones(&routes)?;
        self.reject_chained_rewrites(&routes)?;
        let guard = self.guard(&raw.server)?;
        let tcp = self.tcp(&raw.server)?;
        Ok(Config {
            origin: self.path.clone(),
            guard,
            tcp,
            threads: self.threads(raw.server.threads)?,
            source: None,
            user: self.user(raw.server.user)?,
            listen: self.listen(raw.server.listen)?,
            allow: self.allow(raw.server.allow)?,
            upstream: self.upstream(raw.upstream, default_servers)?,
            routes,
            cache: self.cache(raw.cache)?,
            local: self.local(raw.local, records),
            metrics: raw.metrics.map(|m| self.metrics(m)).transpose()?,
            log: self.log(raw.log)?,
            control: raw
                .control
                .validate()
                .map_err(|(value, problem)| self.invalid("[control] socket", &value, problem))?,
            consul: raw.consul.map(|c| self.consul(c)).transpose()?,
            dnssec: self.dnssec(raw.dnssec, &dnssec)?,
            included: Vec::new(),
            hash: String::new(),
            warnings: Vec::new(),
        })
    }
}

impl Entries {
    /// Adds a parsed rule line; its encrypted servers get `[upstream]`'s trust.
    fn add_rule(&mut self, mut rule: Rule, at: String) -> Result<(), RuleError> {
        match &mut rule {
            Rule::DefaultServer(server) => server.finish(None, &self.encrypted)?,
            Rule::Zones {
                action: RuleAction::Forward(servers),
                ..
            } => {
                for server in servers {
                    server.finish(None, &self.encrypted)?;
                }
            }
            _ => {}
        }
        match rule {
            Rule::DefaultServer(server) => self.default_servers.push(server),
            Rule::Records(more) => self.records.extend(more),
            Rule::Dnssec(line) => self.dnssec.push(line),
            rule @ (Rule::Zones { .. } | Rule::Rewrite { .. }) => {
                self.zone_rules.push(rules::Placed { rule, at })
            }
        }
        Ok(())
    }
}

/// toml's messages span several lines with a source excerpt; keep them readable on one.
fn one_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let head = lines.next().unwrap_or_default().to_string();
    let tail: Vec<&str> = lines
        .filter(|l| !l.starts_with('|') && !l.ends_with('|'))
        .collect();
    let tail: Vec<&str> = tail
        .into_iter()
        .filter(|l| !l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect();
    if tail.is_empty() {
        head
    } else {
        format!("{head}: {}", tail.join(" "))
    }
}

#[cfg(test)]
mod tests;
