//! [`LocalData`]: the names splitdns answers itself, from hosts files and static
//! records, and the `[local]` switches that keep names from being forwarded.
//!
//! Records are encoded once, at load, so answering is a hash lookup and a few
//! copies. Hosts files are checked every [`POLL`] ([`refresh`], run by the
//! shared state's watcher): a changed file is re-read without a signal, and a reload builds a fresh [`LocalData`]
//! with [`LocalData::load`].

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hashbrown::HashMap;
use hickory_proto::rr::rdata::PTR;
use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::binary::BinEncodable;

use arc_swap::ArcSwap;

use crate::config::{Config, LocalConfig, StaticRecord};
use crate::dns::zone::{self, Zone};
use crate::host::hosts;

/// How often hosts files are checked for changes.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// Why local data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "[local] hosts_files: cannot read {path}: {source}; fix its permissions or remove it from the list"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// One record, encoded for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rr {
    pub rtype: u16,
    pub ttl: u32,
    /// RDATA with every name uncompressed, so it can be copied into any message.
    pub rdata: Box<[u8]>,
    /// The lowercased wire name this record points at (CNAME, SRV, MX, PTR):
    /// where a CNAME chain continues and whose addresses an SRV or MX answer adds.
    pub target: Option<Box<[u8]>>,
}

/// Where a name that the `[local]` switches keep home lies (see
/// [`LocalData::home_zone`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Home {
    /// A single-label name, under domain_needed: no zone but the root holds it.
    Label,
    /// A reverse name in a private zone, under bogus_priv: the zone, as its
    /// offset in the name (0: the name is the zone's apex).
    Zone(usize),
}

/// Local names and the switches of `[local]`, as one snapshot.
pub(crate) struct LocalData {
    names: HashMap<Box<[u8]>, Vec<Rr>>,
    /// Every name above a local name, up to its top label: the empty
    /// non-terminals, which exist though they own no records (RFC 8020 §2).
    parents: HashSet<Box<[u8]>>,
    domain_needed: bool,
    /// The RFC 6303 zones answered NXDOMAIN, when bogus_priv is on.
    private_zones: Vec<Zone>,
    config: Arc<LocalConfig>,
    stamps: Vec<(PathBuf, Option<Stamp>)>,
}

/// What tells a file changed: rewritten in place, replaced, or grown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl LocalData {
    /// Reads the hosts files of `config` and encodes every local record.
    /// A missing hosts file is a warning (it is picked up when it appears); one
    /// that exists but cannot be read is an error.
    pub(crate) fn load(config: &Config) -> Result<Self, LoadError> {
        Self::from_local(Arc::new(config.local.clone()))
    }

    /// No names, nothing refused.
    #[cfg(test)]
    fn empty() -> Self {
        Self {
            names: HashMap::new(),
            parents: HashSet::new(),
            domain_needed: false,
            private_zones: Vec::new(),
            config: Arc::default(),
            stamps: Vec::new(),
        }
    }

    fn from_local(config: Arc<LocalConfig>) -> Result<Self, LoadError> {
        let mut builder = Builder::default();
        for record in &config.records {
            builder.add_static(record, config.ttl);
        }
        let mut stamps = Vec::new();
        for path in &config.hosts_files {
            // Stamp first: a change while reading is seen at the next poll.
            let stamp = stamp(path);
            if let Some(text) = read_hosts(path)? {
                builder.add_hosts(path, &text, config.ttl);
            }
            stamps.push((path.clone(), stamp));
        }
        Ok(Self {
            parents: parents(builder.names.keys()),
            names: builder.names,
            domain_needed: config.domain_needed,
            private_zones: if config.bogus_priv {
                private_reverse_zones()
            } else {
                Vec::new()
            },
            config,
            stamps,
        })
    }

    /// The records of a lowercased wire name, if it is a local name.
    pub(crate) fn lookup(&self, lower: &[u8]) -> Option<&[Rr]> {
        if self.names.is_empty() {
            return None;
        }
        self.names.get(lower).map(Vec::as_slice)
    }

    /// Whether local names lie below a lowercased wire name: then it exists,
    /// as an empty non-terminal, even where it has no records itself.
    pub(crate) fn has_below(&self, lower: &[u8]) -> bool {
        self.parents.contains(lower)
    }

    /// Whether a name that no route covers must stay here instead of going to
    /// the default upstreams (NXDOMAIN, unless it exists here): a single-label
    /// name under domain_needed, or a reverse name in a private zone under
    /// bogus_priv. `Some` with where the name lies: see [`Home`].
    pub(crate) fn home_zone(&self, lower: &[u8]) -> Option<Home> {
        if self.domain_needed && is_single_label(lower) {
            return Some(Home::Label);
        }
        if self.private_zones.is_empty() || !lower.ends_with(b"\x04arpa\x00") {
            return None;
        }
        self.private_zones
            .iter()
            .find(|z| z.contains(lower))
            .map(|z| Home::Zone(lower.len() - z.wire().len()))
    }

    /// `[local] ttl`: the TTL of `address=` answers.
    pub(crate) fn ttl(&self) -> u32 {
        self.config.ttl
    }

    /// Local names held.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether a hosts file changed since it was read.
    fn changed_on_disk(&self) -> bool {
        self.stamps.iter().any(|(path, seen)| stamp(path) != *seen)
    }
}

