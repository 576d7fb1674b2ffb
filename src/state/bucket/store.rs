//! The object store under a bucket state: the `object_store` crate's S3,
//! GCS or Azure client, built from each cloud's standard environment
//! (credential chain, web identity, `AWS_ENDPOINT_URL`, `AWS_REGION`, …),
//! and the few calls the state makes, blocking, on a runtime of its own.
//! Only this module sees `object_store`'s types.
//!
//! Every call is bounded: a request gives up after `REQUEST_TIMEOUT`, and
//! retries stop after `RETRY_TIMEOUT`, so a store that stops answering
//! fails the write (and an apply stops sending) instead of hanging.

use std::future::Future;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::anyhow;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    ClientConfigKey, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};

use super::growing::{End, Growing};
use super::target::{Cloud, Target};

/// One request's limit, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a call keeps retrying a failing store.
const RETRY_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_RETRIES: usize = 3;

/// The largest object read: a state of 1,000,000 media is a snapshot of
/// a few hundred MB; a larger object is refused, not read into memory.
const MAX_OBJECT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// The size of each part of an object written in parts (S3 takes 5 MiB
/// and up, all parts but the last the same size).
const PART_BYTES: u64 = 8 * 1024 * 1024;

/// Parts of one object sent at once (each `PART_BYTES` in memory).
const PARTS_IN_FLIGHT: usize = 4;

/// A version of an object, for a conditional update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    e_tag: Option<String>,
    version: Option<String>,
}

impl Version {
    /// The same object as written: its `ETag` (a store that lists no
    /// version ID on reads still gives one on writes).
    pub fn same_object(&self, other: &Version) -> bool {
        self.e_tag == other.e_tag
    }
}

/// What a conditional write found.
pub enum Put {
    Done(Version),
    /// The object was there (create) or had changed (update).
    Conflict,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The URL shown in messages.
    shown: String,
}

/// The runtime every store call runs on: callers are plain threads and
/// async tasks of the command's own runtime alike.
fn runtime() -> anyhow::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("xmeta-bucket")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| anyhow!("cannot start the bucket client: {e}"))
}

/// Runs `work` on the store's runtime and waits for it.
pub fn block<T: Send + 'static>(
    work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .map_err(|_| anyhow!("the bucket client stopped"))?
}

/// Spawns `work` on the store's runtime (the lease's renewal, a
/// snapshot's download).
pub fn spawn(
    work: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    Ok(runtime()?.spawn(work))
}

/// The download's side of a `Growing`: a download that stops without a
/// word (its task aborted or gone) ends it as failed, so that nobody waits
/// on it for ever.
struct Filling(Growing);

impl Drop for Filling {
    fn drop(&mut self) {
        self.0.finish(End::Failed("the download stopped".into()));
    }
}

