//! Alt-text policy checks through the binary: every rule (true and false
//! positives), configuration levels and options, exemptions, each format
//! (SARIF validated against the official schema), and the same findings
//! in validate and plan.

use serde_json::Value;

use crate::support::*;

const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n";

fn entry(id: u32, alt: Option<&str>) -> String {
    match alt {
        Some(text) => format!(
            "  - id: \"{id}\"\n    metadata:\n      alt_text: {{text: {}}}\n",
            serde_json::to_string(text).unwrap()
        ),
        None => format!("  - id: \"{id}\"\n    metadata:\n      shared_info: {{shared: true}}\n"),
    }
}

/// One media per rule, then media that must pass.
fn library() -> String {
    let mut text = HEAD.to_string();
    for (id, alt) in [
        (1, None),
        (2, Some("image")),
        (3, Some("IMG_2041.JPG")),
        (4, Some("A cat")),
        (5, Some("Picture of a dog catching a frisbee")),
        (6, Some("A black cat asleep on a red sofa")),
        (7, Some("A black cat asleep on a red sofa")),
        (8, Some("https://example.com/cat")),
        (9, Some("🐱 🎉 !!")),
        (10, Some("Two dogs  running on a beach")),
        (11, Some("Imagen")),
        // False-positive guards: all of these are fine.
        (
            20,
            Some("Photographer's self-portrait at dusk, holding a camera"),
        ),
        (21, Some("日本語の代替テキスト、猫がソファで寝ている")),
        (22, Some("Version 2.0 release banner with confetti")),
        (
            23,
            Some("Chart: sales grew 12.5% in 2024 (source: www.example.com)"),
        ),
    ] {
        text.push_str(&entry(id, alt));
    }
    text
}

