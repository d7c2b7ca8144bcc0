//! The question splitdns resolves: from a client, or for itself (SRV targets).

use crate::dns::wire::{self, NameBuf, Query};

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

impl Question {
    /// The query splitdns sends upstream for this question, with `id`.
    pub(crate) fn query(&self, id: u16) -> Vec<u8> {
        let mut query = Vec::new();
        self.write_query(id, &mut query);
        query
    }

    /// [`Question::query`] into `out`, with no allocation once it has room.
    pub(crate) fn write_query(&self, id: u16, out: &mut Vec<u8>) {
        wire::write_query(
            out,
            id,
            self.lower.as_bytes(),
            self.qtype,
            self.qclass,
            self.dnssec_ok,
            self.checking_disabled,
        );
    }
}
