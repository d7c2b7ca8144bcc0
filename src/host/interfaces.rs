//! The host's interface addresses, and a signal from the kernel each time they
//! may have changed, so `IFNAME:PORT` listeners and the default `allow` follow
//! interfaces that appear, go away or change address (dnsmasq's
//! `bind-dynamic`): docker0 usually appears after splitdns starts.
//!
//! The signal comes from an rtnetlink socket joined to the link and address
//! groups; its messages are not parsed, because the answer to "what changed"
//! is always a fresh look at every address, compared with the listeners we
//! hold. Where netlink is unavailable, a poll every few seconds does the same.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_ROUTE};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::config::Config;

/// How often to look when netlink is not available.
const POLL: Duration = Duration::from_secs(2);
/// Creating a bridge and giving it an address is a burst of messages; wait
/// this long after the first for the rest, and look once.
const SETTLE: Duration = Duration::from_millis(100);

/// Every interface address with its prefix, by interface name.
pub(crate) fn addresses() -> Vec<(String, IpNet)> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    ifaces
        .into_iter()
        .filter_map(|i| {
            let net = match &i.addr {
                if_addrs::IfAddr::V4(a) => IpNet::new(a.ip.into(), a.prefixlen),
                if_addrs::IfAddr::V6(a) => IpNet::new(a.ip.into(), a.prefixlen),
            };
            net.ok().map(|n| (i.name, n))
        })
        .collect()
}

/// The addresses an `IFNAME:PORT` entry listens on: IPv4 and non-link-local
/// IPv6 (a link-local address needs a scope the socket would have to carry).
pub(crate) fn listen_ips(addresses: &[(String, IpNet)], name: &str) -> Vec<IpAddr> {
    addresses
        .iter()
        .filter(|(ifname, net)| ifname == name && !is_link_local(net.addr()))
        .map(|(_, net)| net.addr())
        .collect()
}

/// `[server] allow`, or the default for what is bound now.
pub(crate) fn allow(config: &Config, bound: &[SocketAddr]) -> Vec<IpNet> {
    config.allow.clone().unwrap_or_else(|| default_allow(bound))
}

/// Loopback plus the subnets of the interfaces that hold a listened address:
/// never the world.
fn default_allow(bound: &[SocketAddr]) -> Vec<IpNet> {
    let mut allow: Vec<IpNet> = vec![
        "127.0.0.0/8".parse().expect("literal"),
        "::1/128".parse().expect("literal"),
    ];
    let nets = addresses();
    for addr in bound {
        let ip = addr.ip();
        if ip.is_unspecified() {
            allow.extend(nets.iter().map(|(_, n)| n.trunc()));
        } else if let Some((_, net)) = nets.iter().find(|(_, n)| n.addr() == ip) {
            allow.push(net.trunc());
        }
    }
    allow.sort();
    allow.dedup();
    allow
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// Wakes up when interfaces or their addresses may have changed.
pub(crate) struct Changes {
    netlink: Option<AsyncFd<Socket>>,
}

impl Changes {
    /// Joins rtnetlink's link and address groups; falls back to polling (with
    /// a warning) where that is refused.
    pub(crate) fn subscribe() -> Self {
        match netlink() {
            Ok(socket) => Self {
                netlink: Some(socket),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot watch interfaces over netlink; polling every {}s instead", POLL.as_secs());
                Self { netlink: None }
            }
        }
    }

    /// Completes once something may have changed (bursts count once).
    pub(crate) async fn next(&mut self) {
        let Some(socket) = &self.netlink else {
            tokio::time::sleep(POLL).await;
            return;
        };
        if wait_readable(socket).await.is_err() {
            // A broken socket would wake us in a loop: degrade to polling.
            tracing::warn!("the netlink socket failed; polling interfaces instead");
            self.netlink = None;
            return;
        }
        tokio::time::sleep(SETTLE).await;
        drain(socket);
    }
}

fn netlink() -> io::Result<AsyncFd<Socket>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    let groups = libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR;
    socket.bind(&NetlinkAddr::new(0, groups as u32))?;
    socket.set_non_blocking(true)?;
    // SAFETY: the netlink Socket owns its descriptor, closes it only when
    // dropped, and the AsyncFd owns the Socket: the descriptor stays open and
    // the same for the AsyncFd's whole life.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(io::Error::from)
}

/// Waits for at least one message and reads what is there.
async fn wait_readable(socket: &AsyncFd<Socket>) -> io::Result<()> {
    loop {
        let mut guard = socket.readable().await?;
        if drain(socket) {
            return Ok(());
        }
        guard.clear_ready();
    }
}

/// Reads every queued message; whether there was any. An overrun (ENOBUFS)
/// lost messages, which is news too: the caller looks at everything anyway.
fn drain(socket: &AsyncFd<Socket>) -> bool {
    let mut buf = [0u8; 8192];
    let mut any = false;
    loop {
        match socket.get_ref().recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
            Ok(_) => any = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => any = true,
            Err(_) => return any,
        }
    }
}
