//! The only writer to stdout (results). Logs and progress go to stderr.

use std::io::Write;

#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub color: bool,
}

impl Output {
    /// Writes text as is; a closed pipe (`xmeta plan | head`) is not an error.
    pub fn print(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Streams a large result through one buffered lock of stdout.
    pub fn write_with(&self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let _ = f(&mut out).and_then(|()| out.flush());
    }

    pub fn line(&self, text: &str) {
        self.print(&format!("{text}\n"));
    }
}
