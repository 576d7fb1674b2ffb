//! What the state keeps per media: the last-confirmed fields, when they were
//! applied, and a digest that catches a damaged record.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::model::Metadata;
use crate::state::error::RecordError;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub metadata: Metadata,
    pub applied_at: Timestamp,
    /// `sha256:` of the metadata's JSON.
    pub digest: String,
}

impl Record {
    #[must_use]
    pub fn new(metadata: Metadata) -> Record {
        let digest = digest_of(&metadata);
        Record {
            metadata,
            applied_at: Timestamp::now(),
            digest,
        }
    }

    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.digest == digest_of(&self.metadata)
    }
}

/// A record as stored: the metadata's JSON kept raw, so the digest is
/// checked over the very bytes on disk without re-encoding them.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    metadata: &'a serde_json::value::RawValue,
    applied_at: Timestamp,
    digest: &'a str,
}

/// The SHA-256 of a metadata's JSON, as records store it (`sha256:…`):
/// 32 bytes, so that a plan can hold one per recorded media cheaply and
/// read a record in full only when its digest differs from the manifest's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(metadata: &Metadata) -> Digest {
        Digest::of_json(&serde_json::to_vec(metadata).unwrap_or_default())
    }

    fn of_json(json: &[u8]) -> Digest {
        Digest(Sha256::digest(json).into())
    }

    /// The 32 bytes, as the sled state's digest index keeps them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Digest> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }

    /// The digest of a stored record, checked against its metadata's bytes
    /// as `decode` checks it, but without decoding the metadata: a damaged
    /// record is refused even when a plan never reads it in full.
    pub fn stated(bytes: &[u8]) -> Result<Digest, RecordError> {
        let stored: Stored = serde_json::from_slice(bytes)?;
        let digest = Digest::of_json(stored.metadata.get().as_bytes());
        let mut stated = [0u8; 32];
        stored
            .digest
            .strip_prefix("sha256:")
            .and_then(|hex| hex::decode_to_slice(hex, &mut stated).ok())
            .filter(|()| stated == digest.0)
            .ok_or(RecordError::Digest)?;
        Ok(digest)
    }
}

impl Record {
    pub fn encode(&self) -> serde_json::Result<Vec<u8>> {
        let json = serde_json::to_string(&self.metadata)?;
        let raw = serde_json::value::RawValue::from_string(json)?;
        serde_json::to_vec(&Stored {
            metadata: &raw,
            applied_at: self.applied_at,
            digest: &self.digest,
        })
    }

    /// Reads a stored record; `Err` says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        let stored: Stored = serde_json::from_slice(bytes)?;
        let raw = stored.metadata.get();
        if digest_bytes(raw.as_bytes()) != stored.digest {
            return Err(RecordError::Digest);
        }
        Ok(Record {
            metadata: serde_json::from_str(raw)?,
            applied_at: stored.applied_at,
            digest: stored.digest.to_string(),
        })
    }
}

/// Records of `(media, metadata)`, encoded on every core (a first adopt
/// encodes 100,000), each with its digest.
pub fn encode_many(
    recordings: &[super::Recording],
) -> anyhow::Result<Vec<(crate::model::MediaId, Digest, Vec<u8>)>> {
    let parts = crate::parallel::map_chunks(recordings, |part| {
        part.iter()
            .map(|r| {
                let digest = Digest::of(&r.after);
                let record = Record {
                    metadata: r.after.clone(),
                    applied_at: Timestamp::now(),
                    digest: digest.to_string(),
                };
                Ok((r.id, digest, record.encode()?))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    });
    let mut out = Vec::with_capacity(recordings.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// `sha256:<hex>`, as records store it.
impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

fn digest_bytes(json: &[u8]) -> String {
    Digest::of_json(json).to_string()
}

pub fn digest_of(metadata: &Metadata) -> String {
    Digest::of(metadata).to_string()
}
