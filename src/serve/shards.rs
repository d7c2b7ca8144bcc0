//! The threads that answer UDP queries: one single-threaded runtime each,
//! with a socket of its own on every listen address (SO_REUSEPORT), so the
//! kernel spreads clients over the threads and a query is read, resolved,
//! forwarded, answered and its upstream reply read on one thread, by one
//! reactor, with no hand-off between threads (see BENCHMARKS.md: a
//! work-stealing pool paid for cross-thread wake-ups on every batch).
//! Shared state (cache, routes, metrics) is the same for all of them.
//!
//! Everything else (TCP, the control socket, `/metrics`, reloads) runs on
//! the runtime that started the server.

use std::io;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::resolve::upstream;

/// The running shards. Dropping this stops them: their runtimes end, and
/// with them every task they still run.
pub(crate) struct Shards {
    handles: Vec<Handle>,
    /// Each shard thread runs until its sender is dropped.
    _stops: Vec<oneshot::Sender<()>>,
}

impl Shards {
    /// Starts `count` (at least 1) shard threads.
    pub(crate) fn start(count: usize) -> io::Result<Self> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for index in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("splitdns-udp-{index}"))
                .spawn(move || {
                    upstream::use_own_sockets(index);
                    let _ = runtime.block_on(stopped);
                    // Dropped here, on its own thread: tasks still running
                    // on it are dropped with it.
                    drop(runtime);
                })?;
        }
        Ok(Self {
            handles,
            _stops: stops,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// The runtime of shard `index`.
    pub(crate) fn handle(&self, index: usize) -> &Handle {
        &self.handles[index % self.handles.len()]
    }
}
