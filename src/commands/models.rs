//! `docent models`: list, import, verify, recommend.

use std::process::ExitCode;

use docent_engine::Context;
use docent_engine::discover::{FoundModel, Stores};
use docent_engine::models::{InstalledModel, import_model, list_models, verify_model};

use crate::cli::ModelsCommand;

pub fn run(ctx: &Context, cmd: &ModelsCommand) -> anyhow::Result<ExitCode> {
    let dir = &ctx.paths.models_dir;
    match cmd {
        ModelsCommand::List { verify, json } => {
            let mut models = list_models(dir)?;
            let mut all_ok = true;
            if *verify {
                for m in &mut models {
                    all_ok &= verify_model(m)?;
                }
            }
            let found = Stores::from_env().discover();
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"installed": models, "found": found})
                    )?
                );
            } else {
                print_models(dir, &models, ctx);
                print_found(&found);
            }
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        ModelsCommand::Import { path, name } => {
            let m = import_model(dir, path, name.as_deref())?;
            println!(
                "imported {} ({}, {}) into {}",
                m.name,
                m.kind,
                human(m.size_bytes),
                m.path.display()
            );
            if m.kind == "embedding" && m.name != ctx.settings.embed.model {
                println!(
                    "to use it: set `model = \"{}\"` under [embed] in {} and run `docent reindex`",
                    m.name,
                    ctx.paths.config_file().display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Recommend { json } => {
            recommend(*json)?;
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify { name } => {
            let mut models = list_models(dir)?;
            if let Some(n) = name {
                models.retain(|m| &m.name == n);
                if models.is_empty() {
                    anyhow::bail!(
                        "no model named {n:?} in {}\nhint: `docent models list` shows what is installed",
                        dir.display()
                    );
                }
            }
            let mut all_ok = true;
            for m in &mut models {
                let ok = verify_model(m)?;
                all_ok &= ok;
                println!(
                    "{:<28} {}",
                    m.name,
                    if ok { "ok" } else { "CHECKSUM MISMATCH" }
                );
                for f in m.files.iter().filter(|f| f.verified == Some(false)) {
                    println!("    {}: content differs from the recorded checksum", f.name);
                }
            }
            if !all_ok {
                eprintln!(
                    "hint: reinstall damaged models with scripts/fetch-models.sh or `docent models import`"
                );
            }
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}

fn print_models(dir: &std::path::Path, models: &[InstalledModel], ctx: &Context) {
    println!("models in {}", dir.display());
    if models.is_empty() {
        println!(
            "  none installed\nhint: run scripts/fetch-models.sh, or `docent models import <PATH>`"
        );
        return;
    }
    for m in models {
        let used = if m.name == ctx.settings.embed.model {
            "  (embedding model in use)"
        } else {
            ""
        };
        println!(
            "  {:<28} {:<10} {:>10}{used}",
            m.name,
            m.kind,
            human(m.size_bytes)
        );
        for f in &m.files {
            let sum = f
                .sha256
                .as_deref()
                .map(|s| &s[..s.len().min(16)])
                .unwrap_or("-");
            let v = match f.verified {
                Some(true) => "  verified",
                Some(false) => "  MISMATCH",
                None => "",
            };
            println!(
                "      {:<40} {:>10}  sha256 {sum}…{v}",
                f.name,
                human(f.size_bytes)
            );
        }
    }
}

fn print_found(found: &[FoundModel]) {
    if found.is_empty() {
        return;
    }
    println!(
        "\nfound in other tools (used where they are: `docent ask --model PATH`, or `[llm] model = \"PATH\"`)"
    );
    for f in found {
        println!(
            "  {:<10} {:<48} {:>10}\n      {}",
            f.source,
            f.name,
            human(f.size_bytes),
            f.path.display()
        );
    }
}

fn recommend(json: bool) -> anyhow::Result<()> {
    let total_gb = docent_llm::total_memory().map(|b| b as f64 / 1e9);
    let fits = docent_llm::recommendations(total_gb.unwrap_or(0.0));
    let all = docent_llm::all_recommendations();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "memory_gb": total_gb,
                "fits": fits,
                "all": all,
            }))?
        );
        return Ok(());
    }
    match total_gb {
        Some(gb) => println!("this machine: {gb:.0} GB of memory"),
        None => println!("this machine: memory size unknown"),
    }
    println!(
        "rule of thumb: a Q4_K_M model needs about 0.6 GB per billion parameters, plus its KV cache (8K tokens), plus room for the system\n"
    );
    println!(
        "  {:<6} {:<36} {:>8}  {:<40}",
        "memory", "model", "needs", "file"
    );
    for r in &all {
        let mark = if fits.iter().any(|f| f.file == r.file) {
            "fits"
        } else {
            ""
        };
        println!(
            "  {:<6} {:<36} {:>5.1} GB  {:<40} {mark}\n         {}",
            format!("{} GB", r.machine_gb),
            r.model,
            r.needs_gb,
            r.file,
            r.note
        );
    }
    match fits.first() {
        Some(best) => println!(
            "\nbest fit here: {} ({}). Get the file with the tool you use (Ollama, LM Studio, a browser), then `docent models import <file.gguf>` or point `[llm] model` at it.",
            best.model, best.file
        ),
        None => println!(
            "\nnone of these fits; the starter models (scripts/fetch-models.sh --only llm) run anywhere, with weaker answers"
        ),
    }
    Ok(())
}

fn human(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.1} GB", n as f64 / (1u64 << 30) as f64)
    } else if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}
