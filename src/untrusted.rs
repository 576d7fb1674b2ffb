//! Text from outside (server answers, file content, imported states) made
//! safe to print: secrets scrubbed, control and bidirectional-override
//! characters shown as escapes, and the length capped. The one sink for
//! such text, in each form it is shown: a terminal line, markdown, HTML
//! and JSON all escape the same characters the same way (`\u202e`).

use std::fmt::Write;
use std::io;

/// Longest piece of server text shown or kept, in characters.
pub const MAX_SHOWN_CHARS: usize = 300;

/// Whether printing `c` raw could move the cursor, hide text or reorder
/// what a reader sees (C0/C1 controls, bidi overrides, zero-width marks).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}')
}

/// Writes the escape every form shows for an unsafe character: `\u001b`,
/// `\u202e` (valid in JSON and in YAML's double quotes alike).
pub fn push_escape(out: &mut String, c: char) {
    let _ = write!(out, "\\u{:04x}", c as u32);
}

/// `text` with every unsafe character written as `\u{…}`-style escapes
/// (`\u001b`, `\u202e`), cut to `max_chars` characters with `…`.
pub fn neutralise(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(2)));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if is_unsafe_char(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `neutralise` without a cap, for text whose length is already bounded
/// (an alt text is at most 1,000 characters) and must be shown whole.
pub fn neutralise_whole(text: &str) -> String {
    neutralise(text, usize::MAX)
}

/// Text as markdown that renders as itself: every ASCII punctuation
/// character backslash-escaped (CommonMark lets any be), so no HTML,
/// links, emphasis or table cells; newlines as spaces; unsafe characters
/// as their escape, its backslash escaped so that it shows.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            // GitHub links @mentions and #references after rendering, and a
            // backslash does not stop it: a word joiner does, unseen.
            '@' | '#' => {
                out.push(c);
                out.push('\u{2060}');
            }
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c if is_unsafe_char(c) => {
                out.push('\\');
                push_escape(&mut out, c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text as an HTML element's content (`<summary>`), where markdown
/// escapes do not apply; newlines as spaces, unsafe characters escaped.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' => out.push(' '),
            c if is_unsafe_char(c) => push_escape(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// `value` as pretty JSON whose bytes hold no unsafe character: `serde_json`
/// escapes C0 controls but writes C1 controls, bidi overrides and
/// zero-width marks raw; here they are `\u202e` escapes too, so the JSON
/// parses to the very same strings and a terminal shows it as written.
pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(256);
    serialize_pretty(&mut out, value)?;
    // Only UTF-8 is written: serde_json's strings and ASCII escapes.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// `json_pretty` streamed to `writer`.
pub fn write_json_pretty<W: io::Write, T: serde::Serialize + ?Sized>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    // serde_json writes a few bytes at a time; through a `dyn Write` (the
    // output's) each was a virtual call: a buffer here makes them copies.
    let mut buffered = io::BufWriter::with_capacity(1 << 16, writer);
    serialize_pretty(&mut buffered, value)?;
    io::Write::flush(&mut buffered).map_err(serde_json::Error::io)
}

/// The one serializer of every form above.
fn serialize_pretty<W: io::Write, T: serde::Serialize + ?Sized>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(
        writer,
        SafeJson(serde_json::ser::PrettyFormatter::new()),
    );
    value.serialize(&mut serializer)
}

/// `write_json_pretty` of `shell`, whose top-level `field` (an empty
/// array in `shell`) is written as `items`, rendered on every core a batch
/// at a time: the same bytes as `write_json_pretty` of the whole, in a
/// fraction of the time for 100,000 items, and never more than a batch
/// of them as text.
pub fn write_json_pretty_with_items<W, T, I>(
    mut writer: W,
    shell: &T,
    field: &str,
    items: &[I],
) -> serde_json::Result<()>
where
    W: io::Write,
    T: serde::Serialize + ?Sized,
    I: serde::Serialize + Sync,
{
    let shell = json_pretty(shell)?;
    // A raw line break is never inside a JSON string: this is the field.
    let empty = format!("\n  \"{field}\": []");
    let Some(at) = shell.find(&empty) else {
        return Err(serde::ser::Error::custom(format!(
            "no empty top-level `{field}` to write the items in"
        )));
    };
    let (head, tail) = shell.split_at(at + empty.len() - 1);
    writer
        .write_all(head.as_bytes())
        .map_err(serde_json::Error::io)?;
    let mut first = true;
    let render = |part: &[I]| {
        // A plan's change of the bench's library is 876 bytes of JSON: one
        // allocation a part, not a copy at each doubling.
        let mut out = Vec::with_capacity(part.len() * 1024);
        let mut item_text = Vec::with_capacity(4096);
        for (i, item) in part.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Each item alone, then indented to its depth (2) in the
            // whole: serde_json's pretty layout indents by line.
            item_text.clear();
            serialize_pretty(&mut item_text, item)?;
            for line in item_text.split(|b| *b == b'\n') {
                out.extend_from_slice(b"\n    ");
                out.extend_from_slice(line);
            }
        }
        Ok::<_, serde_json::Error>(out)
    };
    crate::parallel::each_part_in_order(items, crate::parallel::BATCH, render, |part| {
        if !std::mem::take(&mut first) {
            writer.write_all(b",").map_err(serde_json::Error::io)?;
        }
        writer.write_all(&part?).map_err(serde_json::Error::io)
    })?;
    if !items.is_empty() {
        writer.write_all(b"\n  ").map_err(serde_json::Error::io)?;
    }
    writer
        .write_all(tail.as_bytes())
        .map_err(serde_json::Error::io)
}

/// `serde_json`'s pretty layout, with unsafe characters in strings escaped.
struct SafeJson<'a>(serde_json::ser::PrettyFormatter<'a>);

