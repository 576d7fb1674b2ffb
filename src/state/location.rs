//! Where the state lives: `--state DIR`, `--state postgres://…`, or a
//! bucket (`--state s3://…`, `gs://…`, `az://…`).

use std::path::PathBuf;

pub use super::bucket::Target as BucketTarget;
pub use super::postgres::Target;

/// The workspace used when none is named.
pub const DEFAULT_WORKSPACE: &str = "default";

#[derive(Clone, Debug)]
pub enum Location {
    /// sled in a local directory.
    Dir(PathBuf),
    /// One workspace in a PostgreSQL database.
    Postgres(Box<Target>),
    /// One workspace (a folder) under a bucket's prefix.
    Bucket(Box<BucketTarget>),
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
        if looks_like_a_database(text) {
            // Not echoed: the value may carry a password.
            anyhow::bail!("the state location looks like a database address but is not a postgres://USER@HOST/DB URL (a key=value connection string, or a URL missing its `//`); use a postgres:// URL, or a plain directory path");
        }
        if BucketTarget::is_url(text) {
            let workspace = workspace.unwrap_or(DEFAULT_WORKSPACE);
            let target = BucketTarget::parse(text, workspace)?;
            return Ok(Location::Bucket(Box::new(target)));
        }
        if looks_like_url(text) && !Target::is_url(text) {
            // Not echoed: the value may carry a password.
            anyhow::bail!("the state location looks like a URL, but only postgres:// and postgresql:// URLs name a database, and s3://, gs://, az:// and azure:// a bucket; anything else is a directory path");
        }
        if Target::is_url(text) {
            let workspace = workspace.unwrap_or(DEFAULT_WORKSPACE);
            let target = Target::parse(text, workspace, password)?;
            return Ok(Location::Postgres(Box::new(target)));
        }
        if let Some(workspace) = workspace.filter(|w| *w != DEFAULT_WORKSPACE) {
            anyhow::bail!(
                "--workspace `{}` needs a PostgreSQL or bucket state (--state postgres://… or s3://…); a state directory holds one state, so use another --state DIR instead",
                crate::untrusted::neutralise(workspace, 64)
            );
        }
        Ok(Location::Dir(value))
    }

    /// `--create-workspace`: writers make a PostgreSQL workspace that does
    /// not exist yet (a directory's only workspace always exists).
    #[must_use]
    pub fn creating_workspace(mut self, create: bool) -> Location {
        match &mut self {
            Location::Postgres(target) => target.set_create_workspace(create),
            Location::Bucket(target) => target.set_create_workspace(create),
            Location::Dir(_) => {}
        }
        self
    }

    /// Whether `text` names a place that holds workspaces (a database or
    /// a bucket), so that `--workspace` applies to it.
    #[must_use]
    pub fn names_workspaces(text: &str) -> bool {
        Target::is_url(text) || BucketTarget::is_url(text)
    }

    /// This location's workspace (a directory has only `default`).
    #[must_use]
    pub fn workspace(&self) -> Option<&str> {
        match self {
            Location::Dir(_) => None,
            Location::Postgres(target) => Some(target.workspace()),
            Location::Bucket(target) => Some(target.workspace()),
        }
    }

    /// The secrets in this location, to scrub from anything printed.
    #[must_use]
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Location::Dir(_) => Vec::new(),
            Location::Postgres(target) => target.secrets(),
            Location::Bucket(_) => BucketTarget::env_secrets(),
        }
    }
}

/// `scheme://…`, after optional spaces: a mistyped database URL must not
/// become a directory whose name holds the password.
fn looks_like_url(text: &str) -> bool {
    let text = text.trim_start();
    text.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// `postgres:…` without `//`, or libpq's `host=… password=…`: meant as a
/// database, and never to become a directory named after its password.
fn looks_like_a_database(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    let scheme = ["postgres:", "postgresql:"]
        .iter()
        .any(|s| lower.starts_with(s) && !lower.starts_with(&format!("{s}//")));
    let key_values = ["password=", "host=", "dbname=", "user="]
        .iter()
        .any(|k| lower.split_whitespace().any(|w| w.starts_with(k)));
    scheme || key_values
}

/// A directory as its path; a database with the password left out.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(target) => write!(f, "{target}"),
            Location::Bucket(target) => write!(f, "{target}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_database_url_is_refused_without_its_password() {
        for text in [
            "postgress://u:hunter2@db/x",
            " postgres://u:hunter2@db/x",
            "mysql://u:hunter2@db/x",
            "postgres:hunter2@127.0.0.1:5433/test",
            "postgres:/postgres:hunter2@db/x",
            "host=db password=hunter2 dbname=test",
        ] {
            let err = Location::parse(PathBuf::from(text), None, None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("looks like a") && !err.contains("hunter2"),
                "{err}"
            );
        }
        let upper =
            Location::parse(PathBuf::from("Postgres://u:hunter2@db/x"), None, None).unwrap();
        assert!(matches!(upper, Location::Postgres(_)), "{upper}");
        assert!(!upper.to_string().contains("hunter2"));
        assert!(matches!(
            Location::parse(PathBuf::from("./state"), None, None).unwrap(),
            Location::Dir(_)
        ));
    }

    #[test]
    fn a_bucket_url_names_a_bucket_and_takes_a_workspace() {
        for text in [
            "s3://team/xmeta",
            "gs://team/xmeta",
            "az://c/x",
            "azure://c/x",
        ] {
            let location = Location::parse(PathBuf::from(text), Some("prod"), None).unwrap();
            assert!(matches!(location, Location::Bucket(_)), "{text}");
            assert_eq!(location.workspace(), Some("prod"));
            assert!(Location::names_workspaces(text));
            assert_eq!(location.to_string(), format!("{text} (workspace `prod`)"));
        }
        assert!(!Location::names_workspaces("./s3:/x"));
    }
}
