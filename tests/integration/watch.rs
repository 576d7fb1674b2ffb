//! Watch mode with real file-system events, the real binary and the
//! emulator.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

struct Watcher {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn pump(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let out = Arc::clone(&buf);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut b = out.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    buf
}

impl Watcher {
    fn start(env: &TestEnv, extra: &[&str]) -> Watcher {
        let m = env.manifests();
        let mut args = vec!["watch", m.as_str(), "--debounce-ms", "200"];
        args.extend_from_slice(extra);
        let mut child = env
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = pump(child.stdout.take().unwrap());
        let stderr = pump(child.stderr.take().unwrap());
        Watcher {
            child,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits until stdout holds `needle` `times` times.
    fn wait_for(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.output().matches(needle).count() < times {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {times}× `{needle}`\n--- stdout\n{}\n--- stderr\n{}",
                self.output(),
                self.stderr.lock().unwrap()
            );
            // A poll interval while waiting on the event (a line on the
            // child's stdout), never a timing assumption.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(&mut self) -> i32 {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Proves that a cycle sent nothing, without waiting on a clock: a later
/// change (one new media in its own file) must be the very next request.
fn next_request_is_a_new_media(env: &TestEnv, w: &Watcher, emu: &Emulator, sent: usize) {
    let n = 9_000;
    let done = "Apply complete: 1 applied, 0 failed.";
    let before = w.output().matches(done).count();
    env.write("manifests/marker.yaml", &manifest(n..n + 1, "v1"));
    w.wait_for(done, before + 1);
    assert_eq!(emu.request_count(), sent + 1, "a request before the marker");
    assert_eq!(emu.bodies()[sent]["id"], media_id(n));
}

#[test]
fn applies_at_start_then_each_edit_as_one_request() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..10, "v1"));
    let w = Watcher::start(&env, &["--apply"]);
    w.wait_for("Apply complete: 10 applied, 0 failed.", 1);
    assert_eq!(emu.request_count(), 10);

    env.write(
        "manifests/a.yaml",
        &manifest(0..10, "v1").replace("Photo 4: v1", "Photo 4: v2"),
    );
    w.wait_for("Apply complete: 1 applied, 0 failed.", 1);
    assert_eq!(emu.request_count(), 11);
    assert_eq!(
        emu.bodies()[10],
        serde_json::json!({"id": media_id(4), "metadata": {"alt_text": {"text": "Photo 4: v2"}}})
    );
    assert!(w.output().contains(" changed: "), "cycles have a header");
}

#[test]
fn a_broken_file_is_held_until_fixed() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    env.write("manifests/b.yaml", &manifest(3..6, "v1"));
    let w = Watcher::start(&env, &["--apply"]);
    w.wait_for("Apply complete: 6 applied", 1);

    // Truncate-and-write a broken version of a file whose media are applied.
    env.write(
        "manifests/a.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia: [\n",
    );
    w.wait_for("a.yaml:4:1: error: YAML syntax error", 1);
    next_request_is_a_new_media(&env, &w, &emu, 6);
    let out = w.output();
    assert!(!out.contains("will be forgotten"), "{out}");
    assert!(out.contains("3 media are held back"), "{out}");

    // Fixing it applies exactly the intended change.
    env.write(
        "manifests/a.yaml",
        &manifest(0..3, "v1").replace("Photo 1: v1", "Photo 1: fixed"),
    );
    // The second one-media apply (the marker's was the first).
    w.wait_for("Apply complete: 1 applied, 0 failed.", 2);
    assert_eq!(emu.request_count(), 8);
    assert_eq!(
        emu.bodies()[7]["metadata"]["alt_text"]["text"],
        "Photo 1: fixed"
    );
}

#[test]
fn rename_saves_and_deletes_are_picked_up() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.write("manifests/b.yaml", &manifest(2..4, "v1"));
    let w = Watcher::start(&env, &["--apply"]);
    w.wait_for("Apply complete: 4 applied", 1);

    // An editor's save: write a temp file, then rename it over the original.
    env.write(
        "manifests/.a.yaml.tmp",
        &manifest(0..2, "v1").replace("Photo 0: v1", "Photo 0: renamed"),
    );
    std::fs::rename(
        env.path("manifests/.a.yaml.tmp"),
        env.path("manifests/a.yaml"),
    )
    .unwrap();
    w.wait_for("Apply complete: 1 applied, 0 failed.", 1);
    assert_eq!(
        emu.bodies()[4]["metadata"]["alt_text"]["text"],
        "Photo 0: renamed"
    );

    std::fs::remove_file(env.path("manifests/b.yaml")).unwrap();
    w.wait_for(&format!("- media {} is in no manifest", media_id(3)), 1);
    // Nothing sent for deleted media: the next request is the marker's.
    next_request_is_a_new_media(&env, &w, &emu, 5);
}

#[test]
fn sigterm_during_a_slow_apply_exits_cleanly_and_loses_nothing() {
    let faults = Faults {
        latency: Duration::from_millis(400),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..40, "v1"));
    let mut w = Watcher::start(&env, &["--apply", "--concurrency", "2"]);
    w.wait_for("Plan: 40 to create", 1);
    // Some media confirmed (and so recorded), others still to go.
    wait_until(Duration::from_secs(30), "a first confirmation", || {
        !emu.stored().is_empty()
    });
    // Stopped, not finished: it exits with media still unsent.
    let code = w.terminate();
    assert_eq!(code, 0, "{}", w.stderr.lock().unwrap());

    let confirmed = emu.stored().len();
    assert!(confirmed > 0 && confirmed < 40, "{confirmed}");
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    let left = 40 - confirmed;
    assert_has(
        &plan.stdout,
        &format!("Plan: {left} to create, 0 to update, 0 to forget, {confirmed} unchanged."),
    );
}

/// Each cycle of `watch --apply` records where its changes came from as the
/// tree is then: an edit saved but not committed is marked dirty.
#[test]
fn each_watch_cycle_records_the_tree_as_it_is_then() {
    use crate::history::{commit, git};
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    git(&env, &["init", "-q"]);
    env.write(".gitignore", "state/\n");
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    let sha = commit(&env, "v1");
    let w = Watcher::start(&env, &["--apply"]);
    w.wait_for("Apply complete: 3 applied, 0 failed.", 1);
    env.write("manifests/a.yaml", &manifest(0..3, "v2"));
    w.wait_for("Apply complete: 3 applied, 0 failed.", 2);
    let run = env.exits_with(&["state", "history", &media_id(1), "--format", "json"], 0);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let marks: Vec<_> = entries
        .iter()
        .map(|e| (e["revision"].as_str().unwrap(), e.get("dirty").is_some()))
        .collect();
    assert_eq!(marks, [(sha.as_str(), true), (sha.as_str(), false)]);
}
