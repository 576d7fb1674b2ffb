//! CI-grade workflow: JSON and markdown plans, saved plans, prune, adopt,
//! state commands, and the GitHub Actions example.

use serde_json::Value;

use crate::support::*;

fn json_plan(env: &TestEnv, extra: &[&str]) -> Value {
    let m = env.manifests();
    let mut args = vec!["plan", m.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let run = env.exits_with(&args, 0);
    env.checked_plan(&run.stdout)
}

#[test]
fn json_plan_requests_are_exactly_what_apply_sends() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..10, "v1"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    emu.clear_requests();
    let edited = manifest(0..12, "v1").replace("Photo 2: v1", "Photo 2: v2");
    env.write("manifests/a.yaml", &edited);

    let plan = json_plan(&env, &[]);
    assert_eq!(plan["format_version"], "1");
    assert_eq!(plan["lineage"].as_str().map(str::len), Some(32));
    assert!(plan["serial"].as_u64().unwrap() >= 10);
    assert_eq!(
        plan["summary"],
        serde_json::json!({"create": 2, "update": 1, "forget": 0, "unchanged": 9, "requests": 3, "estimated_cost_usd": 0.015, "minimum_duration_secs": 0})
    );
    let update = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "update")
        .unwrap();
    assert_eq!(update["fields"], serde_json::json!(["alt_text"]));
    assert_eq!(update["before"]["alt_text"]["text"], "Photo 2: v1");
    assert_eq!(update["after"]["alt_text"]["text"], "Photo 2: v2");

    let planned: Vec<Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request"].clone())
        .collect();
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    let mut sent = emu.bodies();
    let key = |v: &Value| v["id"].as_str().unwrap_or_default().to_string();
    sent.sort_by_key(key);
    let mut planned = planned;
    planned.sort_by_key(key);
    assert_eq!(sent, planned);
}

crate::on_both_backends!(
    saved_plan_applies_exactly_and_refuses_stale_or_edited_plans,
    deleted_manifests_are_forgotten_only_with_prune,
    adopt_rm_export_and_import_round_trip,
);

fn saved_plan_applies_exactly_and_refuses_stale_or_edited_plans(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..6, "v1"));
    let m = env.manifests();
    env.exits_with(&["plan", &m, "--out", "plan.json"], 0);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.path("plan.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let saved = env.checked_plan(&std::fs::read_to_string(env.path("plan.json")).unwrap());
    assert!(saved["checksum"].as_str().unwrap().starts_with("sha256:"));

    // Manifests change after the plan: the saved plan still applies as planned.
    env.write("manifests/a.yaml", &manifest(0..6, "v2"));
    env.exits_with(&["apply", "--plan", "plan.json"], 0);
    let planned: Vec<Value> = saved["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request"].clone())
        .collect();
    let mut sent = emu.bodies();
    sent.sort_by_key(|v| v["id"].as_str().unwrap().to_string());
    assert_eq!(sent, planned);
    assert_eq!(emu.stored(), expected(0..6, "v1"));

    // Stale: the state changed after the plan was written.
    env.exits_with(&["plan", &m, "--out", "plan2.json"], 0);
    env.exits_with(
        &["apply", &m, "--auto-approve", "--target", &media_id(3)],
        0,
    );
    let before = emu.request_count();
    let run = env.exits_with(&["apply", "--plan", "plan2.json"], 1);
    assert_has(&run.stderr, "stale");
    assert_eq!(emu.request_count(), before);

    // Edited by hand.
    env.exits_with(&["plan", &m, "--out", "plan3.json"], 0);
    let text = std::fs::read_to_string(env.path("plan3.json")).unwrap();
    let edited = text.replace("Photo 4: v2", "Photo 4: evil");
    assert_ne!(text, edited);
    std::fs::write(env.path("plan3.json"), edited).unwrap();
    let run = env.exits_with(&["apply", "--plan", "plan3.json"], 1);
    assert_has(&run.stderr, "does not match its checksum");
    std::fs::write(env.path("plan3.json"), "{ not json").unwrap();
    let run = env.exits_with(&["apply", "--plan", "plan3.json"], 1);
    assert_has(&run.stderr, "corrupt");
    assert_eq!(emu.request_count(), before);
}

