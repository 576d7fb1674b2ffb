//! How `state migrate` copies: the source's lock held throughout, and
//! what it read let go of while the target is written (a sled source's
//! database closed, a bucket source's image dropped).

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Before: the source's sled database stayed open for the whole copy,
/// beside the target being written (at 1,000,000 media 310 MiB in all,
/// over the 256 MB every state command must stay within). Now it is read
/// into a private copy first and closed; its lock stays held, and the
/// copy is whole once the target's writes go on.
#[test]
fn a_sled_source_is_closed_while_the_target_is_written_and_stays_locked() {
    copied_while_the_source_lets_go(
        "migrate::a_sled_source_is_closed_while_the_target_is_written_and_stays_locked",
        "migrate_closed",
        TestEnv::new(),
        |source, _| {
            assert!(
                !source.sled_holds_the_database(),
                "the source's database is open while the target is written"
            );
        },
    );
}

/// Before: a bucket source kept its whole image (the index of its
/// records, their temporary file, the history) while the target was
/// written: at 1,000,000 media, 319–332 MiB to sled. Now it lets go of
/// it once the copy is made: the only temporary file the process holds
/// is the copy's.
#[test]
fn a_bucket_source_lets_go_of_its_image_while_the_target_is_written() {
    let test = "migrate::a_bucket_source_lets_go_of_its_image_while_the_target_is_written";
    let Some(backend) = Backend::s3(test) else {
        return;
    };
    copied_while_the_source_lets_go(test, "migrate_let_go", TestEnv::on(backend), |_, pid| {
        let temporary: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .map(|target| target.display().to_string())
            .filter(|target| target.ends_with(" (deleted)"))
            .collect();
        assert_eq!(
            temporary.len(),
            1,
            "the copy's temporary file alone is open while the target is written: {temporary:?}"
        );
    });
}

/// Migrates `source` (5 media adopted) into a PostgreSQL workspace whose
/// first record is held uncommitted by another session, so the copy waits
/// at its first write; there, `check` looks at the source and at the
/// migrating process. The source's lock is held then, and once the row is
/// let go the copy is whole, the source said it let go of what it read,
/// and it is marked as moved.
fn copied_while_the_source_lets_go(
    test: &str,
    database: &str,
    source: TestEnv,
    check: impl FnOnce(&TestEnv, u32),
) {
    let Some(db) = OwnDatabase::new(test, database) else {
        return;
    };
    source.write("manifests/a.yaml", &manifest(0..5, "v1"));
    source.exits_with(&["adopt", &source.manifests()], 0);
    // The target: a state that holds nothing (a media adopted and
    // forgotten), and a record of the first media to copy, uncommitted:
    // the copy waits at its first write there.
    let target = db.env().with_env("XMETA_WORKSPACE", "copy");
    target.write("manifests/a.yaml", &manifest(9..10, "v1"));
    let m = target.manifests();
    target.exits_with(&["adopt", &m, "--create-workspace"], 0);
    target.exits_with(&["state", "rm", &media_id(9)], 0);
    let held = HeldRow::begin_with(
        &db.url,
        &format!(
            "INSERT INTO xmeta_records (workspace, media_id, record) VALUES ('copy', '{}', '')",
            media_id(0)
        ),
    );
    let mut migrate = Killed(
        source
            .command(&[
                "state",
                "migrate",
                "--to",
                &db.url,
                "--to-workspace",
                "copy",
            ])
            .env("RUST_LOG", "xmeta=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = migrate.0.id();
    wait_until(
        Duration::from_secs(30),
        "the copy to wait at its first write",
        || {
            if let Some(status) = migrate.0.try_wait().unwrap() {
                panic!("migrate ended ({status}) before its first write");
            }
            waits_on_a_lock(&db.url, pid)
        },
    );
    check(&source, pid);
    let other = source.exits_with(&["adopt", &source.manifests()], 1);
    assert_has(&other.stderr, "(command `xmeta state migrate");

    drop(held);
    let mut done = None;
    wait_until(Duration::from_secs(30), "migrate to end", || {
        done = migrate.0.try_wait().unwrap();
        done.is_some()
    });
    let mut stdout = String::new();
    let mut stderr = String::new();
    migrate
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    migrate
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(done.and_then(|s| s.code()), Some(0), "{stdout}{stderr}");
    assert_has(&stdout, "Copied 5 media");
    assert_has(
        &stderr,
        "debug: the source let go of what it read while the copy is written",
    );
    let listed = target.exits_with(&["state", "list"], 0);
    assert_eq!(listed.stdout.lines().count(), 5, "{}", listed.stdout);
    let moved = source.exits_with(&["plan", &source.manifests()], 1);
    assert_has(&moved.stderr, "moved to");
}
