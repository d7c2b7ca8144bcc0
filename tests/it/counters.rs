//! What each series of `/metrics` counts (docs/observing.md): every counter, gauge and
//! label value moves when the thing it counts happens, by as much as it happened, and under
//! the route, server, kind or reason it happened to. A counter that no code path feeds reads
//! as "never happens" on a dashboard, which is worse than no counter. The page as a whole,
//! and the other ways to look inside, are metrics.rs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use crate::support::client::{self, REPLY_WAIT, udp_exchange_raw};
use crate::support::daemon::Daemon;
use crate::support::fixtures::internet;
use crate::support::harness::standard_plus;
use crate::support::http::{sample, scrape, value};
use crate::support::upstream::{bind_pair, frame, read_frame};
use crate::support::{FakeUpstream, Mode, Splitdns, assert_rcode, name, query};

/// splitdns on the standard config (a Consul route and the internet) with `/metrics` on an
/// ephemeral port and `tables` added; and its fake Consul agent and internet.
async fn with_metrics(tables: &str) -> (Splitdns, FakeUpstream, FakeUpstream) {
    let tables = format!("[metrics]\nlisten = \"127.0.0.1:0\"\n{tables}");
    Splitdns::with_fakes(&standard_plus("", &tables)).await
}

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

/// `splitdns_queries_total` names the common RCODEs and counts the rest as `other`, and
/// counts answers splitdns makes itself (FORMERR, NOTIMP, REFUSED, BADVERS) like the rest.
/// Packets refused or rejected before their question is read have no query type: `other`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rcode_label_counts_the_answers_that_carry_it() {
    let bad = Misbehaving::start().await;
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
    let (dns, _consul, internet) = Splitdns::with_fakes(&config).await;

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

