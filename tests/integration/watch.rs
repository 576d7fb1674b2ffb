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
        Watcher::start_on(env, &env.manifests(), extra)
    }

    fn start_on(env: &TestEnv, path: &str, extra: &[&str]) -> Watcher {
        let mut args = vec!["watch", path, "--debounce-ms", "200"];
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
            // child's stdout), never a timing assumption: not a synchronisation.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn errors(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr holds `needle` `times` times.
    fn wait_for_error(&self, needle: &str, times: usize) {
        wait_until(
            Duration::from_secs(15),
            &format!("{times}× `{needle}` on stderr"),
            || self.errors().matches(needle).count() >= times,
        );
    }

    /// The exit code, once the watcher has exited (within a bound).
    fn exit_code(&mut self) -> Option<i32> {
        let mut code = None;
        wait_until(Duration::from_secs(15), "the watcher to exit", || {
            code = self.child.try_wait().unwrap().map(|s| s.code());
            code.is_some() || self.output().contains("forgotten")
        });
        code.flatten()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
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

/// No media planned as forgotten, and none forgotten by an apply.
fn nothing_forgotten(out: &str) {
    for line in out.lines() {
        let forgets = line.contains("will be forgotten (removed from the state")
            || (line.starts_with("Apply") && line.contains("forgotten"));
        assert!(!forgets, "{line}\n{out}");
    }
}

/// `plan` refuses PATHs that declare nothing (with --prune they would
/// forget every media); watch plans the same way.
#[test]
fn an_empty_path_is_refused_and_forgets_nothing() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    std::fs::create_dir_all(env.path("empty")).unwrap();
    let before = env.state_fingerprint();
    let empty = env.path("empty").display().to_string();
    let mut w = Watcher::start_on(&env, &empty, &["--apply", "--prune"]);
    assert_eq!(w.exit_code(), Some(1), "{}", w.output());
    assert_has(
        &w.errors(),
        "holds no manifests that declare media (*.yaml, *.yml); check the path, or pass --allow-empty if that is intended",
    );
    assert_eq!(env.state_fingerprint(), before);
    assert_eq!(emu.request_count(), 0);
}

/// Truncated, then written again after the debounce (some editors, `cp`):
/// the empty read is held like a broken file, never a deletion.
#[test]
fn a_manifest_emptied_for_a_while_is_held_not_forgotten() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    let a = manifest(0..3, "v1");
    env.write("manifests/a.yaml", &a);
    env.write("manifests/b.yaml", &manifest(3..6, "v1"));
    let w = Watcher::start(&env, &["--apply", "--prune"]);
    w.wait_for("Apply complete: 6 applied, 0 failed.", 1);

    std::fs::File::create(env.path("manifests/a.yaml")).unwrap();
    w.wait_for(
        "a.yaml:1:1: error: the file declares no media now (emptied while being written?); its last good version stays in effect until it declares media again or is deleted",
        1,
    );
    env.write("manifests/a.yaml", &a);
    next_request_is_a_new_media(&env, &w, &emu, 6);
    nothing_forgotten(&w.output());
    let listed = env.exits_with(&["state", "list"], 0).stdout;
    assert_eq!(listed.lines().count(), 7, "{listed}");
}

/// A manifest rewritten in place slowly (8 KiB every 30 ms: an editor or
/// `cp` over a slow disk) is read once whole, never half-written: the
/// content ends as it was, so nothing may be sent.
#[test]
fn a_slow_save_is_read_only_once_it_has_settled() {
    use std::io::Write;
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    let text = manifest(0..1200, "v1");
    assert!(text.len() > 20 * 8192, "{} bytes", text.len());
    env.write("manifests/a.yaml", &text);
    let w = Watcher::start(&env, &["--apply", "--prune"]);
    w.wait_for("Apply complete: 1200 applied, 0 failed.", 1);

    let mut file = std::fs::File::create(env.path("manifests/a.yaml")).unwrap();
    for chunk in text.as_bytes().chunks(8192) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        // The writer's pace is the scenario under test (a slow disk); the
        // test then waits on the marker's event: not a synchronisation.
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(file);
    next_request_is_a_new_media(&env, &w, &emu, 1200);
    nothing_forgotten(&w.output());
}

