//! DNSSEC on the wire where the Unbound oracle has nothing to say: the Extended DNS Error of a
//! bogus answer and how long it is kept, which routes are validated (`[[route]] dnssec`),
//! `check_unsigned`, validation switched off, and what `check` prints. The answers come from the
//! signed tree of support/signed.rs (NSD); nothing here needs Unbound.

use std::path::Path;

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::EdnsOption;

use crate::support::signed::{self, Tree};
use crate::support::{Splitdns, client, harness};

/// splitdns in front of the tree's NSD, with `dnssec` TOML after `[dnssec]`'s anchor, and
/// `routes` before it.
fn config(tree: &Tree, routes: &str, dnssec: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[upstream]\nservers = [\"{nsd}\"]\ntimeout = \"2s\"\n\n\
         {routes}\n[local]\nhosts_files = []\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [dnssec]\ntrust_anchors = [\"{anchor}\"]\n{dnssec}\n",
        nsd = tree.addr(),
        anchor = tree.anchor_ds,
    )
}

async fn start(tree: &Tree, routes: &str, dnssec: &str) -> Splitdns {
    Splitdns::start_config(harness::parse(&config(tree, routes, dnssec))).await
}

fn with_edns(qname: &str, qtype: RecordType, dnssec_ok: bool) -> Message {
    let mut msg = client::query(qname, qtype);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(dnssec_ok);
    msg.set_edns(edns);
    msg
}

/// The INFO-CODE of the reply's Extended DNS Error (RFC 8914 §2), if any.
fn ede(msg: &Message) -> Option<u16> {
    let edns = msg.edns.as_ref()?;
    edns.options()
        .options
        .iter()
        .find_map(|(_, option)| match option {
            EdnsOption::Unknown(15, data) if data.len() >= 2 => {
                Some(u16::from_be_bytes([data[0], data[1]]))
            }
            _ => None,
        })
}

/// The value of the sample `name` in a scrape, 0 when absent.
fn sample(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// RFC 8914 §2: the EDE rides in the OPT of a client that sent EDNS, and a client without
/// EDNS gets a plain SERVFAIL. RFC 9520 §3.2: the failure is kept (30 s), so asking again is
/// a cache hit, not a second validation.
#[tokio::test]
async fn a_bogus_answer_is_servfail_with_its_ede_and_kept() {
    if signed::skip("a_bogus_answer_is_servfail_with_its_ede_and_kept") {
        return;
    }
    let tree = Tree::build().await;
    let dns = start(&tree, "", "validate = true").await;
    for _ in 0..3 {
        let reply = dns
            .udp(&with_edns("www.expired.test.", RecordType::A, false))
            .await;
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(ede(&reply), Some(7), "Signature Expired:\n{reply}");
        assert!(!reply.metadata.authentic_data);
    }
    let plain = dns.ask("www.expired.test.", RecordType::A).await;
    assert_eq!(plain.metadata.response_code, ResponseCode::ServFail);
    assert!(plain.edns.is_none(), "no OPT without EDNS:\n{plain}");
    let scrape = dns.scrape().await;
    assert_eq!(
        sample(&scrape, "splitdns_dnssec_answers_total{state=\"bogus\"}"),
        1.0,
        "validated once: the rest are cache hits (with EDNS or without, DO clear: one key)\n{scrape}"
    );
    assert_eq!(
        sample(
            &scrape,
            "splitdns_dnssec_bogus_total{reason=\"signature_expired\"}"
        ),
        1.0,
        "{scrape}"
    );
}

/// Issue 22: a zone routed to a server of its own is insecure unless its route says
/// `dnssec = true`; then it is validated like the default upstreams' names.
#[tokio::test]
async fn a_routed_zone_is_validated_only_when_its_route_says_so() {
    if signed::skip("a_routed_zone_is_validated_only_when_its_route_says_so") {
        return;
    }
    let tree = Tree::build().await;
    let route = |dnssec: &str| {
        format!(
            "[[route]]\nzones = [\"tampered.test\"]\nservers = [\"{}\"]\n{dnssec}\n",
            tree.addr()
        )
    };
    let private = start(&tree, &route(""), "validate = true").await;
    let reply = private
        .udp(&with_edns("www.tampered.test.", RecordType::A, true))
        .await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply}"
    );
    assert!(!reply.metadata.authentic_data, "{reply}");
    let validated = start(&tree, &route("dnssec = true"), "validate = true").await;
    let reply = validated
        .udp(&with_edns("www.tampered.test.", RecordType::A, true))
        .await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::ServFail,
        "{reply}"
    );
    assert_eq!(ede(&reply), Some(6), "DNSSEC Bogus:\n{reply}");
    let secure = validated
        .udp(&with_edns("www.secure.test.", RecordType::A, true))
        .await;
    assert!(secure.metadata.authentic_data, "{secure}");
}

/// dnsmasq's `dnssec-check-unsigned=no`: a reply without any signature is taken as
/// insecure unproven, so a signed zone stripped of its RRSIGs passes (without AD); by
/// default it is bogus, RRSIGs Missing (RFC 8914 §4.11).
#[tokio::test]
async fn check_unsigned_decides_a_reply_without_signatures() {
    if signed::skip("check_unsigned_decides_a_reply_without_signatures") {
        return;
    }
    let tree = Tree::build().await;
    let strict = start(&tree, "", "validate = true").await;
    let reply = strict
        .udp(&with_edns("www.stripped.test.", RecordType::A, false))
        .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(ede(&reply), Some(10), "{reply}");
    let lax = start(&tree, "", "validate = true\ncheck_unsigned = false").await;
    let reply = lax
        .udp(&with_edns("www.stripped.test.", RecordType::A, false))
        .await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply}"
    );
    assert!(!reply.metadata.authentic_data, "{reply}");
}

