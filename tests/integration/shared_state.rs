//! What only the PostgreSQL backend has: a password in the URL that must
//! never be shown, connection errors that name the server, workspaces,
//! and a versioned schema. (The promises both backends share are tested
//! on both by `on_both_backends!` in the other files.)

use crate::support::*;

const PASSWORD: &str = "Pw-s3cret-9q";

/// The test database's URL with `PASSWORD` in it (trust auth ignores it),
/// and with `path` as the database name when given.
fn url_with_password(url: &str, database: Option<&str>) -> String {
    let mut url = url::Url::parse(url).expect("XMETA_TEST_DATABASE_URL is a URL");
    url.set_password(Some(PASSWORD)).expect("a URL with a host");
    if let Some(db) = database {
        url.set_path(db);
    }
    url.to_string()
}

fn postgres(test: &str) -> Option<String> {
    match Backend::postgres(test)? {
        Backend::Postgres(url) => Some(url),
        Backend::Sled | Backend::S3(_) => None,
    }
}

#[test]
fn the_password_never_reaches_output_plans_exports_or_errors() {
    let Some(url) =
        postgres("shared_state::the_password_never_reaches_output_plans_exports_or_errors")
    else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(Backend::Postgres(url.clone())).against(&emu);
    let env = env.with_env("XMETA_STATE", &url_with_password(&url, None));
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    let m = env.manifests();
    let mut seen = vec![
        env.exits_with(&["-vv", "plan", &m, "--out", "plan.json"], 0),
        env.exits_with(&["-vv", "apply", "--plan", "plan.json"], 0),
        env.exits_with(&["-vv", "state", "list"], 0),
        env.exits_with(&["state", "export", "--out", "export.json"], 0),
        env.exits_with(&["-vv", "state", "export"], 0),
    ];
    assert_eq!(emu.request_count(), 3, "the apply went through");

    // Errors name the host and database, never the password.
    let refused = url_with_password(&url, None).replace(":5432/", ":1/");
    let run = env.exits_with(&["--state", &refused, "state", "list"], 1);
    assert_has(
        &run.stderr,
        "cannot connect to the PostgreSQL state at postgres://",
    );
    assert_has(&run.stderr, "@127.0.0.1:1/");
    seen.push(run);
    let missing = url_with_password(&url, Some("no_such_database_xmeta"));
    let run = env.exits_with(&["--state", &missing, "plan", &m], 1);
    assert_has(&run.stderr, "/no_such_database_xmeta");
    seen.push(run);
    let bad = format!("{}?sslmode=bogus", url_with_password(&url, None));
    seen.push(env.exits_with(&["--state", &bad, "plan", &m], 1));
    // A typo that would have made a directory named after the password.
    let typo = format!("postgres:{PASSWORD}@127.0.0.1:5432/test");
    let run = env.exits_with(&["--state", &typo, "plan", &m], 1);
    assert_has(&run.stderr, "looks like a database address");
    seen.push(run);
    // A plan that fails still tells the pull request why, without the password.
    let run = env.exits_with(
        &["--state", &refused, "plan", &m, "--format", "markdown"],
        1,
    );
    assert_has(&run.stdout, "**The plan failed; nothing was planned.**");
    seen.push(run);
    let run = env.exits_with(&["--state", &refused, "plan", &m, "--format", "github"], 1);
    assert_has(
        &run.stdout,
        "::error title=xmeta plan::cannot connect to the PostgreSQL state",
    );
    seen.push(run);
    // In the lock holder's command line and in a second writer's message.
    let run = env.exits_with(&["state", "migrate", "--to", "moved"], 0);
    assert_has(&run.stdout, "Copied 3 media");
    seen.push(run);

    for run in &seen {
        assert!(!run.all().contains(PASSWORD), "{}", run.all());
    }
    for file in ["plan.json", "export.json"] {
        let text = std::fs::read_to_string(env.path(file)).unwrap();
        assert!(!text.contains(PASSWORD), "{file}");
    }
    let entries: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().all(|name| !name.contains(PASSWORD)),
        "{entries:?}"
    );
    for (path, bytes) in collect_all(&env.path("moved")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{}",
            path.display()
        );
    }
}

