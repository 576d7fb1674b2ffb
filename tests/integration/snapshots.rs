//! What users and scripts read, pinned exactly: plans in every format,
//! error messages, apply summaries and help. A change to any of them shows
//! up as a changed `.snap` file in review (`cargo insta review`).

use crate::support::*;

const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\n";

/// A state that was adopted from one set of manifests, and manifests
/// edited since: one create (with a past expiry), one update, one field
/// no longer declared, one media gone.
fn edited() -> TestEnv {
    let env = TestEnv::new();
    env.write(
        "manifests/library.yaml",
        &format!("{HEAD}media:\n  - id: \"101\"\n    metadata:\n      alt_text: {{text: \"A cat on a red sofa\"}}\n  - id: \"102\"\n    metadata:\n      alt_text: {{text: \"A dog\"}}\n      allow_download_status: {{allow_download: false}}\n  - id: \"103\"\n    metadata:\n      alt_text: {{text: \"A bird\"}}\n"),
    );
    env.exits_with(&["adopt", "manifests"], 0);
    env.write(
        "manifests/library.yaml",
        &format!("{HEAD}media:\n  - id: \"101\"\n    metadata:\n      alt_text: {{text: \"A black cat asleep on a red sofa\"}}\n  - id: \"102\"\n    metadata:\n      alt_text: {{text: \"A dog\"}}\n  - id: \"104\"\n    metadata:\n      alt_text: {{text: \"A fox in snow\"}}\n      content_expiration: {{timestamp_sec: 1}}\n"),
    );
    env
}

#[test]
fn plan_text() {
    let env = edited();
    insta::assert_snapshot!(env.exits_with(&["plan", "manifests"], 0).stdout);
}

#[test]
fn plan_text_in_colour() {
    let env = edited();
    let run = env.exits_with(&["plan", "manifests", "--color", "always"], 0);
    insta::assert_snapshot!(run.stdout.replace('\x1b', "<ESC>"));
}

#[test]
fn plan_markdown() {
    let env = edited();
    insta::assert_snapshot!(
        env.exits_with(&["plan", "manifests", "--format", "markdown"], 0)
            .stdout
    );
}

#[test]
fn plan_json() {
    let env = edited();
    let run = env.exits_with(&["plan", "manifests", "--format", "json"], 0);
    let json = env.checked_plan(&run.stdout);
    let lineage = json["lineage"].as_str().unwrap();
    insta::assert_snapshot!(run.stdout.replace(lineage, "[lineage]"));
}

#[test]
fn validation_errors() {
    let env = TestEnv::new();
    env.write(
        "manifests/bad.yaml",
        &format!("{HEAD}media:\n  - id: 12a\n    metadata:\n      alt_txt: {{text: x}}\n      geo_restrictions: {{whitelisted_country_codes: [usa]}}\n      sensitive_media_warning: {{adult: true}}\n  - id: \"5\"\n    metadata:\n      alt_text: {{text: 123}}\n  - id: \"5\"\n"),
    );
    env.write(
        "manifests/tab.yaml",
        &format!("{HEAD}media:\n\t- id: \"7\"\n"),
    );
    env.write("manifests/stray.yaml", "just: some\nother: file\n");
    insta::assert_snapshot!(env.exits_with(&["validate", "manifests"], 1).stderr);
}

#[test]
fn apply_summaries() {
    let emulator = Emulator::start(
        TOKEN,
        Faults {
            status_for: [("103".to_string(), 400)].into_iter().collect(),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emulator);
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}media:\n  - id: \"101\"\n    metadata:\n      alt_text: {{text: \"A cat\"}}\n  - id: \"103\"\n    metadata:\n      alt_text: {{text: \"A bird\"}}\n"),
    );
    let failed = env
        .exits_with(&["apply", "manifests", "--auto-approve"], 1)
        .stdout;
    let lines: Vec<&str> = failed.lines().collect();
    insta::assert_snapshot!("apply_failed", lines[lines.len() - 2..].join("\n"));
    let done = env
        .exits_with(
            &["apply", "manifests", "--auto-approve", "--target", "101"],
            0,
        )
        .stdout;
    insta::assert_snapshot!("apply_nothing_to_do", done);
}

#[test]
fn help() {
    // clap wraps help to COLUMNS when it is set.
    let env = TestEnv::new().with_env("COLUMNS", "100");
    let mut all = String::new();
    for args in [
        vec!["--help"],
        vec!["plan", "--help"],
        vec!["apply", "--help"],
        vec!["watch", "--help"],
        vec!["state", "import", "--help"],
    ] {
        all.push_str(&format!("$ xmeta {}\n", args.join(" ")));
        all.push_str(&env.exits_with(&args, 0).stdout);
        all.push('\n');
    }
    insta::assert_snapshot!(all);
}

/// `n` media that each want one alt text.
fn many(n: usize) -> String {
    let mut text = format!("{HEAD}media:\n");
    for i in 1..=n {
        text.push_str(&format!(
            "  - id: \"{i}\"\n    metadata: {{alt_text: {{text: \"Photo {i}\"}}}}\n"
        ));
    }
    text
}

#[test]
fn cost_lines() {
    let mut all = String::new();
    for n in [1, 1_000, 100_000] {
        let env = TestEnv::new();
        env.write("manifests/many.yaml", &many(n));
        let run = env.exits_with(&["plan", "manifests", "--format", "markdown"], 0);
        let head: Vec<&str> = run.stdout.lines().take(5).collect();
        all.push_str(&head.join("\n"));
        all.push_str("\n\n");
    }
    let env = TestEnv::new();
    env.write("manifests/many.yaml", &many(1_000));
    let run = env.exits_with(&["plan", "manifests", "--price-per-request", "0.01"], 0);
    all.push_str(run.stdout.lines().last().unwrap_or(""));
    insta::assert_snapshot!(all);
}

/// Every kind of plan warning as a GitHub annotation (a manifest's own, the
/// plan's, alt-text findings), then the summary notice.
#[test]
fn plan_github_annotations() {
    let env = edited();
    let run = env.exits_with(&["plan", "manifests", "--format", "github"], 0);
    insta::assert_snapshot!(run.stdout);
}

/// The state errors users read, one per kind, with the run's temp dir shown
/// as `[dir]`.
#[test]
fn state_errors() {
    let env = TestEnv::new().with_env("XMETA_BEARER_TOKEN", "t");
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let dir = env.path("").display().to_string();
    let shown = |run: Run| run.stderr.replace(dir.trim_end_matches('/'), "[dir]");
    let mut all = String::new();
    all.push_str("$ xmeta state export   # nothing applied yet\n");
    all.push_str(&shown(env.exits_with(&["state", "export"], 1)));
    env.exits_with(&["adopt", "manifests"], 0);
    std::fs::write(env.state_dir().join("head.json"), "{not json").unwrap();
    all.push_str("$ xmeta plan manifests   # head.json overwritten\n");
    all.push_str(&shown(env.exits_with(&["plan", "manifests"], 1)));
    let file = env.path("plan.json");
    std::fs::write(&file, "{\"format_version\": \"1\"}").unwrap();
    all.push_str("$ xmeta apply --plan plan.json   # not written by plan --out\n");
    all.push_str(&shown(env.exits_with(&["apply", "--plan", "plan.json"], 1)));
    insta::assert_snapshot!(all);
}