/// Links and special files that appear while watching are refused as at
/// start: a link outside the given paths is never read (nor applied), and
/// a manifest replaced by a FIFO is an error for that file, not a deletion.
#[test]
fn links_and_fifos_appearing_later_are_errors_not_reads_or_deletions() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.write("outside/evil.yaml", &manifest(100..102, "evil"));
    let w = Watcher::start(&env, &["--apply", "--prune"]);
    w.wait_for("Apply complete: 2 applied, 0 failed.", 1);

    std::os::unix::fs::symlink(
        env.path("outside/evil.yaml"),
        env.path("manifests/evil.yaml"),
    )
    .unwrap();
    w.wait_for("outside the given paths; it was not read", 1);
    // A symlinked directory too: its files are never read.
    std::os::unix::fs::symlink(env.path("outside"), env.path("manifests/sub")).unwrap();
    w.wait_for("sub:1:1: error: cannot read the file: `", 1);

    std::fs::remove_file(env.path("manifests/a.yaml")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(env.path("manifests/a.yaml"))
        .status()
        .unwrap();
    assert!(status.success());
    w.wait_for(
        "a.yaml:1:1: error: cannot read the file: it is a FIFO, not a regular file; it was not read",
        1,
    );
    next_request_is_a_new_media(&env, &w, &emu, 2);
    nothing_forgotten(&w.output());
    assert!(!emu.bodies().iter().any(|b| b["id"] == media_id(100)));
}

/// A failed cycle (here: the state replaced by a file) is reported and
/// retried; the watcher keeps going and recovers once the state is back.
#[test]
fn a_failed_cycle_is_reported_and_retried() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let mut w = Watcher::start(&env, &[]);
    w.wait_for("No changes. 2 media match the manifests.", 1);

    std::fs::rename(env.state_dir(), env.path("state.bak")).unwrap();
    std::fs::write(env.state_dir(), "not a state").unwrap();
    env.write("manifests/a.yaml", &manifest(0..2, "v2"));
    w.wait_for_error("note: this cycle failed; retrying in 1s", 1);
    assert!(w.is_running(), "{}", w.errors());

    std::fs::remove_file(env.state_dir()).unwrap();
    std::fs::rename(env.path("state.bak"), env.state_dir()).unwrap();
    w.wait_for(
        "Plan: 0 to create, 2 to update, 0 to forget, 0 unchanged.",
        1,
    );
    assert!(w.is_running(), "{}", w.errors());
}

/// With --prune, a media gone from a file that just changed is not
/// forgotten on one read: a save written in two parts with a pause longer
/// than the debounce would otherwise forget media, then send them again.
#[test]
fn forgetting_waits_until_the_manifests_are_left_alone() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    let whole = manifest(0..4, "v1");
    env.write("manifests/a.yaml", &whole);
    let w = Watcher::start(&env, &["--apply", "--prune"]);
    w.wait_for("Apply complete: 4 applied, 0 failed.", 1);

    // The first part of a save, valid on its own, then the rest.
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    w.wait_for_error(
        "note: --prune: media in no manifest are forgotten once the manifests have been left alone for 10s",
        1,
    );
    env.write("manifests/a.yaml", &whole);
    next_request_is_a_new_media(&env, &w, &emu, 4);
    nothing_forgotten(&w.output());
}

/// A failed apply in a cycle (X out of reach) is a failed cycle: reported
/// and retried, not left until the next edit.
#[test]
fn an_apply_that_could_not_reach_x_is_retried() {
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", "http://127.0.0.1:9")
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let mut w = Watcher::start(&env, &["--apply", "--max-retries", "0"]);
    w.wait_for_error("note: this cycle failed; retrying in 1s", 1);
    w.wait_for_error("note: this cycle failed; retrying in 2s", 1);
    assert!(w.is_running(), "{}", w.errors());
    assert_has(&w.output(), " retry ==");
}

