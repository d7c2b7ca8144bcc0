//! The numbers of the wire format that splitdns reads or writes itself: the
//! header's length and flags, record types and classes, RCODEs and the UDP
//! sizes.

pub(crate) const HEADER_LEN: usize = 12;

// The record types and classes splitdns reads or writes itself, defined only
// here (RFC 1035 §3.2.2-§3.2.5, RFC 3596, RFC 2782, RFC 6891, RFC 4034, RFC 2930,
// RFC 8945, RFC 1995, RFC 5936).
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
pub(crate) const TYPE_TKEY: u16 = 249;
pub(crate) const TYPE_TSIG: u16 = 250;
pub(crate) const TYPE_IXFR: u16 = 251;
pub(crate) const TYPE_AXFR: u16 = 252;
pub(crate) const TYPE_ANY: u16 = 255;
pub(crate) const CLASS_IN: u16 = 1;
pub(crate) const CLASS_CH: u16 = 3;
pub(crate) const CLASS_ANY: u16 = 255;

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

pub(super) const FLAG_QR: u8 = 0x80;
pub(super) const FLAG_AA: u8 = 0x04;
pub(super) const FLAG_TC: u8 = 0x02;
pub(super) const FLAG_RD: u8 = 0x01;
pub(super) const FLAG_RA: u8 = 0x80;
pub(super) const FLAG_AD: u8 = 0x20;
pub(super) const FLAG_CD: u8 = 0x10;
pub(super) const EDNS_DO: u16 = 0x8000;
