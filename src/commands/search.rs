//! `docent search`: ranked hits with their locations and highlighted snippets.

use std::io::IsTerminal;
use std::process::ExitCode;

use docent_engine::{Context, SearchRequest};
use serde_json::json;

use super::{display_path, shown};
use crate::cli::SearchArgs;

pub async fn run(ctx: &Context, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let mode =
        docent_engine::parse_mode(args.mode.as_deref().unwrap_or(&ctx.settings.search.mode))?;
    let req = SearchRequest {
        query: args.query.join(" "),
        k: args.k.unwrap_or(ctx.settings.search.k),
        mode,
    };
    let result = docent_engine::search(ctx, &req).await?;
    if args.json {
        let hits: Vec<_> = result
            .hits
            .iter()
            .map(|h| {
                let hit = &h.hit;
                json!({
                    "chunk_id": hit.chunk_id,
                    "path": hit.path,
                    "part": hit.part,
                    "kind": hit.kind,
                    "page": hit.page,
                    "lines": [hit.lines.start, hit.lines.end],
                    "heading": hit.heading,
                    "title": hit.title,
                    "subject": hit.subject,
                    "from": hit.from,
                    "date": hit.date,
                    "score": hit.score,
                    "snippet": docent_retrieve::render_plain(&h.snippet),
                })
            })
            .collect();
        let out = json!({
            "hits": hits,
            "mode": result.mode,
            "warnings": result.warnings,
            "took_ms": result.took_ms,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for w in &result.warnings {
        eprintln!("warning: {}", shown(w));
    }
    if result.hits.is_empty() {
        println!("no results");
        return Ok(ExitCode::SUCCESS);
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for (i, h) in result.hits.iter().enumerate() {
        let hit = &h.hit;
        let mut loc = display_path(&hit.path);
        if let Some(part) = &hit.part {
            loc.push_str(&format!(" [{}]", shown(part)));
        }
        match hit.page {
            Some(p) => loc.push_str(&format!("  page {p}")),
            None => loc.push_str(&format!("  lines {}-{}", hit.lines.start, hit.lines.end)),
        }
        println!("{:>2}. {loc}  ({:.3})", i + 1, hit.score);
        let label = match (&hit.subject, &hit.heading, &hit.title) {
            (Some(s), _, _) => Some(match (&hit.from, &hit.date) {
                (Some(f), Some(d)) => format!("{s} — {f}, {}", d.get(..10).unwrap_or(d)),
                _ => s.clone(),
            }),
            (None, Some(h), _) => Some(h.clone()),
            (None, None, Some(t)) => Some(t.clone()),
            _ => None,
        };
        if let Some(l) = label {
            println!("    {}", shown(&l));
        }
        let snippet = if color {
            docent_retrieve::render_ansi(&h.snippet)
        } else {
            docent_retrieve::render_plain(&h.snippet)
        };
        println!("    {snippet}");
        println!();
    }
    eprintln!(
        "{} results in {} ms ({})",
        result.hits.len(),
        result.took_ms,
        result.mode
    );
    Ok(ExitCode::SUCCESS)
}
