//! The state lock, readers beside a writer, and damaged states.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Starts a slow apply and waits until it holds the lock.
fn slow_apply(env: &TestEnv) -> std::process::Child {
    let child = env
        .command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = env.state_dir().join("xmeta.lock");
    wait_until(Duration::from_secs(10), "the apply's state lock", || {
        std::fs::read(&lock).is_ok_and(|b| !b.is_empty())
    });
    // Then its database: sled holds an OS lock on its file while open.
    let db = env.state_dir().join("db").join("db");
    wait_until(Duration::from_secs(10), "the apply's open database", || {
        std::fs::File::open(&db)
            .is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
    });
    child
}

#[test]
fn a_second_writer_fails_at_once_naming_the_holder_while_readers_work() {
    let faults = Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..30, "v1"));
    let mut writer = slow_apply(&env);

    for args in [
        vec!["apply", env.manifests().leak() as &str, "--auto-approve"],
        vec!["adopt", env.manifests().leak() as &str],
        vec!["state", "rm", "1"],
    ] {
        let started = Instant::now();
        let run = env.ok(&args, 1);
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = format!("pid {}", writer.id());
        assert!(run.stderr.contains(&pid), "{args:?}: {}", run.stderr);
        assert_has(&run.stderr, "(command `xmeta apply`)");
        assert_has(&run.stderr, "on host `");
        assert_has(&run.stderr, ", since 20");
    }

    // Readers never wait on the writer.
    for args in [
        vec!["plan", env.manifests().leak() as &str],
        vec!["state", "list"],
    ] {
        let started = Instant::now();
        env.ok(&args, 0);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
}

#[test]
fn unlock_force_removes_a_lock_held_elsewhere() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.state_dir()).unwrap();
    // A holder on another host: its OS lock is not visible here, but a
    // careful user clears it explicitly.
    std::fs::write(
        env.state_dir().join("xmeta.lock"),
        r#"{"pid":4242,"host":"ci-runner-7","command":"xmeta apply","since":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let run = env.ok(&["state", "unlock", "--force"], 0);
    assert_has(&run.stdout, "pid 4242 on host `ci-runner-7`");
    assert!(!env.state_dir().join("xmeta.lock").exists());
    env.ok(&["state", "unlock"], 1); // --force is required (a usage error: exit 1)
}

fn damaged_state_is_refused(must_refuse: bool, damage: impl Fn(&std::path::Path)) -> usize {
    let mut refused = 0;
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..40, "v1"));
    env.ok(&["apply", &env.manifests(), "--auto-approve"], 0);
    damage(&env.state_dir());
    emu.clear_requests();
    for args in [
        vec!["plan", env.manifests().leak() as &str],
        vec!["apply", env.manifests().leak() as &str, "--auto-approve"],
        vec!["state", "list"],
    ] {
        let run = env.run(&args);
        assert_ne!(run.code, 101, "panicked: {}", run.stderr);
        if run.code == 0 && !must_refuse {
            // sled may repair some damage itself; then nothing may be lost.
            if args[0] == "plan" {
                assert!(
                    run.stdout.contains("No changes. 40 media"),
                    "{args:?} silently lost state:\n{}",
                    run.stdout
                );
            }
            continue;
        }
        assert_eq!(run.code, 1);
        assert_has(&run.stderr, "is damaged");
        assert_has(&run.stderr, &env.state_dir().display().to_string());
        assert_has(&run.stderr, "xmeta state import");
        refused += 1;
    }
    assert_eq!(emu.request_count(), 0, "nothing sent from a damaged state");
    refused
}

#[test]
fn a_truncated_database_is_refused() {
    damaged_state_is_refused(true, |dir| {
        std::fs::write(dir.join("db/db"), b"").unwrap();
    });
}

#[test]
fn flipped_bytes_are_refused_or_repaired_never_silently_lost() {
    let mut refused = 0;
    for seed in 1..6u64 {
        refused += damaged_state_is_refused(false, |dir| {
            let path = dir.join("db/db");
            let mut bytes = std::fs::read(&path).unwrap();
            let mut x = seed;
            for _ in 0..8 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (x >> 33) as usize % bytes.len();
                bytes[i] ^= 0xa5;
            }
            std::fs::write(&path, bytes).unwrap();
        });
    }
    eprintln!("flipped bytes: {refused} of 15 runs refused the state, the rest read it intact");
}

#[test]
fn the_state_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..1, "v1"));
    env.ok(&["adopt", &env.manifests()], 0);
    let mode = std::fs::metadata(env.state_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    std::fs::set_permissions(env.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = env.ok(&["plan", &env.manifests()], 0);
    assert_has(&run.stderr, "can be read by others (mode 0755)");
}
