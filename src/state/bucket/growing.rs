//! A file that one side writes as an object arrives and the other reads
//! as it grows: the snapshot's parse starts with its first bytes instead
//! of after its last (the download was a third of a no-op plan's time on
//! a bucket). The download still writes at the network's pace, never
//! waiting on the reader; the reader waits for bytes not yet written and
//! sees the end only once the writer has said how it ended.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// How the writing ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte is in the file.
    Complete,
    /// The object could not be read to its end (the message says why).
    Failed(String),
    /// The file could not take it (a full or read-only TMPDIR).
    Unwritable(String),
}

struct Progress {
    written: u64,
    end: Option<End>,
}

/// The writer's side; `reader()` gives readers of it.
#[derive(Clone)]
pub struct Growing(Arc<Shared>);

struct Shared {
    file: File,
    progress: Mutex<Progress>,
    grew: Condvar,
}

impl Growing {
    pub fn new(file: File) -> Growing {
        Growing(Arc::new(Shared {
            file,
            progress: Mutex::new(Progress {
                written: 0,
                end: None,
            }),
            grew: Condvar::new(),
        }))
    }

    /// Appends `bytes`; a write the file refuses ends the writing.
    pub fn append(&self, bytes: &[u8]) -> Result<(), End> {
        let at = self.lock().written;
        if let Err(e) = self.0.file.write_all_at(bytes, at) {
            let end = End::Unwritable(e.to_string());
            self.finish(end.clone());
            return Err(end);
        }
        self.lock().written = at + bytes.len() as u64;
        self.0.grew.notify_all();
        Ok(())
    }

    /// Says how the writing ended (the first word stands).
    pub fn finish(&self, end: End) {
        self.lock().end.get_or_insert(end);
        self.0.grew.notify_all();
    }

    /// How the writing ended, once it has.
    pub fn wait_end(&self) -> End {
        let mut progress = self.lock();
        loop {
            if let Some(end) = &progress.end {
                return end.clone();
            }
            progress = self
                .0
                .grew
                .wait(progress)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// How the writing ended, if it has.
    pub fn ended(&self) -> Option<End> {
        self.lock().end.clone()
    }

    /// A reader from the first byte.
    pub fn reader(&self) -> Tail {
        Tail {
            growing: self.clone(),
            at: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.0
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads what is written, waiting for more until the writing has ended;
/// an end other than `Complete` is an error, never a short file.
pub struct Tail {
    growing: Growing,
    at: u64,
}

impl Read for Tail {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let written = {
            let mut progress = self.growing.lock();
            while progress.written == self.at && progress.end.is_none() {
                progress = self
                    .growing
                    .0
                    .grew
                    .wait(progress)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if progress.written == self.at {
                return match &progress.end {
                    Some(End::Complete) | None => Ok(0),
                    Some(End::Failed(why) | End::Unwritable(why)) => {
                        Err(std::io::Error::other(why.clone()))
                    }
                };
            }
            progress.written
        };
        let most = usize::try_from(written - self.at).unwrap_or(usize::MAX);
        let len = buf.len().min(most);
        // The download's own unnamed temporary file, not a user's file:
        // nothing the intake guards against can be in its place.
        let n = self.growing.0.file.read_at(&mut buf[..len], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// The reader has the first part before the second is written: each
    /// side waits on the other's word, no sleep.
    #[test]
    fn reads_what_is_written_before_the_writing_ends() {
        let growing = Growing::new(tempfile::tempfile().unwrap());
        let mut tail = growing.reader();
        let (got_first, first_read) = channel();
        let reader = std::thread::spawn(move || {
            let mut first = [0u8; 5];
            tail.read_exact(&mut first).unwrap();
            got_first.send(first).unwrap();
            let mut rest = Vec::new();
            tail.read_to_end(&mut rest).unwrap();
            rest
        });
        growing.append(b"hello").unwrap();
        assert_eq!(&first_read.recv().unwrap(), b"hello");
        growing.append(b", world").unwrap();
        growing.finish(End::Complete);
        assert_eq!(reader.join().unwrap(), b", world");
        assert_eq!(growing.wait_end(), End::Complete);
    }

    #[test]
    fn a_failed_download_is_an_error_not_a_short_file() {
        let growing = Growing::new(tempfile::tempfile().unwrap());
        growing.append(b"{\"records\":[").unwrap();
        growing.finish(End::Failed("connection reset".into()));
        let mut all = Vec::new();
        let e = growing.reader().read_to_end(&mut all).unwrap_err();
        assert_eq!(e.to_string(), "connection reset");
        assert_eq!(all, b"{\"records\":[");
        // The first word stands.
        growing.finish(End::Complete);
        assert_eq!(
            growing.ended(),
            Some(End::Failed("connection reset".into()))
        );
    }

    #[test]
    fn a_file_that_cannot_take_more_ends_the_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        let growing = Growing::new(File::open(&path).unwrap());
        assert!(matches!(growing.append(b"x"), Err(End::Unwritable(_))));
        assert!(matches!(growing.wait_end(), End::Unwritable(_)));
        assert!(growing.reader().read(&mut [0u8; 4]).is_err());
    }
}
