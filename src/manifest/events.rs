//! A `serde` deserializer over yaml-rust2's events, read as they are
//! scanned: the fast path's reader. The events come from the line scanner
//! (`lines.rs`) where it is sure of the text, which gives the same ones.
//!
//! It builds no tree and keeps no list of events (`serde_yaml`'s loader
//! kept every event of a document: the largest allocation of a plan, and
//! most of its page faults). It reads YAML exactly as the positioned path
//! does, since both take yaml-rust2's events (or the same ones) and
//! resolve plain scalars by `Scalar::resolve`. Whatever it is not sure of
//! (a tag, an anchor, an alias, more nodes or deeper nesting than the
//! positioned path allows) is `NotSure`, and the file then takes that
//! path.
//!
//! It also notes where each media entry starts, from the scanner's marks,
//! as the positioned path places it.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use crate::manifest::lines::Lines;
use crate::manifest::scalar::{is_null, Scalar};
use crate::manifest::yaml::{earliest, Pos, MAX_DEPTH, MAX_NODES};

/// "Leave this file to the positioned path": every error here is that one.
#[derive(Debug)]
pub struct NotSure;

impl fmt::Display for NotSure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to the positioned path")
    }
}

impl std::error::Error for NotSure {}

impl de::Error for NotSure {
    fn custom<T: fmt::Display>(_: T) -> NotSure {
        NotSure
    }
}

/// Where the events come from: the line scanner for the block style it
/// is sure of, else yaml-rust2.
enum Source<'a> {
    Lines(Lines<'a>),
    /// Boxed: yaml-rust2's parser is many times the line scanner's size.
    Yaml(Box<Parser<std::str::Chars<'a>>>),
}

/// The documents of one YAML text, read one at a time.
pub struct Events<'a> {
    source: Source<'a>,
    /// The event `peek` read ahead.
    peeked: Option<(Event, Pos)>,
    /// The line scanner was not sure of the text: read it with `yaml`.
    gave_up: bool,
    /// Nodes still allowed, counted as the positioned path counts them (a
    /// scalar, or a collection once): past `MAX_NODES` it decides (it
    /// refuses a file of more nodes than that).
    left: usize,
    /// The collections open around the next event: `true` for a list.
    open: Vec<bool>,
    /// Where each mapping in a list in a document's mapping starts: the
    /// media entries, in order (any other such list fails to deserialize).
    items: Vec<Pos>,
}

