//! Which state a command is on: a state that `state migrate` moved is
//! refused (naming the new place), PostgreSQL workspaces exist explicitly
//! (a typo is an error, never an empty state), the history's actor when
//! the environment names nobody, and the state directory's mode.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

crate::on_both_backends!(
    a_migrated_state_refuses_every_command_but_export,
    keep_source_leaves_the_old_state_live_with_a_warning,
);

/// `s` with the date after ` on ` (RFC 3339 UTC to the second) checked
/// and replaced by `<date>`: the one part of the message that moves.
fn without_date(s: &str) -> String {
    let Some(at) = s.find(" on ") else {
        return s.to_string();
    };
    let date = &s[at + 4..at + 24];
    let shape: String = date
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99Z", "the date in: {s}");
    format!("{} on <date>{}", &s[..at], &s[at + 24..])
}

/// The test database's URL as xmeta shows it (no password, no query).
fn shown(url: &str) -> String {
    let mut url = url::Url::parse(url).expect("XMETA_TEST_DATABASE_URL is a URL");
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

/// How a message names a state: its directory, or its database URL and
/// workspace.
fn named(env: &TestEnv) -> String {
    match &env.backend {
        Backend::Sled => env.state_dir().display().to_string(),
        Backend::Postgres(url) => {
            format!("{} (workspace `{}`)", shown(url), env.workspace().unwrap())
        }
        Backend::S3(url) => format!("{url} (workspace `{}`)", env.workspace().unwrap()),
    }
}

/// Before: the source stayed live after `state migrate`, and a run that
/// still pointed at it planned (and would have re-sent) against a copy
/// that no longer changed.
fn a_migrated_state_refuses_every_command_but_export(backend: Backend) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(backend.clone()).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    let m = env.manifests();
    env.exits_with(&["adopt", &m], 0);
    let exported = env.state_fingerprint();
    env.write("manifests/a.yaml", &manifest(0..3, "v2"));

    let there = TestEnv::on(backend.clone());
    let args = migrate_to(&there);
    let run = env.exits_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), 0);
    let (to, flags) = match &backend {
        Backend::Sled => {
            let dir = std::fs::canonicalize(there.state_dir()).unwrap();
            let dir = dir.display().to_string();
            (dir.clone(), format!("--state {dir}"))
        }
        Backend::Postgres(url) => (
            named(&there),
            format!(
                "--state {} --workspace {}",
                shown(url),
                there.workspace().unwrap()
            ),
        ),
        Backend::S3(url) => (
            named(&there),
            format!("--state {url} --workspace {}", there.workspace().unwrap()),
        ),
    };
    let from = named(&env);
    let lineage = exported
        .split("\"lineage\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(
        run.stdout,
        format!("Copied 3 media (lineage {lineage}, serial 1) from {from} to {to}; the old state is kept read-only and points there (`xmeta state export` still reads it).\n")
    );
    assert_eq!(run.stderr, "");

    let refusal = format!(
        "error: the state at {from} moved to {to} on <date>: use `{flags}` (or XMETA_STATE) instead; this old copy is kept read-only, and `xmeta state export` still reads it\n"
    );
    for args in [
        vec!["plan", m.as_str()],
        vec!["plan", m.as_str(), "--format", "json"],
        vec!["apply", m.as_str(), "--auto-approve"],
        vec!["adopt", m.as_str()],
        vec!["state", "list"],
        vec!["state", "show", "1146654567674912000"],
        vec!["state", "history"],
        vec!["state", "rm", "1146654567674912000"],
        vec!["state", "history", "--prune-before", "2020-01-01"],
        vec!["state", "import", "export.json"],
        args.iter().map(String::as_str).collect(),
    ] {
        std::fs::write(env.path("export.json"), &exported).unwrap();
        let run = env.exits_with(&args, 1);
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(without_date(&run.stderr), refusal, "{args:?}");
    }
    assert_eq!(emu.request_count(), 0, "nothing was sent");
    // What the old copy holds can still be read, unchanged.
    assert_eq!(env.state_fingerprint(), exported);
    // The new place plans as the old one did.
    std::fs::copy(env.path("manifests/a.yaml"), there.path("manifests/a.yaml")).unwrap();
    let plan = there.exits_with(&["plan", &there.manifests()], 0);
    assert_has(&plan.stdout, "Plan: 0 to create, 3 to update");
}

/// `--keep-source` is the old behaviour: two live copies, said on stderr.
fn keep_source_leaves_the_old_state_live_with_a_warning(backend: Backend) {
    let env = TestEnv::on(backend.clone());
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let there = TestEnv::on(backend);
    let mut args = migrate_to(&there);
    args.push("--keep-source".into());
    let run = env.exits_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), 0);
    let (from, to) = (named(&env), named(&there));
    assert_has(&run.stdout, "; the old state is unchanged.\n");
    assert_eq!(
        run.stderr,
        format!("warning: --keep-source: the old state at {from} stays live; a run that still uses it plans against a copy that no longer changes, and would send again what is applied through {to}\n")
    );
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "No changes. 2 media match the manifests.");
}

