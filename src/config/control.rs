//! `[control]`: the local socket that `splitdns control` talks to.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// Where the packaged and example configs put the control socket, and where
/// `splitdns control` looks when no config names one.
pub const DEFAULT_SOCKET: &str = "/run/splitdns/control.sock";

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes,
/// one of them the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why a `[control] socket` path cannot be used; the config error around it
/// names the key, the value and its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SocketPathError {
    #[error("expected an absolute path, e.g. \"{}\"", DEFAULT_SOCKET)]
    Relative,
    #[error(
        "a Unix socket path holds at most {} bytes; pick a shorter one",
        MAX_SOCKET_PATH
    )]
    TooLong,
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlConfig {
    /// `socket`: the Unix socket `splitdns control` connects to, created at
    /// start with mode 0660 and owned by `[server] user`. `None` (the table or
    /// the key absent): no control socket.
    pub socket: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub(super) socket: Option<Spanned<String>>,
}

impl RawControl {
    /// The validated table, or the value that is wrong and why.
    pub(super) fn validate(self) -> Result<ControlConfig, (Spanned<String>, SocketPathError)> {
        let Some(socket) = self.socket else {
            return Ok(ControlConfig::default());
        };
        let path = PathBuf::from(socket.get_ref());
        if !path.is_absolute() {
            return Err((socket, SocketPathError::Relative));
        }
        if socket.get_ref().len() > MAX_SOCKET_PATH {
            return Err((socket, SocketPathError::TooLong));
        }
        Ok(ControlConfig { socket: Some(path) })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn no_control_table_means_no_socket() {
        assert_eq!(parse("").unwrap().control.socket, None);
        assert_eq!(parse("[control]").unwrap().control.socket, None);
    }

    #[test]
    fn the_socket_path_is_taken_as_written() {
        let config = parse("[control]\nsocket = \"/run/splitdns/control.sock\"").unwrap();
        assert_eq!(
            config.control.socket.as_deref(),
            Some(Path::new("/run/splitdns/control.sock"))
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("[control]\nsokcet = \"/run/x.sock\"").unwrap_err();
        assert!(err.to_string().contains("sokcet"), "{err}");
    }

    #[test]
    fn a_relative_or_overlong_path_names_the_key_and_line() {
        let err = parse("\n[control]\nsocket = \"control.sock\"").unwrap_err();
        let err = err.to_string();
        assert!(
            err.starts_with(
                "test.toml:3: [control] socket = \"control.sock\": expected an absolute path"
            ),
            "{err}"
        );
        let long = format!("/{}", "s".repeat(120));
        let err = parse(&format!("[control]\nsocket = \"{long}\"")).unwrap_err();
        assert!(err.to_string().contains("at most 107 bytes"), "{err}");
    }
}
