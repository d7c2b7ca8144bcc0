//! Every counter, gauge and label value `/metrics` exports (README, Observing it) moves when
//! the thing it counts happens: a counter that no code path feeds reads as "never happens"
//! on a dashboard, which is worse than no counter.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use crate::support::client::{self, REPLY_WAIT, udp_exchange_raw};
use crate::support::http::{sample, value};
use crate::support::upstream::{bind_pair, frame, read_frame};
use crate::support::{FakeUpstream, Mode, Splitdns, assert_rcode, name, query};

/// Scrapes until `series` reads `want` (at most 5 s): gauges follow events a little later
/// than the reply that caused them.
async fn eventually(dns: &Splitdns, series: &str, want: f64) {
    let deadline = Instant::now() + REPLY_WAIT;
    loop {
        let text = dns.scrape().await;
        let got = sample(&text, series);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} stayed at {got:?}, expected {want}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An upstream that misbehaves in the ways a real one can, by question name, on one port
/// over UDP and TCP:
/// - `notauth.*`: RCODE 9 (NOTAUTH, RFC 2136), which splitdns passes on to the client;
/// - `close.*`: TC=1 over UDP; over TCP, the connection is closed without a reply;
/// - anything else: TC=1 over UDP; over TCP, a reply with another ID.
struct Misbehaving {
    addr: SocketAddr,
    /// Aborted when dropped.
    _tasks: JoinSet<()>,
}

impl Misbehaving {
    async fn start() -> Self {
        let (udp, tcp) = bind_pair().await;
        let addr = tcp.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let Ok((len, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(mut msg) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let notauth = msg.queries[0].name().to_ascii().starts_with("notauth.");
                msg.metadata.message_type = MessageType::Response;
                if notauth {
                    msg.metadata.response_code = ResponseCode::NotAuth;
                } else {
                    msg.metadata.truncation = true;
                }
                let _ = udp.send_to(&msg.to_vec().unwrap(), peer).await;
            }
        });
        tasks.spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let Some(query) = read_frame(&mut stream).await else {
                        return;
                    };
                    let Ok(mut msg) = Message::from_vec(&query) else {
                        return;
                    };
                    if msg.queries[0].name().to_ascii().starts_with("close.") {
                        return;
                    }
                    msg.metadata.message_type = MessageType::Response;
                    msg.metadata.id = msg.metadata.id.wrapping_add(1);
                    let _ = stream.write_all(&frame(&msg.to_vec().unwrap())).await;
                });
            }
        });
        Self {
            addr,
            _tasks: tasks,
        }
    }
}

/// README: `splitdns_upstream_failures_total` counts `network` (send errors, connections that
/// fail) and `bad_reply` (a reply that does not answer the query) too, and
/// `splitdns_upstream_queries_total` includes the TCP retry after a truncated UDP reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_and_bad_reply_failures_and_tcp_retries_are_counted() {
    let bad = Misbehaving::start().await;
    let tc = FakeUpstream::start(crate::support::fixtures::internet()).await;
    tc.set_mode(Mode::AlwaysTc);
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{tc}"]
timeout = "1s"
[[route]]
zones = ["close.test"]
servers = ["{bad}"]
[[route]]
zones = ["wrongid.test"]
servers = ["{bad}"]
[metrics]
listen = "127.0.0.1:0"
"#
    .replace("{bad}", &bad.addr.to_string());
    let dns = Splitdns::start(&config, &[("tc", &tc)]).await;

    assert_rcode(
        &dns.ask("close.test.", RecordType::A).await,
        ResponseCode::ServFail,
    );
    assert_rcode(
        &dns.ask("wrongid.test.", RecordType::A).await,
        ResponseCode::ServFail,
    );
    assert_rcode(
        &dns.ask("www.example.", RecordType::A).await,
        ResponseCode::NoError,
    );

    let text = dns.scrape().await;
    let b = bad.addr;
    let failures = |route: &str, kind: &str| {
        value(
            &text,
            &format!(
                r#"splitdns_upstream_failures_total{{route="{route}",server="{b}",kind="{kind}"}}"#
            ),
        )
    };
    assert_eq!(failures("close.test.", "network"), 1.0);
    assert_eq!(failures("close.test.", "bad_reply"), 0.0);
    assert_eq!(failures("wrongid.test.", "bad_reply"), 1.0);
    assert_eq!(failures("wrongid.test.", "network"), 0.0);
    for route in ["close.test.", "wrongid.test."] {
        let series = format!(r#"splitdns_upstream_queries_total{{route="{route}",server="{b}"}}"#);
        assert_eq!(value(&text, &series), 2.0, "UDP, then TCP: {series}");
    }
    let series = format!(
        r#"splitdns_upstream_queries_total{{route=".",server="{}"}}"#,
        tc.addr()
    );
    assert_eq!(value(&text, &series), 2.0, "UDP, then TCP: {series}");
}

/// `splitdns_queries_total` names the common RCODEs and counts the rest as `other`, and
/// counts answers splitdns makes itself (FORMERR, NOTIMP, REFUSED, BADVERS) like the rest.
/// Packets refused or rejected before their question is read have no query type: `other`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rcode_label_counts_the_answers_that_carry_it() {
    let bad = Misbehaving::start().await;
    let internet = FakeUpstream::start(crate::support::fixtures::internet()).await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
