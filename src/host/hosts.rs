//! Hosts files (`/etc/hosts` format): `ADDRESS NAME [ALIAS...]`, `#` comments.

use std::net::IpAddr;

/// One usable line: an address and its names, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ip: IpAddr,
    pub names: Vec<String>,
}

/// The entries of a hosts file, and the lines that could not be used as
/// `(line number, why)`, so the caller can say where. Like glibc and dnsmasq,
/// a bad line is skipped rather than failing the whole file: /etc/hosts is
/// shared with other programs and often carries lines only they understand.
pub(crate) fn parse(text: &str) -> (Vec<Entry>, Vec<(usize, String)>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else { continue };
        // A scoped IPv6 address (fe80::1%eth0) names the same host; the scope
        // only matters to whoever connects.
        let addr = addr.split('%').next().unwrap_or(addr);
        let Ok(ip) = addr.parse::<IpAddr>() else {
            bad.push((i + 1, format!("{addr:?} is not an IP address")));
            continue;
        };
        let names: Vec<String> = words.map(str::to_string).collect();
        if names.is_empty() {
            bad.push((i + 1, format!("{addr} has no host name")));
            continue;
        }
        entries.push(Entry { ip, names });
    }
    (entries, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_names_and_skips_bad_lines() {
        let text = "# comment\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost # loopback\n\n\
                    fe80::1%lo gw6\nnot-an-ip name\n10.0.0.1\n192.0.2.7 Web.Lan web\n";
        let (entries, bad) = parse(text);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1].names, ["localhost", "ip6-localhost"]);
        assert_eq!(entries[2].ip, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(entries[3].names, ["Web.Lan", "web"]);
        assert_eq!(
            bad.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            [6, 7]
        );
    }
}
