//! Where a run's changes come from, for the history: the source revision,
//! whether the work tree was dirty, who ran it and which run it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::state::Provenance;

/// What the command line and the environment say (read in `config.rs`).
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--source-revision`.
    pub revision: Option<String>,
    /// `--actor`.
    pub actor: Option<String>,
    /// `--no-history`.
    pub off: bool,
    /// `GITHUB_SHA`, `GITHUB_ACTOR` and the run's URL, in GitHub Actions.
    pub github: Option<GitHub>,
    /// `USER` or `LOGNAME`.
    pub user: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct GitHub {
    pub sha: String,
    pub actor: Option<String>,
    pub run_url: Option<String>,
}

impl Sources {
    /// The provenance of a run over `paths`: flags first, then GitHub
    /// Actions, then the git repository holding the first path.
    pub fn provenance(&self, paths: &[PathBuf]) -> Provenance {
        let github = self.github.as_ref();
        let (revision, dirty) = match (&self.revision, github) {
            (Some(r), _) => (Some(r.clone()), false),
            (None, Some(gh)) => (Some(gh.sha.clone()), false),
            (None, None) => revision_of(paths),
        };
        Provenance {
            revision: revision.map(|r| clean(&r)),
            dirty,
            actor: self
                .actor
                .clone()
                .or_else(|| github.and_then(|gh| gh.actor.clone()))
                .or_else(|| self.user.clone())
                .map(|a| clean(&a)),
            run: github
                .and_then(|gh| gh.run_url.clone())
                .map_or_else(run_id, |url| clean(&url)),
            off: self.off,
        }
    }
}

/// These go into the state as given (JSON escapes them; the text view
/// neutralises them), trimmed and bounded.
fn clean(text: &str) -> String {
    text.trim().chars().take(200).collect()
}

/// A random ID shared by the entries of one run outside CI.
fn run_id() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("local-{}", hex::encode(bytes))
}

/// The revision of the repositories holding `paths`: one commit, or each
/// distinct one joined by `+` when the manifests come from several.
fn revision_of(paths: &[PathBuf]) -> (Option<String>, bool) {
    let mut revisions: Vec<String> = Vec::new();
    let mut dirty = false;
    for (revision, d) in paths.iter().filter_map(|p| git_revision(p)) {
        dirty |= d;
        if !revisions.contains(&revision) {
            revisions.push(revision);
        }
    }
    if revisions.is_empty() {
        (None, false)
    } else {
        (Some(revisions.join("+")), dirty)
    }
}

/// `git rev-parse HEAD` of the repository holding `path`, and whether its
/// work tree has uncommitted changes; `None` outside a repository.
fn git_revision(path: &Path) -> Option<(String, bool)> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some((head, dirty))
}
