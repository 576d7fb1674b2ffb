//! What only a bucket state (`--state s3://…`) has to show, on a real
//! S3-compatible server (moto, on loopback): its lease lock against a
//! writer that stalls and comes back, a store that goes away mid-apply,
//! store writes that grow with groups and not with media, a newer format
//! refused, and credentials never shown. (The promises every backend
//! shares run on S3 too, by `on_both_backends!`.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::s3::{S3Server, ACCESS_KEY, BUCKET, SECRET_KEY};
use crate::support::*;

/// Media in the group-commit apply.
const GROUPED: u64 = 300;
/// Media in the apply whose store goes away.
const PARTITIONED: usize = 200;
/// Media in the state whose snapshot is sent in parts (about 13 MB,
/// compressed: each alt text carries 300 characters LZ4 cannot shorten).
const LARGE: u64 = 36_000;
/// A session token that must never be shown.
const TOKEN_SECRET: &str = "session-token-Zx9Pq7Lm";

fn server(test: &str) -> Option<S3Server> {
    S3Server::start(test)
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// The workspace's folder in the bucket.
fn folder(env: &TestEnv) -> String {
    let Backend::S3(url) = &env.backend else {
        panic!("not a bucket state")
    };
    let prefix = url.trim_start_matches(&format!("s3://{BUCKET}/"));
    format!("{prefix}/{}", env.workspace().unwrap())
}

fn recorded_ids(env: &TestEnv) -> Vec<String> {
    env.exits_with(&["state", "list"], 0)
        .stdout
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

/// An apply makes one journal write per group of confirmations, not per
/// media, and a handful of other requests (lock, head, snapshot).
///
/// The store is put a 20 ms round trip away (a delay proxy), as a bucket
/// in a region is: a journal write then takes at least that long while
/// confirmations come 16 per 50 ms, so whatever the speed of the machine
/// or of moto, groups hold several media. On loopback alone a write may
/// take 3 ms and a group one or two (the requests no longer wait for the
/// writes, which run on their own thread).
#[test]
fn store_writes_grow_with_groups_not_media() {
    let Some(s3) = server("bucket_state::store_writes_grow_with_groups_not_media") else {
        return;
    };
    let faults = Faults {
        latency: Duration::from_millis(50),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let far = delay_proxy::DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        Duration::from_millis(10),
    );
    let env = TestEnv::on_server(&s3).against(&emu).with_env(
        "AWS_ENDPOINT_URL",
        &format!("http://127.0.0.1:{}", far.port),
    );
    env.write("manifests/a.yaml", &manifest(0..GROUPED, "v1"));
    let before = s3.requests().len();
    let run = env.exits_with(
        &[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "16",
        ],
        0,
    );
    assert_has(&run.stdout, &format!("Apply complete: {GROUPED} applied"));
    let requests: Vec<String> = s3.requests().split_off(before);
    let journals = requests
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/journal/"))
        .count();
    let renewals = requests.iter().filter(|r| r.contains("/lock.json")).count();
    let others = requests.len() - journals - renewals;
    say(&format!(
        "bucket store requests for an apply of {GROUPED} media at 50 ms X latency, concurrency 16: {} in all, {journals} journal writes (groups), {renewals} on the lock, {others} others",
        requests.len()
    ));
    assert!(
        journals < GROUPED as usize / 2,
        "{journals} journal writes for {GROUPED} media: not grouped"
    );
    // The rest, whatever the number of groups: the workspace, the head
    // (read, claimed, moved to the snapshot), the snapshot, and the
    // journals deleted together once compacted; and the lock's (create,
    // a renewal every third of the lease, delete).
    assert!(
        others <= 15,
        "{others} other requests for {journals} groups: {requests:#?}"
    );
    assert_eq!(recorded_ids(&env).len(), GROUPED as usize);
    assert_eq!(emu.request_count(), GROUPED as usize);
}

/// The store goes away in the middle of an apply: the next confirmation
/// cannot be made durable, so no new request starts, and the run exits
/// non-zero within the store's bounded retries.
#[test]
fn a_store_gone_mid_apply_stops_sending_and_fails_in_bounded_time() {
    let Some(mut s3) = server("bucket_state::a_store_gone_mid_apply") else {
        return;
    };
    let faults = Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::on_server(&s3).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..PARTITIONED as u64, "v1"));
    let child = env
        .command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the apply's first requests",
        || emu.request_count() >= 8,
    );
    s3.kill();
    let killed = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = killed.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sent = emu.request_count();
    say(&format!(
        "bucket store stopped mid-apply: exit {:?} {took:?} after the stop, {sent} of {PARTITIONED} requests sent",
        out.status.code()
    ));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_has(&stdout, "stopped: the state cannot be written");
    assert!(
        sent < PARTITIONED / 2,
        "it kept sending: {sent} of {PARTITIONED}"
    );
    assert!(took < Duration::from_mins(1), "took {took:?}");
    assert!(!stderr.contains(SECRET_KEY) && !stdout.contains(SECRET_KEY));
}

