//! `docent folders add|remove|list`: the folders the daemon keeps indexed.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use docent_daemon::Folders;
use docent_daemon::control::{Reply, Request};
use docent_engine::{Context, Ingester};

use super::daemon::ask_daemon;
use crate::cli::FoldersCommand;

pub async fn run(ctx: &Context, cmd: &FoldersCommand) -> anyhow::Result<ExitCode> {
    let data_dir = &ctx.paths.data_dir;
    let mut folders = Folders::load(data_dir)?;
    match cmd {
        FoldersCommand::List { json } => {
            if *json {
                println!("{}", serde_json::to_string_pretty(&folders.list)?);
            } else if folders.list.is_empty() {
                println!("no folders yet\nhint: `docent folders add <DIR>`");
            } else {
                for f in &folders.list {
                    println!("{}", f.display());
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        FoldersCommand::Add { dirs } => {
            for d in dirs {
                let abs = std::fs::canonicalize(d)
                    .with_context(|| format!("{}: no such folder", d.display()))?;
                if !abs.is_dir() {
                    bail!(
                        "{}: not a folder\nhint: `docent index <FILE>` indexes a single file",
                        d.display()
                    );
                }
                if folders.add(abs.clone()) {
                    println!("added {}", abs.display());
                } else {
                    println!("already watched: {}", abs.display());
                }
            }
            folders.save(data_dir)?;
        }
        FoldersCommand::Remove { dirs } => {
            let mut removed = Vec::new();
            for d in dirs {
                let abs = std::fs::canonicalize(d).unwrap_or(std::path::absolute(d)?);
                if folders.remove(&abs) {
                    removed.push(abs);
                } else {
                    eprintln!("not watched: {}", d.display());
                }
            }
            folders.save(data_dir)?;
            if removed.is_empty() {
                return Ok(ExitCode::from(3));
            }
            if live_reload(ctx)?.is_none() {
                // No daemon: take the files out of the index here.
                let mut ingester = Ingester::open(ctx, &|_| {}).await?;
                for r in &removed {
                    let n = ingester.forget(r).await?;
                    println!("removed {} ({n} files left the index)", r.display());
                }
                ingester.optimize().await?;
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
    if live_reload(ctx)?.is_none() {
        println!(
            "the daemon is not running: `docent daemon start` indexes and watches the folders (or `docent index <DIR>` once)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Tells a running daemon to read the folder list again; prints what it did.
fn live_reload(ctx: &Context) -> anyhow::Result<Option<()>> {
    match ask_daemon(ctx, &Request::Reload)? {
        None => Ok(None),
        Some(Reply::Indexed { summary }) => {
            for a in summary["added"].as_array().into_iter().flatten() {
                println!(
                    "the daemon indexed and now watches {}",
                    a.as_str().unwrap_or_default()
                );
            }
            for r in summary["removed"].as_array().into_iter().flatten() {
                println!(
                    "the daemon stopped watching {}; its files left the index",
                    r.as_str().unwrap_or_default()
                );
            }
            Ok(Some(()))
        }
        Some(Reply::Error { message }) => bail!("the daemon: {message}"),
        Some(_) => Ok(Some(())),
    }
}
