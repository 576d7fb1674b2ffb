//! A state's digests, in a file or object beside what they are the
//! digests of: what a plan needs of the state (a no-op plan needs nothing
//! else), 52 bytes a media at most. A bucket state writes one beside each
//! snapshot (a plan reads it; the snapshot is read only when a record or
//! the history is asked for, see `bucket/lazy.rs`, and then it must state
//! the same digests); a sled state's writer writes one as it closes (see
//! `local/digest_file.rs`), so a plan need not open the database.
//!
//! Layout (binary: an index beside the records, as sled's digest index is
//! beside its records): `MAGIC`, the serial (u64, big-endian), the
//! lineage's and then the snapshot's name's length (u16) and bytes (a sled
//! state's "snapshot" is `db`), the count (u64), then per media in ID
//! order: its ID's digit count (u8), the digits, and the 32-byte digest.
//! Nothing may follow.

use std::io::{ErrorKind, Read, Write};

use anyhow::{anyhow, bail};

use crate::model::{Digest, Digests, MediaId};

/// The object's first bytes: what it is, and its layout's version.
const MAGIC: &[u8] = b"xmeta snapshot digests 1\n";

/// What the digests are of: the state's lineage and serial, and the
/// snapshot (its name in a bucket; `db` for a sled state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Of {
    pub lineage: String,
    pub serial: u64,
    pub snapshot: String,
}

/// The object of `of` holding `digests`, as bytes.
pub fn encode(
    lineage: &str,
    serial: u64,
    snapshot: &str,
    digests: &Digests,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(MAGIC.len() + 20 + lineage.len() + digests.len() * 52);
    let of = Of {
        lineage: lineage.into(),
        serial,
        snapshot: snapshot.into(),
    };
    write_to(&mut out, &of, digests.len() as u64, |push| {
        digests
            .iter()
            .try_for_each(|(id, digest)| push(*id, digest))
    })?;
    Ok(out)
}

/// Writes the object of `of`: `each` hands its `count` digests, in ID
/// order, to the function it is given (streamed: 52 MB at 1,000,000
/// media). Fewer or more than `count`, or out of order, is an error.
pub fn write_to(
    out: &mut dyn Write,
    of: &Of,
    count: u64,
    each: impl FnOnce(&mut dyn FnMut(MediaId, &Digest) -> anyhow::Result<()>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&of.serial.to_be_bytes())?;
    for text in [&of.lineage, &of.snapshot] {
        let len = u16::try_from(text.len()).map_err(|_| anyhow!("a name too long"))?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(text.as_bytes())?;
    }
    out.write_all(&count.to_be_bytes())?;
    let mut written = 0u64;
    let mut last: Option<MediaId> = None;
    let mut buf = [0u8; 19];
    each(&mut |id, digest| {
        if last.is_some_and(|last| last >= id) {
            bail!("media {id} came out of ID order");
        }
        last = Some(id);
        written += 1;
        let digits = id.as_str(&mut buf);
        out.write_all(&[digits.len() as u8])?;
        out.write_all(digits.as_bytes())?;
        out.write_all(digest.as_bytes())?;
        Ok(())
    })?;
    if written != count {
        bail!("{written} digests written where {count} were announced");
    }
    Ok(())
}

/// The digests in `bytes`, which must be the object of snapshot
/// `snapshot` of `lineage` at `serial`: anything else (another
/// snapshot's, cut short, an ID out of order or not an ID, bytes after
/// the last) is refused.
pub fn decode(bytes: &[u8], lineage: &str, serial: u64, snapshot: &str) -> anyhow::Result<Digests> {
    let of = Of {
        lineage: lineage.into(),
        serial,
        snapshot: snapshot.into(),
    };
    let mut digests = crate::model::DigestsBuilder::default();
    read_from(bytes, &of, |id, digest| {
        digests.push(id, *digest);
        Ok(())
    })?;
    Ok(digests.finish())
}

/// What the object in `input` says it is of (its first bytes only).
pub fn of(input: &mut impl Read) -> anyhow::Result<Of> {
    let mut magic = [0u8; MAGIC.len()];
    take(input, &mut magic)?;
    if magic != MAGIC {
        bail!("the snapshot's digests object is not one");
    }
    let serial = u64::from_be_bytes(array(input)?);
    let mut texts = [Vec::new(), Vec::new()];
    for text in &mut texts {
        let len = u16::from_be_bytes(array(input)?);
        text.resize(usize::from(len), 0);
        take(input, text)?;
    }
    let [lineage, snapshot] = texts;
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| anyhow!("the snapshot's digests object is not one"))
    };
    Ok(Of {
        lineage: text(lineage)?,
        serial,
        snapshot: text(snapshot)?,
    })
}

/// Hands each digest of the object in `input`, which must be of `of`, to
/// `visit` in ID order. Refused as `decode` refuses; `visit` may have seen
/// some digests by then.
pub fn read_from(
    mut input: impl Read,
    of: &Of,
    visit: impl FnMut(MediaId, &Digest) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if self::of(&mut input)? != *of {
        bail!("the snapshot's digests object is of another snapshot");
    }
    read_body(input, visit)
}

/// `read_from` after `of` read the object's first bytes, and the caller
/// judged them.
pub fn read_body(
    mut input: impl Read,
    mut visit: impl FnMut(MediaId, &Digest) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let count = u64::from_be_bytes(array(&mut input)?);
    let mut last: Option<MediaId> = None;
    let mut digits = [0u8; 255];
    let mut digest = [0u8; 32];
    for _ in 0..count {
        let [len] = array(&mut input)?;
        let digits = &mut digits[..usize::from(len)];
        take(&mut input, digits)?;
        let id = std::str::from_utf8(digits)
            .ok()
            .and_then(MediaId::parse)
            .ok_or_else(|| anyhow!("the snapshot's digests object holds an ID that is not one"))?;
        if last.is_some_and(|last| last >= id) {
            bail!("the snapshot's digests object is out of ID order at media {id}");
        }
        last = Some(id);
        take(&mut input, &mut digest)?;
        visit(id, &Digest(digest))?;
    }
    if input.read(&mut [0u8; 1])? != 0 {
        bail!("the snapshot's digests object has bytes after its last media");
    }
    Ok(())
}

/// Exactly `buf.len()` bytes; a count that lies ends here, when the bytes
/// run out, never in an allocation of its size.
fn take(input: &mut impl Read, buf: &mut [u8]) -> anyhow::Result<()> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => anyhow!("the snapshot's digests object is cut short"),
        _ => e.into(),
    })
}

fn array<const N: usize>(input: &mut impl Read) -> anyhow::Result<[u8; N]> {
    let mut out = [0u8; N];
    take(input, &mut out)?;
    Ok(out)
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
