//! Query loops through an upstream: a Consul agent whose recursor is splitdns sends our own
//! query back to us. splitdns must see it for what it is and fail that one query at once, while
//! the agent keeps answering everything else.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::agent::RecursingAgent;
use crate::support::fixtures::{consul, internet};
use crate::support::harness::{parse, render};
use crate::support::{FakeUpstream, Splitdns, answer_ips, assert_rcode};

/// The upstream timeout: long enough that a loop waited out cannot pass for one caught at once.
const TIMEOUT: Duration = Duration::from_secs(5);

/// splitdns with the default route to the internet fake and `consul` to `AGENT` (replaced by
/// the caller), both with [`TIMEOUT`].
fn template() -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["{{internet}}"]
timeout = "{secs}s"

[[route]]
zones = ["consul"]
servers = ["AGENT"]
timeout = "{secs}s"
"#,
        secs = TIMEOUT.as_secs()
    )
}

/// A loop waited out is answered the whole [`TIMEOUT`] after it was asked at the earliest (a
/// timer never fires early), so any bound under it tells the two apart. A loop caught takes a
/// few datagrams between local sockets, milliseconds on an idle machine; 1 s short of the
/// timeout leaves it 4 s on a loaded 2-core one.
const AT_ONCE: Duration = TIMEOUT.saturating_sub(Duration::from_secs(1));

#[tokio::test]
async fn consul_recursor_pointing_back_is_answered_servfail_at_once() {
    let catalog = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let agent = RecursingAgent::start(catalog.addr()).await;
    let text =
        render(&template(), &[("internet", &internet)]).replace("AGENT", &agent.addr().to_string());
    let splitdns = Splitdns::start_config(parse(&text)).await;
    agent.set_recursor(splitdns.addr());

    for (i, qname) in ["consul.", "service.consul."].into_iter().enumerate() {
        let started = Instant::now();
        let reply = splitdns.ask(qname, RecordType::DS).await;
        assert_rcode(&reply, ResponseCode::ServFail);
        assert!(
            started.elapsed() < AT_ONCE,
            "{qname} DS took {:?}: the loop was waited out",
            started.elapsed()
        );
        assert_eq!(
            agent.recursed(),
            i + 1,
            "one trip around the loop, no storm"
        );
    }
}

#[tokio::test]
async fn the_looping_agent_still_answers_its_own_names() {
    let catalog = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let agent = RecursingAgent::start(catalog.addr()).await;
    let text =
        render(&template(), &[("internet", &internet)]).replace("AGENT", &agent.addr().to_string());
    let splitdns = Splitdns::start_config(parse(&text)).await;
    agent.set_recursor(splitdns.addr());

    let (looped, web) = tokio::join!(
        splitdns.ask("consul.", RecordType::DS),
        splitdns.ask("web.service.consul.", RecordType::A),
    );
    assert_rcode(&looped, ResponseCode::ServFail);
    assert_rcode(&web, ResponseCode::NoError);
    assert_eq!(answer_ips(&web).len(), 2, "{web}");
    let again = splitdns.ask("web.service.consul.", RecordType::A).await;
    assert_rcode(&again, ResponseCode::NoError);
    assert_eq!(catalog.count("web.service.consul.", RecordType::A), 2);
}

#[tokio::test]
async fn a_client_asking_what_is_in_flight_is_not_a_loop() {
    // The same question from a client while splitdns waits for the upstream: it shares the
    // upstream's answer (single-flight) rather than being taken for our own query coming back.
    let catalog = FakeUpstream::start(consul()).await;
    catalog.set_mode(crate::support::Mode::Slow(Duration::from_millis(300)));
    let internet = FakeUpstream::start(internet()).await;
    let text = render(&template(), &[("internet", &internet)])
        .replace("AGENT", &catalog.addr().to_string());
    let splitdns = Splitdns::start_config(parse(&text)).await;
    let (first, second) = tokio::join!(
        splitdns.ask("web.service.consul.", RecordType::A),
        splitdns.ask("web.service.consul.", RecordType::A),
    );
    assert_rcode(&first, ResponseCode::NoError);
    assert_rcode(&second, ResponseCode::NoError);
    assert_eq!(catalog.count("web.service.consul.", RecordType::A), 1);
}
