//! IPv6 end to end on the loopback ::1: a listener on `[::1]`, who it admits, upstreams on
//! `[::1]` (misses, TCP after truncation, failover between the families, dnsmasq's
//! `ADDR#PORT` lines) and reverse zones under `ip6.arpa`.
//!
//! A machine without ::1 fails these tests unless `SPLITDNS_SKIP` names `ipv6`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::client;
use crate::support::fixtures::{internet, load_ip};
use crate::support::{
    FakeUpstream, Mode, Proto, Splitdns, answer_ips, assert_rcode, name, prereq, query,
};

/// Whether the test must return now: ::1 cannot be bound here and `SPLITDNS_SKIP` names
/// `ipv6` (without that, a missing ::1 fails the test).
#[track_caller]
fn skipped(test: &str) -> bool {
    let missing = UdpSocket::bind("[::1]:0").err().map(|error| {
        format!(
            "no IPv6 loopback to bind [::1] on ({error}); enable it with sysctl net.ipv6.conf.lo.disable_ipv6=0"
        )
    });
    prereq::skip(test, "ipv6", missing)
}

/// A fake upstream serving `internet()` on UDP and TCP of one port of ::1.
fn six() -> FakeUpstream {
    for _ in 0..50 {
        let udp = UdpSocket::bind("[::1]:0").expect("bind [::1]:0");
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
            return FakeUpstream::start_on(internet(), udp, tcp);
        }
    }
    panic!("no port of ::1 free for both UDP and TCP");
}

/// A UDP port of ::1 that refuses every datagram (ICMP port unreachable): the socket that
/// holds it is connected elsewhere, so the kernel delivers it nothing from splitdns and
/// answers as for a closed port, while no other test can take the port. Keep it alive.
fn refusing_port() -> UdpSocket {
    let socket = UdpSocket::bind("[::1]:0").expect("bind [::1]:0");
    socket.connect("[::1]:9").expect("connect");
    socket
}

fn www() -> Vec<Ipv4Addr> {
    vec!["192.0.2.10".parse().unwrap()]
}

/// The name `ip` has under ip6.arpa (RFC 3596 §2.5): its 32 nibbles, low-order first.
fn ip6_arpa(ip: Ipv6Addr) -> String {
    let nibbles: Vec<String> = ip
        .octets()
        .iter()
        .rev()
        .flat_map(|b| [b & 15, b >> 4])
        .map(|n| format!("{n:x}"))
        .collect();
    format!("{}.ip6.arpa.", nibbles.join("."))
}

/// The address of `addrs` of the given family.
fn of_family(addrs: &[SocketAddr], v6: bool) -> SocketAddr {
    *addrs
        .iter()
        .find(|a| a.is_ipv6() == v6)
        .unwrap_or_else(|| panic!("no listener of that family in {addrs:?}"))
}

/// docs/configuration.md, `[server] listen`: "Where to answer, over UDP and TCP: `ADDR:PORT`,
/// `[V6]:PORT`, ..."; docs/behaviour.md, Access: "By default it answers only these clients:
/// loopback (`127.0.0.0/8`, `::1`); ...". A listener on `[::1]:0` with no `allow` answers a
/// client on ::1 over UDP and over TCP: a miss (forwarded, answered from the UDP thread's
/// table or the TCP task), then a hit from the cache (RFC 1035 §4.2: the same answer over
/// either transport), the upstream asked once per name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_ipv6_loopback_answers_udp_and_tcp_from_there() {
    const TEST: &str = "a_listener_on_ipv6_loopback_answers_udp_and_tcp_from_there";
    if skipped(TEST) {
        return;
    }
    let upstream = FakeUpstream::start(internet()).await;
    let config = "[server]\nlisten = [\"[::1]:0\"]\n[upstream]\nservers = [\"{up}\"]\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;
    assert!(dns.addr().is_ipv6(), "listening on {}", dns.addr());

    for _ in 0..2 {
        let udp = dns.udp(&query("www.example.", RecordType::A)).await;
        assert_rcode(&udp, ResponseCode::NoError);
        assert_eq!(answer_ips(&udp), www());
        let tcp = dns.tcp(&query("mail.example.", RecordType::A)).await;
        assert_rcode(&tcp, ResponseCode::NoError);
        assert_eq!(
            answer_ips(&tcp),
            vec!["192.0.2.25".parse::<Ipv4Addr>().unwrap()]
        );
    }
    assert_eq!(upstream.count("www.example.", RecordType::A), 1);
    assert_eq!(upstream.count("mail.example.", RecordType::A), 1);
}