/// Watch starts only from manifests that `plan` accepts, and reads no
/// hidden directory that `plan` skips; file names in its headers are
/// escaped like every other untrusted text.
#[test]
fn watch_starts_reads_and_prints_as_plan_does() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.write(
        "manifests/b.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"7\"\n    metadata:\n      alt_txt: {text: x}\n",
    );
    let mut w = Watcher::start(&env, &[]);
    assert_eq!(w.exit_code(), Some(1), "{}", w.output());
    assert_has(&w.errors(), "b.yaml:6:7: error: unknown field `alt_txt`");
    assert_eq!(w.output(), "");

    std::fs::remove_file(env.path("manifests/b.yaml")).unwrap();
    env.exits_with(&["adopt", &env.manifests()], 0);
    let w = Watcher::start(&env, &[]);
    w.wait_for("No changes. 2 media match the manifests.", 1);
    // A hidden directory made whole (a backup copy) is not read.
    std::fs::create_dir(env.path("manifests/.old")).unwrap();
    std::fs::copy(
        env.path("manifests/a.yaml"),
        env.path("manifests/.old/a.yaml"),
    )
    .unwrap();
    env.write("manifests/x\u{1b}[2J\u{202e}.yaml", &manifest(5..6, "v1"));
    w.wait_for("+ media 1700000000000000005 will be created", 1);
    let out = w.output();
    assert!(!out.contains(".old"), "{out}");
    assert!(!out.contains("declared twice"), "{out}");
    assert_has(&out, "x\\u001b[2J\\u202e.yaml ==");
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{202e}'),
        "{out}"
    );
}

/// A watcher without --apply (its debug log on) of media 0 and 1, adopted,
/// once it has planned; `before` runs on the state before it starts.
fn plain_watcher_of_two_adopted(before: impl Fn(&TestEnv)) -> (Emulator, TestEnv, Watcher) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new()
        .against(&emu)
        .with_env("RUST_LOG", "xmeta=debug");
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    before(&env);
    let w = Watcher::start(&env, &[]);
    w.wait_for("No changes. 2 media match the manifests.", 1);
    (emu, env, w)
}

/// A watcher without --apply holds no lock: it keeps the recorded digests
/// between cycles while nobody writes the state (the debug log says so),
/// and still sees every write another process makes in between.
#[test]
fn a_plain_watcher_rereads_the_state_only_when_it_changed() {
    let (_emu, env, w) = plain_watcher_of_two_adopted(|_| {});

    // Nobody wrote: the digests of the start are kept.
    env.write("manifests/a.yaml", &manifest(0..2, "v2"));
    w.wait_for(
        "Plan: 0 to create, 2 to update, 0 to forget, 0 unchanged.",
        1,
    );
    let kept = "debug: state unchanged (serial 1); digests kept";
    w.wait_for_error(kept, 1);

    // Another process applies between cycles: the next cycle sees it.
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    env.write("manifests/b.yaml", &manifest(2..3, "v1"));
    w.wait_for(
        "Plan: 1 to create, 0 to update, 0 to forget, 2 unchanged.",
        1,
    );
    // And one that adopts.
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.write("manifests/b.yaml", &manifest(2..3, "v2"));
    w.wait_for(
        "Plan: 0 to create, 1 to update, 0 to forget, 2 unchanged.",
        1,
    );
}

/// As a state no writer has been at for long (the same old time each
/// call): a file written a moment ago may share its time stamp with a
/// write to come, and is not trusted.
fn age_state(env: &TestEnv) {
    let hour_ago = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for name in ["xmeta.lock", "head.json"] {
        let file = std::fs::File::options()
            .write(true)
            .open(env.state_dir().join(name))
            .unwrap();
        file.set_modified(hour_ago).unwrap();
    }
}

