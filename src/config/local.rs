//! `[local]` and `[[record]]`: the data splitdns answers itself, as dnsmasq does
//! from /etc/hosts, `host-record=`, `cname=` and friends.

use std::path::PathBuf;

use hickory_proto::rr::{Name, RData, RecordType};
use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::text::ConfigText;
use crate::dns::zone::Zone;

/// `[local]` plus every static record, from `[[record]]` tables and record rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocalConfig {
    /// Hosts files answering A, AAAA and PTR, re-read when they change.
    pub hosts_files: Vec<PathBuf>,
    /// Single-label names are never forwarded (dnsmasq's domain-needed).
    pub domain_needed: bool,
    /// Reverse lookups in the private zones of RFC 6303 are never forwarded
    /// unless a route covers them (dnsmasq's bogus-priv).
    pub bogus_priv: bool,
    /// TTL of local answers without a TTL of their own, in seconds. Default 0,
    /// as dnsmasq's local-ttl: clients ask again instead of caching.
    pub ttl: u32,
    /// Static records in file order: `rules` first, then `[[record]]` tables.
    pub records: Vec<StaticRecord>,
}

/// One static record.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticRecord {
    pub name: Zone,
    pub rdata: RData,
    /// Seconds; `None` takes `[local] ttl`.
    pub ttl: Option<u32>,
}

