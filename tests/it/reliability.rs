//! Keeping answering when upstreams fail: serve stale (RFC 8767), upstream health and
//! strategies, prefetch. Proven by upstream query counts and `/metrics`. The only sleeps
//! are for TTLs of one or two seconds to run out (a sleep never ends early, so a longer
//! one on a loaded machine only leaves the entry further expired); everything else waits
//! for the event it needs. Bounds on how long a client waited sit between the two
//! outcomes they tell apart, with the slack of the whole gap.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::client::REPLY_WAIT;
use crate::support::fixtures::{consul, internet};
use crate::support::http::{get, sample, value};
use crate::support::{FakeUpstream, Mode, Splitdns, answer_ips, answer_ttls, assert_rcode};

/// Consul TTLs are 0: `min_ttl` lifts them so the answer is cached, then expires quickly.
fn consul_route(min_ttl: u32, timeout: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{{internet}}"]
timeout = "500ms"
[[route]]
zones = ["consul"]
servers = ["{{consul}}"]
timeout = "{timeout}"
min_ttl = {min_ttl}
{extra}
"#
    )
}

async fn start(template: &str) -> (Splitdns, FakeUpstream, FakeUpstream) {
    Splitdns::with_fakes(template).await
}

/// Longer than one second: a 1 s lifetime counted in whole seconds has surely run out.
const ONE_SECOND_TTL_EXPIRES: Duration = Duration::from_millis(1100);

/// RFC 8767 §5's client response timer, which docs/behaviour.md gives as 1.8 s: with a stale answer
/// at hand, a client waits this long for a fresh one, and no longer.
const CLIENT_RESPONSE_TIMER: Duration = Duration::from_millis(1800);

/// The metrics endpoint, for a config's `extra` tables.
const METRICS: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";

/// Waits until `done` holds; the deadline only turns a hang into a failure.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + REPLY_WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of `series` in `/metrics` now.
async fn metric(dns: &Splitdns, series: &str) -> f64 {
    value(&dns.scrape().await, series)
}

