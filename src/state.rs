//! The state every listener shares: [`Shared`] (cache, metrics, the current
//! [`State`] behind an `ArcSwap`) and [`State`], what a reload replaces as a
//! whole (router, access list, local data). Everything below the per-query
//! pipeline is given what it needs from here; nothing here calls up into it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use ipnet::IpNet;

pub(crate) mod ratelimit;

use crate::config::{Config, TcpConfig};
use crate::host::local_data::{self, LocalData};
use crate::host::{interfaces, resolv};
use crate::observe::http::Report;
use crate::observe::metrics::{Metrics, Scrape};
use crate::observe::stats::{ServerStats, Stats};
use crate::resolve::cache::{Cache, Flights};
use crate::resolve::consul::Mirror;
use crate::resolve::dnssec::Validator;
use crate::resolve::rebind::Rebind;
use crate::resolve::router::Router;
use crate::state::ratelimit::RateLimit;

/// What a reload replaces as a whole: a query works on one snapshot throughout.
pub(crate) struct State {
    /// Shared with the next state when only `allow` changes (an interface
    /// came or went), so its upstream sockets are kept.
    pub router: Arc<Router>,
    pub allow: Vec<IpNet>,
    /// `[log] queries`: checked before anything of the log line is built.
    pub log_queries: bool,
    /// Swapped on its own when a hosts file changes; a reload brings a new one.
    pub local: ArcSwap<LocalData>,
    pub rebind: Rebind,
    /// `[dnssec] validate`: the validator, with its trust anchors and the
    /// keys it has fetched. `None`: answers are passed on unvalidated.
    pub dnssec: Option<Arc<Validator>>,
    /// Counts the routing tables: a new router gets the next epoch. Answers
    /// are fetched, coalesced and stored under the epoch of their state.
    pub epoch: u64,
}

/// What a [`State`] is made of besides the config's own keys: at start-up all
/// new; on a reload, the router or local data may be the running ones.
pub(crate) struct StateParts {
    pub router: Arc<Router>,
    pub allow: Vec<IpNet>,
    pub local: Arc<LocalData>,
    /// 0 at start; one more each time a reload brings a new router.
    pub epoch: u64,
    /// The running validator, kept with the router it was made for (an
    /// interface came or went), with the keys it has fetched. `None`: a new
    /// one, if `[dnssec] validate` asks for one.
    pub validator: Option<Arc<Validator>>,
}

impl State {
    /// The routing table, access list and local data for `config`, given the
    /// bound addresses; its routes and servers are counted in `metrics`. Fails
    /// only when a hosts file exists but cannot be read.
    pub(crate) fn build(
        config: &Config,
        bound: &[SocketAddr],
        metrics: &Metrics,
    ) -> Result<Self, local_data::LoadError> {
        let default_servers = resolv::default_servers(config, bound);
        if default_servers.is_empty() {
            tracing::warn!("no default upstream servers: names outside routed zones get SERVFAIL");
        }
        let local = Arc::new(LocalData::load(config)?);
        let parts = StateParts {
            router: Arc::new(Router::with_metrics(config, default_servers, metrics)),
            allow: interfaces::allow(config, bound),
            local,
            epoch: 0,
            validator: None,
        };
        Ok(Self::assemble(config, parts))
    }

    /// The one place a [`State`] is put together, at start-up and on every reload.
    pub(crate) fn assemble(config: &Config, parts: StateParts) -> Self {
        let dnssec = parts
            .validator
            .or_else(|| Validator::new(&config.dnssec, Arc::clone(&parts.router)).map(Arc::new));
        Self {
            router: parts.router,
            allow: parts.allow,
            log_queries: config.log.queries,
            local: ArcSwap::new(parts.local),
            rebind: Rebind::new(&config.guard),
            dnssec,
            epoch: parts.epoch,
        }
    }
}

/// Everything the listeners share. The cache lives outside [`State`], so a
/// reload keeps it.
pub(crate) struct Shared {
    state: ArcSwap<State>,
    cache: Cache,
    metrics: Metrics,
    /// Set while the listeners serve: what `/ready` reports.
    serving: AtomicBool,
    flights: Flights,
    misses: MissesInFlight,
    rate_limit: RateLimit,
    /// `[server] tcp_*`, fixed at start.
    tcp: TcpConfig,
    /// `[consul]`: the mirror of the agent's catalog, fixed at start.
    mirror: Option<Arc<Mirror>>,
}

/// The defences fixed at start: a reload does not change them.
pub(crate) struct Guards {
    pub rate_limit: RateLimit,
    pub tcp: TcpConfig,
}

/// What a reload never replaces besides the cache: the Consul mirror, with
/// its watches.
pub(crate) struct Kept {
    pub cache: Cache,
    pub mirror: Option<Arc<Mirror>>,
}

