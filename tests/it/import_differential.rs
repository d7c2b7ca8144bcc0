//! `splitdns import-dnsmasq` against dnsmasq itself: a whole dnsmasq.conf, as an operator
//! has it, goes into dnsmasq (the real binary, Debian's `dnsmasq-base`), and the TOML that
//! `splitdns import-dnsmasq` (the real binary) writes for the same file goes into splitdns;
//! both stand in front of the same fake upstreams, and both are asked the same questions.
//! For every question the outcome must be the same: which upstream received it, the
//! response code and the answer records (see [`crate::support::compare`]). An operator who
//! migrates expects the answers dnsmasq gave, so dnsmasq's behaviour is the expectation.
//!
//! The conf's `server=` lines name the fakes (`{NAME}` is a fake's `127.0.0.1#PORT`,
//! `{dir}` the directory the conf is written to), so the import points at them too. What
//! only the test harness changes, on both sides alike: each server listens on its own
//! ephemeral port of 127.0.0.1 (dnsmasq is given `--listen-address=127.0.0.1 --port=PORT`
//! and the conf's `listen-address=`/`interface=`/`port=` lines are left out of its copy; the
//! imported `[server] listen` is replaced), nothing is cached (dnsmasq's `cache-size=` lines
//! are left out for its `--cache-size=0 --no-negcache`, the imported `[cache] size` is set to
//! 0), and /etc/hosts is read by neither (dnsmasq runs with `--no-hosts`, and the /etc/hosts
//! that the import writes out as dnsmasq's default is dropped); `addn-hosts=` files are read
//! by both.
//!
//! Deliberate differences are listed per case, each with its reason, as differential.rs
//! lists them: [`Case::nodata`], names that exist, where dnsmasq 2.90 says NXDOMAIN and
//! splitdns NODATA (RFC 1034 §4.3.2, RFC 8020 §2; docs/migrating.md, "Differences from
//! dnsmasq"). The SOA splitdns adds to its negative answers (RFC 2308 §3) is in the
//! authority section, which is not compared.

use std::path::Path;
use std::process::Command;

use hickory_proto::rr::RecordType;
use splitdns::config::{Config, Listen};
use tempfile::TempDir;

use crate::support::Splitdns;
use crate::support::compare::{Fakes, placeholders};
use crate::support::daemon::BIN;
use crate::support::dnsmasq::{self, Dnsmasq};

/// The types every name is asked with: the address types, TXT, and the types the local
/// records of dnsmasq.conf give (MX, SRV, PTR), each asked of every name.
const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::MX,
    RecordType::SRV,
    RecordType::PTR,
];

/// Names every case asks besides its own.
const COMMON: &[&str] = &[
    "example.com.",
    "www.example.org.",
    "fileserver.",
    "localhost.",
    "8.8.8.8.in-addr.arpa.",
];

/// One dnsmasq.conf.
#[derive(Default)]
struct Case {
    name: &'static str,
    /// The dnsmasq.conf, with `{NAME}` for a fake's `127.0.0.1#PORT` and `{dir}` for the
    /// directory it is written to.
    conf: &'static str,
    /// Other files written to `{dir}` (name, text), such as an `addn-hosts=` file.
    files: &'static [(&'static str, &'static str)],
    /// Fakes that are servers of one zone (or the default servers) together; each group
    /// counts as one upstream.
    together: &'static [&'static [&'static str]],
    /// Names asked besides [`COMMON`], each with every type of [`TYPES`].
    names: &'static [&'static str],
    /// Names, as asked, where dnsmasq's NXDOMAIN is splitdns's NODATA: they exist (RFC 8020
    /// §2), see the module comment. Each case says why for its own.
    nodata: &'static [&'static str],
    /// Names, as asked, of which dnsmasq forwards some types that splitdns answers itself
    /// with no records (docs/migrating.md, "Differences from dnsmasq"). Each case says why.
    kept_home: &'static [&'static str],
}

/// Whether dnsmasq's copy of the conf keeps `line`: listeners and the cache size are the
/// harness's (see the module comment).
fn for_dnsmasq(line: &str) -> bool {
    let option = line.trim().split(['=', ' ', '\t']).next().unwrap_or("");
    !matches!(
        option,
        "listen-address" | "interface" | "port" | "cache-size"
    )
}

