//! The lint configuration, `xmeta.yaml` beside the manifests (or
//! `--config FILE`): a level per rule and the rules' options, checked with
//! `file:line:column` like the manifests.
//!
//! ```yaml
//! lint:
//!   rules:
//!     alt-text/too-short: {level: error, min_chars: 15}
//!     alt-text/whitespace: off
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Diagnostic, InvalidManifests, Location};
use crate::lint::rules::{Level, Options, Rule};
use crate::manifest::schema::suggest;
use crate::manifest::yaml::{parse_documents, Node, NodeKind};

#[derive(Clone, Debug, Default)]
pub struct LintConfig {
    pub levels: BTreeMap<Rule, Level>,
    pub options: Options,
    /// Keep each alt text's checks with its entry, for the next lint of
    /// the same entries (watch: most of a cycle's entries are the last
    /// cycle's). Not from the file.
    pub keep_checks: bool,
    /// `review.media_hosts`: the hosts whose images a review may show
    /// beside alt text (`None`: X's own, `plan::thumbnail::MEDIA_HOSTS`).
    pub media_hosts: Option<Vec<String>>,
}

impl LintConfig {
    /// The hosts a review may show images from.
    pub fn media_hosts(&self) -> Vec<String> {
        self.media_hosts.clone().unwrap_or_else(|| {
            crate::plan::thumbnail::MEDIA_HOSTS
                .iter()
                .map(ToString::to_string)
                .collect()
        })
    }
}

impl LintConfig {
    pub fn level(&self, rule: Rule) -> Level {
        self.levels
            .get(&rule)
            .copied()
            .unwrap_or_else(|| rule.default_level())
    }
}

/// The largest configuration read: a few rules and their options.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A configuration found, and where it may resolve to (a symlinked
/// `xmeta.yaml` must stay inside the repository).
pub struct Found {
    pub file: PathBuf,
    roots: Option<crate::intake::Roots>,
}

/// `--config FILE`, else the nearest `xmeta.yaml` (or `.yml`) from the
/// first PATH (its directory, for a file) up to the repository root (the
/// directory holding `.git`), as `.editorconfig` is found. Outside a
/// repository only the first PATH's directory is looked in, so a stray
/// file in a parent such as `/tmp` is never picked up.
pub fn find(explicit: Option<&Path>, paths: &[PathBuf]) -> Option<Found> {
    if let Some(file) = explicit {
        return Some(Found {
            file: file.to_path_buf(),
            roots: None,
        });
    }
    let first = paths.first()?;
    let start = if first.is_dir() {
        first.clone()
    } else {
        first.parent()?.to_path_buf()
    };
    let here = if start.as_os_str().is_empty() {
        Path::new(".")
    } else {
        start.as_path()
    };
    let canonical = std::fs::canonicalize(here).ok()?;
    let repository = repository_root(&canonical);
    let searched: Vec<&Path> = match repository {
        Some(root) => canonical
            .ancestors()
            .take_while(|d| d.starts_with(root))
            .collect(),
        None => vec![canonical.as_path()],
    };
    let roots = crate::intake::Roots::new(&[repository.unwrap_or(&canonical).to_path_buf()]);
    let cwd = std::env::current_dir().ok();
    for dir in searched {
        // Anything by that name counts, so a directory is an error, not
        // ignored.
        let Some(name) = crate::manifest::CONFIG_NAMES
            .iter()
            .find(|n| dir.join(n).symlink_metadata().is_ok())
        else {
            continue;
        };
        // Shown as the user named it where possible.
        let shown = if dir == canonical {
            start.join(name)
        } else {
            let file = dir.join(name);
            cwd.as_ref()
                .and_then(|c| file.strip_prefix(c).ok().map(Path::to_path_buf))
                .unwrap_or(file)
        };
        return Some(Found {
            file: shown,
            roots: Some(roots),
        });
    }
    None
}

/// The repository `canonical` (an absolute, canonical directory) is in:
/// the nearest directory up from it holding `.git`.
pub fn repository_root(canonical: &Path) -> Option<&Path> {
    canonical.ancestors().find(|d| d.join(".git").exists())
}