/// A writer that stalls past its lease (SIGSTOP) is taken over by the
/// next, with a warning naming it; when it comes back it records nothing
/// more, exits non-zero, and does not overwrite the new writer's head.
#[test]
fn a_stalled_writer_taken_over_records_nothing_more_and_loses_nothing() {
    let Some(s3) = server("bucket_state::a_stalled_writer_taken_over") else {
        return;
    };
    let faults = Faults {
        latency: Duration::from_millis(150),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::on_server(&s3).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..40, "v1"));
    let stalled = env
        .command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = stalled.id();
    wait_until(
        Duration::from_secs(30),
        "the first writer's records",
        || emu.request_count() >= 3,
    );
    signal(pid, "STOP");

    // The second writer: other media, adopted once the lease ran out.
    let other = env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("b.yaml"), manifest(100..105, "v1")).unwrap();
    let other = other.display().to_string();
    let (run, refused) = env.once_the_lease_ran_out(&["adopt", &other]);
    assert!(refused, "the stalled writer's lease was live at first");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_has(
        &run.stderr,
        &format!("whose lease had run out: it was held by pid {pid} on host `"),
    );
    let taken_over = env.state_fingerprint();

    signal(pid, "CONT");
    let out = stalled.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_has(&stdout, "stopped: the state cannot be written");
    // Nothing the stalled writer did after the takeover reached the state.
    assert_eq!(env.state_fingerprint(), taken_over);
    let ids = recorded_ids(&env);
    for n in 100..105 {
        assert!(ids.contains(&media_id(n)), "the second writer's media {n}");
    }
    // Every record was confirmed by X; the rest plans again and converges.
    let confirmed = emu.stored();
    let adopted: Vec<String> = (100..105).map(media_id).collect();
    for id in ids.iter().filter(|id| !adopted.contains(id)) {
        assert!(
            confirmed.contains_key(id),
            "media {id} recorded, not confirmed"
        );
    }
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    assert_eq!(emu.stored().len(), 40);
}

