//! Validation reports every problem of every file in one run: a schema
//! error in a file does not hide its `key`, `type` and exemption errors,
//! nor a duplicate ID shared with another broken file.

use crate::support::*;

const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n";

#[test]
fn every_problem_of_every_file_in_one_run() {
    let env = TestEnv::new();
    env.write(
        "manifests/a.yaml",
        &format!(
            "{HEAD}  - id: \"1\"\n    metadata:\n      alt_txt: {{text: a cat}}\n  - id: \"2\"\n    key: 9_2\n  - id: \"3\"\n    type: movie\n  - id: \"4\"\n    lint: {{ignore: [alt-text/no-such-rule], reason: decorative}}\n  - id: \"5\"\n"
        ),
    );
    env.write(
        "manifests/b.yaml",
        &format!(
            "{HEAD}  - id: \"6\"\n    metadata:\n      alt_text: {{text: 123}}\n  - id: \"5\"\n"
        ),
    );
    let run = env.exits_with(&["validate", "manifests"], 1);
    insta::assert_snapshot!(run.stderr);
}
