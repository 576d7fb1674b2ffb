//! A snapshot's digests, in an object beside it: what a plan needs of the
//! state (a no-op plan needs nothing else), 52 bytes a media where the
//! snapshot takes about 370. A plan reads this; the snapshot is read only
//! when a record or the history is asked for (see `lazy.rs`), and then
//! it must state the same digests.
//!
//! Layout (binary: this is an index beside the JSON snapshot, as sled's
//! digest index is beside its records):
//! `MAGIC`, the serial (u64, big-endian), the lineage's and then the
//! snapshot's name's length (u16) and bytes, the count (u64), then per
//! media in ID order: its ID's digit count (u8), the digits, and the
//! 32-byte digest. Nothing may follow.

use anyhow::{anyhow, bail};

use crate::model::{Digest, Digests, MediaId};

/// The object's first bytes: what it is, and its layout's version.
const MAGIC: &[u8] = b"xmeta snapshot digests 1\n";

/// The name of the digests object of snapshot `snapshot` (a name
/// `is_snapshot_name` accepts): beside it, never named by the head.
pub fn name_of(snapshot: &str) -> String {
    let stem = super::compression::Encoding::split(snapshot).map_or(snapshot, |(stem, _)| stem);
    format!("{stem}.digests")
}

/// The object for snapshot `snapshot` of `lineage` at `serial`.
pub fn encode(
    lineage: &str,
    serial: u64,
    snapshot: &str,
    digests: &Digests,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(MAGIC.len() + 20 + lineage.len() + digests.len() * 52);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&serial.to_be_bytes());
    for text in [lineage, snapshot] {
        let len = u16::try_from(text.len()).map_err(|_| anyhow!("a name too long"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(&(digests.len() as u64).to_be_bytes());
    let mut buf = [0u8; 19];
    for (id, digest) in digests.iter() {
        let digits = id.as_str(&mut buf);
        out.push(digits.len() as u8);
        out.extend_from_slice(digits.as_bytes());
        out.extend_from_slice(digest.as_bytes());
    }
    Ok(out)
}

/// The digests in `bytes`, which must be the object of snapshot
/// `snapshot` of `lineage` at `serial`: anything else (another
/// snapshot's, cut short, an ID out of order or not an ID, bytes after
/// the last) is refused.
pub fn decode(bytes: &[u8], lineage: &str, serial: u64, snapshot: &str) -> anyhow::Result<Digests> {
    let mut rest = Cursor(bytes);
    if rest.take(MAGIC.len())? != MAGIC {
        bail!("the snapshot's digests object is not one");
    }
    let stated_serial = u64::from_be_bytes(rest.array()?);
    let lineage_len = u16::from_be_bytes(rest.array()?);
    let stated_lineage = rest.take(usize::from(lineage_len))?;
    let snapshot_len = u16::from_be_bytes(rest.array()?);
    let stated_snapshot = rest.take(usize::from(snapshot_len))?;
    if stated_serial != serial
        || stated_lineage != lineage.as_bytes()
        || stated_snapshot != snapshot.as_bytes()
    {
        bail!("the snapshot's digests object is of another snapshot");
    }
    let count = u64::from_be_bytes(rest.array()?);
    let mut digests = crate::model::DigestsBuilder::default();
    let mut last: Option<MediaId> = None;
    for _ in 0..count {
        let len = rest.take(1)?[0];
        let id = std::str::from_utf8(rest.take(usize::from(len))?)
            .ok()
            .and_then(MediaId::parse)
            .ok_or_else(|| anyhow!("the snapshot's digests object holds an ID that is not one"))?;
        if last.is_some_and(|last| last >= id) {
            bail!("the snapshot's digests object is out of ID order at media {id}");
        }
        last = Some(id);
        let digest = Digest::from_bytes(rest.take(32)?).expect("32 bytes taken");
        digests.push(id, digest);
    }
    if !rest.0.is_empty() {
        bail!("the snapshot's digests object has bytes after its last media");
    }
    Ok(digests.finish())
}

/// The bytes not yet read; each take is checked against what is left, so
/// a count that lies ends in an error, never an allocation of its size.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("the snapshot's digests object is cut short");
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(ids: &[&str]) -> Digests {
        ids.iter()
            .enumerate()
            .map(|(n, id)| {
                (
                    MediaId::parse(id).unwrap(),
                    Digest::of_json(n.to_string().as_bytes()),
                )
            })
            .collect()
    }

    const SNAPSHOT: &str = "snapshots/00000000000000000009-0123456789abcdef.json";

    #[test]
    fn digests_read_back_as_written() {
        let all = digests(&["7", "0042", "1000", "1880000000000000000"]);
        let object = encode("lineage-1", 9, SNAPSHOT, &all).unwrap();
        assert_eq!(decode(&object, "lineage-1", 9, SNAPSHOT).unwrap(), all);
        let none = Digests::default();
        let object = encode("lineage-1", 0, SNAPSHOT, &none).unwrap();
        assert_eq!(decode(&object, "lineage-1", 0, SNAPSHOT).unwrap(), none);
        for snapshot in [SNAPSHOT, &format!("{SNAPSHOT}.lz4")] {
            assert_eq!(
                name_of(snapshot),
                "snapshots/00000000000000000009-0123456789abcdef.digests"
            );
        }
    }

    /// Every way the object can be wrong is an error naming it; a count
    /// of 2^64-1 is refused when the bytes run out, not allocated.
    #[test]
    fn a_wrong_object_is_refused() {
        let all = digests(&["7", "1000"]);
        let object = encode("lineage-1", 9, SNAPSHOT, &all).unwrap();
        let error = |bytes: &[u8], lineage: &str, serial: u64| {
            format!(
                "{:#}",
                decode(bytes, lineage, serial, SNAPSHOT).unwrap_err()
            )
        };
        // The same lineage and serial, another snapshot (a losing
        // writer's, left behind).
        let other = SNAPSHOT.replace("0123", "3210");
        assert_eq!(
            format!("{:#}", decode(&object, "lineage-1", 9, &other).unwrap_err()),
            "the snapshot's digests object is of another snapshot"
        );
        assert_eq!(
            error(&object, "lineage-2", 9),
            "the snapshot's digests object is of another snapshot"
        );
        assert_eq!(
            error(&object, "lineage-1", 8),
            "the snapshot's digests object is of another snapshot"
        );
        assert_eq!(
            error(&object[..object.len() - 1], "lineage-1", 9),
            "the snapshot's digests object is cut short"
        );
        let mut longer = object.clone();
        longer.push(0);
        assert_eq!(
            error(&longer, "lineage-1", 9),
            "the snapshot's digests object has bytes after its last media"
        );
        assert_eq!(
            error(b"{\"records\":[]}", "lineage-1", 9),
            "the snapshot's digests object is cut short"
        );
        let count_at = MAGIC.len() + 8 + 2 + "lineage-1".len() + 2 + SNAPSHOT.len();
        let mut lying = object.clone();
        lying[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            error(&lying, "lineage-1", 9),
            "the snapshot's digests object is cut short"
        );
        // The two media swapped: "1000" first.
        let reversed = encode("lineage-1", 9, SNAPSHOT, &all).unwrap();
        let first = count_at + 8;
        let mut swapped = reversed[..first].to_vec();
        swapped.extend_from_slice(&reversed[first + 1 + 1 + 32..]);
        swapped.extend_from_slice(&reversed[first..first + 1 + 1 + 32]);
        assert_eq!(
            error(&swapped, "lineage-1", 9),
            "the snapshot's digests object is out of ID order at media 7"
        );
        let mut not_an_id = object.clone();
        not_an_id[first + 1] = b'x';
        assert_eq!(
            error(&not_an_id, "lineage-1", 9),
            "the snapshot's digests object holds an ID that is not one"
        );
    }
}