/// Runs `splitdns import-dnsmasq CONF` and returns its TOML; fails on a failed import.
fn import(conf: &Path) -> String {
    let output = Command::new(BIN)
        .arg("import-dnsmasq")
        .arg(conf)
        .output()
        .expect("run splitdns import-dnsmasq");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "import failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// The imported config on an ephemeral loopback port, without a cache and without
/// /etc/hosts (see the module comment).
fn as_compared(toml: &str) -> Config {
    let mut config = Config::from_toml(toml, Path::new("imported.toml"))
        .unwrap_or_else(|e| panic!("imported config rejected: {e}\n{toml}"));
    config.listen = vec![Listen::Addr("127.0.0.1:0".parse().unwrap())];
    config.cache.size = 0;
    config
        .local
        .hosts_files
        .retain(|path| path != Path::new("/etc/hosts"));
    config
}

/// Writes the case's conf and files, starts dnsmasq on the conf and splitdns on its
/// import, asks both every question, and fails with every question whose outcomes differ.
async fn compare(case: Case) {
    if dnsmasq::skip(case.name) {
        return;
    }
    let dir = TempDir::new().unwrap();
    let conf = case
        .conf
        .replace("{dir}", &dir.path().display().to_string());
    let fakes = Fakes::start(placeholders(&conf), case.together, &[]).await;
    let conf = fakes.render(&conf);
    for (file, text) in case.files {
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let path = dir.path().join("dnsmasq.conf");
    std::fs::write(&path, &conf).unwrap();
    let toml = import(&path);

    let dnsmasq_conf: Vec<&str> = conf.lines().filter(|l| for_dnsmasq(l)).collect();
    let dnsmasq = Dnsmasq::start(&dnsmasq_conf.join("\n")).await;
    let splitdns = Splitdns::start_config(as_compared(&toml)).await;

    let mut questions: Vec<(String, RecordType)> = Vec::new();
    for qname in case.names.iter().chain(COMMON) {
        for qtype in TYPES {
            questions.push((qname.to_string(), *qtype));
        }
    }
    let differences = fakes
        .differences(
            dnsmasq.addr(),
            splitdns.addr(),
            &questions,
            case.nodata,
            case.kept_home,
        )
        .await;
    assert!(
        differences.is_empty(),
        "{}: splitdns on the import and dnsmasq on the conf differ on {} of {} questions\n\
         dnsmasq.conf:\n{conf}\nimported:\n{toml}\n(upstreams: {})\n{}\n\ndnsmasq's log:\n{}",
        case.name,
        differences.len(),
        questions.len(),
        fakes.describe(),
        differences.join("\n"),
        dnsmasq.log(),
    );
}

/// Consul's DNS forwarding guide for dnsmasq: `server=/consul/127.0.0.1#8600`, the reverse
/// line for the cluster's netblock it offers commented out enabled, `no-resolv` and the
/// host's own upstream servers (two, which dnsmasq picks between as it likes, so they count
/// as one upstream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_forwarding_guide() {
    compare(Case {
        name: "consul_forwarding_guide",
        conf: "\
# Enable forward lookup of the 'consul' domain:
server=/consul/{consul}

# Uncomment and modify as appropriate to enable reverse DNS lookups for
# common netblocks found in RFC 1918, 5735, and 6598:
#rev-server=0.0.0.0/8,{consul}
rev-server=10.0.0.0/8,{consul}
#rev-server=100.64.0.0/10,{consul}

# Upstream resolvers for everything else
no-resolv
server={internet}
server={internet2}
",
        together: &[&["internet", "internet2"]],
        names: &[
            "consul.",
            "web.service.consul.",
            "Web.Service.DC1.Consul.",
            "node1.node.consul.",
            "_web._tcp.service.consul.",
            "notconsul.",
            "consul.example.com.",
            "10.in-addr.arpa.",
            "5.0.0.10.in-addr.arpa.",
            "255.255.255.10.in-addr.arpa.",
            "1.0.0.11.in-addr.arpa.",
            "5.0.17.172.in-addr.arpa.",
            "1.1.168.192.in-addr.arpa.",
            "github.com.",
        ],
        ..Case::default()
    })
    .await;
}

/// Reverse zones and exceptions: `rev-server=` for IPv4 and IPv6 prefixes, a forward zone
/// to a server of its own, and `server=/z/#` lines that send a zone inside each back to
/// the default upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_and_exceptions() {
    compare(Case {
        name: "rev_server_and_exceptions",
        conf: "\
no-resolv
no-hosts
server={internet}

server=/consul/{consul}
server=/corp.example/{corp}
server=/public.corp.example/#
rev-server=10.0.0.0/8,{consul}
rev-server=172.16.0.0/12,{corp}
rev-server=fd00::/8,{consul}
server=/5.10.in-addr.arpa/#
server=/20.172.in-addr.arpa/#
",
        names: &[
            "web.service.consul.",
            "corp.example.",
            "intranet.corp.example.",
            "public.corp.example.",
            "www.public.corp.example.",
            "notpublic.corp.example.",
            "1.0.0.10.in-addr.arpa.",
            "1.0.5.10.in-addr.arpa.",
            "5.10.in-addr.arpa.",
            "1.0.6.10.in-addr.arpa.",
            "1.0.16.172.in-addr.arpa.",
            "1.0.20.172.in-addr.arpa.",
            "1.0.31.172.in-addr.arpa.",
            "1.0.32.172.in-addr.arpa.",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.f.ip6.arpa.",
        ],
        ..Case::default()
    })
    .await;
}