fn collect_all(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_file() {
            out.push((
                entry.path().to_path_buf(),
                std::fs::read(entry.path()).unwrap_or_default(),
            ));
        }
    }
    out
}

#[test]
fn workspaces_in_one_database_are_separate_states() {
    let Some(url) = postgres("shared_state::workspaces_in_one_database_are_separate_states") else {
        return;
    };
    let a = TestEnv::on(Backend::Postgres(url.clone()));
    let b = TestEnv::on(Backend::Postgres(url));
    for env in [&a, &b] {
        env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    }
    a.exits_with(&["adopt", &a.manifests()], 0);
    let plan = a.exits_with(&["plan", &a.manifests()], 0);
    assert_has(&plan.stdout, "No changes. 4 media match the manifests.");
    let plan = b.exits_with(&["plan", &b.manifests()], 0);
    assert_has(&plan.stdout, "Plan: 4 to create");
    assert!(!b.state_exists(), "a plan creates no state");
    // No lock can be stale: with no writer running there is none to force.
    let run = a.exits_with(&["state", "unlock", "--force"], 0);
    assert_has(&run.stdout, "The state was not locked.");

    // A workspace is a name, not SQL or a path.
    let run = a.exits_with(
        &[
            "--workspace",
            "x'; DROP TABLE xmeta_states; --",
            "state",
            "list",
        ],
        1,
    );
    assert_has(&run.stderr, "is not a workspace name");
    // And it means nothing to a directory state.
    let run = a.exits_with(
        &["--state", "dir", "--workspace", "prod", "state", "list"],
        1,
    );
    assert_has(
        &run.stderr,
        "--workspace `prod` needs a PostgreSQL or bucket state",
    );
}

