//! Bytes and names, no I/O: the byte-level reads and patches of the hot path
//! ([`wire`]), zone names ([`zone`]), the question splitdns resolves
//! ([`question`]), the encoded answer the cache holds ([`answer`], its bytes
//! behind a thin pointer, [`thin`]) and rewrite mapping ([`rewrite`]). Depends on nothing else of splitdns.

#[cfg(test)]
pub(crate) mod allocations;
pub(crate) mod answer;
pub(crate) mod clock;
pub(crate) mod minimal;
pub(crate) mod question;
pub(crate) mod rewrite;
pub(crate) mod thin;
pub(crate) mod unsigned;
pub(crate) mod wire;
pub(crate) mod zone;
