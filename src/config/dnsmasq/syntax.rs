//! A dnsmasq.conf line as dnsmasq reads it: `option=value` or a bare option,
//! `#` comments, and comma-separated fields with `"..."` quotes.

/// `option=value` or a bare `option`, as in a dnsmasq.conf line (a leading `--`,
/// as on dnsmasq's command line, is allowed).
pub fn split_option(line: &str) -> (&str, Option<&str>) {
    let line = line.trim();
    let line = line.strip_prefix("--").unwrap_or(line);
    match line.split_once('=') {
        Some((key, value)) => (key.trim(), Some(value.trim())),
        None => (line, None),
    }
}

/// A dnsmasq.conf line without its comment: `#` starts one at the beginning of
/// the line or after white space, outside quotes (so `127.0.0.1#8600` stays).
pub fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted && previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line.trim_end()
}

/// Comma-separated fields; `"..."` quotes commas and keeps spaces, `\"` and `\\`
/// escape inside quotes (dnsmasq's rules for txt-record and friends).
pub(super) fn fields(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => out.last_mut().expect("one field").extend(chars.next()),
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out.iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_fields() {
        assert_eq!(
            strip_comment("server=/consul/127.0.0.1#8600 # agent"),
            "server=/consul/127.0.0.1#8600"
        );
        assert_eq!(strip_comment("# all of it"), "");
        assert_eq!(
            strip_comment("txt-record=a,\"x # y\""),
            "txt-record=a,\"x # y\""
        );
        assert_eq!(split_option("--no-resolv"), ("no-resolv", None));
        assert_eq!(
            split_option(" cache-size = 100 "),
            ("cache-size", Some("100"))
        );
    }
}
