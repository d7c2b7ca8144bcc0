//! DNSSEC validation against an outside oracle: a tree signed by the real tools under the
//! private anchor `test.` and served by NSD (support/signed.rs), Unbound validating it with the
//! same anchor, and splitdns validating it as `[dnssec]` tells it to, both forwarding to the
//! same NSD. Every case is asked of both, with DO, with AD alone and with neither, and the
//! response code, the AD bit, the answer records (TTLs aside), whether an OPT came back, and
//! for DO the owners with RRSIGs and the record types of a negative answer's proof must match.
//! Unbound's behaviour is the expectation. [`CASES`] records what Unbound says of each case,
//! which the oracle's own test checks, so a broken tree fails there and not as a splitdns
//! difference; and for a bogus case the Extended DNS Error splitdns must send, Unbound's.
//!
//! One difference is deliberate: a zone routed to a server of its own (`consul.test.` here, as
//! `consul.` on a Consul host) is insecure in splitdns without being named (issue 22's rule:
//! such zones are unsigned by nature, and the signed parent proves they do not exist), where
//! Unbound needs `domain-insecure:` (RFC 7646 §2, a negative trust anchor) to answer them at
//! all. The differential's Unbound is given `domain-insecure: "consul.test."` so both answer
//! alike; [`oracle_validates_the_test_tree`] shows an Unbound without it fails the zone, and
//! [`a_route_is_validated_when_it_says_so`] shows the rule on a signed zone (Unbound's AD,
//! splitdns's none) and its way out (`dnssec = true` on the route).
//!
//! Nothing here waits on a clock beyond a reply: each server is asked one question at a time.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::process::Command;

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::EdnsOption;

use crate::support::clients::{self, Libc};
use crate::support::daemon::Daemon;
use crate::support::http;
use crate::support::netns::{self, Netns};
use crate::support::signed::{self, CONSUL_ZONE, LOCAL_ADDR, LOCAL_NAME, NTA_ZONE, Oracle, Tree};
use crate::support::{Splitdns, client, harness, prereq};

/// The validation state of an answer (RFC 4035 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Secure,
    Insecure,
    Bogus,
}

/// One question about the tree and what a validator must make of it.
struct Case {
    qname: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    state: State,
    /// Whether the answer section has records (the name has the type, or a CNAME).
    data: bool,
    /// The Extended DNS Error (RFC 8914 §4) a bogus answer carries.
    ede: Option<u16>,
    /// The rule, by RFC section.
    rule: &'static str,
}

const fn case(
    qname: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    state: State,
    rule: &'static str,
) -> Case {
    Case {
        qname,
        qtype,
        rcode,
        state,
        data: matches!(rcode, ResponseCode::NoError),
        ede: None,
        rule,
    }
}

/// A name that exists without the type asked: NOERROR and no records (RFC 2308 §2.2).
const fn nodata(qname: &'static str, qtype: RecordType, state: State, rule: &'static str) -> Case {
    Case {
        data: false,
        ..case(qname, qtype, ResponseCode::NoError, state, rule)
    }
}

const fn bogus(qname: &'static str, ede: u16, rule: &'static str) -> Case {
    Case {
        qname,
        qtype: RecordType::A,
        rcode: ResponseCode::ServFail,
        state: State::Bogus,
        data: false,
        ede: Some(ede),
        rule,
    }
}

use RecordType::{A, DNSKEY, DS, MX, TXT};
use ResponseCode::{NXDomain, NoError};
use State::{Insecure, Secure};

