//! Bad input: a clear error with <file:line:column>, exit 1, nothing sent,
//! the state untouched.

use crate::support::*;

const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\n";

/// Runs validate, plan and apply on a broken tree; every one must exit 1
/// naming `expect` and send nothing.
fn assert_refused(env: &TestEnv, emu: &Emulator, expect: &[&str]) {
    let before = env.state_fingerprint();
    for args in [
        vec!["validate"],
        vec!["plan"],
        vec!["apply", "--auto-approve"],
    ] {
        let mut args = args.clone();
        let m = env.manifests();
        args.push(&m);
        let run = env.exits_with(&args, 1);
        for e in expect {
            assert!(
                run.stderr.contains(e),
                "{args:?}: expected `{e}` in\n{}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert_eq!(emu.request_count(), 0);
    assert_eq!(env.state_fingerprint(), before, "state unchanged");
}

fn case(file: &str, text: &str, expect: &[&str]) {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    // A valid applied media first, so "state unchanged" means something.
    env.write("manifests/ok.yaml", &manifest(0..2, "v1"));
    env.exits_with(&["apply", &env.manifests(), "--auto-approve"], 0);
    emu.clear_requests();
    env.write(&format!("manifests/{file}"), text);
    assert_refused(&env, &emu, expect);
}

#[test]
fn unknown_field_with_suggestion() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"1\"\n    metadata:\n      alt_txt: {{text: hi}}\n"),
        &[
            "bad.yaml:6:7:",
            "unknown field `alt_txt`",
            "did you mean `alt_text`?",
        ],
    );
}

#[test]
fn invalid_id() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"12ab\"\n"),
        &["bad.yaml:4:9:", "must be 1 to 19 digits"],
    );
}

#[test]
fn alt_text_too_long() {
    let long = "é".repeat(1001);
    case(
        "bad.yaml",
        &format!(
            "{HEAD}media:\n  - id: \"1\"\n    metadata:\n      alt_text: {{text: \"{long}\"}}\n"
        ),
        &["bad.yaml:6:24:", "1001 characters long; the limit is 1000"],
    );
}

#[test]
fn missing_required_inner_field() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"1\"\n    metadata:\n      found_media_origin: {{provider: giphy}}\n"),
        &["bad.yaml:6:27:", "missing required field `id` in `media[0].metadata.found_media_origin`"],
    );
}

#[test]
fn wrong_type() {
    case(
        "bad.yaml",
        &format!(
            "{HEAD}media:\n  - id: \"1\"\n    metadata:\n      shared_info: {{shared: \"yes\"}}\n"
        ),
        &[
            "bad.yaml:6:29:",
            "`media[0].metadata.shared_info.shared` must be a boolean",
        ],
    );
}

#[test]
fn yaml_syntax_error() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"1\"\n    metadata: {{alt_text: [\n"),
        &["bad.yaml:", "YAML syntax error"],
    );
}

#[test]
fn three_letter_country_code() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"1\"\n    metadata:\n      geo_restrictions:\n        whitelisted_country_codes: [us, usa]\n"),
        &["bad.yaml:7:41:", "`usa`", "not a country code"],
    );
}

#[test]
fn wrong_api_version() {
    case(
        "bad.yaml",
        "apiVersion: xmeta/v2\nkind: MediaMetadata\nmedia: []\n",
        &["bad.yaml:1:13:", "`apiVersion` must be `xmeta/v1`"],
    );
}

#[test]
fn duplicate_id_across_files_names_both() {
    case(
        "zz-dup.yaml",
        &format!("{HEAD}media:\n  - id: \"{}\"\n", media_id(1)),
        &["zz-dup.yaml:4:5:", "declared twice", "ok.yaml:"],
    );
}

#[test]
fn every_error_of_every_file_is_reported() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}media:\n  - id: x\n  - id: \"2\"\n    metadata: {{shared_info: {{}}}}\n"),
    );
    env.write(
        "manifests/b.yaml",
        "apiVersion: xmeta/v1\nkind: Media\nmedia: []\n",
    );
    let run = env.exits_with(&["validate", &env.manifests()], 1);
    assert_has(&run.stderr, "a.yaml:4:9:");
    assert_has(&run.stderr, "a.yaml:6:29:");
    assert_has(&run.stderr, "b.yaml:2:7:");
    assert_has(&run.stderr, "3 errors in the manifests");
}

/// A structure written as a list was read field by field by the fast
/// path (`alt_text: [x]` as the alt text "x") and sent.
#[test]
fn a_structure_written_as_a_list() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"1\"\n    metadata:\n      alt_text: [x]\n"),
        &[
            "bad.yaml:6:17:",
            "`media[0].metadata.alt_text` must be a mapping, found a list",
        ],
    );
}

/// An empty exemption was read as none by the fast path.
#[test]
fn an_empty_lint_exemption() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"1\"\n    lint: ~\n"),
        &[
            "bad.yaml:5:11:",
            "`media[0].lint` must be a mapping, found nothing (null)",
        ],
    );
}

/// The YAML parser ends its input at a NUL: what followed was left out.
#[test]
fn a_nul_character() {
    case(
        "bad.yaml",
        &format!("{HEAD}media:\n  - id: \"1\"\n\0  - id: \"2\"\n"),
        &[
            "bad.yaml:5:1:",
            "the file holds a NUL character (U+0000), which YAML does not allow",
        ],
    );
}
