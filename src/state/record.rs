//! What the state keeps per media: the last-confirmed fields, when they were
//! applied, and a digest that catches a damaged record.

use serde::{Deserialize, Serialize};

pub use crate::model::Digest;
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
        Digest::of(&self.metadata).is_stated_as(&self.digest)
    }
}

/// A record as stored: the metadata's JSON kept raw, so the digest is
/// checked over the very bytes on disk without re-encoding them. The
/// fields' order and the compact form are what PostgreSQL reads to work
/// out a record's digest (`postgres::schema`): a record in another form
/// is sent whole and checked by `Digest::stated`, more slowly.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    metadata: &'a serde_json::value::RawValue,
    applied_at: Timestamp,
    digest: &'a str,
}

impl Digest {
    /// The digest of a stored record, checked against its metadata's bytes
    /// as `decode` checks it, but without decoding the metadata: a damaged
    /// record is refused even when a plan never reads it in full.
    pub fn stated(bytes: &[u8]) -> Result<Digest, RecordError> {
        let stored: Stored = serde_json::from_slice(bytes)?;
        let digest = Digest::of_json(stored.metadata.get().as_bytes());
        if digest.is_stated_as(stored.digest) {
            Ok(digest)
        } else {
            Err(RecordError::Digest)
        }
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
        if !Digest::of_json(raw.as_bytes()).is_stated_as(stored.digest) {
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

pub fn digest_of(metadata: &Metadata) -> String {
    Digest::of(metadata).to_string()
}

#[cfg(test)]
mod tests {
    use super::{Digest, Record};
    use crate::model::{AltText, FieldValue, Metadata};
    use crate::state::error::RecordError;

    /// The scan of every record's digest (`Digest::stated`) and the full
    /// decode refuse the same records: one whose stated digest is the
    /// right one in upper case, or another media's, is refused by both.
    #[test]
    fn the_digest_scan_and_the_decode_refuse_the_same_records() {
        let mut metadata = Metadata::default();
        metadata.insert(FieldValue::AltText(AltText {
            text: "A lamp".into(),
        }));
        let record = Record::new(metadata);
        let bytes = record.encode().unwrap();
        assert_eq!(
            Digest::stated(&bytes).unwrap(),
            Digest::of(&record.metadata)
        );
        assert_eq!(Record::decode(&bytes).unwrap(), record);
        let text = String::from_utf8(bytes).unwrap();
        let hex = record.digest.trim_start_matches("sha256:");
        let other = Record::new(Metadata::default()).digest;
        for stated in [format!("sha256:{}", hex.to_uppercase()), other] {
            let damaged = text.replace(&record.digest, &stated);
            assert_ne!(damaged, text);
            assert!(matches!(
                Digest::stated(damaged.as_bytes()),
                Err(RecordError::Digest)
            ));
            assert!(matches!(
                Record::decode(damaged.as_bytes()),
                Err(RecordError::Digest)
            ));
        }
    }
}
