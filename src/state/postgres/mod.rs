//! The PostgreSQL backend: states shared by a team and its CI runners,
//! told apart by workspace in one database.
//!
//! - A writer holds a session advisory lock on its one connection for its
//!   whole run, so a writer that dies releases the lock with its session,
//!   and every write goes over that same connection: a writer that lost
//!   its session (and so its lock) cannot write any more.
//! - Each write is one transaction that also bumps the serial; it is
//!   committed before the media counts as done.
//! - A reader reads one snapshot (a read-only repeatable-read
//!   transaction) and never waits for a writer.

mod previews;
mod schema;
mod session;
mod target;
mod tls;
pub mod workspaces;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use tokio::sync::RwLock;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Statement};

pub use target::{check_workspace_name, Target};

use super::history::{self, Event};
use super::moved::Moved;
use super::{
    new_lineage, Digest, Empty, Filter, Holder, LockError, Provenance, Record, Recording,
    Replacement, StateError, StateReader, StateWriter, VisitEntries, VisitRecords, Writable,
    FORMAT_VERSION, RECORD_BATCH,
};
use crate::model::Digests;
use crate::model::{MediaId, Metadata};
use crate::time::Timestamp;
use schema::{LOCK_CLASS, SCHEMA_VERSION};
use session::Session;
use workspaces::Status;

/// How long a writer waits for a lock whose holder's session is ending
/// (a killed writer's connection takes a moment to be noticed closed).
const LOCK_WAIT: &str = "1s";

type Shared = Arc<RwLock<Client>>;

const GET: &str =
    "SELECT media_id, record FROM xmeta_records WHERE workspace = $1 AND media_id = $2";
const GET_MANY: &str =
    "SELECT media_id, record FROM xmeta_records WHERE workspace = $1 AND media_id = ANY($2)";
/// The lengths of the media IDs held, for `each_record`.
const RECORD_LENGTHS: &str = "SELECT DISTINCT length(media_id)::integer FROM xmeta_records \
     WHERE workspace = $1 ORDER BY 1";
/// A page of records in the key's order: a walk of the key's index. With
/// `length(media_id) = $n` in it, the server estimated that filter at
/// 0.5% of the rows and sorted the whole workspace for every page.
const RECORDS_AFTER: &str = "SELECT media_id, record FROM xmeta_records \
     WHERE workspace = $1 AND media_id > $2 ORDER BY media_id LIMIT $3";
const CHUNKS_BEFORE: &str = "SELECT serial, chunk, entries FROM xmeta_history \
     WHERE workspace = $1 AND (serial, chunk) < ($2, $3) ORDER BY serial DESC, chunk DESC LIMIT $4";
/// History chunks read at once (up to 512 entries each).
const CHUNK_PAGE: i64 = 256;
const PUT: &str = "INSERT INTO xmeta_records (workspace, media_id, record) \
     SELECT $1, id, record FROM unnest($2::text[], $3::bytea[]) AS r(id, record) \
     ON CONFLICT (workspace, media_id) DO UPDATE SET record = excluded.record";
const HISTORY: &str = "INSERT INTO xmeta_history (workspace, serial, chunk, at, entries) \
     SELECT $1, s, c, a, e \
     FROM unnest($2::bigint[], $3::int[], $4::text[], $5::bytea[]) AS h(s, c, a, e)";
/// Records, their history chunks ($4) and the serial in one statement: one
/// round trip, atomic without an explicit transaction. The serial is the
/// writer's ($5): it alone writes, and concurrent writes may arrive in
/// any order, so the state keeps the greatest.
const PUT_AND_BUMP: &str = "WITH put AS (\
     INSERT INTO xmeta_records (workspace, media_id, record) \
     SELECT $1, id, record FROM unnest($2::text[], $3::bytea[]) AS r(id, record) \
     ON CONFLICT (workspace, media_id) DO UPDATE SET record = excluded.record RETURNING 1), \
     hist AS (INSERT INTO xmeta_history (workspace, serial, chunk, at, entries) \
     SELECT $1, $5, n - 1, $6, e FROM unnest($4::bytea[]) WITH ORDINALITY AS h(e, n) RETURNING 1) \
     UPDATE xmeta_states SET serial = GREATEST(serial, $5) WHERE workspace = $1";
const DELETE_AND_BUMP: &str = "WITH gone AS (\
     DELETE FROM xmeta_records WHERE workspace = $1 AND media_id = ANY($2) RETURNING 1), \
     hist AS (INSERT INTO xmeta_history (workspace, serial, chunk, at, entries) \
     SELECT $1, $4, n - 1, $5, e FROM unnest($3::bytea[]) WITH ORDINALITY AS h(e, n) RETURNING 1) \
     UPDATE xmeta_states SET serial = GREATEST(serial, $4) WHERE workspace = $1";

/// The statements of every record write, prepared once per connection so
/// each use is one round trip.
#[derive(Clone)]
struct Prepared {
    get: Statement,
    get_many: Statement,
    put: Statement,
    delete: Statement,
}

async fn prepare(client: &Client) -> Result<Prepared, tokio_postgres::Error> {
    // Together: one round trip for the four.
    let (get, get_many, put, delete) = futures::try_join!(
        client.prepare(GET),
        client.prepare(GET_MANY),
        client.prepare(PUT_AND_BUMP),
        client.prepare(DELETE_AND_BUMP),
    )?;
    Ok(Prepared {
        get,
        get_many,
        put,
        delete,
    })
}

/// The head of one workspace's state.
/// A typed statement's parameter: its value and its type.
type Param<'a> = (&'a (dyn tokio_postgres::types::ToSql + Sync), Type);

struct Head {
    lock_id: i32,
    format_version: i32,
    lineage: String,
    serial: i64,
}

async fn head(
    client: &impl GenericClient,
    workspace: &str,
) -> Result<Option<Head>, tokio_postgres::Error> {
    let row = client
        .query_typed_opt(
            "SELECT lock_id, format_version, lineage, serial FROM xmeta_states WHERE workspace = $1",
            &[(&workspace, Type::TEXT)],
        )
        .await?;
    Ok(row.map(|r| Head {
        lock_id: r.get(0),
        format_version: r.get(1),
        lineage: r.get(2),
        serial: r.get(3),
    }))
}

fn damaged(target: &Target, cause: String) -> anyhow::Error {
    StateError::DamagedInDatabase {
        target: target.to_string(),
        cause,
    }
    .into()
}