pub fn load(explicit: Option<&Path>, paths: &[PathBuf]) -> anyhow::Result<LintConfig> {
    let Some(Found { file, roots }) = find(explicit, paths) else {
        tracing::info!("no xmeta.yaml found; the lint rules use their defaults");
        return Ok(LintConfig::default());
    };
    tracing::info!("lint configuration: `{}`", file.display());
    let text = crate::intake::read(&file, roots.as_ref(), MAX_CONFIG_BYTES)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(String::from_utf8(bytes)?))
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the lint configuration `{}`: {e}",
                file.display()
            )
        })?;
    let shown = Arc::new(file.clone());
    let mut problems = Vec::new();
    let mut config = LintConfig::default();
    match parse_documents(&text) {
        Err(e) => problems.push(Diagnostic::error(
            Location::new(&shown, e.pos.line, e.pos.column),
            format!("YAML syntax error: {}", e.message),
        )),
        Ok(docs) => {
            for doc in &docs {
                read(&shown, doc, &mut config, &mut problems);
            }
        }
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(InvalidManifests(problems).into())
    }
}

fn at(file: &Arc<PathBuf>, node: &Node) -> Location {
    Location::new(file, node.pos.line, node.pos.column)
}

fn entries(node: &Node) -> Option<&[(Node, Node)]> {
    match &node.kind {
        NodeKind::Map(entries) => Some(entries),
        _ => None,
    }
}

fn unknown(
    file: &Arc<PathBuf>,
    key: &Node,
    name: &str,
    known: &[&str],
    where_: &str,
) -> Diagnostic {
    Diagnostic::error(at(file, key), format!("unknown field `{name}` in {where_}"))
        .with_help(suggest(name, known.iter().copied()).map(|s| format!("did you mean `{s}`?")))
}

fn read(file: &Arc<PathBuf>, doc: &Node, config: &mut LintConfig, problems: &mut Vec<Diagnostic>) {
    if matches!(&doc.kind, NodeKind::Scalar { text, .. } if text.is_empty()) {
        return;
    }
    let Some(top) = entries(doc) else {
        problems.push(Diagnostic::error(
            at(file, doc),
            "the lint configuration must be a mapping with a `lint` key",
        ));
        return;
    };
    for (key, value) in top {
        match key.as_str() {
            Some("lint") => read_lint(file, value, config, problems),
            Some("review") => read_review(file, value, config, problems),
            Some(name) => problems.push(unknown(
                file,
                key,
                name,
                &["lint", "review"],
                "the configuration",
            )),
            None => problems.push(Diagnostic::error(at(file, key), "keys must be strings")),
        }
    }
}

/// `review: {media_hosts: [pbs.twimg.com, …]}`: host names only (no
/// scheme, port or path), as a URL's host is compared with them.
fn read_review(
    file: &Arc<PathBuf>,
    node: &Node,
    config: &mut LintConfig,
    problems: &mut Vec<Diagnostic>,
) {
    let Some(review) = entries(node) else {
        problems.push(Diagnostic::error(
            at(file, node),
            "`review` must be a mapping such as {media_hosts: [pbs.twimg.com]}",
        ));
        return;
    };
    for (key, value) in review {
        if key.as_str() != Some("media_hosts") {
            let name = key.as_str().unwrap_or("");
            problems.push(unknown(file, key, name, &["media_hosts"], "`review`"));
            continue;
        }
        let NodeKind::Seq(items) = &value.kind else {
            problems.push(Diagnostic::error(
                at(file, value),
                "`review.media_hosts` must be a list of host names such as [pbs.twimg.com]",
            ));
            continue;
        };
        let mut hosts = Vec::new();
        for item in items {
            match item.as_str().filter(|h| is_host_name(h)) {
                Some(host) => hosts.push(host.to_string()),
                None => problems.push(Diagnostic::error(
                    at(file, item),
                    "a media host is a lowercase host name such as pbs.twimg.com (no scheme, port or path)",
                )),
            }
        }
        config.media_hosts = Some(hosts);
    }
}

