//! The Markdown the README and the docs/ pages are written in, read the way the
//! man pages need it: a section by its heading, the anchors GitHub gives the
//! headings, and the text made into roff.
//!
//! Only what the pages use is understood: headings, paragraphs, fenced code,
//! `-` and `1.` lists (nested by indentation, code inside), tables, `code`,
//! *emphasis*, **strong** and [links](target). A list whose every item starts
//! with `TERM`: (or `A`, `B`:) becomes tagged paragraphs, the form of a man
//! page's FILES and ENVIRONMENT.

use roff::{Inline, Roff, bold, italic, roman};

/// What a link adds after its text in the man page, given its target and text:
/// " in docs/rules.md", or nothing.
pub(crate) type Suffix<'a> = &'a dyn Fn(&str, &str) -> String;

/// The text under the heading written `heading` (without its `#`s), up to the
/// next heading of the same level or above.
pub(crate) fn section<'a>(page: &'a str, heading: &str) -> Option<&'a str> {
    let mut found: Option<(usize, usize)> = None;
    for (level, text, start, end) in headings(page) {
        match found {
            Some((at, body)) if level <= at => return Some(&page[body..start]),
            None if text == heading => found = Some((level, end)),
            _ => {}
        }
    }
    found.map(|(_, body)| &page[body..])
}

/// The first paragraph after the page's title.
pub(crate) fn first_paragraph(page: &str) -> &str {
    let body = page.find("\n\n").map_or(page, |at| page[at..].trim_start());
    body.find("\n\n").map_or(body, |end| &body[..end])
}

/// The page's `# Title`.
pub(crate) fn title(page: &str) -> &str {
    headings(page)
        .find(|heading| heading.0 == 1)
        .map_or("", |heading| heading.1)
}

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

/// The Markdown as man page text: paragraphs, lists and code; `##` and deeper
/// headings become subsections.
pub(crate) fn to_roff(markdown: &str, suffix: Suffix<'_>) -> Roff {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut roff = Roff::new();
    render(&parse(&lines), suffix, &mut roff);
    roff
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

#[derive(Debug)]
enum Block {
    Heading(String),
    Paragraph(String),
    Code(Vec<String>),
    List {
        ordered: bool,
        items: Vec<Vec<Self>>,
    },
    Table(Vec<Vec<String>>),
}

fn parse(lines: &[&str]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        let (block, next) = if line.trim().is_empty() || line.starts_with("<!--") {
            (None, at + 1)
        } else if line.trim_start().starts_with("```") {
            code(lines, at)
        } else if line.starts_with('#') {
            let text = line.trim_start_matches('#').trim().to_string();
            (Some(Block::Heading(text)), at + 1)
        } else if line.starts_with('|') {
            table(lines, at)
        } else if marker(line).is_some() {
            list(lines, at)
        } else {
            paragraph(lines, at)
        };
        blocks.extend(block);
        at = next;
    }
    blocks
}

/// Opens a block of its own: fenced code, a heading, a table row or a list item.
fn opens_block(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.starts_with("```") || line.starts_with(['#', '|']) || marker(line).is_some()
}

fn paragraph(lines: &[&str], mut at: usize) -> (Option<Block>, usize) {
    let mut text = lines[at].trim().to_string();
    at += 1;
    while at < lines.len() && !lines[at].trim().is_empty() && !opens_block(lines[at]) {
        text.push(' ');
        text.push_str(lines[at].trim());
        at += 1;
    }
    (Some(Block::Paragraph(text)), at)
}

fn code(lines: &[&str], mut at: usize) -> (Option<Block>, usize) {
    let indent = lines[at].len() - lines[at].trim_start().len();
    let mut code = Vec::new();
    at += 1;
    while at < lines.len() && !lines[at].trim_start().starts_with("```") {
        code.push(dedent(lines[at], indent).to_string());
        at += 1;
    }
    (Some(Block::Code(code)), at + 1)
}

fn table(lines: &[&str], mut at: usize) -> (Option<Block>, usize) {
    let mut rows = Vec::new();
    while at < lines.len() && lines[at].starts_with('|') {
        let cells: Vec<String> = lines[at]
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_string())
            .collect();
        if !cells
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|c| c == '-' || c == ':'))
        {
            rows.push(cells);
        }
        at += 1;
    }
    (Some(Block::Table(rows)), at)
}