/// A row of `Rows::digests_query`: its media's ID and digest, or why the
/// row is damaged.
fn row_digest(row: &tokio_postgres::Row) -> Result<(MediaId, Digest), String> {
    let id: &str = row.get(0);
    let Some(id) = MediaId::parse(id) else {
        let shown = crate::untrusted::neutralise(id, 40);
        return Err(format!("`{shown}` is not a media ID"));
    };
    let vouched: Option<&[u8]> = row.get(1);
    let digest = match vouched.and_then(Digest::from_bytes) {
        Some(digest) => Ok(digest),
        None => Digest::stated(row.get::<_, Option<&[u8]>>(2).unwrap_or_default()),
    };
    digest
        .map(|digest| (id, digest))
        .map_err(|e| format!("the record of media {id}: {e}"))
}

/// Digests a part of `send_digests` (390 KB of them): parts of 2,048 took
/// 60 ms more of a no-op plan of 100,000 media, each a wait on the session.
const DIGESTS_PART: usize = 8192;

/// The rows of `query` (an ordered `Rows::digests_query`), as digests, a
/// part at a time to `parts` (`Session::stream`).
async fn send_digests(
    client: Arc<RwLock<Client>>,
    parts: tokio::sync::mpsc::Sender<Vec<Result<(MediaId, Digest), String>>>,
    query: String,
    workspace: String,
) -> Result<(), tokio_postgres::Error> {
    use futures::TryStreamExt;
    let client = client.read().await;
    let rows = client.query_raw(query.as_str(), [&workspace]).await?;
    futures::pin_mut!(rows);
    let mut part = Vec::with_capacity(DIGESTS_PART);
    while let Some(row) = rows.try_next().await? {
        part.push(row_digest(&row));
        if part.len() == DIGESTS_PART {
            let full = std::mem::replace(&mut part, Vec::with_capacity(DIGESTS_PART));
            if parts.send(full).await.is_err() {
                return Ok(());
            }
        }
    }
    let _ = parts.send(part).await;
    Ok(())
}

