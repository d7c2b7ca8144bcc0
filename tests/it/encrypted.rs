//! Encrypted upstreams against the real thing: Unbound's DNS over TLS (RFC 7858) and DNS over
//! HTTPS (RFC 8484) listeners on 127.0.0.1, with a CA and certificates made for the test, and
//! `kdig` (Knot's dig) against the same server as the cross-check of what a correct client
//! sees. Nothing leaves the machine: Unbound answers from `local-zone`s only.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use tokio::sync::oneshot;

use crate::support::http::{get, value};
use crate::support::unbound::{self, Pki, SERVER_NAME, Unbound};
use crate::support::{Splitdns, client, harness, prereq};

/// A config whose default route is `server`, trusting `pki`'s CA, with metrics on.
fn config(server: &str, pki: &Pki, extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["{server}"]
ca_file = "{ca}"
{extra}

[metrics]
listen = "127.0.0.1:0"
"#,
        ca = pki.ca_file().display()
    )
}

async fn start(server: &str, pki: &Pki, extra: &str) -> Splitdns {
    Splitdns::start_config(harness::parse(&config(server, pki, extra))).await
}

fn first_a(reply: &hickory_proto::op::Message) -> Option<String> {
    reply.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

async fn metric(dns: &Splitdns, series: &str) -> f64 {
    let (_, body) = get(dns.metrics_addr(), "/metrics").await;
    value(&body, series)
}

/// `splitdns_upstream_connections_total` of the default route's server `entry`.
async fn connections(dns: &Splitdns, entry: &str) -> f64 {
    let labels = format!("{{route=\".\",server=\"{entry}\"}}");
    metric(dns, &format!("splitdns_upstream_connections_total{labels}")).await
}

/// Unbound on a fresh PKI, and splitdns whose default route is Unbound's listener as
/// `entry` names it (with `extra` in `[upstream]`). A test binds every field: Unbound's
/// config points into the PKI's directory, and dropping Unbound stops it.
struct Forwarding {
    _pki: Pki,
    unbound: Unbound,
    entry: String,
    dns: Splitdns,
}

impl Forwarding {
    async fn start(entry: impl Fn(&Unbound) -> String, extra: &str) -> Self {
        let pki = Pki::new();
        let unbound = Unbound::start(&pki).await;
        let entry = entry(&unbound);
        let dns = start(&entry, &pki, extra).await;
        Self {
            _pki: pki,
            unbound,
            entry,
            dns,
        }
    }

    /// Over DoT to Unbound's TLS listener, verifying the name `name`.
    async fn dot(name: &str, extra: &str) -> Self {
        Self::start(|unbound| tls_entry(unbound.tls, name), extra).await
    }
}

fn tls_entry(addr: SocketAddr, name: &str) -> String {
    format!("tls://{addr}#{name}")
}

/// RFC 7858 §3.3: queries go over one TLS connection that stays open and is reused ("clients
/// SHOULD ... reuse"). Two misses, two answers, one connection; the server label says `tls://`.
#[tokio::test]
async fn dot_answers_come_through_unbounds_tls_listener() {
    if unbound::skip("dot_answers_come_through_unbounds_tls_listener") {
        return;
    }
    let Forwarding {
        _pki,
        unbound,
        entry: _,
        dns,
    } = Forwarding::dot(SERVER_NAME, "").await;
    let reply = dns.ask("www.test.", RecordType::A).await;
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert_eq!(first_a(&reply).as_deref(), Some("192.0.2.10"));
    let reply = dns.ask("a.wild.test.", RecordType::A).await;
    assert_eq!(first_a(&reply).as_deref(), Some("192.0.2.20"));
    let labels = format!(
        "{{route=\".\",server=\"tls://{}#{SERVER_NAME}\"}}",
        unbound.tls
    );
    assert_eq!(
        metric(&dns, &format!("splitdns_upstream_queries_total{labels}")).await,
        2.0
    );
    assert_eq!(
        connections(&dns, &format!("tls://{}#{SERVER_NAME}", unbound.tls)).await,
        1.0
    );
    assert_eq!(
        unbound.stat("num.query.tls"),
        2,
        "Unbound saw both queries over TLS"
    );
    assert_eq!(Unbound::established(unbound.tls.port()), 1);
}

/// RFC 8484 §4.1: DoH over HTTP/2 with `application/dns-message`; Unbound's `https-port`
/// answers, and the two queries share one connection.
#[tokio::test]
async fn doh_answers_come_through_unbounds_https_listener() {
    if unbound::skip("doh_answers_come_through_unbounds_https_listener") {
        return;
    }
    let Forwarding {
        _pki,
        unbound,
        entry: _,
        dns,
    } = Forwarding::start(
        |unbound| format!("https://{}/dns-query#{SERVER_NAME}", unbound.https),
        "",
    )
    .await;
    let reply = dns.ask("www.test.", RecordType::A).await;
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert_eq!(first_a(&reply).as_deref(), Some("192.0.2.10"));
    let reply = dns.ask("b.wild.test.", RecordType::A).await;
    assert_eq!(first_a(&reply).as_deref(), Some("192.0.2.20"));
    let reply = dns.ask("nothing.test.", RecordType::A).await;
    assert_eq!(
        reply.response_code,
        ResponseCode::NXDomain,
        "NXDOMAIN comes back as it is"
    );
    assert_eq!(
        connections(
            &dns,
            &format!("https://{}/dns-query#{SERVER_NAME}", unbound.https)
        )
        .await,
        1.0
    );
    assert_eq!(
        unbound.stat("num.query.https"),
        3,
        "Unbound saw the queries over HTTPS"
    );
}

/// RFC 7858 §4.1/§4.2 and RFC 8310 §5: a certificate that does not verify (wrong name,
/// unknown CA, expired) or that matches no pin means no answer from that server, never clear
/// text; the log says why. The same server with the right name and pin answers.
#[tokio::test]
async fn certificates_that_do_not_verify_fail_the_server_with_the_reason() {
    if unbound::skip("certificates_that_do_not_verify_fail_the_server_with_the_reason") {
        return;
    }
    let pki = Pki::new();
    let stranger = Pki::new();
    let expired = Pki::with_validity(-30, -1);
    let unbound = Unbound::start(&pki).await;
    let stale = Unbound::start(&expired).await;
    let ca = pki.ca_file();
    let good = tls_entry(unbound.tls, SERVER_NAME);
    let text = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{good}"]
ca_file = "{ca}"
[[route]]
zones = ["wrongname.example"]
servers = ["{wrong_name}"]
[[route]]
zones = ["unknownca.example"]
servers = ["{good}"]
ca_file = "{stranger_ca}"
[[route]]
zones = ["expired.example"]
servers = ["{stale_entry}"]
ca_file = "{expired_ca}"
[[route]]
zones = ["badpin.example"]
servers = ["{good}"]
ca_file = "{ca}"
pin_sha256 = ["{stranger_pin}"]
[[route]]
zones = ["goodpin.example"]
servers = ["{good}"]
ca_file = "{ca}"
pin_sha256 = ["{stranger_pin}", "{pin}"]
"#,
        ca = ca.display(),
        wrong_name = tls_entry(unbound.tls, "other.test"),
        stranger_ca = stranger.ca_file().display(),
        stale_entry = tls_entry(stale.tls, SERVER_NAME),
        expired_ca = expired.ca_file().display(),
        stranger_pin = stranger.pin,
        pin = pki.pin,
    );
    let daemon = crate::support::daemon::Daemon::start(&text, None);
    let addr = daemon.wait_ready()[0];
    for zone in ["wrongname", "unknownca", "expired", "badpin"] {
        let reply = client::udp(
            addr,
            &client::query(&format!("x.{zone}.example."), RecordType::A),
        )
        .await;
        assert_eq!(reply.response_code, ResponseCode::ServFail, "{zone}");
    }
    let reply = client::udp(addr, &client::query("x.goodpin.example.", RecordType::A)).await;
    assert_eq!(
        reply.response_code,
        ResponseCode::NXDomain,
        "the matching pin is accepted: {}",
        daemon.stderr()
    );
    let log = daemon.stderr();
    let refusal = |needle: &str, kind: &str| {
        log.lines().any(|l| {
            l.contains("refused the upstream's certificate")
                && l.contains(needle)
                && l.contains(kind)
        })
    };
    assert!(
        refusal("#other.test", "wrong_name"),
        "no wrong-name line in:\n{log}"
    );
    assert!(
        refusal(&unbound.tls.to_string(), "unknown_issuer"),
        "no unknown-CA line in:\n{log}"
    );
    assert!(
        refusal(&stale.tls.to_string(), "expired"),
        "no expired line in:\n{log}"
    );
    assert!(
        refusal(&unbound.tls.to_string(), "pin_mismatch"),
        "no pin line in:\n{log}"
    );
    assert_eq!(
        unbound.stat("num.query.tls"),
        1,
        "only the pinned route's query reached Unbound"
    );
}

