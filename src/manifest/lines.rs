//! Block-style YAML read a line at a time: the fast path's scanner for
//! the YAML nearly every manifest is written in (`key: value` lines, `- `
//! items, one-line plain or quoted scalars and flow collections such as
//! `alt_text: {text: "…"}`, comments, `---`). It gives the events
//! yaml-rust2 would give, at the places `Events` reads (a scalar's start;
//! a mapping's start or first key, the earlier), in about half the time:
//! yaml-rust2 scans a character at a time through a token queue, and was
//! 58% of a plan's parse in `perf`.
//!
//! Whatever it is not sure of (flow collections over several lines, block
//! or multi-line scalars, anchors, tags, tabs, CR, escapes it does not
//! know, odd indentation, control characters) is `Unsure`, and `Events`
//! reads the whole file again with yaml-rust2. It never guesses: its
//! events are checked against yaml-rust2's on random syntax (tests below)
//! and the fast path against the positioned path (`manifest::tests`, the
//! fuzzer).

use std::collections::VecDeque;

use yaml_rust2::parser::Event;
use yaml_rust2::scanner::TScalarStyle;

use crate::manifest::yaml::Pos;

/// "Read this text with yaml-rust2": the only error.
#[derive(Debug)]
pub struct Unsure;

/// Keys longer than this are left to yaml-rust2 (which limits a simple
/// key's length); every key of the schema is far shorter.
const MAX_KEY: usize = 64;

/// Flow collections nested deeper than this are left to yaml-rust2 (and
/// the fast path refuses far less deep ones anyway).
const MAX_FLOW_DEPTH: usize = 32;

/// Flow collections of more nodes than this on one line are left to
/// yaml-rust2 too.
const MAX_LINE_EVENTS: usize = 1024;

#[derive(Clone, Copy)]
struct Frame {
    /// A sequence (its items' `-` column) or a mapping (its keys' column).
    seq: bool,
    indent: usize,
}

/// What the line before leaves the next one.
#[derive(Clone, Copy)]
enum After {
    /// Anything at any indentation the open collections allow.
    Line,
    /// A key at this column with no value on its line: a more indented
    /// block (or a list at the same column) is its value, else it is null.
    Key(usize),
    /// A scalar ended its line: the next may not be more indented than
    /// this (it would continue the scalar, or be an error).
    Scalar(usize),
}

pub struct Lines<'a> {
    /// The text not read yet.
    rest: &'a str,
    /// The number of the line `rest` starts.
    line: usize,
    stack: Vec<Frame>,
    after: After,
    /// A document is open, and whether it has a node yet.
    document: Option<bool>,
    queue: VecDeque<(Event, Pos)>,
    started: bool,
    ended: bool,
}

