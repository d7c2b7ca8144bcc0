//! Reading a message as far as each caller needs: names (compression
//! pointers followed backwards only), the records and their sections, a
//! reply's header and question, a whole message with every length checked.

use std::ops::Range;

use smallvec::SmallVec;

use super::codes::{FLAG_AD, FLAG_QR, FLAG_TC, HEADER_LEN, TYPE_SOA};
use super::name::NameBuf;

pub(super) fn opcode(packet: &[u8]) -> u8 {
    (packet[2] >> 3) & 0x0f
}

pub(crate) fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

pub(super) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// End of an uncompressed name starting at `at` (questions are never compressed:
/// nothing precedes them to point at).
pub(super) fn plain_name_end(buf: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    loop {
        let len = usize::from(*buf.get(at)?);
        if len == 0 {
            return (at + 1 - start <= 255).then_some(at + 1);
        }
        if len > 63 {
            return None;
        }
        at += len + 1;
    }
}

/// End of a possibly compressed name starting at `at`. Pointers are followed only
/// to check they land on a valid name before `at` (no loops, no forward jumps).
pub(super) fn name_end(buf: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    let mut end = None;
    let mut total = 0usize;
    let mut limit = at;
    loop {
        let len = *buf.get(pos)?;
        match len {
            0 => return Some(end.unwrap_or(pos + 1)),
            1..=63 => {
                total += usize::from(len) + 1;
                if total > 255 {
                    return None;
                }
                pos += usize::from(len) + 1;
            }
            0xc0..=0xff => {
                let target = usize::from(read_u16(buf, pos)? & 0x3fff);
                end.get_or_insert(pos + 2);
                if target >= limit {
                    return None;
                }
                limit = target;
                pos = target;
            }
            _ => return None,
        }
    }
}

/// The possibly compressed name at `at`, spelled out and lowercased.
/// Pointers are followed as [`name_end`] allows them: backwards only.
pub(crate) fn read_name(buf: &[u8], at: usize) -> Option<NameBuf> {
    let mut bytes = [0; 255];
    let mut len = 0;
    let (mut pos, mut limit) = (at, at);
    loop {
        let label = usize::from(*buf.get(pos)?);
        match label {
            0 => {
                *bytes.get_mut(len)? = 0;
                return Some(NameBuf {
                    len: (len + 1) as u8,
                    bytes,
                });
            }
            1..=63 => {
                let text = buf.get(pos..=pos + label)?;
                bytes.get_mut(len..=len + label)?.copy_from_slice(text);
                bytes[len + 1..=len + label].make_ascii_lowercase();
                len += label + 1;
                pos += label + 1;
            }
            0xc0..=0xff => {
                let target = usize::from(read_u16(buf, pos)? & 0x3fff);
                if target >= limit {
                    return None;
                }
                (pos, limit) = (target, target);
            }
            _ => return None,
        }
    }
}

/// The section a record sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    Answer,
    Authority,
    Additional,
}

/// Where one resource record lies in a message.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub start: usize,
    pub section: Section,
    pub rtype: u16,
    pub class: u16,
    pub ttl_at: usize,
    pub rdata: Range<usize>,
    pub end: usize,
}

impl Record {
    fn read(buf: &[u8], at: usize) -> Option<Self> {
        let owner_end = name_end(buf, at)?;
        let rtype = read_u16(buf, owner_end)?;
        let class = read_u16(buf, owner_end + 2)?;
        let rdlen = usize::from(read_u16(buf, owner_end + 8)?);
        let rdata = owner_end + 10..owner_end + 10 + rdlen;
        if rdata.end > buf.len() {
            return None;
        }
        Some(Self {
            start: at,
            section: Section::Answer,
            rtype,
            class,
            ttl_at: owner_end + 4,
            end: rdata.end,
            rdata,
        })
    }

