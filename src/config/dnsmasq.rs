//! One grammar for dnsmasq's DNS lines: routing (`server=`, `local=`, `address=`,
//! `rev-server=`, and splitdns's own `rewrite=`) and local records (`host-record=`,
//! `cname=`, `srv-host=`, `txt-record=`, `ptr-record=`, `mx-host=`), so that lines
//! copied from a dnsmasq.conf work in `rules` as they are, and `import-dnsmasq`
//! reads a whole dnsmasq.conf with the same parser.
//!
//! Why this file is long: one parser per supported option, each short, and
//! two hundred lines of tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{CNAME, MX, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData};
use ipnet::IpNet;

use super::local::{RecordError, StaticRecord, rdata_name};
use super::server_spec::{ServerError, ServerSpec, parse_server};
use crate::dns::zone::Zone;

/// What one rule line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `server=ADDR`: one more default upstream.
    DefaultServer(ServerSpec),
    /// A rule for one or more zones.
    Zones {
        zones: Vec<Zone>,
        action: RuleAction,
    },
    /// `rewrite=/infra.local/service.consul/`: names in `zones` are asked as the
    /// same names under `target`.
    Rewrite { zones: Vec<Zone>, target: Zone },
    /// Local records (`host-record=`, `cname=`, ...).
    Records(Vec<StaticRecord>),
}

/// What answers a zone.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleAction {
    /// Forward to these servers, in order.
    Forward(Vec<ServerSpec>),
    /// `server=/x/#`: forward to the default upstreams.
    DefaultUpstream,
    /// `server=/x/`, `local=/x/`: answered here; NXDOMAIN for names without local data.
    Local,
    /// `address=/x/IP`: these addresses for x and every name below it.
    Address(Vec<IpAddr>),
}

/// The options [`Rule::parse`] understands.
pub const RULE_OPTIONS: &[&str] = &[
    "server",
    "local",
    "address",
    "rev-server",
    "rewrite",
    "host-record",
    "cname",
    "srv-host",
    "txt-record",
    "ptr-record",
    "mx-host",
];

/// Why a rule line is not understood; the config error around it names the
/// line and where it is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("expected OPTION=VALUE ({})", supported())]
    NoValue,
    #[error("unsupported rule {option:?} ({})", supported())]
    Unsupported { option: String },
    /// The value does not have the option's form, which `usage` gives with an example.
    #[error("{usage}")]
    Form { usage: &'static str },
    /// One field is not what the option takes there.
    #[error("{field:?} is not {expected}; {usage}")]
    Field {
        field: String,
        expected: &'static str,
        usage: &'static str,
    },
    #[error("a domain list must end with '/', as in {example}")]
    UnclosedDomains { example: &'static str },
    #[error(
        "an empty domain between slashes (dnsmasq's \"unqualified names\") is not \
         supported; write /example.com/"
    )]
    EmptyDomain,
    #[error("/#/ (every name) is not supported; name the zones")]
    EveryName,
    #[error(
        "{domain:?}: wildcards inside a label are not supported; a zone already covers \
         every name below it"
    )]
    Wildcard { domain: String },
    #[error("{domain:?} is not a domain name: {reason}")]
    NotADomain { domain: String, reason: String },
    #[error("{address:?} is not an IP address")]
    NotAnAddress { address: String },
    /// A zone or owner name that is not a valid name.
    #[error("{0}")]
    Zone(String),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// `supported: server=, local=, ...`, for the errors of a line that is none of them.
fn supported() -> String {
    let options: Vec<String> = RULE_OPTIONS.iter().map(|o| format!("{o}=")).collect();
    format!("supported: {}", options.join(", "))
}

/// `name` as a zone, or why it is none.
fn zone(name: &str) -> Result<Zone, RuleError> {
    Zone::parse(name).map_err(RuleError::Zone)
}

