//! A fake Consul agent serving DNS and the HTTP API from one [`Catalog`], so what a mirror
//! learns over HTTP can be compared with what the agent's own DNS answers for the same name.
//!
//! DNS (UDP and TCP on one 127.0.0.1 port) follows Consul's v2 DNS server (see `dns.rs`);
//! HTTP (`/v1/agent/self`, `/v1/catalog/services`, `/v1/health/service/<name>`) follows
//! `agent/health_endpoint.go`, `agent/catalog_endpoint.go` and `agent/blockingquery` (see
//! `http.rs`). The test changes the catalog while both are served (register, deregister, a
//! check's status), each change waking blocked queries, and switches faults on: slow HTTP
//! answers, the HTTP listener stopped and started again on its port, a snapshot restore that
//! lowers the index, ACLs that deny or filter a service.

mod catalog;
mod dns;
mod http;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

pub(crate) use catalog::{Catalog, Health, Node, Service};
pub(crate) use http::{Acl, HttpReply, try_get};

use super::client::{self, REPLY_WAIT};

/// What a blocked query watches: every catalog change bumps `changes`; a snapshot restore
/// also bumps `restores`, which ends every blocked query at once.
#[derive(Clone, Copy, Debug, Default)]
struct Changes {
    changes: u64,
    restores: u64,
}

#[derive(Debug, Default)]
struct Faults {
    delay: Duration,
    acl: HashMap<String, Acl>,
}

/// State the DNS and HTTP tasks share with the test.
struct Shared {
    catalog: Mutex<Catalog>,
    /// Sent while the catalog lock is held, so a query that read the catalog and subscribed
    /// under the lock misses no change.
    changes: watch::Sender<Changes>,
    /// HTTP queries blocked right now.
    blocked: watch::Sender<usize>,
    faults: Mutex<Faults>,
    /// HTTP requests per path (no query string).
    requests: Mutex<HashMap<String, usize>>,
    /// Tokens the HTTP requests carried (`X-Consul-Token` or `?token=`), in order.
    tokens: Mutex<Vec<String>>,
    dns_queries: AtomicUsize,
    dns_addr: SocketAddr,
}

impl Shared {
    fn count_dns(&self) {
        self.dns_queries.fetch_add(1, Ordering::SeqCst);
    }

    fn count_request(&self, path: &str) {
        *self
            .requests
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default() += 1;
    }
}

/// A running fake agent; dropping it stops DNS and HTTP.
pub(crate) struct FakeConsul {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    http: Mutex<Option<JoinHandle<()>>>,
    _dns: JoinSet<()>,
}

impl Drop for FakeConsul {
    fn drop(&mut self) {
        if let Some(task) = self.http.lock().unwrap().take() {
            task.abort();
        }
    }
}

impl FakeConsul {
    /// Serves `catalog`: DNS on a new 127.0.0.1 port (UDP and TCP), HTTP on another.
    pub(crate) async fn start(catalog: Catalog) -> Self {
        let (udp, tcp) = bind_dns().await;
        let dns_addr = udp.local_addr().unwrap();
        let shared = Arc::new(Shared {
            catalog: Mutex::new(catalog),
            changes: watch::Sender::new(Changes::default()),
            blocked: watch::Sender::new(0),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(HashMap::new()),
            tokens: Mutex::new(Vec::new()),
            dns_queries: AtomicUsize::new(0),
            dns_addr,
        });
        let mut dns = JoinSet::new();
        dns.spawn(dns::serve_udp(udp, Arc::clone(&shared)));
        dns.spawn(dns::serve_tcp(tcp, Arc::clone(&shared)));
        let listener = http::bind("127.0.0.1:0".parse().unwrap());
        let http_addr = listener.local_addr().unwrap();
        let task = tokio::spawn(http::serve(listener, Arc::clone(&shared)));
        Self {
            shared,
            http_addr,
            http: Mutex::new(Some(task)),
            _dns: dns,
        }
    }

    pub(crate) fn dns_addr(&self) -> SocketAddr {
        self.shared.dns_addr
    }

