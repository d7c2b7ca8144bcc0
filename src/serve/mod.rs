//! Sockets and the per-query pipeline: start-up ([`start`]), UDP and TCP
//! listeners ([`server`], [`batch`], [`listeners`], [`connections`]), one
//! query top to bottom ([`handler`]), the answers splitdns makes itself
//! ([`local`], [`chaos`]), reloads ([`reload`]) and the control socket
//! ([`control`]). The top of the crate: nothing below imports from here.

pub mod batch;
pub mod chaos;
pub mod connections;
pub mod control;
pub mod handler;
pub mod listeners;
pub mod local;
pub mod reload;
pub mod server;
pub mod start;
