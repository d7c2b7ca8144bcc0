//! The Consul mirror: answers it gave and names it forwarded, its watches,
//! their errors and how old its copy of the catalog is.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::register::registered;

/// Why a name of the mirrored zone went to the agent's DNS port.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum Forwarded {
    /// The first query for a service: it starts the watch.
    unwatched,
    /// A watch has started and not yet read the catalog.
    syncing,
    /// The ACL token was denied the data, or results were filtered.
    acl,
    /// `[consul] max_watches` services are watched already.
    watch_cap,
    /// The agent has been unreachable for longer than `stale_limit`.
    stale_limit,
    /// A name or type the mirror does not answer (SOA, NS, prepared queries,
    /// mesh, host-name addresses, an unknown node or datacenter).
    unmirrored,
}

impl Forwarded {
    const ALL: [Self; 6] = [
        Self::unwatched,
        Self::syncing,
        Self::acl,
        Self::watch_cap,
        Self::stale_limit,
        Self::unmirrored,
    ];
}

/// What went wrong with a watch's request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum WatchError {
    /// No connection, a broken one, or no response in time.
    connect,
    /// A status other than 200, 403 and "No path to datacenter".
    status,
    /// 403: the token may not read it.
    acl_denied,
    /// 200 with `X-Consul-Results-Filtered-By-ACLs: true`.
    acl_filtered,
    /// A body that did not read as Consul's JSON.
    decode,
    /// The index went backwards (a snapshot restore, a new cluster).
    index_reset,
}

impl WatchError {
    const ALL: [Self; 6] = [
        Self::connect,
        Self::status,
        Self::acl_denied,
        Self::acl_filtered,
        Self::decode,
        Self::index_reset,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: Forwarded,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: WatchError,
}

/// The mirror's handles.
#[derive(Clone)]
pub(crate) struct MirrorMetrics {
    pub(crate) fresh: Counter,
    pub(crate) stale: Counter,
    forwarded: Family<ReasonLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    /// Service watches running.
    pub(crate) watches: Gauge,
    /// Seconds since the agent last answered, while it does not; 0 otherwise.
    pub(crate) age: Gauge,
}

impl MirrorMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let answers: Family<StateLabel, Counter> = registered(
            registry,
            "consul_mirror_answers",
            "Client queries answered from the Consul mirror: fresh, or stale while the agent is unreachable",
        );
        let forwarded: Family<ReasonLabel, Counter> = registered(
            registry,
            "consul_forwarded",
            "Client queries in the mirrored zone sent to the agent's DNS port instead, by reason",
        );
        let errors: Family<KindLabel, Counter> = registered(
            registry,
            "consul_watch_errors",
            "Failed or refused requests of the mirror's watches, by kind",
        );
        // Every label from the start, at 0, so a rate over it has a series.
        for reason in Forwarded::ALL {
            forwarded.get_or_create_owned(&ReasonLabel { reason });
        }
        for kind in WatchError::ALL {
            errors.get_or_create_owned(&KindLabel { kind });
        }
        Self {
            fresh: answers.get_or_create_owned(&StateLabel { state: "fresh" }),
            stale: answers.get_or_create_owned(&StateLabel { state: "stale" }),
            forwarded,
            errors,
            watches: registered(
                registry,
                "consul_watches",
                "Services the mirror watches now (one blocking HTTP request each)",
            ),
            age: registered(
                registry,
                "consul_mirror_age_seconds",
                "Seconds since the agent's HTTP API last answered, while it does not; 0 while it does",
            ),
        }
    }

    pub(crate) fn forwarded(&self, reason: Forwarded) {
        self.forwarded.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn error(&self, kind: WatchError) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }
}
