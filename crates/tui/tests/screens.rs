//! The interface end to end without a terminal: a scripted backend on the worker thread, keys
//! pressed through the key map, and each screen drawn on ratatui's `TestBackend` and compared
//! with its snapshot.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use docent_core::{
    Answer, AnswerSentence, ChunkId, Citation, ContentHash, DocId, DocKind, Hit, LineRange, Source,
};
use docent_retrieve::Snippet;
use docent_tui::app::{AppConfig, Overlay, Pane};
use docent_tui::backend::{AskEvent, AskRequest, Backend, BackendError, SearchHit, Status};
use docent_tui::conversation::TurnState;
use docent_tui::open::{OpenCommand, OpenEnv, Platform};
use docent_tui::session::{NoScreen, Session};
use docent_tui::{IndexStats, ModelInfo, Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::style::{Color, Modifier};

/// 2025-11-22 13:05:09 UTC.
const NOW: u64 = 1_763_816_709;

/// What the scripted backend does when asked.
enum Script {
    /// Send these events, then wait for the test to open the gate, then send `Done` (with the
    /// text so far when the cancel flag is set).
    Answer {
        before: Vec<AskEvent>,
        answer: Box<Answer>,
    },
    Fail(String),
}

#[derive(Default)]
struct Log {
    asks: Vec<AskRequest>,
    searches: Vec<(String, usize)>,
    opened: Vec<OpenCommand>,
}

struct Fake {
    status: Status,
    scripts: Vec<Script>,
    hits: Vec<SearchHit>,
    gate: Option<Receiver<()>>,
    log: Arc<Mutex<Log>>,
}

impl Backend for Fake {
    fn ask(
        &mut self,
        request: AskRequest,
        cancel: Arc<AtomicBool>,
        sink: &mut dyn FnMut(AskEvent),
    ) {
        self.log.lock().unwrap().asks.push(request);
        match self.scripts.remove(0) {
            Script::Fail(m) => sink(AskEvent::Failed(m)),
            Script::Answer { before, mut answer } => {
                let mut so_far = String::new();
                for e in before {
                    if let AskEvent::Text(t) = &e {
                        so_far.push_str(t);
                    }
                    sink(e);
                }
                if let Some(g) = &self.gate {
                    g.recv().unwrap();
                }
                if cancel.load(Ordering::SeqCst) {
                    answer.text = so_far;
                    answer.citations.clear();
                    answer.sentences.clear();
                }
                sink(AskEvent::Done(answer));
            }
        }
    }

    fn search(&mut self, query: &str, k: usize) -> Result<Vec<SearchHit>, BackendError> {
        self.log
            .lock()
            .unwrap()
            .searches
            .push((query.to_string(), k));
        Ok(self.hits.clone())
    }

    fn status(&mut self) -> Status {
        self.status.clone()
    }

    fn open(&mut self, command: &OpenCommand) -> Result<(), BackendError> {
        self.log.lock().unwrap().opened.push(command.clone());
        Ok(())
    }
}

fn ready() -> Status {
    Status {
        daemon_connected: true,
        index: Some(IndexStats {
            documents: 1204,
            chunks: 8311,
        }),
        queue: 2,
        model: Some(ModelInfo {
            name: "qwen3-4b-q4_k_m".into(),
            device: "cpu".into(),
        }),
        last_update: Some("2025-11-21 18:40".into()),
    }
}

const CONTRACT: &str = "Section 4. Roof works.\nThe contractor replaces the roof membrane by 30 June 2026.\nPayment follows the inspection of the works by the owner.";
const QUOTE: &str = "The contractor replaces the roof membrane by 30 June 2026.";
const MAIL: &str = "Hi Ada,\nthe inspection is booked for 12 May.\nBest, Bo";
const NOTE: &str = "Roof: ask about the gutters too.";

fn source(n: usize, path: &str, kind: DocKind, text: &str) -> Source {
    Source {
        n,
        chunk_id: ChunkId(format!("chunk{n}")),
        path: path.into(),
        part: None,
        kind,
        page: None,
        lines: LineRange::new(3, 9),
        heading: None,
        title: None,
        subject: None,
        from: None,
        date: None,
        text: text.into(),
        truncated: false,
        similarity: Some(0.8 - n as f32 * 0.1),
    }
}

fn citation(n: usize, sentence: usize, src: &Source, quote: &str, support: f32) -> Citation {
    let start = src.text.find(quote).unwrap();
    Citation {
        n,
        sentence,
        chunk_id: src.chunk_id.clone(),
        path: src.path.clone(),
        part: src.part.clone(),
        page: src.page,
        lines: src.lines,
        quote: quote.into(),
        quote_bytes: start..start + quote.len(),
        lexical: support,
        semantic: None,
        support,
        weak: support < 0.5,
    }
}

const ANSWER: &str = "The roof membrane is to be replaced by 30 June 2026 [1]. The inspection is booked for 12 May [2].";

fn answer(question: &str) -> Answer {
    let mut s1 = source(
        1,
        "/home/ada/docs/linden-contract.pdf",
        DocKind::Pdf,
        CONTRACT,
    );
    s1.page = Some(2);
    let mut s2 = source(2, "/home/ada/mail/inbox.mbox", DocKind::Email, MAIL);
    s2.part = Some("message 3".into());
    s2.subject = Some("Roof inspection".into());
    s2.from = Some("Bo Lind".into());
    s2.date = Some("2025-03-14T09:00:00Z".into());
    let s3 = source(3, "/home/ada/notes/house.md", DocKind::Note, NOTE);
    let c1 = citation(1, 0, &s1, QUOTE, 0.86);
    let c2 = citation(2, 1, &s2, "the inspection is booked for 12 May.", 0.41);
    let split = ANSWER.find(" The inspection").unwrap();
    Answer {
        question: question.into(),
        query: question.into(),
        text: ANSWER.into(),
        refused: false,
        sentences: vec![
            AnswerSentence {
                bytes: 0..split,
                cites: vec![1],
                support: Some(0.86),
                weak: false,
            },
            AnswerSentence {
                bytes: split + 1..ANSWER.len(),
                cites: vec![2],
                support: Some(0.41),
                weak: true,
            },
        ],
        citations: vec![c1, c2],
        removed_citations: vec![],
        sources: vec![s1, s2, s3],
        model: "qwen3-4b-q4_k_m".into(),
        index: "docent index format 3, embeddings bge-small".into(),
        relevance: Some(0.71),
        retrieval_ms: 42,
        ttft_ms: Some(300.0),
        tokens_per_s: Some(11.5),
        prompt_tokens: Some(900),
        generated_tokens: Some(40),
        stop: None,
        warnings: vec![],
    }
}

fn streamed(question: &str) -> Script {
    Script::Answer {
        before: vec![
            AskEvent::Retrieved {
                sources: 3,
                relevance: Some(0.71),
                retrieval_ms: 42,
            },
            AskEvent::Text("The roof membrane is to be replaced ".into()),
            AskEvent::Text("by 30 June 2026 [1].".into()),
        ],
        answer: Box::new(answer(question)),
    }
}

fn hit(n: u32, path: &str, kind: DocKind, text: &str, score: f32) -> SearchHit {
    SearchHit {
        hit: Hit {
            chunk_id: ChunkId(format!("h{n}")),
            doc_id: DocId(format!("d{n}")),
            path: path.into(),
            part: None,
            kind,
            ordinal: 0,
            text: text.into(),
            page: (kind == DocKind::Pdf).then_some(2),
            lines: LineRange::new(1, 3),
            bytes: 0..text.len(),
            heading: None,
            title: None,
            subject: None,
            from: None,
            date: None,
            thread_id: None,
            message_id: None,
            content_hash: ContentHash::of(text.as_bytes()),
            score,
        },
        snippet: Snippet {
            text: text.replace('\n', " "),
            highlights: text.find("roof").map(|i| i..i + 4).into_iter().collect(),
        },
    }
}

struct Harness {
    session: Session,
    log: Arc<Mutex<Log>>,
    gate: Sender<()>,
    _dir: tempfile::TempDir,
    conversations: PathBuf,
}

fn harness(status: Status, scripts: Vec<Script>, export_dir: &Path) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let conversations = dir.path().join("conversations");
    let log = Arc::new(Mutex::new(Log::default()));
    let (gate_tx, gate_rx) = channel();
    let fake = Fake {
        status,
        scripts,
        hits: vec![
            hit(
                1,
                "/home/ada/docs/linden-contract.pdf",
                DocKind::Pdf,
                CONTRACT,
                0.032,
            ),
            hit(2, "/home/ada/notes/house.md", DocKind::Note, NOTE, 0.029),
        ],
        gate: Some(gate_rx),
        log: log.clone(),
    };
    let config = AppConfig {
        export_dir: export_dir.to_path_buf(),
        open: OpenEnv {
            editor: Some("nvim".into()),
            pdf_viewer: Some("zathura".into()),
            platform: Platform::Unix,
        },
        search_k: 20,
    };
    let mut session = Session::new(Box::new(fake), config, conversations.clone(), NOW).unwrap();
    session.app.size = (100, 30);
    // The first report is the status.
    assert!(session.wait_worker(&mut NoScreen));
    Harness {
        session,
        log,
        gate: gate_tx,
        _dir: dir,
        conversations,
    }
}