fn findings(json: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["media"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_rule_finds_its_case_and_nothing_else() {
    let env = TestEnv::new();
    env.write("manifests/library.yaml", &library());
    let run = env.exits_with(&["lint", "manifests", "--format", "json"], 1);
    let got = findings(&run.stdout);
    let want: Vec<(String, String)> = [
        ("1", "alt-text/missing"),
        ("2", "alt-text/placeholder"),
        ("3", "alt-text/filename"),
        ("4", "alt-text/too-short"),
        ("5", "alt-text/redundant-prefix"),
        ("7", "alt-text/duplicate"),
        ("8", "alt-text/url-only"),
        ("9", "alt-text/no-words"),
        ("10", "alt-text/whitespace"),
        ("11", "alt-text/placeholder"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(!env.state_dir().exists(), "lint touched the state");
}

#[test]
fn text_output_and_exit_codes() {
    let env = TestEnv::new();
    env.write("manifests/library.yaml", &library());
    let run = env.exits_with(&["lint", "manifests"], 1);
    insta::assert_snapshot!(run.stdout);
    env.write(
        "manifests/library.yaml",
        &format!("{HEAD}{}", entry(1, Some("A cat  asleep on a red sofa"))),
    );
    let run = env.exits_with(&["lint", "manifests"], 0);
    assert_eq!(
        run.stdout,
        "manifests/library.yaml:4:5: warning[alt-text/whitespace]: remove leading, trailing or doubled spaces, tabs and line breaks from the alt text\n1 finding (0 errors, 1 warning). Alt text: 1 of 1 media (100.0%).\n"
    );
}

#[test]
fn levels_and_options_come_from_xmeta_yaml() {
    let env = TestEnv::new();
    env.write("manifests/library.yaml", &library());
    env.write(
        "manifests/xmeta.yaml",
        "lint:\n  rules:\n    alt-text/too-short: {level: error, min_chars: 40}\n    alt-text/whitespace: off\n    alt-text/missing: warning\n    alt-text/placeholder: {words: [dog catching]}\n",
    );
    let run = env.exits_with(&["lint", "manifests", "--format", "json"], 1);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let level = |media: &str, rule: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["media"] == media && f["rule"] == rule)
            .map(|f| f["level"].as_str().unwrap().to_string())
    };
    assert_eq!(level("1", "alt-text/missing").as_deref(), Some("warning"));
    assert_eq!(
        level("6", "alt-text/too-short").as_deref(),
        Some("error"),
        "{}",
        run.stdout
    );
    assert_eq!(level("10", "alt-text/whitespace"), None);
    // The config file is no manifest.
    env.exits_with(&["validate", "manifests"], 0);

    env.write(
        "manifests/xmeta.yaml",
        "lint:\n  rules:\n    alt-text/too-shrt: error\n    alt-text/url-only: fatal\n  colour: red\n",
    );
    let run = env.exits_with(&["lint", "manifests"], 1);
    assert_eq!(
        run.stderr,
        "manifests/xmeta.yaml:3:5: error: unknown rule `alt-text/too-shrt`\n  help: did you mean `alt-text/too-short`?\nmanifests/xmeta.yaml:4:24: error: a rule's level must be `off`, `warning` or `error`\nmanifests/xmeta.yaml:5:3: error: unknown field `colour` in `lint`\n3 errors in the manifests; nothing was sent\n"
    );
    let schema = env.exits_with(&["schema", "config"], 0);
    let schema: Value = serde_json::from_str(&schema.stdout).unwrap();
    assert!(
        schema["properties"]["lint"]["properties"]["rules"]["properties"]["alt-text/too-short"]
            .is_object()
    );
}

#[test]
fn an_exemption_needs_a_reason_and_shows_in_the_plan() {
    let env = TestEnv::new();
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}  - id: \"1\"\n    metadata:\n      alt_text: {{text: \"Logo\"}}\n    lint: {{ignore: [alt-text/too-short], reason: \"the brand's logo; its name is the description\"}}\n"),
    );
    env.exits_with(&["lint", "manifests"], 0);
    let plan = env.exits_with(&["plan", "manifests"], 0);
    assert_has(&plan.stdout, "manifests/a.yaml:4:5: note: media 1 is exempt from alt-text/too-short: the brand's logo; its name is the description");
    assert_has(&plan.stdout, "Alt text: 1 of 1 media (100.0%).");
    // No reason: a manifest error, with its place.
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}  - id: \"1\"\n    metadata:\n      alt_text: {{text: \"Logo\"}}\n    lint: {{ignore: [alt-text/too-short]}}\n"),
    );
    let run = env.exits_with(&["lint", "manifests"], 1);
    assert_has(
        &run.stderr,
        "manifests/a.yaml:7:11: error: missing required field `reason` in `media[0].lint`",
    );
    // A rule that does not exist.
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}  - id: \"1\"\n    metadata:\n      alt_text: {{text: \"Logo\"}}\n    lint: {{ignore: [alt-text/too-shrt], reason: \"x\"}}\n"),
    );
    let run = env.exits_with(&["lint", "manifests"], 1);
    assert_has(
        &run.stderr,
        "manifests/a.yaml:7:11: error: `lint.ignore` names `alt-text/too-shrt`, which is no rule",
    );
    // The same for every command: it is a manifest error.
    env.exits_with(&["validate", "manifests"], 1);
    // An empty reason says nothing.
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}  - id: \"1\"\n    metadata:\n      alt_text: {{text: \"Logo\"}}\n    lint: {{ignore: [alt-text/too-short], reason: \" \"}}\n"),
    );
    let run = env.exits_with(&["lint", "manifests"], 1);
    assert_has(
        &run.stderr,
        "`lint.reason` must say why the media is exempt",
    );
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let env = TestEnv::new();
    env.write("manifests/with space/library.yaml", &library());
    let run = env.exits_with(&["lint", "manifests", "--format", "sarif"], 1);
    let sarif: Value = serde_json::from_str(&run.stdout).unwrap();
    let schema: Value =
        serde_json::from_str(include_str!("schemas/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let run0 = &sarif["runs"][0];
    assert_eq!(
        run0["tool"]["driver"]["rules"].as_array().unwrap().len(),
        10
    );
    let first = &run0["results"][0];
    assert_eq!(first["ruleId"], "alt-text/missing");
    assert_eq!(first["level"], "error");
    let location = &first["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "manifests/with%20space/library.yaml"
    );
    assert_eq!(location["region"]["startLine"], 4);
    assert_eq!(location["region"]["startColumn"], 5);
}

#[test]
fn github_annotations_escape_what_they_quote() {
    let env = TestEnv::new();
    env.write(
        "manifests/a,b:c.yaml",
        &format!("{HEAD}{}", entry(4, Some("A cat"))),
    );
    let run = env.exits_with(&["lint", "manifests", "--format", "github"], 0);
    assert_eq!(
        run.stdout,
        "::warning file=manifests/a%2Cb%3Ac.yaml,line=4,col=5,title=alt-text/too-short::the alt text is 5 characters long; write at least 10 that describe the media\n"
    );
}

#[test]
fn validate_and_plan_show_the_same_findings_as_warnings() {
    let env = TestEnv::new();
    env.write("manifests/library.yaml", &library());
    // Each at its own level: an error is no warning.
    let validate = env.exits_with(&["validate", "manifests"], 0);
    assert_has(
        &validate.stdout,
        "manifests/library.yaml:4:5: error[alt-text/missing]: media 1 has no alt text",
    );
    let plan = env.exits_with(&["plan", "manifests"], 0);
    assert_has(
        &plan.stdout,
        "manifests/library.yaml:4:5: error[alt-text/missing]: media 1 has no alt text",
    );
    assert_has(&plan.stdout, "Alt text: 14 of 15 media (93.3%).");
    let markdown = env.exits_with(&["plan", "manifests", "--format", "markdown"], 0);
    assert_has(&markdown.stdout, "Alt text: 14 of 15 media (93.3%).");
    let json = env.exits_with(&["plan", "manifests", "--format", "json"], 0);
    let json = env.checked_plan(&json.stdout);
    assert_eq!(
        json["alt_text_coverage"],
        serde_json::json!({"with_alt_text": 14, "media": 15})
    );
    assert!(json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("warning[alt-text/duplicate]")));
}

