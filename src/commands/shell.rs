//! `xmeta completions SHELL` and `xmeta man`: generated from the same
//! clap definition that parses the command line, so they never drift.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::commands::Exit;
use crate::output::Output;

// A Result like every command's, for the one dispatcher.
#[allow(clippy::unnecessary_wraps)]
pub fn completions(shell: clap_complete::Shell, out: Output) -> anyhow::Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "xmeta", &mut script);
    out.print(&String::from_utf8_lossy(&script));
    Ok(Exit::Success)
}

pub fn man(out: Output) -> anyhow::Result<Exit> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    out.print(&String::from_utf8_lossy(&page));
    Ok(Exit::Success)
}
