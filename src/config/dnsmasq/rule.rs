//! What a rule line says ([`Rule`]), why it says nothing ([`RuleError`]), and the
//! options there are. The parsers of each option build these; [`Rule::parse`] in the
//! folder's `mod.rs` picks the parser for a line's option.

use std::net::IpAddr;

use crate::config::dnssec::DnssecLine;
use crate::config::local::{RecordError, StaticRecord};
use crate::config::server_spec::{ServerError, ServerSpec};
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
    /// `dnssec`, `trust-anchor=`, `dnssec-check-unsigned`: part of `[dnssec]`.
    Dnssec(DnssecLine),
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
    "dnssec",
    "trust-anchor",
    "dnssec-check-unsigned",
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
    /// A `trust-anchor=` or `dnssec-check-unsigned=` value that is not one.
    #[error("{0}")]
    Dnssec(String),
}

/// `supported: server=, local=, ...`, for the errors of a line that is none of them.
fn supported() -> String {
    let options: Vec<String> = RULE_OPTIONS.iter().map(|o| format!("{o}=")).collect();
    format!("supported: {}", options.join(", "))
}

/// `name` as a zone, or why it is none.
pub(super) fn zone(name: &str) -> Result<Zone, RuleError> {
    Zone::parse(name).map_err(RuleError::Zone)
}
