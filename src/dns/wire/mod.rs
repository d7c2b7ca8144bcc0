//! The few wire-format operations on the hot path, done on bytes.
//!
//! A cache hit must not pay for a full decode and re-encode (RFC 1035 §4.1), so a
//! client query is read only as far as its header, question and OPT record, and a
//! cached answer is kept encoded and patched in place. Everything that builds or
//! inspects whole messages goes through hickory-proto instead.
//!
//! The numbers ([`codes`]), a name held inline ([`name`]), reading messages
//! ([`message`]), the client's query and the responses shaped by it
//! ([`query`]), and building and patching ([`write`](mod@write)). Everything is used as
//! `wire::NAME`, from the re-exports here.

mod codes;
mod message;
mod name;
mod query;
mod write;

pub(crate) use self::codes::*;
pub(crate) use self::message::{
    Message, Record, Records, Reply, Section, authentic_data, question_end, read_name,
};
pub(crate) use self::name::NameBuf;
/// Public for the benches and property tests (`splitdns::parts`).
pub use self::query::Query;
pub(crate) use self::query::{Reject, error_reply, patch_header};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use self::write::build_query;
pub(crate) use self::write::{push_ede, set_authentic, stored_flags, write_answers, write_query};
