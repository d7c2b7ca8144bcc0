//! `[dnssec]`: whether splitdns validates answers itself, the trust anchors
//! it validates from, and the zones it never validates (negative trust
//! anchors, RFC 7646); and the trust anchor text both `[dnssec]
//! trust_anchors` and the `trust-anchor=` rule line are read into.

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::text::ConfigText;
use crate::dns::zone::Zone;

/// `[dnssec]`, merged with the `dnssec`, `trust-anchor=` and
/// `dnssec-check-unsigned` rule lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnssecConfig {
    /// `validate` (or a `dnssec` line): splitdns validates the answers of the
    /// routes that are validated. Default false.
    pub validate: bool,
    /// `trust_anchors` and `trust-anchor=` lines. Empty: the root's KSKs
    /// 20326 and 38696, which hickory-proto ships.
    pub trust_anchors: Vec<TrustAnchor>,
    /// `insecure`: names at or below these zones are never validated.
    pub insecure: Vec<Zone>,
    /// `check_unsigned` (`dnssec-check-unsigned=no` sets it false): an answer
    /// without any signature must be proven insecure. Default true.
    pub check_unsigned: bool,
}

/// One trust anchor: a DS or a DNSKEY record for `zone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    pub zone: Zone,
    pub record: AnchorRecord,
}

/// The record a trust anchor is given as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorRecord {
    /// `zone IN DS key_tag algorithm digest_type digest` (RFC 4034 §5.3).
    Ds {
        key_tag: u16,
        algorithm: u8,
        digest_type: u8,
        digest: Vec<u8>,
    },
    /// `zone IN DNSKEY flags 3 algorithm key` (RFC 4034 §2.2).
    Dnskey {
        flags: u16,
        algorithm: u8,
        public_key: Vec<u8>,
    },
}

/// A DNSKEY's Zone Key flag (RFC 4034 §2.1.1): only zone keys sign zones.
pub const ZONE_KEY_FLAG: u16 = 0x0100;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDnssec {
    validate: Option<bool>,
    #[serde(default)]
    trust_anchors: Vec<Spanned<String>>,
    #[serde(default)]
    insecure: Vec<Spanned<String>>,
    check_unsigned: Option<bool>,
}

/// What a `dnssec`, `trust-anchor=` or `dnssec-check-unsigned` rule line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnssecLine {
    Validate,
    TrustAnchor(TrustAnchor),
    CheckUnsigned(bool),
}

impl ConfigText<'_> {
    /// `[dnssec]` with the rule lines folded in: a `dnssec` line turns
    /// validation on, `trust-anchor=` lines add anchors, the last
    /// `dnssec-check-unsigned` line sets `check_unsigned` unless the table does.
    pub(super) fn dnssec(
        &self,
        raw: RawDnssec,
        lines: &[DnssecLine],
    ) -> Result<DnssecConfig, ConfigError> {
        let mut config = DnssecConfig {
            validate: raw.validate.unwrap_or(false) || lines.contains(&DnssecLine::Validate),
            check_unsigned: true,
            ..DnssecConfig::default()
        };
        for (i, text) in raw.trust_anchors.iter().enumerate() {
            let anchor = TrustAnchor::parse(text.get_ref())
                .map_err(|p| self.invalid(&format!("[dnssec] trust_anchors[{i}]"), text, p))?;
            config.trust_anchors.push(anchor);
        }
        for (i, text) in raw.insecure.iter().enumerate() {
            let zone = Zone::parse(text.get_ref())
                .map_err(|p| self.invalid(&format!("[dnssec] insecure[{i}]"), text, p))?;
            config.insecure.push(zone);
        }
        for line in lines {
            match line {
                DnssecLine::Validate => {}
                DnssecLine::TrustAnchor(anchor) => config.trust_anchors.push(anchor.clone()),
                DnssecLine::CheckUnsigned(check) => config.check_unsigned = *check,
            }
        }
        if let Some(check) = raw.check_unsigned {
            config.check_unsigned = check;
        }
        Ok(config)
    }
}

