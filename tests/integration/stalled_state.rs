//! A PostgreSQL state that stops answering mid-apply (its backend stopped
//! with SIGSTOP, as a hung server or a frozen network would): xmeta still
//! ends within its stated bound after SIGTERM, exit 1, and records nothing
//! X did not confirm.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;

/// Sends SIGCONT to a stopped backend when dropped: the shared server
/// survives a failing test too.
struct Resumed(libc::pid_t);

impl Drop for Resumed {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

fn signal(pid: libc::pid_t, signal: libc::c_int) {
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

/// The drain bound after a signal (`DRAIN_TIMEOUT`), plus what exiting
/// takes on a busy machine.
const AFTER_SIGTERM: Duration = Duration::from_secs(10 + 8);

#[test]
fn a_stopped_database_ends_apply_within_the_drain_bound_after_sigterm() {
    let Some(Backend::Postgres(url)) = Backend::postgres(
        "stalled_state::a_stopped_database_ends_apply_within_the_drain_bound_after_sigterm",
    ) else {
        return;
    };
    let emu = Emulator::start(
        TOKEN,
        Faults {
            latency: Duration::from_millis(50),
            ..Faults::default()
        },
    );
    let env = TestEnv::on(Backend::Postgres(url.clone())).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..200, "v1"));
    let out = std::fs::File::create(env.path("apply.out")).unwrap();
    let mut xmeta = Killed(
        env.command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "4",
            // Shorter than the stall: an answer the stream could not read
            // while a write held it timed out and was sent again.
            "--timeout-secs",
            "2",
        ])
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    let xmeta_pid = libc::pid_t::try_from(xmeta.0.id()).unwrap();
    wait_until(Duration::from_secs(60), "20 posts", || {
        emu.post_count() >= 20
    });
    // The backend serving the writer: its session, named after the xmeta
    // process, holds the workspace's advisory lock.
    let backend = sql(
        &url,
        &format!(
            "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
             WHERE a.application_name = 'xmeta/{xmeta_pid}' AND l.locktype = 'advisory' AND l.granted"
        ),
    )
    .unwrap();
    assert_eq!(backend.len(), 1, "the writer's backend: {backend:?}");
    let backend: libc::pid_t = backend[0].parse().unwrap();
    signal(backend, libc::SIGSTOP);
    let resumed = Resumed(backend);

    signal(xmeta_pid, libc::SIGTERM);
    let signalled = Instant::now();
    let mut status = None;
    wait_until(AFTER_SIGTERM, "xmeta to exit after SIGTERM", || {
        status = xmeta.0.try_wait().unwrap();
        status.is_some()
    });
    let took = signalled.elapsed();
    let stdout = std::fs::read_to_string(env.path("apply.out")).unwrap();
    assert_eq!(status.unwrap().code(), Some(1), "{stdout}");
    assert_has(&stdout, "stopped answering after");
    say(&format!(
        "xmeta exited {took:.1?} after SIGTERM with its state's backend stopped"
    ));

    assert_has(
        &stdout,
        "media confirmed by X are not recorded and will be re-sent",
    );
    // What X answered was never sent again in the run.
    let mut posts = std::collections::BTreeMap::new();
    for r in emu.requests().iter().filter(|r| r.method == "POST") {
        *posts.entry(r.body["id"].to_string()).or_insert(0) += 1;
    }
    let twice: Vec<_> = posts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice in one run: {twice:?}");

    drop(resumed);
    // Nothing recorded that X did not confirm.
    let confirmed: BTreeSet<String> = emu.stored().keys().cloned().collect();
    let mut listed = None;
    wait_until(Duration::from_secs(30), "the state to answer again", || {
        let run = env.run(&["state", "list"]);
        listed = (run.code == 0).then_some(run.stdout);
        listed.is_some()
    });
    for line in listed.unwrap().lines() {
        let id = line.split('\t').next().unwrap();
        assert!(confirmed.contains(id), "{id} recorded but never confirmed");
    }
    // The lock went with the dead writer's session: the next apply finishes.
    wait_until(Duration::from_secs(30), "the next apply to finish", || {
        env.run(&["apply", &env.manifests(), "--auto-approve"]).code == 0
    });
}
