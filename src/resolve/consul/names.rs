//! What a name under the agent's domain asks for, as Consul's DNS server reads
//! it (`agent/dns/router.go` `parseDomain`, `discovery_results_fetcher.go`
//! `getQueryTypePartsAndSuffixesFromDNSMessage` and
//! `getQueryNameAndTagFromParts`, `parser.go` `parseLabels`), narrowed to the
//! forms the mirror answers. Everything else is [`Lookup::Unmirrored`] and goes
//! to the agent's DNS port as before: where Consul versions read a name
//! differently (dotted tags, dotted node names), or the answer needs more than
//! the catalog and health (prepared queries, mesh, peers, partitions).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::catalog::AgentDns;
use super::view::Want;
use crate::dns::wire;
use crate::dns::zone::Zone;

/// What the mirror makes of one question name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup<'a> {
    /// `<svc>.service`, `<tag>.<svc>.service`, `_<svc>._<tcp|tag>.service`.
    Service {
        service: &'a str,
        tag: Option<&'a str>,
        datacenter: Option<&'a str>,
    },
    /// `<node>.node`.
    Node {
        node: &'a str,
        datacenter: Option<&'a str>,
    },
    /// `<hex>.addr.…`: the address spelled in the name.
    Addr(IpAddr),
    Unmirrored,
}

/// The labels of a wire-format name, first to last, without the root.
fn labels(wire: &[u8]) -> Option<Vec<&str>> {
    let mut out = Vec::with_capacity(6);
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            return Some(out);
        }
        let label = wire.get(at + 1..at + 1 + usize::from(len))?;
        out.push(std::str::from_utf8(label).ok()?);
        at += 1 + usize::from(len);
    }
    None
}

/// Reads `lower`, a lowercased wire name `domain_labels` labels of which are
/// the agent's domain, asked with `qtype`.
pub(super) fn parse(lower: &[u8], domain_labels: usize, qtype: u16) -> Lookup<'_> {
    // R `parseRequestType`: SOA and NS answer the servers, whatever the name.
    if matches!(qtype, wire::TYPE_SOA | wire::TYPE_NS) {
        return Lookup::Unmirrored;
    }
    let Some(all) = labels(lower) else {
        return Lookup::Unmirrored;
    };
    let Some(keep) = all.len().checked_sub(domain_labels) else {
        return Lookup::Unmirrored;
    };
    let labels = &all[..keep];
    // R `isAddrSubdomain`: more than two labels, the second one `addr`.
    if all.len() > 2 && labels.get(1) == Some(&"addr") {
        return addr(labels[0]).map_or(Lookup::Unmirrored, Lookup::Addr);
    }
    const KEYWORDS: [&str; 6] = ["service", "connect", "virtual", "ingress", "node", "query"];
    let (parts, keyword, suffixes) = match labels.iter().rposition(|l| KEYWORDS.contains(l)) {
        Some(at) => (&labels[..at], labels[at], &labels[at + 1..]),
        // The SRV shortcut: the first `_` label from the right acts as if
        // `.service` followed it (`_web._tcp.consul. SRV`).
        None if qtype == wire::TYPE_SRV => match labels.iter().rposition(|l| l.starts_with('_')) {
            Some(at) => (&labels[..=at], "service", &labels[at + 1..]),
            None => return Lookup::Unmirrored,
        },
        None => return Lookup::Unmirrored,
    };
    // P `parseLabels`: no suffix is the agent's datacenter, one is a
    // datacenter; pairs name tenancy, peers or sameness groups.
    let datacenter = match suffixes {
        [] => None,
        [dc] => Some(*dc),
        _ => return Lookup::Unmirrored,
    };
    match (keyword, parts) {
        ("service", [service]) => Lookup::Service {
            service,
            tag: None,
            datacenter,
        },
        ("service", [a, b]) if a.starts_with('_') && b.starts_with('_') => Lookup::Service {
            service: &a[1..],
            tag: (*b != "_tcp").then(|| &b[1..]),
            datacenter,
        },
        ("service", [tag, service]) => Lookup::Service {
            service,
            tag: Some(tag),
            datacenter,
        },
        ("node", [node]) => Lookup::Node { node, datacenter },
        _ => Lookup::Unmirrored,
    }
}