fn deleted_manifests_are_forgotten_only_with_prune(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    let gone = env.write("manifests/b.yaml", &manifest(4..7, "v1"));
    let m = env.manifests();
    env.exits_with(&["apply", &m, "--auto-approve"], 0);
    emu.clear_requests();
    std::fs::remove_file(gone).unwrap();

    let plan = env.exits_with(&["plan", &m, "--detailed-exitcode"], 2);
    assert_has(
        &plan.stdout,
        &format!(
            "- media {} is in no manifest: it will be forgotten with --prune (nothing is sent)",
            media_id(5)
        ),
    );
    assert_has(
        &plan.stdout,
        "Plan: 0 to create, 0 to update, 3 to forget, 4 unchanged. 0 requests.",
    );
    assert_has(
        &plan.stdout,
        "warning: 3 media in the state are in no manifest",
    );

    env.exits_with(&["apply", &m, "--auto-approve"], 0);
    assert_eq!(emu.request_count(), 0);
    let list = env.exits_with(&["state", "list"], 0);
    assert_eq!(list.stdout.lines().count(), 7, "kept without --prune");

    env.exits_with(&["apply", &m, "--auto-approve", "--prune"], 0);
    assert_eq!(
        emu.request_count(),
        0,
        "nothing is ever sent for forgotten media"
    );
    let list = env.exits_with(&["state", "list"], 0);
    assert_eq!(list.stdout.lines().count(), 4);
    let plan = env.exits_with(&["plan", &m, "--detailed-exitcode"], 0);
    assert_has(&plan.stdout, "No changes. 4 media match the manifests.");
}

fn adopt_rm_export_and_import_round_trip(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend.clone()).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let m = env.manifests();

    let run = env.exits_with(&["adopt", &m], 0);
    assert_has(&run.stdout, "Adopted 5 media");
    assert_eq!(emu.request_count(), 0);
    env.exits_with(&["plan", &m, "--detailed-exitcode"], 0);

    let show = env.exits_with(&["state", "show", &media_id(2)], 0);
    assert_has(&show.stdout, "text: \"Photo 2: v1\"");

    env.exits_with(&["state", "rm", &media_id(2)], 0);
    let plan = env.exits_with(&["plan", &m], 0);
    assert_has(
        &plan.stdout,
        &format!("+ media {} will be created", media_id(2)),
    );
    let missing = env.exits_with(&["state", "rm", "999"], 1);
    assert_has(&missing.stderr, "not in the state: `999`");

    env.exits_with(&["state", "export", "--out", "export.json"], 0);
    let original = json_plan(&env, &[]);
    // Imported on the same backend and on the other one.
    let other =
        backend.other("workflow::adopt_rm_export_and_import_round_trip (into the other backend)");
    for to in [Some(backend), other].into_iter().flatten() {
        let moved = TestEnv::on(to.clone());
        std::fs::copy(env.path("export.json"), moved.path("export.json")).unwrap();
        std::fs::copy(env.path("manifests/a.yaml"), moved.path("manifests/a.yaml")).unwrap();
        moved.exits_with(&["state", "import", "export.json"], 0);
        let mut copy = json_plan(&moved, &[]);
        assert_eq!(copy["lineage"], original["lineage"]);
        copy["serial"] = original["serial"].clone();
        assert_eq!(
            copy, original,
            "identical plan after export and import into {to:?}"
        );
    }
}

crate::on_both_backends!(migrate_both_ways_keeps_the_plan_and_refuses_a_used_target);

