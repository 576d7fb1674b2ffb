//! Finds manifest files: `*.yaml`/`*.yml` under the given paths, recursively,
//! skipping hidden directories, in sorted path order.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The lint configuration beside the manifests, never a manifest itself.
pub const CONFIG_NAMES: [&str; 2] = ["xmeta.yaml", "xmeta.yml"];

/// A link found under the roots that leads outside them, by name.
fn escape(link: &Path, target: &Path) -> String {
    format!(
        "`{}` is a symlink to `{}`, outside the given paths; it was not read",
        crate::untrusted::neutralise(&link.display().to_string(), 4096),
        crate::untrusted::neutralise(&target.display().to_string(), 4096),
    )
}

pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) && !path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| CONFIG_NAMES.contains(&n))
}

fn is_hidden(entry: &walkdir::DirEntry) -> bool {
    entry.depth() > 0
        && entry.file_type().is_dir()
        && entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.'))
}

/// Every manifest file under `paths`, sorted and without repeats. A
/// symlink met inside a directory must resolve inside one of the given
/// directories: one that points elsewhere (`/proc/self/environ`, a file
/// of the CI runner) is refused by name and never read.
pub fn discover(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    discover_within(paths, paths)
}

/// `discover` of some `paths` under the given `roots` (watch re-reads one
/// directory of a larger tree; links within the tree stay fine).
pub fn discover_within(paths: &[PathBuf], roots: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let given = roots;
    let dirs: Vec<PathBuf> = roots.iter().filter(|p| p.is_dir()).cloned().collect();
    let roots = crate::intake::Roots::new(&dirs);
    let mut escapes = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        // A path under the roots (watch re-reading a directory that was
        // just created) is held to them like anything found inside.
        if !given.contains(path) {
            if let Err(crate::intake::Refusal::Outside(target)) = roots.admit(path) {
                escapes.push(escape(path, &target));
                continue;
            }
        }
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        if meta.is_file() {
            files.push(path.clone());
            continue;
        }
        if !meta.is_dir() {
            bail!(
                "`{}` is not a regular file or a directory (a FIFO or device?); give manifest files or directories",
                path.display()
            );
        }
        // Symlinked directories are followed; walkdir detects loops.
        let mut walker = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| !is_hidden(e));
        while let Some(entry) = walker.next() {
            let entry = entry.map_err(|e| match e.loop_ancestor() {
                Some(ancestor) => anyhow::anyhow!(
                    "symlink loop in `{}`: `{}` points back to `{}`",
                    path.display(),
                    e.path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    ancestor.display()
                ),
                None => anyhow::anyhow!("cannot read `{}`: {e}", path.display()),
            })?;
            let kind = entry.file_type();
            if entry.path_is_symlink() && entry.depth() > 0 {
                let refused = match roots.admit(entry.path()) {
                    Ok(()) => None,
                    Err(crate::intake::Refusal::Outside(target)) => Some(target),
                    Err(e) => {
                        return Err(anyhow::anyhow!(e)).with_context(|| {
                            format!("cannot resolve `{}`", entry.path().display())
                        })
                    }
                };
                if refused.is_some() {
                    // Listed, never walked or read: the intake refuses it
                    // by name, as an error of that file, beside every other
                    // file's problems.
                    if kind.is_dir() {
                        walker.skip_current_dir();
                        files.push(entry.into_path());
                    } else if is_manifest(entry.path()) {
                        files.push(entry.into_path());
                    }
                    continue;
                }
            }
            if !is_manifest(entry.path()) || kind.is_dir() {
                continue;
            }
            // A FIFO, socket or device is listed too, and refused unread.
            files.push(entry.into_path());
        }
    }
    if !escapes.is_empty() {
        bail!(
            "{}; link the files into the directory instead, or pass their real location as a PATH",
            escapes.join("; ")
        );
    }
    // The same file named twice (`media ./media`) is read once.
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    files.sort();
    Ok(files)
}