/// Which of `agent`'s domains (the domain or the alt domain) `lower` lies in.
pub(super) fn domain_of<'a>(lower: &[u8], agent: &'a AgentDns) -> Option<&'a str> {
    [Some(&agent.domain), agent.alt_domain.as_ref()]
        .into_iter()
        .flatten()
        .find(|domain| {
            Zone::parse(domain)
                .is_ok_and(|zone| crate::dns::zone::suffixes(lower).any(|s| s == zone.wire()))
        })
        .map(String::as_str)
}

/// The service watch a question in `domain`, one of `agent`'s, would use.
pub(super) fn wanted(lower: &[u8], qtype: u16, agent: &AgentDns, domain: &str) -> Option<Want> {
    match parse(lower, domain.split_terminator('.').count(), qtype) {
        Lookup::Service {
            service,
            datacenter,
            ..
        } => Some(Want {
            datacenter: datacenter.unwrap_or(&agent.datacenter).to_string(),
            service: Some(service.to_string()),
        }),
        _ => None,
    }
}

/// MS `encodeIPAsFqdn` read back: 8 hex digits are an IPv4 address, 32 an
/// IPv6 one.
fn addr(label: &str) -> Option<IpAddr> {
    let digits = label.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<_>>()?;
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_name(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in text.trim_end_matches('.').split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    fn read(text: &str, qtype: u16) -> String {
        format!("{:?}", parse(&wire_name(text), 1, qtype))
    }

    /// The forms of Consul's "DNS static lookups" page, and DRF
    /// `getQueryNameAndTagFromParts`: `_tcp` means no tag.
    #[test]
    fn service_forms() {
        let web = |tag: Option<&str>, dc: Option<&str>| {
            format!(
                "{:?}",
                Lookup::Service {
                    service: "web",
                    tag,
                    datacenter: dc
                }
            )
        };
        assert_eq!(read("web.service.consul", wire::TYPE_A), web(None, None));
        assert_eq!(
            read("web.service.dc2.consul", wire::TYPE_A),
            web(None, Some("dc2"))
        );
        assert_eq!(
            read("v1.web.service.consul", wire::TYPE_A),
            web(Some("v1"), None)
        );
        assert_eq!(
            read("_web._tcp.service.consul", wire::TYPE_SRV),
            web(None, None)
        );
        assert_eq!(
            read("_web._v1.service.consul", wire::TYPE_A),
            web(Some("v1"), None)
        );
        assert_eq!(read("_web._tcp.consul", wire::TYPE_SRV), web(None, None));
    }

    #[test]
    fn what_the_mirror_leaves_to_the_agent() {
        for (name, qtype) in [
            ("web.service.consul", wire::TYPE_SOA),
            ("consul", wire::TYPE_NS),
            ("_web._tcp.consul", wire::TYPE_A),
            ("consul", wire::TYPE_A),
            ("a.b.web.service.consul", wire::TYPE_A),
            ("web.service.default.ns.consul", wire::TYPE_A),
            ("pq.query.consul", wire::TYPE_A),
            ("web.connect.consul", wire::TYPE_A),
            ("web.virtual.consul", wire::TYPE_A),
            ("x.y.node.consul", wire::TYPE_A),
            ("zz000001.addr.dc1.consul", wire::TYPE_A),
        ] {
            assert_eq!(read(name, qtype), "Unmirrored", "{name}");
        }
    }

    /// D-static: `c000020a` is 192.0.2.10, and IPv6 is all 16 bytes.
    #[test]
    fn nodes_and_addr_names() {
        assert_eq!(
            read("node-a.node.dc1.consul", wire::TYPE_A),
            format!(
                "{:?}",
                Lookup::Node {
                    node: "node-a",
                    datacenter: Some("dc1")
                }
            )
        );
        assert_eq!(
            read("c000020a.addr.dc1.consul", wire::TYPE_A),
            "Addr(192.0.2.10)"
        );
        assert_eq!(
            read(
                "20010db800010002cafe000000001337.addr.dc1.consul",
                wire::TYPE_AAAA
            ),
            "Addr(2001:db8:1:2:cafe::1337)"
        );
    }
}
