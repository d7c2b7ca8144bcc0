//! One grammar for dnsmasq's DNS routing lines (`server=`, `local=`, `address=`,
//! `rev-server=`), so that lines copied from a dnsmasq.conf work in `rules` as they are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::zone::Zone;

/// What one rule line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `server=ADDR`: one more default upstream.
    DefaultServer(SocketAddr),
    /// A rule for one or more zones.
    Zones {
        zones: Vec<Zone>,
        action: RuleAction,
    },
}

/// What answers a zone.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleAction {
    /// Forward to these servers, in order.
    Forward(Vec<SocketAddr>),
    /// `server=/x/#`: forward to the default upstreams.
    DefaultUpstream,
    /// `server=/x/`, `local=/x/`: answered here; NXDOMAIN for names without local data.
    Local,
    /// `address=/x/IP`: these addresses for x and every name below it.
    Address(Vec<IpAddr>),
}

const SUPPORTED: &str = "supported: server=, local=, address=, rev-server=";

impl Rule {
    /// Parses one line such as `server=/consul/127.0.0.1#8600`.
    pub fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("expected OPTION=VALUE ({SUPPORTED})"))?;
        match key.trim() {
            "server" | "local" => parse_server_rule(value.trim()),
            "address" => parse_address_rule(value.trim()),
            "rev-server" => parse_rev_server(value.trim()),
            other => Err(format!("unsupported rule {other:?} ({SUPPORTED})")),
        }
    }
}

/// `/a/b/VALUE` -> (zones, VALUE). A value without the slashes has no zones.
fn split_zones(value: &str) -> Result<(Vec<Zone>, &str), String> {
    let Some(rest) = value.strip_prefix('/') else {
        return Ok((Vec::new(), value));
    };
    let (domains, target) = rest
        .rsplit_once('/')
        .ok_or("a domain list must end with '/', as in /consul/")?;
    let zones = domains
        .split('/')
        .map(|d| {
            if d.is_empty() {
                Err("an empty domain between slashes; write /example.com/".to_string())
            } else {
                Zone::parse(d)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((zones, target.trim()))
}

fn parse_server_rule(value: &str) -> Result<Rule, String> {
    let (zones, target) = split_zones(value)?;
    if zones.is_empty() {
        return parse_server(target).map(Rule::DefaultServer);
    }
    let action = match target {
        "" => RuleAction::Local,
        "#" => RuleAction::DefaultUpstream,
        server => RuleAction::Forward(vec![parse_server(server)?]),
    };
    Ok(Rule::Zones { zones, action })
}

fn parse_address_rule(value: &str) -> Result<Rule, String> {
    let (zones, target) = split_zones(value)?;
    if zones.is_empty() {
        return Err("expected /DOMAIN/ADDRESS, as in address=/gw.lan/192.0.2.1".into());
    }
    let action = match target {
        "" => RuleAction::Local,
        "#" => RuleAction::Address(vec![
            Ipv4Addr::UNSPECIFIED.into(),
            Ipv6Addr::UNSPECIFIED.into(),
        ]),
        ip => RuleAction::Address(vec![
            ip.parse()
                .map_err(|_| format!("{ip:?} is not an IP address"))?,
        ]),
    };
    Ok(Rule::Zones { zones, action })
}

fn parse_rev_server(value: &str) -> Result<Rule, String> {
    let usage = "expected PREFIX,SERVER as in rev-server=10.0.0.0/8,127.0.0.1#8600";
    let (prefix, server) = value.split_once(',').ok_or(usage)?;
    let prefix: IpNet = prefix
        .trim()
        .parse()
        .or_else(|_| prefix.trim().parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{prefix:?} is not a prefix; {usage}"))?;
    let server = parse_server(server.trim())?;
    Ok(Rule::Zones {
        zones: reverse_zones(prefix),
        action: RuleAction::Forward(vec![server]),
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

/// An upstream server: `IP`, `IP#PORT`, `IP:PORT`, `[V6]:PORT` or `V6#PORT`; port 53 by default.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a server; expected IP, IP:PORT, [V6]:PORT or IP#PORT");
    if s.contains('@') {
        return Err(format!(
            "{s:?}: choosing a source address or interface with @ is not supported"
        ));
    }
    if let Some((ip, port)) = s.split_once('#') {
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(SocketAddr::new(ip, port));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(rule: Rule) -> Vec<String> {
        match rule {
            Rule::Zones { zones, .. } => zones.iter().map(ToString::to_string).collect(),
            Rule::DefaultServer(_) => Vec::new(),
        }
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
        assert!(
            Rule::parse("dhcp-range=1,2")
                .unwrap_err()
                .contains("unsupported")
        );
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
