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
//! Why this file is long: every counter is declared, registered with its help
//! text and resolved per route and server here, so this one file lists
//! everything `/metrics` exposes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::dns::wire::Protocol;
use crate::observe::failure::{Failure, HandshakeFailure};

/// Every metric name starts with this.
const PREFIX: &str = "splitdns";

/// The registry and the handles that outlive any one routing table.
pub struct Metrics {
    registry: Registry,
    pub queries: Arc<QueryCounts>,
    families: Families,
    /// Every route handle handed out, by label: hits.bind and misses.bind sum them.
    routes: Mutex<HashMap<String, RouteMetrics>>,
    dropped: [Counter; Dropped::ALL.len()],
    udp_datagrams: Family<ThreadLabel, Counter>,
    pub tcp_open: Gauge,
    tcp_accepted: Counter,
    reloads_ok: Counter,
    reloads_failed: Counter,
    config_info: Family<HashLabel, Gauge>,
    config_hash: Mutex<String>,
}

struct Families {
    hits: Family<RouteLabel, Counter>,
    misses: Family<RouteLabel, Counter>,
    stale: Family<RouteLabel, Counter>,
    local: Family<RouteLabel, Counter>,
    upstream_queries: Family<ServerLabels, Counter>,
    upstream_failures: Family<FailureLabels, Counter>,
    upstream_latency: Family<ServerLabels, Latency>,
    tls_handshake_failures: Family<FailureLabels, Counter>,
    upstream_connections: Family<ServerLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    route: String,
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    route: String,
    server: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabel {
    hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreadLabel {
    thread: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
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

/// One upstream server's counters, for the route it serves.
#[derive(Clone, Debug, Default)]
pub struct ServerMetrics {
    /// Every message sent: UDP queries and the TCP retries after a truncated reply.
    pub queries: Counter,
    failures: [Counter; FAILURE_KINDS.len()],
    pub latency: Latency,
}

/// Failure kinds as labelled; [`Failure::Network`] covers refused connections
/// (ICMP port unreachable over UDP, a reset over TCP) and other socket errors.
const FAILURE_KINDS: [&str; 5] = ["timeout", "servfail", "refused", "bad_reply", "network"];

fn failure_index(failure: Failure) -> usize {
    match failure {
        Failure::Timeout => 0,
        Failure::ServFail => 1,
        Failure::Refused => 2,
        Failure::BadReply => 3,
        Failure::Network(_) => 4,
    }
}

impl ServerMetrics {
    pub fn failed(&self, failure: Failure) {
        self.failures[failure_index(failure)].inc();
    }

    /// Failures of every kind, for servers.bind and SIGUSR1.
    pub fn failures(&self) -> u64 {
        self.failures.iter().map(Counter::get).sum()
    }

    /// `(kind, count)` for every kind.
    pub fn failures_by_kind(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        FAILURE_KINDS
            .iter()
            .copied()
            .zip(self.failures.iter().map(Counter::get))
    }
}

/// Why a packet got no reply at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Shorter than a DNS header.
    TooShort,
    /// QR=1: a response, which a server never answers (it could be a reflection).
    NotAQuery,
}

impl Dropped {
    const ALL: [Self; 2] = [Self::TooShort, Self::NotAQuery];

    fn label(self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::NotAQuery => "not_a_query",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let queries = Arc::new(QueryCounts::default());
        registry.register_collector(Box::new(Arc::clone(&queries)));
        let families = Families::register(&mut registry);

        let dropped_family = Family::<ReasonLabel, Counter>::default();
        let dropped = Dropped::ALL
            .map(|d| dropped_family.get_or_create_owned(&ReasonLabel { reason: d.label() }));
        registry.register(
            "dropped_packets",
            "Packets that got no reply, by reason",
            dropped_family,
        );
        let udp_datagrams = Family::<ThreadLabel, Counter>::default();
        registry.register(
            "udp_datagrams",
            "Datagrams read from the UDP listeners, by the UDP thread that read them",
            udp_datagrams.clone(),
        );
        let tcp_open = Gauge::default();
        registry.register(
            "tcp_connections",
            "TCP client connections open now",
            tcp_open.clone(),
        );
        let tcp_accepted = Counter::default();
        registry.register(
            "tcp_connections_accepted",
            "TCP client connections accepted",
            tcp_accepted.clone(),
        );

        let reloads = Family::<ResultLabel, Counter>::default();
        let reloads_ok = reloads.get_or_create_owned(&ResultLabel { result: "ok" });
        let reloads_failed = reloads.get_or_create_owned(&ResultLabel { result: "failed" });
        registry.register("config_reloads", "Config reloads, by result", reloads);
        let config_info = Family::<HashLabel, Gauge>::default();
        registry.register(
            "config_info",
            "1, labelled with the SHA-256 of the config in force: of the config file, then of each file it includes, as read",
            config_info.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "1, labelled with the splitdns version", build);

        Self {
            registry,
            queries,
            families,
            routes: Mutex::default(),
            dropped,
            udp_datagrams,
            tcp_open,
            tcp_accepted,
            reloads_ok,
            reloads_failed,
            config_info,
            config_hash: Mutex::default(),
        }
    }

    /// The handles of the route whose first zone is `route` (`.` for the default).
    pub fn route(&self, route: &str) -> RouteMetrics {
        let mut routes = self.routes.lock().expect("route metrics lock");
        routes
            .entry(route.to_string())
            .or_insert_with(|| {
                let label = RouteLabel {
                    route: route.to_string(),
                };
                let f = &self.families;
                RouteMetrics {
                    hits: f.hits.get_or_create_owned(&label),
                    misses: f.misses.get_or_create_owned(&label),
                    stale: f.stale.get_or_create_owned(&label),
                    local: f.local.get_or_create_owned(&label),
                }
            })
            .clone()
    }

    /// The handles of `server` as an upstream of `route`.
    /// `server` is the entry as configured: its address for UDP servers,
    /// `tls://ADDR#NAME` or `https://ADDR/PATH#NAME` for encrypted ones, so
    /// the label shows the transport.
    pub fn server(&self, route: &str, server: impl std::fmt::Display) -> ServerMetrics {
        let labels = ServerLabels {
            route: route.to_string(),
            server: server.to_string(),
        };
        let f = &self.families;
        let failure = |kind| FailureLabels {
            route: labels.route.clone(),
            server: labels.server.clone(),
            kind,
        };
        ServerMetrics {
            queries: f.upstream_queries.get_or_create_owned(&labels),
            failures: FAILURE_KINDS
                .map(|kind| f.upstream_failures.get_or_create_owned(&failure(kind))),
            latency: f.upstream_latency.get_or_create_owned(&labels),
        }
    }

    /// The counters of an encrypted server: connections opened, and TLS
    /// handshake failures by kind.
    pub(crate) fn encrypted(&self, route: &str, server: &str) -> TransportMetrics {
        let f = &self.families;
        let counter = |kind: HandshakeFailure| {
            f.tls_handshake_failures
                .get_or_create_owned(&FailureLabels {
                    route: route.to_string(),
                    server: server.to_string(),
                    kind: kind.label(),
                })
        };
        TransportMetrics {
            failures: HandshakeCounters(HandshakeFailure::ALL.map(counter)),
            connections: f.upstream_connections.get_or_create_owned(&ServerLabels {
                route: route.to_string(),
                server: server.to_string(),
            }),
        }
    }

    /// Client queries answered from the cache and sent upstream, over every
    /// route there has been: what hits.bind and misses.bind report.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        let routes = self.routes.lock().expect("route metrics lock");
        routes.values().fold((0, 0), |(hits, misses), r| {
            (hits + r.hits.get(), misses + r.misses.get())
        })
    }

    /// The count of datagrams read by UDP thread `thread` (from 0).
    pub(crate) fn udp_thread(&self, thread: usize) -> Counter {
        self.udp_datagrams
            .get_or_create_owned(&ThreadLabel { thread })
    }

    pub fn dropped(&self, why: Dropped) {
        self.dropped[why as usize].inc();
    }

    /// Counts an accepted TCP connection; the gauge goes down when the guard drops.
    pub fn tcp_connection(&self) -> TcpConnection {
        self.tcp_accepted.inc();
        self.tcp_open.inc();
        TcpConnection(self.tcp_open.clone())
    }

    /// Records the config now in force; call it at start and after every reload.
    pub fn config_loaded(&self, config: &Config) {
        let hash = config.hash.clone();
        let mut current = self.config_hash.lock().expect("config hash lock");
        if *current != hash {
            self.config_info.remove(&HashLabel {
                hash: current.clone(),
            });
            self.config_info
                .get_or_create(&HashLabel { hash: hash.clone() })
                .set(1);
            *current = hash;
        }
    }

    /// Records a reload: the new config when it was taken, or that it was rejected.
    pub fn reloaded(&self, outcome: Result<&Config, ()>) {
        match outcome {
            Ok(config) => {
                self.reloads_ok.inc();
                self.config_loaded(config);
            }
            Err(()) => {
                self.reloads_failed.inc();
            }
        }
    }

    /// The OpenMetrics text for a scrape: the counters plus the values read now.
    pub fn encode(&self, now: &Scrape) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let scrape = now.registry();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &scrape);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }
}

