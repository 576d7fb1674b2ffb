//! The markdown plan as GitHub shows it: rendered by cmarkgfm (GitHub's
//! fork of cmark, with its extensions), it must fit one comment, show what
//! a reviewer must see first, and hold no HTML or links that a file name,
//! a warning or an alt text smuggled in.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::*;

/// GitHub's limit for one comment.
const COMMENT_LIMIT: usize = 65_536;

/// The elements xmeta's markdown may produce once rendered.
const ALLOWED: &[&str] = &[
    "h3", "p", "strong", "em", "del", "code", "pre", "table", "thead", "tbody", "tr", "th", "td",
    "details", "summary", "ul", "li",
];

/// HTML from cmarkgfm with raw HTML passed through (as `--unsafe`), so
/// anything injected shows up as an element. `None` when python3 or
/// cmarkgfm is missing and `XMETA_REQUIRE_GFM` is not set (CI sets it).
fn render_gfm(test: &str, markdown: &str) -> Option<String> {
    let script = "import sys, cmarkgfm\nfrom cmarkgfm.cmark import Options\n\
                  sys.stdout.write(cmarkgfm.github_flavored_markdown_to_html(sys.stdin.read(), options=Options.CMARK_OPT_UNSAFE))";
    let child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let output = child.and_then(|mut c| {
        c.stdin.take().unwrap().write_all(markdown.as_bytes())?;
        c.wait_with_output()
    });
    match output {
        Ok(out) if out.status.success() => Some(String::from_utf8(out.stdout).unwrap()),
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var_os("XMETA_REQUIRE_GFM").is_none(),
                "cmarkgfm is required (XMETA_REQUIRE_GFM) but did not run: {why}"
            );
            say(&format!(
                "skipped {test}: needs python3 with cmarkgfm (pip install cmarkgfm)"
            ));
            None
        }
    }
}

/// Every element name in rendered HTML.
fn elements(html: &str) -> BTreeSet<String> {
    html.split('<')
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .trim_start_matches('/')
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            (!name.is_empty()).then(|| name.to_ascii_lowercase())
        })
        .collect()
}

fn assert_only_xmeta_elements(html: &str) {
    let found = elements(html);
    let extra: Vec<&String> = found
        .iter()
        .filter(|e| !ALLOWED.contains(&e.as_str()))
        .collect();
    assert!(extra.is_empty(), "injected elements {extra:?} in:\n{html}");
}

/// A manifest whose media `range` all expire in the past (one warning each).
fn expired(range: std::ops::Range<u64>) -> String {
    let media: Vec<_> = range
        .map(|n| {
            json!({"id": media_id(n), "metadata": {
                "alt_text": {"text": format!("Photo {n}")},
                "content_expiration": {"timestamp_sec": 1_000_000_000},
            }})
        })
        .collect();
    serde_yaml::to_string(
        &json!({"apiVersion": "xmeta/v1", "kind": "MediaMetadata", "media": media}),
    )
    .unwrap()
}

#[test]
fn a_large_plan_with_many_warnings_fits_one_comment() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(0..4000, "v1"));
    env.write("manifests/b.yaml", &expired(4000..5000));
    let run = env.exits_with(&["plan", &env.manifests(), "--format", "markdown"], 0);
    let md = &run.stdout;
    assert_has(md, "**Plan: 5000 to create");
    assert_has(md, "<details><summary>⚠️ Warnings: 10");
    assert_has(md, "more; run `xmeta plan` to see them all.");
    let chars = md.chars().count();
    assert!(chars <= COMMENT_LIMIT - 1_000, "{chars} characters");
    if let Some(html) = render_gfm(
        "pr_comment::a_large_plan_with_many_warnings_fits_one_comment",
        md,
    ) {
        assert_only_xmeta_elements(&html);
        assert!(html.contains("<table>"), "the table renders");
    }
}