/// `state unlock --force` follows the lease: a live one is refused, naming
/// its holder; one whose writer died is removed once the lease ran out.
#[test]
fn unlock_force_refuses_a_live_lease_and_removes_an_expired_one() {
    let Some(s3) = server("bucket_state::unlock_force") else {
        return;
    };
    let faults = Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = TestEnv::on_server(&s3).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..30, "v1"));
    let mut writer = Killed(
        env.command(&[
            "apply",
            &env.manifests(),
            "--auto-approve",
            "--concurrency",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let pid = writer.0.id();
    wait_until(
        Duration::from_secs(30),
        "the writer's first request",
        || emu.request_count() > 0,
    );
    let run = env.exits_with(&["state", "unlock", "--force"], 1);
    assert_has(&run.stderr, &format!("is locked by pid {pid} on host `"));
    assert_has(&run.stderr, "(command `xmeta apply`)");
    writer.0.kill().unwrap();
    writer.0.wait().unwrap();
    let (run, refused) = env.once_the_lease_ran_out(&["state", "unlock", "--force"]);
    assert!(refused);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_has(&run.stdout, &format!("pid {pid} on host `"));
    assert!(s3.get(&format!("{}/lock.json", folder(&env))).is_none());
}

/// A state whose head says a newer format is refused by readers and
/// writers alike, and left as it was.
#[test]
fn a_newer_format_is_refused() {
    let Some(s3) = server("bucket_state::a_newer_format_is_refused") else {
        return;
    };
    let env = TestEnv::on_server(&s3);
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let key = format!("{}/head.json", folder(&env));
    let head = String::from_utf8(s3.get(&key).unwrap()).unwrap();
    let newer = head.replace("\"format\":2", "\"format\":99");
    assert_ne!(head, newer);
    s3.put(&key, newer.as_bytes());
    for args in [
        vec!["plan", env.manifests().leak() as &str],
        vec!["state", "list"],
        vec!["adopt", env.manifests().leak() as &str],
    ] {
        let run = env.exits_with(&args, 1);
        assert_has(
            &run.stderr,
            "was written by a newer xmeta (state format 99, this xmeta reads up to 2); upgrade xmeta",
        );
    }
    assert_eq!(s3.get(&key).unwrap(), newer.as_bytes());
}

/// The credentials come from the environment and are never shown: not in
/// output, verbose logs, errors (a missing bucket, a store that does not
/// answer), exports or saved plans.
#[test]
fn credentials_are_never_shown() {
    let Some(mut s3) = server("bucket_state::credentials_are_never_shown") else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on_server(&s3)
        .against(&emu)
        .with_env("AWS_SESSION_TOKEN", TOKEN_SECRET)
        .with_env("RUST_LOG", "trace");
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    let m = env.manifests();
    let mut shown = Vec::new();
    for args in [
        vec!["-vv", "apply", &m, "--auto-approve"],
        vec!["-vv", "plan", &m, "--out", "plan.json"],
        vec!["state", "export"],
        vec![
            "-vv",
            "state",
            "list",
            "--state",
            "s3://no-such-bucket-here/x",
        ],
    ] {
        let run = env.run(&args);
        shown.push(run.all());
    }
    shown.push(std::fs::read_to_string(env.path("plan.json")).unwrap_or_default());
    s3.kill();
    for args in [
        vec!["-vv", "plan", &m],
        vec!["-vv", "apply", &m, "--auto-approve"],
    ] {
        let run = env.run(&args);
        assert_eq!(run.code, 1, "{}", run.all());
        assert_has(&run.stderr, "in the bucket s3://");
        shown.push(run.all());
    }
    for text in &shown {
        for secret in [SECRET_KEY, TOKEN_SECRET] {
            assert!(!text.contains(secret), "a secret was shown:\n{text}");
        }
    }
    // The access key ID is not a secret to AWS, but it is not shown either.
    for text in &shown {
        assert!(
            !text.contains(ACCESS_KEY),
            "the access key was shown:\n{text}"
        );
    }
}

/// Workspaces are folders under the prefix: made by `workspace new`,
/// listed, separate, and deleted (with `--force` once they hold media).
#[test]
fn workspaces_are_folders_under_the_prefix() {
    let Some(s3) = server("bucket_state::workspaces_are_folders_under_the_prefix") else {
        return;
    };
    let env = TestEnv::on_server(&s3);
    let mine = env.workspace().unwrap().to_string();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let run = env.exits_with(&["state", "workspace", "list"], 0);
    assert_eq!(run.stdout, format!("default\n{mine}\n"));
    let run = env.exits_with(&["--workspace", "other", "state", "list"], 1);
    assert_has(&run.stderr, "workspace `other` does not exist in s3://");
    env.exits_with(&["state", "workspace", "new", "other"], 0);
    let run = env.exits_with(&["--workspace", "other", "state", "list"], 0);
    assert_eq!(run.stdout, "");
    let run = env.exits_with(&["state", "workspace", "new", "other"], 1);
    assert_has(&run.stderr, "workspace `other` already exists in s3://");
    let run = env.exits_with(&["state", "workspace", "delete", &mine], 1);
    assert_has(
        &run.stderr,
        &format!("workspace `{mine}` holds 2 media; nothing was deleted"),
    );
    env.exits_with(&["state", "workspace", "delete", &mine, "--force"], 0);
    env.exits_with(&["state", "workspace", "delete", "other"], 0);
    let run = env.exits_with(&["state", "workspace", "list"], 0);
    assert_eq!(run.stdout, "default\n");
    assert!(
        s3.keys(&folder(&env)).is_empty(),
        "{:?}",
        s3.keys(&folder(&env))
    );
}

/// A lease that does not parse is an error before anything is sent, not
/// a silent default.
#[test]
fn a_mistyped_lease_is_refused_before_sending() {
    let Some(s3) = server("bucket_state::a_mistyped_lease_is_refused") else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on_server(&s3)
        .against(&emu)
        .with_env("XMETA_STATE_LEASE", "soon");
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let run = env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 1);
    assert_has(&run.stderr, "XMETA_STATE_LEASE `soon` is not a duration");
    assert_eq!(emu.request_count(), 0);
}

/// A snapshot's records wait in a private, unnamed temporary file once
/// read (nothing is left in TMPDIR); where TMPDIR cannot be written they
/// stay in memory, and every command plans, applies and compacts the same.
#[test]
fn a_snapshot_reads_the_same_whether_or_not_tmpdir_can_hold_its_records() {
    let Some(s3) = server(
        "bucket_state::a_snapshot_reads_the_same_whether_or_not_tmpdir_can_hold_its_records",
    ) else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on_server(&s3).against(&emu);
    let usable = env.path("tmp");
    std::fs::create_dir_all(&usable).unwrap();
    let unusable = env.path("no-such-tmp");
    let run = |args: &[&str], tmp: &std::path::Path| {
        let out = env.command(args).env("TMPDIR", tmp).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} with TMPDIR {}: {}",
            tmp.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    run(&["adopt", &env.manifests()], &usable);
    env.write("manifests/a.yaml", &manifest(0..2, "v2"));
    // The plan's "before" comes from the records that waited (or not).
    let plan = run(&["plan", "--prune", &env.manifests()], &usable);
    assert_has(
        &plan,
        "Plan: 0 to create, 2 to update, 2 to forget, 0 unchanged.",
    );
    assert_has(&plan, "v1");
    assert_eq!(run(&["plan", "--prune", &env.manifests()], &unusable), plan);
    // A writer with nowhere to put them: it reads, records and compacts
    // from memory.
    run(
        &["apply", "--prune", "--auto-approve", &env.manifests()],
        &unusable,
    );
    assert_eq!(emu.bodies().len(), 2);
    let export = run(&["state", "export"], &usable);
    assert_eq!(run(&["state", "export"], &unusable), export);
    assert_eq!(recorded_ids(&env), [media_id(0), media_id(1)]);
    let media = serde_json::from_str::<serde_json::Value>(&export).unwrap()["media"].to_string();
    assert!(media.contains("v2") && !media.contains("v1"), "{media}");
    assert_eq!(std::fs::read_dir(&usable).unwrap().count(), 0);
}

/// A snapshot larger than one part (8 MiB) is sent in parts from a
/// temporary file, never whole from memory, and reads back whole.
#[test]
fn a_large_snapshot_is_sent_in_parts_and_reads_back_whole() {
    let Some(s3) = server("bucket_state::a_large_snapshot_is_sent_in_parts_and_reads_back_whole")
    else {
        return;
    };
    let env = TestEnv::on_server(&s3);
    // Text without repeats (xorshift), so that the snapshot stays large
    // compressed.
    let noise: Vec<String> = (0..LARGE)
        .map(|n| {
            let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            (0..300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(
                        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ."
                            [(x % 64) as usize],
                    )
                })
                .collect()
        })
        .collect();
    for (k, first) in (0..LARGE).step_by(6_000).enumerate() {
        env.write(
            &format!("manifests/m{k}.yaml"),
            &manifest_with(first..first + 6_000, |n| &noise[n as usize]),
        );
    }
    env.exits_with(&["adopt", "--no-history", &env.manifests()], 0);
    let (snapshot, _) = snapshot_keys(&s3, &env);
    let size = s3.get(&snapshot).unwrap().len();
    assert!(
        size > 8 << 20,
        "the snapshot is {size} bytes: not larger than one part"
    );
    let requests = s3.requests();
    let parts = requests
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains(&snapshot) && r.contains("partNumber="))
        .count();
    assert_eq!(parts, size.div_ceil(8 << 20), "{requests:#?}");
    let plan = env.exits_with(&["plan", &env.manifests()], 0).stdout;
    assert_has(&plan, "No changes. 36000 media match the manifests.");
    assert_eq!(recorded_ids(&env).len(), LARGE as usize);
}

