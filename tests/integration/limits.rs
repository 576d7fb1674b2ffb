//! X's real limits: pacing into windows, budgets that fit a CI job, failing
//! fast on a refused credential or an unreachable API, and bounded,
//! non-bursting waits whatever the rate-limit headers say.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::hostile::{Hostile, Reply, Seen};
use crate::support::*;

fn last_line(run: &Run) -> &str {
    run.stdout.lines().last().unwrap_or("")
}

#[test]
fn twelve_hundred_changes_take_exactly_three_windows_without_a_429() {
    // X's per-user window (500 per 15 min) scaled to 500 per 6 s.
    let emu = Emulator::start(TOKEN, Faults::x_limits(6.0 / 900.0));
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..1200, "v1"));
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "8",
        ],
        0,
    );
    assert_eq!(last_line(&run), "Apply complete: 1200 applied, 0 failed.");
    assert_eq!(emu.request_count(), 1200);
    assert_eq!(emu.count_status(429), 0);
    let windows: std::collections::BTreeSet<_> =
        emu.requests().iter().filter_map(|r| r.window).collect();
    assert_eq!(windows.len(), 3, "{windows:?}");
}

#[test]
fn max_requests_sends_exactly_that_many_and_the_next_apply_the_rest() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..150, "v1"));
    let m = env.manifests();
    let run = env.exits_with(
        &[
            "apply",
            &m,
            "--auto-approve",
            "--max-requests",
            "100",
            "--detailed-exitcode",
        ],
        2,
    );
    assert_eq!(
        last_line(&run),
        "Apply stopped at the budget: 100 applied, 0 failed, 50 remaining."
    );
    assert_eq!(emu.request_count(), 100);
    let run = env.exits_with(&["apply", &m, "--auto-approve", "--max-requests", "100"], 0);
    assert_eq!(last_line(&run), "Apply complete: 50 applied, 0 failed.");
    assert_eq!(emu.request_count(), 150);
    assert_eq!(emu.stored(), expected(0..150, "v1"));
}

/// `apply --plan` reads a saved plan back 4,096 changes at a time: what
/// is shown, the budget and what is recorded span the batches. On sled:
/// the batches are the same on every backend, and
/// `workflow::saved_plan_applies_exactly_and_refuses_stale_or_edited_plans`
/// applies a saved plan on each.
#[test]
fn a_saved_plan_of_several_batches_is_shown_whole_and_keeps_its_budget() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..5000, "v1"));
    let m = env.manifests();
    env.exits_with(&["plan", &m, "--out", "plan.json"], 0);
    // The budget runs out inside the second batch.
    let run = env.exits_with(
        &[
            "apply",
            "--plan",
            "plan.json",
            "--max-requests",
            "4500",
            "--detailed-exitcode",
        ],
        2,
    );
    let shown: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("+ media "))
        .filter_map(|l| l.split(' ').nth(2))
        .collect();
    let planned: Vec<String> = (0..5000).map(media_id).collect();
    assert_eq!(shown, planned);
    assert_has(
        &run.stdout,
        "Plan: 5000 to create, 0 to update, 0 to forget, 0 unchanged. 5000 requests.",
    );
    assert_eq!(
        last_line(&run),
        "Apply stopped at the budget: 4500 applied, 0 failed, 500 remaining."
    );
    assert_eq!(emu.request_count(), 4500);
    // The rest plans again, and applies.
    env.exits_with(&["plan", &m, "--out", "rest.json"], 0);
    let run = env.exits_with(&["apply", "--plan", "rest.json"], 0);
    assert_eq!(last_line(&run), "Apply complete: 500 applied, 0 failed.");
    assert_eq!(emu.request_count(), 5000);
    assert_eq!(emu.stored(), expected(0..5000, "v1"));
}

#[test]
fn a_window_past_max_duration_stops_the_run_at_once() {
    let emu = Emulator::start(
        TOKEN,
        Faults {
            rate_limit: Some((10, Duration::from_mins(2))),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..20, "v1"));
    let started = Instant::now();
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--max-duration",
            "30s",
            // One at a time, so every answer is read before the next is
            // sent: with several in flight the budget counts one the
            // server already counted and may stop one request early (never
            // late), and the exact count below would depend on timing.
            "--concurrency",
            "1",
        ],
        0,
    );
    // A bound on a hang (the window is 2 minutes away), not a timing test.
    assert!(started.elapsed() < Duration::from_mins(1));
    assert_has(&run.stdout, "budget: the next rate-limit window opens in");
    assert_eq!(
        last_line(&run),
        "Apply stopped at the budget: 10 applied, 0 failed, 10 remaining."
    );
    assert_eq!(emu.request_count(), 10);
    assert_eq!(emu.count_status(429), 0);
}