/// `state migrate` to the other backend and back: the same lineage, serial
/// and plan at every step; a target that holds media is refused.
fn migrate_both_ways_keeps_the_plan_and_refuses_a_used_target(backend: Backend) {
    let Some(other) = backend.other("workflow::migrate_both_ways (to the other backend)") else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..8, "v1"));
    let m = env.manifests();
    env.exits_with(&["apply", &m, "--auto-approve"], 0);
    env.write("manifests/a.yaml", &manifest(0..10, "v2"));
    let original = json_plan(&env, &[]);
    let exported = env.state_fingerprint();

    // The other backend's address, as its own TestEnv would give it.
    let there = TestEnv::on(other).reaching(&env);
    let args = migrate_to(&there);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = env.exits_with(&args, 0);
    assert_has(&run.stdout, "Copied 8 media");
    std::fs::copy(env.path("manifests/a.yaml"), there.path("manifests/a.yaml")).unwrap();
    assert_eq!(
        json_plan(&there, &[]),
        original,
        "identical plan after migrate"
    );
    assert_eq!(
        there.state_fingerprint(),
        exported,
        "lineage, serial and records copied"
    );

    // Again: the source moved, so it is refused.
    let run = env.exits_with(&args, 1);
    assert_has(&run.stderr, "moved to");
    // A target that holds media is refused: nothing is copied.
    let other = TestEnv::on(env.backend.clone());
    other.write("manifests/a.yaml", &manifest(0..2, "v1"));
    other.exits_with(&["adopt", &other.manifests()], 0);
    let run = other.exits_with(&args, 1);
    assert_has(&run.stderr, "already holds 8 media; nothing was copied");

    // And back, into a fresh state on the first backend.
    let back = TestEnv::on(env.backend.clone());
    let args = migrate_to(&back);
    there.exits_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), 0);
    std::fs::copy(env.path("manifests/a.yaml"), back.path("manifests/a.yaml")).unwrap();
    assert_eq!(
        json_plan(&back, &[]),
        original,
        "identical plan after migrating back"
    );
    assert_eq!(back.state_fingerprint(), exported);
    assert_eq!(emu.request_count(), 8, "moving state sends nothing");
}