fn check_versions(target: &Target, schema: i32, format: Option<i32>) -> anyhow::Result<()> {
    if schema > SCHEMA_VERSION {
        return Err(StateError::NewerSchema {
            target: target.to_string(),
            found: schema,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    if let Some(found) = format.filter(|f| *f > FORMAT_VERSION as i32) {
        return Err(StateError::NewerInDatabase {
            target: target.to_string(),
            found,
            supported: FORMAT_VERSION,
        }
        .into());
    }
    Ok(())
}

/// Whether the workspace holds a state, and its moved mark; a workspace
/// that does not exist is refused (see `workspaces.rs`).
pub fn exists(target: &Target) -> anyhow::Result<(bool, Option<Moved>)> {
    let session = Session::connect(target)?;
    let workspace = target.workspace.clone();
    let found = session.run(|client| async move {
        let client = client.read().await;
        let (version, status, head) = presence(&client, &workspace).await?;
        match status {
            Status::Missing => Ok(Err(workspaces::known(&*client, version).await?)),
            Status::Exists(moved) => Ok(Ok((head.is_some(), moved))),
        }
    })?;
    match found {
        Ok(found) => Ok(found),
        Err(_) if target.create_workspace => Ok((false, None)),
        Err(known) => Err(unknown(target, &known)),
    }
}

/// What `exists` asks, with the tables as they are (nothing is made or
/// upgraded): the schema's version, the workspace's status and the
/// state's head, the last two in one round trip.
async fn presence(
    client: &Client,
    workspace: &str,
) -> Result<(Option<i32>, Status, Option<Head>), tokio_postgres::Error> {
    let version = schema::version(client).await?;
    let (status, head) = match version {
        Some(_) => futures::try_join!(
            workspaces::status(client, version, workspace),
            head(client, workspace),
        )?,
        None => (workspaces::status(client, None, workspace).await?, None),
    };
    Ok((version, status, head))
}

fn unknown(target: &Target, known: &[String]) -> anyhow::Error {
    super::workspaces::unknown(&target.workspace, target.url_shown(), known).into()
}

/// Opens one snapshot of the state, with its moved mark; a missing state
/// reads as empty, and a workspace that does not exist is refused (or,
/// with `--create-workspace`, read as the empty state it will be).
pub fn open_reader(target: &Target) -> anyhow::Result<(Box<dyn StateReader>, Option<Moved>)> {
    let session = Session::connect(target)?;
    let workspace = target.workspace.clone();
    let found = session.run(|client| async move {
        let client = client.read().await;
        // Left open for the reader's life: every read sees this snapshot.
        // Sent with the first statement after it, as the rest go in pairs.
        let ((), mut version) = futures::try_join!(
            client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
            schema::version(&*client),
        )?;
        // The upgrade to schema 5 rewrites `xmeta_records`, and a snapshot
        // taken before the rewrite commits sees the table empty (it is not
        // MVCC-safe): a plan would show every media as new. Before that
        // schema, the snapshot is taken again behind a lock on the table,
        // which waits for an upgrade under way and holds off one to come.
        if version.is_some_and(|v| v < schema::WITH_DIGESTS) {
            client
                .batch_execute(
                    "COMMIT; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                     LOCK TABLE xmeta_records IN ACCESS SHARE MODE",
                )
                .await?;
            version = schema::version(&*client).await?;
        }
        // The record read is prepared in the same round trip, from tables
        // whose layout this xmeta knows (a newer schema is refused below).
        let (status, head, get) = match version {
            Some(v) if v <= SCHEMA_VERSION => futures::try_join!(
                workspaces::status(&*client, version, &workspace),
                head(&*client, &workspace),
                client.prepare(GET),
            )
            .map(|(status, head, get)| (status, Some(head), Some(get)))?,
            Some(_) => futures::try_join!(
                workspaces::status(&*client, version, &workspace),
                head(&*client, &workspace),
            )
            .map(|(status, head)| (status, Some(head), None))?,
            None => (
                workspaces::status(&*client, version, &workspace).await?,
                None,
                None,
            ),
        };
        let moved = match status {
            Status::Missing => return Ok(Err(workspaces::known(&*client, version).await?)),
            Status::Exists(moved) => moved,
        };
        let (Some(version), Some(head)) = (version, head) else {
            return Ok(Ok(None));
        };
        Ok(Ok(Some((version, head, get, moved))))
    })?;
    let found = match found {
        Ok(found) => found,
        Err(_) if target.create_workspace => return Ok((Box::new(Empty), None)),
        Err(known) => return Err(unknown(target, &known)),
    };
    let Some((version, head, get, moved)) = found else {
        return Ok((Box::new(Empty), None));
    };
    check_versions(target, version, head.as_ref().map(|h| h.format_version))?;
    let reader: Box<dyn StateReader> = match (head, get) {
        (None, _) => Box::new(Empty),
        (Some(_), None) => bail!("the state at {target} cannot be read"),
        (Some(head), Some(get)) => Box::new(PgReader {
            rows: Rows {
                get,
                get_many: None,
                session,
                snapshot: Some((head.lineage, head.serial as u64)),
                has_history: version >= 2,
                has_previews: version >= schema::WITH_PREVIEWS,
                has_digests: version >= schema::WITH_DIGESTS,
            },
        }),
    };
    Ok((reader, moved))
}

/// Takes the workspace's lock (creating the tables and the state if
/// needed) or fails naming its holder. A workspace that does not exist is
/// refused unless `--create-workspace` makes it; one that moved is
/// returned as such, untouched.
pub fn open_writer(
    target: &Target,
    command: &str,
    provenance: &Provenance,
) -> anyhow::Result<Writable> {
    open_writer_as(target, command, provenance, false)?
        .ok_or_else(|| anyhow!("the state at {target} cannot be opened"))
}

/// `open_writer` of a state that exists (see `exists`): `None`, and
/// nothing created, when there is none; on the one connection that then
/// takes the lock (a second connection's set-up is five round trips).
pub fn open_existing_writer(
    target: &Target,
    command: &str,
    provenance: &Provenance,
) -> anyhow::Result<Option<Writable>> {
    open_writer_as(target, command, provenance, true)
}

fn open_writer_as(
    target: &Target,
    command: &str,
    provenance: &Provenance,
    existing: bool,
) -> anyhow::Result<Option<Writable>> {
    let session = Session::connect(target)?;
    let workspace = target.workspace.clone();
    let create = target.create_workspace;
    let me = Holder::me(command);
    let holder = me.clone();
    let lineage = new_lineage();
    // A state away from CI pays a round trip for each statement here: they
    // are typed (`query_typed`: one round trip, where `execute` takes
    // three), and those that do not wait on each other's answers are sent
    // together (tokio-postgres pipelines futures polled at once, and the
    // server runs them in order). About 33 round trips became 6 or 7.
    let opened = session.run(move |client| async move {
        let mut client = client.write().await;
        // In the existing mode, whether there is a state is asked first,
        // with the tables as they are, as `exists` asks: nothing is made
        // or upgraded for a state that is not there.
        let existing_head = if existing {
            let (version, status, found) = presence(&client, &workspace).await?;
            match (status, found) {
                (Status::Missing, _) if !create => {
                    return Ok(Err(Refusal::Unknown(
                        workspaces::known(&*client, version).await?,
                    )));
                }
                (Status::Exists(Some(moved)), _) => return Ok(Err(Refusal::Moved(moved))),
                (_, None) | (Status::Missing, _) => return Ok(Err(Refusal::Absent)),
                (Status::Exists(None), Some(found)) => Some((version, found)),
            }
        } else {
            None
        };
        let version = match &existing_head {
            Some((Some(SCHEMA_VERSION), _)) => SCHEMA_VERSION,
            _ => schema::ensure(&mut client).await?,
        };
        if version > SCHEMA_VERSION {
            return Ok(Err(Refusal::Versions(version, None)));
        }
        let client = &*client;
        let format = FORMAT_VERSION as i32;
        let state: [Param<'_>; 3] = [
            (&workspace, Type::TEXT),
            (&format, Type::INT4),
            (&lineage, Type::TEXT),
        ];
        let found = if let Some((_, found)) = existing_head {
            found
        } else {
            if matches!(
                workspaces::status(client, Some(version), &workspace).await?,
                Status::Missing
            ) && !create
            {
                return Ok(Err(Refusal::Unknown(
                    workspaces::known(client, Some(version)).await?,
                )));
            }
            // `default` too: it always exists, so it may have no row yet.
            let named: [Param<'_>; 1] = [(&workspace, Type::TEXT)];
            let ((_, _), found) = futures::try_join!(
                futures::future::try_join(
                    client.query_typed(
                        "INSERT INTO xmeta_workspaces (name) VALUES ($1) ON CONFLICT DO NOTHING",
                        &named,
                    ),
                    client.query_typed(
                        "INSERT INTO xmeta_states (workspace, format_version, lineage, serial) \
                         VALUES ($1, $2, $3, 0) ON CONFLICT (workspace) DO NOTHING",
                        &state,
                    ),
                ),
                head(client, &workspace),
            )?;
            let Some(found) = found else {
                return Ok(Err(Refusal::Vanished));
            };
            found
        };
        if found.format_version > FORMAT_VERSION as i32 {
            return Ok(Err(Refusal::Versions(version, Some(found.format_version))));
        }
        let timeout = format!("SET lock_timeout = '{LOCK_WAIT}'");
        let lock: [Param<'_>; 2] = [(&LOCK_CLASS, Type::INT4), (&found.lock_id, Type::INT4)];
        let (timed, locked) = futures::join!(
            client.batch_execute(&timeout),
            client.query_typed("SELECT pg_advisory_lock($1, $2)", &lock),
        );
        timed?;
        match locked {
            Ok(_) => {}
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                return Ok(Err(Refusal::Held(lock_holder(client, &workspace).await?)));
            }
            Err(e) => return Err(e),
        }
        // Only now, under the lock: `state migrate` marks its source
        // while holding it, so a writer that got in after it sees the mark.
        // The serial only now too: the previous holder may have written
        // until it let go, and this writer numbers its writes from here.
        let ((), status, locked) = futures::try_join!(
            client.batch_execute("RESET lock_timeout"),
            workspaces::status(client, Some(version), &workspace),
            head(client, &workspace),
        )?;
        if let Status::Exists(Some(moved)) = status {
            return Ok(Err(Refusal::Moved(moved)));
        }
        let Some(locked) = locked else {
            return Ok(Err(Refusal::Vanished));
        };
        let serial = locked.serial;
        let (pid, since) = (i64::from(holder.pid), holder.since.map(|t| t.to_string()));
        let me: [Param<'_>; 5] = [
            (&workspace, Type::TEXT),
            (&pid, Type::INT8),
            (&holder.host, Type::TEXT),
            (&holder.command, Type::TEXT),
            (&since, Type::TEXT),
        ];
        let (_, _, prepared) = futures::try_join!(
            client.query_typed(
                "INSERT INTO xmeta_locks (workspace, pid, host, command, since) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace) DO UPDATE SET \
                 pid = excluded.pid, host = excluded.host, command = excluded.command, since = excluded.since",
                &me,
            ),
            // Format 1 had no history; its history starts now.
            client.query_typed(
                "UPDATE xmeta_states SET format_version = $2 WHERE workspace = $1",
                &state[..2],
            ),
            prepare(client),
        )?;
        Ok(Ok((prepared, serial)))
    })?;
    let writable = match opened {
        Ok((prepared, serial)) => Writable::Open(Box::new(PgWriter {
            rows: Rows {
                session,
                get: prepared.get.clone(),
                get_many: Some(prepared.get_many.clone()),
                snapshot: None,
                has_history: true,
                has_previews: true,
                has_digests: true,
            },
            prepared,
            me,
            provenance: std::sync::RwLock::new(provenance.clone()),
            serial: std::sync::atomic::AtomicU64::new(u64::try_from(serial).unwrap_or(0)),
            changed: std::sync::atomic::AtomicUsize::new(0),
        })),
        // The session ends here, and the lock with it.
        Err(Refusal::Moved(moved)) => Writable::Moved(moved),
        Err(Refusal::Absent) => return Ok(None),
        Err(Refusal::Unknown(known)) => return Err(unknown(target, &known)),
        Err(Refusal::Versions(schema, format)) => {
            check_versions(target, schema, format)?;
            bail!("the state at {target} cannot be opened")
        }
        Err(Refusal::Held(holder)) => {
            return Err(LockError::HeldInDatabase {
                location: target.to_string(),
                holder,
            }
            .into())
        }
        Err(Refusal::Vanished) => {
            bail!("the state at {target} was deleted while opening it; run again")
        }
    };
    Ok(Some(writable))
}

enum Refusal {
    /// No state (`open_existing_writer` only).
    Absent,
    Versions(i32, Option<i32>),
    Held(Holder),
    Vanished,
    Unknown(Vec<String>),
    Moved(Moved),
}

/// Takes a workspace's writer lock on this session if no live session
/// holds it (a dead writer's went with its session).
async fn try_lock(
    client: &impl tokio_postgres::GenericClient,
    lock_id: i32,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&LOCK_CLASS, &lock_id],
        )
        .await?
        .get(0))
}

async fn lock_holder(client: &Client, workspace: &str) -> Result<Holder, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT pid, host, command, since FROM xmeta_locks WHERE workspace = $1",
            &[&workspace],
        )
        .await?;
    Ok(row.map_or_else(Holder::unknown, |r| Holder {
        pid: u32::try_from(r.get::<_, i64>(0)).unwrap_or(0),
        host: r.get(1),
        command: r.get(2),
        since: Timestamp::parse(r.get(3)),
    }))
}

