//! An export read as a stream (`state import`): its records and history
//! entries are handed over one at a time as they are parsed, never held
//! together, so an export of any size is read in bounded memory. Its keys
//! may come in any order (a tool that rewrites JSON may sort them).

use std::cell::RefCell;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::MediaId;
use crate::state::{Entry, Record};

/// An export's own fields (its format version is handed to the visitor
/// as it is read).
pub(super) struct Header {
    pub lineage: String,
    pub serial: u64,
    /// Whether it has a history (exports before format 2 have none).
    pub history: bool,
}

/// What one pass takes from an export. A pass that wants no records (or
/// no entries) has them skipped, checked as JSON but never built.
pub(super) trait Visit {
    const RECORDS: bool;
    const ENTRIES: bool;
    /// The format version, as soon as it is read (before anything that
    /// a newer format may lay out differently, in an export as written).
    fn format_version(&mut self, _version: u32) -> anyhow::Result<()> {
        Ok(())
    }
    fn record(&mut self, _id: MediaId, _record: Record) -> anyhow::Result<()> {
        Ok(())
    }
    fn entry(&mut self, _entry: Entry) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Why a pass stopped early.
pub(super) enum Stopped {
    /// The visitor refused what it was given (its own error, whole).
    Visit(anyhow::Error),
    /// The input is not an export's JSON, or could not be read.
    Parse(serde_json::Error),
}

/// Reads the export in `input` from start to end, handing each record and
/// entry to `visit` in the order they come.
pub(super) fn read<V: Visit>(input: impl Read, visit: &mut V) -> Result<Header, Stopped> {
    let failed = RefCell::new(None);
    let mut parser = serde_json::Deserializer::from_reader(input);
    let document = Document {
        visit,
        failed: &failed,
    };
    let read = document
        .deserialize(&mut parser)
        .and_then(|header| parser.end().map(|()| header));
    match (read, failed.into_inner()) {
        (_, Some(e)) => Err(Stopped::Visit(e)),
        (Ok(header), None) => Ok(header),
        (Err(e), None) => Err(Stopped::Parse(e)),
    }
}

/// The document's keys, as `state::Export` names them.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    FormatVersion,
    Lineage,
    Serial,
    Media,
    History,
    #[serde(other)]
    Other,
}

struct Document<'a, V> {
    visit: &'a mut V,
    failed: &'a RefCell<Option<anyhow::Error>>,
}

/// Hands `outcome`'s error, if any, to `failed`, and stops the parse.
fn handed<E: de::Error>(
    failed: &RefCell<Option<anyhow::Error>>,
    outcome: anyhow::Result<()>,
) -> Result<(), E> {
    outcome.map_err(|e| {
        *failed.borrow_mut() = Some(e);
        E::custom("stopped")
    })
}

impl<'de, V: Visit> DeserializeSeed<'de> for Document<'_, V> {
    type Value = Header;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Header, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, V: Visit> Visitor<'de> for Document<'_, V> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a state export")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let (mut version, mut lineage, mut serial) = (None, None, None);
        let (mut media, mut history) = (false, None);
        while let Some(key) = map.next_key::<Key>()? {
            let twice = |name| Err(de::Error::duplicate_field(name));
            match key {
                Key::FormatVersion if version.is_some() => return twice("format_version"),
                Key::Lineage if lineage.is_some() => return twice("lineage"),
                Key::Serial if serial.is_some() => return twice("serial"),
                Key::Media if media => return twice("media"),
                Key::History if history.is_some() => return twice("history"),
                Key::FormatVersion => {
                    let read: u32 = map.next_value()?;
                    handed(self.failed, self.visit.format_version(read))?;
                    version = Some(read);
                }
                Key::Lineage => lineage = Some(map.next_value::<String>()?),
                Key::Serial => serial = Some(map.next_value::<u64>()?),
                Key::Media => {
                    map.next_value_seed(Media {
                        visit: &mut *self.visit,
                        failed: self.failed,
                    })?;
                    media = true;
                }
                Key::History => {
                    history = Some(map.next_value_seed(History {
                        visit: &mut *self.visit,
                        failed: self.failed,
                    })?);
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !media {
            return Err(de::Error::missing_field("media"));
        }
        if version.is_none() {
            return Err(de::Error::missing_field("format_version"));
        }
        Ok(Header {
            lineage: lineage.ok_or_else(|| de::Error::missing_field("lineage"))?,
            serial: serial.ok_or_else(|| de::Error::missing_field("serial"))?,
            history: history.unwrap_or(false),
        })
    }
}

/// `media`: each record handed over as it is parsed.
struct Media<'a, V> {
    visit: &'a mut V,
    failed: &'a RefCell<Option<anyhow::Error>>,
}

impl<'de, V: Visit> DeserializeSeed<'de> for Media<'_, V> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if V::RECORDS {
            d.deserialize_map(self)
        } else {
            // Checked as a map all the same: every pass sees one export.
            d.deserialize_map(Skipped("a map of records"))
        }
    }
}

impl<'de, V: Visit> Visitor<'de> for Media<'_, V> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of records")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some((id, record)) = map.next_entry::<MediaId, Record>()? {
            handed(self.failed, self.visit.record(id, record))?;
        }
        Ok(())
    }
}

/// `history`: each entry handed over as it is parsed; `null` is none.
struct History<'a, V> {
    visit: &'a mut V,
    failed: &'a RefCell<Option<anyhow::Error>>,
}

