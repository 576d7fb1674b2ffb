//! One text sink: alt text from a pull request or from X's own answer
//! reaches the terminal, a markdown comment and JSON only neutralised, so
//! it cannot clear a screen or reorder what a reviewer reads.

use serde_json::Value;

use crate::support::*;

const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n";
/// Clears the screen, then reverses what follows it.
const HOSTILE: &str = "a cat \u{1b}[2J on a mat \u{202e}txet neddih";

/// Media 42 with this alt text, a photo (so `--refresh` can read it back).
fn manifest_with(alt: &str) -> String {
    let quoted = serde_json::to_string(alt).unwrap();
    format!("{HEAD}  - id: \"42\"\n    type: photo\n    metadata:\n      alt_text: {{text: {quoted}}}\n")
}

#[track_caller]
fn assert_raw_free(what: &str, text: &str) {
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{what} holds a raw ESC or U+202E:\n{}",
        text.escape_debug()
    );
}

#[test]
fn alt_text_reaches_plans_and_history_only_neutralised() {
    let emu = Emulator::start(TOKEN, Faults::default());
    let env = TestEnv::new().against(&emu);
    env.write("manifests/a.yaml", &manifest_with("a cat on a mat"));
    env.exits_with(&["apply", "manifests", "--auto-approve"], 0);

    // From a pull request: the word diff and the YAML diff, in both forms.
    env.write("manifests/a.yaml", &manifest_with(HOSTILE));
    let text = env.exits_with(&["plan", "manifests"], 0).stdout;
    assert_has(&text, "alt text, word by word:");
    assert_raw_free("the text plan", &text);
    assert_has(&text, "\\u202etxet");
    let markdown = env
        .exits_with(&["plan", "manifests", "--format", "markdown"], 0)
        .stdout;
    // The review table's row holds the word diff.
    assert_has(
        &markdown,
        "| update | `alt_text` | a cat **\\\\u001b\\[2J** on a mat",
    );
    assert_raw_free("the markdown plan", &markdown);

    // In the audit trail as JSON: escaped bytes, the same string parsed.
    env.exits_with(&["apply", "manifests", "--auto-approve"], 0);
    let json = env
        .exits_with(&["state", "history", "--format", "json"], 0)
        .stdout;
    assert_raw_free("state history --format json", &json);
    assert_has(&json, "\\u202etxet");
    let entries: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(entries[0]["fields"]["alt_text"]["after"]["text"], HOSTILE);

    // From X's own answer: drift read back under `--refresh`.
    env.write("manifests/a.yaml", &manifest_with("a cat on a mat"));
    emu.set_alt_text_outside("42", Some(HOSTILE));
    for format in ["text", "markdown"] {
        let plan = env
            .exits_with(&["plan", "manifests", "--refresh", "--format", format], 0)
            .stdout;
        // The word diff: a line of the text plan, the row of the markdown's.
        let words = if format == "text" {
            "alt text, word by word: a cat [-\\u001b[2J-] on a mat"
        } else {
            "| update | `alt_text` | <img src=\"https://pbs.twimg.com/media/42.jpg\" width=\"64\" alt=\"\"> a cat ~~\\\\u001b\\[2J~~ on a mat"
        };
        assert_has(&plan, words);
        assert_raw_free(&format!("the {format} plan under --refresh"), &plan);
    }
}
