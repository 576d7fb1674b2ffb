//! The one file intake: every file read from a place users control is
//! refused by name, unread, when it is a link outside the given paths, a
//! FIFO, a socket or a device; and `xmeta.yaml` is found the one way.

use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

/// Runs xmeta and waits for it to exit, at most `limit` (a reader stuck on
/// a FIFO must fail the test, not hang it).
fn exits_within(env: &TestEnv, args: &[&str], limit: Duration) -> Run {
    let child = env
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut status = None;
    wait_until(limit, &format!("xmeta {args:?} to exit"), || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    let read = |stream: &mut dyn std::io::Read| {
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    };
    let stdout = read(child.0.stdout.as_mut().unwrap());
    let stderr = read(child.0.stderr.as_mut().unwrap());
    Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn lint_refuses_a_config_that_is_a_device_a_fifo_or_a_link_outside() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let config = env.path("manifests/xmeta.yaml");
    let m = env.manifests();

    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    let run = exits_within(&env, &["lint", &m], LIMIT);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(
        &run.stderr,
        "xmeta.yaml`: it is a symlink to `/dev/zero`, outside the given paths; it was not read",
    );
    // Named with --config, it is read as the user's own, but never a device.
    let run = exits_within(&env, &["lint", &m, "--config", "/dev/zero"], LIMIT);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(
        &run.stderr,
        "error: cannot read the lint configuration `/dev/zero`: it is a character device, not a regular file; it was not read",
    );

    std::fs::remove_file(&config).unwrap();
    mkfifo(&config);
    let run = exits_within(&env, &["lint", &m], LIMIT);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(
        &run.stderr,
        "xmeta.yaml`: it is a FIFO, not a regular file; it was not read",
    );

    // A file outside the repository, whose keys would be echoed as errors.
    std::fs::remove_file(&config).unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "secret_key: hunter2\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), &config).unwrap();
    let run = exits_within(&env, &["lint", &m], LIMIT);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(&run.stderr, "outside the given paths; it was not read");
    assert!(!run.all().contains("secret_key"), "{run:?}");

    // `validate` and `plan` read it the same way.
    for command in ["validate", "plan"] {
        let run = exits_within(&env, &[command, &m], LIMIT);
        assert_eq!(run.code, 1, "{command}: {run:?}");
        assert_has(&run.stderr, "outside the given paths; it was not read");
    }
}

#[test]
fn state_import_refuses_a_fifo_and_a_device() {
    let env = TestEnv::new();
    let fifo = env.path("export.json");
    mkfifo(&fifo);
    let run = exits_within(
        &env,
        &["state", "import", &fifo.display().to_string()],
        LIMIT,
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(
        &run.stderr,
        "export.json`: it is a FIFO, not a regular file; it was not read",
    );
    let run = exits_within(&env, &["state", "import", "/dev/zero"], LIMIT);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(
        &run.stderr,
        "error: cannot read `/dev/zero`: it is a character device, not a regular file; it was not read",
    );
    assert!(!env.state_dir().exists(), "nothing was written");
}

/// `xmeta.yaml` is found from the first PATH up to the repository root,
/// like `.editorconfig`; `-v` says which file is used.
#[test]
fn the_config_is_found_up_to_the_repository_root() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path(".git")).unwrap();
    env.write(
        "xmeta.yaml",
        "lint:\n  rules:\n    alt-text/too-short: {level: error, min_chars: 40}\n",
    );
    env.write("media/photos/a.yaml", &manifest(0..1, "v1"));
    let run = env.exits_with(&["lint", "media/photos", "-v"], 1);
    assert_has(&run.stdout, "error[alt-text/too-short]");
    assert_has(&run.stderr, "lint configuration: `xmeta.yaml`");

    // Nearer wins.
    env.write(
        "media/xmeta.yaml",
        "lint:\n  rules:\n    alt-text/too-short: off\n",
    );
    let run = env.exits_with(&["lint", "media/photos", "-v"], 0);
    assert_has(&run.stderr, "lint configuration: `media/xmeta.yaml`");

    // Not above the repository root.
    std::fs::remove_file(env.path("media/xmeta.yaml")).unwrap();
    std::fs::create_dir_all(env.path("media/.git")).unwrap();
    let run = env.exits_with(&["lint", "media/photos", "-v"], 0);
    assert_has(
        &run.stderr,
        "no xmeta.yaml found; the lint rules use their defaults",
    );
}

/// xmeta's own files in a state directory (the lock, the head, the moved
/// mark) are never followed through a symlink nor read from a FIFO or
/// device: a link planted in a checked-out `state/` could otherwise make a
/// writer truncate the file it points to.
#[test]
fn the_state_directory_s_own_files_are_never_links_or_fifos() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let m = env.manifests();
    env.exits_with(&["adopt", &m], 0);
    let victim = env.write("victim.txt", "precious content\n");
    let lock = env.state_dir().join("xmeta.lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    env.write("manifests/a.yaml", &manifest(0..2, "v2"));
    let run = exits_within(&env, &["adopt", &m], LIMIT);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(&run.stderr, "xmeta.lock` is a symlink, not a regular file; xmeta never reads or writes its own files through one (remove it)");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious content\n"
    );

    std::fs::remove_file(&lock).unwrap();
    for name in ["moved.json", "head.json"] {
        let file = env.state_dir().join(name);
        let _ = std::fs::remove_file(&file);
        mkfifo(&file);
        let run = exits_within(&env, &["plan", &m], LIMIT);
        assert_eq!(run.code, 1, "{name}: {run:?}");
        assert_has(
            &run.stderr,
            &format!("{name}` is a FIFO, not a regular file"),
        );
        std::fs::remove_file(&file).unwrap();
    }
}

/// A FIFO or a link outside the roots found in a directory is an error of
/// that file, reported with every other file's problems in one run, not a
/// stop before the rest are read.
#[test]
fn a_refused_file_is_one_error_among_all() {
    let env = TestEnv::new();
    env.write(
        "manifests/bad.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"1\"\n    metadata: {alt_txt: {text: x}}\n",
    );
    mkfifo(&env.path("manifests/fifo.yaml"));
    std::os::unix::fs::symlink("/etc/passwd", env.path("manifests/link.yaml")).unwrap();
    let run = exits_within(&env, &["validate", &env.manifests()], LIMIT);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(&run.stderr, "bad.yaml:5:16: error: unknown field `alt_txt`");
    assert_has(
        &run.stderr,
        "fifo.yaml:1:1: error: cannot read the file: it is a FIFO, not a regular file; it was not read",
    );
    assert_has(
        &run.stderr,
        "link.yaml:1:1: error: cannot read the file: it is a symlink to `/etc/passwd`, outside the given paths; it was not read",
    );
    assert!(!run.all().contains("root:"), "{run:?}");
}
