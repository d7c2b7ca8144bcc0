//! The client's query: read as far as the answer needs (header, question,
//! OPT), and what every response takes from it (ID, RD and CD, the question
//! as written, an OPT when it sent one), error replies included.

use super::codes::{
    CLASS_ANY, CLASS_IN, CLASSIC_UDP_SIZE, EDNS_DO, FLAG_AD, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD,
    HEADER_LEN, RCODE_FORMERR, RCODE_NOTIMP, RCODE_REFUSED, TYPE_AXFR, TYPE_IXFR, TYPE_OPT,
    TYPE_TKEY, TYPE_TSIG,
};
use super::message::{
    Records, Section, name_end, opcode, plain_name_end, question_end, read_u16, read_u32,
};
use super::name::NameBuf;
use super::write::{OPT_LEN, add_to_arcount, push_opt, stored_flags, truncate_to_question};

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
        // A FORMERR to a query with an OPT carries one, or the client takes
        // splitdns for a server without EDNS (RFC 6891 §7).
        let formerr_edns = |question_end, edns| Reject::Respond {
            rcode: RCODE_FORMERR,
            question_end,
            edns,
        };
        if opcode(packet) != 0 {
            // Whatever of the message parses is echoed: its question (UPDATE's
            // zone), and an OPT when it has one (RFC 6891 §6.1.1).
            let question_end = (read_u16(packet, 4) == Some(1))
                .then(|| question_end(packet))
                .flatten();
            let edns = question_end.and_then(|end| find_edns(packet, end).unwrap_or_else(|e| e));
            return Err(Reject::Respond {
                rcode: RCODE_NOTIMP,
                question_end,
                edns,
            });
        }
        if read_u16(packet, 4) != Some(1) {
            let edns =
                questions_end(packet).and_then(|end| find_edns(packet, end).unwrap_or_else(|e| e));
            return Err(formerr_edns(None, edns));
        }
        let name_end = plain_name_end(packet, HEADER_LEN).ok_or(formerr(None))?;
        let (Some(qtype), Some(qclass)) =
            (read_u16(packet, name_end), read_u16(packet, name_end + 2))
        else {
            return Err(formerr(None));
        };
        let question_end = name_end + 4;
        let name = NameBuf::from_wire(&packet[HEADER_LEN..name_end]).ok_or(formerr(None))?;
        let edns = find_edns(packet, question_end)
            .map_err(|edns| formerr_edns(Some(question_end), edns))?;
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

    /// The RCODE for a question splitdns neither forwards nor answers, if this
    /// is one: FORMERR for a meta-TYPE (OPT, TKEY, TSIG) or an unassigned type
    /// of the Q and meta-TYPE range (RFC 6895 §3.1), of which no server holds
    /// records; REFUSED for a zone transfer, a run of messages a forwarder
    /// cannot relay (RFC 5936 §2.2, §4.2), and for a class other than IN and
    /// ANY, which neither the upstreams nor local data serve (splitdns's own
    /// CHAOS names are answered before this is asked).
    pub fn unserved(&self) -> Option<u8> {
        match (self.qtype, self.qclass) {
            (TYPE_OPT | TYPE_TKEY | TYPE_TSIG | 128..=248, _) => Some(RCODE_FORMERR),
            (TYPE_AXFR | TYPE_IXFR, _) => Some(RCODE_REFUSED),
            (_, CLASS_IN | CLASS_ANY) => None,
            _ => Some(RCODE_REFUSED),
        }
    }

    /// The largest response the client takes over UDP.
    pub fn udp_limit(&self) -> usize {
        self.edns.map_or(CLASSIC_UDP_SIZE, |e| {
            usize::from(e.udp_size).max(CLASSIC_UDP_SIZE)
        })
    }
}

/// The EDNS record of a query, if any. More than one OPT is a FORMERR (RFC 6891 §6.1.1),
/// as is a record that does not parse; the error holds the first OPT, for the reply.
fn find_edns(packet: &[u8], question_end: usize) -> Result<Option<Edns>, Option<Edns>> {
    let mut walk = Records::new(packet, question_end);
    let mut edns = None;
    for rec in walk.by_ref() {
        if rec.section == Section::Additional && rec.rtype == TYPE_OPT {
            if edns.is_some() {
                return Err(edns);
            }
            let ttl = read_u32(packet, rec.ttl_at).ok_or(edns)?;
            edns = Some(Edns {
                udp_size: rec.class,
                version: (ttl >> 16) as u8,
                dnssec_ok: ttl as u16 & EDNS_DO != 0,
            });
        }
    }
    if walk.is_done() { Ok(edns) } else { Err(edns) }
}

/// Where the questions of a query end, however many QDCOUNT says (none, or
/// several, a name after the first perhaps compressed against an earlier one):
/// where its OPT is looked for.
fn questions_end(packet: &[u8]) -> Option<usize> {
    (0..read_u16(packet, 4)?).try_fold(HEADER_LEN, |at, _| {
        Some(name_end(packet, at)? + 4).filter(|&end| end <= packet.len())
    })
}

/// Gives a stored answer the client's ID, RD and CD bits, and takes its AD
/// bit away from a client that asked with neither AD nor DO (RFC 6840 §5.8).
pub(crate) fn patch_header(out: &mut [u8], query: &Query) {
    out[..2].copy_from_slice(&query.id.to_be_bytes());
    out[2] = (out[2] & !FLAG_RD) | (query.flags[0] & FLAG_RD);
    out[3] = (out[3] & !FLAG_CD) | (query.flags[1] & FLAG_CD);
    if query.flags[1] & FLAG_AD == 0 && !query.dnssec_ok() {
        out[3] &= !FLAG_AD;
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::write::query_bytes;

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
}
