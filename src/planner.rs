//! The one planner: manifests and the state (and, with a refresh, X's live
//! alt text) in, a plan with its lint findings, coverage, cost and drift
//! out. `plan`, `apply`, `adopt`, `refresh` and `watch` call it and only
//! render or apply what it returns, so none of them can plan differently
//! (skip a check, miss a warning) from `plan`. Watch hands in its cached
//! desired set and digests (`plan_declared`); the others read the files
//! and the state together (`plan`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use anyhow::anyhow;

use crate::apply::Budget;
use crate::known::Known;
use crate::lint::LintConfig;
use crate::manifest::{self, Desired, Entry};
use crate::model::Digests;
use crate::model::MediaId;
use crate::model::Metadata;
use crate::plan::{Plan, Targets};
use crate::state::{StateReader, StateWriter};
use crate::x_api::ClientSettings;

/// Everything a plan depends on besides the manifests and the state.
#[derive(Clone)]
pub struct Inputs<'a> {
    /// The PATHs as given (named in errors; the lint configuration is
    /// found from the first).
    pub paths: &'a [PathBuf],
    pub targets: &'a Targets,
    pub prune: bool,
    /// `--allow-empty`: manifests that declare nothing are intended.
    pub allow_empty: bool,
    pub price_per_request: f64,
    pub lint: LintConfig,
    /// Read X's live alt text first (`--refresh`), with this client.
    pub live: Option<Live<'a>>,
    /// Read the image URLs the state recorded for the changed media (a
    /// review shows them; see `Plan::previews`).
    pub previews: bool,
    /// Keep each compared media's digest with it, for the next watch
    /// cycle; a one-shot plan works them out and lets them go.
    pub keep_digests: bool,
}

/// How to read X's live alt text.
#[derive(Clone, Copy)]
pub struct Live<'a> {
    pub client: &'a ClientSettings,
    pub budget: &'a Budget,
}

impl<'a> Inputs<'a> {
    /// The inputs of every watch cycle: `prune` as asked, and each alt
    /// text's lint checks and digest kept with its entry for the next
    /// cycle.
    #[must_use]
    pub fn for_watch(mut self, prune: bool) -> Inputs<'a> {
        self.prune = prune;
        self.lint.keep_checks = true;
        self.keep_digests = true;
        self
    }

    /// The inputs of a plan of `paths` with no targets, no prune and no
    /// refresh; the lint configuration found for `paths` (or `config`).
    pub fn new(
        paths: &'a [PathBuf],
        targets: &'a Targets,
        lint_config: Option<&std::path::Path>,
        allow_empty: bool,
    ) -> anyhow::Result<Inputs<'a>> {
        Ok(Inputs {
            paths,
            targets,
            prune: false,
            allow_empty,
            price_per_request: crate::plan::cost::PRICE_PER_REQUEST_USD,
            lint: crate::lint::config::load(lint_config, paths)?,
            live: None,
            previews: false,
            keep_digests: false,
        })
    }
}

/// The manifests alone (`validate`, `lint`): every file read and checked,
/// and refused as a plan would refuse them.
pub fn declared(inputs: &Inputs) -> anyhow::Result<Desired> {
    let desired = manifest::load(inputs.paths)?;
    check_declared(inputs, &desired)?;
    Ok(desired)
}

/// Every media ID the manifests under `paths` declare, and where, for
/// `import` to leave alone. Read as every plan reads them, except that a
/// file that does not validate still counts for the IDs it names (they
/// are declared, if wrongly); how many such files there were comes too.
pub fn declared_ids(
    paths: &[PathBuf],
) -> anyhow::Result<(BTreeMap<MediaId, crate::error::Location>, usize)> {
    let files = manifest::discover(paths)?;
    let parsed = manifest::parse_all(
        &files,
        &crate::intake::Reader::within(paths),
        crate::time::Timestamp::now(),
    );
    let mut ids = BTreeMap::new();
    let mut invalid = 0;
    for file in parsed {
        invalid += usize::from(!file.is_valid());
        for entry in file.entries {
            ids.entry(entry.id).or_insert(entry.location);
        }
    }
    Ok((ids, invalid))
}

