//! From exec to the first answer: how long a restart leaves a node without DNS.
//! Each iteration starts the real binary, asks a local name until it answers,
//! and stops it.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// A query for `gw.lan A` with ID 0x5353.
const QUERY: &[u8] =
    b"\x53\x53\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02gw\x03lan\x00\x00\x01\x00\x01";

fn free_port() -> u16 {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// A config answering `gw.lan` locally on `port`, in `dir`.
fn config_on(dir: &Path, port: u16) -> PathBuf {
    let config = dir.join(format!("splitdns-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "rules = [\"address=/gw.lan/192.0.2.1\"]\n[server]\nlisten = [\"127.0.0.1:{port}\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n"
        ),
    )
    .unwrap();
    config
}

/// Exec to first answer on a port picked just before. The port was free when
/// picked but another program may take it before splitdns binds it (the
/// kernel hands out the same ephemeral range to everyone): then splitdns exits
/// at once, and the run is repeated on another port rather than counted.
fn first_answer(dir: &Path) -> Duration {
    for _ in 0..5 {
        let port = free_port();
        if let Some(elapsed) = exec_until_answer(&config_on(dir, port), port) {
            return elapsed;
        }
    }
    panic!("splitdns could not bind a free port in 5 tries");
}

/// `None` when splitdns exited before answering (its port was taken).
fn exec_until_answer(config: &Path, port: u16) -> Option<Duration> {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitdns"))
        .args(["run", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0; 512];
    let elapsed = loop {
        let _ = client.send_to(QUERY, ("127.0.0.1", port));
        if let Ok(n) = client.recv(&mut buf)
            && n > 2
            && buf[..2] == QUERY[..2]
        {
            break start.elapsed();
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if start.elapsed() > Duration::from_secs(5) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "splitdns did not answer within 5 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    Some(elapsed)
}

fn startup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("startup");
    group.sample_size(20);
    group.bench_function("exec_to_first_answer", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| first_answer(dir.path())).sum())
    });
    group.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
