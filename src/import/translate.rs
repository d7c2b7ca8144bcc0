//! What the option lines of a dnsmasq config add up to ([`Translation`]): one
//! table of every option the importer knows, with what it becomes in splitdns or
//! why it is not carried over.

use std::path::Path;

use super::read::OptionLine;
use crate::config::dnsmasq::{RULE_OPTIONS, Rule};
use crate::config::{Config, MAX_INFLIGHT};
use crate::dns::zone::Zone;

/// A rule line as it will be written, with where it came from.
pub(super) struct RuleLine {
    pub(super) text: String,
    pub(super) at: String,
    pub(super) fragment: Option<usize>,
}

/// What the lines add up to.
#[derive(Default)]
pub(super) struct Translation {
    /// In dnsmasq's reading order: repeated lines for one zone accumulate in
    /// splitdns as in dnsmasq, so they are written as they were.
    pub(super) rules: Vec<RuleLine>,
    /// With `--split`: what became of a conf-dir file's other lines.
    pub(super) fragment_notes: Vec<(usize, String)>,
    pub(super) listen_addresses: Vec<String>,
    pub(super) interfaces: Vec<String>,
    pub(super) port: Option<u16>,
    pub(super) no_hosts: bool,
    pub(super) hosts_files: Vec<String>,
    pub(super) no_resolv: bool,
    pub(super) resolv_file: Option<String>,
    pub(super) default_servers: bool,
    pub(super) cache_size: Option<u64>,
    pub(super) min_ttl: Option<u32>,
    pub(super) max_ttl: Option<u32>,
    pub(super) no_negcache: bool,
    pub(super) local_ttl: Option<u32>,
    pub(super) forward_max: Option<usize>,
    pub(super) domain_needed: bool,
    pub(super) bogus_priv: bool,
    pub(super) filter_aaaa: bool,
    /// `stop-dns-rebind` anywhere in the config.
    pub(super) rebind: bool,
    pub(super) rebind_allow: Vec<Zone>,
    pub(super) log_queries: bool,
    pub(super) user: Option<String>,
    /// What `user` is without `user=` ([`super::default_user`]).
    pub(super) default_user: &'static str,
    pub(super) notes: Vec<String>,
    pub(super) warnings: Vec<String>,
}

impl Translation {
    /// `stop-dns-rebind` is known before the lines are read: whether
    /// `rebind-localhost-ok` matters does not depend on which came first.
    pub(super) fn new(lines: &[OptionLine], default_user: &'static str) -> Self {
        Self {
            rebind: lines.iter().any(|l| l.key == "stop-dns-rebind"),
            default_user,
            ..Self::default()
        }
    }

    fn ignore(&mut self, line: &OptionLine, why: &str) {
        self.warnings
            .push(format!("{}: {}: ignored ({why})", line.at, line.key));
    }

    fn note(&mut self, line: &OptionLine, what: &str) {
        self.notes
            .push(format!("{} ({}): {what}", line.key, line.at));
    }

    fn number<T: std::str::FromStr>(&mut self, line: &OptionLine) -> Option<T> {
        let parsed = line.value.as_deref().and_then(|v| v.parse().ok());
        if parsed.is_none() {
            self.ignore(line, "expected a number");
        }
        parsed
    }

    /// `dns-forward-max=N` as `max_inflight`, within what splitdns takes.
    fn forward_max(&mut self, line: &OptionLine) {
        match self.number::<usize>(line) {
            Some(0) => self.ignore(line, "splitdns forwards at least one query at a time"),
            Some(n) if n > MAX_INFLIGHT => {
                self.note(
                    line,
                    &format!(
                        "max_inflight = {MAX_INFLIGHT}, the most splitdns takes per route, not {n}"
                    ),
                );
                self.forward_max = Some(MAX_INFLIGHT);
            }
            n => self.forward_max = n.or(self.forward_max),
        }
    }

    pub(super) fn line(&mut self, line: &OptionLine) {
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

    fn option(&mut self, line: &OptionLine) {
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
            "dns-forward-max" => self.forward_max(line),
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
    fn rule(&mut self, line: &OptionLine) {
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
    fn rebind_ok(&mut self, line: &OptionLine, value: &str) {
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
    fn user(&mut self, line: &OptionLine, value: &str) {
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
    fn hosts_path(&mut self, line: &OptionLine, value: &str) {
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
    fn other(&mut self, line: &OptionLine) {
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
            "proxy-dnssec" => Some(
                "without [dnssec] validate, splitdns passes the upstream's AD bit on to clients \
                 that ask with AD or DO, as proxy-dnssec does",
            ),
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
            "dnssec-no-timecheck" | "dnssec-timestamp" => {
                "signature times are always checked against the system clock; start splitdns \
                 after the clock is set (systemd's time-sync.target)"
            }
            "dnssec-debug" => {
                "a client that sets CD=1 gets the upstream's answer unvalidated, per query"
            }
            k if k.starts_with("dnssec") => "not supported by splitdns's validator",
            "expand-hosts" | "domain" => {
                "local domain suffixes are not supported; name hosts in full"
            }
            "clear-on-reload" => "a reload keeps the cache of unchanged routes",
            _ => "not supported by splitdns",
        };
        self.ignore(line, why);
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

pub(super) fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
