//! The whole header of every kind of answer splitdns makes itself, bit by bit, against the
//! RFCs that define each bit:
//!
//! - RFC 1035 §4.1.1: QR is 1 in a response; the OPCODE "is copied into the response"; AA
//!   "specifies that the responding name server is an authority for the domain name in
//!   question"; RD "may be set in a query and is copied into the response"; RA "is set or
//!   cleared in a response, and denotes whether recursive query support is available"; Z
//!   "must be zero in all queries and responses".
//! - RFC 6895 §2: AD and CD (RFC 4035) are defined for QUERY; RFC 4035 §3.2.2 has the CD bit
//!   of a query copied into its response, and RFC 6840 §5.8 sets AD only on data the server
//!   validated, which splitdns never does itself. Under another opcode none of RA, AD and CD
//!   means anything, so a NOTIMP answer clears all three.
//! - RFC 6891 §6.1.1: a response to a request with an OPT record carries one; RFC 3225 §3 has
//!   the DO bit copied into it.
//!
//! Every query below is sent with AD, CD and Z set, and once with RD set and once without, so
//! that an answer that merely echoes (or forces) a bit is caught.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::support::client::{self, udp_exchange_raw};
use crate::support::fixtures::{consul, internet};
use crate::support::{FakeUpstream, Mode, Splitdns, name};

const TEMPLATE: &str = r#"
rules = ["local=/lan/", "address=/ads.example/192.0.2.66"]
[server]
listen = ["127.0.0.1:0"]
allow = ["{allow}"]
[upstream]
servers = ["{internet}"]
timeout = "300ms"
[[route]]
zones = ["consul"]
servers = ["{consul}"]
timeout = "300ms"
filter_aaaa = true
[[record]]
name = "gw.lan"
type = "A"
value = "192.0.2.1"
"#;

/// Every header bit of a response, as decoded by hickory-proto (Z read from the raw byte).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Bits {
    qr: bool,
    opcode: OpCode,
    aa: bool,
    tc: bool,
    rd: bool,
    ra: bool,
    z: bool,
    ad: bool,
    cd: bool,
    /// The whole RCODE, the 8 bits of an OPT's extended RCODE included (BADVERS is 16).
    rcode: u16,
    /// `Some(DO)` when the response carries an OPT record.
    opt: Option<bool>,
}

fn bits(raw: &[u8]) -> Bits {
    let msg = client::decode(raw);
    let m = &msg.metadata;
    Bits {
        qr: m.message_type == MessageType::Response,
        opcode: m.op_code,
        aa: m.authoritative,
        tc: m.truncation,
        rd: m.recursion_desired,
        ra: m.recursion_available,
        z: raw[3] & 0x40 != 0,
        ad: m.authentic_data,
        cd: m.checking_disabled,
        rcode: m.response_code.into(),
        opt: msg.edns.as_ref().map(|e| e.flags().dnssec_ok),
    }
}

/// What a response to a query (opcode QUERY) must carry: QR, RA, RD and CD copied, Z and AD
/// clear, no truncation.
fn query_answer(rd: bool, aa: bool, rcode: ResponseCode, opt: Option<bool>) -> Bits {
    Bits {
        qr: true,
        opcode: OpCode::Query,
        aa,
        tc: false,
        rd,
        ra: true,
        z: false,
        ad: false,
        cd: true,
        rcode: rcode.into(),
        opt,
    }
}

/// `qname qtype` in class `class`, with AD, CD and Z set, RD as given, and an OPT of that
/// version (DO set) when `edns` is `Some`.
fn packet(
    opcode: OpCode,
    qname: &str,
    qtype: RecordType,
    class: DNSClass,
    rd: bool,
    edns: Option<u8>,
) -> (Vec<u8>, u16) {
    let mut msg = Message::new(rand_id(), MessageType::Query, opcode);
    let mut question = Query::query(name(qname), qtype);
    question.set_query_class(class);
    msg.add_query(question);
    msg.metadata.recursion_desired = rd;
    if let Some(version) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(1232);
        opt.set_dnssec_ok(true);
        opt.set_version(version);
        msg.set_edns(opt);
    }
    let mut raw = client::encode(&msg);
    raw[3] |= 0x40 | 0x20 | 0x10; // Z, AD, CD
    (raw, msg.metadata.id)
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x3a00);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One kind of answer: the query and the header it must get.
struct Case {
    what: &'static str,
    opcode: OpCode,
    qname: &'static str,
    qtype: RecordType,
    class: DNSClass,
    /// The query's OPT record and its EDNS version, if any.
    edns: Option<u8>,
    /// The expected header for a query with RD as given.
    expect: fn(rd: bool) -> Bits,
}

