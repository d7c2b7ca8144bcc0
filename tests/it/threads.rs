//! `[server] threads`: several threads answer UDP, each on its own socket of
//! the same address (SO_REUSEPORT), and they share one cache and one view of
//! the upstreams.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::fixtures::{internet, load_ip};
use crate::support::upstream::Mode;
use crate::support::{FakeUpstream, Splitdns, answer_ips, client, query};

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
threads = 4
[upstream]
servers = ["{internet}"]
"#;

/// Unbound's threads share one message cache (unbound.conf(5), `msg-cache-slabs`:
/// "the cache is divided into slabs ... to reduce lock contention"), and a
/// client's next query may reach another thread: socket(7) SO_REUSEPORT hashes
/// each sender's address and port to one of the sockets. So a name fetched once
/// is a hit whichever thread the next asker lands on: 64 names asked from 64
/// sockets, then again from 64 other sockets, reach the upstream once each.
#[tokio::test]
async fn threads_share_one_cache() {
    let internet_fake = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(CONFIG, &[("internet", &internet_fake)]).await;
    for round in 0..2 {
        for i in 0..64 {
            let reply = client::udp(
                dns.addr(),
                &query(&format!("n{i}.load.example."), RecordType::A),
            )
            .await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "round {round}, n{i}"
            );
            assert_eq!(answer_ips(&reply), [load_ip(i)], "round {round}, n{i}");
        }
    }
    for i in 0..64 {
        assert_eq!(
            internet_fake.count(&format!("n{i}.load.example."), RecordType::A),
            1,
            "n{i} was fetched more than once: a thread did not see another's cache entry"
        );
    }
}

/// A query being resolved when splitdns is told to stop still gets its answer
/// (systemd.kill(5): SIGTERM asks a service to finish; the server drains what is
/// in flight), whichever UDP thread it came in on.
#[tokio::test]
async fn a_miss_in_flight_at_shutdown_is_answered() {
    let internet_fake = FakeUpstream::start(internet()).await;
    internet_fake.set_mode(Mode::Slow(Duration::from_millis(300)));
    let dns = Splitdns::start(CONFIG, &[("internet", &internet_fake)]).await;
    let addr = dns.addr();
    let asked =
        tokio::spawn(
            async move { client::udp(addr, &query("n7.load.example.", RecordType::A)).await },
        );
    while internet_fake.total() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    dns.stop().await.expect("clean shutdown");
    let reply = asked.await.expect("client task");
    assert_eq!(answer_ips(&reply), [load_ip(7)]);
}
