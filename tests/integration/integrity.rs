//! Integrity under hostile servers, hostile manifests and damaged states:
//! nothing recorded that X did not confirm, no secret printed, no file read
//! outside the given roots, no state silently emptied.

use std::os::unix::process::CommandExt;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::hostile::{Hostile, Reply, Seen};
use crate::support::*;

/// A change made to a saved plan's JSON.
type Edit = Box<dyn Fn(&mut Value)>;

const ONE: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"42\"\n    metadata:\n      alt_text: {text: \"A dancing cat\"}\n";

fn is_post(seen: &Seen) -> bool {
    seen.method == "POST" && seen.path == "/2/media/metadata"
}

/// An env whose manifests declare media 42, against a hostile server.
fn against(server: &Hostile) -> TestEnv {
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &server.url())
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    env.write("manifests/one.yaml", ONE);
    env
}

fn apply(env: &TestEnv) -> Run {
    env.run(&[
        "apply",
        &env.manifests(),
        "--auto-approve",
        "--max-retries",
        "0",
    ])
}

/// The IDs the state holds, from `state list`.
fn recorded(env: &TestEnv) -> Vec<String> {
    let run = env.run(&["state", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_redirect_is_a_failure_and_is_never_followed() {
    for status in [301, 302, 303, 307, 308] {
        let server = Hostile::start(move |seen| {
            if is_post(seen) {
                Reply::Full {
                    status,
                    headers: vec![("location".into(), "/elsewhere".into())],
                    body: Vec::new(),
                }
            } else {
                Reply::json(200, &json!({"data": {"id": "42"}}))
            }
        });
        let env = against(&server);
        let run = apply(&env);
        assert_eq!(run.code, 1, "{status}: {}", run.all());
        assert_has(&run.stdout, &format!("HTTP {status}"));
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{status}: a redirect was followed: {seen:?}");
        assert!(recorded(&env).is_empty(), "{status}: recorded");
    }
}

#[test]
fn a_confirmation_must_name_the_media_sent() {
    let answers = [
        (200, json!({"data": {"id": "999"}})),
        (200, json!({"data": false})),
        (202, json!({"data": "queued"})),
        (200, json!({"data": {"id": "42"}, "errors": []})),
    ];
    for (i, (status, body)) in answers.into_iter().enumerate() {
        let reply = body.clone();
        let server = Hostile::start(move |_| Reply::json(status, &reply));
        let env = against(&server);
        let run = apply(&env);
        if i == 3 {
            // An empty `errors` list is no error: this one is confirmed.
            assert_eq!(run.code, 0, "{}", run.all());
            assert_eq!(recorded(&env), ["42"]);
        } else {
            assert_eq!(run.code, 1, "{body}: {}", run.all());
            assert_has(&run.stdout, "failed: media 42:");
            assert!(recorded(&env).is_empty(), "{body} was recorded");
        }
    }
}

#[test]
fn secrets_echoed_by_the_server_are_never_printed() {
    let echo = format!("you sent Authorization: Bearer {TOKEN}");
    let replies: Vec<Box<dyn Fn() -> Reply + Send + Sync>> = vec![
        {
            let echo = echo.clone();
            Box::new(move || Reply::json(400, &json!({"title": "Bad", "detail": echo})))
        },
        {
            let echo = echo.clone();
            Box::new(move || {
                Reply::json(
                    200,
                    &json!({"data": {"id": "42"}, "errors": [{"title": "E", "detail": echo}]}),
                )
            })
        },
        {
            let echo = echo.clone();
            Box::new(move || Reply::text(403, &format!("\x1b[31m{echo}\x1b[0m")))
        },
    ];
    for reply in replies {
        let server = Hostile::start(move |_| reply());
        let env = against(&server);
        let run = env.run(&[
            "-vv",
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--max-retries",
            "0",
        ]);
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(!run.all().contains(TOKEN), "token printed:\n{}", run.all());
        assert!(!run.all().contains('\x1b'), "raw escape printed");
        assert_has(&run.stdout, "Bearer ***");
    }
}

#[test]
fn a_huge_response_body_is_not_read_whole() {
    // 100 MiB, streamed without a length.
    let server = Hostile::start(|_| Reply::Chunked {
        status: 200,
        chunk: 64 * 1024,
        count: 1600,
    });
    let env = against(&server);
    let run = apply(&env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_has(&run.stdout, "larger than 1 MiB");
    assert!(recorded(&env).is_empty());
}

#[test]
fn exporting_a_missing_state_fails() {
    let env = TestEnv::new();
    let run = env.exits_with(&["state", "export"], 1);
    assert_has(&run.stderr, "no state at");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(!env.state_dir().exists(), "export created a state");
}

#[test]
fn an_empty_or_foreign_export_never_replaces_a_state() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    env.exits_with(&["adopt", &env.manifests()], 0);
    let before = env.state_fingerprint();
    let empty = env.write(
        "empty.json",
        r#"{"format_version":1,"lineage":"","serial":0,"media":{}}"#,
    );
    let run = env.exits_with(&["state", "import", &empty.display().to_string()], 1);
    assert_has(&run.stderr, "has no lineage");
    let odd = env.write(
        "odd.json",
        "{\"format_version\":1,\"lineage\":\"ab\\u001b[2Jcd\",\"serial\":3,\"media\":{}}",
    );
    let run = env.exits_with(&["state", "import", &odd.display().to_string()], 1);
    assert_has(&run.stderr, "not a lineage");
    assert!(!run.all().contains('\x1b'));

    // An export of another state, over this non-empty one: only with --force.
    let other = TestEnv::new();
    other.write("manifests/one.yaml", &manifest(0..3, "v1"));
    other.exits_with(&["adopt", &other.manifests()], 0);
    let foreign = env.write("foreign.json", &other.state_fingerprint());
    let run = env.exits_with(&["state", "import", &foreign.display().to_string()], 1);
    assert_has(&run.stderr, "--force");
    assert_eq!(env.state_fingerprint(), before, "the state changed");
    env.exits_with(&["plan", &env.manifests(), "--detailed-exitcode"], 0);

    let serial = |export: &str| serde_json::from_str::<Value>(export).unwrap()["serial"].clone();
    let old_serial = serial(&before).as_u64().unwrap();
    env.exits_with(
        &["state", "import", &foreign.display().to_string(), "--force"],
        0,
    );
    let after = env.state_fingerprint();
    assert!(
        serial(&after).as_u64().unwrap() > old_serial,
        "the serial went back: {after}"
    );
}

#[test]
fn a_missing_database_beside_its_head_is_not_an_empty_state() {
    let env = TestEnv::new();
    env.write("manifests/one.yaml", ONE);
    env.exits_with(&["adopt", &env.manifests()], 0);
    std::fs::remove_dir_all(env.state_dir().join("db")).unwrap();
    for args in [
        vec!["plan", env.manifests().as_str()],
        vec!["state", "list"],
        vec!["state", "export"],
    ] {
        let run = env.exits_with(&args, 1);
        assert_has(&run.stderr, "its database `db` is missing");
        assert!(!run.stderr.contains("damaged"), "{}", run.stderr);
    }
}

#[test]
fn a_manifest_symlink_outside_the_roots_is_refused_unread() {
    let env = TestEnv::new().with_env("LEAK_CANARY", "canary-Ez81");
    env.write(
        "outside/secret.yaml",
        "canary-Ez81: 1\nroot:$6$canary-Ez81:19000:0:99999:7:::\n",
    );
    std::os::unix::fs::symlink(
        env.path("outside/secret.yaml"),
        env.path("manifests/leak.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", env.path("manifests/env.yaml")).unwrap();
    std::os::unix::fs::symlink(env.path("outside"), env.path("manifests/dir")).unwrap();
    // Each refused by name as an error of its own, beside every other
    // file's problems (a broken manifest here too).
    env.write(
        "manifests/bad.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia: [\n",
    );
    let run = env.exits_with(&["validate", &env.manifests()], 1);
    for link in ["dir", "env.yaml", "leak.yaml"] {
        assert_has(
            &run.stderr,
            &format!("{link}:1:1: error: cannot read the file: it is a symlink to `"),
        );
    }
    assert_has(&run.stderr, "bad.yaml:4:1: error: YAML syntax error");
    assert_has(&run.stderr, "outside the given paths; it was not read");
    assert!(!run.all().contains("canary-Ez81"), "{}", run.all());
    // A symlink that stays inside the roots is fine.
    let env = TestEnv::new();
    env.write("manifests/real/one.yaml", ONE);
    std::os::unix::fs::symlink(env.path("manifests/real"), env.path("manifests/alias")).unwrap();
    let run = env.exits_with(
        &[
            "validate",
            &env.path("manifests/alias").display().to_string(),
        ],
        0,
    );
    assert_has(&run.stdout, "1 media in 1 file are valid.");
}

#[test]
fn a_file_that_is_no_manifest_is_not_quoted() {
    let env = TestEnv::new();
    env.write(
        "manifests/shadow.yaml",
        "root:$6$canary-Pq2:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    );
    env.write("manifests/keys.yaml", "canary-K1: a\ncanary-K2: b\n");
    let run = env.exits_with(&["validate", &env.manifests()], 1);
    assert_has(&run.stderr, "shadow.yaml:1:1: error: not an xmeta manifest");
    assert_has(&run.stderr, "keys.yaml:1:1: error: not an xmeta manifest");
    assert!(!run.all().contains("canary"), "{}", run.all());
}

/// Every verdict must be the same whether or not the file also holds
/// something that only the careful parser reports (a past expiry).
#[test]
fn both_parse_paths_refuse_the_same_scalars() {
    let cases = [
        (
            "alt_text: {text: null}",
            "`media[0].metadata.alt_text.text` must be a string",
        ),
        ("alt_text: {text: ~}", "must be a string"),
        ("alt_text: {text: 123}", "must be a string"),
        (
            "found_media_origin: {id: \"1\", provider: true}",
            "must be a string",
        ),
        ("upload_source: {upload_source: 1.5}", "must be a string"),
    ];
    let past = "  - id: \"7\"\n    metadata:\n      content_expiration: {timestamp_sec: 1}\n";
    for (field, message) in cases {
        for extra in ["", past] {
            let env = TestEnv::new();
            env.write(
                "manifests/m.yaml",
                &format!("apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"42\"\n    metadata:\n      {field}\n{extra}"),
            );
            let run = env.exits_with(&["validate", &env.manifests()], 1);
            assert_has(&run.stderr, message);
        }
    }
    // A zero-padded or hex ID is refused on both paths.
    for extra in ["", past] {
        let env = TestEnv::new();
        for id in ["0001", "0x10"] {
            env.write(
                "manifests/m.yaml",
                &format!(
                    "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: {id}\n{extra}"
                ),
            );
            let run = env.exits_with(&["validate", &env.manifests()], 1);
            assert_has(
                &run.stderr,
                "m.yaml:4:9: error: `media[0].id` must be 1 to 19 digits",
            );
        }
    }
}

#[test]
fn a_bom_and_an_empty_last_document_are_fine() {
    let env = TestEnv::new();
    env.write("manifests/m.yaml", &format!("\u{feff}{ONE}---\n"));
    let run = env.exits_with(&["validate", &env.manifests()], 0);
    assert_eq!(run.stdout, "1 media in 1 file are valid.\n");
}

/// Seals a plan document the documented way: its checksum line comes
/// first, and is SHA-256 over every byte after it.
fn seal(document: &str) -> String {
    let rest = document.strip_prefix("{\n").unwrap();
    let sum = hex::encode(Sha256::digest(rest.as_bytes()));
    format!("{{\n  \"checksum\": \"sha256:{sum}\",\n{rest}")
}

/// The document of a saved plan, without its checksum line.
fn unseal(text: &str) -> String {
    let (_, rest) = text.split_once('\n').unwrap();
    let (_, body) = rest.split_once('\n').unwrap();
    format!("{{\n{body}")
}

#[test]
fn tampered_plans_are_refused_even_with_a_new_checksum() {
    let emulator = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emulator);
    env.write("manifests/one.yaml", ONE);
    let plan = env.path("plan.json");
    env.exits_with(
        &[
            "plan",
            &env.manifests(),
            "--out",
            &plan.display().to_string(),
        ],
        0,
    );
    let text = std::fs::read_to_string(&plan).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();

    let edits: Vec<(&str, Edit)> = vec![
        (
            "request",
            Box::new(|d| {
                d["changes"][0]["request"]["metadata"]["alt_text"]["text"] = json!("evil");
            }),
        ),
        (
            "fields",
            Box::new(|d| d["changes"][0]["fields"] = json!([])),
        ),
        (
            "twice",
            Box::new(|d| {
                let c = d["changes"][0].clone();
                d["changes"].as_array_mut().unwrap().push(c);
            }),
        ),
        ("unknown", Box::new(|d| d["changes"][0]["extra"] = json!(1))),
    ];
    for (name, edit) in edits {
        let mut edited = doc.clone();
        edited.as_object_mut().unwrap().remove("checksum");
        edit(&mut edited);
        let body = serde_json::to_string_pretty(&edited).unwrap();
        std::fs::write(&plan, seal(&body)).unwrap();
        let run = env.exits_with(&["apply", "--plan", &plan.display().to_string()], 1);
        assert_has(&run.stderr, "the plan file");
        assert_eq!(emulator.request_count(), 0, "{name}: sent");
        assert!(recorded(&env).is_empty(), "{name}: recorded");
    }
    // The untouched plan, resealed the same way, is the same file and applies.
    assert_eq!(
        seal(&unseal(&text)),
        text,
        "the checksum is not over the bytes"
    );
    std::fs::write(&plan, &text).unwrap();
    env.exits_with(&["apply", "--plan", &plan.display().to_string()], 0);
    assert_eq!(emulator.request_count(), 1);
}

#[test]
fn a_huge_plan_file_is_refused_unread() {
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", "http://127.0.0.1:9")
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    let plan = env.path("plan.json");
    std::fs::File::create(&plan)
        .unwrap()
        .set_len(5 << 30)
        .unwrap();
    let run = env.exits_with(&["apply", "--plan", &plan.display().to_string()], 1);
    assert_has(
        &run.stderr,
        "over the limit of 4294967296 bytes; it was not read",
    );
}

#[test]
fn apply_stops_at_the_first_confirmation_it_cannot_record() {
    let emulator = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emulator);
    env.write("small/one.yaml", ONE);
    env.exits_with(&["adopt", &env.path("small").display().to_string()], 0);
    env.write("manifests/many.yaml", &manifest(0..3000, "long alt text to fill the state log quickly, long alt text to fill the state log quickly, long alt text to fill the state log quickly"));
    let mut cmd = env.command(&["apply", &env.manifests(), "--auto-approve"]);
    // A file-size limit makes the state's writes fail (EFBIG) as a full
    // disk would (ENOSPC).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 1200 * 1024,
                rlim_max: 1200 * 1024,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let unrecorded = stdout.matches("confirmed by X but not recorded").count();
    // At most the default concurrency (4) in flight, and as many
    // confirmations waiting for their write.
    assert!(
        (1..=8).contains(&unrecorded),
        "{unrecorded} unrecorded:\n{}",
        stdout.lines().rev().take(8).collect::<Vec<_>>().join("\n")
    );
    assert_has(&stdout, "stopped: the state cannot be written");
    let ids = recorded(&env);
    // Every request X answered is recorded, or one of the few in flight
    // or waiting.
    assert!(
        emulator.request_count() <= ids.len() - 1 + 8,
        "{} sent, {} recorded",
        emulator.request_count(),
        ids.len()
    );
}

#[test]
fn a_long_flow_list_is_refused_within_bounded_memory() {
    let env = TestEnv::new();
    let mut text = String::from("apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia: [");
    text.push_str(&"a,".repeat(30_000_000));
    text.push_str("a]\n");
    env.write("manifests/flow.yaml", &text);
    drop(text);
    // Waited for below with wait4, which also gives its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = env
        .command(&["validate", &env.manifests()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    assert_eq!(waited, pid);
    assert_eq!(libc::WEXITSTATUS(status), 1);
    let peak_mb = usage.ru_maxrss / 1024;
    assert!(peak_mb < 700, "peak RSS {peak_mb} MB");
}

#[test]
fn a_token_file_must_be_a_private_regular_file_of_this_user() {
    let env = TestEnv::new().with_env("XMETA_API_URL", "http://127.0.0.1:9");
    env.write("manifests/one.yaml", ONE);
    let fifo = env.path("token.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--token-file",
            &fifo.display().to_string(),
        ],
        1,
    );
    assert_has(
        &run.stderr,
        "it is a FIFO, not a regular file; it was not read",
    );

    let other = env.write("token.other", "t0ken\n");
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&other, Some(65534), Some(65534)).unwrap();
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--token-file",
            &other.display().to_string(),
        ],
        1,
    );
    assert_has(&run.stderr, "is owned by another user");
}

#[test]
fn control_characters_in_alt_text_are_shown_escaped() {
    let env = TestEnv::new();
    env.write(
        "manifests/m.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"42\"\n    metadata:\n      alt_text: {text: \"safe\\u202Etxt.exe \\e[2J\"}\n",
    );
    let run = env.exits_with(&["plan", &env.manifests()], 0);
    assert!(
        !run.stdout.contains('\u{202e}') && !run.stdout.contains('\x1b'),
        "{}",
        run.stdout
    );
    assert_has(&run.stdout, r#"text: "safe\u202etxt.exe \u001b[2J""#);
}
