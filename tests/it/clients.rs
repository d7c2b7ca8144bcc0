//! Real resolver clients against splitdns: the C libraries' own stub resolvers (musl, as every
//! Alpine container has it, and glibc), built from `support/clients/lookup.c`, ask splitdns on
//! 127.0.0.1:53 inside a network namespace the test creates, with a resolv.conf of its own.
//! What they make of an answer is the test: no reading of it is pinned here.

use crate::support::FakeUpstream;
use crate::support::clients::{self, Libc};
use crate::support::daemon::Daemon;
use crate::support::fixtures;
use crate::support::netns::{self, Netns};

/// `NO_DATA` and `HOST_NOT_FOUND` from <netdb.h>: the h_errno of `res_query` for an empty
/// answer and for NXDOMAIN, the same number in musl and glibc.
const NO_DATA: &str = "error: h_errno 4";
const HOST_NOT_FOUND: &str = "error: h_errno 1";

/// `local=/lan/` and `address=/gw.lan/192.0.2.1`: gw.lan has an A record and no AAAA.
/// getaddrinfo asks A and AAAA at once, and musl fails the whole lookup when either answer is
/// NXDOMAIN, which is right: RFC 8020 §2, "when an iterative caching DNS resolver receives a
/// response NXDOMAIN, [...] all names and resource record sets (RRsets) below that node SHOULD
/// be considered unreachable", and RFC 1034 §4.3.2 answers a name that is found without data
/// of the desired type with an empty answer, not a name error. So AAAA must be NODATA (RFC
/// 2308 §2.2: NOERROR, no answers, the SOA in the authority section); dnsmasq 2.90 says
/// NXDOMAIN, and from Alpine gw.lan then does not resolve at all, while glibc, which keeps the
/// A answer, gets 192.0.2.1. Both must get it, and a name with nothing in the zone must still
/// fail in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn musl_and_glibc_resolve_an_address_rule_name_in_a_local_zone() {
    const TEST: &str = "musl_and_glibc_resolve_an_address_rule_name_in_a_local_zone";
    if netns::skip(TEST) || clients::skip(TEST, Libc::Musl) || clients::skip(TEST, Libc::Glibc) {
        return;
    }
    let ns = Netns::new("clients");
    let (udp, tcp) = ns.udp_tcp("127.0.0.2:53".parse().unwrap());
    let internet = FakeUpstream::start_on(fixtures::internet(), udp, tcp);
    let config = format!(
        "rules = [\"local=/lan/\", \"address=/gw.lan/192.0.2.1\"]\n\n\
         [server]\nlisten = [\"127.0.0.1:53\"]\n\n\
         [upstream]\nservers = [\"{}\"]\n",
        internet.addr()
    );
    let daemon = Daemon::start(&config, Some(&ns));
    daemon.wait_ready();
    ns.resolv_conf("nameserver 127.0.0.1\n");

    for libc in [Libc::Musl, Libc::Glibc] {
        let gw = clients::getaddrinfo(&ns, libc, "gw.lan");
        let aaaa = clients::res_query(&ns, libc, "gw.lan", 28);
        let nas = clients::getaddrinfo(&ns, libc, "nas.lan");
        let nas_a = clients::res_query(&ns, libc, "nas.lan", 1);

        assert!(
            gw.ok && gw.lines == ["192.0.2.1"],
            "{libc:?} getaddrinfo(gw.lan): {gw:?}"
        );
        assert_eq!(aaaa.lines, [NO_DATA], "{libc:?} res_query(gw.lan, AAAA)");
        assert!(!nas.ok, "{libc:?} getaddrinfo(nas.lan): {nas:?}");
        assert_eq!(
            nas_a.lines,
            [HOST_NOT_FOUND],
            "{libc:?} res_query(nas.lan, A)"
        );
    }
    assert_eq!(internet.total(), 0, "lan is never forwarded");
}
