//! `splitdns run` as a child process, the way systemd runs it: a NOTIFY_SOCKET to learn when it
//! is ready (and which addresses it answers on, from its STATUS line), stderr kept in a file,
//! signals sent by pid. Optionally inside a network namespace. Killed on drop.

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::netns::Netns;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_splitdns");
/// How long a test waits for a notification it expects.
const NOTIFY_WAIT: Duration = Duration::from_secs(10);

/// What `JOURNAL_STREAM` says about splitdns's stderr.
pub(crate) enum Journal {
    Unset,
    /// stderr is the journal.
    Stderr,
    /// The journal is some other stream (stderr was redirected since).
    Elsewhere,
}

pub(crate) struct Daemon {
    child: Child,
    notify: UnixDatagram,
    dir: TempDir,
    config: PathBuf,
}

impl Daemon {
    /// Starts `splitdns run` on `config` (written to a file in a fresh directory), in `netns` if
    /// given. The directory and files are readable by everyone, so a daemon that switched to
    /// another user can still read its config and reach the notify socket.
    pub(crate) fn start(config: &str, netns: Option<&Netns>) -> Self {
        Self::spawn(config, Journal::Unset, |path| run(BIN, netns, path))
    }

    /// As [`Daemon::start`], with another splitdns binary (the one a package installed).
    pub(crate) fn start_binary(bin: &str, config: &str) -> Self {
        Self::spawn(config, Journal::Unset, |path| run(bin, None, path))
    }

    /// As [`Daemon::start`], with `JOURNAL_STREAM` set (systemd.exec(5)): naming the device and
    /// inode of stderr, as when systemd connected stderr to the journal, or another stream.
    pub(crate) fn start_with_journal(config: &str, journal: Journal) -> Self {
        Self::spawn(config, journal, |path| run(BIN, None, path))
    }

    /// `sh -c SCRIPT` with `envs`, a script that ends by exec'ing `splitdns run` on a config of
    /// its own (as the Nomad job starts it), with the notify socket and stderr of
    /// [`Daemon::start`].
    pub(crate) fn start_script(script: &str, envs: &[(&str, &Path)]) -> Self {
        Self::spawn("", Journal::Unset, |_| {
            let mut command = Command::new("sh");
            command.arg("-c").arg(script);
            for (key, value) in envs {
                command.env(key, value);
            }
            command
        })
    }

    fn spawn(config: &str, journal: Journal, command: impl FnOnce(&Path) -> Command) -> Self {
        let dir = TempDir::new().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket_path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o777)).unwrap();
        notify.set_read_timeout(Some(NOTIFY_WAIT)).unwrap();
        let config_path = dir.path().join("splitdns.toml");
        write_readable(&config_path, config);
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let meta = stderr.metadata().unwrap();
        let journal_stream = format!("{}:{}", meta.dev(), meta.ino());
        let mut command = command(&config_path);
        match journal {
            Journal::Unset => command.env_remove("JOURNAL_STREAM"),
            Journal::Stderr => command.env("JOURNAL_STREAM", journal_stream),
            Journal::Elsewhere => command.env("JOURNAL_STREAM", "1:1"),
        };
        let child = command
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn splitdns run");
        Self {
            child,
            notify,
            dir,
            config: config_path,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next notification containing `needle` (earlier ones are skipped).
    #[track_caller]
    pub(crate) fn wait_notify(&self, needle: &str) -> String {
        let deadline = Instant::now() + NOTIFY_WAIT;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let Ok(len) = self.notify.recv(&mut buf) else {
                break;
            };
            let message = String::from_utf8_lossy(&buf[..len]).into_owned();
            if message.contains(needle) {
                return message;
            }
        }
        panic!("no {needle:?} notification; stderr:\n{}", self.stderr());
    }

    /// Waits for READY=1 and returns the addresses its STATUS line lists.
    #[track_caller]
    pub(crate) fn wait_ready(&self) -> Vec<SocketAddr> {
        let message = self.wait_notify("READY=1");
        let status = message
            .lines()
            .find_map(|l| l.strip_prefix("STATUS=answering on "))
            .unwrap_or_else(|| panic!("no address list in {message:?}"));
        status
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect()
    }

    /// Rewrites the config file in place (a reload reads it again).
    pub(crate) fn rewrite_config(&self, text: &str) {
        write_readable(&self.config, text);
    }

    pub(crate) fn config_path(&self) -> &Path {
        &self.config
    }

    /// Sends SIGHUP and waits for the reload to finish (RELOADING=1, then READY=1); returns the
    /// addresses answered on afterwards.
    #[track_caller]
    pub(crate) fn reload(&self) -> Vec<SocketAddr> {
        self.sighup();
        self.wait_reloaded()
    }

    /// Sends SIGHUP and returns at once.
    pub(crate) fn sighup(&self) {
        kill(Pid::from_raw(self.pid() as i32), Signal::SIGHUP).unwrap();
    }

    /// Waits for a reload to finish (RELOADING=1, then READY=1); returns the addresses
    /// answered on afterwards.
    #[track_caller]
    pub(crate) fn wait_reloaded(&self) -> Vec<SocketAddr> {
        let reloading = self.wait_notify("RELOADING=1");
        assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
        self.wait_ready()
    }

    /// The temporary directory the config file is in (removed with the daemon).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `splitdns run --config PATH`, in `netns` if given.
fn run(bin: &str, netns: Option<&Netns>, config: &Path) -> Command {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns.name(), bin]);
            c
        }
        None => Command::new(bin),
    };
    command.arg("run").arg("--config").arg(config);
    command
}

fn write_readable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}
