//! The digest file beside a sled database (`digests.bin`): a plan reads
//! the digests from it and opens the database only for the records it
//! must read; a file that is not of the state the head describes (left
//! from before a write, damaged, or by a writer that died) is never used.

use crate::support::*;

const READ_FROM_FILE: &str = "the digests read from `digests.bin`: the database not opened";

fn plan(env: &TestEnv) -> Run {
    env.exits_with(&["-vv", "plan", &env.manifests()], 0)
}

/// The summary line of a plan's text.
fn summary(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.starts_with("Plan: ") || l.starts_with("No changes."))
        .unwrap_or_else(|| panic!("no summary in {}", run.stdout))
        .to_string()
}

fn adopted(variant: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write("manifests/m.yaml", &manifest(0..3, variant));
    env.exits_with(&["adopt", &env.manifests()], 0);
    env
}

#[test]
fn a_plan_takes_the_digests_from_the_file_and_reads_only_the_records_it_compares() {
    let env = adopted("v1");
    assert!(env.state_dir().join("digests.bin").is_file());
    let run = plan(&env);
    assert_has(&run.stderr, READ_FROM_FILE);
    assert_eq!(summary(&run), "No changes. 3 media match the manifests.");
    // One media edited: its record is read from the database, opened
    // only for it.
    env.write(
        "manifests/m.yaml",
        &manifest_with(0..3, |n| if n == 1 { "v2" } else { "v1" }),
    );
    let run = plan(&env);
    assert_has(&run.stderr, READ_FROM_FILE);
    assert_has(&run.stdout, "[-v1-] → {+v2+}");
    assert_eq!(
        summary(&run),
        "Plan: 0 to create, 1 to update, 0 to forget, 2 unchanged. 1 request."
    );
}

#[test]
fn a_file_older_than_the_head_is_not_used() {
    let env = adopted("v1");
    let file = env.state_dir().join("digests.bin");
    let before = std::fs::read(&file).unwrap();
    // Another writer: the state moves on, and its file with it.
    env.exits_with(&["state", "rm", &media_id(1)], 0);
    assert_ne!(std::fs::read(&file).unwrap(), before);
    let run = plan(&env);
    assert_has(&run.stderr, READ_FROM_FILE);
    assert_eq!(
        summary(&run),
        "Plan: 1 to create, 0 to update, 0 to forget, 2 unchanged. 1 request."
    );
    // The file of the serial before, put back: it would say media 1 is
    // still recorded. The database is asked instead.
    std::fs::write(&file, &before).unwrap();
    let run = plan(&env);
    assert!(!run.stderr.contains(READ_FROM_FILE), "{}", run.stderr);
    assert_has(&run.stderr, "`digests.bin` is of serial");
    assert_eq!(
        summary(&run),
        "Plan: 1 to create, 0 to update, 0 to forget, 2 unchanged. 1 request."
    );
}

#[test]
fn a_damaged_file_is_not_used() {
    let env = adopted("v1");
    let file = env.state_dir().join("digests.bin");
    let whole = std::fs::read(&file).unwrap();
    let cut = whole[..whole.len() - 1].to_vec();
    let mut longer = whole.clone();
    longer.push(b'\n');
    for damaged in [cut, longer, b"not digests".to_vec()] {
        std::fs::write(&file, &damaged).unwrap();
        let run = plan(&env);
        assert!(!run.stderr.contains(READ_FROM_FILE), "{}", run.stderr);
        assert_eq!(summary(&run), "No changes. 3 media match the manifests.");
    }
    // A link is not followed, even to the state's own file.
    std::fs::write(env.path("elsewhere.bin"), &whole).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(env.path("elsewhere.bin"), &file).unwrap();
    let run = plan(&env);
    assert!(!run.stderr.contains(READ_FROM_FILE), "{}", run.stderr);
}

/// A writer sets the file aside before it writes: one that dies leaves
/// no file a reader could take for current, and the next writer makes it
/// again from its database.
#[test]
fn a_writer_that_dies_leaves_no_file_to_trust() {
    let slow = Faults {
        latency: std::time::Duration::from_mins(10),
        ..Faults::default()
    };
    let emulator = Emulator::start(TOKEN, slow);
    let env = adopted("v1").against(&emulator);
    env.write("manifests/m.yaml", &manifest(0..3, "v2"));
    let mut apply = Killed(
        env.command(&["apply", &env.manifests(), "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let held = env.state_dir().join("digests.held");
    wait_until(
        std::time::Duration::from_mins(1),
        "the apply to set the digest file aside",
        || held.exists(),
    );
    apply.0.kill().unwrap();
    apply.0.wait().unwrap();
    assert!(!env.state_dir().join("digests.bin").exists());
    let run = plan(&env);
    assert!(!run.stderr.contains(READ_FROM_FILE), "{}", run.stderr);
    assert_eq!(
        summary(&run),
        "Plan: 0 to create, 3 to update, 0 to forget, 0 unchanged. 3 requests."
    );
    emulator.set_faults(Faults::default());
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    let run = plan(&env);
    assert_has(&run.stderr, READ_FROM_FILE);
    assert_eq!(summary(&run), "No changes. 3 media match the manifests.");
}

/// A writer that does not know the file (an older xmeta) rewrites the head
/// without naming it as it opens: if it then dies, or its writes are not
/// all flushed, the file must not pass for the state it left.
#[test]
fn a_head_that_does_not_name_the_file_leaves_it_unused() {
    let env = adopted("v1");
    let head_file = env.state_dir().join("head.json");
    let mut head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&head_file).unwrap()).unwrap();
    assert!(head["digests"].is_string(), "{head}");
    head.as_object_mut().unwrap().remove("digests");
    std::fs::write(&head_file, head.to_string()).unwrap();
    let run = plan(&env);
    assert!(!run.stderr.contains(READ_FROM_FILE), "{}", run.stderr);
    assert_has(&run.stderr, "the head names none: not used");
    assert_eq!(summary(&run), "No changes. 3 media match the manifests.");
}

/// Something else at the file's names (a directory left there) is no
/// damage: writers go on, and readers read the database.
#[test]
fn a_directory_at_the_files_names_stops_no_writer() {
    let env = adopted("v1");
    let dir = env.state_dir();
    std::fs::remove_file(dir.join("digests.bin")).unwrap();
    std::fs::create_dir_all(dir.join("digests.held").join("stray")).unwrap();
    std::fs::create_dir_all(dir.join("digests.bin").join("stray")).unwrap();
    let run = env.exits_with(&["state", "rm", &media_id(1)], 0);
    assert_has(&run.stderr, "cannot write `digests.bin`");
    let run = plan(&env);
    assert!(!run.stderr.contains(READ_FROM_FILE), "{}", run.stderr);
    assert_eq!(
        summary(&run),
        "Plan: 1 to create, 0 to update, 0 to forget, 2 unchanged. 1 request."
    );
    // Once the directory is gone, the next writer writes the file again.
    std::fs::remove_dir_all(dir.join("digests.bin")).unwrap();
    env.exits_with(&["state", "rm", &media_id(2)], 0);
    let run = plan(&env);
    assert_has(&run.stderr, READ_FROM_FILE);
    assert_eq!(
        summary(&run),
        "Plan: 2 to create, 0 to update, 0 to forget, 1 unchanged. 2 requests."
    );
}