/// Re-reads the hosts files behind `local` if one changed since they were
/// read; keeps the old data when they cannot be read now.
pub(crate) fn refresh(local: &ArcSwap<LocalData>) {
    let current = local.load_full();
    if !current.changed_on_disk() {
        return;
    }
    match LocalData::from_local(Arc::clone(&current.config)) {
        Ok(fresh) => {
            tracing::info!(names = fresh.len(), "hosts files changed: re-read");
            local.store(Arc::new(fresh));
        }
        Err(error) => {
            tracing::warn!(%error, "hosts files changed but cannot be read; keeping the old data")
        }
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

fn read_hosts(path: &Path) -> Result<Option<String>, LoadError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "hosts file does not exist (yet): its names are added when it appears");
            Ok(None)
        }
        Err(source) => Err(LoadError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The proper ancestors of `names`, root excluded.
fn parents<'a>(names: impl Iterator<Item = &'a Box<[u8]>>) -> HashSet<Box<[u8]>> {
    let mut parents = HashSet::new();
    for name in names {
        // A parent met before had its own parents inserted then.
        for parent in zone::suffixes(name).skip(1) {
            if parent.len() <= 1 || !parents.insert(parent.into()) {
                break;
            }
        }
    }
    parents
}

/// `\x03lan\x00`: one label, then the root.
fn is_single_label(lower: &[u8]) -> bool {
    let first = usize::from(lower.first().copied().unwrap_or(0));
    first > 0 && lower.get(first + 1) == Some(&0)
}

/// The locally served reverse zones of RFC 6303 §4 (private, loopback,
/// link-local, documentation and ULA space): a question about them has no
/// public answer, and forwarding it leaks the private address plan.
pub(crate) fn private_reverse_zones() -> Vec<Zone> {
    let mut zones: Vec<String> = [
        "10.in-addr.arpa",
        "168.192.in-addr.arpa",
        "0.in-addr.arpa",
        "127.in-addr.arpa",
        "254.169.in-addr.arpa",
        "2.0.192.in-addr.arpa",
        "100.51.198.in-addr.arpa",
        "113.0.203.in-addr.arpa",
        "255.255.255.255.in-addr.arpa",
        "d.f.ip6.arpa",
        "8.e.f.ip6.arpa",
        "9.e.f.ip6.arpa",
        "a.e.f.ip6.arpa",
        "b.e.f.ip6.arpa",
        "8.b.d.0.1.0.0.2.ip6.arpa",
    ]
    .map(String::from)
    .into();
    zones.extend((16..32).map(|n| format!("{n}.172.in-addr.arpa")));
    let v6_zero = "0.".repeat(31);
    zones.push(format!("{v6_zero}0.ip6.arpa"));
    zones.push(format!("1.{v6_zero}ip6.arpa"));
    zones
        .iter()
        .map(|z| Zone::parse(z).expect("RFC 6303 zone names are valid"))
        .collect()
}

#[derive(Default)]
struct Builder {
    names: HashMap<Box<[u8]>, Vec<Rr>>,
    /// Reverse names that already have a PTR: the first name for an address wins.
    ptr_owners: HashSet<Box<[u8]>>,
}

impl Builder {
    fn add_static(&mut self, record: &StaticRecord, default_ttl: u32) {
        let ttl = record.ttl.unwrap_or(default_ttl);
        if matches!(record.rdata, RData::PTR(_)) {
            self.ptr_owners.insert(record.name.wire().into());
        }
        self.add(record.name.wire(), &record.rdata, ttl);
    }

    fn add_hosts(&mut self, path: &Path, text: &str, ttl: u32) {
        let (entries, bad) = hosts::parse(text);
        for (line, why) in bad {
            tracing::warn!("{}:{line}: {why}: line skipped", path.display());
        }
        for entry in entries {
            let mut first = None;
            for name in &entry.names {
                match Zone::parse(name) {
                    Ok(zone) => {
                        self.add(zone.wire(), &address(entry.ip), ttl);
                        first.get_or_insert(zone);
                    }
                    Err(why) => tracing::warn!("{}: {why}: name skipped", path.display()),
                }
            }
            if let Some(first) = first {
                self.add_ptr(entry.ip, &first, ttl);
            }
        }
    }