impl Rule {
    /// Parses one line such as `server=/consul/127.0.0.1#8600`; a comment after it
    /// (`# local agent`) is dropped, as dnsmasq drops it.
    pub fn parse(line: &str) -> Result<Self, RuleError> {
        let (key, value) = split_option(strip_comment(line));
        let value = value.ok_or(RuleError::NoValue)?;
        match key {
            "server" | "local" => parse_server_rule(value),
            "address" => parse_address_rule(value),
            "rev-server" => parse_rev_server(value),
            "rewrite" => parse_rewrite(value),
            "host-record" => parse_host_record(value),
            "cname" => parse_cname(value),
            "srv-host" => parse_srv_host(value),
            "txt-record" => parse_txt_record(value),
            "ptr-record" => parse_ptr_record(value),
            "mx-host" => parse_mx_host(value),
            other => Err(RuleError::Unsupported {
                option: other.to_string(),
            }),
        }
    }
}

/// `option=value` or a bare `option`, as in a dnsmasq.conf line (a leading `--`,
/// as on dnsmasq's command line, is allowed).
pub fn split_option(line: &str) -> (&str, Option<&str>) {
    let line = line.trim();
    let line = line.strip_prefix("--").unwrap_or(line);
    match line.split_once('=') {
        Some((key, value)) => (key.trim(), Some(value.trim())),
        None => (line, None),
    }
}

/// A dnsmasq.conf line without its comment: `#` starts one at the beginning of
/// the line or after white space, outside quotes (so `127.0.0.1#8600` stays).
pub fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted && previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line.trim_end()
}

/// Comma-separated fields; `"..."` quotes commas and keeps spaces, `\"` and `\\`
/// escape inside quotes (dnsmasq's rules for txt-record and friends).
pub fn fields(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => out.last_mut().expect("one field").extend(chars.next()),
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out.iter().map(|f| f.trim().to_string()).collect()
}

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

