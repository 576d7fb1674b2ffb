//! Everything xmeta writes to stderr: log lines (through `tracing`),
//! messages, progress. Lines read like a compiler's (`warning: …`), carry
//! no timestamps, and go around a progress bar instead of through it.
//! A write that fails (a closed pipe) is dropped, never a panic: a panic in
//! the signal task once left Ctrl-C and SIGTERM without effect.

use std::io::Write;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The progress bar now drawn on stderr, if any; log lines suspend it.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Whether `warning:` and `error:` are coloured (stderr is a terminal and
/// colour is on); set once at start.
static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_bar(bar: Option<indicatif::ProgressBar>) {
    if let Ok(mut slot) = BAR.lock() {
        *slot = bar;
    }
}

/// Writes text to stderr, around the progress bar; errors are dropped.
pub fn write_stderr(text: &str) {
    write_stderr_bytes(text.as_bytes());
}

/// What `write` streams, to stderr around the progress bar, 64 KiB at a
/// time (a plan of 1,000,000 changes is never one string); errors are
/// dropped.
pub fn with_stderr(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, ToStderr);
    let _ = write(&mut out).and_then(|()| out.flush());
}

struct ToStderr;

impl Write for ToStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr_bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_stderr_bytes(bytes: &[u8]) {
    let write = || {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes);
        let _ = err.flush();
    };
    match BAR.lock().ok().and_then(|b| b.clone()) {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// One line on stderr, labelled (`warning`, `error`, `hint`, …).
/// Messages can quote command-line arguments and file content: both are
/// neutralised here, the one place that writes them.
pub fn line(label: &str, text: &str) {
    let text = crate::untrusted::neutralise_lines(text);
    write_stderr(&format!("{}{text}\n", paint_label(label)));
}

/// An error as the user reads it: diagnostics as a list, anything else on
/// an `error:` line, secrets scrubbed. The one way errors are printed
/// (the process's last error, and each failed watch cycle).
pub fn error(e: &anyhow::Error, secrets: &[String]) {
    match crate::error::render(e, secrets) {
        crate::error::Rendered::Diagnostics(text) => note(&text),
        crate::error::Rendered::Message(text) => line("error", &text),
    }
}

/// A line on stderr without a label (notes, lists of diagnostics).
pub fn note(text: &str) {
    write_stderr(&format!("{}\n", crate::untrusted::neutralise_lines(text)));
}

fn paint_label(label: &str) -> String {
    if label.is_empty() {
        return String::new();
    }
    if !COLOR.load(std::sync::atomic::Ordering::Relaxed) {
        return format!("{label}: ");
    }
    let code = match label {
        "error" => "\x1b[1;31m",
        "warning" => "\x1b[1;33m",
        _ => "\x1b[1m",
    };
    format!("{code}{label}\x1b[0m: ")
}

/// Sets up `tracing`: by default warnings and errors of xmeta only; `-v`
/// adds xmeta's info, `-vv` its debug; other crates only when `RUST_LOG`
/// asks for them.
pub fn init(verbose: u8, color: bool, rust_log: Option<String>) {
    use tracing_subscriber::EnvFilter;
    COLOR.store(color, std::sync::atomic::Ordering::Relaxed);
    let default = match verbose {
        0 => "off,xmeta=warn",
        1 => "off,xmeta=info",
        _ => "off,xmeta=debug",
    };
    let filter = rust_log
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Field formatting follows the colour setting too (it would
        // otherwise put escape codes into CI logs).
        .with_ansi(color)
        .event_format(Lines)
        // Its writes go to a buffer and never fail, so tracing never
        // reports (and never panics on) a write error of its own.
        .with_writer(Stderr)
        .try_init();
}

/// `warning: message (media=42)`: the label, the message, then the
/// fields of the event and of the spans it is in.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let label = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "{}", paint_label(label))?;
        ctx.format_fields(writer.by_ref(), event)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span
                    .extensions()
                    .get::<tracing_subscriber::fmt::FormattedFields<N>>()
                {
                    if !fields.is_empty() {
                        write!(writer, " ({fields})")?;
                    }
                }
            }
        }
        writeln!(writer)
    }
}

/// stderr through `write_stderr`: around the bar, errors dropped.
struct Stderr;

struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        write_stderr(&String::from_utf8_lossy(&self.0));
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::new())
    }
}
