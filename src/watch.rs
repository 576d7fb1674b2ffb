//! Watch mode's memory of the manifests: the parsed documents of every
//! file, refreshed one file at a time, so a change re-reads only what
//! changed. A file that stops validating keeps its last good version, whose
//! media are held (neither applied nor forgotten) until it is fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::Diagnostic;
use crate::manifest::{self, assemble_lenient, Desired, ParsedFile};
use crate::model::MediaId;
use crate::plan::{Plan, Targets};
use crate::state::{Digest, StateReader};

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
    files: BTreeMap<PathBuf, Tracked>,
}

impl Workspace {
    /// Reads every manifest under `roots`.
    pub fn load(roots: &[PathBuf]) -> anyhow::Result<Workspace> {
        let mut ws = Workspace {
            roots: roots.to_vec(),
            files: BTreeMap::new(),
        };
        let files = manifest::discover(roots)?;
        for parsed in manifest::parse_all(&files, crate::time::Timestamp::now()) {
            ws.store(parsed);
        }
        Ok(ws)
    }

    fn store(&mut self, parsed: ParsedFile) {
        let path = parsed.path.as_ref().clone();
        let errors: Vec<Diagnostic> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .cloned()
            .collect();
        let tracked = self.files.entry(path).or_insert(Tracked {
            good: None,
            errors: Vec::new(),
        });
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
            let hidden = rest
                .parent()
                .into_iter()
                .flat_map(Path::components)
                .any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with('.')));
            !hidden && (manifest::is_manifest(path) || path.is_dir())
        })
    }

    /// Re-reads the given paths (files or directories, present or gone);
    /// returns the manifest files whose content was looked at again.
    pub fn refresh(&mut self, paths: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
        let mut touched = BTreeSet::new();
        for path in paths.iter().filter(|p| self.is_relevant(p)) {
            if path.is_dir() {
                match manifest::discover_within(std::slice::from_ref(path), &self.roots) {
                    Ok(found) => touched.extend(found),
                    // Its files keep their last good versions; say why.
                    Err(e) => tracing::warn!("{e:#}"),
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
        let touched: Vec<PathBuf> = touched.into_iter().collect();
        let (present, gone): (Vec<PathBuf>, Vec<PathBuf>) =
            touched.iter().cloned().partition(|p| p.is_file());
        for path in gone {
            self.files.remove(&path);
        }
        for parsed in manifest::parse_all(&present, crate::time::Timestamp::now()) {
            self.store(parsed);
        }
        touched
    }

    /// The desired set from every file's last good version. Media of broken
    /// files are held, and forgetting pauses while any file is broken.
    #[must_use]
    pub fn desired(&self) -> (Desired, Vec<Diagnostic>) {
        let good = self.files.values().filter_map(|t| t.good.as_ref());
        let entries = good.clone().map(|g| g.entries.len()).sum();
        let (mut desired, mut errors) = assemble_lenient(good.cloned(), entries);
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
        let mut ws = Workspace::load(&[dir.path().to_path_buf()]).unwrap();
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
        let ws = Workspace::load(&[dir.path().to_path_buf()]).unwrap();
        assert!(ws.is_relevant(&dir.path().join("x.yaml")));
        assert!(ws.is_relevant(&dir.path().join("sub/x.yml")));
        assert!(!ws.is_relevant(&dir.path().join(".git/x.yaml")));
        assert!(!ws.is_relevant(&dir.path().join("x.yaml.swp")));
    }
}

/// What watch knows of the state between cycles: each recorded media's
/// digest, not its record (100,000 decoded records held 40 MB for the whole
/// session). Re-read when another writer moved the serial; after watch's
/// own writes, only the media it wrote.
#[derive(Debug, Default)]
pub struct AppliedCache {
    serial: Option<u64>,
    digests: BTreeMap<MediaId, Digest>,
}

impl AppliedCache {
    /// The plan of one cycle: media whose manifest has its record's digest
    /// are unchanged, and only the others' records are read.
    pub fn plan(
        &mut self,
        store: &dyn StateReader,
        mut desired: Desired,
        prune: bool,
    ) -> anyhow::Result<Plan> {
        let serial = store.serial()?;
        if self.serial != Some(serial) {
            self.digests = store.digests()?;
            self.serial = Some(serial);
        }
        let targets = Targets::default();
        let (applied, unchanged) = crate::commands::records_to_compare(
            &mut desired,
            store,
            &self.digests,
            &targets,
            false,
        )?;
        let mut plan = crate::plan::diff(desired, &applied, &targets, prune);
        plan.unchanged += unchanged;
        Ok(plan)
    }

    /// Reads the recorded digests before the tree is loaded. A writer lets
    /// go of the scan's pages once it has read them, so they are not in
    /// the watcher's peak beside the parsed tree (18 MB at 100,000 media).
    pub fn prime(&mut self, store: &dyn StateReader) -> anyhow::Result<()> {
        let serial = store.serial()?;
        self.digests = store.digests()?;
        self.serial = Some(serial);
        Ok(())
    }

    /// After our own writes to `ids`: re-read just those.
    pub fn update(
        &mut self,
        store: &dyn StateReader,
        ids: impl IntoIterator<Item = MediaId>,
    ) -> anyhow::Result<()> {
        for id in ids {
            match store.get(&id)? {
                Some(record) => self.digests.insert(id, Digest::of(&record.metadata)),
                None => self.digests.remove(&id),
            };
        }
        self.serial = Some(store.serial()?);
        Ok(())
    }
}
