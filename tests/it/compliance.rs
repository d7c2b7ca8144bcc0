//! What a protocol compliance tester or a picky client checks, each against the RFC that says
//! it: the AD bit on forwarded answers, the OPT record on FORMERR, questions a forwarder must
//! not pass on (meta-TYPEs, zone transfers, classes no upstream serves).
//!
//! Queries are written byte by byte, so that every bit and count is the one the RFC talks
//! about, and replies are read the same way.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::support::Splitdns;
use crate::support::client::{self, udp_exchange_raw};
use crate::support::harness::{STANDARD, parse};

const TYPE_A: u16 = 1;
const TYPE_OPT: u16 = 41;
const TYPE_TKEY: u16 = 249;
const TYPE_TSIG: u16 = 250;
const TYPE_IXFR: u16 = 251;
const TYPE_AXFR: u16 = 252;
const CLASS_IN: u16 = 1;
const CLASS_CH: u16 = 3;
const CLASS_HS: u16 = 4;
const CLASS_NONE: u16 = 254;

const FLAG_RD: u8 = 0x01;
const FLAG_AD: u8 = 0x20;
const FORMERR: u8 = 1;
const REFUSED: u8 = 5;

/// The EDNS COOKIE option code (RFC 7873 §4).
const OPTION_COOKIE: u16 = 10;

/// A question: name, type, class.
type Question = (&'static str, u16, u16);

/// `name` in wire form (labels without escapes).
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// An OPT record: 1232 bytes, version 0, DO as given, these options.
fn opt(dnssec_ok: bool, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    let mut out = vec![0];
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&1232u16.to_be_bytes());
    out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

/// A query with ID `id`, header byte 3 `flags3` (AD, CD), RD set, the given questions and
/// OPT records in the additional section.
fn raw_query(id: u16, flags3: u8, questions: &[Question], opts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[FLAG_RD, flags3]);
    out.extend_from_slice(&(questions.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    for (name, qtype, qclass) in questions {
        out.extend_from_slice(&wire_name(name));
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&qclass.to_be_bytes());
    }
    for record in opts {
        out.extend_from_slice(record);
    }
    out
}

fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x5c00);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn rcode(raw: &[u8]) -> u8 {
    raw[3] & 0x0f
}

fn count(raw: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([raw[at], raw[at + 1]])
}

/// The OPT record of a reply whose only record it is (an error reply): its 11 bytes, or
/// `None` when the reply has none.
fn sole_opt(raw: &[u8]) -> Option<&[u8]> {
    if count(raw, 10) != 1 || count(raw, 6) != 0 || count(raw, 8) != 0 {
        return None;
    }
    let record = &raw[raw.len().checked_sub(11)?..];
    (record[..3] == [0, 0, 41]).then_some(record)
}

async fn tcp_exchange_raw(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = client::tcp_connect(server).await;
    client::tcp_write(&mut stream, bytes).await;
    client::tcp_read(&mut stream)
        .await
        .expect("connection closed without a reply")
}

/// A validating upstream that follows RFC 6840 §5.8 itself: it sets AD on its answer (data
/// it validated) only when the query carried AD or DO. `A 192.0.2.7` for A, NODATA for
/// other types.
async fn validating_upstream() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0; 4096];
        loop {
            let Ok((len, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let query = &buf[..len];
            let mut end = 12;
            while end < len && query[end] != 0 {
                end += usize::from(query[end]) + 1;
            }
            let question_end = end + 5;
            if question_end > len {
                continue;
            }
            let qtype = count(query, end + 1);
            // The OPT, when there is one, follows the question: owner, type, class, then
            // the TTL field whose third byte holds DO (RFC 6891 §6.1.3).
            let dnssec_ok = count(query, 10) > 0
                && len >= question_end + 11
                && query[question_end + 7] & 0x80 != 0;
            let ad = if query[3] & FLAG_AD != 0 || dnssec_ok {
                FLAG_AD
            } else {
                0
            };
            let mut reply = query[..2].to_vec();
            reply.extend_from_slice(&[0x80 | (query[2] & FLAG_RD), 0x80 | ad]);
            reply.extend_from_slice(&[0, 1, 0, u8::from(qtype == TYPE_A), 0, 0, 0, 0]);
            reply.extend_from_slice(&query[12..question_end]);
            if qtype == TYPE_A {
                reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                reply.extend_from_slice(&[192, 0, 2, 7]);
            }
            let _ = sock.send_to(&reply, from).await;
        }
    });
    addr
}