/// The keys of the snapshot the head stands on and of its digests object
/// (which must be there).
fn snapshot_keys(s3: &S3Server, env: &TestEnv) -> (String, String) {
    let folder = folder(env);
    let head: serde_json::Value =
        serde_json::from_slice(&s3.get(&format!("{folder}/head.json")).unwrap()).unwrap();
    assert_eq!(head["digests"], true, "{head}");
    let snapshot = format!("{folder}/{}", head["snapshot"].as_str().unwrap());
    let stem = snapshot.trim_end_matches(".lz4").trim_end_matches(".json");
    let digests = format!("{stem}.digests");
    assert!(s3.get(&digests).is_some(), "{digests}");
    (snapshot, digests)
}

/// A writer leaves its snapshot compressed: `….json.lz4`, an LZ4 frame
/// of the snapshot's JSON at a fraction of its size, under a head of
/// format 2. A state an xmeta before format 2 left (format 1, a plain
/// `….json` snapshot) is read as it is, and its next writer compacts it
/// into a compressed one. A damaged snapshot is refused where a record
/// is needed, and a writer that records nothing does not wait for it.
#[test]
fn snapshots_are_compressed_and_plain_ones_still_read() {
    let Some(s3) = server("bucket_state::snapshots_are_compressed_and_plain_ones_still_read")
    else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on_server(&s3).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..200, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let head_key = format!("{}/head.json", folder(&env));
    let head: serde_json::Value = serde_json::from_slice(&s3.get(&head_key).unwrap()).unwrap();
    assert_eq!(head["format"], 2, "{head}");
    let (snapshot, digests) = snapshot_keys(&s3, &env);
    assert!(snapshot.ends_with(".json.lz4"), "{snapshot}");
    let object = s3.get(&snapshot).unwrap();
    assert_eq!(object[..4], [0x04, 0x22, 0x4d, 0x18], "an LZ4 frame");
    let mut json = Vec::new();
    std::io::Read::read_to_end(
        &mut lz4_flex::frame::FrameDecoder::new(&object[..]),
        &mut json,
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["records"].as_array().unwrap().len(), 200);
    assert!(
        object.len() * 2 < json.len(),
        "{} bytes for {} of JSON",
        object.len(),
        json.len()
    );

    // What an xmeta before format 2 left: the same JSON, plain, under a
    // head of format 1, its digests object naming the plain snapshot. The
    // compressed one is gone. A no-op plan reads the digests alone.
    let name = head["snapshot"].as_str().unwrap();
    let plain_name = name.trim_end_matches(".lz4");
    let plain = snapshot.trim_end_matches(".lz4").to_string();
    s3.put(&plain, &json);
    s3.request("DELETE", &format!("/{BUCKET}/{snapshot}"), b"");
    let named = |n: &str| [&(n.len() as u16).to_be_bytes()[..], n.as_bytes()].concat();
    let object = s3.get(&digests).unwrap();
    let at = object
        .windows(named(name).len())
        .position(|w| w == named(name))
        .expect("the digests object names its snapshot");
    let patched = [
        &object[..at],
        &named(plain_name),
        &object[at + named(name).len()..],
    ]
    .concat();
    s3.put(&digests, &patched);
    let mut older = head.clone();
    older["format"] = serde_json::json!(1);
    older["snapshot"] = serde_json::json!(plain_name);
    s3.put(&head_key, older.to_string().as_bytes());
    let before = s3.requests().len();
    let run = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&run.stdout, "No changes. 200 media match the manifests.");
    let requests = s3.requests().split_off(before);
    assert_eq!(gets_of(&requests, &digests), 1, "{requests:#?}");
    assert_eq!(gets_of(&requests, &plain), 0, "{requests:#?}");
    env.write("manifests/a.yaml", &manifest(0..200, "v2"));
    let run = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&run.stdout, "Plan: 0 to create, 200 to update");
    assert_has(&run.stdout, "v1");

    // Its next writer compacts it into a compressed snapshot.
    env.exits_with(&["apply", "--auto-approve", &env.manifests()], 0);
    assert_eq!(emu.request_count(), 200);
    let head: serde_json::Value = serde_json::from_slice(&s3.get(&head_key).unwrap()).unwrap();
    assert_eq!(head["format"], 2, "{head}");
    let (newer, _) = snapshot_keys(&s3, &env);
    assert!(newer.ends_with(".json.lz4"), "{newer}");
    let run = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&run.stdout, "No changes. 200 media match the manifests.");
    assert_eq!(recorded_ids(&env).len(), 200);

    // A compressed snapshot damaged in the bucket: refused once a record
    // is needed from it, and nothing is sent.
    let mut object = s3.get(&newer).unwrap();
    let middle = object.len() / 2;
    object[middle] ^= 0x55;
    s3.put(&newer, &object);
    env.write("manifests/a.yaml", &manifest(0..200, "v3"));
    plan_and_apply_refuse(&env, &["is damaged", "it does not decompress"]);
    assert_eq!(emu.request_count(), 200);
    // A writer that records nothing never waits for its snapshot: a
    // no-op apply over the damaged one (its digests intact) trusts the
    // digests, as a no-op plan does.
    env.write("manifests/a.yaml", &manifest(0..200, "v2"));
    let run = env.exits_with(&["apply", "--auto-approve", &env.manifests()], 0);
    assert_has(&run.stdout, "No changes. 200 media match the manifests.");
    assert_eq!(emu.request_count(), 200);
    // One that would record does, before it sends anything: new media
    // alone (no record to read for the plan) are not sent either.
    env.write("manifests/a.yaml", &manifest(0..210, "v2"));
    let run = env.exits_with(&["apply", "--auto-approve", &env.manifests()], 1);
    assert_has(&run.stdout, "Plan: 10 to create, 0 to update");
    assert_has(&run.stdout, "stopped: the state cannot be written");
    assert_has(&run.stdout, "it does not decompress");
    assert_eq!(emu.request_count(), 200);
}

