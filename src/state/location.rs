//! Where the state lives: `--state DIR` or `--state postgres://…`.

use std::path::PathBuf;

pub use super::postgres::Target;

/// The workspace used when none is named.
pub const DEFAULT_WORKSPACE: &str = "default";

#[derive(Clone, Debug)]
pub enum Location {
    /// sled in a local directory.
    Dir(PathBuf),
    /// One workspace in a PostgreSQL database.
    Postgres(Box<Target>),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL names a database (with
    /// `workspace`); anything else is a directory.
    pub fn parse(
        value: PathBuf,
        workspace: Option<&str>,
        password: Option<String>,
    ) -> anyhow::Result<Location> {
        let text = value.to_str().unwrap_or_default();
        if Target::is_url(text) {
            let workspace = workspace.unwrap_or(DEFAULT_WORKSPACE);
            let target = Target::parse(text, workspace, password)?;
            return Ok(Location::Postgres(Box::new(target)));
        }
        if let Some(workspace) = workspace.filter(|w| *w != DEFAULT_WORKSPACE) {
            anyhow::bail!(
                "--workspace `{}` needs a PostgreSQL state (--state postgres://…); a state directory holds one state, so use another --state DIR instead",
                crate::untrusted::neutralise(workspace, 64)
            );
        }
        Ok(Location::Dir(value))
    }

    /// The secrets in this location, to scrub from anything printed.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Location::Dir(_) => Vec::new(),
            Location::Postgres(target) => target.secrets(),
        }
    }
}

/// A directory as its path; a database with the password left out.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(target) => write!(f, "{target}"),
        }
    }
}
