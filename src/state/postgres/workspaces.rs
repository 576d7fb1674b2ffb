//! Workspaces in the database (`xmeta_workspaces`, schema 3): which
//! exist, their moved mark, and `state workspace list|new|delete`.
//! A database of an older schema, which a reader may not upgrade, counts
//! `default` and every workspace with a state as existing, as the
//! upgrade will.

use anyhow::bail;
use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;

use super::schema::{self, LOCK_CLASS, SCHEMA_VERSION, WITH_WORKSPACES};
use super::session::Session;
use super::target::{check_workspace_name, Target};
use super::{head, lock_holder, try_lock};
use crate::state::location::DEFAULT_WORKSPACE;
use crate::state::moved::Moved;

/// What the database says of one workspace.
pub enum Status {
    Missing,
    /// It exists, moved elsewhere or not.
    Exists(Option<Moved>),
}

/// Every workspace, sorted, `default` included.
pub async fn known(
    client: &impl GenericClient,
    version: Option<i32>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let query = match version {
        None => None,
        Some(v) if v >= WITH_WORKSPACES => Some("SELECT name FROM xmeta_workspaces"),
        Some(_) => Some("SELECT DISTINCT workspace FROM xmeta_states"),
    };
    let mut names = vec![DEFAULT_WORKSPACE.to_string()];
    if let Some(query) = query {
        for row in client.query(query, &[]).await? {
            names.push(row.get(0));
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

pub async fn status(
    client: &impl GenericClient,
    version: Option<i32>,
    name: &str,
) -> Result<Status, tokio_postgres::Error> {
    let default = name == DEFAULT_WORKSPACE;
    match version {
        Some(v) if v >= WITH_WORKSPACES => {
            let row = client
                .query_typed_opt(
                    "SELECT moved FROM xmeta_workspaces WHERE name = $1",
                    &[(&name, Type::TEXT)],
                )
                .await?;
            Ok(match row {
                Some(row) => Status::Exists(
                    row.get::<_, Option<String>>(0)
                        .map(|m| Moved::decode(m.as_bytes())),
                ),
                None if default => Status::Exists(None),
                None => Status::Missing,
            })
        }
        Some(_) => {
            let found = head(client, name).await?.is_some();
            Ok(if found || default {
                Status::Exists(None)
            } else {
                Status::Missing
            })
        }
        None if default => Ok(Status::Exists(None)),
        None => Ok(Status::Missing),
    }
}

pub fn list(target: &Target) -> anyhow::Result<Vec<String>> {
    let session = Session::connect(target)?;
    session.run(|client| async move {
        let client = client.read().await;
        let version = schema::version(&*client).await?;
        known(&*client, version).await
    })
}

/// What `new` and `delete` found, for their messages.
enum Outcome {
    Done(u64),
    NewerSchema(i32),
    Exists,
    Missing(Vec<String>),
    Locked(crate::state::Holder),
    NotEmpty(u64),
}

pub fn create(target: &Target, name: &str) -> anyhow::Result<()> {
    check_workspace_name(name)?;
    let session = Session::connect(target)?;
    let wanted = name.to_string();
    let outcome = session.run(|client| async move {
        let mut client = client.write().await;
        let version = schema::ensure(&mut client).await?;
        if version > SCHEMA_VERSION {
            return Ok(Outcome::NewerSchema(version));
        }
        let made = client
            .execute(
                "INSERT INTO xmeta_workspaces (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&wanted],
            )
            .await?;
        Ok(if made == 1 {
            Outcome::Done(0)
        } else {
            Outcome::Exists
        })
    })?;
    match outcome {
        Outcome::Done(_) => Ok(()),
        Outcome::Exists => bail!(
            "workspace `{name}` already exists in {}; use it with --workspace {name}",
            target.url_shown()
        ),
        other => Err(refusal(target, name, other)),
    }
}

pub fn delete(target: &Target, name: &str, force: bool) -> anyhow::Result<u64> {
    check_workspace_name(name)?;
    if name == DEFAULT_WORKSPACE {
        bail!("the `default` workspace always exists and cannot be deleted; to empty it, `xmeta state rm` its media");
    }
    let session = Session::connect(target)?;
    let wanted = name.to_string();
    let outcome = session.run(move |client| async move {
        let mut client = client.write().await;
        let version = schema::ensure(&mut client).await?;
        if version > SCHEMA_VERSION {
            return Ok(Outcome::NewerSchema(version));
        }
        if matches!(
            status(&*client, Some(version), &wanted).await?,
            Status::Missing
        ) {
            return Ok(Outcome::Missing(known(&*client, Some(version)).await?));
        }
        let Some(found) = head(&*client, &wanted).await? else {
            client
                .execute("DELETE FROM xmeta_workspaces WHERE name = $1", &[&wanted])
                .await?;
            return Ok(Outcome::Done(0));
        };
        // The writer's own lock, held while deleting: a live writer keeps
        // its workspace, and none can start in between.
        if !try_lock(&*client, found.lock_id).await? {
            return Ok(Outcome::Locked(lock_holder(&client, &wanted).await?));
        }
        let media: i64 = client
            .query_one(
                "SELECT count(*) FROM xmeta_records WHERE workspace = $1",
                &[&wanted],
            )
            .await?
            .get(0);
        let media = u64::try_from(media).unwrap_or(0);
        let outcome = if media > 0 && !force {
            Outcome::NotEmpty(media)
        } else {
            // The state, records, history and lock row go with it.
            client
                .execute("DELETE FROM xmeta_workspaces WHERE name = $1", &[&wanted])
                .await?;
            Outcome::Done(media)
        };
        client
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&LOCK_CLASS, &found.lock_id],
            )
            .await?;
        Ok(outcome)
    })?;
    match outcome {
        Outcome::Done(media) => Ok(media),
        other => Err(refusal(target, name, other)),
    }
}

fn refusal(target: &Target, name: &str, outcome: Outcome) -> anyhow::Error {
    match outcome {
        Outcome::NewerSchema(found) => crate::state::StateError::NewerSchema {
            target: target.to_string(),
            found,
            supported: SCHEMA_VERSION,
        }
        .into(),
        Outcome::Missing(known) => {
            crate::state::workspaces::unknown(name, target.url_shown(), &known).into()
        }
        Outcome::Locked(holder) => anyhow::anyhow!(
            "workspace `{name}` is locked by {holder}; nothing was deleted (wait for that writer to finish)"
        ),
        Outcome::NotEmpty(media) => anyhow::anyhow!(
            "workspace `{name}` holds {media} media; nothing was deleted (keep a copy with `xmeta --workspace {name} state export --out FILE`, then pass --force to delete them with it)"
        ),
        Outcome::Done(_) | Outcome::Exists => {
            anyhow::anyhow!("workspace `{name}` could not be changed")
        }
    }
}
