//! One orchestration function per subcommand.

mod adopt;
pub(crate) mod apply;
mod history;
mod lint;
mod plan;
mod refresh;
mod shell;
mod state;
mod validate;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;

use crate::config::{Config, SchemaKind, Task};
use crate::manifest::{self, Desired};
use crate::model::MediaId;
use crate::output::Output;
use crate::plan::Targets;
use crate::state::{Digest, Record, StateReader};

/// The process exit status: 0 success, 1 error, 2 changes present
/// (`plan --detailed-exitcode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Changes = 2,
}

/// Reads the manifests and the state's digests at the same time (they are
/// independent, and each is a large share of a plan's time).
pub fn load_both<S: StateReader + ?Sized>(
    paths: &[PathBuf],
    open_store: impl FnOnce() -> anyhow::Result<Box<S>> + Send,
) -> anyhow::Result<(Desired, Box<S>, BTreeMap<MediaId, Digest>)> {
    std::thread::scope(|s| {
        let state = s.spawn(|| {
            let store = open_store()?;
            let digests = store.digests()?;
            Ok::<_, anyhow::Error>((store, digests))
        });
        let desired = manifest::load(paths);
        let (store, digests) = state
            .join()
            .map_err(|_| anyhow!("reading the state failed unexpectedly"))??;
        Ok((desired?, store, digests))
    })
}

/// The records a plan compares, read only where needed: a media whose
/// manifest has its record's digest is taken out of `desired` and counted
/// (if `targets` covers it) as unchanged, its record never decoded; the
/// others that are recorded, and the media in no manifest, are read in
/// full. A no-op plan of 100,000 media so holds digests, not records.
/// A refresh compares every media with X, so it reads every record.
pub fn records_to_compare<S: StateReader + ?Sized>(
    desired: &mut Desired,
    store: &S,
    digests: &BTreeMap<MediaId, Digest>,
    targets: &Targets,
    refresh: bool,
) -> anyhow::Result<(BTreeMap<MediaId, Record>, usize)> {
    if refresh {
        return Ok((store.all()?, 0));
    }
    // Everything here is in ID order (the media, the digests, and so the
    // media found unchanged): merge passes, no lookups, which matters to
    // a watch cycle over 100,000 media.
    let mut by_id = digests.iter().peekable();
    let recorded: Vec<(&Digest, &manifest::Entry)> = desired
        .media
        .values()
        .filter_map(|entry| {
            while by_id.next_if(|(id, _)| **id < entry.id).is_some() {}
            by_id
                .next_if(|(id, _)| **id == entry.id)
                .map(|(_, digest)| (digest, entry))
        })
        .collect();
    let same: Vec<Vec<MediaId>> = crate::parallel::map_chunks(&recorded, |part| {
        part.iter()
            .filter(|(digest, entry)| entry.metadata.digest() == **digest)
            .map(|(_, entry)| entry.id)
            .collect()
    });
    drop(recorded);
    let same: Vec<MediaId> = same.into_iter().flatten().collect();
    let is_same = |ids: &mut std::iter::Peekable<std::slice::Iter<MediaId>>, id: &MediaId| {
        ids.next_if(|s| *s == id).is_some()
    };
    let mut ids = same.iter().peekable();
    desired.media.retain(|entry| !is_same(&mut ids, &entry.id));
    let unchanged = same.iter().filter(|id| targets.includes(id)).count();
    let mut ids = same.iter().peekable();
    let needed: Vec<MediaId> = digests
        .keys()
        .filter(|id| !is_same(&mut ids, id))
        .copied()
        .collect();
    Ok((store.get_many(&needed)?, unchanged))
}

/// Manifests that do not validate, also in the form a CI step reads on
/// stdout (markdown for a PR comment, annotations): the error is still
/// returned, for stderr and exit 1.
pub fn show_invalid(
    error: anyhow::Error,
    render: impl Fn(&[crate::error::Diagnostic]) -> String,
    out: Output,
) -> anyhow::Error {
    if let Some(invalid) = error.downcast_ref::<crate::error::InvalidManifests>() {
        out.print(&render(&invalid.0));
    }
    error
}

/// Every diagnostic as a GitHub annotation line.
pub fn annotations(diagnostics: &[crate::error::Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| crate::annotations::diagnostic(d) + "\n")
        .collect()
}

/// Refuses manifests that declare nothing (unless `--allow-empty`) and
/// `--target`s that no manifest declares: both are usually a wrong path or
/// a typo, and with `--prune` a wrong path would forget every media.
pub fn check_declared(
    config: &Config,
    paths: &[PathBuf],
    desired: &Desired,
    targets: &Targets,
) -> anyhow::Result<()> {
    if desired.media.is_empty() && desired.held.is_empty() && !config.allow_empty {
        let shown: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
        anyhow::bail!(
            "{} holds no manifests that declare media (*.yaml, *.yml); check the path, or pass --allow-empty if that is intended",
            shown.join(", ")
        );
    }
    let unknown: Vec<String> = targets
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

/// Reads the live alt text of every recorded, declared media that has a
/// key (100 a request), and turns `applied` into what X holds now, so that
/// a plan puts back what drifted. Reads are paced, retried and fail fast
/// like posts, and stop at `--max-duration`.
pub fn read_live(
    settings: &crate::x_api::ClientSettings,
    budget: &crate::apply::Budget,
    desired: &Desired,
    applied: &mut BTreeMap<MediaId, Record>,
) -> anyhow::Result<crate::refresh::Refresh> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = std::sync::Arc::new(crate::x_api::Client::new(settings.clone())?);
    client.set_deadline(budget.max_duration.map(|d| std::time::Instant::now() + d));
    let (keys, unrefreshable) = crate::refresh::keys(desired, applied);
    let mut refresh = runtime
        .block_on(crate::refresh::read(
            client,
            keys,
            applied,
            settings.concurrency,
        ))
        .map_err(|e| anyhow!("reading the live alt text failed: {e}"))?;
    refresh.unrefreshable = unrefreshable;
    crate::refresh::as_live(applied, &refresh);
    Ok(refresh)
}

pub fn run(config: Config) -> anyhow::Result<Exit> {
    let out = Output {
        color: config.color,
    };
    match &config.task {
        Task::Validate { paths, github } => validate::run(&config, paths, *github, out),
        Task::Plan(plan) => plan::run(&config, plan, out),
        Task::Apply(apply) => apply::run(&config, apply, out),
        Task::Watch(watch) => watch::run(&config, watch, out),
        Task::Adopt { paths, targets } => adopt::run(&config, paths, targets, out),
        Task::State(action) => state::run(&config, action, out),
        Task::Refresh { paths, client } => refresh::run(&config, paths, client, out),
        Task::Lint {
            paths,
            format,
            config: file,
        } => lint::run(&config, paths, *format, file.as_deref(), out),
        Task::Schema(kind) => {
            let schema = match kind {
                SchemaKind::Manifest => crate::schemas::manifest(),
                SchemaKind::Plan => crate::schemas::plan(),
                SchemaKind::Config => crate::lint::config::schema(),
            };
            out.line(&serde_json::to_string_pretty(&schema)?);
            Ok(Exit::Success)
        }
        Task::Completions(shell) => shell::completions(*shell, out),
        Task::Man => shell::man(out),
    }
}
