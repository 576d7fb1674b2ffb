//! One orchestration function per subcommand.

mod adopt;
mod apply;
mod plan;
mod state;
mod validate;
mod watch;

use crate::config::{Action, Config};
use crate::output::Output;

/// The process exit status: 0 success, 1 error, 2 changes present
/// (`plan --detailed-exitcode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Changes = 2,
}

pub fn run(config: Config) -> anyhow::Result<Exit> {
    let out = Output {
        color: config.color,
    };
    match &config.action {
        Action::Validate { paths } => validate::run(paths, out),
        Action::Plan(plan) => plan::run(&config, plan, out),
        Action::Apply(apply) => apply::run(&config, apply, out),
        Action::Watch(watch) => watch::run(&config, watch, out),
        Action::Adopt { paths, targets } => adopt::run(&config, paths, targets, out),
        Action::State(action) => state::run(&config, action, out),
    }
}
