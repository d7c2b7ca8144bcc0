//! The UDP threads (`[server] threads`), which answer UDP queries: one
//! single-threaded runtime each,
//! with a socket of its own on every listen address (SO_REUSEPORT), so the
//! kernel spreads clients over the threads and a query is read, resolved,
//! forwarded, answered and its upstream reply read on one thread, by one
//! reactor, with no hand-off between threads (BENCHMARKS.md, "Closer to the
//! floor": the work-stealing runtime this replaced cost more CPU per query).
//! Shared state (cache, routes, metrics) is the same for all of them.
//!
//! Everything else (TCP, the control socket, `/metrics`, reloads) runs on
//! the runtime that started the server.

use std::io;
use std::sync::mpsc as std_mpsc;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::resolve::upstream;

/// The running UDP threads. Dropping this stops them: their runtimes end,
/// and with them every task they still run.
pub(crate) struct UdpThreads {
    handles: Vec<Handle>,
    /// Each thread runs until its sender is dropped.
    _stops: Vec<oneshot::Sender<()>>,
}

impl UdpThreads {
    /// Starts `count` (at least 1) UDP threads. Each builds its runtime
    /// on its own thread and hands its handle back, so a runtime is never
    /// dropped on the caller's (async) thread, even when a start fails.
    pub(crate) fn start(count: usize) -> io::Result<Self> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for index in 0..count.max(1) {
            let (started, handle) = std_mpsc::channel::<io::Result<Handle>>();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("splitdns-udp-{index}"))
                .spawn(move || {
                    let runtime = match Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            let _ = started.send(Err(error));
                            return;
                        }
                    };
                    upstream::use_own_sockets(index);
                    let _ = started.send(Ok(runtime.handle().clone()));
                    // Until the sender is dropped; the runtime then ends
                    // here, with the tasks it still runs.
                    let _ = runtime.block_on(stopped);
                })?;
            let handle = handle
                .recv()
                .map_err(|_| io::Error::other("a UDP thread ended at start"))??;
            handles.push(handle);
            stops.push(stop);
        }
        Ok(Self {
            handles,
            _stops: stops,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// The runtime of UDP thread `index`.
    pub(crate) fn handle(&self, index: usize) -> &Handle {
        &self.handles[index % self.handles.len()]
    }
}