impl Harness {
    fn key(&mut self, code: KeyCode) -> &mut Self {
        self.key_mod(code, KeyModifiers::NONE)
    }

    fn key_mod(&mut self, code: KeyCode, m: KeyModifiers) -> &mut Self {
        self.session
            .handle_event(&Event::Key(KeyEvent::new(code, m)), &mut NoScreen);
        self
    }

    fn typed(&mut self, s: &str) -> &mut Self {
        for c in s.chars() {
            self.key(KeyCode::Char(c));
        }
        self
    }

    /// Applies the worker's next `n` reports, waiting for each.
    fn reports(&mut self, n: usize) -> &mut Self {
        for _ in 0..n {
            assert!(self.session.wait_worker(&mut NoScreen));
        }
        self
    }

    fn open_gate(&mut self) -> &mut Self {
        self.gate.send(()).unwrap();
        self
    }

    fn resize(&mut self, w: u16, h: u16) -> &mut Self {
        self.session
            .handle_event(&Event::Resize(w, h), &mut NoScreen);
        self
    }

    /// Asks the question and applies the whole scripted answer.
    fn ask_fully(&mut self, q: &str) -> &mut Self {
        self.typed(q)
            .key(KeyCode::Enter)
            .reports(3)
            .open_gate()
            .reports(1)
    }

