//! `xmeta plan`: diff the manifests against the state and render the plan.

use anyhow::Context;

use crate::annotations::Kind;
use crate::commands::{annotations, show_invalid, Exit};
use crate::config::{Comment, Config, Format, PlanConfig};
use crate::error::{render, Rendered};
use crate::output::Output;
use crate::plan::{self, write_text};
use crate::planner;
use crate::saved_plan;
use crate::state;

/// The plan; a failure is also written in the format asked for, so a pull
/// request shows why there is no plan (manifests that do not validate are
/// written by `show_invalid`).
pub fn run(config: &Config, args: &PlanConfig, out: Output) -> anyhow::Result<Exit> {
    plan_in_format(config, args, out).inspect_err(|e| {
        if let Rendered::Message(text) = render(e, &config.state_secrets()) {
            match args.format {
                Format::Markdown => {
                    // When writing the comment is what failed, that error
                    // is the one reported: there is nowhere to write this.
                    let parts = plan::render_failure(&text, &args.comment.layout);
                    let _ = write_comment(&parts, &args.comment, out);
                }
                Format::Github => out.line(&crate::annotations::annotation(
                    Kind::Error,
                    None,
                    "xmeta plan",
                    &text,
                )),
                Format::Text | Format::Json => {}
            }
        }
    })
}

fn plan_in_format(config: &Config, args: &PlanConfig, out: Output) -> anyhow::Result<Exit> {
    if let Some(file) = &args.out {
        crate::fs_util::refuse_special(file)
            .with_context(|| format!("cannot write the plan file `{}`", file.display()))?;
    }
    let inputs = planner::Inputs {
        prune: args.prune,
        price_per_request: args.price_per_request,
        live: args.refresh.as_ref().map(|r| planner::Live {
            client: &r.client,
            budget: &r.budget,
        }),
        previews: args.format == Format::Markdown,
        ..planner::Inputs::new(&args.paths, &args.targets, None, config.allow_empty)?
    };
    let planned = planner::plan(&inputs, || state::open_reader(&config.state));
    let (plan, store) = match (planned, args.format) {
        (Ok(planned), _) => planned,
        (Err(e), Format::Markdown) => {
            if let Some(invalid) = e.downcast_ref::<crate::error::InvalidManifests>() {
                let parts = plan::render_invalid(&invalid.0, &args.comment.layout);
                write_comment(&parts, &args.comment, out)?;
            }
            return Err(e);
        }
        (Err(e), Format::Github) => return Err(show_invalid(e, annotations, out)),
        (Err(e), _) => return Err(e),
    };
    if !store.exists() {
        crate::logging::note(&format!(
            "No state at {}: every media is new.",
            config.state
        ));
    }
    if let (Some(refresh), Some(true)) = (&plan.refresh, args.refresh.as_ref().map(|r| r.only)) {
        return report_drift(refresh, args, out);
    }
    let source = config.sources.provenance(&args.paths);
    let document = saved_plan::Document::new(&plan, store.lineage()?, store.serial()?, &source);
    match args.format {
        Format::Text => out.write_with(|w| write_text(&plan, out.color, w)),
        // Streamed: a plan of 100,000 changes is never one string.
        Format::Json => out.write_with(|w| {
            document.write_json(&mut *w)?;
            w.write_all(b"\n")
        }),
        Format::Markdown => {
            write_comment(
                &plan::render_markdown(&plan, &args.comment.layout),
                &args.comment,
                out,
            )?;
        }
        Format::Github => {
            let mut capped = crate::annotations::Capped::default();
            for warning in &plan.warnings {
                capped.push(warning.kind(), warning.annotation());
            }
            let summary = plan::summary_line(&plan);
            let summary =
                crate::annotations::annotation(Kind::Notice, None, "xmeta plan", &summary);
            for line in capped.finish(
                "xmeta plan",
                "the plan (`--format markdown`, `text` or `json`) lists them all",
                vec![summary],
            ) {
                out.line(&line);
            }
        }
    }
    if let Some(file) = &args.out {
        saved_plan::write(file, document)?;
        tracing::info!("plan saved to `{}`", file.display());
    }
    let drifted = plan.refresh.as_ref().is_some_and(|r| !r.drifted.is_empty());
    let changes = plan.has_changes();
    // The process ends next: a plan of 1,000,000 changes is not freed
    // one allocation at a time first.
    crate::drop_later::drop_later(plan);
    Ok(if args.detailed_exitcode && (changes || drifted) {
        Exit::Changes
    } else {
        Exit::Success
    })
}

