//! Lint findings as people and tools read them: text, JSON, SARIF 2.1.0
//! (GitHub code scanning) and GitHub workflow annotations. File names and
//! reasons come from the manifests: JSON is written by the neutraliser's
//! writer, so no control or bidi character reaches a terminal raw.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::lint::catalog::{self, README_SECTION};
use crate::lint::rules::{Level, Rule};
use crate::lint::{count_of, Finding, Report};
use crate::plan::PlanWarning;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
    Github,
}

pub fn render(report: &Report, format: LintFormat) -> String {
    match format {
        LintFormat::Text => text(report),
        LintFormat::Json => json(report),
        LintFormat::Sarif => sarif(report),
        LintFormat::Github => github(report),
    }
}

fn summary(report: &Report) -> String {
    let (errors, warnings) = (report.errors(), report.warnings_count());
    let all = errors + warnings;
    format!(
        "{} finding{} ({}, {}). {}",
        all,
        if all == 1 { "" } else { "s" },
        count_of(errors, Level::Error),
        count_of(warnings, Level::Warning),
        report.coverage_line()
    )
}

fn text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&f.to_string());
        out.push('\n');
    }
    // Findings at their own level above; a count of any not listed, and
    // the exemptions, here.
    for warning in report.warnings() {
        if matches!(
            warning,
            PlanWarning::MoreLint { .. } | PlanWarning::Exempt(_)
        ) {
            out.push_str(&warning.to_string());
            out.push('\n');
        }
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

fn json(report: &Report) -> String {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule.id(),
                "level": f.level,
                "media": f.id.to_string(),
                "file": f.location.file.display().to_string(),
                "line": f.location.line,
                "column": f.location.column,
                "message": f.message,
            })
        })
        .collect();
    let exempt: Vec<Value> = report
        .exempt
        .iter()
        .map(|e| {
            json!({
                "media": e.id.to_string(),
                "file": e.location.file.display().to_string(),
                "line": e.location.line,
                "rules": e.rules,
                "reason": e.reason,
            })
        })
        .collect();
    let doc = json!({
        "findings": findings,
        "exempt": exempt,
        "alt_text_coverage": {"with_alt_text": report.with_alt_text, "media": report.media},
        "summary": {"errors": report.errors(), "warnings": report.warnings_count()},
    });
    crate::untrusted::json_pretty(&doc).unwrap_or_default() + "\n"
}

/// Where SARIF locations are relative to: the repository root of the
/// first finding's file (the nearest directory up holding `.git`, as
/// `xmeta.yaml` is found), else the working directory. GitHub matches
/// results to files by these paths, whichever directory xmeta ran in.
fn source_root(report: &Report) -> Option<PathBuf> {
    let cwd = std::fs::canonicalize(std::env::current_dir().ok()?).ok()?;
    let start = report
        .findings
        .first()
        .and_then(|f| {
            let dir = cwd.join(f.location.file.as_path()).parent()?.to_path_buf();
            std::fs::canonicalize(dir).ok()
        })
        .unwrap_or_else(|| cwd.clone());
    let repository = crate::lint::config::repository_root(&start).map(Path::to_path_buf);
    Some(repository.unwrap_or(cwd))
}

/// A file's location: relative to `root` (with `%SRCROOT%`) when it is
/// inside it, else an absolute `file:` URI. Each component is escaped, so
/// a `\` in a Unix file name stays one (`%5C`), never a separator.
fn artifact(root: Option<&Path>, file: &Path) -> Artifact {
    let absolute = std::env::current_dir()
        .ok()
        .map_or_else(|| file.to_path_buf(), |cwd| cwd.join(file));
    // The directory canonical (as the root is), the name as it is: a
    // symlinked manifest is reported where it was found.
    let absolute = match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(absolute.clone()),
        _ => absolute,
    };
    match root.and_then(|r| absolute.strip_prefix(r).ok()) {
        Some(relative) => Artifact {
            uri: uri(relative),
            uri_base_id: Some("%SRCROOT%"),
        },
        None => Artifact {
            uri: format!("file://{}", uri(&absolute)),
            uri_base_id: None,
        },
    }
}

/// A path as a URI reference: components joined by `/`, each escaped.
fn uri(path: &Path) -> String {
    use std::path::Component;
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            Component::RootDir => Some(String::new()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .map(|part| percent_encoding::utf8_percent_encode(&part, URI_UNSAFE).to_string())
        .collect();
    parts.join("/")
}

/// The directory as a `file:` URI ending in `/`, for `originalUriBaseIds`.
fn directory_uri(dir: &Path) -> String {
    let text = uri(dir);
    format!("file://{}/", text.trim_end_matches('/'))
}

const URI_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'^')
    .add(b':')
    .add(b'/')
    .add(b'\\');

