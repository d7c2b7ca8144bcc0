//! Values read at scrape time rather than counted: the cache's size and
//! turnover, the queries waiting for an upstream, each server's health.

use std::net::SocketAddr;

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::upstream::ServerLabels;

/// Values read at scrape time rather than counted.
#[derive(Debug, Default)]
pub struct Scrape {
    pub cache_entries: u64,
    pub cache_insertions: u64,
    pub cache_evictions: u64,
    pub inflight: u64,
    /// `(route, server, up)` for every upstream server of the current routes.
    pub upstreams: Vec<(String, SocketAddr, bool)>,
}

impl Scrape {
    /// Registers the values in `r`, the registry of this one scrape.
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "cache_entries",
            "Entries held in the cache, SRV additionals and expired ones included",
            ConstGauge::new(self.cache_entries as i64),
        );
        r.register(
            "cache_insertions",
            "Answers stored in the cache",
            ConstCounter::new(self.cache_insertions),
        );
        r.register(
            "cache_evictions",
            "Fresh entries pushed out of a full cache: raise [cache] size if this keeps growing",
            ConstCounter::new(self.cache_evictions),
        );
        r.register(
            "inflight_queries",
            "Client queries waiting for an upstream now",
            ConstGauge::new(self.inflight as i64),
        );
        let healthy = Family::<ServerLabels, Gauge>::default();
        for (route, server, up) in &self.upstreams {
            let labels = ServerLabels {
                route: route.clone(),
                server: server.to_string(),
            };
            healthy.get_or_create(&labels).set(i64::from(*up));
        }
        r.register(
            "upstream_healthy",
            "1 while the server answers, 0 once it has failed for the whole health window",
            healthy,
        );
    }
}
