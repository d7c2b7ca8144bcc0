//! Entry points for fuzzing: each takes arbitrary bytes and must neither panic
//! nor hang. The cargo-fuzz targets in `fuzz/` call these, and so does a
//! bounded mutation test in the test suite, so they run on every `cargo test`.
//! Compiled only with the `fuzzing` feature: `fuzz/Cargo.toml` turns it on, and
//! so does the crate's dev-dependency on itself, for the test suite; a plain
//! build carries none of it.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use crate::config::Config;
use crate::config::dnsmasq::Rule;
use crate::dns::answer::{Answer, TtlPolicy};
use crate::dns::wire::Protocol;
use crate::dns::wire::{self, Message, Query};
use crate::observe::metrics::Metrics;
use crate::resolve::cache::{Cache, CacheKey};
use crate::resolve::rebind;
use crate::resolve::router::Router;
use crate::serve::handler::{Handler, Step};
use crate::state::ratelimit::RateLimit;
use crate::state::{Guards, Kept, Shared, State};

const POLICY: TtlPolicy = TtlPolicy {
    min: 0,
    max: 86_400,
    max_negative: 3_600,
};

/// A name the fuzzing handler has in its cache, so mutated queries reach the hit path.
pub const CACHED: &[u8] = b"\x03www\x07example\x00";

/// One client packet through [`Handler::answer_now`]: every route kind, local
/// data and the names kept home, cache hits, errors. A response, when there is one, carries the query's ID.
pub fn query_handler(data: &[u8]) {
    let handler = handler();
    let mut out = Vec::new();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        if let Step::Respond = handler.answer_now(data, [127, 0, 0, 1].into(), protocol, &mut out) {
            assert!(
                out.len() >= wire::HEADER_LEN,
                "a response shorter than a header"
            );
            assert_eq!(out[..2], data[..2], "a response with another ID");
            if protocol == Protocol::Udp {
                // Every answer fits the client's limit (RFC 1035 §4.2.1, RFC 6891 §6.2.5),
                // its OPT included; one that does not fit is TC=1 with no records but
                // the OPT (RFC 2181 §9). TC is bit 0x02 of the third byte (RFC 1035 §4.1.1).
                let limit = Query::parse(data).map_or(wire::CLASSIC_UDP_SIZE, |q| q.udp_limit());
                assert!(
                    out.len() <= limit,
                    "{} bytes over UDP for a limit of {limit}",
                    out.len()
                );
                if out[2] & 0x02 != 0 {
                    assert_eq!(out[6..10], [0, 0, 0, 0], "records in a truncated answer");
                    assert!(
                        u16::from_be_bytes([out[10], out[11]]) <= 1,
                        "records besides the OPT in a truncated answer"
                    );
                }
            }
        }
    }
}

/// One upstream reply through everything that reads it: normalising, serving
/// to a client, serving stale, and rebind screening.
pub fn upstream_reply(data: &[u8]) {
    let now = Instant::now();
    let lower = Message::parse(data)
        .map(|m| m.question().0.to_ascii_lowercase())
        .unwrap_or_else(|| CACHED.to_vec());
    if let Ok(answer) = Answer::from_reply(data, &lower, POLICY, now) {
        let mut query = wire::build_query(7, &lower, 1, 1, false, false);
        query[2] = 1;
        if let Ok(query) = Query::parse(&query) {
            let mut out = Vec::new();
            answer.write_response(&query, now, 512, &mut out);
            answer
                .to_stale(now, 30)
                .write_response(&query, now, 65_535, &mut out);
        }
    }
    let _ = rebind::screen(data.into(), &"fuzz.");
}

/// A config file: parsed, validated, and (when valid) turned into a routing table.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Drop-in files are read from the filesystem: the fuzzer must not walk it.
    if text.contains("include") {
        return;
    }
    if let Ok(config) = Config::from_toml(text, Path::new("fuzz.toml")) {
        let _ = Router::new(&config, Vec::new()).to_string();
    }
}

/// One dnsmasq rule line.
pub fn dnsmasq_rule(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = Rule::parse(line);
    }
}

fn handler() -> &'static Handler {
    static HANDLER: OnceLock<Handler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        // Local data inside and outside local zones, CNAMEs to a local name
        // and to one missing from a local zone, and the [local] switches, so
        // that every kind of local answer and its SOA is reached.
        let text = r#"
rules = [
    "local=/local.test/", "address=/addr.test/192.0.2.1", "address=/addr.test/2001:db8::1",
    "server=/fwd.test/127.0.0.1#9",
    "host-record=host.local.test,192.0.2.5", "host-record=nas.home,192.168.1.5",
    "cname=alias.local.test,host.local.test", "cname=dangling.local.test,gone.local.test",
    "srv-host=_s._tcp.local.test,host.local.test,80",
]
[server]
listen = ["127.0.0.1:0"]
allow = ["0.0.0.0/0", "::/0"]
[upstream]
servers = ["127.0.0.1:9"]
[local]
domain_needed = true
bogus_priv = true
"#;
        let config = Config::from_toml(text, Path::new("fuzz.toml")).expect("fuzzing config");
        let metrics = Metrics::new();
        let state = State::build(&config, &[], &metrics).expect("fuzzing state");
        let cache = Cache::new(1000).with_prefetch(false);
        let now = Instant::now();
        let answer = Answer::from_reply(&cached_reply(), CACHED, POLICY, now).expect("valid reply");
        cache.insert(&CacheKey::new(CACHED, 1, 1, false, false), &answer, now);
        let guards = Guards {
            rate_limit: RateLimit::new(0),
            tcp: config.tcp.clone(),
        };
        let kept = Kept {
            cache,
            mirror: None,
        };
        Handler::new(Shared::new(state, kept, metrics, guards))
    })
}

/// `www.example. 300 IN A 192.0.2.10`, as an upstream sends it.
fn cached_reply() -> Vec<u8> {
    let mut reply = vec![0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    reply.extend_from_slice(CACHED);
    reply.extend_from_slice(&[0, 1, 0, 1]);
    reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 10]);
    reply
}
