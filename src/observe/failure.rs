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
