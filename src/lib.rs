//! splitdns: a DNS forwarder and split resolver for hosts that run Consul and Docker.
//!
//! The folders, lowest first; each depends only on the ones above it in this
//! list (`ARCHITECTURE.md` has the map and one query's path):
//! - `dns`: bytes and names, no I/O: wire reads and patches, zone names,
//!   the question, the encoded answer, rewrite mapping.
//! - [`config`]: TOML tables, dnsmasq rule lines, drop-in files -> a
//!   validated [`Config`].
//! - [`import`]: `import-dnsmasq`: a dnsmasq.conf and its includes -> the
//!   splitdns TOML that does the same.
//! - `observe`: metrics, statistics, `/metrics` and `/health`, query log, logging.
//! - `resolve`: a question becomes an answer: router, cache, upstream,
//!   health, SRV completion, loop check, rebind screen.
//! - `host`: the machine around it: interfaces, resolv.conf, hosts files,
//!   privileges, systemd notify, signals.
//! - `state`: what every listener shares and what a reload replaces.
//! - `serve`: start-up, sockets and the per-query pipeline, reload, the
//!   control socket.
//!
//! Beside them: [`Error`] (what a failed command tells the operator), [`cli`]
//! (the command line), [`docs`] (man pages and completions) and `fuzzing`
//! (the fuzz targets' entry points, behind the `fuzzing` feature).

pub mod cli;
pub mod config;
pub(crate) mod dns;
pub mod docs;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod host;
pub mod import;
pub(crate) mod observe;
pub(crate) mod resolve;
pub(crate) mod serve;
pub(crate) mod state;

pub use config::Config;
pub use error::Error;
pub use serve::reload::Loader;
pub use serve::start::{Server, StartError, check, check_bind};

/// Logging set-up, for `main`.
pub mod logging {
    pub use crate::observe::logging::{error_prefix, init};
}

/// The control socket: `main` binds it before dropping privileges, and
/// `splitdns control` talks to it.
pub mod control {
    pub use crate::serve::control::{ControlError, Socket, request, socket_path};
}

/// The process around the server: the switch to `[server] user` and the
/// OS signals.
pub mod process {
    pub use crate::host::privilege::{switch_to, user_exists};
    pub use crate::host::signal::controls;
}

/// The hot path's pieces, one by one, for the benches and property tests.
pub mod parts {
    pub use crate::dns::answer::{Answer, TtlPolicy};
    pub use crate::dns::wire::Query;
    pub use crate::resolve::cache::{Cache, CacheKey, Cached, Served};
    pub use crate::resolve::router::Router;
}