#[test]
fn updates_and_forgets_come_before_a_thousand_creates() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &manifest(5000..5003, "v1"));
    env.exits_with(&["adopt", &env.manifests()], 0);
    // Media 5000 and 5001 change, 5002 leaves the manifests, and 1,000 with
    // lower IDs are new: in ID order the creates would fill the comment.
    env.write("manifests/a.yaml", &manifest(5000..5002, "v2"));
    env.write("manifests/b.yaml", &manifest(0..1000, "v1"));
    let run = env.exits_with(&["plan", &env.manifests(), "--format", "markdown"], 0);
    let md = &run.stdout;
    assert_has(md, "**Plan: 1000 to create, 2 to update, 1 to forget");
    assert_has(md, "Fields sent: `alt_text` ×1002");
    for n in [5000, 5001] {
        assert_has(md, &format!("| `{}` | update | `alt_text` |", media_id(n)));
        assert_has(
            md,
            &format!("<details><summary>~ media {} will be updated", media_id(n)),
        );
    }
    assert_has(md, &format!("| `{}` | forget |", media_id(5002)));
    let first_create = md.find("| create |").unwrap();
    assert!(md.find("| update |").unwrap() < first_create);
    assert!(md.find("| forget |").unwrap() < first_create);
    // The word diff of the alt text.
    assert_has(md, "Alt text, word by word: Photo 5000\\: ~~v1~~**v2**");
    if let Some(html) = render_gfm(
        "pr_comment::updates_and_forgets_come_before_a_thousand_creates",
        md,
    ) {
        assert_only_xmeta_elements(&html);
        assert_has(&html, "<del>v1</del><strong>v2</strong>");
    }
}

#[test]
fn hostile_names_and_alt_text_render_as_text() {
    let env = TestEnv::new();
    let evil_text =
        "<img src=x onerror=alert(1)> [click](http://evil.example) **bold** </details> cc @nasa #12";
    let doc = |text: &str, expiry: u64| {
        serde_yaml::to_string(
            &json!({"apiVersion": "xmeta/v1", "kind": "MediaMetadata", "media": [
                {"id": media_id(1), "metadata": {"alt_text": {"text": text}}},
                {"id": media_id(2), "metadata": {
                    "alt_text": {"text": "A quiet harbour at dawn"},
                    "content_expiration": {"timestamp_sec": expiry},
                }},
            ]}),
        )
        .unwrap()
    };
    let name = "manifests/0 <details><summary>[x](javascript:alert(1)) `y`.yaml";
    env.write(name, &doc("A plain description of a boat", 4_102_444_800));
    env.exits_with(&["adopt", &env.manifests()], 0);
    // An update with hostile alt text, an untracked-only change, and an
    // expiry in the past (a warning that names the hostile file).
    std::fs::write(
        env.path(name),
        serde_yaml::to_string(
            &json!({"apiVersion": "xmeta/v1", "kind": "MediaMetadata", "media": [
                {"id": media_id(1), "metadata": {"alt_text": {"text": evil_text}}},
                {"id": media_id(2), "metadata": {"alt_text": {"text": "A quiet harbour at dawn"}}},
                {"id": media_id(3), "metadata": {
                    "alt_text": {"text": "Old poster"},
                    "content_expiration": {"timestamp_sec": 1_000_000_000},
                }},
            ]}),
        )
        .unwrap(),
    )
    .unwrap();
    let run = env.exits_with(&["plan", &env.manifests(), "--format", "markdown"], 0);
    let md = &run.stdout;
    // Mentions and references notify no one (a word joiner after @ and #).
    assert_has(md, "**@\u{2060}nasa**");
    assert_has(md, "**#\u{2060}12**");
    // Stopping to track a field is a sentence, not an empty diff.
    assert!(!md.contains("@@ -0,0 +1,0 @@"), "{md}");
    assert_has(md, "field \\`content\\_expiration\\` is no longer declared");
    // Epoch seconds come with their date.
    assert_has(md, "timestamp_sec: 1000000000  # 2001-09-09T01:46:40Z");
    // Validation failures reach the pull request too.
    env.write("manifests/1 <img src=x onerror=alert(1)>.yaml", "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"5\"\n    metadata: {alt_txt: {text: x}}\n");
    let invalid = env.exits_with(&["plan", &env.manifests(), "--format", "markdown"], 1);
    assert_has(
        &invalid.stdout,
        "**The manifests do not validate: 1 error; nothing was planned.**",
    );
    assert_has(&invalid.stdout, "unknown field");

    let test = "pr_comment::hostile_names_and_alt_text_render_as_text";
    for md in [md, &invalid.stdout] {
        if let Some(html) = render_gfm(test, md) {
            assert_only_xmeta_elements(&html);
            assert!(!html.contains("href"), "no links: {html}");
        }
    }
}
