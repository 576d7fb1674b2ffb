//! Diagnostics (`file:line:column: message`) and the errors that carry them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A place in a manifest file; line and column are 1-based. Ordered by
/// file, then line and column.
#[derive(Clone, Debug)]
pub struct Location {
    pub file: Arc<PathBuf>,
    /// 32 bits: every declared media keeps its place, and a manifest is
    /// at most 64 MiB (`MAX_FILE_BYTES`), so neither can overflow.
    pub line: u32,
    pub column: u32,
}

impl Location {
    /// The files' order; one shared file (the usual case: the places of
    /// one file's entries) is not compared path component by component,
    /// which took most of the time of sorting 100,000 findings' places.
    fn file_order(&self, other: &Location) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.file, &other.file) {
            std::cmp::Ordering::Equal
        } else {
            self.file.cmp(&other.file)
        }
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Location) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Location {}

impl Ord for Location {
    fn cmp(&self, other: &Location) -> std::cmp::Ordering {
        self.file_order(other)
            .then(self.line.cmp(&other.line))
            .then(self.column.cmp(&other.column))
    }
}

impl PartialOrd for Location {
    fn partial_cmp(&self, other: &Location) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Location {
    pub fn new(file: &Arc<PathBuf>, line: usize, column: usize) -> Location {
        Location {
            file: Arc::clone(file),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A file name is untrusted text too (a pull request chooses it).
        let name = crate::untrusted::neutralise(&self.file.display().to_string(), 4096);
        write!(f, "{name}:{}:{}", self.line, self.column)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the manifests, with a suggestion where one exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            location,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(location, message)
        }
    }

    pub fn with_help(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Messages quote file content (a value, a key): never raw.
        let message = crate::untrusted::neutralise_lines(&self.message);
        write!(f, "{}: {label}: {message}", self.location)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {}", crate::untrusted::neutralise_lines(help))?;
        }
        Ok(())
    }
}

/// The manifests are invalid: every error found, in file order.
#[derive(Debug, thiserror::Error)]
pub struct InvalidManifests(pub Vec<Diagnostic>);

impl fmt::Display for InvalidManifests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let n = self.0.iter().filter(|d| d.is_error()).count();
        write!(
            f,
            "{n} error{} in the manifests; nothing was sent",
            if n == 1 { "" } else { "s" }
        )
    }
}

/// An error as it reads, made in this one place: invalid manifests are
/// their own diagnostics; anything else is one message, with the state's
/// secrets (a database password) scrubbed should any text carry them.
pub enum Rendered {
    Diagnostics(String),
    Message(String),
}

pub fn render(e: &anyhow::Error, secrets: &[String]) -> Rendered {
    if let Some(invalid) = e.downcast_ref::<InvalidManifests>() {
        Rendered::Diagnostics(invalid.to_string())
    } else {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        Rendered::Message(crate::untrusted::scrub_message(&format!("{e:#}"), &secrets))
    }
}
