//! Each media's image URL from X's latest read, in one object beside the
//! state (`previews.json`, `{"<media ID>": "<URL>"}`): a review's cache,
//! outside the head, the journals and the serial. Only media the state
//! records are kept or returned, so a forgotten media shows no image.

use std::collections::BTreeMap;

use super::image::Keys;
use super::store::Store;
use crate::model::{Digests, MediaId};

/// What the object holds; one that does not parse (damage, a forgery)
/// holds nothing, and the review shows no images.
fn stored(store: &Store, keys: &Keys) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(match store.get(&keys.previews())? {
        Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("the state's image URLs do not parse ({e}); the review shows none");
            BTreeMap::new()
        }),
        None => BTreeMap::new(),
    })
}

pub fn read(
    store: &Store,
    keys: &Keys,
    held: &Digests,
    ids: &[MediaId],
) -> anyhow::Result<BTreeMap<MediaId, String>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut stored = stored(store, keys)?;
    Ok(ids
        .iter()
        .filter(|id| held.get(id).is_some())
        .filter_map(|id| stored.remove(&id.to_string()).map(|url| (*id, url)))
        .collect())
}

/// The writer's: merges `previews` into the object, dropping media the
/// state no longer records. Under the writer's lock: nobody else writes it.
pub fn write(
    store: &Store,
    keys: &Keys,
    held: &Digests,
    previews: &BTreeMap<MediaId, String>,
) -> anyhow::Result<()> {
    let mut all = stored(store, keys)?;
    for (id, url) in previews {
        all.insert(id.to_string(), url.clone());
    }
    all.retain(|id, _| MediaId::parse(id).is_some_and(|id| held.get(&id).is_some()));
    store.put(&keys.previews(), serde_json::to_vec(&all)?)?;
    Ok(())
}
