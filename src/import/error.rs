//! Why an import stops: the dnsmasq config cannot be read, or `--split` cannot write
//! its fragments.

/// Why a dnsmasq config could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read the dnsmasq config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: already exists, and --split writes new files only: move it away or give another directory"
    )]
    Exists { path: String },
    #[error(
        "{first} and {second} would both be written to {path}: rename one of them, or import without --split"
    )]
    SameName {
        first: String,
        second: String,
        path: String,
    },
    #[error("{path}: cannot write there for --split: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}
