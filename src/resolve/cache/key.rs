//! The cache key: what makes two questions the same answer, for the cache
//! and for the single-flight table alike.

use crate::dns::question::Question;
use crate::dns::wire::Query;

const KEY_DO: u8 = 1;
const KEY_CD: u8 = 2;

/// The longest key: a name of 255 bytes, type, class and the flags byte.
pub(super) const MAX_KEY: usize = 255 + 5;

/// The cache key of one question, `lowercased name | type | class | flags`,
/// built once per query on the stack and carried down the miss path. It
/// derefs to its bytes, which is what the cache and the flight table hash.
#[derive(Clone, Copy)]
pub struct CacheKey {
    bytes: [u8; MAX_KEY],
    len: u16,
}

impl CacheKey {
    /// The key of `lower` (a lowercased wire-format name) asked with these
    /// type, class and DO/CD bits.
    pub fn new(lower: &[u8], qtype: u16, qclass: u16, dnssec_ok: bool, cd: bool) -> Self {
        let mut bytes = [0; MAX_KEY];
        let n = lower.len();
        bytes[..n].copy_from_slice(lower);
        bytes[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
        bytes[n + 2..n + 4].copy_from_slice(&qclass.to_be_bytes());
        bytes[n + 4] = if dnssec_ok { KEY_DO } else { 0 } | if cd { KEY_CD } else { 0 };
        Self {
            bytes,
            len: (n + 5) as u16,
        }
    }

    /// The key of a client's query.
    pub fn of(query: &Query) -> Self {
        Self::new(
            query.lower.as_bytes(),
            query.qtype,
            query.qclass,
            query.dnssec_ok(),
            query.checking_disabled(),
        )
    }

    /// The key of a question splitdns resolves.
    pub(crate) fn of_question(question: &Question) -> Self {
        Self::new(
            question.lower.as_bytes(),
            question.qtype,
            question.qclass,
            question.dnssec_ok,
            question.checking_disabled,
        )
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for CacheKey {}

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl std::ops::Deref for CacheKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}
