//! dnsmasq's statistics over DNS: TXT queries in class CHAOS for `*.bind`
//! names, answered in dnsmasq's formats so existing checks and exporters
//! (`dig CH TXT hits.bind`, dnsmasq_exporter) keep working.
//!
//! `cachesize.bind` is the configured size; `insertions.bind` and
//! `evictions.bind` the cache's counts; `hits.bind` and `misses.bind` client
//! queries answered from the cache and sent upstream (CHAOS queries are in
//! neither); `servers.bind` one string per upstream address,
//! `ADDR#PORT QUERIES FAILED`; `version.bind` and `id.server` name the software
//! and the host. Only allowed clients get here: the handler refuses the rest first.

use std::net::SocketAddr;

use crate::dns::wire::{self, Query};
use crate::state::{Shared, State};

/// Writes the answer to a CHAOS query for one of the names above into `out`;
/// false (and `out` untouched) for any other query.
pub(crate) fn answer(
    shared: &Shared,
    state: &State,
    query: &Query,
    limit: usize,
    out: &mut Vec<u8>,
) -> bool {
    if query.qclass != wire::CLASS_CH {
        return false;
    }
    let Some(strings) = strings(shared, state, query.lower.as_bytes()) else {
        return false;
    };
    let wants_txt = query.qtype == wire::TYPE_TXT || query.qtype == wire::TYPE_ANY;
    write(query, if wants_txt { &strings } else { &[] }, limit, out);
    true
}

/// The TXT strings for `name` (lowercased wire form), if it is one we answer.
fn strings(shared: &Shared, state: &State, name: &[u8]) -> Option<Vec<String>> {
    let number = |n: u64| Some(vec![n.to_string()]);
    match name {
        b"\x09cachesize\x04bind\x00" => number(shared.cache().size()),
        b"\x0ainsertions\x04bind\x00" => number(shared.cache().insertions()),
        b"\x09evictions\x04bind\x00" => number(shared.cache().evictions()),
        b"\x04hits\x04bind\x00" => number(shared.metrics().hits_and_misses().0),
        b"\x06misses\x04bind\x00" => number(shared.metrics().hits_and_misses().1),
        b"\x07servers\x04bind\x00" => Some(servers(state)),
        b"\x07version\x04bind\x00" => Some(vec![format!("splitdns {}", env!("CARGO_PKG_VERSION"))]),
        b"\x02id\x06server\x00" => Some(vec![host_name()]),
        _ => None,
    }
}

/// `ADDR#PORT QUERIES FAILED` per upstream address, summed over the routes
/// that use it, as dnsmasq sums the server lines that name one address.
fn servers(state: &State) -> Vec<String> {
    let mut totals: Vec<(SocketAddr, u64, u64)> = Vec::new();
    for upstream in state.router.upstream_groups() {
        for server in upstream.members() {
            let queries = server.metrics().queries.get();
            let failed = server.metrics().failures();
            match totals.iter_mut().find(|(addr, ..)| *addr == server.addr()) {
                Some((_, q, f)) => {
                    *q += queries;
                    *f += failed;
                }
                None => totals.push((server.addr(), queries, failed)),
            }
        }
    }
    totals
        .into_iter()
        .map(|(addr, queries, failed)| format!("{}#{} {queries} {failed}", addr.ip(), addr.port()))
        .collect()
}

/// The kernel's host name, as `hostname` prints it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// An authoritative answer with one CH TXT record holding `strings` (none: NODATA).
fn write(query: &Query, strings: &[String], limit: usize, out: &mut Vec<u8>) {
    query.write_head(wire::stored_flags(true, false, wire::RCODE_NOERROR), out);
    let question_end = out.len();
    if !strings.is_empty() {
        out[6..8].copy_from_slice(&1u16.to_be_bytes());
        // Owner: a pointer to the question name at offset 12 (RFC 1035 §4.1.4).
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&wire::TYPE_TXT.to_be_bytes());
        out.extend_from_slice(&wire::CLASS_CH.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let rdlen_at = out.len();
        out.extend_from_slice(&[0, 0]);
        for s in strings {
            // A character-string is at most 255 bytes (RFC 1035 §3.3).
            let bytes = &s.as_bytes()[..s.len().min(255)];
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        let rdlen = (out.len() - rdlen_at - 2) as u16;
        out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
    query.fit_and_finish(out, question_end, limit);
}
