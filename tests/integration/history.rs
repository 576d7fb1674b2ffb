//! The audit trail: who changed what, when, and from which commit, on
//! both backends.

use serde_json::{json, Value};
use sha2::Digest;

use crate::support::*;

/// Runs git in the test's directory, failing the test on an error.
pub fn git(env: &TestEnv, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(env.dir.path())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits the manifests as they are; returns the commit's SHA.
pub fn commit(env: &TestEnv, message: &str) -> String {
    git(env, &["add", "-A"]);
    git(env, &["commit", "-qm", message]);
    git(env, &["rev-parse", "HEAD"])
}

fn history(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["state", "history"];
    all.extend_from_slice(args);
    all.extend(["--format", "json"]);
    let run = env.exits_with(&all, 0);
    serde_json::from_str::<Vec<Value>>(&run.stdout).expect("a JSON array")
}

fn alt(n: u64, variant: &str) -> Value {
    media_metadata(n, variant)["alt_text"].clone()
}

crate::on_both_backends!(
    three_applies_from_three_commits_give_three_entries,
    export_import_and_migrate_keep_the_history,
    since_field_and_prune_before_filter_by_date_and_field,
);

fn three_applies_from_three_commits_give_three_entries(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend)
        .against(&emu)
        .with_env("USER", "tester");
    git(&env, &["init", "-q"]);
    env.write(".gitignore", "state/\n");
    let m = env.manifests();
    let mut shas = Vec::new();
    for variant in ["v1", "v2", "v3"] {
        env.write("manifests/a.yaml", &manifest(0..3, variant));
        shas.push(commit(&env, variant));
        env.exits_with(&["apply", &m, "--auto-approve"], 0);
    }
    let entries = history(&env, &[&media_id(1)]);
    assert_eq!(entries.len(), 3, "{entries:#?}");
    let newest_first: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["revision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        newest_first,
        [
            ("update", shas[2].as_str()),
            ("update", shas[1].as_str()),
            ("create", shas[0].as_str())
        ]
    );
    for (entry, (before, after)) in entries.iter().zip([("v2", "v3"), ("v1", "v2")]) {
        assert_eq!(
            entry["fields"],
            json!({"alt_text": {"before": alt(1, before), "after": alt(1, after)}})
        );
        assert_eq!(entry["actor"], "tester");
        assert!(entry.get("dirty").is_none(), "a clean tree");
    }
    assert_eq!(
        entries[2]["fields"]["alt_text"],
        json!({"before": null, "after": alt(1, "v1")})
    );
    // One run, one run ID, shared by its entries.
    let first_run = history(&env, &[]);
    let runs: std::collections::BTreeSet<_> = first_run
        .iter()
        .map(|e| e["run"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(runs.len(), 3, "three runs");

    // An uncommitted edit is marked dirty.
    env.write("manifests/a.yaml", &manifest(0..3, "v4"));
    env.exits_with(&["apply", &m, "--auto-approve"], 0);
    let newest = &history(&env, &[&media_id(1)])[0];
    assert_eq!(newest["revision"], shas[2].as_str());
    assert_eq!(newest["dirty"], true);

    // A saved plan carries its revision to the apply; in GitHub Actions the
    // actor and the run come from the environment.
    commit(&env, "v4");
    env.write("manifests/a.yaml", &manifest(0..3, "v5"));
    let planned_at = commit(&env, "v5");
    env.exits_with(&["plan", &m, "--out", "plan.json"], 0);
    env.write("manifests/a.yaml", &manifest(0..3, "v6"));
    commit(&env, "v6");
    let ci = env
        .with_env("GITHUB_SHA", "0000000000000000000000000000000000000000")
        .with_env("GITHUB_ACTOR", "octocat")
        .with_env("GITHUB_SERVER_URL", "https://github.com")
        .with_env("GITHUB_REPOSITORY", "acme/media")
        .with_env("GITHUB_RUN_ID", "77");
    ci.exits_with(&["apply", "--plan", "plan.json"], 0);
    let newest = &history(&ci, &[&media_id(1)])[0];
    assert_eq!(
        newest["revision"],
        planned_at.as_str(),
        "the plan's revision"
    );
    assert_eq!(newest["actor"], "octocat");
    assert_eq!(
        newest["run"],
        "https://github.com/acme/media/actions/runs/77"
    );
    assert_eq!(newest["fields"]["alt_text"]["after"], alt(1, "v5"));
    // --source-revision and --actor override both.
    ci.write("manifests/a.yaml", &manifest(0..3, "v7"));
    ci.exits_with(
        &[
            "apply",
            &m,
            "--auto-approve",
            "--source-revision",
            "r-77",
            "--actor",
            "release-bot",
        ],
        0,
    );
    let newest = &history(&ci, &[&media_id(1)])[0];
    assert_eq!(
        (newest["revision"].as_str(), newest["actor"].as_str()),
        (Some("r-77"), Some("release-bot"))
    );
}

fn export_import_and_migrate_keep_the_history(backend: Backend) {
    let env = TestEnv::on(backend.clone()).with_env("USER", "tester");
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.write("manifests/a.yaml", &manifest(0..4, "v2"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.exits_with(&["state", "rm", &media_id(3)], 0);
    let original = history(&env, &[]);
    assert_eq!(original.len(), 4 + 4 + 1);
    assert_eq!(original[0]["action"], "rm");
    env.exits_with(&["state", "export", "--out", "export.json"], 0);

    let other = backend
        .other("history::export_import_and_migrate_keep_the_history (into the other backend)");
    for to in [Some(backend), other].into_iter().flatten() {
        let moved = TestEnv::on(to.clone());
        std::fs::copy(env.path("export.json"), moved.path("export.json")).unwrap();
        moved.exits_with(&["state", "import", "export.json"], 0);
        assert_eq!(history(&moved, &[]), original, "after import into {to:?}");
        let again = TestEnv::on(to.clone());
        let args = migrate_to(&again);
        moved.exits_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), 0);
        assert_eq!(history(&again, &[]), original, "after migrate into {to:?}");
    }
}

/// A state with entries on known dates, through `state import`.
fn dated_history(env: &TestEnv) {
    let entry = |serial: u64, at: &str, n: u64, fields: Value| {
        json!({"serial": serial, "at": at, "media": media_id(n), "action": "update",
               "fields": fields, "revision": format!("rev{serial}"), "actor": "tester", "run": format!("run-{serial}")})
    };
    // Records that hold what the entries left (an import checks they do).
    let record = |metadata: Value| {
        let json = serde_json::to_string(&metadata).unwrap();
        let digest = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(json.as_bytes()))
        );
        json!({"metadata": metadata, "applied_at": "2026-09-01T08:00:00Z", "digest": digest})
    };
    let alt_change = json!({"alt_text": {"before": {"text": "old"}, "after": {"text": "new"}}});
    let geo_change = json!({"geo_restrictions": {"before": null, "after": {"whitelisted_country_codes": ["us"]}}});
    let export = json!({
        "format_version": 2,
        "lineage": "0123456789abcdef0123456789abcdef",
        "serial": 4,
        "media": {media_id(1): record(json!({"alt_text": {"text": "new"}})),
                  media_id(2): record(json!({"alt_text": {"text": "new"},
                      "geo_restrictions": {"whitelisted_country_codes": ["us"]}}))},
        "history": [
            entry(4, "2026-09-01T08:00:00Z", 2, geo_change),
            entry(3, "2026-06-01T08:00:00Z", 1, alt_change.clone()),
            entry(2, "2025-12-31T23:59:59Z", 2, alt_change.clone()),
            entry(1, "2025-01-01T00:00:00Z", 1, alt_change),
        ],
    });
    env.write("dated.json", &export.to_string());
    env.exits_with(&["state", "import", "dated.json"], 0);
}