#[test]
fn a_refused_token_stops_the_apply_after_the_requests_in_flight() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &emu.url())
        .with_env("XMETA_BEARER_TOKEN", "expired-token");
    env.write("manifests/a.yaml", &manifest(0..40, "v1"));
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "4",
        ],
        1,
    );
    assert!(emu.request_count() <= 4, "{} requests", emu.request_count());
    assert_has(
        &run.stdout,
        "stopped: X refused the OAuth 2.0 user token (HTTP 401)",
    );
    assert_has(
        &run.stdout,
        "expire two hours after issue unless refreshed; OAuth 1.0a tokens",
    );
    assert!(!run.all().contains("expired-token"));
}

#[test]
fn an_unreachable_api_stops_within_ten_seconds() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &format!("http://127.0.0.1:{port}"))
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    env.write("manifests/a.yaml", &manifest(0..40, "v1"));
    let started = Instant::now();
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_has(
        &run.stdout,
        "cannot be reached (5 connections in a row failed)",
    );
}

/// A hostile server's 200 for whatever media was posted.
fn confirm(seen: &Seen, headers: Vec<(String, String)>) -> Reply {
    let body: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
    let mut headers = headers;
    headers.push(("content-type".into(), "application/json".into()));
    Reply::Full {
        status: 200,
        headers,
        body: json!({"data": {"id": body["id"]}}).to_string().into_bytes(),
    }
}

fn against(server: &Hostile, media: u64) -> TestEnv {
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &server.url())
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    env.write("manifests/a.yaml", &manifest(0..media, "v1"));
    env
}

#[test]
fn an_absurd_reset_fails_at_once_instead_of_hanging() {
    let three_years = (std::time::SystemTime::now() + Duration::from_hours(3 * 365 * 24))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for reset in [u64::MAX, three_years] {
        let server = Hostile::start(move |_| Reply::Full {
            status: 429,
            headers: vec![
                ("x-rate-limit-remaining".into(), "0".into()),
                ("x-rate-limit-reset".into(), reset.to_string()),
            ],
            body: b"{}".to_vec(),
        });
        let env = against(&server, 1);
        let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
        assert_has(
            &run.stdout,
            "more than the 24 h any window lasts; stopping instead",
        );
        assert_eq!(server.seen().len(), 1, "reset {reset}");
    }
}

#[test]
fn a_reset_in_the_past_or_zero_never_bursts() {
    for reset in ["0", "1000000000"] {
        let server = Hostile::start(move |seen| {
            confirm(
                seen,
                vec![
                    ("x-rate-limit-remaining".into(), "0".into()),
                    ("x-rate-limit-reset".into(), reset.into()),
                ],
            )
        });
        let env = against(&server, 3);
        env.exits_with(
            &[
                "apply",
                &env.manifests(),
                "--auto-approve",
                "--concurrency",
                "1",
            ],
            0,
        );
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        let gaps: Vec<Duration> = seen
            .windows(2)
            .map(|w| w[1].at.duration_since(w[0].at))
            .collect();
        // Backs off (1 s, then 2 s): load can only make the gaps longer.
        assert!(
            gaps.iter().all(|g| *g >= Duration::from_millis(900)),
            "reset {reset}: {gaps:?}"
        );
    }
}

#[test]
fn retry_after_is_honoured() {
    let server = Hostile::start(|seen| {
        // The first request is told to come back in 2 s.
        if seen.ordinal == 0 {
            Reply::Full {
                status: 503,
                headers: vec![("retry-after".into(), "2".into())],
                body: b"{\"title\":\"Service Unavailable\"}".to_vec(),
            }
        } else {
            confirm(seen, Vec::new())
        }
    });
    let env = against(&server, 1);
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
}

#[test]
fn watch_apply_budgets_each_cycle() {
    use std::io::BufRead;
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let mut child = env
        .command(&["watch", &env.manifests(), "--apply", "--max-requests", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let want = "Apply stopped at the budget: 3 applied, 0 failed, 2 remaining.";
    let found = lines.by_ref().map_while(Result::ok).any(|l| l == want);
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no `{want}`");
    assert_eq!(emu.request_count(), 3);
}
