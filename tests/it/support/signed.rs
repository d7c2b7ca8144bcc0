//! A signed test tree under a private trust anchor, `test.`, made at test time with the real
//! tools and served by the real NSD, and Unbound validating against it: the outside oracle of
//! the DNSSEC tests (tests/it/dnssec.rs).
//!
//! [`Tree::build`] makes keys with `ldns-keygen` (ECDSAP256SHA256, RFC 6605: a KSK and a ZSK
//! per signed zone), signs with `ldns-signzone` (NSEC, or NSEC3 with `-n`, opt-out with `-p`,
//! validity from `-i`/`-e`), takes each DS from `ldns-key2ds`, breaks the zones that must be
//! bogus after signing, and serves every zone of the tree from one NSD on an ephemeral port of
//! 127.0.0.1 (of a network namespace's loopback with [`Tree::build_in`], for clients that
//! must ask port 53 there). `consul.test.`, which the signed `test.` does not delegate (as the root does not
//! delegate `consul.`), comes from a second NSD: the stand-in for a Consul agent, the server
//! splitdns routes that zone to. [`Oracle`] is Unbound forwarding everything to those servers
//! with the tree's anchor (`module-config: "validator iterator"`), nothing fetched from anywhere
//! else. Every process is killed on drop.
//!
//! A missing tool fails the test unless `SPLITDNS_SKIP` names it ([`skip`]); CI installs them
//! (`.ci/run`: ldnsutils, nsd, unbound).

use super::{free_port, unbound};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::netns::Netns;
use super::{client, prereq};

const START_WAIT: Duration = Duration::from_secs(15);
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How many ports a server is tried on before its test fails.
const START_ATTEMPTS: u32 = 3;
const UNBOUND: &str = "/usr/sbin/unbound";
const DAY: u64 = 86_400;

/// The trust anchor's zone: the top of the tree.
pub(crate) const ANCHOR: &str = "test.";
/// The zone splitdns routes to the Consul stand-in; `test.` proves it does not exist.
pub(crate) const CONSUL_ZONE: &str = "consul.test.";
/// The zone both validators are told to treat as insecure (RFC 7646), bogus otherwise.
pub(crate) const NTA_ZONE: &str = "nta.test.";
/// A name inside the signed `secure.test.` that NSD does not have, given an A record by each
/// server's own local data (splitdns's `[[record]]`, Unbound's `local-data:`).
pub(crate) const LOCAL_NAME: &str = "gw.secure.test.";
/// The address of [`LOCAL_NAME`].
pub(crate) const LOCAL_ADDR: &str = "192.0.2.50";

/// The ldnsutils programs the tree is made with.
const LDNS_TOOLS: [&str; 3] = ["ldns-keygen", "ldns-signzone", "ldns-key2ds"];

/// Whether `test` must return because a tool of the tree (ldnsutils, NSD) or Unbound is
/// missing and `SPLITDNS_SKIP` names it; panics when one is missing otherwise (see
/// [`prereq`]).
pub(crate) fn skip(test: &str) -> bool {
    let ldns = LDNS_TOOLS.iter().find_map(|tool| prereq::no_program(tool));
    if prereq::skip(test, "ldnsutils", ldns) {
        return true;
    }
    if prereq::skip(test, "nsd", prereq::no_program("nsd")) {
        return true;
    }
    let unbound = (!Path::new(UNBOUND).is_file()).then_some("unbound is not installed");
    prereq::skip(test, "unbound", unbound)
}

/// How a zone is signed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signing {
    Unsigned,
    /// NSEC (RFC 4034 §4), valid from yesterday for 30 days.
    Nsec,
    /// NSEC3 (RFC 5155), no salt, no extra iterations (RFC 9276 §3.1).
    Nsec3,
    /// NSEC3 with the opt-out flag on every NSEC3 record (RFC 5155 §6), and the body's
    /// delegations added after signing, so that no NSEC3 record has their names: each lies
    /// in an opt-out span, as a zone that opts out does not sign its unsigned delegations.
    /// (ldns-signzone `-p` sets the flag but still makes NSEC3 records for them.)
    Nsec3OptOut,
    /// NSEC, with signatures that expired yesterday (RFC 4035 §5.3.1).
    Expired,
    /// NSEC, with signatures valid only from ten days on (RFC 4035 §5.3.1).
    NotYetValid,
}

