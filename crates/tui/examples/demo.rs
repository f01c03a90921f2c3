//! The interface over a canned backend, to try the keys without an index or a model:
//! `cargo run -p docent-tui --example demo`. Answers stream word by word; `DEMO_EMPTY=1` shows
//! the first-run screen; asking `panic` makes the backend panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use docent_core::{Answer, ChunkId, Citation, DocKind, LineRange, Source};
use docent_tui::backend::{AskEvent, AskRequest, Backend, BackendError, SearchHit, Status};
use docent_tui::open::OpenCommand;
use docent_tui::{IndexStats, ModelInfo, TuiOptions};

const TEXT: &str = "Section 4. Roof works.\nThe contractor replaces the roof membrane by 30 June 2026.\nPayment follows the inspection of the works by the owner.";
const QUOTE: &str = "The contractor replaces the roof membrane by 30 June 2026.";
const ANSWER: &str = "The roof membrane is to be replaced by 30 June 2026 [1], and payment follows the owner's inspection [1].";

struct Demo {
    empty: bool,
}

fn answer(question: &str, text: &str) -> Answer {
    let start = TEXT.find(QUOTE).unwrap_or(0);
    let source = Source {
        n: 1,
        chunk_id: ChunkId("demo-1".into()),
        path: "/tmp/docent-demo/linden-contract.pdf".into(),
        part: None,
        kind: DocKind::Pdf,
        page: Some(2),
        lines: LineRange::new(1, 3),
        heading: None,
        title: None,
        subject: None,
        from: None,
        date: None,
        text: TEXT.into(),
        truncated: false,
        similarity: Some(0.74),
    };
    let citation = Citation {
        n: 1,
        sentence: 0,
        chunk_id: source.chunk_id.clone(),
        path: source.path.clone(),
        part: None,
        page: Some(2),
        lines: source.lines,
        quote: QUOTE.into(),
        quote_bytes: start..start + QUOTE.len(),
        lexical: 0.8,
        semantic: Some(0.9),
        support: 0.86,
        weak: false,
    };
    Answer {
        question: question.into(),
        query: question.into(),
        text: text.into(),
        refused: false,
        sentences: vec![],
        citations: vec![citation],
        removed_citations: vec![],
        sources: vec![source],
        model: "demo".into(),
        index: "demo index".into(),
        relevance: Some(0.74),
        retrieval_ms: 12,
        ttft_ms: None,
        tokens_per_s: None,
        prompt_tokens: None,
        generated_tokens: None,
        stop: None,
        warnings: vec![],
    }
}

impl Backend for Demo {
    fn ask(
        &mut self,
        request: AskRequest,
        cancel: Arc<AtomicBool>,
        sink: &mut dyn FnMut(AskEvent),
    ) {
        if request.question.trim() == "panic" {
            panic!("the demo backend was asked to panic");
        }
        std::thread::sleep(Duration::from_millis(400));
        sink(AskEvent::Retrieved {
            sources: 1,
            relevance: Some(0.74),
            retrieval_ms: 12,
        });
        let mut so_far = String::new();
        for word in ANSWER.split_inclusive(' ') {
            if cancel.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(80));
            so_far.push_str(word);
            sink(AskEvent::Text(word.to_string()));
        }
        sink(AskEvent::Done(Box::new(answer(&request.question, &so_far))));
    }

    fn search(&mut self, _query: &str, _k: usize) -> Result<Vec<SearchHit>, BackendError> {
        Ok(vec![])
    }

    fn status(&mut self) -> Status {
        Status {
            daemon_connected: false,
            index: (!self.empty).then_some(IndexStats {
                documents: 1,
                chunks: 1,
            }),
            queue: 0,
            model: (!self.empty).then(|| ModelInfo {
                name: "demo".into(),
                device: "cpu".into(),
            }),
            last_update: None,
        }
    }

    fn open(&mut self, command: &OpenCommand) -> Result<(), BackendError> {
        Err(BackendError::new(format!(
            "the demo opens nothing (it would run `{} {}`)",
            command.program,
            command.args.join(" ")
        )))
    }
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("docent-tui-demo");
    let options = TuiOptions::new(dir.join("conversations"), dir);
    let empty = std::env::var_os("DEMO_EMPTY").is_some();
    docent_tui::run(Box::new(Demo { empty }), options)?;
    Ok(())
}
