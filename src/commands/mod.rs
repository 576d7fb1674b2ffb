//! One orchestration function per subcommand.

mod adopt;
pub(crate) mod apply;
mod history;
mod lint;
mod plan;
mod refresh;
mod shell;
mod state;
mod validate;
mod watch;

use crate::config::{Config, SchemaKind, Task};
use crate::output::Output;

/// The process exit status: 0 success, 1 error, 2 changes present
/// (`plan --detailed-exitcode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Changes = 2,
}

/// Manifests that do not validate, also in the form a CI step reads on
/// stdout (markdown for a PR comment, annotations): the error is still
/// returned, for stderr and exit 1.
pub fn show_invalid(
    error: anyhow::Error,
    render: impl Fn(&[crate::error::Diagnostic]) -> String,
    out: Output,
) -> anyhow::Error {
    if let Some(invalid) = error.downcast_ref::<crate::error::InvalidManifests>() {
        out.print(&render(&invalid.0));
    }
    error
}

/// Every diagnostic as a GitHub annotation line.
pub fn annotations(diagnostics: &[crate::error::Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| crate::annotations::diagnostic(d) + "\n")
        .collect()
}

pub fn run(config: Config) -> anyhow::Result<Exit> {
    let out = Output {
        color: config.color,
    };
    match &config.task {
        Task::Validate { paths, github } => validate::run(&config, paths, *github, out),
        Task::Plan(plan) => plan::run(&config, plan, out),
        Task::Apply(apply) => apply::run(&config, apply, out),
        Task::Watch(watch) => watch::run(&config, watch, out),
        Task::Adopt { paths, targets } => adopt::run(&config, paths, targets, out),
        Task::State(action) => state::run(&config, action, out),
        Task::Refresh { paths, client } => refresh::run(&config, paths, client, out),
        Task::Lint {
            paths,
            format,
            config: file,
        } => lint::run(&config, paths, *format, file.as_deref(), out),
        Task::Schema(kind) => {
            let schema = match kind {
                SchemaKind::Manifest => crate::schemas::manifest(),
                SchemaKind::Plan => crate::schemas::plan(),
                SchemaKind::Config => crate::lint::config::schema(),
            };
            out.line(&serde_json::to_string_pretty(&schema)?);
            Ok(Exit::Success)
        }
        Task::Completions(shell) => shell::completions(*shell, out),
        Task::Man(dir) => shell::man(dir.as_deref(), out),
    }
}