/// What is broken in a signed zone after signing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// The signature of `www`'s A RRset has one bit pattern changed.
    TamperedRrsig,
    /// The RRSIG of `www`'s A RRset is removed.
    StrippedRrsig,
    /// The NSEC owned by `*.wild` and its RRSIG are removed: a wildcard answer then comes
    /// without the proof that the name asked does not exist.
    StrippedWildcardNsec,
    /// The parent's DS is the digest of a key the zone never publishes.
    DsOfUnpublishedKey,
    /// The parent's DS names the zone's KSK (tag, algorithm) with a wrong digest.
    WrongDsDigest,
}

struct ZoneSpec {
    name: &'static str,
    signing: Signing,
    fault: Fault,
    /// Records after the SOA and NS, relative to the zone.
    body: &'static str,
}

/// Every zone of the tree but `test.` itself. The zones below a child of `test.` are
/// delegated in that child's body, without DS.
const ZONES: &[ZoneSpec] = &[
    ZoneSpec {
        name: "secure.test.",
        signing: Signing::Nsec,
        fault: Fault::None,
        body: "www A 192.0.2.1\n*.wild A 192.0.2.2\nalias CNAME www.unsigned.test.\n\
               chain CNAME www.nsec3.test.\n",
    },
    ZoneSpec {
        name: "nsec3.test.",
        signing: Signing::Nsec3,
        fault: Fault::None,
        body: "www A 192.0.2.3\n*.wild A 192.0.2.4\ninsecure NS ns.test.\n",
    },
    ZoneSpec {
        name: "insecure.nsec3.test.",
        signing: Signing::Unsigned,
        fault: Fault::None,
        body: "www A 192.0.2.8\n",
    },
    ZoneSpec {
        name: "optout.test.",
        signing: Signing::Nsec3OptOut,
        fault: Fault::None,
        body: "www A 192.0.2.5\nsub NS ns.test.\n",
    },
    ZoneSpec {
        name: "sub.optout.test.",
        signing: Signing::Unsigned,
        fault: Fault::None,
        body: "www A 192.0.2.6\n",
    },
    ZoneSpec {
        name: "unsigned.test.",
        signing: Signing::Unsigned,
        fault: Fault::None,
        body: "www A 192.0.2.7\n",
    },
    ZoneSpec {
        name: "tampered.test.",
        signing: Signing::Nsec,
        fault: Fault::TamperedRrsig,
        body: "www A 192.0.2.9\n",
    },
    ZoneSpec {
        name: "expired.test.",
        signing: Signing::Expired,
        fault: Fault::None,
        body: "www A 192.0.2.10\n",
    },
    ZoneSpec {
        name: "future.test.",
        signing: Signing::NotYetValid,
        fault: Fault::None,
        body: "www A 192.0.2.11\n",
    },
    ZoneSpec {
        name: "nokey.test.",
        signing: Signing::Nsec,
        fault: Fault::DsOfUnpublishedKey,
        body: "www A 192.0.2.12\n",
    },
    ZoneSpec {
        name: "wrongds.test.",
        signing: Signing::Nsec,
        fault: Fault::WrongDsDigest,
        body: "www A 192.0.2.13\n",
    },
    ZoneSpec {
        name: "stripped.test.",
        signing: Signing::Nsec,
        fault: Fault::StrippedRrsig,
        body: "www A 192.0.2.14\n",
    },
    ZoneSpec {
        name: "nowildproof.test.",
        signing: Signing::Nsec,
        fault: Fault::StrippedWildcardNsec,
        body: "www A 192.0.2.16\n*.wild A 192.0.2.17\n",
    },
    ZoneSpec {
        name: NTA_ZONE,
        signing: Signing::Nsec,
        fault: Fault::WrongDsDigest,
        body: "www A 192.0.2.15\n",
    },
    // Under no trust anchor at all: insecure for every validator (RFC 4033 §5).
    ZoneSpec {
        name: "example.",
        signing: Signing::Unsigned,
        fault: Fault::None,
        body: "www A 192.0.2.99\n",
    },
];

