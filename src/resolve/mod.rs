//! A question becomes an answer: the routing table ([`router`]), the cache
//! and its single-flight table ([`cache`]), one route's servers
//! ([`upstream`]) and their health ([`health`]), the encrypted transports
//! under them ([`encrypted`]: DNS over TLS and HTTPS), SRV completion ([`srv`]),
//! the loop check ([`loops`]) and the rebind screen ([`rebind`]). Depends on
//! [`dns`](crate::dns), [`config`](crate::config) and
//! [`observe`](crate::observe) only.

pub(crate) mod cache;
pub(crate) mod consul;
pub(crate) mod dnssec;
pub(crate) mod encrypted;
pub(crate) mod health;
pub(crate) mod loops;
pub(crate) mod rebind;
pub(crate) mod router;
pub(crate) mod srv;
pub(crate) mod upstream;
