//! `xmeta import`: an account's posted media, read from the emulator page
//! by page, written as manifests that validate, lint and plan as written;
//! `--adopt`, interrupted runs, media declared elsewhere, the 3,200-post
//! horizon, and hostile answers.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::emulator::posts;
use crate::support::hostile::{Hostile, Reply};
use crate::support::*;

const OUT: &str = "manifests/imported";

fn import(env: &TestEnv, extra: &[&str]) -> Run {
    let mut args = vec!["import", "--out", OUT, "--auto-approve"];
    args.extend_from_slice(extra);
    env.run(&args)
}

/// `(file name, text)` pairs.
type Named = Vec<(String, String)>;
/// A hostile server's answer to a page.
type Answer = Box<dyn Fn() -> Reply + Send + Sync>;

/// Every `(file name, id)` written, and the files' text.
fn written(env: &TestEnv) -> (Named, Named) {
    let mut ids = Vec::new();
    let mut files = Vec::new();
    let Ok(dir) = std::fs::read_dir(env.path(OUT)) else {
        return (ids, files);
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
        })
        .collect();
    names.sort();
    for name in names {
        let text = std::fs::read_to_string(env.path(OUT).join(&name)).unwrap();
        for line in text.lines() {
            if let Some(id) = line.strip_prefix("  - id: \"") {
                ids.push((name.clone(), id.trim_end_matches('"').to_string()));
            }
        }
        files.push((name, text));
    }
    (ids, files)
}

fn tweets_requests(emu: &Emulator) -> Vec<String> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path)
        .collect()
}

#[test]
fn a_thousand_posts_become_manifests_that_validate_lint_and_plan() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let census = emu.seed_posts(1_000, 1_400);
    assert_eq!(
        census,
        posts::Census {
            posts: 1_000,
            own_media: 1_300,
            shared: 65,
            without_alt_text: 163,
            others_media: 100,
        }
    );
    let env = TestEnv::new().against(&emu);
    let run = import(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    // One lookup of the account, then 10 pages of 100 posts: no more.
    let paths = tweets_requests(&emu);
    assert_eq!(paths.len(), 11, "{paths:?}");
    assert_eq!(paths[0], "/2/users/me");
    assert_eq!(emu.page_count(), 10);
    assert_eq!(emu.post_count(), 0, "import sent metadata");
    for r in emu
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/tweets"))
    {
        assert_has(&r.query, "max_results=100");
        assert_has(&r.query, "expansions=attachments.media_keys");
        assert_has(
            &r.query,
            "media.fields=alt_text%2Ctype%2Curl%2Cpreview_image_url",
        );
    }
    let (ids, files) = written(&env);
    let unique: BTreeSet<&String> = ids.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1_300, "shared media written once");
    assert_eq!(unique.len(), 1_300);
    assert!(
        !ids.iter().any(|(_, id)| id.starts_with("184")),
        "media of other accounts written"
    );
    // Sorted by ID within each file.
    for (name, _) in &files {
        let mine: Vec<u64> = ids
            .iter()
            .filter(|(f, _)| f == name)
            .map(|(_, id)| id.parse().unwrap())
            .collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{name} unsorted");
    }
    let placeholders: usize = files
        .iter()
        .map(|(_, t)| t.matches("# alt_text: none on X").count())
        .sum();
    assert_eq!(placeholders, 163);
    insta::assert_snapshot!("import_output", run.stdout);
    let november = &files
        .iter()
        .find(|(n, _)| n == "media-2026-11.yaml")
        .unwrap()
        .1;
    let head: String = november.lines().take(34).collect::<Vec<_>>().join("\n");
    let at = head.find(" at 20").unwrap();
    let head = format!("{}<TIME>{}", &head[..at + 4], &head[at + 24..]);
    insta::assert_snapshot!("import_file_head", head);

    let valid = env.exits_with(&["validate", OUT], 0);
    assert_has(&valid.stdout, "1300 media in 9 files are valid.");
    // The linter flags exactly the placeholders, nothing else.
    let lint = env.run(&["lint", OUT, "--format", "json"]);
    assert_eq!(lint.code, 1, "{}", lint.all());
    let findings: serde_json::Value = serde_json::from_str(&lint.stdout).unwrap();
    let rules: Vec<&str> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 163, "{}", lint.stdout);
    assert!(rules.iter().all(|r| *r == "alt-text/missing"), "{rules:?}");
    let plan = env.exits_with(&["plan", OUT], 0);
    assert_has(
        &plan.stdout,
        "Plan: 1300 to create, 0 to update, 0 to forget",
    );
}

