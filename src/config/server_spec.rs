//! One upstream server entry and the transport it names: `IP#PORT` (UDP with
//! TCP fallback), `tls://IP[:PORT]#NAME` (RFC 7858, port 853) or
//! `https://HOST[:PORT]/PATH[#NAME]` (RFC 8484, port 443).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::ops::Deref;
use std::sync::Arc;

use super::trust::Trust;

/// An upstream server: where it is and how it is spoken to. Derefs to its
/// address, so code that only needs where to send keeps using a `SocketAddr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub addr: SocketAddr,
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// UDP, and TCP when a reply is truncated.
    Plain,
    /// DNS over TLS (RFC 7858).
    Tls(TlsTarget),
    /// DNS over HTTPS (RFC 8484), HTTP/2.
    Https(TlsTarget),
}

/// What an encrypted entry connects to and what it verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsTarget {
    /// The name the certificate must be valid for (an IP address when none is given).
    pub name: String,
    /// The host name written in place of an address, until `bootstrap` gives it one.
    pub unresolved: Option<String>,
    /// The HTTP path (`/dns-query`); empty for TLS.
    pub path: String,
    /// The CA store and pins; `None` until the config gives the entry its route's.
    pub trust: Option<Arc<Trust>>,
}

impl ServerSpec {
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            transport: Transport::Plain,
        }
    }

    /// `"udp"`, `"tls"` or `"https"`.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Plain => "udp",
            Transport::Tls(_) => "tls",
            Transport::Https(_) => "https",
        }
    }

    /// The encrypted target, for TLS and HTTPS entries.
    pub fn target(&self) -> Option<&TlsTarget> {
        match &self.transport {
            Transport::Plain => None,
            Transport::Tls(t) | Transport::Https(t) => Some(t),
        }
    }

    pub fn target_mut(&mut self) -> Option<&mut TlsTarget> {
        match &mut self.transport {
            Transport::Plain => None,
            Transport::Tls(t) | Transport::Https(t) => Some(t),
        }
    }
}

impl From<SocketAddr> for ServerSpec {
    fn from(addr: SocketAddr) -> Self {
        Self::plain(addr)
    }
}

impl Deref for ServerSpec {
    type Target = SocketAddr;

    fn deref(&self) -> &SocketAddr {
        &self.addr
    }
}

/// The entry as it would be written back: what metrics labels and logs show.
impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.transport {
            Transport::Plain => write!(f, "{}", self.addr),
            Transport::Tls(t) => write!(f, "tls://{}#{}", self.addr, t.name),
            Transport::Https(t) => write!(f, "https://{}{}#{}", self.addr, t.path, t.name),
        }
    }
}

/// Why a server entry cannot be used; the config error around it names the key
/// or the rule line and its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error(
        "{entry:?} is not a server; expected IP, IP:PORT, [V6]:PORT or IP#PORT (a link-local \
         V6 with its %interface)"
    )]
    NotAServer { entry: String },
    #[error(
        "{entry:?}: this host has no interface {scope:?} for the address's scope; name one it \
         has (ip link shows them), or its index"
    )]
    UnknownScope { entry: String, scope: String },
    #[error("{entry:?}: choosing a source address or interface with @ is not supported")]
    SourceChoice { entry: String },
    #[error(
        "{entry:?}: unknown transport {scheme:?}; expected tls:// (DNS over TLS) or https:// \
         (DNS over HTTPS), or a plain address for UDP and TCP"
    )]
    UnknownTransport { entry: String, scheme: String },
    /// A `tls://` or `https://` entry with a part that is wrong.
    #[error("{entry:?}: {problem}")]
    Encrypted {
        entry: String,
        problem: EncryptedEntryError,
    },
    /// A host name in place of an address, which `[upstream] bootstrap` does not give.
    #[error(
        "splitdns does not look up {host:?} to reach it; give its address: write \
         \"{scheme}://ADDRESS{path}#{host}\", or add [upstream] bootstrap = {{ \"{host}\" = \"ADDRESS\" }}"
    )]
    NoBootstrap {
        host: String,
        scheme: &'static str,
        path: String,
    },
}

