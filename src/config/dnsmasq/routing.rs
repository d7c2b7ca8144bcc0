//! The routing lines: `server=`, `local=`, `address=`, `rev-server=` and
//! splitdns's own `rewrite=`, each the zones it names and what answers them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;
use ipnet::IpNet;

use super::rule::{Rule, RuleAction, RuleError, zone};
use crate::config::server_spec::parse_server;
use crate::dns::zone::Zone;

/// `/a/b/VALUE` -> (zones, VALUE). A value without the slashes has no zones.
fn split_zones(value: &str) -> Result<(Vec<Zone>, &str), RuleError> {
    let Some(rest) = value.strip_prefix('/') else {
        return Ok((Vec::new(), value));
    };
    // An encrypted server has slashes of its own: `/corp.example/tls://192.0.2.53#ns`.
    // The server starts after the last '/' before its "://".
    let scheme = rest
        .find("://")
        .and_then(|j| rest[..j].rfind('/').map(|i| i + 1));
    let (domains, target) = match scheme {
        Some(i) => rest[..i]
            .strip_suffix('/')
            .map(|domains| (domains, &rest[i..]))
            .ok_or(RuleError::UnclosedDomains {
                example: "/corp.example/tls://192.0.2.53#ns",
            })?,
        None => rest.rsplit_once('/').ok_or(RuleError::UnclosedDomains {
            example: "/consul/",
        })?,
    };
    let zones = domains
        .split('/')
        .map(|d| match d {
            "" => Err(RuleError::EmptyDomain),
            "#" => Err(RuleError::EveryName),
            d if d.starts_with('*') => Err(RuleError::Wildcard {
                domain: d.to_string(),
            }),
            // dnsmasq reads /.example.com/ as /example.com/.
            d => zone(&ascii_domain(d.strip_prefix('.').unwrap_or(d))?),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((zones, target.trim()))
}

/// An internationalised domain in its ASCII form (RFC 5891), as dnsmasq built with IDN
/// support reads it: `bücher.example` is `xn--bcher-kva.example`.
fn ascii_domain(domain: &str) -> Result<String, RuleError> {
    if domain.is_ascii() {
        return Ok(domain.to_string());
    }
    Name::from_utf8(domain)
        .map(|name| name.to_ascii())
        .map_err(|e| RuleError::NotADomain {
            domain: domain.to_string(),
            reason: e.to_string(),
        })
}

pub(super) fn parse_server_rule(value: &str) -> Result<Rule, RuleError> {
    let (zones, target) = split_zones(value)?;
    if zones.is_empty() {
        return Ok(Rule::DefaultServer(parse_server(target)?));
    }
    let action = match target {
        "" => RuleAction::Local,
        "#" => RuleAction::DefaultUpstream,
        server => RuleAction::Forward(vec![parse_server(server)?]),
    };
    Ok(Rule::Zones { zones, action })
}

pub(super) fn parse_address_rule(value: &str) -> Result<Rule, RuleError> {
    let (zones, target) = split_zones(value)?;
    if zones.is_empty() {
        return Err(RuleError::Form {
            usage: "expected /DOMAIN/ADDRESS, as in address=/gw.lan/192.0.2.1",
        });
    }
    let action = match target {
        "" => RuleAction::Local,
        "#" => RuleAction::Address(vec![
            Ipv4Addr::UNSPECIFIED.into(),
            Ipv6Addr::UNSPECIFIED.into(),
        ]),
        ip => RuleAction::Address(vec![ip.parse().map_err(|_| RuleError::NotAnAddress {
            address: ip.to_string(),
        })?]),
    };
    Ok(Rule::Zones { zones, action })
}

/// `rev-server=PREFIX[,SERVER]`: without a server the reverse zones are local, as
/// dnsmasq(8) gives `--rev-server=<ip-address>[/<prefix-len>][,<server>]` and logs
/// "using only locally-known addresses for 10.in-addr.arpa" for `rev-server=10.0.0.0/8`.
pub(super) fn parse_rev_server(value: &str) -> Result<Rule, RuleError> {
    let usage = "expected PREFIX[,SERVER] as in rev-server=10.0.0.0/8,127.0.0.1#8600";
    let (prefix, server) = match value.split_once(',') {
        Some((prefix, server)) => (prefix, Some(server)),
        None => (value, None),
    };
    let prefix: IpNet = prefix
        .trim()
        .parse()
        .or_else(|_| prefix.trim().parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| RuleError::Field {
            field: prefix.to_string(),
            expected: "a prefix",
            usage,
        })?;
    let action = match server {
        Some(server) => RuleAction::Forward(vec![parse_server(server.trim())?]),
        None => RuleAction::Local,
    };
    Ok(Rule::Zones {
        zones: reverse_zones(prefix),
        action,
    })
}

/// `/infra.local/service.consul/`: every zone but the last is rewritten into the last.
pub(super) fn parse_rewrite(value: &str) -> Result<Rule, RuleError> {
    let usage = RuleError::Form {
        usage: "expected /ZONE/TARGET/, as in rewrite=/infra.local/service.consul/",
    };
    let inner = value
        .strip_prefix('/')
        .ok_or(usage.clone())?
        .strip_suffix('/')
        .unwrap_or_else(|| value.trim_start_matches('/'));
    let mut names: Vec<&str> = inner.split('/').collect();
    let target = names.pop().filter(|_| !names.is_empty()).ok_or(usage)?;
    let zones = names.into_iter().map(zone).collect::<Result<Vec<_>, _>>()?;
    Ok(Rule::Rewrite {
        zones,
        target: zone(target)?,
    })
}

/// The reverse zones that cover `prefix` exactly: `10.0.0.0/8` is `10.in-addr.arpa`;
/// a prefix off a label boundary (`172.16.0.0/12`) becomes every zone one label
/// deeper that it covers (`16.172.in-addr.arpa` .. `31.172.in-addr.arpa`).
pub fn reverse_zones(prefix: IpNet) -> Vec<Zone> {
    let prefix = prefix.trunc();
    let (digits, bits_per_label, radix, suffix): (Vec<u8>, u8, u8, &str) = match prefix {
        IpNet::V4(n) => (n.addr().octets().to_vec(), 8, 0, "in-addr.arpa"),
        IpNet::V6(n) => (
            n.addr()
                .octets()
                .iter()
                .flat_map(|b| [b >> 4, b & 15])
                .collect(),
            4,
            16,
            "ip6.arpa",
        ),
    };
    let whole = usize::from(prefix.prefix_len() / bits_per_label);
    let spare = prefix.prefix_len() % bits_per_label;
    let fmt_label = |d: u8| {
        if radix == 16 {
            format!("{d:x}")
        } else {
            d.to_string()
        }
    };
    let base: Vec<String> = digits[..whole].iter().map(|&d| fmt_label(d)).collect();
    let variants: Vec<Vec<String>> = if spare == 0 {
        vec![base]
    } else {
        let free = bits_per_label - spare;
        let first = digits[whole];
        (0..(1u16 << free))
            .map(|k| {
                let mut labels = base.clone();
                labels.push(fmt_label(first + k as u8));
                labels
            })
            .collect()
    };
    variants
        .into_iter()
        .map(|labels| {
            let mut name: Vec<String> = labels.into_iter().rev().collect();
            name.push(suffix.to_string());
            Zone::parse(&name.join(".")).expect("reverse zone names are valid")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(rule: Rule) -> Vec<String> {
        match rule {
            Rule::Zones { zones, .. } => zones.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn server_rules_take_encrypted_servers() {
        let Rule::Zones { zones, action } =
            Rule::parse("server=/corp.example/tls://192.0.2.53#ns.corp.example").unwrap()
        else {
            panic!("a zone rule");
        };
        assert_eq!(zones, [Zone::parse("corp.example").unwrap()]);
        let RuleAction::Forward(servers) = action else {
            panic!("forwards");
        };
        assert_eq!(
            servers[0].to_string(),
            "tls://192.0.2.53:853#ns.corp.example"
        );
        let Rule::DefaultServer(s) =
            Rule::parse("server=https://192.0.2.1/dns-query#doh.example").unwrap()
        else {
            panic!("a default server");
        };
        assert_eq!(s.transport_name(), "https");
    }

    #[test]
    fn server_forms() {
        let r = Rule::parse("server=/consul/127.0.0.1#8600").unwrap();
        assert_eq!(
            r,
            Rule::Zones {
                zones: vec![Zone::parse("consul").unwrap()],
                action: RuleAction::Forward(vec!["127.0.0.1:8600".parse().unwrap()]),
            }
        );
        assert!(
            matches!(Rule::parse("server=/a/b/#").unwrap(), Rule::Zones { action: RuleAction::DefaultUpstream, ref zones } if zones.len() == 2)
        );
        assert!(matches!(
            Rule::parse("server=/a/").unwrap(),
            Rule::Zones {
                action: RuleAction::Local,
                ..
            }
        ));
        assert!(matches!(
            Rule::parse("local=/lan/").unwrap(),
            Rule::Zones {
                action: RuleAction::Local,
                ..
            }
        ));
        assert_eq!(
            Rule::parse("server=192.0.2.1").unwrap(),
            Rule::DefaultServer("192.0.2.1:53".parse().unwrap())
        );
        assert!(Rule::parse("server=/a/1.2.3.4@eth0").is_err());
    }

    #[test]
    fn address_forms() {
        assert!(
            matches!(Rule::parse("address=/gw.lan/192.0.2.1").unwrap(), Rule::Zones { action: RuleAction::Address(ref a), .. } if a.len() == 1)
        );
        assert!(
            matches!(Rule::parse("address=/ads.example/#").unwrap(), Rule::Zones { action: RuleAction::Address(ref a), .. } if a.len() == 2)
        );
        assert!(matches!(
            Rule::parse("address=/x/").unwrap(),
            Rule::Zones {
                action: RuleAction::Local,
                ..
            }
        ));
    }

    #[test]
    fn rewrite_rule() {
        assert_eq!(
            Rule::parse("rewrite=/infra.local/service.consul/").unwrap(),
            Rule::Rewrite {
                zones: vec![Zone::parse("infra.local").unwrap()],
                target: Zone::parse("service.consul").unwrap(),
            }
        );
        assert!(Rule::parse("rewrite=/infra.local/").is_err());
    }

    #[test]
    fn rev_server_zones() {
        assert_eq!(
            zones(Rule::parse("rev-server=10.0.0.0/8,127.0.0.1#8600").unwrap()),
            ["10.in-addr.arpa."]
        );
        assert_eq!(
            zones(Rule::parse("rev-server=192.168.1.0/24,127.0.0.1").unwrap()),
            ["1.168.192.in-addr.arpa."]
        );
        let z = zones(Rule::parse("rev-server=172.16.0.0/12,127.0.0.1").unwrap());
        assert_eq!(z.len(), 16);
        assert_eq!(z[0], "16.172.in-addr.arpa.");
        assert_eq!(z[15], "31.172.in-addr.arpa.");
        assert_eq!(
            zones(Rule::parse("rev-server=fd00::/8,::1").unwrap()),
            ["d.f.ip6.arpa."]
        );
    }
}