/// Reads the manifests and the state (opened by `open_store`) together,
/// then plans; returns the plan and the store it was made against.
pub fn plan<S: StateReader + ?Sized>(
    inputs: &Inputs,
    open_store: impl FnOnce() -> anyhow::Result<Box<S>> + Send,
) -> anyhow::Result<(Plan, Box<S>)> {
    let (desired, store, digests) = load_both(inputs.paths, open_store)?;
    let recorded = digests.as_ref().map_or(Recorded::Streamed, Recorded::Whole);
    let plan = plan_declared(inputs, desired, &*store, recorded, None)?;
    // One per recorded media: freed off the critical path.
    crate::drop_later::drop_later(digests);
    Ok((plan, store))
}

/// The recorded digests a plan compares the manifests with: held whole
/// (a watch keeps them; a bucket's, and a database's writer's, are read
/// beside the parse), or handed over by the state a part at a time as
/// they are compared (`StateReader::streams_digests`: a sled state's
/// digest file, a database reader's ordered query),
/// so that a no-op plan never holds them all (4 MB at 100,000 media, on
/// top of its parsed manifests).
#[derive(Clone, Copy)]
pub enum Recorded<'a> {
    Whole(&'a Digests),
    Streamed,
}

/// How many streamed digests are compared at a time (670 KB of them).
const STREAMED_PART: usize = 16_384;

/// The plan of a desired set already read, against `store` whose recorded
/// digests are `recorded` (watch keeps both between cycles, and with them
/// the last-applied metadata it knows: `known`, which this fills with the
/// records it reads).
pub fn plan_declared<S: StateReader + ?Sized>(
    inputs: &Inputs,
    mut desired: Desired,
    store: &S,
    recorded: Recorded<'_>,
    known: Option<&mut Known>,
) -> anyhow::Result<Plan> {
    check_declared(inputs, &desired)?;
    let lint = crate::lint::lint(&desired, &inputs.lint, Some(crate::lint::SHOWN_IN_PLANS));
    let (mut applied, unchanged) =
        records_to_compare(&mut desired, store, recorded, inputs, known)?;
    let refresh = match inputs.live {
        Some(live) => Some(read_live(
            live,
            &desired,
            &mut applied,
            inputs.lint.media_hosts(),
        )?),
        None => None,
    };
    let mut plan = crate::plan::diff(desired, &applied, inputs.targets, inputs.prune);
    plan.unchanged += unchanged;
    plan.refresh = refresh;
    plan.price_per_request = inputs.price_per_request;
    plan.warnings.extend(lint.warnings());
    plan.alt_text_coverage = Some(lint.coverage());
    if inputs.previews {
        plan.previews = previews(&plan, store, inputs.lint.media_hosts())?;
    }
    Ok(plan)
}

/// The images of the changed media: those the state recorded (checked
/// again against today's hosts: the state is untrusted too), replaced by
/// any a refresh just read (checked as they came).
fn previews<S: StateReader + ?Sized>(
    plan: &Plan,
    store: &S,
    hosts: Vec<String>,
) -> anyhow::Result<crate::plan::thumbnail::Previews> {
    let ids: Vec<MediaId> = plan.changes.iter().map(|c| c.id).collect();
    let mut previews = crate::plan::thumbnail::Previews::checked(store.previews(&ids)?, hosts);
    if let Some(refresh) = &plan.refresh {
        previews
            .urls
            .extend(refresh.previews.iter().map(|(id, url)| (*id, url.clone())));
    }
    Ok(previews)
}

