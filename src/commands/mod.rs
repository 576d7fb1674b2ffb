//! One orchestration function per subcommand.

mod adopt;
pub(crate) mod apply;
mod export_stream;
mod history;
mod import;
mod import_check;
mod lint;
mod plan;
mod refresh;
mod shell;
mod state;
mod state_export;
mod state_import;
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

/// The diagnostics as GitHub annotation lines, errors first and capped
/// (the rest are on stderr, where every one is printed).
pub fn annotations(diagnostics: &[crate::error::Diagnostic]) -> String {
    let mut capped = crate::annotations::Capped::default();
    for d in diagnostics {
        capped.push(
            crate::annotations::diagnostic_kind(d),
            crate::annotations::diagnostic(d),
        );
    }
    capped
        .finish("xmeta", "the step's log lists every problem", Vec::new())
        .into_iter()
        .map(|line| line + "\n")
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
        Task::Import(import) => import::run(&config, import, out),
        Task::Lint {
            paths,
            format,
            config: file,
            sarif,
        } => lint::run(
            &config,
            paths,
            lint::Outputs {
                format: *format,
                sarif: sarif.as_deref(),
            },
            file.as_deref(),
            out,
        ),
        Task::ListRules { json } => {
            if *json {
                out.line(&serde_json::to_string_pretty(
                    &crate::lint::catalog::list_json(),
                )?);
            } else {
                out.print(&crate::lint::catalog::list_text());
            }
            Ok(Exit::Success)
        }
        Task::ExplainRule(rule) => {
            out.print(&crate::lint::catalog::explain_text(*rule));
            Ok(Exit::Success)
        }
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