/// RFC 6840 §5.8: "validating resolvers SHOULD only set the AD bit when a response both meets
/// the conditions listed in Section 3.2.3 of [RFC4035], and the request contained either a
/// set DO bit or a set AD bit." That is there "to interoperate with legacy stub resolvers and
/// middleboxes that neither understand nor ignore the AD bit". splitdns passes on the AD bit
/// of a validating upstream, so it must follow the same rule: a client that asked with
/// neither AD nor DO gets AD clear, on a miss and on a cache hit; one that asked with AD, or
/// with DO, gets the upstream's AD. The upstream here follows §5.8 too, so splitdns must ask
/// it with AD set (RFC 6840 §5.7: "setting the AD bit in a query [is] a signal indicating
/// that the requester understands and is interested in the value of the AD bit in the
/// response"), or a client that asked with AD alone would never see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_goes_only_to_clients_that_asked_with_ad_or_do() {
    let upstream = validating_upstream().await;
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n\
         [upstream]\nservers = [\"{upstream}\"]\ntimeout = \"500ms\"\n"
    );
    let dns = Splitdns::start_config(parse(&config)).await;
    let ask = |name: &'static str, flags3: u8, opts: Vec<Vec<u8>>| {
        let id = next_id();
        let packet = raw_query(id, flags3, &[(name, TYPE_A, CLASS_IN)], &opts);
        let server = dns.addr();
        async move { udp_exchange_raw(server, &packet, id).await }
    };

    // A miss, then a hit, for a client that sent neither bit; then the same entry for one
    // that sent AD, and another name asked first with AD.
    let plain_miss = ask("plain.example.", 0, vec![]).await;
    let plain_hit = ask("plain.example.", 0, vec![]).await;
    let ad_hit = ask("plain.example.", FLAG_AD, vec![]).await;
    let ad_miss = ask("ad.example.", FLAG_AD, vec![]).await;
    let plain_after_ad = ask("ad.example.", 0, vec![]).await;
    let do_miss = ask("do.example.", 0, vec![opt(true, &[])]).await;
    let edns_without_do = ask("nodo.example.", 0, vec![opt(false, &[])]).await;

    for (what, reply, ad) in [
        ("no AD, no DO, a miss", &plain_miss, false),
        ("no AD, no DO, a hit", &plain_hit, false),
        ("AD, a hit", &ad_hit, true),
        ("AD, a miss", &ad_miss, true),
        ("no AD, no DO, after an AD client", &plain_after_ad, false),
        ("DO, a miss", &do_miss, true),
        ("EDNS without DO, no AD", &edns_without_do, false),
    ] {
        assert_eq!(rcode(reply), 0, "{what}: {reply:02x?}");
        assert_eq!(count(reply, 6), 1, "{what}: {reply:02x?}");
        assert_eq!(reply[3] & FLAG_AD != 0, ad, "{what}: AD in {reply:02x?}");
    }
}

