//! Real clients (glibc, musl, Go) resolving Consul services that splitdns answers from its
//! mirror of the catalog.
//!
//! splitdns listens on 127.0.0.1:53 in a network namespace the test creates, with a
//! resolv.conf of its own there, and mirrors a fake Consul agent that runs in the same
//! namespace (its DNS port is the `consul` route's server, its HTTP API the `[consul]`
//! table's). The clients are the C libraries' stub resolvers (`support/clients/lookup.c`,
//! built against glibc and statically against musl) and Go's two resolvers
//! (`support/clients/lookup.go`, built here from the standard library alone: pure Go with
//! cgo off, and cgo). Each test first asks for `web` once, which splitdns forwards and which
//! starts the mirror's watch; once the agent holds that watch blocked, every question the
//! clients ask must be answered from the mirror: the agent's DNS port sees none of them, and
//! `splitdns_consul_mirror_answers_total{state="fresh"}` counts them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::runtime::Handle;

use crate::support::client::{self, REPLY_WAIT};
use crate::support::clients::{self, Libc};
use crate::support::consul::{Catalog, FakeConsul, Health, Node, Service};
use crate::support::daemon::Daemon;
use crate::support::netns::{self, Netns};
use crate::support::{FakeUpstream, answer_ips, assert_rcode, fixtures, http, prereq};

/// Where splitdns answers inside the namespace: the resolv.conf there names it, and glibc,
/// musl and Go all ask port 53 (resolv.conf(5) has no port).
const LISTEN: &str = "127.0.0.1:53";
/// splitdns's `/metrics` inside the namespace (the namespace is the test's own, so a fixed
/// port cannot collide).
const METRICS: &str = "127.0.0.1:9153";
/// Answers the mirror made from a catalog it holds fresh.
const MIRROR_ANSWERS: &str = r#"splitdns_consul_mirror_answers_total{state="fresh"}"#;
/// The health endpoint the mirror watches `web` on.
const HEALTH_WEB: &str = "/v1/health/service/web";

/// The addresses of the healthy `web` instances, as [`catalog`] registers them: node-a's own,
/// node-b's service address, node-c (warning: still healthy), node-e's, and node-6's IPv6.
/// node-d's instance is missing: its node's `serfHealth` is critical.
const WEB_ADDRS: [&str; 5] = [
    "10.0.0.1",
    "10.0.1.2",
    "10.0.0.3",
    "10.0.0.5",
    "2001:db8::6",
];

/// `web` on six nodes: more IPv4 instances than Consul's `udp_answer_limit` (3), one with a
/// service address of its own (an `.addr.` SRV target), one with a warning check and weights,
/// one on a node whose `serfHealth` is critical, one on an IPv6 node; and the `consul`
/// servers.
fn catalog() -> Catalog {
    Catalog::new()
        .with_node(Node::new("node-a", "10.0.0.1").meta("rack", "r1"))
        .with_node(Node::new("node-b", "10.0.0.2"))
        .with_node(Node::new("node-c", "10.0.0.3"))
        .with_node(Node::new("node-d", "10.0.0.4").health(Health::Critical))
        .with_node(Node::new("node-e", "10.0.0.5"))
        .with_node(Node::new("node-6", "2001:db8::6"))
        .with_node(Node::new("srv1", "10.0.0.10"))
        .with_service(Service::new("consul", "srv1", 8300))
        .with_service(Service::new("web", "node-a", 8080).tags(&["primary"]))
        .with_service(Service::new("web", "node-b", 8081).address("10.0.1.2"))
        .with_service(
            Service::new("web", "node-c", 8082)
                .health(Health::Warning)
                .weights(10, 2),
        )
        .with_service(Service::new("web", "node-d", 8083))
        .with_service(Service::new("web", "node-e", 8084))
        .with_service(Service::new("web", "node-6", 8086))
}

/// The SRV set of `web` as `(priority, weight, port, target)`: consul-dns.md §6.2 (MS
/// `getAnswerExtrasForIP`, QF `findWeight`): priority 1, weight `Weights.Passing` (1 by
/// default) or `Weights.Warning` for the warning instance, the target `<node>.node.<dc>.consul.`
/// for an instance on its node's address and `<hex>.addr.<dc>.consul.` for one with a service
/// address of its own (§4.4 `encodeIPAsFqdn`: 10.0.1.2 is `0a000102`).
fn web_srv() -> BTreeSet<(u16, u16, u16, String)> {
    [
        (1, 1, 8080, "node-a.node.dc1.consul."),
        (1, 1, 8081, "0a000102.addr.dc1.consul."),
        (1, 2, 8082, "node-c.node.dc1.consul."),
        (1, 1, 8084, "node-e.node.dc1.consul."),
        (1, 1, 8086, "node-6.node.dc1.consul."),
    ]
    .into_iter()
    .map(|(priority, weight, port, target)| (priority, weight, port, target.to_string()))
    .collect()
}

