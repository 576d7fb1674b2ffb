//! What watch knows of the state between cycles, and the plan of a cycle
//! by the one planner.

use std::time::{Duration, Instant};

use crate::known::Known;
use crate::manifest::{Desired, Entry};
use crate::model::Digests;
use crate::model::{Digest, MediaId};
use crate::plan::Plan;
use crate::planner::Inputs;
use crate::state::{Fingerprint, Location, OpenWhenRead, StateReader};

/// A state whose fingerprint stays is still opened this often: what the
/// fingerprint cannot see (a network file system's cached times) is seen
/// this late at most.
const OPEN_AT_LEAST_EVERY: Duration = Duration::from_mins(1);

/// What watch knows of the state between cycles: each recorded media's
/// digest, not its record (100,000 decoded records held 40 MB for the whole
/// session), and the last-applied metadata of the few media whose
/// manifests differ from it. Re-read when the state is another one (its
/// lineage) or another writer moved its serial; after watch's own writes,
/// only the media it wrote.
#[derive(Debug, Default)]
pub struct AppliedCache {
    /// The lineage and serial the digests are of.
    seen: Option<(Option<String>, u64)>,
    digests: Digests,
    /// Recorded metadata at `seen`, so those records are not read again.
    known: Known,
    /// Without `--apply`: the state's fingerprint when it was last opened,
    /// and when; while it stays, the state is not opened again.
    opened_at: Option<(Fingerprint, Instant)>,
}

impl AppliedCache {
    /// The plan of one cycle, by the one planner: media whose manifest has
    /// its record's digest are unchanged, and only the others' records are
    /// read (those `known` lacks). `replaced` are the entries of the files
    /// this cycle read again, as they were: those that matched their
    /// records say what the records hold. Every digest is read again
    /// (382 ms at 100,000 media) only when someone wrote since.
    pub fn plan(
        &mut self,
        store: &dyn StateReader,
        desired: Desired,
        inputs: &Inputs,
        replaced: &[Entry],
    ) -> anyhow::Result<Plan> {
        let seen = (store.lineage()?, store.serial()?);
        if self.seen.as_ref() == Some(&seen) {
            tracing::debug!("state unchanged (serial {}); digests kept", seen.1);
        } else {
            self.digests = store.digests()?;
            self.known.clear();
            self.seen = Some(seen);
        }
        for entry in replaced {
            let Some(recorded) = self.digests.get(&entry.id) else {
                continue;
            };
            // The same digest, the same metadata as the record's; only
            // media the files now declare otherwise (or no more) are
            // compared with their records.
            let was = entry.metadata.digest(true) == *recorded;
            let is = desired
                .media
                .get(&entry.id)
                .is_some_and(|e| e.metadata.digest(true) == *recorded);
            if was && !is {
                self.known.insert(entry.id, &entry.metadata);
            }
        }
        crate::planner::plan_declared(
            inputs,
            desired,
            store,
            crate::planner::Recorded::Whole(&self.digests),
            Some(&mut self.known),
        )
    }

    /// The plan of one cycle of a watch without the lock: against the
    /// state as last read while its fingerprint (taken before it is
    /// opened, so a writer in between changes it) says no writer has been
    /// at it since; else the state is opened afresh.
    pub fn plan_unlocked(
        &mut self,
        location: &Location,
        desired: Desired,
        inputs: &Inputs,
        replaced: &[Entry],
    ) -> anyhow::Result<Plan> {
        let print = crate::state::fingerprint(location);
        let kept = match (&self.opened_at, &print, &self.seen) {
            (Some((was, at)), Some(now), Some(seen)) if was == now => {
                (at.elapsed() < OPEN_AT_LEAST_EVERY).then(|| seen.clone())
            }
            _ => None,
        };
        if let Some((lineage, serial)) = kept {
            tracing::debug!("state untouched since it was read: not opened");
            let store = OpenWhenRead::new(location, lineage, serial);
            let plan = self.plan(&store, desired, inputs, replaced);
            if plan.is_err() {
                self.opened_at = None;
            }
            return plan;
        }
        self.opened_at = None;
        let store = crate::state::open_reader(location)?;
        let plan = self.plan(&*store, desired, inputs, replaced)?;
        self.opened_at = print.map(|print| (print, Instant::now()));
        Ok(plan)
    }

    /// Reads the recorded digests before the tree is loaded. A writer lets
    /// go of the scan's pages once it has read them, so they are not in
    /// the watcher's peak beside the parsed tree (18 MB at 100,000 media).
    pub fn prime(&mut self, store: &dyn StateReader) -> anyhow::Result<()> {
        let seen = (store.lineage()?, store.serial()?);
        self.digests = store.digests()?;
        self.known.clear();
        self.seen = Some(seen);
        Ok(())
    }