/// The workflows in `examples/github-actions/`, parsed.
fn example_workflows() -> Vec<(String, String, serde_yaml::Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github-actions");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let parsed = serde_yaml::from_str(&text).expect("valid YAML");
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                text,
                parsed,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_github_actions_example_uses_only_documented_commands() {
    let env = TestEnv::new();
    let mut checked = 0;
    for (_, _, workflow) in example_workflows() {
        for (_, job) in workflow["jobs"].as_mapping().expect("jobs") {
            for step in job["steps"].as_sequence().unwrap() {
                let Some(run) = step["run"].as_str() else {
                    continue;
                };
                for line in run
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("xmeta "))
                {
                    let words: Vec<&str> = line
                        .split_whitespace()
                        .take_while(|w| *w != ">" && *w != ">>" && *w != "||")
                        .collect();
                    let sub: Vec<&str> = words[1..]
                        .iter()
                        .take_while(|w| !w.starts_with('-') && !w.contains('/') && !w.contains('.'))
                        .copied()
                        .collect();
                    let mut help_args = sub.clone();
                    help_args.push("--help");
                    let help = env.exits_with(&help_args, 0).stdout;
                    for flag in words.iter().filter(|w| w.starts_with("--")) {
                        assert!(
                            help.contains(flag),
                            "`{line}`: `{flag}` is not in `xmeta {} --help`",
                            sub.join(" ")
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4, "found {checked} xmeta commands");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/github-actions/xmeta.yml"
    ))
    .unwrap();
    assert!(text.contains("xmeta plan media/ --format markdown"));
    assert!(text.contains("xmeta apply media/ --auto-approve"));
    assert!(text.contains("secrets.XMETA_STATE"));
    assert!(
        text.contains("secrets.X_ACCESS_TOKEN_SECRET"),
        "OAuth 1.0a, which does not expire"
    );
}

/// What a security review of a workflow checks first: pinned actions,
/// least privilege per job, no persisted token, a time limit.
#[test]
fn the_example_workflows_are_hardened() {
    for (name, text, workflow) in example_workflows() {
        assert_eq!(
            workflow["permissions"],
            serde_yaml::from_str::<serde_yaml::Value>("{}").unwrap(),
            "{name}: no permissions at the top"
        );
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("- uses:") || l.starts_with("uses:"))
        {
            let reference = line.split('@').nth(1).unwrap_or_default();
            // xmeta's own action by the release tag the workflow installs
            // (no release commit exists yet to pin; .ci/zizmor.yml says so).
            if line.ends_with("uses: xmeta-dev/xmeta@v0.1.0") {
                assert_eq!(workflow["env"]["XMETA_VERSION"].as_str(), Some("v0.1.0"));
                continue;
            }
            let (sha, comment) = reference.split_once(" # v").unwrap_or((reference, ""));
            assert!(
                sha.len() == 40
                    && sha.bytes().all(|b| b.is_ascii_hexdigit())
                    && !comment.is_empty(),
                "{name}: `{line}` is not pinned to a commit with a version comment"
            );
        }
        for (job_name, job) in workflow["jobs"].as_mapping().unwrap() {
            let job_name = job_name.as_str().unwrap();
            assert!(
                job["permissions"].is_mapping(),
                "{name}/{job_name}: permissions"
            );
            assert!(
                job["timeout-minutes"].is_number(),
                "{name}/{job_name}: timeout-minutes"
            );
            for step in job["steps"].as_sequence().unwrap() {
                if step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
                {
                    assert_eq!(
                        step["with"]["persist-credentials"].as_bool(),
                        Some(false),
                        "{name}/{job_name}: checkout persists credentials"
                    );
                }
            }
        }
    }
    let main = &example_workflows()
        .into_iter()
        .find(|w| w.0 == "xmeta.yml")
        .unwrap()
        .2;
    let jobs = &main["jobs"];
    assert_eq!(jobs["apply"]["environment"].as_str(), Some("production"));
    assert_eq!(
        jobs["apply"]["concurrency"]["cancel-in-progress"].as_bool(),
        Some(false)
    );
    assert_eq!(
        jobs["plan"]["concurrency"]["cancel-in-progress"].as_bool(),
        Some(true)
    );
    assert_ne!(
        jobs["apply"]["concurrency"]["group"], jobs["plan"]["concurrency"]["group"],
        "a PR plan never cancels or queues behind an apply"
    );
    assert_eq!(
        jobs["plan"]["permissions"]["contents"].as_str(),
        Some("read")
    );
    assert!(
        jobs["plan"]["permissions"]["pull-requests"].is_null(),
        "the PR comment is posted by xmeta-comment.yml"
    );
}

/// `xmeta-comment.yml` posts `comment/parts/plan-K.md` (at most 64,000
/// bytes each): every example whose plan job keeps the `xmeta-plan`
/// artifact must write the plan that way, and the apply jobs post their
/// result summary.
#[test]
fn every_example_plan_writes_the_parts_the_comment_workflow_posts() {
    let comment = example_workflows()
        .into_iter()
        .find(|(name, _, _)| name == "xmeta-comment.yml")
        .expect("xmeta-comment.yml")
        .1;
    assert_has(&comment, "comment/parts/plan-$k.md");
    let planners: Vec<(String, String, serde_yaml::Value)> = example_workflows()
        .into_iter()
        .filter(|(_, text, _)| text.contains("name: xmeta-plan"))
        .collect();
    assert!(planners.len() >= 2, "xmeta.yml and xmeta-s3.yml");
    for (name, text, _) in &planners {
        assert!(
            text.contains("--format markdown --max-bytes 64000 --split comment/parts"),
            "{name} writes a plan xmeta-comment.yml does not post"
        );
        assert!(
            text.contains("--format markdown > apply.md"),
            "{name}'s apply posts no result"
        );
        assert!(!text.contains("cargo install"), "{name} compiles xmeta");
    }
}
