//! Whom the imported config runs as without `user=`: one this host has, so that it
//! starts where it was imported.

/// Without `user=`: the user the package creates and the unit runs as, when
/// this host has it.
pub(super) const SPLITDNS_USER: &str = "splitdns";
/// Without `user=` otherwise: dnsmasq's own default (dnsmasq(8), --user).
pub(super) const DNSMASQ_USER: &str = "nobody";

/// The user the output runs as without `user=`: one this host has (`has_user` looks it
/// up), so that it starts here.
pub fn default_user(has_user: impl Fn(&str) -> bool) -> &'static str {
    if has_user(SPLITDNS_USER) {
        SPLITDNS_USER
    } else {
        DNSMASQ_USER
    }
}
