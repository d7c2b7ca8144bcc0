//! TOML -> a validated [`Config`].
//!
//! Everything a user can get wrong in the file is caught here, before a socket is
//! opened, and reported as a [`ConfigError`] that names the file, the line, the key
//! and what to write instead. The rest of the program only sees typed values.
//!
//! Why this file is long (about 1,100 lines before its tests): it holds the
//! `[server]`, `[cache]`, `[log]`, `[metrics]`, `[guard]` and `[[route]]`
//! tables, each raw form beside its validation, and the one located error they
//! all report through; `[local]`, `[control]` and the `strategy` key have
//! files of their own beside it.

pub mod control;
pub mod dnsmasq;
pub mod import;
mod include;
pub mod local;
pub mod reference;
mod rules;
pub(crate) mod server_spec;
pub(crate) mod trust;
mod upstream;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;

use server_spec::ServerSpec;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use trust::Trust;

use ipnet::IpNet;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::dns::zone::Zone;
pub use control::ControlConfig;
use control::RawControl;
use dnsmasq::{Rule, RuleAction};
pub use local::{LocalConfig, StaticRecord};
use local::{RawLocal, RawRecord};
pub use upstream::Strategy;

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
    /// `[metrics]`: `None` when the table is absent (no HTTP endpoint).
    pub metrics: Option<MetricsConfig>,
    pub log: LogConfig,
    /// `[local]`, `[[record]]` and the record rules.
    pub local: LocalConfig,
    /// `[control]`: the socket of `splitdns control`.
    pub control: ControlConfig,
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

/// `[server]` defences against hostile clients and hostile upstream data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Strip private addresses from answers of the default upstreams (default off).
    pub rebind_protection: bool,
    /// Zones whose answers may carry private addresses even from the default upstreams.
    pub rebind_allow: Vec<Zone>,
    /// Queries per second per client address, with a burst of as many; 0 = no limit.
    pub rate_limit: u32,
}

/// `[server]` limits on TCP clients (RFC 7766 §6.2.3 leaves them to the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Connections open at once; past it the longest idle one is closed (default 1000).
    pub max_connections: usize,
    /// How long a connection may wait for its next query (default 10 s).
    pub idle_timeout: Duration,
    /// How long one message may take to arrive once it has started (default 5 s).
    pub read_timeout: Duration,
    /// Queries served on one connection before it is closed (default 100).
    pub max_queries: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            idle_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(5),
            max_queries: 100,
        }
    }
}

/// One `listen` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `ADDR:PORT` or `[V6]:PORT`. Port 0 picks one free port for UDP and TCP.
    Addr(SocketAddr),
    /// `IFNAME:PORT`: every IPv4 and non-link-local IPv6 address of the interface.
    Interface { name: String, port: u16 },
}

/// The default route: where names outside every zone go.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Explicit servers; when empty, `resolv_conf` is read at start.
    pub servers: Vec<ServerSpec>,
    pub resolv_conf: PathBuf,
    /// Per attempt, per server.
    pub timeout: Duration,
    /// In-flight upstream queries for the route; past it, new misses get SERVFAIL.
    pub max_inflight: usize,
    /// How the servers are chosen; routes inherit it unless they set their own.
    pub strategy: Strategy,
    /// AAAA queries get NODATA without being forwarded. Also the default for
    /// every route.
    pub filter_aaaa: bool,
}

/// One zone route: its zones and what answers them.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub zones: Vec<Zone>,
    /// What answers the route's names, except the types `addresses` answers.
    pub action: RouteAction,
    /// `address=` lines for zones that other lines route too: the query types
    /// they answer are answered here; the others go by `action` (dnsmasq 2.86+).
    pub addresses: Vec<IpAddr>,
    /// Floor for this route's cache TTLs, positive and negative (seconds).
    pub min_ttl: Option<u32>,
    pub timeout: Option<Duration>,
    pub max_inflight: Option<usize>,
    pub strategy: Option<Strategy>,
    /// Names of the zones are asked as the same names under this zone
    /// (`prometheus.infra.local` as `prometheus.service.consul`).
    pub rewrite: Option<Zone>,
    /// Default: `[upstream] filter_aaaa`.
    pub filter_aaaa: Option<bool>,
    /// `rules[3] (line 4)` or `[[route]] #2 (line 12)`: where it was written.
    pub defined_at: String,
}

/// What answers a route's names: what its `[[route]]` table or the rule
/// lines for its zone come to, once merged.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Forward to these servers, in order.
    Forward(Vec<ServerSpec>),
    /// Forward to the default upstreams (`[[route]]` without servers,
    /// `server=/x/#`).
    DefaultUpstream,
    /// Answered here; NXDOMAIN for names without local data.
    Local,
    /// These addresses for the zone and every name below it.
    Address(Vec<IpAddr>),
}

