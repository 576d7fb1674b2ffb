//! The bucket backend: the state as objects in S3, GCS or Azure Blob
//! (`--state s3://BUCKET/PREFIX`), each workspace a folder under the
//! prefix. No server of our own and no stored password: each cloud's
//! standard credential chain (OIDC web identity in CI included).
//!
//! Same promises as sled and PostgreSQL: one writer at a time by a lease
//! lock (`lock.rs`), each confirmation durable before it counts, written
//! in groups (`writer.rs`), readers that read a consistent state and never
//! wait (`image.rs`), newer formats refused. `object_store`'s types stay
//! in `store.rs`.

mod compression;
mod growing;
mod image;
mod index;
mod lazy;
mod lock;
mod previews;
mod spill;
mod store;
mod target;
mod writer;

use std::collections::BTreeMap;

use anyhow::anyhow;

pub use target::Target;

use super::moved::Moved;
use super::{
    Empty, Filter, Holder, Provenance, Record, StateReader, VisitEntries, VisitRecords, Writable,
};
use crate::model::Digests;
use crate::model::MediaId;
use image::Keys;
use lazy::Lazy;
use lock::Lock;
use store::{Put, Store};

/// A consistent state read once, as far as its digests (`lazy.rs`); later
/// reads come from what it read, the snapshot and the image URLs on demand.
struct BucketReader {
    state: Lazy,
    store: Store,
    keys: Keys,
}

impl StateReader for BucketReader {
    fn exists(&self) -> bool {
        true
    }
    fn lineage(&self) -> anyhow::Result<Option<String>> {
        Ok(Some(self.state.lineage().to_string()))
    }
    fn serial(&self) -> anyhow::Result<u64> {
        Ok(self.state.serial())
    }
    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        self.state.image()?.each_record(visit)
    }
    fn digests(&self) -> anyhow::Result<Digests> {
        Ok(self.state.digests().clone())
    }
    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        if self.state.digests().get(id).is_none() {
            return Ok(None);
        }
        self.state.image()?.get(id)
    }
    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let mut out = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let image = self.state.image()?;
        for id in ids {
            let record = image
                .get(id)?
                .ok_or_else(|| anyhow!("media {id} has a digest but no record"))?;
            out.insert(*id, record);
        }
        Ok(out)
    }
    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        self.state.image()?.each_entry(filter, visit)
    }
    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        previews::read(&self.store, &self.keys, self.state.digests(), ids)
    }
}

fn keys(target: &Target) -> Keys {
    Keys::new(target.folder())
}

/// Whether the workspace exists: `default` always does, another once
/// `state workspace new` (or `--create-workspace`) left its marker.
/// `Err` holds the known workspaces.
fn workspace_exists(store: &Store, target: &Target) -> anyhow::Result<Result<(), Vec<String>>> {
    if target.is_default_workspace() || store.get(&keys(target).marker())?.is_some() {
        return Ok(Ok(()));
    }
    Ok(Err(list_in(store, target)?))
}

fn unknown(target: &Target, known: &[String]) -> anyhow::Error {
    super::workspaces::unknown(target.workspace(), target.url_shown(), known).into()
}

pub fn open_reader(target: &Target) -> anyhow::Result<(Box<dyn StateReader>, Option<Moved>)> {
    let store = Store::open(target)?;
    match workspace_exists(&store, target)? {
        Ok(()) => {}
        Err(_) if target.create_workspace() => return Ok((Box::new(Empty), None)),
        Err(known) => return Err(unknown(target, &known)),
    }
    let keys = keys(target);
    match lazy::read(&store, &keys, &target.to_string())? {
        None => Ok((Box::new(Empty), None)),
        Some((head, _, state)) => Ok((Box::new(BucketReader { state, store, keys }), head.moved)),
    }
}

pub fn exists(target: &Target) -> anyhow::Result<(bool, Option<Moved>)> {
    let store = Store::open(target)?;
    match workspace_exists(&store, target)? {
        Ok(()) => {}
        Err(_) if target.create_workspace() => return Ok((false, None)),
        Err(known) => return Err(unknown(target, &known)),
    }
    Ok(
        match image::read_head(&store, &keys(target), &target.to_string())? {
            None => (false, None),
            Some((head, _)) => (true, head.moved),
        },
    )
}