impl serde_json::ser::Formatter for SafeJson<'_> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Printable ASCII, most text, is safe: of `is_unsafe_char`'s ASCII,
        // serde_json escapes the C0 controls itself and hands over only the
        // runs between its escapes, so DEL is the one left to find (the
        // JSON test holds it). One pass over the bytes, not a char search.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut rest = fragment;
        while let Some(at) = rest.find(is_unsafe_char) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            let mut escape = String::with_capacity(6);
            push_escape(&mut escape, c);
            writer.write_all(escape.as_bytes())?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `neutralise` line by line: newlines stay, so multi-line messages keep
/// their shape; nothing else that could move the cursor gets through.
pub fn neutralise_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| neutralise(line, 100_000))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with every secret replaced by `***`, then neutralised. Secrets
/// are removed before cutting, so a cut can never leave half of one.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    scrub_to(text, secrets, MAX_SHOWN_CHARS)
}

/// Longest error message shown, in characters: xmeta builds its messages
/// and caps each untrusted piece where it goes in, so this bounds only a
/// runaway chain of causes (a message that names two states and says what
/// to do runs past `MAX_SHOWN_CHARS`, and must not be cut).
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// `scrub` for a whole error message (see `MAX_MESSAGE_CHARS`).
pub fn scrub_message(text: &str, secrets: &[&str]) -> String {
    scrub_to(text, secrets, MAX_MESSAGE_CHARS)
}

/// Secrets shorter than this are never replaced where they happen to
/// occur: a password `ss` would turn `permission` into `permi***ion` and
/// so show itself. The places a credential sits by syntax are redacted
/// whatever its length (`redact_structure`).
const MIN_SUBSTRING_SECRET_CHARS: usize = 8;

fn scrub_to(text: &str, secrets: &[&str], max_chars: usize) -> String {
    let mut clean = redact_structure(text);
    for secret in secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_SUBSTRING_SECRET_CHARS)
    {
        if clean.contains(secret) {
            clean = clean.replace(secret, "***");
        }
    }
    neutralise(&clean, max_chars)
}

