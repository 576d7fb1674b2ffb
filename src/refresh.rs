//! Drift: what X holds now against what the state says it last confirmed.
//! Only `alt_text` can be read back, so only it can drift; media whose
//! key is unknown (no `key:` or `type:` in the manifest) are counted and
//! left alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;

use crate::manifest::Desired;
use crate::model::{AltText, FieldKind, FieldSet, FieldValue, MediaId, Metadata};
use crate::x_api::{ApiError, Client, Live, KEYS_PER_READ};

pub use crate::plan::drift::{Drift, Refresh};

/// The keys to read: recorded media that a manifest declares with a key.
pub fn keys(
    desired: &Desired,
    applied: &BTreeMap<MediaId, Metadata>,
) -> (Vec<(MediaId, String)>, usize) {
    let mut keys = Vec::new();
    let mut unrefreshable = 0;
    for id in applied.keys() {
        match desired.media.get(id).map(crate::manifest::Entry::media_key) {
            Some(Some(key)) => keys.push((*id, key)),
            Some(None) => unrefreshable += 1,
            None => {}
        }
    }
    (keys, unrefreshable)
}

fn alt_text_of(metadata: &Metadata) -> Metadata {
    metadata.select(FieldSet::of(FieldKind::AltText))
}

fn live_alt_text(text: Option<String>) -> Metadata {
    text.map(|text| FieldValue::AltText(AltText { text: text.into() }))
        .into_iter()
        .collect()
}

/// Reads every key (100 a request, `concurrency` requests at once) and
/// compares with the records. The first failure of a read ends it.
pub async fn read(
    client: Arc<Client>,
    keys: Vec<(MediaId, String)>,
    applied: &BTreeMap<MediaId, Metadata>,
    concurrency: usize,
    media_hosts: Vec<String>,
) -> Result<Refresh, ApiError> {
    let mut refresh = Refresh {
        media_hosts,
        ..Refresh::default()
    };
    let batches: Vec<Vec<(MediaId, String)>> =
        keys.chunks(KEYS_PER_READ).map(<[_]>::to_vec).collect();
    refresh.reads = batches.len();
    let mut answers = futures::stream::iter(batches)
        .map(|batch| {
            let client = Arc::clone(&client);
            async move {
                let wanted: Vec<String> = batch.iter().map(|(_, k)| k.clone()).collect();
                client
                    .read_alt_texts(&wanted)
                    .await
                    .map(|live| (batch, live))
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(answer) = answers.next().await {
        let (batch, live) = answer?;
        for (id, key) in batch {
            let Some(record) = applied.get(&id) else {
                continue;
            };
            match live.get(&key) {
                Some(Live::Found { alt_text, preview }) => {
                    if let Some(url) = preview {
                        match crate::plan::thumbnail::checked(url, &refresh.media_hosts) {
                            Some(url) => {
                                refresh.previews.insert(id, url);
                            }
                            None => refresh.previews_dropped += 1,
                        }
                    }
                    let recorded = alt_text_of(record);
                    let now = live_alt_text(alt_text.clone());
                    if recorded == now {
                        refresh.in_line += 1;
                    } else {
                        refresh.drifted.push(Drift {
                            id,
                            recorded,
                            live: now,
                        });
                    }
                }
                Some(Live::NotFound) | None => refresh.not_found.push((id, key)),
            }
        }
    }
    refresh.drifted.sort_by_key(|d| d.id);
    refresh.not_found.sort();
    Ok(refresh)
}

/// The records as X holds them now: each drifted media's alt text
/// replaced by the live one, so a plan puts back what the manifests want.
pub fn as_live(applied: &mut BTreeMap<MediaId, Metadata>, refresh: &Refresh) {
    for drift in &refresh.drifted {
        if let Some(metadata) = applied.get_mut(&drift.id) {
            *metadata = with_live(metadata, drift);
        }
    }
}

/// A record's metadata with the live alt text in place of the recorded one.
pub fn with_live(metadata: &Metadata, drift: &Drift) -> Metadata {
    metadata.overlaid(|kind| kind == FieldKind::AltText, &drift.live)
}