impl<'a> Lines<'a> {
    /// `None` when the text holds a character whose reading this scanner
    /// does not settle (a tab, CR, a control character, a BOM, NEL, a
    /// Unicode line or paragraph separator, a non-character).
    pub fn new(text: &'a str) -> Option<Lines<'a>> {
        let clean = if text.is_ascii() {
            text.bytes()
                .all(|b| b == b'\n' || (b' '..0x7f).contains(&b))
        } else {
            text.chars().all(|c| {
                c == '\n'
                    || (c >= ' '
                        && !('\u{7f}'..='\u{9f}').contains(&c)
                        && !matches!(
                            c,
                            '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
                        ))
            })
        };
        clean.then(|| Lines {
            rest: text,
            line: 1,
            stack: Vec::new(),
            after: After::Line,
            document: None,
            queue: VecDeque::new(),
            started: false,
            ended: false,
        })
    }

    /// The next event and where it is (`Pos` of a scalar's first character;
    /// of a block mapping's first key; of nothing in particular otherwise).
    pub fn next_event(&mut self) -> Result<(Event, Pos), Unsure> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(event);
            }
            if self.ended {
                return Err(Unsure);
            }
            if !self.started {
                self.started = true;
                self.emit(Event::StreamStart, 1, 0);
                continue;
            }
            if let Some((line, rest)) = self.rest.split_once('\n') {
                self.rest = rest;
                self.read_line(line)?;
            } else {
                let line = std::mem::take(&mut self.rest);
                self.read_line(line)?;
                self.end_document();
                self.emit(Event::StreamEnd, self.line, 0);
                self.ended = true;
            }
            self.line += 1;
        }
    }

    fn emit(&mut self, event: Event, line: usize, column: usize) {
        self.queue.push_back((
            event,
            Pos {
                line,
                column: column + 1,
            },
        ));
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, column: usize) {
        self.emit(Event::Scalar(text, style, 0, None), self.line, column);
    }

    fn read_line(&mut self, line: &str) -> Result<(), Unsure> {
        let content = line.trim_start_matches(' ');
        let n = line.len() - content.len();
        if content.is_empty() || content.starts_with('#') {
            return Ok(());
        }
        if n == 0
            && (content.starts_with("---")
                || content.starts_with("...")
                || content.starts_with('%'))
        {
            if content.trim_end_matches(' ') != "---" {
                return Err(Unsure);
            }
            self.end_document();
            self.emit(Event::DocumentStart, self.line, 0);
            self.document = Some(false);
            return Ok(());
        }
        if self.document.is_none() {
            self.emit(Event::DocumentStart, self.line, n);
            self.document = Some(false);
        }
        let item = content == "-" || content.starts_with("- ");
        match std::mem::replace(&mut self.after, After::Line) {
            After::Key(k) if n > k || (n == k && item) => {
                if item {
                    self.open(true, n);
                } else if split_key(content).is_some() {
                    self.open(false, n);
                } else {
                    return Err(Unsure);
                }
            }
            After::Key(_) => self.scalar(String::new(), TScalarStyle::Plain, n),
            After::Scalar(max) if n > max => return Err(Unsure),
            After::Scalar(_) | After::Line => {}
        }
        while let Some(top) = self.stack.last() {
            if top.indent > n || (top.indent == n && top.seq && !item) {
                self.close();
            } else {
                break;
            }
        }
        if self.stack.is_empty() {
            // The document's one node: a mapping or a list at column 0.
            if n != 0 || self.document == Some(true) {
                return Err(Unsure);
            }
            if !item && split_key(content).is_none() {
                return Err(Unsure);
            }
            self.open(item, 0);
        }
        match self.stack.last() {
            Some(top) if top.indent == n && top.seq == item => {}
            _ => return Err(Unsure),
        }
        if item {
            self.item(n, content)
        } else {
            self.key(n, content)
        }
    }

    /// Opens a collection whose first key or `-` is at `column` of this
    /// line (a mapping is placed at its first key).
    fn open(&mut self, seq: bool, column: usize) {
        self.document = Some(true);
        self.stack.push(Frame {
            seq,
            indent: column,
        });
        let event = if seq {
            Event::SequenceStart(0, None)
        } else {
            Event::MappingStart(0, None)
        };
        self.emit(event, self.line, column);
    }

    fn close(&mut self) {
        if let Some(frame) = self.stack.pop() {
            let event = if frame.seq {
                Event::SequenceEnd
            } else {
                Event::MappingEnd
            };
            self.emit(event, self.line, 0);
        }
    }

    /// Ends the open document, if any: a key left without a value is null,
    /// and so is a document with no node.
    fn end_document(&mut self) {
        let Some(has_node) = self.document.take() else {
            return;
        };
        if let After::Key(k) = std::mem::replace(&mut self.after, After::Line) {
            self.scalar(String::new(), TScalarStyle::Plain, k);
        }
        while !self.stack.is_empty() {
            self.close();
        }
        if !has_node {
            self.scalar(String::new(), TScalarStyle::Plain, 0);
        }
        self.emit(Event::DocumentEnd, self.line, 0);
    }

    /// `key: value` or `key:` at column `n`.
    fn key(&mut self, n: usize, content: &str) -> Result<(), Unsure> {
        let (key, value) = split_key(content).ok_or(Unsure)?;
        self.scalar(key.to_string(), TScalarStyle::Plain, n);
        let column = n + key.len() + 1;
        let text = value.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            self.after = After::Key(n);
            return Ok(());
        }
        let column = column + (value.len() - text.len());
        self.value(n, column, text)
    }

    /// `- value` or `- key: value` (a mapping in the list) at column `n`.
    fn item(&mut self, n: usize, content: &str) -> Result<(), Unsure> {
        let value = &content[1..];
        let text = value.trim_start_matches(' ');
        // A nested list, a null item or one on the lines below: rare.
        if text.is_empty() || text.starts_with('#') || text == "-" || text.starts_with("- ") {
            return Err(Unsure);
        }
        let column = n + 1 + (value.len() - text.len());
        if split_key(text).is_some() {
            self.open(false, column);
            return self.key(column, text);
        }
        self.value(n, column, text)
    }

    /// A value that ends its line, at `column`: a one-line scalar or flow
    /// collection. The next line may not be more indented than `holder`.
    fn value(&mut self, holder: usize, column: usize, text: &str) -> Result<(), Unsure> {
        if text.starts_with(['{', '[']) {
            let mut at = Cursor { rest: text, column };
            self.flow_node(&mut at, 0)?;
            end_of_line(at.rest)?;
        } else {
            let (text, style) = read_scalar(text)?;
            self.scalar(text, style, column);
        }
        self.after = After::Scalar(holder);
        Ok(())
    }

    /// A node in a flow collection (or the collection itself).
    fn flow_node(&mut self, at: &mut Cursor, depth: usize) -> Result<(), Unsure> {
        // A line's events are queued whole: a hostile one-line list of
        // millions is yaml-rust2's, which streams them.
        if depth > MAX_FLOW_DEPTH || self.queue.len() > MAX_LINE_EVENTS {
            return Err(Unsure);
        }
        let column = at.column;
        let (value, style, used) = match at.rest.as_bytes().first() {
            Some(b'{') => return self.flow_collection(at, depth, false),
            Some(b'[') => return self.flow_collection(at, depth, true),
            Some(b'\'') => {
                let (value, rest) = single_quoted(&at.rest[1..])?;
                (
                    value,
                    TScalarStyle::SingleQuoted,
                    at.rest.len() - rest.len(),
                )
            }
            Some(b'"') => {
                let (value, rest) = double_quoted(&at.rest[1..])?;
                (
                    value,
                    TScalarStyle::DoubleQuoted,
                    at.rest.len() - rest.len(),
                )
            }
            _ => {
                let (value, used) = flow_plain(at.rest)?;
                (value.to_string(), TScalarStyle::Plain, used)
            }
        };
        self.emit(Event::Scalar(value, style, 0, None), self.line, column);
        at.skip(used);
        Ok(())
    }

    /// `{key: node, …}` or `[node, …]` on this line: no trailing comma,
    /// no empty value, keys as in a block mapping.
    fn flow_collection(&mut self, at: &mut Cursor, depth: usize, seq: bool) -> Result<(), Unsure> {
        let (start, end, close) = if seq {
            (Event::SequenceStart(0, None), Event::SequenceEnd, b']')
        } else {
            (Event::MappingStart(0, None), Event::MappingEnd, b'}')
        };
        self.emit(start, self.line, at.column);
        at.skip(1);
        at.spaces();
        let mut first = true;
        loop {
            match at.rest.as_bytes().first() {
                Some(&b) if b == close && first => {}
                Some(b',' | b']' | b'}') | None => return Err(Unsure),
                Some(_) if seq => self.flow_node(at, depth + 1)?,
                Some(_) => {
                    let (key, value) = split_key(at.rest).ok_or(Unsure)?;
                    let value = value.trim_start_matches(' ');
                    if value.is_empty() || value.starts_with([',', ']', '}', '#']) {
                        return Err(Unsure);
                    }
                    self.emit(
                        Event::Scalar(key.to_string(), TScalarStyle::Plain, 0, None),
                        self.line,
                        at.column,
                    );
                    at.skip(key.len() + 1);
                    at.spaces();
                    self.flow_node(at, depth + 1)?;
                }
            }
            first = false;
            at.spaces();
            match at.rest.as_bytes().first() {
                Some(b',') => {
                    at.skip(1);
                    at.spaces();
                }
                Some(&b) if b == close => {
                    at.skip(1);
                    self.emit(end, self.line, at.column);
                    return Ok(());
                }
                _ => return Err(Unsure),
            }
        }
    }
}

