//! `[metrics]` and `[log]`: what splitdns tells about itself, over HTTP and in
//! its log.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::text::ConfigText;

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

pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Spanned<String>,
    pub(super) health_window: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    #[serde(default)]
    pub(super) queries: bool,
    pub(super) format: Option<Spanned<String>>,
}

impl ConfigText<'_> {
    pub(super) fn metrics(&self, raw: RawMetrics) -> Result<MetricsConfig, ConfigError> {
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

    pub(super) fn log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::parse;

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
}
