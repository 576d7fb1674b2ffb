//! The tables, created on first use and versioned: `xmeta_schema` says
//! which version the database holds, and a newer one is refused.

use tokio_postgres::{Client, GenericClient};

/// Bumped when the tables change. 2: `xmeta_history`. 3:
/// `xmeta_workspaces` (workspaces exist explicitly, and carry the mark of
/// a state that moved). 4: `xmeta_previews`.
pub const SCHEMA_VERSION: i32 = 4;

/// The first version with `xmeta_workspaces`.
pub const WITH_WORKSPACES: i32 = 3;

/// The first version with `xmeta_previews`.
pub const WITH_PREVIEWS: i32 = 4;

/// The advisory-lock class of every xmeta lock ("xmet"); the object is
/// 0 for schema changes and a state's `lock_id` for its writer.
pub const LOCK_CLASS: i32 = 0x786d_6574;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS xmeta_schema (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS xmeta_workspaces (
    name text PRIMARY KEY,
    moved text
);
CREATE TABLE IF NOT EXISTS xmeta_states (
    workspace text PRIMARY KEY,
    lock_id integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    format_version integer NOT NULL,
    lineage text NOT NULL,
    serial bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS xmeta_records (
    workspace text NOT NULL REFERENCES xmeta_states (workspace) ON DELETE CASCADE,
    media_id text NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (workspace, media_id)
);
CREATE TABLE IF NOT EXISTS xmeta_history (
    workspace text NOT NULL REFERENCES xmeta_states (workspace) ON DELETE CASCADE,
    serial bigint NOT NULL,
    chunk integer NOT NULL,
    at text NOT NULL,
    entries bytea NOT NULL,
    PRIMARY KEY (workspace, serial, chunk)
);
CREATE TABLE IF NOT EXISTS xmeta_previews (
    workspace text NOT NULL,
    media_id text NOT NULL,
    url text NOT NULL,
    PRIMARY KEY (workspace, media_id),
    FOREIGN KEY (workspace, media_id) REFERENCES xmeta_records (workspace, media_id)
        ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS xmeta_locks (
    workspace text PRIMARY KEY REFERENCES xmeta_states (workspace) ON DELETE CASCADE,
    pid bigint NOT NULL,
    host text NOT NULL,
    command text NOT NULL,
    since text NOT NULL
);
";

/// Version 3's step, for a new database and an older one alike: every
/// workspace that has a state (or a lock row) exists, `default` always,
/// and deleting a workspace deletes its state with it.
const WORKSPACES: &str = "
INSERT INTO xmeta_workspaces (name)
    SELECT 'default' UNION SELECT workspace FROM xmeta_states UNION SELECT workspace FROM xmeta_locks
    ON CONFLICT DO NOTHING;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conname = 'xmeta_states_workspace_exists'
                     AND conrelid = 'xmeta_states'::regclass) THEN
        ALTER TABLE xmeta_states ADD CONSTRAINT xmeta_states_workspace_exists
            FOREIGN KEY (workspace) REFERENCES xmeta_workspaces (name) ON DELETE CASCADE;
    END IF;
END $$;
";

/// Creates the tables if needed (one process at a time, under a
/// transaction-scoped advisory lock) and returns the version found.
pub async fn ensure(client: &mut Client) -> Result<i32, tokio_postgres::Error> {
    // Tables of this version need nothing (versions only go up): two
    // round trips, without the transaction and its lock.
    if let Some(SCHEMA_VERSION) = version(&*client).await? {
        return Ok(SCHEMA_VERSION);
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_CLASS])
        .await?;
    match version(&tx).await? {
        // Version 1 had no history, 2 no workspaces, 3 no previews: the
        // new tables are added, and the workspaces of the states there
        // made to exist.
        Some(1..=3) => {
            tx.batch_execute(CREATE).await?;
            tx.batch_execute(WORKSPACES).await?;
            tx.execute("UPDATE xmeta_schema SET version = $1", &[&SCHEMA_VERSION])
                .await?;
            tx.commit().await?;
            return Ok(SCHEMA_VERSION);
        }
        // Never touch tables of another version.
        Some(found) => {
            tx.commit().await?;
            return Ok(found);
        }
        None => {}
    }
    tx.batch_execute(CREATE).await?;
    tx.batch_execute(WORKSPACES).await?;
    tx.execute(
        "INSERT INTO xmeta_schema (version) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&SCHEMA_VERSION],
    )
    .await?;
    let version: i32 = tx
        .query_one("SELECT version FROM xmeta_schema", &[])
        .await?
        .get(0);
    tx.commit().await?;
    Ok(version)
}

/// The version of the tables, or `None` when xmeta never wrote here;
/// reads only.
pub async fn version(client: &impl GenericClient) -> Result<Option<i32>, tokio_postgres::Error> {
    // Typed: one round trip each, where `query` takes three (prepare,
    // execute, close); see `super::open_writer`.
    let exists: bool = client
        .query_typed_one("SELECT to_regclass('xmeta_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_typed_opt("SELECT version FROM xmeta_schema", &[])
        .await?;
    Ok(row.map(|r| r.get(0)))
}
