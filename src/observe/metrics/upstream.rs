//! Each upstream server's messages, failures by kind and latency, and for
//! encrypted servers the connections opened and the TLS handshakes that
//! failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use super::register::registered;
use crate::observe::failure::{Failure, HandshakeFailure};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ServerLabels {
    pub(super) route: String,
    pub(super) server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    route: String,
    server: String,
    kind: &'static str,
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

/// The per-server families.
pub(super) struct UpstreamFamilies {
    queries: Family<ServerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    latency: Family<ServerLabels, Latency>,
    tls_handshake_failures: Family<FailureLabels, Counter>,
    connections: Family<ServerLabels, Counter>,
}

impl UpstreamFamilies {
    pub(super) fn register(registry: &mut Registry) -> Self {
        Self {
            queries: registered(
                registry,
                "upstream_queries",
                "Messages sent to an upstream server, retries over TCP included",
            ),
            failures: registered(
                registry,
                "upstream_failures",
                "Upstream attempts that gave no usable reply, by kind",
            ),
            latency: registered(
                registry,
                "upstream_latency_seconds",
                "Time from sending a query upstream to its usable reply",
            ),
            tls_handshake_failures: registered(
                registry,
                "upstream_tls_handshake_failures",
                "TLS handshakes with an encrypted upstream that failed, by kind: expired, wrong_name, \
                 unknown_issuer, pin_mismatch, other",
            ),
            connections: registered(
                registry,
                "upstream_connections",
                "Connections opened (TLS handshakes completed) to an encrypted upstream",
            ),
        }
    }

    /// The handles of `server` as an upstream of `route`.
    pub(super) fn server(&self, route: &str, server: impl std::fmt::Display) -> ServerMetrics {
        let labels = ServerLabels {
            route: route.to_string(),
            server: server.to_string(),
        };
        let failure = |kind| FailureLabels {
            route: labels.route.clone(),
            server: labels.server.clone(),
            kind,
        };
        ServerMetrics {
            queries: self.queries.get_or_create_owned(&labels),
            failures: FAILURE_KINDS.map(|kind| self.failures.get_or_create_owned(&failure(kind))),
            latency: self.latency.get_or_create_owned(&labels),
        }
    }

    /// The counters of an encrypted server.
    pub(super) fn encrypted(&self, route: &str, server: &str) -> TransportMetrics {
        let counter = |kind: HandshakeFailure| {
            self.tls_handshake_failures
                .get_or_create_owned(&FailureLabels {
                    route: route.to_string(),
                    server: server.to_string(),
                    kind: kind.label(),
                })
        };
        TransportMetrics {
            failures: HandshakeCounters(HandshakeFailure::ALL.map(counter)),
            connections: self.connections.get_or_create_owned(&ServerLabels {
                route: route.to_string(),
                server: server.to_string(),
            }),
        }
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use crate::observe::metrics::{Metrics, Scrape};

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
}
