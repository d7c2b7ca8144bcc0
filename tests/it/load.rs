//! Many clients at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::support::client;
use crate::support::fixtures::{internet, load_ip};
use crate::support::{FakeUpstream, Splitdns, answer_ips, query};

const QUERIES: u32 = 1000;
const CLIENTS: u32 = 8;

/// Like a stub resolver, a client resends a query that got no answer in time; a UDP server
/// may drop packets under a burst, but every query must end with the right answer.
const RESEND_AFTER: Duration = Duration::from_millis(1500);
const ATTEMPTS: usize = 3;

/// The servers of the default route in the config below.
const SERVERS: usize = 2;
/// docs/behaviour.md: a server out of rotation is probed "at most every 5 s".
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Every name is asked by one client and answered by both upstreams, so how many
/// queries reach them follows from the rules of docs/behaviour.md, whatever the load:
/// - Single flight and the cache: a name is fetched when a client's query for it finds
///   no answer cached and no fetch in flight. The answers have a TTL of 300 s, so after
///   one fetch succeeds, none follows: exactly one attempt per name succeeds.
/// - Failover: a fetch asks the next server only after an attempt failed (timeout,
///   SERVFAIL, REFUSED, unusable reply), and no server twice. So every upstream query
///   beyond the one good answer per name is a failed attempt, which splitdns counts in
///   `splitdns_upstream_failures_total`, or a probe of a server out of rotation: at most
///   one per server per 5 s. The answers are small, so none is truncated and retried
///   over TCP.
///
/// Hence `QUERIES ≤ forwarded ≤ QUERIES + failures + probes`; and, without trusting the
/// failure count, a fetch is started by at most each query a client sent (`QUERIES` plus
/// its resends) and asks each server at most once, so `forwarded ≤ SERVERS × (QUERIES +
/// resends) + probes`. Resending a query to the upstream while it is still in flight, or
/// asking a server that answered again, breaks the bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_distinct_queries_are_all_answered() {
    let started = Instant::now();
    // Two upstreams with the same data, as in any real deployment.
    let first = FakeUpstream::start(internet()).await;
    let second = FakeUpstream::start(internet()).await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{first}", "{second}"]
timeout = "1s"
[metrics]
listen = "127.0.0.1:0"
"#;
    let dns = Splitdns::start(config, &[("first", &first), ("second", &second)]).await;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let names: Vec<u32> = (0..QUERIES).filter(|i| i % CLIENTS == c).collect();
            tokio::spawn(run_client(dns.addr(), names))
        })
        .collect();
    let mut resent = 0;
    for task in clients {
        resent += task.await.unwrap();
    }

    let forwarded = first.total() + second.total();
    let failures = failed_attempts(&dns.scrape().await);
    let probes = SERVERS * (1 + (started.elapsed().as_secs() / PROBE_EVERY.as_secs()) as usize);
    let queries = QUERIES as usize;
    let counts = format!(
        "{forwarded} upstream queries for {QUERIES} names, {failures} failed attempts, \
         {resent} client resends, up to {probes} probes"
    );
    assert!(forwarded >= queries, "{counts}");
    assert!(forwarded <= queries + failures + probes, "{counts}");
    assert!(
        forwarded <= SERVERS * (queries + resent) + probes,
        "{counts}"
    );
    eprintln!("load: {counts}");
}

/// Upstream attempts that failed, of every kind, at every server of the default route.
fn failed_attempts(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|line| line.starts_with(r#"splitdns_upstream_failures_total{route=".","#))
        .map(|line| {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap() as usize
        })
        .sum()
}

/// Sends a query for `n<i>.load.example.` per `i` from one socket, all at once; checks every
/// answer; returns how many queries had to be resent.
async fn run_client(server: SocketAddr, names: Vec<u32>) -> usize {
    let sock = Arc::new(client::udp_socket().await);
    let mut pending: HashMap<u16, (u32, Message)> = names
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let mut msg = query(&format!("n{i}.load.example."), RecordType::A);
            msg.metadata.id = k as u16;
            (k as u16, (i, msg))
        })
        .collect();
    let mut resent = 0;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            resent += pending.len();
        }
        for (_, msg) in pending.values() {
            sock.send_to(&client::encode(msg), server).await.unwrap();
        }
        receive_answers(&sock, &mut pending).await;
        if pending.is_empty() {
            return resent;
        }
    }
    let missing: Vec<u32> = pending.values().map(|(i, _)| *i).collect();
    panic!("no answer after {ATTEMPTS} attempts for {missing:?}");
}

/// Reads replies until every pending query is answered or [`RESEND_AFTER`] passes quietly.
async fn receive_answers(sock: &UdpSocket, pending: &mut HashMap<u16, (u32, Message)>) {
    let mut buf = vec![0u8; 4096];
    while !pending.is_empty() {
        let Ok(received) = tokio::time::timeout(RESEND_AFTER, sock.recv_from(&mut buf)).await
        else {
            return;
        };
        let (len, _) = received.unwrap();
        let reply = client::decode(&buf[..len]);
        let Some((i, msg)) = pending.remove(&reply.metadata.id) else {
            continue; // a late duplicate of something already answered
        };
        assert_eq!(reply.queries, msg.queries, "answer to the wrong question");
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "n{i}: {reply}"
        );
        assert_eq!(answer_ips(&reply), [load_ip(i)], "n{i}: {reply}");
    }
}
