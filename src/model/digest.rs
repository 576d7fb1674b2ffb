//! The digest of a metadata: the SHA-256 of its JSON. Manifests, plans and
//! every state backend compare media by it.

use sha2::{Digest as _, Sha256};

use crate::model::Metadata;

/// How records state a digest: this, then 64 lower-case hex digits.
const PREFIX: &[u8] = b"sha256:";
/// The prefix and 64 hex digits.
const STATED_LEN: usize = PREFIX.len() + 64;

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

    /// Whether `stated` is this digest as records state it, byte for
    /// byte (lower-case hex, as `Display` writes it): no allocation and no
    /// hex decoding, for a scan that checks every record's digest.
    pub fn is_stated_as(&self, stated: &str) -> bool {
        self.stated_text() == *stated.as_bytes()
    }

    /// `sha256:<lower-case hex>`, on the stack: what `Display` writes and
    /// `is_stated_as` compares.
    fn stated_text(&self) -> [u8; STATED_LEN] {
        let mut text = [0u8; STATED_LEN];
        text[..PREFIX.len()].copy_from_slice(PREFIX);
        // 32 bytes always fit the 64 places left.
        let _ = hex::encode_to_slice(self.0, &mut text[PREFIX.len()..]);
        text
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Digest> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }
}

/// `sha256:<hex>`, as records store it.
impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.stated_text();
        // ASCII by construction.
        f.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::Digest;

    /// Records state digests as `Display` writes them, and only so: the
    /// scan of every record and the full decode refuse the same ones.
    #[test]
    fn a_digest_is_stated_only_as_display_writes_it() {
        let digest = Digest::of_json(b"{}");
        let stated = digest.to_string();
        assert!(digest.is_stated_as(&stated));
        for other in [
            stated.to_uppercase().replace("SHA256", "sha256"),
            stated.trim_start_matches("sha256:").to_string(),
            stated[..stated.len() - 1].to_string(),
            format!("{stated}0"),
            Digest::of_json(b"[]").to_string(),
            String::new(),
        ] {
            assert!(!digest.is_stated_as(&other), "{other}");
        }
    }
}