#[test]
fn review_findings_stay_fixed() {
    let env = TestEnv::new();
    // Empty alt text is missing alt text, and not covered.
    env.write("manifests/a.yaml", &format!("{HEAD}{}", entry(1, Some(""))));
    let run = env.exits_with(&["lint", "manifests", "--format", "json"], 1);
    assert_eq!(
        findings(&run.stdout),
        [("1".to_string(), "alt-text/missing".to_string())]
    );
    assert_has(&run.stdout, "\"with_alt_text\": 0");
    // A colon in a file name must not read as a URI scheme.
    env.write(
        "manifests/a.yaml",
        &format!("{HEAD}{}", entry(1, Some("A cat"))),
    );
    std::fs::rename(env.path("manifests/a.yaml"), env.path("manifests/c:d.yaml")).unwrap();
    let run = env.exits_with(&["lint", "manifests", "--format", "sarif"], 0);
    assert_has(&run.stdout, "\"uri\": \"manifests/c%3Ad.yaml\"");
    // Empty option values and a config that is a directory are errors.
    env.write(
        "manifests/xmeta.yaml",
        "lint:\n  rules:\n    alt-text/redundant-prefix: {prefixes: [\"\"]}\n",
    );
    let run = env.exits_with(&["lint", "manifests"], 1);
    assert_has(
        &run.stderr,
        "manifests/xmeta.yaml:3:44: error: must not be empty",
    );
    std::fs::remove_file(env.path("manifests/xmeta.yaml")).unwrap();
    std::fs::create_dir(env.path("manifests/xmeta.yaml")).unwrap();
    let run = env.exits_with(&["lint", "manifests"], 1);
    assert_has(&run.stderr, "cannot read the lint configuration");
}
