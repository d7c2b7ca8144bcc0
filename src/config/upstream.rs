//! `[upstream]`: the default route, where names outside every zone go, and the
//! `strategy` key that `[[route]]` tables share with it. Server entries are
//! parsed by [`server_spec::parse_server`], the one grammar of `server=` lines.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::server_spec::{self, ServerError, ServerSpec};
use super::text::ConfigText;
use super::trust::Trust;

/// How a route picks among its servers (`strategy` in `[upstream]` and `[[route]]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Healthy servers in the listed order, one after the other.
    #[default]
    Failover,
    /// Healthy servers by smoothed RTT, lowest first.
    Fastest,
    /// Every healthy server at once; the first good answer wins.
    Parallel,
}

impl FromStr for Strategy {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "failover" => Ok(Self::Failover),
            "fastest" => Ok(Self::Fastest),
            "parallel" => Ok(Self::Parallel),
            _ => Err("expected \"failover\", \"fastest\" or \"parallel\""),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Failover => "failover",
            Self::Fastest => "fastest",
            Self::Parallel => "parallel",
        })
    }
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

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait per attempt: resolvers give up on a query after seconds (glibc 5 s,
/// dig 5 s, Unbound's whole resolution 2 min), so a minute per server already outlives
/// every client.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_INFLIGHT: usize = 1024;
/// The most `max_inflight` a route may have. Each of its servers keeps its
/// queries' IDs in a table of twice as many (RFC 5452 §9.2 wants each ID
/// random and unique at the server); at most half full, a random draw finds
/// a free one at least every other time, so no query fails for want of an ID.
pub const MAX_INFLIGHT: usize = 4096;
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    #[serde(default)]
    pub(super) servers: Vec<Spanned<String>>,
    pub(super) resolv_conf: Option<PathBuf>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) max_inflight: Option<Spanned<usize>>,
    pub(super) strategy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) filter_aaaa: bool,
    pub(super) ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) pin_sha256: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) bootstrap: BTreeMap<String, Spanned<String>>,
}

