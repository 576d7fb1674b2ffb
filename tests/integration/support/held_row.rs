//! A PostgreSQL session that holds rows in an open transaction, so that a
//! writer that needs them waits at the server, as long as they are held.

/// A session in an open transaction that holds what its statement took
/// (`SELECT … FOR UPDATE`, an uncommitted `INSERT`) until released or
/// dropped.
pub struct HeldRow {
    runtime: tokio::runtime::Runtime,
    client: Option<tokio_postgres::Client>,
}

impl HeldRow {
    /// Holds the rows of `media` in `workspace` (`FOR UPDATE`): the
    /// writer's upsert of those rows waits.
    pub fn hold(url: &str, workspace: &str, media: &[String]) -> HeldRow {
        let media = media
            .iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(", ");
        HeldRow::begin_with(
            url,
            &format!(
                "SELECT 1 FROM xmeta_records \
                 WHERE workspace = '{workspace}' AND media_id IN ({media}) FOR UPDATE"
            ),
        )
    }

    /// Holds what `statement` takes, run in a transaction left open.
    pub fn begin_with(url: &str, statement: &str) -> HeldRow {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!("BEGIN; {statement}"))
                .await
                .unwrap();
            client
        });
        HeldRow {
            runtime,
            client: Some(client),
        }
    }

    pub fn release(&mut self) {
        if let Some(client) = self.client.take() {
            self.runtime
                .block_on(client.batch_execute("ROLLBACK"))
                .unwrap();
        }
    }
}

impl Drop for HeldRow {
    fn drop(&mut self) {
        // Dropping the connection ends the session, and its transaction.
        self.client.take();
    }
}

/// Whether the xmeta process `pid` waits on a lock in the database at
/// `url` (its sessions are named `xmeta/PID`).
pub fn waits_on_a_lock(url: &str, pid: u32) -> bool {
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = 'xmeta/{pid}' AND wait_event_type = 'Lock'"
    );
    crate::support::sql(url, &waiting).unwrap() != ["0"]
}
