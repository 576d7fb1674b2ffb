//! The CLI in scripts and at a terminal: exit codes a CI step can trust,
//! state and path mistakes that are loud, not silently empty.

use crate::support::*;

const ONE: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"42\"\n    metadata:\n      alt_text: {text: \"A dancing cat\"}\n";

#[test]
fn a_usage_error_exits_1_never_2() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.ok(
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
    env.ok(&["plan", "--detailed-exitcode"], 1);
    env.ok(&["state", "unlock"], 1);
    // Help and version are no errors.
    env.ok(&["--help"], 0);
    env.ok(&["--version"], 0);
}

#[test]
fn a_terraform_style_single_dash_flag_gets_a_hint() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.ok(&["apply", &env.manifests(), "-auto-approve"], 1);
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
        let run = env.ok(&args, 1);
        assert_has(&run.stderr, "is not a directory");
    }
}

#[test]
fn a_plan_against_no_state_says_so() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.ok(&["plan", &env.manifests()], 0);
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
    let run = env.ok(&["plan", &empty], 1);
    assert_has(&run.stderr, "holds no manifests");
    env.ok(&["validate", &empty], 1);
    env.ok(&["plan", &empty, "--allow-empty"], 0);
    let run = env.ok(&["plan", &env.path("missing").display().to_string()], 1);
    assert_has(&run.stderr, "missing");
}

#[test]
fn a_target_that_no_manifest_declares_is_an_error() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    let run = env.ok(&["plan", &env.manifests(), "--target", "43"], 1);
    assert_has(&run.stderr, "`--target 43`: no manifest declares media 43");
}

#[test]
fn unlock_force_refuses_a_live_holder_on_this_host() {
    let emulator = Emulator::start(
        TOKEN,
        Faults {
            latency: std::time::Duration::from_secs(120),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/one.yaml", ONE);
    /// Ends the writer even when an assertion fails first.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
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
    while std::fs::metadata(&lock).map_or(0, |m| m.len()) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(5)); // polling the log, not timing
        if let Ok(Some(status)) = writer.0.try_wait() {
            panic!("the writer ended early: {status}");
        }
    }
    let run = env.ok(&["state", "unlock", "--force"], 1);
    assert_has(&run.stderr, "is held by a live process on this host");
    assert!(env.state_dir().join("xmeta.lock").exists());
}
