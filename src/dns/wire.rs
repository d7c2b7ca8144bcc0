//! The few wire-format operations on the hot path, done on bytes.
//!
//! A cache hit must not pay for a full decode and re-encode (RFC 1035 §4.1), so a
//! client query is read only as far as its header, question and OPT record, and a
//! cached answer is kept encoded and patched in place. Everything that builds or
//! inspects whole messages goes through hickory-proto instead.
//!
//! Why this file is long: it is every byte-level read and patch of the hot
//! path in one place, so their bounds checks can be read together.

use std::ops::Range;

pub(crate) const HEADER_LEN: usize = 12;

// The record types and classes splitdns reads or writes itself, defined only
// here (RFC 1035 §3.2.2-§3.2.4, RFC 3596, RFC 2782, RFC 6891, RFC 4034).
pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_NS: u16 = 2;
pub(crate) const TYPE_CNAME: u16 = 5;
pub(crate) const TYPE_SOA: u16 = 6;
pub(crate) const TYPE_HINFO: u16 = 13;
pub(crate) const TYPE_MX: u16 = 15;
pub(crate) const TYPE_TXT: u16 = 16;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_SRV: u16 = 33;
pub(crate) const TYPE_OPT: u16 = 41;
pub(crate) const TYPE_RRSIG: u16 = 46;
pub(crate) const TYPE_ANY: u16 = 255;
pub(crate) const CLASS_IN: u16 = 1;
pub(crate) const CLASS_CH: u16 = 3;

/// The transport a query came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp = 0,
    Tcp = 1,
}

/// The EDNS UDP payload size splitdns advertises and asks upstreams for: the
/// DNS flag day 2020 value, which avoids IP fragmentation on every common path.
pub(crate) const EDNS_UDP_SIZE: u16 = 1232;
/// Without EDNS a UDP response may not exceed 512 bytes (RFC 1035 §4.2.1).
pub(crate) const CLASSIC_UDP_SIZE: usize = 512;

pub(crate) const RCODE_NOERROR: u8 = 0;
pub(crate) const RCODE_FORMERR: u8 = 1;
pub(crate) const RCODE_SERVFAIL: u8 = 2;
pub(crate) const RCODE_NXDOMAIN: u8 = 3;
pub(crate) const RCODE_NOTIMP: u8 = 4;
pub(crate) const RCODE_REFUSED: u8 = 5;
/// Extended RCODE 16 (RFC 6891 §6.1.3): the upper 8 bits go in the OPT record.
pub(crate) const EXT_RCODE_BADVERS: u16 = 16;

const FLAG_QR: u8 = 0x80;
const FLAG_AA: u8 = 0x04;
const FLAG_TC: u8 = 0x02;
const FLAG_RD: u8 = 0x01;
const FLAG_RA: u8 = 0x80;
const FLAG_AD: u8 = 0x20;
const FLAG_CD: u8 = 0x10;
const EDNS_DO: u16 = 0x8000;

/// A domain name in wire form, held inline so a query needs no allocation.
#[derive(Clone, Copy)]
pub struct NameBuf {
    len: u8,
    bytes: [u8; 255],
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

impl std::fmt::Display for NameBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::dns::zone::write_wire_name(f, self.as_bytes())
    }
}

/// The client's EDNS record, as far as splitdns cares (RFC 6891 §6.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A client query, read as far as the answer needs: header, question, OPT.
#[derive(Clone, Copy)]
pub struct Query {
    pub id: u16,
    /// Header byte 2 (QR, opcode, AA, TC, RD) and byte 3 (RA, Z, AD, CD, RCODE).
    pub flags: [u8; 2],
    /// The name exactly as the client wrote it, letter case included.
    pub name: NameBuf,
    /// The same name lowercased: what routing and the cache compare.
    pub lower: NameBuf,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

/// Why a packet is not a query splitdns can answer normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not worth a reply: shorter than a header, or a response (QR=1).
    Drop,
    /// Answer with this RCODE, echoing the header (and the question when it
    /// parsed, and an OPT when the packet has one that parsed).
    Respond {
        rcode: u8,
        question_end: Option<usize>,
        edns: Option<Edns>,
    },
}

