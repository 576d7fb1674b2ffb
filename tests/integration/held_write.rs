//! A confirmation's write that the state holds (PostgreSQL: another
//! session holds the media's row, as a slow or distant server would keep
//! the writer waiting) does not hold the request stream: the other
//! requests go on being sent, and at most `--concurrency` confirmations
//! wait for their write, so at most twice that many media are sent but
//! not recorded.

use std::time::Duration;

use crate::support::*;

/// `xmeta apply` of the manifests at concurrency 2, its stdout kept in
/// `apply.out`, returned once its first write waits on a held row.
struct Applying<'e> {
    env: &'e TestEnv,
    url: String,
    xmeta: Killed,
}

impl<'e> Applying<'e> {
    fn start(env: &'e TestEnv, url: &str) -> Applying<'e> {
        let out = std::fs::File::create(env.path("apply.out")).unwrap();
        let xmeta = Killed(
            env.command(&[
                "apply",
                &env.manifests(),
                "--auto-approve",
                "--concurrency",
                "2",
            ])
            .stdout(out)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        );
        let applying = Applying {
            env,
            url: url.to_string(),
            xmeta,
        };
        wait_until(
            Duration::from_mins(1),
            "a write to wait on the held row",
            || applying.write_waits(),
        );
        applying
    }

    fn write_waits(&self) -> bool {
        waits_on_a_lock(&self.url, self.xmeta.0.id())
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.env.path("apply.out")).unwrap_or_default()
    }

    /// Waits until the emulator has `posts` requests, failing if apply
    /// ends first.
    fn sends(&mut self, posts: usize, emu: &Emulator, what: &str) {
        wait_until(Duration::from_mins(1), what, || {
            if let Some(status) = self.xmeta.0.try_wait().unwrap() {
                panic!("apply ended ({status}) before that:\n{}", self.output());
            }
            emu.post_count() >= posts
        });
    }

    /// Its exit code and stdout, once it ends.
    fn ended(mut self) -> (Option<i32>, String) {
        let mut status = None;
        wait_until(Duration::from_mins(1), "apply to end", || {
            status = self.xmeta.0.try_wait().unwrap();
            status.is_some()
        });
        (status.and_then(|s| s.code()), self.output())
    }
}

/// On PostgreSQL: the emulator, and a state where 8 media are applied
/// (`v1`); `None` (the test skipped) without a database.
fn eight_applied(test: &str) -> Option<(String, Emulator, TestEnv)> {
    let Some(Backend::Postgres(url)) = Backend::postgres(test) else {
        return None;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(Backend::Postgres(url.clone())).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..8, "v1"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    Some((url, emu, env))
}

#[test]
fn requests_go_on_while_a_confirmations_write_is_held() {
    let Some((url, emu, env)) =
        eight_applied("held_write::requests_go_on_while_a_confirmations_write_is_held")
    else {
        return;
    };

    // Media 0 is confirmed and its write held; X refuses the other seven
    // (a 400: each fails alone, nothing to record, no reason to stop).
    let mut faults = Faults::default();
    for n in 1..8 {
        faults.status_for.insert(media_id(n), 400);
    }
    emu.set_faults(faults);
    emu.clear_requests();
    env.write("manifests/a.yaml", &manifest(0..8, "v2"));
    let mut held = HeldRow::hold(&url, env.workspace().unwrap(), &[media_id(0)]);
    let mut apply = Applying::start(&env, &url);
    // Media 0's confirmation waits for its write; the slots go on through
    // the plan. A stream held by the write would send nothing more (and
    // end with the write's bound, naming the state as not answering).
    apply.sends(
        8,
        &emu,
        "the other media to be sent while media 0's write is held",
    );
    assert!(apply.write_waits(), "media 0's write is still held");
    assert!(
        apply.xmeta.0.try_wait().unwrap().is_none(),
        "apply waits for media 0's write:\n{}",
        apply.output()
    );

    held.release();
    let (code, stdout) = apply.ended();
    assert_eq!(code, Some(1), "{stdout}");
    assert_has(&stdout, "Apply failed: 1 applied, 7 failed.");
    // Each media was sent once, and only media 0 is recorded as v2.
    let sent: std::collections::BTreeSet<String> = emu
        .bodies()
        .iter()
        .map(|b| b["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sent.len(), 8, "each media once");
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(
        &plan.stdout,
        "0 to create, 7 to update, 0 to forget, 1 unchanged",
    );
    assert!(
        !plan.stdout.contains(&media_id(0)),
        "media 0 is recorded:\n{}",
        plan.stdout
    );
}

#[test]
fn confirmed_media_wait_for_their_write_off_the_request_slots() {
    let Some((url, emu, env)) =
        eight_applied("held_write::confirmed_media_wait_for_their_write_off_the_request_slots")
    else {
        return;
    };
    emu.clear_requests();
    env.write("manifests/a.yaml", &manifest(0..8, "v2"));
    let mut held = HeldRow::hold(&url, env.workspace().unwrap(), &[media_id(0), media_id(1)]);
    let mut apply = Applying::start(&env, &url);
    // The first group written holds media 0, media 1 or both (the first
    // two sent), so it waits. Two confirmations wait for it off the
    // slots, and the two slots then hold the next two confirmed media.
    // Four sent, none recorded: twice the concurrency, and no more. A
    // stream whose slots wait for the write stops at two.
    apply.sends(4, &emu, "four media to be sent while the write is held");
    assert!(apply.write_waits(), "still held");
    assert_eq!(
        emu.post_count(),
        4,
        "at most twice the concurrency unrecorded"
    );

    held.release();
    let (code, stdout) = apply.ended();
    assert_eq!(code, Some(0), "{stdout}");
    assert_has(&stdout, "Apply complete: 8 applied, 0 failed.");
    assert_eq!(emu.post_count(), 8, "each media once");
    assert_eq!(emu.stored(), expected(0..8, "v2"));
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "No changes.");
}
