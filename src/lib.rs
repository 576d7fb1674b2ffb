//! xmeta: GitOps for X media metadata. Manifests → desired set → plan
//! (desired vs last-applied) → requests → confirmations → state.

#![forbid(unsafe_code)]
// Clippy's pedantic group is on (Cargo.toml); what it flags that this code
// means, with the reason. Test, bench and example roots allow the same.
// Counts, sizes, seconds and serials stay far below 2^52 and i32::MAX; the
// conversions that meet hostile input (serials, IDs, ports) use try_from.
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
// No library API: every error reaches a user as a message, and the messages
// are what the tests and snapshots pin down.
#![allow(clippy::missing_errors_doc)]
// Command flows read top to bottom (plan, apply); splitting them by length
// would scatter one sequence of steps.
#![allow(clippy::too_many_lines)]
// Configuration mirrors the CLI's switches, one bool per flag.
#![allow(clippy::struct_excessive_bools)]
// Text built in a String cannot fail to be written; `write!` would add an
// ignored Result to each line.
#![allow(clippy::format_push_string)]
// Owned arguments where the caller is done with the value (a Config, a
// Document): call sites stay plain.
#![allow(clippy::needless_pass_by_value)]

// Unix file modes, file locks, signals and process rlimits carry the state's
// and the credentials' guarantees; no other platform is supported.
#[cfg(not(unix))]
compile_error!("xmeta supports Unix-like systems only (Linux, macOS, the BSDs)");

pub(crate) mod annotations;
pub(crate) mod apply;
pub(crate) mod apply_summary;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod drop_later;
pub(crate) mod error;
pub(crate) mod fs_util;
pub(crate) mod hashing;
pub(crate) mod import;
pub(crate) mod intake;
pub(crate) mod known;
pub(crate) mod lint;
pub(crate) mod logging;
pub(crate) mod manifest;
pub(crate) mod model;
pub(crate) mod os_user;
pub(crate) mod output;
pub(crate) mod parallel;
pub(crate) mod plan;
pub(crate) mod planner;
pub(crate) mod progress;
pub(crate) mod provenance;
pub(crate) mod read_ahead;
pub(crate) mod refresh;
pub(crate) mod saved_plan;
pub(crate) mod schemas;
pub(crate) mod shutdown;
pub(crate) mod state;
// The test and benchmark data generator, here for the unit tests; the
// integration tests and benches include the same file (`#[path]`), so
// serde_yaml, which writes it, stays a dev-dependency.
#[cfg(test)]
pub mod testdata;
pub(crate) mod time;
pub(crate) mod untrusted;
pub(crate) mod watch;
pub(crate) mod x_api;

use commands::Exit;

/// What the benchmarks and fuzz targets drive directly, below the binary.
/// Not an API: it changes with the code.
#[doc(hidden)]
pub mod internals {
    pub use crate::manifest::{assemble, parse_both, parse_text, Desired, Entry, MediaSet};
    pub use crate::model::MediaId;
    pub use crate::plan::{diff, render_text, Targets};
    pub use crate::planner::Inputs;
    pub use crate::state::{open_reader, open_writer, Location, Provenance, Record, StateWriter};
    pub use crate::time::Timestamp;
    pub use crate::watch::{AppliedCache, Workspace};
}

/// How the binary's allocator gives freed memory back to the OS (set once,
/// by `main`: the library has no unsafe code).
static GIVE_BACK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

pub fn set_give_back(give_back: fn()) {
    let _ = GIVE_BACK.set(give_back);
}

pub(crate) fn give_back() {
    if let Some(give_back) = GIVE_BACK.get() {
        give_back();
    }
}

/// Parses the command line, runs the command, prints any error (the one
/// place errors are printed) and returns the exit status.
#[must_use]
pub fn run() -> std::process::ExitCode {
    survive_file_size_limit();
    std::process::ExitCode::from(outcome() as u8)
}

/// Past `ulimit -f`, the kernel sends SIGXFSZ, whose default kills the
/// process without a word: a state write or an `--out` file would end
/// xmeta silently. With a handler installed, the write fails with EFBIG
/// instead, and is reported as a full disk (ENOSPC) is. tokio installs the
/// handler (no unsafe code here); it stays for the life of the process.
fn survive_file_size_limit() {
    use tokio::signal::unix::{signal, SignalKind};
    let raw = rustix::process::Signal::XFSZ.as_raw();
    let installed = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .and_then(|runtime| {
            let _context = runtime.enter();
            signal(SignalKind::from_raw(raw)).map(drop)
        });
    if let Err(e) = installed {
        tracing::debug!("cannot handle SIGXFSZ ({e}); a file-size limit would end xmeta");
    }
}

fn outcome() -> Exit {
    let parsed = cli::command()
        .try_get_matches()
        .and_then(|matches| <cli::Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let mut secrets = Vec::new();
    let result = config::from_cli(cli).and_then(|config| {
        logging::init(config.verbose, config.stderr_color, config.rust_log.clone());
        secrets = config.state_secrets();
        commands::run(config)
    });
    let result = result.and_then(|exit| match output::failure() {
        Some(e) => Err(anyhow::anyhow!("cannot write the output: {e}")),
        None => Ok(exit),
    });
    match result {
        Ok(exit) => exit,
        Err(e) => {
            logging::error(&e, &secrets);
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
    // Terraform habits: `-auto-approve` for `--auto-approve`; only for a
    // flag xmeta has (`--max-duration -5m` is a bad value, not `--5m`).
    let flags = long_flags(&<cli::Cli as clap::CommandFactory>::command());
    for arg in std::env::args().skip(1) {
        let long = arg
            .strip_prefix('-')
            .filter(|r| r.len() > 1 && !r.starts_with('-'));
        let name = long.map(|r| r.split('=').next().unwrap_or(r));
        if let Some(name) = name.filter(|n| flags.contains(*n)) {
            logging::line(
                "hint",
                &format!("did you mean `--{name}`? xmeta's long flags take two dashes"),
            );
        }
    }
    Exit::Error
}

/// Every long flag of `command` and its subcommands.
fn long_flags(command: &clap::Command) -> std::collections::HashSet<String> {
    let mut flags: std::collections::HashSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    for sub in command.get_subcommands() {
        flags.extend(long_flags(sub));
    }
    flags
}