impl Query {
    /// Reads a client query. Only the first question and the OPT record are
    /// interpreted; other records in a query are skipped.
    pub fn parse(packet: &[u8]) -> Result<Self, Reject> {
        if packet.len() < HEADER_LEN || packet[2] & FLAG_QR != 0 {
            return Err(Reject::Drop);
        }
        let formerr = |question_end| Reject::Respond {
            rcode: RCODE_FORMERR,
            question_end,
            edns: None,
        };
        if opcode(packet) != 0 {
            // Whatever of the message parses is echoed: its question (UPDATE's
            // zone), and an OPT when it has one (RFC 6891 §6.1.1).
            let question_end = (read_u16(packet, 4) == Some(1))
                .then(|| question_end(packet))
                .flatten();
            let edns = question_end.and_then(|end| find_edns(packet, end).ok().flatten());
            return Err(Reject::Respond {
                rcode: RCODE_NOTIMP,
                question_end,
                edns,
            });
        }
        if read_u16(packet, 4) != Some(1) {
            return Err(formerr(None));
        }
        let name_end = plain_name_end(packet, HEADER_LEN).ok_or(formerr(None))?;
        let (Some(qtype), Some(qclass)) =
            (read_u16(packet, name_end), read_u16(packet, name_end + 2))
        else {
            return Err(formerr(None));
        };
        let question_end = name_end + 4;
        let name = NameBuf::from_wire(&packet[HEADER_LEN..name_end]).ok_or(formerr(None))?;
        let edns = find_edns(packet, question_end).map_err(|()| formerr(Some(question_end)))?;
        Ok(Self {
            id: u16::from_be_bytes([packet[0], packet[1]]),
            flags: [packet[2], packet[3]],
            name,
            lower: name.to_lowercase(),
            qtype,
            qclass,
            edns,
        })
    }

    pub fn recursion_desired(&self) -> bool {
        self.flags[0] & FLAG_RD != 0
    }

    pub fn checking_disabled(&self) -> bool {
        self.flags[1] & FLAG_CD != 0
    }

    pub fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.dnssec_ok)
    }

    /// Starts a response in `out`: the client's ID, RD and CD bits, `flags`
    /// (QR, AA, RA, RCODE), and its question as it was written.
    pub fn write_head(&self, flags: [u8; 2], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(flags[0] | (self.flags[0] & FLAG_RD));
        out.push(flags[1] | (self.flags[1] & FLAG_CD));
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
    }

    /// A response with only the header, the question and RCODE (and an OPT if
    /// the client sent one; an extended RCODE such as BADVERS puts its upper
    /// bits there, RFC 6891 §6.1.3).
    pub fn write_error(&self, rcode: u16, out: &mut Vec<u8>) {
        self.write_head(stored_flags(false, false, (rcode & 0x0f) as u8), out);
        if self.edns.is_some() {
            // RFC 3225 §3: the DO bit of the query is copied into the response.
            push_opt(out, (rcode >> 4) as u8, self.dnssec_ok());
            add_to_arcount(out, 1);
        }
    }

    /// Ends a response to this query whose question ends at `question_end`:
    /// cut back to the question with TC=1 when it and its OPT record would
    /// not fit in `limit`, then the OPT record if the client sent one.
    #[inline]
    pub(crate) fn fit_and_finish(&self, out: &mut Vec<u8>, question_end: usize, limit: usize) {
        let opt_len = if self.edns.is_some() { OPT_LEN } else { 0 };
        if out.len() + opt_len > limit {
            truncate_to_question(out, question_end);
        }
        if self.edns.is_some() {
            push_opt(out, 0, self.dnssec_ok());
            add_to_arcount(out, 1);
        }
    }

    /// The largest response the client takes over UDP.
    pub fn udp_limit(&self) -> usize {
        self.edns.map_or(CLASSIC_UDP_SIZE, |e| {
            usize::from(e.udp_size).max(CLASSIC_UDP_SIZE)
        })
    }
}

fn opcode(packet: &[u8]) -> u8 {
    (packet[2] >> 3) & 0x0f
}