    /// After our own writes to `ids`: re-read just those.
    pub fn update(
        &mut self,
        store: &dyn StateReader,
        ids: impl IntoIterator<Item = MediaId>,
    ) -> anyhow::Result<()> {
        for id in ids {
            match store.get(&id)? {
                Some(record) => self.digests.insert(id, Digest::of(&record.metadata)),
                None => self.digests.remove(&id),
            }
        }
        self.known.clear();
        self.seen = Some((store.lineage()?, store.serial()?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::model::{AltText, FieldValue, Metadata};
    use crate::plan::{render_text, Targets};
    use crate::state::{Filter, Record, VisitEntries, VisitRecords};
    use crate::testdata::{manifest, media_id};
    use crate::watch::Workspace;

    /// A state that answers its digests, and records (whose alt text says
    /// they came from it) to the IDs it is asked for, which it counts.
    struct Recorded {
        digests: Digests,
        asked: Mutex<Vec<MediaId>>,
    }

    fn from_the_state() -> Metadata {
        let mut m = Metadata::default();
        m.insert(FieldValue::AltText(AltText {
            text: "from the state".into(),
        }));
        m
    }

    impl StateReader for Recorded {
        fn exists(&self) -> bool {
            true
        }
        fn lineage(&self) -> anyhow::Result<Option<String>> {
            Ok(Some("lineage".into()))
        }
        fn serial(&self) -> anyhow::Result<u64> {
            Ok(1)
        }
        fn each_record(&self, _: &mut VisitRecords<'_>) -> anyhow::Result<()> {
            unreachable!()
        }
        fn digests(&self) -> anyhow::Result<Digests> {
            Ok(self.digests.clone())
        }
        fn get(&self, _: &MediaId) -> anyhow::Result<Option<Record>> {
            unreachable!()
        }
        fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
            self.asked.lock().unwrap().extend_from_slice(ids);
            Ok(ids
                .iter()
                .map(|id| (*id, Record::new(from_the_state())))
                .collect())
        }
        fn previews(&self, _: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
            unreachable!()
        }
        fn each_entry(&self, _: &Filter, _: &mut VisitEntries<'_>) -> anyhow::Result<()> {
            unreachable!()
        }
    }

    fn id(n: u64) -> MediaId {
        MediaId::parse(&media_id(n)).unwrap()
    }

    /// Media 0 and 1 recorded as `a.yaml` first declares them (`v1`),
    /// except media 1, recorded otherwise when `differs`.
    fn start(differs: bool) -> (tempfile::TempDir, Workspace, Recorded) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), manifest(0..2, "v1")).unwrap();
        let ws = Workspace::load(&[dir.path().to_path_buf()], Duration::ZERO).unwrap();
        let digests = ws
            .desired()
            .0
            .media
            .values()
            .map(|e| match (e.id == id(1), differs) {
                (true, true) => (e.id, Digest::of(&from_the_state())),
                _ => (e.id, Digest::of(&e.metadata)),
            })
            .collect();
        let store = Recorded {
            digests,
            asked: Mutex::new(Vec::new()),
        };
        (dir, ws, store)
    }

    fn edit(dir: &tempfile::TempDir, ws: &mut Workspace, variant: &str) {
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, manifest(0..2, variant)).unwrap();
        ws.refresh(&BTreeSet::from([file]));
    }

    /// An edit of media whose file matched their records is compared with
    /// what the file said before: the records are not read (a watch
    /// without `--apply` then need not open the state), and what was
    /// learnt stays for the next edit while the state stays.
    #[test]
    fn an_edit_is_compared_with_what_its_file_said_when_that_matched_the_record() {
        let (dir, mut ws, store) = start(false);
        let paths = [dir.path().to_path_buf()];
        let targets = Targets::default();
        let inputs = Inputs::new(&paths, &targets, None, false)
            .unwrap()
            .for_watch(false);
        let mut cache = AppliedCache::default();
        let plan = |cache: &mut AppliedCache, ws: &Workspace| {
            let plan = cache
                .plan(&store, ws.desired().0, &inputs, ws.replaced())
                .unwrap();
            render_text(&plan, false)
        };
        assert!(plan(&mut cache, &ws).starts_with("No changes. 2 media"));

        edit(&dir, &mut ws, "v2");
        let out = plan(&mut cache, &ws);
        assert!(out.contains("Photo 0: [-v1-] → {+v2+}"), "{out}");
        assert!(out.contains("Photo 1: [-v1-] → {+v2+}"), "{out}");
        edit(&dir, &mut ws, "v3");
        let out = plan(&mut cache, &ws);
        assert!(out.contains("Photo 0: [-v1-] → {+v3+}"), "{out}");
        assert!(out.contains("Photo 1: [-v1-] → {+v3+}"), "{out}");
        // Back as recorded (what was known is let go), then edited again.
        edit(&dir, &mut ws, "v1");
        assert!(plan(&mut cache, &ws).starts_with("No changes. 2 media"));
        edit(&dir, &mut ws, "v4");
        let out = plan(&mut cache, &ws);
        assert!(out.contains("Photo 0: [-v1-] → {+v4+}"), "{out}");
        assert_eq!(*store.asked.lock().unwrap(), Vec::<MediaId>::new());
    }

    /// A media whose file never matched its record: the record is read
    /// once, and kept for the next cycles while the state stays.
    #[test]
    fn a_record_read_once_is_not_read_again_while_the_state_stays() {
        let (dir, mut ws, store) = start(true);
        let paths: [PathBuf; 1] = [dir.path().to_path_buf()];
        let targets = Targets::default();
        let inputs = Inputs::new(&paths, &targets, None, false)
            .unwrap()
            .for_watch(false);
        let mut cache = AppliedCache::default();
        for variant in ["v1", "v2", "v3"] {
            if variant != "v1" {
                edit(&dir, &mut ws, variant);
            }
            let plan = cache
                .plan(&store, ws.desired().0, &inputs, ws.replaced())
                .unwrap();
            let out = render_text(&plan, false);
            let diff = format!("-  text: from the state\n    +  text: \"Photo 1: {variant}\"");
            assert!(out.contains(&diff), "{out}");
        }
        assert_eq!(*store.asked.lock().unwrap(), vec![id(1)]);
    }
}