/// What is wrong after the scheme of a `tls://` or `https://` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptedEntryError {
    #[error("a tls:// entry has no path; for DNS over HTTPS write https://")]
    TlsPath,
    #[error("the path takes no query string or URI template; write it like /dns-query")]
    QueryInPath,
    #[error("an IPv6 address in brackets lacks its closing ]")]
    UnclosedBracket,
    #[error("{0:?} is not a port number")]
    BadPort(String),
    #[error("unexpected {0:?} after the address")]
    AfterAddress(String),
    #[error("{0:?} is not an IPv6 address")]
    NotIpv6(String),
    #[error("the server's address is missing")]
    NoAddress,
    #[error("{0:?} is neither an IP address nor a host name")]
    NotAHost(String),
    #[error("{0:?} after # is not a host name to verify the certificate against")]
    BadVerifyName(String),
}

/// What the config gives every encrypted entry that does not say otherwise.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// `[upstream] ca_file` and `pin_sha256`.
    pub trust: Arc<Trust>,
    /// `[upstream] bootstrap`: addresses for the host names in entries.
    pub bootstrap: std::collections::HashMap<String, IpAddr>,
}

impl ServerSpec {
    /// Gives an encrypted entry `trust` (its route's, else the defaults') and
    /// an address for a host name from `bootstrap`.
    pub fn finish(
        &mut self,
        trust: Option<&Arc<Trust>>,
        defaults: &Defaults,
    ) -> Result<(), ServerError> {
        let scheme = self.transport_name();
        let Some(target) = self.target_mut() else {
            return Ok(());
        };
        if target.trust.is_none() {
            target.trust = Some(Arc::clone(trust.unwrap_or(&defaults.trust)));
        }
        let Some(host) = target.unresolved.take() else {
            return Ok(());
        };
        let Some(&ip) = defaults.bootstrap.get(&host) else {
            return Err(ServerError::NoBootstrap {
                host,
                scheme,
                path: target.path.clone(),
            });
        };
        self.addr.set_ip(ip);
        Ok(())
    }
}

/// Any server entry, as [`parse_server`] reads it.
impl std::str::FromStr for ServerSpec {
    type Err = ServerError;

    fn from_str(s: &str) -> Result<Self, ServerError> {
        parse_server(s)
    }
}

/// An upstream server: `IP`, `IP#PORT`, `IP:PORT`, `[V6]:PORT` or `V6#PORT`
/// (port 53, UDP with TCP fallback), or an encrypted one: `tls://IP[:PORT]#NAME`,
/// `https://HOST[:PORT]/PATH[#NAME]`. The one grammar of `[upstream] servers`,
/// `[[route]] servers` and the server of a `server=` rule line.
pub(crate) fn parse_server(s: &str) -> Result<ServerSpec, ServerError> {
    match parse_encrypted(s) {
        Some(encrypted) => encrypted,
        None => parse_plain(s).map(ServerSpec::plain),
    }
}

fn parse_plain(s: &str) -> Result<SocketAddr, ServerError> {
    let s = s.trim();
    let bad = || ServerError::NotAServer {
        entry: s.to_string(),
    };
    if s.contains('@') {
        return Err(ServerError::SourceChoice {
            entry: s.to_string(),
        });
    }
    let (host, port) = if let Some((host, port)) = s.split_once('#') {
        (
            host.trim_start_matches('[').trim_end_matches(']'),
            Some(port),
        )
    } else if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        (host, Some(port))
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (s, None),
        }
    };
    let port = port.map_or(Ok(53), str::parse).map_err(|_| bad())?;
    let (ip, scope) = match host.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (host, None),
    };
    match (ip.parse::<IpAddr>().map_err(|_| bad())?, scope) {
        (ip, None) => Ok(SocketAddr::new(ip, port)),
        (IpAddr::V6(v6), Some(scope)) => {
            let index = scope_index(scope).ok_or_else(|| ServerError::UnknownScope {
                entry: s.to_string(),
                scope: scope.to_string(),
            })?;
            Ok(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index)))
        }
        (IpAddr::V4(_), Some(_)) => Err(bad()),
    }
}

