//! A YAML tree that remembers where every node came from, built from
//! yaml-rust2's marked events (`serde_yaml` gives no positions for values).

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Past this many nodes a file is refused: with the 64 MiB file limit this
/// bounds the memory one file's tree can take.
pub const MAX_NODES: usize = 2_000_000;
/// Aliases are expanded; past this many copied nodes a file is refused, so
/// an alias bomb ("billion laughs") costs bounded time and memory.
pub const MAX_ALIAS_NODES: usize = 100_000;
/// Deeper nesting than this is refused before it can exhaust the stack.
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Pos {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Follows a chain of map keys; `None` when a key is absent.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub(crate) fn size(&self) -> usize {
        match &self.kind {
            NodeKind::Scalar { .. } => 1,
            NodeKind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Node, Node)>, Option<Node>),
}

/// A block collection's start event is marked after its first item was
/// scanned; the first item is where a reader looks for it.
pub fn earliest(start: Pos, first: Option<Pos>) -> Pos {
    match first {
        Some(f) if (f.line, f.column) < (start.line, start.column) => f,
        _ => start,
    }
}

/// Parses every document of a YAML stream into trees.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: Vec<(usize, Node)> = Vec::new();
    let mut nodes = 0usize;
    let mut copied = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            pos: Pos::from(*e.marker()),
            message: e.info().to_string(),
        })?;
        let pos = Pos::from(mark);
        let refuse = |message: &str| SyntaxError {
            pos,
            message: message.to_string(),
        };
        let (node, anchor) = match event {
            Event::StreamEnd => return Ok(docs),
            Event::DocumentEnd => {
                anchors.clear();
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(refuse("nesting is deeper than 128 levels"));
                }
                stack.push(Frame::Seq(pos, anchor, Vec::new()));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(refuse("nesting is deeper than 128 levels"));
                }
                stack.push(Frame::Map(pos, anchor, Vec::new(), None));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(start, anchor, items)) => (
                    Node {
                        pos: earliest(start, items.first().map(|n| n.pos)),
                        kind: NodeKind::Seq(items),
                    },
                    anchor,
                ),
                _ => return Err(refuse("unbalanced sequence")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(start, anchor, entries, _)) => (
                    Node {
                        pos: earliest(start, entries.first().map(|(k, _)| k.pos)),
                        kind: NodeKind::Map(entries),
                    },
                    anchor,
                ),
                _ => return Err(refuse("unbalanced mapping")),
            },
            Event::Scalar(text, style, anchor, _) => (
                Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    },
                },
                anchor,
            ),
            Event::Alias(id) => {
                let Some((_, target)) = anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(refuse("alias to an unknown anchor"));
                };
                copied += target.size();
                if copied > MAX_ALIAS_NODES {
                    return Err(refuse(
                        "aliases expand to more than 100,000 nodes (an alias bomb?)",
                    ));
                }
                let mut copy = target.clone();
                copy.pos = pos;
                (copy, 0)
            }
            _ => continue,
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(refuse("the file has more than 2,000,000 nodes; split it"));
        }
        if anchor != 0 {
            anchors.push((anchor, node.clone()));
        }
        match stack.last_mut() {
            None => docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let docs = parse_documents("a:\n  b: 1\n").unwrap();
        let b = docs[0].get("a").unwrap().get("b").unwrap();
        assert_eq!(b.pos, Pos { line: 2, column: 6 });
        assert_eq!(b.as_str(), Some("1"));
    }

    #[test]
    fn multiple_documents() {
        let docs = parse_documents("a: 1\n---\na: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("alias"), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(10_000);
        assert!(parse_documents(&text).is_err());
    }
}
