//! `[server] threads`: several threads answer UDP, each on its own socket of
//! the same address (SO_REUSEPORT), and they share one cache and one view of
//! the upstreams.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;

use crate::support::client::REPLY_WAIT;
use crate::support::fixtures::{internet, load_ip};
use crate::support::{FakeUpstream, Splitdns, a, answer_ips, client, query};

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
threads = 4
[upstream]
servers = ["{internet}"]
[metrics]
listen = "127.0.0.1:0"
"#;

/// `splitdns_udp_datagrams_total` of each UDP thread, by thread.
async fn datagrams_by_thread(dns: &Splitdns) -> BTreeMap<String, f64> {
    let text = dns.scrape().await;
    let series: BTreeMap<String, f64> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(r#"splitdns_udp_datagrams_total{thread=""#)?;
            let (thread, value) = rest.split_once(r#""} "#)?;
            Some((thread.to_string(), value.parse().unwrap()))
        })
        .collect();
    assert!(
        !series.is_empty(),
        "no splitdns_udp_datagrams_total in:\n{text}"
    );
    series
}

/// Asks `n<i>.load.example.` from a socket of its own and returns the UDP thread that
/// read the query: the one thread whose `splitdns_udp_datagrams_total` went up by one
/// since `counts` (the count is taken before the query is answered, and nothing else
/// sends datagrams). `counts` is brought up to date.
async fn ask_and_see_which_thread(
    dns: &Splitdns,
    counts: &mut BTreeMap<String, f64>,
    i: u32,
) -> String {
    let name = format!("n{i}.load.example.");
    let reply = client::udp(dns.addr(), &query(&name, RecordType::A)).await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{name}"
    );
    assert_eq!(answer_ips(&reply), [load_ip(i)], "{name}");
    let after = datagrams_by_thread(dns).await;
    let moved: Vec<(&String, f64)> = after
        .iter()
        .map(|(thread, now)| (thread, now - counts.get(thread).copied().unwrap_or(0.0)))
        .filter(|(_, read)| *read != 0.0)
        .collect();
    assert!(
        matches!(moved.as_slice(), [(_, 1.0)]),
        "{name}: one query, read by {moved:?}"
    );
    let thread = moved[0].0.clone();
    *counts = after;
    thread
}

/// Unbound's threads share one message cache (unbound.conf(5), `msg-cache-slabs`:
/// "the cache is divided into slabs ... to reduce lock contention"), and a
/// client's next query may reach another thread: socket(7) SO_REUSEPORT spreads
/// datagrams over the sockets by a hash of each sender's address and port, and the
/// docs/configuration.md says `[server] threads` gives each thread its own socket. So a name fetched
/// by one thread is a hit for another: 64 names asked from 64 sockets, then again
/// from 64 other sockets, reach the upstream once each, and
/// `splitdns_udp_datagrams_total` (docs/observing.md) shows names whose second
/// query another thread read than their first. With one thread there are none, and
/// the test fails: sharing is only shown when more than one thread answers.
#[tokio::test]
async fn threads_share_one_cache() {
    let internet_fake = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(CONFIG, &[("internet", &internet_fake)]).await;
    let mut counts = datagrams_by_thread(&dns).await;
    let mut first = Vec::new();
    for i in 0..64 {
        first.push(ask_and_see_which_thread(&dns, &mut counts, i).await);
    }
    let mut crossed = Vec::new();
    for i in 0..64 {
        let second = ask_and_see_which_thread(&dns, &mut counts, i).await;
        if second != first[i as usize] {
            crossed.push(i);
        }
    }
    for i in 0..64 {
        assert_eq!(
            internet_fake.count(&format!("n{i}.load.example."), RecordType::A),
            1,
            "n{i} was fetched more than once: a thread did not see another's cache entry"
        );
    }
    let threads: BTreeSet<&String> = first.iter().collect();
    assert!(
        !crossed.is_empty(),
        "no name was asked on two threads (threads that read queries: {threads:?}): \
         nothing showed that the threads share a cache"
    );
}

/// A stand-in upstream that holds its reply to the first query until told to send it,
/// and says when that query has arrived.
struct HeldUpstream {
    addr: SocketAddr,
    arrived: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldUpstream {
    async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (arrived_tx, arrived) = oneshot::channel();
        let (release, released) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            let (len, from) = socket.recv_from(&mut buf).await.unwrap();
            let asked = Message::from_vec(&buf[..len]).unwrap();
            let _ = arrived_tx.send(());
            let _ = released.await;
            let mut reply = Message::response(asked.metadata.id, asked.metadata.op_code);
            reply.metadata.recursion_desired = asked.metadata.recursion_desired;
            reply.add_query(asked.queries[0].clone());
            let owner = asked.queries[0].name().to_ascii();
            reply.answers = vec![a(&owner, 300, &load_ip(7).to_string())];
            socket
                .send_to(&reply.to_vec().unwrap(), from)
                .await
                .unwrap();
        });
        Self {
            addr,
            arrived,
            release,
            task,
        }
    }
}

/// Whether a TCP connection to `addr` is refused: nothing listens there any more.
async fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect(addr).await {
        Ok(_) => false,
        Err(e) => e.kind() == ErrorKind::ConnectionRefused,
    }
}

/// A query being resolved when splitdns is told to stop still gets its answer
/// (systemd.kill(5): SIGTERM asks a service to finish; the server drains what is
/// in flight), whichever UDP thread it came in on. The upstream holds its answer
/// until splitdns is seen stopping (its TCP listener is closed) and still has not
/// finished, so the answer can only come through the drain.
#[tokio::test]
async fn a_miss_in_flight_at_shutdown_is_answered() {
    let mut upstream = HeldUpstream::start().await;
    // An attempt timeout far beyond the test, so the query waits for the held answer.
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nthreads = 4\n\
         [upstream]\nservers = [\"{}\"]\ntimeout = \"60s\"\n",
        upstream.addr
    );
    let dns = Splitdns::start(&config, &[]).await;
    let addr = dns.addr();
    let asked =
        tokio::spawn(
            async move { client::udp(addr, &query("n7.load.example.", RecordType::A)).await },
        );
    tokio::time::timeout(REPLY_WAIT, &mut upstream.arrived)
        .await
        .expect("the query never reached the upstream")
        .unwrap();

    let stopping = tokio::spawn(dns.stop());
    let deadline = Instant::now() + REPLY_WAIT;
    while !refused(addr).await {
        assert!(
            Instant::now() < deadline,
            "splitdns never stopped listening"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !stopping.is_finished(),
        "splitdns stopped with a query in flight"
    );
    assert!(!asked.is_finished(), "answered before the upstream was");

    upstream.release.send(()).unwrap();
    let reply = asked.await.expect("client task");
    assert_eq!(answer_ips(&reply), [load_ip(7)]);
    stopping.await.expect("stop task").expect("clean shutdown");
    upstream.task.await.unwrap();
}
