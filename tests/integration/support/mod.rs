//! Test environment: a temp dir with manifests and a state directory, and
//! a runner for the real `xmeta` binary.

#![allow(dead_code)]

#[path = "../../../benches/support/delay_proxy.rs"]
pub mod delay_proxy;
pub mod emulator;
pub mod held_row;
pub mod hostile;
pub mod own_database;
pub mod s3;

pub use held_row::{waits_on_a_lock, HeldRow};
pub use own_database::OwnDatabase;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[allow(unused_imports)]
pub use emulator::{Emulator, Faults, OAuth1Secrets};
use serde_json::Value;

pub const TOKEN: &str = "test-token-Zq8Xy3";

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub backend: Backend,
}

/// Where a test's state lives. The promises of the state are tested on
/// both backends by one test body (see `on_both_backends!`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// sled in the test's own temp dir.
    Sled,
    /// A PostgreSQL URL; each test gets its own workspace in it, created
    /// by `state workspace new` as a user would.
    Postgres(String),
    /// A prefix (`s3://BUCKET/PREFIX`) on the shared moto server; each
    /// test gets its own workspace under it, as on PostgreSQL.
    S3(String),
}

impl Backend {
    /// The PostgreSQL server of `XMETA_TEST_DATABASE_URL`, checked to
    /// answer. Without the variable the test is skipped, saying so on the
    /// terminal (past the test harness's capture); set but not answering
    /// is a failure, never a skip.
    pub fn postgres(test: &str) -> Option<Backend> {
        let Some(url) = std::env::var("XMETA_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            say(&format!(
                "skipped {test} on PostgreSQL: set XMETA_TEST_DATABASE_URL (see the README's Set-up)"
            ));
            return None;
        };
        let answer = postgres_answers(&url);
        assert!(
            answer.is_ok(),
            "XMETA_TEST_DATABASE_URL is set but PostgreSQL does not answer: {answer:?}"
        );
        Some(Backend::Postgres(url))
    }
}

impl Backend {
    /// A bucket prefix on the shared S3 server (see `s3.rs`), or `None`
    /// (skipped, said on the terminal) when moto is not installed.
    pub fn s3(test: &str) -> Option<Backend> {
        s3::S3Server::shared(test)?;
        Some(Backend::S3(format!(
            "s3://{}/run-{}",
            s3::BUCKET,
            std::process::id()
        )))
    }

    /// The other backend, for moving a state across (PostgreSQL only when
    /// the tests have a server; `test` names the skip). From S3, sled.
    pub fn other(&self, test: &str) -> Option<Backend> {
        match self {
            Backend::Sled => Backend::postgres(test),
            Backend::Postgres(_) | Backend::S3(_) => Some(Backend::Sled),
        }
    }

    /// Whether the state is shared (a database or a bucket).
    pub fn is_shared(&self) -> bool {
        !matches!(self, Backend::Sled)
    }
}

/// `state migrate` arguments that name the state of `to`.
pub fn migrate_to(to: &TestEnv) -> Vec<String> {
    let mut args = vec!["state".to_string(), "migrate".into(), "--to".into()];
    match &to.backend {
        Backend::Sled => args.push(to.state_dir().display().to_string()),
        Backend::Postgres(url) | Backend::S3(url) => {
            args.push(url.clone());
            args.push("--to-workspace".into());
            args.push(to.workspace().unwrap_or("default").to_string());
        }
    }
    args
}

/// Runs one SQL statement against the test database and returns the
/// first column of each row as text (for tests that must reach past the
/// binary, e.g. to plant a newer schema).
pub fn sql(url: &str, statement: &str) -> Result<Vec<String>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("{e:?}"))?;
        tokio::spawn(connection);
        let rows = client
            .simple_query(statement)
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(rows
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect())
    })
}

fn postgres_answers(url: &str) -> Result<(), String> {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| sql(url, "SELECT 1").map(|_| ()))
        .clone()
}

