//! What a writer knows of the digest file it set aside (`digest_file`):
//! whether it is still the state's, and the digests written since, so
//! that as it closes the writer puts it back or writes the next one from
//! it and them (10 ms at 100,000 media) rather than scan its database's
//! digest index (about 100 ms).

use std::path::Path;

use super::digest_file::{self, Of, Stated};
use crate::model::{Digest, Digests, MediaId};

/// Past this many digests written, the next file is made from the
/// database instead (an adopt, an import): 2.7 MB of them at most.
const MOST_CHANGES: usize = 1 << 16;

/// What the next file starts from.
#[derive(Default)]
enum Base {
    /// The file set aside, of the state as the writer opened it.
    Held(Stated),
    /// A state with no digests yet.
    Empty,
    /// Nothing known: the database is scanned.
    #[default]
    Unknown,
}

#[derive(Default)]
pub(super) struct Ledger {
    base: Base,
    /// Every digest written or removed since the opening, in write order.
    changes: Vec<(MediaId, Option<Digest>)>,
}

impl Ledger {
    /// The ledger of a writer that set `held` aside and opened the state
    /// at `opened`, whose database has digests or not (`empty`).
    pub(super) fn new(held: Option<Stated>, opened: &Of, empty: bool) -> Ledger {
        let base = match held {
            Some(held) if held.of == *opened => Base::Held(held),
            _ if empty => Base::Empty,
            _ => Base::Unknown,
        };
        Ledger {
            base,
            changes: Vec::new(),
        }
    }

    /// The digests of the state as opened, from the file set aside, while
    /// the writer has written nothing (its plan's read).
    pub(super) fn digests(&mut self, dir: &Path, serial: u64) -> Option<Digests> {
        if matches!(self.base, Base::Empty) && self.changes.is_empty() {
            return Some(Digests::default());
        }
        let mut digests = crate::model::DigestsBuilder::default();
        self.each_digest(dir, serial, &mut |id, digest| digests.push(id, *digest))
            .then(|| digests.finish())
    }

    /// Whether `each_digest` can hand the digests over from the file set
    /// aside (nothing written since it was).
    pub(super) fn streams(&self, serial: u64) -> bool {
        matches!(&self.base, Base::Held(held) if held.of.serial == serial)
            && self.changes.is_empty()
    }

    /// The digests of the file set aside, as they are read, while
    /// `streams`; `false` if not, or if it proves damaged (then it is no
    /// base for the next file either).
    pub(super) fn each_digest(
        &mut self,
        dir: &Path,
        serial: u64,
        visit: &mut dyn FnMut(MediaId, &Digest),
    ) -> bool {
        if !self.streams(serial) {
            return false;
        }
        let Base::Held(held) = &self.base else {
            return false;
        };
        let read = open_held(dir, held)
            .ok_or_else(|| anyhow::anyhow!("it is gone or changed"))
            .and_then(|opened| {
                opened.each(|id, digest| {
                    visit(id, digest);
                    Ok(())
                })
            });
        if let Err(e) = &read {
            tracing::debug!("the digest file set aside is not used: {e:#}");
            self.base = Base::Unknown;
        }
        read.is_ok()
    }

    /// Digests just written (`None`: the record removed).
    pub(super) fn record(&mut self, written: impl IntoIterator<Item = (MediaId, Option<Digest>)>) {
        if matches!(self.base, Base::Unknown) {
            return;
        }
        self.changes.extend(written);
        if self.changes.len() > MOST_CHANGES {
            self.forget();
        }
    }

    /// The database was replaced, or too much was written to keep.
    pub(super) fn forget(&mut self) {
        self.base = Base::Unknown;
        self.changes = Vec::new();
    }

    /// Writes the file of the state `now` (as the writer closes, before
    /// the head): the one set aside if nothing was written, else one made
    /// from it and the changes, else from the database's digests
    /// (`from_db`). The file set aside goes either way. Returns the token
    /// of the file in place, for the head.
    pub(super) fn save(
        &mut self,
        dir: &Path,
        now: &Of,
        from_db: impl FnOnce() -> anyhow::Result<Digests>,
    ) -> anyhow::Result<String> {
        let saved = match &self.base {
            Base::Held(held) if held.of == *now && self.changes.is_empty() => {
                digest_file::put_back(dir)
                    .map(|()| held.token.clone())
                    .map_err(Into::into)
            }
            Base::Held(_) | Base::Empty => {
                let made = self.over_base(dir, now);
                if let Err(e) = &made {
                    tracing::debug!("the digest file is made from the database: {e:#}");
                }
                made.or_else(|_| write_all(dir, now, &from_db()?))
            }
            Base::Unknown => from_db().and_then(|digests| write_all(dir, now, &digests)),
        };
        digest_file::drop_held(dir);
        saved
    }