/// Reads the manifests and the state's digests at the same time (they are
/// independent, and each is a large share of a plan's time): the state on
/// one of the parse's threads first, so that its read is over (and sled's
/// pages freed) long before the parsed manifests peak. A state that
/// streams its digests is only opened here (`None`).
fn load_both<S: StateReader + ?Sized>(
    paths: &[PathBuf],
    open_store: impl FnOnce() -> anyhow::Result<Box<S>> + Send,
) -> anyhow::Result<(Desired, Box<S>, Option<Digests>)> {
    let (desired, state) = manifest::load_beside(paths, || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let store = open_store()?;
            // Read as they are compared instead (`Recorded::Streamed`).
            let digests = if store.streams_digests() {
                store.read_digests_ahead();
                None
            } else {
                Some(store.digests()?)
            };
            Ok::<_, anyhow::Error>((store, digests))
        }))
    });
    let (store, digests) =
        state.map_err(|_| anyhow!("reading the state failed unexpectedly"))??;
    Ok((desired?, store, digests))
}

/// Refuses manifests that declare nothing (unless `--allow-empty`) and
/// `--target`s that no manifest declares: both are usually a wrong path or
/// a typo, and with `--prune` a wrong path would forget every media.
pub fn check_declared(inputs: &Inputs, desired: &Desired) -> anyhow::Result<()> {
    if desired.media.is_empty() && desired.held.is_empty() && !inputs.allow_empty {
        let shown: Vec<String> = inputs
            .paths
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        anyhow::bail!(
            "{} holds no manifests that declare media (*.yaml, *.yml); check the path, or pass --allow-empty if that is intended",
            shown.join(", ")
        );
    }
    let unknown: Vec<String> = inputs
        .targets
        .0
        .iter()
        .filter(|id| !desired.media.contains_key(id) && !desired.held.contains(id))
        .map(|id| format!("`--target {id}`: no manifest declares media {id}"))
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "{}; to forget a media, use `xmeta state rm ID`",
            unknown.join("; ")
        );
    }
    Ok(())
}

/// The last-applied metadata a plan compares, read only where needed: a
/// media whose manifest has its record's digest is taken out of `desired`
/// and counted (if `targets` covers it) as unchanged, its record never
/// decoded; the others that are recorded, and the media in no manifest,
/// are read in full (unless `known` has them). A no-op plan of 100,000
/// media so holds digests, not records. A refresh compares every media
/// with X, so it reads every record.
fn records_to_compare<S: StateReader + ?Sized>(
    desired: &mut Desired,
    store: &S,
    recorded: Recorded<'_>,
    inputs: &Inputs,
    mut known: Option<&mut Known>,
) -> anyhow::Result<(BTreeMap<MediaId, Metadata>, usize)> {
    if inputs.live.is_some() {
        let all = store.all()?;
        return Ok((all.into_iter().map(|(id, r)| (id, r.metadata)).collect(), 0));
    }
    if let Recorded::Whole(digests) = recorded {
        if digests.is_empty() {
            return Ok((BTreeMap::new(), 0));
        }
    }
    let entries = desired.media.entries();
    let runs = compare_all(entries, store, recorded, inputs, STREAMED_PART)?;
    debug_assert_eq!(
        runs.iter().map(|run| run.same.len()).sum::<usize>(),
        entries.len()
    );
    let mut same = runs.iter().flat_map(|run| run.same.iter().copied());
    desired.media.retain(|_| !same.next().unwrap_or(false));
    let unchanged = runs.iter().map(|run| run.unchanged).sum();
    let mut needed = Vec::with_capacity(runs.iter().map(|run| run.needed.len()).sum());
    for run in runs {
        needed.extend(run.needed);
    }
    let mut applied = BTreeMap::new();
    if let Some(known) = known.as_deref_mut() {
        // In ID order, as the runs are.
        known.keep_only(&needed);
        needed.retain(|id| match known.get(id) {
            Some(metadata) => {
                applied.insert(*id, metadata.clone());
                false
            }
            None => true,
        });
    }
    for (id, record) in store.get_many(&needed)? {
        if let Some(known) = known.as_deref_mut() {
            known.insert(id, &record.metadata);
        }
        applied.insert(id, record.metadata);
    }
    Ok((applied, unchanged))
}

