//! `[server] allow`: who is answered at all. A client outside it is refused over UDP and TCP,
//! its CHAOS questions too, and nothing it asks is forwarded; without `allow`, loopback is
//! allowed.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, RecordType};

use crate::support::harness::standard_plus;
use crate::support::{Splitdns, answer_ips, assert_rcode, query};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outside_allow_are_refused() {
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
allow = ["10.0.0.0/8"]
[upstream]
servers = ["{internet}"]
[[route]]
zones = ["consul"]
servers = ["{consul}"]
"#;
    let (dns, consul, internet) = Splitdns::with_fakes(config).await;

    let msg = query("www.example.", RecordType::A);
    let udp = dns.udp(&msg).await;
    let tcp = dns.tcp(&msg).await;

    for reply in [&udp, &tcp] {
        assert_rcode(reply, ResponseCode::Refused);
        assert_eq!(reply.metadata.id, msg.metadata.id);
        assert!(reply.answers.is_empty());
    }
    assert_eq!(
        internet.total() + consul.total(),
        0,
        "refused queries are not forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_inside_allow_are_served() {
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
allow = ["10.0.0.0/8", "127.0.0.0/8"]
[upstream]
servers = ["{internet}"]
"#;
    let (dns, _consul, _internet) = Splitdns::with_fakes(config).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_allowed_by_default() {
    let (dns, _consul, _internet) = Splitdns::with_fakes(&standard_plus("", "")).await;

    let reply = dns.tcp(&query("www.example.", RecordType::A)).await;

    assert_rcode(&reply, ResponseCode::NoError);
}

#[tokio::test]
async fn chaos_is_refused_outside_allow() {
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
allow = ["192.0.2.0/24"]
[upstream]
servers = ["{internet}"]
"#;
    let (dns, _consul, _internet) = Splitdns::with_fakes(config).await;
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(DNSClass::CH);
    let reply = dns.udp(&chaos).await;
    assert_rcode(&reply, ResponseCode::Refused);
    assert!(reply.answers.is_empty());
}
