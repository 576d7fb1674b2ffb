//! Lint findings as people and tools read them: text, JSON, SARIF 2.1.0
//! (GitHub code scanning) and GitHub workflow annotations. File names and
//! reasons come from the manifests: JSON is written by the neutraliser's
//! writer, so no control or bidi character reaches a terminal raw.

use serde_json::{json, Value};

use crate::lint::rules::{Level, Rule};
use crate::lint::Report;

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
    let errors = report.errors();
    format!(
        "{} finding{} ({errors} error{}, {} warning{}). {}",
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" },
        if errors == 1 { "" } else { "s" },
        report.findings.len() - errors,
        if report.findings.len() - errors == 1 {
            ""
        } else {
            "s"
        },
        report.coverage_line()
    )
}

fn text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&f.to_string());
        out.push('\n');
    }
    // Findings at their own level above; the count and exemptions here.
    for warning in report.warnings().into_iter().skip(report.findings.len()) {
        out.push_str(&warning.to_string());
        out.push('\n');
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
        "summary": {"errors": report.errors(), "warnings": report.findings.len() - report.errors()},
    });
    crate::untrusted::json_pretty(&doc).unwrap_or_default() + "\n"
}

/// A path as a relative URI reference, with `/` separators and escapes.
fn uri(path: &std::path::Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.strip_prefix(cwd)
                .ok()
                .map(std::path::Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf());
    // `/` is the only separator on Unix: a backslash is part of a name,
    // and is escaped (`%5C`) like the other characters a URI cannot hold.
    let text = relative.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text).to_string();
    percent_encoding::utf8_percent_encode(&text, URI_UNSAFE).to_string()
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
    .add(b'\\');

fn sarif(report: &Report) -> String {
    let help = option_env!("CARGO_PKG_REPOSITORY").filter(|r| !r.is_empty());
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            let mut r = json!({
                "id": rule.id(),
                "shortDescription": {"text": rule.summary()},
                "defaultConfiguration": {"level": match rule.default_level() {
                    Level::Error => "error",
                    Level::Warning => "warning",
                    Level::Off => "none",
                }},
            });
            if let Some(repo) = help {
                r["helpUri"] = json!(format!("{repo}#alt-text-rules"));
            }
            r
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule.id(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0),
                "level": if f.level == Level::Error { "error" } else { "warning" },
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.location.file), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.location.line, "startColumn": f.location.column},
                    }
                }],
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "xmeta",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    crate::untrusted::json_pretty(&doc).unwrap_or_default() + "\n"
}

fn github(report: &Report) -> String {
    use crate::annotations::{annotation, Kind};
    let mut out = String::new();
    for f in &report.findings {
        let kind = if f.level == Level::Error {
            Kind::Error
        } else {
            Kind::Warning
        };
        out.push_str(&annotation(
            kind,
            Some(&f.location),
            f.rule.id(),
            &f.message,
        ));
        out.push('\n');
    }
    out
}
