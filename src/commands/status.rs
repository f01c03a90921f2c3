//! `docent status`: what is indexed, and what the daemon is doing.

use std::process::ExitCode;

use docent_core::date::iso_utc;
use docent_daemon::Folders;
use docent_daemon::control::LiveState;
use docent_engine::{Context, RecordedReason};
use docent_store::{FileRecord, FileStatus, Manifest};
use serde_json::json;

use super::{display_path, shown};
use crate::cli::StatusArgs;

/// Files indexed, chunks stored, and when the index last changed (Unix seconds), from the
/// manifest's records and, when it runs, the daemon's state.
pub fn totals(records: &[FileRecord], live: Option<&LiveState>) -> (usize, u64, Option<i64>) {
    let indexed = records
        .iter()
        .filter(|r| r.status == FileStatus::Indexed)
        .count();
    let chunks = records.iter().map(|r| u64::from(r.chunks)).sum();
    let last_indexed = records.iter().map(|r| r.indexed_at).max();
    let last_update = live.and_then(|s| s.last_update).max(last_indexed);
    (indexed, chunks, last_update)
}

pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let live = super::daemon::live(ctx);
    let records = match Manifest::open_existing(&ctx.paths.data_dir)? {
        Some(m) => m.all()?,
        None => Vec::new(),
    };
    let (indexed, chunks, last_update) = totals(&records, live.as_ref());
    let mut errors = Vec::new();
    let mut quarantined = Vec::new();
    for r in records.iter().filter(|r| r.status == FileStatus::Failed) {
        let reason = r.reason.clone().unwrap_or_default();
        let entry = json!({"path": r.path, "reason": reason});
        if RecordedReason::of(&reason) == RecordedReason::Quarantined {
            quarantined.push(entry);
        } else {
            errors.push(entry);
        }
    }
    let last_update = last_update.map(iso_utc);
    let folders: Vec<String> = match &live {
        Some(s) => s.folders.iter().map(|f| f.path.clone()).collect(),
        None => Folders::load(&ctx.paths.data_dir)?
            .list
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    let out = json!({
        "daemon": if live.is_some() { "running" } else { "stopped" },
        "pid": live.as_ref().map(|s| s.pid),
        "folders": folders,
        "files": indexed,
        "chunks": chunks,
        "queue": live.as_ref().map_or(0, |s| s.queue),
        "current": live.as_ref().and_then(|s| s.current.clone()),
        "errors": errors,
        "quarantined": quarantined,
        "last_update": last_update,
        "embedder": ctx.settings.embed.model,
        "phase": live.as_ref().map(|s| s.phase.clone()),
        "paused": live.as_ref().is_some_and(|s| s.paused),
        "updates": live.as_ref().map_or(0, |s| s.updates),
        "watch": live.as_ref().map(|s| s.folders.clone()),
        "problems": live.as_ref().map(|s| s.problems.clone()).unwrap_or_default(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &live {
        Some(s) => {
            println!(
                "daemon:      running (pid {}), {}{}",
                s.pid,
                s.phase,
                if s.paused { ", paused" } else { "" }
            );
            if s.queue > 0 {
                println!("queue:       {} waiting", s.queue);
            }
            if let Some(c) = &s.current {
                println!("current:     {}", display_path(c));
            }
        }
        None => println!("daemon:      stopped (`docent daemon start` keeps the folders current)"),
    }
    match &live {
        Some(s) if !s.folders.is_empty() => {
            for (i, f) in s.folders.iter().enumerate() {
                let label = if i == 0 { "folders:" } else { "" };
                println!("{label:<12} {} ({})", shown(&f.path), f.mode);
            }
        }
        _ if folders.is_empty() => println!("folders:     none (`docent folders add <DIR>`)"),
        _ => {
            for (i, f) in folders.iter().enumerate() {
                let label = if i == 0 { "folders:" } else { "" };
                println!("{label:<12} {}", shown(f));
            }
        }
    }
    println!("indexed:     {indexed} files, {chunks} chunks");
    println!(
        "last update: {}",
        out["last_update"].as_str().unwrap_or("never")
    );
    println!("embedder:    {}", ctx.settings.embed.model);
    if !errors.is_empty() {
        println!(
            "errors:      {} files (`docent files --status failed`)",
            errors.len()
        );
    }
    for q in &quarantined {
        println!(
            "quarantined: {}",
            display_path(q["path"].as_str().unwrap_or_default())
        );
    }
    if let Some(s) = &live {
        for p in &s.problems {
            println!("problem:     {}", shown(p));
        }
    }
    Ok(ExitCode::SUCCESS)
}
