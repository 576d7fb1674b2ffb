//! A PostgreSQL database of a test's own (workspaces listed, a schema
//! version planted, roles granted: only its own).

use crate::support::{sql, Backend, TestEnv};

/// A database of its own, dropped at the end: the workspaces a test
/// lists must be only its own.
pub struct OwnDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl OwnDatabase {
    pub fn new(test: &str, tag: &str) -> Option<OwnDatabase> {
        let Backend::Postgres(server) = Backend::postgres(test)? else {
            return None;
        };
        let name = format!("xmeta_{tag}_{}", std::process::id());
        sql(&server, &format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        sql(&server, &format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        Some(OwnDatabase {
            url: url.to_string(),
            server,
            name,
        })
    }

    pub fn env(&self) -> TestEnv {
        TestEnv::on(Backend::Sled).with_env("XMETA_STATE", &self.url)
    }

    /// Inserts, uncommitted, a record of `media` in `workspace` (whose
    /// state exists) until the guard is dropped: the tables stay open to
    /// every writer, but one that writes that media's record waits at
    /// that write (a table lock would stop a writer as it connects: it
    /// prepares its statements then).
    pub fn hold_record(&self, workspace: &str, media: &str) -> HeldRecord {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client.batch_execute("BEGIN").await.unwrap();
            client
                .execute(
                    "INSERT INTO xmeta_records (workspace, media_id, record) VALUES ($1, $2, '')",
                    &[&workspace, &media],
                )
                .await
                .unwrap();
            client
        });
        HeldRecord { runtime, client }
    }

    /// How many sessions of this database wait for a lock.
    pub fn waiting_sessions(&self) -> usize {
        let rows = sql(
            &self.url,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .unwrap();
        rows[0].parse().unwrap()
    }
}

/// A record held by `OwnDatabase::hold_record`; rolled back when dropped.
pub struct HeldRecord {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Drop for HeldRecord {
    fn drop(&mut self) {
        let _ = self.runtime.block_on(self.client.batch_execute("ROLLBACK"));
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        let _ = sql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
