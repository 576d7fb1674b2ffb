//! The reusable action (`action.yml`, `action/*.sh`) without GitHub: its
//! scripts run against a loopback server holding a fake release (the
//! freshly built binary packed as `release.yml` packs it, and a
//! `SHA256SUMS`), with a simulated runner environment.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::support::*;

const VERSION: &str = "v0.1.0";
const TARGET: &str = "x86_64-unknown-linux-musl";

fn asset() -> String {
    format!("xmeta-{VERSION}-{TARGET}.tar.gz")
}

/// A release server on loopback: GET `/TAG/NAME` answers the file or 404.
/// Counts the requests it answers.
struct Releases {
    url: String,
    served: Arc<AtomicUsize>,
}

impl Releases {
    fn start(files: HashMap<String, Vec<u8>>) -> Releases {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match files.get(path) {
                    Some(body) => ("200 OK", body.as_slice()),
                    None => ("404 Not Found", &b"Not Found"[..]),
                };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(body);
            }
        });
        Releases { url, served }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// The archive `release.yml` makes: `xmeta-TAG-TARGET/xmeta` (with the
/// licences and README), gzipped tar.
fn pack(dir: &Path, binary: &Path) -> Vec<u8> {
    let top = format!("xmeta-{VERSION}-{TARGET}");
    let stage = dir.join("stage").join(&top);
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(binary, stage.join("xmeta")).unwrap();
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(file),
            stage.join(file),
        )
        .unwrap();
    }
    let archive = dir.join(asset());
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.join("stage"))
        .arg(&top)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

fn sums(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut text = String::new();
    for (name, bytes) in entries {
        text += &hex::encode(Sha256::digest(bytes));
        text += "  ";
        text += name;
        text += "\n";
    }
    text.into_bytes()
}

