//! The listeners: datagrams each UDP thread read, TCP connections open and
//! accepted.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::register::registered;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreadLabel {
    thread: usize,
}

pub(super) struct ListenerMetrics {
    udp_datagrams: Family<ThreadLabel, Counter>,
    tcp_open: Gauge,
    tcp_accepted: Counter,
}

impl ListenerMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        Self {
            udp_datagrams: registered(
                registry,
                "udp_datagrams",
                "Datagrams read from the UDP listeners, by the UDP thread that read them",
            ),
            tcp_open: registered(
                registry,
                "tcp_connections",
                "TCP client connections open now",
            ),
            tcp_accepted: registered(
                registry,
                "tcp_connections_accepted",
                "TCP client connections accepted",
            ),
        }
    }

    pub(super) fn udp_thread(&self, thread: usize) -> Counter {
        self.udp_datagrams
            .get_or_create_owned(&ThreadLabel { thread })
    }

    pub(super) fn tcp_connection(&self) -> TcpConnection {
        self.tcp_accepted.inc();
        self.tcp_open.inc();
        TcpConnection(self.tcp_open.clone())
    }
}

/// Keeps the open-connections gauge up while a TCP connection lives.
pub struct TcpConnection(Gauge);

impl Drop for TcpConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