/// A Docker host: dnsmasq on loopback and the docker0 bridge for the containers, Consul's
/// zone to the local agent, everything else to the upstream; plain names and private
/// reverse names stay on the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_host() {
    compare(Case {
        name: "docker_host",
        conf: "\
# dnsmasq for this host and its containers
listen-address=127.0.0.1
listen-address=172.17.0.1
bind-interfaces
port=53

no-resolv
server={internet}
server=/consul/{consul}

domain-needed
bogus-priv
cache-size=1000
",
        names: &[
            "redis.service.consul.",
            "redis.service.consul.service.consul.",
            "registry-1.docker.io.",
            "host.docker.internal.",
            "redis.",
            "1.0.17.172.in-addr.arpa.",
            "2.0.17.172.in-addr.arpa.",
            "17.172.in-addr.arpa.",
            "5.0.0.10.in-addr.arpa.",
            "1.1.168.192.in-addr.arpa.",
            "1.0.0.127.in-addr.arpa.",
            "4.4.8.8.in-addr.arpa.",
        ],
        // The apex of an RFC 6303 zone that bogus_priv answers owns that zone's SOA, so
        // PTR for it is NODATA where dnsmasq says NXDOMAIN: docs/migrating.md,
        // "Differences from dnsmasq", second point.
        nodata: &["17.172.in-addr.arpa."],
        // domain_needed keeps plain names home for every type, and bogus_priv the private
        // reverse zones (RFC 6303 §3: their names are served locally, whatever the type),
        // where dnsmasq holds back only A/AAAA and only PTR: docs/migrating.md.
        kept_home: &[
            "redis.",
            "fileserver.",
            "localhost.",
            "1.0.17.172.in-addr.arpa.",
            "2.0.17.172.in-addr.arpa.",
            "17.172.in-addr.arpa.",
            "5.0.0.10.in-addr.arpa.",
            "1.1.168.192.in-addr.arpa.",
            "1.0.0.127.in-addr.arpa.",
        ],
        ..Case::default()
    })
    .await;
}

/// Local data: a local zone, an address for a name in it, records of every kind dnsmasq
/// has lines for, and an `addn-hosts=` file. (`expand-hosts` and `domain=` are not carried
/// over, docs/migrating.md says so, so names are written in full.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_data() {
    compare(Case {
        name: "local_data",
        conf: "\
no-resolv
no-hosts
server={internet}

local=/lan/
address=/gw.lan/192.168.1.1
host-record=nas.lan,192.168.1.5,2001:db8:1::5
cname=files.lan,nas.lan
srv-host=_ldap._tcp.lan,nas.lan,389
txt-record=nas.lan,\"owner=ops\"
ptr-record=10.1.168.192.in-addr.arpa,scanner.lan
mx-host=lan,mail.lan,10
addn-hosts={dir}/hosts.lan
",
        files: &[(
            "hosts.lan",
            "192.168.1.20 printer.lan\n192.168.1.21 mail.lan\n2001:db8:1::21 mail.lan\n",
        )],
        names: &[
            "lan.",
            "LAN.",
            "gw.lan.",
            "www.gw.lan.",
            "nas.lan.",
            "NAS.lan.",
            "files.lan.",
            "_ldap._tcp.lan.",
            "_tcp.lan.",
            "printer.lan.",
            "mail.lan.",
            "scanner.lan.",
            "other.lan.",
            "a.b.nas.lan.",
            "1.1.168.192.in-addr.arpa.",
            "5.1.168.192.in-addr.arpa.",
            "10.1.168.192.in-addr.arpa.",
            "20.1.168.192.in-addr.arpa.",
            "21.1.168.192.in-addr.arpa.",
            "99.1.168.192.in-addr.arpa.",
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
        ],
        // gw.lan has an A record (address=), so its other types and the names below it
        // (which address= covers too) are NODATA, where dnsmasq 2.90 says NXDOMAIN under
        // local=/lan/: docs/migrating.md, "Differences from dnsmasq", first point.
        nodata: &["gw.lan.", "www.gw.lan."],
        // A name with local records gets NODATA for its other types where dnsmasq forwards
        // them (docs/migrating.md): the reverse names of host-record=, ptr-record= and the
        // hosts file.
        kept_home: &[
            "5.1.168.192.in-addr.arpa.",
            "10.1.168.192.in-addr.arpa.",
            "20.1.168.192.in-addr.arpa.",
            "21.1.168.192.in-addr.arpa.",
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
        ],
        ..Case::default()
    })
    .await;
}