/// The failures are counted by kind in `splitdns_upstream_tls_handshake_failures_total`.
#[tokio::test]
async fn handshake_failures_are_counted_by_kind() {
    if unbound::skip("handshake_failures_are_counted_by_kind") {
        return;
    }
    let Forwarding {
        _pki,
        unbound: _unbound,
        entry,
        dns,
    } = Forwarding::dot("other.test", "").await;
    let reply = dns.ask("www.test.", RecordType::A).await;
    assert_eq!(reply.response_code, ResponseCode::ServFail);
    let series = format!(
        "splitdns_upstream_tls_handshake_failures_total{{route=\".\",server=\"{entry}\",kind=\"wrong_name\"}}"
    );
    assert_eq!(metric(&dns, &series).await, 1.0);
}

/// RFC 7766 §6.2.1 (pipelining) and RFC 7858 §3.4 ("clients ... SHOULD pipeline"): 200 misses
/// at once go over one connection; Unbound sees one client connection, not 200.
#[tokio::test]
async fn two_hundred_concurrent_misses_share_one_connection() {
    if unbound::skip("two_hundred_concurrent_misses_share_one_connection") {
        return;
    }
    // What is tested is one connection, not speed: a loaded machine must not turn a
    // slow answer into a SERVFAIL (the route's timeout stays below the client's wait).
    let Forwarding {
        _pki,
        unbound,
        entry,
        dns,
    } = Forwarding::dot(SERVER_NAME, "timeout = \"3s\"").await;
    let addr = dns.addr();
    let asks: Vec<_> = (0..200)
        .map(|i| {
            tokio::spawn(async move {
                client::udp(
                    addr,
                    &client::query(&format!("n{i}.wild.test."), RecordType::A),
                )
                .await
            })
        })
        .collect();
    for ask in asks {
        let reply = ask.await.unwrap();
        assert_eq!(first_a(&reply).as_deref(), Some("192.0.2.20"));
    }
    assert_eq!(
        Unbound::established(unbound.tls.port()),
        1,
        "one connection at Unbound"
    );
    assert_eq!(connections(&dns, &entry).await, 1.0);
    assert_eq!(unbound.stat("num.query.tls"), 200);
}

