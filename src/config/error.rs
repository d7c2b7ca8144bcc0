//! The error every table of the config reports through: which file, which line, which
//! key and value, and what to write instead.

/// A mistake in a config file, worded for the person who wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The text is not TOML, or a key or a value's type is not what the table
    /// takes: toml's own message, which names the line.
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    /// A value the table takes in form but not in meaning: every such error, in
    /// every table, is reported through this one, with its line.
    #[error("{path}:{line}: {key} = {value}: {problem}")]
    Invalid {
        path: String,
        line: usize,
        key: String,
        /// The value as TOML writes it: quoted when it is a string.
        value: String,
        problem: String,
    },
    #[error(
        "{path}: {at}: rewrite target {target} overlaps {zone}, which is rewritten too \
         ({other}); rewrites do not chain, point it at the final name"
    )]
    ChainedRewrite {
        path: String,
        at: String,
        target: String,
        zone: String,
        other: String,
    },
    #[error("{path}: zone {zone} is defined twice: {first} and {second}; keep one of them")]
    DuplicateZone {
        path: String,
        zone: String,
        first: String,
        second: String,
    },
    #[error("{path}: zone {zone}: {first} and {second} conflict: {problem}")]
    RuleConflict {
        path: String,
        zone: String,
        first: String,
        second: String,
        problem: &'static str,
    },
    #[error("{path}:{line}: {text}: {problem}")]
    Line {
        path: String,
        line: usize,
        text: String,
        problem: String,
    },
    #[error(
        "{path}:{line}: {key} can only be set in the main config file; a drop-in file holds \
         only rules, [[route]] and [[record]]"
    )]
    FragmentKey {
        path: String,
        line: usize,
        key: String,
    },
}