/// `name:` then the end of the line or a space: the key and what follows
/// the colon. Only plain names (letters, digits, `_`, `-`).
fn split_key(content: &str) -> Option<(&str, &str)> {
    let bytes = content.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let len = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'))?;
    if len > MAX_KEY || bytes[len] != b':' {
        return None;
    }
    let rest = &content[len + 1..];
    (rest.is_empty() || rest.starts_with(' ')).then_some((&content[..len], rest))
}

/// A one-line scalar and what may follow it on its line (spaces, then a
/// comment).
fn read_scalar(text: &str) -> Result<(String, TScalarStyle), Unsure> {
    let (value, style, rest) = match text.as_bytes()[0] {
        b'\'' => {
            let (value, rest) = single_quoted(&text[1..])?;
            (value, TScalarStyle::SingleQuoted, rest)
        }
        b'"' => {
            let (value, rest) = double_quoted(&text[1..])?;
            (value, TScalarStyle::DoubleQuoted, rest)
        }
        _ => return plain(text).map(|v| (v.to_string(), TScalarStyle::Plain)),
    };
    end_of_line(rest)?;
    Ok((value, style))
}

/// Only spaces, then perhaps a comment, may follow a node on its line.
fn end_of_line(rest: &str) -> Result<(), Unsure> {
    let after = rest.trim_start_matches(' ');
    let comment = after.starts_with('#') && after.len() < rest.len();
    if after.is_empty() || comment {
        Ok(())
    } else {
        Err(Unsure)
    }
}