/// Waits until `series` in `/metrics` exceeds `than`; the deadline only turns a hang
/// into a failure.
async fn metric_exceeds(dns: &Splitdns, series: &str, than: f64) {
    let deadline = Instant::now() + REPLY_WAIT;
    while metric(dns, series).await <= than {
        assert!(Instant::now() < deadline, "{series} stayed at {than}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const INSERTIONS: &str = "splitdns_cache_insertions_total";
const CONSUL_HITS: &str = r#"splitdns_cache_hits_total{route="consul."}"#;
const CONSUL_MISSES: &str = r#"splitdns_cache_misses_total{route="consul."}"#;

/// docs/behaviour.md: "When every server of the route fails, the client gets that answer with TTL 30
/// (RFC 8767)", so it comes when the 500 ms attempt fails, before the 1.8 s client
/// response timer would have given it (a timer never fires early: waiting for it takes
/// at least 1.8 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_answer_is_served_stale_with_ttl_30_when_the_upstream_dies() {
    let (dns, consul, _internet) = start(&consul_route(1, "500ms", "")).await;
    let fresh = dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ttls(&fresh, RecordType::A), [1, 1]);
    tokio::time::sleep(ONE_SECOND_TTL_EXPIRES).await;
    consul.set_mode(Mode::Dead);

    let asked = Instant::now();
    let stale = dns.ask("web.service.consul.", RecordType::A).await;

    assert!(
        asked.elapsed() < CLIENT_RESPONSE_TIMER,
        "took {:?}: the stale answer waited for the client response timer, not the failure",
        asked.elapsed()
    );
    assert_rcode(&stale, ResponseCode::NoError);
    assert_eq!(answer_ips(&stale), answer_ips(&fresh));
    assert_eq!(answer_ttls(&stale, RecordType::A), [30, 30]);
    assert_eq!(
        consul.count("web.service.consul.", RecordType::A),
        2,
        "the upstream was asked again before stale data was used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_from_the_upstream_also_gets_the_stale_answer() {
    let (dns, consul, _internet) = start(&consul_route(1, "500ms", "")).await;
    dns.ask("node-a.node.consul.", RecordType::A).await;
    tokio::time::sleep(ONE_SECOND_TTL_EXPIRES).await;
    consul.set_mode(Mode::ServFail);

    let stale = dns.ask("node-a.node.consul.", RecordType::A).await;

    assert_rcode(&stale, ResponseCode::NoError);
    assert_eq!(answer_ttls(&stale, RecordType::A), [30]);
}

/// RFC 8767 §5: with stale data at hand, a client waits for the client response timer
/// (1.8 s) and no longer, then gets the stale answer with TTL 30 (§4), while the
/// resolution goes on and refreshes the cache. The upstream answers only after 4 s, so
/// a TTL 30 answer is one given before the fetch ended; the refreshed entry is awaited
/// as a cache insertion, then answered as a hit with the upstream's TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_gets_the_client_a_stale_answer_within_1800ms_and_refreshes_the_cache() {
    let (dns, consul, _internet) = start(&consul_route(2, "10s", METRICS)).await;
    dns.ask("web.service.consul.", RecordType::A).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    consul.set_mode(Mode::Slow(Duration::from_secs(4)));
    let stored = metric(&dns, INSERTIONS).await;

    let asked = Instant::now();
    let stale = dns.ask("web.service.consul.", RecordType::A).await;
    let waited = asked.elapsed();

    assert!(
        waited >= CLIENT_RESPONSE_TIMER,
        "the client waited {waited:?}: the stale answer came before the client response timer"
    );
    assert_eq!(
        answer_ttls(&stale, RecordType::A),
        [30, 30],
        "not the stale answer: the client waited {waited:?} for the fetch"
    );
    // The fetch went on after the client had its answer; once stored, it is a fresh hit.
    metric_exceeds(&dns, INSERTIONS, stored).await;
    consul.set_mode(Mode::Normal);
    let hits = metric(&dns, CONSUL_HITS).await;
    let refreshed = dns.ask("web.service.consul.", RecordType::A).await;
    let ttls = answer_ttls(&refreshed, RecordType::A);
    assert!(
        ttls.len() == 2 && ttls.iter().all(|&ttl| ttl <= 2),
        "{ttls:?}"
    );
    assert_eq!(metric(&dns, CONSUL_HITS).await, hits + 1.0);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stale_0s_turns_it_off() {
    let extra = "[cache]\nserve_stale = \"0s\"";
    let (dns, consul, _internet) = start(&consul_route(1, "300ms", extra)).await;
    dns.ask("web.service.consul.", RecordType::A).await;
    tokio::time::sleep(ONE_SECOND_TTL_EXPIRES).await;
    consul.set_mode(Mode::Dead);

    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::ServFail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_never_answered_get_servfail_not_stale() {
    let (dns, consul, _internet) = start(&consul_route(1, "300ms", "")).await;
    consul.set_mode(Mode::Dead);

    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::ServFail);
}

/// The default upstream is `first` then `second`, `timeout` per attempt, with `strategy`.
async fn two_servers(
    strategy: &str,
    timeout: &str,
    first: Mode,
    second: Mode,
) -> (Splitdns, FakeUpstream, FakeUpstream) {
    let a = FakeUpstream::start(internet()).await;
    let b = FakeUpstream::start(internet()).await;
    a.set_mode(first);
    b.set_mode(second);
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{{first}}", "{{second}}"]
timeout = "{timeout}"
strategy = "{strategy}"
"#
    );
    let dns = Splitdns::start(&config, &[("first", &a), ("second", &b)]).await;
    (dns, a, b)
}

fn load_name(i: u32) -> String {
    format!("n{i}.load.example.")
}

/// docs/behaviour.md: "A server that fails 3 times in a row is down: it is skipped, and at most
/// every 5 s one query is also sent to it in the background".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_failing_three_times_in_a_row_is_skipped_and_probed_once() {
    let (dns, first, second) = two_servers("failover", "200ms", Mode::Dead, Mode::Normal).await;

    for i in 0..3 {
        assert_rcode(
            &dns.ask(&load_name(i), RecordType::A).await,
            ResponseCode::NoError,
        );
    }
    assert_eq!(first.total(), 3, "asked first while it was not yet down");
    for i in 3..8 {
        assert_rcode(
            &dns.ask(&load_name(i), RecordType::A).await,
            ResponseCode::NoError,
        );
    }

    eventually("one probe of the down server", || first.total() == 4).await;
    assert_eq!(second.total(), 8);
    assert_eq!(
        first.total(),
        4,
        "a down server is probed at most every 5 s"
    );
}