impl Shared {
    pub(crate) fn new(state: State, kept: Kept, metrics: Metrics, guards: Guards) -> Arc<Self> {
        Arc::new(Self {
            state: ArcSwap::from_pointee(state),
            cache: kept.cache,
            mirror: kept.mirror,
            metrics,
            serving: AtomicBool::new(false),
            flights: Flights::default(),
            misses: MissesInFlight::default(),
            rate_limit: guards.rate_limit,
            tcp: guards.tcp,
        })
    }

    /// The state in force now; a query keeps the one it started with.
    pub(crate) fn state(&self) -> Guard<Arc<State>> {
        self.state.load()
    }

    /// Puts `state` in force for the queries that start from now on.
    pub(crate) fn replace_state(&self, state: Arc<State>) {
        self.state.store(state);
    }

    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Consul mirror, when `[consul]` turned it on.
    pub(crate) fn mirror(&self) -> Option<&Mirror> {
        self.mirror.as_deref()
    }

    /// The fetches in flight, which a query for the same key joins.
    pub(crate) fn flights(&self) -> &Flights {
        &self.flights
    }

    /// Whether `client` may ask one more query at `now` (`[server] rate_limit`).
    pub(crate) fn admit(&self, client: IpAddr, now: Instant) -> bool {
        self.rate_limit.admit(client, now)
    }

    /// Counts a miss in flight until the guard drops, so shutdown can wait for it.
    pub(crate) fn miss_started(&self) -> MissGuard {
        self.misses.enter()
    }

    /// `[server] tcp_*`.
    pub(crate) fn tcp(&self) -> &TcpConfig {
        &self.tcp
    }

    /// Whether the listeners serve now, as `/ready` reports it.
    pub(crate) fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Relaxed);
    }

    /// Client queries waiting for an upstream now.
    pub(crate) fn inflight(&self) -> usize {
        self.misses.count.load(Ordering::Relaxed)
    }

    /// Waits until no miss is in flight, or `deadline` passes.
    pub(crate) async fn drain(&self, deadline: std::time::Duration) {
        let _ = tokio::time::timeout(deadline, self.misses.idle()).await;
    }
    /// The values a scrape reads now; `window` decides which servers are up.
    pub(crate) fn scrape(&self, window: Duration) -> Scrape {
        let state = self.state.load();
        let now = Instant::now();
        let mut servers = Vec::new();
        for upstream in state.router.upstream_groups() {
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
    pub(crate) fn stats(&self, window: Duration) -> Stats {
        let (hits, misses) = self.metrics.hits_and_misses();
        let state = self.state.load();
        let now = Instant::now();
        let mut servers = Vec::new();
        for upstream in state.router.upstream_groups() {
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
    pub(crate) fn log_stats(&self, window: Duration) {
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

    /// Re-reads the hosts files of the running state whenever one changes.
    /// Runs until aborted; follows reloads, since it looks at the current
    /// state each time.
    pub(crate) async fn watch_local_data(self: Arc<Self>) {
        let mut tick = tokio::time::interval(local_data::POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            local_data::refresh(&self.state.load().local);
        }
    }
}

impl Report for Shared {
    fn serving(&self) -> bool {
        self.serving.load(Ordering::Relaxed)
    }

    fn metrics_text(&self, window: Duration) -> String {
        self.metrics.encode(&self.scrape(window))
    }

    fn health(&self, window: Duration) -> Result<(), String> {
        let routes = self.state.load().router.check_health(window);
        let mirror = self
            .mirror()
            .map(|mirror| mirror.status(Instant::now()))
            .filter(|status| status.stale_for.is_some());
        match (routes, mirror) {
            (Ok(()), None) => Ok(()),
            (Err(routes), None) => Err(routes),
            // One line per problem, as the routes' are.
            (Ok(()), Some(mirror)) => Err(format!("{mirror}\n")),
            (Err(routes), Some(mirror)) => Err(format!("{routes}{mirror}\n")),
        }
    }
}

/// Counts misses in flight, so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct MissesInFlight {
    count: Arc<AtomicUsize>,
}

/// One miss in flight, counted until dropped.
pub(crate) struct MissGuard {
    count: Arc<AtomicUsize>,
}

impl MissesInFlight {
    fn enter(&self) -> MissGuard {
        self.count.fetch_add(1, Ordering::Relaxed);
        MissGuard {
            count: Arc::clone(&self.count),
        }
    }

    /// Polls rather than being notified: it runs once, at shutdown, and keeps
    /// the per-query path free of wake-ups.
    async fn idle(&self) {
        while self.count.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

impl Drop for MissGuard {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}