    fn terminal(&self, theme: &Theme) -> Terminal<TestBackend> {
        let (w, h) = self.session.app.size;
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, &self.session.app, theme)).unwrap();
        t
    }

    fn screen(&self) -> String {
        self.terminal(&Theme::color()).backend().to_string()
    }
}

fn export_dir() -> PathBuf {
    PathBuf::from("/home/ada/exports")
}

fn ready_harness(scripts: Vec<Script>) -> Harness {
    harness(ready(), scripts, &export_dir())
}

#[test]
fn screen_no_index() {
    let mut s = ready();
    s.index = None;
    s.model = None;
    s.daemon_connected = false;
    let h = harness(s, vec![], &export_dir());
    insta::assert_snapshot!(h.screen());
}

#[test]
fn screen_no_model() {
    let mut s = ready();
    s.model = None;
    let h = harness(s, vec![], &export_dir());
    insta::assert_snapshot!(h.screen());
}

#[test]
fn screen_ready() {
    let h = ready_harness(vec![]);
    insta::assert_snapshot!(h.screen());
}

#[test]
fn screen_streaming_then_answered() {
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.typed(q).key(KeyCode::Enter);
    assert_eq!(
        h.session.app.conversation.turns[0].state,
        TurnState::Waiting
    );
    h.reports(1);
    insta::assert_snapshot!("retrieving", h.screen());
    h.reports(2);
    insta::assert_snapshot!("streaming", h.screen());
    h.open_gate().reports(1);
    insta::assert_snapshot!("answered", h.screen());
    let log = h.log.lock().unwrap();
    assert_eq!(log.asks.len(), 1);
    assert_eq!(log.asks[0].question, q);
}

#[test]
fn screen_sources_and_preview() {
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.ask_fully(q).key(KeyCode::Tab).key(KeyCode::Tab);
    assert_eq!(h.session.app.focus, Pane::Sources);
    h.key(KeyCode::Char('j'));
    insta::assert_snapshot!("sources", h.screen());
    h.key(KeyCode::Char('k')).key(KeyCode::Enter);
    assert_eq!(h.session.app.focus, Pane::Preview);
    insta::assert_snapshot!("preview", h.screen());

    // The cited passage is highlighted, and only it.
    let t = h.terminal(&Theme::color());
    let buf = t.backend().buffer();
    let area = docent_tui::ui::layout(*buf.area(), &h.session.app).preview;
    let mut highlighted = String::new();
    let mut plain = String::new();
    for y in area.top() + 1..area.bottom() - 1 {
        for x in area.left() + 1..area.right() - 1 {
            let c = &buf[(x, y)];
            if c.bg == Color::Yellow {
                highlighted.push_str(c.symbol());
            } else {
                plain.push_str(c.symbol());
            }
        }
    }
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(squash(&highlighted), squash(QUOTE));
    assert!(squash(&plain).contains("Section4.Roofworks."));
}

