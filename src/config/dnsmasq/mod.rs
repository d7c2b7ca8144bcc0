//! One grammar for dnsmasq's DNS lines: routing (`server=`, `local=`, `address=`,
//! `rev-server=`, and splitdns's own `rewrite=`) and local records (`host-record=`,
//! `cname=`, `srv-host=`, `txt-record=`, `ptr-record=`, `mx-host=`), so that lines
//! copied from a dnsmasq.conf work in `rules` as they are, and `import-dnsmasq`
//! reads a whole dnsmasq.conf with the same parser.
//!
//! This file picks the parser that reads a line's option ([`Rule::parse`]);
//! `rule.rs` keeps what a line says ([`Rule`]) and why it says nothing
//! ([`RuleError`]), below the parsers that build them; `syntax.rs` splits a
//! dnsmasq.conf line (option, value, comment, fields), `routing.rs` reads the
//! routing options and `records.rs` the record options, one short parser each.

use crate::config::dnssec::{DnssecLine, TrustAnchor};

mod records;
mod routing;
mod rule;
mod syntax;

pub use routing::reverse_zones;
pub use rule::{RULE_OPTIONS, Rule, RuleAction, RuleError};
pub use syntax::{split_option, strip_comment};

impl Rule {
    /// Parses one line such as `server=/consul/127.0.0.1#8600`; a comment after it
    /// (`# local agent`) is dropped, as dnsmasq drops it.
    pub fn parse(line: &str) -> Result<Self, RuleError> {
        let (key, value) = split_option(strip_comment(line));
        match (key, value) {
            ("dnssec", None) => return Ok(Self::Dnssec(DnssecLine::Validate)),
            ("dnssec-check-unsigned", None) => {
                return Ok(Self::Dnssec(DnssecLine::CheckUnsigned(true)));
            }
            _ => {}
        }
        let value = value.ok_or(RuleError::NoValue)?;
        match key {
            "trust-anchor" => TrustAnchor::parse_dnsmasq(value)
                .map(|anchor| Self::Dnssec(DnssecLine::TrustAnchor(anchor)))
                .map_err(RuleError::Dnssec),
            "dnssec-check-unsigned" => match value {
                "no" => Ok(Self::Dnssec(DnssecLine::CheckUnsigned(false))),
                "yes" => Ok(Self::Dnssec(DnssecLine::CheckUnsigned(true))),
                _ => Err(RuleError::Dnssec(
                    "expected dnssec-check-unsigned or dnssec-check-unsigned=no".to_string(),
                )),
            },
            "server" | "local" => routing::parse_server_rule(value),
            "address" => routing::parse_address_rule(value),
            "rev-server" => routing::parse_rev_server(value),
            "rewrite" => routing::parse_rewrite(value),
            "host-record" => records::parse_host_record(value),
            "cname" => records::parse_cname(value),
            "srv-host" => records::parse_srv_host(value),
            "txt-record" => records::parse_txt_record(value),
            "ptr-record" => records::parse_ptr_record(value),
            "mx-host" => records::parse_mx_host(value),
            other => Err(RuleError::Unsupported {
                option: other.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_no_rule_lists_the_supported_options() {
        let err = Rule::parse("dhcp-range=1,2").unwrap_err().to_string();
        assert!(err.contains("unsupported"), "{err}");
        assert!(err.contains("server=, local="), "{err}");
        let err = Rule::parse("no-resolv").unwrap_err().to_string();
        assert!(err.starts_with("expected OPTION=VALUE"), "{err}");
    }
}