pub fn open_writer(
    target: &Target,
    command: &str,
    provenance: &Provenance,
) -> anyhow::Result<Writable> {
    let store = Store::open(target)?;
    let shown = target.to_string();
    match workspace_exists(&store, target)? {
        Ok(()) => {}
        Err(_) if target.create_workspace() => create_marker(&store, target)?,
        Err(known) => return Err(unknown(target, &known)),
    }
    let keys = keys(target);
    let acquired = Lock::acquire(&store, &keys, command, Some(provenance.run.clone()), &shown)?;
    // Only now, under the lock: `state migrate` marks its source while
    // holding it, so a writer that got in after it sees the mark.
    let found = lazy::read(&store, &keys, &shown)?;
    if let Some(moved) = found.as_ref().and_then(|(head, _, _)| head.moved.clone()) {
        return Ok(Writable::Moved(moved));
    }
    if let Some(previous) = &acquired.previous {
        tracing::warn!(
            "took over the state lock at {shown}, whose lease had run out: it was held by {}",
            previous.describe()
        );
    }
    let writer = writer::BucketWriter::open(store, keys, shown, acquired.lock, provenance, found)?;
    Ok(Writable::Open(Box::new(writer)))
}

pub fn force_unlock(target: &Target) -> anyhow::Result<Option<Holder>> {
    let store = Store::open(target)?;
    Lock::force_unlock(&store, &keys(target), &target.to_string())
}

fn create_marker(store: &Store, target: &Target) -> anyhow::Result<()> {
    let marker = serde_json::json!({ "workspace": target.workspace() });
    store.create(&keys(target).marker(), serde_json::to_vec(&marker)?)?;
    Ok(())
}

/// The workspaces under the prefix (`default` always), sorted.
fn list_in(store: &Store, target: &Target) -> anyhow::Result<Vec<String>> {
    let mut names = vec![super::location::DEFAULT_WORKSPACE.to_string()];
    for name in store.folders(target.prefix())? {
        let candidate = target.with_workspace(&name);
        if super::postgres::check_workspace_name(&name).is_ok()
            && store.get(&keys(&candidate).marker())?.is_some()
        {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

pub fn list(target: &Target) -> anyhow::Result<Vec<String>> {
    list_in(&Store::open(target)?, target)
}

pub fn create(target: &Target, name: &str) -> anyhow::Result<()> {
    super::postgres::check_workspace_name(name)?;
    let store = Store::open(target)?;
    let new = target.with_workspace(name);
    let exists = name == super::location::DEFAULT_WORKSPACE
        || matches!(
            store.create(
                &keys(&new).marker(),
                serde_json::to_vec(&serde_json::json!({ "workspace": name }))?
            )?,
            Put::Conflict
        );
    if exists {
        anyhow::bail!(
            "workspace `{name}` already exists in {}; use it with --workspace {name}",
            target.url_shown()
        );
    }
    Ok(())
}

/// Deletes workspace `name`'s objects, returning how many media it held;
/// `default`, a workspace that holds media (unless `force`), and one
/// whose lock is live are refused. Its lock is held while deleting: no
/// writer starts in between.
pub fn delete(target: &Target, name: &str, force: bool) -> anyhow::Result<u64> {
    super::postgres::check_workspace_name(name)?;
    if name == super::location::DEFAULT_WORKSPACE {
        anyhow::bail!("the `default` workspace always exists and cannot be deleted; to empty it, `xmeta state rm` its media");
    }
    let store = Store::open(target)?;
    let gone = target.with_workspace(name);
    let shown = gone.to_string();
    if let Err(known) = workspace_exists(&store, &gone)? {
        return Err(unknown(&gone, &known));
    }
    let keys = keys(&gone);
    let acquired = match Lock::acquire(&store, &keys, "xmeta state workspace delete", None, &shown)
    {
        Ok(acquired) => acquired,
        Err(e) => match e.downcast_ref::<super::LockError>() {
            Some(super::LockError::HeldInBucket { holder, .. }) => anyhow::bail!(
                "workspace `{name}` is locked by {holder}; nothing was deleted (wait for that writer to finish)"
            ),
            _ => return Err(e),
        },
    };
    // Counted from the records (checked against the digests), not the
    // digests alone: a forged count of 0 must not pass for empty.
    let held = match lazy::read(&store, &keys, &shown)? {
        Some((_, _, state)) => state.into_image()?.digests().len() as u64,
        None => 0,
    };
    if held > 0 && !force {
        anyhow::bail!(
            "workspace `{name}` holds {held} media; nothing was deleted (keep a copy with `xmeta --workspace {name} state export --out FILE`, then pass --force to delete them with it)"
        );
    }
    // The marker last: a workspace half deleted still exists, and a
    // second `delete` finishes it.
    let lock_key = keys.lock();
    let marker = keys.marker();
    let doomed = store
        .list(keys.folder())?
        .into_iter()
        .filter(|key| *key != lock_key && *key != marker)
        .collect();
    store.delete_many(doomed)?;
    store.delete(&marker)?;
    drop(acquired);
    Ok(held)
}