fn serials(entries: &[Value]) -> Vec<u64> {
    entries
        .iter()
        .map(|e| e["serial"].as_u64().unwrap())
        .collect()
}

fn since_field_and_prune_before_filter_by_date_and_field(backend: Backend) {
    let env = TestEnv::on(backend);
    dated_history(&env);
    assert_eq!(serials(&history(&env, &[])), [4, 3, 2, 1]);
    assert_eq!(serials(&history(&env, &["--since", "2026-01-01"])), [4, 3]);
    assert_eq!(
        serials(&history(&env, &["--since", "2025-12-31T23:59:59Z"])),
        [4, 3, 2]
    );
    assert_eq!(serials(&history(&env, &["--field", "alt_text"])), [3, 2, 1]);
    assert_eq!(
        serials(&history(
            &env,
            &["--since", "2026-01-01", "--field", "alt_text"]
        )),
        [3]
    );
    assert_eq!(serials(&history(&env, &[&media_id(2)])), [4, 2]);
    let bad = env.exits_with(&["state", "history", "--since", "yesterday"], 1);
    assert_has(&bad.stderr, "--since `yesterday` is not a date");
    let bad = env.exits_with(&["state", "history", "--field", "alt_txt"], 1);
    assert_has(&bad.stderr, "`alt_txt` is not a metadata field");

    // Entries must fit the export they come in: none after its serial.
    let mut late: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("dated.json")).unwrap()).unwrap();
    late["history"][0]["serial"] = json!(9);
    env.write("late.json", &late.to_string());
    let run = env.exits_with(&["state", "import", "late.json", "--force"], 1);
    assert_has(
        &run.stderr,
        "has serial 9, after the export's 4; nothing was imported",
    );

    let run = env.exits_with(&["state", "history", "--prune-before", "2999-01-01"], 1);
    assert_has(
        &run.stderr,
        "is in the future: it would delete the whole history",
    );

    let run = env.exits_with(&["state", "history", "--prune-before", "2026-01-01"], 0);
    assert_has(
        &run.stdout,
        "Pruned 2 history entries made before 2026-01-01T00:00:00Z",
    );
    assert_eq!(serials(&history(&env, &[])), [4, 3]);
}

#[test]
fn history_text_and_json() {
    let env = TestEnv::new();
    dated_history(&env);
    let text = env.exits_with(&["state", "history", "--since", "2026-01-01"], 0);
    insta::assert_snapshot!("history_text", text.stdout);
    let json = env.exits_with(&["state", "history", &media_id(1), "--format", "json"], 0);
    insta::assert_snapshot!("history_json", json.stdout);
}

/// A large adopt is written in atomic batches of 1,000: every media gets
/// its one `adopt` entry, and the batches are consecutive writes.
#[test]
fn a_large_adopt_is_written_in_batches_each_with_its_history() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..1_001, "v1"));
    let run = env.exits_with(&["adopt", "manifests"], 0);
    assert_eq!(
        run.stdout.trim(),
        "Adopted 1001 media (0 already matched); nothing was sent."
    );
    let entries = history(&env, &[]);
    assert_eq!(entries.len(), 1_001);
    let mut by_serial = std::collections::BTreeMap::new();
    for serial in serials(&entries) {
        *by_serial.entry(serial).or_insert(0) += 1;
    }
    assert_eq!(
        by_serial.into_iter().collect::<Vec<_>>(),
        [(1, 1_000), (2, 1)]
    );
    let again = env.exits_with(&["adopt", "manifests"], 0);
    assert_eq!(
        again.stdout.trim(),
        "Adopted 0 media (1001 already matched); nothing was sent."
    );
}
