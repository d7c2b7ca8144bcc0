//! The question splitdns resolves: from a client, or for itself (SRV targets).

use crate::dns::wire::{NameBuf, Query};

/// A question splitdns resolves, its name lowercased.
#[derive(Clone, Copy)]
pub(crate) struct Question {
    pub lower: NameBuf,
    pub qtype: u16,
    pub qclass: u16,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

impl From<&Query> for Question {
    fn from(query: &Query) -> Self {
        Self {
            lower: query.lower,
            qtype: query.qtype,
            qclass: query.qclass,
            dnssec_ok: query.dnssec_ok(),
            checking_disabled: query.checking_disabled(),
        }
    }
}
