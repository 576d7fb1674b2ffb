//! The X client under real-world conditions: faults, rate limits, retries,
//! OAuth 1.0a, and secrets that never leak.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn converges_under_faults_and_rate_limits() {
    let faults = Faults {
        rate_503: 0.15,
        rate_drop: 0.05,
        rate_200_errors: 0.05,
        rate_limit: Some((40, Duration::from_secs(2))),
        seed: 42,
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..150, "v1"));
    let m = env.manifests();

    let first = env.run(&["apply", &m, "--auto-approve"]);
    let after_first = emu.request_count();
    if first.code != 0 {
        assert_has(&first.stdout, "failed: media");
        env.exits_with(&["apply", &m, "--auto-approve"], 0);
    }
    assert_eq!(
        emu.stored(),
        expected(0..150, "v1"),
        "X holds exactly the manifests"
    );
    let plan = env.exits_with(&["plan", &m, "--detailed-exitcode"], 0);
    assert!(plan
        .stdout
        .contains("No changes. 150 media match the manifests."));
    let total = emu.request_count();
    let limited = emu.count_status(429);
    eprintln!(
        "fault convergence: first apply exit {} after {after_first} requests; {total} requests in all; {limited} answered 429; {} 503s; {} dropped; {} 200-with-errors",
        first.code,
        emu.count_status(503),
        emu.count_status(0),
        emu.requests().iter().filter(|r| r.status == 200 && r.with_errors).count(),
    );
    assert!(limited <= 12, "{limited} responses were 429");
}

#[test]
fn waits_for_the_window_instead_of_sending_into_a_429() {
    let faults = Faults {
        rate_limit: Some((10, Duration::from_secs(3))),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..35, "v1"));
    let started = Instant::now();
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    let elapsed = started.elapsed();
    // Without a terminal the wait shows in the plain progress lines, once
    // per line, not once per worker.
    assert!(
        run.stderr.contains("waiting for the rate limit"),
        "the wait is shown: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("rate limit budget spent"),
        "{}",
        run.stderr
    );
    assert_eq!(emu.request_count(), 35);
    assert!(
        run.stderr.contains("progress: "),
        "plain progress lines off a terminal: {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("progress: "),
        "progress stays off stdout"
    );
    assert_eq!(
        emu.count_status(429),
        0,
        "no request was sent into an exhausted window"
    );
    let mut per_window = std::collections::BTreeMap::new();
    for r in emu.requests() {
        *per_window.entry(r.window.unwrap()).or_insert(0) += 1;
    }
    assert!(per_window.values().all(|n| *n <= 10), "{per_window:?}");
    // 35 requests at 10 per window: the last ones go in the 4th window,
    // about 3 windows after the first.
    assert!(per_window.len() == 4, "{per_window:?}");
    assert!(
        elapsed >= Duration::from_secs(6) && elapsed < Duration::from_secs(14),
        "{elapsed:?}"
    );
}

#[test]
fn a_503_streak_longer_than_max_retries_fails_that_media_only() {
    let mut faults = Faults::default();
    faults.status_for.insert(media_id(2), 503);
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let m = env.manifests();
    let run = env.exits_with(&["apply", &m, "--auto-approve", "--max-retries", "2"], 1);
    assert_has(
        &run.stdout,
        &format!("failed: media {}: gave up after 3 attempts", media_id(2)),
    );
    assert_has(&run.stdout, "Apply failed: 4 applied, 1 failed.");
    let attempts = emu
        .bodies()
        .iter()
        .filter(|b| b["id"] == media_id(2).as_str())
        .count();
    assert_eq!(attempts, 3, "1 try + 2 retries");
    assert_eq!(emu.request_count(), 7);
    let plan = env.exits_with(&["plan", &m], 0);
    assert_has(
        &plan.stdout,
        &format!("+ media {} will be created", media_id(2)),
    );
    assert_has(
        &plan.stdout,
        "1 to create, 0 to update, 0 to forget, 4 unchanged",
    );
}

#[test]
fn a_200_with_errors_is_a_failure_and_not_recorded() {
    let faults = Faults {
        rate_200_errors: 1.0,
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
    assert_has(
        &run.stdout,
        "HTTP 200 with errors: Internal Error: the metadata could not be saved",
    );
    assert_eq!(emu.request_count(), 2, "not retried");
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "2 to create");
}