/// `- ` or `N. ` at the start of the line: (ordered, width of the marker).
fn marker(line: &str) -> Option<(bool, usize)> {
    if line.starts_with("- ") {
        return Some((false, 2));
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    (digits > 0 && line[digits..].starts_with(". ")).then_some((true, digits + 2))
}

fn list(lines: &[&str], mut at: usize) -> (Option<Block>, usize) {
    let ordered = marker(lines[at]).map(|m| m.0);
    let mut items = Vec::new();
    loop {
        let blank = lines[at..]
            .iter()
            .take_while(|l| l.trim().is_empty())
            .count();
        let Some((kind, width)) = lines.get(at + blank).and_then(|l| marker(l)) else {
            break;
        };
        if Some(kind) != ordered {
            break;
        }
        at += blank;
        let mut item = vec![&lines[at][width..]];
        at += 1;
        while let Some(line) = continues(lines, at, width) {
            item.push(line);
            at += 1;
        }
        items.push(parse(&item));
    }
    let ordered = ordered.unwrap_or_default();
    (Some(Block::List { ordered, items }), at)
}

/// The line at `at`, dedented, when it still belongs to a list item whose text
/// starts `width` columns in: indented that far, blank before such a line, or
/// a paragraph's lazy continuation.
fn continues<'a>(lines: &[&'a str], at: usize, width: usize) -> Option<&'a str> {
    let line = lines.get(at)?;
    let indented = |l: &str| l.len() - l.trim_start().len() >= width;
    if line.trim().is_empty() {
        let next = lines[at..].iter().find(|l| !l.trim().is_empty())?;
        return indented(next).then_some("");
    }
    if indented(line) {
        return Some(&line[width..]);
    }
    let lazy = !lines[at - 1].trim().is_empty() && !opens_block(line);
    lazy.then_some(line)
}

fn dedent(line: &str, indent: usize) -> &str {
    let spaces = line.len() - line.trim_start().len();
    &line[spaces.min(indent)..]
}

fn render(blocks: &[Block], suffix: Suffix<'_>, roff: &mut Roff) {
    for block in blocks {
        match block {
            Block::Heading(text) => {
                let plain: String = inlines(text, &|_, _| String::new(), Font::Roman)
                    .into_iter()
                    .map(|inline| match inline {
                        Inline::Roman(t) | Inline::Bold(t) | Inline::Italic(t) => t,
                        Inline::LineBreak => String::new(),
                    })
                    .collect();
                roff.control("SS", [plain.as_str()]);
            }
            Block::Paragraph(text) => {
                roff.control("PP", [])
                    .text(inlines(text, suffix, Font::Roman));
            }
            Block::Code(lines) => code_lines(lines, roff),
            Block::List { ordered, items } => list_items(*ordered, items, suffix, roff),
            Block::Table(rows) => table_rows(rows, suffix, roff),
        }
    }
}

/// Kept as written, indented, lines unfilled; a blank line is `.sp`.
fn code_lines(lines: &[String], roff: &mut Roff) {
    roff.control("PP", [])
        .control("RS", ["4"])
        .control("nf", []);
    for line in lines {
        if line.trim().is_empty() {
            roff.control("sp", []);
        } else {
            roff.text([roman(line.as_str())]);
        }
    }
    roff.control("fi", []).control("RE", []);
}

fn list_items(ordered: bool, items: &[Vec<Block>], suffix: Suffix<'_>, roff: &mut Roff) {
    let terms: Option<Vec<(&str, &str)>> = items
        .iter()
        .map(|item| match item.first() {
            Some(Block::Paragraph(text)) if !ordered => split_term(text),
            _ => None,
        })
        .collect();
    for (n, item) in items.iter().enumerate() {
        let mut rest = item.as_slice();
        if let Some((term, text)) = terms.as_ref().map(|terms| terms[n]) {
            roff.control("TP", [])
                .text(inlines(term, suffix, Font::Bold));
            roff.text(inlines(text, suffix, Font::Roman));
            rest = &rest[1..];
        } else {
            let tag = if ordered {
                format!("{}.", n + 1)
            } else {
                "\\(bu".to_string()
            };
            let width = if ordered { "4" } else { "2" };
            roff.control("IP", [tag.as_str(), width]);
            if let Some(Block::Paragraph(text)) = rest.first() {
                roff.text(inlines(text, suffix, Font::Roman));
                rest = &rest[1..];
            }
        }
        if !rest.is_empty() {
            roff.control("RS", []);
            render(rest, suffix, roff);
            roff.control("RE", []);
        }
    }
}

