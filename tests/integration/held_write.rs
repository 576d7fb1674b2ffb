//! A confirmation's write that the state holds (PostgreSQL: another
//! session holds the media's row, as a slow or distant server would keep
//! the writer waiting) does not hold the request stream: the other
//! requests go on being sent, and the held media's slot stays taken until
//! its write is durable.

use std::time::Duration;

use crate::support::*;

/// A session that holds one record's row (`SELECT … FOR UPDATE` in an
/// open transaction) until released or dropped: the writer's upsert of
/// that row waits at the server, as long as it is held.
struct HeldRow {
    runtime: tokio::runtime::Runtime,
    client: Option<tokio_postgres::Client>,
}

impl HeldRow {
    fn hold(url: &str, workspace: &str, media: &str) -> HeldRow {
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
                .batch_execute(&format!(
                    "BEGIN; SELECT 1 FROM xmeta_records \
                     WHERE workspace = '{workspace}' AND media_id = '{media}' FOR UPDATE"
                ))
                .await
                .unwrap();
            client
        });
        HeldRow {
            runtime,
            client: Some(client),
        }
    }

    fn release(&mut self) {
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

#[test]
fn requests_go_on_while_a_confirmations_write_is_held() {
    let Some(Backend::Postgres(url)) =
        Backend::postgres("held_write::requests_go_on_while_a_confirmations_write_is_held")
    else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(Backend::Postgres(url.clone())).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..8, "v1"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);

    // Media 0 is confirmed and its write held; X refuses the other seven
    // (a 400: each fails alone, nothing to record, no reason to stop).
    let mut faults = Faults::default();
    for n in 1..8 {
        faults.status_for.insert(media_id(n), 400);
    }
    emu.set_faults(faults);
    emu.clear_requests();
    env.write("manifests/a.yaml", &manifest(0..8, "v2"));
    let mut held = HeldRow::hold(&url, env.workspace().unwrap(), &media_id(0));

    let out = std::fs::File::create(env.path("apply.out")).unwrap();
    let mut xmeta = Killed(
        env.command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "2",
        ])
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    let pid = xmeta.0.id();
    let output = || std::fs::read_to_string(env.path("apply.out")).unwrap_or_default();
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = 'xmeta/{pid}' AND wait_event_type = 'Lock'"
    );
    wait_until(
        Duration::from_mins(1),
        "media 0's write to wait on the held row",
        || sql(&url, &waiting).unwrap() == ["1"],
    );
    // One slot waits for media 0's write; the other goes on through the
    // plan. A stream held by the write would send nothing more (and end
    // with the write's bound, naming the state as not answering).
    wait_until(
        Duration::from_mins(1),
        "the other media to be sent while media 0's write is held",
        || {
            if let Some(status) = xmeta.0.try_wait().unwrap() {
                panic!("apply ended ({status}) before sending them:\n{}", output());
            }
            emu.post_count() == 8
        },
    );
    assert_eq!(
        sql(&url, &waiting).unwrap(),
        ["1"],
        "media 0's write is still held"
    );
    assert!(
        xmeta.0.try_wait().unwrap().is_none(),
        "apply waits for media 0's write:\n{}",
        output()
    );

    held.release();
    let mut status = None;
    wait_until(Duration::from_mins(1), "apply to end", || {
        status = xmeta.0.try_wait().unwrap();
        status.is_some()
    });
    let stdout = output();
    assert_eq!(status.unwrap().code(), Some(1), "{stdout}");
    assert_has(&stdout, "Apply failed: 1 applied, 7 failed.");
    // Each media was sent once, and only media 0 is recorded as v2.
    let sent: std::collections::BTreeSet<String> = emu
        .bodies()
        .iter()
        .map(|b| b["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sent.len(), 8, "each media once");
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(
        &plan.stdout,
        "0 to create, 7 to update, 0 to forget, 1 unchanged",
    );
    assert!(
        !plan.stdout.contains(&media_id(0)),
        "media 0 is recorded:\n{}",
        plan.stdout
    );
}
