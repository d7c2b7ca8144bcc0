//! Counters for `/metrics`, the CHAOS `*.bind` answers and the SIGUSR1 dump.
//!
//! Counting must cost a query no more than a relaxed atomic add: per-route and
//! per-server handles are looked up by label once, when the routing table is
//! built, and kept in the [`Route`](crate::resolve::router::Route) and the upstream
//! servers. The same labels give back the same handles, so a reload that keeps
//! a route or a server keeps its counts going instead of restarting them.
//!
//! Values that are read rather than counted (cache entries, health, queries in
//! flight) are taken at scrape time, see [`Scrape`]. The exposition is
//! prometheus-client's OpenMetrics text, which Prometheus scrapes natively.
//!
//! [`Metrics`] registers every family; each area declares its own, with its
//! help text, and makes its handles: client queries and dropped packets
//! (`queries`), each route's answers (`routes`), upstream servers and
//! encrypted connections (`upstream`), the listeners and UDP threads
//! (`listeners`), the config and its reloads (`reloads`), and what a scrape
//! reads now (`scrape`).

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::config::Config;

mod consul;
mod dnssec;
mod listeners;
mod queries;
mod register;
mod reloads;
mod routes;
mod scrape;
mod upstream;

pub(crate) use consul::{Forwarded, MirrorMetrics, WatchError};
pub(crate) use dnssec::{BogusReason, DnssecMetrics};
pub(crate) use listeners::TcpConnection;
pub(crate) use queries::{Dropped, QueryCounts, qtype_name, rcode_name};
pub(crate) use routes::RouteMetrics;
pub(crate) use scrape::Scrape;
pub(crate) use upstream::{HandshakeCounters, ServerMetrics, TransportMetrics};

/// Every metric name starts with this.
const PREFIX: &str = "splitdns";

/// The registry and the handles that outlive any one routing table.
pub struct Metrics {
    registry: Registry,
    pub queries: Arc<QueryCounts>,
    routes: routes::RouteFamilies,
    upstream: upstream::UpstreamFamilies,
    dropped: queries::DroppedCounters,
    listeners: listeners::ListenerMetrics,
    config: reloads::ConfigMetrics,
    consul: MirrorMetrics,
    dnssec: DnssecMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family, in the order `/metrics` lists them.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let queries = Arc::new(QueryCounts::default());
        registry.register_collector(Box::new(Arc::clone(&queries)));
        let routes = routes::RouteFamilies::register(&mut registry);
        let upstream = upstream::UpstreamFamilies::register(&mut registry);
        let dropped = queries::DroppedCounters::register(&mut registry);
        let listeners = listeners::ListenerMetrics::register(&mut registry);
        let config = reloads::ConfigMetrics::register(&mut registry);
        let consul = MirrorMetrics::register(&mut registry);
        let dnssec = DnssecMetrics::register(&mut registry);
        Self {
            registry,
            queries,
            routes,
            upstream,
            dropped,
            listeners,
            config,
            consul,
            dnssec,
        }
    }

    /// The handles of the route whose first zone is `route` (`.` for the default).
    pub fn route(&self, route: &str) -> RouteMetrics {
        self.routes.route(route)
    }

    /// The handles of `server` as an upstream of `route`.
    /// `server` is the entry as configured: its address for UDP servers,
    /// `tls://ADDR#NAME` or `https://ADDR/PATH#NAME` for encrypted ones, so
    /// the label shows the transport.
    pub fn server(&self, route: &str, server: impl std::fmt::Display) -> ServerMetrics {
        self.upstream.server(route, server)
    }

    /// The counters of an encrypted server: connections opened, and TLS
    /// handshake failures by kind.
    pub(crate) fn encrypted(&self, route: &str, server: &str) -> TransportMetrics {
        self.upstream.encrypted(route, server)
    }

    /// Client queries answered from the cache and sent upstream, over every
    /// route there has been: what hits.bind and misses.bind report.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.routes.hits_and_misses()
    }

    /// The count of datagrams read by UDP thread `thread` (from 0).
    pub(crate) fn udp_thread(&self, thread: usize) -> Counter {
        self.listeners.udp_thread(thread)
    }

    pub fn dropped(&self, why: Dropped) {
        self.dropped.count(why);
    }

    /// Counts an accepted TCP connection; the gauge goes down when the guard drops.
    pub fn tcp_connection(&self) -> TcpConnection {
        self.listeners.tcp_connection()
    }

    /// The Consul mirror's handles.
    pub(crate) fn consul(&self) -> &MirrorMetrics {
        &self.consul
    }

    /// The DNSSEC validator's handles.
    pub(crate) fn dnssec(&self) -> &DnssecMetrics {
        &self.dnssec
    }

    /// Records the config now in force; call it at start and after every reload.
    pub fn config_loaded(&self, config: &Config) {
        self.config.loaded(config);
    }

    /// Records a reload: the new config when it was taken, or that it was rejected.
    pub fn reloaded(&self, outcome: Result<&Config, ()>) {
        self.config.reloaded(outcome);
    }

    /// The OpenMetrics text for a scrape: the counters plus the values read now.
    pub fn encode(&self, now: &Scrape) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let mut scrape = Registry::with_prefix(PREFIX);
        now.register(&mut scrape);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &scrape);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::observe::failure::Failure;

    #[test]
    fn same_labels_give_the_same_counters() {
        let m = Metrics::new();
        let addr: SocketAddr = "127.0.0.1:8600".parse().unwrap();
        m.route("consul.").hits.inc();
        m.route("consul.").hits.inc();
        m.server("consul.", addr).failed(Failure::Timeout);
        assert_eq!(m.server("consul.", addr).failures(), 1);
        assert_eq!(m.hits_and_misses(), (2, 0));
        let text = m.encode(&Scrape::default());
        assert!(
            text.contains("splitdns_cache_hits_total{route=\"consul.\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "splitdns_upstream_failures_total{route=\"consul.\",server=\"127.0.0.1:8600\",kind=\"timeout\"} 1"
            ),
            "{text}"
        );
    }
}
