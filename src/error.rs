//! What `splitdns` tells the operator when a command fails: `main` prints it
//! as one line, `splitdns: <this>`, and exits non-zero.

use crate::config::ConfigError;
use crate::host::privilege::PrivilegeError;
use crate::import::ImportError;
use crate::serve::control::ControlError;
use crate::serve::start::StartError;

/// Why a `splitdns` command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config could not be read or is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `run` could not start, or `check` says it would not.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The switch to `[server] user` failed.
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    /// `import-dnsmasq` could not read or write what it was given.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The control socket could not be made, or `splitdns control` failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// `generate` could not write its files.
    #[error("{dir}: cannot write the man pages and completions: {source}")]
    Generate { dir: String, source: std::io::Error },
}