fn notimp(rd: bool, opcode: OpCode, opt: Option<bool>) -> Bits {
    Bits {
        qr: true,
        opcode,
        aa: false,
        tc: false,
        rd,
        ra: false,
        z: false,
        ad: false,
        cd: false,
        rcode: ResponseCode::NotImp.into(),
        opt,
    }
}

const IN: DNSClass = DNSClass::IN;

fn allowed_cases() -> Vec<Case> {
    vec![
        Case {
            what: "NOTIMP for NOTIFY",
            opcode: OpCode::Notify,
            qname: "www.example.",
            qtype: RecordType::SOA,
            class: IN,
            edns: None,
            expect: |rd| notimp(rd, OpCode::Notify, None),
        },
        Case {
            what: "NOTIMP for UPDATE, with OPT",
            opcode: OpCode::Update,
            qname: "example.",
            qtype: RecordType::SOA,
            class: IN,
            edns: Some(0),
            expect: |rd| notimp(rd, OpCode::Update, Some(true)),
        },
        Case {
            what: "NOTIMP for STATUS",
            opcode: OpCode::Status,
            qname: "www.example.",
            qtype: RecordType::A,
            class: IN,
            edns: None,
            expect: |rd| notimp(rd, OpCode::Status, None),
        },
        Case {
            what: "BADVERS for EDNS version 1",
            opcode: OpCode::Query,
            qname: "www.example.",
            qtype: RecordType::A,
            class: IN,
            edns: Some(1),
            expect: |rd| query_answer(rd, false, ResponseCode::BADVERS, Some(true)),
        },
        Case {
            what: "local data ([[record]])",
            opcode: OpCode::Query,
            qname: "gw.lan.",
            qtype: RecordType::A,
            class: IN,
            edns: Some(0),
            expect: |rd| query_answer(rd, true, ResponseCode::NoError, Some(true)),
        },
        Case {
            what: "local data, NODATA",
            opcode: OpCode::Query,
            qname: "gw.lan.",
            qtype: RecordType::TXT,
            class: IN,
            edns: None,
            expect: |rd| query_answer(rd, true, ResponseCode::NoError, None),
        },
        Case {
            what: "local=/lan/, NXDOMAIN",
            opcode: OpCode::Query,
            qname: "nas.lan.",
            qtype: RecordType::A,
            class: IN,
            edns: None,
            expect: |rd| query_answer(rd, true, ResponseCode::NXDomain, None),
        },
        Case {
            what: "address=",
            opcode: OpCode::Query,
            qname: "x.ads.example.",
            qtype: RecordType::A,
            class: IN,
            edns: None,
            expect: |rd| query_answer(rd, true, ResponseCode::NoError, None),
        },
        Case {
            what: "CHAOS version.bind (splitdns is the authority for its own statistics)",
            opcode: OpCode::Query,
            qname: "version.bind.",
            qtype: RecordType::TXT,
            class: DNSClass::CH,
            edns: None,
            expect: |rd| query_answer(rd, true, ResponseCode::NoError, None),
        },
        Case {
            what: "filter_aaaa: not the authority, it only did not ask",
            opcode: OpCode::Query,
            qname: "web.service.consul.",
            qtype: RecordType::AAAA,
            class: IN,
            edns: None,
            expect: |rd| query_answer(rd, false, ResponseCode::NoError, None),
        },
        Case {
            what: "RFC 8482 answer to ANY: not the authority",
            opcode: OpCode::Query,
            qname: "www.example.",
            qtype: RecordType::ANY,
            class: IN,
            edns: None,
            expect: |rd| query_answer(rd, false, ResponseCode::NoError, None),
        },
        Case {
            what: "SERVFAIL: the upstream is dead",
            opcode: OpCode::Query,
            qname: "dead.service.consul.",
            qtype: RecordType::A,
            class: IN,
            edns: Some(0),
            expect: |rd| query_answer(rd, false, ResponseCode::ServFail, Some(true)),
        },
        Case {
            what: "a forwarded answer: the upstream is the authority, not splitdns",
            opcode: OpCode::Query,
            qname: "www.example.",
            qtype: RecordType::A,
            class: IN,
            edns: None,
            expect: |rd| query_answer(rd, false, ResponseCode::NoError, None),
        },
    ]
}