/// A database lock cannot go stale (it ends with its session): a live
/// holder is refused, and a row left by a dead one is cleared.
pub fn force_unlock(target: &Target) -> anyhow::Result<Option<Holder>> {
    let session = Session::connect(target)?;
    let workspace = target.workspace.clone();
    let live = session.run(|client| async move {
        let client = client.read().await;
        let version = schema::version(&*client).await?;
        if let Status::Missing = workspaces::status(&*client, version, &workspace).await? {
            return Ok(Err(workspaces::known(&*client, version).await?));
        }
        if version.is_none() {
            return Ok(Ok(None));
        }
        let Some(found) = head(&*client, &workspace).await? else {
            return Ok(Ok(None));
        };
        if try_lock(&*client, found.lock_id).await? {
            client
                .execute(
                    "DELETE FROM xmeta_locks WHERE workspace = $1",
                    &[&workspace],
                )
                .await?;
            return Ok(Ok(None));
        }
        Ok(Ok(Some((
            lock_holder(&client, &workspace).await?,
            found.lock_id,
        ))))
    })?;
    let (holder, lock_id) = match live {
        Err(known) => return Err(unknown(target, &known)),
        Ok(None) => return Ok(None),
        Ok(Some(held)) => held,
    };
    if !holder_is_gone(&holder) {
        bail!(
            "the state lock at {target} is held by a live database session: {holder}; PostgreSQL releases it when that session ends, so stop that process instead of forcing"
        );
    }
    // The holder's process is gone, but the server still lists its session
    // (a frozen connection: the server notices only at its keepalive).
    crate::logging::line(
        "warning",
        &format!(
            "the lock's holder, pid {} on this host, is gone, but its database session is still open; ending that session",
            holder.pid
        ),
    );
    let workspace = target.workspace.clone();
    session.run(move |client| async move {
        let client = client.read().await;
        client
            .execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                 AND l.classid = ($1::int4)::oid AND l.objid = ($2::int4)::oid",
                &[&LOCK_CLASS, &lock_id],
            )
            .await?;
        // Taken once the ended session has let go (within seconds).
        client.batch_execute("SET lock_timeout = '10s'").await?;
        client
            .execute("SELECT pg_advisory_lock($1, $2)", &[&LOCK_CLASS, &lock_id])
            .await?;
        client
            .execute(
                "DELETE FROM xmeta_locks WHERE workspace = $1",
                &[&workspace],
            )
            .await?;
        client.execute("SELECT pg_advisory_unlock_all()", &[]).await
    })?;
    Ok(Some(holder))
}

