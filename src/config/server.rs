//! `[server]`: where splitdns listens (`listen`), whom it answers (`allow`),
//! who it runs as (`user`), its limits on TCP clients (`tcp_*`) and its defences
//! against hostile clients and data (`rebind_*`, `rate_limit`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::text::ConfigText;
use crate::dns::zone::Zone;

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

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(a) => write!(f, "{a}"),
            Self::Interface { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    /// Spanned, so that an empty list is reported at its line.
    pub(super) listen: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) allow: Option<Vec<Spanned<String>>>,
    pub(super) rebind_protection: Option<bool>,
    #[serde(default)]
    pub(super) rebind_allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) rate_limit: u32,
    pub(super) tcp_max_connections: Option<Spanned<usize>>,
    pub(super) tcp_idle_timeout: Option<Spanned<String>>,
    pub(super) tcp_read_timeout: Option<Spanned<String>>,
    pub(super) tcp_max_queries: Option<Spanned<usize>>,
    pub(super) user: Option<Spanned<String>>,
    pub(super) threads: Option<Spanned<usize>>,
}

impl ConfigText<'_> {
    pub(super) fn guard(&self, raw: &RawServer) -> Result<GuardConfig, ConfigError> {
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

    pub(super) fn tcp(&self, raw: &RawServer) -> Result<TcpConfig, ConfigError> {
        let default = TcpConfig::default();
        let positive = |key: &str, value: &Option<Spanned<usize>>, default: usize| match value {
            Some(n) if *n.get_ref() == 0 => {
                Err(self.invalid_at(key, n.span(), 0, "must be at least 1"))
            }
            Some(n) => Ok(*n.get_ref()),
            None => Ok(default),
        };
        let min = Duration::from_millis(10);
        Ok(TcpConfig {
            max_connections: positive(
                "[server] tcp_max_connections",
                &raw.tcp_max_connections,
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
            max_queries: positive(
                "[server] tcp_max_queries",
                &raw.tcp_max_queries,
                default.max_queries,
            )?,
        })
    }

    pub(super) fn listen(
        &self,
        raw: Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<Listen>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(vec![Listen::Addr("127.0.0.1:53".parse().expect("literal"))]);
        };
        if raw.get_ref().is_empty() {
            return Err(self.invalid_at(
                "[server] listen",
                raw.span(),
                "[]",
                "give at least one ADDR:PORT, e.g. \"127.0.0.1:53\"",
            ));
        }
        raw.get_ref()
            .iter()
            .map(|l| parse_listen(l.get_ref()).map_err(|p| self.invalid("[server] listen", l, p)))
            .collect()
    }

    /// `threads`, or by default half the cores this process may run on.
    pub(super) fn threads(&self, raw: Option<Spanned<usize>>) -> Result<usize, ConfigError> {
        match raw {
            Some(n) if *n.get_ref() == 0 => Err(self.invalid_at(
                "[server] threads",
                n.span(),
                0,
                "must be at least 1 (leave it out for half the cores)",
            )),
            Some(n) => Ok(*n.get_ref()),
            None => Ok(default_threads()),
        }
    }

    pub(super) fn user(&self, raw: Option<Spanned<String>>) -> Result<Option<String>, ConfigError> {
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

    pub(super) fn allow(
        &self,
        raw: Option<Vec<Spanned<String>>>,
    ) -> Result<Option<Vec<IpNet>>, ConfigError> {
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
}

/// A `listen` entry that has none of its forms; the config error around it
/// names the key and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected ADDR:PORT, [V6]:PORT or IFNAME:PORT, e.g. \"127.0.0.1:53\" or \"docker0:53\"")]
pub struct ListenError;

/// `ADDR:PORT`, `[V6]:PORT`, a bare address (port 53) or `IFNAME:PORT`.
pub fn parse_listen(s: &str) -> Result<Listen, ListenError> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Listen::Addr(addr));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Listen::Addr(SocketAddr::new(ip, 53)));
    }
    let (name, port) = s.rsplit_once(':').ok_or(ListenError)?;
    let port = port.parse::<u16>().map_err(|_| ListenError)?;
    let valid_name = !name.is_empty()
        && name.len() < 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-@".contains(&b));
    if !valid_name {
        return Err(ListenError);
    }
    Ok(Listen::Interface {
        name: name.to_string(),
        port,
    })
}

/// Half the cores this process may run on (its CPU affinity, as systemd's
/// `CPUAffinity=` or `taskset` set it), at least one. splitdns answers only
/// its own host (localhost and the container bridge), so every query it
/// answers is also work for a client on the same cores, and the kernel's
/// side of a loopback exchange costs the client about what it costs
/// splitdns: a thread per core would compete with its own clients
/// (BENCHMARKS.md, "Threads").
pub(super) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (usize::from(n) / 2).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    /// Every mistake in a value names the file and the line it is on, as
    /// ripgrep reports a bad line (`path:line: error`): `[server] tcp_* = 0`
    /// and an empty `listen` are no exception.
    #[test]
    fn zero_tcp_limits_and_empty_listen_name_their_line() {
        for (text, expected) in [
            (
                "[server]\ntcp_max_queries = 0",
                "test.toml:2: [server] tcp_max_queries = 0: must be at least 1",
            ),
            (
                "[server]\nlisten = [\"127.0.0.1:53\"]\ntcp_max_connections = 0",
                "test.toml:3: [server] tcp_max_connections = 0: must be at least 1",
            ),
            (
                "# a comment\n[server]\nlisten = []",
                "test.toml:3: [server] listen = []: give at least one ADDR:PORT",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { .. }),
                "{text}: {err:?}"
            );
            assert!(err.to_string().starts_with(expected), "{text}: {err}");
        }
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
