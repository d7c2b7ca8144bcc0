//! The ways an operator looks inside a running splitdns (docs/observing.md): the
//! `/metrics` page as a whole after a known sequence of queries, and the Grafana dashboard
//! that reads it; `/health` and `/ready`; dnsmasq's CHAOS `*.bind` answers; the query log;
//! the SIGUSR1 dump. What each series counts, one by one, is counters.rs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use tempfile::TempDir;

use crate::support::client::{self, REPLY_WAIT};
use crate::support::fixtures::internet;
use crate::support::harness::standard_plus;
use crate::support::http::{get, value};
use crate::support::logged::Logged;
use crate::support::{FakeUpstream, Mode, Splitdns, assert_rcode, query};

/// STANDARD plus the metrics endpoint on an ephemeral port and `extra`.
fn standard_with_metrics(extra: &str) -> String {
    standard_plus("", &format!("[metrics]\nlisten = \"127.0.0.1:0\"\n{extra}"))
}

async fn standard() -> (Splitdns, FakeUpstream, FakeUpstream) {
    Splitdns::with_fakes(&standard_with_metrics("[cache]\nsize = 500")).await
}

#[tokio::test]
async fn metrics_count_a_known_sequence_of_queries() {
    let (dns, consul, internet) = standard().await;
    for _ in 0..3 {
        assert_rcode(
            &dns.ask("www.example.", RecordType::A).await,
            ResponseCode::NoError,
        );
    }
    for _ in 0..2 {
        // TTL 0: never cached, so both go upstream.
        assert_rcode(
            &dns.ask("web.service.consul.", RecordType::A).await,
            ResponseCode::NoError,
        );
    }
    assert_rcode(
        &dns.ask("missing.example.", RecordType::A).await,
        ResponseCode::NXDomain,
    );
    assert_rcode(
        &dns.tcp(&query("www.example.", RecordType::A)).await,
        ResponseCode::NoError,
    );

    let text = dns.scrape().await;
    let (i, c) = (internet.addr(), consul.addr());
    let v = |series: &str| value(&text, series);
    assert_eq!(
        v(r#"splitdns_queries_total{protocol="udp",qtype="A",rcode="NOERROR"}"#),
        5.0
    );
    assert_eq!(
        v(r#"splitdns_queries_total{protocol="udp",qtype="A",rcode="NXDOMAIN"}"#),
        1.0
    );
    assert_eq!(
        v(r#"splitdns_queries_total{protocol="tcp",qtype="A",rcode="NOERROR"}"#),
        1.0
    );
    assert_eq!(text.matches("splitdns_queries_total{").count(), 3, "{text}");
    assert_eq!(v(r#"splitdns_cache_hits_total{route="."}"#), 3.0);
    assert_eq!(v(r#"splitdns_cache_misses_total{route="."}"#), 2.0);
    assert_eq!(v(r#"splitdns_cache_hits_total{route="consul."}"#), 0.0);
    assert_eq!(v(r#"splitdns_cache_misses_total{route="consul."}"#), 2.0);
    // Nothing had expired, so nothing was served stale (see stale_answers_are_counted_under_their_route).
    assert_eq!(v(r#"splitdns_cache_stale_answers_total{route="."}"#), 0.0);
    assert_eq!(
        v(&format!(
            r#"splitdns_upstream_queries_total{{route=".",server="{i}"}}"#
        )),
        2.0
    );
    assert_eq!(
        v(&format!(
            r#"splitdns_upstream_queries_total{{route="consul.",server="{c}"}}"#
        )),
        2.0
    );
    assert_eq!(internet.total(), 2);
    assert_eq!(consul.total(), 2);
    for kind in ["timeout", "servfail", "refused", "bad_reply"] {
        let series =
            format!(r#"splitdns_upstream_failures_total{{route=".",server="{i}",kind="{kind}"}}"#);
        assert_eq!(v(&series), 0.0, "{series}");
    }
    assert_eq!(
        v(&format!(
            r#"splitdns_upstream_latency_seconds_count{{route=".",server="{i}"}}"#
        )),
        2.0
    );
    assert_eq!(
        v(&format!(
            r#"splitdns_upstream_healthy{{route=".",server="{i}"}}"#
        )),
        1.0
    );
    assert_eq!(
        v(&format!(
            r#"splitdns_upstream_healthy{{route="consul.",server="{c}"}}"#
        )),
        1.0
    );
    // www.example. A and the NXDOMAIN for missing.example.; Consul's TTL 0 is not kept.
    assert_eq!(v("splitdns_cache_entries"), 2.0);
    assert_eq!(v("splitdns_cache_insertions_total"), 2.0);
    assert_eq!(v("splitdns_cache_evictions_total"), 0.0);
    assert_eq!(v("splitdns_inflight_queries"), 0.0);
    assert_eq!(v("splitdns_tcp_connections_accepted_total"), 1.0);
    assert_eq!(v(r#"splitdns_config_reloads_total{result="ok"}"#), 0.0);
    assert_eq!(
        v(&format!(
            r#"splitdns_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    let info = text
        .lines()
        .filter(|l| l.starts_with("splitdns_config_info{hash=\""))
        .count();
    assert_eq!(info, 1, "{text}");
}

#[tokio::test]
async fn health_turns_503_when_the_only_upstream_dies_and_200_when_it_returns() {
    let internet = FakeUpstream::start(internet()).await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
timeout = "200ms"
[metrics]
listen = "127.0.0.1:0"
health_window = "50ms"
"#;
    let dns = Splitdns::start(config, &[("internet", &internet)]).await;
    let endpoint = dns.metrics_addr();
    assert_eq!(get(endpoint, "/ready").await, (200, "ready\n".to_string()));
    assert_eq!(get(endpoint, "/health").await.0, 200);

    // zero.example. has TTL 0: every query reaches the upstream.
    assert_rcode(
        &dns.ask("zero.example.", RecordType::A).await,
        ResponseCode::NoError,
    );
    assert_eq!(get(endpoint, "/health").await.0, 200);
    internet.set_mode(Mode::Dead);
    assert_rcode(
        &dns.ask("zero.example.", RecordType::A).await,
        ResponseCode::ServFail,
    );
    let (status, body) = wait_for_health(endpoint, 503).await;
    assert_eq!(status, 503);
    assert!(
        body.contains("route .") && body.contains(&internet.addr().to_string()),
        "{body}"
    );
    let text = dns.scrape().await;
    let i = internet.addr();
    assert_eq!(
        value(
            &text,
            &format!(r#"splitdns_upstream_healthy{{route=".",server="{i}"}}"#)
        ),
        0.0
    );
    assert_eq!(
        value(
            &text,
            &format!(
                r#"splitdns_upstream_failures_total{{route=".",server="{i}",kind="timeout"}}"#
            )
        ),
        1.0
    );
    // Still ready: the listeners serve, only the upstream is gone.
    assert_eq!(get(endpoint, "/ready").await.0, 200);

    internet.set_mode(Mode::Normal);
    assert_rcode(
        &dns.ask("zero.example.", RecordType::A).await,
        ResponseCode::NoError,
    );
    assert_eq!(get(endpoint, "/health").await, (200, "ok\n".to_string()));
}

/// Polls `/health` until it gives `status` (the window has to pass first), for at most 5 s.
async fn wait_for_health(endpoint: SocketAddr, status: u16) -> (u16, String) {
    let deadline = Instant::now() + REPLY_WAIT;
    loop {
        let got = get(endpoint, "/health").await;
        if got.0 == status || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let (dns, _consul, _internet) = standard().await;
    assert_eq!(get(dns.metrics_addr(), "/nope").await.0, 404);
}

fn chaos_query(qname: &str) -> Message {
    let mut msg = query(qname, RecordType::TXT);
    msg.queries[0].set_query_class(DNSClass::CH);
    msg
}

/// The TXT strings of a CHAOS answer, checking its shape on the way.
async fn chaos(dns: &Splitdns, qname: &str) -> Vec<String> {
    let reply = dns.udp(&chaos_query(qname)).await;
    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1, "{reply}");
    let record = &reply.answers[0];
    assert_eq!(record.dns_class, DNSClass::CH);
    match &record.data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect(),
        other => panic!("not TXT: {other:?}"),
    }
}

#[tokio::test]
async fn chaos_answers_match_the_counters() {
    let (dns, consul, internet) = standard().await;
    dns.ask("www.example.", RecordType::A).await;
    dns.ask("www.example.", RecordType::A).await;
    dns.ask("web.service.consul.", RecordType::A).await;
    internet.set_mode(Mode::ServFail);
    dns.ask("missing.example.", RecordType::A).await;

    assert_eq!(chaos(&dns, "hits.bind.").await, ["1"]);
    assert_eq!(chaos(&dns, "misses.bind.").await, ["3"]);
    // CHAOS queries are neither hits nor misses.
    assert_eq!(chaos(&dns, "HITS.bind.").await, ["1"]);
    assert_eq!(chaos(&dns, "cachesize.bind.").await, ["500"]);
    assert_eq!(chaos(&dns, "insertions.bind.").await, ["1"]);
    assert_eq!(chaos(&dns, "evictions.bind.").await, ["0"]);
    let (i, c) = (internet.addr(), consul.addr());
    assert_eq!(
        chaos(&dns, "servers.bind.").await,
        [
            format!("{}#{} 2 1", i.ip(), i.port()),
            format!("{}#{} 1 0", c.ip(), c.port())
        ]
    );
    assert_eq!(
        chaos(&dns, "version.bind.").await,
        [format!("splitdns {}", env!("CARGO_PKG_VERSION"))]
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(chaos(&dns, "id.server.").await, [host.trim()]);

    let text = dns.scrape().await;
    let total = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(total("splitdns_cache_hits_total{"), 1.0);
    assert_eq!(total("splitdns_cache_misses_total{"), 3.0);
    assert_eq!(total("splitdns_cache_insertions_total"), 1.0);
    let chaos_txt = value(
        &text,
        r#"splitdns_queries_total{protocol="udp",qtype="TXT",rcode="NOERROR"}"#,
    );
    assert_eq!(chaos_txt, 9.0);
}

/// Starts the binary on a free port with `extra` appended to the config.
fn run_binary(dir: &TempDir, upstream: &FakeUpstream, extra: &str) -> (Logged, SocketAddr) {
    let (running, addr, ()) = Logged::start(dir.path(), &[], |addr| {
        let text = format!(
            "rules = [\"address=/gw.lan/192.0.2.1\"]\n[server]\nlisten = [\"{addr}\"]\n[upstream]\nservers = [\"{}\"]\n{extra}",
            upstream.addr()
        );
        (text, ())
    });
    (running, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_log_has_one_json_line_per_query() {
    let upstream = FakeUpstream::start(internet()).await;
    let dir = TempDir::new().unwrap();
    let (running, addr) = run_binary(
        &dir,
        &upstream,
        "[log]\nqueries = true\nformat = \"json\"\n",
    );

    client::udp(addr, &query("www.example.", RecordType::A)).await;
    client::udp(addr, &query("WWW.example.", RecordType::A)).await;
    client::tcp(addr, &query("gw.lan.", RecordType::A)).await;
    upstream.set_mode(Mode::ServFail);
    client::udp(addr, &query("missing.example.", RecordType::MX)).await;
    let lines = running.finish();

    let queries: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .filter(|j| j["target"] == "splitdns::query")
        .collect();
    assert_eq!(queries.len(), 4, "{lines:#?}");
    let field = |i: usize, key: &str| queries[i][key].as_str().unwrap_or_default().to_string();
    let up = upstream.addr().to_string();
    let expected = [
        ("www.example.", "A", ".", up.as_str(), "NOERROR"),
        ("WWW.example.", "A", ".", "cache", "NOERROR"),
        ("gw.lan.", "A", "gw.lan.", "local", "NOERROR"),
        ("missing.example.", "MX", ".", "none", "SERVFAIL"),
    ];
    for (i, (name, qtype, route, source, rcode)) in expected.into_iter().enumerate() {
        assert_eq!(field(i, "client"), "127.0.0.1", "{}", queries[i]);
        assert_eq!(field(i, "name"), name, "{}", queries[i]);
        assert_eq!(field(i, "type"), qtype, "{}", queries[i]);
        assert_eq!(field(i, "route"), route, "{}", queries[i]);
        assert_eq!(field(i, "upstream"), source, "{}", queries[i]);
        assert_eq!(field(i, "rcode"), rcode, "{}", queries[i]);
        assert!(
            queries[i]["latency_ms"].as_f64().is_some(),
            "{}",
            queries[i]
        );
    }
}

/// The query log's `upstream` field says `stale` for an answer served from an expired entry
/// (docs/observing.md, Query log), so an operator can tell it from a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_log_marks_stale_answers() {
    let upstream = FakeUpstream::start(internet()).await;
    let dir = TempDir::new().unwrap();
    // zero.example. has TTL 0: the floor of 1 s caches it, then it expires.
    let extra = "[log]\nqueries = true\nformat = \"json\"\n[cache]\nmin_ttl = 1\n";
    let (running, addr) = run_binary(&dir, &upstream, extra);

    client::udp(addr, &query("zero.example.", RecordType::A)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    upstream.set_mode(Mode::ServFail);
    let stale = client::udp(addr, &query("zero.example.", RecordType::A)).await;
    assert_rcode(&stale, ResponseCode::NoError);
    let lines = running.finish();

    let sources: Vec<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["target"] == "splitdns::query")
        .map(|j| j["upstream"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        sources,
        [upstream.addr().to_string(), "stale".to_string()],
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_log_is_off_by_default() {
    let upstream = FakeUpstream::start(internet()).await;
    let dir = TempDir::new().unwrap();
    let (running, addr) = run_binary(&dir, &upstream, "");
    client::udp(addr, &query("www.example.", RecordType::A)).await;
    let lines = running.finish();
    assert!(
        !lines.iter().any(|l| l.contains("splitdns::query")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_logs_cache_and_server_statistics() {
    let upstream = FakeUpstream::start(internet()).await;
    let dir = TempDir::new().unwrap();
    let (running, addr) = run_binary(&dir, &upstream, "[cache]\nsize = 777\n");
    client::udp(addr, &query("www.example.", RecordType::A)).await;
    client::udp(addr, &query("www.example.", RecordType::A)).await;

    running.signal("USR1");
    let cache = running.until("cache statistics").pop().unwrap();
    let server = running.until("upstream statistics").pop().unwrap();
    for field in ["size=777", "entries=1", "hits=1", "misses=1", "evictions=0"] {
        assert!(cache.contains(field), "{field} missing in: {cache}");
    }
    for field in [
        format!("server={}", upstream.addr()),
        "queries=1".into(),
        "failed=0".into(),
    ] {
        assert!(server.contains(&field), "{field} missing in: {server}");
    }
    // Still serving afterwards: SIGUSR1 must not stop it.
    client::udp(addr, &query("www.example.", RecordType::A)).await;
}

/// Every series a dashboard panel reads is exported once the feature it shows is configured
/// (here: an encrypted server, for the connection and handshake-failure panels).
#[tokio::test]
async fn grafana_dashboard_uses_only_exported_metrics() {
    let encrypted_route = "[[route]]\nzones = [\"corp.example\"]\nservers = [\"tls://127.0.0.1:853#ns.corp.example\"]";
    let config = standard_plus(
        encrypted_route,
        "[metrics]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = 500",
    );
    let (dns, _consul, _internet) = Splitdns::with_fakes(&config).await;
    dns.ask("www.example.", RecordType::A).await;
    let text = dns.scrape().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(!exprs.is_empty());
    let mut names: Vec<&str> = exprs
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| word.starts_with("splitdns_"))
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let exported = text.lines().any(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        });
        assert!(
            exported,
            "the dashboard uses {name}, which /metrics does not export"
        );
    }
}
