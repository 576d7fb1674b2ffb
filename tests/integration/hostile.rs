//! Hostile input: each case ends in a clear error, within bounded time and
//! memory, with nothing sent.

use std::time::{Duration, Instant};

use crate::support::*;

/// `validate` must exit 1 within `limit`, naming `expect`.
fn refused(env: &TestEnv, path: &str, expect: &str) {
    let started = Instant::now();
    let run = env.exits_with(&["validate", path], 1);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        run.stderr.contains(expect),
        "expected `{expect}` in:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn an_alias_bomb() {
    let env = TestEnv::new();
    let mut text = String::from("apiVersion: xmeta/v1\nkind: MediaMetadata\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("media: *a9\n");
    env.write("manifests/bomb.yaml", &text);
    refused(&env, &env.manifests(), "an alias bomb?");
}

#[test]
fn nesting_ten_thousand_levels_deep() {
    let env = TestEnv::new();
    let text = format!(
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    env.write("manifests/deep.yaml", &text);
    refused(&env, &env.manifests(), "deep.yaml:3:");
    refused(&env, &env.manifests(), "recursion limit exceeded");
}

#[test]
fn a_200_mb_single_line_string() {
    let env = TestEnv::new();
    let path = env.path("manifests/huge.yaml");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: 200 MB of NUL bytes cost no disk, and one line.
    file.set_len(200 * 1024 * 1024).unwrap();
    refused(
        &env,
        &env.manifests(),
        "over the limit of 67108864 bytes; it was not read",
    );
}

#[test]
fn a_file_that_is_not_utf8() {
    let env = TestEnv::new();
    let path = env.path("manifests/latin1.yaml");
    std::fs::write(&path, b"apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"1\"\n    metadata: {alt_text: {text: \"caf\xe9\"}}\n").unwrap();
    refused(
        &env,
        &env.manifests(),
        "latin1.yaml:5:37: error: the file is not valid UTF-8",
    );
}

#[test]
fn a_symlink_loop() {
    let env = TestEnv::new();
    env.write("manifests/sub/a.yaml", &manifest(0..1, "v1"));
    std::os::unix::fs::symlink(env.path("manifests"), env.path("manifests/sub/loop")).unwrap();
    refused(&env, &env.manifests(), "symlink loop");
}

#[test]
fn a_fifo_or_a_device() {
    let env = TestEnv::new();
    let fifo = env.path("manifests/pipe.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    refused(
        &env,
        &fifo.display().to_string(),
        "not a regular file or a directory",
    );
    // Found in a directory, it is that file's error, read never.
    refused(
        &env,
        &env.manifests(),
        "pipe.yaml:1:1: error: cannot read the file: it is a FIFO, not a regular file; it was not read",
    );
    refused(&env, "/dev/null", "not a regular file or a directory");
}
