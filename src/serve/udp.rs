//! Answering UDP: one loop per socket, on the UDP thread that owns it. Each
//! wake-up takes a burst of datagrams ([`Batch`]); cache hits and local
//! answers are written inline, each miss gets a task on the same thread, and
//! the burst's answers leave together with those of the misses finished
//! since, in one sendmmsg.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::dns::wire::Protocol;
use crate::serve::batch::{BATCH, Batch};
use crate::serve::handler::{Handler, Step};

/// Answers a burst of queries per wake-up: hits and local answers go back in
/// one sendmmsg, misses each get a task on this UDP thread, and their answers wait
/// in the [`Outbox`] to go out with the next burst's.
pub(crate) async fn serve_udp(handler: Handler, socket: std::net::UdpSocket, read: Counter) {
    let socket = match UdpSocket::from_std(socket) {
        Ok(socket) => Arc::new(socket),
        Err(error) => {
            tracing::error!(%error, "cannot serve a UDP socket");
            return;
        }
    };
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new();
    let outbox = Arc::new(Outbox::default());
    let _closed = OutboxClosed(Arc::clone(&outbox), Arc::clone(&socket));
    loop {
        let readable = tokio::select! {
            biased;
            ready = socket.readable() => ready.is_ok(),
            () = outbox.posted.notified() => false,
        };
        let received = if readable {
            match socket.try_io(Interest::READABLE, || batch.recv(fd)) {
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
                Err(error) => {
                    tracing::debug!(%error, "UDP receive failed");
                    0
                }
            }
        } else {
            0
        };
        if received > 0 {
            read.inc_by(received as u64);
        }
        if received > 0 && received < BATCH {
            // Fewer than asked for: the queue was empty when read. Forget the
            // readiness now rather than learn it from one more receive that
            // would fail: a datagram that arrives after the read is reported
            // by the reactor afresh, and the reactor runs on this thread, so
            // it cannot have seen one in between.
            let _ = socket.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
        for i in 0..received {
            let Some((packet, client, out)) = batch.query(i) else {
                continue;
            };
            match handler.answer_now(packet, client.ip(), Protocol::Udp, out) {
                Step::Respond => batch.mark_ready(i),
                Step::Drop => {}
                Step::Miss(miss) => {
                    let handler = handler.clone();
                    let (outbox, socket) = (Arc::clone(&outbox), Arc::clone(&socket));
                    tokio::spawn(async move {
                        let response = handler.answer_miss(miss).await;
                        outbox.post(response, client, &socket).await;
                    });
                }
            }
        }
        let queued = outbox.take();
        let sent = batch.send(fd, received, &queued);
        for (response, to) in batch.outgoing(received, &queued).skip(sent) {
            if let Some(client) = to.socket_addr() {
                let _ = socket.send_to(response, client).await;
            }
        }
        if received == BATCH {
            // More may be waiting, and waiting for readiness would not wait:
            // let this thread's other work run first (the misses just
            // spawned, upstream replies, timers, the other sockets), so a
            // flood is answered in turns rather than starving them.
            tokio::task::yield_now().await;
        }
    }
}

/// Answers to misses of one UDP socket, waiting for its loop to send them
/// together with its next burst: one sendmmsg for the answers that came in
/// together, rather than a sendto each.
#[derive(Default)]
struct Outbox {
    /// Each answer with its client's address in the form sendmmsg takes.
    queue: Mutex<Vec<(Vec<u8>, SockAddr)>>,
    posted: Notify,
    /// The loop is gone (the listener closed): answers go out directly.
    closed: AtomicBool,
}

impl Outbox {
    async fn post(&self, response: Vec<u8>, client: SocketAddr, socket: &UdpSocket) {
        if !self.closed.load(Ordering::Acquire) {
            let mut queue = self.queue.lock().expect("outbox lock");
            queue.push((response, SockAddr::from(client)));
            if queue.len() == 1 {
                self.posted.notify_one();
            }
            return;
        }
        let _ = socket.send_to(&response, client).await;
    }

    fn take(&self) -> Vec<(Vec<u8>, SockAddr)> {
        std::mem::take(&mut *self.queue.lock().expect("outbox lock"))
    }
}

/// Marks the outbox closed when the loop that empties it ends, and sends
/// what it still holds.
struct OutboxClosed(Arc<Outbox>, Arc<UdpSocket>);

impl Drop for OutboxClosed {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        let mut waiting: Vec<(Vec<u8>, SocketAddr)> = self
            .0
            .take()
            .into_iter()
            .filter_map(|(response, to)| Some((response, to.as_socket()?)))
            .collect();
        waiting.retain(|(response, client)| {
            matches!(self.1.try_send_to(response, *client), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        });
        // A full send buffer: the rest go out as it drains, if the runtime
        // is still there to send them.
        if let (false, Ok(runtime)) = (waiting.is_empty(), tokio::runtime::Handle::try_current()) {
            let socket = Arc::clone(&self.1);
            runtime.spawn(async move {
                for (response, client) in waiting {
                    let _ = socket.send_to(&response, client).await;
                }
            });
        }
    }
}
