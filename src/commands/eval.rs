//! `docent eval retrieval`: retrieval quality on a BEIR dataset.

use std::io::IsTerminal;
use std::process::ExitCode;

use docent_engine::{Context, EvalEvent};
use docent_retrieve::{Fusion, Mode};

use crate::cli::{EvalCommand, GlobalArgs};

pub async fn run(
    ctx: &Context,
    global: &GlobalArgs,
    cmd: &EvalCommand,
) -> anyhow::Result<ExitCode> {
    let EvalCommand::Retrieval(args) = cmd;
    let modes = match args.mode.as_str() {
        "all" => vec![Mode::Bm25, Mode::Vector, Mode::Hybrid],
        m => vec![docent_engine::parse_mode(m)?],
    };
    let s = &ctx.settings.search;
    let rrf = Fusion::Rrf { k: s.rrf_k };
    let score = Fusion::Score { alpha: s.alpha };
    let fusions = match args.fusion.as_deref().unwrap_or(s.fusion.as_str()) {
        "both" => vec![rrf, score],
        "score" => vec![score],
        _ => vec![rrf],
    };
    let show = std::io::stderr().is_terminal() && !global.quiet;
    let quiet = global.quiet;
    let results = docent_engine::eval_retrieval(
        ctx,
        &args.dir,
        &args.split,
        &modes,
        &fusions,
        &|e| match e {
            EvalEvent::Loaded { docs, queries } if !quiet => {
                eprintln!("{docs} documents, {queries} queries with judgements");
            }
            EvalEvent::Indexed { docs, total } if show => eprint!("\rindexed {docs}/{total}"),
            EvalEvent::Indexed { docs, total } if !quiet && docs == total => {
                eprintln!("indexed {docs}/{total}")
            }
            EvalEvent::Evaluated { mode } if !quiet => eprintln!("\revaluated {mode}"),
            _ => {}
        },
    )
    .await?;
    if args.json {
        let out = if results.len() == 1 {
            serde_json::to_string_pretty(&results[0])?
        } else {
            serde_json::to_string_pretty(&results)?
        };
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:>8} {:>10} {:>10} {:>8} {:>10} {:>10}",
        "mode", "queries", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms"
    );
    for r in &results {
        let mode = match &r.fusion {
            Some(f) => format!("{} ({f})", r.mode),
            None => r.mode.clone(),
        };
        println!(
            "{:<16} {:>8} {:>10.4} {:>10.4} {:>8.4} {:>10.1} {:>10.1}",
            mode,
            r.queries,
            r.ndcg_at_10,
            r.recall_at_100,
            r.mrr_at_10,
            r.query_p50_ms,
            r.query_p95_ms
        );
    }
    if let Some(r) = results.first() {
        println!("indexed {} chunks in {:.1} s", r.chunks, r.index_s);
    }
    Ok(ExitCode::SUCCESS)
}