/// The records of `test.` besides the delegations, relative to it.
const ANCHOR_BODY: &str = "ns A 127.0.0.1\nwww A 192.0.2.100\n";

/// The Consul stand-in's zone: unsigned, TTL 0 as Consul answers.
const CONSUL_BODY: &str = "web.service A 10.0.0.1\nweb.service A 10.0.1.2\n";

/// The signed tree on disk and the two NSDs serving it.
pub(crate) struct Tree {
    dir: TempDir,
    /// `test. IN DS TAG 13 2 HEX`: the anchor as DS text.
    pub(crate) anchor_ds: String,
    /// `test. IN DNSKEY 257 3 13 BASE64`: the anchor as DNSKEY text (the KSK).
    pub(crate) anchor_dnskey: String,
    nsd: Nsd,
    consul: Nsd,
}

impl Tree {
    /// Makes the keys, zones and signatures, and starts NSD for the tree and for
    /// `consul.test.`, waiting until both answer.
    pub(crate) async fn build() -> Self {
        Self::build_in(None).await
    }

    /// As [`Tree::build`], with both NSDs inside `ns` when given (run by `ip netns exec`,
    /// on its loopback): [`Tree::addr`] is then an address in that namespace.
    pub(crate) async fn build_in(ns: Option<&Netns>) -> Self {
        let dir = TempDir::new().unwrap();
        let path = dir.path();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut delegations = String::new();
        let mut served = Vec::new();
        for spec in ZONES {
            let ds = make_zone(path, spec, now);
            served.push(spec.name);
            // Only the children of `test.` are delegated from it; the zones below them are
            // delegated (without DS) in their parents' bodies.
            if parent(spec.name) == ANCHOR {
                let label = spec.name.strip_suffix(".test.").unwrap();
                writeln!(delegations, "{label} NS ns.test.").unwrap();
                if let Some(ds) = ds {
                    writeln!(delegations, "{ds}").unwrap();
                }
            }
        }
        let anchor = ZoneSpec {
            name: ANCHOR,
            signing: Signing::Nsec,
            fault: Fault::None,
            body: "",
        };
        let body = format!("{ANCHOR_BODY}{delegations}");
        write_zone(path, ANCHOR, &body, 3600);
        let ksk = sign(path, &anchor, now);
        served.push(ANCHOR);
        let ds = key2ds(path, &ksk);
        let anchor_ds = rr_text(&ds);
        let key = std::fs::read_to_string(path.join(format!("{ksk}.key"))).unwrap();
        let anchor_dnskey = rr_text(key.split(';').next().unwrap());
        write_zone(path, CONSUL_ZONE, CONSUL_BODY, 0);
        let nsd = Nsd::start(path, "tree", &served, ANCHOR, ns).await;
        let consul = Nsd::start(path, "consul", &[CONSUL_ZONE], CONSUL_ZONE, ns).await;
        Self {
            dir,
            anchor_ds,
            anchor_dnskey,
            nsd,
            consul,
        }
    }

    /// The NSD serving the whole tree: splitdns's and Unbound's default upstream.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.nsd.addr
    }

    /// The Consul stand-in serving `consul.test.`.
    pub(crate) fn consul_addr(&self) -> SocketAddr {
        self.consul.addr
    }

    /// A `trust-anchors` file for `delv -a` holding the anchor as a static DS.
    pub(crate) fn delv_anchor_file(&self) -> PathBuf {
        let fields: Vec<&str> = self.anchor_ds.split_whitespace().collect();
        let [owner, _, _, tag, alg, digest_type, digest] = fields[..] else {
            panic!("unexpected DS text {:?}", self.anchor_ds);
        };
        let text = format!(
            "trust-anchors {{\n    {owner} static-ds {tag} {alg} {digest_type} \"{digest}\";\n}};\n"
        );
        let file = self.dir.path().join("delv-anchor.conf");
        std::fs::write(&file, text).unwrap();
        file
    }

    /// What NSD logged, for a failure message.
    pub(crate) fn log(&self) -> String {
        self.nsd.log()
    }
}

