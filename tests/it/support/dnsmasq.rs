//! The real dnsmasq as a child process, on an ephemeral port of 127.0.0.1: the oracle the
//! differential test holds splitdns's rule lines against. Killed on drop.
//!
//! CI installs it (Debian's `dnsmasq-base`, see `.ci/run`); a missing dnsmasq fails the test
//! unless `SPLITDNS_SKIP` names it (see [`prereq`]).

use super::free_port;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{DNSClass, RecordType};
use tempfile::TempDir;

use super::{client, name, prereq};

/// How long dnsmasq gets to start answering.
const START_WAIT: Duration = Duration::from_secs(10);
/// How often a port that turned out to be taken is replaced by another.
const PORT_TRIES: usize = 5;

/// Where dnsmasq is installed.
pub(crate) fn binary() -> Option<PathBuf> {
    prereq::find_program("dnsmasq")
}

/// Whether `test` must return because dnsmasq is missing and `SPLITDNS_SKIP` names it;
/// panics when it is missing otherwise (see [`prereq`]).
pub(crate) fn skip(test: &str) -> bool {
    prereq::skip(test, "dnsmasq", prereq::no_program("dnsmasq"))
}

pub(crate) struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq on `conf` (a dnsmasq.conf body) and waits until it answers.
    ///
    /// The command line fixes what the comparison needs: no resolv.conf and no hosts file
    /// (only `conf` routes), no cache and no negative cache (every query is forwarded, so
    /// each one shows where it goes), and every query logged for the failure message.
    pub(crate) async fn start(conf: &str) -> Self {
        Self::start_with(conf, Cache::Off).await
    }

    /// [`Dnsmasq::start`], but with dnsmasq's cache and negative cache on, as it runs in
    /// front of another server: what a downstream cache keeps shows in what reaches that
    /// server.
    pub(crate) async fn start_caching(conf: &str) -> Self {
        Self::start_with(conf, Cache::On).await
    }

    async fn start_with(conf: &str, cache: Cache) -> Self {
        let binary = binary().expect("dnsmasq is installed");
        for _ in 0..PORT_TRIES {
            let mut dnsmasq = Self::spawn(&binary, conf, cache);
            match dnsmasq.wait_ready().await {
                Ok(()) => return dnsmasq,
                // Another process took the port first; this attempt is dropped (killed).
                Err(log) if log.contains("Address already in use") => {}
                Err(log) => panic!("dnsmasq did not start:\n{log}\nconfig:\n{conf}"),
            }
        }
        panic!("dnsmasq found no free port in {PORT_TRIES} tries");
    }

    /// Writes `conf` to a fresh directory and starts dnsmasq on it, on a free port.
    fn spawn(binary: &Path, conf: &str, cache: Cache) -> Self {
        let dir = TempDir::new().unwrap();
        let conf_path = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let port = free_port();
        let child = command(binary, &conf_path, dir.path(), port, cache)
            .spawn()
            .expect("spawn dnsmasq");
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What dnsmasq printed (errors before its log opens) and logged so far (start-up and
    /// every query).
    pub(crate) fn log(&self) -> String {
        let read = |file: &str| std::fs::read_to_string(self.dir.path().join(file));
        let mut text = read("stderr").unwrap_or_default();
        text.push_str(&read("dnsmasq.log").unwrap_or_default());
        text
    }

    /// Waits until a CHAOS `version.bind` query (answered by dnsmasq itself) gets a reply;
    /// `Err(log)` if dnsmasq exits or stays silent.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WAIT;
        let mut probe = Message::query();
        let mut question = Query::query(name("version.bind."), RecordType::TXT);
        question.set_query_class(DNSClass::CH);
        probe.add_query(question);
        let bytes = client::encode(&probe);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(self.log());
            }
            if client::udp_maybe_reply(self.addr, &bytes).await.is_some() {
                return Ok(());
            }
        }
        Err(format!("no answer within {START_WAIT:?}\n{}", self.log()))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether dnsmasq caches answers, positive and negative (its default), or none.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cache {
    Off,
    On,
}

/// The command line: see [`Dnsmasq::start`] and [`Dnsmasq::start_caching`].
fn command(binary: &Path, conf: &Path, dir: &Path, port: u16, cache: Cache) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("--no-daemon")
        .arg(format!("--conf-file={}", conf.display()))
        .args(["--no-resolv", "--no-hosts"])
        .args(["--listen-address=127.0.0.1", "--bind-interfaces"])
        .arg(format!("--port={port}"));
    if cache == Cache::Off {
        command.args(["--cache-size=0", "--no-negcache"]);
    }
    command
        .arg("--log-queries")
        .arg(format!(
            "--log-facility={}",
            dir.join("dnsmasq.log").display()
        ))
        .arg("--pid-file=");
    // As root dnsmasq would switch to `nobody`/`dip`; it needs no privilege on a high
    // port, so it keeps running as whoever started it.
    if nix::unistd::Uid::effective().is_root() {
        command.args(["--user=root", "--group=root"]);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    command
}
