//! One planner: `plan`, the plan `apply` shows before it asks, and watch's
//! first cycle are the same plan, with the same warnings, exemptions,
//! coverage and cost, on both state backends.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use crate::on_both_backends;
use crate::support::*;

/// Updates, a create, a forget, lint findings (a short and a duplicated
/// alt text) and an exemption, against a state adopted from `before`.
fn library(env: &TestEnv) {
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let id = |n| media_id(n);
    env.write(
        "manifests/a.yaml",
        &format!(
            "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n\
             - id: \"{}\"\n  metadata:\n    alt_text: {{text: \"Photo 0: v2, now longer\"}}\n\
             - id: \"{}\"\n  metadata:\n    alt_text: {{text: \"Cat\"}}\n\
             - id: \"{}\"\n  metadata:\n    alt_text: {{text: \"Photo 0: v2, now longer\"}}\n\
             - id: \"{}\"\n  lint: {{ignore: [alt-text/too-short], reason: \"a logo\"}}\n  metadata:\n    alt_text: {{text: \"Logo\"}}\n",
            id(0),
            id(1),
            id(2),
            id(9)
        ),
    );
}

/// The stdout of watch's first cycle, less its header line.
fn first_watch_cycle(env: &TestEnv, last_line: &str) -> String {
    let m = env.manifests();
    let mut child = Killed(
        env.command(&["watch", &m, "--debounce-ms", "200"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&out);
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut o = sink.lock().unwrap();
            o.push_str(&line);
            o.push('\n');
        }
    });
    wait_until(
        std::time::Duration::from_secs(15),
        "watch's first cycle",
        || out.lock().unwrap().contains(last_line),
    );
    let text = out.lock().unwrap().clone();
    let (header, rest) = text.split_once('\n').unwrap();
    assert!(header.ends_with(" start =="), "{header}");
    rest.to_string()
}

fn plan_apply_and_watch_show_one_plan(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend).against(&emu);
    library(&env);
    let m = env.manifests();

    let plan = env.exits_with(&["plan", &m], 0).stdout;
    for line in [
        "warning[alt-text/too-short]",
        "warning[alt-text/duplicate]",
        "is exempt from alt-text/too-short",
        "Plan: 1 to create, 3 to update, 1 to forget, 0 unchanged. 4 requests.",
        "Cost: 4 requests ≈ $0.02",
        "Alt text: 4 of 4 media (100.0%).",
    ] {
        assert_has(&plan, line);
    }

    // Without a terminal, apply shows its plan, then refuses to go on.
    let apply = env.exits_with(&["apply", &m], 1);
    assert_eq!(apply.stdout, plan);
    assert_has(&apply.stderr, "refusing to apply without confirmation");
    assert_eq!(emu.request_count(), 0);

    let last = plan.lines().last().unwrap();
    assert_eq!(first_watch_cycle(&env, last), plan);

    // The JSON plan is the same plan.
    let json = env.checked_plan(&env.exits_with(&["plan", &m, "--format", "json"], 0).stdout);
    assert_eq!(
        json["summary"]["requests"],
        4,
        "{}",
        serde_json::to_string_pretty(&json["summary"]).unwrap()
    );
    let warnings = json["warnings"].as_array().unwrap();
    let texts: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains(": warning[") || l.contains("is exempt from"))
        .collect();
    assert!(warnings.len() >= texts.len(), "{texts:?} vs {warnings:?}");
}

on_both_backends!(plan_apply_and_watch_show_one_plan);

/// With `--refresh`, the drift read from X is part of the one plan: `plan`
/// and the plan `apply` shows before it asks are the same, on both
/// backends.
fn plan_and_apply_show_one_drift(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend).against(&emu);
    env.write(
        "manifests/a.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n\
         - id: \"101\"\n  type: photo\n  metadata:\n    alt_text: {text: \"Item 101 on a wooden shelf\"}\n\
         - id: \"102\"\n  type: photo\n  metadata:\n    alt_text: {text: \"Item 102 on a wooden shelf\"}\n",
    );
    env.exits_with(&["apply", "manifests", "--auto-approve"], 0);
    emu.set_alt_text_outside("102", Some("Changed in the X app"));
    let posts = emu.post_count();

    let plan = env
        .exits_with(&["plan", "manifests", "--refresh"], 0)
        .stdout;
    assert_has(&plan, "! media 102 drifted");
    let apply = env.exits_with(&["apply", "manifests", "--refresh"], 1);
    assert_eq!(apply.stdout, plan);
    assert_eq!(emu.post_count(), posts);
}

on_both_backends!(plan_and_apply_show_one_drift);