allow = ["127.0.0.1/32"]
[upstream]
servers = ["{internet}"]
timeout = "500ms"
[[route]]
zones = ["notauth.test"]
servers = ["{bad}"]
[metrics]
listen = "127.0.0.1:0"
"#
    .replace("{bad}", &bad.addr.to_string());
    let dns = Splitdns::start(&config, &[("internet", &internet)]).await;

    // NOERROR, NXDOMAIN, and NOTAUTH passed on from the upstream (other).
    dns.ask("www.example.", RecordType::A).await;
    dns.ask("missing.example.", RecordType::A).await;
    let notauth = dns.ask("notauth.test.", RecordType::A).await;
    assert_eq!(u16::from(notauth.metadata.response_code), 9, "{notauth}");
    // SERVFAIL: the upstream fails.
    internet.set_mode(Mode::ServFail);
    dns.ask("fail.example.", RecordType::A).await;
    // FORMERR: two questions.
    let mut two = query("www.example.", RecordType::A);
    two.add_query(Query::query(name("mail.example."), RecordType::A));
    udp_exchange_raw(dns.addr(), &client::encode(&two), two.metadata.id).await;
    // NOTIMP: NOTIFY.
    let mut notify = Message::new(0x4242, MessageType::Query, OpCode::Notify);
    notify.add_query(Query::query(name("example."), RecordType::SOA));
    udp_exchange_raw(dns.addr(), &client::encode(&notify), 0x4242).await;
    // BADVERS: EDNS version 1.
    let mut badvers = query("www.example.", RecordType::TXT);
    let mut edns = Edns::new();
    edns.set_version(1);
    badvers.set_edns(edns);
    dns.udp(&badvers).await;
    // REFUSED: a client outside allow (127.0.0.2 is loopback too).
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(DNSClass::CH);
    stranger
        .send_to(&client::encode(&chaos), dns.addr())
        .await
        .unwrap();
    let mut buf = vec![0; 512];
    tokio::time::timeout(REPLY_WAIT, stranger.recv_from(&mut buf))
        .await
        .expect("no reply to the stranger")
        .unwrap();

    let text = dns.scrape().await;
    let v = |qtype: &str, rcode: &str| {
        value(
            &text,
            &format!(r#"splitdns_queries_total{{protocol="udp",qtype="{qtype}",rcode="{rcode}"}}"#),
        )
    };
    assert_eq!(v("A", "NOERROR"), 1.0);
    assert_eq!(v("A", "NXDOMAIN"), 1.0);
    assert_eq!(v("A", "other"), 1.0);
    assert_eq!(v("A", "SERVFAIL"), 1.0);
    assert_eq!(v("other", "FORMERR"), 1.0);
    assert_eq!(v("other", "NOTIMP"), 1.0);
    assert_eq!(v("TXT", "BADVERS"), 1.0);
    assert_eq!(v("TXT", "REFUSED"), 1.0);
    assert_eq!(text.matches("splitdns_queries_total{").count(), 8, "{text}");
}

/// `splitdns_cache_evictions_total`: fresh entries pushed out of a full cache (README); with
/// room for two answers, a third one pushes one out. The CHAOS `evictions.bind` says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_counts_its_evictions() {
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = 2";
    let template = crate::support::harness::standard_plus("", metrics);
    let (dns, _consul, internet) = Splitdns::with_fakes(&template).await;
    for qname in ["www.example.", "mail.example.", "alias.example."] {
        assert_rcode(&dns.ask(qname, RecordType::A).await, ResponseCode::NoError);
    }

    let text = dns.scrape().await;
    assert_eq!(value(&text, "splitdns_cache_insertions_total"), 3.0);
    assert_eq!(value(&text, "splitdns_cache_evictions_total"), 1.0);
    assert_eq!(value(&text, "splitdns_cache_entries"), 2.0);
    assert_eq!(internet.total(), 3);
    let mut chaos = query("evictions.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(DNSClass::CH);
    let reply = dns.udp(&chaos).await;
    assert_eq!(reply.answers.len(), 1, "{reply}");
    match &reply.answers[0].data {
        RData::TXT(txt) => assert_eq!(&*txt.txt_data[0], b"1"),
        other => panic!("not TXT: {other:?}"),
    }
}

/// `splitdns_inflight_queries`: client queries waiting for an upstream now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflight_queries_shows_queries_waiting_for_an_upstream() {
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"";
    let template = crate::support::harness::standard_plus("", metrics)
        .replace("timeout = \"500ms\"", "timeout = \"3s\"");
    let (dns, _consul, internet) = Splitdns::with_fakes(&template).await;
    internet.set_mode(Mode::Slow(Duration::from_millis(1500)));

    let addr = dns.addr();
    let waiting =
        tokio::spawn(async move { client::udp(addr, &query("www.example.", RecordType::A)).await });
    eventually(&dns, "splitdns_inflight_queries", 1.0).await;
    assert_rcode(&waiting.await.unwrap(), ResponseCode::NoError);
    eventually(&dns, "splitdns_inflight_queries", 0.0).await;
}

/// `splitdns_tcp_connections`: TCP client connections open now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_shows_the_connections_open_now() {
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"";
    let (dns, _consul, _internet) =
        Splitdns::with_fakes(&crate::support::harness::standard_plus("", metrics)).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = client::tcp_connect(dns.addr()).await;
        client::tcp_write(
            &mut stream,
            &client::encode(&query("www.example.", RecordType::A)),
        )
        .await;
        assert!(client::tcp_read(&mut stream).await.is_some());
        open.push(stream);
    }
    eventually(&dns, "splitdns_tcp_connections", 2.0).await;
    drop(open);
    eventually(&dns, "splitdns_tcp_connections", 0.0).await;
    let text = dns.scrape().await;
    assert_eq!(value(&text, "splitdns_tcp_connections_accepted_total"), 2.0);
}
