//! A small file beside the database that remembers the lineage, and the
//! serial reached by the last writer to close cleanly. sled recovers a
//! damaged log by dropping what it cannot read — silently, down to an empty
//! database — so the head is what lets xmeta notice that state went missing
//! instead of starting over and re-sending (and re-billing) everything.

use std::path::Path;

use anyhow::bail;
use serde::{Deserialize, Serialize};

pub const HEAD_FILE: &str = "head.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub lineage: String,
    pub serial: u64,
    /// The token of the digest file (`digest_file.rs`) written with this
    /// head: a reader takes the file only while the head names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<String>,
}

pub fn read(dir: &Path) -> anyhow::Result<Option<Head>> {
    match crate::intake::read_own(&dir.join(HEAD_FILE), 64 * 1024) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(head) => Ok(Some(head)),
            Err(e) => bail!("`{HEAD_FILE}` is unreadable ({e})"),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => bail!("cannot read `{HEAD_FILE}`: {e}"),
    }
}

pub fn write(dir: &Path, head: &Head) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(head).unwrap_or_default();
    crate::fs_util::write_private(&dir.join(HEAD_FILE), &bytes)
}

/// The database must still be the one the head describes, at least as far
/// along as the last clean close left it.
pub fn check(head: &Head, lineage: Option<&str>, serial: u64) -> anyhow::Result<()> {
    let Some(lineage) = lineage else {
        bail!(
            "the database is empty, but it held state lineage `{}` up to serial {}",
            head.lineage,
            head.serial
        );
    };
    if lineage != head.lineage {
        bail!(
            "the database has lineage `{lineage}`, but `{HEAD_FILE}` says `{}`",
            head.lineage
        );
    }
    if serial < head.serial {
        bail!(
            "the database went back to serial {serial}; it had reached {}",
            head.serial
        );
    }
    Ok(())
}