async fn check(dns: &Splitdns, cases: &[Case]) {
    let mut wrong = Vec::new();
    for case in cases {
        for rd in [true, false] {
            let (raw, id) = packet(
                case.opcode,
                case.qname,
                case.qtype,
                case.class,
                rd,
                case.edns,
            );
            let reply = udp_exchange_raw(dns.addr(), &raw, id).await;
            let (got, want) = (bits(&reply), (case.expect)(rd));
            if got != want {
                wrong.push(format!(
                    "{} (RD={}):\n  got  {got:?}\n  want {want:?}",
                    case.what,
                    u8::from(rd)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_splitdns_makes_has_the_header_the_rfcs_define() {
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let template = TEMPLATE.replace("{allow}", "127.0.0.0/8");
    let dns = Splitdns::start(&template, &[("consul", &consul), ("internet", &internet)]).await;
    // Warm the forwarded answer, then let the Consul route die for the SERVFAIL case.
    client::udp(
        dns.addr(),
        &crate::support::query("www.example.", RecordType::A),
    )
    .await;
    consul.set_mode(Mode::Dead);

    check(&dns, &allowed_cases()).await;
}

/// A stranger gets REFUSED and nothing else (no question, no OPT): the header bits still follow
/// the opcode, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_to_a_stranger_has_the_header_the_rfcs_define() {
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let template = TEMPLATE.replace("{allow}", "192.0.2.0/24");
    let dns = Splitdns::start(&template, &[("consul", &consul), ("internet", &internet)]).await;
    let cases = [
        Case {
            what: "REFUSED for a query",
            opcode: OpCode::Query,
            qname: "www.example.",
            qtype: RecordType::A,
            class: IN,
            edns: None,
            expect: |rd| query_answer(rd, false, ResponseCode::Refused, None),
        },
        Case {
            what: "REFUSED for a query with OPT",
            opcode: OpCode::Query,
            qname: "gw.lan.",
            qtype: RecordType::A,
            class: IN,
            edns: Some(0),
            expect: |rd| query_answer(rd, false, ResponseCode::Refused, Some(true)),
        },
        Case {
            what: "REFUSED for NOTIFY",
            opcode: OpCode::Notify,
            qname: "www.example.",
            qtype: RecordType::SOA,
            class: IN,
            edns: None,
            expect: |rd| Bits {
                rcode: ResponseCode::Refused.into(),
                ..notimp(rd, OpCode::Notify, None)
            },
        },
    ];
    check(&dns, &cases).await;
    assert_eq!(internet.total() + consul.total(), 0);
}

/// FORMERR (two questions) comes from a QUERY: RA set, RD and CD copied, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formerr_has_the_header_the_rfcs_define() {
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let template = TEMPLATE.replace("{allow}", "127.0.0.0/8");
    let dns = Splitdns::start(&template, &[("consul", &consul), ("internet", &internet)]).await;
    for rd in [true, false] {
        let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = rd;
        msg.add_query(Query::query(name("www.example."), RecordType::A));
        msg.add_query(Query::query(name("mail.example."), RecordType::A));
        let mut raw = client::encode(&msg);
        raw[3] |= 0x40 | 0x20 | 0x10;
        let reply = udp_exchange_raw(dns.addr(), &raw, msg.metadata.id).await;
        assert_eq!(
            bits(&reply),
            query_answer(rd, false, ResponseCode::FormErr, None),
            "RD={rd}"
        );
    }
}
