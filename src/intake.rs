//! The one reader of files from places users control: manifests (at start
//! and on every watch event), `xmeta.yaml` and `--config`, `state import`,
//! `apply --plan` and token files. Before anything is read it refuses, by
//! name, a symlink that resolves outside the given roots, and anything that
//! is not a regular file (a FIFO would hang a reader, `/dev/zero` would fill
//! memory); it then reads at most a bound of bytes. Watch reads through
//! `read_settled`, which waits until a file stops changing and reads it
//! whole, so a save still being written is never taken for the new
//! version.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Why a file was not read. Shown after the file's name.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is a symlink to `{}`, outside the given paths; it was not read", crate::untrusted::neutralise(&.0.display().to_string(), 4096))]
    Outside(PathBuf),
    #[error("it is {0}, not a regular file; it was not read")]
    NotRegular(&'static str),
    #[error("it is {bytes} bytes, over the limit of {limit} bytes; it was not read")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("it kept changing for {0:?}; it is read once it has been left alone")]
    Unsettled(Duration),
}

/// Where files may resolve to: under one of the directories given, or to
/// one of the files named directly (a file the user named is theirs to
/// point anywhere; a link found inside a directory is not).
#[derive(Clone, Debug, Default)]
pub struct Roots {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl Roots {
    /// The canonical forms of `paths`; those that do not resolve are left
    /// out (reading under them fails on its own).
    pub fn new(paths: &[PathBuf]) -> Roots {
        let mut roots = Roots::default();
        for path in paths {
            let Ok(canonical) = std::fs::canonicalize(path) else {
                continue;
            };
            if canonical.is_dir() {
                roots.dirs.push(canonical);
            } else {
                roots.files.push(canonical);
            }
        }
        roots
    }

    /// Refuses `path` if it resolves outside the roots.
    pub fn admit(&self, path: &Path) -> Result<(), Refusal> {
        let target = std::fs::canonicalize(path)?;
        let inside =
            self.dirs.iter().any(|d| target.starts_with(d)) || self.files.contains(&target);
        if inside {
            Ok(())
        } else {
            Err(Refusal::Outside(target))
        }
    }
}

/// What a file that is not a regular one is, as refusals name it (a
/// symlink only where links are not followed: `fs_util`'s writes).
pub fn kind_name(kind: std::fs::FileType) -> Option<&'static str> {
    Some(if kind.is_file() {
        return None;
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    })
}

fn kind_of(meta: &Metadata) -> Option<&'static str> {
    kind_name(meta.file_type())
}

/// A regular file, open, with its metadata (for the token file's owner
/// and mode checks).
pub struct Opened {
    pub file: File,
    pub meta: Metadata,
    limit: u64,
}

/// Opens `path` for reading: admitted by `roots` (none: named directly),
/// a regular file both before it is opened and as opened (it may be
/// swapped between the two), and no larger than `limit` bytes. The open
/// never blocks: a FIFO put in its place is seen and refused.
pub fn open(path: &Path, roots: Option<&Roots>, limit: u64) -> Result<Opened, Refusal> {
    if let Some(roots) = roots {
        roots.admit(path)?;
    }
    let check = |meta: &Metadata| match kind_of(meta) {
        Some(kind) => Err(Refusal::NotRegular(kind)),
        None if meta.len() > limit => Err(Refusal::TooLarge {
            bytes: meta.len(),
            limit,
        }),
        None => Ok(()),
    };
    check(&std::fs::metadata(path)?)?;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    check(&meta)?;
    Ok(Opened { file, meta, limit })
}

impl Opened {
    /// The whole file, at most the limit (it may grow while it is read).
    pub fn read(self) -> Result<Vec<u8>, Refusal> {
        let mut bytes = Vec::with_capacity(self.meta.len() as usize);
        self.file.take(self.limit + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > self.limit {
            return Err(Refusal::TooLarge {
                bytes: bytes.len() as u64,
                limit: self.limit,
            });
        }
        Ok(bytes)
    }
}

/// A file read as a stream, at most its limit: reading past it is an
/// error (`Refusal::TooLarge`'s words), as `Opened::read` refuses it.
pub struct Stream {
    file: std::io::Take<File>,
    read: u64,
    limit: u64,
}

impl Opened {
    /// The file as a stream (a saved plan of 1,000,000 media is 880 MB).
    pub fn stream(self) -> Stream {
        Stream {
            file: self.file.take(self.limit + 1),
            read: 0,
            limit: self.limit,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            let refusal = Refusal::TooLarge {
                bytes: self.read,
                limit: self.limit,
            };
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                refusal.to_string(),
            ));
        }
        Ok(n)
    }
}

/// Opens one of xmeta's own files in a state directory (the lock, the
/// head, the moved mark) with `options`: never through a symlink (a link
/// planted in a shared or checked-out `state/` would let a writer write or
/// truncate what it points to), never a FIFO or device, never blocking.
pub fn open_own(path: &Path, options: &mut std::fs::OpenOptions) -> std::io::Result<File> {
    let flags =
        rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    let file = options
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                own_refusal(path, "a symlink")
            } else {
                e
            }
        })?;
    match kind_name(file.metadata()?.file_type()) {
        None => Ok(file),
        Some(kind) => Err(own_refusal(path, kind)),
    }
}

