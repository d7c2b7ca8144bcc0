//! What goes on the wire: bad input, header and EDNS hygiene, truncation, TCP framing,
//! listeners and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::AsyncWriteExt;

use crate::support::client::{self, udp_exchange_raw, udp_reply_after};
use crate::support::fixtures::{MEDIUM_TXT_BYTES, internet, load_ip};
use crate::support::harness::STANDARD;
use crate::support::{
    FakeUpstream, Mode, Proto, Splitdns, answer_ips, assert_rcode, name, query, query_with_edns,
    txt_bytes,
};

async fn standard() -> (Splitdns, FakeUpstream, FakeUpstream) {
    Splitdns::with_fakes(STANDARD).await
}

/// The server still answers a normal query over UDP and TCP.
async fn assert_still_serving(dns: &Splitdns) {
    let udp = dns.ask("www.example.", RecordType::A).await;
    assert_rcode(&udp, ResponseCode::NoError);
    assert_eq!(answer_ips(&udp).len(), 1);
    let tcp = dns.tcp(&query("www.example.", RecordType::AAAA)).await;
    assert_rcode(&tcp, ResponseCode::NoError);
}

/// Header fields of a raw reply: (id, QR, opcode, rcode).
fn header(raw: &[u8]) -> (u16, bool, u8, u8) {
    assert!(raw.len() >= 12, "reply shorter than a header: {raw:02x?}");
    let id = u16::from_be_bytes([raw[0], raw[1]]);
    (id, raw[2] & 0x80 != 0, (raw[2] >> 3) & 0x0f, raw[3] & 0x0f)
}

const FORMERR: u8 = 1;
const NOTIMP: u8 = 4;

/// A query for a name in the cache, with an ID other than `id`: answered as soon as it is
/// read, so it can follow packets that must get no reply (see [`client::udp_reply_after`]).
async fn cached_probe(dns: &Splitdns, id: u16) -> Message {
    let reply = dns.ask("www.example.", RecordType::A).await;
    assert_eq!(answer_ips(&reply).len(), 1, "{reply}");
    let mut probe = query("www.example.", RecordType::A);
    probe.metadata.id = id.wrapping_add(1);
    probe
}

/// A packet shorter than the 12-byte header (RFC 1035 §4.1.1) is not a DNS message: it gets
/// no reply of any kind and nothing is asked upstream. The query sent after it from the same
/// socket gets the first reply, and the server goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_shorter_than_a_header_get_no_reply() {
    let (dns, _consul, internet) = standard().await;
    let msg = query("www.example.", RecordType::A);
    let valid = client::encode(&msg);
    let probe = cached_probe(&dns, msg.metadata.id).await;

    for len in [0, 1, 2, 11] {
        let reply = udp_reply_after(dns.addr(), &[&valid[..len]], &probe).await;
        assert_eq!(answer_ips(&reply).len(), 1, "{len}-byte packet: {reply}");
    }
    assert_eq!(
        internet.total(),
        1,
        "only the probe's name was asked upstream, once"
    );
    assert_still_serving(&dns).await;
}

