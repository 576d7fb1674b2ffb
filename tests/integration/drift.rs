//! Drift: alt text changed on X outside xmeta is found by reading it back
//! (`GET /2/media`, 100 keys a request) and put back.

use crate::support::*;

const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n";

/// Media 101.. with alt text; the first `typed` declare `type: photo`.
fn library(count: u32, typed: u32) -> String {
    let mut text = HEAD.to_string();
    for i in 0..count {
        let id = 101 + i;
        let kind = if i < typed { "    type: photo\n" } else { "" };
        text.push_str(&format!(
            "  - id: \"{id}\"\n{kind}    metadata:\n      alt_text: {{text: \"Item {id} on a wooden shelf\"}}\n"
        ));
    }
    text
}

fn applied(emu: &Emulator, count: u32, typed: u32) -> TestEnv {
    let env = TestEnv::new().against(emu);
    env.write("manifests/library.yaml", &library(count, typed));
    env.exits_with(&["apply", "manifests", "--auto-approve"], 0);
    env
}

#[test]
fn drift_is_found_and_put_back() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 3, 3);
    emu.set_alt_text_outside("102", Some("Changed in the X app"));
    let posts = emu.post_count();

    let plan = env.exits_with(
        &["plan", "manifests", "--refresh", "--detailed-exitcode"],
        2,
    );
    insta::assert_snapshot!("drift_plan_text", plan.stdout);
    let markdown = env.exits_with(
        &["plan", "manifests", "--refresh", "--format", "markdown"],
        0,
    );
    insta::assert_snapshot!("drift_plan_markdown", markdown.stdout);
    assert_eq!(emu.post_count(), posts, "a plan sends nothing");

    let only = env.exits_with(
        &["plan", "manifests", "--refresh-only", "--detailed-exitcode"],
        2,
    );
    assert_eq!(
        only.stdout.lines().last().unwrap_or(""),
        "Refresh: 1 drifted, 2 as recorded, 0 not refreshable, 0 not found; 1 read. Nothing is planned (--refresh-only)."
    );
    assert_eq!(emu.post_count(), posts, "--refresh-only sends nothing");

    env.exits_with(&["apply", "manifests", "--auto-approve", "--refresh"], 0);
    assert_eq!(emu.post_count(), posts + 1, "one request puts it back");
    assert_eq!(
        emu.stored()["102"]["alt_text"]["text"],
        "Item 102 on a wooden shelf"
    );
    env.exits_with(
        &["plan", "manifests", "--refresh", "--detailed-exitcode"],
        0,
    );
}

#[test]
fn reads_go_100_keys_at_a_time_and_only_for_media_with_a_key() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 255, 250);
    let reads = emu.read_count();
    let run = env.exits_with(&["plan", "manifests", "--refresh-only"], 0);
    assert_eq!(emu.read_count() - reads, 3, "250 keys are 3 reads");
    assert_has(
        &run.stdout,
        "5 media could not be refreshed: their manifests give no `key` or `type`",
    );
    let asked: usize = emu
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.query.matches("3_").count())
        .sum();
    assert_eq!(asked, 250, "no key was asked for a media without one");
}

#[test]
fn a_deleted_media_is_reported_and_the_others_still_refresh() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 3, 3);
    emu.delete_media("101");
    emu.set_alt_text_outside("103", None);
    let run = env.exits_with(&["plan", "manifests", "--refresh"], 0);
    assert_has(
        &run.stderr,
        "warning: media 101 was not found on X (key 3_101): deleted, or the key is wrong",
    );
    assert_has(
        &run.stdout,
        "! media 103 drifted: alt_text changed outside xmeta",
    );
    assert_has(&run.stdout, "~ media 103 will be updated (1 field)");
}

#[test]
fn refresh_records_what_x_holds_and_sends_nothing() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 2, 2);
    emu.set_alt_text_outside("101", Some("Changed in the X app"));
    let posts = emu.post_count();
    let run = env.exits_with(&["refresh", "manifests"], 0);
    assert_has(
        &run.stdout,
        "Recorded 1 drifted media as X holds them; nothing was sent.",
    );
    assert_eq!(emu.post_count(), posts);
    let show = env.exits_with(&["state", "show", "101"], 0);
    assert_has(&show.stdout, "text: Changed in the X app");
    // The next plan, without reading X, puts back what the manifest wants.
    let plan = env.exits_with(&["plan", "manifests"], 0);
    assert_has(&plan.stdout, "~ media 101 will be updated (1 field)");
}

#[test]
fn keys_and_types_are_checked_and_never_sent() {
    let env = TestEnv::new();
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}  - id: \"7\"\n    key: 3_8\n    metadata:\n      alt_text: {{text: \"A photo of item seven\"}}\n  - id: \"9\"\n    type: sticker\n"),
    );
    let run = env.exits_with(&["validate", "manifests"], 1);
    assert_has(
        &run.stderr,
        "manifests/a.yaml:5:10: error: `key` must be this media's key: `3_7` (photo)",
    );
    assert_has(
        &run.stderr,
        "error: `type` must be `photo`, `gif` or `video`, found \"sticker\"",
    );
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 1, 1);
    let body = &emu.bodies()[0];
    assert!(
        body.get("type").is_none() && body["metadata"].get("type").is_none(),
        "{body}"
    );
    drop(env);
}

