//! `[consul]`: the Consul agent whose catalog splitdns mirrors, and how it
//! watches it. The table's presence turns the mirror on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::text::ConfigText;

/// `[consul]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulConfig {
    /// `http`: the agent's HTTP API.
    pub http: SocketAddr,
    /// `token_file`: the ACL token is read from here at start; `None`:
    /// `CONSUL_HTTP_TOKEN`, else no token.
    pub token_file: Option<PathBuf>,
    /// `stale_limit`: how long the mirror keeps answering once the agent has
    /// stopped answering over HTTP; past it, names are forwarded again.
    pub stale_limit: Duration,
    /// `watch_idle`: a service's watch stops after this long without a query.
    pub watch_idle: Duration,
    /// `max_watches`: services watched at once; names beyond are forwarded.
    pub max_watches: usize,
}

/// The address of Consul's HTTP API unless the agent was told otherwise.
const DEFAULT_HTTP: &str = "127.0.0.1:8500";
/// Long enough to ride out an agent restart or a leader election (seconds)
/// and a botched upgrade (minutes), short enough that a service moved during
/// a long outage is not answered from memory for hours.
const DEFAULT_STALE_LIMIT: Duration = Duration::from_secs(600);
const DEFAULT_WATCH_IDLE: Duration = Duration::from_secs(600);
/// Each watch is one blocking HTTP request, and one TCP connection, held at
/// the agent, which allows 200 per client address by default
/// (`limits.http_max_conns_per_client`), shared with every other local tool.
const DEFAULT_MAX_WATCHES: usize = 128;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsul {
    http: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    stale_limit: Option<Spanned<String>>,
    watch_idle: Option<Spanned<String>>,
    max_watches: Option<Spanned<usize>>,
}

impl ConfigText<'_> {
    pub(super) fn consul(&self, raw: RawConsul) -> Result<ConsulConfig, ConfigError> {
        let http = match &raw.http {
            None => DEFAULT_HTTP.parse().expect("a socket address"),
            Some(text) => parse_http(text.get_ref()).ok_or_else(|| {
                self.invalid(
                    "[consul] http",
                    text,
                    format!(
                        "expected the agent's HTTP address as IP:PORT, e.g. \"{DEFAULT_HTTP}\" \
                         (http:// may lead; https and host names are not supported)"
                    ),
                )
            })?,
        };
        let token_file = match raw.token_file {
            None => None,
            Some(path) if !PathBuf::from(path.get_ref()).is_absolute() => {
                return Err(self.invalid(
                    "[consul] token_file",
                    &path,
                    "expected an absolute path, e.g. \"/etc/splitdns/consul.token\"",
                ));
            }
            Some(path) => Some(PathBuf::from(path.into_inner())),
        };
        let max_watches = match raw.max_watches {
            Some(n) if *n.get_ref() == 0 => {
                return Err(self.invalid_at(
                    "[consul] max_watches",
                    n.span(),
                    0,
                    "must be at least 1: remove [consul] to turn the mirror off",
                ));
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_MAX_WATCHES,
        };
        Ok(ConsulConfig {
            http,
            token_file,
            stale_limit: self.duration(
                "[consul] stale_limit",
                raw.stale_limit.as_ref(),
                DEFAULT_STALE_LIMIT,
                Duration::ZERO,
            )?,
            watch_idle: self.duration(
                "[consul] watch_idle",
                raw.watch_idle.as_ref(),
                DEFAULT_WATCH_IDLE,
                Duration::from_secs(1),
            )?,
            max_watches,
        })
    }
}

/// `127.0.0.1:8500` or `http://127.0.0.1:8500`, a trailing `/` allowed.
fn parse_http(text: &str) -> Option<SocketAddr> {
    let text = text.strip_prefix("http://").unwrap_or(text);
    text.strip_suffix('/').unwrap_or(text).parse().ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Config, ConfigError};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn no_table_no_mirror_and_an_empty_table_takes_the_agents_default_port() {
        assert_eq!(parse("").unwrap().consul, None);
        let consul = parse("[consul]").unwrap().consul.unwrap();
        assert_eq!(consul.http.to_string(), "127.0.0.1:8500");
        assert_eq!(consul.stale_limit, Duration::from_secs(600));
        assert_eq!(consul.max_watches, 128);
        assert_eq!(consul.token_file, None);
    }

    #[test]
    fn http_takes_an_address_with_or_without_the_scheme() {
        for text in [
            "127.0.0.1:8501",
            "http://127.0.0.1:8501",
            "http://127.0.0.1:8501/",
        ] {
            let config = parse(&format!("[consul]\nhttp = \"{text}\"")).unwrap();
            assert_eq!(config.consul.unwrap().http.to_string(), "127.0.0.1:8501");
        }
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        let err = parse("\n[consul]\nhttp = \"https://consul:8501\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("test.toml:3: [consul] http = \"https://consul:8501\": expected"),
            "{err}"
        );
        let err = parse("[consul]\nmax_watches = 0").unwrap_err();
        assert!(err.to_string().contains("max_watches = 0"), "{err}");
        let err = parse("[consul]\ntoken_file = \"token\"").unwrap_err();
        assert!(err.to_string().contains("absolute path"), "{err}");
        let err = parse("[consul]\nstale_limit = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("[consul] stale_limit"), "{err}");
        let err = parse("[consul]\nhtpp = \"127.0.0.1:8500\"").unwrap_err();
        assert!(err.to_string().contains("htpp"), "{err}");
    }
}
