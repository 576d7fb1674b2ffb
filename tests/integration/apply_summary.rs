//! `apply --format json|markdown`: the result a workflow posts on the
//! merged pull request (as tfcmt and Atlantis do), with the requests spent,
//! their cost, the failures with X's reasons, and the budget left.

use serde_json::Value;

use crate::support::*;

/// Five media: one X refuses (400), and a budget of four requests.
fn run_with(format: &str) -> (Run, Emulator) {
    let mut faults = Faults::default();
    faults.status_for.insert(media_id(1), 400);
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &emu.url())
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "1",
            "--max-requests",
            "4",
            "--format",
            format,
        ],
        1,
    );
    (run, emu)
}

#[test]
fn the_json_result_counts_requests_cost_failures_and_budget() {
    let (run, emu) = run_with("json");
    let result: Value = serde_json::from_str(&run.stdout).expect("stdout is the JSON result alone");
    assert_eq!(emu.post_count(), 4, "the budget: four requests");
    assert_eq!(result["outcome"], "failed");
    assert_eq!(result["applied"], 3);
    assert_eq!(result["failed"].as_array().unwrap().len(), 1);
    assert_eq!(result["failed"][0]["id"], media_id(1));
    assert_has(result["failed"][0]["reason"].as_str().unwrap(), "HTTP 400");
    assert_eq!(result["not_sent"], 1);
    assert_eq!(result["requests"], 4);
    assert_eq!(result["estimated_cost_usd"], 0.02);
    assert_eq!(result["budget"]["max_requests"], 4);
    assert_eq!(result["budget"]["requests_left"], 0);
    // The plan and the result lines stay in the job's log.
    assert_has(&run.stderr, "will be created");
    assert_has(
        &run.stderr,
        "Apply failed: 3 applied, 1 failed, 1 not sent.",
    );
}

#[test]
fn the_markdown_result_is_a_comment() {
    let (run, _emu) = run_with("markdown");
    insta::assert_snapshot!("apply_summary_markdown", run.stdout);
}
