//! Lint findings at pull-request size, through the binary: plans and
//! `validate` show the most severe findings first, grouped and counted by
//! rule and level; SARIF that GitHub code scanning accepts (complete
//! rules, stable fingerprints, the 25,000-result cap, paths from the
//! repository root); annotations capped as GitHub shows them; the rules
//! listed and explained; unused exemptions and duplicates' other place.

use serde_json::Value;

use crate::support::*;

const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n";

fn entry(id: u32, alt: &str) -> String {
    format!(
        "  - id: \"{id}\"\n    metadata:\n      alt_text: {{text: {}}}\n",
        serde_json::to_string(alt).unwrap()
    )
}

/// `warnings` whitespace warnings first in the file, then `errors` file-name
/// errors: in file order the warnings would fill what a plan shows.
fn warnings_then_errors(warnings: u32, errors: u32) -> String {
    let mut text = HEAD.to_string();
    for i in 0..warnings {
        text.push_str(&entry(
            1000 + i,
            &format!("A red bicycle  leaning on wall number {i}"),
        ));
    }
    for i in 0..errors {
        text.push_str(&entry(5000 + i, &format!("IMG_{i}.JPG")));
    }
    text
}

fn lint_lines(output: &str) -> Vec<&str> {
    output.lines().filter(|l| l.contains("alt-text")).collect()
}

#[test]
fn plans_and_validate_show_errors_first_grouped_and_counted() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &warnings_then_errors(60, 55));
    let validate = env.exits_with(&["validate", "manifests"], 0);
    let lines = lint_lines(&validate.stdout);
    assert_eq!(lines[0], "error: alt-text/filename: 55 errors");
    assert_eq!(lines[1], "warning: alt-text/whitespace: 60 warnings");
    // The 50 shown are errors, labelled so, in file order.
    let shown: Vec<&&str> = lines.iter().filter(|l| l.contains("[alt-text/")).collect();
    assert_eq!(shown.len(), 50);
    assert!(
        shown
            .iter()
            .all(|l| l.contains(": error[alt-text/filename]: ")),
        "{shown:#?}"
    );
    assert!(
        shown[0].starts_with("manifests/a.yaml:184:5: error[alt-text/filename]: \"IMG_0.JPG\""),
        "{}",
        shown[0]
    );
    assert_eq!(
        *lines.last().unwrap(),
        "warning: 65 more alt-text findings not shown (alt-text/filename: 5 errors, alt-text/whitespace: 60 warnings); `xmeta lint` lists them all"
    );
    // The plan says the same, in text and JSON.
    let plan = env.exits_with(&["plan", "manifests"], 0);
    assert_eq!(lint_lines(&plan.stdout), lines);
    let json = env.exits_with(&["plan", "manifests", "--format", "json"], 0);
    let json = env.checked_plan(&json.stdout);
    let warnings: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(lint_lines(&warnings.join("\n")), lines);
}

#[test]
fn the_rules_can_be_listed_and_explained() {
    let env = TestEnv::new();
    let list = env.exits_with(&["lint", "--list-rules"], 0);
    insta::assert_snapshot!("list_rules_text", list.stdout);
    let json = env.exits_with(&["lint", "--list-rules", "--format", "json"], 0);
    insta::assert_snapshot!("list_rules_json", json.stdout);
    let rules: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 10);
    // Placeholder: with the built-in words, every one of them.
    let explain = env.exits_with(&["lint", "--explain", "alt-text/placeholder"], 0);
    insta::assert_snapshot!("explain_placeholder", explain.stdout);
    let explain = env.exits_with(&["lint", "--explain", "alt-text/redundant-prefix"], 0);
    assert_has(
        &explain.stdout,
        "Built-in prefixes:\n  image of, an image of",
    );
    // A rule name that is close: said which was meant, exit 1.
    let wrong = env.exits_with(&["lint", "--explain", "alt-text/too-shrt"], 1);
    assert_eq!(
        wrong.stderr,
        "error: unknown rule `alt-text/too-shrt`; did you mean `alt-text/too-short`?\n"
    );
    let wrong = env.exits_with(&["lint", "--explain", "too-short"], 1);
    assert_has(&wrong.stderr, "did you mean `alt-text/too-short`?");
}