/// Whether a lock's holder is known to be gone: it ran on this host and no
/// process has its pid. A holder on another host cannot be checked from
/// here, and is taken as alive.
fn holder_is_gone(holder: &Holder) -> bool {
    if holder.pid == 0 || holder.host != super::holder::hostname() {
        return false;
    }
    let Some(pid) = i32::try_from(holder.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // ESRCH: no such process; EPERM means one exists (another user's).
    matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// The reads a reader and a writer share.
struct Rows {
    session: Session,
    get: Statement,
    /// A writer's `GET_MANY`, prepared: apply reads each group of
    /// confirmations with it, in one round trip.
    get_many: Option<Statement>,
    /// A reader's lineage and serial, read once in its snapshot; a writer
    /// reads them afresh (`None`).
    snapshot: Option<(String, u64)>,
    /// Whether the schema has the history table (version 2 on).
    has_history: bool,
    /// Whether it has the previews table (version 4 on).
    has_previews: bool,
    /// Whether the records have the server's digests (version 5 on).
    has_digests: bool,
}

impl Rows {
    fn workspace(&self) -> String {
        self.session.target.workspace.clone()
    }

    fn decode(&self, id: &str, value: &[u8]) -> anyhow::Result<(MediaId, Record)> {
        let target = &self.session.target;
        let id = MediaId::parse(id).ok_or_else(|| {
            damaged(
                target,
                format!(
                    "`{}` is not a media ID",
                    crate::untrusted::neutralise(id, 40)
                ),
            )
        })?;
        let record = Record::decode(value)
            .map_err(|e| damaged(target, format!("the record of media {id}: {e}")))?;
        Ok((id, record))
    }

    /// Each record's ID and digest: the one the server worked out when it
    /// was written (`schema::DIGESTS`); only a record it could not vouch
    /// for (or any, in tables before schema 5) is sent, and checked here
    /// (`row_digest`).
    fn ordered_digests_query(&self) -> String {
        format!("{} ORDER BY media_id", self.digests_query())
    }

    fn digests_query(&self) -> &'static str {
        if self.has_digests {
            "SELECT media_id, digest, CASE WHEN length(digest) = 32 THEN NULL ELSE record END \
             FROM xmeta_records WHERE workspace = $1"
        } else {
            "SELECT media_id, NULL::bytea, record FROM xmeta_records WHERE workspace = $1"
        }
    }

    fn head(&self) -> anyhow::Result<(String, u64)> {
        let workspace = self.workspace();
        let found = self
            .session
            .run(|client| async move { head(&*client.read().await, &workspace).await })?;
        let found = found.ok_or_else(|| {
            anyhow!(
                "the state at {} was deleted while this writer held it",
                self.session.target
            )
        })?;
        Ok((found.lineage, found.serial as u64))
    }
}

impl StateReader for Rows {
    fn exists(&self) -> bool {
        true
    }

    fn lineage(&self) -> anyhow::Result<Option<String>> {
        let lineage = match &self.snapshot {
            Some((lineage, _)) => lineage.clone(),
            None => self.head()?.0,
        };
        Ok(Some(lineage).filter(|l| !l.is_empty()))
    }

    fn serial(&self) -> anyhow::Result<u64> {
        match &self.snapshot {
            Some((_, serial)) => Ok(*serial),
            None => Ok(self.head()?.1),
        }
    }

    /// A page at a time, by keyset over the primary key: IDs are digits,
    /// so ID order is by length, then text (one walk per length found).
    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        let workspace = self.workspace();
        let lengths: Vec<i32> = self.session.run(|client| async move {
            let rows = client
                .read()
                .await
                .query(RECORD_LENGTHS, &[&workspace])
                .await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })?;
        // One walk per length, each keeping its length's IDs: one walk in
        // all when every ID is as long (X's are 19 digits).
        let several = lengths.len() > 1;
        for length in lengths {
            let mut after = String::new();
            loop {
                let (workspace, from) = (self.workspace(), after.clone());
                let mut rows = self.session.run(|client| async move {
                    let client = client.read().await;
                    let page = i64::try_from(RECORD_BATCH).unwrap_or(i64::MAX);
                    client
                        .query(RECORDS_AFTER, &[&workspace, &from, &page])
                        .await
                })?;
                let Some(last) = rows.last() else { break };
                after = last.get::<_, &str>(0).to_string();
                let full = rows.len() == RECORD_BATCH;
                if several {
                    let wanted = usize::try_from(length).unwrap_or(usize::MAX);
                    rows.retain(|row| row.get::<_, &str>(0).chars().count() == wanted);
                }
                // Decoding (JSON and digest) is most of the cost: spread
                // it over the cores.
                let decoded = crate::parallel::map_chunks(&rows, |part| {
                    part.iter()
                        .map(|row| self.decode(row.get(0), row.get(1)))
                        .collect::<anyhow::Result<Vec<_>>>()
                });
                drop(rows);
                let mut batch = Vec::with_capacity(RECORD_BATCH);
                for part in decoded {
                    batch.extend(part?);
                }
                if !batch.is_empty() {
                    visit(batch)?;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }

    /// A reader's are handed over in parts as they are compared: its plan
    /// is the whole command, and so holds none of them beside its parsed
    /// manifests (4 MB at 100,000 media, 40 MB at 1,000,000). The query is
    /// sent beside the parse (`read_digests_ahead`) and the server waits
    /// on the socket until the plan compares. In ID order, along the
    /// primary key, with no sort. The key is text: IDs of one length come
    /// in numeric order. IDs of mixed lengths (X's older media have 18
    /// digits, today's 19) come out of order, found when the first such
    /// ID arrives, which can be late (every 19-digit "1…" comes before an
    /// 18-digit "5…"): the plan then reads `digests` whole, a second read.
    /// The query stays open while the parse runs, which counts towards a
    /// `statement_timeout` set in the URL. A writer's (an apply's) are
    /// read whole beside its parse, as before: not tried streamed ahead.
    fn streams_digests(&self) -> bool {
        self.snapshot.is_some()
    }

    fn read_digests_ahead(&self) {
        if self.streams_digests() {
            let (query, workspace) = (self.ordered_digests_query(), self.workspace());
            self.session
                .stream_ahead(move |client, parts| send_digests(client, parts, query, workspace));
        }
    }

    fn each_digest(&self, visit: &mut dyn FnMut(MediaId, &Digest)) -> anyhow::Result<bool> {
        let (query, workspace) = (self.ordered_digests_query(), self.workspace());
        let mut last: Option<MediaId> = None;
        let mut found: Result<bool, String> = Ok(true);
        self.session.stream(
            move |client, parts| send_digests(client, parts, query, workspace),
            |part| {
                for digest in part {
                    match digest {
                        Ok((id, _)) if last.is_some_and(|last| last >= id) => {
                            found = Ok(false);
                            return false;
                        }
                        Ok((id, digest)) => {
                            last = Some(id);
                            visit(id, &digest);
                        }
                        Err(reason) => {
                            found = Err(reason);
                            return false;
                        }
                    }
                }
                true
            },
        )?;
        found.map_err(|reason| damaged(&self.session.target, reason))
    }

    /// Rows streamed from the server and reduced to digests as they come:
    /// the records are never all in memory. In the table's order, with no
    /// `ORDER BY`: sorted by the server, every record went through the
    /// sort (a spill to disk at 1,000,000 media). A table written in ID
    /// order (`adopt`, `import`) comes back in it, and the digests fill
    /// their blocks as they come; otherwise they are sorted here, held
    /// twice for a moment (44 MB more at 1,000,000).
    fn digests(&self) -> anyhow::Result<Digests> {
        use futures::TryStreamExt;
        let workspace = self.workspace();
        let query = self.digests_query();
        let stated = self.session.run(|client| async move {
            let client = client.read().await;
            let rows = client.query_raw(query, [&workspace]).await?;
            let mut out = crate::model::DigestsBuilder::default();
            futures::pin_mut!(rows);
            while let Some(row) = rows.try_next().await? {
                match row_digest(&row) {
                    Ok((id, digest)) => out.push(id, digest),
                    Err(reason) => return Ok(Err(reason)),
                }
            }
            Ok(Ok(out.finish()))
        })?;
        stated.map_err(|reason| damaged(&self.session.target, reason))
    }

    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let mut out = BTreeMap::new();
        for part in ids.chunks(10_000) {
            let workspace = self.workspace();
            let keys: Vec<String> = part.iter().map(ToString::to_string).collect();
            let rows = self.session.run(|client| async move {
                client
                    .read()
                    .await
                    .query(GET_MANY, &[&workspace, &keys])
                    .await
            })?;
            for row in &rows {
                let (id, record) = self.decode(row.get(0), row.get(1))?;
                out.insert(id, record);
            }
        }
        Ok(out)
    }

    /// `GET_MANY` leaves out what the state does not hold.
    fn get_present(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let Some(statement) = self.get_many.clone() else {
            return self.get_many(ids);
        };
        let workspace = self.workspace();
        let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows = self.session.run(|client| async move {
            client
                .read()
                .await
                .query(&statement, &[&workspace, &keys])
                .await
        })?;
        rows.iter()
            .map(|row| self.decode(row.get(0), row.get(1)))
            .collect()
    }

    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        let workspace = self.workspace();
        let key = id.to_string();
        let get = self.get.clone();
        let row = self.session.run(|client| async move {
            client
                .read()
                .await
                .query_opt(&get, &[&workspace, &key])
                .await
        })?;
        row.map(|r| self.decode(r.get(0), r.get(1)).map(|(_, record)| record))
            .transpose()
    }

    /// A page of chunks at a time, newest first, by keyset over the
    /// primary key.
    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        if !self.has_history {
            return Ok(());
        }
        let target = &self.session.target;
        let damaged = |e| damaged(target, format!("a history entry: {e}"));
        let mut sink = history::NewestFirst::new(filter, visit, &damaged);
        let mut before = (i64::MAX, i32::MAX);
        loop {
            let workspace = self.workspace();
            let rows = self.session.run(|client| async move {
                let client = client.read().await;
                client
                    .query(
                        CHUNKS_BEFORE,
                        &[&workspace, &before.0, &before.1, &CHUNK_PAGE],
                    )
                    .await
            })?;
            let full = rows.len() as i64 == CHUNK_PAGE;
            for row in rows {
                let (serial, chunk): (i64, i32) = (row.get(0), row.get(1));
                before = (serial, chunk);
                let (serial, index) = (
                    u64::try_from(serial).map_err(|_| damaged_serial(target, serial))?,
                    u32::try_from(chunk).map_err(|_| damaged_serial(target, serial))?,
                );
                sink.push(serial, index, row.get::<_, Vec<u8>>(2))?;
            }
            if !full {
                return sink.finish();
            }
        }
    }

    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        if !self.has_previews || ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let (workspace, ids) = (self.workspace(), ids.to_vec());
        self.session.run(|client| async move {
            previews::get(&*client.read().await, &workspace, &ids).await
        })
    }
}