/// `plan` and `apply` of the manifests each exit 1, saying all of `said`.
fn plan_and_apply_refuse(env: &TestEnv, said: &[&str]) {
    let manifests = env.manifests();
    for args in [
        vec!["plan", manifests.as_str()],
        vec!["apply", "--auto-approve", manifests.as_str()],
    ] {
        let run = env.exits_with(&args, 1);
        for s in said {
            assert_has(&run.stderr, s);
        }
    }
}

/// The `GET`s of `key` among `requests`.
fn gets_of(requests: &[String], key: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains(key))
        .count()
}

/// A plan reads the snapshot's digests object, not the snapshot: a no-op
/// plan never fetches the snapshot, a plan with an update fetches it for
/// the record shown as "before", and a compaction leaves one of each.
/// The digests object is untrusted like the rest: cut short, it is refused;
/// disagreeing with its snapshot, it is refused once the snapshot is read,
/// and nothing is sent. A head from before digests objects (none named)
/// reads from the snapshot, and its next writer adds one.
#[test]
fn a_plan_reads_the_snapshots_digests_and_the_snapshot_only_for_a_record() {
    let Some(s3) = server(
        "bucket_state::a_plan_reads_the_snapshots_digests_and_the_snapshot_only_for_a_record",
    ) else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on_server(&s3).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let (snapshot, digests) = snapshot_keys(&s3, &env);
    let plan = |code: i32| {
        let before = s3.requests().len();
        let run = env.exits_with(&["plan", &env.manifests()], code);
        (run, s3.requests().split_off(before))
    };

    let (run, requests) = plan(0);
    assert_has(&run.stdout, "No changes. 4 media match the manifests.");
    assert_eq!(gets_of(&requests, &digests), 1, "{requests:#?}");
    assert_eq!(gets_of(&requests, &snapshot), 0, "{requests:#?}");

    env.write("manifests/a.yaml", &manifest(0..4, "v2"));
    let (run, requests) = plan(0);
    assert_has(&run.stdout, "Plan: 0 to create, 4 to update");
    assert_has(&run.stdout, "v1");
    assert_eq!(gets_of(&requests, &snapshot), 1, "{requests:#?}");

    // The last media's digest changed by a bit: it plans as changed, and
    // its "before" is read from a snapshot that states another digest.
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    let good = s3.get(&digests).unwrap();
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 1;
    s3.put(&digests, &forged);
    let (run, _) = plan(1);
    assert_has(
        &run.stderr,
        "damaged: the snapshot does not state the digests of its digests object",
    );
    s3.put(&digests, &good[..good.len() - 1]);
    let (run, _) = plan(1);
    assert_has(
        &run.stderr,
        "damaged: the snapshot's digests object is cut short",
    );
    let apply = env.exits_with(&["apply", "--auto-approve", &env.manifests()], 1);
    assert_has(&apply.stderr, "the snapshot's digests object is cut short");
    assert_eq!(emu.request_count(), 0);
    s3.put(&digests, &good);

    // A digests object gone missing: the snapshot is read instead.
    s3.request("DELETE", &format!("/{BUCKET}/{digests}"), b"");
    let (run, requests) = plan(0);
    assert_has(&run.stdout, "No changes. 4 media match the manifests.");
    assert_eq!(gets_of(&requests, &snapshot), 1, "{requests:#?}");

    // A head as a writer before digests objects left it.
    let head_key = format!("{}/head.json", folder(&env));
    let head: serde_json::Value = serde_json::from_slice(&s3.get(&head_key).unwrap()).unwrap();
    let mut older = head.clone();
    older.as_object_mut().unwrap().remove("digests");
    s3.put(&head_key, older.to_string().as_bytes());
    let (run, requests) = plan(0);
    assert_has(&run.stdout, "No changes. 4 media match the manifests.");
    assert_eq!(gets_of(&requests, &snapshot), 1, "{requests:#?}");

    // Its next writer compacts into a snapshot with its digests object.
    env.write("manifests/a.yaml", &manifest(0..4, "v2"));
    env.exits_with(&["apply", "--auto-approve", &env.manifests()], 0);
    assert_eq!(emu.request_count(), 4);
    let (newer, newer_digests) = snapshot_keys(&s3, &env);
    assert_ne!(newer, snapshot);
    let (run, requests) = plan(0);
    assert_has(&run.stdout, "No changes. 4 media match the manifests.");
    assert_eq!(gets_of(&requests, &newer_digests), 1, "{requests:#?}");
    assert_eq!(gets_of(&requests, &newer), 0, "{requests:#?}");

    // A compaction keeps the snapshot the head stood on before (a reader
    // that took its digests may still read it), and deletes the ones
    // before that, and any a losing writer left.
    let left = format!(
        "{}/snapshots/00000000000000000001-00000000000000aa.json",
        folder(&env)
    );
    s3.put(&left, b"{}");
    env.write("manifests/a.yaml", &manifest(0..4, "v3"));
    env.exits_with(&["apply", "--auto-approve", &env.manifests()], 0);
    let (newest, newest_digests) = snapshot_keys(&s3, &env);
    let mut want = vec![newer, newer_digests, newest, newest_digests];
    want.sort();
    assert_eq!(s3.keys(&format!("{}/snapshots/", folder(&env))), want);

    // A head naming anything but a snapshot is refused, by readers and
    // writers alike, and nothing it names is deleted.
    let head = String::from_utf8(s3.get(&head_key).unwrap()).unwrap();
    let marker = format!("{}/workspace.json", folder(&env));
    for forged in [
        serde_json::json!("workspace.json"),
        serde_json::json!("snapshots/../workspace.json"),
    ] {
        let mut value: serde_json::Value = serde_json::from_str(&head).unwrap();
        value["snapshot"] = forged;
        s3.put(&head_key, value.to_string().as_bytes());
        plan_and_apply_refuse(&env, &["the head names a snapshot that is not one"]);
        assert!(s3.get(&marker).is_some());
    }
    // A snapshot of the right shape that is not there: damage, not a race
    // to run again.
    let mut value: serde_json::Value = serde_json::from_str(&head).unwrap();
    value["snapshot"] = serde_json::json!("snapshots/00000000000000000099-00000000000000bb.json");
    s3.put(&head_key, value.to_string().as_bytes());
    let run = env.exits_with(&["plan", &env.manifests()], 1);
    assert_has(
        &run.stderr,
        "damaged: the snapshot its head names is missing",
    );
    assert_eq!(emu.request_count(), 8);
}
