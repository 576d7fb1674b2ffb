//! After a signal nothing more is sent: not a new media, not a retry, not
//! a media waiting for a rate-limit window.

use std::time::Duration;

use serde_json::json;

use crate::support::hostile::{Hostile, Reply};
use crate::support::*;

pub fn sigterm(child: &std::process::Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

/// Waits for `child` to exit (within `limit`); its status and stdout.
pub fn exit_of(child: &mut Killed, limit: Duration) -> (Option<i32>, String) {
    let mut status = None;
    wait_until(limit, "xmeta to exit", || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    let mut stdout = String::new();
    if let Some(mut out) = child.0.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout).unwrap();
    }
    (status.and_then(|s| s.code()), stdout)
}

#[test]
fn after_a_signal_a_media_waiting_on_retry_after_is_not_sent() {
    let server = Hostile::start(|seen| {
        if seen.method == "POST" {
            Reply::Full {
                status: 429,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("retry-after".into(), "3".into()),
                ],
                body: json!({"title": "Too Many Requests"})
                    .to_string()
                    .into_bytes(),
            }
        } else {
            Reply::json(200, &json!({"data": []}))
        }
    });
    let env = TestEnv::new()
        .with_env("XMETA_API_URL", &server.url())
        .with_env("XMETA_BEARER_TOKEN", TOKEN);
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    let posts = || server.seen().iter().filter(|s| s.method == "POST").count();
    let mut child = Killed(
        env.command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "4",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_until(Duration::from_secs(30), "four rate-limited posts", || {
        posts() == 4
    });
    sigterm(&child.0);
    let (code, stdout) = exit_of(&mut child, Duration::from_secs(15));
    assert_eq!(posts(), 4, "posted after the signal:\n{stdout}");
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("Apply interrupted: 0 applied, 0 failed, 4 not sent."),
        "{stdout}"
    );
    assert_eq!(env.exits_with(&["state", "list"], 0).stdout, "");
}
