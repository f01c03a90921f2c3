//! `docent reindex`: new vectors for every chunk with the configured embedding model.

use std::io::IsTerminal;
use std::process::ExitCode;

use docent_engine::Context;

use crate::cli::{GlobalArgs, ReindexArgs};

pub async fn run(
    ctx: &Context,
    global: &GlobalArgs,
    args: &ReindexArgs,
) -> anyhow::Result<ExitCode> {
    let show = std::io::stderr().is_terminal() && !global.quiet;
    let summary = docent_engine::reindex(ctx, &|n| {
        if show {
            eprint!("\r{n} chunks re-embedded");
        }
    })
    .await?;
    if show {
        eprintln!();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "re-embedded {} chunks: {} → {} in {:.1} s",
            summary.chunks,
            summary.from_model,
            summary.to_model,
            summary.elapsed_ms as f64 / 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