/// Every case of issue 22's list, over the tree of support/signed.rs.
const CASES: &[Case] = &[
    case(
        "www.test.",
        A,
        NoError,
        Secure,
        "RFC 4035 §5: signed by the anchor's own key",
    ),
    case(
        "www.secure.test.",
        A,
        NoError,
        Secure,
        "RFC 4035 §5.2: DS to DNSKEY to RRSIG",
    ),
    case(
        "nope.secure.test.",
        A,
        NXDomain,
        Secure,
        "RFC 4035 §5.4: NSEC name error",
    ),
    nodata(
        "www.secure.test.",
        MX,
        Secure,
        "RFC 4035 §5.4: NSEC no data",
    ),
    case(
        "x.wild.secure.test.",
        A,
        NoError,
        Secure,
        "RFC 4035 §5.3.4: NSEC wildcard answer",
    ),
    nodata(
        "x.wild.secure.test.",
        TXT,
        Secure,
        "RFC 4035 §3.1.3.4: wildcard no data",
    ),
    case(
        "www.nsec3.test.",
        A,
        NoError,
        Secure,
        "RFC 5155 §8: NSEC3 zone, answer",
    ),
    case(
        "nope.nsec3.test.",
        A,
        NXDomain,
        Secure,
        "RFC 5155 §8.4: NSEC3 name error",
    ),
    nodata(
        "www.nsec3.test.",
        MX,
        Secure,
        "RFC 5155 §8.5: NSEC3 no data",
    ),
    case(
        "x.wild.nsec3.test.",
        A,
        NoError,
        Secure,
        "RFC 5155 §8.8: NSEC3 wildcard answer",
    ),
    nodata(
        "x.wild.nsec3.test.",
        TXT,
        Secure,
        "RFC 5155 §8.7: NSEC3 wildcard no data",
    ),
    case(
        "www.optout.test.",
        A,
        NoError,
        Secure,
        "RFC 5155 §6: opt-out zone, signed name",
    ),
    nodata(
        "www.optout.test.",
        MX,
        Secure,
        "RFC 5155 §8.5: matching NSEC3, no data",
    ),
    case(
        "nope.optout.test.",
        A,
        NXDomain,
        Insecure,
        "RFC 5155 §9.2: opt-out span, no AD",
    ),
    case(
        "www.sub.optout.test.",
        A,
        NoError,
        Insecure,
        "RFC 5155 §8.6: delegation in an opt-out span",
    ),
    case(
        "secure.test.",
        DS,
        NoError,
        Secure,
        "RFC 4035 §5.2: the DS set, from the parent",
    ),
    case(
        "secure.test.",
        DNSKEY,
        NoError,
        Secure,
        "RFC 4035 §5.2: the DNSKEY set, signed by the KSK",
    ),
    nodata(
        "unsigned.test.",
        DS,
        Secure,
        "RFC 4035 §5.2: NSEC proves no DS",
    ),
    nodata(
        "insecure.nsec3.test.",
        DS,
        Secure,
        "RFC 5155 §8.6: NSEC3 proves no DS",
    ),
    nodata(
        "sub.optout.test.",
        DS,
        Insecure,
        "RFC 5155 §8.6: no DS in an opt-out span",
    ),
    case(
        "www.unsigned.test.",
        A,
        NoError,
        Insecure,
        "RFC 4035 §5.2: NSEC proves no DS",
    ),
    case(
        "nope.unsigned.test.",
        A,
        NXDomain,
        Insecure,
        "RFC 4035 §5.2: insecure name error",
    ),
    case(
        "www.insecure.nsec3.test.",
        A,
        NoError,
        Insecure,
        "RFC 5155 §8.6: NSEC3 no DS",
    ),
    case(
        "alias.secure.test.",
        A,
        NoError,
        Insecure,
        "RFC 4035 §5: CNAME into unsigned zone",
    ),
    case(
        "chain.secure.test.",
        A,
        NoError,
        Secure,
        "RFC 4035 §5: CNAME between signed zones",
    ),
    bogus(
        "www.tampered.test.",
        6,
        "RFC 4035 §5.3.3: signature does not verify",
    ),
    bogus("www.expired.test.", 7, "RFC 4035 §5.3.1: signature expired"),
    bogus(
        "www.future.test.",
        8,
        "RFC 4035 §5.3.1: signature not yet valid",
    ),
    bogus(
        "www.nokey.test.",
        9,
        "RFC 4035 §5.2: no DNSKEY matches the DS",
    ),
    bogus(
        "www.wrongds.test.",
        9,
        "RFC 4035 §5.2: DS digest matches no DNSKEY",
    ),
    bogus(
        "www.stripped.test.",
        10,
        "RFC 4035 §5.3: signed zone, RRSIG missing",
    ),
    bogus(
        "x.wild.nowildproof.test.",
        6,
        "RFC 4035 §5.3.4: wildcard answer without its NSEC",
    ),
    case(
        "www.nta.test.",
        A,
        NoError,
        Insecure,
        "RFC 7646 §2: negative trust anchor",
    ),
    case(
        "web.service.consul.test.",
        A,
        NoError,
        Insecure,
        "issue 22: a routed zone is insecure",
    ),
    case(
        LOCAL_NAME,
        A,
        NoError,
        Insecure,
        "issue 22: local data is insecure",
    ),
    case(
        "www.example.",
        A,
        NoError,
        Insecure,
        "RFC 4033 §5: under no trust anchor",
    ),
];

/// The zones the differential's Unbound treats as insecure: splitdns's `insecure` list and,
/// named for Unbound only, the zone splitdns routes elsewhere (see the module comment).
const ORACLE_INSECURE: &[&str] = &[NTA_ZONE, CONSUL_ZONE];

/// How a question is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// EDNS with DO=1 (RFC 3225), AD=0.
    Do,
    /// AD=1 and no EDNS (RFC 6840 §5.7), as glibc with `options trust-ad` asks.
    AdOnly,
    /// Neither: no AD may come back (RFC 6840 §5.8).
    Plain,
    /// EDNS with DO=1 and CD=1 (RFC 4035 §3.2.2).
    CdDo,
}

impl Ask {
    fn has_do(self) -> bool {
        matches!(self, Self::Do | Self::CdDo)
    }
}

fn message(qname: &str, qtype: RecordType, ask: Ask) -> Message {
    let mut msg = client::query(qname, qtype);
    if ask.has_do() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(true);
        msg.set_edns(edns);
    }
    msg.metadata.authentic_data = ask == Ask::AdOnly;
    msg.metadata.checking_disabled = ask == Ask::CdDo;
    msg
}