/// `owner class type data` of a one-line RR as the tools print it (`owner ttl IN TYPE ...`),
/// without the TTL: `test. IN DS 12345 13 2 ABCD`.
fn rr_text(line: &str) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let ttl_at = usize::from(fields[1].parse::<u32>().is_ok());
    let mut out = vec![fields[0]];
    out.extend(&fields[1 + ttl_at..]);
    out.join(" ")
}

fn parent(zone: &str) -> &str {
    zone.split_once('.').map_or(".", |(_, rest)| rest)
}

/// `$ORIGIN`, a default TTL, the SOA and NS of `zone`, then `body`, in `zone.zone`.
fn write_zone(dir: &Path, zone: &str, body: &str, ttl: u32) {
    let text = format!(
        "$ORIGIN {zone}\n$TTL {ttl}\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n\
         @ NS ns.test.\n{body}"
    );
    std::fs::write(dir.join(format!("{zone}zone")), text).unwrap();
}

/// Writes and signs `spec` (as `ZONE.zone.signed`, which NSD serves) and returns the DS the
/// parent publishes for it, if any.
fn make_zone(dir: &Path, spec: &ZoneSpec, now: u64) -> Option<String> {
    let is_delegation = |line: &&str| line.split_whitespace().nth(1) == Some("NS");
    let (signed_body, opted_out): (Vec<&str>, Vec<&str>) = if spec.signing == Signing::Nsec3OptOut {
        spec.body.lines().partition(|line| !is_delegation(line))
    } else {
        (spec.body.lines().collect(), Vec::new())
    };
    let mut body = signed_body.join("\n");
    body.push('\n');
    write_zone(dir, spec.name, &body, 3600);
    let signed = dir.join(format!("{}zone.signed", spec.name));
    if spec.signing == Signing::Unsigned {
        std::fs::copy(dir.join(format!("{}zone", spec.name)), &signed).unwrap();
        return None;
    }
    let ksk = sign(dir, spec, now);
    let text = std::fs::read_to_string(&signed).unwrap();
    let www = format!("www.{}", spec.name);
    let is_www_a_rrsig = |line: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 5 && f[0] == www && f[3] == "RRSIG" && f[4] == "A"
    };
    let broken: Vec<String> = match spec.fault {
        Fault::TamperedRrsig => text
            .lines()
            .map(|line| {
                if !is_www_a_rrsig(line) {
                    return line.to_string();
                }
                // The signature is the last field, in base64: change its first character.
                let at = line.rfind(char::is_whitespace).unwrap() + 1;
                let first = if line[at..].starts_with('A') {
                    "B"
                } else {
                    "A"
                };
                format!("{}{first}{}", &line[..at], &line[at + 1..])
            })
            .collect(),
        Fault::StrippedRrsig => text
            .lines()
            .filter(|line| !is_www_a_rrsig(line))
            .map(str::to_string)
            .collect(),
        Fault::StrippedWildcardNsec => {
            let wildcard = format!("*.wild.{}", spec.name);
            let is_wildcard_nsec = |line: &str| {
                let f: Vec<&str> = line.split_whitespace().collect();
                f.len() > 4 && f[0] == wildcard && (f[3] == "NSEC" || f[3..5] == ["RRSIG", "NSEC"])
            };
            text.lines()
                .filter(|line| !is_wildcard_nsec(line))
                .map(str::to_string)
                .collect()
        }
        _ => text.lines().map(str::to_string).collect(),
    };
    if matches!(
        spec.fault,
        Fault::TamperedRrsig | Fault::StrippedRrsig | Fault::StrippedWildcardNsec
    ) {
        assert_ne!(
            broken.join("\n"),
            text.trim_end(),
            "the fault of {} changed nothing in its signed zone",
            spec.name
        );
    }
    let mut zone = broken.join("\n") + "\n";
    for line in opted_out {
        // `LABEL NS TARGET`, made absolute as the signed file's names are.
        let (label, rest) = line.split_once(char::is_whitespace).unwrap();
        writeln!(zone, "{label}.{} 3600 IN {}", spec.name, rest.trim()).unwrap();
    }
    std::fs::write(&signed, zone).unwrap();
    let ds = match spec.fault {
        Fault::DsOfUnpublishedKey => key2ds(dir, &keygen(dir, spec.name, true)),
        Fault::WrongDsDigest => {
            let ds = key2ds(dir, &ksk);
            // The digest is the last field, in hex: change its last digit.
            let last = ds.chars().last().unwrap();
            let other = if last == '0' { '1' } else { '0' };
            format!("{}{other}", &ds[..ds.len() - 1])
        }
        _ => key2ds(dir, &ksk),
    };
    Some(ds)
}