#[test]
fn a_newer_format_or_schema_is_refused() {
    let Some(url) = postgres("shared_state::a_newer_format_or_schema_is_refused") else {
        return;
    };
    // A newer state format in one workspace.
    let env = TestEnv::on(Backend::Postgres(url.clone()));
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let workspace = env.workspace().unwrap().to_string();
    sql(
        &url,
        &format!("UPDATE xmeta_states SET format_version = 3 WHERE workspace = '{workspace}'"),
    )
    .unwrap();
    for args in [
        vec!["plan", env.manifests().leak() as &str],
        vec!["adopt", env.manifests().leak() as &str],
    ] {
        let run = env.exits_with(&args, 1);
        assert_has(&run.stderr, "was written by a newer xmeta (state format 3");
    }

    // A newer schema, in a database of its own (the schema is per database).
    let db = OwnDatabase::new("shared_state::a_newer_format_or_schema_is_refused", "newer")
        .expect("PostgreSQL answered above");
    let own = db.url.clone();
    let env = db.env();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    // A database of schema 1 (before history) is read as before and
    // upgraded by its next writer; its history starts there.
    sql(
        &own,
        "DROP TABLE xmeta_history; UPDATE xmeta_schema SET version = 1; UPDATE xmeta_states SET format_version = 1",
    )
    .unwrap();
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "No changes. 2 media match the manifests.");
    assert_has(
        &env.exits_with(&["state", "history"], 0).stdout,
        "No history entries.",
    );
    env.write("manifests/a.yaml", &manifest(0..2, "v2"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let history = env.exits_with(&["state", "history", "--format", "json"], 0);
    assert_eq!(history.stdout.matches("\"action\": \"adopt\"").count(), 2);
    assert_eq!(
        sql(&own, "SELECT version FROM xmeta_schema").unwrap(),
        ["5"]
    );

    sql(&own, "UPDATE xmeta_schema SET version = 99").unwrap();
    let plan = env.run(&["plan", &env.manifests()]);
    let adopt = env.run(&["adopt", &env.manifests()]);
    for run in [plan, adopt] {
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_has(
            &run.stderr,
            "uses schema version 99, written by a newer xmeta",
        );
    }
}

/// A record whose metadata bytes were changed under an intact digest is
/// refused by a plan even though the plan never decodes an unchanged
/// record in full: the digest scan checks each digest against its bytes.
#[test]
fn a_record_changed_under_its_digest_is_refused_by_plan() {
    let Some(url) = postgres("shared_state::a_record_changed_under_its_digest_is_refused_by_plan")
    else {
        return;
    };
    let env = TestEnv::on(Backend::Postgres(url.clone()));
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let workspace = env.workspace().unwrap().to_string();
    let id = media_id(1);
    sql(
        &url,
        &format!(
            "UPDATE xmeta_records SET record = convert_to(replace(convert_from(record, 'UTF8'), 'Photo 1: v1', 'Photo 1: v9'), 'UTF8') \
             WHERE workspace = '{workspace}' AND media_id = '{id}'"
        ),
    )
    .unwrap();
    let run = env.exits_with(&["plan", &env.manifests()], 1);
    assert_has(
        &run.stderr,
        &format!("is damaged: the record of media {id}: it does not match its digest"),
    );
}

/// Each record's digest is worked out by the server as it is written
/// (schema 5), so a plan's scan is sent digests, not records; a database
/// of schema 4 is read as before and gets them when a writer upgrades it.
/// A record the server cannot vouch for is sent whole and checked as
/// before: one changed under its digest, or whose stated digest changed.
#[test]
fn the_server_works_out_each_records_digest_and_a_plan_still_refuses_a_changed_record() {
    let Some(db) = OwnDatabase::new(
        "shared_state::the_server_works_out_each_records_digest_and_a_plan_still_refuses_a_changed_record",
        "digests",
    ) else {
        return;
    };
    let env = db.env();
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    // The server's digest is the one each record states.
    let vouched = "SELECT count(*) FROM xmeta_records \
                   WHERE position(convert_to('\"digest\":\"sha256:' || encode(digest, 'hex') || '\"}', 'UTF8') IN record) > 0";
    assert_eq!(sql(&db.url, vouched).unwrap(), ["3"]);
    assert_eq!(
        sql(&db.url, "SELECT version FROM xmeta_schema").unwrap(),
        ["5"]
    );

    // Schema 4: no digest column. Read as before, upgraded by a writer.
    sql(
        &db.url,
        "ALTER TABLE xmeta_records DROP COLUMN digest; UPDATE xmeta_schema SET version = 4",
    )
    .unwrap();
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "No changes. 3 media match the manifests.");
    env.write("manifests/b.yaml", &manifest(3..4, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    assert_eq!(
        sql(&db.url, "SELECT version FROM xmeta_schema").unwrap(),
        ["5"]
    );
    assert_eq!(sql(&db.url, vouched).unwrap(), ["4"]);
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "No changes. 4 media match the manifests.");

    // A record whose stated digest was changed, its metadata not.
    let id = media_id(2);
    sql(
        &db.url,
        &format!(
            "UPDATE xmeta_records SET record = overlay(record PLACING \
             (CASE WHEN substring(record FROM length(record) - 2 FOR 1) = '0'::bytea THEN '1' ELSE '0' END)::bytea \
             FROM length(record) - 2 FOR 1) WHERE media_id = '{id}'"
        ),
    )
    .unwrap();
    assert_eq!(sql(&db.url, vouched).unwrap(), ["3"]);
    let run = env.exits_with(&["plan", &env.manifests()], 1);
    assert_has(
        &run.stderr,
        &format!("is damaged: the record of media {id}: it does not match its digest"),
    );
}

/// The upgrade to schema 5 rewrites `xmeta_records`, and a snapshot taken
/// before a rewrite commits sees the table empty. A plan of a database of
/// schema 4 started while a rewrite is under way waits for it, and then
/// sees every record (before: it showed every media as new).
#[test]
fn a_plan_during_the_tables_rewrite_sees_every_record() {
    let Some(db) = OwnDatabase::new(
        "shared_state::a_plan_during_the_tables_rewrite_sees_every_record",
        "rewrite",
    ) else {
        return;
    };
    let env = db.env();
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    sql(
        &db.url,
        "ALTER TABLE xmeta_records DROP COLUMN digest; UPDATE xmeta_schema SET version = 4",
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (upgrade, connection) = runtime
        .block_on(tokio_postgres::connect(&db.url, tokio_postgres::NoTls))
        .unwrap();
    let connection = runtime.spawn(connection);
    // A rewrite under way, as the upgrade's, held open.
    runtime
        .block_on(upgrade.batch_execute(
            "BEGIN; ALTER TABLE xmeta_records ADD COLUMN rewritten bytea \
             GENERATED ALWAYS AS (sha256(record)) STORED",
        ))
        .unwrap();
    let plan = env
        .command(&["plan", &env.manifests()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until the plan waits on the table (a lock not granted yet).
    let waiting = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                   WHERE c.relname = 'xmeta_records' AND NOT l.granted";
    while sql(&db.url, waiting).unwrap() != ["1"] {
        std::thread::yield_now();
    }
    runtime.block_on(upgrade.batch_execute("COMMIT")).unwrap();
    let out = plan.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_has(&stdout, "No changes. 3 media match the manifests.");
    drop(upgrade);
    runtime.block_on(connection).unwrap().unwrap();
}

/// A schema made for one test, dropped (with what xmeta made in it) when
/// the test ends, passing or failing.
struct Schema<'a> {
    url: &'a str,
    name: String,
}

impl Drop for Schema<'_> {
    fn drop(&mut self) {
        let _ = sql(
            self.url,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

/// URL query values reach the driver exactly as decoded: `%20` is a space
/// (it was re-encoded as `+`, which the driver keeps as a plus), and
/// `options` works (here `-c search_path=…`, which puts xmeta's tables in
/// a schema of their own).
#[test]
fn url_parameters_reach_the_driver_decoded_and_options_work() {
    let Some(url) =
        postgres("shared_state::url_parameters_reach_the_driver_decoded_and_options_work")
    else {
        return;
    };
    let schema = Schema {
        url: &url,
        name: format!("xmeta_options_{}", std::process::id()),
    };
    sql(&url, &format!("CREATE SCHEMA {}", schema.name)).unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let with = format!(
        "{url}{sep}options=-c%20search_path%3D{}&application_name=a%20b",
        schema.name
    );
    let env = TestEnv::new()
        .with_env("XMETA_STATE", &with)
        .with_env("XMETA_WORKSPACE", "w");
    env.exits_with(&["state", "workspace", "new", "w"], 0);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let held = sql(
        &url,
        &format!(
            "SELECT count(*) FROM {}.xmeta_workspaces WHERE name = 'w'",
            schema.name
        ),
    )
    .unwrap();
    assert_eq!(held, ["1"], "the workspace is not in the options' schema");
    assert_eq!(
        env.exits_with(&["state", "list"], 0).stdout.lines().count(),
        2
    );
}

/// A short password is never substring-replaced: `es` would turn the
/// server's `does not exist` into `do*** not exist` and `postgres` into
/// `postgr***`, showing the password to anyone who reads the error.
#[test]
fn a_short_password_is_never_revealed_by_scrubbing() {
    let Some(url) = postgres("shared_state::a_short_password_is_never_revealed_by_scrubbing")
    else {
        return;
    };
    let mut short = url::Url::parse(&url).unwrap();
    short.set_password(Some("es")).unwrap();
    short.set_path("/xmeta_no_such_database");
    let env = TestEnv::new()
        .with_env("XMETA_STATE", short.as_str())
        .with_env("XMETA_WORKSPACE", "default");
    let run = env.exits_with(&["state", "list"], 1);
    assert_has(
        &run.stderr,
        "database \"xmeta_no_such_database\" does not exist",
    );
    assert_has(&run.stderr, "at postgres://postgres@");
    assert!(!run.stderr.contains("***"), "{}", run.stderr);
}

/// The README's `GRANT` for the read-only role of pull-request plans names
/// every table xmeta makes, and a role granted exactly that plans (the
/// review too); one granted an older list (before `xmeta_previews`) still
/// plans, with a warning and no images.
#[test]
fn the_readme_grants_read_on_every_table() {
    if postgres("shared_state::the_readme_grants_read_on_every_table").is_none() {
        return;
    }
    let readme = include_str!("../../README.md");
    let grant = readme
        .lines()
        .find(|l| l.starts_with("GRANT SELECT ON xmeta_"))
        .expect("the README's GRANT");
    let granted: Vec<&str> = grant["GRANT SELECT ON ".len()..]
        .split(" TO ")
        .next()
        .unwrap()
        .split(", ")
        .collect();
    let db = OwnDatabase::new(
        "shared_state::the_readme_grants_read_on_every_table",
        "grant",
    )
    .expect("PostgreSQL answered above");
    let own = db.url.clone();
    let env = db.env();
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let mut tables = sql(
        &own,
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'xmeta\\_%' ORDER BY tablename",
    )
    .unwrap();
    tables.sort();
    let mut named: Vec<String> = granted.iter().map(ToString::to_string).collect();
    named.sort();
    assert_eq!(named, tables, "the README's GRANT: {grant}");

    env.write("manifests/a.yaml", &manifest(0..2, "v2"));
    let role = format!("xmeta_read_{}", std::process::id());
    let mut as_role = url::Url::parse(&own).unwrap();
    as_role.set_username(&role).unwrap();
    let reader = TestEnv::on(Backend::Sled).with_env("XMETA_STATE", as_role.as_str());
    reader.write("manifests/a.yaml", &manifest(0..2, "v2"));
    let plan_as_role = |grant: &str| {
        sql(&own, &format!("DROP ROLE IF EXISTS {role}")).unwrap();
        sql(&own, &format!("CREATE ROLE {role} LOGIN")).unwrap();
        sql(&own, &grant.replace("xmeta_ci_read", &role)).unwrap();
        let run = reader.run(&["plan", &reader.manifests(), "--format", "markdown"]);
        sql(&own, &format!("DROP OWNED BY {role}")).unwrap();
        sql(&own, &format!("DROP ROLE {role}")).unwrap();
        run
    };
    let run = plan_as_role(grant);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_has(&run.stdout, "2 to update");
    let older = grant.replace(", xmeta_previews", "");
    let run = plan_as_role(&older);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_has(
        &run.stderr,
        "this role may not read xmeta_previews (grant SELECT on it): the review shows no images",
    );
}

/// Whether there is a state, and its lock, on one connection: `apply`
/// and `adopt` asked on one, then opened a second to lock (each a TLS and
/// authentication exchange, a few round trips, before the first read).
#[test]
fn a_writer_asks_whether_the_state_exists_on_the_connection_that_locks_it() {
    let Some(url) = postgres(
        "shared_state::a_writer_asks_whether_the_state_exists_on_the_connection_that_locks_it",
    ) else {
        return;
    };
    let emulator = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(Backend::Postgres(url.clone())).against(&emulator);
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env.write("manifests/a.yaml", &manifest(0..4, "v2"));
    let parsed = url::Url::parse(&url).unwrap();
    let proxy = delay_proxy::DelayProxy::start(
        &format!(
            "{}:{}",
            parsed.host_str().unwrap(),
            parsed.port().unwrap_or(5432)
        ),
        std::time::Duration::ZERO,
    );
    let mut through = parsed.clone();
    through.set_port(Some(proxy.port)).unwrap();
    let run = |args: &[&str]| {
        let before = proxy.connections();
        let out = env
            .command(args)
            .env("XMETA_STATE", through.as_str())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).to_string(),
            proxy.connections() - before,
        )
    };
    let (out, connections) = run(&["apply", &env.manifests(), "--auto-approve"]);
    assert_has(&out, "Apply complete: 4 applied, 0 failed.");
    assert_eq!(connections, 1, "apply: {out}");
    assert_eq!(emulator.bodies().len(), 4);
    let (out, connections) = run(&["adopt", &env.manifests()]);
    assert_has(&out, "Adopted 0 media (4 already matched)");
    assert_eq!(connections, 1, "adopt: {out}");
    let (out, connections) = run(&["plan", &env.manifests()]);
    assert_has(&out, "No changes. 4 media match the manifests.");
    assert_eq!(connections, 1, "plan: {out}");
}

/// A writer that finds no state there leaves the database as it was: an
/// older schema is upgraded only by a writer that goes on to write.
#[test]
fn a_writer_refused_for_an_unknown_workspace_upgrades_nothing() {
    let Some(db) = OwnDatabase::new(
        "shared_state::a_writer_refused_for_an_unknown_workspace_upgrades_nothing",
        "older",
    ) else {
        return;
    };
    let emulator = Emulator::start(TOKEN, Faults::default());
    let env = db.env().against(&emulator);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    // Schema 3: before the previews table.
    sql(
        &db.url,
        "DROP TABLE xmeta_previews; UPDATE xmeta_schema SET version = 3",
    )
    .unwrap();
    for command in ["adopt", "apply"] {
        let run = env.exits_with(&["--workspace", "typo", command, &env.manifests()], 1);
        assert_has(&run.stderr, "error: workspace `typo` does not exist");
        assert_eq!(
            sql(&db.url, "SELECT version FROM xmeta_schema").unwrap(),
            ["3"],
            "{command}"
        );
    }
    assert!(emulator.bodies().is_empty());
    // A writer of the state that is there upgrades it, as before.
    env.exits_with(&["adopt", &env.manifests()], 0);
    assert_eq!(
        sql(&db.url, "SELECT version FROM xmeta_schema").unwrap(),
        ["5"]
    );
}

/// Before: a state filled in bulk was planned from the server's
/// statistics of before it was filled, until autovacuum came (never,
/// where it is off): at 1,000,000 media each page of `state list` sorted
/// the whole workspace on disk, 70 s in all (2.5 s once analyzed). A
/// writer that changed 10,000 records or more leaves its tables analyzed
/// as it closes; one that changed fewer leaves them to autovacuum.
#[test]
fn a_bulk_writer_leaves_its_tables_analyzed() {
    let Some(db) = OwnDatabase::new(
        "shared_state::a_bulk_writer_leaves_its_tables_analyzed",
        "analyzed",
    ) else {
        return;
    };
    let env = db.env();
    let analyzed = || {
        sql(
            &db.url,
            "SELECT coalesce(last_analyze::text, 'never') FROM pg_stat_user_tables \
             WHERE relname = 'xmeta_records'",
        )
        .unwrap()
        .remove(0)
    };
    env.write("manifests/a.yaml", &manifest(0..10, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    assert_eq!(analyzed(), "never");

    env.write("manifests/a.yaml", &manifest(0..10_010, "v1"));
    let run = env.exits_with(&["adopt", &env.manifests()], 0);
    assert_has(&run.stdout, "Adopted 10000 media (10 already matched)");
    wait_until(
        std::time::Duration::from_secs(15),
        "the server to report the analyze",
        || analyzed() != "never",
    );
    let rows = sql(
        &db.url,
        "SELECT reltuples::bigint FROM pg_class WHERE relname = 'xmeta_records'",
    )
    .unwrap();
    assert_eq!(rows, ["10010"]);
}

/// A plan is handed the state's digests in ID order, a part at a time, as
/// it compares them (never all at once beside the parse): across parts, a
/// change in a later part, a media in no manifest and the rest unchanged
/// are each found.
/// IDs of mixed lengths come out of numeric order along the text key: the
/// plan then reads the digests whole, and plans the same.
#[test]
fn a_plan_compares_the_digests_in_parts_and_reads_them_whole_when_id_lengths_mix() {
    let Some(url) = postgres(
        "shared_state::a_plan_compares_the_digests_in_parts_and_reads_them_whole_when_id_lengths_mix",
    ) else {
        return;
    };
    let env = TestEnv::on(Backend::Postgres(url));
    // More media than a part of the session (8,192) or of the planner
    // (16,384) holds.
    env.write("manifests/a.yaml", &manifest(0..20_000, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "No changes. 20000 media match the manifests.");

    // One change in the second part, one media in no manifest in the first.
    env.write(
        "manifests/a.yaml",
        &manifest_with(1..20_000, |n| if n == 17_500 { "v2" } else { "v1" }),
    );
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "Plan: 0 to create, 1 to update");
    assert_has(
        &plan.stdout,
        &format!("~ media {} will be updated (1 field)", media_id(17_500)),
    );
    assert_has(
        &plan.stdout,
        &format!("- media {} is in no manifest", media_id(0)),
    );
    assert_has(&plan.stdout, "19998 unchanged");

    // IDs of 5 and 18 digits beside the 19-digit ones: along the text key
    // "999…" comes last, after every "1700…", out of numeric order.
    let short = |text: &str| {
        format!(
            "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n\
             - id: '12345'\n  metadata:\n    alt_text:\n      text: 'A short ID, {text}'\n\
             - id: '999999999999999999'\n  metadata:\n    alt_text:\n      text: 'Eighteen digits, {text}'\n"
        )
    };
    env.write("manifests/b.yaml", &short("v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(
        &plan.stdout,
        "Plan: 0 to create, 0 to update, 1 to forget, 20001 unchanged. 0 requests.",
    );
    env.write("manifests/b.yaml", &short("v2"));
    let plan = env.exits_with(&["plan", &env.manifests()], 0);
    assert_has(&plan.stdout, "Plan: 0 to create, 2 to update");
    assert_has(&plan.stdout, "~ media 12345 will be updated (1 field)");
    assert_has(
        &plan.stdout,
        "~ media 999999999999999999 will be updated (1 field)",
    );
    assert_has(
        &plan.stdout,
        &format!("- media {} is in no manifest", media_id(0)),
    );
    assert_has(&plan.stdout, "19999 unchanged");
}

/// A plan's digests are asked for beside its parse and wait, a few parts
/// read, until it compares. A plan with `--refresh` reads every record
/// first, on the same connection: the read started ahead is let go, not
/// waited behind (its rows fill more parts than are read ahead).
#[test]
fn a_refresh_plan_lets_go_of_the_digests_asked_for_beside_its_parse() {
    let Some(url) =
        postgres("shared_state::a_refresh_plan_lets_go_of_the_digests_asked_for_beside_its_parse")
    else {
        return;
    };
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::on(Backend::Postgres(url)).against(&emu);
    env.write("manifests/a.yaml", &manifest(0..30_000, "v1"));
    env.write(
        "manifests/b.yaml",
        "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n\
         - id: '101'\n  type: photo\n  metadata:\n    alt_text:\n      text: 'Item 101 on a wooden shelf'\n",
    );
    env.exits_with(&["adopt", &env.manifests()], 0);
    emu.set_alt_text_outside("101", Some("Changed in the X app"));
    // Waited behind, it would fail at the call bound (5 minutes), exit 1.
    let plan = env.exits_with(&["plan", &env.manifests(), "--refresh"], 0);
    assert_has(
        &plan.stdout,
        "! media 101 drifted: alt_text changed outside xmeta",
    );
    assert_has(
        &plan.stdout,
        "Plan: 0 to create, 1 to update, 0 to forget, 30000 unchanged, 1 drifted. 1 request.",
    );
    assert_eq!(emu.post_count(), 0, "a plan sends nothing");
}
