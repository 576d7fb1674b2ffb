//! Crash safety: `kill -9` at random moments never loses or invents a
//! record, and a rerun converges without re-sending what X confirmed.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const N: u64 = 220;
const CONCURRENCY: usize = 4;

/// A small seeded generator, so every run kills at the same moments.
struct Lcg(u64);
impl Lcg {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

/// Waits until the killed writer's database session has ended: the server
/// finishes (commits) a statement the process sent just before it died,
/// then drops the session and its advisory lock. Reading before that would
/// see the state change under the checks.
fn session_ended(url: &str, workspace: &str) {
    let held = format!(
        "SELECT count(*) FROM pg_locks l JOIN xmeta_states s ON l.objid::bigint = s.lock_id \
         WHERE l.locktype = 'advisory' AND l.classid::bigint = {} AND s.workspace = '{workspace}'",
        0x786d_6574
    );
    wait_until(
        Duration::from_mins(1),
        "the killed writer's session to end",
        || sql(url, &held).unwrap() == ["0"],
    );
}

/// The state's export; a writer killed before it created the state left
/// none (the empty export).
fn export(env: &TestEnv) -> Value {
    let run = env.run(&["state", "export"]);
    if run.code == 1 && run.stderr.contains("no state at") {
        return serde_json::json!({ "media": {}, "history": [] });
    }
    assert_eq!(run.code, 0, "state export: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn recorded(env: &TestEnv) -> BTreeMap<String, Value> {
    let export = export(env);
    export["media"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["metadata"].clone()))
        .collect()
}

/// Every record has its one `create` entry, with the record's values, and
/// every entry its record: written in one atomic write, a kill leaves
/// neither alone.
fn history_matches_records(env: &TestEnv, records: &BTreeMap<String, Value>) {
    let export = export(env);
    let mut created = BTreeMap::new();
    for entry in export["history"].as_array().unwrap() {
        let id = entry["media"].as_str().unwrap().to_string();
        assert_eq!(entry["action"], "create", "{entry}");
        let after: serde_json::Map<String, Value> = entry["fields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["after"].clone()))
            .collect();
        assert!(
            created.insert(id.clone(), Value::Object(after)).is_none(),
            "media {id} created twice"
        );
    }
    assert_eq!(&created, records, "history and records disagree");
}

fn plan_requests(env: &TestEnv) -> u64 {
    let run = env.exits_with(&["plan", &env.manifests(), "--format", "json"], 0);
    let plan = env.checked_plan(&run.stdout);
    plan["summary"]["requests"].as_u64().unwrap()
}

/// Starts `args`, kills it with SIGKILL after `delay`, then checks every
/// promise of the state and reruns apply to convergence.
fn kill_and_check(backend: &Backend, args: &[&str], delay: Duration) {
    let faults = Faults {
        latency: Duration::from_millis(30),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::on(backend.clone()).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..N, "v1"));
    let m = env.manifests();
    let mut full: Vec<&str> = args.to_vec();
    full.push(&m);
    let concurrency = CONCURRENCY.to_string();
    full.extend(["--concurrency", &concurrency]);
    let mut child = env
        .command(&full)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The trial kills at a seeded random instant: not a synchronisation.
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    if let Backend::Postgres(url) = backend {
        session_ended(url, env.workspace().unwrap());
    }
    let sent_before = emu.request_count() as u64;
    let confirmed = emu.stored();

    // The state opens, and everything in it was confirmed by X.
    let state = recorded(&env);
    history_matches_records(&env, &state);
    let want = expected(0..N, "v1");
    for (id, metadata) in &state {
        assert_eq!(
            confirmed.get(id).map(|m| Value::Object(m.clone())).as_ref(),
            Some(metadata),
            "media {id} recorded but not confirmed"
        );
        assert_eq!(Value::Object(want[id].clone()), *metadata);
    }
    // The next plan sends exactly what is not recorded; of that, at most the
    // requests in flight at the kill, and as many confirmations waiting for
    // their write, were in fact already confirmed.
    let unconfirmed = N - confirmed.len() as u64;
    let planned = plan_requests(&env);
    assert_eq!(planned, N - state.len() as u64);
    assert!(
        planned >= unconfirmed && planned <= unconfirmed + 2 * CONCURRENCY as u64,
        "planned {planned}, unconfirmed {unconfirmed}"
    );

    // The rerun takes over the dead writer's lock and converges; on a
    // bucket, once the dead writer's lease has run out (refused, sending
    // nothing, until then).
    let rerun = if let Backend::S3(_) = backend {
        let (rerun, refused) = env.once_the_lease_ran_out(&["apply", &m, "--auto-approve"]);
        assert_eq!(rerun.code, 0, "{}", rerun.stderr);
        if refused {
            assert_has(&rerun.stderr, "whose lease had run out: it was held by pid");
        }
        rerun
    } else {
        env.exits_with(&["apply", &m, "--auto-approve"], 0)
    };
    // sled says it took over the lock file; PostgreSQL's lock went with
    // the dead writer's session, so there is nothing to take over.
    if !state.is_empty() && *backend == Backend::Sled {
        assert!(
            rerun
                .stderr
                .contains("took over a stale state lock left by pid"),
            "{}",
            rerun.stderr
        );
    }
    assert_eq!(emu.stored(), want);
    assert_eq!(plan_requests(&env), 0);
    history_matches_records(&env, &recorded(&env));
    let total = emu.request_count() as u64;
    assert!(
        total <= N + 2 * CONCURRENCY as u64,
        "{total} requests for {N} media"
    );
    say(&format!(
        "kill -9 trial on {}: {args:?} killed after {delay:?}: {sent_before} sent, {} confirmed, {} recorded; rerun sent {}",
        match backend {
            Backend::Sled => "sled",
            Backend::Postgres(_) => "PostgreSQL",
            Backend::S3(_) => "S3",
        },
        confirmed.len(),
        state.len(),
        total - sent_before
    ));
}

crate::on_both_backends!(
    kill_9_during_apply_loses_nothing,
    kill_9_during_watch_apply_loses_nothing
);

fn kill_9_during_apply_loses_nothing(backend: Backend) {
    let mut rng = Lcg(2026);
    for _ in 0..6 {
        let delay = Duration::from_millis(rng.next_ms(150, 1800));
        kill_and_check(&backend, &["apply", "--auto-approve"], delay);
    }
}

fn kill_9_during_watch_apply_loses_nothing(backend: Backend) {
    let mut rng = Lcg(1127);
    for _ in 0..5 {
        let delay = Duration::from_millis(rng.next_ms(150, 1800));
        kill_and_check(&backend, &["watch", "--apply"], delay);
    }
}