#[test]
fn screen_small_terminal() {
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.resize(80, 24);
    h.ask_fully(q)
        .key(KeyCode::Tab)
        .key(KeyCode::Tab)
        .key(KeyCode::Enter);
    insta::assert_snapshot!(h.screen());
}

#[test]
fn screen_help() {
    let mut h = ready_harness(vec![]);
    h.key(KeyCode::Esc).key(KeyCode::Char('?'));
    assert_eq!(h.session.app.overlay, Some(Overlay::Help));
    insta::assert_snapshot!(h.screen());
    // Any key closes it, and does nothing else.
    h.key(KeyCode::Char('q'));
    assert_eq!(h.session.app.overlay, None);
    assert!(!h.session.app.quit);
    // In the question box `?` and `q` are letters; F1 is the help.
    h.key(KeyCode::Char('i')).typed("q?");
    assert_eq!(h.session.app.input.text(), "q?");
    h.key(KeyCode::F(1));
    assert_eq!(h.session.app.overlay, Some(Overlay::Help));
}

#[test]
fn screen_export_prompt_and_the_file() {
    let out = tempfile::tempdir().unwrap();
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.ask_fully(q).key(KeyCode::Esc).key(KeyCode::Char('e'));
    insta::assert_snapshot!("export_prompt", h.screen());

    // The same export into a real folder.
    let mut h = harness(ready(), vec![streamed(q)], out.path());
    h.ask_fully(q)
        .key(KeyCode::Esc)
        .key(KeyCode::Char('e'))
        .key(KeyCode::Enter);
    let path = out.path().join("answer-2025-11-22-when-is-the-roof-due.md");
    let md = std::fs::read_to_string(&path).unwrap();
    assert!(md.starts_with("# When is the roof due?\n"), "{md}");
    assert!(md.contains("30 June 2026 [^1]."), "{md}");
    assert!(md.contains(&format!("    > {QUOTE}")), "{md}");
    assert!(
        h.session
            .app
            .notice
            .as_ref()
            .unwrap()
            .text
            .starts_with("exported to "),
        "{:?}",
        h.session.app.notice
    );
    // A second export under the same name does not overwrite the first.
    std::fs::write(&path, "mine").unwrap();
    h.key(KeyCode::Char('e')).key(KeyCode::Enter);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    assert!(h.session.app.notice.as_ref().unwrap().error);
}

#[test]
fn screen_filter_prompt() {
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.key(KeyCode::Esc)
        .key(KeyCode::Char('f'))
        .typed("pdf")
        .key(KeyCode::Tab)
        .typed("~/docs/")
        .key(KeyCode::Tab)
        .key(KeyCode::Tab)
        .typed("2025-02-30");
    h.key(KeyCode::Enter);
    insta::assert_snapshot!("filter_prompt_error", h.screen());
    h.key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL)
        .typed("2025-01-01")
        .key(KeyCode::Enter);
    assert!(h.session.app.overlay.is_none());
    h.key(KeyCode::Char('i'));
    insta::assert_snapshot!("filters_applied", h.screen());
    h.ask_fully(q);
    let log = h.log.lock().unwrap();
    assert_eq!(
        log.asks[0].question,
        "When is the roof due? kind:pdf path:~/docs/ after:2025-01-01"
    );
}

#[test]
fn screen_search_mode() {
    let mut h = ready_harness(vec![]);
    h.key(KeyCode::Esc).key(KeyCode::Char('/'));
    assert_eq!(h.session.app.focus, Pane::Question);
    h.typed("roof membrane").key(KeyCode::Enter).reports(1);
    h.key(KeyCode::Tab).key(KeyCode::Tab).key(KeyCode::Enter);
    insta::assert_snapshot!(h.screen());
    assert_eq!(
        h.log.lock().unwrap().searches,
        [("roof membrane".to_string(), 20)]
    );
    // `o` opens the hit's PDF at its page in the viewer, through the backend.
    h.key(KeyCode::Char('o')).reports(1);
    let log = h.log.lock().unwrap();
    assert_eq!(log.opened[0].program, "zathura");
    assert_eq!(
        log.opened[0].args,
        ["--page", "2", "/home/ada/docs/linden-contract.pdf"]
    );
}

