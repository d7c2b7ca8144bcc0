//! The real Unbound as a DNS over TLS and over HTTPS server on ephemeral ports of 127.0.0.1,
//! in front of a fake zone (`local-zone`/`local-data`, no recursion, nothing leaves the
//! machine), with a CA and certificates the test makes with rcgen. Killed on drop.
//!
//! CI installs it (Debian's `unbound`, built with libnghttp2 so `https-port` works; see
//! `.ci/run`) and there a missing Unbound is a failure; elsewhere a test without it prints why
//! and passes, like the dnsmasq tests.

use super::free_port;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::{client, prereq};

const START_WAIT: Duration = Duration::from_secs(15);
const BINARY: &str = "/usr/sbin/unbound";

/// The name Unbound's certificate is for.
pub(crate) const SERVER_NAME: &str = "dns.test";

/// Whether `test` must return because Unbound is missing and `SPLITDNS_SKIP` names it;
/// panics when it is missing otherwise (see [`prereq`]).
pub(crate) fn skip(test: &str) -> bool {
    let missing = (!Path::new(BINARY).is_file()).then_some("unbound is not installed");
    prereq::skip(test, "unbound", missing)
}

/// A CA and a server certificate it signed, as PEM files in a directory of their own.
pub(crate) struct Pki {
    dir: TempDir,
    /// The base64 SHA-256 of the server key's SubjectPublicKeyInfo (RFC 7469 §2.4).
    pub(crate) pin: String,
}

impl Pki {
    /// A fresh CA and a certificate for [`SERVER_NAME`], valid from yesterday for a year.
    pub(crate) fn new() -> Self {
        Self::with_validity(-1, 365)
    }

    /// A certificate valid from `from` days to `until` days from now (negative: in the past).
    pub(crate) fn with_validity(from: i64, until: i64) -> Self {
        let dir = TempDir::new().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("splitdns test CA {}", rand_suffix()),
        );
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_string()]).unwrap();
        let now = time_now();
        params.not_before = now + time::Duration::days(from);
        params.not_after = now + time::Duration::days(until);
        let cert = params.signed_by(&key, &Issuer::new(ca, &ca_key)).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        let pin = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(key.subject_public_key_info()));
        Self { dir, pin }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// Each CA gets a name of its own, as unrelated CAs have: a certificate from another CA is
/// then an unknown issuer, not a bad signature from a CA of the same name.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    u64::from(std::process::id()) << 20 | NEXT.fetch_add(1, Ordering::Relaxed)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Unbound answering `www.test` (A 192.0.2.10) and every name under `wild.test`
/// (A 192.0.2.20) over plain DNS, DNS over TLS and DNS over HTTPS.
pub(crate) struct Unbound {
    child: Child,
    dir: TempDir,
    pub(crate) plain: SocketAddr,
    pub(crate) tls: SocketAddr,
    pub(crate) https: SocketAddr,
}

impl Unbound {
    pub(crate) async fn start(pki: &Pki) -> Self {
        let dir = TempDir::new().unwrap();
        let [plain, tls, https] = [free_port(), free_port(), free_port()];
        // A fixed ticket key (80 bytes, unbound.conf(5) `tls-session-ticket-keys`) lets a
        // restarted Unbound resume the sessions of the one before.
        let key: Vec<u8> = (0..80).map(|_| rand_suffix() as u8 ^ 0x5a).collect();
        std::fs::write(dir.path().join("ticket.key"), key).unwrap();
        let conf = config(dir.path(), pki, plain, tls, https);
        std::fs::write(dir.path().join("unbound.conf"), conf).unwrap();
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let mut unbound = Self {
            child: spawn(dir.path()),
            dir,
            plain: addr(plain),
            tls: addr(tls),
            https: addr(https),
        };
        unbound.wait_ready().await;
        unbound
    }

    /// Stops Unbound and starts it again on the same ports and certificate.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.dir.path());
        self.wait_ready().await;
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }

    /// TCP connections established to `port` of this Unbound right now, as `ss` sees them.
    pub(crate) fn established(port: u16) -> usize {
        let out = Command::new("ss")
            .args([
                "-Htn",
                "state",
                "established",
                &format!("( sport = :{port} )"),
            ])
            .output()
            .expect("ss runs");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// Waits until the plain port answers `www.test`.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_WAIT;
        let bytes = client::encode(&client::query(
            "www.test.",
            hickory_proto::rr::RecordType::A,
        ));
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("unbound exited ({status}):\n{}", self.log());
            }
            if client::udp_maybe_reply(self.plain, &bytes).await.is_some()
                && std::net::TcpStream::connect_timeout(&self.tls, Duration::from_secs(1)).is_ok()
                && std::net::TcpStream::connect_timeout(&self.https, Duration::from_secs(1)).is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "unbound did not answer within {START_WAIT:?}:\n{}",
            self.log()
        );
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(dir: &Path) -> Child {
    Command::new(BINARY)
        .arg("-d")
        .arg("-c")
        .arg(dir.join("unbound.conf"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .expect("spawn unbound")
}

fn config(dir: &Path, pki: &Pki, plain: u16, tls: u16, https: u16) -> String {
    format!(
        r#"server:
    interface: 127.0.0.1@{plain}
    interface: 127.0.0.1@{tls}
    interface: 127.0.0.1@{https}
    port: {plain}
    tls-port: {tls}
    https-port: {https}
    http-endpoint: "/dns-query"
    tls-session-ticket-keys: "{dir}/ticket.key"
    tls-service-key: "{key}"
    tls-service-pem: "{cert}"
{sandbox}
    num-threads: 1
    incoming-num-tcp: 300
    tcp-idle-timeout: 120000
    http-max-streams: 300
    module-config: "iterator"
    statistics-cumulative: yes
    extended-statistics: yes
    local-zone: "example." static
    local-zone: "test." static
    local-data: "www.test. 60 IN A 192.0.2.10"
    local-zone: "wild.test." redirect
    local-data: "wild.test. 60 IN A 192.0.2.20"
remote-control:
    control-enable: yes
    control-interface: "{dir}/control.sock"
"#,
        key = pki.key().display(),
        cert = pki.cert().display(),
        sandbox = sandbox(dir),
        dir = dir.display(),
    )
}

/// The `server:` lines every test Unbound has: IPv4 on loopback only, answering
/// 127.0.0.0/8, running as the test's user in `dir` with its log there, no syslog.
pub(crate) fn sandbox(dir: &Path) -> String {
    format!(
        r#"    do-ip6: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: ""
    use-syslog: no
    logfile: "{dir}/unbound.log"
    verbosity: 1"#,
        dir = dir.display()
    )
}

impl Unbound {
    /// One counter from `unbound-control stats_noreset` (`num.query.tls`, ...).
    pub(crate) fn stat(&self, name: &str) -> u64 {
        let out = Command::new("/usr/sbin/unbound-control")
            .arg("-c")
            .arg(self.dir.path().join("unbound.conf"))
            .arg("stats_noreset")
            .output()
            .expect("unbound-control runs");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map_or(0, |v| v.trim().parse().unwrap_or(0))
    }
}
