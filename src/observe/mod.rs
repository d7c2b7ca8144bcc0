//! Seeing into it: the counters ([`metrics`]) and the failure kinds they
//! count ([`failure`]), reading them back ([`stats`]), `/metrics`, `/health`
//! and `/ready` over HTTP ([`http`]), one line per client query
//! ([`querylog`]) and the log set-up ([`logging`]). Everything records into
//! this layer; it reads the running server only through [`http::Report`].

pub(crate) mod failure;
pub(crate) mod http;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod querylog;
pub(crate) mod stats;