impl Store {
    pub fn open(target: &Target) -> anyhow::Result<Store> {
        let retry = RetryConfig {
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
            ..RetryConfig::default()
        };
        let url = target.bucket_url();
        let timeout = humantime::format_duration(REQUEST_TIMEOUT).to_string();
        let connect = humantime::format_duration(CONNECT_TIMEOUT).to_string();
        let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match target.cloud() {
            Cloud::S3 => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
                let mut builder = AmazonS3Builder::from_env()
                    .with_url(url)
                    .with_retry(retry)
                    // If-None-Match / If-Match on PutObject (S3 since 2024,
                    // and the S3-compatible stores that follow it).
                    .with_conditional_put(S3ConditionalPut::ETagMatch);
                for (key, value) in [
                    (ClientConfigKey::Timeout, &timeout),
                    (ClientConfigKey::ConnectTimeout, &connect),
                ] {
                    builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
                }
                builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Cloud::Gcs => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut builder = GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry);
                for (key, value) in [
                    (ClientConfigKey::Timeout, &timeout),
                    (ClientConfigKey::ConnectTimeout, &connect),
                ] {
                    builder = builder.with_config(GoogleConfigKey::Client(key), value);
                }
                builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Cloud::Azure => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut builder = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry);
                for (key, value) in [
                    (ClientConfigKey::Timeout, &timeout),
                    (ClientConfigKey::ConnectTimeout, &connect),
                ] {
                    builder = builder.with_config(AzureConfigKey::Client(key), value);
                }
                builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
        };
        let shown = target.url_shown().to_string();
        let inner = built.map_err(|e| {
            anyhow!(
                "cannot use the bucket {shown}: {}",
                scrub(&e.to_string(), &Target::env_secrets())
            )
        })?;
        Ok(Store { inner, shown })
    }

    fn failed(&self, what: &str, key: &str, e: &object_store::Error) -> anyhow::Error {
        anyhow!(
            "cannot {what} `{key}` in the bucket {}: {}",
            self.shown,
            scrub(&e.to_string(), &Target::env_secrets())
        )
    }

    /// The object's bytes (as received, not copied: a snapshot is the
    /// largest thing a bucket state holds) and version; `None` when it is
    /// not there.
    pub fn get(&self, key: &str) -> anyhow::Result<Option<(bytes::Bytes, Version)>> {
        let (store, path, this) = (self.inner.clone(), Path::from(key), self.clone());
        let key = key.to_string();
        block(async move {
            let got = match store.get(&path).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(this.failed("read", &key, &e)),
            };
            this.check_size(&key, got.meta.size)?;
            let version = Version {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got
                .bytes()
                .await
                .map_err(|e| this.failed("read", &key, &e))?;
            Ok(Some((bytes, version)))
        })
    }

    /// The object, copied to a private temporary file as it arrives (at
    /// the network's pace: the request's time limit is not spent on what
    /// reads it) and read by `consume` as it grows (`growing.rs`), told
    /// the object's size; `None`
    /// when it is not there. A snapshot of 1,000,000 media is hundreds of
    /// MB: never whole in memory, but where TMPDIR cannot take it.
    pub fn get_spooled<T>(
        &self,
        key: &str,
        consume: impl Fn(&mut dyn std::io::Read, u64) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        let Ok(spool) = tempfile::tempfile() else {
            return self.get_in_memory(key, consume);
        };
        let growing = Growing::new(spool);
        let (found_tx, found) = std::sync::mpsc::sync_channel(1);
        let (store, path, this) = (self.inner.clone(), Path::from(key), self.clone());
        let owned = key.to_string();
        let filling = Filling(growing.clone());
        let download = spawn(async move {
            let failed = |e: object_store::Error| this.failed("read", &owned, &e);
            let got = match store.get(&path).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => {
                    let _ = found_tx.send(Ok(None));
                    return;
                }
                Err(e) => {
                    let _ = found_tx.send(Err(failed(e)));
                    return;
                }
            };
            if let Err(e) = this.check_size(&owned, got.meta.size) {
                let _ = found_tx.send(Err(e));
                return;
            }
            let size = got.meta.size;
            let _ = found_tx.send(Ok(Some(size)));
            let mut chunks = got.into_stream();
            let mut received = 0;
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    // A local file: a short wait on this runtime.
                    Ok(chunk) => {
                        if filling.0.append(&chunk).is_err() {
                            return;
                        }
                        received += chunk.len() as u64;
                    }
                    Err(e) => return filling.0.finish(End::Failed(format!("{:#}", failed(e)))),
                }
            }
            // Cut short is a failed read, never a short snapshot (which
            // would read as damaged).
            filling.0.finish(if received == size {
                End::Complete
            } else {
                End::Failed(format!(
                    "cannot read `{owned}` in the bucket {}: it ended after {received} of its {size} bytes",
                    this.shown
                ))
            });
        })?;
        let size = match found.recv() {
            Err(_) => anyhow::bail!("the bucket client stopped"),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(None)) => return Ok(None),
            Ok(Ok(Some(size))) => size,
        };
        let consumed = consume(&mut growing.reader(), size);
        if consumed.is_err() && growing.ended().is_none() {
            // Refused before its end (not a snapshot): the rest is not read.
            download.abort();
            return consumed.map(Some);
        }
        match growing.wait_end() {
            End::Complete => consumed.map(Some),
            // What cut the object short, not what its reader made of it.
            End::Failed(why) => Err(anyhow!(why)),
            End::Unwritable(e) => {
                tracing::debug!("`{key}` is read into memory: {e}");
                // The part written gives its space back to TMPDIR first.
                drop(growing);
                self.get_in_memory(key, consume)
            }
        }
    }

    fn get_in_memory<T>(
        &self,
        key: &str,
        consume: impl FnOnce(&mut dyn std::io::Read, u64) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        match self.get(key)? {
            None => Ok(None),
            Some((bytes, _)) => consume(&mut &bytes[..], bytes.len() as u64).map(Some),
        }
    }

    /// Refuses an object larger than any state this xmeta writes.
    fn check_size(&self, key: &str, size: u64) -> anyhow::Result<()> {
        if size > MAX_OBJECT_BYTES {
            anyhow::bail!(
                "`{key}` in the bucket {} is {size} bytes, more than any state this xmeta writes; it was not read",
                self.shown,
            );
        }
        Ok(())
    }

    /// Writes the object unconditionally (journals and snapshots: each
    /// has a name of its own, written once).
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<Version> {
        match self.put_mode(key, bytes, PutMode::Overwrite)? {
            Put::Done(version) => Ok(version),
            Put::Conflict => Err(anyhow!("the bucket refused an unconditional write")),
        }
    }

    /// Writes the object unconditionally from `file` (a snapshot written
    /// to disk first): in parts of `PART_BYTES` when it is larger than
    /// one, at most `PARTS_IN_FLIGHT` read and sent at once, so that it is
    /// never in memory whole.
    pub fn put_file(&self, key: &str, file: std::fs::File) -> anyhow::Result<()> {
        let len = file.metadata()?.len();
        if len <= PART_BYTES {
            self.put(key, read_part(&file, 0, len)?)?;
            return Ok(());
        }
        let (store, path, this) = (self.inner.clone(), Path::from(key), self.clone());
        let key = key.to_string();
        block(async move {
            let failed = |e: object_store::Error| this.failed("write", &key, &e);
            let mut upload = store.put_multipart(&path).await.map_err(&failed)?;
            let mut sent = Ok(());
            let mut at = 0;
            // A few parts at once: one after another, each waited for a
            // round trip and the server's write of the one before.
            let mut in_flight = futures::stream::FuturesUnordered::new();
            while sent.is_ok() && (at < len || !in_flight.is_empty()) {
                if at < len && in_flight.len() < PARTS_IN_FLIGHT {
                    // A part of a local file: a short wait on this runtime.
                    match read_part(&file, at, len) {
                        Ok(part) => {
                            at += part.len() as u64;
                            in_flight.push(upload.put_part(part.into()));
                        }
                        Err(e) => sent = Err(e),
                    }
                } else if let Some(Err(e)) = in_flight.next().await {
                    sent = Err(failed(e));
                }
            }
            // Every part has ended before the upload is completed or aborted.
            while in_flight.next().await.is_some() {}
            let done = match sent {
                Ok(()) => upload.complete().await.map(drop).map_err(&failed),
                Err(e) => Err(e),
            };
            if done.is_err() {
                // The parts of an upload never completed are billed as
                // storage until removed.
                let _ = upload.abort().await;
            }
            done
        })
    }

    /// Creates the object only if it is not there (`If-None-Match: *`).
    pub fn create(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<Put> {
        self.put_mode(key, bytes, PutMode::Create)
    }

    /// Replaces the object only if it is still at `version` (`If-Match`).
    pub fn update(&self, key: &str, bytes: Vec<u8>, version: &Version) -> anyhow::Result<Put> {
        let mode = PutMode::Update(UpdateVersion {
            e_tag: version.e_tag.clone(),
            version: version.version.clone(),
        });
        self.put_mode(key, bytes, mode)
    }

    fn put_mode(&self, key: &str, bytes: Vec<u8>, mode: PutMode) -> anyhow::Result<Put> {
        let (store, path, this) = (self.inner.clone(), Path::from(key), self.clone());
        let key = key.to_string();
        block(async move {
            let options = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
            {
                Ok(done) => Ok(Put::Done(Version {
                    e_tag: done.e_tag,
                    version: done.version,
                })),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Ok(Put::Conflict),
                Err(e) => Err(this.failed("write", &key, &e)),
            }
        })
    }

    /// Deletes the object (one that is not there is fine).
    pub fn delete(&self, key: &str) -> anyhow::Result<()> {
        let (store, path, this) = (self.inner.clone(), Path::from(key), self.clone());
        let key = key.to_string();
        block(async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(this.failed("delete", &key, &e)),
            }
        })
    }

    /// Deletes many objects, in as few requests as the store allows
    /// (S3: 1,000 per `DeleteObjects`); ones not there are fine.
    pub fn delete_many(&self, keys: Vec<String>) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let (store, this) = (self.inner.clone(), self.clone());
        block(async move {
            let paths = futures::stream::iter(keys.into_iter().map(|k| Ok(Path::from(k)))).boxed();
            let mut deleted = store.delete_stream(paths);
            while let Some(outcome) = deleted.next().await {
                match outcome {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(this.failed("delete", "journals", &e)),
                }
            }
            Ok(())
        })
    }

    /// The keys under `prefix` (a folder: `prefix/…`), sorted.
    pub fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let (store, path, this) = (self.inner.clone(), Path::from(prefix), self.clone());
        let prefix = prefix.to_string();
        block(async move {
            let mut keys: Vec<String> = store
                .list(Some(&path))
                .map_ok(|meta| meta.location.to_string())
                .try_collect()
                .await
                .map_err(|e| this.failed("list", &prefix, &e))?;
            keys.sort();
            Ok(keys)
        })
    }

    /// The folders directly under `prefix`, by name.
    pub fn folders(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let (store, path, this) = (self.inner.clone(), Path::from(prefix), self.clone());
        let prefix = prefix.to_string();
        block(async move {
            let listed = store
                .list_with_delimiter(Some(&path))
                .await
                .map_err(|e| this.failed("list", &prefix, &e))?;
            Ok(listed
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect())
        })
    }
}

/// The part of `file` (`len` bytes long) from `at`, at most `PART_BYTES`.
fn read_part(file: &std::fs::File, at: u64, len: u64) -> anyhow::Result<Vec<u8>> {
    let mut part = vec![0; usize::try_from(len.saturating_sub(at).min(PART_BYTES))?];
    file.read_exact_at(&mut part, at)?;
    Ok(part)
}

/// `text` with every secret replaced: a store's error may quote what the
/// environment gave it.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "***");
    }
    crate::untrusted::neutralise(&out, 600)
}
