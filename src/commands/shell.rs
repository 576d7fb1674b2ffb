//! `xmeta completions SHELL` and `xmeta man`: generated from the same
//! clap definition that parses the command line (`cli::command()`), so
//! they never drift, and offer each flag only where it applies.

use std::path::Path;

use anyhow::Context;
use roff::{bold, roman, Roff};

use crate::cli::{self, EnvKind};
use crate::commands::Exit;
use crate::output::Output;

// A Result like every command's, for the one dispatcher.
#[allow(clippy::unnecessary_wraps)]
pub fn completions(shell: clap_complete::Shell, out: Output) -> anyhow::Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli::completion_command(), "xmeta", &mut script);
    out.print(&String::from_utf8_lossy(&script));
    Ok(Exit::Success)
}

/// `xmeta.1` on stdout, or with a directory every page written into it
/// (each named on stdout).
pub fn man(dir: Option<&Path>, out: Output) -> anyhow::Result<Exit> {
    let pages = pages(cli::command());
    match dir {
        None => out.print(&pages[0].1),
        Some(dir) => {
            for (name, page) in &pages {
                let file = dir.join(name);
                crate::fs_util::write_private(&file, page.as_bytes())
                    .with_context(|| format!("cannot write {}", file.display()))?;
                out.print(&format!("{}\n", file.display()));
            }
        }
    }
    Ok(Exit::Success)
}

/// Every page: `xmeta.1` first, then one per subcommand, depth first
/// (`xmeta-state-list.1`), each as (file name, roff).
pub fn pages(mut root: clap::Command) -> Vec<(String, String)> {
    fn walk(cmd: &clap::Command, top: &str, pages: &mut Vec<(String, String)>) {
        pages.push(page(cmd, top));
        for sub in cmd.get_subcommands() {
            let top = if top.is_empty() { sub.get_name() } else { top };
            walk(sub, top, pages);
        }
    }
    // Built once from the top, so that each subcommand carries its full
    // name (`xmeta-state-list`) and its inherited flags.
    // No `help` subcommands: a page per real subcommand, none naming
    // a `xmeta-state-help(1)` that is not written.
    fn no_help(cmd: clap::Command) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        names
            .iter()
            .fold(cmd.disable_help_subcommand(true), |cmd, name| {
                cmd.mut_subcommand(name, no_help)
            })
    }
    root = no_help(root);
    root.build();
    let mut pages = Vec::new();
    walk(&root, "", &mut pages);
    pages
}