/// Every media compared with the recorded digests. Everything here is in
/// ID order (the media, the digests): merge passes, no lookups, which
/// matters to a watch cycle over 1,000,000 media. Each core compares its
/// run of the media (`compare_run`): a flag a media and the IDs to read,
/// not a list of every matching ID (12 MB a cycle at 1,000,000 media,
/// walked three times after, once on one core). Streamed digests are
/// compared a part at a time, each with the media up to its last ID (the
/// last part with the rest); if the stream fails part-way, the state's
/// digests are read whole and compared afresh.
fn compare_all<S: StateReader + ?Sized>(
    entries: &[Entry],
    store: &S,
    recorded: Recorded<'_>,
    inputs: &Inputs,
    part_size: usize,
) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    match recorded {
        Recorded::Whole(digests) => {
            compare_part(entries, 0, digests, None, inputs, &mut runs);
        }
        Recorded::Streamed => {
            let mut part = crate::model::DigestsBuilder::default();
            let mut count = 0;
            let mut from = 0;
            let streamed = store.each_digest(&mut |id, digest| {
                part.push(id, *digest);
                count += 1;
                if count == part_size {
                    let digests = std::mem::take(&mut part).finish();
                    from = compare_part(entries, from, &digests, Some(id), inputs, &mut runs);
                    count = 0;
                }
            })?;
            if streamed {
                compare_part(entries, from, &part.finish(), None, inputs, &mut runs);
            } else {
                drop(part);
                runs.clear();
                compare_part(entries, 0, &store.digests()?, None, inputs, &mut runs);
            }
        }
    }
    Ok(runs)
}

/// Compares `digests` with the media from `entries[from]` up to the last
/// of ID `last` or below (all the rest if `None`); returns where the next
/// part's media start.
fn compare_part(
    entries: &[Entry],
    from: usize,
    digests: &Digests,
    last: Option<MediaId>,
    inputs: &Inputs,
    runs: &mut Vec<Run>,
) -> usize {
    let to = match last {
        Some(last) => from + entries[from..].partition_point(|e| e.id <= last),
        None => entries.len(),
    };
    let part = &entries[from..to];
    runs.extend(crate::parallel::map_ranges(part.len(), |range| {
        compare_run(part, range, digests, inputs)
    }));
    to
}

/// One run of the media compared with their records (`compare_run`).
struct Run {
    /// Whether each media of the run matches its record.
    same: Vec<bool>,
    /// The records to read, in ID order: those no media matches, whether
    /// a media declares them (changed) or none does (forgotten).
    needed: Vec<MediaId>,
    /// The matching media `targets` covers.
    unchanged: usize,
}

/// Compares `entries[range]` with the digests from the run's first ID to
/// the next run's (the first run from the lowest digest, the last to the
/// highest): the runs of one split see every digest once.
fn compare_run(entries: &[Entry], range: Range<usize>, digests: &Digests, inputs: &Inputs) -> Run {
    let part = &entries[range.clone()];
    let next = entries.get(range.end).map(|e| e.id);
    let first = part.first().map(|e| e.id);
    let below = digests
        .iter()
        .take_while(|(id, _)| range.start == 0 && first.is_none_or(|f| *id < f));
    let from = part
        .first()
        .into_iter()
        .flat_map(|e| digests.iter_from(&e.id));
    let mut by_id = below
        .chain(from)
        .take_while(|(id, _)| next.is_none_or(|n| *id < n))
        .peekable();
    let mut run = Run {
        same: Vec::with_capacity(part.len()),
        needed: Vec::new(),
        unchanged: 0,
    };
    for entry in part {
        while let Some((id, _)) = by_id.next_if(|(id, _)| *id < entry.id) {
            run.needed.push(*id);
        }
        let matched = by_id
            .next_if(|(id, _)| *id == entry.id)
            .is_some_and(|(id, digest)| {
                let matched = entry.metadata.digest(inputs.keep_digests) == *digest;
                if !matched {
                    run.needed.push(*id);
                }
                matched
            });
        if matched && inputs.targets.includes(&entry.id) {
            run.unchanged += 1;
        }
        run.same.push(matched);
    }
    run.needed.extend(by_id.map(|(id, _)| *id));
    run
}

