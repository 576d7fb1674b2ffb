//! `xmeta state export`: the state as one JSON document (`Export`'s
//! layout, byte for byte), streamed from the state as it is read, so a
//! state of any size is exported in bounded memory.

use std::cell::{Cell, RefCell};
use std::io::Write;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::state::{Filter, StateReader, FORMAT_VERSION};

/// Why an export stopped: the state could not be read (its own error,
/// whole), or the output could not be written.
#[derive(Debug)]
pub(super) enum Failed {
    State(anyhow::Error),
    Write(std::io::Error),
}

/// Writes the export of `store` (which exists) to `out`; returns how many
/// media it holds.
pub(super) fn write(store: &dyn StateReader, out: &mut dyn Write) -> Result<usize, Failed> {
    write_as(store, out, Layout::Pretty)
}

/// How an export is laid out: as `state export` shows it, or compact
/// (`state migrate`'s private copy, read back only by xmeta: half the
/// bytes to write and parse again).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    Pretty,
    Compact,
}

/// `write`, laid out as `layout`.
pub(super) fn write_as(
    store: &dyn StateReader,
    out: &mut dyn Write,
    layout: Layout,
) -> Result<usize, Failed> {
    let export = Streamed {
        format_version: FORMAT_VERSION,
        // An existing state has one; the format's "" is "none".
        lineage: store.lineage().map_err(Failed::State)?.unwrap_or_default(),
        serial: store.serial().map_err(Failed::State)?,
        media: Media(Reads::new(store)),
        history: History(Reads::new(store)),
    };
    let written = match layout {
        Layout::Pretty => crate::untrusted::write_json_pretty(&mut *out, &export),
        Layout::Compact => serde_json::to_writer(&mut *out, &export),
    };
    for reads in [&export.media.0, &export.history.0] {
        if let Some(e) = reads.failed.take() {
            return Err(Failed::State(e));
        }
    }
    written.map_err(|e| Failed::Write(e.into()))?;
    Ok(export.media.0.count.get())
}

/// The fields of `state::Export`, in its order, its maps and lists read
/// from the state while they are written.
#[derive(Serialize)]
struct Streamed<'a> {
    format_version: u32,
    lineage: String,
    serial: u64,
    media: Media<'a>,
    history: History<'a>,
}

/// A state read while it is serialized: how many items, and the state's
/// own error, kept apart from the writer's.
struct Reads<'a> {
    store: &'a dyn StateReader,
    count: Cell<usize>,
    failed: RefCell<Option<anyhow::Error>>,
}

impl<'a> Reads<'a> {
    fn new(store: &'a dyn StateReader) -> Self {
        Reads {
            store,
            count: Cell::new(0),
            failed: RefCell::new(None),
        }
    }

    /// The outcome of a read that fed `written`: the writer's error
    /// first, then the state's (kept for `write` to return).
    fn outcome<E: serde::ser::Error>(
        &self,
        read: anyhow::Result<()>,
        written: Option<E>,
    ) -> Result<(), E> {
        if let Some(e) = written {
            return Err(e);
        }
        read.map_err(|e| {
            let message = format!("{e:#}");
            *self.failed.borrow_mut() = Some(e);
            E::custom(message)
        })
    }
}

/// `media`: every record by ID, in ID order.
struct Media<'a>(Reads<'a>);

impl Serialize for Media<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut written = None;
        let read = self.0.store.each_record(&mut |batch| {
            for (id, record) in &batch {
                if let Err(e) = map.serialize_entry(id, record) {
                    written = Some(e);
                    anyhow::bail!("the export could not be written");
                }
            }
            self.0.count.set(self.0.count.get() + batch.len());
            Ok(())
        });
        self.0.outcome(read, written)?;
        map.end()
    }
}

/// `history`: every entry, newest first (present since format 2).
struct History<'a>(Reads<'a>);

impl Serialize for History<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        let mut written = None;
        let read = self.0.store.each_entry(&Filter::default(), &mut |entry| {
            if let Err(e) = seq.serialize_element(&entry) {
                written = Some(e);
                anyhow::bail!("the export could not be written");
            }
            self.0.count.set(self.0.count.get() + 1);
            Ok(())
        });
        self.0.outcome(read, written)?;
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{AltText, FieldValue, MediaId, Metadata};
    use crate::state::history::Event;
    use crate::state::{Entry, Provenance, Record, VisitEntries, VisitRecords};
    use crate::time::Timestamp;

    /// A state held in memory, handed over in batches of two records.
    struct Held {
        records: BTreeMap<MediaId, Record>,
        history: Vec<Entry>,
        /// Fails after this many batches.
        fail_after: Option<usize>,
    }

    impl StateReader for Held {
        fn exists(&self) -> bool {
            true
        }
        fn lineage(&self) -> anyhow::Result<Option<String>> {
            Ok(Some("abc".into()))
        }
        fn serial(&self) -> anyhow::Result<u64> {
            Ok(7)
        }
        fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
            let all: Vec<_> = self.records.clone().into_iter().collect();
            for (n, batch) in all.chunks(2).enumerate() {
                if self.fail_after == Some(n) {
                    anyhow::bail!("the state is damaged: a record");
                }
                visit(batch.to_vec())?;
            }
            Ok(())
        }
        fn digests(&self) -> anyhow::Result<crate::model::Digests> {
            unreachable!()
        }
        fn get(&self, _: &MediaId) -> anyhow::Result<Option<Record>> {
            unreachable!()
        }
        fn get_many(&self, _: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
            unreachable!()
        }
        fn previews(&self, _: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
            unreachable!()
        }
        fn each_entry(&self, _: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
            for entry in &self.history {
                visit(entry.clone())?;
            }
            Ok(())
        }
    }

    fn held(n: u64) -> Held {
        let at = Timestamp::parse("2026-01-01T00:00:00Z").expect("time");
        let mut records = BTreeMap::new();
        let mut history = Vec::new();
        for i in 1..=n {
            let id = MediaId::parse(&(i * 7).to_string()).unwrap();
            let mut m = Metadata::default();
            m.insert(FieldValue::AltText(AltText {
                text: format!("cat \u{202e} {i}").into(),
            }));
            history.push(Entry::new(
                id,
                Event::Adopt,
                None,
                Some(&m),
                &Provenance::default(),
                7,
                at,
            ));
            let mut record = Record::new(m);
            record.applied_at = at;
            records.insert(id, record);
        }
        Held {
            records,
            history,
            fail_after: None,
        }
    }

    /// Streamed, the export is byte for byte what serializing the whole
    /// `Export` at once wrote (and still reads back as one).
    #[test]
    fn the_streamed_export_is_the_whole_export_byte_for_byte() {
        for n in [0, 1, 5] {
            let state = held(n);
            let whole = crate::untrusted::json_pretty(&super::super::state::Export {
                format_version: FORMAT_VERSION,
                lineage: "abc".into(),
                serial: 7,
                media: state.records.clone(),
                history: Some(state.history.clone()),
            })
            .unwrap();
            let mut streamed = Vec::new();
            assert_eq!(write(&state, &mut streamed).unwrap(), n as usize);
            assert_eq!(String::from_utf8(streamed).unwrap(), whole);
        }
    }

    /// A state that fails to read mid-stream is that error (not a write
    /// error), for the caller to refuse the export.
    #[test]
    fn a_read_that_fails_mid_stream_is_the_states_error() {
        let mut state = held(5);
        state.fail_after = Some(1);
        match write(&state, &mut Vec::new()) {
            Err(Failed::State(e)) => assert_eq!(e.to_string(), "the state is damaged: a record"),
            other => panic!("{other:?}"),
        }
    }
}
