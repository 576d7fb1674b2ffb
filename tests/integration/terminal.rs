//! What a person at a terminal sees: the confirmation prompt and the
//! progress bar, through a real pseudo-terminal.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

/// A pseudo-terminal: the child's side (stdin and stderr) and ours, whose
/// output is collected as it comes.
struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let rc = unsafe {
            libc::openpty(
                &raw mut master,
                &raw mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &raw const size,
            )
        };
        assert_eq!(rc, 0, "openpty");
        let master = unsafe { std::fs::File::from_raw_fd(master) };
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child and we have closed the slave.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            slave,
            seen,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }
}

/// The prompt names what the budget will send, and the bar shows one
/// count (it showed `84/479 85 done`: two counts that disagreed).
#[test]
fn the_prompt_names_the_budget_and_the_bar_one_count() {
    let emu = Emulator::start(
        TOKEN,
        Faults {
            latency: Duration::from_millis(300),
            ..Faults::default()
        },
    );
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..5, "v1"));
    let mut pty = Pty::open();
    let child = env
        .command(&[
            "apply",
            &env.manifests(),
            "--max-requests",
            "3",
            "--concurrency",
            "1",
        ])
        .env_remove("TERM")
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    wait_until(Duration::from_secs(30), "the prompt", || {
        pty.text().contains("[y/N]")
    });
    assert_has(&pty.text(), "Apply 3 of 5 requests (budget)? [y/N] ");
    pty.master.write_all(b"y\n").unwrap();
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}\n{}", pty.text());
    assert_eq!(
        stdout.lines().last(),
        Some("Apply stopped at the budget: 3 applied, 0 failed, 2 remaining."),
        "{stdout}"
    );
    let shown = pty.text();
    assert!(shown.contains("/3"), "no bar frame out of 3:\n{shown:?}");
    assert!(!shown.contains(" done"), "a second count:\n{shown:?}");
}