/// What each SRV target resolves to: a node name to its node's address (consul-dns.md §7.1,
/// QF `FetchNodes`), an `.addr.` name to the address it encodes (§7.3, DRF
/// `buildAddressResults`).
fn web_targets() -> BTreeSet<(String, String)> {
    [
        ("node-a.node.dc1.consul.", "10.0.0.1"),
        ("0a000102.addr.dc1.consul.", "10.0.1.2"),
        ("node-c.node.dc1.consul.", "10.0.0.3"),
        ("node-e.node.dc1.consul.", "10.0.0.5"),
        ("node-6.node.dc1.consul.", "2001:db8::6"),
    ]
    .into_iter()
    .map(|(target, addr)| (target.to_string(), addr.to_string()))
    .collect()
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// splitdns in a namespace of its own, mirroring the fake agent beside it, with an internet
/// fake for every other name. Fields drop in order: splitdns first, the namespace last.
struct Mirror {
    daemon: Daemon,
    consul: FakeConsul,
    internet: FakeUpstream,
    ns: Netns,
}

impl Mirror {
    /// Starts the agent, the internet fake and splitdns in a new namespace named after `tag`,
    /// and gives the namespace a resolv.conf naming splitdns.
    fn start(tag: &str) -> Self {
        let ns = Netns::new(tag);
        let handle = Handle::current();
        // The agent's sockets are made on a thread inside the namespace, so they live there;
        // its tasks run on the test's runtime.
        let consul = ns.enter(|| handle.block_on(FakeConsul::start(catalog())));
        let (udp, tcp) = ns.udp_tcp("127.0.0.2:53".parse().unwrap());
        let internet = FakeUpstream::start_on(fixtures::internet(), udp, tcp);
        let config = format!(
            "[server]\nlisten = [\"{LISTEN}\"]\n\n\
             [upstream]\nservers = [\"{}\"]\n\n\
             [[route]]\nzones = [\"consul\"]\nservers = [\"{}\"]\n\n\
             [consul]\nhttp = \"{}\"\n\n\
             [metrics]\nlisten = \"{METRICS}\"\n",
            internet.addr(),
            consul.dns_addr(),
            consul.http_addr(),
        );
        let daemon = Daemon::start(&config, Some(&ns));
        daemon.wait_ready();
        ns.resolv_conf("nameserver 127.0.0.1\n");
        Self {
            daemon,
            consul,
            internet,
            ns,
        }
    }

    /// A plain query (RD=1, no EDNS) to splitdns from inside the namespace.
    fn ask(&self, qname: &str, qtype: RecordType) -> Message {
        let handle = Handle::current();
        let server: SocketAddr = LISTEN.parse().unwrap();
        self.ns
            .enter(|| handle.block_on(client::udp(server, &client::query(qname, qtype))))
    }

    /// [`MIRROR_ANSWERS`] now (0 before the series first appears).
    fn mirror_answers(&self) -> f64 {
        let handle = Handle::current();
        let addr: SocketAddr = METRICS.parse().unwrap();
        let text = self.ns.enter(|| handle.block_on(http::scrape(addr)));
        http::sample(&text, MIRROR_ANSWERS).unwrap_or(0.0)
    }

    /// Waits until `done` holds, failing after [`REPLY_WAIT`] with `what`, the agent's counts
    /// and splitdns's log.
    async fn wait_until(&self, what: &str, done: impl Fn(&FakeConsul) -> bool) {
        let deadline = Instant::now() + REPLY_WAIT;
        while !done(&self.consul) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {REPLY_WAIT:?} ({} requests for {HEALTH_WEB}, {} HTTP \
                 queries blocked); splitdns stderr:\n{}",
                self.consul.requests(HEALTH_WEB),
                self.consul.blocked(),
                self.daemon.stderr()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The first question for `web`, which splitdns forwards to the agent's DNS port and which
    /// starts the mirror's watch; returns once the agent holds that watch blocked.
    ///
    /// splitdns is ready before its mirror has read the agent's settings (`/v1/agent/self`,
    /// which say which domain is the agent's), and a question before then is forwarded
    /// without starting a watch, so the question waits for the mirror's first watch, on the
    /// datacenter's service listing (`/v1/catalog/services`), to block. A watch's first query
    /// (no index) answers at once and its next one (with the index it got) blocks ("Blocking
    /// Queries", Consul's HTTP API docs); so a second health query for `web` and a second
    /// blocked query mean the mirror holds `web`.
    async fn warm(&self) {
        self.wait_until("the mirror's listing watch blocked", |c| c.blocked() >= 1)
            .await;
        let reply = self.ask("web.service.consul.", RecordType::A);
        assert_rcode(&reply, ResponseCode::NoError);
        let ips: BTreeSet<String> = answer_ips(&reply).iter().map(|ip| ip.to_string()).collect();
        assert_eq!(ips, strings(&WEB_ADDRS[..4]), "the first answer:\n{reply}");
        assert!(
            self.consul.dns_queries() >= 1,
            "the first question for web is forwarded to the agent's DNS port (issue 21: \
             \"that first query is forwarded as today\"); the agent saw none"
        );
        self.wait_until("the first question's watch on web blocked", |c| {
            c.requests(HEALTH_WEB) >= 2 && c.blocked() >= 2
        })
        .await;
    }

    /// Runs `clients` after [`Mirror::warm`] and returns what they gave, failing unless the
    /// agent's DNS port saw none of their questions (nor the internet fake), and the mirror
    /// counted at least `at_least` answers: one for each question the clients must have
    /// asked, NODATA ones included.
    fn assert_mirrored<T>(&self, what: &str, at_least: f64, clients: impl FnOnce() -> T) -> T {
        let agent = self.consul.dns_queries();
        let before = self.mirror_answers();
        let out = clients();
        let after = self.mirror_answers();
        assert_eq!(
            self.consul.dns_queries(),
            agent,
            "{what}: questions reached the agent's DNS port after its watch was blocked, so \
             they were forwarded, not answered from the mirror; splitdns stderr:\n{}",
            self.daemon.stderr()
        );
        assert_eq!(
            self.internet.total(),
            0,
            "{what}: consul names went elsewhere"
        );
        assert!(
            after - before >= at_least,
            "{what}: {MIRROR_ANSWERS} moved from {before} to {after}, expected at least \
             {at_least} more"
        );
        out
    }
}

/// glibc and musl, through getaddrinfo(3) with AF_UNSPEC and no AI_ADDRCONFIG, ask A and
/// AAAA for `web.service.consul` (glibc `resolv/res_send.c` sends both over one socket;
/// musl `src/network/lookup_name.c` `name_from_dns` asks both), and neither sends EDNS
/// (glibc only with `options edns0`, resolv.conf(5); musl never), so each answer must fit
/// 512 bytes. Every healthy instance comes back, IPv4 and IPv6, the critical node's never
/// (consul-dns.md §11, QF `fetchService`: a critical check drops the instance, a warning one
/// keeps it), and all four IPv4 ones: issue 21's deliberate difference from Consul, whose
/// own answer to a client without EDNS is cut to `udp_answer_limit` (3) records. glibc's
/// `res_query` on the RFC 2782 name `_web._tcp.service.consul` (consul-dns.md §4.3:
/// `_tcp` means no tag) gets one SRV per healthy instance; when the answer does not fit
/// 512 bytes, splitdns sets TC and glibc asks again over TCP (`res_send.c`: a truncated
/// answer over UDP makes it retry on a virtual circuit). musl 1.2.3 has no such retry
/// (TCP fallback came in 1.2.4), so it is not asked SRV. All of it comes from the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glibc_and_musl_resolve_a_mirrored_service() {
    const TEST: &str = "glibc_and_musl_resolve_a_mirrored_service";
    if netns::skip(TEST) || clients::skip(TEST, Libc::Musl) || clients::skip(TEST, Libc::Glibc) {
        return;
    }
    // Built before the clock of the blocked watch starts.
    clients::binary(Libc::Musl);
    clients::binary(Libc::Glibc);
    let mirror = Mirror::start("consul-libc");
    mirror.warm().await;

    // Two getaddrinfo calls (A and AAAA each) and one SRV question (asked again over TCP
    // when the UDP answer is truncated).
    let (lookups, srv) = mirror.assert_mirrored("glibc and musl", 5.0, || {
        let lookups: Vec<_> = [Libc::Glibc, Libc::Musl]
            .into_iter()
            .map(|libc| {
                (
                    libc,
                    clients::getaddrinfo(&mirror.ns, libc, "web.service.consul"),
                )
            })
            .collect();
        let srv = clients::res_query(&mirror.ns, Libc::Glibc, "_web._tcp.service.consul", 33);
        (lookups, srv)
    });

    for (libc, lookup) in lookups {
        let got: BTreeSet<String> = lookup.lines.iter().cloned().collect();
        assert!(
            lookup.ok && got == strings(&WEB_ADDRS),
            "{libc:?} getaddrinfo(web.service.consul): {lookup:?}"
        );
    }
    assert_eq!(
        srv.lines,
        ["rcode 0 answers 5"],
        "glibc res_query(_web._tcp.service.consul, SRV)"
    );
}

/// Go's resolvers, each built from `support/clients/lookup.go`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GoResolver {
    /// Built with `CGO_ENABLED=0 -tags netgo`, run with `GODEBUG=netdns=go+1`: package net
    /// reads /etc/resolv.conf and speaks DNS itself (EDNS0 with a 1232-byte buffer, TCP when
    /// an answer comes back truncated; `net/dnsclient_unix.go`).
    Pure,
    /// Built with `CGO_ENABLED=1`, run with `GODEBUG=netdns=cgo+1`: `LookupHost` calls the C
    /// library's getaddrinfo (`net/cgo_unix.go`); `LookupSRV` stays Go's own on Unix
    /// (`net/lookup_unix.go`: `lookupSRV` is `goLookupSRV`).
    Cgo,
}