/// Makes a KSK and a ZSK for `spec`, signs `ZONE.zone` into `ZONE.zone.signed` and returns
/// the KSK's base name.
fn sign(dir: &Path, spec: &ZoneSpec, now: u64) -> String {
    let ksk = keygen(dir, spec.name, true);
    let zsk = keygen(dir, spec.name, false);
    let (inception, expiration) = match spec.signing {
        Signing::Expired => (now - 30 * DAY, now - DAY),
        Signing::NotYetValid => (now + 10 * DAY, now + 40 * DAY),
        _ => (now - DAY, now + 30 * DAY),
    };
    let mut args: Vec<String> = vec![
        "-i".into(),
        inception.to_string(),
        "-e".into(),
        expiration.to_string(),
    ];
    match spec.signing {
        Signing::Nsec3 => args.extend(["-n", "-t", "0"].map(String::from)),
        Signing::Nsec3OptOut => args.extend(["-n", "-p", "-t", "0"].map(String::from)),
        _ => {}
    }
    let zone = format!("{}zone", spec.name);
    args.extend([
        "-f".into(),
        format!("{zone}.signed"),
        zone,
        ksk.clone(),
        zsk,
    ]);
    run(dir, "ldns-signzone", &args);
    ksk
}

/// A new ECDSAP256SHA256 key for `zone` (a KSK, flags 257, when `ksk`); its base name.
fn keygen(dir: &Path, zone: &str, ksk: bool) -> String {
    let mut args = vec!["-r", "/dev/urandom", "-a", "ECDSAP256SHA256"];
    if ksk {
        args.push("-k");
    }
    args.push(zone);
    run(dir, "ldns-keygen", &args).trim().to_string()
}

/// The SHA-256 DS record of key `base` (RFC 4509), as one line.
fn key2ds(dir: &Path, base: &str) -> String {
    let out = run(dir, "ldns-key2ds", &["-n", "-2", &format!("{base}.key")]);
    out.lines()
        .find(|l| l.split_whitespace().nth(3) == Some("DS"))
        .unwrap_or_else(|| panic!("no DS from ldns-key2ds: {out}"))
        .to_string()
}