/// docs/configuration.md, `[server] allow`: "Clients allowed to query. Everyone else gets
/// REFUSED. A list given here *replaces* the default, so include `127.0.0.0/8` and `::1`
/// yourself"; its type is "list of addresses or prefixes". A list naming ::1 as an
/// address, as a /128 or inside a wider IPv6 prefix admits a client on ::1, over UDP and TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_naming_ipv6_loopback_admits_it() {
    const TEST: &str = "an_allow_list_naming_ipv6_loopback_admits_it";
    if skipped(TEST) {
        return;
    }
    let upstream = FakeUpstream::start(internet()).await;
    for allow in ["::1", "::1/128", "::/64"] {
        let config = format!(
            "[server]\nlisten = [\"[::1]:0\"]\nallow = [\"10.0.0.0/8\", \"{allow}\"]\n\
             [upstream]\nservers = [\"{{up}}\"]\n"
        );
        let dns = Splitdns::start(&config, &[("up", &upstream)]).await;
        let msg = query("www.example.", RecordType::A);
        for reply in [dns.udp(&msg).await, dns.tcp(&msg).await] {
            assert_rcode(&reply, ResponseCode::NoError);
            assert_eq!(answer_ips(&reply), www(), "allow = {allow}");
        }
    }
}

/// docs/configuration.md, `[server] allow`: "Everyone else gets REFUSED. A list given here
/// *replaces* the default, so include `127.0.0.0/8` and `::1` yourself"; src/serve/handler.rs
/// answers a client outside it with RCODE REFUSED (RFC 1035 §4.1.1: "The name server
/// refuses to perform the specified operation for policy reasons"). A list naming IPv4
/// loopback and an IPv6 prefix without ::1 refuses a client on ::1, over UDP and TCP, and
/// forwards nothing, while a client on 127.0.0.1 of the same server is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_without_ipv6_loopback_refuses_it() {
    const TEST: &str = "an_allow_list_without_ipv6_loopback_refuses_it";
    if skipped(TEST) {
        return;
    }
    let upstream = FakeUpstream::start(internet()).await;
    let config = "[server]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n\
                  allow = [\"127.0.0.0/8\", \"fd00::/8\"]\n\
                  [upstream]\nservers = [\"{up}\"]\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;
    let (four, six) = (of_family(dns.addrs(), false), of_family(dns.addrs(), true));

    let msg = query("www.example.", RecordType::A);
    for reply in [client::udp(six, &msg).await, client::tcp(six, &msg).await] {
        assert_rcode(&reply, ResponseCode::Refused);
        assert_eq!(reply.metadata.id, msg.metadata.id);
        assert!(reply.answers.is_empty(), "{reply}");
    }
    assert_eq!(upstream.total(), 0, "refused queries are not forwarded");

    let reply = client::udp(four, &msg).await;
    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www());
}