/// Asks `server` over UDP, and again over TCP when the reply is truncated.
async fn ask(server: SocketAddr, qname: &str, qtype: RecordType, how: Ask) -> Message {
    let msg = message(qname, qtype, how);
    let reply = client::udp(server, &msg).await;
    if reply.metadata.truncation {
        return client::tcp(server, &msg).await;
    }
    reply
}

/// The Extended DNS Error's INFO-CODE (RFC 8914 §2), if the reply has one.
fn ede(msg: &Message) -> Option<u16> {
    msg.edns
        .as_ref()?
        .options()
        .options
        .iter()
        .find_map(|(_, option)| match option {
            EdnsOption::Unknown(15, data) if data.len() >= 2 => {
                Some(u16::from_be_bytes([data[0], data[1]]))
            }
            _ => None,
        })
}

/// The validation state a reply shows: SERVFAIL is bogus, AD secure, anything else insecure.
fn state(msg: &Message) -> State {
    if msg.metadata.response_code == ResponseCode::ServFail {
        State::Bogus
    } else if msg.metadata.authentic_data {
        State::Secure
    } else {
        State::Insecure
    }
}

/// What the comparison looks at in one reply.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    rcode: ResponseCode,
    ad: bool,
    edns: bool,
    /// The answer section but RRSIGs, as `owner TYPE DATA`, sorted.
    answers: BTreeSet<String>,
    /// For DO: the owners of RRSIGs in the answer section.
    signed: BTreeSet<String>,
    /// For DO and a negative answer: the record types of the authority section.
    proof: BTreeSet<String>,
}

impl Seen {
    fn of(msg: &Message, how: Ask) -> Self {
        let is_rrsig = |t: RecordType| t == RecordType::RRSIG;
        let answers = msg
            .answers
            .iter()
            .filter(|r| !is_rrsig(r.record_type()))
            .map(|r| format!("{} {} {}", r.name.to_lowercase(), r.record_type(), r.data))
            .collect();
        let signed = msg
            .answers
            .iter()
            .filter(|r| how.has_do() && is_rrsig(r.record_type()))
            .map(|r| r.name.to_lowercase().to_string())
            .collect();
        let negative = msg.metadata.response_code == ResponseCode::NXDomain
            || (msg.metadata.response_code == ResponseCode::NoError && msg.answers.is_empty());
        let proof = msg
            .authorities
            .iter()
            .filter(|_| how.has_do() && negative)
            .map(|r| r.record_type().to_string())
            .collect();
        Self {
            rcode: msg.metadata.response_code,
            ad: msg.metadata.authentic_data,
            edns: msg.edns.is_some(),
            answers,
            signed,
            proof,
        }
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rcode)?;
        if self.ad {
            write!(f, ", AD")?;
        }
        if !self.edns {
            write!(f, ", no OPT")?;
        }
        for answer in &self.answers {
            write!(f, ", {answer}")?;
        }
        if !self.signed.is_empty() {
            let owners: Vec<&str> = self.signed.iter().map(String::as_str).collect();
            write!(f, ", RRSIG at {}", owners.join(" "))?;
        }
        if !self.proof.is_empty() {
            let types: Vec<&str> = self.proof.iter().map(String::as_str).collect();
            write!(f, ", authority {}", types.join(" "))?;
        }
        Ok(())
    }
}

/// splitdns validating the tree: NSD as the only upstream, the tree's anchor (`anchor`: DS or
/// DNSKEY text), `nta.test.` insecure, `consul.test.` routed to the Consul stand-in, the
/// local record Unbound has too, metrics on, and no hosts file.
fn splitdns_toml(tree: &Tree, anchor: &str) -> String {
    splitdns_toml_on(tree, anchor, "127.0.0.1:0")
}

/// [`splitdns_toml`], answering on `listen`.
fn splitdns_toml_on(tree: &Tree, anchor: &str, listen: &str) -> String {
    format!(
        r#"[server]
listen = ["{listen}"]
rebind_protection = false

[upstream]
servers = ["{nsd}"]
timeout = "2s"

[[route]]
zones = ["{consul}"]
servers = ["{consul_addr}"]
timeout = "2s"

[local]
hosts_files = []

[[record]]
name = "{local_name}"
type = "A"
value = "{LOCAL_ADDR}"

[dnssec]
validate = true
trust_anchors = ["{anchor}"]
insecure = ["{nta}"]

[metrics]
listen = "127.0.0.1:0"
"#,
        nsd = tree.addr(),
        consul = CONSUL_ZONE.trim_end_matches('.'),
        consul_addr = tree.consul_addr(),
        nta = NTA_ZONE.trim_end_matches('.'),
        local_name = LOCAL_NAME.trim_end_matches('.'),
    )
}

async fn splitdns(tree: &Tree) -> Splitdns {
    start_splitdns(tree, &tree.anchor_ds).await
}