/// Runs `program` in `dir`; its stdout. Panics with its stderr when it fails.
#[track_caller]
fn run(dir: &Path, program: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> String {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
    assert!(
        out.status.success(),
        "{program} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A process in a process group of its own (NSD forks its workers), stopped with SIGTERM
/// and then SIGKILL sent to that group.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn spawn(mut command: Command, stderr: &Path) -> Self {
        let child = command
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        Self { child }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let group = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_WAIT;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whatever of the group is left (the leader, or workers it did not take down).
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// One NSD (`nsd -d`) serving `zones` from the tree's directory.
struct Nsd {
    daemon: Daemon,
    log: PathBuf,
    addr: SocketAddr,
}

impl Nsd {
    /// Starts NSD `tag`, in `ns` if given, and waits until it answers for `probe`'s SOA. A
    /// port taken between [`free_port`] and NSD's bind makes NSD exit: it is started again on
    /// another.
    async fn start(dir: &Path, tag: &str, zones: &[&str], probe: &str, ns: Option<&Netns>) -> Self {
        let file = |suffix: &str| dir.join(format!("nsd-{tag}.{suffix}"));
        for attempt in 1..=START_ATTEMPTS {
            let port = ns.map_or_else(free_port, |ns| ns.enter(free_port));
            let mut conf = format!(
                "server:\n  ip-address: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  \
                 server-count: 1\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{dir}\"\n  \
                 database: \"\"\n  zonelistfile: \"{zonelist}\"\n  xfrdfile: \"{xfrd}\"\n  \
                 xfrdir: \"{dir}\"\n  pidfile: \"{pid}\"\n  logfile: \"{log}\"\n  \
                 verbosity: 1\n  hide-version: yes\n  rrl-ratelimit: 0\n  \
                 rrl-whitelist-ratelimit: 0\nremote-control:\n  control-enable: no\n",
                dir = dir.display(),
                zonelist = file("zonelist").display(),
                xfrd = file("xfrd").display(),
                pid = file("pid").display(),
                log = file("log").display(),
            );
            for zone in zones {
                // The Consul stand-in serves its zone as written; the tree its signed files.
                let suffix = if *zone == CONSUL_ZONE { "" } else { ".signed" };
                write!(
                    conf,
                    "zone:\n  name: \"{zone}\"\n  zonefile: \"{zone}zone{suffix}\"\n"
                )
                .unwrap();
            }
            std::fs::write(file("conf"), conf).unwrap();
            let program = prereq::find_program("nsd").expect("nsd");
            // `ip netns exec` execs NSD in the namespace: its pid is NSD's, its group NSD's.
            let mut command = match ns {
                Some(ns) => {
                    let mut command = Command::new("ip");
                    command.args(["netns", "exec", ns.name()]).arg(program);
                    command
                }
                None => Command::new(program),
            };
            command.arg("-d").arg("-c").arg(file("conf"));
            let mut nsd = Self {
                daemon: Daemon::spawn(command, &file("stderr")),
                log: file("log"),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            match nsd.wait_ready(probe, ns).await {
                Ok(()) => return nsd,
                Err(why) if attempt == START_ATTEMPTS => panic!("{why}:\n{}", nsd.log()),
                Err(_) => {}
            }
        }
        unreachable!()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until NSD answers `zone`'s SOA with authority, asked from `ns` when given; why
    /// not, when it exits or does not within [`START_WAIT`].
    async fn wait_ready(&mut self, zone: &str, ns: Option<&Netns>) -> Result<(), String> {
        let deadline = Instant::now() + START_WAIT;
        let query = client::query(zone, RecordType::SOA);
        let bytes = client::encode(&query);
        while Instant::now() < deadline {
            if let Some(status) = self.daemon.exited() {
                return Err(format!("nsd exited ({status})"));
            }
            let reply = match ns {
                Some(ns) => udp_maybe_reply_in(ns, self.addr, &bytes).await,
                None => client::udp_maybe_reply(self.addr, &bytes).await,
            };
            if let Some(reply) = reply {
                let reply = client::decode(&reply);
                if reply.metadata.response_code == ResponseCode::NoError
                    && reply.metadata.authoritative
                {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("nsd did not answer within {START_WAIT:?}"))
    }
}

/// As [`client::udp_maybe_reply`], from a socket inside `ns`.
async fn udp_maybe_reply_in(ns: &Netns, server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = ns.udp(SocketAddr::from(([127, 0, 0, 1], 0)));
    sock.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(client::SILENCE_WAIT, sock.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
        _ => None,
    }
}

/// Unbound validating the tree: the tree's anchor, everything forwarded to the tree's NSD,
/// `consul.test.` to the Consul stand-in, `insecure` zones as `domain-insecure`.
pub(crate) struct Oracle {
    daemon: Daemon,
    dir: TempDir,
    pub(crate) addr: SocketAddr,
}

impl Oracle {
    pub(crate) async fn start(tree: &Tree, insecure: &[&str]) -> Self {
        Self::start_with_anchor(tree, &tree.anchor_ds, insecure).await
    }

    /// Like [`Oracle::start`], with `anchor` (DS or DNSKEY text) as the trust anchor. Started
    /// again on another port if the one it was given is taken before it binds.
    pub(crate) async fn start_with_anchor(tree: &Tree, anchor: &str, insecure: &[&str]) -> Self {
        let mut dir = TempDir::new().unwrap();
        let conf = dir.path().join("unbound.conf");
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            std::fs::write(
                &conf,
                oracle_config(dir.path(), tree, anchor, port, insecure),
            )
            .unwrap();
            let mut command = Command::new(UNBOUND);
            command.arg("-d").arg("-c").arg(&conf);
            let mut oracle = Self {
                daemon: Daemon::spawn(command, &dir.path().join("stderr")),
                dir,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            match oracle.wait_ready().await {
                Ok(()) => return oracle,
                Err(why) if attempt == START_ATTEMPTS => panic!("{why}:\n{}", oracle.log()),
                Err(_) => {
                    let Self {
                        daemon, dir: kept, ..
                    } = oracle;
                    drop(daemon);
                    dir = kept;
                }
            }
        }
        unreachable!()
    }

    /// Unbound's log, with `val-log-level: 2`'s reason for every validation failure.
    pub(crate) fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        format!(
            "{}{}",
            read("stderr").unwrap_or_default(),
            read("unbound.log").unwrap_or_default()
        )
    }

    /// Waits until Unbound answers a question for the anchor's zone; why not, when it exits
    /// or does not within [`START_WAIT`].
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WAIT;
        let bytes = client::encode(&client::query(ANCHOR, RecordType::SOA));
        while Instant::now() < deadline {
            if let Some(status) = self.daemon.exited() {
                return Err(format!("unbound exited ({status})"));
            }
            if client::udp_maybe_reply(self.addr, &bytes).await.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("unbound did not answer within {START_WAIT:?}"))
    }
}

/// Unbound's configuration: validator and iterator, the anchor from the tree, forwarders on
/// 127.0.0.1 only (no root hints are read or primed under a `.` forward zone), `test.`
/// taken out of Unbound's built-in local zones (RFC 6761 names it answers itself), EDE on
/// (RFC 8914), bogus answers not cached beyond the question that made them, and
/// [`LOCAL_NAME`] as local data.
fn oracle_config(dir: &Path, tree: &Tree, anchor: &str, port: u16, insecure: &[&str]) -> String {
    let mut conf = format!(
        r#"server:
    interface: 127.0.0.1@{port}
    port: {port}
{sandbox}
    val-log-level: 2
    num-threads: 1
    module-config: "validator iterator"
    trust-anchor: "{anchor}"
    local-zone: "test." nodefault
    qname-minimisation: no
    aggressive-nsec: no
    ede: yes
    val-bogus-ttl: 0
    local-data: "{LOCAL_NAME} 0 IN A {LOCAL_ADDR}"
"#,
        sandbox = unbound::sandbox(dir),
    );
    for zone in insecure {
        writeln!(conf, "    domain-insecure: \"{zone}\"").unwrap();
    }
    let nsd = tree.addr();
    let consul = tree.consul_addr();
    write!(
        conf,
        "forward-zone:\n    name: \".\"\n    forward-addr: {}@{}\n\
         forward-zone:\n    name: \"{CONSUL_ZONE}\"\n    forward-addr: {}@{}\n",
        nsd.ip(),
        nsd.port(),
        consul.ip(),
        consul.port()
    )
    .unwrap();
    conf
}
