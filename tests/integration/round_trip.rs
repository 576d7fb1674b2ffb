//! Issue: core reconciler — plan, apply only what changed, and converge.

use serde_json::json;

use crate::support::*;

crate::on_both_backends!(round_trip_applies_exactly_what_changed);

fn round_trip_applies_exactly_what_changed(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..30, "v1"));
    env.write("manifests/nested/b.yml", &manifest(30..55, "v1"));
    let m = env.manifests();

    let plan = env.exits_with(&["plan", &m, "--detailed-exitcode"], 2);
    assert_has(
        &plan.stdout,
        "Plan: 55 to create, 0 to update, 0 to forget, 0 unchanged. 55 requests.",
    );
    assert_eq!(emu.request_count(), 0, "plan sends nothing");

    let apply = env.exits_with(&["apply", &m, "--auto-approve"], 0);
    assert!(
        apply
            .stdout
            .ends_with("Apply complete: 55 applied, 0 failed.\n"),
        "{}",
        apply.stdout
    );
    let requests = emu.requests();
    assert_eq!(requests.len(), 55);
    assert!(
        requests.iter().all(|r| r.status == 200),
        "every body is schema-valid"
    );
    assert!(requests.iter().all(|r| r.user_agent.starts_with("xmeta/")));
    assert!(requests
        .iter()
        .all(|r| r.content_type == "application/json"));
    assert_eq!(emu.stored(), expected(0..55, "v1"));

    let again = env.exits_with(&["plan", &m, "--detailed-exitcode"], 0);
    assert!(
        again
            .stdout
            .contains("No changes. 55 media match the manifests."),
        "{}",
        again.stdout
    );
    env.exits_with(&["apply", &m, "--auto-approve"], 0);
    assert_eq!(emu.request_count(), 55, "a second apply sends nothing");

    // One field of one media changes.
    let edited = manifest(0..30, "v1").replace("Photo 7: v1", "Photo 7: edited");
    env.write("manifests/a.yaml", &edited);
    let plan = env.exits_with(&["plan", &m, "--detailed-exitcode"], 2);
    assert_has(
        &plan.stdout,
        "~ media 1700000000000000007 will be updated (1 field)",
    );
    assert_has(&plan.stdout, "+  text: \"Photo 7: edited\"");
    assert_has(&plan.stdout, "1 to update");
    env.exits_with(&["apply", &m, "--auto-approve"], 0);
    let bodies = emu.bodies();
    assert_eq!(bodies.len(), 56);
    assert_eq!(
        bodies[55],
        json!({"id": "1700000000000000007", "metadata": {"alt_text": {"text": "Photo 7: edited"}}})
    );
    env.exits_with(&["plan", &m, "--detailed-exitcode"], 0);
}

#[test]
fn equal_values_spelled_differently_are_unchanged() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    let doc = |body: &str| {
        format!(
            "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: 42\n    metadata:\n{body}"
        )
    };
    env.write(
        "manifests/m.yaml",
        &doc("      sensitive_media_warning: {adult_content: true, other: false}\n      content_expiration: {timestamp_sec: 4102444800}\n"),
    );
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    env.write(
        "manifests/m.yaml",
        &doc("      content_expiration: {timestamp_sec: 4102444800.0}\n      sensitive_media_warning: {other: false, adult_content: true}\n"),
    );
    env.exits_with(&["plan", &env.manifests(), "--detailed-exitcode"], 0);
}

#[test]
fn large_integers_reach_x_exactly() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write(
        "manifests/m.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: 1146654567674912769\n    metadata:\n      sticker_info:\n        stickers:\n          - group_annotation_id: 987654321098765432\n            sticker_set_annotation_id: 9007199254740993\n",
    );
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    let body = &emu.requests()[0];
    assert_eq!(body.body["id"], "1146654567674912769");
    let sticker = &body.body["metadata"]["sticker_info"]["stickers"][0];
    assert_eq!(
        sticker["group_annotation_id"].as_u64(),
        Some(987_654_321_098_765_432)
    );
    assert_eq!(
        sticker["sticker_set_annotation_id"].as_u64(),
        Some(9_007_199_254_740_993)
    );
}

crate::on_both_backends!(the_examples_validate_and_plan_without_credentials);

fn the_examples_validate_and_plan_without_credentials(backend: Backend) {
    let env = TestEnv::on(backend);
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/manifests");
    let run = env.exits_with(&["validate", examples], 0);
    assert_has(&run.stdout, "7 media in 2 files are valid.");
    let plan = env.exits_with(&["plan", examples], 0);
    assert_has(&plan.stdout, "Plan: 7 to create");
    assert_has(
        &plan.stdout,
        "note: media 1146654567674912773 is exempt from alt-text/too-short",
    );
    assert_has(&plan.stdout, "Alt text: 7 of 7 media (100.0%).");
    env.exits_with(&["lint", examples], 0);
    assert!(!env.state_exists(), "plan does not create a state");
}

#[test]
fn target_limits_the_plan() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let id = media_id(3);
    let plan = env.exits_with(&["plan", &env.manifests(), "--target", &id], 0);
    assert_has(&plan.stdout, "Plan: 1 to create");
    env.exits_with(
        &["apply", &env.manifests(), "--target", &id, "--auto-approve"],
        0,
    );
    assert_eq!(emu.request_count(), 1);
    assert_eq!(emu.bodies()[0]["id"], id.as_str());
}

#[test]
fn undeclared_fields_are_not_sent_and_stop_being_tracked() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    let head = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"5\"\n    metadata:\n      alt_text: {text: a}\n";
    env.write(
        "manifests/m.yaml",
        &format!("{head}      shared_info: {{shared: true}}\n"),
    );
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    env.write("manifests/m.yaml", head);
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "field `shared_info` is no longer declared");
    assert_has(&plan.stdout, "0 requests.");
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    assert_eq!(
        emu.request_count(),
        1,
        "nothing sent for an undeclared field"
    );
    let plan = env.exits_with(&["plan", &env.manifests(), "--detailed-exitcode"], 0);
    assert_has(&plan.stdout, "No changes.");
}