async fn start_splitdns(tree: &Tree, anchor: &str) -> Splitdns {
    Splitdns::start_config(harness::parse(&splitdns_toml(tree, anchor))).await
}

/// The oracle itself: Unbound, given the tree's anchor, finds every case of [`CASES`] in the
/// state the case names (RFC 4035 §4.3, §5; RFC 5155 §8, §9.2; RFC 7646 §2), with the EDE
/// of RFC 8914 §4 when it sends one, passes a bogus answer on with CD=1 (RFC 4035 §3.2.2),
/// and takes the anchor as DNSKEY text as it does as DS. An Unbound given no negative trust
/// anchors fails `nta.test.` and `consul.test.` as bogus: the tree proves both insecure only
/// by configuration, so splitdns's answers for them test its insecure rules.
#[tokio::test]
async fn oracle_validates_the_test_tree() {
    if signed::skip("oracle_validates_the_test_tree") {
        return;
    }
    let tree = Tree::build().await;
    let oracle = Oracle::start(&tree, ORACLE_INSECURE).await;
    let mut wrong = Vec::new();
    for case in CASES {
        let reply = ask(oracle.addr, case.qname, case.qtype, Ask::Do).await;
        let got_ede = ede(&reply);
        let ede_ok = got_ede.is_none() || got_ede == case.ede;
        let has_data = !reply.answers.is_empty();
        let data_ok = has_data == case.data;
        if reply.metadata.response_code != case.rcode || state(&reply) != case.state || !ede_ok {
            wrong.push(format!(
                "  {} {} ({}): want {} {:?} EDE {:?}, Unbound says {} {:?} EDE {got_ede:?}",
                case.qname,
                case.qtype,
                case.rule,
                case.rcode,
                case.state,
                case.ede,
                reply.metadata.response_code,
                state(&reply)
            ));
        } else if case.state != State::Bogus && !data_ok {
            wrong.push(format!(
                "  {} {}: answer section {:?}",
                case.qname, case.qtype, reply.answers
            ));
        }
        if case.state == State::Bogus {
            let cd = ask(oracle.addr, case.qname, case.qtype, Ask::CdDo).await;
            if cd.metadata.response_code != NoError || cd.answers.is_empty() {
                wrong.push(format!("  {} with CD=1: {cd}", case.qname));
            }
        }
    }
    let strict = Oracle::start(&tree, &[]).await;
    for qname in ["www.nta.test.", "web.service.consul.test."] {
        let reply = ask(strict.addr, qname, A, Ask::Do).await;
        if state(&reply) != State::Bogus {
            wrong.push(format!(
                "  {qname} without domain-insecure: want bogus, Unbound says {:?}",
                state(&reply)
            ));
        }
    }
    let by_key = Oracle::start_with_anchor(&tree, &tree.anchor_dnskey, ORACLE_INSECURE).await;
    let reply = ask(by_key.addr, "www.secure.test.", A, Ask::Do).await;
    if state(&reply) != State::Secure {
        wrong.push(format!(
            "  DNSKEY anchor {}: www.secure.test. {reply}",
            tree.anchor_dnskey
        ));
    }
    assert!(
        wrong.is_empty(),
        "Unbound does not validate the test tree as expected:\n{}\n\nUnbound's log:\n{}\n\
         NSD's log:\n{}",
        wrong.join("\n"),
        oracle.log(),
        tree.log()
    );
}

