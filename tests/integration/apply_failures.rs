//! Apply failures: wrong token, no credentials, plain http off loopback,
//! a held lock.

use crate::support::*;

#[test]
fn unauthorized_fails_with_the_status_and_records_nothing() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &emu.url())
        .with_env("XMETA_BEARER_TOKEN", "wrong-token");
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
    assert_has(
        &run.stdout,
        "stopped: X refused the OAuth 2.0 user token (HTTP 401)",
    );
    assert_has(&run.stdout, "Apply failed: 0 applied, ");
    // A 401 is never retried, and stops the run: each media is sent once
    // at most (those not yet started when it came are not sent at all).
    let ids: std::collections::BTreeSet<String> = emu
        .bodies()
        .iter()
        .map(|b| b["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert!((1..=3).contains(&emu.request_count()));
    assert_eq!(ids.len(), emu.request_count(), "a 401 is not retried");
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert!(
        plan.stdout.contains("3 to create"),
        "nothing was recorded: {}",
        plan.stdout
    );
}

#[test]
fn no_credentials_fails_before_any_request() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().with_env("XMETA_API_URL", &emu.url());
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
    assert_has(&run.stderr, "XMETA_BEARER_TOKEN");
    assert_has(&run.stderr, "XMETA_CONSUMER_KEY");
    assert_eq!(emu.request_count(), 0);
    assert!(!env.state_dir().exists());
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", "http://api.x.com")
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    env.write("manifests/a.yaml", &manifest(0..1, "v1"));
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
    assert_has(&run.stderr, "refusing plain http to `api.x.com`");
}

#[test]
fn without_a_terminal_apply_needs_auto_approve() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let run = env.exits_with(&["apply", &env.manifests()], 1);
    assert_has(&run.stderr, "--auto-approve");
    assert_eq!(emu.request_count(), 0);
}

#[test]
fn a_failed_media_does_not_stop_the_others() {
    let mut faults = Faults::default();
    faults.status_for.insert(media_id(1), 400);
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
    assert_has(
        &run.stdout,
        &format!("failed: media {}: HTTP 400: Injected", media_id(1)),
    );
    assert_has(&run.stdout, "Apply failed: 3 applied, 1 failed.");
    assert_eq!(emu.request_count(), 4, "the 400 was not retried");
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(
        &plan.stdout,
        "Plan: 1 to create, 0 to update, 0 to forget, 3 unchanged.",
    );
}
