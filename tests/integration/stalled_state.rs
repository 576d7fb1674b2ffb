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
    wait_until(Duration::from_mins(1), "20 posts", || {
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

/// A TCP proxy to PostgreSQL that can freeze: it stops forwarding but
/// keeps both connections open, as a stalled proxy or a frozen network
/// would, so the server goes on listing a session whose client is gone.
struct Proxy {
    port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn to(server: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let server = server.to_string();
        let flag = std::sync::Arc::clone(&frozen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = std::net::TcpStream::connect(&server) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    let flag = std::sync::Arc::clone(&flag);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = std::io::Read::read(&mut from, &mut buf) {
                            if n == 0 || flag.load(Ordering::SeqCst) {
                                // Frozen: holds both ends open, forwards nothing.
                                while flag.load(Ordering::SeqCst) {
                                    // The test waits on the command's exit and its
                                    // bound; this park only paces the flag's check.
                                    // Paces a flag's check: not a synchronisation.
                                    std::thread::park_timeout(Duration::from_secs(1));
                                }
                                break;
                            }
                            if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        });
        Proxy { port, frozen }
    }

    fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A runner lost behind a frozen connection keeps its session (and the
/// lock) alive on the server; its process on this host is gone, so
/// `state unlock --force` ends that session, with a warning, and the next
/// writer proceeds.
#[test]
fn unlock_force_clears_a_dead_holders_live_session() {
    let Some(Backend::Postgres(url)) =
        Backend::postgres("stalled_state::unlock_force_clears_a_dead_holders_live_session")
    else {
        return;
    };
    let env = TestEnv::on(Backend::Postgres(url.clone()));
    let parsed = url::Url::parse(&url).unwrap();
    let proxy = Proxy::to(&format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    ));
    let mut through = parsed.clone();
    through.set_port(Some(proxy.port)).unwrap();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let mut watch = Killed(
        env.command(&["watch", &env.manifests(), "--apply"])
            .env("XMETA_STATE", through.as_str())
            .env("XMETA_API_URL", "http://127.0.0.1:9")
            .env("XMETA_BEARER_TOKEN", TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = watch.0.id();
    let holds = format!(
        "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
         WHERE a.application_name = 'xmeta/{pid}' AND l.locktype = 'advisory' AND l.granted"
    );
    let row = format!(
        "SELECT count(*) FROM xmeta_locks WHERE workspace = '{}' AND pid = {pid}",
        env.workspace().unwrap()
    );
    wait_until(
        Duration::from_secs(30),
        "the watch to hold the lock",
        || sql(&url, &holds).unwrap() == ["1"] && sql(&url, &row).unwrap() == ["1"],
    );
    proxy.freeze();
    watch.0.kill().unwrap();
    watch.0.wait().unwrap();
    assert_eq!(
        sql(&url, &holds).unwrap(),
        ["1"],
        "the server still lists it"
    );

    let run = env.exits_with(&["state", "unlock", "--force"], 0);
    assert_has(
        &run.stderr,
        &format!("warning: the lock's holder, pid {pid} on this host, is gone"),
    );
    assert_has(&run.stdout, "Removed the state lock held by pid");
    assert_eq!(sql(&url, &holds).unwrap(), ["0"]);
    env.exits_with(&["adopt", &env.manifests()], 0);
    drop(proxy);
}