/// The most results GitHub code scanning accepts in one run.
pub const SARIF_MAX_RESULTS: usize = 25_000;

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Off => "none",
    }
}

fn sarif(report: &Report) -> String {
    let repository = catalog::repository();
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            let doc = rule.doc();
            json!({
                "id": rule.id(),
                "name": rule.id().trim_start_matches("alt-text/"),
                "shortDescription": {"text": doc.summary},
                "fullDescription": {"text": doc.catches},
                "help": {
                    "text": catalog::explain_text(*rule),
                    "markdown": catalog::explain_markdown(*rule),
                },
                "helpUri": format!("{repository}{README_SECTION}"),
                "defaultConfiguration": {"level": sarif_level(doc.level)},
                "properties": {
                    "tags": ["accessibility", "alt-text"],
                    "precision": "high",
                    "problem.severity": match doc.level {
                        Level::Error => "error",
                        _ => "warning",
                    },
                },
            })
        })
        .collect();
    let root = source_root(report);
    // The most severe first when there are more than GitHub takes; in
    // file order within a level (the sort is stable).
    let mut findings: Vec<&Finding> = report.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    let left_out = findings.len().saturating_sub(SARIF_MAX_RESULTS);
    findings.truncate(SARIF_MAX_RESULTS);
    // One location per file (a library is a few files of many media).
    let mut artifacts: std::collections::HashMap<&Path, Artifact> =
        std::collections::HashMap::new();
    for f in &findings {
        let file = f.location.file.as_path();
        artifacts
            .entry(file)
            .or_insert_with(|| artifact(root.as_deref(), file));
    }
    // Typed, not `Value`s: 25,000 results as maps took 400 MB.
    let results: Vec<SarifResult> = findings
        .iter()
        .map(|f| SarifResult {
            rule_id: f.rule.id(),
            rule_index: Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0),
            level: sarif_level(f.level),
            message: Text { text: &f.message },
            locations: [SarifLocation {
                physical_location: Physical {
                    artifact_location: &artifacts[f.location.file.as_path()],
                    region: Region {
                        start_line: f.location.line,
                        start_column: f.location.column,
                    },
                },
            }],
            partial_fingerprints: Fingerprints { v1: &f.fingerprint },
        })
        .collect();
    let mut notifications = Vec::new();
    if left_out > 0 {
        notifications.push(json!({
            "level": "warning",
            "descriptor": {"id": "xmeta/results-left-out"},
            "message": {"text": format!(
                "{} of {} findings are left out: GitHub code scanning accepts at most {} results per run; these are the most severe. `xmeta lint` lists them all.",
                crate::plan::cost::thousands(left_out as u64),
                crate::plan::cost::thousands(report.findings.len() as u64),
                crate::plan::cost::thousands(SARIF_MAX_RESULTS as u64),
            )},
        }));
    }
    let run = SarifRun {
        tool: json!({"driver": {
            "name": "xmeta",
            "version": env!("CARGO_PKG_VERSION"),
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "informationUri": repository,
            "rules": rules,
        }}),
        invocations: json!([{
            "executionSuccessful": true,
            "toolExecutionNotifications": notifications,
        }]),
        original_uri_base_ids: root
            .as_ref()
            .map(|root| json!({"%SRCROOT%": {"uri": directory_uri(root)}})),
        results,
    };
    let doc = SarifLog {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [run],
    };
    crate::untrusted::json_pretty(&doc).unwrap_or_default() + "\n"
}

#[derive(serde::Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [SarifRun<'a>; 1],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRun<'a> {
    tool: Value,
    invocations: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_uri_base_ids: Option<Value>,
    results: Vec<SarifResult<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text<'a>,
    locations: [SarifLocation<'a>; 1],
    partial_fingerprints: Fingerprints<'a>,
}

#[derive(serde::Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    physical_location: Physical<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Physical<'a> {
    artifact_location: &'a Artifact,
    region: Region,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Artifact {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
    start_column: u32,
}

#[derive(serde::Serialize)]
struct Fingerprints<'a> {
    #[serde(rename = "xmetaFinding/v1")]
    v1: &'a str,
}

fn github(report: &Report) -> String {
    use crate::annotations::{annotation, Capped, Kind};
    let mut capped = Capped::default();
    for f in &report.findings {
        capped.push_with(Kind::of(f.level), || {
            annotation(
                Kind::of(f.level),
                Some(&f.location),
                f.rule.id(),
                &f.message,
            )
        });
    }
    capped
        .finish(
            "xmeta lint",
            "the SARIF upload (code scanning) and `xmeta lint` list them all",
            Vec::new(),
        )
        .into_iter()
        .map(|line| line + "\n")
        .collect()
}
