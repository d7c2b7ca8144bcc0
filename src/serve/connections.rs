//! The table of open TCP connections, so a full table makes room by closing
//! the connection that has been idle longest rather than turning clients away.
//!
//! RFC 7766 §6.2.3 lets a server close idle connections when it needs the
//! resources. A connection is idle while none of its queries is being
//! resolved; a slowloris client that trickles bytes and never completes a
//! query is idle too, and having no recent query, it goes first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Open connections, at most `cap` of them.
pub(crate) struct Connections {
    cap: usize,
    table: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Orders events (connects, queries): a tick, not a time, so "longest
    /// idle" has no ties.
    clock: AtomicU64,
}

/// One connection's state as the table sees it.
pub(crate) struct Conn {
    /// Queries of this connection being resolved now.
    pending: AtomicUsize,
    /// [`Connections::clock`] at the connect or the last query.
    last_active: AtomicU64,
    close: Notify,
}

/// A connection's place in the table; leaving drops it.
pub(crate) struct Slot {
    id: u64,
    pub conn: Arc<Conn>,
    connections: Arc<Connections>,
}

impl Connections {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            table: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
        })
    }

    /// A slot for a new connection. When the table is full, the connection
    /// idle longest is told to close and gives up its place; when none is
    /// idle, `None`: the new connection is closed instead.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut table = self.table.lock().expect("connection table lock");
        if table.len() >= self.cap {
            let (&victim, _) = table
                .iter()
                .filter(|(_, c)| c.pending.load(Ordering::Relaxed) == 0)
                .min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed))?;
            if let Some(conn) = table.remove(&victim) {
                conn.close.notify_one();
            }
        }
        let id = self.tick();
        let conn = Arc::new(Conn {
            pending: AtomicUsize::new(0),
            last_active: AtomicU64::new(id),
            close: Notify::new(),
        });
        table.insert(id, Arc::clone(&conn));
        Some(Slot {
            id,
            conn,
            connections: Arc::clone(self),
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().expect("connection table lock").len()
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl Slot {
    /// A query arrived: the connection is active now.
    pub(crate) fn queried(&self) {
        let tick = self.connections.tick();
        self.conn.last_active.store(tick, Ordering::Relaxed);
    }

    /// Resolves when the table asks this connection to close.
    pub(crate) async fn closed(&self) {
        self.conn.close.notified().await;
    }
}

impl Conn {
    /// Marks a query being resolved until the guard drops.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.pending.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }
}

pub(crate) struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections
            .table
            .lock()
            .expect("connection table lock")
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_closes_the_connection_idle_longest() {
        let table = Connections::new(2);
        let first = table.admit().unwrap();
        let second = table.admit().unwrap();
        first.queried();
        let third = table.admit().expect("room is made");
        assert_eq!(table.len(), 2);
        assert!(!table.table.lock().unwrap().contains_key(&second.id));
        drop((first, third));
        assert_eq!(table.len(), 0, "slots leave the table when dropped");
    }

    #[test]
    fn busy_connections_are_never_closed_to_make_room() {
        let table = Connections::new(1);
        let only = table.admit().unwrap();
        let busy = only.conn.busy();
        assert!(table.admit().is_none());
        drop(busy);
        assert!(table.admit().is_some());
    }
}