/// The differential: for every case, asked with DO, with AD alone and plainly, splitdns
/// answers as Unbound does: the same response code, AD exactly when secure and asked for
/// (RFC 6840 §5.7–5.8), SERVFAIL for bogus (RFC 4035 §5.5), the same answer records, an OPT
/// only to an EDNS query (RFC 6891 §7), RRSIGs and negative proofs to DO clients (RFC 4035
/// §3.2.1), and on a bogus answer to an EDNS query the Extended DNS Error the case names
/// (RFC 8914 §4), which is Unbound's too whenever Unbound sends one.
#[tokio::test]
async fn splitdns_validates_like_unbound() {
    if signed::skip("splitdns_validates_like_unbound") {
        return;
    }
    let tree = Tree::build().await;
    let oracle = Oracle::start(&tree, ORACLE_INSECURE).await;
    let dns = splitdns(&tree).await;
    let mut differences = Vec::new();
    for case in CASES {
        // DO first: the EDE of a first failure is compared before either caches anything.
        for how in [Ask::Do, Ask::AdOnly, Ask::Plain] {
            let theirs = ask(oracle.addr, case.qname, case.qtype, how).await;
            let ours = ask(dns.addr(), case.qname, case.qtype, how).await;
            let (unbound, splitdns) = (Seen::of(&theirs, how), Seen::of(&ours, how));
            if unbound != splitdns {
                differences.push(format!(
                    "  {} {} {how:?} ({})\n    unbound:  {unbound}\n    splitdns: {splitdns}",
                    case.qname, case.qtype, case.rule
                ));
            }
            if how == Ask::Do && case.state == State::Bogus {
                let (theirs, ours) = (ede(&theirs), ede(&ours));
                if ours != case.ede || theirs.is_some_and(|code| Some(code) != ours) {
                    differences.push(format!(
                        "  {} {} EDE ({}): want {:?}, unbound {theirs:?}, splitdns {ours:?}",
                        case.qname, case.qtype, case.rule, case.ede
                    ));
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "splitdns and Unbound differ on {} question(s):\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// CD=1 (RFC 4035 §3.2.2, RFC 6840 §5.9): a bogus answer is passed on unvalidated, with its
/// RRSIGs to a DO client and without AD, as Unbound does; and the same name asked next with
/// CD=0 is SERVFAIL again, never the unvalidated answer from the cache (RFC 4035 §4.7). The
/// AD bit of a CD=1 answer that is not bogus is not compared (RFC 4035 §3.2.3 lets a server
/// set it on what it validated anyway, as Unbound does, or leave it clear).
#[tokio::test]
async fn checking_disabled_passes_the_answer_unvalidated() {
    if signed::skip("checking_disabled_passes_the_answer_unvalidated") {
        return;
    }
    let tree = Tree::build().await;
    let oracle = Oracle::start(&tree, ORACLE_INSECURE).await;
    let dns = splitdns(&tree).await;
    let mut differences = Vec::new();
    let names = [
        "www.tampered.test.",
        "www.expired.test.",
        "www.secure.test.",
        "www.unsigned.test.",
    ];
    for qname in names {
        for how in [Ask::CdDo, Ask::Do, Ask::AdOnly] {
            let mut unbound = Seen::of(&ask(oracle.addr, qname, A, how).await, how);
            let mut splitdns = Seen::of(&ask(dns.addr(), qname, A, how).await, how);
            if how == Ask::CdDo {
                // Unbound validates with CD=1 too and sets AD on what it found secure;
                // splitdns passes the upstream's answer on unvalidated. RFC 4035 §3.2.3
                // allows both: AD only for what the server itself considers authentic.
                unbound.ad = false;
                splitdns.ad = false;
            }
            if unbound != splitdns {
                differences.push(format!(
                    "  {qname} {how:?}\n    unbound:  {unbound}\n    splitdns: {splitdns}"
                ));
            }
        }
    }
    let cd = Seen::of(
        &ask(dns.addr(), "www.tampered.test.", A, Ask::CdDo).await,
        Ask::CdDo,
    );
    assert!(
        cd.rcode == NoError && !cd.ad && !cd.signed.is_empty(),
        "a bogus answer with CD=1 and DO=1 is the upstream's, signed and without AD: {cd}"
    );
    assert!(
        differences.is_empty(),
        "splitdns and Unbound differ on CD=1 and what follows:\n{}",
        differences.join("\n")
    );
}

/// RRSIGs go to DO clients only (RFC 4035 §3.2.1, RFC 3225 §3), also when the name was
/// first asked without DO and the answer came from the cache, and never back to a client
/// without DO after; the AD bit follows each client's own request (RFC 6840 §5.8).
#[tokio::test]
async fn rrsigs_go_to_do_clients_only() {
    if signed::skip("rrsigs_go_to_do_clients_only") {
        return;
    }
    let tree = Tree::build().await;
    let oracle = Oracle::start(&tree, ORACLE_INSECURE).await;
    let dns = splitdns(&tree).await;
    let mut differences = Vec::new();
    for qname in [
        "www.secure.test.",
        "x.wild.nsec3.test.",
        "nope.secure.test.",
    ] {
        for how in [Ask::Plain, Ask::Do, Ask::AdOnly, Ask::Plain, Ask::Do] {
            let theirs = ask(oracle.addr, qname, A, how).await;
            let ours = ask(dns.addr(), qname, A, how).await;
            let (unbound, splitdns) = (Seen::of(&theirs, how), Seen::of(&ours, how));
            let sigs = |m: &Message| {
                m.answers
                    .iter()
                    .chain(&m.authorities)
                    .any(|r| r.record_type() == RecordType::RRSIG)
            };
            if unbound != splitdns || sigs(&ours) != how.has_do() {
                differences.push(format!(
                    "  {qname} {how:?}\n    unbound:  {unbound}\n    splitdns: {splitdns} \
                     (RRSIGs anywhere: {})",
                    sigs(&ours)
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "RRSIGs or AD differ from Unbound:\n{}",
        differences.join("\n")
    );
}

/// A trust anchor given as DNSKEY text is the same anchor as its DS (RFC 4035 §5: a
/// validator is configured with either), as Unbound's `trust-anchor:` takes both.
#[tokio::test]
async fn dnskey_anchor_validates_like_ds() {
    if signed::skip("dnskey_anchor_validates_like_ds") {
        return;
    }
    let tree = Tree::build().await;
    let dns = start_splitdns(&tree, &tree.anchor_dnskey).await;
    for case in CASES
        .iter()
        .filter(|c| c.qname.ends_with(".secure.test.") || c.ede == Some(6))
    {
        let reply = ask(dns.addr(), case.qname, case.qtype, Ask::Do).await;
        assert_eq!(
            (reply.metadata.response_code, state(&reply)),
            (case.rcode, case.state),
            "{} {} with the anchor {} ({}):\n{reply}",
            case.qname,
            case.qtype,
            tree.anchor_dnskey,
            case.rule
        );
    }
}

/// A route with servers of its own is validated when it says `dnssec = true` (issue 22: the
/// way to validate a signed private zone), as Unbound validates every zone it forwards:
/// secure answers get AD, bogus ones SERVFAIL with their EDE (RFC 4035 §5, RFC 8914 §4).
/// The same kind of route without it is insecure by design, the one deliberate difference:
/// Unbound, told nothing, validates `nsec3.test.` and sets AD; splitdns passes it on without.
#[tokio::test]
async fn a_route_is_validated_when_it_says_so() {
    if signed::skip("a_route_is_validated_when_it_says_so") {
        return;
    }
    let tree = Tree::build().await;
    let oracle = Oracle::start(&tree, ORACLE_INSECURE).await;
    let routes = format!(
        "[[route]]\nzones = [\"secure.test\", \"tampered.test\"]\nservers = [\"{nsd}\"]\n\
         dnssec = true\n\n[[route]]\nzones = [\"nsec3.test\"]\nservers = [\"{nsd}\"]\n",
        nsd = tree.addr()
    );
    let text = format!("{}\n{routes}", splitdns_toml(&tree, &tree.anchor_ds));
    let dns = Splitdns::start_config(harness::parse(&text)).await;
    let mut differences = Vec::new();
    let questions = [
        ("www.secure.test.", A, false),
        ("nope.secure.test.", A, false),
        ("x.wild.secure.test.", A, false),
        ("www.tampered.test.", A, false),
        ("www.nsec3.test.", A, true),
        ("nope.nsec3.test.", A, true),
    ];
    for (qname, qtype, insecure_by_design) in questions {
        for how in [Ask::Do, Ask::AdOnly] {
            let theirs = ask(oracle.addr, qname, qtype, how).await;
            let ours = ask(dns.addr(), qname, qtype, how).await;
            let mut unbound = Seen::of(&theirs, how);
            let splitdns = Seen::of(&ours, how);
            if insecure_by_design {
                // Unbound's answer as it would be with `domain-insecure` for the zone.
                assert!(
                    unbound.ad,
                    "{qname}: Unbound does not find it secure: {unbound}"
                );
                unbound.ad = false;
            }
            let ede_differs = how == Ask::Do && ede(&theirs) != ede(&ours);
            if unbound != splitdns || ede_differs {
                differences.push(format!(
                    "  {qname} {how:?}\n    unbound:  {unbound}, EDE {:?}\n    splitdns: \
                     {splitdns}, EDE {:?}",
                    ede(&theirs),
                    ede(&ours)
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "routes with dnssec = true (secure.test, tampered.test) and without (nsec3.test):\n{}",
        differences.join("\n")
    );
}

/// `splitdns_dnssec_answers_total{state}` counts answers by the states of RFC 4035 §4.3, and
/// `splitdns_dnssec_bogus_total{reason}` bogus ones by the Extended DNS Error they were
/// answered with (RFC 8914 §4): one secure, one insecure and each bogus question of
/// [`CASES`] move their state's series, and a bogus one its reason's, by one, and no other.
#[tokio::test]
async fn metrics_count_answers_by_state() {
    if signed::skip("metrics_count_answers_by_state") {
        return;
    }
    let tree = Tree::build().await;
    let dns = splitdns(&tree).await;
    let state_series = |state: &str| format!("splitdns_dnssec_answers_total{{state=\"{state}\"}}");
    let reason_series =
        |reason: &str| format!("splitdns_dnssec_bogus_total{{reason=\"{reason}\"}}");
    let mut questions = vec![
        ("secure", "www.secure.test.", None),
        ("insecure", "www.unsigned.test.", None),
    ];
    for case in CASES.iter().filter(|c| c.state == State::Bogus) {
        questions.push(("bogus", case.qname, case.ede.map(reason)));
    }
    let mut series: Vec<String> = ["secure", "insecure", "bogus"].map(state_series).to_vec();
    series.extend((6..=10).map(|code| reason_series(reason(code))));
    for (state, qname, why) in &questions {
        let before = dns.scrape().await;
        let reply = ask(dns.addr(), qname, A, Ask::Do).await;
        let after = dns.scrape().await;
        let moves = [Some(state_series(state)), why.map(reason_series)];
        for name in &series {
            let count = |text: &str| http::sample(text, name).unwrap_or(0.0);
            let moved = count(&after) - count(&before);
            let want = if moves.contains(&Some(name.clone())) {
                1.0
            } else {
                0.0
            };
            let dnssec: Vec<&str> = after.lines().filter(|l| l.contains("dnssec")).collect();
            assert_eq!(
                moved,
                want,
                "{name} after one {state} answer ({qname}: {reply}), /metrics:\n{}",
                dnssec.join("\n")
            );
        }
    }
}

/// The `reason` label of an Extended DNS Error's INFO-CODE (docs/observing.md).
fn reason(code: u16) -> &'static str {
    match code {
        6 => "dnssec_bogus",
        7 => "signature_expired",
        8 => "signature_not_yet_valid",
        9 => "dnskey_missing",
        10 => "rrsigs_missing",
        other => panic!("no reason label for EDE {other}"),
    }
}

/// Runs `program` with `args` off the runtime's thread (splitdns runs on it) and returns
/// its standard output and error together.
async fn run(program: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap()
}

/// What `delv` concludes: its first line that says how the answer validated.
fn delv_verdict(output: &str) -> String {
    let verdicts = [
        "; fully validated",
        "; unsigned answer",
        "; negative response, fully validated",
        "; negative response, unsigned answer",
        ";; resolution failed",
    ];
    output
        .lines()
        .find(|l| verdicts.iter().any(|v| l.starts_with(v)))
        .map_or_else(|| format!("no verdict in: {output}"), |l| l.to_string())
}

/// `delv`, BIND's validating stub, with the tree's anchor and `+root=test.`, resolves through
/// splitdns exactly as through Unbound: it asks with CD=1 and DO=1 and validates itself, so
/// it needs the upstream's records and RRSIGs passed on unchanged (RFC 4035 §3.2.2, RFC 6840
/// §5.9), the DNSKEY and DS RRsets included.
#[tokio::test]
async fn delv_validates_through_splitdns() {
    let test = "delv_validates_through_splitdns";
    if signed::skip(test) || prereq::skip(test, "delv", prereq::no_program("delv")) {
        return;
    }
    let tree = Tree::build().await;
    let oracle = Oracle::start(&tree, ORACLE_INSECURE).await;
    let dns = splitdns(&tree).await;
    let anchor = tree.delv_anchor_file();
    let delv = |server: SocketAddr, qname: &str| {
        let args = vec![
            format!("@{}", server.ip()),
            "-p".into(),
            server.port().to_string(),
            "-a".into(),
            anchor.display().to_string(),
            "+root=test.".into(),
            qname.into(),
            "A".into(),
        ];
        run("delv", args)
    };
    let expected = [
        ("www.secure.test.", "; fully validated"),
        ("x.wild.nsec3.test.", "; fully validated"),
        ("www.unsigned.test.", "; unsigned answer"),
        ("nope.secure.test.", "; negative response, fully validated"),
        ("www.tampered.test.", ";; resolution failed"),
        ("www.expired.test.", ";; resolution failed"),
    ];
    let mut wrong = Vec::new();
    for (qname, want) in expected {
        let theirs = delv(oracle.addr, qname).await;
        let ours = delv(dns.addr(), qname).await;
        let (unbound, splitdns) = (delv_verdict(&theirs), delv_verdict(&ours));
        if !unbound.starts_with(want) || !splitdns.starts_with(want) {
            wrong.push(format!(
                "  {qname}: want {want:?}\n    through unbound:  {unbound}\n    through \
                 splitdns: {splitdns}\n{ours}"
            ));
        }
    }
    assert!(wrong.is_empty(), "delv's verdicts:\n{}", wrong.join("\n"));
}

/// `dig +dnssec` and `kdig +dnssec` (DO=1) see AD on a secure answer, none on an insecure
/// one and SERVFAIL on a bogus one (RFC 6840 §5.8, RFC 4035 §5.5), from splitdns as from
/// Unbound; with `+cd` the bogus answer itself (RFC 4035 §3.2.2).
#[tokio::test]
async fn dig_and_kdig_see_the_ad_bit() {
    let test = "dig_and_kdig_see_the_ad_bit";
    if signed::skip(test)
        || prereq::skip(test, "dig", prereq::no_program("dig"))
        || prereq::skip(test, "kdig", prereq::no_program("kdig"))
    {
        return;
    }
    let tree = Tree::build().await;
    let oracle = Oracle::start(&tree, ORACLE_INSECURE).await;
    let dns = splitdns(&tree).await;
    let questions = [
        ("www.secure.test.", "", "NOERROR", true),
        ("nope.nsec3.test.", "", "NXDOMAIN", true),
        ("www.unsigned.test.", "", "NOERROR", false),
        ("www.tampered.test.", "", "SERVFAIL", false),
        ("www.tampered.test.", "+cd", "NOERROR", false),
    ];
    let mut wrong = Vec::new();
    for tool in ["dig", "kdig"] {
        for (qname, flag, status, ad) in questions {
            for (who, server) in [("unbound", oracle.addr), ("splitdns", dns.addr())] {
                let mut args = vec![
                    format!("@{}", server.ip()),
                    "-p".into(),
                    server.port().to_string(),
                    "+dnssec".into(),
                    qname.into(),
                    "A".into(),
                ];
                if tool == "dig" {
                    args.extend(["+time=3", "+tries=1"].map(String::from));
                } else {
                    args.extend(["+timeout=3", "+retry=0"].map(String::from));
                }
                if !flag.is_empty() {
                    args.push(flag.into());
                }
                let out = run(tool, args).await;
                let flags = out
                    .lines()
                    .find(|l| l.starts_with(";; flags:") || l.starts_with(";; Flags:"))
                    .unwrap_or("");
                let flag_list = flags.split(';').nth(2).unwrap_or("");
                let got_ad = flag_list.split_whitespace().any(|f| f == "ad");
                let got_status = out
                    .split_once("status: ")
                    .map_or("", |(_, rest)| rest.split([',', ';']).next().unwrap_or(""));
                if got_status != status || got_ad != ad {
                    wrong.push(format!(
                        "  {tool} {qname} {flag} from {who}: want {status}, AD {ad}; got \
                         {got_status:?}, AD {got_ad}:\n{out}"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `TRY_AGAIN` from <netdb.h>: glibc's h_errno for `res_query` when the server said SERVFAIL.
const TRY_AGAIN: &str = "error: h_errno 2";

/// glibc's stub resolver, the one most applications use, sees the AD bit as RFC 6840 §5.7-5.8
/// and glibc's `trust-ad` option mean it to. resolv.conf(5), `trust-ad` (since glibc 2.31, NEWS
/// for 2.31): "the stub resolver sets the AD bit in outgoing DNS queries (to enable AD bit
/// support), and preserves the AD bit in responses. Without this option, the AD bit is not set
/// in queries, and it is always removed from responses before they are returned to the
/// application." RFC 6840 §5.7: a validating resolver sets AD on a secure answer to a query
/// with AD (or DO, RFC 6840 §5.8), and never on an answer that is not secure (RFC 4035 §3.2.3).
///
/// splitdns validates the tree on 127.0.0.1:53 of a namespace of its own, forwarding to NSD
/// there; `res_query` (support/clients/lookup.c, built against glibc) asks it, plainly and
/// with EDNS0 DO (`RES_USE_DNSSEC`):
/// - with `options trust-ad`, a secure name comes back with AD=1 both ways;
/// - without it, AD=0 both ways: without DO because glibc did not ask for AD and so splitdns
///   sends none (§5.8), with DO because glibc clears the AD splitdns sent (the same question
///   that gets AD=1 under trust-ad);
/// - an insecure name (`unsigned.test.`, proved to have no DS) gets AD=0 even with trust-ad;
/// - a bogus name (`tampered.test.`) is SERVFAIL (RFC 4035 §5.5), which `res_query` fails as
///   `TRY_AGAIN`, and no address of it reaches the application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glibc_with_trust_ad_sees_the_ad_bit() {
    const TEST: &str = "glibc_with_trust_ad_sees_the_ad_bit";
    if netns::skip(TEST) || signed::skip(TEST) || clients::skip(TEST, Libc::Glibc) {
        return;
    }
    let ns = Netns::new("trustad");
    let tree = Tree::build_in(Some(&ns)).await;
    let daemon = Daemon::start(
        &splitdns_toml_on(&tree, &tree.anchor_ds, "127.0.0.1:53"),
        Some(&ns),
    );
    daemon.wait_ready();
    let questions = [
        // (resolv.conf options, name, DO, what glibc hands back: with DO, the A and its RRSIG)
        (
            "trust-ad",
            "www.secure.test.",
            false,
            "rcode 0 answers 1 ad 1",
        ),
        (
            "trust-ad",
            "www.secure.test.",
            true,
            "rcode 0 answers 2 ad 1",
        ),
        ("", "www.secure.test.", false, "rcode 0 answers 1 ad 0"),
        ("", "www.secure.test.", true, "rcode 0 answers 2 ad 0"),
        (
            "trust-ad",
            "www.unsigned.test.",
            false,
            "rcode 0 answers 1 ad 0",
        ),
        (
            "trust-ad",
            "www.unsigned.test.",
            true,
            "rcode 0 answers 1 ad 0",
        ),
        ("trust-ad", "www.tampered.test.", false, TRY_AGAIN),
        ("trust-ad", "www.tampered.test.", true, TRY_AGAIN),
        ("", "www.tampered.test.", false, TRY_AGAIN),
    ];
    let mut wrong = Vec::new();
    for (options, qname, dnssec_ok, want) in questions {
        let mut conf = String::from("nameserver 127.0.0.1\n");
        if !options.is_empty() {
            conf.push_str(&format!("options {options}\n"));
        }
        ns.resolv_conf(&conf);
        let got = clients::res_query_ad(&ns, Libc::Glibc, qname, u16::from(A), dnssec_ok);
        if got.lines != [want] {
            wrong.push(format!(
                "  options {options:?}, {qname} A, DO {dnssec_ok}: want {want:?}, got {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "glibc's res_query through splitdns:\n{}\nsplitdns stderr:\n{}\nnsd:\n{}",
        wrong.join("\n"),
        daemon.stderr(),
        tree.log()
    );
}
