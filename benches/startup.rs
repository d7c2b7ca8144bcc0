//! From exec to the first answer: how long a restart leaves a node without DNS.
//! Each iteration starts the real binary, asks a local name until it answers,
//! and stops it.

use std::net::UdpSocket;
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

fn first_answer(config: &std::path::Path, port: u16) -> Duration {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitdns"))
        .args(["run", "--config"])
        .arg(config)
        .stderr(Stdio::null())
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
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "splitdns did not answer"
        );
    };
    child.kill().unwrap();
    child.wait().unwrap();
    elapsed
}

fn startup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("splitdns.toml");
    std::fs::write(
        &config,
        format!(
            "rules = [\"address=/gw.lan/192.0.2.1\"]\n[server]\nlisten = [\"127.0.0.1:{port}\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n"
        ),
    )
    .unwrap();
    let mut group = c.benchmark_group("startup");
    group.sample_size(20);
    group.bench_function("exec_to_first_answer", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| first_answer(&config, port)).sum())
    });
    group.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
