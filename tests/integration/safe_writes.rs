//! `--out` writes a new file or replaces a regular one, and nothing else:
//! a device, a FIFO, a socket, a directory or a symlink at the target is
//! refused and left as it was.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::support::*;

/// A character device like `/dev/null` (1:3), made in the test's own
/// directory: the test must never risk the machine's `/dev/null`. `None`
/// when not root.
fn null_device(at: &Path) -> Option<()> {
    let path = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; mknod only creates a node.
    let made = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    (made == 0).then_some(())
}

fn fifo(at: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(at)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `args` with `--out target` must exit 1, say why, and leave it alone.
#[track_caller]
fn refused(env: &TestEnv, args: &[&str], target: &Path, kind: &str) {
    let before = std::fs::symlink_metadata(target).unwrap().file_type();
    let target_text = target.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--out", &target_text]);
    let run = env.exits_with(&all, 1);
    assert_has(
        &run.stderr,
        &format!(
            "`{target_text}`: it is {kind}, not a regular file; name a new file or a regular one"
        ),
    );
    let after = std::fs::symlink_metadata(target).unwrap().file_type();
    assert_eq!(before, after, "{target_text} was replaced");
}

#[test]
fn out_refuses_a_target_that_is_not_a_regular_file() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["apply", "manifests", "--auto-approve"], 0);
    let plan = ["plan", "manifests"];
    let export = ["state", "export"];

    if null_device(&env.path("null")).is_some() {
        for args in [&plan[..], &export[..]] {
            refused(&env, args, &env.path("null"), "a character device");
        }
        assert!(std::fs::metadata(env.path("null"))
            .unwrap()
            .file_type()
            .is_char_device());
    } else {
        say("not root: the device case is skipped");
    }

    fifo(&env.path("pipe"));
    for args in [&plan[..], &export[..]] {
        refused(&env, args, &env.path("pipe"), "a FIFO");
    }
    assert!(std::fs::metadata(env.path("pipe"))
        .unwrap()
        .file_type()
        .is_fifo());

    std::fs::create_dir(env.path("dir")).unwrap();
    for args in [&plan[..], &export[..]] {
        refused(&env, args, &env.path("dir"), "a directory");
    }

    // A symlink is refused too: following it would let whoever made it
    // choose what is overwritten.
    env.write("victim", "untouched");
    std::os::unix::fs::symlink(env.path("victim"), env.path("link")).unwrap();
    for args in [&plan[..], &export[..]] {
        refused(&env, args, &env.path("link"), "a symlink");
    }
    assert_eq!(
        std::fs::read_to_string(env.path("victim")).unwrap(),
        "untouched"
    );

    // A new file, then a regular file replaced: both written.
    env.exits_with(&["plan", "manifests", "--out", "plan.json"], 0);
    env.exits_with(&["plan", "manifests", "--out", "plan.json"], 0);
    env.checked_plan(&std::fs::read_to_string(env.path("plan.json")).unwrap());
    env.exits_with(&["state", "export", "--out", "export.json"], 0);
    env.exits_with(&["state", "export", "--out", "export.json"], 0);
}
