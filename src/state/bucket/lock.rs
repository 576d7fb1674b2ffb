//! The lock of a bucket workspace: a `lock.json` made by a conditional
//! create (`If-None-Match: *`), naming its holder and the end of its
//! lease. The writer renews the lease (a conditional update on the lock's
//! `ETag`) while it lives; a lock whose lease ran out (its writer died: a
//! killed runner never deletes it) is taken over, with a warning naming
//! that holder, and a live one never is.
//!
//! A writer that fails to renew in time, or finds its lock taken over,
//! is told so by `check` before each write, and stops writing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use super::image::Keys;
use super::store::{self, Put, Store, Version};
use crate::state::holder::{Holder, LockError};

/// How long a lease lasts unless renewed; `XMETA_STATE_LEASE` (e.g.
/// `30s`) changes it. Renewed every third of it.
const DEFAULT_LEASE: Duration = Duration::from_mins(1);
const MIN_LEASE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stored {
    pub holder: Holder,
    /// The CI run's URL, when there is one.
    #[serde(default)]
    pub run: Option<String>,
    /// Unix milliseconds at which the lease ends.
    pub expires_ms: u64,
}

impl Stored {
    fn expired(&self) -> bool {
        now_ms() >= self.expires_ms
    }

    /// The holder and its run, as messages show them.
    pub fn describe(&self) -> String {
        let run = self
            .run
            .as_deref()
            .map(|r| format!(", run {}", crate::untrusted::neutralise(r, 200)))
            .unwrap_or_default();
        format!("{}{run}", self.holder)
    }
}