/// RFC 6891 §7: "If there is a problem with processing the OPT record itself, such as an
/// option value that is badly formatted or that includes out-of-range values, a FORMERR MUST
/// be returned. If this occurs, the response MUST include an OPT record. This is intended to
/// allow the requestor to distinguish between servers that do not implement EDNS and format
/// errors within EDNS." More than one OPT is such a problem (§6.1.1: "If a query message with
/// more than one OPT RR is received, a FORMERR (RCODE=1) MUST be returned"). A responder
/// that sends FORMERR without an OPT to a query with one says it does not implement EDNS:
/// `dig +header-only` then warns "EDNS query returned status FORMERR - retry with
/// '+noedns'". So FORMERR for a query with no question (RFC 7873 §5.4 has a client send
/// exactly that, with a COOKIE option, to learn a server cookie) carries the OPT too, with DO
/// copied (RFC 3225 §3), over UDP and TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formerr_to_an_edns_query_carries_an_opt() {
    let (dns, _consul, internet) = Splitdns::with_fakes(STANDARD).await;
    let cookie = opt(true, &[(OPTION_COOKIE, &[1, 2, 3, 4, 5, 6, 7, 8])]);
    let cases = [
        ("no question, a client COOKIE", vec![], vec![cookie]),
        (
            "two questions",
            vec![
                ("www.example.", TYPE_A, CLASS_IN),
                ("mail.example.", TYPE_A, CLASS_IN),
            ],
            vec![opt(true, &[])],
        ),
        (
            "two OPT records",
            vec![("www.example.", TYPE_A, CLASS_IN)],
            vec![opt(true, &[]), opt(true, &[])],
        ),
    ];
    let mut packets: Vec<(&str, u16, Vec<u8>)> = cases
        .into_iter()
        .map(|(what, questions, opts)| {
            let id = next_id();
            (what, id, raw_query(id, 0, &questions, &opts))
        })
        .collect();
    // A second question may be compressed against the first (RFC 1035 §4.1.4), as any
    // name after the first may be: its OPT is found all the same.
    let id = next_id();
    let mut compressed = raw_query(id, 0, &[("www.example.", TYPE_A, CLASS_IN)], &[]);
    compressed[5] = 2;
    compressed[11] = 1;
    compressed.extend_from_slice(&[0xc0, 0x0c, 0, 28, 0, 1]);
    compressed.extend_from_slice(&opt(true, &[]));
    packets.push(("two questions, the second compressed", id, compressed));
    let id = next_id();
    let two_opts = raw_query(id, 0, &[], &[opt(true, &[]), opt(true, &[])]);
    packets.push(("no question and two OPT records", id, two_opts));
    for (what, id, packet) in packets {
        for (transport, reply) in [
            ("UDP", udp_exchange_raw(dns.addr(), &packet, id).await),
            ("TCP", tcp_exchange_raw(dns.addr(), &packet).await),
        ] {
            assert_eq!(
                rcode(&reply),
                FORMERR,
                "{what} over {transport}: {reply:02x?}"
            );
            let opt = sole_opt(&reply)
                .unwrap_or_else(|| panic!("{what} over {transport}: no OPT in {reply:02x?}"));
            assert_eq!(
                opt[5..8],
                [0, 0, 0x80],
                "{what} over {transport}: OPT {opt:02x?}"
            );
        }
    }
    assert_eq!(internet.total(), 0);
}

/// RFC 6895 §3.1: "QTYPEs can only be used in queries. Meta-TYPEs designate transient data
/// associated with a particular DNS message", and 128 to 255 is the range of "Q and
/// Meta-TYPEs"; RFC 6891 §6.1.1: "OPT RRs MUST NOT be cached, forwarded, or stored in or
/// loaded from master files." No upstream holds records of the meta-TYPEs OPT (41), TKEY
/// (249) or TSIG (250), nor of an unassigned type in 128-248, so there is nothing to forward
/// or cache: FORMERR at once, with the question and the OPT echoed, as Unbound answers. The
/// upstream is never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_types_as_the_question_get_formerr_and_are_not_forwarded() {
    let (dns, _consul, internet) = Splitdns::with_fakes(STANDARD).await;
    for qtype in [TYPE_OPT, TYPE_TKEY, TYPE_TSIG, 128, 248] {
        let id = next_id();
        let packet = raw_query(
            id,
            0,
            &[("www.example.", qtype, CLASS_IN)],
            &[opt(false, &[])],
        );
        let reply = udp_exchange_raw(dns.addr(), &packet, id).await;
        assert_eq!(rcode(&reply), FORMERR, "TYPE{qtype}: {reply:02x?}");
        assert_eq!(count(&reply, 4), 1, "TYPE{qtype}: question echoed");
        assert!(
            sole_opt(&reply).is_some(),
            "TYPE{qtype}: no OPT in {reply:02x?}"
        );
    }
    assert_eq!(internet.total(), 0, "a meta-TYPE question went upstream");
}

