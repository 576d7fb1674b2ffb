//! xmeta: GitOps for X media metadata. Manifests → desired set → plan
//! (desired vs last-applied) → requests → confirmations → state.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod fs_util;
pub mod manifest;
pub mod model;
pub mod output;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod saved_plan;
pub mod state;
pub mod untrusted;
pub mod watch;
pub mod x_api;

use clap::Parser;

pub use commands::Exit;

/// Parses the command line, runs the command, prints any error (the one
/// place errors are printed) and returns the exit status.
pub fn run() -> Exit {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(cli.verbose);
    let result = config::from_cli(cli).and_then(commands::run);
    match result {
        Ok(exit) => exit,
        Err(e) => {
            match e.downcast_ref::<error::InvalidManifests>() {
                Some(invalid) => eprintln!("{invalid}"),
                None => eprintln!("error: {e:#}"),
            }
            Exit::Error
        }
    }
}

/// clap exits 2 on a usage error, which `--detailed-exitcode` defines as
/// "changes present": a mistyped flag must fail a CI step, so it is 1.
fn usage_error(e: &clap::Error) -> Exit {
    use clap::error::ErrorKind;
    let _ = e.print();
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return Exit::Success;
    }
    // Terraform habits: `-auto-approve` for `--auto-approve`.
    for arg in std::env::args().skip(1) {
        let long = arg
            .strip_prefix('-')
            .filter(|r| r.len() > 1 && !r.starts_with('-'));
        if let Some(name) = long.map(|r| r.split('=').next().unwrap_or(r)) {
            eprintln!("hint: did you mean `--{name}`? xmeta's long flags take two dashes");
        }
    }
    Exit::Error
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn,xmeta=info",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