#[tokio::test]
async fn failures_are_counted_by_kind_and_server() {
    let (dns, _consul, internet) = with_metrics("[cache]\nsize = 500").await;
    internet.set_mode(Mode::ServFail);
    assert_rcode(
        &dns.ask("www.example.", RecordType::A).await,
        ResponseCode::ServFail,
    );
    internet.set_mode(Mode::Refused);
    assert_rcode(
        &dns.ask("www.example.", RecordType::A).await,
        ResponseCode::ServFail,
    );

    let text = dns.scrape().await;
    let i = internet.addr();
    let failures = |kind: &str| {
        value(
            &text,
            &format!(r#"splitdns_upstream_failures_total{{route=".",server="{i}",kind="{kind}"}}"#),
        )
    };
    assert_eq!(failures("servfail"), 1.0);
    assert_eq!(failures("refused"), 1.0);
    assert_eq!(failures("timeout"), 0.0);
    assert_eq!(
        value(
            &text,
            r#"splitdns_queries_total{protocol="udp",qtype="A",rcode="SERVFAIL"}"#
        ),
        2.0
    );
    // Failed attempts are not latencies.
    assert_eq!(
        value(
            &text,
            &format!(r#"splitdns_upstream_latency_seconds_count{{route=".",server="{i}"}}"#)
        ),
        0.0
    );
}

/// docs/observing.md: `splitdns_upstream_failures_total` counts `network` (send errors, connections that
/// fail) and `bad_reply` (a reply that does not answer the query) too, and
/// `splitdns_upstream_queries_total` includes the TCP retry after a truncated UDP reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_and_bad_reply_failures_and_tcp_retries_are_counted() {
    let bad = Misbehaving::start().await;
    let tc = FakeUpstream::start(internet()).await;
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

/// `splitdns_cache_evictions_total`: fresh entries pushed out of a full cache (docs/observing.md); with
/// room for two answers, a third one pushes one out. The CHAOS `evictions.bind` says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_counts_its_evictions() {
    let (dns, _consul, internet) = with_metrics("[cache]\nsize = 2").await;
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

/// RFC 8767 §4 serves expired data when the upstreams fail; an operator needs to see how much
/// of the traffic that is, per route, before the stale window (`serve_stale`) runs out.
/// `splitdns_cache_stale_answers_total{route}` counts every answer served stale; such a query
/// went upstream first, so it is a miss too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_answers_are_counted_under_their_route() {
    // Consul's TTL 0 is lifted to 1 s, so the answer is cached and then expires.
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"";
    let (dns, consul, _internet) =
        Splitdns::with_fakes(&standard_plus("min_ttl = 1", metrics)).await;
    assert_rcode(
        &dns.ask("web.service.consul.", RecordType::A).await,
        ResponseCode::NoError,
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    consul.set_mode(Mode::ServFail);
    for _ in 0..2 {
        let stale = dns.ask("web.service.consul.", RecordType::A).await;
        assert_rcode(&stale, ResponseCode::NoError);
        assert!(stale.answers.iter().all(|r| r.ttl == 30), "{stale}");
    }

    let text = dns.scrape().await;
    let v = |series: &str| value(&text, series);
    assert_eq!(
        v(r#"splitdns_cache_stale_answers_total{route="consul."}"#),
        2.0
    );
    assert_eq!(v(r#"splitdns_cache_misses_total{route="consul."}"#), 3.0);
    assert_eq!(v(r#"splitdns_cache_hits_total{route="consul."}"#), 0.0);
    // The other route served nothing stale.
    assert_eq!(v(r#"splitdns_cache_stale_answers_total{route="."}"#), 0.0);
}

/// Every answer splitdns makes itself for a routed name is a local answer of that route: local
/// rules (`address=`, `local=`), local data (`[[record]]`), names kept home (`domain_needed`),
/// filtered AAAA and RFC 8482's ANY. With hits and misses they add up to the route's queries
/// (docs/observing.md), so a dashboard stacking them shows all the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_answers_are_counted_under_their_route() {
    let template = r#"
rules = ["address=/ads.example/#", "local=/lan/"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
[[route]]
zones = ["consul"]
servers = ["{consul}"]
filter_aaaa = true
[local]
domain_needed = true
[[record]]
name = "gw.lan"
type = "A"
value = "192.0.2.1"
[metrics]
listen = "127.0.0.1:0"
"#;
    let (dns, consul, internet) = Splitdns::with_fakes(template).await;
    let asked = [
        ("x.ads.example.", RecordType::A, ResponseCode::NoError),
        ("gw.lan.", RecordType::A, ResponseCode::NoError),
        ("nas.lan.", RecordType::A, ResponseCode::NXDomain),
        ("printer.", RecordType::A, ResponseCode::NXDomain),
        ("www.example.", RecordType::ANY, ResponseCode::NoError),
        (
            "web.service.consul.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
        ("www.example.", RecordType::A, ResponseCode::NoError),
        ("www.example.", RecordType::A, ResponseCode::NoError),
    ];
    for (qname, qtype, rcode) in asked {
        assert_rcode(&dns.ask(qname, qtype).await, rcode);
    }

    let text = dns.scrape().await;
    let v = |series: &str| value(&text, series);
    assert_eq!(
        v(r#"splitdns_local_answers_total{route="ads.example."}"#),
        1.0
    );
    assert_eq!(v(r#"splitdns_local_answers_total{route="lan."}"#), 2.0);
    assert_eq!(v(r#"splitdns_local_answers_total{route="."}"#), 2.0);
    assert_eq!(v(r#"splitdns_local_answers_total{route="consul."}"#), 1.0);
    let total = |metric: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let routed = total("splitdns_cache_hits_total")
        + total("splitdns_cache_misses_total")
        + total("splitdns_local_answers_total");
    assert_eq!(routed, asked.len() as f64, "{text}");
    assert_eq!((internet.total(), consul.total()), (1, 0));
}

#[tokio::test]
async fn dropped_packets_are_counted_by_reason() {
    let (dns, _consul, _internet) = with_metrics("[cache]\nsize = 500").await;
    // One socket for everything: the same source lands on the same listener socket, which
    // handles its packets in order, so once the query is answered both drops are counted.
    let sock = client::udp_socket().await;
    let mut response = client::encode(&query("www.example.", RecordType::A));
    response[2] |= 0x80;
    sock.send_to(&[0, 1, 2, 3, 4], dns.addr()).await.unwrap();
    sock.send_to(&response, dns.addr()).await.unwrap();
    let ask = query("www.example.", RecordType::A);
    sock.send_to(&client::encode(&ask), dns.addr())
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let (len, _) = tokio::time::timeout(REPLY_WAIT, sock.recv_from(&mut buf))
        .await
        .expect("no reply")
        .unwrap();
    assert_eq!(client::decode(&buf[..len]).metadata.id, ask.metadata.id);

    let text = dns.scrape().await;
    assert_eq!(
        value(
            &text,
            r#"splitdns_dropped_packets_total{reason="too_short"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"splitdns_dropped_packets_total{reason="not_a_query"}"#
        ),
        1.0
    );
}

/// `splitdns_inflight_queries`: client queries waiting for an upstream now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflight_queries_shows_queries_waiting_for_an_upstream() {
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"";
    let template = standard_plus("", metrics).replace("timeout = \"500ms\"", "timeout = \"3s\"");
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
    let (dns, _consul, _internet) = with_metrics("").await;
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

/// `splitdns_config_reloads_total{result}` counts SIGHUPs taken and rejected, and
/// `splitdns_config_info{hash}` follows the config in force: it changes with a reload that
/// changes the config, and not with one that is rejected (docs/running.md, Reloading).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_are_counted_and_config_info_follows_them() {
    let upstream = FakeUpstream::start(internet()).await;
    let config = format!(
        "rules = [\"address=/gw.lan/192.0.2.1\"]\n[server]\nlisten = [\"127.0.0.1:0\"]\n\
         [upstream]\nservers = [\"{}\"]\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        upstream.addr()
    );
    let daemon = Daemon::start(&config, None);
    let addr = daemon.wait_ready()[0];
    let log = daemon.stderr();
    let serving = log
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .unwrap_or_else(|| panic!("no metrics endpoint in: {log}"));
    let endpoint: SocketAddr = serving
        .split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))
        .unwrap_or_else(|| panic!("no addr= in: {serving}"))
        .parse()
        .unwrap();
    let info = |text: &str| {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("splitdns_config_info{"))
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        lines[0].to_string()
    };
    let started = info(&scrape(endpoint).await);

    daemon.rewrite_config(&config.replace("192.0.2.1", "192.0.2.2"));
    tokio::task::block_in_place(|| daemon.reload());
    assert!(daemon.stderr().contains("reloaded"), "{}", daemon.stderr());
    let after_reload = scrape(endpoint).await;
    let reloads = |text: &str, result: &str| {
        value(
            text,
            &format!(r#"splitdns_config_reloads_total{{result="{result}"}}"#),
        )
    };
    assert_eq!(reloads(&after_reload, "ok"), 1.0);
    assert_eq!(reloads(&after_reload, "failed"), 0.0);
    assert_ne!(info(&after_reload), started);
    let gw = client::udp(addr, &query("gw.lan.", RecordType::A)).await;
    assert_eq!(gw.answers.len(), 1, "{gw}");

    daemon.rewrite_config("[server]\nlisten = [");
    tokio::task::block_in_place(|| daemon.reload());
    assert!(
        daemon.stderr().contains("reload rejected"),
        "{}",
        daemon.stderr()
    );
    let after_reject = scrape(endpoint).await;
    assert_eq!(reloads(&after_reject, "failed"), 1.0);
    assert_eq!(reloads(&after_reject, "ok"), 1.0);
    assert_eq!(info(&after_reject), info(&after_reload));
}
