//! The translation as a whole: dnsmasq config text in, TOML that `check`
//! accepts and warnings out.

use std::path::{Path, PathBuf};

use super::user::{DNSMASQ_USER, SPLITDNS_USER};
use super::*;
use crate::config::Config;

/// As on a host with the `splitdns` user.
fn translate(text: &str) -> (String, Vec<String>) {
    translate_for(text, SPLITDNS_USER)
}

/// As on a host where [`default_user`] is `default_user`.
fn translate_for(text: &str, default_user: &'static str) -> (String, Vec<String>) {
    let mut reader = Reader::default();
    reader.text(Path::new("dnsmasq.conf"), text, 0);
    let mut out = Translation::new(&reader.lines, default_user);
    for line in &reader.lines {
        out.line(line);
    }
    let mut warnings = reader.warnings;
    warnings.extend(out.warnings.iter().cloned());
    (
        render::main_config(&out, Path::new("dnsmasq.conf"), None),
        warnings,
    )
}

fn rules(toml: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(toml).unwrap();
    let rules = table["rules"].as_array().unwrap().iter();
    rules.map(|r| r.as_str().unwrap().to_string()).collect()
}

#[test]
fn an_empty_config_spells_out_dnsmasqs_defaults() {
    let (toml, warnings) = translate("");
    assert!(warnings.is_empty());
    let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
    assert_eq!(config.cache.size, 150);
    assert_eq!(config.upstream.max_inflight, 150);
    assert_eq!(config.local.hosts_files, [PathBuf::from("/etc/hosts")]);
    assert_eq!(config.listen.len(), 2, "{toml}");
}

/// dnsmasq's repeated `server=` lines for one zone accumulate in splitdns's
/// `rules` as they do in dnsmasq, so the import writes them as they were.
#[test]
fn repeated_server_lines_stay_rules_in_their_order() {
    let lines = [
        "server=/consul/10.0.0.1#8600",
        "address=/blocked.consul/0.0.0.0",
        "server=/Consul/10.0.0.3#8600",
        "server=/consul/infra.local/10.0.0.2#8600",
    ];
    let (toml, warnings) = translate(&lines.join("\n"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(rules(&toml), lines);
    assert!(!toml.contains("[[route]]"), "{toml}");
}

/// dnsmasq(8), --rebind-domain-ok: "The argument may be either a single
/// domain, or multiple domains surrounded by '/'".
#[test]
fn rebind_domain_ok_takes_both_forms_and_reports_a_bad_name() {
    let (toml, warnings) = translate(
        "rebind-domain-ok=lan\nrebind-domain-ok=/a.example/b.example/\nrebind-domain-ok=/x//\n",
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("dnsmasq.conf:3: rebind-domain-ok: ignored ("));
    let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
    let zones: Vec<String> = config
        .guard
        .rebind_allow
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(zones, ["lan.", "a.example.", "b.example."]);
    assert!(
        !config.guard.rebind_protection,
        "no stop-dns-rebind: {toml}"
    );
}

#[test]
fn a_user_name_splitdns_cannot_take_is_reported_and_the_default_used() {
    for default in [SPLITDNS_USER, DNSMASQ_USER] {
        let (toml, warnings) = translate_for("user=no body\n", default);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("dnsmasq.conf:1: user: ignored ("));
        assert!(
            warnings[0].ends_with(&format!("the output runs as \"{default}\")")),
            "{warnings:?}"
        );
        let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
        assert_eq!(config.user.as_deref(), Some(default));
    }
}

/// dnsmasq(8), --user: "Normally this user is "nobody"". Without `user=` the output
/// names `splitdns` only where that user exists, else `nobody`, saying how to switch.
#[test]
fn without_user_the_output_runs_as_a_user_the_host_has() {
    let (own, _) = translate_for("", SPLITDNS_USER);
    let (nobody, _) = translate_for("", DNSMASQ_USER);
    let (named, _) = translate_for("user=dnsmasq\n", DNSMASQ_USER);

    let user = |toml: &str| Config::from_toml(toml, Path::new("out.toml")).unwrap().user;
    assert_eq!(user(&own).as_deref(), Some("splitdns"));
    assert_eq!(user(&nobody).as_deref(), Some("nobody"));
    assert_eq!(user(&named).as_deref(), Some("dnsmasq"));
    assert!(
        nobody.contains("useradd --system --no-create-home splitdns"),
        "{nobody}"
    );
    assert!(
        nobody
            .lines()
            .any(|l| l.starts_with('#') && l.contains("set user = \"splitdns\"")),
        "{nobody}"
    );
    assert!(!own.contains("useradd") && !named.contains("useradd"));
}

#[test]
fn unsupported_options_warn_with_file_line_and_why() {
    let (_, warnings) = translate(
        "dhcp-range=192.168.0.50,192.168.0.150,12h\n\nall-servers\nserver=/x/1.2.3.4@eth0\n",
    );
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[0].starts_with("dnsmasq.conf:1: dhcp-range: ignored (DHCP"),
        "{warnings:?}"
    );
    assert!(warnings[1].starts_with("dnsmasq.conf:3: all-servers: ignored ("));
    assert!(warnings[2].starts_with("dnsmasq.conf:4: server: ignored ("));
}

/// dnsmasq's DNSSEC lines become the same lines in `rules`, and the config
/// they make validates as dnsmasq did: with the anchor given, unsigned
/// replies taken unchecked when dnsmasq took them so.
#[test]
fn dnssec_lines_carry_over_as_rules() {
    let anchor = "trust-anchor=.,20326,8,2,\
                  E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D";
    let lines = ["dnssec", anchor, "dnssec-check-unsigned=no"];
    let (toml, warnings) = translate(&lines.join("\n"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(rules(&toml), lines);
    let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
    assert!(config.dnssec.validate);
    assert!(!config.dnssec.check_unsigned);
    assert_eq!(config.dnssec.trust_anchors.len(), 1);
    let (_, warnings) = translate("dnssec-no-timecheck");
    assert!(warnings[0].contains("system clock"), "{warnings:?}");
}

/// dnsmasq(8) takes any `dns-forward-max`; splitdns's `max_inflight` stops at
/// 4096 per route, so a larger one comes over as that, said in a note, and
/// the config it makes still loads.
#[test]
fn a_forward_max_past_what_splitdns_takes_comes_over_as_its_most() {
    let mut reader = Reader::default();
    reader.text(Path::new("dnsmasq.conf"), "dns-forward-max=10000\n", 0);
    let mut out = Translation::new(&reader.lines, SPLITDNS_USER);
    for line in &reader.lines {
        out.line(line);
    }
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("dns-forward-max") && n.contains("4096")),
        "{:?}",
        out.notes
    );
    let toml = render::main_config(&out, Path::new("dnsmasq.conf"), None);
    let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
    assert_eq!(config.upstream.max_inflight, 4096);

    let (toml, _) = translate("dns-forward-max=500\n");
    let config = Config::from_toml(&toml, Path::new("out.toml")).unwrap();
    assert_eq!(config.upstream.max_inflight, 500);
}
