//! Sockets and the per-query pipeline: start-up ([`start`]), the addresses
//! listened on ([`listeners`]), the UDP threads ([`udp_threads`]) and the
//! loops that answer UDP ([`udp`], [`batch`], [`listening`], [`miss_table`])
//! and TCP ([`tcp`], [`connections`]), one query top to bottom
//! ([`handler`]), the answers
//! splitdns makes itself ([`local`], [`chaos`]), reloads ([`reload`]) and
//! the control socket ([`control`]). The top of the crate's folders: nothing
//! below imports from here.

pub(crate) mod batch;
pub(crate) mod chaos;
pub(crate) mod connections;
pub(crate) mod control;
pub(crate) mod handler;
pub(crate) mod listeners;
pub(crate) mod listening;
pub(crate) mod local;
pub(crate) mod miss_table;
pub(crate) mod reload;
pub(crate) mod start;
pub(crate) mod tcp;
pub(crate) mod udp;
pub(crate) mod udp_threads;