impl Families {
    fn register(registry: &mut Registry) -> Self {
        let f = Self {
            hits: Family::default(),
            misses: Family::default(),
            stale: Family::default(),
            local: Family::default(),
            upstream_queries: Family::default(),
            upstream_failures: Family::default(),
            upstream_latency: Family::default(),
            tls_handshake_failures: Family::default(),
            upstream_connections: Family::default(),
        };
        registry.register(
            "cache_hits",
            "Client queries answered from the cache, per route",
            f.hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Client queries that needed an upstream, per route",
            f.misses.clone(),
        );
        registry.register(
            "cache_stale_answers",
            "Client queries answered from an expired entry (serve-stale), per route; each is also a miss",
            f.stale.clone(),
        );
        registry.register(
            "local_answers",
            "Client queries answered by local rules (local=, address=), per route",
            f.local.clone(),
        );
        registry.register(
            "upstream_queries",
            "Messages sent to an upstream server, retries over TCP included",
            f.upstream_queries.clone(),
        );
        registry.register(
            "upstream_failures",
            "Upstream attempts that gave no usable reply, by kind",
            f.upstream_failures.clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a query upstream to its usable reply",
            f.upstream_latency.clone(),
        );
        registry.register(
            "upstream_tls_handshake_failures",
            "TLS handshakes with an encrypted upstream that failed, by kind: expired, wrong_name, \
             unknown_issuer, pin_mismatch, other",
            f.tls_handshake_failures.clone(),
        );
        registry.register(
            "upstream_connections",
            "Connections opened (TLS handshakes completed) to an encrypted upstream",
            f.upstream_connections.clone(),
        );
        f
    }
}