/// `pbs.twimg.com`: lowercase labels of letters, digits and `-`, dotted.
fn is_host_name(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').count() >= 2
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn read_lint(
    file: &Arc<PathBuf>,
    node: &Node,
    config: &mut LintConfig,
    problems: &mut Vec<Diagnostic>,
) {
    let Some(lint) = entries(node) else {
        problems.push(Diagnostic::error(
            at(file, node),
            "`lint` must be a mapping",
        ));
        return;
    };
    for (key, value) in lint {
        match key.as_str() {
            Some("rules") => {
                let Some(rules) = entries(value) else {
                    problems.push(Diagnostic::error(
                        at(file, value),
                        "`lint.rules` must be a mapping of rule IDs",
                    ));
                    continue;
                };
                for (id, setting) in rules {
                    match Rule::parse(id.as_str().unwrap_or("")) {
                        Ok(rule) => read_rule(file, rule, setting, config, problems),
                        Err(unknown) => problems.push(
                            Diagnostic::error(at(file, id), unknown.to_string())
                                .with_help(Some(unknown.help())),
                        ),
                    }
                }
            }
            Some(name) => problems.push(unknown(file, key, name, &["rules"], "`lint`")),
            None => problems.push(Diagnostic::error(at(file, key), "keys must be strings")),
        }
    }
}

fn level(file: &Arc<PathBuf>, node: &Node, problems: &mut Vec<Diagnostic>) -> Option<Level> {
    let level = node.as_str().and_then(Level::parse);
    if level.is_none() {
        problems.push(Diagnostic::error(
            at(file, node),
            "a rule's level must be `off`, `warning` or `error`",
        ));
    }
    level
}

fn strings(file: &Arc<PathBuf>, node: &Node, problems: &mut Vec<Diagnostic>) -> Vec<String> {
    if let NodeKind::Seq(items) = &node.kind {
        items
            .iter()
            .filter_map(|i| match &i.kind {
                NodeKind::Scalar { text, .. } if !text.trim().is_empty() => Some(text.clone()),
                NodeKind::Scalar { .. } => {
                    problems.push(Diagnostic::error(at(file, i), "must not be empty"));
                    None
                }
                _ => {
                    problems.push(Diagnostic::error(at(file, i), "must be a string"));
                    None
                }
            })
            .collect()
    } else {
        problems.push(Diagnostic::error(
            at(file, node),
            "must be a list of strings",
        ));
        Vec::new()
    }
}

fn read_rule(
    file: &Arc<PathBuf>,
    rule: Rule,
    node: &Node,
    config: &mut LintConfig,
    problems: &mut Vec<Diagnostic>,
) {
    let Some(fields) = entries(node) else {
        if let Some(l) = level(file, node, problems) {
            config.levels.insert(rule, l);
        }
        return;
    };
    let option = match rule {
        Rule::TooShort => Some("min_chars"),
        Rule::Placeholder => Some("words"),
        Rule::RedundantPrefix => Some("prefixes"),
        _ => None,
    };
    for (key, value) in fields {
        let name = key.as_str().unwrap_or("");
        match name {
            "level" => {
                if let Some(l) = level(file, value, problems) {
                    config.levels.insert(rule, l);
                }
            }
            "min_chars" if option == Some(name) => {
                match value.as_str().and_then(|t| t.parse::<usize>().ok()) {
                    Some(n) if (1..=1000).contains(&n) => config.options.min_chars = n,
                    _ => problems.push(Diagnostic::error(
                        at(file, value),
                        "`min_chars` must be a whole number from 1 to 1000",
                    )),
                }
            }
            "words" if option == Some(name) => {
                config.options.placeholder_words = strings(file, value, problems);
            }
            "prefixes" if option == Some(name) => {
                // Lower-cased once here; texts are compared lower-cased.
                config.options.prefixes = strings(file, value, problems)
                    .into_iter()
                    .map(|p| p.to_lowercase())
                    .collect();
            }
            _ => {
                let known: Vec<&str> = std::iter::once("level").chain(option).collect();
                problems.push(unknown(
                    file,
                    key,
                    name,
                    &known,
                    &format!("`{}`", rule.id()),
                ));
            }
        }
    }
}

/// The JSON Schema of `xmeta.yaml` (`xmeta schema config`).
pub fn schema() -> serde_json::Value {
    use serde_json::json;
    let level = json!({"enum": ["off", "warning", "error"]});
    let mut rules = serde_json::Map::new();
    for rule in Rule::ALL {
        let mut props = serde_json::Map::new();
        props.insert("level".into(), level.clone());
        match rule {
            Rule::TooShort => {
                props.insert(
                    "min_chars".into(),
                    json!({"type": "integer", "minimum": 1, "maximum": 1000}),
                );
            }
            Rule::Placeholder => {
                props.insert(
                    "words".into(),
                    json!({"type": "array", "items": {"type": "string"}}),
                );
            }
            Rule::RedundantPrefix => {
                props.insert(
                    "prefixes".into(),
                    json!({"type": "array", "items": {"type": "string"}}),
                );
            }
            _ => {}
        }
        rules.insert(
            rule.id().into(),
            json!({"description": rule.summary(), "oneOf": [level, {"type": "object", "additionalProperties": false, "properties": props}]}),
        );
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "xmeta lint configuration (xmeta.yaml)",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "lint": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "rules": {"type": "object", "additionalProperties": false, "properties": rules}
                }
            },
            "review": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "media_hosts": {
                        "description": "Hosts whose images a plan's review table may show beside alt text (default: X's media hosts, pbs.twimg.com and video.twimg.com); only https URLs with a plain path on these hosts are shown.",
                        "type": "array",
                        "items": {"type": "string", "pattern": "^[a-z0-9-]+(\\.[a-z0-9-]+)+$"}
                    }
                }
            }
        }
    })
}