impl TrustAnchor {
    /// Reads a DS or DNSKEY record in zone-file form, as Unbound's
    /// `trust-anchor:` takes it: `example.test. 3600 IN DS 12345 13 2 ABCD...`
    /// (TTL and class may be left out; the digest or key may hold spaces).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = text.split_whitespace().peekable();
        let name = tokens.next().ok_or(USAGE)?;
        let zone = Zone::parse(name)?;
        while let Some(token) = tokens.peek() {
            let ttl = token.bytes().all(|b| b.is_ascii_digit());
            if !ttl && !token.eq_ignore_ascii_case("IN") {
                break;
            }
            tokens.next();
        }
        let rtype = tokens.next().ok_or(USAGE)?;
        let fields: Vec<&str> = tokens.collect();
        let record = if rtype.eq_ignore_ascii_case("DS") {
            ds(&fields)?
        } else if rtype.eq_ignore_ascii_case("DNSKEY") {
            dnskey(&fields)?
        } else {
            return Err(format!("{rtype:?} is not DS or DNSKEY; {USAGE}"));
        };
        Ok(Self { zone, record })
    }

    /// dnsmasq's `trust-anchor=<domain>,<key-tag>,<algorithm>,<digest-type>,<digest>`.
    pub fn parse_dnsmasq(value: &str) -> Result<Self, String> {
        let fields: Vec<&str> = value.split(',').map(str::trim).collect();
        let [domain, rest @ ..] = fields.as_slice() else {
            return Err(DNSMASQ_USAGE.to_string());
        };
        if rest.len() != 4 {
            return Err(DNSMASQ_USAGE.to_string());
        }
        Ok(Self {
            zone: Zone::parse(domain)?,
            record: ds(rest).map_err(|p| format!("{p} ({DNSMASQ_USAGE})"))?,
        })
    }

    /// The anchor in zone-file form, as `check` prints it.
    pub fn to_text(&self) -> String {
        match &self.record {
            AnchorRecord::Ds {
                key_tag,
                algorithm,
                digest_type,
                digest,
            } => {
                let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
                format!(
                    "{} IN DS {key_tag} {algorithm} {digest_type} {hex}",
                    self.zone
                )
            }
            AnchorRecord::Dnskey {
                flags,
                algorithm,
                public_key,
            } => {
                use base64::Engine as _;
                let key = base64::engine::general_purpose::STANDARD.encode(public_key);
                format!("{} IN DNSKEY {flags} 3 {algorithm} {key}", self.zone)
            }
        }
    }
}

const USAGE: &str = "expected a DS or DNSKEY record, as in \"example.test. IN DS 12345 13 2 \
                     <hex digest>\" or \"example.test. IN DNSKEY 257 3 13 <base64 key>\"";
const DNSMASQ_USAGE: &str =
    "expected trust-anchor=<domain>,<key-tag>,<algorithm>,<digest-type>,<digest>";

/// A DS record's fields: key tag, algorithm, digest type, digest (hex).
fn ds(fields: &[&str]) -> Result<AnchorRecord, String> {
    let [key_tag, algorithm, digest_type, digest @ ..] = fields else {
        return Err(USAGE.to_string());
    };
    let digest_type: u8 = number(digest_type, "a digest type")?;
    let digest = hex(&digest.concat())?;
    // RFC 4509 (SHA-256), RFC 6605 (SHA-384), RFC 4034 (SHA-1).
    let expected = match digest_type {
        1 => 20,
        2 => 32,
        4 => 48,
        other => return Err(format!("digest type {other} is not 1, 2 or 4")),
    };
    if digest.len() != expected {
        return Err(format!(
            "a digest of type {digest_type} is {expected} bytes ({} hex digits), not {}",
            expected * 2,
            digest.len()
        ));
    }
    Ok(AnchorRecord::Ds {
        key_tag: number(key_tag, "a key tag")?,
        algorithm: number(algorithm, "an algorithm number")?,
        digest_type,
        digest,
    })
}