impl ConfigText<'_> {
    /// `[upstream]`, with the default servers of its `servers` key and of the
    /// `server=ADDR` rules already gathered.
    pub(super) fn upstream(
        &self,
        raw: RawUpstream,
        servers: Vec<ServerSpec>,
    ) -> Result<UpstreamConfig, ConfigError> {
        Ok(UpstreamConfig {
            servers,
            resolv_conf: raw
                .resolv_conf
                .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF)),
            timeout: self.timeout("[upstream] timeout", raw.timeout.as_ref())?,
            max_inflight: self
                .max_inflight("[upstream] max_inflight", raw.max_inflight.as_ref())?
                .unwrap_or(DEFAULT_MAX_INFLIGHT),
            strategy: self
                .strategy("[upstream] strategy", raw.strategy.as_ref())?
                .unwrap_or_default(),
            filter_aaaa: raw.filter_aaaa,
        })
    }

    /// Server entries; encrypted ones get `trust` (else `[upstream]`'s) and
    /// their bootstrap address.
    pub(super) fn servers(
        &self,
        key: &str,
        raw: &[Spanned<String>],
        trust: Option<&Arc<Trust>>,
        encrypted: &server_spec::Defaults,
    ) -> Result<Vec<ServerSpec>, ConfigError> {
        let parse = |s: &str| {
            let mut spec = server_spec::parse_server(s)?;
            spec.finish(trust, encrypted)?;
            Ok::<_, ServerError>(spec)
        };
        raw.iter()
            .map(|s| parse(s.get_ref()).map_err(|p| self.invalid(key, s, p)))
            .collect()
    }

    /// `ca_file` and `pin_sha256` of `[upstream]` or a route; `None` when neither is set.
    pub(super) fn trust(
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
    pub(super) fn encrypted_defaults(
        &self,
        raw: &RawUpstream,
    ) -> Result<server_spec::Defaults, ConfigError> {
        let trust = self.trust("[upstream]", raw.ca_file.as_ref(), &raw.pin_sha256)?;
        let mut bootstrap = HashMap::new();
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

    /// A wait per attempt: at least 10 ms, and at most [`MAX_TIMEOUT`], past which no
    /// client is still waiting (and a deadline of now + timeout could not be computed).
    pub(super) fn timeout(
        &self,
        key: &str,
        raw: Option<&Spanned<String>>,
    ) -> Result<Duration, ConfigError> {
        let timeout = self.duration(key, raw, DEFAULT_TIMEOUT, Duration::from_millis(10))?;
        match raw {
            Some(raw) if timeout > MAX_TIMEOUT => Err(self.invalid(
                key,
                raw,
                format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_TIMEOUT)
                ),
            )),
            _ => Ok(timeout),
        }
    }

    /// Queries in flight for a route: at least 1, at most [`MAX_INFLIGHT`].
    pub(super) fn max_inflight(
        &self,
        key: &str,
        raw: Option<&Spanned<usize>>,
    ) -> Result<Option<usize>, ConfigError> {
        let Some(raw) = raw else { return Ok(None) };
        let n = *raw.get_ref();
        if (1..=MAX_INFLIGHT).contains(&n) {
            return Ok(Some(n));
        }
        Err(self.invalid_at(
            key,
            raw.span(),
            n,
            format!(
                "must be between 1 and {MAX_INFLIGHT}: each server keeps its queries' random IDs \
                 (RFC 5452) in a table of {} and needs room to draw them; to forward more at once, \
                 list more servers or split the zone into routes",
                2 * MAX_INFLIGHT
            ),
        ))
    }

    pub(super) fn strategy(
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
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    /// The errors `setting` gets in `[upstream]` and in a route of its own.
    fn refused_in_upstream_and_route(setting: &str) -> (String, String) {
        let upstream = parse(&format!("[upstream]\n{setting}")).unwrap_err();
        let route = parse(&format!(
            "[[route]]\nzones = [\"consul\"]\nservers = [\"127.0.0.1:8600\"]\n{setting}"
        ))
        .unwrap_err();
        (upstream.to_string(), route.to_string())
    }

    /// A wait so long that `now + timeout` overflows `Instant` would panic on the first
    /// query; it is refused at load, naming the key, like every other bad value.
    #[test]
    fn timeouts_past_a_minute_are_refused_with_the_key() {
        for raw in ["61s", "18446744073709551615s"] {
            let (upstream, route) = refused_in_upstream_and_route(&format!("timeout = \"{raw}\""));
            assert!(upstream.contains("[upstream] timeout"), "{upstream}");
            assert!(upstream.contains("at most 1m"), "{upstream}");
            assert!(route.contains("timeout"), "{route}");
            assert!(route.contains("at most 1m"), "{route}");
        }
        assert!(parse("[upstream]\ntimeout = \"60s\"").is_ok());
    }

    /// RFC 5452 §9.2: each query's ID is random and unique at its server, so
    /// a server needs free IDs to draw from; a route may not have more in
    /// flight than its servers' ID tables keep room for. Refused at load with
    /// the key and line, not found out under load as failed queries.
    #[test]
    fn max_inflight_past_what_the_id_tables_hold_is_refused_with_the_key() {
        for n in [0, 4097, 100_000] {
            let (upstream, route) = refused_in_upstream_and_route(&format!("max_inflight = {n}"));
            assert!(upstream.contains("test.toml:2"), "{upstream}");
            assert!(upstream.contains("[upstream] max_inflight"), "{upstream}");
            assert!(upstream.contains("between 1 and 4096"), "{upstream}");
            assert!(route.contains("test.toml:4"), "{route}");
            assert!(route.contains("max_inflight"), "{route}");
            assert!(route.contains("between 1 and 4096"), "{route}");
        }
        let config = parse("[upstream]\nmax_inflight = 4096").unwrap();
        assert_eq!(config.upstream.max_inflight, 4096);
        let config = parse(
            "[[route]]\nzones = [\"consul\"]\nservers = [\"127.0.0.1:8600\"]\nmax_inflight = 1",
        )
        .unwrap();
        assert_eq!(config.routes[0].max_inflight, Some(1));
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
}
