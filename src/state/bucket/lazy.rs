//! A bucket state as a reader takes it: the head, its snapshot's digests
//! (`digest_object.rs`) and the journals after it, which is all a plan
//! compares the manifests with. The snapshot itself (every record and the
//! history: 10.0 MB compressed at 100,000 media, against 5.2 MB of
//! digests) is read
//! the first time a record or the history is asked for, and must then
//! state exactly the digests the plan was given.

use std::sync::OnceLock;

use anyhow::anyhow;

use super::image::{self, damaged, Head, Image, Journal, Keys};
use super::store::{Store, Version};
use crate::model::Digests;
use crate::state::digest_object;

pub struct Lazy {
    store: Store,
    keys: Keys,
    shown: String,
    head: Head,
    serial: u64,
    /// The snapshot's digests with the journals applied.
    digests: Digests,
    /// Kept to be applied to the snapshot when it is read.
    journals: Vec<Journal>,
    full: OnceLock<Image>,
}

impl Lazy {
    pub fn lineage(&self) -> &str {
        &self.head.lineage
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Each recorded media's digest, without a copy.
    pub fn digests(&self) -> &Digests {
        &self.digests
    }

    /// The whole image: the snapshot read (once), then the journals.
    pub fn image(&self) -> anyhow::Result<&Image> {
        if let Some(image) = self.full.get() {
            return Ok(image);
        }
        let image = self.read_image()?;
        Ok(self.full.get_or_init(|| image))
    }

    /// The whole image, to write on (a writer starts from it).
    pub fn into_image(mut self) -> anyhow::Result<Image> {
        match self.full.take() {
            Some(image) => Ok(image),
            None => self.read_image(),
        }
    }

    fn read_image(&self) -> anyhow::Result<Image> {
        let shown = &self.shown;
        // Compacted away since the digests were read: the state this
        // reader planned with is gone, and a newer one would not match it.
        let mut image = image::load_snapshot(&self.store, &self.keys, &self.head, shown)?
            .ok_or_else(|| {
                anyhow!(
                    "the state at {shown} changed while it was read (a writer compacted it); run the command again"
                )
            })?;
        for journal in &self.journals {
            image
                .apply(journal.clone())
                .map_err(|e| damaged(shown, &e))?;
        }
        if image.serial != self.serial || image.digests() != self.digests {
            return Err(damaged(
                shown,
                &anyhow!("the snapshot does not state the digests of its digests object"),
            ));
        }
        Ok(image)
    }
}

/// The head and the state it stands on, read consistently as far as its
/// digests; `None` when the workspace holds no state.
pub fn read(
    store: &Store,
    keys: &Keys,
    shown: &str,
) -> anyhow::Result<Option<(Head, Version, Lazy)>> {
    let mut before: Option<Version> = None;
    for _ in 0..image::ATTEMPTS {
        let Some((head, version)) = image::read_head(store, keys, shown)? else {
            return Ok(None);
        };
        if let Some(lazy) = load(store, keys, &head, shown)? {
            return Ok(Some((head, version, lazy)));
        }
        // What the head stands on is gone. A compaction moves the head
        // before it deletes anything: the same head again is a snapshot
        // lost, and no run of the command again would find it.
        if before.as_ref() == Some(&version) {
            return Err(damaged(
                shown,
                &anyhow!("the snapshot its head names is missing"),
            ));
        }
        before = Some(version);
    }
    Err(image::kept_changing(shown))
}

/// `None` when a writer compacted what `head` stands on away meanwhile.
fn load(store: &Store, keys: &Keys, head: &Head, shown: &str) -> anyhow::Result<Option<Lazy>> {
    let lazy =
        |digests: Digests, serial: u64, journals: Vec<Journal>, full: OnceLock<Image>| Lazy {
            store: store.clone(),
            keys: keys.clone(),
            shown: shown.to_string(),
            head: head.clone(),
            serial,
            digests,
            journals,
            full,
        };
    // No snapshot, one from a writer before digests objects, or one whose
    // digests object is missing: the whole image now, as its digests are
    // in it (and a snapshot missing too is a compaction: read the head
    // again).
    let whole = || -> anyhow::Result<Option<Lazy>> {
        let Some(image) = image::load(store, keys, head, shown)? else {
            return Ok(None);
        };
        let (digests, serial) = (image.digests(), image.serial);
        Ok(Some(lazy(
            digests,
            serial,
            Vec::new(),
            OnceLock::from(image),
        )))
    };
    let Some(snapshot) = head.snapshot.as_deref().filter(|_| head.digests) else {
        return whole();
    };
    let key = format!("{}/{}", keys.folder(), super::image::digests_name(snapshot));
    let Some((bytes, _)) = store.get(&key)? else {
        return whole();
    };
    let mut digests = digest_object::decode(&bytes, &head.lineage, head.serial, snapshot)
        .map_err(|e| damaged(shown, &e))?;
    drop(bytes);
    let journals = image::journals(store, keys, head, head.serial, shown)?;
    let mut serial = head.serial;
    for journal in &journals {
        journal
            .apply_to_digests(&mut digests)
            .map_err(|e| damaged(shown, &e))?;
        serial = journal.serial;
    }
    Ok(Some(lazy(digests, serial, journals, OnceLock::new())))
}