/// docs/behaviour.md: a down server is probed "until it answers and is used again".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_server_is_used_again_once_a_probe_is_answered() {
    let (dns, first, second) = two_servers("failover", "200ms", Mode::Dead, Mode::Normal).await;
    for i in 0..3 {
        dns.ask(&load_name(i), RecordType::A).await;
    }
    first.set_mode(Mode::Normal);

    // The next query skips `first` but probes it; the probe's answer brings it back.
    dns.ask(&load_name(3), RecordType::A).await;
    eventually("the probe reached the first server", || first.total() == 4).await;
    // Its answer is taken a moment after it arrived: ask new names until one goes to
    // `first`; the deadline only turns a hang into a failure.
    let deadline = Instant::now() + REPLY_WAIT;
    let mut i = 4;
    loop {
        dns.ask(&load_name(i), RecordType::A).await;
        if first.count(&load_name(i), RecordType::A) == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first server was never used again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        i += 1;
    }
    assert!(second.total() >= 4);
}

/// docs/behaviour.md: "When every server of a route is down, they are all asked anyway."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_server_is_down_they_are_all_still_tried() {
    let (dns, first, second) = two_servers("failover", "200ms", Mode::Dead, Mode::Dead).await;
    for i in 0..3 {
        assert_rcode(
            &dns.ask(&load_name(i), RecordType::A).await,
            ResponseCode::ServFail,
        );
    }
    second.set_mode(Mode::Normal);

    let reply = dns.ask(&load_name(3), RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(first.count(&load_name(3), RecordType::A), 1);
    assert_eq!(second.count(&load_name(3), RecordType::A), 1);
}

/// docs/behaviour.md: `"parallel"` asks every server at once and takes the first good answer.
/// Failover would have the slow first server's answer (300 ms, well within the 2 s
/// timeout) and never ask the second one. The client has its answer as soon as the
/// second server replies, which may be before the first has counted its query, so its
/// count is awaited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_asks_every_server_and_takes_the_first_good_answer() {
    let slow = Mode::Slow(Duration::from_millis(300));
    let (dns, first, second) = two_servers("parallel", "2s", slow, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(second.count("www.example.", RecordType::A), 1);
    eventually("the first server's query", || first.total() == 1).await;
    assert_eq!(first.count("www.example.", RecordType::A), 1);
}