    fn add_ptr(&mut self, ip: IpAddr, target: &Zone, ttl: u32) {
        let Ok(reverse) = Zone::parse(&Name::from(ip).to_ascii()) else {
            return;
        };
        if !self.ptr_owners.insert(reverse.wire().into()) {
            return;
        }
        let Ok(target) = Name::from_ascii(target.to_string()) else {
            return;
        };
        self.add(reverse.wire(), &RData::PTR(PTR(target)), ttl);
    }

    fn add(&mut self, owner: &[u8], rdata: &RData, ttl: u32) {
        let Ok(bytes) = rdata.to_bytes() else { return };
        let target = match rdata {
            RData::CNAME(c) => Some(&c.0),
            RData::PTR(p) => Some(&p.0),
            RData::MX(mx) => Some(&mx.exchange),
            RData::SRV(srv) => Some(&srv.target),
            _ => None,
        };
        let rr = Rr {
            rtype: rdata.record_type().into(),
            ttl,
            rdata: bytes.into(),
            target: target
                .and_then(|t| t.to_lowercase().to_bytes().ok())
                .map(Into::into),
        };
        let records = self.names.entry(owner.into()).or_default();
        if !records
            .iter()
            .any(|r| r.rtype == rr.rtype && r.rdata == rr.rdata)
        {
            records.push(rr);
        }
    }
}

fn address(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(v4.into()),
        IpAddr::V6(v6) => RData::AAAA(v6.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(name: &str) -> Vec<u8> {
        Zone::parse(name).unwrap().wire().to_vec()
    }

    #[test]
    fn hosts_give_addresses_and_one_ptr_per_address() {
        let mut b = Builder::default();
        b.add_hosts(
            Path::new("hosts"),
            "192.0.2.7 web.lan web\n192.0.2.7 other.lan\n127.0.0.1 localhost\n127.0.0.1 localhost\n",
            0,
        );
        assert_eq!(b.names[&wire("web.lan")[..]].len(), 1);
        assert_eq!(b.names[&wire("web")[..]].len(), 1);
        let ptr = &b.names[&wire("7.2.0.192.in-addr.arpa")[..]];
        assert_eq!(ptr.len(), 1, "the first name of an address owns its PTR");
        assert_eq!(ptr[0].target.as_deref(), Some(&wire("web.lan")[..]));
        assert_eq!(b.names[&wire("localhost")[..]].len(), 1, "duplicates fold");
    }

    #[test]
    fn names_above_local_names_exist() {
        let mut b = Builder::default();
        b.add_hosts(
            Path::new("hosts"),
            "192.0.2.7 a.b.lan\n192.0.2.8 c.b.lan\n",
            0,
        );
        let data = LocalData {
            parents: parents(b.names.keys()),
            names: b.names,
            ..LocalData::empty()
        };
        assert!(data.has_below(&wire("b.lan")));
        assert!(data.has_below(&wire("lan")));
        assert!(data.has_below(&wire("in-addr.arpa")));
        assert!(
            !data.has_below(&wire("a.b.lan")),
            "a local name, not above one"
        );
        assert!(!data.has_below(&wire("x.lan")));
        assert!(!data.has_below(&wire(".")));
    }

    #[test]
    fn private_zones_and_single_labels() {
        let data = LocalData {
            domain_needed: true,
            private_zones: private_reverse_zones(),
            ..LocalData::empty()
        };
        let keeps_home = |name: &[u8]| data.home_zone(name).is_some();
        assert!(keeps_home(&wire("printer")));
        assert!(!keeps_home(&wire("printer.lan")));
        assert!(!keeps_home(&wire(".")));
        assert!(keeps_home(&wire("1.0.16.172.in-addr.arpa")));
        assert!(keeps_home(&wire("5.1.168.192.in-addr.arpa")));
        assert!(!keeps_home(&wire("1.0.32.172.in-addr.arpa")));
        assert!(!keeps_home(&wire("8.8.8.8.in-addr.arpa")));
        assert!(keeps_home(&wire(&format!("1.{}ip6.arpa", "0.".repeat(31)))));
        assert_eq!(data.home_zone(&wire("printer")), Some(Home::Label));
        let reverse = wire("1.168.192.in-addr.arpa");
        let Some(Home::Zone(zone)) = data.home_zone(&reverse) else {
            panic!("a private reverse name lies in its zone");
        };
        assert_eq!(&reverse[zone..], &wire("168.192.in-addr.arpa")[..]);
        let apex = wire("168.192.in-addr.arpa");
        assert_eq!(data.home_zone(&apex), Some(Home::Zone(0)));
    }
}