/// RFC 5936 §4.2: "AXFR sessions over UDP transport are not defined", and over TCP a
/// transfer is a run of messages (§2.2) that a forwarder, which relays one answer per
/// question, cannot pass on; IXFR (RFC 1995) falls back to it. splitdns holds no zone to
/// transfer, so AXFR and IXFR get REFUSED ("the name server refuses to perform the
/// specified operation for policy reasons", RFC 1035 §4.1.1) at once, over UDP and TCP, as
/// Unbound answers, instead of waiting out the upstream timeout for a SERVFAIL and counting
/// a failure against the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_transfers_are_refused_and_not_forwarded() {
    let (dns, _consul, internet) = Splitdns::with_fakes(STANDARD).await;
    for qtype in [TYPE_AXFR, TYPE_IXFR] {
        let id = next_id();
        let packet = raw_query(id, 0, &[("example.", qtype, CLASS_IN)], &[]);
        for (transport, reply) in [
            ("UDP", udp_exchange_raw(dns.addr(), &packet, id).await),
            ("TCP", tcp_exchange_raw(dns.addr(), &packet).await),
        ] {
            assert_eq!(rcode(&reply), REFUSED, "TYPE{qtype} over {transport}");
            assert_eq!(
                count(&reply, 6),
                0,
                "TYPE{qtype} over {transport}: no records"
            );
        }
    }
    assert_eq!(internet.total(), 0, "a zone transfer went upstream");
}

/// RFC 1035 §3.2.4 defines classes besides IN (CH, HS); RFC 6895 §3.2 reserves NONE (254)
/// for UPDATE. splitdns's upstreams (Consul, the host's resolvers) serve IN only, and its
/// local data is IN: a CH or HS question for an ordinary name has no answer anywhere. Sent
/// upstream it comes back REFUSED or not at all, which splitdns turns into SERVFAIL and
/// counts as a failure of the server, so that three `dig CH A name` in a row take a healthy
/// Consul agent out of rotation; answered from local data it would get an IN record, which
/// does not answer a CH question. Classes other than IN and ANY, outside splitdns's own
/// CHAOS names, get REFUSED ("for policy reasons", RFC 1035 §4.1.1) at once, as Unbound and
/// dnsmasq answer a CHAOS question they do not know. The upstream is never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classes_no_upstream_serves_are_refused() {
    let template = format!("rules = [\"local=/lan/\", \"address=/gw.lan/192.0.2.1\"]\n{STANDARD}");
    let (dns, _consul, internet) = Splitdns::with_fakes(&template).await;
    for (name, qclass) in [
        ("www.example.", CLASS_CH),
        ("www.example.", CLASS_HS),
        ("www.example.", CLASS_NONE),
        ("www.example.", 0),
        ("gw.lan.", CLASS_CH),
        ("hostname.bind.", CLASS_HS),
    ] {
        let id = next_id();
        let packet = raw_query(id, 0, &[(name, TYPE_A, qclass)], &[opt(false, &[])]);
        let reply = udp_exchange_raw(dns.addr(), &packet, id).await;
        assert_eq!(rcode(&reply), REFUSED, "{name} CLASS{qclass}: {reply:02x?}");
        assert_eq!(count(&reply, 6), 0, "{name} CLASS{qclass}: no records");
        assert!(sole_opt(&reply).is_some(), "{name} CLASS{qclass}: no OPT");
    }
    assert_eq!(internet.total(), 0, "a non-IN question went upstream");

    // splitdns's own CHAOS names still answer.
    let id = next_id();
    let packet = raw_query(id, 0, &[("version.bind.", 16, CLASS_CH)], &[]);
    let reply = udp_exchange_raw(dns.addr(), &packet, id).await;
    assert_eq!((rcode(&reply), count(&reply, 6)), (0, 1), "{reply:02x?}");
}
