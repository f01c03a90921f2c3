//! `docent index`: ingest once and exit.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

use docent_engine::{Context, FileOutcome, IngestEvent, IngestSummary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{display_path, shown};
use crate::cli::{GlobalArgs, IndexArgs};

pub async fn run(ctx: &Context, global: &GlobalArgs, args: &IndexArgs) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stderr().is_terminal() && !global.quiet;
    let bar = Mutex::new(None::<ProgressBar>);
    let quiet = global.quiet;

    let on_event = |event: IngestEvent<'_>| match event {
        IngestEvent::Planned {
            files,
            to_read,
            unchanged,
        } => {
            if interactive && to_read > 0 {
                let pb = ProgressBar::with_draw_target(
                    Some(to_read as u64),
                    ProgressDrawTarget::stderr(),
                );
                pb.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                if let Ok(mut b) = bar.lock() {
                    *b = Some(pb);
                }
            } else if !quiet {
                eprintln!("{files} files found, {to_read} to read, {unchanged} unchanged");
            }
        }
        IngestEvent::File { path, outcome } => {
            let name = display_path(&path.to_string_lossy());
            let line = match outcome {
                FileOutcome::Indexed { chunks, .. } => {
                    format!("indexed   {name} ({})", plural(*chunks as u64, "chunk"))
                }
                FileOutcome::Unchanged => format!("unchanged {name}"),
                FileOutcome::Moved { from } => {
                    format!("moved     {name} (was {})", display_path(from))
                }
                FileOutcome::Skipped { reason } => {
                    format!("skipped   {name}: {}", shown(&reason.to_string()))
                }
                FileOutcome::Failed { reason } => {
                    format!("failed    {name}: {}", shown(&reason.to_string()))
                }
            };
            let guard = bar.lock().ok();
            match guard.as_ref().and_then(|b| b.as_ref()) {
                Some(pb) => {
                    if matches!(outcome, FileOutcome::Failed { .. }) {
                        pb.println(line);
                    }
                    pb.set_message(name);
                    pb.inc(1);
                }
                None if !quiet => eprintln!("{line}"),
                None => {}
            }
        }
        IngestEvent::Repaired {
            orphans_removed,
            stale_files,
        } => {
            eprintln!(
                "repaired the index after an interrupted run: {orphans_removed} orphan chunks removed, {stale_files} files to index again"
            );
        }
        IngestEvent::Quarantined { path, reason } => {
            eprintln!(
                "warning: {}: {}",
                display_path(&path.to_string_lossy()),
                shown(reason)
            );
        }
        IngestEvent::WalkIssue { path, message } => {
            if !quiet || interactive {
                eprintln!(
                    "warning: {}: {}",
                    display_path(&path.to_string_lossy()),
                    shown(message)
                );
            }
        }
    };

    let summary = match via_daemon(ctx, &args.paths, quiet)? {
        Some(s) => s,
        None => docent_engine::ingest(ctx, &args.paths, &on_event).await?,
    };
    if let Ok(mut b) = bar.lock()
        && let Some(pb) = b.take()
    {
        pb.finish_and_clear();
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if summary.errors() > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// While the daemon runs it holds the write lock: it does the indexing, and this process
/// prints its summary.
fn via_daemon(
    ctx: &Context,
    paths: &[std::path::PathBuf],
    quiet: bool,
) -> anyhow::Result<Option<IngestSummary>> {
    if super::daemon::live(ctx).is_none() {
        return Ok(None);
    }
    let mut abs = Vec::new();
    for p in paths {
        abs.push(std::path::absolute(p)?);
    }
    if !quiet {
        eprintln!("the daemon is running: it indexes these paths now");
    }
    let req = docent_daemon::control::Request::Index { paths: abs };
    match super::daemon::ask_daemon(ctx, &req)? {
        None => Ok(None),
        Some(docent_daemon::control::Reply::Indexed { summary }) => {
            Ok(Some(serde_json::from_value(summary)?))
        }
        Some(docent_daemon::control::Reply::Error { message }) => anyhow::bail!("{message}"),
        Some(other) => anyhow::bail!("unexpected reply from the daemon: {other:?}"),
    }
}

fn print_summary(s: &IngestSummary) {
    let mut line = format!(
        "{} files seen: {} indexed, {} unchanged",
        s.files_seen, s.files_indexed, s.files_unchanged
    );
    if s.files_moved > 0 {
        line.push_str(&format!(", {} moved", s.files_moved));
    }
    line.push_str(&format!(", {} skipped", s.files_skipped.len()));
    if s.files_removed > 0 {
        line.push_str(&format!(", {} removed", s.files_removed));
    }
    println!("{line}");
    println!(
        "{} in {} ({} stored now: {} embedded, {} from cache); {:.1} s",
        plural(s.chunks, "chunk"),
        plural(s.documents, "document"),
        s.chunks_indexed,
        s.chunks_embedded,
        s.chunks_cached,
        s.elapsed_ms as f64 / 1000.0
    );
    if !s.files_skipped.is_empty() {
        let mut by_reason: BTreeMap<(bool, &str), Vec<&str>> = BTreeMap::new();
        for f in &s.files_skipped {
            by_reason
                .entry((f.error, f.reason.as_str()))
                .or_default()
                .push(&f.path);
        }
        println!("skipped:");
        for ((error, reason), paths) in by_reason {
            let tag = if error { "error" } else { "skipped" };
            println!("  {tag}: {} ({})", shown(reason), paths.len());
            for p in paths.iter().take(10) {
                println!("    {}", display_path(p));
            }
            if paths.len() > 10 {
                println!("    … and {} more", paths.len() - 10);
            }
        }
    }
    if !s.warnings.is_empty() {
        println!("warnings:");
        for w in &s.warnings {
            println!("  {}: {}", display_path(&w.path), shown(&w.reason));
        }
    }
    if s.errors() > 0 {
        println!(
            "{} file(s) could not be indexed; fix them and run `docent index` again",
            s.errors()
        );
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
