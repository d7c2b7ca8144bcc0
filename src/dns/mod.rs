//! Bytes and names, no I/O: the byte-level reads and patches of the hot path
//! ([`wire`]), zone names ([`zone`]), the question splitdns resolves
//! ([`question`]), the encoded answer the cache holds ([`answer`]) and
//! rewrite mapping ([`rewrite`]). Depends on nothing else of splitdns.

pub mod answer;
pub mod question;
pub mod rewrite;
pub mod wire;
pub mod zone;
