//! The CLI in scripts and at a terminal: exit codes a CI step can trust,
//! state and path mistakes that are loud, not silently empty.

use crate::support::*;

const ONE: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"42\"\n    metadata:\n      alt_text: {text: \"A dancing cat\"}\n";

#[test]
fn a_usage_error_exits_1_never_2() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.exits_with(
        &[
            "plan",
            &env.manifests(),
            "--detailed-exitcode",
            "--taget",
            "42",
        ],
        1,
    );
    assert_has(&run.stderr, "--taget");
    env.exits_with(&["plan", "--detailed-exitcode"], 1);
    env.exits_with(&["state", "unlock"], 1);
    // Help and version are no errors.
    env.exits_with(&["--help"], 0);
    env.exits_with(&["--version"], 0);
}

#[test]
fn a_terraform_style_single_dash_flag_gets_a_hint() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.exits_with(&["apply", &env.manifests(), "-auto-approve"], 1);
    assert_has(&run.stderr, "did you mean `--auto-approve`?");
}

#[test]
fn a_state_that_is_a_file_is_an_error_for_every_command() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    std::fs::write(env.state_dir(), "not a directory").unwrap();
    for args in [
        vec!["plan", env.manifests().as_str()],
        vec!["state", "list"],
        vec!["state", "export"],
        vec!["adopt", env.manifests().as_str()],
    ] {
        let run = env.exits_with(&args, 1);
        assert_has(&run.stderr, "is not a directory");
    }
}

#[test]
fn a_plan_against_no_state_says_so() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(
        &run.stderr,
        &format!(
            "No state at {}: every media is new.",
            env.state_dir().display()
        ),
    );
    assert!(!env.state_dir().exists(), "plan created a state");
}

#[test]
fn paths_without_manifests_are_an_error_unless_allowed() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("empty")).unwrap();
    let empty = env.path("empty").display().to_string();
    let run = env.exits_with(&["plan", &empty], 1);
    assert_has(&run.stderr, "holds no manifests");
    env.exits_with(&["validate", &empty], 1);
    env.exits_with(&["plan", &empty, "--allow-empty"], 0);
    let run = env.exits_with(&["plan", &env.path("missing").display().to_string()], 1);
    assert_has(&run.stderr, "missing");
}

#[test]
fn a_target_that_no_manifest_declares_is_an_error() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.exits_with(&["plan", &env.manifests(), "--target", "43"], 1);
    assert_has(&run.stderr, "`--target 43`: no manifest declares media 43");
}

