//! How a snapshot object is encoded, told by its name: `….json` (what
//! writers made before state format 2) is plain JSON, `….json.lz4` the
//! same JSON in an LZ4 frame. A snapshot is the one large object a bucket
//! state moves, at each writer's start and end: 37.0 MB of JSON at
//! 100,000 media, 10.0 MB compressed. Journals and the digests object
//! stay as they are: small, or mostly digests, which do not compress.
//!
//! LZ4, with the crate the history chunks already use (pure Rust, safe
//! code): `zstd -1` makes the same snapshot 5.2 MB, but it is C code to
//! compile.

use std::io::{self, Read, Write};

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

/// The ending of the name of a snapshot writers make now.
pub const COMPRESSED: &str = ".json.lz4";
/// The ending of a snapshot written before state format 2.
const PLAIN: &str = ".json";

/// The most bytes a snapshot may decompress to: the most any object may
/// be (`store.rs`).
pub const MAX_DECOMPRESSED: u64 = 4 * 1024 * 1024 * 1024;
/// And at most this many times its object's size (past a floor): a
/// snapshot compresses about 4 to 1 (its history chunks, compressed
/// already, far less), while LZ4 can expand a forged object 255 times,
/// so that a 16 MiB object could otherwise stand for 4 GiB of state
/// (its history held in memory).
const MAX_RATIO: u64 = 32;
const RATIO_FLOOR: u64 = 1024 * 1024;

/// How many bytes an object of `size` bytes may decompress to.
pub fn limit_for(size: u64) -> u64 {
    size.max(RATIO_FLOOR)
        .saturating_mul(MAX_RATIO)
        .min(MAX_DECOMPRESSED)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Lz4,
}

impl Encoding {
    /// A snapshot name's stem and encoding; `None` for any other ending.
    pub fn split(name: &str) -> Option<(&str, Encoding)> {
        match name.strip_suffix(COMPRESSED) {
            Some(stem) => Some((stem, Encoding::Lz4)),
            None => name.strip_suffix(PLAIN).map(|stem| (stem, Encoding::Plain)),
        }
    }

    /// The encoding of a snapshot named `name` (plain unless it says so).
    pub fn of(name: &str) -> Encoding {
        Encoding::split(name).map_or(Encoding::Plain, |(_, encoding)| encoding)
    }
}

/// A writer that compresses into `out`; `finish` ends the frame.
pub fn encoder<W: Write>(out: W) -> FrameEncoder<W> {
    // Linked blocks: each finds its matches in the one before (LZ4 looks
    // back 64 KiB at most), so small blocks, small buffers, lose nothing.
    // Each block's checksum is checked before its bytes are handed on, so
    // a damaged object is refused as such, never parsed as JSON that
    // happens to read; the content's checks the whole.
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Linked)
        .block_checksums(true)
        .content_checksum(true);
    FrameEncoder::with_frame_info(info, out)
}

/// The snapshot's JSON as read from `object`, decompressed as it comes
/// when it is compressed, and refused past `limit` bytes.
pub fn reader<'a>(object: impl Read + 'a, encoding: Encoding, limit: u64) -> Box<dyn Read + 'a> {
    match encoding {
        Encoding::Plain => Box::new(object),
        Encoding::Lz4 => Box::new(Bounded {
            inner: FrameDecoder::new(io::BufReader::with_capacity(1 << 16, object)),
            left: limit,
            limit,
        }),
    }
}

/// Fails a read that goes past `limit` bytes in all.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("it does not decompress: {e}")))?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => Err(io::Error::other(format!(
                "it decompresses to more than {} bytes, more than a snapshot of its size that xmeta writes",
                self.limit
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = encoder(Vec::new());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn names_tell_the_encoding() {
        let stem = "snapshots/00000000000000000042-0123456789abcdef";
        assert_eq!(
            Encoding::split(&format!("{stem}.json.lz4")),
            Some((stem, Encoding::Lz4))
        );
        assert_eq!(
            Encoding::split(&format!("{stem}.json")),
            Some((stem, Encoding::Plain))
        );
        assert_eq!(Encoding::split(&format!("{stem}.lz4")), None);
        assert_eq!(Encoding::split(&format!("{stem}.digests")), None);
    }

    #[test]
    fn what_is_compressed_reads_back_and_the_bound_holds() {
        let json = br#"{"records":[]}"#.repeat(10_000);
        let object = compress(&json);
        assert!(object.len() * 20 < json.len(), "{} bytes", object.len());
        let mut back = Vec::new();
        reader(&object[..], Encoding::Lz4, json.len() as u64)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, json);
        let e = reader(&object[..], Encoding::Lz4, json.len() as u64 - 1)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "decompresses to more than {} bytes",
                json.len() - 1
            )),
            "{e}"
        );
    }

    #[test]
    fn a_damaged_frame_is_refused() {
        let json = br#"{"records":[["1",{"metadata":{}}]]}"#.repeat(100);
        let mut object = compress(&json);
        let middle = object.len() / 2;
        object[middle] ^= 0x55;
        let e = reader(&object[..], Encoding::Lz4, MAX_DECOMPRESSED)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().starts_with("it does not decompress: "), "{e}");
    }

    #[test]
    fn the_bound_follows_the_objects_size() {
        assert_eq!(limit_for(0), 32 << 20);
        assert_eq!(limit_for(10 << 20), 320 << 20);
        assert_eq!(limit_for(1 << 40), MAX_DECOMPRESSED);
        assert_eq!(limit_for(u64::MAX), MAX_DECOMPRESSED);
    }
}
