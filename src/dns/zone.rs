//! [`Zone`]: a domain name in the form the router and cache compare, lowercased wire
//! format. Keeping it in wire form means a query's own bytes can be looked up
//! without building a name first.

use std::fmt;

/// A lowercased domain name in DNS wire format, root label included
/// (`consul` is `\x06consul\x00`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Zone {
    wire: Box<[u8]>,
}

impl Zone {
    /// The root zone, `.`.
    pub fn root() -> Self {
        Self {
            wire: Box::new([0]),
        }
    }

    /// Parses a name in presentation form (`consul`, `infra.local.`, `.`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        let mut wire = Vec::with_capacity(trimmed.len() + 2);
        if !trimmed.is_empty() {
            for label in trimmed.split('.') {
                if label.is_empty() || label.len() > 63 {
                    return Err(format!(
                        "{text:?} is not a domain name: every label must be 1 to 63 characters"
                    ));
                }
                if !label.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!(
                        "{text:?} is not a domain name: use ASCII letters, digits and '-'"
                    ));
                }
                wire.push(label.len() as u8);
                wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
            }
        }
        wire.push(0);
        if wire.len() > 255 {
            return Err(format!("{text:?} is longer than 255 bytes"));
        }
        Ok(Self { wire: wire.into() })
    }

    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// `self` is `name` or a parent of it, on label boundaries.
    pub fn contains(&self, lower_name_wire: &[u8]) -> bool {
        suffixes(lower_name_wire).any(|suffix| suffix == self.wire())
    }
}

/// The names a wire name lies in, longest first: the name itself, then each
/// name above it, one label shorter each time, the root last
/// (`\x03www\x07example\x00`, `\x07example\x00`, `\x00`). Each starts on a
/// label boundary, so `notconsul.` never yields `consul.`.
pub(crate) fn suffixes(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let suffix = wire.get(at..).filter(|s| !s.is_empty())?;
        at += usize::from(suffix[0]) + 1;
        Some(suffix)
    })
}

/// Writes wire-format name bytes in presentation form, `.` for the root.
pub(crate) fn write_wire_name(f: &mut impl fmt::Write, wire: &[u8]) -> fmt::Result {
    let mut i = 0;
    if wire.first().is_none_or(|&l| l == 0) {
        return f.write_char('.');
    }
    while let Some(&len) = wire.get(i) {
        if len == 0 {
            break;
        }
        let label = wire
            .get(i + 1..i + 1 + usize::from(len))
            .unwrap_or_default();
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "\\{b:03}")?;
            }
        }
        f.write_char('.')?;
        i += usize::from(len) + 1;
    }
    Ok(())
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_wire_name(f, &self.wire)
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_start_on_label_boundaries_and_end_at_the_root() {
        let name = Zone::parse("www.example").unwrap();
        let all: Vec<&[u8]> = suffixes(name.wire()).collect();
        assert_eq!(
            all,
            [&b"\x03www\x07example\x00"[..], b"\x07example\x00", b"\x00"]
        );
        assert_eq!(suffixes(b"\x00").count(), 1);
        assert_eq!(
            suffixes(b"\x09cut").count(),
            1,
            "a label past the end stops"
        );
    }

    #[test]
    fn parse_lowercases_and_accepts_trailing_dot() {
        assert_eq!(
            Zone::parse("Consul.").unwrap(),
            Zone::parse("consul").unwrap()
        );
        assert_eq!(Zone::parse("consul").unwrap().wire(), b"\x06consul\x00");
        assert_eq!(Zone::parse(".").unwrap(), Zone::root());
        assert_eq!(
            Zone::parse("infra.local").unwrap().to_string(),
            "infra.local."
        );
    }

    #[test]
    fn contains_is_on_label_boundaries() {
        let consul = Zone::parse("consul").unwrap();
        assert!(consul.contains(b"\x03web\x07service\x06consul\x00"));
        assert!(!consul.contains(b"\x09notconsul\x00"));
        assert!(Zone::root().contains(b"\x09notconsul\x00"));
    }

    #[test]
    fn rejects_bad_names() {
        assert!(Zone::parse("a..b").is_err());
        assert!(Zone::parse(&"a".repeat(64)).is_err());
        assert!(Zone::parse("a b").is_err());
    }
}
