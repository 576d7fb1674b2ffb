//! Workspaces, explicit as in Terraform: the states one PostgreSQL
//! database holds exist only once `state workspace new` (or a writer's
//! `--create-workspace`) made them, so a mistyped `--workspace` is an
//! error with a did-you-mean, never an empty state that plans to create
//! everything again. `default` always exists; a state directory holds
//! only `default`.

use super::location::DEFAULT_WORKSPACE;
use super::{bucket, postgres, Location, StateError};

/// How many names the refusal of an unknown workspace lists.
const SHOWN: usize = 20;

/// What a directory state says to `workspace new` and `workspace delete`.
const ONE_STATE_PER_DIRECTORY: &str = "a state directory holds one state, the `default` workspace; workspaces need a PostgreSQL or bucket state (--state postgres://… or s3://…); for another local state, use another --state DIR";

/// Every workspace, sorted; `default` is always among them.
pub fn list(location: &Location) -> anyhow::Result<Vec<String>> {
    match location {
        Location::Dir(_) => Ok(vec![DEFAULT_WORKSPACE.to_string()]),
        Location::Postgres(target) => postgres::workspaces::list(target),
        Location::Bucket(target) => bucket::list(target),
    }
}

/// Makes workspace `name`; one that exists is refused.
pub fn create(location: &Location, name: &str) -> anyhow::Result<()> {
    match location {
        Location::Dir(_) => anyhow::bail!(ONE_STATE_PER_DIRECTORY),
        Location::Postgres(target) => postgres::workspaces::create(target, name),
        Location::Bucket(target) => bucket::create(target, name),
    }
}

/// Deletes workspace `name` with its records, history and mark, returning
/// how many media it held. `default` is refused, and so is a workspace
/// that holds anything (unless `force`) or whose lock is held.
pub fn delete(location: &Location, name: &str, force: bool) -> anyhow::Result<u64> {
    match location {
        Location::Dir(_) => anyhow::bail!(ONE_STATE_PER_DIRECTORY),
        Location::Postgres(target) => postgres::workspaces::delete(target, name, force),
        Location::Bucket(target) => bucket::delete(target, name, force),
    }
}

/// The refusal of a command on workspace `name`, which is not among
/// `known` (sorted, `default` included).
pub fn unknown(name: &str, database: &str, known: &[String]) -> StateError {
    let suggestion = closest(name, known)
        .map(|k| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    let mut shown: Vec<String> = known.iter().take(SHOWN).cloned().collect();
    if known.len() > SHOWN {
        shown.push(format!(
            "and {} more (`xmeta state workspace list`)",
            known.len() - SHOWN
        ));
    }
    StateError::NoSuchWorkspace {
        name: name.to_string(),
        database: database.to_string(),
        suggestion,
        known: shown.join(", "),
    }
}

/// The known name close enough to `name` to be a typo of it.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_typo_gets_the_closest_name_and_the_list() {
        let known = names(&["default", "production", "staging"]);
        let err = unknown("stagign", "postgres://u@db/x", &known).to_string();
        assert_eq!(
            err,
            "workspace `stagign` does not exist in postgres://u@db/x; did you mean `staging`? known workspaces: default, production, staging; to start a new one, run `xmeta state workspace new stagign` (or pass --create-workspace)"
        );
        let err = unknown("qa", "postgres://u@db/x", &known).to_string();
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn a_long_list_is_cut() {
        let known: Vec<String> = (0..25).map(|n| format!("ws{n:02}")).collect();
        let err = unknown("zzzzzzzz", "db", &known).to_string();
        assert!(
            err.contains("ws19, and 5 more (`xmeta state workspace list`)"),
            "{err}"
        );
        assert!(!err.contains("ws20"), "{err}");
    }
}