/// Before: a mistyped `--workspace` read as an empty state: the plan
/// showed every media to create and exited 0, `state list` printed nothing.
#[test]
fn a_mistyped_workspace_fails_with_did_you_mean_and_the_known_ones() {
    let Some(db) = OwnDatabase::new(
        "state_identity::a_mistyped_workspace_fails_with_did_you_mean_and_the_known_ones",
        "typo",
    ) else {
        return;
    };
    let env = db.env();
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let m = env.manifests();
    let run = env.exits_with(&["state", "workspace", "new", "staging"], 0);
    assert_eq!(
        run.stdout,
        "Created workspace `staging`; use it with --workspace staging.\n"
    );
    env.exits_with(&["--workspace", "staging", "adopt", &m], 0);

    let expected = format!(
        "error: workspace `stagign` does not exist in {}; did you mean `staging`? known workspaces: default, staging; to start a new one, run `xmeta state workspace new stagign` (or pass --create-workspace)\n",
        shown(&db.url)
    );
    for args in [
        vec!["plan", m.as_str()],
        vec!["state", "list"],
        vec!["state", "export"],
        vec!["adopt", m.as_str()],
        vec!["state", "rm", "1146654567674912000"],
        vec!["state", "unlock", "--force"],
    ] {
        let mut full = vec!["--workspace", "stagign"];
        full.extend(&args);
        let run = env.exits_with(&full, 1);
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(run.stderr, expected, "{args:?}");
    }
    // XMETA_WORKSPACE is checked the same way.
    let mut list = env.command(&["state", "list"]);
    let out = list.env("XMETA_WORKSPACE", "stagign").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
    // Nothing was created by the refused writers.
    let run = env.exits_with(&["state", "workspace", "list"], 0);
    assert_eq!(run.stdout, "default\nstaging\n");
    let run = env.exits_with(&["--workspace", "staging", "state", "list"], 0);
    assert_eq!(run.stdout.lines().count(), 5);
}

/// Before: any writer made any workspace it was pointed at.
#[test]
fn a_writer_creates_a_workspace_only_when_told() {
    let Some(db) = OwnDatabase::new(
        "state_identity::a_writer_creates_a_workspace_only_when_told",
        "create",
    ) else {
        return;
    };
    let env = db.env();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    let m = env.manifests();
    // `default` always exists, even in a database xmeta never wrote to.
    assert_eq!(
        env.exits_with(&["state", "workspace", "list"], 0).stdout,
        "default\n"
    );
    let run = env.exits_with(&["state", "list"], 0);
    assert_eq!(run.stdout, "");

    let run = env.exits_with(&["--workspace", "ci", "adopt", &m], 1);
    assert_eq!(
        run.stderr,
        format!("error: workspace `ci` does not exist in {}; known workspaces: default; to start a new one, run `xmeta state workspace new ci` (or pass --create-workspace)\n", shown(&db.url))
    );
    // A first pipeline run: its plan reads the workspace it will create
    // as empty, and creates nothing.
    let run = env.exits_with(&["--workspace", "ci", "--create-workspace", "plan", &m], 0);
    assert_has(&run.stdout, "Plan: 2 to create");
    assert_eq!(
        env.exits_with(&["state", "workspace", "list"], 0).stdout,
        "default\n"
    );
    env.exits_with(&["--workspace", "ci", "--create-workspace", "adopt", &m], 0);
    assert_eq!(
        env.exits_with(&["state", "workspace", "list"], 0).stdout,
        "ci\ndefault\n"
    );
    let run = env.exits_with(&["--workspace", "ci", "plan", &m], 0);
    assert_has(&run.stdout, "No changes. 2 media match the manifests.");

    // `state migrate` into a new workspace is a writer like any other.
    let run = env.exits_with(
        &[
            "--workspace",
            "ci",
            "state",
            "migrate",
            "--to",
            &db.url,
            "--to-workspace",
            "prod",
        ],
        1,
    );
    assert_has(&run.stderr, "error: workspace `prod` does not exist in ");
    env.exits_with(
        &[
            "--workspace",
            "ci",
            "--create-workspace",
            "state",
            "migrate",
            "--to",
            &db.url,
            "--to-workspace",
            "prod",
        ],
        0,
    );
    assert_eq!(
        env.exits_with(&["state", "workspace", "list"], 0).stdout,
        "ci\ndefault\nprod\n"
    );

    let run = env.exits_with(&["state", "workspace", "new", "prod"], 1);
    assert_eq!(
        run.stderr,
        format!(
            "error: workspace `prod` already exists in {}; use it with --workspace prod\n",
            shown(&db.url)
        )
    );
    let run = env.exits_with(&["state", "workspace", "new", "a b"], 1);
    assert_eq!(
        run.stderr,
        "error: `a b` is not a workspace name: use 1 to 64 letters, digits, dots, dashes or underscores\n"
    );
}