#[test]
fn screen_conversation_list_and_reopen() {
    let (q1, q2) = ("When is the roof due?", "Who pays for it?");
    let mut h = ready_harness(vec![streamed(q1), streamed(q2)]);
    h.ask_fully(q1).ask_fully(q2);
    {
        let log = h.log.lock().unwrap();
        let hist: Vec<&str> = log.asks[1]
            .history
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(hist, [q1, ANSWER]);
    }
    let id = h.session.app.conversation.id.clone();
    assert!(h.conversations.join(format!("{id}.json")).is_file());
    h.key(KeyCode::Esc).key(KeyCode::Char('n'));
    assert!(h.session.app.conversation.turns.is_empty());
    // `n` leaves the focus in the question box, where `c` is a letter.
    assert_eq!(h.session.app.focus, Pane::Question);
    h.key(KeyCode::Esc).key(KeyCode::Char('c'));
    insta::assert_snapshot!(h.screen());
    h.key(KeyCode::Enter);
    assert_eq!(h.session.app.conversation.id, id);
    assert_eq!(h.session.app.conversation.turns.len(), 2);
    assert_eq!(h.session.app.conversation.turns[1].question, q2);
}

#[test]
fn cancelling_keeps_what_was_written() {
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.typed(q).key(KeyCode::Enter).reports(3);
    // Esc while the answer streams stops it; the backend then sends what it had.
    h.key(KeyCode::Esc).open_gate().reports(1);
    let t = &h.session.app.conversation.turns[0];
    assert_eq!(t.state, TurnState::Cancelled);
    assert_eq!(
        t.text,
        "The roof membrane is to be replaced by 30 June 2026 [1]."
    );
    insta::assert_snapshot!(h.screen());
}

#[test]
fn failures_are_shown() {
    let mut h = ready_harness(vec![Script::Fail(
        "the language model failed to load: out of memory\nhint: try a smaller model".into(),
    )]);
    h.typed("q").key(KeyCode::Enter).reports(1);
    assert_eq!(h.session.app.conversation.turns[0].state, TurnState::Failed);
    let screen = h.screen();
    assert!(
        screen.contains("error: the language model failed to load"),
        "{screen}"
    );
    assert!(screen.contains("hint: try a smaller model"), "{screen}");
}

#[test]
fn multi_line_questions_and_history() {
    let mut h = ready_harness(vec![streamed("x"), streamed("y")]);
    h.typed("first line")
        .key_mod(KeyCode::Enter, KeyModifiers::ALT)
        .typed("second")
        .key_mod(KeyCode::Enter, KeyModifiers::SHIFT)
        .typed("third");
    assert_eq!(h.session.app.input.text(), "first line\nsecond\nthird");
    h.key(KeyCode::Enter).reports(3).open_gate().reports(1);
    assert_eq!(
        h.log.lock().unwrap().asks[0].question,
        "first line\nsecond\nthird"
    );
    h.key(KeyCode::Up);
    assert_eq!(h.session.app.input.text(), "first line\nsecond\nthird");
    h.key(KeyCode::Down);
    assert_eq!(h.session.app.input.text(), "");
}

#[test]
fn mouse_scrolls_the_pane_under_it() {
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.ask_fully(q);
    let areas = docent_tui::ui::layout(ratatui::layout::Rect::new(0, 0, 100, 30), &h.session.app);
    let over_sources = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: areas.sources.x + 2,
        row: areas.sources.y + 2,
        modifiers: KeyModifiers::NONE,
    };
    h.session
        .handle_event(&Event::Mouse(over_sources), &mut NoScreen);
    assert_eq!(h.session.app.selected, 2);
    // The focus stays where it was.
    assert_eq!(h.session.app.focus, Pane::Question);
}

