//! What the state keeps per media: the last-confirmed fields, when they were
//! applied, and a digest that catches a damaged record.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Metadata;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub metadata: Metadata,
    /// RFC 3339, UTC.
    pub applied_at: String,
    /// `sha256:` of the metadata's JSON.
    pub digest: String,
}

impl Record {
    pub fn new(metadata: Metadata) -> Record {
        let digest = digest_of(&metadata);
        Record {
            metadata,
            applied_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            digest,
        }
    }

    pub fn is_intact(&self) -> bool {
        self.digest == digest_of(&self.metadata)
    }
}

pub fn digest_of(metadata: &Metadata) -> String {
    let json = serde_json::to_vec(metadata).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(json)))
}