#[test]
fn secrets_never_reach_output_logs_state_or_plans() {
    let secret = "SeCrEt-Token-7c1f9e0d";
    let mut faults = Faults::default();
    faults.status_for.insert(media_id(1), 403);
    faults.rate_503 = 0.3;
    let emu = Emulator::start(secret, faults);
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &emu.url())
        .with_env("XMETA_BEARER_TOKEN", secret)
        .with_env("RUST_LOG", "trace");
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    let m = env.manifests();
    let mut output = String::new();
    for args in [
        vec!["plan", m.as_str(), "--out", "plan.json", "-vv"],
        vec!["apply", m.as_str(), "--auto-approve", "-vv"],
        vec!["apply", "--plan", "plan.json"],
        vec!["state", "export", "--out", "export.json"],
    ] {
        let run = env.run(&args);
        output.push_str(&run.all());
    }
    // A failure path with a wrong token too.
    let wrong = TestEnv::new()
        .with_env("XMETA_API_URL", &emu.url())
        .with_env("XMETA_BEARER_TOKEN", "wrong-but-secret-4d2a")
        .with_env("RUST_LOG", "trace");
    wrong.write("manifests/a.yaml", &manifest(0..1, "v1"));
    let run = wrong.run(&["apply", &wrong.manifests(), "--auto-approve"]);
    assert_eq!(run.code, 1);
    assert!(!run.all().contains("wrong-but-secret-4d2a"));
    assert!(output.contains("debug: "), "debug logging was on");
    assert!(emu.request_count() >= 4);
    assert!(!output.contains(secret), "secret in output:\n{output}");
    for (path, bytes) in env.state_files() {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "secret in {}",
            path.display()
        );
    }
    for file in ["plan.json", "export.json"] {
        let bytes = std::fs::read(env.path(file)).unwrap();
        assert!(!contains(&bytes, secret.as_bytes()), "secret in {file}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn oauth1_signed_requests_are_accepted() {
    let secrets = OAuth1Secrets {
        consumer_key: "ck-xvz1evFS4wEEPTGEFPHBog".into(),
        consumer_secret: "cs-kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw".into(),
        token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb".into(),
        token_secret: "ts-LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE".into(),
    };
    let emu = Emulator::start_oauth1(secrets.clone(), Faults::default());
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &emu.url())
        .with_env("XMETA_CONSUMER_KEY", &secrets.consumer_key)
        .with_env("XMETA_CONSUMER_SECRET", &secrets.consumer_secret)
        .with_env("XMETA_ACCESS_TOKEN", &secrets.token)
        .with_env("XMETA_ACCESS_TOKEN_SECRET", &secrets.token_secret);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    assert_eq!(emu.count_status(200), 5);
    assert!(emu
        .requests()
        .iter()
        .all(|r| r.authorization.starts_with("OAuth ")));
    assert_eq!(emu.stored(), expected(0..5, "v1"));

    // A wrong consumer secret is refused by the emulator's verification.
    let bad = TestEnv::new()
        .with_env("XMETA_API_URL", &emu.url())
        .with_env("XMETA_CONSUMER_KEY", &secrets.consumer_key)
        .with_env("XMETA_CONSUMER_SECRET", "not-the-secret")
        .with_env("XMETA_ACCESS_TOKEN", &secrets.token)
        .with_env("XMETA_ACCESS_TOKEN_SECRET", &secrets.token_secret);
    bad.write("manifests/a.yaml", &manifest(0..1, "v1"));
    let run = bad.exits_with(&["apply", &bad.manifests(), "--auto-approve"], 1);
    assert_has(&run.stdout, "HTTP 401");
}

#[test]
fn token_files_are_trimmed_and_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().with_env("XMETA_API_URL", &emu.url());
    env.write("manifests/a.yaml", &manifest(0..1, "v1"));
    let file = env.write("token", &format!("{TOKEN}\n"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = file.display().to_string();
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--token-file",
            &file,
        ],
        1,
    );
    assert_has(&run.stderr, "can be read by others (mode 0644)");
    assert_eq!(emu.request_count(), 0);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--token-file",
            &file,
        ],
        0,
    );
    assert_eq!(emu.count_status(200), 1);
}

/// The emulator's own OAuth 1.0a check, held to X's documented worked
/// example ("Creating a signature"), so it is a real second opinion on
/// xmeta's signer rather than xmeta checking itself.
#[test]
fn the_emulators_oauth1_check_matches_the_documented_example() {
    let params = [
        (
            "status",
            "Hello Ladies + Gentlemen, a signed OAuth request!",
        ),
        ("include_entities", "true"),
        ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
        ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1318622958"),
        (
            "oauth_token",
            "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        ),
        ("oauth_version", "1.0"),
    ];
    assert_eq!(
        emulator::oauth1_signature(
            "post",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        ),
        "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
    );
}
