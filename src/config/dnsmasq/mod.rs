//! One grammar for dnsmasq's DNS lines: routing (`server=`, `local=`, `address=`,
//! `rev-server=`, and splitdns's own `rewrite=`) and local records (`host-record=`,
//! `cname=`, `srv-host=`, `txt-record=`, `ptr-record=`, `mx-host=`), so that lines
//! copied from a dnsmasq.conf work in `rules` as they are, and `import-dnsmasq`
//! reads a whole dnsmasq.conf with the same parser.
//!
//! This file keeps what a line says ([`Rule`]), why it says nothing
//! ([`RuleError`]) and which option reads it; `syntax.rs` splits a dnsmasq.conf
//! line (option, value, comment, fields), `routing.rs` reads the routing options
//! and `records.rs` the record options, one short parser each.

mod records;
mod routing;
mod syntax;

use std::net::IpAddr;

use super::local::{RecordError, StaticRecord};
use super::server_spec::{ServerError, ServerSpec};
use crate::dns::zone::Zone;

pub use routing::reverse_zones;
pub use syntax::{split_option, strip_comment};

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
