//! The fuzz targets' entry points (`splitdns::fuzzing`) under a bounded random and
//! mutation loop, so every `cargo test` runs them: arbitrary bytes, and the seeds of
//! `fuzz/seeds/` with random bytes overwritten, inserted and cut. The inputs kept in
//! `fuzz/regressions/TARGET/` (crashers a fuzzing run found, and the edges of each parser)
//! and the seeds themselves are replayed as they are.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use splitdns::config::dnsmasq::Rule;
use splitdns::fuzzing;
use splitdns::parts::{Answer, Query, TtlPolicy};

/// Cases per property, per strategy: enough to cover every branch of the parsers often,
/// cheap enough for every run (the long runs are `scripts/fuzz.sh`).
const CASES: u32 = 3000;

/// The files of `fuzz/DIR/TARGET`, sorted by name, with their bytes. A directory that is
/// missing or empty fails the test: a replay of nothing passes without testing anything.
fn inputs(dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    inputs("seeds", target)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

/// A seed with up to 8 edits: overwrite a byte, insert one, or cut the tail.
fn mutated(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let edits = vec((0u8..3, any::<usize>(), any::<u8>()), 0..8);
    (select(seeds(target)), edits).prop_map(|(mut bytes, edits)| {
        for (kind, at, byte) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn query_handler_survives_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        fuzzing::query_handler(&bytes);
    }

    #[test]
    fn query_handler_survives_mutated_queries(bytes in mutated("query_handler")) {
        fuzzing::query_handler(&bytes);
    }

    #[test]
    fn upstream_reply_survives_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        fuzzing::upstream_reply(&bytes);
    }

    #[test]
    fn upstream_reply_survives_mutated_replies(bytes in mutated("upstream_reply")) {
        fuzzing::upstream_reply(&bytes);
    }

    #[test]
    fn config_loader_survives_mutated_configs(bytes in mutated("config_toml")) {
        fuzzing::config_toml(&bytes);
    }

    #[test]
    fn dnsmasq_rule_parser_survives_arbitrary_and_mutated_lines(
        bytes in prop_oneof![mutated("dnsmasq_rule"), vec(any::<u8>(), 0..120)]
    ) {
        fuzzing::dnsmasq_rule(&bytes);
    }
}

/// What the RFCs or docs/ say becomes of a regression input, checked so that each
/// file still is the edge its name says (an input that no longer reaches its edge would
/// replay without testing it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A client packet that gets no reply: shorter than a header (nothing to reply to),
    /// or a response, QR=1 (docs/observing.md, `splitdns_dropped_packets_total`).
    Dropped,
    /// A client packet answered FORMERR (RFC 1035 §4.1.1): it does not parse as one
    /// question (RFC 9619), or its OPT record is broken or repeated (RFC 6891 §6.1.1).
    FormErr,
    /// A client packet with an opcode other than QUERY: NOTIMP (RFC 1035 §4.1.1).
    NotImp,
    /// A client packet read as a query: answered from the cache, locally, or forwarded.
    Parsed,
    /// An upstream reply that cannot be stored: its counts, lengths or names do not
    /// hold together (RFC 1035 §4.1, §4.1.4: a pointer points to a prior occurrence).
    Rejected,
    /// An upstream reply stored for this many seconds: the smallest answer TTL, or for a
    /// negative answer min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
    Cached(u32),
    /// An upstream reply that is not cached, whether stored with no lifetime or rejected.
    NotCached,
    /// A config file or rule line that loads.
    Accepted,
    /// A config file or rule line refused with an error.
    Refused,
    /// Nothing is documented about the outcome: the input must only not panic or hang.
    Survives,
}

use Expect::*;

