//! `docent ask`: a cited answer from the documents, streamed to the terminal.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use docent_core::{ChatMessage, Generator, SeamError};
use docent_engine::{AskEvent, AskOptions, AskRequest, Asker, Context, Searcher};
use docent_retrieve::Mode;

use super::display_path;
use crate::cli::{AskArgs, GlobalArgs};

/// File in the data directory that keeps the last conversation for `--continue`.
const CONVERSATION_FILE: &str = "conversation.json";
/// Turns of a conversation kept (user and assistant messages).
const CONVERSATION_TURNS: usize = 12;

pub async fn run(ctx: &Context, global: &GlobalArgs, args: &AskArgs) -> anyhow::Result<ExitCode> {
    let ctx = with_model(ctx, args.model.as_deref());
    let question = args.question.join(" ");
    let conversation_path = ctx.paths.data_dir.join(CONVERSATION_FILE);
    let history = if args.continue_conversation {
        load_conversation(&conversation_path)?
    } else {
        Vec::new()
    };

    let searcher = Searcher::open(&ctx, Mode::Hybrid).await?;
    let loader_ctx = ctx.clone();
    let asker = Asker::with_loader(
        searcher,
        Box::new(move || load_generator(&loader_ctx).map_err(|e| SeamError::new(format!("{e:#}")))),
        AskOptions::from_context(&ctx),
    );

    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });

    let stream = !args.json && std::io::stdout().is_terminal();
    let progress = !global.quiet && !args.json;
    let mut streamed = false;
    let mut on_event = |event: AskEvent| match event {
        AskEvent::Condensed(q) => {
            if progress {
                eprintln!("searching for: {}", docent_core::text::sanitize(&q));
            }
        }
        AskEvent::Retrieved {
            sources,
            retrieval_ms,
            ..
        } => {
            if progress && sources > 0 {
                eprintln!("{sources} passages found in {retrieval_ms} ms; answering…");
            }
        }
        AskEvent::Text(t) => {
            if stream {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(docent_core::text::sanitize(&t).as_bytes());
                let _ = out.flush();
                streamed = true;
            }
        }
        AskEvent::Done(_) => {}
    };
    let req = AskRequest {
        question: question.clone(),
        history: history.clone(),
        k: args.k,
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let answer = asker.ask(&req, &cwd, cancel.clone(), &mut on_event).await?;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&docent_export::to_json(&answer))?
        );
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        if streamed {
            println!();
        }
        let text = docent_export::to_text(
            &answer,
            docent_export::TextOptions {
                color,
                with_answer: !streamed,
            },
            &|p| display_path(p),
        );
        print!("{text}");
        if progress && let (Some(ttft), Some(tps)) = (answer.ttft_ms, answer.tokens_per_s) {
            eprintln!(
                "{} · retrieval {} ms · first token {:.0} ms · {:.1} tokens/s",
                answer.model, answer.retrieval_ms, ttft, tps
            );
        }
        if cancel.load(Ordering::Relaxed) {
            eprintln!("stopped: the answer above is incomplete");
        }
    }

    if let Some(file) = &args.export {
        let path = absolute(file)?;
        let md = docent_export::to_markdown(&answer, &path, &docent_export::today_utc());
        std::fs::write(&path, md).with_context(|| {
            format!(
                "{}: could not write the export\nhint: check that the folder exists and is writable",
                file.display()
            )
        })?;
        if !global.quiet {
            eprintln!("exported to {}", file.display());
        }
    }

    let mut convo = history;
    convo.push(ChatMessage::user(question));
    convo.push(ChatMessage::assistant(answer.text.clone()));
    let start = convo.len().saturating_sub(CONVERSATION_TURNS);
    if let Err(e) = save_conversation(&conversation_path, &convo[start..]) {
        eprintln!("warning: could not keep the conversation for --continue: {e:#}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `ctx` with the language model named on the command line (`--model`), for whichever backend
/// `[llm]` uses.
pub fn with_model(ctx: &Context, model: Option<&str>) -> Context {
    let mut ctx = ctx.clone();
    if let Some(m) = model {
        if ctx.settings.llm.backend == "remote" {
            ctx.settings.llm.remote_model = m.to_string();
        } else {
            ctx.settings.llm.model = m.to_string();
        }
    }
    ctx
}

/// The language model that answers, as `[llm]` describes it: a GGUF file run in-process, or an
/// OpenAI-compatible server on the user's network.
pub fn load_generator(ctx: &Context) -> anyhow::Result<Box<dyn Generator>> {
    let llm = &ctx.settings.llm;
    if llm.backend == "remote" {
        let mut opts = docent_remote::RemoteOptions::new(&llm.url, &llm.remote_model);
        opts.context_length = llm.context_length;
        if !llm.api_key_env.is_empty() {
            opts.api_key = Some(std::env::var(&llm.api_key_env).with_context(|| {
                format!(
                    "`[llm] api_key_env` names {}, which is not set",
                    llm.api_key_env
                )
            })?);
        }
        return Ok(Box::new(docent_remote::RemoteGenerator::new(opts)?));
    }
    let path = ctx.llm_model_path().map_err(anyhow::Error::msg)?;
    let device: docent_llm::DeviceChoice = llm
        .device
        .parse()
        .map_err(|e: String| anyhow::anyhow!("[llm] device: {e}"))?;
    let generator = docent_llm::GgufGenerator::load(
        &path,
        &docent_llm::LoadOptions {
            device,
            context_length: Some(llm.context_length),
            allow_low_memory: false,
            ..Default::default()
        },
    )
    .with_context(|| format!("cannot load the language model `{}`", llm.model))?;
    Ok(Box::new(generator))
}

/// `file` made absolute against the current directory, its folder resolved (so links in the
/// export are relative to where it really is).
fn absolute(file: &Path) -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("no current directory")?;
    let full = cwd.join(file);
    let parent = full.parent().unwrap_or(&cwd);
    let dir = std::fs::canonicalize(parent).with_context(|| {
        format!(
            "{}: no such folder for the export\nhint: create it first, or export to an existing folder",
            parent.display()
        )
    })?;
    let name = full
        .file_name()
        .with_context(|| format!("{}: not a file name", file.display()))?;
    Ok(dir.join(name))
}

fn load_conversation(path: &Path) -> anyhow::Result<Vec<ChatMessage>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: the saved conversation is damaged\nhint: ask without --continue to start a new one",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("{}: could not read", path.display())),
    }
}

fn save_conversation(path: &Path, convo: &[ChatMessage]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(convo)?)
        .with_context(|| format!("{}: could not write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: could not write", path.display()))?;
    Ok(())
}