/// docs/configuration.md, `[upstream] servers`: "An entry is `IP`, `IP#PORT` or `[V6]:PORT`
/// (UDP, TCP when truncated)". A default upstream on `[::1]:PORT` answers misses asked over
/// UDP (sent from the UDP thread's table) and over TCP (sent from a task), each asked of it
/// once; then a listener on ::1 too, with 50 misses in flight at once from several
/// clients, each answered with its own name's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_are_answered_by_an_upstream_on_ipv6_loopback() {
    const TEST: &str = "misses_are_answered_by_an_upstream_on_ipv6_loopback";
    if skipped(TEST) {
        return;
    }
    let upstream = six();
    upstream.set_mode(Mode::Slow(Duration::from_millis(50)));
    let config = "[server]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n\
                  [upstream]\nservers = [\"{six}\"]\ntimeout = \"3s\"\n";
    let dns = Splitdns::start(config, &[("six", &upstream)]).await;
    let (four, six) = (of_family(dns.addrs(), false), of_family(dns.addrs(), true));

    let udp = client::udp(four, &query("www.example.", RecordType::A)).await;
    assert_rcode(&udp, ResponseCode::NoError);
    assert_eq!(answer_ips(&udp), www());
    let tcp = client::tcp(four, &query("mail.example.", RecordType::A)).await;
    assert_rcode(&tcp, ResponseCode::NoError);
    assert_eq!(upstream.count("www.example.", RecordType::A), 1);
    assert_eq!(upstream.count("mail.example.", RecordType::A), 1);

    let mut asking = tokio::task::JoinSet::new();
    for i in 0..50u32 {
        let server = if i % 2 == 0 { six } else { four };
        asking.spawn(async move {
            let name = format!("n{i}.load.example.");
            let msg = query(&name, RecordType::A);
            let reply = if i % 5 == 0 {
                client::tcp(server, &msg).await
            } else {
                client::udp(server, &msg).await
            };
            assert_rcode(&reply, ResponseCode::NoError);
            assert_eq!(answer_ips(&reply), vec![load_ip(i)], "{name} via {server}");
        });
    }
    while let Some(done) = asking.join_next().await {
        done.unwrap();
    }
    for i in 0..50u32 {
        let name = format!("n{i}.load.example.");
        assert_eq!(upstream.count(&name, RecordType::A), 1, "{name}");
    }
}

/// docs/behaviour.md, Forwarding: "A UDP reply with TC set is asked again of the same server
/// over TCP" (RFC 7766 §5: a truncated UDP response is retried over TCP). An upstream on ::1
/// that sets TC on every UDP reply gets the query once over UDP and once over TCP, at its
/// own address, and the client gets the whole answer; the next server is not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_reply_from_an_ipv6_upstream_is_asked_again_over_tcp() {
    const TEST: &str = "a_truncated_reply_from_an_ipv6_upstream_is_asked_again_over_tcp";
    if skipped(TEST) {
        return;
    }
    let first = six();
    first.set_mode(Mode::AlwaysTc);
    let second = FakeUpstream::start(internet()).await;
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\n\
                  [upstream]\nservers = [\"{first}\", \"{second}\"]\ntimeout = \"1s\"\n";
    let dns = Splitdns::start(config, &[("first", &first), ("second", &second)]).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert!(!reply.metadata.truncation, "{reply}");
    assert_eq!(answer_ips(&reply), www());
    assert_eq!(first.count_proto(Proto::Udp), 1);
    assert_eq!(
        first.count_proto(Proto::Tcp),
        1,
        "the same query over TCP to ::1"
    );
    assert_eq!(second.total(), 0);
}

/// Servers asked in order, and back to the first once it answers again.
async fn fails_over_and_back(first: &FakeUpstream, second: &FakeUpstream) {
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\nthreads = 1\n\
                  [upstream]\nservers = [\"{first}\", \"{second}\"]\ntimeout = \"300ms\"\n";
    let dns = Splitdns::start(config, &[("first", first), ("second", second)]).await;
    let (from, to) = (first.addr(), second.addr());

    first.set_mode(Mode::Dead);
    let reply = dns.ask("n1.load.example.", RecordType::A).await;
    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(
        answer_ips(&reply),
        vec![load_ip(1)],
        "{from} dead, {to} next"
    );
    assert_eq!(first.count("n1.load.example.", RecordType::A), 1);
    assert_eq!(second.count("n1.load.example.", RecordType::A), 1);

    first.set_mode(Mode::Normal);
    for i in 2..6 {
        let name = format!("n{i}.load.example.");
        let reply = dns.ask(&name, RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply), vec![load_ip(i)], "{name}");
        assert_eq!(first.count(&name, RecordType::A), 1, "{name} of {from}");
        assert_eq!(second.count(&name, RecordType::A), 0, "{name} of {to}");
    }
}

