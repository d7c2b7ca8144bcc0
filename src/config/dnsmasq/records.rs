//! The local record lines, with dnsmasq(8)'s field orders: `host-record=`,
//! `cname=`, `srv-host=`, `txt-record=`, `ptr-record=` and `mx-host=`.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{CNAME, MX, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData};

use super::rule::{Rule, RuleError, zone};
use super::syntax::fields;
use crate::config::local::{StaticRecord, rdata_name};

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
pub(super) fn parse_host_record(value: &str) -> Result<Rule, RuleError> {
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
pub(super) fn parse_cname(value: &str) -> Result<Rule, RuleError> {
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
pub(super) fn parse_srv_host(value: &str) -> Result<Rule, RuleError> {
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
pub(super) fn parse_txt_record(value: &str) -> Result<Rule, RuleError> {
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
pub(super) fn parse_ptr_record(value: &str) -> Result<Rule, RuleError> {
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
pub(super) fn parse_mx_host(value: &str) -> Result<Rule, RuleError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
