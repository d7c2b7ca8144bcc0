//! The query log: one line per client query, on `[log] queries = true`.
//!
//! The line is a tracing event (target `splitdns::query`, level info), so the
//! plain or JSON format of the rest of the log applies to it too. The handler
//! checks the config's flag before calling in here, so with the log off a
//! query builds nothing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::dns::wire::Query;
use crate::dns::zone::Zone;
use crate::observe::metrics::{qtype_name, rcode_name};

/// The tracing target of query lines, for filters such as `splitdns::query=off`.
pub(crate) const TARGET: &str = "splitdns::query";

/// Where an answer came from, as the `upstream` field shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnsweredBy {
    /// This server, at `ADDR:PORT`.
    Server(SocketAddr),
    Cache,
    /// Made here: local rules, CHAOS, refusals and errors.
    Local,
    /// An expired cache entry (RFC 8767).
    Stale,
    /// Another client's fetch of the same question, in flight at the same time.
    Coalesced,
    /// The Consul mirror, current.
    Mirror,
    /// The Consul mirror while the agent does not answer.
    MirrorStale,
    /// No upstream gave an answer (the client got SERVFAIL).
    None,
}

impl fmt::Display for AnsweredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server(addr) => write!(f, "{addr}"),
            Self::Cache => f.write_str("cache"),
            Self::Local => f.write_str("local"),
            Self::Stale => f.write_str("stale"),
            Self::Coalesced => f.write_str("coalesced"),
            Self::Mirror => f.write_str("mirror"),
            Self::MirrorStale => f.write_str("mirror-stale"),
            Self::None => f.write_str("none"),
        }
    }
}

/// Writes the line for one answered query. `route` is `None` for queries
/// answered before routing (refused, CHAOS, malformed).
pub(crate) fn log(
    client: IpAddr,
    query: &Query,
    route: Option<&Zone>,
    by: AnsweredBy,
    rcode: u16,
    started: Instant,
) {
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let route = route.map_or_else(|| "-".to_string(), Zone::to_string);
    tracing::info!(
        target: TARGET,
        client = %client,
        name = %query.name,
        "type" = %qtype_name(query.qtype),
        route = %route,
        upstream = %by,
        rcode = %rcode_name(rcode),
        latency_ms,
        "query"
    );
}
