//! `docent inspect`: how one file parses and chunks.

use std::process::ExitCode;

use docent_engine::Context;

use super::display_path;
use crate::cli::InspectArgs;

pub fn run(ctx: &Context, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let ins = docent_engine::inspect(ctx, &args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ins)?);
        return Ok(ExitCode::SUCCESS);
    }
    let format = ins.format.map(|f| f.name()).unwrap_or("unknown");
    println!("{} ({format})", display_path(&ins.path));
    if let Some(reason) = &ins.skipped {
        println!("skipped: {reason}");
        return Ok(ExitCode::SUCCESS);
    }
    for w in &ins.warnings {
        println!("warning: {w}");
    }
    for d in &ins.documents {
        let doc = &d.document;
        println!();
        match &doc.part {
            Some(part) => println!("document {} [{}] {}", doc.id, doc.kind, part),
            None => println!("document {} [{}]", doc.id, doc.kind),
        }
        if let Some(t) = &doc.title {
            println!("  title:    {t}");
        }
        if let Some(p) = doc.pages {
            println!("  pages:    {p}");
        }
        if let Some(e) = &doc.email {
            for (k, v) in [
                ("subject", e.subject.clone()),
                ("from", e.from.clone()),
                ("to", Some(e.to.join(", ")).filter(|s| !s.is_empty())),
                ("cc", Some(e.cc.join(", ")).filter(|s| !s.is_empty())),
                ("date", e.date.clone()),
                ("message", e.message_id.clone()),
                ("thread", e.thread_id.clone()),
            ] {
                if let Some(v) = v {
                    println!("  {k:<9} {v}");
                }
            }
        }
        if let Some(parent) = &doc.parent {
            println!("  parent:   {parent}");
        }
        for (k, v) in &doc.meta {
            println!("  meta.{k}: {v}");
        }
        println!(
            "  {} bytes of text, {} blocks, {} chunks",
            doc.text.len(),
            doc.blocks.len(),
            d.chunks.len()
        );
        for c in &d.chunks {
            let mut loc = String::new();
            if let Some(p) = c.span.page {
                loc.push_str(&format!("page {p}, "));
            }
            loc.push_str(&format!(
                "lines {}-{}",
                c.span.lines.start, c.span.lines.end
            ));
            println!();
            println!(
                "  chunk {} #{} ({loc}, {} tokens, bytes {}..{})",
                c.id, c.ordinal, c.tokens, c.span.bytes.start, c.span.bytes.end
            );
            if let Some(ctx) = &c.context {
                println!("    context: {ctx}");
            }
            let text = if args.full {
                c.text.clone()
            } else {
                preview(&c.text, 160)
            };
            for line in text.lines() {
                println!("    | {line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn preview(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{cut}…")
}