/// docs/behaviour.md, Forwarding: "a route's servers are asked one at a time, in the listed
/// order. A timeout ... counts as a failure of that server and moves on to the next"; "A
/// server that fails 3 times in a row is down", so after one failure the first is still
/// asked first. A silent first server on ::1 fails over to a second on 127.0.0.1; once it
/// answers again, misses go to it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_ipv6_server_fails_over_to_an_ipv4_one_and_back() {
    const TEST: &str = "a_dead_ipv6_server_fails_over_to_an_ipv4_one_and_back";
    if skipped(TEST) {
        return;
    }
    let first = six();
    let second = FakeUpstream::start(internet()).await;
    fails_over_and_back(&first, &second).await;
}

/// As [`a_dead_ipv6_server_fails_over_to_an_ipv4_one_and_back`], the families the other way
/// round: a silent first server on 127.0.0.1, a second on ::1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_ipv4_server_fails_over_to_an_ipv6_one_and_back() {
    const TEST: &str = "a_dead_ipv4_server_fails_over_to_an_ipv6_one_and_back";
    if skipped(TEST) {
        return;
    }
    let first = FakeUpstream::start(internet()).await;
    let second = six();
    fails_over_and_back(&first, &second).await;
}

/// docs/behaviour.md, Forwarding: "A refusal (ICMP port unreachable: nothing listens there,
/// such as a Consul agent that is not running) is acted on as soon as it arrives, so a client
/// gets the next server's answer ... in milliseconds rather than after the timeout"; RFC 4443
/// §3.1 (ICMPv6 Destination Unreachable, code 4: port unreachable) is IPv6's form of it.
/// A first server on a refusing port of ::1, with a 5 s timeout, moves on to the second at
/// once, over UDP and over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_ipv6_server_moves_on_to_the_next_at_once() {
    const TEST: &str = "a_refusing_ipv6_server_moves_on_to_the_next_at_once";
    if skipped(TEST) {
        return;
    }
    let refusing = refusing_port();
    let closed = refusing.local_addr().unwrap();
    let second = FakeUpstream::start(internet()).await;
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\
         [upstream]\nservers = [\"{closed}\", \"{{second}}\"]\ntimeout = \"5s\"\n"
    );
    let dns = Splitdns::start(&config, &[("second", &second)]).await;

    let asked = Instant::now();
    let udp = dns.ask("www.example.", RecordType::A).await;
    let tcp = dns.tcp(&query("mail.example.", RecordType::A)).await;

    assert!(
        asked.elapsed() < Duration::from_millis(2500),
        "took {:?}: the timeout was waited out",
        asked.elapsed()
    );
    assert_rcode(&udp, ResponseCode::NoError);
    assert_eq!(answer_ips(&udp), www());
    assert_rcode(&tcp, ResponseCode::NoError);
    assert_eq!(second.total(), 2);
}

