//! Each route's answers: from the cache, fetched upstream, served stale or
//! made here by local rules.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::register::registered;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

/// One route's counters. `local` counts answers from local rules.
#[derive(Clone, Debug, Default)]
pub struct RouteMetrics {
    pub hits: Counter,
    pub misses: Counter,
    /// Client queries answered from an expired entry (RFC 8767) because the
    /// upstreams failed or were slow. Each of them is also one of `misses`.
    pub stale: Counter,
    pub local: Counter,
}

/// The per-route families, and every route handle handed out, by label:
/// hits.bind and misses.bind sum them.
pub(super) struct RouteFamilies {
    hits: Family<RouteLabel, Counter>,
    misses: Family<RouteLabel, Counter>,
    stale: Family<RouteLabel, Counter>,
    local: Family<RouteLabel, Counter>,
    routes: Mutex<HashMap<String, RouteMetrics>>,
}

impl RouteFamilies {
    pub(super) fn register(registry: &mut Registry) -> Self {
        Self {
            hits: registered(
                registry,
                "cache_hits",
                "Client queries answered from the cache, per route",
            ),
            misses: registered(
                registry,
                "cache_misses",
                "Client queries that needed an upstream, per route",
            ),
            stale: registered(
                registry,
                "cache_stale_answers",
                "Client queries answered from an expired entry (serve-stale), per route; each is also a miss",
            ),
            local: registered(
                registry,
                "local_answers",
                "Client queries answered by local rules (local=, address=), per route",
            ),
            routes: Mutex::default(),
        }
    }

    /// The handles of the route whose first zone is `route`.
    pub(super) fn route(&self, route: &str) -> RouteMetrics {
        let mut routes = self.routes.lock().expect("route metrics lock");
        routes
            .entry(route.to_string())
            .or_insert_with(|| {
                let label = RouteLabel {
                    route: route.to_string(),
                };
                RouteMetrics {
                    hits: self.hits.get_or_create_owned(&label),
                    misses: self.misses.get_or_create_owned(&label),
                    stale: self.stale.get_or_create_owned(&label),
                    local: self.local.get_or_create_owned(&label),
                }
            })
            .clone()
    }

    /// Hits and misses over every route there has been.
    pub(super) fn hits_and_misses(&self) -> (u64, u64) {
        let routes = self.routes.lock().expect("route metrics lock");
        routes.values().fold((0, 0), |(hits, misses), r| {
            (hits + r.hits.get(), misses + r.misses.get())
        })
    }
}
