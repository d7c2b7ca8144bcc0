//! A real Docker daemon (Debian's `docker.io`) inside a network namespace a test creates, so
//! its docker0, its bridges and its iptables rules live and die with that namespace.
//!
//! dockerd is entered into the namespace with `nsenter --net` (not `ip netns exec`, which
//! remounts /sys and hides the cgroup mounts: dockerd then stops with "Devices cgroup isn't
//! mounted"), and runs under `unshare` in mount and PID namespaces of its own:
//!
//! - a tmpfs on /run, so its sockets and state (/run/docker, the managed containerd) are its
//!   own and a system containerd is never used;
//! - /etc/resolv.conf bind-mounted from a file holding `nameserver 127.0.0.1`, which is what
//!   Docker copies or forwards to for containers, so no container is ever given the host's
//!   resolver (the namespace's `blackhole default` route drops anything else);
//! - as PID 1 of its PID namespace: killing it takes containerd, the shims and every
//!   container with it.
//!
//! Its data root, exec root, API socket, pidfile and daemon.json are in a temporary
//! directory. There is no registry: the one image, [`IMAGE`], is `docker import`ed from a
//! tarball of Debian's static busybox and the static musl `lookup` client
//! ([`clients`](super::clients)).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::clients::{self, Libc};
use super::netns::{self, Netns};
use super::prereq;

/// The image every container runs: `/bin/busybox` (with `sh`, `cat` and `nslookup` linked to
/// it) and `/bin/lookup`, the musl client.
pub(crate) const IMAGE: &str = "splitdns-probe:local";
/// How long dockerd may take to answer on its socket, or to stop.
const DAEMON_WAIT: Duration = Duration::from_secs(60);
/// Where the tools come from: Debian's own packages, never a newer client in /usr/local.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
const BUSYBOX: &str = "/bin/busybox";

/// Why a real dockerd cannot run here, if it cannot (start-up failures, such as missing
/// cgroups, are only known once [`Dockerd::start`] tried).
pub(crate) fn unavailable() -> Option<String> {
    if let Some(reason) = netns::unavailable() {
        return Some(reason.to_string());
    }
    for program in ["dockerd", "nsenter", "unshare", "tar"] {
        if let Some(reason) = prereq::no_program(program) {
            return Some(reason);
        }
    }
    if client().is_none() {
        return Some("the `docker` client is not installed (docker.io)".into());
    }
    match std::fs::read(BUSYBOX) {
        Err(e) => Some(format!("{BUSYBOX}: {e} (install busybox-static)")),
        Ok(elf) if !is_static(&elf) => Some(format!(
            "{BUSYBOX} is dynamically linked and cannot run alone in an image (install busybox-static)"
        )),
        Ok(_) => None,
    }
}

/// Whether `test` must return because dockerd cannot run and `SPLITDNS_SKIP` names
/// `docker`; panics when it cannot run otherwise (see [`prereq`]).
pub(crate) fn skip(test: &str) -> bool {
    prereq::skip(test, "docker", unavailable()) || clients::skip(test, Libc::Musl)
}

/// The Docker client of the package that installed dockerd (/usr/bin/docker), or any on
/// `PATH`.
fn client() -> Option<PathBuf> {
    let debian = Path::new("/usr/bin/docker");
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    prereq::find_program("docker")
}

/// Whether a 64-bit ELF file has no program interpreter (PT_INTERP), i.e. is static.
fn is_static(elf: &[u8]) -> bool {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return false;
    }
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (entsize, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = phoff + i * entsize;
        elf.get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != 3)
    })
}

/// What one command run in a container printed (stdout and stderr) and its exit status.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) command: String,
    pub(crate) output: String,
    pub(crate) status: i32,
}

impl Probe {
    /// The output's lines, sorted (the order of addresses is the client's business).
    pub(crate) fn sorted_lines(&self) -> Vec<&str> {
        let mut lines: Vec<&str> = self.output.lines().collect();
        lines.sort_unstable();
        lines
    }
}

/// A dockerd in a namespace; killed, with everything it started, on drop.
pub(crate) struct Dockerd {
    netns: String,
    dir: TempDir,
    /// `unshare`, whose child (PID 1 of the PID namespace) is dockerd.
    child: Option<Child>,
    starts: usize,
}

impl Dockerd {
    /// Starts dockerd in `ns` with `daemon_json` as its config file, waits until it answers
    /// on its socket and imports [`IMAGE`]. `Err` says why dockerd could not start, from its
    /// log (no cgroups, no iptables, ...).
    pub(crate) fn start(ns: &Netns, daemon_json: &str) -> Result<Self, String> {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        std::fs::create_dir(dir.path().join("client")).unwrap();
        ns.ip("route add blackhole default");
        let mut dockerd = Self {
            netns: ns.name().to_string(),
            dir,
            child: None,
            starts: 0,
        };
        dockerd.launch(daemon_json)?;
        let out = dockerd.docker(&["import", image().to_str().unwrap(), IMAGE]);
        assert!(out.status.success(), "docker import: {}", text(&out));
        Ok(dockerd)
    }