#[test]
fn watch_puts_drift_back_on_a_schedule() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/library.yaml", &library(2, 2));
    let _watch = Killed(
        env.command(&["watch", "manifests", "--apply", "--refresh-every", "1s"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let limit = std::time::Duration::from_secs(30);
    wait_until(limit, "the first apply", || emu.post_count() == 2);
    emu.set_alt_text_outside("101", Some("Changed in the X app"));
    wait_until(limit, "the drift put back", || emu.post_count() == 3);
    assert!(emu.read_count() >= 1);
    assert_eq!(
        emu.stored()["101"]["alt_text"]["text"],
        "Item 101 on a wooden shelf"
    );
}

#[test]
fn drift_back_to_what_is_wanted_is_recorded_by_apply_refresh() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 1, 1);
    emu.set_alt_text_outside("101", Some("Changed in the X app"));
    env.exits_with(&["refresh", "manifests"], 0);
    // Someone puts the wanted text back by hand.
    emu.set_alt_text_outside("101", Some("Item 101 on a wooden shelf"));
    let posts = emu.post_count();
    let run = env.exits_with(&["apply", "manifests", "--auto-approve", "--refresh"], 0);
    assert_has(&run.stdout, "! media 101 drifted");
    assert_eq!(emu.post_count(), posts, "nothing to send");
    // The record now says what X holds: a plain plan has nothing to do.
    env.exits_with(&["plan", "manifests", "--detailed-exitcode"], 0);
}

/// A read answer that cannot be trusted is refused for that read: a key
/// twice (the last would win), a key not asked for, an alt text over X's
/// 1,000 characters, a media of another type than its key says. Reported,
/// exit 1, nothing recorded.
#[test]
fn a_read_answer_that_cannot_be_trusted_is_refused() {
    use crate::support::hostile::{Hostile, Reply};
    use serde_json::{json, Value};
    let item =
        |key: &str, kind: &str, alt: &str| json!({"media_key": key, "type": kind, "alt_text": alt});
    let long = "x".repeat(50_000);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([item("3_101", "photo", "first"), item("3_101", "photo", "second")]),
            "the answer names media key `3_101` twice",
        ),
        (
            json!([item("3_101", "photo", "ok"), item("3_999", "photo", "planted")]),
            "the answer names media key `3_999`, which was not asked for",
        ),
        (
            json!([item("3_101", "photo", &long)]),
            "the answer gives media key `3_101` an alt text of 50000 characters, over X's limit of 1000",
        ),
        (
            json!([item("3_101", "video", "a video")]),
            "the answer says media key `3_101` is a video, not a photo",
        ),
    ];
    for (data, message) in cases {
        let body = json!({"data": data});
        let server = Hostile::start(move |_| Reply::json(200, &body));
        let env = TestEnv::new()
            .with_env("XMETA_API_URL", &server.url())
            .with_env("XMETA_BEARER_TOKEN", TOKEN);
        env.write("manifests/library.yaml", &library(1, 1));
        env.exits_with(&["adopt", "manifests"], 0);
        let before = env.state_fingerprint();
        for args in [
            vec!["refresh", "manifests"],
            vec!["apply", "manifests", "--auto-approve", "--refresh"],
        ] {
            let run = env.exits_with(&args, 1);
            assert_has(&run.all(), message);
            assert!(
                !run.all().contains(&long[..1_001]),
                "the long text was shown"
            );
            assert_eq!(env.state_fingerprint(), before, "{args:?}: recorded");
        }
        assert!(server.seen().iter().all(|s| s.method == "GET"), "sent");
    }
}

/// `apply --refresh` that puts drifted alt text back records what it
/// overwrote: the live value as `before`, the manifest's as `after`, as
/// `refresh` records before and after.
#[test]
fn apply_refresh_history_records_the_live_value_it_overwrote() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 2, 2);
    emu.set_alt_text_outside("102", Some("Changed in the X app"));
    env.exits_with(&["apply", "manifests", "--auto-approve", "--refresh"], 0);
    let run = env.exits_with(&["state", "history", "102", "--format", "json"], 0);
    let entries: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(entries[0]["action"], "update", "{run:?}");
    assert_eq!(
        entries[0]["fields"],
        serde_json::json!({"alt_text": {
            "before": {"text": "Changed in the X app"},
            "after": {"text": "Item 102 on a wooden shelf"},
        }}),
        "{}",
        run.stdout
    );
}

/// Many media not found make one warning on stderr, not one line each on
/// stdout (the contract puts warnings on stderr): the first few IDs, then
/// where to find them all.
#[test]
fn media_not_found_fold_into_one_warning_on_stderr() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = applied(&emu, 12, 12);
    for id in 101..=112 {
        emu.delete_media(&id.to_string());
    }
    let folded = "warning: 12 media were not found on X (deleted, or their keys are wrong): 101, 102, 103, 104, 105, … (see --format json)";
    for args in [
        vec!["plan", "manifests", "--refresh"],
        vec!["plan", "manifests", "--refresh-only"],
        vec!["apply", "manifests", "--refresh", "--auto-approve"],
        vec!["refresh", "manifests"],
    ] {
        let run = env.exits_with(&args, 0);
        assert!(
            !run.stdout.contains("not found on X"),
            "{args:?}:\n{}",
            run.stdout
        );
        let warnings: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("not found on X"))
            .collect();
        assert_eq!(warnings, [folded], "{args:?}");
    }
    let json = env.exits_with(
        &["plan", "manifests", "--refresh-only", "--format", "json"],
        0,
    );
    assert_eq!(json.stdout.matches("3_1").count(), 12, "{}", json.stdout);
}