/// Client packets (`fuzzing::query_handler`, UDP and TCP, against a handler that has
/// `www.example. A` cached, `local.test` local with records and CNAMEs in it, `addr.test`
/// as `address=`, `fwd.test` forwarded, and domain_needed and bogus_priv on).
const QUERY_HANDLER: &[(&str, Expect)] = &[
    ("additional-owner-compression-loop", FormErr),
    ("additional-owner-pointer-past-end", FormErr),
    ("address-zone-aaaa", Parsed),
    ("any-for-forwarded-name", Parsed),
    ("arcount-65535-with-one-record", FormErr),
    ("cached-name-do-and-cd-edns-512", Parsed),
    ("cached-name-mixed-case", Parsed),
    ("chaos-txt-version-bind", Parsed),
    ("empty", Dropped),
    ("header-cut-at-11-bytes", Dropped),
    ("opcode-notify-without-question", NotImp),
    ("opcode-status-with-opt", NotImp),
    ("opcode-update-with-zone", NotImp),
    ("opt-cut-inside-fixed-fields", FormErr),
    ("opt-option-length-past-rdata", Survives),
    ("opt-rdlength-past-end", FormErr),
    ("opt-twice", FormErr),
    // A payload size below 512 is taken as 512 (RFC 6891 §6.2.5).
    ("opt-udp-size-0-on-cached-name", Parsed),
    // Parsed, then answered BADVERS (RFC 6891 §6.1.3).
    ("opt-version-1", Parsed),
    ("qdcount-0", FormErr),
    ("qdcount-1-but-header-only", FormErr),
    ("qdcount-2", FormErr),
    ("question-compression-pointer-to-itself", FormErr),
    ("question-cut-inside-qclass", FormErr),
    ("question-label-type-0x40", FormErr),
    // A name is at most 255 octets (RFC 1035 §2.3.4).
    ("question-name-255-bytes", Parsed),
    ("question-name-256-bytes", FormErr),
    ("question-name-without-terminator", FormErr),
    ("question-root-name", Parsed),
    ("response-bit-set", Dropped),
];

/// Upstream replies (`fuzzing::upstream_reply`: stored, served, served stale, screened
/// for private addresses), with TTLs of 300 s where they have answers.
const UPSTREAM_REPLY: &[(&str, Expect)] = &[
    ("a-rdata-0-bytes", Survives),
    ("aaaa-rdata-4-bytes", Survives),
    ("ancount-1-without-record", Rejected),
    ("ancount-65535-with-one-record", Rejected),
    ("bytes-after-the-last-record", Rejected),
    ("cname-chain-with-compressed-targets", Cached(300)),
    ("empty", Rejected),
    ("header-cut-at-11-bytes", Rejected),
    ("nxdomain-soa-compressed-names", Cached(60)),
    ("nxdomain-soa-rdata-3-bytes", NotCached),
    // The A record after the OPT has 3 octets of RDATA, not 4 (RFC 1035 §3.4.1).
    ("opt-before-an-a-record-with-3-bytes-of-rdata", Rejected),
    ("opt-before-another-additional", Cached(300)),
    ("opt-last", Cached(300)),
    ("opt-rdlength-past-end", Rejected),
    ("opt-twice", Survives),
    ("owner-compression-loop", Rejected),
    ("owner-label-type-0x80", Rejected),
    ("owner-name-over-255-bytes-through-a-pointer", Rejected),
    ("owner-pointer-forward", Rejected),
    ("owner-pointer-past-end", Rejected),
    // Rebind screening reads these A and AAAA addresses.
    ("private-a-and-ipv4-mapped-aaaa", Cached(300)),
    ("qdcount-0", Rejected),
    ("qdcount-2", Rejected),
    ("rdlength-past-end", Rejected),
    ("truncated-no-records", Survives),
    // RFC 2181 §8: a TTL with the most significant bit set is treated as zero.
    ("ttl-with-the-top-bit-set", NotCached),
];

