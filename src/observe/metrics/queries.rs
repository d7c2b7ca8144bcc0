//! Client queries as answered: by protocol, query type and RCODE, in a
//! fixed table of atomics, and the packets that got no reply at all.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::dns::wire::Protocol;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// One counter per [`Dropped`] reason.
pub(super) struct DroppedCounters([Counter; Dropped::ALL.len()]);

impl DroppedCounters {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let family = Family::<ReasonLabel, Counter>::default();
        let counters =
            Dropped::ALL.map(|d| family.get_or_create_owned(&ReasonLabel { reason: d.label() }));
        registry.register(
            "dropped_packets",
            "Packets that got no reply, by reason",
            family,
        );
        Self(counters)
    }

    pub(super) fn count(&self, why: Dropped) {
        self.0[why as usize].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::metrics::{Metrics, Scrape};

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
}
