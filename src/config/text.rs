//! The config text being validated, and how a check turns a bad value into a
//! [`ConfigError`] that points at its line. Each table's checks are methods on
//! [`ConfigText`] in the table's own file; these are the ones they all use.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::error::ConfigError;

/// The text being validated, so every error can point at its line.
pub(super) struct ConfigText<'a> {
    pub(super) path: String,
    pub(super) text: &'a str,
    /// A drop-in file: where things are defined names the file too.
    pub(super) fragment: bool,
}

impl ConfigText<'_> {
    pub(super) fn line_of(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }

    /// `what`, with the file's name when it is a drop-in file.
    pub(super) fn place(&self, what: String) -> String {
        if self.fragment {
            format!("{}: {what}", self.path)
        } else {
            what
        }
    }

    /// `key = "value"` is wrong for `problem`, on the line where it is written.
    pub(super) fn invalid(
        &self,
        key: &str,
        value: &Spanned<String>,
        problem: impl fmt::Display,
    ) -> ConfigError {
        self.invalid_at(key, value.span(), format!("{:?}", value.get_ref()), problem)
    }

    /// `key = value` is wrong for `problem`; `value` as TOML writes it, `span`
    /// where it is written.
    pub(super) fn invalid_at(
        &self,
        key: &str,
        span: Range<usize>,
        value: impl fmt::Display,
        problem: impl fmt::Display,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: self.line_of(span),
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.to_string(),
        }
    }

    /// `raw` as a duration of at least `min`, or `default` when absent.
    pub(super) fn duration(
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
}
