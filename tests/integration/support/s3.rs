//! A real S3-compatible server for the bucket-state tests: moto's server
//! (`PyPI` `moto[server]`, pinned and installed by `.ci/run`), started on
//! loopback. One shared server serves the tests that run on every backend
//! (`on_both_backends!`); a test that stops its server starts its own.
//!
//! `XMETA_TEST_MOTO_SERVER` names the `moto_server` program (`.ci/run`
//! sets it): set but not starting is a failure, never a skip. Unset, the
//! CI tool cache is tried, and without it the S3 variants are skipped
//! with a line on the terminal. Self-contained: `benches/perf.rs` uses it
//! too.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The bucket every test's prefix lives in.
pub const BUCKET: &str = "xmeta-tests";
/// Credentials moto accepts; a test checks that they are never shown.
pub const ACCESS_KEY: &str = "AKIAXMETATESTKEY0001";
pub const SECRET_KEY: &str = "xmeta-test-secret-Qw3rTy9";

/// Starts moto's server through its public `ThreadedMotoServer`, whose
/// `start` returns once the socket listens, on a port the system picks;
/// then says the port on stdout (the event the tests wait on: no polling,
/// and no port chosen here that another process could take meanwhile).
/// The parent-death signal kills the server when the test process ends,
/// even on a panic: it is tied to the thread that started it, which for
/// the shared server never ends before the process does.
const WRAPPER: &str = "import ctypes, signal, threading\n\
ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n\
from moto.server import ThreadedMotoServer\n\
server = ThreadedMotoServer('127.0.0.1', 0, verbose=False)\n\
server.start()\n\
print(server.get_host_and_port()[1], flush=True)\n\
threading.Event().wait()";

pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    /// The server's request log (one line per request).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

fn program(test: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("XMETA_TEST_MOTO_SERVER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "XMETA_TEST_MOTO_SERVER is set but `{}` is not there (.ci/run installs it)",
            path.display()
        );
        return Some(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let path = cache.join("xmeta-ci/venv/bin/moto_server");
    if path.is_file() {
        return Some(path);
    }
    // Past the test harness's capture, as `support::say`.
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipped {test} on S3: no moto_server (run .ci/run once, or set XMETA_TEST_MOTO_SERVER)"
    );
    None
}

impl S3Server {
    /// A server of this test's own (stopped when dropped), or `None`
    /// (skipped, said on the terminal) when moto is not installed.
    pub fn start(test: &str) -> Option<S3Server> {
        let program = program(test)?;
        Some(S3Server::start_with(&program))
    }

    fn start_with(program: &Path) -> S3Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("requests.log");
        // The `moto_server` program's own environment.
        let python = program.with_file_name("python");
        let mut child = Command::new(&python)
            .args(["-c", WRAPPER])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        // The port line, read on a thread so that the wait has a bound.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let said = rx.recv_timeout(Duration::from_mins(1)).unwrap_or_default();
        let port: u16 = said.trim().parse().unwrap_or_else(|_| {
            panic!(
                "moto did not start (it said {said:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let server = S3Server {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        let status = server.http("PUT", &format!("/{BUCKET}"));
        assert!(status == 200, "moto did not create the bucket: {status}");
        server
    }

    /// The server every test of this process shares, or `None` (skipped).
    pub fn shared(test: &str) -> Option<&'static S3Server> {
        static SHARED: OnceLock<Option<S3Server>> = OnceLock::new();
        let program = program(test)?;
        SHARED
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::channel();
                // Never ends: the server's parent-death signal follows it.
                std::thread::spawn(move || {
                    let _ = tx.send(S3Server::start_with(&program));
                    loop {
                        std::thread::park();
                    }
                });
                Some(rx.recv().expect("moto_server started"))
            })
            .as_ref()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment an xmeta run needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// One request (moto checks no signature); the status.
    pub fn http(&self, method: &str, path: &str) -> u16 {
        self.request(method, path, b"").0
    }

    /// One request with a body; the status and the body.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        // moto checks no signature, but an anonymous read of a private
        // object is refused: the header names the test's access key.
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| response[at + 4..].to_vec())
            .unwrap_or_default();
        (status, body)
    }

    /// The object's bytes, or `None`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.request("GET", &format!("/{BUCKET}/{key}"), b"") {
            (200, body) => Some(body),
            _ => None,
        }
    }

    pub fn put(&self, key: &str, body: &[u8]) {
        let (status, _) = self.request("PUT", &format!("/{BUCKET}/{key}"), body);
        assert_eq!(status, 200, "PUT {key}");
    }

    /// The keys under `prefix` (from a `ListObjectsV2`).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (_, body) = self.request(
            "GET",
            &format!("/{BUCKET}?list-type=2&prefix={prefix}"),
            b"",
        );
        let text = String::from_utf8_lossy(&body);
        text.split("<Key>")
            .skip(1)
            .filter_map(|part| part.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    /// The requests logged so far, as `METHOD path` lines.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let quoted = line.split('"').nth(1)?;
                let mut words = quoted.split_whitespace();
                Some(format!("{} {}", words.next()?, words.next()?))
            })
            .collect()
    }

    /// Stops the server at once (a store that went away mid-run).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