fn damaged_serial(target: &Target, serial: i64) -> anyhow::Error {
    damaged(
        target,
        format!("a history chunk of serial {serial} is out of range"),
    )
}

struct PgReader {
    rows: Rows,
}

super::reads_through!(PgReader, rows);
super::reads_through!(PgWriter, rows);

struct PgWriter {
    rows: Rows,
    prepared: Prepared,
    me: Holder,
    provenance: std::sync::RwLock<Provenance>,
    /// The serial of this writer's last write: it alone writes, so it
    /// numbers its writes (and their history entries) itself.
    serial: std::sync::atomic::AtomicU64,
    /// Records this writer put or removed (`ANALYZED_AFTER`).
    changed: std::sync::atomic::AtomicUsize,
}

/// A writer that changed this many records has the server's statistics
/// of its tables made afresh as it closes. A table filled in bulk
/// (`adopt`, `state import`, `state migrate`) is otherwise planned from
/// the statistics of before, until autovacuum gets to it (never, where
/// it is off): a page of `each_record` at 1,000,000 media was then a
/// sort of the workspace spilled to disk, 0.6 s a page, 70 s for `state
/// list`; 3 ms a page once analyzed (0.2 s, sampling 30,000 rows).
const ANALYZED_AFTER: usize = 10_000;
/// How long a closing writer's `ANALYZE` may take (0.2 s at 1,000,000
/// media: it samples 30,000 rows whatever the size).
const ANALYZE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One write: what it changes, atomically with its history and serial.
enum Change {
    /// Insert or replace these records.
    Put {
        records: Vec<(String, Vec<u8>)>,
        history: Vec<Vec<u8>>,
        serial: i64,
        at: String,
    },
    Delete {
        ids: Vec<String>,
        history: Vec<Vec<u8>>,
        serial: i64,
        at: String,
    },
    PruneHistory {
        before: Timestamp,
    },
}

