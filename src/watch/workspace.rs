//! Watch mode's memory of the manifests: the parsed documents of every
//! file, refreshed one file at a time, so a change re-reads only what
//! changed. A file that stops validating, reads empty or cannot be read
//! (a FIFO, a link outside the roots, a save that never settles) keeps its
//! last good version, whose media are held (neither applied nor
//! forgotten) until it is fixed; only a path that is gone is a deletion.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Diagnostic, Location};
use crate::intake::Reader;
use crate::manifest::{self, assemble_lenient, Desired, ParsedFile};

/// How long a file may keep changing before it is reported instead of
/// read (a slow copy of a large manifest takes a few seconds).
pub fn settle_bound(quiet: Duration) -> Duration {
    (quiet * 20).max(Duration::from_secs(10))
}

#[derive(Debug)]
struct Tracked {
    /// The last version that validated, if any.
    good: Option<ParsedFile>,
    /// The problems of the version on disk now (empty when it is good).
    errors: Vec<Diagnostic>,
}

#[derive(Debug)]
pub struct Workspace {
    roots: Vec<PathBuf>,
    /// Reads each file through the intake, once it has settled.
    reader: Reader,
    files: BTreeMap<PathBuf, Tracked>,
}

impl Workspace {
    /// Reads every manifest under `roots`; each file is read once it has
    /// been left alone for `quiet` (a save in progress is not a version).
    pub fn load(roots: &[PathBuf], quiet: Duration) -> anyhow::Result<Workspace> {
        let mut ws = Workspace {
            roots: roots.to_vec(),
            reader: Reader::within(roots).settled(quiet, settle_bound(quiet)),
            files: BTreeMap::new(),
        };
        let files = manifest::discover(roots)?;
        for parsed in manifest::parse_all(&files, &ws.reader, crate::time::Timestamp::now()) {
            ws.store(parsed);
        }
        Ok(ws)
    }

    fn store(&mut self, parsed: ParsedFile) {
        let path = parsed.path.as_ref().clone();
        let mut errors: Vec<Diagnostic> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .cloned()
            .collect();
        let tracked = self.files.entry(path).or_insert(Tracked {
            good: None,
            errors: Vec::new(),
        });
        // Truncated and not yet written again (some editors, `cp`): an
        // empty read is not a deletion. Deleting the file forgets.
        let emptied = tracked.good.as_ref().is_some_and(|g| !g.entries.is_empty());
        if errors.is_empty() && parsed.entries.is_empty() && emptied {
            errors.push(Diagnostic::error(
                Location::new(&parsed.path, 1, 1),
                "the file declares no media now (emptied while being written?); its last good version stays in effect until it declares media again or is deleted",
            ));
        }
        if errors.is_empty() {
            tracked.good = Some(parsed);
        }
        tracked.errors = errors;
    }

