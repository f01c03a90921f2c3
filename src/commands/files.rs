//! `docent files`: what the index knows.

use std::process::ExitCode;

use docent_engine::Context;
use docent_store::Manifest;

use super::{display_path, shown};
use crate::cli::FilesArgs;

pub fn run(ctx: &Context, args: &FilesArgs) -> anyhow::Result<ExitCode> {
    let Some(manifest) = Manifest::open_existing(&ctx.paths.data_dir)? else {
        anyhow::bail!(
            "no index in {} yet\nhint: run `docent index <FOLDER>` first",
            ctx.paths.data_dir.display()
        );
    };
    let records: Vec<_> = manifest
        .all()?
        .into_iter()
        .filter(|r| {
            args.status
                .as_deref()
                .is_none_or(|s| r.status.as_str() == s)
        })
        .collect();
    if args.json {
        let stats = manifest.stats()?;
        let out = serde_json::json!({ "files": records, "totals": stats });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &records {
        let what = match (&r.parser, &r.reason) {
            (_, Some(reason)) => reason.clone(),
            (Some(p), None) => format!("{p}, {} chunks", r.chunks),
            (None, None) => String::new(),
        };
        println!(
            "{:<8} {}  {}",
            r.status.as_str(),
            display_path(&r.path),
            shown(&what)
        );
    }
    let s = manifest.stats()?;
    println!(
        "{} files: {} indexed, {} skipped, {} failed; {} documents, {} chunks",
        s.files, s.indexed, s.skipped, s.failed, s.documents, s.chunks
    );
    Ok(ExitCode::SUCCESS)
}