fn own_refusal(path: &Path, kind: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "`{}` is {kind}, not a regular file; xmeta never reads or writes its own files through one (remove it)",
            crate::untrusted::neutralise(&path.display().to_string(), 4096)
        ),
    )
}

/// The whole of one of xmeta's own files (`open_own`), at most `limit`
/// bytes.
pub fn read_own(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = open_own(path, std::fs::OpenOptions::new().read(true))?;
    let meta = file.metadata()?;
    Opened { file, meta, limit }.read().map_err(|e| match e {
        Refusal::Io(e) => e,
        other => std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("`{}`: {other}", path.display()),
        ),
    })
}

/// `open` then `read`.
pub fn read(path: &Path, roots: Option<&Roots>, limit: u64) -> Result<Vec<u8>, Refusal> {
    open(path, roots, limit)?.read()
}

/// How one command reads the files under its PATHs: within their roots,
/// and for watch only once they have settled.
#[derive(Clone, Debug, Default)]
pub struct Reader {
    roots: Roots,
    /// Quiet time and bound of `read_settled`.
    settle: Option<(Duration, Duration)>,
}

impl Reader {
    /// Reads files that resolve under `paths` (or are named by them).
    pub fn within(paths: &[PathBuf]) -> Reader {
        Reader {
            roots: Roots::new(paths),
            settle: None,
        }
    }

    /// Reads each file only once it has been left alone for `quiet`.
    #[must_use]
    pub fn settled(self, quiet: Duration, bound: Duration) -> Reader {
        Reader {
            settle: Some((quiet, bound)),
            ..self
        }
    }

    pub fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, Refusal> {
        match self.settle {
            Some((quiet, bound)) => read_settled(path, Some(&self.roots), limit, quiet, bound),
            None => read(path, Some(&self.roots), limit),
        }
    }
}

/// What changes when a file is written: its identity, size and times.
/// The change time cannot be set back by a writer (`touch -d`, `cp -p`).
fn fingerprint(meta: &Metadata) -> (u64, u64, u64, i64, i64, i64, i64) {
    (
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

/// How long ago the file last changed (zero for a change time in the
/// future, which is waited out like a fresh change).
fn age(meta: &Metadata) -> Duration {
    let changed = u64::try_from(meta.ctime()).map_or(SystemTime::UNIX_EPOCH, |secs| {
        SystemTime::UNIX_EPOCH + Duration::new(secs, u32::try_from(meta.ctime_nsec()).unwrap_or(0))
    });
    SystemTime::now()
        .duration_since(changed)
        .unwrap_or(Duration::ZERO)
}

/// `read`, once the file has settled: unchanged for `quiet`, and the same
/// file of the same size and times after it was read as before, so a file
/// written while it is read is read again. One that is still changing
/// after `bound` is refused (watch reports it and reads it at its next
/// event).
pub fn read_settled(
    path: &Path,
    roots: Option<&Roots>,
    limit: u64,
    quiet: Duration,
    bound: Duration,
) -> Result<Vec<u8>, Refusal> {
    let deadline = Instant::now() + bound;
    loop {
        let opened = open(path, roots, limit)?;
        let before = fingerprint(&opened.meta);
        let age = age(&opened.meta);
        if age >= quiet {
            let bytes = opened.read()?;
            let after = std::fs::metadata(path)?;
            if fingerprint(&after) == before {
                return Ok(bytes);
            }
        } else {
            drop(opened);
            if Instant::now() >= deadline {
                return Err(Refusal::Unsettled(bound));
            }
            std::thread::sleep(
                quiet
                    .saturating_sub(age)
                    .min(deadline.saturating_duration_since(Instant::now())),
            );
            continue;
        }
        if Instant::now() >= deadline {
            return Err(Refusal::Unsettled(bound));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_fifos_and_links_outside_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots::new(&[dir.path().to_path_buf()]);
        let err = read(Path::new("/dev/zero"), None, 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a character device, not a regular file; it was not read"
        );
        let fifo = dir.path().join("f.yaml");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let err = read(&fifo, Some(&roots), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a FIFO, not a regular file; it was not read"
        );
        let outside = tempfile::NamedTempFile::new().unwrap();
        let link = dir.path().join("l.yaml");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        assert!(matches!(
            read(&link, Some(&roots), 10),
            Err(Refusal::Outside(_))
        ));
        // Named directly, a link is the user's to follow.
        assert_eq!(read(&link, None, 10).unwrap(), b"");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, "x".repeat(11)).unwrap();
        assert!(matches!(
            read(&big, Some(&roots), 10),
            Err(Refusal::TooLarge {
                bytes: 11,
                limit: 10
            })
        ));
        assert!(matches!(
            read(&dir.path().join("gone.yaml"), Some(&roots), 10),
            Err(Refusal::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
    }
}