/// A DNSKEY record's fields: flags, protocol (3), algorithm, key (base64).
fn dnskey(fields: &[&str]) -> Result<AnchorRecord, String> {
    use base64::Engine as _;
    let [flags, protocol, algorithm, key @ ..] = fields else {
        return Err(USAGE.to_string());
    };
    let flags: u16 = number(flags, "DNSKEY flags")?;
    if flags & ZONE_KEY_FLAG == 0 {
        return Err(format!(
            "flags {flags} lack the Zone Key bit (256): not a key that signs a zone"
        ));
    }
    if *protocol != "3" {
        return Err(format!("protocol {protocol:?} is not 3 (RFC 4034 §2.1.2)"));
    }
    let public_key = base64::engine::general_purpose::STANDARD
        .decode(key.concat())
        .map_err(|_| "the key is not base64".to_string())?;
    if public_key.is_empty() {
        return Err(USAGE.to_string());
    }
    Ok(AnchorRecord::Dnskey {
        flags,
        algorithm: number(algorithm, "an algorithm number")?,
        public_key,
    })
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{text:?} is not {what}"))
}

fn hex(text: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("{text:?} is not a hex digest");
    if !text.len().is_multiple_of(2) || text.is_empty() {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    const DS: &str = "example.test. IN DS 12345 13 2 \
                      E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D";

    #[test]
    fn reads_ds_and_dnskey_anchors_with_or_without_ttl_and_class() {
        let a = TrustAnchor::parse(DS).unwrap();
        assert_eq!(a.zone, Zone::parse("example.test").unwrap());
        assert!(matches!(
            a.record,
            AnchorRecord::Ds {
                key_tag: 12345,
                algorithm: 13,
                ..
            }
        ));
        assert_eq!(a.to_text(), DS);
        let k = TrustAnchor::parse("example.test 3600 IN DNSKEY 257 3 13 AQID BAU=").unwrap();
        assert!(
            matches!(k.record, AnchorRecord::Dnskey { flags: 257, ref public_key, .. } if public_key == &[1, 2, 3, 4, 5])
        );
        assert!(TrustAnchor::parse("example.test DS 1 8 2 00").is_err());
        assert!(TrustAnchor::parse("example.test IN A 192.0.2.1").is_err());
        assert!(TrustAnchor::parse("example.test IN DNSKEY 1 3 13 AQID").is_err());
    }

    #[test]
    fn reads_dnsmasqs_trust_anchor_line() {
        let a = TrustAnchor::parse_dnsmasq(
            ".,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
        )
        .unwrap();
        assert_eq!(a.zone, Zone::root());
        assert!(TrustAnchor::parse_dnsmasq(".,20326,8,2").is_err());
    }

    #[test]
    fn the_table_and_the_rule_lines_combine() {
        let c = parse(&format!(
            "rules = [\"dnssec\", \"dnssec-check-unsigned=no\", \"trust-anchor=.,20326,8,2,{}\"]\n\
             [dnssec]\ntrust_anchors = [\"{DS}\"]\ninsecure = [\"corp.example\"]",
            "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
        ))
        .unwrap();
        assert!(c.dnssec.validate);
        assert!(!c.dnssec.check_unsigned);
        assert_eq!(c.dnssec.trust_anchors.len(), 2);
        assert_eq!(c.dnssec.insecure, [Zone::parse("corp.example").unwrap()]);
        assert!(!parse("").unwrap().dnssec.validate);
    }

    #[test]
    fn a_malformed_anchor_names_its_line() {
        let err = parse("[dnssec]\nvalidate = true\ntrust_anchors = [\"x. IN DS 1 13 2 ZZ\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.toml:3: [dnssec] trust_anchors[0]"),
            "{err}"
        );
        let err = parse("rules = [\"trust-anchor=x,1,13\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rules[0]") && err.contains("trust-anchor="),
            "{err}"
        );
    }
}
