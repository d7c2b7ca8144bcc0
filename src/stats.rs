//! Reading the counters back: for a scrape, and for the SIGUSR1 dump that
//! dnsmasq users know (cache size, entries, hits, misses, evictions, then one
//! line per upstream server with its queries, failures and health), which
//! `splitdns control stats` prints.

use std::fmt;
use std::net::SocketAddr;
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

    /// The statistics now; `window` decides which servers are up.
    pub fn stats(&self, window: Duration) -> Stats {
        let (hits, misses) = self.metrics.hits_and_misses();
        let state = self.state.load();
        let now = Instant::now();
        let mut servers = Vec::new();
        for upstream in upstreams(&state) {
            for server in upstream.members() {
                let m = server.metrics();
                let kinds: Vec<String> = m
                    .failures_by_kind()
                    .filter(|(_, n)| *n > 0)
                    .map(|(kind, n)| format!("{kind} {n}"))
                    .collect();
                servers.push(ServerStats {
                    addr: server.addr(),
                    route: upstream.route().to_string(),
                    queries: m.queries.get(),
                    failed: m.failures(),
                    failures: kinds.join(", "),
                    up: server.health().is_up(window, now),
                });
            }
        }
        Stats {
            size: self.cache.size(),
            entries: self.cache.len(),
            hits,
            misses,
            insertions: self.cache.insertions(),
            evictions: self.cache.evictions(),
            servers,
        }
    }

    /// Logs the statistics, as dnsmasq does on SIGUSR1.
    pub fn log_stats(&self, window: Duration) {
        let stats = self.stats(window);
        tracing::info!(
            size = stats.size,
            entries = stats.entries,
            hits = stats.hits,
            misses = stats.misses,
            insertions = stats.insertions,
            evictions = stats.evictions,
            "cache statistics"
        );
        for server in &stats.servers {
            tracing::info!(
                server = %server.addr,
                route = %server.route,
                queries = server.queries,
                failed = server.failed,
                failures = %server.failures,
                health = server.health(),
                "upstream statistics"
            );
        }
    }
}

/// What SIGUSR1 logs and `splitdns control stats` prints.
#[derive(Debug, Clone)]
pub struct Stats {
    /// `[cache] size`, in entries.
    pub size: u64,
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    pub insertions: u64,
    pub evictions: u64,
    /// Every upstream server, in route order.
    pub servers: Vec<ServerStats>,
}

/// One upstream server's counters, for the route it serves.
#[derive(Debug, Clone)]
pub struct ServerStats {
    pub addr: SocketAddr,
    pub route: String,
    pub queries: u64,
    pub failed: u64,
    /// `timeout 2, servfail 1`: the kinds that happened.
    pub failures: String,
    /// Not failing for longer than the health window (what `/health` says).
    pub up: bool,
}

impl ServerStats {
    fn health(&self) -> &'static str {
        if self.up { "up" } else { "down" }
    }
}

/// One `key value` line for the cache, then one per server.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cache size {} entries {} hits {} misses {} insertions {} evictions {}",
            self.size, self.entries, self.hits, self.misses, self.insertions, self.evictions
        )?;
        for s in &self.servers {
            write!(
                f,
                "server {} route {} queries {} failed {} health {}",
                s.addr,
                s.route,
                s.queries,
                s.failed,
                s.health()
            )?;
            if !s.failures.is_empty() {
                write!(f, " ({})", s.failures)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