/// One page: `clap_mangen`'s sections (without the help text's examples and
/// environment, which get sections of their own), then EXIT STATUS,
/// ENVIRONMENT, EXAMPLES and SEE ALSO. `top` is the top-level subcommand
/// the page belongs to ("" for xmeta itself).
fn page(cmd: &clap::Command, top: &str) -> (String, String) {
    let about = cmd.get_about().map(ToString::to_string).unwrap_or_default();
    // "Does X. Example: xmeta a; xmeta b" -> the description, the examples.
    let (description, examples) = match about.split_once("Example: ") {
        Some((description, examples)) => (
            description.trim_end().to_string(),
            examples.split("; ").map(str::to_string).collect(),
        ),
        None if top.is_empty() => (
            about.clone(),
            cli::EXAMPLES.iter().map(ToString::to_string).collect(),
        ),
        None => (about.clone(), Vec::new()),
    };
    let mut trimmed = cmd.clone().about(description).after_help(None::<&str>);
    if !top.is_empty() {
        trimmed = trimmed.version(None::<&str>);
    }
    // The date the pages were made (as mandoc would assume); the source
    // names the version on every page.
    let today = crate::time::Timestamp::now().to_string();
    let version = env!("CARGO_PKG_VERSION");
    let man = clap_mangen::Man::new(trimmed);
    let name = man.get_filename();
    let man = man
        .title(name.trim_end_matches(".1").to_uppercase())
        .date(today.get(..10).unwrap_or_default())
        .source(format!("xmeta {version}"))
        .manual("xmeta manual");
    let mut text = Vec::new();
    man.render(&mut text).expect("writing to a Vec");
    let text = String::from_utf8(text).expect("roff from UTF-8 text");

    let mut more = Roff::new();
    more.control("SH", ["EXIT STATUS"]);
    let detailed = cmd
        .get_arguments()
        .any(|a| a.get_id() == "detailed_exitcode");
    let mut statuses = vec![
        ("0", "Success."),
        ("1", "An error: manifests that do not validate (nothing is sent), a failed request, a state that cannot be read or written, or a usage error (a mistyped flag exits 1, never 2)."),
    ];
    if top == "lint" {
        statuses[1].1 = "A finding of severity error, or an error as for every command.";
    }
    if detailed {
        statuses.push(("2", "With --detailed-exitcode: changes are present."));
    } else if top.is_empty() {
        statuses.push((
            "2",
            "plan and apply with --detailed-exitcode: changes are present.",
        ));
    }
    for (code, what) in statuses {
        more.control("TP", [])
            .text([bold(code)])
            .text([roman(what)]);
    }
    let kinds: &[EnvKind] = match top {
        "" | "plan" | "apply" | "watch" | "refresh" => {
            &[EnvKind::State, EnvKind::Api, EnvKind::Output]
        }
        "adopt" | "state" => &[EnvKind::State, EnvKind::Output],
        _ => &[EnvKind::Output],
    };
    more.control("SH", ["ENVIRONMENT"]);
    for (var, what, kind) in cli::ENVIRONMENT {
        // The OAuth 1.0a four share one line of --help, not a tag.
        for var in var.split(", ").filter(|_| kinds.contains(kind)) {
            more.control("TP", [])
                .text([bold(var)])
                .text([roman(*what)]);
        }
    }
    if !examples.is_empty() {
        more.control("SH", ["EXAMPLES"]);
        for (i, example) in examples.iter().enumerate() {
            if i > 0 {
                more.control("br", []);
            }
            more.text([roman(format!("$ {example}"))]);
        }
    }
    more.control("SH", ["SEE ALSO"]);
    let parent = name.rsplit_once('-').map(|(p, _)| format!("{p}(1)"));
    let see: Vec<String> = parent
        .into_iter()
        .chain(
            cmd.get_subcommands()
                .map(|s| format!("{}-{}(1)", name.trim_end_matches(".1"), s.get_name())),
        )
        .collect();
    let see = if see.is_empty() {
        "xmeta(1)".to_string()
    } else {
        see.join(", ")
    };
    more.text([roman(see)]);
    // Roff::render starts with the preamble Man::render already wrote.
    let preamble = Roff::new().render();
    let more = more.render();
    let more = more.strip_prefix(&preamble).unwrap_or(&more);
    let text = match text.find(".SH VERSION") {
        Some(at) => format!("{}{more}{}", &text[..at], &text[at..]),
        None => text + more,
    };
    (name, tidy(&text))
}

/// What `mandoc -Tlint` asks of `clap_mangen`'s roff, without changing the
/// rendered page: a blank line between two breaks is one `.sp`; no
/// trailing blanks; text lines of at most 80 bytes (broken at spaces,
/// which fill mode joins again; a piece that would start like a control
/// line gets `\&`).
fn tidy(text: &str) -> String {
    let text = text
        .replace("\n.br\n\n.br\n", "\n.sp\n")
        .replace("\n\n.br\n", "\n.sp\n");
    // mandoc measures a non-ASCII character as its escape, `\[u2026]`.
    let width = |s: &str| {
        s.chars()
            .map(|c| if c.is_ascii() { 1 } else { 8 })
            .sum::<usize>()
    };
    let mut out = String::with_capacity(text.len());
    let mut tag = false;
    for line in text.lines() {
        let line = line.trim_end();
        // The line after `.TP` is the tag: one line, never broken.
        let is_tag = std::mem::replace(&mut tag, line == ".TP");
        if is_tag || line.starts_with('.') || width(line) <= 80 {
            out += line;
            out.push('\n');
            continue;
        }
        let mut current = String::new();
        for word in line.split(' ') {
            if !current.is_empty() && width(&current) + 1 + width(word) > 80 {
                out += &current;
                out.push('\n');
                current.clear();
            }
            if current.is_empty() {
                if word.starts_with('.') || word.starts_with('\'') {
                    current += "\\&";
                }
            } else {
                current.push(' ');
            }
            current += word;
        }
        out += &current;
        out.push('\n');
    }
    out
}
