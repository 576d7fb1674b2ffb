//! xmeta: GitOps for X media metadata. Manifests → desired set → plan
//! (desired vs last-applied) → requests → confirmations → state.

#![forbid(unsafe_code)]

// Unix file modes, file locks, signals and process rlimits carry the state's
// and the credentials' guarantees; no other platform is supported.
#[cfg(not(unix))]
compile_error!("xmeta supports Unix-like systems only (Linux, macOS, the BSDs)");

pub mod annotations;
pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod fs_util;
pub mod lint;
pub mod logging;
pub mod manifest;
pub mod model;
pub mod output;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod provenance;
pub mod refresh;
pub mod saved_plan;
pub mod schemas;
pub mod shutdown;
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
    let mut secrets = Vec::new();
    let result = config::from_cli(cli).and_then(|config| {
        logging::init(config.verbose, config.stderr_color, config.rust_log.clone());
        secrets = config.state_secrets();
        commands::run(config)
    });
    match result {
        Ok(exit) => exit,
        Err(e) => {
            match e.downcast_ref::<error::InvalidManifests>() {
                Some(invalid) => logging::note(&invalid.to_string()),
                None => {
                    // The state's password, should any message carry it.
                    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                    logging::line("error", &untrusted::scrub(&format!("{e:#}"), &secrets))
                }
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
            logging::line(
                "hint",
                &format!("did you mean `--{name}`? xmeta's long flags take two dashes"),
            );
        }
    }
    Exit::Error
}