/// `text` with `***` where a credential sits by syntax: a URL's password
/// (`postgres://user:***@host`), a `password=***` parameter (quoted or
/// not), a `Bearer ***` token, and the rest of an `Authorization:` line of
/// another scheme (`Authorization: OAuth ***`).
fn redact_structure(text: &str) -> String {
    // ASCII lowering keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let ends_value = |b: u8| b.is_ascii_whitespace() || b"&;,\"'()<>".contains(&b);
    let value_end = |from: usize| {
        lower.as_bytes()[from..]
            .iter()
            .position(|&b| ends_value(b))
            .map_or(text.len(), |n| from + n)
    };
    let skip_spaces = |from: usize| {
        lower.as_bytes()[from..]
            .iter()
            .position(|&b| b != b' ')
            .map_or(text.len(), |n| from + n)
    };
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (at, _) in lower.match_indices("://") {
        let start = at + 3;
        let authority = &lower[start..];
        let len = authority
            .find(|c: char| matches!(c, '/' | '?' | '#') || ends_value(c as u8))
            .unwrap_or(authority.len());
        if let Some(user_end) = authority[..len].rfind('@') {
            if let Some(colon) = authority[..user_end].find(':') {
                ranges.push((start + colon + 1, start + user_end));
            }
        }
    }
    for (at, marker) in lower.match_indices("password=") {
        let start = at + marker.len();
        let end = if lower.as_bytes().get(start) == Some(&b'\'') {
            lower[start + 1..]
                .find('\'')
                .map_or(text.len(), |n| start + 1 + n + 1)
        } else {
            value_end(start)
        };
        ranges.push((start, end));
    }
    for (at, marker) in lower.match_indices("bearer ") {
        let start = skip_spaces(at + marker.len());
        ranges.push((start, value_end(start)));
    }
    for (at, marker) in lower.match_indices("authorization:") {
        let scheme = skip_spaces(at + marker.len());
        if lower[scheme..].starts_with("bearer ") {
            continue;
        }
        let start = value_end(scheme);
        let end = lower[start..].find('\n').map_or(text.len(), |n| start + n);
        ranges.push((start, end));
    }
    ranges.retain(|(start, end)| end > start);
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (start, end) in ranges {
        if end <= done {
            continue;
        }
        let start = start.max(done);
        out.push_str(&text[done..start]);
        out.push_str(if text[start..end].starts_with(' ') {
            " ***"
        } else {
            "***"
        });
        done = end;
    }
    out.push_str(&text[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_before_the_cut() {
        let long = format!("{}Bearer tok-123", "x".repeat(295));
        assert_eq!(
            scrub(&long, &["tok-123"]),
            format!("{}Bearer ***", "x".repeat(295))
                .chars()
                .take(300)
                .collect::<String>()
                + "…"
        );
        assert_eq!(scrub("a tok-1234 b", &["tok-1234", ""]), "a *** b");
    }

    #[test]
    fn short_secrets_are_redacted_by_place_never_by_substring() {
        let secrets = ["ss", "es"];
        for (text, shown) in [
            ("permission denied", "permission denied"),
            (
                "database \"x\" does not exist at postgres://postgres:es@h/db?password=ss&sslmode=require",
                "database \"x\" does not exist at postgres://postgres:***@h/db?password=***&sslmode=require",
            ),
            ("conninfo password='s s' host=h", "conninfo password=*** host=h"),
            ("you sent Authorization: Bearer ss, thanks", "you sent Authorization: Bearer ***, thanks"),
            ("Authorization: OAuth oauth_token=\"ss\", x=1\nnext", "Authorization: OAuth ***\nnext"),
        ] {
            assert_eq!(
                scrub_message(text, &secrets),
                neutralise(shown, MAX_MESSAGE_CHARS),
                "{text}"
            );
        }
        // A secret of 8 characters or more is replaced wherever it occurs.
        assert_eq!(scrub("echo: longsecret", &["longsecret"]), "echo: ***");
    }

    #[test]
    fn controls_and_overrides_are_escaped() {
        assert_eq!(
            neutralise("a\x1b[2J\u{202e}b\n", 100),
            "a\\u001b[2J\\u202eb\\u000a"
        );
        assert_eq!(neutralise("héllo wörld", 5), "héllo…");
    }

    #[test]
    fn markdown_and_html_show_escapes_and_no_markup() {
        let e = markdown("0 <details><summary>x](http://a) *b* `c` | d\nnext");
        assert_eq!(
            e,
            "0 \\<details\\>\\<summary\\>x\\]\\(http\\:\\/\\/a\\) \\*b\\* \\`c\\` \\| d next"
        );
        assert_eq!(markdown("by @nasa #12"), "by @\u{2060}nasa #\u{2060}12");
        assert_eq!(markdown("a\x1b[2J\u{202e}b"), "a\\\\u001b\\[2J\\\\u202eb");
        assert_eq!(html("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(html("a\u{202e}b\x1b"), "a\\u202eb\\u001b");
    }

    /// Items rendered apart, on every core, make the same bytes as the
    /// whole document rendered at once: none, one, and past a batch.
    #[test]
    fn json_with_items_is_the_whole_document_byte_for_byte() {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            before: &'a str,
            nested: serde_json::Value,
            items: &'a [serde_json::Value],
            after: Vec<u32>,
        }
        let item = |n: usize| serde_json::json!({"n": n, "text": "a\u{202e}b\n\"c\"", "list": [1, {"x": []}], "empty": {}});
        for count in [0, 1, 3, 4097] {
            let items: Vec<serde_json::Value> = (0..count).map(item).collect();
            let doc = |items| Doc {
                before: "\n  \"items\": [] in a string",
                nested: serde_json::json!({"items": []}),
                items,
                after: vec![1, 2],
            };
            let mut spliced = Vec::new();
            write_json_pretty_with_items(&mut spliced, &doc(&[]), "items", &items).unwrap();
            let whole = json_pretty(&doc(&items)).unwrap();
            assert_eq!(String::from_utf8(spliced).unwrap(), whole, "{count} items");
        }
        let refused = write_json_pretty_with_items(
            Vec::new(),
            &serde_json::json!({"other": []}),
            "items",
            &[1],
        );
        assert!(refused.is_err());
    }

    #[test]
    fn json_escapes_every_unsafe_character_and_parses_the_same() {
        let text = "a\x1b[2J\u{202e}b\u{85}c\u{200b}d\n\"é";
        let value = serde_json::json!({"k\u{202e}": [text, 1], "e": {}});
        let json = json_pretty(&value).unwrap();
        assert!(
            !json.chars().any(|c| c != '\n' && is_unsafe_char(c)),
            "{json}"
        );
        assert!(
            json.contains("a\\u001b[2J\\u202eb\\u0085c\\u200bd\\n\\\"é"),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, value);
        // DEL is the one unsafe ASCII character serde_json leaves raw.
        let ascii = json_pretty(&serde_json::json!(["plain ~ text", "x\x7fy"])).unwrap();
        assert_eq!(ascii, "[\n  \"plain ~ text\",\n  \"x\\u007fy\"\n]");
        // The layout is serde_json's own.
        let plain =
            serde_json::to_string_pretty(&serde_json::json!({"a": [1, {"b": []}]})).unwrap();
        assert_eq!(
            json_pretty(&serde_json::json!({"a": [1, {"b": []}]})).unwrap(),
            plain
        );
    }
}