/// A simulated runner: its tool cache, temp dir and GITHUB_* files.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["tool-cache", "temp", "work"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Runner { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    fn script(&self, name: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("action")
                .join(name),
        );
        cmd.current_dir(self.path("work"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.path("work"))
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TOOL_CACHE", self.path("tool-cache"))
            .env("RUNNER_TEMP", self.path("temp"))
            .env("GITHUB_PATH", self.path("github_path"))
            .env("GITHUB_OUTPUT", self.path("github_output"))
            .env("GITHUB_ACTION_PATH", env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn install(&self, url: &str, env: &[(&str, &str)]) -> Output {
        let mut all = vec![("XMETA_VERSION", VERSION), ("XMETA_RELEASES_URL", url)];
        all.extend_from_slice(env);
        self.script("install.sh", &all)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_action_installs_a_verified_release_and_plans() {
    let runner = Runner::new();
    let archive = pack(
        runner.path("temp").as_path(),
        Path::new(env!("CARGO_BIN_EXE_xmeta")),
    );
    let files = HashMap::from([
        (format!("/{VERSION}/{}", asset()), archive.clone()),
        (
            format!("/{VERSION}/SHA256SUMS"),
            sums(&[
                (&asset(), &archive),
                ("xmeta-v0.1.0-aarch64-apple-darwin.tar.gz", b"other"),
            ]),
        ),
    ]);
    let releases = Releases::start(files);
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));

    let started = Instant::now();
    let install = runner.install(&releases.url, &[]);
    assert!(install.status.success(), "{}", stderr(&install));
    let cache = runner.path(&format!("tool-cache/xmeta/0.1.0/{TARGET}"));
    assert_eq!(runner.read("github_path"), format!("{}\n", cache.display()));
    assert_eq!(
        runner.read("github_output"),
        format!("path={}/xmeta\n", cache.display())
    );
    assert_eq!(releases.served(), 2, "SHA256SUMS and the archive");

    // The run step, with the installed binary first on PATH.
    std::fs::remove_file(runner.path("github_output")).unwrap();
    let path = format!("{}:{}", cache.display(), std::env::var("PATH").unwrap());
    let manifests = env.manifests();
    let state = env.state_dir().display().to_string();
    let plan = runner.script(
        "run.sh",
        &[
            ("PATH", &path),
            ("XMETA_COMMAND", "plan"),
            ("XMETA_PATHS", &manifests),
            ("XMETA_ARGS", "--price-per-request 0.01"),
            ("XMETA_STATE_DIR", &state),
        ],
    );
    let first_plan = started.elapsed();
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert_has(
        &String::from_utf8_lossy(&plan.stdout),
        "Plan: 3 to create, 0 to update, 0 to forget",
    );
    assert_eq!(
        runner.read("github_output"),
        "exitcode=2\nchanges=3\nrequests=3\ncost=0.03\n"
    );
    say(&format!(
        "action: archive {:.1} MB (debug build); download to first plan {} ms",
        archive.len() as f64 / 1e6,
        first_plan.as_millis()
    ));

    // A second install is the tool cache's: nothing downloaded.
    let again = runner.install(&releases.url, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_has(
        &String::from_utf8_lossy(&again.stdout),
        "from the tool cache",
    );
    assert_eq!(releases.served(), 2);
}

#[test]
fn the_action_refuses_what_it_cannot_verify() {
    let runner = Runner::new();
    let archive = b"not the archive SHA256SUMS describes".to_vec();
    let wrong = sums(&[(&asset(), b"the real archive")]);
    let good_sums = sums(&[(&asset(), &archive)]);
    let other_target = sums(&[("xmeta-v0.1.0-aarch64-apple-darwin.tar.gz", &archive)]);
    let case = |sums: &[u8], env: &[(&str, &str)]| {
        let releases = Releases::start(HashMap::from([
            (format!("/{VERSION}/{}", asset()), archive.clone()),
            (format!("/{VERSION}/SHA256SUMS"), sums.to_vec()),
        ]));
        let out = runner.install(&releases.url, env);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(runner.read("github_path"), "", "nothing put on PATH");
        let cached = std::fs::read_dir(runner.path("tool-cache"))
            .unwrap()
            .count();
        assert_eq!(cached, 0, "nothing in the tool cache");
        stderr(&out)
    };

    let mismatch = case(&wrong, &[]);
    assert_has(
        &mismatch,
        &format!(
            "::error title=xmeta install::checksum mismatch for {}: SHA256SUMS says {}",
            asset(),
            hex::encode(Sha256::digest(b"the real archive"))
        ),
    );
    assert_has(&mismatch, "refusing it");

    let missing = case(&other_target, &[]);
    assert_has(
        &missing,
        &format!(
            "release v0.1.0 has no {TARGET} asset: SHA256SUMS lists no {}",
            asset()
        ),
    );

    let arch = case(&good_sums, &[("RUNNER_ARCH", "ARM")]);
    assert_has(&arch, "xmeta has no release binary for Linux/ARM: there are Linux and macOS builds for X64 and ARM64");
    let windows = case(&good_sums, &[("RUNNER_OS", "Windows")]);
    assert_has(&windows, "no release binary for Windows/X64");

    let absent = case(&good_sums, &[("XMETA_VERSION", "v9.9.9")]);
    assert_has(&absent, "no release v9.9.9 at http://127.0.0.1:");
    assert_has(&absent, "(SHA256SUMS: HTTP 404)");

    // Not a tag: never part of a URL or a directory.
    let branch = case(&good_sums, &[("XMETA_VERSION", "../../etc")]);
    assert_has(&branch, "is not a release tag such as v0.1.0");
}

/// What `release.yml` publishes is what the action and `cargo binstall`
/// look for: the four targets, on runner images GitHub offers (not the
/// retired macos-13), every build finishing, the archive layout the
/// test above packs, and an attestation pinned to a commit.
#[test]
fn the_release_workflow_publishes_what_the_action_downloads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/github-actions/release.yml")).unwrap();
    let release: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let strategy = &release["jobs"]["build"]["strategy"];
    assert_eq!(strategy["fail-fast"].as_bool(), Some(false));
    let builds: Vec<(String, String)> = strategy["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["os"].as_str().unwrap().to_string(),
                b["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let targets: Vec<&str> = builds.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "aarch64-apple-darwin",
            "x86_64-apple-darwin"
        ]
    );
    // GitHub-hosted images offered today (macos-13 was retired in 2025).
    for (os, _) in &builds {
        assert!(
            ["ubuntu-24.04", "ubuntu-24.04-arm", "macos-15"].contains(&os.as_str()),
            "{os}"
        );
    }
    // The layout `pack` above builds, and SHA256SUMS over the archives.
    assert_has(&text, r#"name="xmeta-$TAG-$TARGET""#);
    assert_has(&text, r#"tar -czf "dist/$name.tar.gz" -C stage "$name""#);
    assert_has(
        &text,
        "sha256sum ./*.tar.gz | sed 's|  \\./|  |' > SHA256SUMS",
    );
    assert_has(
        &text,
        "uses: actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32 # v4.1.0",
    );
    // The action's names for each target, and binstall's.
    let install = std::fs::read_to_string(root.join("action/install.sh")).unwrap();
    for target in &targets {
        assert_has(&install, &format!(") target={target} ;;"));
    }
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert_has(
        &cargo,
        r#"pkg-url = "{ repo }/releases/download/v{ version }/{ name }-v{ version }-{ target }.tar.gz""#,
    );
    assert_has(
        &cargo,
        r#"bin-dir = "{ name }-v{ version }-{ target }/{ bin }{ binary-ext }""#,
    );
}

/// A GitHub REST API on loopback, just the issue comments: what the
/// action's `comment: true` reads and writes, and every request it got.
struct GitHubApi {
    url: String,
    comments: Arc<std::sync::Mutex<Vec<(u64, String, String)>>>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl GitHubApi {
    fn start(comments: Vec<(u64, &str, &str)>) -> GitHubApi {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let comments = Arc::new(std::sync::Mutex::new(
            comments
                .into_iter()
                .map(|(id, login, body)| (id, login.to_string(), body.to_string()))
                .collect::<Vec<_>>(),
        ));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (held, seen) = (comments.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                let (mut length, mut auth) = (0, String::new());
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                    let lower = header.to_ascii_lowercase();
                    if let Some(n) = lower.strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap();
                    }
                    if lower.starts_with("authorization:") {
                        auth = header.trim().to_string();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut words = request.split_whitespace();
                let (method, target) = (words.next().unwrap(), words.next().unwrap());
                seen.lock()
                    .unwrap()
                    .push(format!("{method} {target} ({auth})"));
                let mut comments = held.lock().unwrap();
                let text = |body: &[u8]| -> String {
                    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
                    v["body"].as_str().unwrap().to_string()
                };
                let (status, reply) = match (method, target) {
                    ("GET", t)
                        if t.starts_with("/repos/o/r/issues/7/comments?per_page=100&page=") =>
                    {
                        let page: usize = t.rsplit('=').next().unwrap().parse().unwrap();
                        let list: Vec<serde_json::Value> = comments
                            .iter()
                            .skip((page - 1) * 100)
                            .take(100)
                            .map(|(id, login, body)| serde_json::json!({"id": id, "user": {"login": login}, "body": body}))
                            .collect();
                        ("200 OK", serde_json::Value::from(list).to_string())
                    }
                    ("POST", "/repos/o/r/issues/7/comments") => {
                        let id = comments.iter().map(|c| c.0).max().unwrap_or(0) + 1;
                        comments.push((id, "github-actions[bot]".into(), text(&body)));
                        ("201 Created", format!("{{\"id\": {id}}}"))
                    }
                    ("PATCH", t) if t.starts_with("/repos/o/r/issues/comments/") => {
                        let id: u64 = t.rsplit('/').next().unwrap().parse().unwrap();
                        let c = comments.iter_mut().find(|c| c.0 == id).unwrap();
                        c.2 = text(&body);
                        ("200 OK", format!("{{\"id\": {id}}}"))
                    }
                    ("DELETE", t) if t.starts_with("/repos/o/r/issues/comments/") => {
                        let id: u64 = t.rsplit('/').next().unwrap().parse().unwrap();
                        comments.retain(|c| c.0 != id);
                        ("204 No Content", String::new())
                    }
                    _ => ("404 Not Found", "{}".to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        GitHubApi {
            url,
            comments,
            requests,
        }
    }

    fn requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    fn comments(&self) -> Vec<(u64, String, String)> {
        self.comments.lock().unwrap().clone()
    }
}

#[test]
fn the_action_comments_the_plan_by_marker() {
    let runner = Runner::new();
    let api = GitHubApi::start(vec![
        (
            1,
            "someone",
            "<!-- xmeta-plan part 1 --> not ours: left alone",
        ),
        (
            2,
            "github-actions[bot]",
            "<!-- xmeta-plan part 2 -->\nan older, longer plan",
        ),
        (3, "github-actions[bot]", "another bot comment"),
    ]);
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..3, "v1"));
    std::fs::write(
        runner.path("event.json"),
        r#"{"pull_request": {"number": 7}}"#,
    )
    .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_xmeta")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let (manifests, state) = (env.manifests(), env.state_dir().display().to_string());
    let event = runner.path("event.json").display().to_string();
    let summary = runner.path("step_summary").display().to_string();
    let comment = || {
        runner.script(
            "run.sh",
            &[
                ("PATH", &path),
                ("XMETA_COMMAND", "plan"),
                ("XMETA_PATHS", &manifests),
                ("XMETA_COMMENT", "true"),
                ("XMETA_STATE_DIR", &state),
                ("GITHUB_TOKEN", "t0ken"),
                ("GITHUB_REPOSITORY", "o/r"),
                ("GITHUB_EVENT_PATH", &event),
                ("GITHUB_API_URL", &api.url),
                ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
                ("GITHUB_RUN_ID", "42"),
                ("GITHUB_STEP_SUMMARY", &summary),
            ],
        )
    };

    let first = comment();
    assert!(first.status.success(), "{}", stderr(&first));
    let auth = "(Authorization: Bearer t0ken)";
    assert_eq!(
        api.requests(),
        [
            format!("GET /repos/o/r/issues/7/comments?per_page=100&page=1 {auth}"),
            format!("GET /repos/o/r/issues/7/comments?per_page=100&page=2 {auth}"),
            format!("POST /repos/o/r/issues/7/comments {auth}"),
            format!("DELETE /repos/o/r/issues/comments/2 {auth}"),
        ]
    );
    let comments = api.comments();
    assert_eq!(comments.len(), 3, "{comments:?}");
    assert_eq!(
        comments[0].2,
        "<!-- xmeta-plan part 1 --> not ours: left alone"
    );
    assert_eq!(comments[1].2, "another bot comment");
    let posted = &comments[2].2;
    assert!(
        posted.starts_with("<!-- xmeta-plan part 1 -->\nPlan of commit `0123456789ab` · [workflow run](https://github.com/o/r/actions/runs/42)\n\n"),
        "{posted}"
    );
    assert_has(posted, "Plan: 3 to create, 0 to update, 0 to forget");
    assert_has(&runner.read("step_summary"), "Plan: 3 to create");
    assert_has(&runner.read("github_output"), "exitcode=2\nchanges=3\n");

    // The next plan updates that comment in place.
    env.write("manifests/a.yaml", &manifest(0..4, "v1"));
    let second = comment();
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        api.requests(),
        [
            format!("GET /repos/o/r/issues/7/comments?per_page=100&page=1 {auth}"),
            format!("GET /repos/o/r/issues/7/comments?per_page=100&page=2 {auth}"),
            format!("PATCH /repos/o/r/issues/comments/4 {auth}"),
        ]
    );
    assert_has(&api.comments()[2].2, "Plan: 4 to create");
}