/// Without `validate`, nothing is checked: a bogus zone answers as its server does.
#[tokio::test]
async fn without_validate_nothing_is_checked() {
    if signed::skip("without_validate_nothing_is_checked") {
        return;
    }
    let tree = Tree::build().await;
    let dns = start(&tree, "", "").await;
    let reply = dns
        .udp(&with_edns("www.tampered.test.", RecordType::A, true))
        .await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply}"
    );
    assert_eq!(ede(&reply), None);
    let scrape = dns.scrape().await;
    for state in ["secure", "insecure", "bogus", "indeterminate"] {
        let name = format!("splitdns_dnssec_answers_total{{state=\"{state}\"}}");
        assert_eq!(sample(&scrape, &name), 0.0, "{name}:\n{scrape}");
    }
}

/// `check` prints the anchors, the negative trust anchors and which routes are validated,
/// and refuses a malformed anchor naming its line.
#[test]
fn check_prints_the_anchors_and_refuses_a_bad_one() {
    let text = "[[route]]\nzones = [\"consul\"]\nservers = [\"127.0.0.1:8600\"]\n\
                [dnssec]\nvalidate = true\ninsecure = [\"corp.example\"]\n";
    let config = splitdns::Config::from_toml(text, Path::new("t.toml")).unwrap();
    let out = splitdns::check(&config).unwrap();
    assert!(
        out.contains("trust anchor: . IN DS 20326 8 2 E06D44B8"),
        "{out}"
    );
    assert!(
        out.contains("trust anchor: . IN DS 38696 8 2 683D2D0A"),
        "{out}"
    );
    assert!(
        out.contains("insecure (negative trust anchor): corp.example."),
        "{out}"
    );
    assert!(out.contains("validated routes: .\n"), "{out}");
    assert!(out.contains("consul."), "{out}");
    let bad = "[dnssec]\nvalidate = true\ntrust_anchors = [\n  \"example. IN DS 1 13 2 XYZ\",\n]\n";
    let err = splitdns::Config::from_toml(bad, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.toml:4: [dnssec] trust_anchors[0]"), "{err}");
}

/// The sum of every sample of `family` in a scrape whose labels start with `labels`.
fn total(scrape: &str, family: &str, labels: &str) -> f64 {
    let prefix = format!("{family}{{{labels}");
    scrape
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A zone's DNSKEY and DS sets, and the NS questions that found its cut, are fetched for
/// its first name and kept for its others: a second name of the zone costs one upstream
/// question, its own.
#[tokio::test]
async fn a_zones_keys_are_fetched_once_for_all_its_names() {
    if signed::skip("a_zones_keys_are_fetched_once_for_all_its_names") {
        return;
    }
    let tree = Tree::build().await;
    let dns = start(&tree, "", "validate = true").await;
    let sent = |scrape: &str| total(scrape, "splitdns_upstream_queries_total", "route=\".\"");
    let reply = dns.ask("www.secure.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let first = sent(&dns.scrape().await);
    assert!(first > 1.0, "the chain was fetched: {first} questions");
    for (qname, qtype) in [
        ("www.secure.test.", RecordType::MX),
        ("nope.secure.test.", RecordType::A),
        ("x.wild.secure.test.", RecordType::A),
    ] {
        let before = sent(&dns.scrape().await);
        let reply = dns.ask(qname, qtype).await;
        assert_ne!(
            reply.metadata.response_code,
            ResponseCode::ServFail,
            "{reply}"
        );
        let after = sent(&dns.scrape().await);
        assert_eq!(
            after - before,
            1.0,
            "{qname} {qtype}: only its own question went upstream"
        );
    }
}

/// A question of the chain that gets no answer (its route's server is gone) proves nothing:
/// the client gets SERVFAIL without an EDE, nothing is counted bogus, and nothing is kept, so
/// the next query tries again (RFC 9520 §3.2 keeps failures at most briefly; this one is an
/// upstream's, not the zone's).
#[tokio::test]
async fn a_chain_question_without_an_answer_is_an_upstream_failure() {
    if signed::skip("a_chain_question_without_an_answer_is_an_upstream_failure") {
        return;
    }
    let tree = Tree::build().await;
    let gone = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // www.secure.test itself is answered; secure.test's DNSKEY question goes to `gone`.
    let routes = format!(
        "[[route]]\nzones = [\"www.secure.test\"]\nservers = [\"{nsd}\"]\ndnssec = true\n\
         [[route]]\nzones = [\"secure.test\"]\nservers = [\"{gone}\"]\ntimeout = \"200ms\"\n\
         dnssec = true\n",
        nsd = tree.addr()
    );
    let dns = start(&tree, &routes, "validate = true").await;
    let sent = |scrape: &str| {
        total(
            scrape,
            "splitdns_upstream_queries_total",
            "route=\"www.secure.test.\"",
        )
    };
    for round in 1..=2 {
        let reply = dns
            .udp(&with_edns("www.secure.test.", RecordType::A, false))
            .await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::ServFail,
            "{reply}"
        );
        assert_eq!(ede(&reply), None, "no DNSSEC verdict:\n{reply}");
        let scrape = dns.scrape().await;
        assert_eq!(
            sent(&scrape),
            f64::from(round),
            "asked again, not kept:\n{scrape}"
        );
        assert_eq!(
            sample(&scrape, "splitdns_dnssec_answers_total{state=\"bogus\"}"),
            0.0
        );
    }
}