/// Config files (`fuzzing::config_toml`: loaded, then made into a routing table).
const CONFIG_TOML: &[(&str, Expect)] = &[
    ("arrays-nested-2000-deep.toml", Refused),
    ("cache-min-ttl-above-max-ttl.toml", Refused),
    ("empty.toml", Accepted),
    ("inline-tables-nested-2000-deep.toml", Refused),
    // A key defined twice is invalid TOML (TOML 1.0, Keys).
    ("key-given-twice.toml", Refused),
    ("listen-empty.toml", Refused),
    ("not-utf-8.toml", Survives),
    ("route-prefix-ipv4-slash-1.toml", Accepted),
    ("route-prefix-ipv4-slash-33.toml", Refused),
    ("route-prefix-ipv6-slash-0.toml", Accepted),
    ("route-timeout-u64-max-seconds.toml", Survives),
    ("route-zone-empty-label.toml", Refused),
    ("route-zone-label-64-bytes.toml", Refused),
    ("route-zone-name-over-255-bytes.toml", Refused),
    ("rules-line-not-a-rule.toml", Refused),
    ("server-port-65536.toml", Refused),
    ("tcp-max-connections-0.toml", Refused),
    ("threads-0.toml", Refused),
    ("upstream-timeout-9ms.toml", Refused),
    ("upstream-timeout-past-u64-seconds.toml", Refused),
    ("zone-in-a-rule-and-a-route.toml", Refused),
    ("zone-in-two-routes.toml", Refused),
];

/// Rule lines (`fuzzing::dnsmasq_rule`), as dnsmasq(8) writes them, or as docs/rules.md's
/// Rules section says splitdns refuses them.
const DNSMASQ_RULE: &[(&str, Expect)] = &[
    ("address-hash-means-unspecified", Accepted),
    ("address-without-domain", Refused),
    ("cname-target-only", Refused),
    ("comment-only", Refused),
    ("domain-list-without-closing-slash", Refused),
    ("double-dash-prefix", Accepted),
    ("empty-domain-between-slashes", Refused),
    ("empty-line", Refused),
    ("encrypted-server-after-domains", Accepted),
    ("hash-domain", Refused),
    ("host-record-both-families-and-ttl", Accepted),
    ("host-record-ttl-without-address", Refused),
    ("internationalised-domain", Accepted),
    ("internationalised-label-over-63-bytes-as-ascii", Refused),
    ("leading-dot-domain", Accepted),
    ("local-label-64-bytes", Refused),
    ("local-name-over-255-bytes", Refused),
    ("multibyte-character-after-port-hash", Refused),
    ("multibyte-character-before-comment", Accepted),
    ("mx-host-without-host", Refused),
    ("ptr-record-three-fields", Refused),
    ("rev-server-ipv4-slash-0", Accepted),
    ("rev-server-ipv4-slash-1", Accepted),
    ("rev-server-ipv6-off-a-nibble", Accepted),
    ("rev-server-ipv6-slash-128", Accepted),
    ("rev-server-off-a-label-boundary", Accepted),
    ("rev-server-prefix-33", Refused),
    ("rewrite-single-zone", Refused),
    ("rewrite-without-slashes", Refused),
    ("server-ipv6-bracketed-port", Accepted),
    ("server-ipv6-hash-port", Accepted),
    ("server-port-65536", Refused),
    ("srv-host-port-65536", Refused),
    ("srv-host-without-target", Accepted),
    ("trailing-comment", Accepted),
    ("txt-record-over-255-bytes", Accepted),
    ("txt-record-quoted-comma-and-escapes", Accepted),
    ("txt-record-unterminated-quote", Survives),
    ("unknown-scheme-after-domains", Refused),
    ("unsupported-option", Refused),
    ("wildcard-label", Refused),
];

/// How `Query::parse` takes a client packet.
fn query_outcome(bytes: &[u8]) -> Expect {
    match Query::parse(bytes) {
        Ok(_) => Parsed,
        Err(reject) => {
            let reject = format!("{reject:?}");
            if reject == "Drop" {
                Dropped
            } else if reject.contains("rcode: 1,") {
                FormErr
            } else if reject.contains("rcode: 4,") {
                NotImp
            } else {
                panic!("an unknown rejection: {reject}")
            }
        }
    }
}

