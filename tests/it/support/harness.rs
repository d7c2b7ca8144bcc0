//! Runs splitdns in-process from a TOML template, the same way `splitdns run` does:
//! parse, bind (port 0), run with a shutdown future the test owns.

use std::net::SocketAddr;
use std::path::Path;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use splitdns::Server;
use splitdns::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::upstream::FakeUpstream;
use super::{client, fixtures};

/// A config with the Consul route and the default upstream; short timeouts.
pub(crate) const STANDARD: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["{internet}"]
timeout = "500ms"

[[route]]
zones = ["consul"]
servers = ["{consul}"]
timeout = "500ms"
"#;

/// [`STANDARD`] with `route` added to the Consul route's table and `tables`
/// after it (e.g. `min_ttl = 5` and a `[cache]` table).
pub(crate) fn standard_plus(route: &str, tables: &str) -> String {
    format!("{STANDARD}{route}\n{tables}\n")
}

/// A running splitdns; dropping it stops the server.
pub(crate) struct Splitdns {
    addrs: Vec<SocketAddr>,
    metrics: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), splitdns::StartError>>>,
}

/// Replaces `{NAME}` with `127.0.0.1:PORT` and `{NAME#}` with `127.0.0.1#PORT` (dnsmasq style).
pub(crate) fn render(template: &str, upstreams: &[(&str, &FakeUpstream)]) -> String {
    let mut text = template.to_string();
    for (key, upstream) in upstreams {
        let addr = upstream.addr();
        text = text.replace(
            &format!("{{{key}#}}"),
            &format!("{}#{}", addr.ip(), addr.port()),
        );
        text = text.replace(&format!("{{{key}}}"), &addr.to_string());
    }
    assert!(!has_placeholder(&text), "unfilled placeholder in:\n{text}");
    text
}

/// `{word}` or `{word#}`: TOML itself only uses braces for inline tables, which have spaces or `=`.
fn has_placeholder(text: &str) -> bool {
    text.split('{').skip(1).any(|rest| {
        rest.split_once('}').is_some_and(|(inner, _)| {
            let inner = inner.strip_suffix('#').unwrap_or(inner);
            !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

#[track_caller]
pub(crate) fn parse(text: &str) -> Config {
    Config::from_toml(text, Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("config rejected: {e}\n{text}"))
}

impl Splitdns {
    /// Starts splitdns with `template` rendered against `upstreams` (see [`render`]).
    pub(crate) async fn start(template: &str, upstreams: &[(&str, &FakeUpstream)]) -> Self {
        Self::start_config(parse(&render(template, upstreams))).await
    }

    /// [`STANDARD`]: `consul` → the Consul fake, everything else → the internet fake.
    pub(crate) async fn standard(consul: &FakeUpstream, internet: &FakeUpstream) -> Self {
        Self::start(STANDARD, &[("consul", consul), ("internet", internet)]).await
    }

    /// Starts the Consul-like and internet-like fakes, then splitdns on
    /// `template` rendered against them (`{consul}`, `{internet}`).
    pub(crate) async fn with_fakes(template: &str) -> (Self, FakeUpstream, FakeUpstream) {
        let consul = FakeUpstream::start(fixtures::consul()).await;
        let internet = FakeUpstream::start(fixtures::internet()).await;
        let dns = Self::start(template, &[("consul", &consul), ("internet", &internet)]).await;
        (dns, consul, internet)
    }

    pub(crate) async fn start_config(config: Config) -> Self {
        let server = Server::bind(config)
            .await
            .unwrap_or_else(|e| panic!("bind failed: {e}"));
        let addrs = server.local_addrs();
        let metrics = server.metrics_addr();
        assert!(!addrs.is_empty(), "server reports no listening address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Self {
            addrs,
            metrics,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The first listener's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The `[metrics]` endpoint; panics when the config has none.
    #[track_caller]
    pub(crate) fn metrics_addr(&self) -> SocketAddr {
        self.metrics.expect("the config has no [metrics] table")
    }

    /// The `[metrics]` endpoint's `/metrics` text, asserting it answers 200.
    pub(crate) async fn scrape(&self) -> String {
        super::http::scrape(self.metrics_addr()).await
    }

    pub(crate) fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub(crate) async fn udp(&self, msg: &Message) -> Message {
        client::udp(self.addr(), msg).await
    }

    pub(crate) async fn tcp(&self, msg: &Message) -> Message {
        client::tcp(self.addr(), msg).await
    }

    /// A plain query (RD=1, no EDNS) over UDP.
    pub(crate) async fn ask(&self, qname: &str, qtype: RecordType) -> Message {
        self.udp(&client::query(qname, qtype)).await
    }

    /// Stops the server and waits for `run` to return.
    pub(crate) async fn stop(mut self) -> Result<(), splitdns::StartError> {
        let _ = self.stop.take().unwrap().send(());
        self.task
            .take()
            .unwrap()
            .await
            .expect("server task panicked")
    }
}

impl Drop for Splitdns {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