/// The comment's parts: on stdout, or as `DIR/plan-K.md` with `--split`
/// (older parts there removed, so a workflow never posts a stale one).
fn write_comment(parts: &[String], comment: &Comment, out: Output) -> anyhow::Result<()> {
    let Some(dir) = &comment.split else {
        out.print(parts.first().map_or("", String::as_str));
        return Ok(());
    };
    let cannot = || format!("cannot write the comment's parts to `{}`", dir.display());
    if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        anyhow::bail!(
            "cannot write the comment's parts to `{}`: it is not a directory (a link is not followed); name a directory, which is created if missing",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(cannot)?;
    for (k, part) in parts.iter().enumerate() {
        let file = dir.join(format!("plan-{}.md", k + 1));
        crate::fs_util::write_private(&file, part.as_bytes()).with_context(cannot)?;
    }
    // Only names are listed (no file's content is read), and only this
    // command's own `plan-K.md` names are removed: a link is removed, never
    // followed.
    for entry in std::fs::read_dir(dir).with_context(cannot)? {
        let name = entry.with_context(cannot)?.file_name();
        let number = name.to_str().and_then(|n| {
            n.strip_prefix("plan-")?
                .strip_suffix(".md")?
                .parse::<usize>()
                .ok()
        });
        if number.is_some_and(|k| k > parts.len() || k == 0) {
            std::fs::remove_file(dir.join(&name)).with_context(cannot)?;
        }
    }
    crate::logging::note(&format!(
        "The comment is in {} part{} in `{}`: plan-1.md{}.",
        parts.len(),
        if parts.len() == 1 { "" } else { "s" },
        crate::untrusted::neutralise(&dir.display().to_string(), 200),
        if parts.len() > 1 {
            format!(" to plan-{}.md", parts.len())
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// `plan --refresh-only`: the drift, and nothing planned.
fn report_drift(
    refresh: &crate::refresh::Refresh,
    args: &PlanConfig,
    out: Output,
) -> anyhow::Result<Exit> {
    let plan = plan::Plan {
        refresh: Some(refresh.clone()),
        ..plan::Plan::default()
    };
    match args.format {
        Format::Json => out.line(&crate::untrusted::json_pretty(refresh)?),
        Format::Markdown => write_comment(
            &plan::render_markdown(&plan, &args.comment.layout),
            &args.comment,
            out,
        )?,
        Format::Github => {
            let drifts = refresh.drifted.iter().map(plan::text::drift_header);
            let mut capped = crate::annotations::Capped::default();
            for line in drifts.chain(plan::text::refresh_notes(refresh)) {
                let text = line.strip_prefix("warning: ").unwrap_or(&line);
                capped.push(
                    Kind::Warning,
                    crate::annotations::annotation(Kind::Warning, None, "xmeta drift", text),
                );
            }
            for line in capped.finish(
                "xmeta drift",
                "`xmeta plan --refresh-only` lists them all",
                Vec::new(),
            ) {
                out.line(&line);
            }
        }
        Format::Text => {
            let mut text = Vec::new();
            write_text(&plan, out.color, &mut text)?;
            let text = String::from_utf8_lossy(&text);
            // The drift and notes; the summary is the refresh's own line.
            for line in text
                .lines()
                .filter(|l| !l.starts_with("Plan: ") && !l.starts_with("No changes."))
            {
                out.line(line);
            }
        }
    }
    out.line(&format!(
        "{} Nothing is planned (--refresh-only).",
        refresh.line()
    ));
    Ok(if args.detailed_exitcode && !refresh.drifted.is_empty() {
        Exit::Changes
    } else {
        Exit::Success
    })
}