/// The interface an IPv6 address's `%scope` names, by name or by index, as
/// dnsmasq(8) takes `fe80::1%eth0` and resolv.conf(5) `nameserver
/// fe80::1%eth0`: a link-local address means nothing without it.
pub(crate) fn scope_index(scope: &str) -> Option<u32> {
    if let Ok(index) = scope.parse::<u32>() {
        return Some(index);
    }
    let name = std::ffi::CString::new(scope).ok()?;
    // SAFETY: a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// Parses a `tls://` or `https://` entry; `None` when `s` names no scheme.
fn parse_encrypted(s: &str) -> Option<Result<ServerSpec, ServerError>> {
    let s = s.trim();
    let located = |problem| ServerError::Encrypted {
        entry: s.to_string(),
        problem,
    };
    if let Some(rest) = s.strip_prefix("tls://") {
        return Some(parse_tls(rest).map_err(located));
    }
    if let Some(rest) = s.strip_prefix("https://") {
        return Some(parse_https(rest).map_err(located));
    }
    if let Some((scheme, _)) = s.split_once("://") {
        return Some(Err(ServerError::UnknownTransport {
            entry: s.to_string(),
            scheme: scheme.to_string(),
        }));
    }
    None
}

/// `IP[:PORT]#NAME`, `[V6][:PORT]#NAME`; the name may be left out to verify the address.
fn parse_tls(rest: &str) -> Result<ServerSpec, EncryptedEntryError> {
    let (authority, name) = match rest.split_once('#') {
        Some((a, n)) => (a, Some(n)),
        None => (rest, None),
    };
    if authority.contains('/') {
        return Err(EncryptedEntryError::TlsPath);
    }
    let (host, port) = split_authority(authority, 853)?;
    let target = |unresolved| TlsTarget {
        name: String::new(),
        unresolved,
        path: String::new(),
        trust: None,
    };
    let (addr, mut target) = match host.parse::<IpAddr>() {
        Ok(ip) => (SocketAddr::new(ip, port), target(None)),
        Err(_) => (unresolved(port), target(Some(host.clone()))),
    };
    target.name = verify_name(name, &host)?;
    Ok(ServerSpec {
        addr,
        transport: Transport::Tls(target),
    })
}

/// `HOST[:PORT][/PATH][#NAME]`; the path defaults to `/dns-query` (RFC 8484 §6's example).
fn parse_https(rest: &str) -> Result<ServerSpec, EncryptedEntryError> {
    let (rest, name) = match rest.split_once('#') {
        Some((r, n)) => (r, Some(n)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/dns-query"),
    };
    if path.contains('?') || path.contains('{') {
        return Err(EncryptedEntryError::QueryInPath);
    }
    let (host, port) = split_authority(authority, 443)?;
    let (addr, unresolved_host) = match host.parse::<IpAddr>() {
        Ok(ip) => (SocketAddr::new(ip, port), None),
        Err(_) => (unresolved(port), Some(host.clone())),
    };
    Ok(ServerSpec {
        addr,
        transport: Transport::Https(TlsTarget {
            name: verify_name(name, &host)?,
            unresolved: unresolved_host,
            path: path.to_string(),
            trust: None,
        }),
    })
}

/// An address that `bootstrap` fills in later (only the port is known).
fn unresolved(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

fn split_authority(
    authority: &str,
    default_port: u16,
) -> Result<(String, u16), EncryptedEntryError> {
    let bad_port = |p: &str| EncryptedEntryError::BadPort(p.to_string());
    if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6
            .split_once(']')
            .ok_or(EncryptedEntryError::UnclosedBracket)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad_port(p))?,
            None if after.is_empty() => default_port,
            None => return Err(EncryptedEntryError::AfterAddress(after.to_string())),
        };
        ip.parse::<IpAddr>()
            .map_err(|_| EncryptedEntryError::NotIpv6(ip.to_string()))?;
        return Ok((ip.to_string(), port));
    }
    if authority.parse::<IpAddr>().is_ok() {
        return Ok((authority.to_string(), default_port));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad_port(p))?),
        None => (authority, default_port),
    };
    if host.is_empty() {
        return Err(EncryptedEntryError::NoAddress);
    }
    if host.parse::<IpAddr>().is_err() && !is_host_name(host) {
        return Err(EncryptedEntryError::NotAHost(host.to_string()));
    }
    Ok((host.to_string(), port))
}

fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The name after `#`, or else the host as written (a name or an address).
fn verify_name(name: Option<&str>, host: &str) -> Result<String, EncryptedEntryError> {
    match name {
        Some(n) if is_host_name(n) || n.parse::<IpAddr>().is_ok() => {
            Ok(n.trim_end_matches('.').to_ascii_lowercase())
        }
        Some(n) => Err(EncryptedEntryError::BadVerifyName(n.to_string())),
        None => Ok(host.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ServerSpec {
        parse_encrypted(s).expect("a scheme").expect("parses")
    }

    #[test]
    fn server_addresses() {
        assert_eq!(
            parse_server("::1#5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("2001:db8::1").unwrap(),
            "[2001:db8::1]:53".parse().unwrap()
        );
        assert!(parse_server("consul.local").is_err());
    }

    /// dnsmasq(8), `--server`: "IPv6 addresses may include an %interface scope-id, eg
    /// fe80::1%eth0." The scope is an interface name (lo exists on every Linux host, index 1)
    /// or an index, with or without a port; an interface the host lacks is an error that names
    /// it, and an IPv4 address has no scope.
    #[test]
    fn link_local_servers_take_their_interface() {
        let lo = |port| SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), port, 0, 1));
        for (text, port) in [
            ("fe80::1%lo", 53),
            ("fe80::1%1", 53),
            ("fe80::1%lo#5353", 5353),
            ("[fe80::1%lo]:5353", 5353),
        ] {
            assert_eq!(parse_server(text).unwrap().addr, lo(port), "{text}");
        }
        let err = parse_server("fe80::1%nosuch0").unwrap_err().to_string();
        assert!(err.contains("nosuch0"), "{err}");
        assert!(parse_server("192.0.2.1%lo").is_err());
        assert_eq!(
            parse_server("192.0.2.1:5353").unwrap(),
            "192.0.2.1:5353".parse().unwrap()
        );
    }

    #[test]
    fn tls_entries_default_to_port_853_and_verify_the_name() {
        let s = ok("tls://9.9.9.9#dns.quad9.net");
        assert_eq!(s.addr, "9.9.9.9:853".parse().unwrap());
        assert_eq!(s.to_string(), "tls://9.9.9.9:853#dns.quad9.net");
        let s = ok("tls://[2620:fe::fe]:8853#dns.quad9.net");
        assert_eq!(s.addr, "[2620:fe::fe]:8853".parse().unwrap());
        assert_eq!(s.target().unwrap().name, "dns.quad9.net");
        assert_eq!(ok("tls://192.0.2.53").target().unwrap().name, "192.0.2.53");
    }

    #[test]
    fn https_entries_take_a_path_and_a_bootstrap_for_host_names() {
        let s = ok("https://9.9.9.9/dns-query#dns.quad9.net");
        assert_eq!(s.addr, "9.9.9.9:443".parse().unwrap());
        assert_eq!(s.target().unwrap().path, "/dns-query");
        let s = ok("https://dns.quad9.net/dns-query");
        let t = s.target().unwrap();
        assert_eq!(t.unresolved.as_deref(), Some("dns.quad9.net"));
        assert_eq!(t.name, "dns.quad9.net");
        assert_eq!(
            ok("https://127.0.0.1:8443#x.test").target().unwrap().path,
            "/dns-query"
        );
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        assert!(parse_encrypted("9.9.9.9").is_none());
        let err = parse_server("quic://9.9.9.9").unwrap_err().to_string();
        assert!(err.contains("unknown transport"), "{err}");
        for entry in [
            "tls://9.9.9.9:x#a",
            "tls://9.9.9.9/dns-query",
            "tls://9.9.9.9#bad name",
            "https://[::1/dns-query",
        ] {
            assert!(parse_encrypted(entry).unwrap().is_err(), "{entry}");
        }
    }
}
