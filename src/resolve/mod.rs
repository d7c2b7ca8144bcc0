//! A question becomes an answer: the routing table ([`router`]), the cache
//! and its single-flight table ([`cache`]), one route's servers
//! ([`upstream`]) and their health ([`health`]), SRV completion ([`srv`]),
//! the loop check ([`loops`]) and the rebind screen ([`rebind`]). Depends on
//! [`dns`](crate::dns), [`config`](crate::config) and
//! [`observe`](crate::observe) only.

pub mod cache;
pub mod health;
pub mod loops;
pub mod rebind;
pub mod router;
pub mod srv;
pub mod upstream;
