//! The tracing subscriber: level from `--log-level` or RUST_LOG, format from `[log]`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Lets one log line through per period and counts the rest, so a condition
/// that repeats on every query (a loop, a rebinding upstream) costs a counter
/// increment instead of a formatted line each time.
pub struct Every {
    seconds: u64,
    last: AtomicU64,
    skipped: AtomicU64,
}

impl Every {
    pub const fn seconds(seconds: u64) -> Self {
        Self {
            seconds,
            last: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// `Some(lines skipped since the last one)` when a line may be written now.
    pub fn due(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last.load(Ordering::Relaxed);
        let due = now >= last + self.seconds
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            Some(self.skipped.swap(0, Ordering::Relaxed))
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}
