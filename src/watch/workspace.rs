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
use crate::manifest::{self, assemble_lenient, Desired, Entry, ParsedFile};
use crate::model::MediaId;

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
    /// The desired set of the files as they are, and its errors: made
    /// again only when an edit changes which media are declared where.
    assembled: (Desired, Vec<Diagnostic>),
    /// The entries of the good versions the last refresh replaced or
    /// removed: what the state may still hold of those media.
    replaced: Vec<Entry>,
}

impl Workspace {
    /// Reads every manifest under `roots`; each file is read once it has
    /// been left alone for `quiet` (a save in progress is not a version).
    pub fn load(roots: &[PathBuf], quiet: Duration) -> anyhow::Result<Workspace> {
        let mut ws = Workspace {
            roots: roots.to_vec(),
            reader: Reader::within(roots).settled(quiet, settle_bound(quiet)),
            files: BTreeMap::new(),
            assembled: Default::default(),
            replaced: Vec::new(),
        };
        let files = manifest::discover(roots)?;
        for parsed in manifest::parse_all(&files, &ws.reader, crate::time::Timestamp::now()) {
            ws.store(parsed);
        }
        ws.assembled = ws.assemble();
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
            if let Some(old) = tracked.good.replace(parsed) {
                self.replaced.extend(old.entries);
            }
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
        self.replaced.clear();
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
        // Each edited file's media before the edit, to patch the desired
        // set in place if the edit keeps them (the usual edit).
        let before = (gone.is_empty() && refused.is_empty())
            .then(|| self.media_of(&present))
            .flatten();
        for path in gone {
            if let Some(good) = self.files.remove(&path).and_then(|t| t.good) {
                self.replaced.extend(good.entries);
            }
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
        if before.is_some() && self.media_of(&present) == before {
            self.patch_in_place(&present);
        } else {
            self.assembled = self.assemble();
        }
        touched
    }

    /// The entries the last refresh replaced or removed, as they were.
    #[must_use]
    pub fn replaced(&self) -> &[Entry] {
        &self.replaced
    }

    /// The desired set from every file's last good version. Media of broken
    /// files are held, and forgetting pauses while any file is broken.
    /// A copy of the one kept (the entries shared, not copied).
    #[must_use]
    pub fn desired(&self) -> (Desired, Vec<Diagnostic>) {
        self.assembled.clone()
    }

    /// The media each of `files` declares (its IDs, sorted), while every
    /// file is good and no media is held (the desired set is then every
    /// file's media); `None` otherwise.
    fn media_of(&self, files: &[PathBuf]) -> Option<Vec<Vec<MediaId>>> {
        let (desired, _) = &self.assembled;
        let all_good = self
            .files
            .values()
            .all(|t| t.errors.is_empty() && t.good.is_some());
        if !all_good || !desired.held.is_empty() || desired.incomplete {
            return None;
        }
        files
            .iter()
            .map(|path| {
                let good = self.files.get(path)?.good.as_ref()?;
                let mut ids: Vec<MediaId> = good.entries.iter().map(|e| e.id).collect();
                ids.sort_unstable();
                Some(ids)
            })
            .collect()
    }

    /// Puts the new entries of `edited` files in the places of the old
    /// ones: each file declares the media it did, and no media is
    /// declared twice (`media_of` said so), so each place is its file's.
    /// The warnings are taken again from every file.
    fn patch_in_place(&mut self, edited: &[PathBuf]) {
        let (desired, _) = &mut self.assembled;
        let goods = edited
            .iter()
            .filter_map(|path| self.files.get(path)?.good.as_ref());
        for entry in goods.flat_map(|good| &good.entries) {
            desired.media.replace(entry.clone());
        }
        desired.warnings = self
            .files
            .values()
            .filter_map(|t| t.good.as_ref())
            .flat_map(|g| g.diagnostics.iter().filter(|d| !d.is_error()).cloned())
            .collect();
    }

    /// The desired set made from every file, as `desired` gives it.
    fn assemble(&self) -> (Desired, Vec<Diagnostic>) {
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

    /// What a plan sees of the desired set, to compare two of them.
    fn seen(view: &(Desired, Vec<Diagnostic>)) -> String {
        let (desired, errors) = view;
        let media: Vec<String> = desired
            .media
            .values()
            .map(|e| format!("{} {:?} {}", e.id, *e.metadata, e.location))
            .collect();
        format!(
            "{media:#?}\nwarnings {:?}\nheld {:?} incomplete {} files {}\nerrors {:?}",
            desired.warnings, desired.held, desired.incomplete, desired.files, errors
        )
    }

    fn doc(media: &[(&str, &str)]) -> String {
        let mut text = String::from("apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n");
        for (id, alt) in media {
            text.push_str(&format!(
                "  - id: \"{id}\"\n    metadata:\n      alt_text: {{text: \"{alt}\"}}\n"
            ));
        }
        text
    }

    /// Whatever the edits, the set kept (patched in place when an edit
    /// keeps its media) is the one made again from every file.
    #[test]
    fn the_set_kept_between_edits_is_the_set_made_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, doc(&[("1", "one"), ("2", "two")])).unwrap();
        std::fs::write(&b, doc(&[("3", "three"), ("4", "four")])).unwrap();
        let mut ws = Workspace::load(&[dir.path().to_path_buf()], Duration::ZERO).unwrap();
        // A past expiry is a warning of its file (patched in and out).
        let expired = doc(&[("1", "one"), ("2", "two")]).replacen(
            "alt_text: {text: \"one\"}",
            "alt_text: {text: \"one\"}\n      content_expiration: {timestamp_sec: 1000}",
            1,
        );
        let edits: [(&PathBuf, String); 9] = [
            // The same media: patched in place.
            (&a, doc(&[("1", "one, edited"), ("2", "two")])),
            (&a, doc(&[("2", "two, moved up"), ("1", "one")])),
            (&a, expired),
            (&a, doc(&[("1", "one"), ("2", "two")])),
            // Another file declares media 1 too: both held.
            (
                &b,
                doc(&[("3", "three"), ("4", "four"), ("1", "one again")]),
            ),
            (&b, doc(&[("3", "three"), ("4", "four")])),
            // Broken, then mended with the media it had.
            (&a, "media: [".to_string()),
            (&a, doc(&[("1", "one"), ("2", "two")])),
            // A media added.
            (&a, doc(&[("1", "one"), ("2", "two"), ("5", "five")])),
        ];
        for (file, text) in edits {
            std::fs::write(file, &text).unwrap();
            ws.refresh(&BTreeSet::from([file.clone()]));
            assert_eq!(
                seen(&ws.desired()),
                seen(&ws.assemble()),
                "after writing {text}"
            );
        }
        let (desired, _) = ws.desired();
        let ids: Vec<String> = desired.media.values().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    }

    /// An edit of one alt text is the new text in the set kept.
    #[test]
    fn an_edit_that_keeps_its_media_is_patched_in() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, doc(&[("1", "one"), ("2", "two")])).unwrap();
        let mut ws = Workspace::load(&[dir.path().to_path_buf()], Duration::ZERO).unwrap();
        let before = ws.desired();
        std::fs::write(&a, doc(&[("1", "one, edited"), ("2", "two")])).unwrap();
        ws.refresh(&BTreeSet::from([a.clone()]));
        let (desired, _) = ws.desired();
        let id = MediaId::parse("1").unwrap();
        let text = |d: &Desired| format!("{:?}", *d.media.get(&id).unwrap().metadata);
        assert!(text(&desired).contains("one, edited"), "{}", text(&desired));
        // The copy a plan took before the edit is as it was.
        assert!(text(&before.0).contains("\"one\""), "{}", text(&before.0));
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