#[test]
fn unlock_force_refuses_a_live_holder_on_this_host() {
    let emulator = Emulator::start(
        TOKEN,
        Faults {
            latency: std::time::Duration::from_mins(2),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/one.yaml", ONE);
    let mut writer = Killed(
        env.command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--timeout-secs",
            "120",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    // The writer holds the lock once it has written itself into the lock file.
    let lock = env.state_dir().join("xmeta.lock");
    wait_until(
        std::time::Duration::from_secs(30),
        "the writer's lock",
        || {
            if let Ok(Some(status)) = writer.0.try_wait() {
                panic!("the writer ended early: {status}");
            }
            std::fs::metadata(&lock).map_or(0, |m| m.len()) > 0
        },
    );
    let run = env.exits_with(&["state", "unlock", "--force"], 1);
    assert_has(&run.stderr, "is held by a live process on this host");
    assert!(env.state_dir().join("xmeta.lock").exists());
}

fn sigterm(child: &std::process::Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

/// `xmeta … 2>&1 | tee log`, then the reader dies: stderr is a closed pipe.
fn spawn_with_dead_stderr(env: &TestEnv, args: &[&str]) -> std::process::Child {
    let mut child = env
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    child
}

#[test]
fn sigterm_stops_apply_even_when_stderr_is_a_dead_pipe() {
    let emulator = Emulator::start(
        TOKEN,
        Faults {
            latency: std::time::Duration::from_millis(200),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/many.yaml", &manifest(0..200, "v1"));
    let mut child = spawn_with_dead_stderr(&env, &["apply", &env.manifests(), "--auto-approve"]);
    wait_until(
        std::time::Duration::from_secs(30),
        "a first request",
        || emulator.request_count() > 0,
    );
    sigterm(&child);
    let mut status = None;
    wait_until(std::time::Duration::from_secs(10), "apply to stop", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.unwrap().code(), Some(1), "{stdout}");
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("Apply interrupted: "), "{last}");
    assert!(emulator.request_count() < 200, "every request was sent");
    // The lock went with the process: a new writer finishes the job.
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    assert_has(&run.stdout, "Apply complete: ");
}

#[test]
fn sigterm_stops_watch_apply_even_when_stderr_is_a_dead_pipe() {
    let emulator = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let mut child = spawn_with_dead_stderr(&env, &["watch", &env.manifests(), "--apply"]);
    wait_until(
        std::time::Duration::from_secs(30),
        "the first apply",
        || emulator.request_count() == 5,
    );
    sigterm(&child);
    let mut status = None;
    wait_until(std::time::Duration::from_secs(10), "watch to stop", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0));
    env.write("manifests/a.yaml", &manifest(0..5, "v2"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    assert_eq!(emulator.request_count(), 10);
}

#[test]
fn prune_only_runs_count_removals_and_say_so_in_the_prompt() {
    let emulator = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let gone = env.write("manifests/b.yaml", &manifest(2..5, "v1"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    std::fs::remove_file(gone).unwrap();
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve", "--prune"], 0);
    let last = run.stdout.lines().last().unwrap_or("");
    assert_eq!(last, "Apply complete: 0 applied, 3 forgotten, 0 failed.");
    assert_eq!(emulator.request_count(), 5);
}

#[test]
fn messages_point_at_the_right_places() {
    let env = TestEnv::new();
    env.write(
        "media/dup.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"7\"\n  - id: \"8\"\n  - id: \"7\"\n",
    );
    let run = env.exits_with(&["validate", "media"], 1);
    assert_has(
        &run.stderr,
        "media/dup.yaml:6:5: error: media `7` is declared twice\n  help: it is also declared at media/dup.yaml:4:5; keep one of the two",
    );
    // The same directory named twice is read once.
    env.write("media/dup.yaml", ONE);
    let run = env.exits_with(&["validate", "media", "./media"], 0);
    assert_eq!(run.stdout, "1 media in 1 file are valid.\n");
    // One `warning:` per warning.
    env.write(
        "past/p.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"7\"\n    metadata:\n      content_expiration: {timestamp_sec: 1}\n",
    );
    let run = env.exits_with(&["plan", "past"], 0);
    assert_has(
        &run.stdout,
        "past/p.yaml:6:27: warning: `content_expiration.timestamp_sec` of media 7 is in the past",
    );
    assert!(
        !run.stdout.contains("warning: past/p.yaml"),
        "{}",
        run.stdout
    );
    // A tab, and a shortened field name.
    env.write(
        "tab/t.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n\t- id: \"7\"\n",
    );
    let run = env.exits_with(&["validate", "tab"], 1);
    assert_has(
        &run.stderr,
        "help: YAML indents with spaces only; replace the tab with spaces",
    );
    env.write(
        "short/s.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"7\"\n    metadata:\n      sensitive_media_warning: {adult: true}\n",
    );
    let run = env.exits_with(&["validate", "short"], 1);
    assert_has(&run.stderr, "help: did you mean `adult_content`?");
}

#[test]
fn logs_are_quiet_by_default_and_never_other_crates_at_vv() {
    let emulator = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/one.yaml", ONE);
    let run = env.exits_with(&["plan", &env.manifests(), "--out", "plan.json"], 0);
    assert!(!run.stderr.contains("plan saved"), "{}", run.stderr);
    assert!(!run.stderr.contains("INFO"), "{}", run.stderr);
    let run = env.exits_with(&["-v", "plan", &env.manifests(), "--out", "plan.json"], 0);
    assert_has(&run.stderr, "info: plan saved to `plan.json`");
    let run = env.exits_with(&["-vv", "apply", &env.manifests(), "--auto-approve"], 0);
    for noise in ["sled", "pagecache", "hyper", "reqwest", "rustls"] {
        assert!(!run.stderr.contains(noise), "`{noise}` in:\n{}", run.stderr);
    }
    assert!(
        !run.stderr.contains("Z "),
        "a timestamp in:\n{}",
        run.stderr
    );
}

#[test]
fn colour_follows_the_flag_and_the_environment() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let plan = |extra: &[&str], vars: &[(&str, &str)]| {
        let mut cmd = env.command(&[&["plan", &env.manifests()], extra].concat());
        cmd.env_remove("NO_COLOR");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let green_header = "\x1b[1;32m+ media 42 will be created (1 field)\x1b[0m";
    assert!(plan(&["--color", "always"], &[]).contains(green_header));
    assert!(plan(&[], &[("CLICOLOR_FORCE", "1")]).contains(green_header));
    assert!(!plan(&[], &[]).contains('\x1b'), "not a terminal");
    assert!(!plan(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]).contains('\x1b'));
    assert!(!plan(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\x1b'));
}

#[test]
fn the_emulator_example_has_a_real_command_line() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_xmeta"))
        .parent()
        .unwrap()
        .join("examples/x_emulator");
    let run = |args: &[&str]| {
        std::process::Command::new(&exe)
            .args(args)
            .output()
            .unwrap()
    };
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--rate-limit <N/SECS>"));
    for bad in [
        &["--latency-ms", "abc"][..],
        &["--rate-limit", "40"],
        &["--fail-rate", "2"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid value"),
            "{bad:?}"
        );
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&["--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pick another --port") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn review_findings_stay_fixed() {
    let emulator = Emulator::start(
        TOKEN,
        Faults {
            status_for: [("42".to_string(), 400)].into_iter().collect(),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/one.yaml", ONE);

    // A refused or cancelled apply creates no state; `state rm` of none fails.
    env.exits_with(&["apply", "manifests"], 1);
    assert!(!env.state_dir().exists(), "a refused apply created a state");
    env.exits_with(&["state", "rm", "42"], 1);
    assert!(!env.state_dir().exists(), "state rm created a state");

    // Log lines carry no escape codes unless colour is on.
    let run = env.exits_with(
        &[
            "-vv",
            "apply",
            "manifests",
            "--auto-approve",
            "--color",
            "never",
        ],
        1,
    );
    assert!(!run.stderr.contains('\x1b'), "{}", run.stderr);

    // A saved plan is applied whole: --target and --prune are refused with it.
    env.exits_with(&["plan", "manifests", "--out", "plan.json"], 0);
    let run = env.exits_with(&["apply", "--plan", "plan.json", "--target", "42"], 1);
    assert_has(&run.stderr, "cannot be used with");

    // An export whose serial is at the top would stop every later write.
    let export = env.write(
        "top.json",
        r#"{"format_version":1,"lineage":"0123456789abcdef0123456789abcdef","serial":18446744073709551615,"media":{}}"#,
    );
    let run = env.exits_with(&["state", "import", &export.display().to_string()], 1);
    assert_has(&run.stderr, "beyond what a state ever reaches");

    // `006` and `6` would be two records but one media on X.
    env.write(
        "zeros/z.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"006\"\n",
    );
    let run = env.exits_with(&["validate", "zeros"], 1);
    assert_has(&run.stderr, "must be 1 to 19 digits without leading zeros");

    // Command-line arguments are quoted neutralised, never raw.
    let run = env.exits_with(&["validate", "\x1b[2Jmissing"], 1);
    assert!(!run.stderr.contains('\x1b'), "{}", run.stderr);
    assert_has(&run.stderr, "\\u001b[2Jmissing");
}

#[test]
fn unlock_force_trusts_the_os_lock_not_the_host_name_in_the_file() {
    let emulator = Emulator::start(
        TOKEN,
        Faults {
            latency: std::time::Duration::from_mins(2),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/one.yaml", ONE);
    let _writer = Killed(
        env.command(&[
            "apply",
            "manifests",
            "--auto-approve",
            "--timeout-secs",
            "200",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    let lock = env.state_dir().join("xmeta.lock");
    wait_until(std::time::Duration::from_secs(30), "the lock", || {
        std::fs::metadata(&lock).map_or(0, |m| m.len()) > 0
    });
    let text = std::fs::read_to_string(&lock).unwrap();
    let mut holder: serde_json::Value = serde_json::from_str(&text).unwrap();
    holder["host"] = "elsewhere".into();
    // Rewritten in place: the writer's OS lock on the file stays.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&lock)
        .unwrap();
    std::fs::write(&lock, holder.to_string()).unwrap();
    let run = env.exits_with(&["state", "unlock", "--force"], 1);
    assert_has(&run.stderr, "is held by a live process");
    assert!(lock.exists());
}

/// `xmeta plan --format json > plan.json` on a full disk must not exit 0
/// with a truncated plan: a write error other than a closed pipe fails.
#[test]
fn a_failed_write_to_stdout_exits_1() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    for format in ["text", "json", "markdown"] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = env
            .command(&["plan", &env.manifests(), "--format", format])
            .stdout(full)
            .output()
            .expect("run xmeta");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {stderr}");
        assert_has(
            &stderr,
            "error: cannot write the output: No space left on device",
        );
    }
}
