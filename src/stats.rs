//! Reading the counters back: for a scrape, and for the SIGUSR1 dump that
//! dnsmasq users know (cache size, entries, hits, misses, evictions, then one
//! line per upstream server with its queries and failures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::handler::{Shared, State};
use crate::metrics::Scrape;
use crate::router::Action;
use crate::upstream::Upstream;

/// The distinct upstream groups of `state`, in route order: routes that use
/// the default upstreams share one group, which is listed once.
pub fn upstreams(state: &State) -> Vec<&Arc<Upstream>> {
    let mut seen: Vec<&Arc<Upstream>> = Vec::new();
    for route in state.router.routes() {
        if let Action::Forward(upstream) = &route.action
            && !seen.iter().any(|u| Arc::ptr_eq(u, upstream))
        {
            seen.push(upstream);
        }
    }
    seen
}

impl Shared {
    /// The values a scrape reads now; `window` decides which servers are up.
    pub fn scrape(&self, window: Duration) -> Scrape {
        let state = self.state.load();
        let now = Instant::now();
        let mut servers = Vec::new();
        for upstream in upstreams(&state) {
            for server in upstream.members() {
                servers.push((
                    upstream.route().to_string(),
                    server.addr(),
                    server.health().is_up(window, now),
                ));
            }
        }
        Scrape {
            cache_entries: self.cache.len() as u64,
            cache_insertions: self.cache.insertions(),
            cache_evictions: self.cache.evictions(),
            inflight: self.inflight() as u64,
            upstreams: servers,
        }
    }

    /// Logs the statistics, as dnsmasq does on SIGUSR1.
    pub fn log_stats(&self) {
        let (hits, misses) = self.metrics.hits_and_misses();
        tracing::info!(
            size = self.cache.size(),
            entries = self.cache.len(),
            hits,
            misses,
            insertions = self.cache.insertions(),
            evictions = self.cache.evictions(),
            "cache statistics"
        );
        let state = self.state.load();
        for upstream in upstreams(&state) {
            for server in upstream.members() {
                let m = server.metrics();
                let kinds: Vec<String> = m
                    .failures_by_kind()
                    .filter(|(_, n)| *n > 0)
                    .map(|(kind, n)| format!("{kind} {n}"))
                    .collect();
                tracing::info!(
                    server = %server.addr(),
                    route = %upstream.route(),
                    queries = m.queries.get(),
                    failed = m.failures(),
                    failures = %kinds.join(", "),
                    "upstream statistics"
                );
            }
        }
    }
}