    /// Stops dockerd the way `systemctl stop docker` does (SIGTERM) and waits for it, and for
    /// everything it started, to be gone. Its bridges stay, as they do on a host.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = namespace_init(&child) {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + DAEMON_WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                self.child = Some(child);
                panic!("dockerd did not stop:\n{}", self.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts dockerd again on the same data root, with `daemon_json`.
    pub(crate) fn restart(&mut self, daemon_json: &str) {
        self.stop();
        self.launch(daemon_json)
            .unwrap_or_else(|e| panic!("dockerd did not start again: {e}"));
    }

    /// Runs the Docker client against this daemon.
    pub(crate) fn docker(&self, args: &[&str]) -> Output {
        let socket = format!("unix://{}", self.path("docker.sock").display());
        Command::new(client().expect("docker client"))
            .arg("-H")
            .arg(socket)
            .args(args)
            .env("DOCKER_CONFIG", self.path("client"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("docker client")
    }

    /// `docker network create NAME`: a user-defined bridge network.
    pub(crate) fn network_create(&self, name: &str) {
        let out = self.docker(&["network", "create", name]);
        assert!(
            out.status.success(),
            "docker network create: {}",
            text(&out)
        );
    }

    /// Runs `commands` one after the other in one container of [`IMAGE`] started with
    /// `options` (`--network`, `--dns`, ...), and returns what each printed and its status.
    #[track_caller]
    pub(crate) fn run(&self, options: &[&str], commands: &[&str]) -> Vec<Probe> {
        let script: String = commands
            .iter()
            .map(|c| format!("echo '{BEGIN}'; {c} 2>&1; echo \"{END} $?\"\n"))
            .collect();
        let mut args = vec!["run", "--rm", "--pull", "never"];
        args.extend(options);
        args.extend([IMAGE, "sh", "-c", &script]);
        let out = self.docker(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "docker {}: {}\n{}",
            options.join(" "),
            text(&out),
            self.log_tail(20)
        );
        let probes: Vec<Probe> = stdout
            .split(&format!("{BEGIN}\n"))
            .skip(1)
            .zip(commands)
            .map(|(chunk, command)| {
                let (output, status) = chunk
                    .rsplit_once(END)
                    .unwrap_or_else(|| panic!("{command}: no status in {chunk:?}"));
                Probe {
                    command: command.to_string(),
                    output: output.to_string(),
                    status: status.trim().parse().unwrap(),
                }
            })
            .collect();
        assert_eq!(probes.len(), commands.len(), "container printed:\n{stdout}");
        probes
    }

    /// dockerd's log (stdout and stderr), every start of it.
    pub(crate) fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect()
    }

    fn launch(&mut self, daemon_json: &str) -> Result<(), String> {
        std::fs::write(self.path("daemon.json"), daemon_json).unwrap();
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let dir = self.dir.path();
        // Inside the new mount namespace, before exec'ing dockerd; the paths are passed in
        // the environment.
        let script = r#"mount -t tmpfs -o mode=755 splitdns-test /run &&
mount --bind "$DIR/resolv.conf" /etc/resolv.conf &&
exec "$DOCKERD" --config-file "$DIR/daemon.json" --data-root "$DIR/data" \
    --exec-root "$DIR/exec" -H "unix://$DIR/docker.sock" --pidfile "$DIR/docker.pid""#;
        let child = Command::new(prereq::find_program("nsenter").unwrap())
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg(prereq::find_program("unshare").unwrap())
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "sh",
                "-c",
                script,
            ])
            .env("PATH", PATH)
            .env("DIR", dir)
            .env("DOCKERD", prereq::find_program("dockerd").unwrap())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn nsenter");
        self.child = Some(child);
        let deadline = Instant::now() + DAEMON_WAIT;
        while !self.answers() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!(
                    "dockerd exited ({status}) before it answered: {}",
                    self.failure()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd did not answer within {DAEMON_WAIT:?}:\n{}",
                    self.log_tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Whether dockerd answers `GET /_ping` on its socket (it listens once initialised).
    fn answers(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(self.path("docker.sock")) else {
            return false;
        };
        let ping = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
        let mut reply = String::new();
        std::io::Write::write_all(&mut stream, ping).is_ok()
            && stream.read_to_string(&mut reply).is_ok()
            && reply.starts_with("HTTP/1.0 200")
    }

    /// The line of the log that says why dockerd stopped, or its last lines.
    fn failure(&self) -> String {
        let log = std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default();
        log.lines()
            .rev()
            .find(|l| l.contains("level=fatal") || l.contains("failed to start daemon"))
            .map(str::to_string)
            .unwrap_or_else(|| self.log_tail(10))
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.path(&format!("dockerd.{start}.log"))
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGKILL to PID 1 of the namespace kills every process in it; unshare returns once
        // they are gone, and with them the mounts of the data root.
        if let Some(mut child) = self.child.take()
            && child.try_wait().is_ok_and(|status| status.is_none())
        {
            match namespace_init(&child) {
                Some(pid) => drop(kill(pid, Signal::SIGKILL)),
                None => drop(child.kill()),
            }
            let _ = child.wait();
        }
    }
}

const BEGIN: &str = "@@@ begin";
const END: &str = "@@@ status";

/// The host's PID of dockerd: the one child of `unshare --fork` (found by the parent PID in
/// /proc/*/stat, which every kernel has).
fn namespace_init(unshare: &Child) -> Option<Pid> {
    let parent = unshare.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let child = std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
                let ppid: i32 = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                (ppid == parent).then_some(Pid::from_raw(pid))
            });
        if child.is_some() || Instant::now() > deadline {
            return child;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The image's tarball, built once per test run.
fn image() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(build_image)
}

fn build_image() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("splitdns-probe.tar");
    let staging = TempDir::new().unwrap();
    let bin = staging.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    std::fs::copy(clients::binary(Libc::Musl), bin.join("lookup")).unwrap();
    for applet in ["sh", "cat", "nslookup"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let partial = out.with_extension(format!("{}.partial", std::process::id()));
    let status = Command::new("tar")
        .args(["--owner=0", "--group=0", "--numeric-owner", "-C"])
        .arg(staging.path())
        .arg("-cf")
        .arg(&partial)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success(), "tar of the image");
    std::fs::rename(&partial, &out).unwrap();
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
