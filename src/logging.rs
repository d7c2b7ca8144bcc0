//! The tracing subscriber: level from `--log-level` or RUST_LOG, format from `[log]`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::querylog;

/// Installs the subscriber. The config is read first so that its `[log]` table
/// can choose the format; a config error is printed on its own line either way.
pub fn init(level: Option<&str>, log: LogConfig) {
    let mut filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    if log.queries {
        // Asked for in the config: shown whatever the general level.
        let directive = format!("{}=info", querylog::TARGET);
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    // Colours only for a person at a terminal, not for journald or a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
