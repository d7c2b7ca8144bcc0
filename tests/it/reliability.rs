//! Keeping answering when upstreams fail: serve stale (RFC 8767), upstream health and
//! strategies, prefetch. Proven by upstream query counts; the only waits are for TTLs of
//! one or two seconds to run out, and bounds on how long a client waited.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::fixtures::{consul, internet};
use crate::support::http::{get, sample};
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

/// Waits (at most 5 s) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_answer_is_served_stale_with_ttl_30_when_the_upstream_dies() {
    let (dns, consul, _internet) = start(&consul_route(1, "500ms", "")).await;
    let fresh = dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ttls(&fresh, RecordType::A), [1, 1]);
    tokio::time::sleep(ONE_SECOND_TTL_EXPIRES).await;
    consul.set_mode(Mode::Dead);

    let asked = Instant::now();
    let stale = dns.ask("web.service.consul.", RecordType::A).await;

    assert!(asked.elapsed() < Duration::from_millis(1800));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_gets_the_client_a_stale_answer_within_1800ms_and_refreshes_the_cache() {
    let (dns, consul, _internet) = start(&consul_route(2, "5s", "")).await;
    dns.ask("web.service.consul.", RecordType::A).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    consul.set_mode(Mode::Slow(Duration::from_millis(2500)));

    let asked = Instant::now();
    let stale = dns.ask("web.service.consul.", RecordType::A).await;
    let waited = asked.elapsed();

    assert!(
        waited >= Duration::from_millis(1700) && waited < Duration::from_millis(2400),
        "the client waited {waited:?}: the client response timer is 1.8 s"
    );
    assert_eq!(answer_ttls(&stale, RecordType::A), [30, 30]);
    // The fetch went on after the client had its answer; once it lands it is a fresh hit.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    consul.set_mode(Mode::Normal);
    let refreshed = dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ttls(&refreshed, RecordType::A).len(), 2);
    assert!(answer_ttls(&refreshed, RecordType::A)[0] <= 2);
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

/// The default upstream is `first` then `second`, 200 ms per attempt, with `strategy`.
async fn two_servers(
    strategy: &str,
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
timeout = "200ms"
strategy = "{strategy}"
"#
    );
    let dns = Splitdns::start(&config, &[("first", &a), ("second", &b)]).await;
    (dns, a, b)
}

fn load_name(i: u32) -> String {
    format!("n{i}.load.example.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_failing_three_times_in_a_row_is_skipped_and_probed_once() {
    let (dns, first, second) = two_servers("failover", Mode::Dead, Mode::Normal).await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_server_is_used_again_once_a_probe_is_answered() {
    let (dns, first, second) = two_servers("failover", Mode::Dead, Mode::Normal).await;
    for i in 0..3 {
        dns.ask(&load_name(i), RecordType::A).await;
    }
    first.set_mode(Mode::Normal);

    // The next query skips `first` but probes it; the probe's answer brings it back.
    dns.ask(&load_name(3), RecordType::A).await;
    eventually("the probe reached the first server", || first.total() == 4).await;
    let mut back = false;
    for i in 4..40 {
        dns.ask(&load_name(i), RecordType::A).await;
        if first.count(&load_name(i), RecordType::A) == 1 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "the first server was never used again");
    assert!(second.total() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_server_is_down_they_are_all_still_tried() {
    let (dns, first, second) = two_servers("failover", Mode::Dead, Mode::Dead).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_asks_every_server_and_takes_the_first_good_answer() {
    // Failover would have the slow first server's answer (within the 200 ms timeout) and
    // never ask the second one.
    let slow = Mode::Slow(Duration::from_millis(100));
    let (dns, first, second) = two_servers("parallel", slow, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(first.count("www.example.", RecordType::A), 1);
    assert_eq!(second.count("www.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastest_prefers_the_server_with_the_lowest_rtt() {
    let slow = Mode::Slow(Duration::from_millis(60));
    let (dns, first, second) = two_servers("fastest", slow, Mode::Normal).await;

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
    // query, so wait (boundedly) for the second count.
    let deadline = Instant::now() + Duration::from_secs(2);
    while consul_a.total() + consul_b.total() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(consul_a.total(), 1);
    assert_eq!(consul_b.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_refreshes_an_entry_asked_for_near_its_end() {
    let (dns, consul, _internet) =
        start(&consul_route(2, "500ms", "[cache]\nprefetch = true")).await;
    dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(consul.total(), 1);

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
    let after = dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ttls(&after, RecordType::A).len(), 2);
    assert_eq!(
        consul.total(),
        2,
        "the refreshed entry answers without another fetch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prefetch_hits_near_the_end_do_not_ask_upstream() {
    let (dns, consul, _internet) = start(&consul_route(2, "500ms", "")).await;
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
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(consul.total(), 1);
}

/// Well under the 5 s attempt timeout of the routes below: a refusal acted on, not waited out.
const AT_ONCE: Duration = Duration::from_secs(1);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_by_the_first_server_moves_on_to_the_next_at_once() {
    let closed = closed_port();
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let template = consul_on(&format!("\"{closed}\", \"{{consul}}\""), 0);
    let dns = Splitdns::start(&template, &[("consul", &consul), ("internet", &internet)]).await;

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
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let template = consul_on("\"{consul}\"", 1);
    let dns = Splitdns::start(&template, &[("consul", &consul), ("internet", &internet)]).await;
    let fresh = dns.ask("web.service.consul.", RecordType::A).await;
    drop(consul);
    tokio::time::sleep(ONE_SECOND_TTL_EXPIRES).await;

    let asked = Instant::now();
    let stale = dns.ask("web.service.consul.", RecordType::A).await;

    assert!(asked.elapsed() < AT_ONCE, "took {:?}", asked.elapsed());
    assert_rcode(&stale, ResponseCode::NoError);
    assert_eq!(answer_ips(&stale), answer_ips(&fresh));
    assert_eq!(answer_ttls(&stale, RecordType::A), [30, 30]);
}
