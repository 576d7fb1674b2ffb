//! The state lock, readers beside a writer, and damaged states.

use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Starts a slow apply and waits until it holds the lock: its first
/// request comes after it took the lock and opened the state.
fn slow_apply(env: &TestEnv, emu: &Emulator) -> Killed {
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
    let child = Killed(child);
    wait_until(Duration::from_secs(20), "the apply's first request", || {
        emu.request_count() > 0
    });
    child
}

crate::on_both_backends!(
    a_second_writer_fails_at_once_naming_the_holder_while_readers_work,
    a_killed_writers_lock_goes_with_it,
);

fn a_second_writer_fails_at_once_naming_the_holder_while_readers_work(backend: Backend) {
    let faults = Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::on(backend.clone()).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..30, "v1"));
    let mut writer = slow_apply(&env, &emu);
    let pid = format!("pid {}", writer.0.id());
    // Each answer below came while the writer still ran: nobody waited
    // for it to finish.
    let mut still_writing = || {
        assert!(
            writer.0.try_wait().unwrap().is_none(),
            "the writer finished"
        );
        assert!(emu.request_count() < 30, "the writer sent everything");
    };

    for args in [
        vec!["apply", env.manifests().leak() as &str, "--auto-approve"],
        vec!["adopt", env.manifests().leak() as &str],
        vec!["state", "rm", "1"],
    ] {
        let run = env.exits_with(&args, 1);
        still_writing();
        assert!(run.stderr.contains(&pid), "{args:?}: {}", run.stderr);
        assert_has(&run.stderr, "(command `xmeta apply`)");
        assert_has(&run.stderr, "on host `");
        assert_has(&run.stderr, ", since 20");
        if let Backend::Postgres(_) = backend {
            assert_has(
                &run.stderr,
                "wait for it to finish (a writer that dies releases the lock with its database session)",
            );
            if args[0] == "apply" {
                say(&format!(
                    "the lock message a second writer gets: {}",
                    run.stderr.trim()
                ));
            }
        }
    }

    // Readers never wait on the writer.
    for args in [
        vec!["plan", env.manifests().leak() as &str],
        vec!["state", "list"],
        vec!["state", "export"],
    ] {
        env.exits_with(&args, 0);
        still_writing();
    }
    drop(writer);
}

/// A writer killed with SIGKILL leaves no lock behind: the next writer
/// proceeds without `state unlock --force` (on a bucket, once the killed
/// writer's lease ran out, with a warning naming it).
fn a_killed_writers_lock_goes_with_it(backend: Backend) {
    let faults = Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::on(backend.clone()).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..30, "v1"));
    let writer = slow_apply(&env, &emu);
    let pid = writer.0.id();
    drop(writer);
    if let Backend::S3(_) = backend {
        // A bucket cannot see a process die: its lock goes when its lease
        // runs out, and the next writer takes it over, naming it.
        let (run, refused) = env.once_the_lease_ran_out(&["adopt", &env.manifests()]);
        assert!(refused, "the lease was live at first");
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_has(&run.stdout, "Adopted");
        assert_has(
            &run.stderr,
            &format!("whose lease had run out: it was held by pid {pid} on host `"),
        );
        return;
    }
    let run = env.exits_with(&["adopt", &env.manifests()], 0);
    assert_has(&run.stdout, "Adopted");
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
    let run = env.exits_with(&["state", "unlock", "--force"], 0);
    assert_has(&run.stdout, "pid 4242 on host `ci-runner-7`");
    assert!(!env.state_dir().join("xmeta.lock").exists());
    env.exits_with(&["state", "unlock"], 1); // --force is required (a usage error: exit 1)
}

fn damaged_state_is_refused(must_refuse: bool, damage: impl Fn(&std::path::Path)) -> usize {
    let mut refused = 0;
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..40, "v1"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
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
    for seed in 1..6u64 {
        damaged_state_is_refused(false, |dir| {
            let path = dir.join("db/db");
            let mut bytes = std::fs::read(&path).unwrap();
            let mut x = seed;
            for _ in 0..8 {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let i = (x >> 33) as usize % bytes.len();
                bytes[i] ^= 0xa5;
            }
            std::fs::write(&path, bytes).unwrap();
        });
    }
}

#[test]
fn the_state_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..1, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let mode = std::fs::metadata(env.state_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    std::fs::set_permissions(env.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&run.stderr, "can be read by others (mode 0755)");
}
