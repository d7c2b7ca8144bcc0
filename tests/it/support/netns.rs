//! Network namespaces a test creates, and always deletes (with everything in them) when the
//! guard drops. They need root: [`unavailable`] says why they cannot run.

use std::fs::File;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sched::{CloneFlags, setns};

use super::prereq;

/// Why namespace tests cannot run here, if they cannot.
pub(crate) fn unavailable() -> Option<&'static str> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("needs root to create network namespaces");
    }
    let ip = Command::new("ip").args(["netns", "list"]).output();
    if !ip.is_ok_and(|o| o.status.success()) {
        return Some("`ip netns` is not available (install iproute2)");
    }
    None
}

/// Whether `test` must return because namespaces are unavailable and `SPLITDNS_SKIP` names
/// `netns`; panics when they are unavailable otherwise (see [`prereq`]).
pub(crate) fn skip(test: &str) -> bool {
    prereq::skip(test, "netns", unavailable())
}

/// A network namespace with its loopback up; deleted on drop.
pub(crate) struct Netns {
    name: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    /// A namespace named after `tag`, this process and a counter, so runs never collide.
    pub(crate) fn new(tag: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("sdt-{tag}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip("link set lo up");
        ns
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS` (whitespace-separated) and panics if it fails.
    #[track_caller]
    pub(crate) fn ip(&self, args: &str) {
        let mut all = vec!["-n", &self.name];
        all.extend(args.split_whitespace());
        run("ip", &all);
    }

    /// Runs `f` on a thread that has entered the namespace: sockets it opens live there.
    pub(crate) fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                    setns(ns, CloneFlags::CLONE_NEWNET).expect("setns");
                    f()
                })
                .join()
                .expect("thread in namespace")
        })
    }

    /// A UDP socket bound to `addr` inside the namespace, ready for tokio.
    pub(crate) fn udp(&self, addr: SocketAddr) -> tokio::net::UdpSocket {
        let socket = self.enter(|| std::net::UdpSocket::bind(addr).expect("bind in namespace"));
        socket.set_nonblocking(true).unwrap();
        tokio::net::UdpSocket::from_std(socket).unwrap()
    }

    /// A UDP socket and a TCP listener on the same address inside the namespace.
    pub(crate) fn udp_tcp(&self, addr: SocketAddr) -> (std::net::UdpSocket, std::net::TcpListener) {
        self.enter(|| {
            let udp = std::net::UdpSocket::bind(addr).expect("bind UDP in namespace");
            let tcp = std::net::TcpListener::bind(udp.local_addr().unwrap())
                .expect("bind TCP in namespace");
            (udp, tcp)
        })
    }
}

impl Netns {
    /// Gives the namespace a resolv.conf of its own: `ip netns exec` mounts
    /// `/etc/netns/NAME/resolv.conf` over `/etc/resolv.conf` for what it runs (ip-netns(8)),
    /// so clients there never see the host's resolver. Removed with the namespace.
    pub(crate) fn resolv_conf(&self, text: &str) {
        let dir = self.etc_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        std::fs::write(dir.join("resolv.conf"), text).unwrap();
    }

    /// Runs `program ARGS` inside the namespace with `ip netns exec`, which blocks the
    /// calling thread until it exits (call it from a multi-threaded runtime).
    pub(crate) fn exec(
        &self,
        program: &str,
        args: &[&str],
    ) -> std::io::Result<std::process::Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
    }

    fn etc_dir(&self) -> std::path::PathBuf {
        std::path::Path::new("/etc/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.etc_dir());
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[track_caller]
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
