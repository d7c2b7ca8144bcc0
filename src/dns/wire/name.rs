//! A domain name in wire form, held inline.

/// A domain name in wire form, held inline so a query needs no allocation.
#[derive(Clone, Copy)]
pub struct NameBuf {
    pub(super) len: u8,
    pub(super) bytes: [u8; 255],
}

impl NameBuf {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn from_wire(wire: &[u8]) -> Option<Self> {
        let mut bytes = [0; 255];
        bytes.get_mut(..wire.len())?.copy_from_slice(wire);
        Some(Self {
            len: wire.len() as u8,
            bytes,
        })
    }

    pub fn to_lowercase(self) -> Self {
        let mut lower = self;
        lower.bytes[..usize::from(self.len)].make_ascii_lowercase();
        lower
    }
}

/// Names compare by their bytes as held, not letter case aside: compare
/// lowercased names for the DNS's case-insensitive equality (RFC 4343).
impl PartialEq for NameBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for NameBuf {}

impl std::fmt::Display for NameBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::dns::zone::write_wire_name(f, self.as_bytes())
    }
}
