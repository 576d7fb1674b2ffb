//! The file-system side of watch: where it looks, events in the user's own
//! terms, and waiting for the next batch of changes (or a stop, a refresh
//! or a retry that falls due).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::RecursiveMode;
use notify_debouncer_full::DebounceEventResult;
use tokio_util::sync::CancellationToken;

/// Where the watcher looks (canonical) and how the user named it.
pub struct Root {
    pub watched: PathBuf,
    pub given: PathBuf,
    pub mode: RecursiveMode,
}

pub fn roots(paths: &[PathBuf]) -> anyhow::Result<Vec<Root>> {
    paths
        .iter()
        .map(|p| {
            let canonical = std::fs::canonicalize(p)
                .with_context(|| format!("cannot watch `{}`", p.display()))?;
            Ok(if canonical.is_dir() {
                Root {
                    watched: canonical,
                    given: p.clone(),
                    mode: RecursiveMode::Recursive,
                }
            } else {
                // Watch a file's directory: editors replace files by rename,
                // which would end a watch on the file itself.
                let parent = |q: &Path| q.parent().map(Path::to_path_buf).unwrap_or_default();
                Root {
                    watched: parent(&canonical),
                    given: parent(p),
                    mode: RecursiveMode::NonRecursive,
                }
            })
        })
        .collect()
}

/// An event's path in the user's own terms (as given on the command line).
fn as_given(roots: &[Root], path: &Path) -> Option<PathBuf> {
    roots.iter().find_map(|r| {
        path.strip_prefix(&r.watched).ok().map(|rest| {
            if rest.as_os_str().is_empty() {
                r.given.clone()
            } else {
                r.given.join(rest)
            }
        })
    })
}

/// Blocks until changes settle (or a stop); collects every pending event,
/// so changes made during an apply lead to one re-plan, not one per event.
pub fn next_changes(
    rx: &Receiver<DebounceEventResult>,
    roots: &[Root],
    cancel: &CancellationToken,
    wake: Option<Instant>,
) -> Option<BTreeSet<PathBuf>> {
    let mut paths = BTreeSet::new();
    let mut take = |result: DebounceEventResult| match result {
        Ok(events) => {
            // Reads (ours included) raise access events; only changes count.
            for event in events.iter().filter(|e| !e.kind.is_access()) {
                paths.extend(event.paths.iter().filter_map(|p| as_given(roots, p)));
            }
        }
        Err(errors) => {
            for e in errors {
                tracing::warn!("file watching: {e}");
            }
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => {
                take(result);
                while let Ok(more) = rx.try_recv() {
                    take(more);
                }
                return Some(paths);
            }
            Err(RecvTimeoutError::Timeout) if !cancel.is_cancelled() => {
                if wake.is_some_and(|due| Instant::now() >= due) {
                    return Some(paths);
                }
            }
            Err(_) => return None,
        }
    }
}
