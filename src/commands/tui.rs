//! `docent tui` (and `docent` alone on a terminal): the terminal interface over the engine.
//!
//! The interface lives in `docent-tui` and knows nothing of indexes or models; this module is
//! its [`Backend`]: the ask pipeline and search of `docent-engine`, the daemon's state from its
//! control socket, the manifest's counts, and the commands that open files.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use docent_core::date::iso_utc;
use docent_engine::{Asker, Context, SearchRequest};
use docent_store::Manifest;
use docent_tui::{
    AskEvent, AskRequest, Backend, BackendError, IndexStats, ModelInfo, OpenCommand, SearchHit,
    Status, TuiOptions,
};
use tokio::runtime::Handle;

use crate::cli::TuiArgs;

/// PDF viewers that can open a file at a page, in the order they are preferred.
const PDF_VIEWERS: &[&str] = &["zathura", "sioyek", "evince", "okular", "qpdfview", "mupdf"];

pub fn run(ctx: &Context, rt: &Handle, args: &TuiArgs) -> anyhow::Result<ExitCode> {
    let mut ctx = ctx.clone().with_model(args.model.as_deref());
    let cwd = std::env::current_dir().context("no current directory")?;
    let export_dir = match &args.export_dir {
        Some(d) => std::fs::canonicalize(d).with_context(|| {
            format!(
                "{}: no such folder for exports\nhint: create it first, or leave out --export-dir",
                d.display()
            )
        })?,
        None => cwd.clone(),
    };
    let mut options = TuiOptions::new(ctx.paths.data_dir.join("conversations"), export_dir);
    options.open.pdf_viewer = std::env::var("DOCENT_PDF_VIEWER")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            PDF_VIEWERS
                .iter()
                .find(|v| on_path(v))
                .map(|v| v.to_string())
        });
    if let Some(k) = args.k {
        ctx.settings.ask.k = k.max(1);
    }
    let backend = EngineBackend {
        ctx,
        rt: rt.clone(),
        asker: None,
        cwd,
    };
    docent_tui::run(Box::new(backend), options)?;
    Ok(ExitCode::SUCCESS)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The engine behind the interface. The index, the embedding model and the language model are
/// loaded on the first question or search and kept for the session; the index is opened
/// read-only and follows what the daemon or `docent index` write meanwhile.
struct EngineBackend {
    ctx: Context,
    rt: Handle,
    asker: Option<Arc<Asker>>,
    cwd: PathBuf,
}

impl EngineBackend {
    fn asker(&mut self) -> Result<Arc<Asker>, BackendError> {
        if let Some(a) = &self.asker {
            return Ok(a.clone());
        }
        let asker = Arc::new(
            self.rt
                .block_on(Asker::open_lazy(&self.ctx))
                .map_err(|e| BackendError::new(format!("{:#}", anyhow::Error::from(e))))?,
        );
        self.asker = Some(asker.clone());
        Ok(asker)
    }

    fn model(&self) -> Option<ModelInfo> {
        let (name, device) = self.ctx.model_label()?;
        Some(ModelInfo { name, device })
    }
}

impl Backend for EngineBackend {
    fn ask(
        &mut self,
        request: AskRequest,
        cancel: Arc<AtomicBool>,
        sink: &mut dyn FnMut(AskEvent),
    ) {
        let asker = match self.asker() {
            Ok(a) => a,
            Err(e) => return sink(AskEvent::Failed(e.0)),
        };
        let req = docent_engine::AskRequest {
            question: request.question,
            history: request.history,
            k: None,
        };
        // The engine's callback must be `Send`; the interface's sink is not. The answer is made
        // on the runtime and its events come back here over a channel, in order.
        let (tx, rx) = std::sync::mpsc::channel();
        let cwd = self.cwd.clone();
        let job = self.rt.spawn(async move {
            let mut forward = move |ev: docent_engine::AskEvent| {
                let _ = tx.send(ev);
            };
            asker.ask(&req, &cwd, cancel, &mut forward).await
        });
        for ev in rx {
            match ev {
                docent_engine::AskEvent::Condensed(q) => sink(AskEvent::Condensed(q)),
                docent_engine::AskEvent::Retrieved {
                    sources,
                    relevance,
                    retrieval_ms,
                } => sink(AskEvent::Retrieved {
                    sources,
                    relevance,
                    retrieval_ms,
                }),
                docent_engine::AskEvent::Text(t) => sink(AskEvent::Text(t)),
                // The answer is taken from the return value below.
                docent_engine::AskEvent::Done(_) => {}
            }
        }
        match self.rt.block_on(job) {
            Ok(Ok(answer)) => sink(AskEvent::Done(Box::new(answer))),
            Ok(Err(e)) => sink(AskEvent::Failed(format!("{:#}", anyhow::Error::from(e)))),
            Err(e) => sink(AskEvent::Failed(format!(
                "answering failed unexpectedly ({e}); this is a bug, please report it"
            ))),
        }
    }

    fn search(&mut self, query: &str, k: usize) -> Result<Vec<SearchHit>, BackendError> {
        let asker = self.asker()?;
        let mode = docent_engine::parse_mode(&self.ctx.settings.search.mode)
            .map_err(|e| BackendError::new(format!("[search] mode: {e}")))?;
        let req = SearchRequest {
            query: query.to_string(),
            k,
            mode,
        };
        let result = self
            .rt
            .block_on(asker.searcher().search(&req, &self.cwd))
            .map_err(|e| BackendError::new(format!("{:#}", anyhow::Error::from(e))))?;
        Ok(result
            .hits
            .into_iter()
            .map(|h| SearchHit {
                hit: h.hit,
                snippet: h.snippet,
            })
            .collect())
    }

    fn status(&mut self) -> Status {
        let live = super::daemon::live(&self.ctx);
        let records = Manifest::open_existing(&self.ctx.paths.data_dir)
            .ok()
            .flatten()
            .and_then(|m| m.all().ok());
        let (documents, chunks, last_update) =
            super::status::totals(records.as_deref().unwrap_or_default(), live.as_ref());
        let index = records.is_some().then_some(IndexStats {
            documents: documents as u64,
            chunks,
        });
        let last_update = last_update.map(|t| short_time(&iso_utc(t)));
        Status {
            daemon_connected: live.is_some(),
            index,
            queue: live.as_ref().map_or(0, |s| s.queue),
            model: self.model(),
            last_update,
        }
    }

    fn open(&mut self, command: &OpenCommand) -> Result<(), BackendError> {
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args);
        let fail = |e: std::io::Error| {
            BackendError::new(format!(
                "`{}` could not be started: {e}{}",
                command.program,
                hint(&command.program)
            ))
        };
        if command.terminal {
            let status = cmd.status().map_err(fail)?;
            if !status.success() {
                return Err(BackendError::new(format!(
                    "`{}` ended with {status}",
                    command.program
                )));
            }
        } else {
            // A window of its own: started and left to run; its output would draw over the
            // interface, so it goes nowhere.
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(fail)?;
        }
        Ok(())
    }
}

fn hint(program: &str) -> String {
    if Path::new(program).is_absolute() {
        String::new()
    } else {
        "\nhint: set $EDITOR (text files) or DOCENT_PDF_VIEWER (PDFs) to a program that is installed"
            .into()
    }
}

/// `2026-11-20T14:02:11Z` → `2026-11-20 14:02`.
fn short_time(iso: &str) -> String {
    match (iso.get(..10), iso.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => iso.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_time_keeps_date_and_minutes() {
        assert_eq!(short_time("2026-11-20T14:02:11Z"), "2026-11-20 14:02");
        assert_eq!(short_time("junk"), "junk");
    }
}
