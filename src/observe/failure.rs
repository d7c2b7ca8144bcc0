//! The ways one attempt at one upstream server fails: what upstream returns
//! and what the metrics count by kind, so neither depends on the other.

use std::io;

/// How one attempt at one server failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("timeout")]
    Timeout,
    #[error("SERVFAIL")]
    ServFail,
    #[error("REFUSED")]
    Refused,
    #[error("bad reply")]
    BadReply,
    #[error("network error: {0}")]
    Network(io::ErrorKind),
}

/// How a TLS handshake failed, as counted in
/// `splitdns_upstream_tls_handshake_failures_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    Expired,
    WrongName,
    UnknownIssuer,
    PinMismatch,
    /// Any other certificate or protocol failure.
    Other,
}

impl HandshakeFailure {
    pub(crate) const ALL: [Self; 5] = [
        Self::Expired,
        Self::WrongName,
        Self::UnknownIssuer,
        Self::PinMismatch,
        Self::Other,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::WrongName => "wrong_name",
            Self::UnknownIssuer => "unknown_issuer",
            Self::PinMismatch => "pin_mismatch",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Expired => "certificate expired or not yet valid",
            Self::WrongName => "certificate is not valid for the name verified",
            Self::UnknownIssuer => "certificate issuer unknown (not in the CA store or ca_file)",
            Self::PinMismatch => "certificate key matches none of pin_sha256",
            Self::Other => "TLS handshake failed",
        })
    }
}