/// Where a flow collection's reading stands: the rest of its line and
/// that rest's column, in characters (as yaml-rust2 counts them).
struct Cursor<'t> {
    rest: &'t str,
    column: usize,
}

impl Cursor<'_> {
    fn skip(&mut self, bytes: usize) {
        let (gone, rest) = self.rest.split_at(bytes);
        self.column += if gone.is_ascii() {
            gone.len()
        } else {
            gone.chars().count()
        };
        self.rest = rest;
    }

    fn spaces(&mut self) {
        self.skip(self.rest.len() - self.rest.trim_start_matches(' ').len());
    }
}

/// A plain scalar in a flow collection, and the bytes it took (its
/// trailing spaces too): up to a `,`, `]` or `}`. Not one holding `:`,
/// `#`, `[` or `{` (a pair, a comment, a collection: yaml-rust2 decides).
fn flow_plain(text: &str) -> Result<(&str, usize), Unsure> {
    let end = text
        .find([',', '[', ']', '{', '}', ':', '#'])
        .ok_or(Unsure)?;
    let value = text[..end].trim_end_matches(' ');
    // yaml-rust2 refuses a `-` right before a flow indicator, after a
    // space (`[a -]`), as at a scalar's start.
    if !safe_start(text)
        || value.is_empty()
        || text[..end].ends_with(" -")
        || !text[end..].starts_with([',', ']', '}'])
    {
        return Err(Unsure);
    }
    Ok((value, end))
}

/// After the opening quote: the value and the text after the closing one.
fn single_quoted(text: &str) -> Result<(String, &str), Unsure> {
    let mut value = String::new();
    let mut rest = text;
    loop {
        let at = rest.find('\'').ok_or(Unsure)?;
        value.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        match rest.strip_prefix('\'') {
            Some(more) => {
                value.push('\'');
                rest = more;
            }
            None => return Ok((value, rest)),
        }
    }
}

/// After the opening quote: the value and the text after the closing one.
/// The common escapes only; any other is left to yaml-rust2.
fn double_quoted(text: &str) -> Result<(String, &str), Unsure> {
    let mut value = String::new();
    let mut rest = text;
    loop {
        let at = rest.find(['"', '\\']).ok_or(Unsure)?;
        value.push_str(&rest[..at]);
        if rest.as_bytes()[at] == b'"' {
            return Ok((value, &rest[at + 1..]));
        }
        let escaped = match rest.as_bytes().get(at + 1) {
            Some(b'\\') => '\\',
            Some(b'"') => '"',
            Some(b'n') => '\n',
            Some(b't') => '\t',
            _ => return Err(Unsure),
        };
        value.push(escaped);
        rest = &rest[at + 2..];
    }
}