/// dnsmasq(8): `--server=[/[<domain>]/[domain/]][<server>[#<port>]]`, and "IPv6 addresses
/// may include an %interface scope-id"; docs/rules.md: "`server=/ZONE/.../ADDR#PORT` |
/// Forward the zones to this server" and "`server=ADDR` | One more default upstream". The
/// dnsmasq lines `server=/load.example/::1#PORT` and `server=::1#PORT` route the zone, and
/// everything else, to the server on ::1; the `[upstream] servers` entry on 127.0.0.1 comes
/// first for the rest ("`server=ADDR` rules are appended").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnsmasq_server_lines_with_an_ipv6_address_and_port_are_followed() {
    const TEST: &str = "dnsmasq_server_lines_with_an_ipv6_address_and_port_are_followed";
    if skipped(TEST) {
        return;
    }
    let zone = six();
    let default = six();
    let four = FakeUpstream::start(internet()).await;
    four.set_mode(Mode::Refused);
    let config = "rules = [\"server=/load.example/{zone#}\", \"server={default#}\"]\n\
                  [server]\nlisten = [\"127.0.0.1:0\"]\n\
                  [upstream]\nservers = [\"{four}\"]\ntimeout = \"1s\"\n";
    let upstreams = [("zone", &zone), ("default", &default), ("four", &four)];
    let rendered = crate::support::harness::render(config, &upstreams);
    assert!(rendered.contains("server=/load.example/::1#"), "{rendered}");
    let dns = Splitdns::start(config, &upstreams).await;

    let reply = dns.ask("n7.load.example.", RecordType::A).await;
    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), vec![load_ip(7)]);
    assert_eq!(zone.count("n7.load.example.", RecordType::A), 1);

    let reply = dns.ask("www.example.", RecordType::A).await;
    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www());
    assert_eq!(four.count("www.example.", RecordType::A), 1, "asked first");
    assert_eq!(default.count("www.example.", RecordType::A), 1, "then ::1");
    assert_eq!(zone.count("www.example.", RecordType::A), 0);
    assert_eq!(default.count("n7.load.example.", RecordType::A), 0);
}

/// docs/configuration.md, `[[route]] zones`: "A prefix (`"10.0.0.0/8"`, `"fd00::/8"`) means
/// its reverse zones, as `rev-server=` has them"; docs/rules.md, `rev-server=PREFIX,ADDR#PORT`:
/// "Forward the reverse zone of `PREFIX` (IPv4 or IPv6) ... A prefix that does not end on a
/// label boundary becomes every zone it covers"; RFC 3596 §2.5: one label per nibble under
/// ip6.arpa. A route for `2001:db8::/34` (two bits into a nibble: 2001:db8:0000:: to
/// 2001:db8:3fff::) and a `rev-server=` line for `fd00::/8` on ::1 send the PTR questions
/// inside them there, and those just outside to the default upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_reverse_zones_are_routed_by_prefix() {
    const TEST: &str = "ipv6_reverse_zones_are_routed_by_prefix";
    if skipped(TEST) {
        return;
    }
    let route = six();
    let rev_server = six();
    let default = FakeUpstream::start(internet()).await;
    let config = "rules = [\"rev-server=fd00::/8,{rev#}\"]\n\
                  [server]\nlisten = [\"127.0.0.1:0\"]\n\
                  [upstream]\nservers = [\"{default}\"]\ntimeout = \"1s\"\n\
                  [[route]]\nzones = [\"2001:db8::/34\"]\nservers = [\"{route}\"]\ntimeout = \"1s\"\n";
    let upstreams = [
        ("route", &route),
        ("rev", &rev_server),
        ("default", &default),
    ];
    let dns = Splitdns::start(config, &upstreams).await;

    let cases: [(&str, &FakeUpstream); 6] = [
        ("2001:db8::10", &route),
        ("2001:db8:3fff:ffff::1", &route),
        ("2001:db8:4000::1", &default),
        ("2001:db9::1", &default),
        ("fd12:3456::1", &rev_server),
        ("fe80::1", &default),
    ];
    for (ip, expected) in cases {
        let qname = ip6_arpa(ip.parse().unwrap());
        let reply = dns.ask(&qname, RecordType::PTR).await;
        // The fake knows no PTR: an answer from whichever server was asked.
        assert_rcode(&reply, ResponseCode::NXDomain);
        for (upstream, label) in [
            (&route, "route"),
            (&rev_server, "rev-server"),
            (&default, "default"),
        ] {
            let asked = upstream.count(&qname, RecordType::PTR);
            let wanted = usize::from(std::ptr::eq(upstream, expected));
            assert_eq!(
                asked, wanted,
                "{ip}: asked of the {label} server {asked} times"
            );
        }
    }
}