/// `[cache]`: TTL bounds are in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries; 0 disables the cache.
    pub size: u64,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub max_negative_ttl: u32,
    /// How long past expiry an entry may still be served when the upstreams
    /// fail (RFC 8767), in seconds; 0 turns serving stale off. Default 1 h.
    pub serve_stale: u32,
    /// Refresh an entry in the background when it is asked for in the last
    /// 10% of its TTL. Default off.
    pub prefetch: bool,
}

/// `[metrics]`: the HTTP endpoint with `/metrics`, `/health` and `/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    /// How long a server may keep failing, with no good reply, before
    /// `/health` reports it down. Default 5 s, so a dead route shows within 10 s.
    pub health_window: Duration,
}

/// `[log]`: what goes to the log beside warnings and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogConfig {
    /// One line per client query (target `splitdns::query`). Default off.
    pub queries: bool,
    pub format: LogFormat,
}

/// How every log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable `key=value` lines (the default).
    #[default]
    Plain,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// A mistake in a config file, worded for the person who wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}:{line}: {key} = {value:?}: {problem}")]
    Invalid {
        path: String,
        line: usize,
        key: String,
        value: String,
        problem: String,
    },
    #[error(
        "{path}: {at}: rewrite target {target} overlaps {zone}, which is rewritten too \
         ({other}); rewrites do not chain, point it at the final name"
    )]
    ChainedRewrite {
        path: String,
        at: String,
        target: String,
        zone: String,
        other: String,
    },
    #[error("{path}: zone {zone} is defined twice: {first} and {second}; keep one of them")]
    DuplicateZone {
        path: String,
        zone: String,
        first: String,
        second: String,
    },
    #[error("{path}: zone {zone}: {first} and {second} conflict: {problem}")]
    RuleConflict {
        path: String,
        zone: String,
        first: String,
        second: String,
        problem: &'static str,
    },
    #[error("{path}:{line}: {text}: {problem}")]
    Line {
        path: String,
        line: usize,
        text: String,
        problem: String,
    },
    #[error(
        "{path}:{line}: {key} can only be set in the main config file; a drop-in file holds \
         only rules, [[route]] and [[record]]"
    )]
    FragmentKey {
        path: String,
        line: usize,
        key: String,
    },
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_MAX_INFLIGHT: usize = 1024;
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
/// RFC 8767 §5 suggests one to three days; an hour covers an agent restart or
/// an outage upstream without serving data that has long gone wrong.
const DEFAULT_SERVE_STALE: Duration = Duration::from_secs(3600);
pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(5);

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Spanned<String>,
    health_window: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    queries: bool,
    format: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Vec<Spanned<String>>>,
    allow: Option<Vec<Spanned<String>>>,
    rebind_protection: Option<bool>,
    #[serde(default)]
    rebind_allow: Vec<Spanned<String>>,
    #[serde(default)]
    rate_limit: u32,
    tcp_max_connections: Option<usize>,
    tcp_idle_timeout: Option<Spanned<String>>,
    tcp_read_timeout: Option<Spanned<String>>,
    tcp_max_queries: Option<usize>,
    user: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    #[serde(default)]
    servers: Vec<Spanned<String>>,
    resolv_conf: Option<PathBuf>,
    timeout: Option<Spanned<String>>,
    max_inflight: Option<usize>,
    strategy: Option<Spanned<String>>,
    #[serde(default)]
    filter_aaaa: bool,
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pin_sha256: Vec<Spanned<String>>,
    #[serde(default)]
    bootstrap: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    zones: Vec<Spanned<String>>,
    #[serde(default)]
    servers: Vec<Spanned<String>>,
    min_ttl: Option<u32>,
    timeout: Option<Spanned<String>>,
    max_inflight: Option<usize>,
    strategy: Option<Spanned<String>>,
    rewrite: Option<Spanned<String>>,
    filter_aaaa: Option<bool>,
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pin_sha256: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCache {
    size: u64,
    min_ttl: u32,
    max_ttl: u32,
    max_negative_ttl: u32,
    serve_stale: Option<Spanned<String>>,
    prefetch: bool,
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            size: 10_000,
            min_ttl: 0,
            max_ttl: 86_400,
            max_negative_ttl: 3_600,
            serve_stale: None,
            prefetch: false,
        }
    }
}

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
        let src = Source {
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
        entries.default_servers =
            src.servers("[upstream] servers", &raw.upstream.servers, None, &entries)?;
        src.add_entries(&raw.rules, &raw.route, &raw.record, &mut entries)?;
        let mut included = Vec::new();
        for (path, kind) in expanded.files {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            hash.update(text.as_bytes());
            let fragment = Source {
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
    /// `[upstream]`'s trust and bootstrap addresses for encrypted servers.
    encrypted: server_spec::Defaults,
}

/// The text being validated, so every error can point at its line.
struct Source<'a> {
    path: String,
    text: &'a str,
    /// A drop-in file: where things are defined names the file too.
    fragment: bool,
}

impl Source<'_> {
    fn line_of(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }

    /// `what`, with the file's name when it is a drop-in file.
    fn place(&self, what: String) -> String {
        if self.fragment {
            format!("{}: {what}", self.path)
        } else {
            what
        }
    }

    fn invalid(
        &self,
        key: &str,
        value: &Spanned<String>,
        problem: impl fmt::Display,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: self.line_of(value.span()),
            key: key.to_string(),
            value: value.get_ref().clone(),
            problem: problem.to_string(),
        }
    }

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
            let route = self.route(i, route, into)?;
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
                    problem,
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
            source: None,
            user: self.user(raw.server.user)?,
            listen: self.listen(raw.server.listen)?,
            allow: self.allow(raw.server.allow)?,
            upstream: UpstreamConfig {
                servers: default_servers,
                resolv_conf: raw
                    .upstream
                    .resolv_conf
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF)),
                timeout: self.timeout("[upstream] timeout", raw.upstream.timeout.as_ref())?,
                max_inflight: raw.upstream.max_inflight.unwrap_or(DEFAULT_MAX_INFLIGHT),
                strategy: self
                    .strategy("[upstream] strategy", raw.upstream.strategy.as_ref())?
                    .unwrap_or_default(),
                filter_aaaa: raw.upstream.filter_aaaa,
            },
            routes,
            cache: self.cache(raw.cache)?,
            local: LocalConfig {
                hosts_files: raw.local.hosts_files,
                domain_needed: raw.local.domain_needed,
                bogus_priv: raw.local.bogus_priv,
                ttl: raw.local.ttl,
                records,
            },
            metrics: raw.metrics.map(|m| self.metrics(m)).transpose()?,
            log: self.log(raw.log)?,
            control: raw
                .control
                .validate()
                .map_err(|(value, problem)| self.invalid("[control] socket", &value, problem))?,
            included: Vec::new(),
            hash: String::new(),
            warnings: Vec::new(),
        })
    }

    fn metrics(&self, raw: RawMetrics) -> Result<MetricsConfig, ConfigError> {
        let listen = raw.listen.get_ref().parse().map_err(|_| {
            self.invalid(
                "[metrics] listen",
                &raw.listen,
                "expected ADDR:PORT, e.g. \"127.0.0.1:5381\"",
            )
        })?;
        let health_window = match &raw.health_window {
            Some(w) => self.timeout("[metrics] health_window", Some(w))?,
            None => DEFAULT_HEALTH_WINDOW,
        };
        Ok(MetricsConfig {
            listen,
            health_window,
        })
    }

    fn log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
        let format = match &raw.format {
            None => LogFormat::Plain,
            Some(f) => match f.get_ref().as_str() {
                "plain" => LogFormat::Plain,
                "json" => LogFormat::Json,
                _ => {
                    return Err(self.invalid("[log] format", f, "expected \"plain\" or \"json\""));
                }
            },
        };
        Ok(LogConfig {
            queries: raw.queries,
            format,
        })
    }

    fn record(&self, raw: &Spanned<RawRecord>) -> Result<StaticRecord, ConfigError> {
        let RawRecord {
            name,
            rtype,
            value,
            ttl,
        } = raw.get_ref();
        let key = |field: &str| format!("[[record]] {field}");
        let owner = Zone::parse(name.get_ref()).map_err(|p| self.invalid(&key("name"), name, p))?;
        let rtype = local::record_type(rtype.get_ref())
            .map_err(|p| self.invalid(&key("type"), rtype, p))?;
        let rdata = local::parse_rdata(rtype, value.get_ref())
            .map_err(|p| self.invalid(&key("value"), value, p))?;
        Ok(StaticRecord {
            name: owner,
            rdata,
            ttl: *ttl,
        })
    }

    fn route(
        &self,
        i: usize,
        route: &Spanned<RawRoute>,
        entries: &Entries,
    ) -> Result<RouteConfig, ConfigError> {
        let key = format!("[[route]] #{}", i + 1);
        let raw = route.get_ref();
        let mut zones = Vec::new();
        for zone in &raw.zones {
            zones.extend(
                route_zones(zone.get_ref())
                    .map_err(|problem| self.invalid(&format!("{key} zones"), zone, problem))?,
            );
        }
        if zones.is_empty() {
            return Err(ConfigError::Invalid {
                path: self.path.clone(),
                line: self.line_of(route.span()),
                key: format!("{key} zones"),
                value: String::new(),
                problem: "a route needs at least one zone, e.g. zones = [\"consul\"]".into(),
            });
        }
        let trust = self.trust(&key, raw.ca_file.as_ref(), &raw.pin_sha256)?;
        let servers = self.servers(
            &format!("{key} servers"),
            &raw.servers,
            trust.as_ref(),
            entries,
        )?;
        let rewrite = match &raw.rewrite {
            Some(target) => Some(
                Zone::parse(target.get_ref())
                    .map_err(|p| self.invalid(&format!("{key} rewrite"), target, p))?,
            ),
            None => None,
        };
        Ok(RouteConfig {
            zones,
            action: if servers.is_empty() {
                RouteAction::DefaultUpstream
            } else {
                RouteAction::Forward(servers)
            },
            min_ttl: raw.min_ttl,
            timeout: match &raw.timeout {
                Some(t) => Some(self.timeout(&format!("{key} timeout"), Some(t))?),
                None => None,
            },
            max_inflight: raw.max_inflight,
            strategy: self.strategy(&format!("{key} strategy"), raw.strategy.as_ref())?,
            rewrite,
            filter_aaaa: raw.filter_aaaa,
            addresses: Vec::new(),
            defined_at: self.place(format!("{key} (line {})", self.line_of(route.span()))),
        })
    }

    /// Server entries; encrypted ones get `trust` (else `[upstream]`'s) and
    /// their bootstrap address.
    fn servers(
        &self,
        key: &str,
        raw: &[Spanned<String>],
        trust: Option<&Arc<Trust>>,
        entries: &Entries,
    ) -> Result<Vec<ServerSpec>, ConfigError> {
        let parse = |s: &str| {
            let mut spec = dnsmasq::parse_server(s)?;
            spec.finish(trust, &entries.encrypted)?;
            Ok::<_, String>(spec)
        };
        raw.iter()
            .map(|s| parse(s.get_ref()).map_err(|p| self.invalid(key, s, p)))
            .collect()
    }

    /// `ca_file` and `pin_sha256` of `[upstream]` or a route; `None` when neither is set.
    fn trust(
        &self,
        table: &str,
        ca_file: Option<&Spanned<String>>,
        pins: &[Spanned<String>],
    ) -> Result<Option<Arc<Trust>>, ConfigError> {
        if ca_file.is_none() && pins.is_empty() {
            return Ok(None);
        }
        let texts: Vec<String> = pins.iter().map(|p| p.get_ref().clone()).collect();
        let path = ca_file.map(|f| PathBuf::from(f.get_ref()));
        Trust::load(path.as_deref(), &texts)
            .map(|t| Some(Arc::new(t)))
            .map_err(|(i, problem)| match pins.get(i) {
                Some(pin) => self.invalid(&format!("{table} pin_sha256"), pin, problem),
                None => self.invalid(
                    &format!("{table} ca_file"),
                    ca_file.expect("only ca_file fails without a pin"),
                    problem,
                ),
            })
    }

    /// `[upstream]`'s trust and `bootstrap`, for every encrypted server entry.
    fn encrypted_defaults(&self, raw: &RawUpstream) -> Result<server_spec::Defaults, ConfigError> {
        let trust = self.trust("[upstream]", raw.ca_file.as_ref(), &raw.pin_sha256)?;
        let mut bootstrap = std::collections::HashMap::new();
        for (host, addr) in &raw.bootstrap {
            let ip: IpAddr = addr.get_ref().parse().map_err(|_| {
                self.invalid(
                    &format!("[upstream] bootstrap.{host:?}"),
                    addr,
                    "expected the IP address to connect to for this host name, e.g. \"9.9.9.9\"",
                )
            })?;
            bootstrap.insert(host.trim_end_matches('.').to_ascii_lowercase(), ip);
        }
        Ok(server_spec::Defaults {
            trust: trust.unwrap_or_default(),
            bootstrap,
        })
    }

    fn timeout(&self, key: &str, raw: Option<&Spanned<String>>) -> Result<Duration, ConfigError> {
        self.duration(key, raw, DEFAULT_TIMEOUT, Duration::from_millis(10))
    }

    /// `raw` as a duration of at least `min`, or `default` when absent.
    fn duration(
        &self,
        key: &str,
        raw: Option<&Spanned<String>>,
        default: Duration,
        min: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = raw else {
            return Ok(default);
        };
        match humantime::parse_duration(raw.get_ref()) {
            Ok(d) if d >= min => Ok(d),
            Ok(_) => Err(self.invalid(
                key,
                raw,
                format!("must be at least {}", humantime::format_duration(min)),
            )),
            Err(_) => Err(self.invalid(key, raw, "expected a duration like \"2s\" or \"500ms\"")),
        }
    }

    fn strategy(
        &self,
        key: &str,
        raw: Option<&Spanned<String>>,
    ) -> Result<Option<Strategy>, ConfigError> {
        raw.map(|s| {
            s.get_ref()
                .parse::<Strategy>()
                .map_err(|problem| self.invalid(key, s, problem))
        })
        .transpose()
    }

    fn guard(&self, raw: &RawServer) -> Result<GuardConfig, ConfigError> {
        let rebind_allow = raw
            .rebind_allow
            .iter()
            .map(|z| {
                Zone::parse(z.get_ref()).map_err(|p| self.invalid("[server] rebind_allow", z, p))
            })
            .collect::<Result<_, _>>()?;
        Ok(GuardConfig {
            rebind_protection: raw.rebind_protection.unwrap_or(false),
            rebind_allow,
            rate_limit: raw.rate_limit,
        })
    }

    fn tcp(&self, raw: &RawServer) -> Result<TcpConfig, ConfigError> {
        let default = TcpConfig::default();
        let positive = |key: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(ConfigError::Syntax {
                path: self.path.clone(),
                message: format!("[server] {key} = 0: must be at least 1"),
            }),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let min = Duration::from_millis(10);
        Ok(TcpConfig {
            max_connections: positive(
                "tcp_max_connections",
                raw.tcp_max_connections,
                default.max_connections,
            )?,
            idle_timeout: self.duration(
                "[server] tcp_idle_timeout",
                raw.tcp_idle_timeout.as_ref(),
                default.idle_timeout,
                min,
            )?,
            read_timeout: self.duration(
                "[server] tcp_read_timeout",
                raw.tcp_read_timeout.as_ref(),
                default.read_timeout,
                min,
            )?,
            max_queries: positive("tcp_max_queries", raw.tcp_max_queries, default.max_queries)?,
        })
    }

    fn listen(&self, raw: Option<Vec<Spanned<String>>>) -> Result<Vec<Listen>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(vec![Listen::Addr("127.0.0.1:53".parse().expect("literal"))]);
        };
        if raw.is_empty() {
            return Err(ConfigError::Syntax {
                path: self.path.clone(),
                message: "[server] listen is empty: give at least one ADDR:PORT".into(),
            });
        }
        raw.iter()
            .map(|l| parse_listen(l.get_ref()).map_err(|p| self.invalid("[server] listen", l, p)))
            .collect()
    }

    fn user(&self, raw: Option<Spanned<String>>) -> Result<Option<String>, ConfigError> {
        let Some(raw) = raw else { return Ok(None) };
        let name = raw.get_ref();
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Err(self.invalid(
                "[server] user",
                &raw,
                "expected a user name such as \"splitdns\" (it must exist when splitdns starts as root)",
            ));
        }
        Ok(Some(name.clone()))
    }

    fn allow(&self, raw: Option<Vec<Spanned<String>>>) -> Result<Option<Vec<IpNet>>, ConfigError> {
        let Some(raw) = raw else { return Ok(None) };
        raw.iter()
            .map(|a| {
                let s = a.get_ref();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        self.invalid(
                            "[server] allow",
                            a,
                            "expected an address or a prefix like \"172.16.0.0/12\"",
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn cache(&self, raw: RawCache) -> Result<CacheConfig, ConfigError> {
        if raw.min_ttl > raw.max_ttl {
            return Err(ConfigError::Syntax {
                path: self.path.clone(),
                message: format!(
                    "[cache] min_ttl = {} is above max_ttl = {}: lower min_ttl or raise max_ttl",
                    raw.min_ttl, raw.max_ttl
                ),
            });
        }
        let serve_stale = self.duration(
            "[cache] serve_stale",
            raw.serve_stale.as_ref(),
            DEFAULT_SERVE_STALE,
            Duration::ZERO,
        )?;
        Ok(CacheConfig {
            size: raw.size,
            min_ttl: raw.min_ttl,
            max_ttl: raw.max_ttl,
            max_negative_ttl: raw.max_negative_ttl,
            serve_stale: u32::try_from(serve_stale.as_secs()).unwrap_or(u32::MAX),
            prefetch: raw.prefetch,
        })
    }

    /// A rewrite into a zone that is itself rewritten would need a second pass
    /// (or loop, when it points into its own zone): refuse it.
    fn reject_chained_rewrites(&self, routes: &[RouteConfig]) -> Result<(), ConfigError> {
        for route in routes {
            let Some(target) = &route.rewrite else {
                continue;
            };
            let chained = routes
                .iter()
                .filter(|other| other.rewrite.is_some())
                .flat_map(|other| other.zones.iter().map(move |z| (z, other)))
                .find(|(zone, _)| zone.contains(target.wire()) || target.contains(zone.wire()));
            if let Some((zone, other)) = chained {
                return Err(ConfigError::ChainedRewrite {
                    path: self.path.clone(),
                    at: route.defined_at.clone(),
                    target: target.to_string(),
                    zone: zone.to_string(),
                    other: other.defined_at.clone(),
                });
            }
        }
        Ok(())
    }

    fn reject_duplicate_zones(&self, routes: &[RouteConfig]) -> Result<(), ConfigError> {
        let mut seen: std::collections::HashMap<&Zone, &str> = std::collections::HashMap::new();
        for route in routes {
            for zone in &route.zones {
                if let Some(first) = seen.insert(zone, &route.defined_at) {
                    return Err(ConfigError::DuplicateZone {
                        path: self.path.clone(),
                        zone: zone.to_string(),
                        first: first.to_string(),
                        second: route.defined_at.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl RouteConfig {
    /// A route from rule lines: rules take no options.
    fn rule(zones: Vec<Zone>, action: RouteAction, defined_at: String) -> Self {
        Self {
            zones,
            action,
            addresses: Vec::new(),
            min_ttl: None,
            timeout: None,
            max_inflight: None,
            rewrite: None,
            filter_aaaa: None,
            strategy: None,
            defined_at,
        }
    }
}

impl Entries {
    /// Adds a parsed rule line; its encrypted servers get `[upstream]`'s trust.
    fn add_rule(&mut self, mut rule: Rule, at: String) -> Result<(), String> {
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
            rule @ (Rule::Zones { .. } | Rule::Rewrite { .. }) => {
                self.zone_rules.push(rules::Placed { rule, at })
            }
        }
        Ok(())
    }
}

/// A `[[route]] zones` entry: a zone name, or a prefix such as `"10.0.0.0/8"`
/// or `"fd00::/8"` for the reverse zones that cover it (as `rev-server=` has them).
fn route_zones(entry: &str) -> Result<Vec<Zone>, String> {
    if !entry.contains('/') {
        return Zone::parse(entry).map(|zone| vec![zone]);
    }
    let prefix: IpNet = entry.parse().map_err(|_| {
        format!(
            "{entry:?} is neither a zone nor a prefix; write a name like \"consul\" or a \
             prefix like \"10.0.0.0/8\""
        )
    })?;
    Ok(dnsmasq::reverse_zones(prefix))
}

/// `ADDR:PORT`, `[V6]:PORT`, a bare address (port 53) or `IFNAME:PORT`.
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Listen::Addr(addr));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Listen::Addr(SocketAddr::new(ip, 53)));
    }
    let usage =
        "expected ADDR:PORT, [V6]:PORT or IFNAME:PORT, e.g. \"127.0.0.1:53\" or \"docker0:53\"";
    let (name, port) = s.rsplit_once(':').ok_or(usage)?;
    let port = port.parse::<u16>().map_err(|_| usage)?;
    let valid_name = !name.is_empty()
        && name.len() < 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-@".contains(&b));
    if !valid_name {
        return Err(usage.into());
    }
    Ok(Listen::Interface {
        name: name.to_string(),
        port,
    })
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

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(a) => write!(f, "{a}"),
            Self::Interface { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn builtin_default_is_valid() {
        let c = Config::builtin();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.routes.len(), 1);
    }

    /// The first command of the README runs the built-in default as any user, on a desktop
    /// too: its port must be free there. 5353 is mDNS (RFC 6762, avahi-daemon), 5355 LLMNR
    /// (RFC 4795, systemd-resolved), 53 needs root, 8600 is Consul's DNS port, 5335 and 8053
    /// are where other local resolvers are commonly put.
    #[test]
    fn builtin_default_listens_where_no_known_service_does() {
        for listen in Config::builtin().listen {
            let Listen::Addr(addr) = listen else {
                panic!("{listen}: the built-in default listens on addresses");
            };
            assert!(addr.ip().is_loopback(), "{addr}");
            assert!(
                ![53, 5353, 5355, 8600, 5335, 8053].contains(&addr.port()),
                "{addr}"
            );
            assert_eq!(addr.port(), 5380, "the README names 5380");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_in_every_table() {
        for text in [
            "bogus = 1",
            "[server]\nlisten = []\nbogus = 1",
            "[upstream]\nbogus = 1",
            "[[route]]\nzones = [\"a\"]\nbogus = 1",
            "[cache]\nbogus = 1",
            "[metrics]\nlisten = \"127.0.0.1:5381\"\nbogus = 1",
            "[log]\nbogus = 1",
            "[local]\nbogus = 1",
            "[[record]]\nname = \"a\"\ntype = \"A\"\nvalue = \"192.0.2.1\"\nbogus = 1",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("bogus"), "{text}: {err}");
        }
    }

    /// The keys a table accepts, as serde lists them when it rejects an
    /// unknown one (`unknown field `x`, expected one of `a`, `b``), so the
    /// list comes from the types themselves.
    fn accepted_keys(table: &str) -> Vec<String> {
        let probe = "not_a_key_of_any_table";
        let text = match table {
            "" => format!("{probe} = 1"),
            t => format!("{t}\n{probe} = 1"),
        };
        let Err(err) = toml::from_str::<RawConfig>(&text) else {
            panic!("{text}: accepted");
        };
        let message = err.to_string();
        let (_, expected) = message
            .split_once(&format!("unknown field `{probe}`"))
            .unwrap_or_else(|| panic!("{text}: {message}"));
        let expected = expected.lines().next().unwrap_or_default();
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_key_reference_lists_every_key_and_no_other() {
        use reference::KEYS;
        let mut documented: Vec<String> = KEYS.iter().map(|k| k.name()).collect();
        let tables: Vec<&str> = KEYS
            .iter()
            .map(|k| k.table)
            .filter(|t| !t.is_empty())
            .collect();
        let mut accepted = Vec::new();
        for name in accepted_keys("") {
            let table = tables
                .iter()
                .find(|t| t.trim_matches(['[', ']']) == name)
                .copied();
            match table {
                Some(table) => accepted.extend(
                    accepted_keys(table)
                        .into_iter()
                        .map(|key| format!("{table} {key}")),
                ),
                // Not a documented table: a top-level key (or an undocumented table).
                None => accepted.push(name),
            }
        }
        documented.sort();
        documented.dedup();
        accepted.sort();
        let missing: Vec<_> = accepted
            .iter()
            .filter(|k| !documented.contains(k))
            .collect();
        let unknown: Vec<_> = documented
            .iter()
            .filter(|k| !accepted.contains(k))
            .collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "add to KEYS in src/config/reference.rs: {missing:?}; \
             in KEYS but not accepted by the config types: {unknown:?}"
        );
    }

    #[test]
    fn bad_duration_names_key_and_line() {
        let err = parse("[upstream]\ntimeout = \"two seconds\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.toml:2"), "{err}");
        assert!(err.contains("[upstream] timeout"), "{err}");
        assert!(err.contains("500ms"), "{err}");
    }

    #[test]
    fn duplicate_zone_names_both_places() {
        let text = "rules = [\"server=/consul/127.0.0.1#8600\"]\n[[route]]\nzones = [\"Consul.\"]\nservers = [\"127.0.0.1\"]";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("rules[0] (line 1)") && err.contains("[[route]] #1 (line 2)"),
            "{err}"
        );
    }

    #[test]
    fn bad_record_value_names_key_line_and_form() {
        let text =
            "[local]\nttl = 5\n\n[[record]]\nname = \"lan\"\ntype = \"MX\"\nvalue = \"mail.lan\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("test.toml:7: [[record]] value"), "{err}");
        assert!(err.contains("10 mail.example."), "{err}");
    }

    #[test]
    fn chained_rewrites_are_refused() {
        for text in [
            "rules = [\"rewrite=/a.lan/b.lan/\", \"rewrite=/b.lan/service.consul/\"]",
            "rules = [\"rewrite=/infra.local/x.infra.local/\"]",
            "rules = [\"rewrite=/a.lan/service.consul/\", \"rewrite=/web.service.consul/c.lan/\"]",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("rewrites do not chain"), "{text}: {err}");
        }
        assert!(
            parse(
                "rules = [\"rewrite=/a.lan/service.consul/\", \"rewrite=/b.lan/service.consul/\"]"
            )
            .is_ok()
        );
    }

    #[test]
    fn local_defaults_and_builtin_hosts() {
        let c = parse("").unwrap();
        assert!(c.local.hosts_files.is_empty());
        assert_eq!(c.local.ttl, 0);
        assert!(!c.upstream.filter_aaaa);
        assert_eq!(
            Config::builtin().local.hosts_files,
            [PathBuf::from("/etc/hosts")]
        );
    }

    #[test]
    fn address_rules_for_both_families_merge() {
        let c = parse("rules = [\"address=/gw.lan/192.0.2.1\", \"address=/gw.lan/2001:db8::1\"]")
            .unwrap();
        assert_eq!(c.routes.len(), 1);
        assert!(matches!(&c.routes[0].action, RouteAction::Address(a) if a.len() == 2));
    }

    #[test]
    fn reliability_keys_and_their_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.cache.serve_stale, 3600);
        assert!(!c.cache.prefetch);
        assert!(!c.guard.rebind_protection);
        assert_eq!(c.guard.rate_limit, 0);
        assert_eq!(c.tcp, TcpConfig::default());
        assert_eq!(c.upstream.strategy, Strategy::Failover);
        let c = parse(
            "[upstream]\nstrategy = \"fastest\"\n[[route]]\nzones = [\"a\"]\nstrategy = \"parallel\"\n[cache]\nserve_stale = \"0s\"",
        )
        .unwrap();
        assert_eq!(c.upstream.strategy, Strategy::Fastest);
        assert_eq!(c.routes[0].strategy, Some(Strategy::Parallel));
        assert_eq!(c.cache.serve_stale, 0);
    }

    #[test]
    fn bad_reliability_values_name_key_and_line() {
        for (text, key) in [
            ("[upstream]\nstrategy = \"random\"", "[upstream] strategy"),
            (
                "[[route]]\nzones = [\"a\"]\nstrategy = \"fast\"",
                "[[route]] #1 strategy",
            ),
            ("[cache]\nserve_stale = \"forever\"", "[cache] serve_stale"),
            (
                "[server]\ntcp_idle_timeout = \"1ms\"",
                "[server] tcp_idle_timeout",
            ),
            (
                "[server]\nrebind_allow = [\"a..b\"]",
                "[server] rebind_allow",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("test.toml:"),
                "{text}: {err}"
            );
        }
        let err = parse("[server]\ntcp_max_queries = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tcp_max_queries"), "{err}");
    }

    #[test]
    fn metrics_and_log_tables() {
        let c = parse(
            "[metrics]\nlisten = \"127.0.0.1:5381\"\n[log]\nqueries = true\nformat = \"json\"",
        )
        .unwrap();
        let metrics = c.metrics.unwrap();
        assert_eq!(metrics.listen, "127.0.0.1:5381".parse().unwrap());
        assert_eq!(metrics.health_window, DEFAULT_HEALTH_WINDOW);
        assert!(c.log.queries);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(Config::builtin().metrics, None);
        assert_eq!(Config::builtin().log, LogConfig::default());
    }

    #[test]
    fn bad_metrics_and_log_values_name_key_and_line() {
        let err = parse("[metrics]\nlisten = \"localhost\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.toml:2") && err.contains("[metrics] listen"),
            "{err}"
        );
        let err = parse("[log]\nformat = \"xml\"").unwrap_err().to_string();
        assert!(
            err.contains("test.toml:2") && err.contains("\"json\""),
            "{err}"
        );
        let err = parse("[metrics]\nlisten = \"127.0.0.1:5381\"\nhealth_window = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[metrics] health_window"), "{err}");
    }

    #[test]
    fn builtin_default_includes_conf_d_only_when_it_exists() {
        assert!(!builtin_text(None).contains("include"));
        let text = builtin_text(Some("/nonexistent/conf.d"));
        let c = Config::from_toml(&text, Path::new("<built-in default>")).unwrap();
        assert!(
            c.warnings[0].contains("/nonexistent/conf.d"),
            "{:?}",
            c.warnings
        );
        assert_eq!(c.routes[0].action, Config::builtin().routes[0].action);
    }

    #[test]
    fn route_zones_take_prefixes_for_their_reverse_zones() {
        let c = parse(
            "[[route]]\nzones = [\"10.0.0.0/8\", \"fd00::/8\", \"172.16.0.0/12\"]\nmin_ttl = 5",
        )
        .unwrap();
        let zones: Vec<String> = c.routes[0].zones.iter().map(ToString::to_string).collect();
        assert_eq!(zones.len(), 18);
        assert_eq!(zones[..2], ["10.in-addr.arpa.", "d.f.ip6.arpa."]);
        assert_eq!(zones[2], "16.172.in-addr.arpa.");
        let err = parse("[[route]]\nzones = [\"10.0.0.0/33\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.toml:2: [[route]] #1 zones") && err.contains("prefix"),
            "{err}"
        );
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("docker0:53").unwrap(),
            Listen::Interface {
                name: "docker0".into(),
                port: 53
            }
        );
        assert_eq!(
            parse_listen("[::1]:5380").unwrap(),
            Listen::Addr("[::1]:5380".parse().unwrap())
        );
        assert!(parse_listen("docker0").is_err());
    }
}