#[test]
fn ctrl_c_quits_from_anywhere_and_q_only_outside_the_box() {
    let mut h = ready_harness(vec![]);
    h.typed("q");
    assert!(!h.session.app.quit);
    h.key(KeyCode::Esc).key(KeyCode::Char('q'));
    assert!(h.session.app.quit);
    let mut h = ready_harness(vec![]);
    h.key(KeyCode::Char('f'));
    h.key_mod(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(h.session.app.quit);
}

/// Escape sequences in a document, an email header, the model's output, a status field and an
/// error: none reaches the screen.
#[test]
fn terminal_control_sequences_never_reach_the_screen() {
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\u{9b}1;1H\u{7}\u{8}";
    let mut a = answer("q");
    a.sources[0].text = format!("Section 4.{evil}\n{QUOTE}");
    let start = a.sources[0].text.find(QUOTE).unwrap();
    a.citations[0].quote_bytes = start..start + QUOTE.len();
    a.sources[1].subject = Some(format!("Invoice{evil}"));
    a.sources[1].path = format!("/home/ada/mail/{evil}.mbox");
    a.text = format!("The roof{evil} [1].");
    a.sentences.clear();
    let script = Script::Answer {
        before: vec![AskEvent::Text(format!("The roof{evil}"))],
        answer: Box::new(a),
    };
    let mut status = ready();
    status.model.as_mut().unwrap().name = format!("model{evil}");
    let mut h = harness(status, vec![script], &export_dir());
    h.typed("q").key(KeyCode::Enter).reports(1);
    let mut screens = vec![h.screen()];
    h.open_gate().reports(1);
    h.key(KeyCode::Tab).key(KeyCode::Tab).key(KeyCode::Enter);
    screens.push(h.screen());
    h.key(KeyCode::Char('j'));
    h.key(KeyCode::Char('k'));
    screens.push(h.screen());
    for s in &screens {
        assert!(!s.contains("pwned"), "{s}");
        assert!(s.contains("red"), "{s}");
    }
    // And no cell of the buffer holds a control character.
    let t = h.terminal(&Theme::color());
    for cell in t.backend().buffer().content() {
        assert!(
            !cell.symbol().chars().any(|c| c.is_control()),
            "{:?}",
            cell.symbol()
        );
    }
}

#[test]
fn no_color_draws_without_colour() {
    let q = "When is the roof due?";
    let mut h = ready_harness(vec![streamed(q)]);
    h.ask_fully(q)
        .key(KeyCode::Tab)
        .key(KeyCode::Tab)
        .key(KeyCode::Enter);
    let plain = Theme::choose(Some("1"));
    let t = h.terminal(&plain);
    let buf = t.backend().buffer();
    let mut reversed = 0;
    for cell in buf.content() {
        assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        if cell.modifier.contains(Modifier::REVERSED) {
            reversed += 1;
        }
    }
    // The highlight is still visible, by reverse video.
    assert!(reversed >= QUOTE.len() - 10, "{reversed}");
    // And with colours, there are some.
    let t = h.terminal(&Theme::color());
    assert!(
        t.backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != Color::Reset)
    );
}

#[test]
fn a_terminal_too_small_says_so() {
    let mut h = ready_harness(vec![]);
    h.resize(30, 10);
    let s = h.screen();
    assert!(s.contains("The terminal is 30x10;"), "{s}");
    h.resize(80, 24);
    assert!(h.screen().contains("Ask about your documents."));
}

struct Panicking;

impl Backend for Panicking {
    fn ask(&mut self, _: AskRequest, _: Arc<AtomicBool>, _: &mut dyn FnMut(AskEvent)) {
        panic!("a bug in the backend");
    }
    fn search(&mut self, _: &str, _: usize) -> Result<Vec<SearchHit>, BackendError> {
        Ok(vec![])
    }
    fn status(&mut self) -> Status {
        ready()
    }
    fn open(&mut self, _: &OpenCommand) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A panic in the backend fails the question at hand; the interface carries on.
#[test]
fn a_backend_panic_fails_the_question() {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig {
        export_dir: export_dir(),
        open: OpenEnv::from_env(),
        search_k: 5,
    };
    let mut s = Session::new(Box::new(Panicking), config, dir.path().to_path_buf(), NOW).unwrap();
    assert!(s.wait_worker(&mut NoScreen));
    for c in "q".chars() {
        s.handle_event(
            &Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
            &mut NoScreen,
        );
    }
    s.handle_event(
        &Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        &mut NoScreen,
    );
    assert!(!s.wait_worker(&mut NoScreen));
    let t = &s.app.conversation.turns[0];
    assert_eq!(t.state, TurnState::Failed);
    assert!(t.error.as_deref().unwrap().contains("backend stopped"));
    assert!(s.take_redraw());
    assert!(!s.take_redraw());
    // Later questions fail at once instead of waiting for ever.
    s.handle_event(
        &Event::Key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE)),
        &mut NoScreen,
    );
    s.handle_event(
        &Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        &mut NoScreen,
    );
    assert_eq!(s.app.conversation.turns[1].state, TurnState::Failed);
    assert!(!s.app.busy());
}