/// A plain scalar: up to a comment, its trailing spaces dropped. Not one
/// that starts with an indicator, nor one holding `: ` (a mapping here is
/// an error), nor one ending in `:`.
fn plain(text: &str) -> Result<&str, Unsure> {
    let value = text.find(" #").map_or(text, |at| &text[..at]);
    let value = value.trim_end_matches(' ');
    if !safe_start(text) || value.contains(": ") || value.ends_with(':') {
        return Err(Unsure);
    }
    Ok(value)
}

/// Whether a plain scalar may start here: not with an indicator, nor
/// with `-`, `?` or `:` unless a letter, digit or `.` follows.
fn safe_start(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some('-' | '?' | ':') => chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.'),
        None
        | Some(
            ' ' | ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
            | '%' | '@' | '`',
        ) => false,
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::parser::Parser;

    /// Both scanners' events, each place where `Events` reads one: a
    /// scalar's (unless empty: yaml-rust2 places a null at what follows)
    /// and a mapping's first key's.
    fn events(text: &str) -> (Option<Vec<String>>, Option<Vec<String>>) {
        let show = |all: Vec<(Event, Pos)>| -> Vec<String> {
            let mut shown = Vec::new();
            for (i, (event, pos)) in all.iter().enumerate() {
                let at = match event {
                    Event::Scalar(text, ..) if !text.is_empty() => {
                        format!(" @{}:{}", pos.line, pos.column)
                    }
                    Event::MappingStart(..) => match all.get(i + 1) {
                        Some((Event::Scalar(..), key)) => {
                            let p = crate::manifest::yaml::earliest(*pos, Some(*key));
                            format!(" @{}:{}", p.line, p.column)
                        }
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                shown.push(format!("{event:?}{at}"));
            }
            shown
        };
        let lines = Lines::new(text).and_then(|mut lines| {
            let mut all = Vec::new();
            loop {
                let event = lines.next_event().ok()?;
                let end = matches!(event.0, Event::StreamEnd);
                all.push(event);
                if end {
                    return Some(show(all));
                }
            }
        });
        let mut parser = Parser::new_from_str(text);
        let mut all = Vec::new();
        let yaml = loop {
            match parser.next_token() {
                Ok((event, mark)) => {
                    let end = matches!(event, Event::StreamEnd);
                    all.push((event, Pos::from(mark)));
                    if end {
                        break Some(show(all));
                    }
                }
                Err(_) => break None,
            }
        };
        (lines, yaml)
    }

    /// Whatever the line scanner reads, yaml-rust2 reads alike.
    fn assert_agrees(text: &str) -> bool {
        let (lines, yaml) = events(text);
        if let Some(lines) = &lines {
            assert_eq!(Some(lines), yaml.as_ref(), "{text:?}");
        }
        lines.is_some()
    }

    #[test]
    fn reads_block_manifests_as_yaml_rust2_does() {
        for text in [
            "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n- id: '17'\n  metadata:\n    alt_text:\n      text: 'Photo ''0'''\n    geo:\n      - us\n      - ca\n- id: \"18\"\n  key: 3_18\n\n# c\n---\na: 1\n",
            "a:\nb: 1\n",
            "a: x  # c\nb: 'y' # c\nc:   z  \n",
            "- a\n- b: 1\n  c: 2\n-   d: 3\n",
            "a:\n  - x\n",
            "---\na: 1\n---\nb: 2\n",
            "---\n---\na: 1\n",
            "a: 1\n---\n",
            "",
            "# only\n",
            "a: \"q \\\" \\\\ \\n\"\nb: café ☕\nc: http://x/y:z\nd: -1\ne: .5\n",
            "a:\n  b:\n    c: 1\n  d:\nf: 2",
            "a: 'x' #c\nb: x#y\n",
            "a: [1]\nb: {c: 'x', d: [y z , \"w\"]}\nc: []\nd: { }\n",
            "- {id: \"1\", m: {t: é, u: [x y, 'z']}}  # c\n- [a, -1, .5]\n",
            "a: {b: {c: é, d: e}, f: [[x], {g: h}]}\n",
            "a: [a - , b -c]\nb: x -]\n",
        ] {
            assert!(assert_agrees(text), "not read: {text:?}");
        }
    }

    #[test]
    fn leaves_what_it_is_not_sure_of() {
        for text in [
            "a: [1\n",
            "a: [1,\n  2]\n",
            "a: {b:1}\n",
            "a: {b: }\n",
            "a: [x, ]\n",
            "a: [b: c]\n",
            "a: {b: c: d}\n",
            "a: {b: 1} x\n",
            "a: [x #c]\n",
            "a: {\"b\": 1}\n",
            "a: [x]\n  - y\n",
            "a: [a -]\n",
            "a: {k: x -}\n",
            "- [a, b -, c]\n",
            "a: |\n  x\n",
            "a: x\n  y\n",
            "a: 'x\n  y'\n",
            "a: &x 1\n",
            "a: !t 1\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: b: c\n",
            "a: \"\\x41\"\n",
            "- - a\n",
            "-\n  a: 1\n",
            "? a\n: b\n",
            "'a': 1\n",
            "  a: 1\n",
            "a: 1\n b: 2\n",
            "--- a\n",
            "...\n",
            "%YAML 1.2\n---\na: 1\n",
            "\u{feff}a: 1\n",
            "a: x\u{85}y\n",
        ] {
            assert!(!assert_agrees(text), "read: {text:?}");
        }
    }

    #[test]
    fn leaves_deep_or_long_flow_collections_to_yaml_rust2() {
        let deep = format!("a: {}x{}\n", "[".repeat(40), "]".repeat(40));
        assert!(!assert_agrees(&deep));
        let shallow = format!("a: {}x{}\n", "[".repeat(20), "]".repeat(20));
        assert!(assert_agrees(&shallow));
        let long = format!("a: [{}x]\n", "x, ".repeat(2000));
        assert!(!assert_agrees(&long));
        let short = format!("a: [{}x]\n", "x, ".repeat(500));
        assert!(assert_agrees(&short));
    }

    /// The manifest tests' bits of YAML syntax, and more of structure
    /// and flow, strung together at random.
    const EXTRA: &[&str] = &[
        "id",
        "x_y",
        "-1",
        ".5",
        "\u{a0}",
        "  ",
        "\n    ",
        "\n- ",
        "\n  - ",
        "#",
        "''",
        "\\\"",
        "key: 'v'",
        "k: \"v\"",
        "\n  k: v",
        "\n- k: v",
        "\nk:",
        "\n  k:",
        "\n---\n",
        "a: ",
        "'x y'",
        "{k: v}",
        "[x, 'y']",
        "{k: [a, b]}",
        "[]",
        "{}",
        "{ k: \"é\" }",
        "k: [",
        "k: {",
        " -",
        "a -",
    ];
    const TOKENS: usize = super::super::tests::TOKENS.len() + EXTRA.len();

    fn token(i: usize) -> &'static str {
        let shared = super::super::tests::TOKENS;
        shared
            .get(i)
            .copied()
            .unwrap_or_else(|| EXTRA[i - shared.len()])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20000))]
        #[test]
        fn agrees_with_yaml_rust2_on_random_syntax(
            picks in proptest::collection::vec(0..TOKENS, 0..24),
        ) {
            let text: String = picks.iter().map(|&i| token(i)).collect();
            assert_agrees(&text);
        }
    }

    /// The property above reads something: the line scanner takes a fair
    /// share of the same kind of random texts.
    #[test]
    fn reads_a_fair_share_of_random_syntax() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |below: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            usize::try_from(seed >> 33).unwrap_or(0) % below
        };
        let mut taken = 0;
        for _ in 0..5000 {
            let len = next(24);
            let text: String = (0..len).map(|_| token(next(TOKENS))).collect();
            taken += usize::from(assert_agrees(&text));
        }
        assert!(taken >= 250, "the line scanner took only {taken} of 5000");
    }
}