#[test]
fn adopt_then_plan_shows_no_changes() {
    let emu = Emulator::start(TOKEN, Faults::default());
    emu.seed_posts(300, 420);
    let env = TestEnv::new().against(&emu);
    let run = import(&env, &["--adopt"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_has(
        &run.stdout,
        "Adopted 390 media (0 already matched); nothing was sent.",
    );
    let plan = env.exits_with(&["plan", OUT, "--detailed-exitcode"], 0);
    assert_has(&plan.stdout, "No changes. 390 media match the manifests.");
    let history = env.exits_with(&["state", "history", "1850000000000000000"], 0);
    assert_has(&history.stdout, "media 1850000000000000000  import");
    assert_eq!(emu.post_count(), 0, "import sent metadata");
}

#[test]
fn an_interrupted_import_continues_without_duplicates() {
    let emu = Emulator::start(TOKEN, Faults::default());
    emu.seed_posts(1_000, 1_400);
    let env = TestEnv::new().against(&emu);
    let first = import(&env, &["--max-requests", "4"]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_has(
        &first.stdout,
        "Import reads at most 4 requests (1 account lookup, 3 pages",
    );
    assert_has(&first.stdout, "Import stopped at the budget");
    assert_eq!(emu.page_count(), 3);
    assert!(env.path(OUT).join(".xmeta-import.json").exists());
    let (_, before) = written(&env);

    let second = import(&env, &[]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert_has(&second.stdout, "Continuing an interrupted import");
    assert_has(&second.stdout, "Import complete.");
    // 3 pages, then the 7 older ones: none read twice.
    assert_eq!(emu.page_count(), 10);
    assert!(!env.path(OUT).join(".xmeta-import.json").exists());
    let (ids, after) = written(&env);
    let unique: BTreeSet<&String> = ids.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1_300, "duplicates or gaps");
    assert_eq!(unique.len(), 1_300);
    // The first run's files are untouched; a month both runs saw got a
    // second file.
    for (name, text) in &before {
        let now = &after.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(now, text, "{name} was rewritten");
    }
    assert!(
        after.iter().any(|(n, _)| n.ends_with("-2.yaml")),
        "{after:?}"
    );
    env.exits_with(&["validate", OUT], 0);
}

#[test]
fn media_declared_elsewhere_in_the_repository_are_reported_not_written() {
    let emu = Emulator::start(TOKEN, Faults::default());
    emu.seed_posts(20, 28);
    let env = TestEnv::new().against(&emu);
    std::fs::create_dir(env.path(".git")).unwrap();
    env.write(
        "manifests/library.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"1850000000000000002\"\n    metadata:\n      alt_text: {text: \"Described by hand\"}\n",
    );
    // A file of the user's own at the name the import would use.
    env.write(
        &format!("{OUT}/media-2026-11.yaml"),
        "# mine\napiVersion: xmeta/v1\nkind: MediaMetadata\nmedia: []\n",
    );
    let run = import(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_has(&run.stdout, "and 1 already declared.");
    assert_has(
        &run.stdout,
        "media 1850000000000000002 is already declared at manifests/library.yaml:4:5",
    );
    assert_eq!(
        std::fs::read_to_string(env.path(OUT).join("media-2026-11.yaml")).unwrap(),
        "# mine\napiVersion: xmeta/v1\nkind: MediaMetadata\nmedia: []\n"
    );
    let (ids, _) = written(&env);
    assert!(ids.iter().all(|(_, id)| id != "1850000000000000002"));
    assert!(
        ids.iter().all(|(f, _)| f == "media-2026-11-2.yaml"),
        "{ids:?}"
    );
    env.exits_with(&["validate", "manifests"], 0);
}

#[test]
fn only_the_most_recent_3200_posts_are_read_in_33_requests() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let census = emu.seed_posts(3_500, 4_550);
    assert_eq!(census.posts, 3_200);
    let env = TestEnv::new().against(&emu);
    let run = import(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_has(
        &run.stdout,
        "Import reads at most 33 requests (1 account lookup, 32 pages of 100 posts; X serves an account's most recent 3,200).\nCost: 33 requests (33 reads) ≈ $0.17;",
    );
    assert_has(
        &run.stdout,
        "Read 33 requests: 32 pages with 3,200 posts of @xmeta_demo.",
    );
    assert_eq!(emu.page_count(), 32);
    let (ids, _) = written(&env);
    assert_eq!(ids.len(), census.own_media);
}

#[test]
fn a_handle_and_dates_narrow_the_read() {
    let emu = Emulator::start(TOKEN, Faults::default());
    emu.seed_posts(200, 280);
    let env = TestEnv::new().against(&emu);
    let run = import(
        &env,
        &[
            "--user",
            "@xmeta_demo",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-15",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let requests = emu.requests();
    assert_eq!(requests[0].path, "/2/users/by/username/xmeta_demo");
    assert_has(&requests[1].query, "start_time=2026-11-01T00%3A00%3A00Z");
    assert_has(&requests[1].query, "end_time=2026-11-15T00%3A00%3A00Z");
    let (ids, files) = written(&env);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(!ids.is_empty());
    let unknown = env.run(&[
        "import",
        "--out",
        OUT,
        "--auto-approve",
        "--user",
        "@nobody_here",
    ]);
    assert_eq!(unknown.code, 1);
    assert_has(
        &unknown.stderr,
        "Could not find user with username: [nobody_here]",
    );
    let bad = env.run(&["import", "--out", OUT, "--user", "@no\u{202e}pe"]);
    assert_eq!(bad.code, 1);
    assert_has(&bad.stderr, "is not `me`, a user ID or an @handle");
}

#[test]
fn without_a_terminal_it_asks_for_auto_approve_and_reads_nothing() {
    let emu = Emulator::start(TOKEN, Faults::default());
    emu.seed_posts(20, 28);
    let env = TestEnv::new().against(&emu);
    let run = env.run(&["import", "--out", OUT]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_has(&run.stderr, "refusing to read without confirmation");
    assert_has(&run.stdout, "Cost: 33 requests (33 reads) ≈ $0.17");
    assert_eq!(emu.request_count(), 0);
    assert!(written(&env).0.is_empty());
}

#[test]
fn alt_text_with_controls_and_bidi_round_trips_escaped() {
    let emu = Emulator::start(TOKEN, Faults::default());
    emu.seed_posts(20, 28);
    let hostile = "evil\u{202e}txt.exe\x1b[2J\u{0}: # \"quoted\"\nnext";
    emu.set_post_media_alt_text("3_1850000000000000000", Some(hostile));
    let long = "y".repeat(1_001);
    emu.set_post_media_alt_text("3_1850000000000000001", Some(&long));
    let env = TestEnv::new().against(&emu);
    let run = import(&env, &["--adopt"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!run.all().contains('\x1b') && !run.all().contains('\u{202e}'));
    let (_, files) = written(&env);
    for (name, text) in &files {
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
            "{name} holds a raw control character"
        );
        assert!(!text.contains(&long), "an over-long alt text was written");
    }
    let november = &files[0].1;
    assert_has(
        november,
        "text: \"evil\\u202etxt.exe\\u001b[2J\\u0000: # \\\"quoted\\\"\\nnext\"",
    );
    assert_has(november, "X holds 1001 characters");
    // Read back exactly: adopted, then no changes.
    env.exits_with(&["plan", OUT, "--detailed-exitcode"], 0);
    let shown = env.exits_with(&["state", "show", "1850000000000000000"], 0);
    assert_has(&shown.stdout, "evil\\u202etxt.exe\\u001b[2J");
}

/// A hostile API that answers `/2/users/me` properly and the posts with
/// `page`.
fn hostile(page: impl Fn() -> Reply + Send + Sync + 'static) -> Hostile {
    Hostile::start(move |seen| {
        if seen.path == "/2/users/me" {
            Reply::json(200, &json!({"data": {"id": "7", "username": "demo"}}))
        } else {
            page()
        }
    })
}

fn post_with(key: &str, kind: &str) -> serde_json::Value {
    json!({
        "data": [{"id": "9", "created_at": "2026-11-30T12:00:00.000Z", "attachments": {"media_keys": [key]}}],
        "includes": {"media": [{"media_key": key, "type": kind, "alt_text": "ok"}]},
        "meta": {"result_count": 1}
    })
}

#[test]
fn hostile_answers_are_refused_and_nothing_is_written() {
    let many: Vec<serde_json::Value> = (0..101)
        .map(|i| json!({"id": (1000 + i).to_string(), "created_at": "2026-11-30T12:00:00Z"}))
        .collect();
    let cases: Vec<(&str, Answer)> = vec![
        (
            "HTTP 302: redirects are not followed",
            Box::new(|| Reply::Full {
                status: 302,
                headers: vec![("location".into(), "http://127.0.0.1:9/elsewhere".into())],
                body: Vec::new(),
            }),
        ),
        (
            "larger than 4 MiB",
            Box::new(|| Reply::Chunked {
                status: 200,
                chunk: 64 * 1024,
                count: 1600,
            }),
        ),
        (
            "media key `3_05` of type `photo` is not X's",
            Box::new(|| Reply::json(200, &post_with("3_05", "photo"))),
        ),
        (
            "media key `7_5` of type `photo` is not X's",
            Box::new(|| Reply::json(200, &post_with("7_5", "photo"))),
        ),
        (
            "media key `3_5\\u001b[2J` of type `photo`",
            Box::new(|| Reply::json(200, &post_with("3_5\x1b[2J", "photo"))),
        ),
        (
            "the page holds 101 posts, more than the 100 asked for",
            Box::new(move || Reply::json(200, &json!({"data": many}))),
        ),
        (
            "unreadable body",
            // A raw control character inside a JSON string is not JSON.
            Box::new(|| Reply::text(200, "{\"data\": [{\"id\": \"1\u{1b}\"}]}")),
        ),
    ];
    for (expect, page) in cases {
        let server = hostile(page);
        let env = TestEnv::new()
            .with_env("XMETA_API_URL", &server.url())
            .with_env("XMETA_BEARER_TOKEN", TOKEN);
        let run = import(&env, &["--max-retries", "0"]);
        assert_eq!(run.code, 1, "{expect}: {}", run.all());
        assert_has(&run.stderr, expect);
        assert!(!run.all().contains('\x1b'), "{expect}: raw escape printed");
        assert!(written(&env).0.is_empty(), "{expect}: a file was written");
        let seen = server.seen();
        assert!(
            seen.iter().all(|s| s.path != "/elsewhere"),
            "{expect}: a redirect was followed"
        );
        assert_eq!(seen.len(), 2, "{expect}: {seen:?}");
    }
}

#[test]
fn a_server_that_pages_forever_is_stopped_at_32_pages() {
    let server = hostile(|| {
        let mut page = post_with("3_5", "photo");
        page["meta"]["next_token"] = json!("again");
        Reply::json(200, &page)
    });
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &server.url())
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    let run = import(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_has(&run.stdout, "Import stopped after 32 pages");
    assert_eq!(server.seen().len(), 33, "more requests than announced");
    let (ids, _) = written(&env);
    assert_eq!(ids, [("media-2026-11.yaml".to_string(), "5".to_string())]);
}

#[test]
fn pages_are_paced_by_the_rate_limit_headers_and_an_id_needs_no_lookup() {
    // 4 requests a 1-second window: the 10 pages take three windows.
    let faults = Faults {
        rate_limit: Some((4, std::time::Duration::from_secs(1))),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    emu.seed_posts(1_000, 1_400);
    let env = TestEnv::new().against(&emu);
    let run = import(&env, &["--user", posts::USER_ID]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_has(
        &run.stdout,
        "Import reads at most 32 requests (32 pages of 100 posts;",
    );
    assert_has(
        &run.stdout,
        "Read 10 requests: 10 pages with 1,000 posts of user 2244994945.",
    );
    assert_eq!(emu.request_count(), 10, "a lookup for an ID");
    assert_eq!(emu.count_status(429), 0, "sent into a spent window");
    assert_eq!(written(&env).0.len(), 1_300);
}

#[test]
fn an_interrupted_run_writes_what_it_read_and_the_next_continues() {
    let emu = Emulator::start(
        TOKEN,
        Faults {
            latency: std::time::Duration::from_millis(150),
            ..Faults::default()
        },
    );
    emu.seed_posts(1_000, 1_400);
    let env = TestEnv::new().against(&emu);
    let mut child = Killed(
        env.command(&["import", "--out", OUT, "--auto-approve"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_until(
        std::time::Duration::from_secs(30),
        "the second page",
        || emu.page_count() >= 2,
    );
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let read = emu.page_count();
    assert!(read < 10, "{read} pages: the interrupt did not stop it");
    let (ids, _) = written(&env);
    assert!(!ids.is_empty(), "what was read was not written");
    assert!(env.path(OUT).join(".xmeta-import.json").exists());
    emu.set_faults(Faults::default());
    let rerun = import(&env, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert_eq!(emu.page_count(), 10, "a page was read twice");
    let (ids, _) = written(&env);
    assert_eq!(ids.len(), 1_300);
}