/// Keeps the open-connections gauge up while a TCP connection lives.
pub struct TcpConnection(Gauge);

impl Drop for TcpConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

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
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix(PREFIX);
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
        r
    }
}

/// Query types counted by name; the rest are counted as `other`.
const QTYPES: [(u16, &str); 15] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (48, "DNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (255, "ANY"),
];
/// RCODEs counted by name (BADVERS is extended: RFC 6891 §6.1.3); the rest are `other`.
const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
];
const NQ: usize = QTYPES.len() + 1;
const NR: usize = RCODES.len() + 1;

/// The mnemonic of a query type, or `TYPEn` (RFC 3597 §5).
pub(crate) fn qtype_name(qtype: u16) -> std::borrow::Cow<'static, str> {
    match QTYPES.iter().find(|(t, _)| *t == qtype) {
        Some((_, name)) => (*name).into(),
        None => format!("TYPE{qtype}").into(),
    }
}

/// The mnemonic of an RCODE, or `RCODEn`.
pub(crate) fn rcode_name(rcode: u16) -> std::borrow::Cow<'static, str> {
    match RCODES.iter().find(|(r, _)| *r == rcode) {
        Some((_, name)) => (*name).into(),
        None => format!("RCODE{rcode}").into(),
    }
}

/// Client queries by protocol, query type and RCODE: a fixed table of
/// atomics, so counting one is an index computation and an add.
#[derive(Debug)]
pub struct QueryCounts {
    counts: [AtomicU64; 2 * NQ * NR],
}

impl Default for QueryCounts {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl QueryCounts {
    pub fn count(&self, protocol: Protocol, qtype: u16, rcode: u16) {
        self.counts[Self::index(protocol, qtype, rcode)].fetch_add(1, Ordering::Relaxed);
    }

    fn index(protocol: Protocol, qtype: u16, rcode: u16) -> usize {
        let q = QTYPES
            .iter()
            .position(|(t, _)| *t == qtype)
            .unwrap_or(NQ - 1);
        let r = RCODES
            .iter()
            .position(|(c, _)| *c == rcode)
            .unwrap_or(NR - 1);
        (protocol as usize * NQ + q) * NR + r
    }

