//! A Consul agent with `recursors` set: what its own catalog (a `FakeUpstream` with the Consul
//! zone) answers, it answers; DS queries it passes on, unchanged and with the same ID, to its
//! recursor, as Consul's recursor does, and relays the reply. Pointing the recursor at splitdns
//! makes the loop an operator can build by accident.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::client::REPLY_WAIT;

pub(crate) struct RecursingAgent {
    addr: SocketAddr,
    recursor: Arc<OnceLock<SocketAddr>>,
    recursed: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for RecursingAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RecursingAgent {
    /// Answers from `catalog`; recurses once [`Self::set_recursor`] has been called.
    pub(crate) async fn start(catalog: SocketAddr) -> Self {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let recursor = Arc::new(OnceLock::new());
        let recursed = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(
            socket,
            catalog,
            Arc::clone(&recursor),
            Arc::clone(&recursed),
        ));
        Self {
            addr,
            recursor,
            recursed,
            task,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn set_recursor(&self, recursor: SocketAddr) {
        self.recursor.set(recursor).unwrap();
    }

    /// Queries passed on to the recursor so far.
    pub(crate) fn recursed(&self) -> usize {
        self.recursed.load(Ordering::SeqCst)
    }
}

async fn serve(
    socket: Arc<UdpSocket>,
    catalog: SocketAddr,
    recursor: Arc<OnceLock<SocketAddr>>,
    recursed: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let query = buf[..len].to_vec();
        let Ok(msg) = Message::from_vec(&query) else {
            continue;
        };
        let is_ds = msg
            .queries
            .first()
            .is_some_and(|q| q.query_type() == RecordType::DS);
        let target = match recursor.get() {
            Some(&recursor) if is_ds => {
                recursed.fetch_add(1, Ordering::SeqCst);
                recursor
            }
            _ => catalog,
        };
        let socket = Arc::clone(&socket);
        tokio::spawn(async move {
            if let Some(reply) = exchange(target, &query).await {
                let _ = socket.send_to(&reply, peer).await;
            }
        });
    }
}

/// Sends `query` as it is and returns the first reply (no validation: a relay).
async fn exchange(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket.send_to(query, server).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(REPLY_WAIT, socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(len);
    Some(buf)
}