/// docs/behaviour.md: `"fastest"` asks the server with the lowest smoothed round-trip time first,
/// and one query in 16 goes first to another server so that it is measured again. A
/// 300 ms gap between the two servers holds however busy the machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastest_prefers_the_server_with_the_lowest_rtt() {
    let slow = Mode::Slow(Duration::from_millis(300));
    let (dns, first, second) = two_servers("fastest", "2s", slow, Mode::Normal).await;

    for i in 0..20 {
        assert_rcode(
            &dns.ask(&load_name(i), RecordType::A).await,
            ResponseCode::NoError,
        );
    }

    assert!(first.total() >= 1, "the slow server was measured");
    assert!(
        first.total() <= 3,
        "the slow server got {} of 20",
        first.total()
    );
    assert!(second.total() >= 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_strategy_overrides_the_default() {
    let consul_a = FakeUpstream::start(consul()).await;
    let consul_b = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
[[route]]
zones = ["consul"]
servers = ["{a}", "{b}"]
strategy = "parallel"
"#;
    let dns = Splitdns::start(
        config,
        &[("a", &consul_a), ("b", &consul_b), ("internet", &internet)],
    )
    .await;

    dns.ask("web.service.consul.", RecordType::A).await;

    // Both were asked at once; the client has its answer as soon as the
    // first replies, which may be before the other fake has counted its
    // query, so wait for the second count.
    eventually("both servers' queries", || {
        consul_a.total() + consul_b.total() >= 2
    })
    .await;
    assert_eq!(consul_a.total(), 1);
    assert_eq!(consul_b.total(), 1);
}

/// docs/behaviour.md: with `prefetch = true`, an answer asked for in the last 10% of its TTL (at
/// least its last second) is fetched again in the background, once, so hot names never
/// miss. The refreshed answer is awaited as a cache insertion; asked then, it is a hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_refreshes_an_entry_asked_for_near_its_end() {
    let extra = format!("[cache]\nprefetch = true\n{METRICS}");
    let (dns, consul, _internet) = start(&consul_route(2, "500ms", &extra)).await;
    dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(consul.total(), 1);
    let stored = metric(&dns, INSERTIONS).await;

    // Ask until a hit shows 1 s left: the last 10% of the entry's life (at least its last second).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let reply = dns.ask("web.service.consul.", RecordType::A).await;
        let ttls = answer_ttls(&reply, RecordType::A);
        if ttls == [1, 1] {
            break;
        }
        assert_eq!(
            consul.total(),
            1,
            "a fresh hit with {ttls:?} left asked upstream"
        );
        assert!(
            Instant::now() < deadline,
            "never saw the entry's last second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    eventually("the prefetch reached the upstream", || consul.total() == 2).await;
    metric_exceeds(&dns, INSERTIONS, stored).await;
    let hits = metric(&dns, CONSUL_HITS).await;
    let after = dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ttls(&after, RecordType::A).len(), 2);
    assert_eq!(metric(&dns, CONSUL_HITS).await, hits + 1.0);
    assert_eq!(
        consul.total(),
        2,
        "the refreshed entry answers without another fetch"
    );
}

/// docs/configuration.md: `prefetch` is off by default, and then a hit in an answer's last second
/// fetches nothing. Once the entry has run out, the next query is a miss that goes
/// upstream, the second query there in all: a refresh after the near-end hit would have
/// made it a hit, or a third query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prefetch_hits_near_the_end_do_not_ask_upstream() {
    let (dns, consul, _internet) = start(&consul_route(2, "500ms", METRICS)).await;
    dns.ask("web.service.consul.", RecordType::A).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let reply = dns.ask("web.service.consul.", RecordType::A).await;
        if answer_ttls(&reply, RecordType::A) == [1, 1] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never saw the entry's last second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(consul.total(), 1);
    tokio::time::sleep(ONE_SECOND_TTL_EXPIRES).await;
    let misses = metric(&dns, CONSUL_MISSES).await;

    dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(
        metric(&dns, CONSUL_MISSES).await,
        misses + 1.0,
        "the entry was refreshed"
    );
    assert_eq!(consul.total(), 2);
}

/// Half the 5 s attempt timeout of the routes below: a refusal acted on, not waited out
/// (waiting it out takes at least 5 s), with 2.5 s to spare for a loaded machine.
const AT_ONCE: Duration = Duration::from_millis(2500);

