//! The Markdown the README and the docs/ pages are written in, read the way the
//! man pages need it: the anchors GitHub gives the headings, the links, and a
//! line of text made into roff inlines.

use roff::{Inline, bold, italic, roman};

/// What a link adds after its text in the man page, given its target and text:
/// " in docs/rules.md", or nothing.
pub(crate) type Suffix<'a> = &'a dyn Fn(&str, &str) -> String;

/// The anchor of every heading, as GitHub makes them: `## \`splitdns check\``
/// is `#splitdns-check`, and a repeated heading gets `-1`, `-2`, ...
pub fn anchors(page: &str) -> Vec<String> {
    let mut anchors: Vec<String> = Vec::new();
    for (_, text, _, _) in headings(page) {
        let slug = slug(text);
        let seen = anchors.iter().filter(|a| a.as_str() == slug).count();
        let repeats = (1..).map(|n| format!("{slug}-{n}"));
        let unique = std::iter::once(slug.clone())
            .chain(repeats)
            .nth(seen)
            .unwrap_or(slug);
        anchors.push(unique);
    }
    anchors
}

fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// (level, text, where the heading line starts, where its section starts) of
/// every heading outside fenced code.
fn headings(page: &str) -> impl Iterator<Item = (usize, &str, usize, usize)> {
    let mut fenced = false;
    let mut offset = 0;
    page.split_inclusive('\n').filter_map(move |line| {
        let start = offset;
        offset += line.len();
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let level = line.len() - line.trim_start_matches('#').len();
        let text = line[level..].trim();
        let heading = !fenced && level > 0 && line[level..].starts_with(' ');
        heading.then_some((level, text, start, offset))
    })
}

/// Every link target in the text outside fenced code.
pub fn links(page: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut targets = Vec::new();
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let mut rest = line;
        while let (false, Some(at)) = (fenced, rest.find("](")) {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(&after[..end]);
            rest = &after[end..];
        }
    }
    targets
}

/// A line of Markdown (one table cell, a key's meaning) as roff inlines, in
/// `base` (roman or bold) where it has no marks of its own.
pub(crate) fn inlines(text: &str, suffix: Suffix<'_>, base: Font) -> Vec<Inline> {
    let mut runs = Vec::new();
    spans(text, suffix, base, &mut runs);
    let mut merged: Vec<(Font, String)> = Vec::new();
    for (font, text) in runs {
        match merged.last_mut() {
            Some((last, joined)) if *last == font => joined.push_str(&text),
            _ => merged.push((font, text)),
        }
    }
    merged
        .into_iter()
        .map(|(font, text)| font.inline(text))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Font {
    Roman,
    Bold,
    Italic,
}

impl Font {
    fn inline(self, text: String) -> Inline {
        match self {
            Self::Roman => roman(text),
            Self::Bold => bold(text),
            Self::Italic => italic(text),
        }
    }
}

/// Appends `text`'s runs of one font each.
fn spans(mut text: &str, suffix: Suffix<'_>, font: Font, out: &mut Vec<(Font, String)>) {
    while let Some(c) = text.chars().next() {
        let marked = if let Some(rest) = text.strip_prefix('`') {
            rest.find('`').map(|end| {
                out.push((font, rest[..end].to_string()));
                &rest[end + 1..]
            })
        } else if let Some(rest) = text.strip_prefix("**") {
            rest.find("**").map(|end| {
                spans(&rest[..end], suffix, Font::Bold, out);
                &rest[end + 2..]
            })
        } else if let Some(rest) = text.strip_prefix('*').filter(|r| !r.starts_with(' ')) {
            rest.find('*').map(|end| {
                spans(&rest[..end], suffix, Font::Italic, out);
                &rest[end + 1..]
            })
        } else if let Some(rest) = text.strip_prefix('[') {
            link(rest).map(|(shown, target, after)| {
                spans(shown, suffix, font, out);
                out.push((font, suffix(target, shown)));
                after
            })
        } else {
            None
        };
        text = marked.unwrap_or_else(|| {
            out.push((font, c.to_string()));
            &text[c.len_utf8()..]
        });
    }
}

/// `text](target)rest` -> (`text`, `target`, `rest`): the first `]` outside
/// code, followed by `(`; `[::1]:53` is no link.
fn link(rest: &str) -> Option<(&str, &str, &str)> {
    let mut code = false;
    let close = rest.find(|c| {
        code ^= c == '`';
        c == ']' && !code
    })?;
    let target = rest[close + 1..].strip_prefix('(')?;
    let end = target.find(')')?;
    Some((&rest[..close], &target[..end], &target[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# Title\n\nFirst paragraph,\nstill.\n\nSecond.\n\n## `splitdns check`\n\nCheck.\n\n```sh\n# not a heading\n```\n\n### Deeper\n\nMore.\n\n## Next\n\nNext text.\n";

    fn none(_: &str, _: &str) -> String {
        String::new()
    }

    #[test]
    fn anchors_are_githubs() {
        assert_eq!(anchors(PAGE), ["title", "splitdns-check", "deeper", "next"]);
        assert_eq!(
            anchors(
                "## A fleet, with Nomad\n## Next to systemd-resolved\n## Next to systemd-resolved\n"
            ),
            [
                "a-fleet-with-nomad",
                "next-to-systemd-resolved",
                "next-to-systemd-resolved-1"
            ]
        );
    }

    #[test]
    fn links_outside_code_are_found() {
        let text = "See [a](x.md#b) and [`c`](#d).\n```\n[e](f)\n```\n";
        assert_eq!(links(text), ["x.md#b", "#d"]);
    }

    #[test]
    fn marks_become_fonts_and_links_their_text() {
        let suffix = |target: &str, _: &str| format!(" in {target}");
        let made = inlines("a `b` *c* **d `e`** [f](g.md)", &suffix, Font::Roman);
        assert_eq!(
            made,
            [
                roman("a b "),
                italic("c"),
                roman(" "),
                bold("d e"),
                roman(" f in g.md")
            ]
        );
        assert_eq!(inlines("`x`, `y`", &none, Font::Bold), [bold("x, y")]);
        assert_eq!(inlines("5 * 3", &none, Font::Roman), [roman("5 * 3")]);
        let address = "[::1]:53 and [`[a] b`](#c)";
        assert_eq!(
            inlines(address, &suffix, Font::Roman),
            [roman("[::1]:53 and [a] b in #c")]
        );
    }
}