impl StaticRecord {
    pub fn rtype(&self) -> RecordType {
        self.rdata.record_type()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocal {
    #[serde(default)]
    pub(super) hosts_files: Vec<PathBuf>,
    #[serde(default)]
    pub(super) domain_needed: bool,
    #[serde(default)]
    pub(super) bogus_priv: bool,
    #[serde(default)]
    pub(super) ttl: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecord {
    pub(super) name: Spanned<String>,
    #[serde(rename = "type")]
    pub(super) rtype: Spanned<String>,
    pub(super) value: Spanned<String>,
    pub(super) ttl: Option<u32>,
}

/// The record types a `[[record]]` may have.
pub const RECORD_TYPES: &str = "A, AAAA, CNAME, SRV, TXT, PTR or MX";

/// Why a record's type, value or name is not one splitdns can serve; the config
/// error around it names the key or the rule line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("expected one of {RECORD_TYPES}")]
    UnknownType,
    #[error("not a valid {rtype} value ({reason}); expected e.g. {example}")]
    BadValue {
        rtype: RecordType,
        reason: String,
        example: &'static str,
    },
    #[error("{name:?} is not a domain name ({reason})")]
    BadName { name: String, reason: String },
}

/// `type = "MX"` -> the record type, if it is one splitdns serves locally.
pub fn record_type(text: &str) -> Result<RecordType, RecordError> {
    let rtype = match text.to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        "CNAME" => RecordType::CNAME,
        "SRV" => RecordType::SRV,
        "TXT" => RecordType::TXT,
        "PTR" => RecordType::PTR,
        "MX" => RecordType::MX,
        _ => return Err(RecordError::UnknownType),
    };
    Ok(rtype)
}

/// Parses `value` in zone-file presentation form (RFC 1035 §5.1): `10 mail.example.`
/// for MX, `0 5 8080 web.example.` for SRV, `"v=spf1 -all"` for TXT. Names are
/// taken as absolute whether or not they end in a dot: a record has no origin.
pub fn parse_rdata(rtype: RecordType, value: &str) -> Result<RData, RecordError> {
    let example = match rtype {
        RecordType::A => "192.0.2.1",
        RecordType::AAAA => "2001:db8::1",
        RecordType::CNAME | RecordType::PTR => "host.example.",
        RecordType::SRV => "0 5 8080 host.example. (priority weight port target)",
        RecordType::TXT => "\"some text\" \"more text\"",
        _ => "10 mail.example. (preference host)",
    };
    let rdata = RData::try_from_str(rtype, value).map_err(|e| RecordError::BadValue {
        rtype,
        reason: e.to_string(),
        example,
    })?;
    Ok(absolute(rdata))
}

/// Makes every name inside `rdata` absolute.
fn absolute(rdata: RData) -> RData {
    use hickory_proto::rr::rdata::{CNAME, MX, PTR, SRV};
    let fqdn = |name: &Name| {
        let mut name = name.clone();
        name.set_fqdn(true);
        name
    };
    match rdata {
        RData::CNAME(c) => RData::CNAME(CNAME(fqdn(&c.0))),
        RData::PTR(p) => RData::PTR(PTR(fqdn(&p.0))),
        RData::MX(mx) => RData::MX(MX::new(mx.preference, fqdn(&mx.exchange))),
        RData::SRV(srv) => RData::SRV(SRV::new(
            srv.priority,
            srv.weight,
            srv.port,
            fqdn(&srv.target),
        )),
        other => other,
    }
}

/// A domain name for a record's data, from a dnsmasq field or a TOML string.
pub fn rdata_name(text: &str) -> Result<Name, RecordError> {
    let mut name = Name::from_ascii(text).map_err(|e| RecordError::BadName {
        name: text.to_string(),
        reason: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

impl ConfigText<'_> {
    /// `[local]`, with every static record already gathered.
    pub(super) fn local(&self, raw: RawLocal, records: Vec<StaticRecord>) -> LocalConfig {
        LocalConfig {
            hosts_files: raw.hosts_files,
            domain_needed: raw.domain_needed,
            bogus_priv: raw.bogus_priv,
            ttl: raw.ttl,
            records,
        }
    }

    pub(super) fn record(&self, raw: &Spanned<RawRecord>) -> Result<StaticRecord, ConfigError> {
        let RawRecord {
            name,
            rtype,
            value,
            ttl,
        } = raw.get_ref();
        let key = |field: &str| format!("[[record]] {field}");
        let owner = Zone::parse(name.get_ref()).map_err(|p| self.invalid(&key("name"), name, p))?;
        let rtype =
            record_type(rtype.get_ref()).map_err(|p| self.invalid(&key("type"), rtype, p))?;
        let rdata = parse_rdata(rtype, value.get_ref())
            .map_err(|p| self.invalid(&key("value"), value, p))?;
        Ok(StaticRecord {
            name: owner,
            rdata,
            ttl: *ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::parse;

    #[test]
    fn presentation_values_parse_to_absolute_names() {
        let mx = parse_rdata(RecordType::MX, "10 mail.example").unwrap();
        assert_eq!(mx.to_string(), "10 mail.example.");
        let srv = parse_rdata(RecordType::SRV, "0 5 8080 web.example.").unwrap();
        assert_eq!(srv.to_string(), "0 5 8080 web.example.");
        let txt = parse_rdata(RecordType::TXT, "\"v=spf1 -all\" two").unwrap();
        let RData::TXT(txt) = txt else { panic!() };
        assert_eq!(txt.txt_data.len(), 2);
        assert!(parse_rdata(RecordType::A, "10.0.0.300").is_err());
        assert!(parse_rdata(RecordType::SRV, "0 5 web.example.").is_err());
    }

    #[test]
    fn types_are_case_insensitive_and_limited() {
        assert_eq!(record_type("aaaa").unwrap(), RecordType::AAAA);
        assert!(record_type("NS").unwrap_err().to_string().contains("CNAME"));
    }

    #[test]
    fn bad_record_value_names_key_line_and_form() {
        let text =
            "[local]\nttl = 5\n\n[[record]]\nname = \"lan\"\ntype = \"MX\"\nvalue = \"mail.lan\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("test.toml:7: [[record]] value"), "{err}");
        assert!(err.contains("10 mail.example."), "{err}");
    }

    #[test]
    fn local_defaults_and_builtin_hosts() {
        let c = parse("").unwrap();
        assert!(c.local.hosts_files.is_empty());
        assert_eq!(c.local.ttl, 0);
        assert!(!c.upstream.filter_aaaa);
        assert_eq!(
            Config::builtin().local.hosts_files,
            [PathBuf::from("/etc/hosts")]
        );
    }
}