    /// The base's digests with the changes over them: one pass to count
    /// them, one to write them.
    fn over_base(&mut self, dir: &Path, now: &Of) -> anyhow::Result<String> {
        // The last write of an ID wins: sorted stably, then the last of
        // each run kept.
        self.changes.sort_by_key(|(id, _)| *id);
        let mut changes: Vec<(MediaId, Option<Digest>)> = Vec::with_capacity(self.changes.len());
        for change in self.changes.drain(..) {
            match changes.last_mut() {
                Some(last) if last.0 == change.0 => *last = change,
                _ => changes.push(change),
            }
        }
        let held = match &self.base {
            Base::Held(held) => Some(held.clone()),
            _ => None,
        };
        let merged = |visit: &mut dyn FnMut(MediaId, &Digest) -> anyhow::Result<()>| {
            let mut changes = changes.iter().peekable();
            let mut put =
                |id: MediaId, digest: Option<&Digest>| digest.map_or(Ok(()), |d| visit(id, d));
            if let Some(held) = &held {
                let opened = open_held(dir, held)
                    .ok_or_else(|| anyhow::anyhow!("the file set aside is gone or changed"))?;
                opened.each(|id, digest| {
                    while let Some((changed, new)) = changes.next_if(|(c, _)| *c < id) {
                        put(*changed, new.as_ref())?;
                    }
                    match changes.next_if(|(c, _)| *c == id) {
                        Some((_, new)) => put(id, new.as_ref()),
                        None => put(id, Some(digest)),
                    }
                })?;
            }
            for (id, new) in changes {
                put(*id, new.as_ref())?;
            }
            Ok(())
        };
        let mut count = 0u64;
        merged(&mut |_, _| {
            count += 1;
            Ok(())
        })?;
        digest_file::write(dir, now, count, |push| merged(push))
    }
}

/// The file set aside, if it still says what it said when it was.
fn open_held(dir: &Path, held: &Stated) -> Option<digest_file::Opened> {
    digest_file::open(dir, &digest_file::held(dir)).filter(|opened| opened.stated == *held)
}

