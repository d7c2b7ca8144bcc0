//! `splitdns run` as a child process whose log the test reads line by line: for what only
//! the real binary does (its logging, signals), where the in-process harness cannot see.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::free_port;

/// How long a line the test waits for may take to come.
const LINE_WAIT: Duration = Duration::from_secs(10);

/// A running `splitdns run`, its stderr read on a thread; killed on drop.
pub(crate) struct Logged {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address on 127.0.0.1 free for UDP and TCP right now.
pub(crate) fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

impl Logged {
    /// Starts `splitdns run` with `args` on the config `config` writes for a free listen
    /// address, in `dir`, and returns once it logs that it listens, with the address and
    /// what `config` returned beside the text. A port taken before splitdns bound it
    /// ("cannot listen") is tried again on another, three times in all.
    pub(crate) fn start<T>(
        dir: &Path,
        args: &[&str],
        config: impl Fn(SocketAddr) -> (String, T),
    ) -> (Self, SocketAddr, T) {
        let mut seen = Vec::new();
        for attempt in 0..3 {
            let addr = free_addr();
            let (text, extra) = config(addr);
            let path = dir.join(format!("run-{attempt}.toml"));
            std::fs::write(&path, text).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_splitdns"))
                .args(["run", "--config", path.to_str().unwrap()])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn splitdns run");
            let stderr = child.stderr.take().unwrap();
            let (tx, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            let running = Self { child, lines };
            while let Ok(line) = running.lines.recv_timeout(LINE_WAIT) {
                let (listening, taken) =
                    (line.contains("listening"), line.contains("cannot listen"));
                seen.push(line);
                if listening {
                    return (running, addr, extra);
                }
                if taken {
                    break;
                }
            }
        }
        panic!("splitdns run never started:\n{}", seen.join("\n"));
    }

    /// Lines up to and including the first that contains `needle`.
    #[track_caller]
    pub(crate) fn until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + LINE_WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; got:\n{}", seen.join("\n"));
    }

    /// Sends signal `name` (`TERM`, `USR1`, ...).
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Stops it (SIGTERM) and returns the rest of its log.
    pub(crate) fn finish(mut self) -> Vec<String> {
        self.signal("TERM");
        let _ = self.child.wait();
        self.lines.try_iter().collect()
    }
}
