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

    /// Streams a large result through one buffered lock of stdout.
    pub fn write_with(self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        keep(f(&mut out).and_then(|()| out.flush()));
    }

    pub fn line(self, text: &str) {
        self.print(&format!("{text}\n"));
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
