//! Upstreams from the host's resolv.conf, for the default route when
//! `[upstream] servers` is empty.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::config::server_spec::{ServerSpec, scope_index};

/// How often [`Watch`] looks at the file: a change is picked up within this.
pub(crate) const POLL: Duration = Duration::from_secs(2);

/// The `nameserver` lines of a resolv.conf, port 53, in file order. IPv6
/// link-local addresses keep their `%scope` (an interface name or index).
pub(crate) fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(parse_nameserver)
        .collect()
}

fn parse_nameserver(word: &str) -> Option<SocketAddr> {
    let (ip, scope) = match word.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (word, None),
    };
    match (ip.parse::<IpAddr>().ok()?, scope) {
        (IpAddr::V6(v6), Some(scope)) => {
            let index = scope_index(scope)?;
            Some(SocketAddr::V6(SocketAddrV6::new(v6, 53, 0, index)))
        }
        (ip, _) => Some(SocketAddr::new(ip, 53)),
    }
}

/// `[upstream] servers`, or when there are none, resolv.conf's nameservers
/// other than splitdns itself (`bound`: the addresses it listens on).
pub(crate) fn default_servers(config: &Config, bound: &[SocketAddr]) -> Vec<ServerSpec> {
    if config.upstream.servers.is_empty() {
        upstreams(&config.upstream.resolv_conf, bound)
            .into_iter()
            .map(ServerSpec::plain)
            .collect()
    } else {
        config.upstream.servers.clone()
    }
}

/// Reads `path` and drops every server splitdns itself listens on, so that a
/// resolv.conf pointing at splitdns does not make it forward to itself.
pub(crate) fn upstreams(path: &Path, own: &[SocketAddr]) -> Vec<SocketAddr> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read resolv.conf: names outside routed zones get SERVFAIL");
            return Vec::new();
        }
    };
    let (own_servers, servers): (Vec<_>, Vec<_>) = nameservers(&text)
        .into_iter()
        .partition(|server| is_own(server, own));
    for server in own_servers {
        tracing::info!(%server, path = %path.display(), "skipping a resolv.conf nameserver that is splitdns itself");
    }
    servers
}

/// Notices a resolv.conf changing by comparing its contents, read every
/// [`POLL`]: cheap for a file this small, and it sees what a timestamp check
/// misses, such as the symlink swaps of resolvconf and NetworkManager, or an
/// edit within the same second.
pub(crate) struct Watch {
    path: PathBuf,
    last: Option<Vec<u8>>,
}

impl Watch {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            last: std::fs::read(path).ok(),
        }
    }

    /// Whether the contents differ from the last look (appearing and
    /// disappearing count).
    pub(crate) fn changed(&mut self) -> bool {
        let now = std::fs::read(&self.path).ok();
        if now == self.last {
            return false;
        }
        self.last = now;
        true
    }
}

fn is_own(server: &SocketAddr, own: &[SocketAddr]) -> bool {
    own.iter().any(|l| {
        l.port() == server.port()
            && (l.ip() == server.ip()
                || (l.ip().is_unspecified() && l.is_ipv4() == server.is_ipv4()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameserver_lines() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.1\nnameserver 2001:db8::1\nnameserver fe80::1%1\noptions ndots:2\nnameserver bogus\n";
        let servers = nameservers(text);
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[0], "192.0.2.1:53".parse().unwrap());
        assert_eq!(servers[1], "[2001:db8::1]:53".parse().unwrap());
        assert_eq!(servers[2], "[fe80::1%1]:53".parse().unwrap());
    }

    #[test]
    fn own_addresses_are_skipped() {
        let own: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().unwrap()];
        assert!(is_own(&"127.0.0.1:53".parse().unwrap(), &own));
        assert!(!is_own(&"127.0.0.53:53".parse().unwrap(), &own));
        assert!(is_own(
            &"192.0.2.1:53".parse().unwrap(),
            &["0.0.0.0:53".parse().unwrap()]
        ));
    }
}