/// A response (QR=1) sent to the server is not a query: it gets no reply and is not
/// forwarded. The query sent after it from the same socket gets the first reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_get_no_reply() {
    let (dns, _consul, internet) = standard().await;
    let mut msg = query("www.example.", RecordType::A);
    msg.metadata.message_type = MessageType::Response;
    let probe = cached_probe(&dns, msg.metadata.id).await;

    let reply = udp_reply_after(dns.addr(), &[&client::encode(&msg)], &probe).await;

    assert_eq!(answer_ips(&reply).len(), 1, "{reply}");
    assert_eq!(
        internet.total(),
        1,
        "only the probe's name was asked upstream, once"
    );
    assert_still_serving(&dns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_without_question_gets_formerr() {
    let (dns, _consul, internet) = standard().await;
    let mut msg = query("www.example.", RecordType::A);
    msg.queries.clear();

    let raw = udp_exchange_raw(dns.addr(), &client::encode(&msg), msg.metadata.id).await;

    let (id, qr, _, rcode) = header(&raw);
    assert_eq!((id, qr, rcode), (msg.metadata.id, true, FORMERR));
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_with_two_questions_gets_formerr() {
    let (dns, _consul, internet) = standard().await;
    let mut msg = query("www.example.", RecordType::A);
    msg.add_query(Query::query(name("mail.example."), RecordType::A));

    for raw in [
        udp_exchange_raw(dns.addr(), &client::encode(&msg), msg.metadata.id).await,
        tcp_raw(&dns, &client::encode(&msg)).await,
    ] {
        let (id, qr, _, rcode) = header(&raw);
        assert_eq!((id, qr, rcode), (msg.metadata.id, true, FORMERR));
    }
    assert_eq!(internet.total(), 0);
}

async fn tcp_raw(dns: &Splitdns, bytes: &[u8]) -> Vec<u8> {
    let mut stream = client::tcp_connect(dns.addr()).await;
    client::tcp_write(&mut stream, bytes).await;
    client::tcp_read(&mut stream)
        .await
        .expect("connection closed without a reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opcodes_other_than_query_get_notimp() {
    let (dns, _consul, internet) = standard().await;

    for (opcode, code) in [
        (OpCode::Update, 5),
        (OpCode::Status, 2),
        (OpCode::Notify, 4),
    ] {
        let mut msg = Message::new(0x4d2 + code as u16, MessageType::Query, opcode);
        msg.add_query(Query::query(name("www.example."), RecordType::A));
        let raw = udp_exchange_raw(dns.addr(), &client::encode(&msg), msg.metadata.id).await;
        let (id, qr, op, rcode) = header(&raw);
        assert_eq!(op, code, "opcode must be echoed");
        assert_eq!(
            (id, qr, rcode),
            (msg.metadata.id, true, NOTIMP),
            "opcode {code}"
        );
    }
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_question_gets_formerr() {
    let (dns, _consul, internet) = standard().await;
    let header = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let bodies: [&[u8]; 4] = [
        b"\x05ab",                      // label runs past the end
        b"\x03www\x07example\x00\x00",  // type and class cut short
        b"\xc0\x0c\x00\x01\x00\x01",    // compression pointer to itself
        b"\x40abc\x00\x00\x01\x00\x01", // reserved label type 0b01
    ];

    for body in bodies {
        let mut packet = header.to_vec();
        packet.extend_from_slice(body);
        let raw = udp_exchange_raw(dns.addr(), &packet, 0x1234).await;
        let (id, qr, _, rcode) = self::header(&raw);
        assert_eq!((id, qr, rcode), (0x1234, true, FORMERR), "body {body:02x?}");
    }
    assert_eq!(internet.total(), 0);
    assert_still_serving(&dns).await;
}

/// xorshift64: deterministic, so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_crash_the_server() {
    let (dns, _consul, _internet) = standard().await;
    let mut rng = Rng(0x5eed_d0d0_cafe_f00d);
    let sock = client::udp_socket().await;
    let valid = client::encode(&query_with_edns("www.example.", RecordType::A, 1232));

    for i in 0..600 {
        let packet = if i % 2 == 0 {
            let len = (rng.next() % 600) as usize;
            rng.bytes(len)
        } else {
            // A valid query with a few bytes flipped reaches deeper into the parser.
            let mut packet = valid.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() as usize) % packet.len();
                packet[at] = rng.next() as u8;
            }
            packet
        };
        sock.send_to(&packet, dns.addr()).await.unwrap();
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for _ in 0..10 {
        let mut stream = client::tcp_connect(dns.addr()).await;
        let len = (rng.next() % 300) as usize;
        let _ = stream.write_all(&rng.bytes(len)).await;
    }

    assert_still_serving(&dns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_version_1_gets_badvers() {
    let (dns, _consul, internet) = standard().await;
    let mut msg = query("www.example.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_version(1);
    msg.set_edns(edns);

    let reply = dns.udp(&msg).await;

    assert_eq!(reply.metadata.id, msg.metadata.id);
    // hickory decodes extended rcode 16 as BADSIG (it shares the number with BADVERS).
    assert_eq!(u16::from(reply.metadata.response_code), 16, "{reply}");
    let opt = reply.edns.as_ref().expect("BADVERS travels in an OPT");
    assert_eq!(opt.version(), 0);
    assert_eq!(
        opt.rcode_high(),
        1,
        "extended rcode 16 = high bits 1, low bits 0"
    );
    assert!(reply.answers.is_empty());
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_echoes_the_clients_id_and_question_case() {
    let (dns, consul, internet) = standard().await;
    internet.lowercase_questions();
    consul.lowercase_questions();

    for qname in ["WwW.ExAmPlE.", "Web.Service.CONSUL."] {
        let msg = query(qname, RecordType::A);
        let reply = dns.udp(&msg).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(reply.metadata.id, msg.metadata.id);
        assert_eq!(reply.queries.len(), 1);
        assert!(
            reply.queries[0].name().eq_case(&name(qname)),
            "question {} came back as {}",
            qname,
            reply.queries[0].name()
        );
        assert_eq!(reply.queries[0].query_type(), RecordType::A);
        assert!(!answer_ips(&reply).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn question_case_is_kept_on_cache_hits() {
    let (dns, _consul, internet) = standard().await;

    dns.ask("www.example.", RecordType::A).await;
    let msg = query("WWW.EXAMPLE.", RecordType::A);
    let reply = dns.tcp(&msg).await;

    assert_eq!(internet.total(), 1);
    assert_eq!(reply.metadata.id, msg.metadata.id);
    assert!(reply.queries[0].name().eq_case(&name("WWW.EXAMPLE.")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn question_case_is_kept_on_local_answers() {
    let config = r#"
rules = ["local=/lan/", "address=/gw.lan/192.0.2.1"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;
    let (dns, _consul, _internet) = Splitdns::with_fakes(config).await;

    for qname in ["GW.Lan.", "Printer.LAN."] {
        let msg = query(qname, RecordType::A);
        let reply = dns.udp(&msg).await;
        assert_eq!(reply.metadata.id, msg.metadata.id);
        assert!(reply.queries[0].name().eq_case(&name(qname)), "{reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_is_in_the_response_iff_the_client_sent_one() {
    let (dns, _consul, _internet) = standard().await;

    for qname in ["www.example.", "missing.example.", "web.service.consul."] {
        let plain = query(qname, RecordType::A);
        let with_edns = query_with_edns(qname, RecordType::A, 1400);
        for reply in [dns.udp(&plain).await, dns.tcp(&plain).await] {
            assert!(
                reply.edns.is_none(),
                "OPT without one in the query: {reply}"
            );
        }
        for reply in [dns.udp(&with_edns).await, dns.tcp(&with_edns).await] {
            let opt = reply.edns.as_ref().expect("OPT missing from the response");
            assert_eq!(opt.version(), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_flags_aa_tc_ad_z_are_ignored() {
    let (dns, _consul, internet) = standard().await;
    let msg = query("www.example.", RecordType::A);
    let mut packet = client::encode(&msg);
    packet[2] |= 0x04 | 0x02; // AA, TC
    packet[3] |= 0x40 | 0x20; // Z, AD

    let reply = client::decode(&udp_exchange_raw(dns.addr(), &packet, msg.metadata.id).await);

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply).len(), 1);
    assert!(!reply.metadata.truncation);
    assert!(!reply.metadata.authoritative);
    assert_eq!(internet.count("www.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_limit_is_512_without_edns_and_the_edns_size_with_it() {
    let (dns, _consul, _internet) = standard().await;

    let plain = query("medium.example.", RecordType::TXT);
    let raw = udp_exchange_raw(dns.addr(), &client::encode(&plain), plain.metadata.id).await;
    let small = client::decode(&raw);
    assert!(
        small.metadata.truncation,
        "over 512 bytes without EDNS: {small}"
    );
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    assert_eq!(small.queries, plain.queries);
    assert!(small.edns.is_none());

    let edns = query_with_edns("medium.example.", RecordType::TXT, 1232);
    let raw = udp_exchange_raw(dns.addr(), &client::encode(&edns), edns.metadata.id).await;
    let large = client::decode(&raw);
    assert!(!large.metadata.truncation);
    assert_eq!(txt_bytes(&large), MEDIUM_TXT_BYTES);
    assert!(raw.len() <= 1232);

    let tight = query_with_edns("medium.example.", RecordType::TXT, 600);
    let raw = udp_exchange_raw(dns.addr(), &client::encode(&tight), tight.metadata.id).await;
    let tight_reply = client::decode(&raw);
    assert!(
        tight_reply.metadata.truncation,
        "over the client's 600 bytes"
    );
    assert!(raw.len() <= 600, "{} bytes", raw.len());
    assert!(
        tight_reply.edns.is_some(),
        "the OPT stays in a truncated reply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_answers_are_never_truncated() {
    let (dns, _consul, _internet) = standard().await;

    let reply = dns.tcp(&query("medium.example.", RecordType::TXT)).await;

    assert!(!reply.metadata.truncation);
    assert_eq!(txt_bytes(&reply), MEDIUM_TXT_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_tcp_queries_are_all_answered() {
    let (dns, _consul, _internet) = standard().await;
    let msgs: Vec<Message> = (0..10u16)
        .map(|i| {
            let mut msg = query(&format!("n{i}.load.example."), RecordType::A);
            msg.metadata.id = 1000 + i;
            msg
        })
        .collect();

    let replies = client::tcp_pipelined(dns.addr(), &msgs).await;

    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.queries, msgs[i].queries);
        assert_eq!(answer_ips(reply), [load_ip(i as u32)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_serves_udp_and_tcp() {
    let ipv6 = std::net::UdpSocket::bind("[::1]:0").is_ok();
    let second = if ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\", \"{second}\"]\n[upstream]\nservers = [\"{{internet}}\"]\n"
    );
    let (dns, _consul, _internet) = Splitdns::with_fakes(&config).await;

    assert_eq!(dns.addrs().len(), 2);
    assert_ne!(dns.addrs()[0], dns.addrs()[1]);
    assert_eq!(
        dns.addrs()[1].is_ipv6(),
        ipv6,
        "local_addrs follows listen order"
    );
    for &addr in dns.addrs() {
        assert_ne!(addr.port(), 0, "local_addrs reports the bound port");
        let msg = query("www.example.", RecordType::A);
        let udp = client::udp(addr, &msg).await;
        let tcp = client::tcp(addr, &msg).await;
        assert_eq!(answer_ips(&udp).len(), 1, "UDP on {addr}");
        assert_eq!(answer_ips(&tcp).len(), 1, "TCP on {addr}");
    }
}

/// Shutdown: `run` returns within 5 s, without an error, and the listen address is closed:
/// UDP and TCP to it are refused (ECONNREFUSED), nothing answers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_server() {
    let (dns, _consul, _internet) = standard().await;
    let addr = dns.addr();
    assert_still_serving(&dns).await;

    let stopped = tokio::time::timeout(Duration::from_secs(5), dns.stop()).await;

    stopped
        .expect("run did not return after shutdown")
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    client::assert_refused(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_from_strangers_get_refused_not_formerr() {
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
allow = ["10.0.0.0/8"]
[upstream]
servers = ["{internet}"]
"#;
    let (dns, _consul, internet) = Splitdns::with_fakes(config).await;
    let mut two = query("www.example.", RecordType::A);
    two.add_query(Query::query(name("mail.example."), RecordType::A));
    let mut update = query("www.example.", RecordType::A);
    update.metadata.op_code = OpCode::Update;

    for msg in [&two, &update] {
        let raw = udp_exchange_raw(dns.addr(), &client::encode(msg), msg.metadata.id).await;
        let (id, qr, _, rcode) = header(&raw);
        assert_eq!((id, qr, rcode), (msg.metadata.id, true, 5), "REFUSED");
        assert_eq!(
            raw.len(),
            12,
            "nothing but the header goes back to a stranger"
        );
    }
    assert_eq!(internet.total(), 0);
}

/// RFC 1122 §4.1.3.5: UDP passes each datagram's specific-destination address up to the
/// application, and lets it choose the source address of what it sends; an answer from any
/// other address than the one asked is not heard by a client that connected its socket to
/// that address (RFC 768 demultiplexing; glibc's resolver connects). dnsmasq listens on the
/// wildcard address unless told otherwise (dnsmasq(8), `--bind-interfaces`) and answers from
/// the address asked. A listener on `0.0.0.0` asked on 127.0.0.2 (an address of lo that is
/// not its route's source) and on 127.0.0.1, from connected sockets, answers both: a miss
/// from the UDP thread's table, the same name from the cache, and a miss whose truncated
/// reply is asked again over TCP by a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_listener_answers_from_the_address_asked() {
    let upstream = FakeUpstream::start(internet()).await;
    let config = "[server]\nlisten = [\"0.0.0.0:0\"]\nthreads = 1\n\
                  [upstream]\nservers = [\"{up}\"]\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;
    let port = dns.addrs()[0].port();
    let ask = |asked: [u8; 4], name: String| async move {
        let server = SocketAddr::from((asked, port));
        client::udp_connected(server, &query(&name, RecordType::A)).await
    };
    for (i, asked) in [[127, 0, 0, 2], [127, 0, 0, 1]].into_iter().enumerate() {
        let name = format!("n{i}.load.example.");
        for _ in 0..2 {
            let reply = ask(asked, name.clone()).await;
            assert_eq!(answer_ips(&reply), vec![load_ip(i as u32)], "{name}");
        }
        assert_eq!(
            upstream.count(&name, RecordType::A),
            1,
            "{name}: then from the cache"
        );
    }
    upstream.set_mode(Mode::AlwaysTc);
    for (i, asked) in [[127, 0, 0, 2], [127, 0, 0, 1]].into_iter().enumerate() {
        let name = format!("n{}.load.example.", 10 + i);
        let reply = ask(asked, name.clone()).await;
        assert_eq!(answer_ips(&reply), vec![load_ip(10 + i as u32)], "{name}");
        assert_eq!(upstream.count_proto(Proto::Tcp), i + 1, "{name} over TCP");
    }
}
