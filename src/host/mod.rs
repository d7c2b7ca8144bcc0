//! The machine around splitdns: network interfaces ([`interfaces`]),
//! resolv.conf ([`resolv`]), hosts files ([`hosts`]) and the local data made
//! of them ([`local_data`]), the switch to `[server] user` ([`privilege`]),
//! systemd's notify protocol ([`notify`]) and OS signals ([`signal`]).

pub(crate) mod hosts;
pub(crate) mod interfaces;
pub(crate) mod local_data;
pub(crate) mod notify;
pub(crate) mod privilege;
pub(crate) mod resolv;
pub(crate) mod signal;
