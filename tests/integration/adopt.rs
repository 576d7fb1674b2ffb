//! `adopt` of many media: written a batch at a time, the database opened
//! again as it grows (sled keeps what each write rewrote until it
//! closes), and every media recorded with its history.

use crate::support::*;

/// Enough media that their records and history (about 260 KB a thousand)
/// pass the 4 MB after which an adopt's writer opens the database again.
const MEDIA: u64 = 20_000;

#[test]
fn a_large_adopt_opens_the_database_again_as_it_writes_and_records_every_media() {
    let env = TestEnv::new();
    env.write("manifests/m.yaml", &manifest(0..MEDIA, "v1"));
    let run = env.exits_with(&["-vv", "adopt", &env.manifests()], 0);
    assert_has(
        &run.stdout,
        &format!("Adopted {MEDIA} media (0 already matched); nothing was sent."),
    );
    let reopened = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("debug: the state database opened again after "));
    assert!(reopened.count() >= 1, "{}", run.stderr);

    let run = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(
        &run.stdout,
        &format!("No changes. {MEDIA} media match the manifests."),
    );
    let listed = env.exits_with(&["state", "list"], 0).stdout;
    assert_eq!(listed.lines().count() as u64, MEDIA);
    let history = env.exits_with(&["state", "history", "--format", "json"], 0);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(entries.len() as u64, MEDIA);
    assert!(entries.iter().all(|e| e["action"] == "adopt"));
}
