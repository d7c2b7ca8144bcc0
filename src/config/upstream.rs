//! `[upstream]`: the default route, where names outside every zone go, and the
//! `strategy` key that `[[route]]` tables share with it. Server entries are
//! parsed by [`dnsmasq::parse_server`], the one grammar of `server=` lines.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source, dnsmasq};

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
    pub servers: Vec<SocketAddr>,
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
const DEFAULT_MAX_INFLIGHT: usize = 1024;
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    #[serde(default)]
    pub(super) servers: Vec<Spanned<String>>,
    pub(super) resolv_conf: Option<PathBuf>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) max_inflight: Option<usize>,
    pub(super) strategy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) filter_aaaa: bool,
}

impl Source<'_> {
    /// `[upstream]`, with the default servers of its `servers` key and of the
    /// `server=ADDR` rules already gathered.
    pub(super) fn upstream(
        &self,
        raw: RawUpstream,
        servers: Vec<SocketAddr>,
    ) -> Result<UpstreamConfig, ConfigError> {
        Ok(UpstreamConfig {
            servers,
            resolv_conf: raw
                .resolv_conf
                .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOLV_CONF)),
            timeout: self.timeout("[upstream] timeout", raw.timeout.as_ref())?,
            max_inflight: raw.max_inflight.unwrap_or(DEFAULT_MAX_INFLIGHT),
            strategy: self
                .strategy("[upstream] strategy", raw.strategy.as_ref())?
                .unwrap_or_default(),
            filter_aaaa: raw.filter_aaaa,
        })
    }

    pub(super) fn servers(
        &self,
        key: &str,
        raw: &[Spanned<String>],
    ) -> Result<Vec<SocketAddr>, ConfigError> {
        raw.iter()
            .map(|s| dnsmasq::parse_server(s.get_ref()).map_err(|p| self.invalid(key, s, p)))
            .collect()
    }

    pub(super) fn timeout(
        &self,
        key: &str,
        raw: Option<&Spanned<String>>,
    ) -> Result<Duration, ConfigError> {
        self.duration(key, raw, DEFAULT_TIMEOUT, Duration::from_millis(10))
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