/// Before: there was no way to list or delete a workspace.
#[test]
fn delete_refuses_default_a_non_empty_workspace_without_force_and_a_locked_one() {
    let Some(db) = OwnDatabase::new(
        "state_identity::delete_refuses_default_a_non_empty_workspace_without_force_and_a_locked_one",
        "delete",
    ) else {
        return;
    };
    let faults = Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    };
    let emu = Emulator::start(TOKEN, faults);
    let env = db.env().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..10, "v1"));
    let m = env.manifests();
    env.exits_with(&["state", "workspace", "new", "scratch"], 0);
    env.exits_with(&["state", "workspace", "new", "empty"], 0);
    env.exits_with(&["--workspace", "scratch", "adopt", &m], 0);

    let run = env.exits_with(&["state", "workspace", "delete", "default"], 1);
    assert_eq!(
        run.stderr,
        "error: the `default` workspace always exists and cannot be deleted; to empty it, `xmeta state rm` its media\n"
    );
    let run = env.exits_with(&["state", "workspace", "delete", "scratc"], 1);
    assert_has(
        &run.stderr,
        "error: workspace `scratc` does not exist in postgres://",
    );
    assert_has(
        &run.stderr,
        "; did you mean `scratch`? known workspaces: default, empty, scratch;",
    );
    let run = env.exits_with(&["state", "workspace", "delete", "scratch"], 1);
    assert_eq!(
        run.stderr,
        "error: workspace `scratch` holds 10 media; nothing was deleted (keep a copy with `xmeta --workspace scratch state export --out FILE`, then pass --force to delete them with it)\n"
    );

    // A writer on it: refused even with --force.
    env.write("manifests/a.yaml", &manifest(0..10, "v2"));
    let writer = env
        .command(&[
            "--workspace",
            "scratch",
            "apply",
            &m,
            "--auto-approve",
            "--concurrency",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut writer = Killed(writer);
    wait_until(Duration::from_secs(20), "the apply's first request", || {
        emu.request_count() > 0
    });
    let run = env.exits_with(&["state", "workspace", "delete", "scratch", "--force"], 1);
    assert!(
        run.stderr.starts_with(&format!(
            "error: workspace `scratch` is locked by pid {} on host `",
            writer.0.id()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("; nothing was deleted (wait for that writer to finish)\n"),
        "{}",
        run.stderr
    );
    assert!(
        writer.0.try_wait().unwrap().is_none(),
        "the writer ran all along"
    );
    assert!(writer.0.wait().unwrap().success());

    let run = env.exits_with(&["state", "workspace", "delete", "scratch", "--force"], 0);
    assert_eq!(
        run.stdout,
        "Deleted workspace `scratch` and the 10 media it held; nothing was sent.\n"
    );
    let run = env.exits_with(&["state", "workspace", "delete", "empty"], 0);
    assert_eq!(
        run.stdout,
        "Deleted workspace `empty` and the 0 media it held; nothing was sent.\n"
    );
    assert_eq!(
        env.exits_with(&["state", "workspace", "list"], 0).stdout,
        "default\n"
    );
}

#[test]
fn a_state_directory_has_only_the_default_workspace() {
    let env = TestEnv::new();
    let run = env.exits_with(&["state", "workspace", "list"], 0);
    assert_eq!(run.stdout, "default\n");
    for args in [
        vec!["state", "workspace", "new", "staging"],
        vec!["state", "workspace", "delete", "staging"],
    ] {
        let run = env.exits_with(&args, 1);
        assert_eq!(
            run.stderr,
            "error: a state directory holds one state, the `default` workspace; workspaces need a PostgreSQL or bucket state (--state postgres://… or s3://…); for another local state, use another --state DIR\n"
        );
    }
}

/// The name of this process's user, as the OS knows it.
fn os_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Before: with neither USER nor LOGNAME set (containers, cron) the
/// history recorded no actor, shown as `unknown`.
#[test]
fn the_actor_falls_back_to_the_os_user_name() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..1, "v1"));
    let mut adopt = env.command(&["adopt", &env.manifests()]);
    adopt.env_remove("USER").env_remove("LOGNAME");
    assert!(adopt.output().unwrap().status.success());
    let run = env.exits_with(&["state", "history", "--format", "json"], 0);
    let entries: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let user = os_user();
    assert!(!user.is_empty());
    assert_eq!(entries[0]["actor"], user.as_str(), "{}", run.stdout);
}

/// Before: a state directory that was there already (the repository's
/// `state/`, checked out 0755) kept its mode, and every run warned.
#[test]
fn the_state_directory_is_made_private_at_its_first_write() {
    let env = TestEnv::new();
    let dir = env.state_dir();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join(".gitignore"), "*\n!.gitignore\n!README.md\n").unwrap();
    std::fs::write(dir.join("README.md"), "The state.\n").unwrap();
    env.write("manifests/a.yaml", &manifest(0..1, "v1"));
    let run = env.exits_with(&["adopt", &env.manifests()], 0);
    // No warning that others can read it.
    assert_eq!(
        run.stderr,
        format!(
            "No state at {}: creating a new one; every media is new.\n",
            dir.display()
        )
    );
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(format!("{mode:o}"), "700");
    assert_eq!(env.exits_with(&["state", "list"], 0).stderr, "");
}