/// Reads the live alt text of every recorded, declared media that has a
/// key (100 a request), and turns `applied` into what X holds now, so that
/// a plan puts back what drifted. Reads are paced, retried and fail fast
/// like posts, and stop at `--max-duration`.
fn read_live(
    live: Live,
    desired: &Desired,
    applied: &mut BTreeMap<MediaId, Metadata>,
    media_hosts: Vec<String>,
) -> anyhow::Result<crate::refresh::Refresh> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = std::sync::Arc::new(crate::x_api::Client::new(live.client.clone())?);
    client.set_deadline(
        live.budget
            .max_duration
            .map(|d| std::time::Instant::now() + d),
    );
    let (keys, unrefreshable) = crate::refresh::keys(desired, applied);
    let mut refresh = runtime
        .block_on(crate::refresh::read(
            client,
            keys,
            applied,
            live.client.concurrency,
            media_hosts,
        ))
        .map_err(|e| anyhow!("reading the live alt text failed: {e}"))?;
    refresh.unrefreshable = unrefreshable;
    crate::refresh::as_live(applied, &refresh);
    Ok(refresh)
}

/// The plan of a writer (`apply`, `adopt`): made under the state's lock
/// when a state exists; when none does, against an empty one without
/// creating it, so a refused, cancelled or failed run leaves nothing
/// behind. `writer_for` then opens (and creates) it.
pub fn plan_for_writer(
    inputs: &Inputs,
    location: &crate::state::Location,
    command: &str,
    provenance: &crate::state::Provenance,
) -> anyhow::Result<(Plan, Option<Box<dyn StateWriter>>)> {
    // Whether there is a state is asked beside the parse too: for a
    // remote state it takes round trips.
    let (plan, found) = plan(inputs, || {
        crate::state::Found::at(location, command, provenance).map(Box::new)
    })?;
    match *found {
        crate::state::Found::Writer(store) => Ok((plan, Some(store))),
        crate::state::Found::Nothing => Ok((plan, None)),
    }
}