/// Waits until a datagram to `addr` comes back refused (ICMP port unreachable): the
/// fake that served there has closed its socket. Dropping a fake aborts its tasks, and
/// the socket closes when the runtime drops them, a moment later.
async fn until_refused(addr: std::net::SocketAddr) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(addr).await.unwrap();
    let refused = |e: std::io::Error| e.kind() == std::io::ErrorKind::ConnectionRefused;
    let deadline = Instant::now() + REPLY_WAIT;
    let mut buf = [0; 512];
    loop {
        // Not a DNS message: a fake still serving drops it without a reply. The refusal
        // of an earlier datagram is reported by whichever call comes next.
        if socket.send(b"x").await.is_err_and(refused) {
            return;
        }
        let wait = tokio::time::timeout(Duration::from_millis(50), socket.recv(&mut buf));
        if wait
            .await
            .is_ok_and(|received| received.is_err_and(refused))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} still takes datagrams");
    }
}

/// A loopback UDP port nothing listens on: a datagram sent there comes back as
/// ICMP port unreachable, as from a host whose Consul agent is not running.
fn closed_port() -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().to_string()
}

/// The Consul route on `servers`, 5 s per attempt, with the metrics endpoint.
fn consul_on(servers: &str, min_ttl: u32) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[metrics]
listen = "127.0.0.1:0"
[upstream]
servers = ["{{internet}}"]
timeout = "5s"
[[route]]
zones = ["consul"]
servers = [{servers}]
timeout = "5s"
min_ttl = {min_ttl}
"#
    )
}

/// RFC 1122 §4.1.3.3: UDP "MUST pass to the application layer all ICMP error
/// messages that it receives from the IP layer"; a port unreachable says no
/// server listens there (the Consul agent is not running), so no reply can
/// come and waiting out the 5 s attempt helps no one. The refusal is that
/// server's failure, counted under `kind="network"`, and with no other server
/// the client gets SERVFAIL in milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_by_the_only_server_is_servfail_at_once_not_after_the_timeout() {
    let closed = closed_port();
    let (dns, _consul, _internet) = start(&consul_on(&format!("\"{closed}\""), 0)).await;

    let asked = Instant::now();
    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::ServFail);
    assert!(asked.elapsed() < AT_ONCE, "took {:?}", asked.elapsed());
    let (_, text) = get(dns.metrics_addr(), "/metrics").await;
    let failures = |kind: &str| {
        let series = format!(
            r#"splitdns_upstream_failures_total{{route="consul.",server="{closed}",kind="{kind}"}}"#
        );
        sample(&text, &series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert_eq!(failures("network"), 1.0);
    assert_eq!(failures("timeout"), 0.0);
}

/// docs/behaviour.md: a refusal (ICMP port unreachable) "is acted on as soon as it arrives, so a
/// client gets the next server's answer ... in milliseconds rather than after the
/// timeout".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_by_the_first_server_moves_on_to_the_next_at_once() {
    let closed = closed_port();
    let template = consul_on(&format!("\"{closed}\", \"{{consul}}\""), 0);
    let (dns, consul, _internet) = start(&template).await;

    let asked = Instant::now();
    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert!(asked.elapsed() < AT_ONCE, "took {:?}", asked.elapsed());
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
}

/// RFC 8767 (abstract): stale data is there "to avoid outages when
/// authoritative nameservers cannot be reached to refresh expired data"; a
/// refusal says so at once, so the stale answer need not wait for the attempt
/// timeout either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_stopped_after_an_answer_gets_the_stale_answer_at_once() {
    let (dns, consul, _internet) = start(&consul_on("\"{consul}\"", 1)).await;
    let fresh = dns.ask("web.service.consul.", RecordType::A).await;
    let agent = consul.addr();
    drop(consul);
    until_refused(agent).await;
    tokio::time::sleep(ONE_SECOND_TTL_EXPIRES).await;

    let asked = Instant::now();
    let stale = dns.ask("web.service.consul.", RecordType::A).await;

    assert!(asked.elapsed() < AT_ONCE, "took {:?}", asked.elapsed());
    assert_rcode(&stale, ResponseCode::NoError);
    assert_eq!(answer_ips(&stale), answer_ips(&fresh));
    assert_eq!(answer_ttls(&stale, RecordType::A), [30, 30]);
}