    /// The record's TTL, where one with the top bit set reads as 0: "Implementations
    /// should treat TTL values received with the most significant bit set as if the
    /// entire value received was zero" (RFC 2181 §8).
    pub(crate) fn ttl(&self, buf: &[u8]) -> u32 {
        read_u32(buf, self.ttl_at)
            .filter(|ttl| ttl >> 31 == 0)
            .unwrap_or(0)
    }

    /// The SOA MINIMUM field: the last 4 bytes of its RDATA (RFC 1035 §3.3.13).
    pub(crate) fn soa_minimum(&self, buf: &[u8]) -> Option<u32> {
        (self.rtype == TYPE_SOA && self.rdata.len() >= 22)
            .then(|| read_u32(buf, self.rdata.end - 4))
            .flatten()
    }
}

/// The records of a message after its question, in order, with their sections.
/// Stops (returns `None`) at the first record that does not fit the buffer.
pub(crate) struct Records<'a> {
    buf: &'a [u8],
    at: usize,
    left: [u16; 3],
}

impl<'a> Records<'a> {
    pub(crate) fn new(buf: &'a [u8], question_end: usize) -> Self {
        Self {
            buf,
            at: question_end,
            left: [6, 8, 10].map(|at| read_u16(buf, at).unwrap_or(0)),
        }
    }

    /// Where the next record would start: after the last, the end of the message.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// Whether every record counted in the header has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.left == [0; 3]
    }
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let i = self.left.iter().position(|&n| n > 0)?;
        let mut rec = Record::read(self.buf, self.at)?;
        rec.section = [Section::Answer, Section::Authority, Section::Additional][i];
        self.left[i] -= 1;
        self.at = rec.end;
        Some(rec)
    }
}

/// End of the question of a message that has one (header checked by the caller).
pub(crate) fn question_end(buf: &[u8]) -> Option<usize> {
    let end = plain_name_end(buf, HEADER_LEN)? + 4;
    (end <= buf.len()).then_some(end)
}

/// A reply read as far as its header and question: enough to match it to the
/// query waiting for it without walking its records.
pub(crate) struct Reply<'a> {
    buf: &'a [u8],
    question_end: usize,
}

impl<'a> Reply<'a> {
    /// A response (QR=1) to a standard query with exactly one question.
    pub(crate) fn header(buf: &'a [u8]) -> Option<Self> {
        let ok = buf.len() >= HEADER_LEN
            && buf[2] & FLAG_QR != 0
            && opcode(buf) == 0
            && read_u16(buf, 4) == Some(1);
        let question_end = if ok { question_end(buf)? } else { return None };
        Some(Self { buf, question_end })
    }

    pub(crate) fn id(&self) -> u16 {
        u16::from_be_bytes([self.buf[0], self.buf[1]])
    }

    pub(crate) fn truncated(&self) -> bool {
        self.buf[2] & FLAG_TC != 0
    }

    pub(crate) fn rcode(&self) -> u8 {
        self.buf[3] & 0x0f
    }

    /// Whether every record after the question parses and the message ends
    /// with the last one, as [`Message::parse`] requires; nothing is kept.
    pub(crate) fn well_formed(&self) -> bool {
        let mut walk = Records::new(self.buf, self.question_end);
        walk.by_ref().for_each(drop);
        walk.is_done() && walk.offset() == self.buf.len()
    }

    /// Whether the question is `lower`, `qtype`, `qclass`; the name compared
    /// case-insensitively (Consul 1.19+ lowercases it, others echo 0x20 case).
    pub(crate) fn asks(&self, lower: &[u8], qtype: u16, qclass: u16) -> bool {
        let name_end = self.question_end - 4;
        self.buf[HEADER_LEN..name_end].eq_ignore_ascii_case(lower)
            && read_u16(self.buf, name_end) == Some(qtype)
            && read_u16(self.buf, name_end + 2) == Some(qclass)
    }
}

