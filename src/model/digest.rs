//! The digest of a metadata: the SHA-256 of its JSON. Manifests, plans and
//! every state backend compare media by it.

use sha2::{Digest as _, Sha256};

use crate::model::Metadata;

/// The SHA-256 of a metadata's JSON, as records store it (`sha256:…`):
/// 32 bytes, so that a plan can hold one per recorded media cheaply and
/// read a record in full only when its digest differs from the manifest's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(pub(crate) [u8; 32]);

impl Digest {
    pub fn of(metadata: &Metadata) -> Digest {
        Digest::of_json(&serde_json::to_vec(metadata).unwrap_or_default())
    }

    pub fn of_json(json: &[u8]) -> Digest {
        Digest(Sha256::digest(json).into())
    }

    /// The 32 bytes, as the sled state's digest index keeps them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A digest as records state it (`sha256:<hex>`), if it is one.
    pub fn parse(stated: &str) -> Option<Digest> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(stated.strip_prefix("sha256:")?, &mut bytes).ok()?;
        Some(Digest(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Digest> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }
}

/// `sha256:<hex>`, as records store it.
impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}