impl<'a> Events<'a> {
    /// By lines where the text allows (see `Lines::new`).
    pub fn new(text: &'a str) -> Events<'a> {
        match Lines::new(text) {
            Some(lines) => Events::from(Source::Lines(lines)),
            None => Events::yaml(text),
        }
    }

    /// By yaml-rust2, whatever the text.
    pub fn yaml(text: &'a str) -> Events<'a> {
        Events::from(Source::Yaml(Box::new(Parser::new_from_str(text))))
    }

    fn from(source: Source<'a>) -> Events<'a> {
        Events {
            source,
            peeked: None,
            gave_up: false,
            left: MAX_NODES,
            open: Vec::new(),
            items: Vec::new(),
        }
    }

    /// Whether the line scanner gave up on the text (then `yaml` reads it;
    /// any other `NotSure` stands).
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Where the media entries read so far start, in order.
    pub fn item_positions(&self) -> &[Pos] {
        &self.items
    }

    /// The next document as a `T`; `None` at the end of the stream.
    pub fn next_document<T: Deserialize<'a>>(&mut self) -> Result<Option<T>, NotSure> {
        loop {
            match self.next()? {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::DocumentStart => return T::deserialize(&mut *self).map(Some),
                Event::StreamEnd => return Ok(None),
                _ => return Err(NotSure),
            }
        }
    }

    fn next(&mut self) -> Result<Event, NotSure> {
        self.next_marked().map(|(event, _)| event)
    }

    fn read(&mut self) -> Result<(Event, Pos), NotSure> {
        let read = match &mut self.source {
            Source::Lines(lines) => lines.next_event().map_err(|_| true),
            Source::Yaml(parser) => parser
                .next_token()
                .map(|(event, mark)| (event, Pos::from(mark)))
                .map_err(|_| false),
        };
        read.map_err(|by_lines| {
            self.gave_up |= by_lines;
            NotSure
        })
    }

    fn next_marked(&mut self) -> Result<(Event, Pos), NotSure> {
        let (event, mark) = match self.peeked.take() {
            Some(peeked) => peeked,
            None => self.read()?,
        };
        if matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) {
            self.left = self.left.checked_sub(1).ok_or(NotSure)?;
        }
        match &event {
            Event::Alias(_) => Err(NotSure),
            Event::Scalar(_, _, anchor, tag)
            | Event::SequenceStart(anchor, tag)
            | Event::MappingStart(anchor, tag)
                if *anchor != 0 || tag.is_some() =>
            {
                Err(NotSure)
            }
            _ => Ok((event, mark)),
        }
    }

    fn peek(&mut self) -> Result<&Event, NotSure> {
        self.peek_marked().map(|(e, _)| e)
    }

    fn peek_marked(&mut self) -> Result<(&Event, Pos), NotSure> {
        if self.peeked.is_none() {
            self.peeked = Some(self.read()?);
        }
        match &self.peeked {
            Some((event, pos)) => Ok((event, *pos)),
            None => Err(NotSure),
        }
    }

    /// Enters a collection; `NotSure` past the positioned path's depth.
    fn enter(&mut self, list: bool) -> Result<(), NotSure> {
        self.open.push(list);
        if self.open.len() > MAX_DEPTH {
            return Err(NotSure);
        }
        Ok(())
    }

    /// Consumes the end of a collection if it is next.
    fn at_end(&mut self, end: fn(&Event) -> bool) -> Result<bool, NotSure> {
        if end(self.peek()?) {
            self.next()?;
            self.open.pop();
            return Ok(true);
        }
        Ok(false)
    }
}

impl<'de> Deserializer<'de> for &mut Events<'de> {
    type Error = NotSure;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NotSure> {
        let (event, mark) = self.next_marked()?;
        match event {
            Event::Scalar(text, TScalarStyle::Plain, ..) => {
                match Scalar::resolve_owned(text.into(), true) {
                    Scalar::Null => visitor.visit_unit(),
                    Scalar::Bool(b) => visitor.visit_bool(b),
                    Scalar::Int(n) | Scalar::Float(n) => {
                        if let Some(u) = n.as_u64() {
                            visitor.visit_u64(u)
                        } else if let Some(i) = n.as_i64() {
                            visitor.visit_i64(i)
                        } else {
                            visitor.visit_f64(n.as_f64().ok_or(NotSure)?)
                        }
                    }
                    Scalar::Str(text) => visitor.visit_string(text),
                    Scalar::TooBig | Scalar::NotFinite => Err(NotSure),
                }
            }
            Event::Scalar(text, ..) => visitor.visit_string(text),
            Event::SequenceStart(..) => {
                self.enter(true)?;
                let value = visitor.visit_seq(Items(&mut *self))?;
                // A visitor that stopped early leaves items unread.
                self.at_end(|e| matches!(e, Event::SequenceEnd))?
                    .then_some(value)
                    .ok_or(NotSure)
            }
            Event::MappingStart(..) => {
                if self.open == [false, true] {
                    // A block mapping is marked after its first key; the
                    // positioned path places it at the earlier of the two.
                    let first = match self.peek_marked()? {
                        (Event::MappingEnd, _) => None,
                        (_, key) => Some(key),
                    };
                    self.items.push(earliest(mark, first));
                }
                self.enter(false)?;
                let value = visitor.visit_map(Entries(&mut *self))?;
                self.at_end(|e| matches!(e, Event::MappingEnd))?
                    .then_some(value)
                    .ok_or(NotSure)
            }
            _ => Err(NotSure),
        }
    }

    /// A null is `None`, as `serde_yaml` reads it.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NotSure> {
        let null = matches!(self.peek()?, Event::Scalar(text, TScalarStyle::Plain, ..)
            if is_null(text));
        if null {
            self.next()?;
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    /// A scalar's text as written, whatever it would resolve to: a media ID
    /// `0001` stays `0001` (for `MediaId::parse` to judge), and so do keys.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NotSure> {
        match self.next()? {
            Event::Scalar(text, ..) => visitor.visit_string(text),
            _ => Err(NotSure),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NotSure> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NotSure> {
        self.deserialize_str(visitor)
    }

    /// A structure is a mapping: serde's derived types would also take a
    /// list, field by field, which the positioned path refuses.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NotSure> {
        if !matches!(self.peek()?, Event::MappingStart(..)) {
            return Err(NotSure);
        }
        self.deserialize_any(visitor)
    }

    /// Every type read here refuses unknown fields: nothing is skipped.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, NotSure> {
        Err(NotSure)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map enum
    }
}