/// The file of `digests` (the database's, read whole: the file states its
/// count before its digests).
fn write_all(dir: &Path, now: &Of, digests: &Digests) -> anyhow::Result<String> {
    digest_file::write(dir, now, digests.len() as u64, |push| {
        digests
            .iter()
            .try_for_each(|(id, digest)| push(*id, digest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DigestsBuilder;

    fn id(n: u64) -> MediaId {
        MediaId::parse(&n.to_string()).unwrap()
    }

    fn digest(n: u64, version: u64) -> Digest {
        Digest::of_json(format!("{n}/{version}").as_bytes())
    }

    fn digests(of: &[(u64, u64)]) -> Digests {
        let mut out = DigestsBuilder::default();
        for (n, version) in of {
            out.push(id(*n), digest(*n, *version));
        }
        out.finish()
    }

    fn of(serial: u64) -> Of {
        Of {
            lineage: "lineage-1".into(),
            serial,
        }
    }

    /// The digests of the file in place, if it is of `of` and has `token`.
    fn written(dir: &Path, of: &Of, token: &str) -> Option<Digests> {
        let opened = digest_file::open(dir, &dir.join(digest_file::DIGESTS_FILE))?;
        assert_eq!(opened.stated.of, *of);
        assert_eq!(opened.stated.token, token);
        opened.digests()
    }

    fn never() -> anyhow::Result<Digests> {
        panic!("the database was read")
    }

    /// A state directory whose database's log is there (the file records
    /// its size).
    fn state_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join("db").join("db"), b"log").unwrap();
        dir
    }

    /// Writes over the file set aside (new, changed twice, removed, one
    /// past the last) make the next file with no read of the database.
    #[test]
    fn the_next_file_is_the_one_set_aside_with_the_writes_over_it() {
        let dir = state_dir();
        let dir = dir.path();
        let first = write_all(dir, &of(5), &digests(&[(1, 0), (3, 0), (5, 0), (9, 0)])).unwrap();
        let held = digest_file::set_aside(dir).unwrap();
        assert!(
            !dir.join(digest_file::DIGESTS_FILE).exists(),
            "out of sight"
        );
        assert_eq!(
            held.as_ref().map(|h| h.token.as_str()),
            Some(first.as_str())
        );
        let mut ledger = Ledger::new(held, &of(5), false);
        assert_eq!(
            ledger.digests(dir, 5),
            Some(digests(&[(1, 0), (3, 0), (5, 0), (9, 0)]))
        );
        // Streamed too (an apply's plan), while nothing is written.
        assert!(ledger.streams(5));
        let mut streamed = Vec::new();
        assert!(ledger.each_digest(dir, 5, &mut |id, digest| streamed.push((id, *digest))));
        let whole = digests(&[(1, 0), (3, 0), (5, 0), (9, 0)]);
        assert_eq!(streamed, whole.iter().copied().collect::<Vec<_>>());
        ledger.record([(id(5), Some(digest(5, 1))), (id(2), Some(digest(2, 1)))]);
        ledger.record([(id(3), None), (id(5), Some(digest(5, 2)))]);
        ledger.record([(id(12), Some(digest(12, 1))), (id(9), None)]);
        assert_eq!(ledger.digests(dir, 8), None, "written since");
        assert!(!ledger.streams(8));
        assert!(!ledger.each_digest(dir, 8, &mut |_, _| panic!("streamed after a write")));
        let token = ledger.save(dir, &of(8), never).unwrap();
        assert_ne!(token, first);
        assert_eq!(
            written(dir, &of(8), &token),
            Some(digests(&[(1, 0), (2, 1), (5, 2), (12, 1)]))
        );
        assert!(!digest_file::held(dir).exists());
    }

    /// Nothing written: the file set aside goes back as it was.
    #[test]
    fn a_writer_that_wrote_nothing_puts_the_file_back() {
        let dir = state_dir();
        let dir = dir.path();
        let first = write_all(dir, &of(5), &digests(&[(1, 0)])).unwrap();
        let mut ledger = Ledger::new(digest_file::set_aside(dir).unwrap(), &of(5), false);
        assert_eq!(ledger.save(dir, &of(5), never).unwrap(), first);
        assert_eq!(written(dir, &of(5), &first), Some(digests(&[(1, 0)])));
    }

    /// A file set aside that is not of the state opened (a writer before
    /// died after its writes), a damaged one, a replaced database, too
    /// many writes: the next file is made from the database.
    #[test]
    fn a_file_set_aside_that_cannot_be_the_base_is_not_used() {
        let dir = state_dir();
        let dir = dir.path();
        let from_db = || Ok(digests(&[(4, 4)]));
        for case in 0..4 {
            write_all(dir, &of(5), &digests(&[(1, 0)])).unwrap();
            let opened = if case == 0 { of(6) } else { of(5) };
            let mut ledger = Ledger::new(digest_file::set_aside(dir).unwrap(), &opened, false);
            match case {
                1 => {
                    std::fs::write(digest_file::held(dir), b"damaged").unwrap();
                    assert!(!ledger.each_digest(dir, 5, &mut |_, _| {}));
                    assert!(!ledger.streams(5), "no base once found damaged");
                }
                2 => ledger.forget(),
                3 => ledger.record((0..=MOST_CHANGES as u64).map(|n| (id(n + 100), None))),
                _ => {}
            }
            ledger.record([(id(4), Some(digest(4, 4)))]);
            let token = ledger.save(dir, &of(7), from_db).unwrap();
            assert_eq!(
                written(dir, &of(7), &token),
                Some(digests(&[(4, 4)])),
                "case {case}"
            );
            assert!(!digest_file::held(dir).exists());
        }
    }

    /// A state with no digests needs no file to start from.
    #[test]
    fn an_empty_state_starts_from_nothing() {
        let dir = state_dir();
        let dir = dir.path();
        let mut ledger = Ledger::new(digest_file::set_aside(dir).unwrap(), &of(0), true);
        assert_eq!(ledger.digests(dir, 0), Some(Digests::default()));
        ledger.record([(id(7), Some(digest(7, 1)))]);
        let token = ledger.save(dir, &of(1), never).unwrap();
        assert_eq!(written(dir, &of(1), &token), Some(digests(&[(7, 1)])));
    }
}