/// "`A`, `B`: text" -> ("`A`, `B`", "text"): code spans joined by ", ", then ": ".
fn split_term(text: &str) -> Option<(&str, &str)> {
    let mut rest = text;
    loop {
        let code = rest.strip_prefix('`')?;
        rest = &code[code.find('`')? + 1..];
        if let Some(after) = rest.strip_prefix(": ") {
            let term = &text[..text.len() - rest.len()];
            return Some((term, after));
        }
        rest = rest.strip_prefix(", ")?;
    }
}

/// Each row after the header a tagged paragraph: the first cell as the tag, the
/// others after it, each named by its column when there are more than one.
fn table_rows(rows: &[Vec<String>], suffix: Suffix<'_>, roff: &mut Roff) {
    let Some((header, rows)) = rows.split_first() else {
        return;
    };
    for row in rows {
        let Some((term, cells)) = row.split_first() else {
            continue;
        };
        roff.control("TP", [])
            .text(inlines(term, suffix, Font::Bold));
        let text: Vec<String> = cells
            .iter()
            .zip(&header[1..])
            .filter(|(cell, _)| !cell.is_empty())
            .map(|(cell, column)| match cells.len() {
                1 => cell.clone(),
                _ => format!("{column}: {cell}"),
            })
            .collect();
        roff.text(inlines(&text.join("; "), suffix, Font::Roman));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# Title\n\nFirst paragraph,\nstill.\n\nSecond.\n\n## `splitdns check`\n\nCheck.\n\n```sh\n# not a heading\n```\n\n### Deeper\n\nMore.\n\n## Next\n\nNext text.\n";

    fn none(_: &str, _: &str) -> String {
        String::new()
    }

    fn roff(markdown: &str) -> String {
        to_roff(markdown, &none).to_roff()
    }

    #[test]
    fn a_section_runs_to_the_next_heading_of_its_level() {
        let check = section(PAGE, "`splitdns check`").unwrap();
        assert!(check.contains("# not a heading") && check.contains("More."));
        assert!(!check.contains("Next text"));
        assert_eq!(section(PAGE, "Next"), Some("\nNext text.\n"));
        assert_eq!(section(PAGE, "Missing"), None);
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
    fn the_first_paragraph_and_the_title() {
        assert_eq!(first_paragraph(PAGE), "First paragraph,\nstill.");
        assert_eq!(title(PAGE), "Title");
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

    #[test]
    fn lists_nest_and_keep_their_code() {
        let text = "1. **One.** First\n   line.\n   ```toml\n   a = 1\n\n   b = 2\n   ```\n   - inner\n     more\n2. Two.\n\nAfter.\n";
        let made = roff(text);
        assert!(
            made.contains(".IP 1. 4\n\\fBOne.\\fR First line.\n.RS\n"),
            "{made}"
        );
        assert!(made.contains(".nf\na = 1\n.sp\nb = 2\n.fi\n"), "{made}");
        assert!(
            made.contains(".IP \\(bu 2\ninner more\n.RE\n.IP 2. 4\nTwo.\n.PP\nAfter.\n"),
            "{made}"
        );
    }

    #[test]
    fn a_list_of_terms_becomes_tagged_paragraphs() {
        let made = roff("- `A`, `B`: first.\n- `C`: second.\n");
        assert_eq!(made, ".TP\n\\fBA, B\\fR\nfirst.\n.TP\n\\fBC\\fR\nsecond.\n");
        let mixed = roff("- `A`: first.\n- plain\n");
        assert!(mixed.starts_with(".IP \\(bu 2\nA: first."), "{mixed}");
    }

    #[test]
    fn a_table_becomes_tagged_paragraphs() {
        let made = roff("| rule | meaning |\n|---|---|\n| `a=/Z/` | Does *this*. |\n");
        assert_eq!(made, ".TP\n\\fBa=/Z/\\fR\nDoes \\fIthis\\fR.\n");
        let three = roff(
            "| m | labels | meaning |\n|---|---|---|\n| `x` | | Counts. |\n| `y` | `r` | More. |\n",
        );
        assert!(three.contains("\\fBx\\fR\nmeaning: Counts.\n"), "{three}");
        assert!(
            three.contains("\\fBy\\fR\nlabels: r; meaning: More.\n"),
            "{three}"
        );
    }

    #[test]
    fn headings_inside_a_section_are_subsections() {
        assert_eq!(roff("### `A` b\n\nText.\n"), ".SS \"A b\"\n.PP\nText.\n");
    }
}