fn parse_server_rule(value: &str) -> Result<Rule, RuleError> {
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

fn parse_address_rule(value: &str) -> Result<Rule, RuleError> {
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
fn parse_rev_server(value: &str) -> Result<Rule, RuleError> {
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
fn parse_rewrite(value: &str) -> Result<Rule, RuleError> {
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

/// A TTL field: whole seconds.
fn ttl_field(text: &str) -> Option<u32> {
    text.parse().ok()
}

fn record(name: &str, rdata: RData, ttl: Option<u32>) -> Result<StaticRecord, RuleError> {
    Ok(StaticRecord {
        name: zone(name)?,
        rdata,
        ttl,
    })
}

/// `host-record=NAME[,NAME...],[IPV4],[IPV6][,TTL]`: A and AAAA for every name,
/// and a PTR from each address back to the first name.
fn parse_host_record(value: &str) -> Result<Rule, RuleError> {
    let usage =
        "expected NAME[,NAME...],ADDRESS[,ADDRESS][,TTL], as in host-record=gw.lan,192.0.2.1";
    let fields = fields(value);
    let (mut names, mut addrs, mut ttl) = (Vec::new(), Vec::new(), None);
    for (i, field) in fields.iter().enumerate() {
        if field.is_empty() {
            continue;
        }
        if let Ok(ip) = field.parse::<IpAddr>() {
            addrs.push(ip);
        } else if i + 1 == fields.len() && !addrs.is_empty() && ttl_field(field).is_some() {
            ttl = ttl_field(field);
        } else if addrs.is_empty() {
            names.push(field.as_str());
        } else {
            return Err(RuleError::Field {
                field: field.clone(),
                expected: "an address",
                usage,
            });
        }
    }
    if names.is_empty() || addrs.is_empty() {
        return Err(RuleError::Form { usage });
    }
    let mut records = Vec::new();
    for name in &names {
        for ip in &addrs {
            let rdata = match ip {
                IpAddr::V4(v4) => RData::A((*v4).into()),
                IpAddr::V6(v6) => RData::AAAA((*v6).into()),
            };
            records.push(record(name, rdata, ttl)?);
        }
    }
    let target = rdata_name(names[0])?;
    for ip in addrs {
        let reverse = Name::from(ip).to_ascii();
        records.push(record(&reverse, RData::PTR(PTR(target.clone())), ttl)?);
    }
    Ok(Rule::Records(records))
}

/// `cname=ALIAS[,ALIAS...],TARGET[,TTL]`.
fn parse_cname(value: &str) -> Result<Rule, RuleError> {
    let usage = "expected ALIAS[,ALIAS...],TARGET[,TTL], as in cname=www.lan,gw.lan";
    let mut fields = fields(value);
    let ttl = match fields.last().and_then(|f| ttl_field(f)) {
        Some(ttl) if fields.len() > 2 => {
            fields.pop();
            Some(ttl)
        }
        _ => None,
    };
    let target = fields
        .pop()
        .filter(|t| !t.is_empty())
        .ok_or(RuleError::Form { usage })?;
    if fields.is_empty() {
        return Err(RuleError::Form { usage });
    }
    let target = rdata_name(&target)?;
    fields
        .iter()
        .map(|alias| record(alias, RData::CNAME(CNAME(target.clone())), ttl))
        .collect::<Result<_, _>>()
        .map(Rule::Records)
}

/// `srv-host=_SERVICE._PROTO.DOMAIN[,TARGET[,PORT[,PRIORITY[,WEIGHT]]]]`: note the
/// field order differs from a zone file. Without a target the service is
/// "decidedly not available" (RFC 2782: target `.`).
fn parse_srv_host(value: &str) -> Result<Rule, RuleError> {
    let usage = "expected _SERVICE._PROTO.DOMAIN,TARGET[,PORT[,PRIORITY[,WEIGHT]]], \
                 as in srv-host=_ldap._tcp.example.com,ldap.example.com,389";
    let fields = fields(value);
    let number = |i: usize, default: u16| -> Result<u16, RuleError> {
        match fields.get(i).map(String::as_str) {
            None | Some("") => Ok(default),
            Some(text) => text.parse().map_err(|_| RuleError::Field {
                field: text.to_string(),
                expected: "a number from 0 to 65535",
                usage,
            }),
        }
    };
    let name = fields
        .first()
        .filter(|n| !n.is_empty())
        .ok_or(RuleError::Form { usage })?;
    let target = match fields.get(1).map(String::as_str) {
        None | Some("") => Name::root(),
        Some(target) => rdata_name(target)?,
    };
    let srv = SRV::new(number(3, 0)?, number(4, 0)?, number(2, 1)?, target);
    Ok(Rule::Records(vec![record(name, RData::SRV(srv), None)?]))
}

/// `txt-record=NAME[,TEXT...]`: one TXT record whose strings are the fields;
/// text over 255 bytes is split into several strings (RFC 1035 §3.3.14).
fn parse_txt_record(value: &str) -> Result<Rule, RuleError> {
    let fields = fields(value);
    let name = fields
        .first()
        .filter(|n| !n.is_empty())
        .ok_or(RuleError::Form {
            usage: "expected NAME[,TEXT...], as in txt-record=example.com,\"v=spf1 -all\"",
        })?;
    let mut strings: Vec<&[u8]> = Vec::new();
    for text in &fields[1..] {
        if text.is_empty() {
            strings.push(b"");
        }
        strings.extend(text.as_bytes().chunks(255));
    }
    if strings.is_empty() {
        strings.push(b"");
    }
    let txt = TXT::from_bytes(strings);
    Ok(Rule::Records(vec![record(name, RData::TXT(txt), None)?]))
}

/// `ptr-record=NAME,TARGET`.
fn parse_ptr_record(value: &str) -> Result<Rule, RuleError> {
    let usage = RuleError::Form {
        usage: "expected NAME,TARGET, as in ptr-record=1.2.0.192.in-addr.arpa,gw.lan",
    };
    let fields = fields(value);
    let [name, target] = fields.as_slice() else {
        return Err(usage);
    };
    if name.is_empty() || target.is_empty() {
        return Err(usage);
    }
    let rdata = RData::PTR(PTR(rdata_name(target)?));
    Ok(Rule::Records(vec![record(name, rdata, None)?]))
}

/// `mx-host=NAME,HOST[,PREFERENCE]`; preference 1 by default, as in dnsmasq.
fn parse_mx_host(value: &str) -> Result<Rule, RuleError> {
    let usage = "expected NAME,HOST[,PREFERENCE], as in mx-host=example.com,mail.example.com,10 \
                 (splitdns does not guess the host)";
    let fields = fields(value);
    let (name, host) = match fields.as_slice() {
        [name, host] | [name, host, _] if !name.is_empty() && !host.is_empty() => (name, host),
        _ => return Err(RuleError::Form { usage }),
    };
    let preference = match fields.get(2) {
        Some(p) => p.parse().map_err(|_| RuleError::Field {
            field: p.clone(),
            expected: "a preference from 0 to 65535",
            usage,
        })?,
        None => 1,
    };
    let rdata = RData::MX(MX::new(preference, rdata_name(host)?));
    Ok(Rule::Records(vec![record(name, rdata, None)?]))
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
        assert!(
            Rule::parse("dhcp-range=1,2")
                .unwrap_err()
                .to_string()
                .contains("unsupported")
        );
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

    fn records(line: &str) -> Vec<String> {
        match Rule::parse(line).unwrap() {
            Rule::Records(records) => records
                .iter()
                .map(|r| match &r.rdata {
                    RData::TXT(txt) => {
                        let strings: Vec<String> = txt
                            .txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect();
                        format!("{} TXT {}", r.name, strings.join("|"))
                    }
                    rdata => format!("{} {} {rdata}", r.name, r.rtype()),
                })
                .collect(),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn record_rules() {
        assert_eq!(
            records("host-record=gw.lan,GW,192.0.2.1,2001:db8::1,60"),
            [
                "gw.lan. A 192.0.2.1",
                "gw.lan. AAAA 2001:db8::1",
                "gw. A 192.0.2.1",
                "gw. AAAA 2001:db8::1",
                "1.2.0.192.in-addr.arpa. PTR gw.lan.",
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR gw.lan.",
            ]
        );
        assert_eq!(
            records("cname=www.lan,ftp.lan,gw.lan"),
            ["www.lan. CNAME gw.lan.", "ftp.lan. CNAME gw.lan."]
        );
        assert_eq!(
            records("srv-host=_ldap._tcp.example.com,ldap.example.com,389"),
            ["_ldap._tcp.example.com. SRV 0 0 389 ldap.example.com."]
        );
        assert_eq!(
            records("srv-host=_x._tcp.lan"),
            ["_x._tcp.lan. SRV 0 0 1 ."]
        );
        assert_eq!(
            records(r#"txt-record=example.com,"v=spf1 a -all","x,y""#),
            ["example.com. TXT v=spf1 a -all|x,y"]
        );
        assert_eq!(
            records("ptr-record=1.2.0.192.in-addr.arpa,gw.lan"),
            ["1.2.0.192.in-addr.arpa. PTR gw.lan."]
        );
        assert_eq!(
            records("mx-host=example.com,mail.example.com,10"),
            ["example.com. MX 10 mail.example.com."]
        );
        assert!(Rule::parse("mx-host=example.com").is_err());
        assert!(Rule::parse("host-record=gw.lan").is_err());
        assert!(Rule::parse("cname=gw.lan").is_err());
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
    fn comments_and_fields() {
        assert_eq!(
            strip_comment("server=/consul/127.0.0.1#8600 # agent"),
            "server=/consul/127.0.0.1#8600"
        );
        assert_eq!(strip_comment("# all of it"), "");
        assert_eq!(
            strip_comment("txt-record=a,\"x # y\""),
            "txt-record=a,\"x # y\""
        );
        assert_eq!(split_option("--no-resolv"), ("no-resolv", None));
        assert_eq!(
            split_option(" cache-size = 100 "),
            ("cache-size", Some("100"))
        );
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
