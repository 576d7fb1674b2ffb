//! The tables, created on first use and versioned: `xmeta_schema` says
//! which version the database holds, and a newer one is refused.

use tokio_postgres::{Client, GenericClient};

/// Bumped when the tables change. 2: `xmeta_history`. 3:
/// `xmeta_workspaces` (workspaces exist explicitly, and carry the mark of
/// a state that moved). 4: `xmeta_previews`. 5: `xmeta_records.digest`.
pub const SCHEMA_VERSION: i32 = 5;

/// The first version with `xmeta_workspaces`.
pub const WITH_WORKSPACES: i32 = 3;

/// The first version with `xmeta_previews`.
pub const WITH_PREVIEWS: i32 = 4;

/// The first version with `xmeta_records.digest`.
pub const WITH_DIGESTS: i32 = 5;

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

/// Version 5's step: each record's digest, worked out by the server as the
/// record is written, so that a plan's digest scan receives 32 bytes a
/// media instead of the record, and hashes nothing (a no-op plan of
/// 100,000 media was sent 32 MB and hashed them all). The server does
/// what `Digest::stated` does, for the form `Record::encode` writes
/// (`{"metadata":…,"applied_at":…,"digest":"sha256:<hex>"}`): the digest
/// is the SHA-256 of the metadata's bytes if the record states it, and
/// NULL for any other record, which a scan then reads and checks itself.
/// Generated, not written by xmeta: a record whose metadata or stated
/// digest is changed by hand (SQL) gets the digest of what it now holds
/// (or NULL), so a plan reads it in full and refuses it, as before. A
/// change elsewhere (`applied_at`) is not covered by the digest, and is
/// found when the record is read in full, as on sled. The tail is 84
/// bytes: `,"digest":"sha256:` (18), the 64 hex digits, `"}`; the
/// metadata starts at byte 13, after `{"metadata":`. Adding the column
/// rewrites the table once (see `open_reader` for its readers).
const DIGESTS: &str = r#"
ALTER TABLE xmeta_records ADD COLUMN IF NOT EXISTS digest bytea GENERATED ALWAYS AS (
    CASE WHEN substring(record FROM 1 FOR 12) = '{"metadata":'::bytea
          AND position(',"applied_at":'::bytea IN record) > 13
          AND substring(record FROM length(record) - 83 FOR 18) = ',"digest":"sha256:'::bytea
          AND substring(record FROM length(record) - 1) = '"}'::bytea
          AND encode(substring(record FROM length(record) - 65 FOR 64), 'escape')
              = encode(sha256(substring(record FROM 13
                    FOR greatest(position(',"applied_at":'::bytea IN record) - 13, 0))), 'hex')
    -- The stated digest, which is the metadata's (one SHA-256 a record).
    THEN decode(encode(substring(record FROM length(record) - 65 FOR 64), 'escape'), 'hex')
    END) STORED;
"#;

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
        // Version 1 had no history, 2 no workspaces, 3 no previews, 4
        // no digests: the new tables and column are added, and the
        // workspaces of the states there made to exist.
        Some(1..=4) => {
            make_tables(&tx).await?;
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
    make_tables(&tx).await?;
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

/// Every table and column of this version, for a new database and an
/// older one alike (each step leaves what is there).
async fn make_tables(tx: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(CREATE).await?;
    tx.batch_execute(WORKSPACES).await?;
    tx.batch_execute(DIGESTS).await
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