pub(crate) fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// End of an uncompressed name starting at `at` (questions are never compressed:
/// nothing precedes them to point at).
fn plain_name_end(buf: &[u8], mut at: usize) -> Option<usize> {
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
fn name_end(buf: &[u8], at: usize) -> Option<usize> {
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

/// The EDNS record of a query, if any. More than one OPT is a FORMERR (RFC 6891 §6.1.1).
fn find_edns(packet: &[u8], question_end: usize) -> Result<Option<Edns>, ()> {
    let mut walk = Records::new(packet, question_end);
    let mut edns = None;
    for rec in walk.by_ref() {
        if rec.section == Section::Additional && rec.rtype == TYPE_OPT {
            if edns.is_some() {
                return Err(());
            }
            let ttl = read_u32(packet, rec.ttl_at).ok_or(())?;
            edns = Some(Edns {
                udp_size: rec.class,
                version: (ttl >> 16) as u8,
                dnssec_ok: ttl as u16 & EDNS_DO != 0,
            });
        }
    }
    if walk.is_done() { Ok(edns) } else { Err(()) }
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

    pub(crate) fn ttl(&self, buf: &[u8]) -> u32 {
        read_u32(buf, self.ttl_at).unwrap_or(0)
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
    pub records: Vec<Record>,
}

impl<'a> Message<'a> {
    /// Walks a message with one question, checking every length and name on the way.
    /// Bytes after the last record are an error: they would be copied into the cache.
    pub(crate) fn parse(buf: &'a [u8]) -> Option<Self> {
        if buf.len() < HEADER_LEN || read_u16(buf, 4)? != 1 {
            return None;
        }
        let question_end = question_end(buf)?;
        let mut walk = Records::new(buf, question_end);
        let records: Vec<Record> = walk.by_ref().collect();
        (walk.is_done() && walk.offset() == buf.len()).then_some(Self {
            buf,
            question_end,
            records,
        })
    }

    pub(crate) fn truncated(&self) -> bool {
        self.buf[2] & FLAG_TC != 0
    }

    pub(crate) fn rcode(&self) -> u8 {
        self.buf[3] & 0x0f
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

/// Builds a query to send upstream: RD set, CD as the client asked, EDNS0 with
/// [`EDNS_UDP_SIZE`] always, DO as the client asked.
pub(crate) fn build_query(
    id: u16,
    lower: &[u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    cd: bool,
) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER_LEN + lower.len() + 4 + 11);
    q.extend_from_slice(&id.to_be_bytes());
    q.push(FLAG_RD);
    q.push(if cd { FLAG_CD } else { 0 });
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(lower);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    push_opt(&mut q, 0, dnssec_ok);
    q
}

/// Appends an OPT record (RFC 6891 §6.1.2) advertising [`EDNS_UDP_SIZE`], version 0.
pub(crate) fn push_opt(out: &mut Vec<u8>, ext_rcode: u8, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    out.push(ext_rcode);
    out.push(0);
    out.extend_from_slice(&(if dnssec_ok { EDNS_DO } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

pub(crate) const OPT_LEN: usize = 11;

/// The reply to a packet that did not parse as a query splitdns answers
/// (FORMERR, NOTIMP, or REFUSED to a stranger): the packet's ID, opcode and
/// RD (RFC 1035 §4.1.1) with QR and the RCODE set, its question echoed when it
/// parsed, and an OPT (DO copied, RFC 3225 §3) when `edns` is given. RA and
/// CD are set (RA) and copied (CD, RFC 4035 §3.2.2) only under opcode QUERY,
/// the one they are defined for (RFC 6895 §2); AA, TC, Z and AD stay clear.
/// Parsed queries use [`Query::write_error`].
pub(crate) fn error_reply(
    packet: &[u8],
    rcode: u8,
    question_end: Option<usize>,
    edns: Option<Edns>,
) -> Vec<u8> {
    let question = question_end.map_or(&[][..], |end| &packet[HEADER_LEN..end]);
    let mut out = Vec::with_capacity(HEADER_LEN + question.len() + OPT_LEN);
    out.extend_from_slice(&packet[..2]);
    out.push(FLAG_QR | (packet[2] & 0x78) | (packet[2] & FLAG_RD));
    let query_flags = if opcode(packet) == 0 {
        FLAG_RA | (packet[3] & FLAG_CD)
    } else {
        0
    };
    out.push(query_flags | (rcode & 0x0f));
    let qdcount = u16::from(!question.is_empty());
    out.extend_from_slice(&qdcount.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&u16::from(edns.is_some()).to_be_bytes());
    out.extend_from_slice(question);
    if let Some(edns) = edns {
        push_opt(&mut out, 0, edns.dnssec_ok);
    }
    out
}

/// Header bits of a stored answer: QR and RA set, RD/CD/ID left for the client's.
pub(crate) fn stored_flags(authoritative: bool, authentic: bool, rcode: u8) -> [u8; 2] {
    [
        FLAG_QR | if authoritative { FLAG_AA } else { 0 },
        FLAG_RA | if authentic { FLAG_AD } else { 0 } | (rcode & 0x0f),
    ]
}

pub(crate) fn authentic_data(buf: &[u8]) -> bool {
    buf.get(3).is_some_and(|b| b & FLAG_AD != 0)
}

/// Gives a stored answer the client's ID, RD and CD bits.
pub(crate) fn patch_header(out: &mut [u8], query: &Query) {
    out[..2].copy_from_slice(&query.id.to_be_bytes());
    out[2] = (out[2] & !FLAG_RD) | (query.flags[0] & FLAG_RD);
    out[3] = (out[3] & !FLAG_CD) | (query.flags[1] & FLAG_CD);
}

/// Turns a response that is too large for the client into header + question
/// with TC=1 (RFC 1035 §4.2.1, RFC 2181 §9): the client retries over TCP.
pub(crate) fn truncate_to_question(out: &mut Vec<u8>, question_end: usize) {
    out.truncate(question_end);
    out[2] |= FLAG_TC;
    out[6..12].fill(0);
}

/// Adds `n` (wrapping: `u16::MAX` takes one away) to ARCOUNT.
pub(crate) fn add_to_arcount(out: &mut [u8], n: u16) {
    let count = read_u16(out, 10).unwrap_or(0).wrapping_add(n);
    out[10..12].copy_from_slice(&count.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_bytes(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, FLAG_RD, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

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
    fn parses_question_and_keeps_case() {
        let q = Query::parse(&query_bytes(b"\x03WeB\x06consul\x00", 1)).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.name.as_bytes(), b"\x03WeB\x06consul\x00");
        assert_eq!(q.lower.as_bytes(), b"\x03web\x06consul\x00");
        assert_eq!(q.edns, None);
        assert_eq!(q.udp_limit(), 512);
    }

    #[test]
    fn reads_edns() {
        let mut q = query_bytes(b"\x01a\x00", 1);
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 1, 0x80, 0, 0, 0]);
        let q = Query::parse(&q).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 1,
                dnssec_ok: true
            })
        );
    }

    #[test]
    fn rejects_bad_queries() {
        assert_eq!(Query::parse(&[0; 11]).err(), Some(Reject::Drop));
        let mut response = query_bytes(b"\x01a\x00", 1);
        response[2] |= FLAG_QR;
        assert_eq!(Query::parse(&response).err(), Some(Reject::Drop));
        let mut update = query_bytes(b"\x01a\x00", 1);
        update[2] = 5 << 3;
        assert!(matches!(
            Query::parse(&update),
            Err(Reject::Respond {
                rcode: RCODE_NOTIMP,
                ..
            })
        ));
        let mut two = query_bytes(b"\x01a\x00", 1);
        two[5] = 2;
        assert!(matches!(
            Query::parse(&two),
            Err(Reject::Respond {
                rcode: RCODE_FORMERR,
                ..
            })
        ));
        assert!(matches!(
            Query::parse(&query_bytes(b"\x05a\x00", 1)),
            Err(Reject::Respond {
                rcode: RCODE_FORMERR,
                ..
            })
        ));
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