async fn commit(
    client: Shared,
    workspace: String,
    prepared: Prepared,
    change: Change,
) -> Result<u64, tokio_postgres::Error> {
    // One statement each: concurrent confirmations share the connection
    // (tokio-postgres pipelines them, and the server can commit them as a
    // group); only a multi-statement transaction needs it alone.
    match change {
        Change::Put {
            records,
            history,
            serial,
            at,
        } => {
            let (ids, values): (Vec<String>, Vec<Vec<u8>>) = records.into_iter().unzip();
            let client = client.read().await;
            client
                .execute(
                    &prepared.put,
                    &[&workspace, &ids, &values, &history, &serial, &at],
                )
                .await
        }
        Change::Delete {
            ids,
            history,
            serial,
            at,
        } => {
            let client = client.read().await;
            client
                .execute(
                    &prepared.delete,
                    &[&workspace, &ids, &history, &serial, &at],
                )
                .await
        }
        Change::PruneHistory { before } => {
            let mut client = client.write().await;
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    "SELECT serial, chunk, entries FROM xmeta_history WHERE workspace = $1",
                    &[&workspace],
                )
                .await?;
            let mut removed = 0;
            for row in rows {
                let (serial, chunk): (i64, i32) = (row.get(0), row.get(1));
                let key = "workspace = $1 AND serial = $2 AND chunk = $3";
                // A chunk that does not decode is left for readers to report.
                match history::prune_chunk(row.get(2), before) {
                    Ok(history::Pruned::Rewritten { bytes, removed: n }) => {
                        tx.execute(
                            &format!("UPDATE xmeta_history SET entries = $4 WHERE {key}"),
                            &[&workspace, &serial, &chunk, &bytes],
                        )
                        .await?;
                        removed += n;
                    }
                    Ok(history::Pruned::Removed { removed: n }) => {
                        tx.execute(
                            &format!("DELETE FROM xmeta_history WHERE {key}"),
                            &[&workspace, &serial, &chunk],
                        )
                        .await?;
                        removed += n;
                    }
                    Ok(history::Pruned::Kept) | Err(_) => {}
                }
            }
            tx.commit().await?;
            Ok(removed as u64)
        }
    }
}

impl PgWriter {
    /// The statistics of xmeta's tables made afresh after a bulk write
    /// (`ANALYZED_AFTER`), once the lock is let go. Best effort, and never
    /// a wait: a table another session is analyzing, vacuuming or
    /// altering is skipped (`SKIP_LOCKED`), the whole is bounded, and
    /// after a signal it is left to autovacuum. A role that does not own
    /// the tables gets a server warning.
    fn analyze_if_bulk(&self) {
        if self.changed.load(std::sync::atomic::Ordering::SeqCst) < ANALYZED_AFTER
            || crate::shutdown::state_deadline().is_some()
        {
            return;
        }
        let analyzed = self
            .rows
            .session
            .run_within(ANALYZE_WAIT, |client| async move {
                client
                    .read()
                    .await
                    .batch_execute("ANALYZE (SKIP_LOCKED) xmeta_records, xmeta_history")
                    .await
            });
        if let Err(e) = analyzed {
            tracing::debug!("{e:#}");
        }
    }

    fn provenance(&self) -> Provenance {
        self.provenance
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    fn write(&self, change: Change) -> anyhow::Result<u64> {
        let changed = match &change {
            Change::Put { records, .. } => records.len(),
            Change::Delete { ids, .. } => ids.len(),
            Change::PruneHistory { .. } => 0,
        };
        let workspace = self.rows.workspace();
        let prepared = self.prepared.clone();
        // A confirmation's write (records and removals): a state that
        // stops answering ends the run within `RECORD_WAIT` (sooner after
        // a signal). Whole-state writes (import, prune) may take longer.
        let bound = match change {
            Change::Put { .. } | Change::Delete { .. } => session::RECORD_WAIT,
            Change::PruneHistory { .. } => session::CALL_WAIT,
        };
        let written = self
            .rows
            .session
            .run_within(bound, |client| commit(client, workspace, prepared, change))?;
        self.changed
            .fetch_add(changed, std::sync::atomic::Ordering::SeqCst);
        Ok(written)
    }

    /// One statement without parameters, outside any prepared write.
    fn execute(&self, sql: &'static str) -> anyhow::Result<()> {
        self.rows
            .session
            .run(|client| async move { client.read().await.batch_execute(sql).await })
    }

    /// `replace_all`'s writes, inside its transaction; returns how many
    /// records it removed and wrote.
    fn replace_within(&self, new: Replacement<'_>, serial: i64) -> anyhow::Result<usize> {
        let workspace = self.rows.workspace();
        let removed = self.rows.session.run(|client| async move {
            let client = client.read().await;
            let removed = client
                .execute(
                    "DELETE FROM xmeta_records WHERE workspace = $1",
                    &[&workspace],
                )
                .await?;
            client
                .execute(
                    "DELETE FROM xmeta_history WHERE workspace = $1",
                    &[&workspace],
                )
                .await?;
            Ok(removed)
        })?;
        let mut changed = usize::try_from(removed).unwrap_or(usize::MAX);
        (new.records)(&mut |batch| {
            changed += batch.len();
            let (mut ids, mut values) = (Vec::new(), Vec::new());
            for (id, record) in &batch {
                ids.push(id.to_string());
                values.push(record.encode()?);
            }
            let workspace = self.rows.workspace();
            self.rows.session.run(|client| async move {
                let client = client.read().await;
                client.execute(PUT, &[&workspace, &ids, &values]).await
            })?;
            Ok(())
        })?;
        let mut chunker = history::Chunker::default();
        let mut chunks = Vec::new();
        (new.history)(&mut |entry| {
            chunks.extend(chunker.push(entry)?);
            if chunks.len() as i64 >= CHUNK_PAGE {
                self.insert_chunks(std::mem::take(&mut chunks))?;
            }
            Ok(())
        })?;
        chunks.extend(chunker.finish()?);
        self.insert_chunks(chunks)?;
        let (workspace, lineage) = (self.rows.workspace(), new.lineage.to_string());
        self.rows.session.run(|client| async move {
            client
                .read()
                .await
                .execute(
                    "UPDATE xmeta_states SET lineage = $2, serial = $3 WHERE workspace = $1",
                    &[&workspace, &lineage, &serial],
                )
                .await
        })?;
        Ok(changed)
    }

    fn insert_chunks(&self, chunks: Vec<history::Chunk>) -> anyhow::Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for chunk in chunks {
            columns
                .0
                .push(i64::try_from(chunk.serial).unwrap_or(i64::MAX));
            columns.1.push(chunk.index as i32);
            columns.2.push(chunk.at.to_string());
            columns.3.push(chunk.bytes);
        }
        let workspace = self.rows.workspace();
        self.rows.session.run(|client| async move {
            client
                .read()
                .await
                .execute(
                    HISTORY,
                    &[&workspace, &columns.0, &columns.1, &columns.2, &columns.3],
                )
                .await
        })?;
        Ok(())
    }

    /// The serial of the next write.
    fn next_serial(&self) -> anyhow::Result<i64> {
        let next = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        i64::try_from(next).map_err(|_| anyhow!("serial {next} is too large"))
    }