/// dnsmasq(8), `--host-record`: "Add A, AAAA and PTR records to the DNS"; docs/rules.md:
/// "`host-record=NAME[,NAME...],[IPV4],[IPV6][,TTL]` | A and AAAA for every name, and a PTR
/// from each address to the first name"; RFC 3596 §2.5 for the PTR's owner under ip6.arpa.
/// Asked over a listener on ::1, the IPv6 address's PTR names the first name, answered
/// locally without an upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_record_gives_a_ptr_under_ip6_arpa() {
    const TEST: &str = "a_host_record_gives_a_ptr_under_ip6_arpa";
    if skipped(TEST) {
        return;
    }
    let upstream = FakeUpstream::start(internet()).await;
    let config = "rules = [\"host-record=nas.lan,nas,192.0.2.5,2001:db8::5\"]\n\
                  [server]\nlisten = [\"[::1]:0\"]\n\
                  [upstream]\nservers = [\"{up}\"]\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;

    let qname = ip6_arpa("2001:db8::5".parse().unwrap());
    let reply = dns.ask(&qname, RecordType::PTR).await;

    assert_rcode(&reply, ResponseCode::NoError);
    let targets: Vec<_> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(ptr) => Some(ptr.0.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(targets, vec![name("nas.lan.")], "{reply}");
    let aaaa = dns.ask("nas.lan.", RecordType::AAAA).await;
    assert_rcode(&aaaa, ResponseCode::NoError);
    assert_eq!(aaaa.answers.len(), 1, "{aaaa}");
    assert_eq!(upstream.total(), 0);
}

/// docs/configuration.md, `[local] bogus_priv`: "Reverse lookups in the private zones of RFC
/// 6303 that no route covers get NXDOMAIN, with the SOA of their RFC 6303 zone ...; never
/// forwarded"; RFC 6303 §4.3 to §4.7 name the IPv6 ones: the unspecified and loopback
/// addresses, D.F.IP6.ARPA (fd00::/8), 8-B.E.F.IP6.ARPA (fe80::/10) and
/// 8.B.D.0.1.0.0.2.IP6.ARPA (2001:db8::/32). The first two zones are one address each, so
/// their PTR question is the zone's own name, which gets NODATA with the SOA ("and the SOA at
/// the zone's own name", the same key; RFC 6303 §3: NODATA "for queries for the zone name
/// itself"). Asked over a listener on ::1, each reaches no upstream; a public address's PTR
/// is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_priv_answers_the_ipv6_zones_of_rfc_6303_itself() {
    const TEST: &str = "bogus_priv_answers_the_ipv6_zones_of_rfc_6303_itself";
    if skipped(TEST) {
        return;
    }
    let upstream = FakeUpstream::start(internet()).await;
    let config = "[server]\nlisten = [\"[::1]:0\"]\n[upstream]\nservers = [\"{up}\"]\n\
                  [local]\nbogus_priv = true\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;

    let zero_nibbles = "0.".repeat(31);
    let (nodata, nxdomain) = (ResponseCode::NoError, ResponseCode::NXDomain);
    let cases = [
        ("::", format!("{zero_nibbles}0.ip6.arpa."), nodata),
        ("::1", format!("1.{zero_nibbles}ip6.arpa."), nodata),
        ("fd12:3456::1", "d.f.ip6.arpa.".to_string(), nxdomain),
        ("fe80::1", "8.e.f.ip6.arpa.".to_string(), nxdomain),
        ("febf::1", "b.e.f.ip6.arpa.".to_string(), nxdomain),
        (
            "2001:db8::1",
            "8.b.d.0.1.0.0.2.ip6.arpa.".to_string(),
            nxdomain,
        ),
    ];
    for (ip, zone, rcode) in cases {
        let qname = ip6_arpa(ip.parse().unwrap());
        let reply = dns.ask(&qname, RecordType::PTR).await;
        assert_rcode(&reply, rcode);
        assert!(reply.answers.is_empty(), "{ip}: {reply}");
        let soa: Vec<_> = reply
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .map(|r| r.name.to_ascii())
            .collect();
        assert_eq!(soa, vec![zone], "{ip}: {reply}");
    }
    assert_eq!(
        upstream.total(),
        0,
        "private reverse lookups are never forwarded"
    );

    let public = ip6_arpa("2001:4860::1".parse().unwrap());
    dns.ask(&public, RecordType::PTR).await;
    assert_eq!(upstream.count(&public, RecordType::PTR), 1);
}