/// A watcher without --apply does not open a state no writer has been at
/// since it read it (at 1,000,000 media, opening sled's database was most
/// of a cycle): an edit is compared with what its file said before, which
/// matched the record. Another process's write is seen at the next cycle.
#[test]
fn a_plain_watcher_leaves_an_untouched_state_closed_and_still_sees_writes() {
    let (_emu, env, w) = plain_watcher_of_two_adopted(age_state);

    let updates = "Plan: 0 to create, 2 to update, 0 to forget, 0 unchanged.";
    env.write("manifests/a.yaml", &manifest(0..2, "v2"));
    w.wait_for(updates, 1);
    env.write("manifests/a.yaml", &manifest(0..2, "v3"));
    w.wait_for(updates, 2);
    let out = w.output();
    for n in 0..2 {
        assert_has(&out, &format!("Photo {n}: [-v1-] → {{+v2+}}"));
        assert_has(&out, &format!("Photo {n}: [-v1-] → {{+v3+}}"));
    }
    let closed = "debug: state untouched since it was read: not opened";
    w.wait_for_error("debug: planned in", 3);
    assert_eq!(w.errors().matches(closed).count(), 2, "{}", w.errors());

    // Another process applies: the next cycle opens the state again, even
    // with the lock's and the head's times put back as they were.
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    age_state(&env);
    env.write("manifests/b.yaml", &manifest(2..3, "v1"));
    w.wait_for(
        "Plan: 1 to create, 0 to update, 0 to forget, 2 unchanged.",
        1,
    );
    w.wait_for_error("debug: planned in", 4);
    assert_eq!(w.errors().matches(closed).count(), 2, "{}", w.errors());
}

/// With --apply, the writer's database is closed once no edit came for a
/// while (open, sled holds its page table and the pages its writes
/// rewrote: 51 MiB of an idle watcher at 1,000,000 media). The state's
/// lock stays held; a cycle with nothing to change leaves the database
/// closed, and the next edit opens it again, is applied and recorded.
#[test]
fn an_idle_apply_watcher_closes_the_state_database_and_opens_it_for_the_next_edit() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new()
        .against(&emu)
        .with_env("RUST_LOG", "xmeta=debug");
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let w = Watcher::start(&env, &["--apply"]);
    w.wait_for("Apply complete: 2 applied, 0 failed.", 1);
    let resting = "debug: resting: the state's database closed until a change needs it";
    w.wait_for_error(resting, 1);
    wait_until(
        Duration::from_secs(15),
        "sled to let go of its files",
        || !env.sled_holds_the_database(),
    );
    let other = env.exits_with(&["adopt", &env.manifests()], 1);
    assert_has(&other.stderr, "(command `xmeta watch`)");
    // A cycle that plans from the digests alone leaves it closed (were
    // it opened, it would stay open until the next rest).
    env.write(
        "manifests/a.yaml",
        &format!("# a note\n{}", manifest(0..2, "v1")),
    );
    w.wait_for("No changes. 2 media match the manifests.", 1);
    w.wait_for_error("debug: cycle over: waiting for changes", 2);
    let opened = "debug: the state database opened again";
    assert_eq!(w.errors().matches(opened).count(), 0, "{}", w.errors());
    assert!(!env.sled_holds_the_database(), "{}", w.errors());

    env.write(
        "manifests/a.yaml",
        &manifest(0..2, "v1").replace("Photo 1: v1", "Photo 1: v2"),
    );
    w.wait_for("Apply complete: 1 applied, 0 failed.", 1);
    w.wait_for_error(resting, 2);
    assert_eq!(w.errors().matches(opened).count(), 1, "{}", w.errors());
    assert_eq!(emu.request_count(), 3);
    // The record is on disk: a reader sees it while the watcher runs.
    let shown = env.exits_with(&["state", "show", &media_id(1)], 0);
    assert_has(&shown.stdout, "Photo 1: v2");
}