/// The items of a sequence.
struct Items<'a, 'de>(&'a mut Events<'de>);

impl<'de> SeqAccess<'de> for Items<'_, 'de> {
    type Error = NotSure;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NotSure> {
        if matches!(self.0.peek()?, Event::SequenceEnd) {
            return Ok(None);
        }
        seed.deserialize(&mut *self.0).map(Some)
    }
}

/// The entries of a mapping.
struct Entries<'a, 'de>(&'a mut Events<'de>);

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = NotSure;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NotSure> {
        if matches!(self.0.peek()?, Event::MappingEnd) {
            return Ok(None);
        }
        seed.deserialize(&mut *self.0).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NotSure> {
        seed.deserialize(&mut *self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// By lines, or by yaml-rust2 when the line scanner gives up (as the
    /// fast path reads).
    fn read<T: Deserialize<'static>>(text: &'static str) -> Result<Vec<T>, NotSure> {
        let all = |events: &mut Events<'static>| {
            let mut docs = Vec::new();
            while let Some(doc) = events.next_document()? {
                docs.push(doc);
            }
            Ok(docs)
        };
        let mut events = Events::new(text);
        match all(&mut events) {
            Err(NotSure) if events.gave_up() => all(&mut Events::yaml(text)),
            read => read,
        }
    }

    #[test]
    fn reads_documents_mappings_lists_and_scalars() {
        let docs: Vec<BTreeMap<String, serde_json::Value>> =
            read("a: [1, -2, 1.5, x, 'y', true, ~]\nb: {c: \"d\"}\n---\ne: 0001\n").unwrap();
        assert_eq!(
            serde_json::to_string(&docs).unwrap(),
            r#"[{"a":[1,-2,1.5,"x","y",true,null],"b":{"c":"d"}},{"e":"0001"}]"#
        );
    }

    #[test]
    fn a_null_document_is_none_and_an_empty_text_has_no_document() {
        let docs: Vec<Option<BTreeMap<String, u8>>> = read("---\n...\n---\na: 1\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(docs[0].is_none() && docs[1].is_some());
        assert!(read::<u8>("").unwrap().is_empty());
    }

    #[test]
    fn leaves_what_it_is_not_sure_of() {
        type Doc = BTreeMap<String, serde_json::Value>;
        for text in [
            "a: !!str 1\n",
            "a: &x 1\nb: *x\n",
            "a: [1\n",
            "a: 340282366920938463463374607431768211455\n",
            "a: .inf\n",
        ] {
            assert!(read::<Doc>(text).is_err(), "{text:?}");
        }
        let deep: &'static str = Box::leak(format!("a: {}", "[".repeat(200)).into_boxed_str());
        assert!(read::<Doc>(deep).is_err());
    }

    /// The fast path refuses a file as the positioned path does, past
    /// `MAX_NODES` nodes, counted alike (a scalar, or a collection once):
    /// counting every event refused files of 1,500,000 nodes, which the
    /// positioned path then read into a tree of 700 MB.
    #[test]
    fn counts_nodes_as_the_positioned_path_does() {
        type Doc = BTreeMap<String, serde_json::Value>;
        let text = "a: [{b: 1}, {c: [2, 3]}]\nd: {}\n";
        let nodes: usize = crate::manifest::yaml::parse_documents(text)
            .unwrap()
            .iter()
            .map(crate::manifest::yaml::Node::size)
            .sum();
        let read = |limit: usize| {
            let mut events = Events::new(text);
            events.left = limit;
            events.next_document::<Doc>()
        };
        assert!(read(nodes).is_ok(), "{nodes} nodes");
        assert!(read(nodes - 1).is_err());
    }

    /// A visitor that stops reading a list early cannot leave its items to
    /// be read as whatever comes next.
    #[test]
    fn a_list_read_in_part_is_not_sure() {
        #[derive(Deserialize, Debug)]
        struct Doc {
            #[allow(dead_code)]
            a: (u8,),
        }
        assert!(read::<Doc>("a: [1, 2]\n").is_err());
        assert!(read::<Doc>("a: [1]\n").is_ok());
    }
}