    pub(crate) fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Reads the catalog.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        f(&self.shared.catalog.lock().unwrap())
    }

    /// Changes the catalog and wakes every blocked query to look again.
    pub(crate) fn change<R>(&self, f: impl FnOnce(&mut Catalog) -> R) -> R {
        let mut catalog = self.shared.catalog.lock().unwrap();
        let out = f(&mut catalog);
        self.shared.changes.send_modify(|c| c.changes += 1);
        out
    }

    /// Registers (or replaces) an instance; returns the new index.
    pub(crate) fn register(&self, service: Service) -> u64 {
        self.change(|c| c.register(service))
    }

    pub(crate) fn deregister(&self, node: &str, id: &str) -> u64 {
        self.change(|c| c.deregister(node, id))
    }

    pub(crate) fn set_service_health(&self, node: &str, id: &str, status: Health) -> u64 {
        self.change(|c| c.set_service_health(node, id, status))
    }

    pub(crate) fn set_node_health(&self, node: &str, status: Health) -> u64 {
        self.change(|c| c.set_node_health(node, status))
    }

    /// The raft index now.
    pub(crate) fn index(&self) -> u64 {
        self.read(Catalog::index)
    }

    /// The index `/v1/health/service/<name>` reports for the agent's datacenter.
    pub(crate) fn service_index(&self, name: &str) -> u64 {
        self.read(|c| c.service_index(&c.config.datacenter.clone(), name))
    }

    /// A snapshot restore to `index` (lower than now: the index goes backwards). Blocked
    /// queries return at once with the lowered index, as after Consul abandons its state store.
    pub(crate) fn restore_index(&self, index: u64) {
        let mut catalog = self.shared.catalog.lock().unwrap();
        catalog.restore_index(index);
        self.shared.changes.send_modify(|c| {
            c.changes += 1;
            c.restores += 1;
        });
    }

    /// Every HTTP answer waits `delay` first (zero: answer at once).
    pub(crate) fn set_http_delay(&self, delay: Duration) {
        self.shared.faults.lock().unwrap().delay = delay;
    }

    /// What the ACL system does with `service` (`None`: allowed).
    pub(crate) fn set_acl(&self, service: &str, acl: Option<Acl>) {
        let mut faults = self.shared.faults.lock().unwrap();
        match acl {
            Some(acl) => faults.acl.insert(service.to_string(), acl),
            None => faults.acl.remove(service),
        };
    }

    /// Closes the HTTP port (and every open connection, blocked queries included).
    pub(crate) async fn stop_http(&self) {
        let task = self.http.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens on the same HTTP port again (after [`Self::stop_http`]).
    pub(crate) fn start_http(&self) {
        let mut slot = self.http.lock().unwrap();
        assert!(slot.is_none(), "HTTP is already being served");
        let listener: TcpListener = http::bind(self.http_addr);
        *slot = Some(tokio::spawn(http::serve(
            listener,
            Arc::clone(&self.shared),
        )));
    }

    /// HTTP requests for `path` (e.g. `/v1/health/service/web`) so far, whatever the answer.
    pub(crate) fn requests(&self, path: &str) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The tokens HTTP requests carried, in order.
    pub(crate) fn tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().unwrap().clone()
    }

    /// DNS queries received so far, over UDP and TCP.
    pub(crate) fn dns_queries(&self) -> usize {
        self.shared.dns_queries.load(Ordering::SeqCst)
    }

    /// HTTP queries blocked right now.
    pub(crate) fn blocked(&self) -> usize {
        *self.shared.blocked.borrow()
    }

    /// Waits until at least `n` HTTP queries are blocked; fails after [`REPLY_WAIT`].
    pub(crate) async fn wait_blocked(&self, n: usize) {
        let mut rx = self.shared.blocked.subscribe();
        timeout(REPLY_WAIT, rx.wait_for(|&b| b >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} blocked queries not seen within {REPLY_WAIT:?}"))
            .unwrap();
    }

    /// A plain query (RD=1, no EDNS) to the fake's DNS over UDP.
    pub(crate) async fn ask(&self, qname: &str, qtype: RecordType) -> Message {
        client::udp(self.dns_addr(), &client::query(qname, qtype)).await
    }

    /// GETs `path` from the fake's HTTP API.
    pub(crate) async fn get(&self, path: &str) -> HttpReply {
        http::get(self.http_addr, path).await
    }
}

/// UDP and TCP on one free 127.0.0.1 port.
async fn bind_dns() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}