    /// Whether a changed path can matter: a manifest file under a root,
    /// outside hidden directories, or a directory that held some.
    #[must_use]
    pub fn is_relevant(&self, path: &Path) -> bool {
        if self.files.keys().any(|f| f.starts_with(path)) {
            return true;
        }
        self.roots.iter().any(|root| {
            if root == path {
                return true;
            }
            let Ok(rest) = path.strip_prefix(root) else {
                return false;
            };
            // Hidden directories are skipped as `discover` skips them: the
            // directories above a manifest, or the path itself when it is
            // not a manifest (a `.old/` made or moved in whole).
            let is_manifest = manifest::is_manifest(path);
            let dirs = if is_manifest {
                rest.parent()
            } else {
                Some(rest)
            };
            let hidden = dirs
                .into_iter()
                .flat_map(Path::components)
                .any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with('.')));
            !hidden && (is_manifest || path.is_dir())
        })
    }

    /// Re-reads the given paths (files or directories, present or gone);
    /// returns the manifest files whose content was looked at again.
    pub fn refresh(&mut self, paths: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
        let mut touched = BTreeSet::new();
        let mut refused = Vec::new();
        for path in paths.iter().filter(|p| self.is_relevant(p)) {
            if path.is_dir() {
                match manifest::discover_within(std::slice::from_ref(path), &self.roots) {
                    Ok(found) => touched.extend(found),
                    // A directory that now leads outside the roots: its
                    // files keep their last good versions, held as errors.
                    Err(e) => refused.push((path.clone(), format!("{e:#}"))),
                }
                // Files that were under a directory and are gone now.
                touched.extend(
                    self.files
                        .keys()
                        .filter(|f| f.starts_with(path) && !f.exists())
                        .cloned(),
                );
            } else if manifest::is_manifest(path) {
                touched.insert(path.clone());
            } else {
                // A directory that vanished (deleted or renamed away).
                touched.extend(self.files.keys().filter(|f| f.starts_with(path)).cloned());
            }
        }
        let mut touched: Vec<PathBuf> = touched.into_iter().collect();
        // Gone only when the path is gone: a file that turned into a FIFO,
        // a link outside the roots or anything unreadable is an error for
        // that file (its last good version stays), never a deletion.
        let (gone, present): (Vec<PathBuf>, Vec<PathBuf>) =
            touched.iter().cloned().partition(|p| {
                p.symlink_metadata()
                    .is_err_and(|e| e.kind() == ErrorKind::NotFound)
            });
        for path in gone {
            self.files.remove(&path);
        }
        for parsed in manifest::parse_all(&present, &self.reader, crate::time::Timestamp::now()) {
            self.store(parsed);
        }
        for (dir, why) in refused {
            // Looked at again, with this answer: a cycle says so.
            touched.push(dir.clone());
            let error = |file: &Path| {
                let at = Location::new(&std::sync::Arc::new(file.to_path_buf()), 1, 1);
                vec![Diagnostic::error(
                    at,
                    format!("cannot read the file: {why}"),
                )]
            };
            let mut under = self
                .files
                .iter_mut()
                .filter(|(f, _)| f.starts_with(&dir))
                .peekable();
            if under.peek().is_none() {
                // Nothing read from it yet: the directory itself is the
                // error, until the link goes (then it is gone, as a path).
                let errors = error(&dir);
                self.files.insert(dir, Tracked { good: None, errors });
                continue;
            }
            for (file, tracked) in under {
                tracked.errors = error(file);
            }
        }
        touched
    }

    /// The desired set from every file's last good version. Media of broken
    /// files are held, and forgetting pauses while any file is broken.
    #[must_use]
    pub fn desired(&self) -> (Desired, Vec<Diagnostic>) {
        let good = self.files.values().filter_map(|t| t.good.as_ref());
        let entries = good.clone().map(|g| g.entries.len()).sum();
        let (mut desired, mut errors) =
            assemble_lenient(good.map(std::borrow::Cow::Borrowed), entries);
        for tracked in self.files.values().filter(|t| !t.errors.is_empty()) {
            desired.incomplete = true;
            errors.extend(tracked.errors.iter().cloned());
            desired
                .held
                .extend(tracked.good.iter().flat_map(|g| &g.entries).map(|e| e.id));
        }
        if desired.incomplete {
            let held = &desired.held;
            desired.media.retain(|e| !held.contains(&e.id));
        }
        desired.files = self.files.len();
        (desired, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"1\"\n  - id: \"2\"\n";

    #[test]
    fn a_broken_file_keeps_its_last_good_version_held() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, DOC).unwrap();
        let mut ws = Workspace::load(&[dir.path().to_path_buf()], Duration::ZERO).unwrap();
        assert_eq!(ws.desired().0.media.len(), 2);

        std::fs::write(&file, "media: [").unwrap();
        ws.refresh(&BTreeSet::from([file.clone()]));
        let (desired, errors) = ws.desired();
        assert!(desired.media.is_empty());
        assert_eq!(desired.held.len(), 2);
        assert!(desired.incomplete);
        assert_eq!(errors.len(), 1);

        std::fs::remove_file(&file).unwrap();
        ws.refresh(&BTreeSet::from([file]));
        let (desired, errors) = ws.desired();
        assert!(desired.media.is_empty() && desired.held.is_empty() && errors.is_empty());
    }

    #[test]
    fn hidden_directories_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::load(&[dir.path().to_path_buf()], Duration::ZERO).unwrap();
        assert!(ws.is_relevant(&dir.path().join("x.yaml")));
        assert!(ws.is_relevant(&dir.path().join("sub/x.yml")));
        assert!(!ws.is_relevant(&dir.path().join(".git/x.yaml")));
        std::fs::create_dir(dir.path().join(".old")).unwrap();
        assert!(!ws.is_relevant(&dir.path().join(".old")));
        assert!(!ws.is_relevant(&dir.path().join("x.yaml.swp")));
    }
}
