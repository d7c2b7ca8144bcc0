//! Query loops through an upstream: a Consul agent whose `recursors` list
//! splitdns, or a resolv.conf nameserver that forwards to splitdns, sends
//! back what it cannot answer (a DS or an unknown type for `consul.`), and
//! the query would wait for itself until the upstream timeout.
//!
//! Such a query arrives with the ID and the question splitdns sent, while
//! splitdns is still waiting for the reply: forwarders that pass a query on
//! as it is (Consul's recursor does) keep both. That is recognised here, with
//! no probe of our own, and answered SERVFAIL at once, so the upstream gives
//! up on that one name quickly and stays in use for every other one. A
//! forwarder that picks a new ID is not recognised: its copy joins the
//! single-flight of the original, and both end at the upstream timeout
//! (one query each way, never a storm).

use std::net::IpAddr;

use crate::dns::wire::{self, Query};
use crate::observe::logging::Every;
use crate::resolve::router::{Action, Router};

/// At most one error line per 10 s; the others are counted.
static LOG: Every = Every::seconds(10);

/// Whether `query` has the shape of the queries splitdns sends: EDNS with
/// its 1232-byte buffer and the name in lower case. A client's query whose ID
/// and question happen to match one in flight (1 in 65,536 for a busy name)
/// is then not taken for a loop unless it also looks like ours: dnsperf,
/// glibc and most stub resolvers send no EDNS at all.
fn looks_like_ours(query: &Query) -> bool {
    query
        .edns
        .is_some_and(|e| e.udp_size == wire::EDNS_UDP_SIZE && e.version == 0)
        && query.name.as_bytes() == query.lower.as_bytes()
}

/// Whether `query` is one of ours, forwarded back to us by the upstream we
/// are asking it. Logs an error naming that upstream.
pub(crate) fn came_back(router: &Router, query: &Query, client: IpAddr) -> bool {
    if !looks_like_ours(query) {
        return false;
    }
    let lower = query.lower.as_bytes();
    let Action::Forward(upstream) = &router.route(lower).action else {
        return false;
    };
    let mut question = [0u8; 259];
    let len = lower.len();
    question[..len].copy_from_slice(lower);
    question[len..len + 2].copy_from_slice(&query.qtype.to_be_bytes());
    question[len + 2..len + 4].copy_from_slice(&query.qclass.to_be_bytes());
    let Some(server) = upstream.outstanding(query.id, &question[..len + 4]) else {
        return false;
    };
    if let Some(also) = LOG.due() {
        tracing::error!(
            upstream = %server,
            name = %query.lower,
            qtype = query.qtype,
            %client,
            also_since_last_line = also,
            "query loop: {server} sent our own query back to us; answered SERVFAIL. \
             Make sure {server} does not forward to splitdns (Consul: its `recursors`)"
        );
    }
    true
}