/// The writer a plan of `plan_for_writer` goes to: the one it holds, or a
/// new state, which must still be empty (another run may have made one
/// meanwhile, and this plan did not see its records).
pub fn writer_for(
    held: Option<Box<dyn StateWriter>>,
    location: &crate::state::Location,
    open_writer: impl FnOnce() -> anyhow::Result<Box<dyn StateWriter>>,
) -> anyhow::Result<Box<dyn StateWriter>> {
    if let Some(store) = held {
        return Ok(store);
    }
    // Said out loud: run from the wrong directory, this is where a
    // second, empty state would start.
    crate::logging::note(&format!(
        "No state at {location}: creating a new one; every media is new."
    ));
    let store = open_writer()?;
    if store.serial()? != 0 || !store.digests()?.is_empty() {
        anyhow::bail!(
            "a state appeared at `{location}` while this command was planning; run it again"
        );
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, Digest, DigestsBuilder, FieldValue, Metadata};
    use crate::state::{Filter, Record, VisitEntries, VisitRecords};
    use std::sync::{Arc, Mutex};

    /// A state whose records are never read, only asked for, and whose
    /// digests are handed over as they are read, the stream failing
    /// part-way (or after the last) if told to: `visit` then saw some.
    #[derive(Default)]
    struct Fake {
        digests: Digests,
        fail_after: Option<usize>,
        asked: Mutex<Vec<MediaId>>,
    }

    impl StateReader for Fake {
        fn exists(&self) -> bool {
            true
        }
        fn lineage(&self) -> anyhow::Result<Option<String>> {
            Ok(None)
        }
        fn serial(&self) -> anyhow::Result<u64> {
            Ok(0)
        }
        fn each_record(&self, _: &mut VisitRecords<'_>) -> anyhow::Result<()> {
            unreachable!()
        }
        fn digests(&self) -> anyhow::Result<Digests> {
            Ok(self.digests.clone())
        }
        fn streams_digests(&self) -> bool {
            true
        }
        fn each_digest(&self, visit: &mut dyn FnMut(MediaId, &Digest)) -> anyhow::Result<bool> {
            for (n, (id, digest)) in self.digests.iter().enumerate() {
                if self.fail_after == Some(n) {
                    return Ok(false);
                }
                visit(*id, digest);
            }
            // A file found damaged at its end, after every digest.
            Ok(self.fail_after != Some(self.digests.len()))
        }
        fn get(&self, _: &MediaId) -> anyhow::Result<Option<Record>> {
            unreachable!()
        }
        fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
            self.asked.lock().unwrap().extend_from_slice(ids);
            Ok(BTreeMap::new())
        }
        fn previews(&self, _: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
            unreachable!()
        }
        fn each_entry(&self, _: &Filter, _: &mut VisitEntries<'_>) -> anyhow::Result<()> {
            unreachable!()
        }
    }

    fn text(n: u64, version: u64) -> Metadata {
        let mut m = Metadata::default();
        m.insert(FieldValue::AltText(AltText {
            text: format!("photo {n}, version {version}").into(),
        }));
        m
    }

    /// 600 IDs declared, recorded, both (matching or not), with records
    /// below the first media and above the last.
    fn library() -> (Desired, Digests) {
        let mut yaml = String::from("apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n");
        let mut digests = DigestsBuilder::default();
        for n in 1..600 {
            if declared(n) {
                yaml.push_str(&format!(
                    "- id: '{n}'\n  metadata:\n    alt_text:\n      text: 'photo {n}, version 1'\n"
                ));
            }
            if recorded(n) {
                let version = if declared(n) && same(n) { 1 } else { 2 };
                digests.push(
                    MediaId::parse(&n.to_string()).unwrap(),
                    Digest::of(&text(n, version)),
                );
            }
        }
        let file = manifest::parse_text(
            Arc::new(std::path::PathBuf::from("m.yaml")),
            &yaml,
            crate::time::Timestamp::now(),
        );
        (manifest::assemble(vec![file]).unwrap(), digests.finish())
    }

    fn declared(n: u64) -> bool {
        n.is_multiple_of(3) || n.is_multiple_of(5)
    }

    fn recorded(n: u64) -> bool {
        n.is_multiple_of(2) || n.is_multiple_of(3) || !(4..=590).contains(&n)
    }

    fn same(n: u64) -> bool {
        !n.is_multiple_of(4)
    }

    fn matched(n: u64) -> bool {
        declared(n) && recorded(n) && same(n)
    }

    fn ids(keep: impl Fn(u64) -> bool) -> Vec<u64> {
        (1..600).filter(|n| keep(*n)).collect()
    }

    fn numbers<'a>(ids: impl IntoIterator<Item = &'a MediaId>) -> Vec<u64> {
        ids.into_iter()
            .map(|id| id.to_string().parse().unwrap())
            .collect()
    }

    /// Wherever the runs part (one to eight of them, of any length), each
    /// media is flagged, each targeted match counted and each record not
    /// matched read, exactly as one pass over them all would.
    #[test]
    fn every_split_of_the_runs_sees_every_digest_once() {
        let (desired, digests) = library();
        let entries = desired.media.entries();
        let targets = Targets(
            ids(|n| n % 7 != 0)
                .iter()
                .map(|n| MediaId::parse(&n.to_string()).unwrap())
                .collect(),
        );
        let inputs = Inputs::new(&[], &targets, None, false).unwrap();
        let declared_ids = numbers(entries.iter().map(|e| &e.id));
        for runs in 1..=8 {
            // Uneven runs: the cut points fall on every kind of neighbour.
            let mut cuts: Vec<usize> = (1..runs)
                .map(|k| k * k * entries.len() / (runs * runs))
                .collect();
            cuts.insert(0, 0);
            cuts.push(entries.len());
            let parts: Vec<Run> = cuts
                .windows(2)
                .map(|w| compare_run(entries, w[0]..w[1], &digests, &inputs))
                .collect();
            let flags: Vec<bool> = parts.iter().flat_map(|r| r.same.iter().copied()).collect();
            let flagged: Vec<u64> = declared_ids
                .iter()
                .zip(&flags)
                .filter(|(_, f)| **f)
                .map(|(n, _)| *n)
                .collect();
            assert_eq!(flagged, ids(matched), "{runs} runs");
            let needed: Vec<u64> = parts.iter().flat_map(|r| numbers(&r.needed)).collect();
            assert_eq!(needed, ids(|n| recorded(n) && !matched(n)), "{runs} runs");
            let unchanged: usize = parts.iter().map(|r| r.unchanged).sum();
            assert_eq!(
                unchanged,
                ids(|n| matched(n) && n % 7 != 0).len(),
                "{runs} runs"
            );
        }
    }

    /// Digests streamed in parts of any size, or a stream that fails
    /// part-way (and is read whole after), flag, count and ask for exactly
    /// what the digests held whole do.
    #[test]
    fn streamed_digests_compare_as_digests_held_whole() {
        let (desired, digests) = library();
        let entries = desired.media.entries();
        let targets = Targets::default();
        let inputs = Inputs::new(&[], &targets, None, false).unwrap();
        let outcome = |runs: Vec<Run>| {
            let same: Vec<bool> = runs.iter().flat_map(|r| r.same.clone()).collect();
            let needed: Vec<u64> = runs.iter().flat_map(|r| numbers(&r.needed)).collect();
            let unchanged: usize = runs.iter().map(|r| r.unchanged).sum();
            (same, needed, unchanged)
        };
        let whole = Fake::default();
        let expected =
            outcome(compare_all(entries, &whole, Recorded::Whole(&digests), &inputs, 1).unwrap());
        assert_eq!(expected.1, ids(|n| recorded(n) && !matched(n)));
        for part_size in [1, 2, 3, 7, 64, 1000] {
            let ends = [Some(digests.len() - 1), Some(digests.len())];
            for fail_after in [None, Some(0), Some(5)].into_iter().chain(ends) {
                let store = Fake {
                    digests: digests.clone(),
                    fail_after,
                    ..Fake::default()
                };
                let runs =
                    compare_all(entries, &store, Recorded::Streamed, &inputs, part_size).unwrap();
                assert_eq!(
                    outcome(runs),
                    expected,
                    "parts of {part_size}, {fail_after:?}"
                );
            }
        }
        // No digest at all: every media is new.
        let empty = Fake::default();
        let runs = compare_all(entries, &empty, Recorded::Streamed, &inputs, 3).unwrap();
        let (same, needed, unchanged) = outcome(runs);
        assert_eq!(same, vec![false; entries.len()]);
        assert_eq!((needed, unchanged), (Vec::new(), 0));
    }

    /// The plan's own split (one run a core): the media kept, the records
    /// asked for, in ID order.
    #[test]
    fn every_record_not_matched_is_read_and_every_media_not_matched_kept() {
        let (mut desired, digests) = library();
        let targets = Targets::default();
        let inputs = Inputs::new(&[], &targets, None, false).unwrap();
        let store = Fake::default();
        let (_, unchanged) = records_to_compare(
            &mut desired,
            &store,
            Recorded::Whole(&digests),
            &inputs,
            None,
        )
        .unwrap();
        let kept = numbers(desired.media.values().map(|e| &e.id));
        let asked = numbers(&store.asked.into_inner().unwrap());
        assert_eq!(kept, ids(|n| declared(n) && !matched(n)));
        assert_eq!(asked, ids(|n| recorded(n) && !matched(n)));
        assert_eq!(unchanged, ids(matched).len());
    }
}
