//! splitdns: a DNS forwarder and split resolver for hosts that run Consul and Docker.
//!
//! The folders, lowest first; each depends only on the ones above it in this
//! list (`ARCHITECTURE.md` has the map and one query's path):
//! - [`dns`]: bytes and names, no I/O: wire reads and patches, zone names,
//!   the question, the encoded answer, rewrite mapping.
//! - [`config`]: TOML tables, dnsmasq rule lines, drop-in files,
//!   `import-dnsmasq` -> a validated [`Config`].
//! - [`observe`]: metrics, statistics, `/metrics` and `/health`, query log, logging.
//! - [`resolve`]: a question becomes an answer: router, cache, upstream,
//!   health, SRV completion, loop check, rebind screen.
//! - [`host`]: the machine around it: interfaces, resolv.conf, hosts files,
//!   privileges, systemd notify, signals.
//! - [`state`]: what every listener shares and what a reload replaces.
//! - [`serve`]: start-up, sockets and the per-query pipeline, reload, the
//!   control socket.
//!
//! Beside them: [`cli`] (the command line), [`docs`] (man pages and
//! completions) and [`fuzzing`] (the fuzz targets' entry points).

pub mod cli;
pub mod config;
pub mod dns;
pub mod docs;
pub mod fuzzing;
pub mod host;
pub mod observe;
pub mod resolve;
pub mod serve;
pub mod state;

pub use config::Config;
pub use serve::start::{Error, Loader, Server, build_state, check, check_bind};