    /// The current records of `ids`, for their history entries.
    fn before(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Metadata>> {
        let workspace = self.rows.workspace();
        let keys: Vec<String> = ids.iter().map(std::string::ToString::to_string).collect();
        let statement = self.prepared.get_many.clone();
        let rows = self.rows.session.run(|client| async move {
            client
                .read()
                .await
                .query(&statement, &[&workspace, &keys])
                .await
        })?;
        rows.iter()
            .map(|row| {
                self.rows
                    .decode(row.get(0), row.get(1))
                    .map(|(id, r)| (id, r.metadata))
            })
            .collect()
    }

    /// `record_group`'s write: the records, each with its own event's
    /// history entry, as one `Put`.
    fn write_group(&self, group: &[(Recording, Event)]) -> anyhow::Result<()> {
        let (serial, at) = (self.next_serial()?, Timestamp::now());
        let history = history::group_chunks(group, &self.provenance(), serial as u64, at)?
            .into_iter()
            .map(|c| c.bytes)
            .collect();
        let plain: Vec<Recording> = group.iter().map(|(r, _)| r.clone()).collect();
        self.put(&plain, history, serial, at)
    }

    /// Records and their history chunks as one `Put` at `serial`.
    fn put(
        &self,
        recordings: &[Recording],
        history: Vec<Vec<u8>>,
        serial: i64,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        let records = super::record::encode_many(recordings)?
            .into_iter()
            .map(|(id, _, value)| (id.to_string(), value))
            .collect();
        self.write(Change::Put {
            records,
            history,
            serial,
            at: at.to_string(),
        })?;
        Ok(())
    }

    /// The history chunks of a write, none with `--no-history`.
    fn chunks(
        &self,
        steps: &[history::Step<'_>],
        event: Event,
        serial: i64,
        at: Timestamp,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        let chunks = history::write_chunks(steps, event, &self.provenance(), serial as u64, at)?;
        Ok(chunks.into_iter().map(|c| c.bytes).collect())
    }
}

impl StateWriter for PgWriter {
    fn reads_wait_on_a_server(&self) -> bool {
        true
    }

    /// One write (one statement, one round trip, one serial) for the
    /// whole group: its confirmations are durable together, or fail
    /// together.
    fn record_group(&self, group: Vec<(Recording, Event)>) -> Vec<anyhow::Result<()>> {
        let written = self.write_group(&group).map_err(|e| format!("{e:#}"));
        group
            .iter()
            .map(|_| written.clone().map_err(|e| anyhow!(e)))
            .collect()
    }

    fn record_many(&self, recordings: Vec<Recording>, event: Event) -> anyhow::Result<()> {
        let (serial, at) = (self.next_serial()?, Timestamp::now());
        let steps: Vec<_> = recordings
            .iter()
            .map(|r| (r.id, r.before.as_ref(), Some(&r.after)))
            .collect();
        let history = self.chunks(&steps, event, serial, at)?;
        self.put(&recordings, history, serial, at)
    }

    fn remove(&self, ids: &[MediaId], event: Event) -> anyhow::Result<()> {
        let before = self.before(ids)?;
        let (serial, at) = (self.next_serial()?, Timestamp::now());
        // Only media that are there leave an entry.
        let steps: Vec<_> = before.iter().map(|(id, m)| (*id, Some(m), None)).collect();
        let history = self.chunks(&steps, event, serial, at)?;
        self.write(Change::Delete {
            ids: ids.iter().map(std::string::ToString::to_string).collect(),
            history,
            serial,
            at: at.to_string(),
        })?;
        Ok(())
    }

    /// In one transaction, written a batch at a time as the sources hand
    /// them over; anything that fails rolls it back.
    fn replace_all(&self, new: Replacement<'_>) -> anyhow::Result<()> {
        let serial = new.serial;
        let exact = i64::try_from(serial).map_err(|_| anyhow!("serial {serial} is too large"))?;
        self.execute("BEGIN")?;
        let written = self.replace_within(new, exact);
        let changed = match written.and_then(|changed| self.execute("COMMIT").map(|()| changed)) {
            Ok(changed) => changed,
            Err(e) => {
                if let Err(rollback) = self.execute("ROLLBACK") {
                    tracing::debug!("{rollback:#}");
                }
                return Err(e);
            }
        };
        self.changed
            .fetch_add(changed, std::sync::atomic::Ordering::SeqCst);
        self.serial
            .store(serial, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn set_provenance(&self, provenance: Provenance) {
        if let Ok(mut p) = self.provenance.write() {
            *p = provenance;
        }
    }

    fn prune_history(&self, before: Timestamp) -> anyhow::Result<usize> {
        let pruned = self.write(Change::PruneHistory { before })?;
        Ok(usize::try_from(pruned).unwrap_or(usize::MAX))
    }

    fn record_previews(&self, previews: &BTreeMap<MediaId, String>) -> anyhow::Result<()> {
        if previews.is_empty() {
            return Ok(());
        }
        let (workspace, previews) = (self.rows.workspace(), previews.clone());
        self.rows.session.run(|client| async move {
            previews::put(&*client.read().await, &workspace, &previews).await
        })?;
        Ok(())
    }

    fn mark_moved(&self, moved: &Moved) -> anyhow::Result<()> {
        let workspace = self.rows.workspace();
        let mark = String::from_utf8_lossy(&moved.encode()).into_owned();
        self.rows.session.run(|client| async move {
            client
                .read()
                .await
                .execute(
                    "INSERT INTO xmeta_workspaces (name, moved) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET moved = excluded.moved",
                    &[&workspace, &mark],
                )
                .await
        })?;
        Ok(())
    }
}

impl Drop for PgWriter {
    fn drop(&mut self) {
        // A clean close clears the holder row and the lock at once; the
        // session's end would release the lock anyway.
        let workspace = self.rows.workspace();
        let (pid, host) = (i64::from(self.me.pid), self.me.host.clone());
        let cleared = self.rows.session.run(|client| async move {
            let client = client.read().await;
            client
                .execute(
                    "DELETE FROM xmeta_locks WHERE workspace = $1 AND pid = $2 AND host = $3",
                    &[&workspace, &pid, &host],
                )
                .await?;
            client.execute("SELECT pg_advisory_unlock_all()", &[]).await
        });
        if let Err(e) = cleared {
            tracing::debug!("{e:#}");
        }
        self.analyze_if_bulk();
    }
}
