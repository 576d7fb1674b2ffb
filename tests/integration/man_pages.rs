//! `xmeta man --dir` writes a page per subcommand that `mandoc -Tlint`
//! accepts, with the sections a reader looks for; completion scripts offer
//! each flag only where it applies, and `--field`'s values.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::*;

/// mandoc is installed by `.ci/run` (Debian package `mandoc`); missing,
/// the test fails rather than skipping.
fn mandoc_lint(page: &std::path::Path) -> String {
    let out = Command::new("mandoc")
        .args(["-Tlint"])
        .arg(page)
        .output()
        .expect("mandoc is required (apt-get install mandoc; .ci/run installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn man_writes_a_lint_clean_page_per_subcommand() {
    let env = TestEnv::new();
    std::fs::create_dir(env.path("man")).unwrap();
    let run = env.exits_with(&["man", "--dir", "man"], 0);
    let written: Vec<&str> = run.stdout.lines().collect();
    let files: BTreeSet<String> = std::fs::read_dir(env.path("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written.len(), files.len(), "{}", run.stdout);
    for wanted in [
        "xmeta.1",
        "xmeta-plan.1",
        "xmeta-schema.1",
        "xmeta-state-history.1",
    ] {
        assert!(files.contains(wanted), "{wanted} in {files:?}");
    }
    assert!(!files.contains("xmeta-help.1"), "{files:?}");

    for file in &files {
        let path = env.path("man").join(file);
        let page = std::fs::read_to_string(&path).unwrap();
        assert_eq!(mandoc_lint(&path), "", "mandoc -Tlint {file}");
        for section in [
            ".SH SYNOPSIS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH \"SEE ALSO\"",
        ] {
            assert_has(&page, section);
        }
        // Every page a page names exists.
        for word in page.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(name) = word.strip_suffix("(1)") {
                let name = name.replace("\\-", "-");
                assert!(files.contains(&format!("{name}.1")), "{file} names {word}");
            }
        }
    }
    let page = |name: &str| std::fs::read_to_string(env.path("man").join(name)).unwrap();
    let plan = page("xmeta-plan.1");
    assert_has(
        &plan,
        "\\fB2\\fR\nWith \\-\\-detailed\\-exitcode: changes are present.",
    );
    assert_has(
        &plan,
        ".SH EXAMPLES\n$ xmeta plan manifests/ \\-\\-detailed\\-exitcode\n",
    );
    assert_has(&plan, "\\fBXMETA_BEARER_TOKEN\\fR");
    assert_has(&plan, "\\fB\\-\\-state\\fR");
    let schema = page("xmeta-schema.1");
    assert!(!schema.contains("\\-\\-state"), "{schema}");
    assert!(!schema.contains("XMETA_BEARER_TOKEN"), "{schema}");
    assert_has(&page("xmeta.1"), "xmeta\\-plan(1)");
    assert_has(&page("xmeta-state-history.1"), "alt_text");

    // Without --dir: xmeta.1 on stdout, as before.
    let one = env.exits_with(&["man"], 0);
    assert_eq!(one.stdout, page("xmeta.1"));
}

#[test]
fn completions_offer_each_flag_only_where_it_applies() {
    let env = TestEnv::new();
    let bash = env.exits_with(&["completions", "bash"], 0).stdout;
    let opts = |case: &str| -> Vec<String> {
        let at = bash
            .find(&format!("        {case})\n"))
            .unwrap_or_else(|| panic!("{case}"));
        let line = bash[at..].lines().nth(1).unwrap();
        line.trim()
            .trim_start_matches("opts=\"")
            .trim_end_matches('"')
            .split(' ')
            .map(str::to_string)
            .collect()
    };
    let has = |case: &str, flag: &str| opts(case).iter().any(|o| o == flag);
    for case in [
        "xmeta__subcmd__schema",
        "xmeta__subcmd__completions",
        "xmeta__subcmd__man",
    ] {
        for flag in [
            "--state",
            "--workspace",
            "--allow-empty",
            "--actor",
            "--color",
        ] {
            assert!(!has(case, flag), "{case} offers {flag}: {:?}", opts(case));
        }
    }
    for case in ["xmeta__subcmd__validate", "xmeta__subcmd__lint"] {
        assert!(!has(case, "--state"), "{case}: {:?}", opts(case));
        assert!(has(case, "--allow-empty"), "{case}: {:?}", opts(case));
    }
    for case in [
        "xmeta__subcmd__plan",
        "xmeta__subcmd__apply",
        "xmeta__subcmd__state__subcmd__history",
    ] {
        assert!(has(case, "--state"), "{case}: {:?}", opts(case));
    }
    assert!(!has("xmeta__subcmd__state__subcmd__list", "--allow-empty"));

    // `state history --field` completes the 13 field names.
    let at = bash.find("xmeta__subcmd__state__subcmd__history)").unwrap();
    let field = &bash[at..][bash[at..].find("--field)").unwrap()..];
    let words = field.lines().nth(1).unwrap();
    for name in [
        "allow_download_status",
        "alt_text",
        "sticker_info",
        "upload_source",
    ] {
        assert_has(words, name);
    }
    assert_eq!(
        words
            .split_whitespace()
            .filter(|w| w.contains('_') && !w.contains('$'))
            .count(),
        13,
        "{words}"
    );

    // A flag hidden where it does nothing still parses there, as before.
    env.exits_with(&["schema", "manifest", "--color", "never"], 0);
}
