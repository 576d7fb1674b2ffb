//! The only writer to stdout (results). Logs and progress go to stderr.
//!
//! A closed pipe (`xmeta plan | head`) is a reader that has seen enough,
//! not an error. Any other failed write (a full disk under
//! `> plan.json`) is kept and makes the run fail (`failure`), so a script
//! never gets exit 0 with a truncated result.

use std::io::{ErrorKind, Write};
use std::sync::OnceLock;

static FAILED: OnceLock<std::io::Error> = OnceLock::new();

#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub color: bool,
}

// A handle passed to every command, so that only it writes to stdout; the
// writes themselves need nothing from it.
#[allow(clippy::unused_self)]
impl Output {
    /// Writes text as is.
    pub fn print(self, text: &str) {
        let mut out = std::io::stdout().lock();
        keep(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
    }

    /// Streams a large result through one buffered lock of stdout, into
    /// a pipe made large enough first (`widen_pipe`).
    pub fn write_with(self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        let stdout = std::io::stdout().lock();
        widen_pipe(&stdout, PIPE_BYTES);
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
        keep(f(&mut out).and_then(|()| out.flush()));
    }

    pub fn line(self, text: &str) {
        self.print(&format!("{text}\n"));
    }
}

/// What a pipe that a large result is streamed into holds: Linux's
/// default of 64 KiB made the writer wait for the reader every 64 KiB
/// (1,340 times for the JSON plan of 100,000 media, 88 MB), and 1 MiB is
/// the most an unprivileged process may ask for by default
/// (`/proc/sys/fs/pipe-max-size`).
const PIPE_BYTES: usize = 1 << 20;

/// Grows the pipe `out` writes into, if it is one, to `bytes` (never
/// shrinks it). Best effort: where the system refuses (its limits on a
/// user's pipes), the pipe stays as it was and only the speed differs.
fn widen_pipe(out: &impl rustix::fd::AsFd, bytes: usize) {
    let is_pipe = rustix::fs::fstat(out).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo
    });
    if is_pipe && rustix::pipe::fcntl_getpipe_size(out).is_ok_and(|size| size < bytes) {
        let _ = rustix::pipe::fcntl_setpipe_size(out, bytes);
    }
}

fn keep(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() != ErrorKind::BrokenPipe {
            let _ = FAILED.set(e);
        }
    }
}

/// The first write to stdout that failed for a reason other than a closed
/// pipe, if any.
pub fn failure() -> Option<&'static std::io::Error> {
    FAILED.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size, pipe};

    /// A pipe is grown to the size asked (as far as the system lets this
    /// user: what a direct request gets), never shrunk; a file is left
    /// alone.
    #[test]
    fn a_pipe_is_widened_and_never_narrowed() {
        let (_read, probe) = pipe().unwrap();
        let _ = fcntl_setpipe_size(&probe, PIPE_BYTES);
        let granted = fcntl_getpipe_size(&probe).unwrap();
        let (_read, write) = pipe().unwrap();
        assert!(fcntl_getpipe_size(&write).unwrap() < PIPE_BYTES);
        widen_pipe(&write, PIPE_BYTES);
        assert_eq!(fcntl_getpipe_size(&write).unwrap(), granted);

        let (_read, wide) = pipe().unwrap();
        fcntl_setpipe_size(&wide, 256 * 1024).unwrap();
        widen_pipe(&wide, 128 * 1024);
        assert_eq!(fcntl_getpipe_size(&wide).unwrap(), 256 * 1024);
    }
}