/// RFC 5452 §9.1: a reply is taken only when it comes from the address and
/// port the query was sent to. A host's upstreams often mix the families (a
/// resolv.conf with `nameserver 1.1.1.1` and `nameserver 2606:4700::1111`,
/// Consul on 127.0.0.1 beside an IPv6 default), and an IPv4 socket cannot
/// send to an IPv6 server, while an IPv6 one reaches an IPv4 server from a
/// mapped address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) its reply does not
/// match. Misses alternating between an upstream on ::1 and one on 127.0.0.1,
/// on one UDP thread (whose table keeps a socket per query slot from one query
/// to the next), are each answered at once, by the upstream of their route,
/// asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_alternating_between_ipv4_and_ipv6_upstreams_are_each_answered() {
    const TEST: &str = "misses_alternating_between_ipv4_and_ipv6_upstreams_are_each_answered";
    if skipped(TEST) {
        return;
    }
    let six = six();
    let four = FakeUpstream::start(internet()).await;
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\nthreads = 1\n\
                  [upstream]\nservers = [\"{four}\"]\ntimeout = \"3s\"\n\
                  [[route]]\nzones = [\"load.example\"]\nservers = [\"{six}\"]\ntimeout = \"3s\"\n";
    let dns = Splitdns::start(config, &[("four", &four), ("six", &six)]).await;
    for i in 0..20 {
        let name = format!("n{i}.load.example.");
        let started = Instant::now();
        let reply = dns.ask(&name, RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply), vec![load_ip(i)], "{name}");
        assert_eq!(six.count(&name, RecordType::A), 1, "{name} asked of ::1");
        let reply = dns.ask("zero.example.", RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply), vec![Ipv4Addr::new(192, 0, 2, 20)]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name} and zero.example. took {:?}: a timeout, then the next try",
            started.elapsed()
        );
    }
    assert_eq!(four.count("zero.example.", RecordType::A), 20);
    assert_eq!(four.count("n0.load.example.", RecordType::A), 0);
}

/// As `wire::a_wildcard_listener_answers_from_the_address_asked`, over IPv6 (RFC 1122
/// §4.1.3.5: the reply's source is the address the request was sent to; a connected client
/// hears no other). A listener on `[::]` answers a client connected to [::1] from there: a
/// miss from the UDP thread's table, the same name from the cache, and a miss whose
/// truncated reply is asked again over TCP by a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_ipv6_listener_answers_from_the_address_asked() {
    const TEST: &str = "a_wildcard_ipv6_listener_answers_from_the_address_asked";
    if skipped(TEST) {
        return;
    }
    let upstream = FakeUpstream::start(internet()).await;
    let config = "[server]\nlisten = [\"[::]:0\"]\nthreads = 1\n\
                  [upstream]\nservers = [\"{up}\"]\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;
    let server = SocketAddr::from((Ipv6Addr::LOCALHOST, dns.addr().port()));
    let ask = |name: &'static str| async move {
        client::udp_connected(server, &query(name, RecordType::A)).await
    };
    for _ in 0..2 {
        assert_eq!(answer_ips(&ask("n1.load.example.").await), vec![load_ip(1)]);
    }
    assert_eq!(upstream.count("n1.load.example.", RecordType::A), 1);
    upstream.set_mode(Mode::AlwaysTc);
    assert_eq!(answer_ips(&ask("n2.load.example.").await), vec![load_ip(2)]);
    assert_eq!(upstream.count_proto(Proto::Tcp), 1, "n2 over TCP");
}