/// A whole message: header fields and the place of every record.
pub(crate) struct Message<'a> {
    pub buf: &'a [u8],
    pub question_end: usize,
    pub records: MessageRecords,
}

/// A message's records, kept inline up to eight: a reply is read once per
/// miss, and most have fewer, so reading one allocates nothing.
pub(crate) type MessageRecords = SmallVec<[Record; 8]>;

impl<'a> Message<'a> {
    /// Walks a message with one question, checking every length and name on the way.
    /// Bytes after the last record are an error: they would be copied into the cache.
    pub(crate) fn parse(buf: &'a [u8]) -> Option<Self> {
        if buf.len() < HEADER_LEN || read_u16(buf, 4)? != 1 {
            return None;
        }
        let question_end = question_end(buf)?;
        let mut walk = Records::new(buf, question_end);
        let records: MessageRecords = walk.by_ref().collect();
        (walk.is_done() && walk.offset() == buf.len()).then_some(Self {
            buf,
            question_end,
            records,
        })
    }

    pub(crate) fn rcode(&self) -> u8 {
        self.buf[3] & 0x0f
    }

    /// The message without its last record, as if it had never had it (the
    /// counts in the header are left: whoever writes it out counts).
    pub(crate) fn without_last(mut self) -> Self {
        if let Some(last) = self.records.pop() {
            self.buf = &self.buf[..last.start];
        }
        self
    }

    /// The question's name, type and class, name compared as written.
    pub(crate) fn question(&self) -> (&[u8], u16, u16) {
        let name_end = self.question_end - 4;
        (
            &self.buf[HEADER_LEN..name_end],
            read_u16(self.buf, name_end).unwrap_or(0),
            read_u16(self.buf, name_end + 2).unwrap_or(0),
        )
    }
}

pub(crate) fn authentic_data(buf: &[u8]) -> bool {
    buf.get(3).is_some_and(|b| b & FLAG_AD != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::write::query_bytes;

    /// RFC 1035 §4.1.4: a name is a sequence of labels ending in a zero
    /// octet, or labels ending in a pointer to a prior occurrence of a name,
    /// or a pointer alone; "F.ISI.ARPA" then "FOO.F.ISI.ARPA" as pointer
    /// and labels, and the root. A pointer forward, or to itself, is no name.
    #[test]
    fn reads_compressed_names_lowercased() {
        let mut msg = vec![0; HEADER_LEN];
        msg.extend_from_slice(b"\x01F\x03ISI\x04ARPA\x00"); // 12: F.ISI.ARPA
        msg.extend_from_slice(b"\x03FOO\xc0\x0c"); // 24: FOO + pointer to 12
        msg.extend_from_slice(b"\xc0\x18"); // 30: pointer to 24
        msg.push(0); // 32: the root
        msg.extend_from_slice(b"\xc0\x24"); // 33: a pointer forward, to 36
        msg.extend_from_slice(b"\xc0\x23"); // 35: a pointer to itself
        let name = |at| read_name(&msg, at).map(|n| n.as_bytes().to_vec());
        assert_eq!(name(12).unwrap(), b"\x01f\x03isi\x04arpa\x00");
        assert_eq!(name(24).unwrap(), b"\x03foo\x01f\x03isi\x04arpa\x00");
        assert_eq!(name(30).unwrap(), b"\x03foo\x01f\x03isi\x04arpa\x00");
        assert_eq!(name(32).unwrap(), b"\x00");
        assert_eq!(name(33), None);
        assert_eq!(name(35), None);
    }

    #[test]
    fn compression_loops_are_rejected() {
        let mut m = query_bytes(b"\x01a\x00", 1);
        m[3] = 0x80;
        m[2] |= FLAG_QR;
        m[7] = 1;
        let at = m.len();
        m.extend_from_slice(&[
            0xc0 | (at >> 8) as u8,
            at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        assert!(Message::parse(&m).is_none());
    }
}