/// `XMETA_STATE_LEASE`, at least `MIN_LEASE`; one that does not parse
/// is an error (a typo must not silently mean a minute).
pub fn lease() -> anyhow::Result<Duration> {
    match std::env::var("XMETA_STATE_LEASE") {
        Err(_) => Ok(DEFAULT_LEASE),
        Ok(text) if text.is_empty() => Ok(DEFAULT_LEASE),
        Ok(text) => humantime::parse_duration(&text)
            .map(|d| d.max(MIN_LEASE))
            .map_err(|e| {
                anyhow!(
                    "XMETA_STATE_LEASE `{}` is not a duration ({e}); write e.g. 30s or 2m",
                    crate::untrusted::neutralise(&text, 40)
                )
            }),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A held lock; released (deleted) when dropped, unless it was lost.
pub struct Lock {
    store: Store,
    key: String,
    shared: Arc<Shared>,
    renewal: tokio::task::JoinHandle<()>,
}

struct Shared {
    version: Mutex<Version>,
    stored: Mutex<Stored>,
    /// Taken over, or not renewed in time: no more writes.
    lost: AtomicBool,
}

/// What `acquire` found.
pub struct Acquired {
    pub lock: Lock,
    /// The holder of an expired lease this writer took over.
    pub previous: Option<Stored>,
}

impl Lock {
    pub fn acquire(
        store: &Store,
        keys: &Keys,
        command: &str,
        run: Option<String>,
        shown: &str,
    ) -> anyhow::Result<Acquired> {
        let key = keys.lock();
        let lease = lease()?;
        let mine = |expires: u64| Stored {
            holder: Holder::me(command),
            run: run.clone(),
            expires_ms: expires,
        };
        let held = |stored: &Stored| -> anyhow::Error {
            LockError::HeldInBucket {
                location: shown.to_string(),
                holder: stored.describe(),
            }
            .into()
        };
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        let stored = mine(now_ms() + lease_ms);
        let (version, previous) = match store.create(&key, serde_json::to_vec(&stored)?)? {
            Put::Done(version) => (version, None),
            Put::Conflict => {
                let Some((bytes, version)) = store.get(&key)? else {
                    anyhow::bail!(
                        "the state lock at {shown} changed as it was read; run the command again"
                    );
                };
                let theirs: Stored = serde_json::from_slice(&bytes).unwrap_or(Stored {
                    holder: Holder::unknown(),
                    run: None,
                    expires_ms: 0,
                });
                if !theirs.expired() {
                    return Err(held(&theirs));
                }
                let stored = mine(now_ms() + lease_ms);
                match store.update(&key, serde_json::to_vec(&stored)?, &version)? {
                    Put::Done(version) => (version, Some(theirs)),
                    // Another writer took it over first.
                    Put::Conflict => {
                        let theirs = store
                            .get(&key)?
                            .and_then(|(b, _)| serde_json::from_slice(&b).ok())
                            .unwrap_or(theirs);
                        return Err(held(&theirs));
                    }
                }
            }
        };
        let shared = Arc::new(Shared {
            version: Mutex::new(version),
            stored: Mutex::new(stored),
            lost: AtomicBool::new(false),
        });
        let renewal = store::spawn(renew(store.clone(), key.clone(), shared.clone(), lease))?;
        Ok(Acquired {
            lock: Lock {
                store: store.clone(),
                key,
                shared,
                renewal,
            },
            previous,
        })
    }

    /// Fails once the lease is lost: a write now could follow another
    /// writer's.
    pub fn check(&self) -> anyhow::Result<()> {
        let expired = self.shared.stored.lock().map_or(true, |s| s.expired());
        if expired {
            self.shared.lost.store(true, Ordering::SeqCst);
        }
        if self.shared.lost.load(Ordering::SeqCst) {
            return Err(anyhow!(
                "this writer lost the state lock (its lease could not be renewed in time, or another writer took it over); nothing more is recorded"
            ));
        }
        Ok(())
    }

    /// Removes the lock of a holder whose lease ran out, returning it; a
    /// live lease is refused, as a second writer would be.
    pub fn force_unlock(store: &Store, keys: &Keys, shown: &str) -> anyhow::Result<Option<Holder>> {
        let key = keys.lock();
        let Some((bytes, _)) = store.get(&key)? else {
            return Ok(None);
        };
        let theirs: Stored = serde_json::from_slice(&bytes).unwrap_or(Stored {
            holder: Holder::unknown(),
            run: None,
            expires_ms: 0,
        });
        if !theirs.expired() {
            return Err(LockError::HeldInBucket {
                location: shown.to_string(),
                holder: theirs.describe(),
            }
            .into());
        }
        store.delete(&key)?;
        Ok(Some(theirs.holder))
    }
}

/// Renews the lease every third of it, by a conditional update on the
/// lock's `ETag`; one that finds the lock changed marks it lost.
async fn renew(store: Store, key: String, shared: Arc<Shared>, lease: Duration) {
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::time::sleep(lease / 3).await;
        let (store, key, shared) = (store.clone(), key.clone(), shared.clone());
        // The store's calls block: off the runtime's worker.
        let outcome = tokio::task::spawn_blocking(move || {
            let mut next = shared
                .stored
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            next.expires_ms = now_ms() + lease_ms;
            let version = shared
                .version
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            match store.update(
                &key,
                serde_json::to_vec(&next).unwrap_or_default(),
                &version,
            ) {
                Ok(Put::Done(version)) => {
                    *shared
                        .version
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = version;
                    *shared.stored.lock().unwrap_or_else(PoisonError::into_inner) = next;
                    true
                }
                Ok(Put::Conflict) => {
                    tracing::error!(
                        "the state lock was taken over by another writer; this one stops recording"
                    );
                    shared.lost.store(true, Ordering::SeqCst);
                    false
                }
                Err(e) => {
                    // Tried again at the next tick; `check` refuses writes
                    // once the lease has run out.
                    tracing::warn!("cannot renew the state lock: {e:#}");
                    true
                }
            }
        })
        .await;
        if !matches!(outcome, Ok(true)) {
            return;
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.shared.lost.load(Ordering::SeqCst) {
            return;
        }
        // Ours still (its `ETag` is the one we wrote): delete it.
        let version = self
            .shared
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match self.store.get(&self.key) {
            Ok(Some((_, found))) if found.same_object(&version) => {
                if let Err(e) = self.store.delete(&self.key) {
                    tracing::warn!("cannot release the state lock: {e:#}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot release the state lock: {e:#}"),
        }
    }
}