#[test]
fn a_misspelt_rule_in_an_exemption_says_which_was_meant() {
    let env = TestEnv::new();
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}  - id: \"1\"\n    metadata:\n      alt_text: {{text: \"Logo\"}}\n    lint: {{ignore: [alt-text/too-shrt], reason: \"x\"}}\n"),
    );
    let run = env.exits_with(&["validate", "manifests"], 1);
    assert_has(
        &run.stderr,
        "manifests/a.yaml:7:11: error: `lint.ignore` names `alt-text/too-shrt`, which is no rule\n  help: did you mean `alt-text/too-short`?\n",
    );
}

#[test]
fn an_exemption_that_silences_nothing_is_reported() {
    let env = TestEnv::new();
    let exempt = |id: u32, alt: &str, rules: &str| {
        format!(
            "{}    lint: {{ignore: [{rules}], reason: \"the wordmark is the whole image\"}}\n",
            entry(id, alt)
        )
    };
    env.write(
        "manifests/a.yaml",
        &format!(
            "{HEAD}{}{}{}{}",
            // Used: the logo is short.
            exempt(1, "Logo", "alt-text/too-short"),
            // Unused: the text was rewritten.
            exempt(2, "The Acme wordmark in red", "alt-text/too-short"),
            // One of two unused, and one rule turned off below.
            exempt(
                3,
                "Logo",
                "alt-text/too-short, alt-text/duplicate, alt-text/whitespace"
            ),
            // Asked not to be told.
            exempt(
                4,
                "A sunny beach at noon",
                "alt-text/too-short, alt-text/unused-exemption"
            ),
        ),
    );
    env.write(
        "manifests/xmeta.yaml",
        "lint:\n  rules:\n    alt-text/whitespace: off\n",
    );
    let run = env.exits_with(&["lint", "manifests", "--format", "json"], 0);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let unused: Vec<(String, String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "alt-text/unused-exemption")
        .map(|f| {
            (
                f["media"].as_str().unwrap().to_string(),
                f["level"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        unused,
        [
            (
                "2".to_string(),
                "warning".to_string(),
                "media 2 is exempt from alt-text/too-short, which finds nothing in it; remove it from `lint.ignore`".to_string()
            ),
            (
                "3".to_string(),
                "warning".to_string(),
                "media 3 is exempt from alt-text/whitespace, which finds nothing in it; remove it from `lint.ignore`".to_string()
            ),
        ]
    );
}

#[test]
fn a_duplicate_names_the_other_place() {
    let env = TestEnv::new();
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}{}", entry(1, "A black cat asleep on a red sofa")),
    );
    env.write(
        "manifests/b.yaml",
        &format!(
            "{HEAD}{}{}",
            entry(2, "A dog on a beach at sunset"),
            entry(3, "a black cat asleep on a red sofa ")
        ),
    );
    let run = env.exits_with(&["lint", "manifests"], 0);
    assert_has(
        &run.stdout,
        "manifests/b.yaml:7:5: warning[alt-text/duplicate]: media 1 at manifests/a.yaml:4:5 has the same alt text; describe each media on its own\n",
    );
}

fn sarif(env: &TestEnv, dir: &str, paths: &[&str], code: i32) -> Value {
    let mut args = vec!["lint", "--format", "sarif"];
    args.extend_from_slice(paths);
    let out = env
        .command(&args)
        .current_dir(env.path(dir))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sarif: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let schema: Value =
        serde_json::from_str(include_str!("schemas/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    sarif
}

/// (rule, fingerprint, uri, line) of each result.
fn results(sarif: &Value) -> Vec<(String, String, String, u64)> {
    sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let at = &r["locations"][0]["physicalLocation"];
            assert_eq!(at["artifactLocation"]["uriBaseId"], "%SRCROOT%");
            (
                r["ruleId"].as_str().unwrap().to_string(),
                r["partialFingerprints"]["xmetaFinding/v1"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                at["artifactLocation"]["uri"].as_str().unwrap().to_string(),
                at["region"]["startLine"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sarif_is_what_github_code_scanning_accepts() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("repo/.git")).unwrap();
    let file = "repo/media/sub dir/a\\b.yaml";
    env.write(
        file,
        &format!(
            "{HEAD}{}{}{}",
            entry(1, "image"),
            entry(2, "A cat"),
            entry(3, "A dog on a beach at sunset")
        ),
    );
    env.write(
        "repo/media/other/b.yaml",
        &format!("{HEAD}{}", entry(50, "Two goats on a green hillside")),
    );
    // From a subdirectory, naming the manifests relative to it: paths are
    // still the repository's.
    let first = sarif(&env, "repo/media/other", &["../sub dir"], 1);
    let run = &first["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(
        driver["informationUri"],
        "https://github.com/xmeta-dev/xmeta"
    );
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 10);
    for rule in rules {
        for field in [
            "/shortDescription/text",
            "/fullDescription/text",
            "/help/text",
            "/help/markdown",
            "/properties/tags/0",
        ] {
            assert!(
                rule.pointer(field)
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty()),
                "{field} of {rule}"
            );
        }
        assert_eq!(
            rule["helpUri"],
            "https://github.com/xmeta-dev/xmeta#alt-text-rules"
        );
    }
    let root = std::fs::canonicalize(env.path("repo")).unwrap();
    assert_eq!(
        run["originalUriBaseIds"]["%SRCROOT%"]["uri"],
        format!("file://{}/", root.display().to_string().replace(' ', "%20"))
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    let before = results(&first);
    assert_eq!(
        before
            .iter()
            .map(|(rule, _, uri, line)| (rule.as_str(), uri.as_str(), *line))
            .collect::<Vec<_>>(),
        [
            ("alt-text/placeholder", "media/sub%20dir/a%5Cb.yaml", 4),
            ("alt-text/too-short", "media/sub%20dir/a%5Cb.yaml", 7),
        ]
    );
    // Lines move (a media inserted above): the same fingerprints.
    env.write(
        file,
        &format!(
            "{HEAD}{}{}{}{}",
            entry(9, "A red bicycle leaning on a wall"),
            entry(1, "image"),
            entry(2, "A cat"),
            entry(3, "A dog on a beach at sunset")
        ),
    );
    let moved = results(&sarif(&env, "repo", &["media"], 1));
    assert_eq!(moved[0].3, 7);
    let prints =
        |r: &[(String, String, String, u64)]| r.iter().map(|x| x.1.clone()).collect::<Vec<_>>();
    assert_eq!(prints(&moved), prints(&before));
    // A new text is a new finding.
    env.write(
        file,
        &format!("{HEAD}{}{}", entry(1, "image"), entry(2, "A dog")),
    );
    let changed = results(&sarif(&env, "repo", &["media"], 1));
    assert_eq!(changed[0].1, before[0].1);
    assert_ne!(changed[1].1, before[1].1);
}

#[test]
fn sarif_keeps_at_most_25000_results_the_most_severe() {
    let env = TestEnv::new();
    // 25,000 warnings first in the file, then 7 errors.
    let mut text = String::with_capacity(2_500_000);
    text.push_str(HEAD);
    for i in 0..25_000u32 {
        text.push_str(&entry(100_000 + i, &format!("Cat {i}")));
    }
    for (i, word) in [
        "image",
        "photo",
        "picture",
        "pic",
        "graphic",
        "untitled",
        "screenshot",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&entry(900_000 + i as u32, word));
    }
    env.write("manifests/big.yaml", &text);
    let sarif = sarif(&env, ".", &["manifests"], 1);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 25_000);
    let errors = results.iter().filter(|r| r["level"] == "error").count();
    assert_eq!(errors, 7);
    assert_eq!(results[0]["level"], "error");
    let notes = &sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert_eq!(
        notes[0]["message"]["text"],
        "7 of 25,007 findings are left out: GitHub code scanning accepts at most 25,000 results per run; these are the most severe. `xmeta lint` lists them all."
    );
}

#[test]
fn github_annotations_show_ten_of_each_kind_most_severe_first() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &warnings_then_errors(15, 12));
    let lint = env.exits_with(&["lint", "manifests", "--format", "github"], 1);
    let lines: Vec<&str> = lint.stdout.lines().collect();
    assert_eq!(lines.len(), 21, "{}", lint.stdout);
    assert!(lines[..10].iter().all(|l| l.starts_with("::error file=")));
    assert!(lines[10..20]
        .iter()
        .all(|l| l.starts_with("::warning file=")));
    assert_eq!(
        lines[20],
        "::notice title=xmeta lint::7 more not shown here (2 errors, 5 warnings; GitHub shows 10 of each kind per step): the SARIF upload (code scanning) and `xmeta lint` list them all"
    );
    // validate and plan: the same cap, and the plan's summary last.
    let validate = env.exits_with(&["validate", "manifests", "--format", "github"], 0);
    let errors = validate.stdout.matches("::error ").count();
    let warnings = validate.stdout.matches("::warning ").count();
    assert_eq!((errors, warnings), (10, 10), "{}", validate.stdout);
    assert!(validate.stdout.lines().count() <= 31, "{}", validate.stdout);
    let plan = env.exits_with(&["plan", "manifests", "--format", "github"], 0);
    assert_eq!(plan.stdout.matches("::error ").count(), 10);
    assert!(plan.stdout.matches("::notice ").count() <= 10);
    assert_has(
        plan.stdout.lines().last().unwrap(),
        "::notice title=xmeta plan::Plan: 27 to create",
    );
}

