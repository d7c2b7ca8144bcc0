//! The machine around splitdns: network interfaces ([`interfaces`]),
//! resolv.conf ([`resolv`]), hosts files ([`hosts`]) and the local data made
//! of them ([`local_data`]), the switch to `[server] user` ([`privilege`]),
//! systemd's notify protocol ([`notify`]) and OS signals ([`signal`]).

pub mod hosts;
pub mod interfaces;
pub mod local_data;
pub mod notify;
pub mod privilege;
pub mod resolv;
pub mod signal;