impl GoResolver {
    fn godebug(self) -> &'static str {
        match self {
            Self::Pure => "netdns=go+1",
            Self::Cgo => "netdns=cgo+1",
        }
    }
}

/// Whether `test` must return because `go` (or, for cgo, the C compiler) is missing and
/// `SPLITDNS_SKIP` names it; panics when it is missing otherwise.
fn go_skip(test: &str, resolver: GoResolver) -> bool {
    prereq::skip(test, "go", prereq::no_program("go"))
        || (resolver == GoResolver::Cgo && clients::skip(test, Libc::Glibc))
}

/// The Go lookup client for `resolver`, once per test run.
fn go_binary(resolver: GoResolver) -> &'static Path {
    static PURE: OnceLock<PathBuf> = OnceLock::new();
    static CGO: OnceLock<PathBuf> = OnceLock::new();
    let cell = match resolver {
        GoResolver::Pure => &PURE,
        GoResolver::Cgo => &CGO,
    };
    cell.get_or_init(|| go_build(resolver))
}

/// Builds `lookup.go` as a module of its own in a fresh directory, from the standard library
/// alone and with no network: no proxy, no toolchain download, no user `go env` file. The
/// build cache stays in the target directory, so later runs do not build the standard
/// library again.
fn go_build(resolver: GoResolver) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/clients/lookup.go");
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let module = tempfile::TempDir::new_in(tmp).unwrap();
    std::fs::copy(&source, module.path().join("main.go"))
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    std::fs::write(module.path().join("go.mod"), "module lookup\n\ngo 1.19\n").unwrap();
    let out = tmp.join(format!("lookup-go-{resolver:?}").to_lowercase());
    let partial = out.with_extension(format!("{}.partial", std::process::id()));
    let mut go = Command::new("go");
    go.current_dir(module.path())
        .args(["build", "-trimpath", "-o"])
        .arg(&partial)
        .env("GOCACHE", tmp.join("go/cache"))
        .env("GOPATH", tmp.join("go/path"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off");
    match resolver {
        GoResolver::Pure => go.env("CGO_ENABLED", "0").args(["-tags", "netgo"]),
        GoResolver::Cgo => go.env("CGO_ENABLED", "1"),
    };
    go.arg(".");
    let built = go.output().unwrap_or_else(|e| panic!("go: {e}"));
    assert!(
        built.status.success(),
        "go build ({resolver:?}) of {}: {}",
        source.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::rename(&partial, &out).unwrap();
    out
}

/// What the Go client printed and whether it succeeded.
#[derive(Debug)]
struct GoOutcome {
    ok: bool,
    lines: Vec<String>,
}

/// Runs the Go client for `resolver` inside `ns` (`ip netns exec`, which mounts the
/// namespace's resolv.conf over /etc/resolv.conf, ip-netns(8)), and checks on its stderr
/// that package net used the resolver asked for (`GODEBUG=netdns=...+1` prints its choice;
/// the net package docs).
fn go_lookup(ns: &Netns, resolver: GoResolver, args: &[&str]) -> GoOutcome {
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(go_binary(resolver))
        .args(args)
        .env("GODEBUG", resolver.godebug())
        .output()
        .unwrap_or_else(|e| panic!("lookup-go {args:?} in {}: {e}", ns.name()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "lookup-go {args:?} ({resolver:?}) in {}: {stdout}{stderr}",
        ns.name()
    );
    let chosen = match resolver {
        GoResolver::Pure => stderr.contains("Go's DNS resolver") || stderr.contains("Go resolver"),
        GoResolver::Cgo => stderr.contains("cgo") && !stderr.contains("ignoring"),
    };
    assert!(
        chosen,
        "lookup-go {args:?}: package net did not say it used the {resolver:?} resolver: {stderr}"
    );
    GoOutcome {
        ok: out.status.success(),
        lines: stdout.lines().map(str::to_owned).collect(),
    }
}

/// A Go program resolves `web.service.consul` and follows `_web._tcp.service.consul`'s SRV
/// records to addresses, all from the mirror.
///
/// `net.LookupHost` asks A and AAAA and returns every address of both (`net/dnsclient_unix.go`
/// `goLookupIPCNAMEOrder`; with cgo, getaddrinfo with AF_UNSPEC): the healthy instances,
/// IPv4 and IPv6, the critical node's never (consul-dns.md §11, QF `fetchService`).
/// `net.LookupSRV("", "", name)` "looks up name directly" when service and proto are empty
/// (package net docs) and returns every SRV record of the answer, which ignores the
/// additional section; so, as RFC 2782's usage rules have a client do ("look up the address
/// records for its Target"), each target is resolved in turn: node names (consul-dns.md §7.1)
/// and `.addr.` names (§7.3), which the mirror answers itself for the nodes and addresses of
/// a service it watches (issue 21). Consul's SRV records: priority 1, weights from
/// `Weights`, the `.addr.` target for a service address (§6.2, and §4.4 from Consul's docs,
/// "Perform static DNS queries": the hex-encoded address under `.addr.`).
async fn go_resolves_a_mirrored_service(test: &str, resolver: GoResolver, tag: &str) {
    if netns::skip(test) || go_skip(test, resolver) {
        return;
    }
    // Built before the clock of the blocked watch starts.
    go_binary(resolver);
    let mirror = Mirror::start(tag);
    mirror.warm().await;

    // LookupHost: A and AAAA; LookupSRV: one SRV question, then A and AAAA for each of the
    // five targets.
    let (host, srv) = mirror.assert_mirrored(&format!("Go ({resolver:?})"), 13.0, || {
        let host = go_lookup(&mirror.ns, resolver, &["host", "web.service.consul"]);
        let srv = go_lookup(&mirror.ns, resolver, &["srv", "_web._tcp.service.consul"]);
        (host, srv)
    });

    let got: BTreeSet<String> = host.lines.iter().cloned().collect();
    assert!(
        host.ok && got == strings(&WEB_ADDRS),
        "{resolver:?} LookupHost(web.service.consul): {host:?}"
    );
    assert!(
        srv.ok,
        "{resolver:?} LookupSRV(_web._tcp.service.consul): {srv:?}"
    );
    let mut records = BTreeSet::new();
    let mut targets = BTreeSet::new();
    for line in &srv.lines {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields[..] {
            ["srv", priority, weight, port, target] => {
                let number = |text: &str| -> u16 {
                    text.parse().unwrap_or_else(|_| panic!("bad line {line:?}"))
                };
                records.insert((
                    number(priority),
                    number(weight),
                    number(port),
                    target.to_string(),
                ));
            }
            ["addr", target, addr] => {
                targets.insert((target.to_string(), addr.to_string()));
            }
            _ => panic!("{resolver:?}: unexpected line {line:?} in {srv:?}"),
        }
    }
    assert_eq!(records, web_srv(), "{resolver:?} LookupSRV: {srv:?}");
    assert_eq!(
        targets,
        web_targets(),
        "{resolver:?} the targets' addresses: {srv:?}"
    );
}

/// [`go_resolves_a_mirrored_service`] with the pure Go resolver, as a Go binary built with
/// cgo off (every static Go binary in a scratch container) resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pure_go_resolves_a_mirrored_service_and_its_srv_targets() {
    go_resolves_a_mirrored_service(
        "pure_go_resolves_a_mirrored_service_and_its_srv_targets",
        GoResolver::Pure,
        "consul-go",
    )
    .await;
}

/// [`go_resolves_a_mirrored_service`] with Go's cgo resolver: addresses through glibc's
/// getaddrinfo, SRV through Go's own code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgo_resolves_a_mirrored_service_and_its_srv_targets() {
    go_resolves_a_mirrored_service(
        "cgo_resolves_a_mirrored_service_and_its_srv_targets",
        GoResolver::Cgo,
        "consul-cgo",
    )
    .await;
}