impl<'de, V: Visit> DeserializeSeed<'de> for History<'_, V> {
    /// Whether there is a history.
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, V: Visit> Visitor<'de> for History<'_, V> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of history entries, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        if V::ENTRIES {
            d.deserialize_seq(self)
        } else {
            d.deserialize_seq(Skipped("a list of history entries"))
                .map(|()| true)
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(entry) = seq.next_element::<Entry>()? {
            handed(self.failed, self.visit.entry(entry))?;
        }
        Ok(true)
    }
}

/// A map or list skipped: each item parsed as any JSON, then dropped.
struct Skipped(&'static str);

impl<'de> Visitor<'de> for Skipped {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// A pass that takes only the records, each given to `f`.
pub(super) fn each_record(
    input: impl Read,
    f: impl FnMut(MediaId, Record) -> anyhow::Result<()>,
) -> Result<Header, Stopped> {
    struct Records<F>(F);
    impl<F: FnMut(MediaId, Record) -> anyhow::Result<()>> Visit for Records<F> {
        const RECORDS: bool = true;
        const ENTRIES: bool = false;
        fn record(&mut self, id: MediaId, record: Record) -> anyhow::Result<()> {
            (self.0)(id, record)
        }
    }
    read(input, &mut Records(f))
}

/// A pass that takes only the history entries, each given to `f`.
pub(super) fn each_entry(
    input: impl Read,
    f: impl FnMut(Entry) -> anyhow::Result<()>,
) -> Result<Header, Stopped> {
    struct Entries<F>(F);
    impl<F: FnMut(Entry) -> anyhow::Result<()>> Visit for Entries<F> {
        const RECORDS: bool = false;
        const ENTRIES: bool = true;
        fn entry(&mut self, entry: Entry) -> anyhow::Result<()> {
            (self.0)(entry)
        }
    }
    read(input, &mut Entries(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::Export;
    use crate::model::{AltText, FieldValue, Metadata};
    use crate::state::history::Event;
    use crate::state::{Provenance, FORMAT_VERSION};
    use crate::time::Timestamp;

    fn export(n: u64) -> Export {
        let at = Timestamp::parse("2026-01-01T00:00:00Z").expect("time");
        let mut media = std::collections::BTreeMap::new();
        let mut history = Vec::new();
        for i in 0..n {
            // IDs of two lengths: sorted as text, 10 comes before 9.
            let id = MediaId::parse(&(7 + i).to_string()).unwrap();
            let mut metadata = Metadata::default();
            metadata.insert(FieldValue::AltText(AltText {
                text: format!("Photo {i}").into(),
            }));
            let entry = Entry::new(
                id,
                Event::Create,
                None,
                Some(&metadata),
                &Provenance::default(),
                n - i,
                at,
            );
            history.push(entry);
            let mut record = Record::new(metadata);
            record.applied_at = at;
            media.insert(id, record);
        }
        Export {
            format_version: FORMAT_VERSION,
            lineage: "abc".into(),
            serial: n,
            media,
            history: Some(history),
        }
    }

    /// Read back as a stream, an export gives every record and entry of
    /// the whole document, in its order, whatever the order of its keys.
    #[test]
    fn a_streamed_read_gives_what_the_whole_document_holds() {
        let whole = export(5);
        let pretty = crate::untrusted::json_pretty(&whole).unwrap();
        // serde_json's own maps sort their keys: `history` comes first.
        let sorted = serde_json::to_value(&whole).unwrap().to_string();
        for text in [pretty, sorted] {
            let mut records = Vec::new();
            let header = each_record(text.as_bytes(), |id, r| {
                records.push((id, r));
                Ok(())
            })
            .ok()
            .unwrap();
            assert_eq!((header.lineage.as_str(), header.serial), ("abc", 5));
            assert!(header.history);
            let mut expected: Vec<_> = whole.media.clone().into_iter().collect();
            if !text.starts_with("{\n") {
                // Its media too: as text, "10" before "7".
                expected.sort_by_key(|(id, _)| id.to_string());
            }
            assert_eq!(records, expected);
            let mut entries = Vec::new();
            each_entry(text.as_bytes(), |e| {
                entries.push(e);
                Ok(())
            })
            .ok()
            .unwrap();
            assert_eq!(Some(entries), whole.history);
        }
    }

    /// A key twice, or one missing, is not an export; a visitor's own
    /// error stops the pass and comes back whole.
    #[test]
    fn a_malformed_export_or_a_refusing_visitor_stops_the_pass() {
        for text in [
            r#"{"format_version":2,"lineage":"a","serial":1,"serial":2,"media":{}}"#,
            r#"{"format_version":2,"lineage":"a","media":{}}"#,
            r#"{"format_version":2,"lineage":"a","serial":1,"media":{}} x"#,
        ] {
            let read = each_record(text.as_bytes(), |_, _| Ok(()));
            assert!(matches!(read, Err(Stopped::Parse(_))), "{text}");
        }
        let text = serde_json::to_string(&export(3)).unwrap();
        let read = each_record(text.as_bytes(), |_, _| anyhow::bail!("refused"));
        match read {
            Err(Stopped::Visit(e)) => assert_eq!(e.to_string(), "refused"),
            _ => panic!("the visitor's error was lost"),
        }
    }
}