#[test]
fn one_lint_run_gives_annotations_and_sarif() {
    let env = TestEnv::new();
    env.write("manifests/a.yaml", &warnings_then_errors(1, 1));
    let run = env.exits_with(
        &[
            "lint",
            "manifests",
            "--format",
            "github",
            "--sarif",
            "out.sarif",
        ],
        1,
    );
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("out.sarif")).unwrap()).unwrap();
    let direct = sarif(&env, ".", &["manifests"], 1);
    assert_eq!(written, direct);
    // Manifest errors are annotations too (the workflow has no validate step).
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}  - id: \"1\"\n    metadata: {{alt_txt: x}}\n"),
    );
    let run = env.exits_with(&["lint", "manifests", "--format", "github"], 1);
    assert_has(
        &run.stdout,
        "::error file=manifests/a.yaml,line=5,col=16,title=xmeta::unknown field `alt_txt`",
    );
}

/// The example runs lint once, for both the annotations and the SARIF it
/// uploads with a pinned `upload-sarif`; no validate step repeats it.
#[test]
fn the_example_workflow_lints_once_and_uploads_the_sarif() {
    let text = include_str!("../../examples/github-actions/xmeta.yml");
    let workflow: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    let plan = &workflow["jobs"]["plan"];
    let steps = plan["steps"].as_sequence().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    let lints: Vec<&&str> = runs.iter().filter(|r| r.contains("xmeta lint")).collect();
    assert_eq!(
        lints,
        [&"xmeta lint media/ --format github --sarif xmeta.sarif"]
    );
    assert!(!runs.iter().any(|r| r.contains("xmeta validate")));
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))
        })
        .expect("an upload-sarif step");
    assert_eq!(upload["with"]["sarif_file"].as_str(), Some("xmeta.sarif"));
    assert_eq!(
        plan["permissions"]["security-events"].as_str(),
        Some("write")
    );
}