/// Whether an upstream reply is stored, and for how long.
fn reply_outcome(bytes: &[u8]) -> Expect {
    let policy = TtlPolicy {
        min: 0,
        max: 86_400,
        max_negative: 3_600,
    };
    // The question's name, lowercased, as the query it answers asked it.
    let mut end = 12;
    while let Some(&len) = bytes.get(end).filter(|&&len| len != 0 && len < 64) {
        end += usize::from(len) + 1;
    }
    let lower = bytes
        .get(12..=end)
        .map_or(fuzzing::CACHED.to_vec(), <[u8]>::to_ascii_lowercase);
    match Answer::from_reply(bytes, &lower, policy, Instant::now()) {
        Ok(answer) => Cached(answer.lifetime()),
        Err(_) => Rejected,
    }
}

fn config_outcome(bytes: &[u8]) -> Expect {
    let text = std::str::from_utf8(bytes).expect("a config regression input is text");
    match splitdns::Config::from_toml(text, Path::new("fuzz.toml")) {
        Ok(_) => Accepted,
        Err(_) => Refused,
    }
}

fn rule_outcome(bytes: &[u8]) -> Expect {
    let line = std::str::from_utf8(bytes).expect("a rule regression input is text");
    match Rule::parse(line) {
        Ok(_) => Accepted,
        Err(_) => Refused,
    }
}

/// Runs every seed and regression input of `target` through `run`; checks that each seed
/// is a valid input (mutating a broken seed explores little past its first error) and each
/// regression input listed in `expected` against `outcome`. Returns what went wrong.
fn replay(
    target: &str,
    run: fn(&[u8]),
    expected: &[(&str, Expect)],
    outcome: fn(&[u8]) -> Expect,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let regressions = inputs("regressions", target);
    for (name, _) in expected {
        if !regressions.iter().any(|(file, _)| file == name) {
            wrong.push(format!("{target}/{name}: missing"));
        }
    }
    for (name, bytes) in inputs("seeds", target) {
        if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
            wrong.push(format!("seed {target}/{name}: panicked"));
        } else if !matches!(outcome(&bytes), Parsed | NotImp | Cached(_) | Accepted) {
            wrong.push(format!("seed {target}/{name}: not a valid input"));
        }
    }
    for (name, bytes) in regressions {
        if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
            wrong.push(format!("{target}/{name}: panicked"));
            continue;
        }
        let Some(&(_, want)) = expected.iter().find(|(file, _)| *file == name) else {
            continue;
        };
        let got = if want == Survives {
            Survives
        } else {
            outcome(&bytes)
        };
        let matches = match (want, got) {
            (NotCached, Cached(0) | Rejected) => true,
            (want, got) => want == got,
        };
        if !matches {
            wrong.push(format!("{target}/{name}: expected {want:?}, got {got:?}"));
        }
    }
    wrong
}

/// The fuzz targets' contract: no input makes them panic or hang (docs/reliability.md).
/// Each input a fuzzing run finds to break it is kept in `fuzz/regressions/TARGET/` once
/// fixed, and replayed here with the seeds. No run has found one yet, so the directories
/// hold the edges each parser must take as the RFCs and docs/ say: truncated headers,
/// compression loops, pointers past the end, 255- and 256-byte names, OPT records with bad
/// lengths, the limits of the config and of dnsmasq's rule syntax. A target with no inputs,
/// a listed input that is missing or no longer what its name says, or a seed that is not
/// a valid input, fails.
#[test]
fn crashers_found_by_fuzzing_stay_fixed() {
    let mut wrong = replay(
        "query_handler",
        fuzzing::query_handler,
        QUERY_HANDLER,
        query_outcome,
    );
    wrong.extend(replay(
        "upstream_reply",
        fuzzing::upstream_reply,
        UPSTREAM_REPLY,
        reply_outcome,
    ));
    wrong.extend(replay(
        "config_toml",
        fuzzing::config_toml,
        CONFIG_TOML,
        config_outcome,
    ));
    wrong.extend(replay(
        "dnsmasq_rule",
        fuzzing::dnsmasq_rule,
        DNSMASQ_RULE,
        rule_outcome,
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