    /// The count for one label combination (for tests and the CHAOS answers).
    pub fn get(&self, protocol: Protocol, qtype: u16, rcode: u16) -> u64 {
        self.counts[Self::index(protocol, qtype, rcode)].load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    protocol: &'static str,
    qtype: &'static str,
    rcode: &'static str,
}

/// Only the combinations seen so far are exported: 256 zero series help no one.
impl Collector for QueryCounts {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "queries",
            "Client queries answered, by protocol, query type and RCODE",
            None,
            MetricType::Counter,
        )?;
        for (i, count) in self.counts.iter().enumerate() {
            let value = count.load(Ordering::Relaxed);
            if value == 0 {
                continue;
            }
            let (p, rest) = (i / (NQ * NR), i % (NQ * NR));
            let labels = QueryLabels {
                protocol: if p == 0 { "udp" } else { "tcp" },
                qtype: QTYPES.get(rest / NR).map_or("other", |(_, n)| n),
                rcode: RCODES.get(rest % NR).map_or("other", |(_, n)| n),
            };
            let family = metric.encode_family(&labels)?;
            ConstCounter::new(value).encode(family)?;
        }
        Ok(())
    }
}

/// Upper bounds of the latency buckets, in seconds: loopback agents answer in
/// well under a millisecond, internet resolvers in tens of milliseconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A latency histogram of plain atomics: prometheus-client's own takes a lock
/// on every observation.
#[derive(Clone, Debug, Default)]
pub struct Latency(Arc<LatencyBuckets>);

#[derive(Debug, Default)]
struct LatencyBuckets {
    /// Per bucket, not cumulative; the last is +Inf.
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&upper| secs <= upper)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self
            .0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(counts.iter().copied())
            .collect();
        let sum = self.0.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_seen_query_labels_are_exported() {
        let m = Metrics::new();
        m.queries.count(Protocol::Udp, 1, 0);
        m.queries.count(Protocol::Udp, 1, 0);
        m.queries.count(Protocol::Tcp, 4242, 16);
        let text = m.encode(&Scrape::default());
        assert!(
            text.contains(
                "splitdns_queries_total{protocol=\"udp\",qtype=\"A\",rcode=\"NOERROR\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "splitdns_queries_total{protocol=\"tcp\",qtype=\"other\",rcode=\"BADVERS\"} 1"
            ),
            "{text}"
        );
        assert_eq!(text.matches("splitdns_queries_total{").count(), 2, "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

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

    #[test]
    fn latency_buckets_are_cumulative() {
        let m = Metrics::new();
        let s = m.server(".", "192.0.2.1:53".parse::<SocketAddr>().unwrap());
        s.latency.observe(Duration::from_micros(300));
        s.latency.observe(Duration::from_millis(30));
        let text = m.encode(&Scrape::default());
        let bucket = |le: &str| {
            format!(
                "splitdns_upstream_latency_seconds_bucket{{le=\"{le}\",route=\".\",server=\"192.0.2.1:53\"}}"
            )
        };
        assert!(text.contains(&format!("{} 1", bucket("0.0005"))), "{text}");
        assert!(text.contains(&format!("{} 2", bucket("0.05"))), "{text}");
        assert!(text.contains(&format!("{} 2", bucket("+Inf"))), "{text}");
        assert!(
            text.contains(
                "splitdns_upstream_latency_seconds_count{route=\".\",server=\"192.0.2.1:53\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn config_hash_label_follows_the_config() {
        let m = Metrics::new();
        let a = Config::builtin();
        m.config_loaded(&a);
        let first = m.encode(&Scrape::default());
        let b = Config::from_toml("[cache]\nsize = 1\n", std::path::Path::new("b.toml")).unwrap();
        m.reloaded(Ok(&b));
        m.reloaded(Err(()));
        let second = m.encode(&Scrape::default());
        let info = |t: &str| {
            t.lines()
                .find(|l| l.starts_with("splitdns_config_info{"))
                .unwrap()
                .to_string()
        };
        assert_ne!(info(&first), info(&second));
        assert_eq!(
            second.matches("splitdns_config_info{").count(),
            1,
            "{second}"
        );
        assert!(
            second.contains("splitdns_config_reloads_total{result=\"ok\"} 1"),
            "{second}"
        );
        assert!(
            second.contains("splitdns_config_reloads_total{result=\"failed\"} 1"),
            "{second}"
        );
    }
}

/// The counters of one encrypted upstream server.
#[derive(Clone, Debug, Default)]
pub(crate) struct TransportMetrics {
    /// Connections opened: TLS handshakes (and for HTTPS the HTTP/2 preface) completed.
    pub(crate) connections: Counter,
    pub(crate) failures: HandshakeCounters,
}

/// The handshake failure counters of one server, by [`HandshakeFailure`].
#[derive(Clone, Debug, Default)]
pub(crate) struct HandshakeCounters(pub(crate) [Counter; 5]);

impl HandshakeCounters {
    pub(crate) fn count(&self, kind: HandshakeFailure) {
        self.0[kind as usize].inc();
    }
}
