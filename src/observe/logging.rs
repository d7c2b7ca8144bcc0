//! The tracing subscriber: level from `--log-level` or RUST_LOG, format from `[log]`.
//!
//! Under systemd, stderr goes to the journal, which stamps every line itself
//! and reads a `<N>` syslog priority at the start of a line (sd-daemon(3)):
//! there, lines carry that prefix and no timestamp of our own, so
//! `journalctl -p warning -u splitdns` shows warnings and errors only.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogConfig, LogFormat};
use crate::observe::querylog;

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
    // Colours only for a person at a terminal, not for journald or a log file, and
    // not when NO_COLOR is set to anything but empty (no-color.org).
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_writer(std::io::stderr);
    let journal = stderr_is_journal();
    let plain = format::format().with_ansi(false);
    match (log.format, journal) {
        (LogFormat::Plain, false) => builder.init(),
        (LogFormat::Json, false) => builder.json().flatten_event(true).init(),
        (LogFormat::Plain, true) => {
            // The priority says the level; the journal shows it as colour and `-p` filters on it.
            let line = plain.without_time().with_level(false);
            builder.event_format(Journal(line)).init()
        }
        (LogFormat::Json, true) => {
            let json = plain.json().flatten_event(true).without_time();
            builder
                .fmt_fields(format::JsonFields::new())
                .event_format(Journal(json))
                .init()
        }
    }
}

/// `<3>` before a line that says why splitdns stopped, when stderr is the journal.
pub fn error_prefix() -> &'static str {
    if stderr_is_journal() { "<3>" } else { "" }
}

/// True when stderr is the journal: systemd sets `JOURNAL_STREAM` to the
/// `DEVICE:INODE` of the stream it connected, and a stderr redirected
/// elsewhere since (by a shell script in between) no longer matches it
/// (systemd.exec(5), "JOURNAL_STREAM").
pub(crate) fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((device, inode)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    device.parse() == Ok(meta.dev()) && inode.parse() == Ok(meta.ino())
}

/// A line format with the journal's `<N>` priority in front (sd-daemon(3)).
struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Lets one log line through per period and counts the rest, so a condition
/// that repeats on every query (a loop, a rebinding upstream) costs a counter
/// increment instead of a formatted line each time.
pub(crate) struct Every {
    seconds: u64,
    last: AtomicU64,
    skipped: AtomicU64,
}

impl Every {
    pub(crate) const fn seconds(seconds: u64) -> Self {
        Self {
            seconds,
            last: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// `Some(lines skipped since the last one)` when a line may be written now.
    pub(crate) fn due(&self) -> Option<u64> {
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
