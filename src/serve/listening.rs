//! A socket UDP queries are answered on ([`Listening`]), with the outbox
//! where answers to misses that finished as tasks wait to go out with the
//! socket's next burst, and where a miss's answer goes ([`AnswerTo`]).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::serve::batch::{self, Destination, Source, To};
use crate::serve::handler::{Handler, Miss, Stage};

/// The rest of a miss as a task on this UDP thread; its answer goes out
/// through the socket's outbox.
pub(super) fn wait(handler: Handler, miss: Miss, stage: Stage, to: AnswerTo) {
    tokio::spawn(async move {
        let response = handler.finish_miss(miss, stage).await;
        to.listening.post(response, to.destination()).await;
    });
}

/// Where the answer to a miss goes: the client, from the socket it asked on
/// (and from the address it asked, when the socket's is a wildcard).
pub(super) struct AnswerTo {
    pub(super) listening: Arc<Listening>,
    pub(super) client: SocketAddr,
    pub(super) source: Option<Source>,
}

impl AnswerTo {
    pub(super) fn destination(&self) -> Destination {
        Destination {
            client: self.client.into(),
            source: self.source,
        }
    }
}

/// A socket UDP queries are answered on, and its outbox: answers to misses
/// that finished as tasks wait there for the socket's loop to send them
/// together with its next burst: one sendmmsg for the answers that came in
/// together, rather than a sendto each.
pub(super) struct Listening {
    pub(super) socket: UdpSocket,
    /// Each answer with where it goes.
    queue: Mutex<Vec<(Vec<u8>, Destination)>>,
    pub(super) posted: Notify,
    /// The loop is gone (the listener closed): answers go out directly.
    closed: AtomicBool,
}

impl Listening {
    pub(super) fn new(socket: UdpSocket) -> Self {
        Self {
            socket,
            queue: Mutex::default(),
            posted: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    async fn post(&self, response: Vec<u8>, to: Destination) {
        if !self.closed.load(Ordering::Acquire) {
            let mut queue = self.queue.lock().expect("outbox lock");
            queue.push((response, to));
            if queue.len() == 1 {
                self.posted.notify_one();
            }
            return;
        }
        let _ = batch::send_one(&self.socket, &response, To::Queued(&to)).await;
    }

    pub(super) fn take(&self) -> Vec<(Vec<u8>, Destination)> {
        std::mem::take(&mut *self.queue.lock().expect("outbox lock"))
    }
}

/// Marks the outbox closed when the loop that empties it ends, and sends
/// what it still holds.
pub(super) struct OutboxClosed(pub(super) Arc<Listening>);

impl Drop for OutboxClosed {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        let waiting = self.0.take();
        let fd = self.0.socket.as_raw_fd();
        let outgoing = waiting
            .iter()
            .map(|(response, to)| (response.as_slice(), To::Queued(to)));
        let sent = batch::send_all(fd, outgoing);
        // A full send buffer: the rest go out as it drains, if the runtime
        // is still there to send them.
        if let (true, Ok(runtime)) = (sent < waiting.len(), tokio::runtime::Handle::try_current()) {
            let listening = Arc::clone(&self.0);
            runtime.spawn(async move {
                for (response, to) in &waiting[sent..] {
                    let _ = batch::send_one(&listening.socket, response, To::Queued(to)).await;
                }
            });
        }
    }
}