/// A line on the terminal even from a passing test: libtest captures only
/// the `print!` family, not writes to the stderr handle.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Runs each named test body `fn name(backend: Backend)` on sled, on
/// PostgreSQL and on S3, as `name::sled`, `name::postgres` and `name::s3`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn sled() {
                super::$name($crate::support::Backend::Sled)
            }
            #[test]
            fn postgres() {
                let test = concat!(module_path!(), "::postgres");
                if let Some(backend) = $crate::support::Backend::postgres(test) {
                    super::$name(backend)
                }
            }
            #[test]
            fn s3() {
                let test = concat!(module_path!(), "::s3");
                if let Some(backend) = $crate::support::Backend::s3(test) {
                    super::$name(backend)
                }
            }
        })*
    };
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::on(Backend::Sled)
    }

    /// A test environment whose state is on `backend`: for PostgreSQL, a
    /// workspace of its own (created here: workspaces exist explicitly),
    /// so tests share one database safely.
    pub fn on(backend: Backend) -> TestEnv {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
        let mut env = TestEnv {
            dir,
            env: Vec::new(),
            backend: backend.clone(),
        };
        if let Backend::S3(_) = &backend {
            let server = s3::S3Server::shared("TestEnv::on").expect("the S3 server");
            env = env.reaching_server(server);
        }
        if let Backend::Postgres(url) | Backend::S3(url) = backend {
            let workspace = unique_workspace();
            env = env
                .with_env("XMETA_STATE", &url)
                .with_env("XMETA_WORKSPACE", &workspace);
            env.exits_with(&["state", "workspace", "new", &workspace], 0);
        }
        env
    }

    /// A test environment whose state is a workspace of its own on
    /// `server` (a test that stops its server, or reads its log).
    pub fn on_server(server: &s3::S3Server) -> TestEnv {
        let url = format!("s3://{}/own-{}", s3::BUCKET, std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
        let workspace = unique_workspace();
        let env = TestEnv {
            dir,
            env: Vec::new(),
            backend: Backend::S3(url.clone()),
        }
        .reaching_server(server)
        .with_env("XMETA_STATE", &url)
        .with_env("XMETA_WORKSPACE", &workspace);
        env.exits_with(&["state", "workspace", "new", &workspace], 0);
        env
    }

    fn reaching_server(mut self, server: &s3::S3Server) -> TestEnv {
        for (k, v) in server.env() {
            self = self.with_env(&k, &v);
        }
        // A killed writer's lease runs out within seconds, not the
        // default minute (renewed every third of it meanwhile).
        self.with_env("XMETA_STATE_LEASE", "4s")
    }

    /// The workspace of a PostgreSQL test environment.
    pub fn workspace(&self) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == "XMETA_WORKSPACE")
            .map(|(_, v)| v.as_str())
    }

    /// Parses a JSON plan (stdout of `plan --format json`, or a saved plan
    /// file) and checks it against `xmeta schema plan`.
    pub fn checked_plan(&self, text: &str) -> Value {
        let plan: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{text}"));
        let schema: Value =
            serde_json::from_str(&self.exits_with(&["schema", "plan"], 0).stdout).expect("schema");
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&plan)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "the plan does not match `xmeta schema plan`: {errors:?}"
        );
        plan
    }

    /// Whether the state exists, on either backend.
    pub fn state_exists(&self) -> bool {
        let run = self.run(&["state", "export"]);
        match run.code {
            0 => true,
            _ if run.stderr.contains("no state at") => false,
            _ => panic!("state export failed: {}", run.stderr),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn manifests(&self) -> String {
        self.path("manifests").display().to_string()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Whether sled holds its own lock on the state's database files, as
    /// it does while the database is open.
    pub fn sled_holds_the_database(&self) -> bool {
        let file = std::fs::File::open(self.state_dir().join("db").join("db")).unwrap();
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    }

    /// On PostgreSQL, a directory that can never exist: a binary that
    /// ignored `XMETA_STATE` and fell back to sled fails instead of passing.
    fn state_dir_setting(&self) -> PathBuf {
        match self.backend {
            Backend::Sled => self.state_dir(),
            Backend::Postgres(_) | Backend::S3(_) => PathBuf::from("/dev/null/not-a-state-dir"),
        }
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn with_env(mut self, key: &str, value: &str) -> TestEnv {
        self.env.push((key.into(), value.into()));
        self
    }

    /// This environment with `other`'s way to its bucket (the AWS_*
    /// variables), for commands that name `other`'s state (`migrate`).
    pub fn reaching(mut self, other: &TestEnv) -> TestEnv {
        for (k, v) in &other.env {
            if k.starts_with("AWS_") || k == "XMETA_STATE_LEASE" {
                self.env.push((k.clone(), v.clone()));
            }
        }
        self
    }

    /// Runs a writer whose lock a killed writer left on a bucket: refused
    /// (sending nothing) while that lease lasts, run again until it ran
    /// out. Returns the run that got in, and whether any was refused.
    pub fn once_the_lease_ran_out(&self, args: &[&str]) -> (Run, bool) {
        let mut refused = false;
        let mut got_in = None;
        wait_until(
            std::time::Duration::from_mins(1),
            "the dead writer's lease to run out",
            || {
                let run = self.run(args);
                if run.code == 1 && run.stderr.contains("is locked by pid") {
                    refused = true;
                    return false;
                }
                got_in = Some(run);
                true
            },
        );
        (got_in.expect("a run got in"), refused)
    }

    /// Bearer token and endpoint of an emulator.
    pub fn against(self, emulator: &Emulator) -> TestEnv {
        self.with_env("XMETA_API_URL", &emulator.url())
            .with_env("XMETA_BEARER_TOKEN", TOKEN)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xmeta"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("XMETA_STATE_DIR", self.state_dir_setting());
        for name in [
            // What the history records about a run, unless a test sets it.
            "GITHUB_SHA",
            "GITHUB_ACTOR",
            "GITHUB_SERVER_URL",
            "GITHUB_REPOSITORY",
            "GITHUB_RUN_ID",
            "USER",
            "LOGNAME",
            "XMETA_STATE",
            "XMETA_WORKSPACE",
            "PGPASSWORD",
            "XMETA_API_URL",
            "XMETA_BEARER_TOKEN",
            "XMETA_CONSUMER_KEY",
            "XMETA_CONSUMER_SECRET",
            "XMETA_ACCESS_TOKEN",
            "XMETA_ACCESS_TOKEN_SECRET",
        ] {
            cmd.env_remove(name);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run xmeta");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts the exit code, showing the output on failure.
    pub fn exits_with(&self, args: &[&str], code: i32) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code, code,
            "xmeta {args:?}\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// What the state holds (its full export), to prove nothing changed.
    /// sled rewrites its own files when a reader opens them, so bytes on
    /// disk are not the measure; the recorded content is.
    pub fn state_fingerprint(&self) -> String {
        let run = self.run(&["state", "export"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    }

    /// Every file under the state directory with its bytes (to scan them).
    pub fn state_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        collect(&self.state_dir(), &mut out);
        out
    }
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
}

/// One generator for tests and benches (`src/testdata.rs`).
// Each target uses part of the one generator.
#[allow(dead_code)]
#[path = "../../../src/testdata.rs"]
mod testdata;
pub use testdata::{manifest, manifest_with, media_id, media_metadata};

/// What the manifests of `manifest(range, variant)` want, per media ID.
pub fn expected(
    range: std::ops::Range<u64>,
    variant: &str,
) -> std::collections::BTreeMap<String, serde_json::Map<String, Value>> {
    range
        .map(|n| {
            (
                media_id(n),
                media_metadata(n, variant).as_object().unwrap().clone(),
            )
        })
        .collect()
}

/// Waits for `done` (an event: a request in the emulator's log, a file, a
/// line of output), checking every 20 ms; fails after `limit`, a bound on a
/// hang, never a timing assertion.
pub fn wait_until(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        // The poll interval of an event wait; the loop ends on the event,
        // never on the clock: not a synchronisation.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A PostgreSQL test leaves nothing behind: its workspace (and with it
/// its state, records, history and lock row) is deleted.
impl Drop for TestEnv {
    fn drop(&mut self) {
        if let (Backend::Postgres(url), Some(workspace)) = (&self.backend, self.workspace()) {
            let _ = sql(
                url,
                &format!("DELETE FROM xmeta_workspaces WHERE name = '{workspace}'"),
            );
        }
    }
}

/// A workspace name no other test (or run) uses.
fn unique_workspace() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A child process that is killed and reaped when this goes out of scope,
/// even when an assertion fails first.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asserts that `haystack` (a command's output) contains `needle`, and
/// shows the whole output when it does not.
#[track_caller]
pub fn assert_has(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected `{needle}` in:\n{haystack}"
    );
}