/// When a query was asked, against the restart of Unbound in [`a_server_restart_loses_no_query`].
const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

/// A server restart in the middle of traffic: the connection breaks, splitdns connects again
/// (with backoff while the port is closed) within each query's timeout, and every query is
/// answered: those asked before Unbound is killed, while it is down or starting, and after
/// it is back. The second connection resumes the TLS session (RFC 5077/8446 §2.2).
#[tokio::test]
async fn a_server_restart_loses_no_query() {
    if unbound::skip("a_server_restart_loses_no_query") {
        return;
    }
    let Forwarding {
        _pki,
        mut unbound,
        entry,
        dns,
    } = Forwarding::dot(SERVER_NAME, "timeout = \"5s\"").await;
    let addr = dns.addr();
    let phase = Arc::new(AtomicU8::new(BEFORE));
    let (first_answered, answered) = oneshot::channel();
    let traffic = tokio::spawn({
        let phase = Arc::clone(&phase);
        async move {
            let mut first_answered = Some(first_answered);
            let mut codes: [Vec<ResponseCode>; 3] = Default::default();
            // At least 60 queries, and 20 of them asked after the restart.
            for i in 0.. {
                let asked = phase.load(Ordering::Acquire);
                let q = client::query(&format!("r{i}.wild.test."), RecordType::A);
                codes[usize::from(asked)].push(client::udp(addr, &q).await.response_code);
                if let Some(tx) = first_answered.take() {
                    let _ = tx.send(());
                }
                if i >= 59 && codes[usize::from(AFTER)].len() >= 20 {
                    break;
                }
                // Pacing: a stream of queries rather than a burst.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            codes
        }
    });
    answered.await.expect("the first query was answered");
    phase.store(DURING, Ordering::Release);
    unbound.restart().await;
    phase.store(AFTER, Ordering::Release);
    let [before, during, after] = traffic.await.unwrap();
    for (when, codes) in [("before", &before), ("during", &during), ("after", &after)] {
        assert!(
            codes.iter().all(|c| *c == ResponseCode::NoError),
            "asked {when} the restart: {codes:?}"
        );
    }
    assert!(!before.is_empty(), "answered before the restart");
    assert!(after.len() >= 20, "answered after the restart: {after:?}");
    assert!(
        unbound.stat("num.query.tls.resume") > 0,
        "the new connection resumed the TLS session:\n{}",
        unbound.log()
    );
    assert!(connections(&dns, &entry).await >= 2.0);
}

/// `kdig +tls` against the same Unbound: a correct client gets the same answer with the right
/// name and CA, and no answer with the wrong name or a foreign pin, as splitdns does.
#[tokio::test]
async fn kdig_sees_what_splitdns_sees() {
    if unbound::skip("kdig_sees_what_splitdns_sees") {
        return;
    }
    if prereq::skip(
        "kdig_sees_what_splitdns_sees",
        "kdig",
        prereq::no_program("kdig"),
    ) {
        return;
    }
    let pki = Pki::new();
    let stranger = Pki::new();
    let unbound = Unbound::start(&pki).await;
    let kdig = |args: &[String]| {
        let out = Command::new("/usr/bin/kdig")
            .arg(format!("@{}", unbound.tls.ip()))
            .arg("-p")
            .arg(unbound.tls.port().to_string())
            .arg(format!("+tls-ca={}", pki.ca_file().display()))
            .args(args)
            .args(["+short", "+timeout=2", "+retry=0", "www.test", "A"])
            .output()
            .expect("kdig runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        kdig(&[format!("+tls-hostname={SERVER_NAME}")]),
        "192.0.2.10"
    );
    assert_eq!(kdig(&["+tls-hostname=other.test".to_string()]), "");
    assert_eq!(
        kdig(&[
            format!("+tls-hostname={SERVER_NAME}"),
            format!("+tls-pin={}", stranger.pin)
        ]),
        ""
    );
    let dns = start(&tls_entry(unbound.tls, SERVER_NAME), &pki, "").await;
    assert_eq!(
        first_a(&dns.ask("www.test.", RecordType::A).await).as_deref(),
        Some("192.0.2.10")
    );
    let wrong = start(&tls_entry(unbound.tls, "other.test"), &pki, "").await;
    assert_eq!(
        wrong.ask("www.test.", RecordType::A).await.response_code,
        ResponseCode::ServFail
    );
}

fn config_error(text: &str) -> String {
    splitdns::config::Config::from_toml(text, std::path::Path::new("splitdns.toml"))
        .expect_err("the config is rejected")
        .to_string()
}

/// Errors an operator can cause name the file, line, key and value, and say how to fix it.
#[test]
fn encrypted_entries_that_cannot_work_are_config_errors() {
    let err = config_error("[upstream]\nservers = [\"https://dns.quad9.net/dns-query\"]\n");
    assert!(
        err.starts_with(
            "splitdns.toml:2: [upstream] servers = \"https://dns.quad9.net/dns-query\""
        ) && err.contains("bootstrap = { \"dns.quad9.net\" = \"ADDRESS\" }"),
        "{err}"
    );
    let err = config_error(
        "[upstream]\nservers = [\"tls://9.9.9.9#dns.quad9.net\"]\npin_sha256 = [\"abc\"]\n",
    );
    assert!(
        err.starts_with("splitdns.toml:3: [upstream] pin_sha256 = \"abc\""),
        "{err}"
    );
    assert!(err.contains("base64"), "{err}");
    let empty = tempfile::NamedTempFile::new().unwrap();
    let text = format!(
        "[[route]]\nzones = [\"corp.example\"]\nservers = [\"tls://192.0.2.53#ns.corp.example\"]\nca_file = \"{}\"\n",
        empty.path().display()
    );
    let err = config_error(&text);
    assert!(
        err.starts_with("splitdns.toml:4: [[route]] #1 ca_file"),
        "{err}"
    );
    assert!(err.contains("no PEM certificate"), "{err}");
    let err = config_error("rules = [\"server=/corp.example/quic://192.0.2.53\"]\n");
    assert!(err.contains("unknown transport \"quic\""), "{err}");
}

/// One entry switches a route to DoT: a rule line, with `[upstream]`'s CA, parses to the
/// transport and the name it verifies, as `splitdns check` prints it.
#[test]
fn a_rule_line_switches_a_zone_to_dns_over_tls() {
    let pki = Pki::new();
    let text = format!(
        "rules = [\"server=/corp.example/tls://192.0.2.53#ns.corp.example\"]\n[upstream]\nservers = [\"192.0.2.1\"]\nca_file = \"{}\"\n",
        pki.ca_file().display()
    );
    let config = harness::parse(&text);
    let table = splitdns::check(&config).expect("the config checks");
    assert!(
        table.contains("corp.example. -> tls://192.0.2.53:853#ns.corp.example"),
        "{table}"
    );
    assert!(table.contains(". -> 192.0.2.1:53"), "{table}");
}
