//! Building and patching messages: the query sent upstream, the OPT record,
//! the header bits of a stored answer, truncation, ARCOUNT.

use super::codes::{
    CLASS_IN, EDNS_DO, EDNS_UDP_SIZE, FLAG_AA, FLAG_AD, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD,
    FLAG_TC, HEADER_LEN, TYPE_OPT,
};
use super::message::read_u16;

/// [`write_query`] into a new buffer, for tests and the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn build_query(
    id: u16,
    lower: &[u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    cd: bool,
) -> Vec<u8> {
    let mut q = Vec::new();
    write_query(&mut q, id, lower, qtype, qclass, dnssec_ok, cd);
    q
}

/// Writes a query to send upstream into `q`, cleared first (no allocation once it has
/// room): RD set, AD set, CD as the client asked, EDNS0 with [`EDNS_UDP_SIZE`] always, DO
/// as the client asked.
///
/// AD asks a validating upstream to say whether the answer is authentic (RFC 6840 §5.7);
/// without it, one that follows §5.8 answers AD=0 to a query with neither AD nor DO, and
/// the cached answer could never give AD to a client that asked with AD. Which clients
/// see the AD bit is decided per client when the answer is patched for it.
pub(crate) fn write_query(
    q: &mut Vec<u8>,
    id: u16,
    lower: &[u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    cd: bool,
) {
    q.clear();
    q.extend_from_slice(&id.to_be_bytes());
    q.push(FLAG_RD);
    q.push(FLAG_AD | if cd { FLAG_CD } else { 0 });
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(lower);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    push_opt(q, 0, dnssec_ok);
}

/// A query as a plain stub resolver sends it, for tests: ID 0x1234, RD, one question of
/// `name` (in wire form), `qtype` and class IN, and no OPT record.
#[cfg(test)]
pub(super) fn query_bytes(name: &[u8], qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, FLAG_RD, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
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

/// EDNS option code of an Extended DNS Error (RFC 8914 §2).
const OPTION_EDE: u16 = 15;

/// Adds an Extended DNS Error option with `info_code` and no text to the OPT
/// record that ends `out` (as [`push_opt`] wrote it).
pub(crate) fn push_ede(out: &mut Vec<u8>, info_code: u16) {
    let rdlen_at = out.len() - 2;
    let rdlen = read_u16(out, rdlen_at).unwrap_or(0) + 6;
    out[rdlen_at..].copy_from_slice(&rdlen.to_be_bytes());
    out.extend_from_slice(&OPTION_EDE.to_be_bytes());
    out.extend_from_slice(&2u16.to_be_bytes());
    out.extend_from_slice(&info_code.to_be_bytes());
}

/// Sets or clears the AD bit of a message: what validation says of it.
pub(crate) fn set_authentic(message: &mut [u8], authentic: bool) {
    if authentic {
        message[3] |= FLAG_AD;
    } else {
        message[3] &= !FLAG_AD;
    }
}

/// Header bits of a stored answer: QR and RA set, RD/CD/ID left for the client's.
pub(crate) fn stored_flags(authoritative: bool, authentic: bool, rcode: u8) -> [u8; 2] {
    [
        FLAG_QR | if authoritative { FLAG_AA } else { 0 },
        FLAG_RA | if authentic { FLAG_AD } else { 0 } | (rcode & 0x0f),
    ]
}

/// Turns a response that is too large for the client into header + question
/// with TC=1 (RFC 1035 §4.2.1, RFC 2181 §9): the client retries over TCP.
pub(crate) fn truncate_to_question(out: &mut Vec<u8>, question_end: usize) {
    out.truncate(question_end);
    out[2] |= FLAG_TC;
    out[6..12].fill(0);
}

/// Writes into `out` (cleared first) a response answering `lower` `qtype`
/// IN with `records`, each `(class, ttl, rdata)` and owned by the question's
/// name (a pointer to it): how records that came in another message's
/// additional section are kept as answers of their own.
pub(crate) fn write_answers<'a>(
    out: &mut Vec<u8>,
    lower: &[u8],
    qtype: u16,
    records: impl Iterator<Item = (u16, u32, &'a [u8])>,
) {
    out.clear();
    out.extend_from_slice(&[0, 0, FLAG_QR, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(lower);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    let mut count: u16 = 0;
    for (class, ttl, rdata) in records {
        let Ok(len) = u16::try_from(rdata.len()) else {
            continue;
        };
        out.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(rdata);
        count += 1;
    }
    out[6..8].copy_from_slice(&count.to_be_bytes());
}

/// Adds `n` (wrapping: `u16::MAX` takes one away) to ARCOUNT.
pub(crate) fn add_to_arcount(out: &mut [u8], n: u16) {
    let count = read_u16(out, 10).unwrap_or(0).wrapping_add(n);
    out[10..12].copy_from_slice(&count.to_be_bytes());
}
