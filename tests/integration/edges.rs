//! Small edges where xmeta failed a user: a file-size limit that killed it
//! silently, a file name SARIF changed, a cost line in float noise, a hint
//! for a flag that does not exist.

use std::os::unix::process::CommandExt;

use crate::support::*;

/// `ulimit -f` makes a write past the limit raise SIGXFSZ, whose default
/// kills the process with no message. xmeta ignores it, so the write
/// fails with EFBIG and is reported as a full disk (ENOSPC) is.
#[test]
fn a_file_size_limit_is_reported_like_a_full_disk() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..2_000, "v1"));
    let mut cmd = env.command(&["plan", &env.manifests(), "--out", "plan.json"]);
    // The test harness leaves SIGXFSZ at its default: so does the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "killed by a signal? {:?} {stderr}",
        out.status
    );
    assert_has(&stderr, "File too large");
    assert!(!env.path("plan.json").exists(), "a partial plan was left");
}

/// A backslash is an ordinary character in a Unix file name: SARIF shows
/// `back\slash.yaml` as `back%5Cslash.yaml`, never as a path `back/slash.yaml`.
#[test]
fn sarif_keeps_a_backslash_in_a_file_name() {
    let env = TestEnv::new();
    env.write(
        "manifests/back\\slash.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"7\"\n    metadata:\n      alt_text: {text: \"image\"}\n",
    );
    let run = env.exits_with(&["lint", "manifests", "--format", "sarif"], 1);
    assert_has(&run.stdout, "\"uri\": \"manifests/back%5Cslash.yaml\"");
    assert!(!run.stdout.contains("back/slash"), "{}", run.stdout);
}

/// Cost lines are rounded as money is read: cents, or a tenth of a cent
/// under $0.01; never float noise like `$0.000019999999999999998`.
#[test]
fn cost_lines_are_rounded_to_cents_or_a_tenth_of_a_cent() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    for (price, cost) in [
        ("0.0000066666", "Cost: 3 requests ≈ under $0.001;"),
        ("0.0011", "Cost: 3 requests ≈ $0.003;"),
        ("0.002", "Cost: 3 requests ≈ $0.006;"),
        ("0.1234", "Cost: 3 requests ≈ $0.37;"),
    ] {
        let run = env.exits_with(&["plan", &env.manifests(), "--price-per-request", price], 0);
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("Cost:"))
            .unwrap_or("");
        assert!(line.starts_with(cost), "{price}: {line}");
    }
}

/// The two-dash hint is for real flags only: `--max-duration -5m` is a bad
/// value, not a flag `--5m`.
#[test]
fn a_hint_names_only_a_real_flag() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..1, "v1"));
    let run = env.exits_with(&["apply", &env.manifests(), "--max-duration", "-5m"], 1);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
    let run = env.exits_with(&["apply", &env.manifests(), "-auto-approve"], 1);
    assert_has(&run.stderr, "did you mean `--auto-approve`?");
}
