//! The interface's state ([`App`]), everything that can happen to it ([`Action`]), and the one
//! function that changes it ([`update`]), which answers with the [`Effect`]s the event loop
//! must carry out (ask the backend, write a file). Nothing here does I/O or reads a clock, so
//! every behaviour can be tested by feeding actions.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use docent_core::{Answer, DocKind};

use crate::backend::{AskEvent, AskRequest, SearchHit, Status, WorkerEvent};
use crate::clock::{self, Timestamp};
use crate::conversation::{self, Conversation, Listing, Summary, Turn, TurnState};
use crate::editor::TextInput;
use crate::filter::{FilterForm, Filters};
use crate::open::{OpenCommand, OpenEnv, OpenTarget, open_command};

/// How often the backend's status is asked for while the backend is idle, in seconds.
pub const STATUS_EVERY_S: u64 = 5;

/// The panes that take the keyboard, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Question,
    Answer,
    Sources,
    Preview,
}

impl Pane {
    const ORDER: [Pane; 4] = [Pane::Question, Pane::Answer, Pane::Sources, Pane::Preview];

    fn step(self, forward: bool) -> Pane {
        let i = Pane::ORDER.iter().position(|&p| p == self).unwrap_or(0);
        let n = Pane::ORDER.len();
        Pane::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// What Enter in the question box does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ask the language model, with sources.
    Ask,
    /// Hybrid search only, no model.
    Search,
}

/// The export prompt: a file name for the Markdown export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportPrompt {
    pub input: TextInput,
    pub error: Option<String>,
}

/// The list of past conversations.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConversationList {
    /// `None` until the folder has been read.
    pub items: Option<Vec<Summary>>,
    pub selected: usize,
    /// Files that could not be read, or why the folder could not be.
    pub problems: Vec<String>,
}

/// A window over the main screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Export(ExportPrompt),
    Filters(FilterForm),
    Conversations(ConversationList),
}

/// A one-line message for the user, shown until the next key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// The last search in search mode.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchState {
    /// The query as sent (filters included).
    pub query: String,
    pub running: bool,
    pub hits: Vec<SearchHit>,
    pub error: Option<String>,
}

/// Settings the state needs, fixed for a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
    /// Relative export file names are resolved against it.
    pub export_dir: PathBuf,
    pub open: OpenEnv,
    /// Hits per search.
    pub search_k: usize,
}

/// The whole state of the interface.
#[derive(Clone, Debug)]
pub struct App {
    pub config: AppConfig,
    /// `None` until the backend first reports.
    pub status: Option<Status>,
    pub mode: Mode,
    pub focus: Pane,
    pub overlay: Option<Overlay>,
    pub input: TextInput,
    /// Questions asked this session, oldest first.
    pub history: Vec<String>,
    /// The history entry shown in the input while browsing it.
    pub history_pos: Option<usize>,
    /// What was typed before browsing the history.
    pub draft: Option<TextInput>,
    pub conversation: Conversation,
    pub filters: Filters,
    pub search: Option<SearchState>,
    /// Lines scrolled in the answer pane (when not following its end).
    pub answer_scroll: usize,
    /// The answer pane shows the end of the text as it grows.
    pub follow: bool,
    /// The highlighted row of the sources pane.
    pub selected: usize,
    /// The source shown in the preview (an index into [`App::sources`]).
    pub preview: Option<usize>,
    pub preview_scroll: usize,
    pub notice: Option<Notice>,
    /// The terminal's size (columns, rows).
    pub size: (u16, u16),
    pub now: Timestamp,
    /// Frame of the activity indicator.
    pub spinner: usize,
    /// The flag that stops the answer being written.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The user asked to stop the answer being written.
    pub cancelling: bool,
    /// A status request is queued.
    pub status_pending: bool,
    pub last_status_request: Timestamp,
    /// An open command is with the backend.
    pub opening: bool,
    pub quit: bool,
    /// Conversations started this session (keeps ids unique within a second).
    seq: u32,
}

/// Everything that can happen: keys (already mapped by [`crate::keys`]), the backend's
/// reports, the results of effects, and time.
#[derive(Clone, Debug)]
pub enum Action {
    Insert(char),
    Paste(String),
    Newline,
    Backspace,
    Delete,
    DeleteWord,
    ClearInput,
    Left,
    Right,
    Home,
    End,
    /// Up a line, an item, a field, or back in the history, depending on where the focus is.
    Up,
    Down,
    /// Scroll a pane (`None`: the focused one) by lines; negative is up.
    Scroll {
        pane: Option<Pane>,
        delta: i32,
    },
    /// Scroll the focused pane by a page.
    Page(i32),
    /// The start (`false`) or the end (`true`) of the focused pane.
    Jump(bool),
    /// Enter: ask or search, show a source in the preview, confirm a prompt.
    Submit,
    /// Esc: stop the answer being written, close a window, leave the question box.
    Cancel,
    FocusNext,
    FocusPrev,
    Focus(Pane),
    ToggleHelp,
    ToggleSearch,
    EditFilters,
    StartExport,
    OpenExternal,
    NewConversation,
    ShowConversations,
    DeleteConversation,
    Quit,
    Resize(u16, u16),
    Tick(Timestamp),
    Worker(WorkerEvent),
    ConversationsListed(Result<Listing, String>),
    ConversationLoaded(Result<Conversation, String>),
    Saved(Result<PathBuf, String>),
    Exported(Result<PathBuf, String>),
}

/// Work for the event loop, returned by [`update`].
#[derive(Debug)]
pub enum Effect {
    Ask {
        request: AskRequest,
        cancel: Arc<AtomicBool>,
    },
    /// Set this flag (the answer being written stops).
    Cancel(Arc<AtomicBool>),
    Search {
        query: String,
        k: usize,
    },
    /// Run an open command through the backend (handing over the terminal when it needs it).
    Open(OpenCommand),
    /// Write the Markdown to the file, refusing to overwrite one.
    Export {
        path: PathBuf,
        markdown: String,
    },
    SaveConversation(Conversation),
    ListConversations,
    LoadConversation(String),
    DeleteConversation(String),
    RefreshStatus,
    Quit,
}

/// One row of the sources pane: a source the model was given, or a search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceView<'a> {
    /// The source's number in the answer (`None` for search hits).
    pub n: Option<usize>,
    pub path: &'a str,
    pub part: Option<&'a str>,
    pub kind: DocKind,
    pub page: Option<u32>,
    pub lines: (u32, u32),
    pub subject: Option<&'a str>,
    pub from: Option<&'a str>,
    pub date: Option<&'a str>,
    /// Similarity to the query (answers) or the retriever's score (search).
    pub score: Option<f32>,
    /// Best support among the citations of it (`None`: not cited, or a search hit).
    pub support: Option<f32>,
    /// Its text, as stored.
    pub text: &'a str,
    /// Byte ranges of `text` to highlight: the cited passages, or the query's words.
    pub highlights: Vec<Range<usize>>,
}

impl SourceView<'_> {
    /// Where to open it.
    pub fn target(&self) -> OpenTarget {
        OpenTarget {
            path: PathBuf::from(self.path),
            kind: self.kind,
            page: self.page,
            line: Some(self.lines.0),
            part: self.part.map(str::to_string),
        }
    }
}

/// A default file name for exporting the answer to `question` on `date`:
/// `answer-<date>-<slug>.md`, the slug being the question's first words, lowercased ASCII
/// letters and digits joined by `-`, at most 40 characters.
pub fn export_file_name(question: &str, date: &str) -> String {
    let mut slug = String::new();
    for word in question
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = word.to_ascii_lowercase();
        let extra = usize::from(!slug.is_empty()) + w.len();
        if slug.len() + extra > 40 {
            if slug.is_empty() {
                slug = w[..40].to_string();
            }
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&w);
    }
    if slug.is_empty() {
        format!("answer-{date}.md")
    } else {
        format!("answer-{date}-{slug}.md")
    }
}

/// Word ranges of `text` that a search for `terms` (lowercased words) matched: a word equal to
/// a short term, or starting with a term of 3 characters or more.
pub fn term_ranges(text: &str, terms: &[String]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    if terms.is_empty() {
        return out;
    }
    let mut start = None;
    let check = |s: usize, e: usize, out: &mut Vec<Range<usize>>| {
        let word = text[s..e].to_lowercase();
        let hit = terms.iter().any(|t| {
            if t.chars().count() < 3 {
                word == *t
            } else {
                word.starts_with(t.as_str())
            }
        });
        if hit {
            out.push(s..e);
        }
    };
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                check(s, i, &mut out);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        check(s, text.len(), &mut out);
    }
    out
}

impl App {
    pub fn new(config: AppConfig, now: Timestamp) -> Self {
        App {
            config,
            status: None,
            mode: Mode::Ask,
            focus: Pane::Question,
            overlay: None,
            input: TextInput::default(),
            history: Vec::new(),
            history_pos: None,
            draft: None,
            conversation: Conversation::new(String::new(), now),
            filters: Filters::default(),
            search: None,
            answer_scroll: 0,
            follow: true,
            selected: 0,
            preview: None,
            preview_scroll: 0,
            notice: None,
            size: (80, 24),
            now,
            spinner: 0,
            cancel: None,
            cancelling: false,
            status_pending: false,
            last_status_request: now,
            opening: false,
            quit: false,
            seq: 0,
        }
    }

    /// The turn the backend is working on.
    pub fn active_turn(&self) -> Option<&Turn> {
        self.conversation
            .turns
            .last()
            .filter(|t| t.state.is_active())
    }

    /// True while the backend is busy with an answer, a search or an open command.
    pub fn busy(&self) -> bool {
        self.active_turn().is_some()
            || self.search.as_ref().is_some_and(|s| s.running)
            || self.opening
    }

    /// The latest answer (finished or stopped), for the sources pane and export.
    pub fn last_answer(&self) -> Option<&Answer> {
        self.conversation
            .turns
            .last()
            .and_then(|t| t.answer.as_ref())
    }

    /// The rows of the sources pane: the sources of the latest answer, or the search hits.
    pub fn sources(&self) -> Vec<SourceView<'_>> {
        match self.mode {
            Mode::Ask => self.last_answer().map(answer_sources).unwrap_or_default(),
            Mode::Search => self.search.as_ref().map(search_sources).unwrap_or_default(),
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
        });
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
        });
    }

    fn reset_view(&mut self) {
        self.follow = true;
        self.answer_scroll = 0;
        self.selected = 0;
        self.preview = None;
        self.preview_scroll = 0;
    }
}

fn answer_sources(a: &Answer) -> Vec<SourceView<'_>> {
    a.sources
        .iter()
        .map(|s| {
            let cited: Vec<_> = a.citations.iter().filter(|c| c.n == s.n).collect();
            let support = cited.iter().map(|c| c.support).reduce(f32::max);
            let mut highlights: Vec<Range<usize>> = cited
                .iter()
                .map(|c| c.quote_bytes.clone())
                .filter(|r| {
                    r.start < r.end
                        && s.text.is_char_boundary(r.start)
                        && s.text.is_char_boundary(r.end.min(s.text.len()))
                })
                .collect();
            highlights.sort_by_key(|r| (r.start, r.end));
            highlights.dedup();
            SourceView {
                n: Some(s.n),
                path: &s.path,
                part: s.part.as_deref(),
                kind: s.kind,
                page: s.page,
                lines: (s.lines.start, s.lines.end),
                subject: s.subject.as_deref(),
                from: s.from.as_deref(),
                date: s.date.as_deref(),
                score: s.similarity,
                support,
                text: &s.text,
                highlights,
            }
        })
        .collect()
}

fn search_sources(s: &SearchState) -> Vec<SourceView<'_>> {
    let terms = docent_retrieve::parse_query(&s.query).terms;
    s.hits
        .iter()
        .map(|h| {
            let h = &h.hit;
            SourceView {
                n: None,
                path: &h.path,
                part: h.part.as_deref(),
                kind: h.kind,
                page: h.page,
                lines: (h.lines.start, h.lines.end),
                subject: h.subject.as_deref(),
                from: h.from.as_deref(),
                date: h.date.as_deref(),
                score: Some(h.score),
                support: None,
                text: &h.text,
                highlights: term_ranges(&h.text, &terms),
            }
        })
        .collect()
}

/// Applies one action to the state and says what the event loop must do.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    let mut fx = Vec::new();
    let is_input = matches!(
        action,
        Action::Insert(_)
            | Action::Paste(_)
            | Action::Newline
            | Action::Backspace
            | Action::Delete
            | Action::DeleteWord
            | Action::Submit
            | Action::Cancel
            | Action::Up
            | Action::Down
    );
    if is_input {
        app.notice = None;
    }
    // Windows over the screen take the keys first.
    if app.overlay.is_some() && update_overlay(app, &action, &mut fx) {
        return fx;
    }
    match action {
        Action::Insert(c) => edit(app, |t| t.insert_char(c)),
        Action::Paste(s) => edit(app, |t| t.insert_str(&s)),
        Action::Newline => edit(app, TextInput::newline),
        Action::Backspace => edit(app, TextInput::backspace),
        Action::Delete => edit(app, TextInput::delete),
        Action::DeleteWord => edit(app, TextInput::delete_word),
        Action::ClearInput => edit(app, TextInput::clear),
        Action::Left => edit(app, TextInput::left),
        Action::Right => edit(app, TextInput::right),
        Action::Home => edit(app, TextInput::home),
        Action::End => edit(app, TextInput::end),
        Action::Up => move_by(app, -1),
        Action::Down => move_by(app, 1),
        Action::Scroll { pane, delta } => {
            let pane = pane.unwrap_or(app.focus);
            scroll(app, pane, delta);
        }
        Action::Page(n) => {
            let pane = if app.focus == Pane::Question {
                Pane::Answer
            } else {
                app.focus
            };
            let page = crate::ui::pane_height(app, pane).max(2) as i32 - 1;
            scroll(app, pane, n * page);
        }
        Action::Jump(end) => {
            let pane = if app.focus == Pane::Question {
                Pane::Answer
            } else {
                app.focus
            };
            scroll(app, pane, if end { i32::MAX / 2 } else { i32::MIN / 2 });
        }
        Action::Submit => submit(app, &mut fx),
        Action::Cancel => {
            if let Some(flag) = app.cancel.clone().filter(|_| app.active_turn().is_some()) {
                if !app.cancelling {
                    app.cancelling = true;
                    app.note("stopping the answer…");
                    fx.push(Effect::Cancel(flag));
                }
            } else if app.focus == Pane::Question {
                app.focus = Pane::Answer;
            } else if app.preview.is_some() && app.focus == Pane::Preview {
                app.focus = Pane::Sources;
            }
        }
        Action::FocusNext => app.focus = app.focus.step(true),
        Action::FocusPrev => app.focus = app.focus.step(false),
        Action::Focus(p) => app.focus = p,
        Action::ToggleHelp => app.overlay = Some(Overlay::Help),
        Action::ToggleSearch => {
            app.mode = match app.mode {
                Mode::Ask => Mode::Search,
                Mode::Search => Mode::Ask,
            };
            app.focus = Pane::Question;
            app.reset_view();
            app.note(match app.mode {
                Mode::Search => "search mode: Enter searches your documents, no model is asked",
                Mode::Ask => "ask mode: Enter asks the model",
            });
        }
        Action::EditFilters => app.overlay = Some(Overlay::Filters(FilterForm::new(&app.filters))),
        Action::StartExport => start_export(app),
        Action::OpenExternal => open_selected(app, &mut fx),
        Action::NewConversation => {
            if app.active_turn().is_some() {
                app.warn("an answer is being written: Esc stops it first");
            } else {
                app.conversation = Conversation::new(String::new(), app.now);
                app.mode = Mode::Ask;
                app.search = None;
                app.focus = Pane::Question;
                app.reset_view();
                app.note("new conversation");
            }
        }
        Action::ShowConversations => {
            app.overlay = Some(Overlay::Conversations(ConversationList::default()));
            fx.push(Effect::ListConversations);
        }
        Action::DeleteConversation => {}
        Action::Quit => {
            if let Some(flag) = app.cancel.clone() {
                fx.push(Effect::Cancel(flag));
            }
            app.quit = true;
            fx.push(Effect::Quit);
        }
        Action::Resize(w, h) => app.size = (w, h),
        Action::Tick(now) => {
            app.now = now;
            app.spinner = app.spinner.wrapping_add(1);
            if !app.status_pending
                && !app.busy()
                && now.saturating_sub(app.last_status_request) >= STATUS_EVERY_S
            {
                app.status_pending = true;
                app.last_status_request = now;
                fx.push(Effect::RefreshStatus);
            }
        }
        Action::Worker(ev) => worker_event(app, ev, &mut fx),
        // The window was closed before the list came: nothing to show it in.
        Action::ConversationsListed(_) => {}
        Action::ConversationLoaded(r) => match r {
            Ok(c) => {
                app.conversation = c;
                app.mode = Mode::Ask;
                app.focus = Pane::Answer;
                app.reset_view();
                let title = app.conversation.title.clone();
                app.note(format!(
                    "reopened “{}”",
                    docent_core::text::sanitize(&title)
                ));
            }
            Err(e) => app.warn(e),
        },
        Action::Saved(r) => {
            if let Err(e) = r {
                app.warn(format!("the conversation was not saved: {e}"));
            }
        }
        Action::Exported(r) => match r {
            Ok(p) => app.note(format!("exported to {}", p.display())),
            Err(e) => app.warn(format!("export failed: {e}")),
        },
    }
    fx
}

/// Edits the question box (when it has the focus).
fn edit(app: &mut App, f: impl FnOnce(&mut TextInput)) {
    if app.focus == Pane::Question {
        f(&mut app.input);
    }
}

fn move_by(app: &mut App, delta: i32) {
    match app.focus {
        Pane::Question => {
            if delta < 0 {
                if !app.input.on_first_line() {
                    app.input.up();
                } else {
                    history_prev(app);
                }
            } else if !app.input.on_last_line() {
                app.input.down();
            } else {
                history_next(app);
            }
        }
        pane => scroll(app, pane, delta),
    }
}

fn history_prev(app: &mut App) {
    if app.history.is_empty() {
        return;
    }
    let pos = match app.history_pos {
        None => {
            app.draft = Some(app.input.clone());
            app.history.len() - 1
        }
        Some(i) => i.saturating_sub(1),
    };
    app.history_pos = Some(pos);
    app.input = TextInput::from_text(&app.history[pos]);
}

fn history_next(app: &mut App) {
    let Some(i) = app.history_pos else { return };
    if i + 1 < app.history.len() {
        app.history_pos = Some(i + 1);
        app.input = TextInput::from_text(&app.history[i + 1]);
    } else {
        app.history_pos = None;
        app.input = app.draft.take().unwrap_or_default();
    }
}

fn scroll(app: &mut App, pane: Pane, delta: i32) {
    let apply = |cur: usize, max: usize| -> usize {
        let cur = cur.min(max) as i64;
        (cur + i64::from(delta)).clamp(0, max as i64) as usize
    };
    match pane {
        Pane::Answer | Pane::Question => {
            let max = crate::ui::answer_max_scroll(app);
            let cur = if app.follow { max } else { app.answer_scroll };
            app.answer_scroll = apply(cur, max);
            app.follow = app.answer_scroll >= max;
        }
        Pane::Sources => {
            let n = app.sources().len();
            if n > 0 {
                app.selected = apply(app.selected, n - 1);
            }
        }
        Pane::Preview => {
            let max = crate::ui::preview_max_scroll(app);
            app.preview_scroll = apply(app.preview_scroll, max);
        }
    }
}

fn submit(app: &mut App, fx: &mut Vec<Effect>) {
    match app.focus {
        Pane::Question => match app.mode {
            Mode::Ask => ask(app, fx),
            Mode::Search => search(app, fx),
        },
        Pane::Sources => {
            if app.selected < app.sources().len() {
                app.preview = Some(app.selected);
                app.focus = Pane::Preview;
                app.preview_scroll = crate::ui::preview_initial_scroll(app);
            }
        }
        Pane::Answer | Pane::Preview => {}
    }
}

fn remember(app: &mut App, text: &str) {
    if app.history.last().map(String::as_str) != Some(text) {
        app.history.push(text.to_string());
    }
    app.history_pos = None;
    app.draft = None;
}

fn ask(app: &mut App, fx: &mut Vec<Effect>) {
    if app.input.is_blank() {
        return;
    }
    if app.busy() {
        app.warn("busy with the previous question: wait, or Esc to stop the answer");
        return;
    }
    if let Some(s) = &app.status {
        if !s.has_documents() {
            app.warn("nothing is indexed yet: run `docent index <FOLDER>` first");
            return;
        }
        if s.model.is_none() {
            app.warn("no language model: run `docent models import <FILE.gguf>`, or press / to search without one");
            return;
        }
    }
    let question = app.input.text().trim().to_string();
    remember(app, &question);
    app.input.clear();
    if app.conversation.id.is_empty() {
        app.seq += 1;
        app.conversation =
            Conversation::new(format!("{}-{}", clock::compact(app.now), app.seq), app.now);
    }
    if app.conversation.title.is_empty() {
        app.conversation.title = conversation::title_of(&question);
    }
    let history = app.conversation.history();
    let filters = app.filters.to_query();
    app.conversation
        .turns
        .push(Turn::asked(&question, &filters));
    app.conversation.updated = app.now;
    let cancel = Arc::new(AtomicBool::new(false));
    app.cancel = Some(cancel.clone());
    app.cancelling = false;
    app.reset_view();
    fx.push(Effect::Ask {
        request: AskRequest {
            question: app.filters.apply_to(&question),
            history,
        },
        cancel,
    });
}

fn search(app: &mut App, fx: &mut Vec<Effect>) {
    if app.input.is_blank() {
        return;
    }
    if app.busy() {
        app.warn("busy: wait for the answer or search in progress (Esc stops an answer)");
        return;
    }
    if let Some(s) = &app.status
        && !s.has_documents()
    {
        app.warn("nothing is indexed yet: run `docent index <FOLDER>` first");
        return;
    }
    let text = app.input.text().trim().to_string();
    remember(app, &text);
    let query = app.filters.apply_to(&text);
    app.search = Some(SearchState {
        query: query.clone(),
        running: true,
        hits: Vec::new(),
        error: None,
    });
    app.reset_view();
    fx.push(Effect::Search {
        query,
        k: app.config.search_k,
    });
}

fn start_export(app: &mut App) {
    let Some(answer) = app.last_answer().filter(|_| app.active_turn().is_none()) else {
        app.warn("no finished answer to export yet");
        return;
    };
    let name = export_file_name(&answer.question, &clock::date(app.now));
    app.overlay = Some(Overlay::Export(ExportPrompt {
        input: TextInput::from_text(&name),
        error: None,
    }));
}

fn open_selected(app: &mut App, fx: &mut Vec<Effect>) {
    let idx = match app.focus {
        Pane::Preview => app.preview.unwrap_or(app.selected),
        _ => app.selected,
    };
    let Some(target) = app.sources().get(idx).map(SourceView::target) else {
        app.warn("no source selected: Tab to the sources, pick one with j/k");
        return;
    };
    if app.busy() {
        app.warn("wait until the answer is finished (Esc stops it), then open the file");
        return;
    }
    let cmd = open_command(&target, &app.config.open);
    app.opening = true;
    app.note(format!("opening {}…", target.path.display()));
    fx.push(Effect::Open(cmd));
}

fn worker_event(app: &mut App, ev: WorkerEvent, fx: &mut Vec<Effect>) {
    match ev {
        WorkerEvent::Status(s) => {
            app.status = Some(s);
            app.status_pending = false;
        }
        WorkerEvent::Opened(r) => {
            app.opening = false;
            match r {
                Ok(p) => app.note(format!("opened {}", p.display())),
                Err(e) => app.warn(format!("could not open the file: {e}")),
            }
        }
        WorkerEvent::Searched(r) => {
            if let Some(s) = app.search.as_mut() {
                s.running = false;
                match r {
                    Ok(hits) => s.hits = hits,
                    Err(e) => s.error = Some(e.0),
                }
            }
            app.reset_view();
        }
        WorkerEvent::Ask(ev) => {
            let cancelling = app.cancelling;
            let now = app.now;
            let Some(turn) = app
                .conversation
                .turns
                .last_mut()
                .filter(|t| t.state.is_active())
            else {
                return;
            };
            let finished = match ev {
                AskEvent::Condensed(q) => {
                    turn.condensed = Some(q);
                    false
                }
                AskEvent::Retrieved {
                    sources,
                    relevance,
                    retrieval_ms,
                } => {
                    turn.retrieved = Some(conversation::Retrieved {
                        sources,
                        relevance,
                        retrieval_ms,
                    });
                    false
                }
                AskEvent::Text(t) => {
                    turn.state = TurnState::Streaming;
                    turn.text.push_str(&t);
                    false
                }
                AskEvent::Done(a) => {
                    turn.state = if cancelling {
                        TurnState::Cancelled
                    } else {
                        TurnState::Done
                    };
                    turn.text = a.text.clone();
                    turn.answer = Some(*a);
                    true
                }
                AskEvent::Failed(e) => {
                    turn.state = TurnState::Failed;
                    turn.error = Some(e);
                    true
                }
            };
            if finished {
                app.cancel = None;
                app.cancelling = false;
                app.conversation.updated = now;
                app.selected = 0;
                app.preview = None;
                fx.push(Effect::SaveConversation(app.conversation.clone()));
            }
        }
    }
}

/// Keys while a window is open. Returns false when the action is not the window's business
/// (time, the backend's reports, resizing), which then goes to the main screen.
fn update_overlay(app: &mut App, action: &Action, fx: &mut Vec<Effect>) -> bool {
    let Some(overlay) = app.overlay.as_mut() else {
        return false;
    };
    match action {
        Action::Quit => return false,
        Action::Tick(_)
        | Action::Resize(..)
        | Action::Worker(_)
        | Action::ConversationLoaded(_)
        | Action::Saved(_)
        | Action::Exported(_) => return false,
        _ => {}
    }
    match overlay {
        Overlay::Help => {
            // Any key closes the help.
            if !matches!(action, Action::ConversationsListed(_)) {
                app.overlay = None;
            }
        }
        Overlay::Export(p) => match action {
            Action::Cancel => app.overlay = None,
            Action::Submit => {
                let name = p.input.text().trim().to_string();
                if name.is_empty() {
                    p.error = Some("type a file name".into());
                    return true;
                }
                let mut path = app.config.export_dir.join(&name);
                if path.extension().is_none() {
                    path.set_extension("md");
                }
                let Some(answer) = app.last_answer() else {
                    app.overlay = None;
                    return true;
                };
                let markdown = docent_export::to_markdown(answer, &path, &clock::date(app.now));
                app.overlay = None;
                fx.push(Effect::Export { path, markdown });
            }
            other => edit_field(&mut p.input, other),
        },
        Overlay::Filters(form) => match action {
            Action::Cancel => app.overlay = None,
            Action::Submit => match form.parse() {
                Ok(f) => {
                    app.filters = f;
                    app.overlay = None;
                    let q = app.filters.to_query();
                    if q.is_empty() {
                        app.note("no filters");
                    } else {
                        app.note(format!("filters: {q}"));
                    }
                }
                Err(e) => form.error = Some(e),
            },
            Action::FocusNext | Action::Down => {
                form.focus = (form.focus + 1) % form.fields.len();
            }
            Action::FocusPrev | Action::Up => {
                form.focus = (form.focus + form.fields.len() - 1) % form.fields.len();
            }
            other => {
                form.error = None;
                edit_field(&mut form.fields[form.focus], other);
            }
        },
        Overlay::Conversations(list) => match action {
            Action::Cancel | Action::ShowConversations => app.overlay = None,
            Action::ConversationsListed(r) => match r {
                Ok(l) => {
                    list.items = Some(l.conversations.clone());
                    list.problems = l.problems.clone();
                    let n = l.conversations.len();
                    list.selected = list.selected.min(n.saturating_sub(1));
                }
                Err(e) => {
                    list.items = Some(Vec::new());
                    list.problems = vec![e.clone()];
                }
            },
            Action::Up | Action::Scroll { delta: ..0, .. } => {
                list.selected = list.selected.saturating_sub(1);
            }
            Action::Down | Action::Scroll { .. } => {
                let n = list.items.as_ref().map_or(0, Vec::len);
                list.selected = (list.selected + 1).min(n.saturating_sub(1));
            }
            Action::Submit => {
                let id = list
                    .items
                    .as_ref()
                    .and_then(|i| i.get(list.selected))
                    .map(|s| s.id.clone());
                if let Some(id) = id {
                    if app.active_turn().is_some() {
                        app.warn("an answer is being written: Esc stops it first");
                    } else {
                        app.overlay = None;
                        fx.push(Effect::LoadConversation(id));
                    }
                }
            }
            Action::DeleteConversation => {
                let id = list
                    .items
                    .as_ref()
                    .and_then(|i| i.get(list.selected))
                    .map(|s| s.id.clone());
                if let Some(id) = id {
                    if id == app.conversation.id {
                        app.warn("this is the open conversation: press n for a new one first");
                    } else {
                        list.items = None;
                        fx.push(Effect::DeleteConversation(id));
                        fx.push(Effect::ListConversations);
                    }
                }
            }
            _ => {}
        },
    }
    true
}

/// Line editing for a one-line field of a window.
fn edit_field(input: &mut TextInput, action: &Action) {
    match action {
        Action::Insert(c) => input.insert_char(*c),
        Action::Paste(s) => input.insert_str(&s.replace(['\n', '\r'], " ")),
        Action::Backspace => input.backspace(),
        Action::Delete => input.delete(),
        Action::DeleteWord => input.delete_word(),
        Action::ClearInput => input.clear(),
        Action::Left => input.left(),
        Action::Right => input.right(),
        Action::Home => input.home(),
        Action::End => input.end(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use docent_core::{ChunkId, Citation, LineRange, Source};

    use super::*;
    use crate::backend::{IndexStats, ModelInfo};
    use crate::open::Platform;

    fn config() -> AppConfig {
        AppConfig {
            export_dir: PathBuf::from("/home/ada/exports"),
            open: OpenEnv {
                editor: Some("vim".into()),
                pdf_viewer: Some("zathura".into()),
                platform: Platform::Unix,
            },
            search_k: 7,
        }
    }

    fn ready() -> Status {
        Status {
            daemon_connected: true,
            index: Some(IndexStats {
                documents: 3,
                chunks: 9,
            }),
            queue: 0,
            model: Some(ModelInfo {
                name: "m".into(),
                device: "cpu".into(),
            }),
            last_update: None,
        }
    }

    fn app() -> App {
        let mut a = App::new(config(), 1_763_816_709);
        update(&mut a, Action::Worker(WorkerEvent::Status(ready())));
        a
    }

    fn type_text(a: &mut App, s: &str) {
        for c in s.chars() {
            update(a, Action::Insert(c));
        }
    }

    fn answer(question: &str, text: &str) -> Answer {
        let src = "Intro.\nThe roof is due in 2026.\nEnd.";
        Answer {
            question: question.into(),
            query: question.into(),
            text: text.into(),
            refused: false,
            sentences: vec![],
            citations: vec![Citation {
                n: 1,
                sentence: 0,
                chunk_id: ChunkId("c1".into()),
                path: "/d/roof.md".into(),
                part: None,
                page: None,
                lines: LineRange::new(4, 6),
                quote: "The roof is due in 2026.".into(),
                quote_bytes: 7..31,
                lexical: 1.0,
                semantic: None,
                support: 0.9,
                weak: false,
            }],
            removed_citations: vec![],
            sources: vec![Source {
                n: 1,
                chunk_id: ChunkId("c1".into()),
                path: "/d/roof.md".into(),
                part: None,
                kind: DocKind::Note,
                page: None,
                lines: LineRange::new(4, 6),
                heading: None,
                title: None,
                subject: None,
                from: None,
                date: None,
                text: src.into(),
                truncated: false,
                similarity: Some(0.7),
            }],
            model: "m".into(),
            index: "i".into(),
            relevance: Some(0.7),
            retrieval_ms: 3,
            ttft_ms: None,
            tokens_per_s: None,
            prompt_tokens: None,
            generated_tokens: None,
            stop: None,
            warnings: vec![],
        }
    }

    /// Asks `q` and returns the request and the cancel flag the backend would get.
    fn ask(a: &mut App, q: &str) -> (AskRequest, Arc<AtomicBool>) {
        type_text(a, q);
        let mut fx = update(a, Action::Submit);
        assert_eq!(fx.len(), 1, "{fx:?}");
        match fx.remove(0) {
            Effect::Ask { request, cancel } => (request, cancel),
            other => panic!("{other:?}"),
        }
    }

    fn finish(a: &mut App, q: &str, text: &str) -> Vec<Effect> {
        update(
            a,
            Action::Worker(WorkerEvent::Ask(AskEvent::Done(Box::new(answer(q, text))))),
        )
    }

    #[test]
    fn follow_ups_carry_the_conversation() {
        let mut a = app();
        let (r1, _) = ask(&mut a, "when is the roof due?");
        assert_eq!(r1.question, "when is the roof due?");
        assert!(r1.history.is_empty());
        assert!(a.input.is_blank());
        update(
            &mut a,
            Action::Worker(WorkerEvent::Ask(AskEvent::Text("In 2026".into()))),
        );
        let fx = finish(&mut a, "when is the roof due?", "In 2026 [1].");
        assert!(matches!(&fx[..], [Effect::SaveConversation(c)] if c.turns.len() == 1));
        assert_eq!(a.conversation.id, "20251122-130509-1");
        assert_eq!(a.conversation.title, "when is the roof due?");

        let (r2, _) = ask(&mut a, "and who pays?");
        let h: Vec<&str> = r2.history.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(h, ["when is the roof due?", "In 2026 [1]."]);
        // A second question waits for the first answer.
        type_text(&mut a, "third");
        assert!(update(&mut a, Action::Submit).is_empty());
        assert!(a.notice.as_ref().is_some_and(|n| n.error));
    }

    #[test]
    fn history_browses_with_up_and_down_at_the_edges() {
        let mut a = app();
        for q in ["first", "second"] {
            ask(&mut a, q);
            finish(&mut a, q, "ok");
        }
        type_text(&mut a, "draft");
        update(&mut a, Action::Newline);
        type_text(&mut a, "line 2");
        // Up on the second line moves within the text, not through the history.
        update(&mut a, Action::Up);
        assert_eq!(a.input.text(), "draft\nline 2");
        update(&mut a, Action::Up);
        assert_eq!(a.input.text(), "second");
        update(&mut a, Action::Up);
        assert_eq!(a.input.text(), "first");
        update(&mut a, Action::Up);
        assert_eq!(a.input.text(), "first");
        update(&mut a, Action::Down);
        assert_eq!(a.input.text(), "second");
        update(&mut a, Action::Down);
        assert_eq!(a.input.text(), "draft\nline 2");
        assert_eq!(a.history_pos, None);
    }

    #[test]
    fn esc_stops_the_answer_and_the_turn_is_marked() {
        let mut a = app();
        let (_, flag) = ask(&mut a, "q");
        update(
            &mut a,
            Action::Worker(WorkerEvent::Ask(AskEvent::Text("par".into()))),
        );
        let fx = update(&mut a, Action::Cancel);
        let [Effect::Cancel(f)] = &fx[..] else {
            panic!("{fx:?}")
        };
        assert!(Arc::ptr_eq(f, &flag));
        f.store(true, Ordering::SeqCst);
        // A second Esc does not cancel twice.
        assert!(update(&mut a, Action::Cancel).is_empty());
        finish(&mut a, "q", "par");
        let t = &a.conversation.turns[0];
        assert_eq!(t.state, TurnState::Cancelled);
        assert!(a.cancel.is_none());
        // Cancelled turns are not history for the next question.
        assert!(a.conversation.history().is_empty());
        // With nothing to stop, Esc leaves the question box.
        assert_eq!(a.focus, Pane::Question);
        assert!(update(&mut a, Action::Cancel).is_empty());
        assert_eq!(a.focus, Pane::Answer);
    }

    #[test]
    fn quitting_stops_the_answer() {
        let mut a = app();
        let (_, flag) = ask(&mut a, "q");
        let fx = update(&mut a, Action::Quit);
        assert!(matches!(&fx[..], [Effect::Cancel(f), Effect::Quit] if Arc::ptr_eq(f, &flag)));
        assert!(a.quit);
    }

    #[test]
    fn filters_go_into_the_question_in_query_syntax() {
        let mut a = app();
        update(&mut a, Action::Cancel);
        update(&mut a, Action::EditFilters);
        type_text(&mut a, "pdf email");
        update(&mut a, Action::FocusNext);
        update(&mut a, Action::FocusNext);
        type_text(&mut a, "Bo Lind");
        update(&mut a, Action::Down);
        type_text(&mut a, "2024-13-01");
        update(&mut a, Action::Submit);
        let Some(Overlay::Filters(form)) = &a.overlay else {
            panic!("the form stays open on an error")
        };
        assert!(form.error.as_deref().unwrap().contains("2024-13-01"));
        update(&mut a, Action::ClearInput);
        type_text(&mut a, "2024-01-31");
        update(&mut a, Action::Submit);
        assert!(a.overlay.is_none());
        assert_eq!(
            a.filters.to_query(),
            "kind:pdf,email from:\"Bo Lind\" after:2024-01-31"
        );
        update(&mut a, Action::Focus(Pane::Question));
        let (r, _) = ask(&mut a, "roof?");
        assert_eq!(
            r.question,
            "roof? kind:pdf,email from:\"Bo Lind\" after:2024-01-31"
        );
        assert_eq!(a.conversation.turns[0].question, "roof?");
    }

    #[test]
    fn search_mode_searches_without_the_model() {
        let mut a = app();
        a.status.as_mut().unwrap().model = None;
        a.filters.kinds = vec![DocKind::Pdf];
        update(&mut a, Action::ToggleSearch);
        type_text(&mut a, "roof");
        let fx = update(&mut a, Action::Submit);
        assert!(
            matches!(&fx[..], [Effect::Search { query, k: 7 }] if query == "roof kind:pdf"),
            "{fx:?}"
        );
        assert!(a.busy());
        update(&mut a, Action::Worker(WorkerEvent::Searched(Ok(vec![]))));
        assert!(!a.busy());
    }

    #[test]
    fn nothing_is_asked_without_an_index_or_a_model() {
        let mut a = app();
        a.status.as_mut().unwrap().model = None;
        type_text(&mut a, "q");
        assert!(update(&mut a, Action::Submit).is_empty());
        assert!(
            a.notice
                .as_ref()
                .unwrap()
                .text
                .contains("docent models import")
        );
        a.status.as_mut().unwrap().index = None;
        assert!(update(&mut a, Action::Submit).is_empty());
        assert!(
            a.notice
                .as_ref()
                .unwrap()
                .text
                .contains("docent index <FOLDER>")
        );
        assert_eq!(a.input.text(), "q");
    }

    #[test]
    fn export_names_and_the_prompt() {
        assert_eq!(
            export_file_name("When is the roof due? (Linden)", "2025-11-22"),
            "answer-2025-11-22-when-is-the-roof-due-linden.md"
        );
        assert_eq!(
            export_file_name("¿¡!", "2025-11-22"),
            "answer-2025-11-22.md"
        );
        let long = export_file_name(&"abcdefghij ".repeat(10), "d");
        assert_eq!(long, "answer-d-abcdefghij-abcdefghij-abcdefghij.md");
        assert_eq!(
            export_file_name(&"x".repeat(50), "d"),
            format!("answer-d-{}.md", "x".repeat(40))
        );

        let mut a = app();
        update(&mut a, Action::StartExport);
        assert!(a.overlay.is_none(), "nothing to export yet");
        ask(&mut a, "When is the roof due?");
        finish(&mut a, "When is the roof due?", "In 2026 [1].");
        update(&mut a, Action::StartExport);
        let Some(Overlay::Export(p)) = &a.overlay else {
            panic!("{:?}", a.overlay)
        };
        assert_eq!(p.input.text(), "answer-2025-11-22-when-is-the-roof-due.md");
        update(&mut a, Action::ClearInput);
        type_text(&mut a, "roof");
        let fx = update(&mut a, Action::Submit);
        let [Effect::Export { path, markdown }] = &fx[..] else {
            panic!("{fx:?}")
        };
        assert_eq!(path, &PathBuf::from("/home/ada/exports/roof.md"));
        assert!(
            markdown.starts_with("# When is the roof due?"),
            "{markdown}"
        );
        assert!(
            markdown.contains("[^1]: [roof.md, lines 4-6](../../../d/roof.md#L4-L6)"),
            "{markdown}"
        );
    }

    #[test]
    fn sources_preview_and_open() {
        let mut a = app();
        ask(&mut a, "q");
        finish(&mut a, "q", "In 2026 [1].");
        let v = a.sources();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].support, Some(0.9));
        assert_eq!(
            &v[0].text[v[0].highlights[0].clone()],
            "The roof is due in 2026."
        );

        update(&mut a, Action::Focus(Pane::Sources));
        update(&mut a, Action::Submit);
        assert_eq!(a.preview, Some(0));
        assert_eq!(a.focus, Pane::Preview);
        let fx = update(&mut a, Action::OpenExternal);
        let [Effect::Open(cmd)] = &fx[..] else {
            panic!("{fx:?}")
        };
        assert_eq!(cmd.program, "vim");
        assert_eq!(cmd.args, ["+4", "/d/roof.md"]);
        assert!(a.busy(), "no second command while one is open");
        update(
            &mut a,
            Action::Worker(WorkerEvent::Opened(Ok(PathBuf::from("/d/roof.md")))),
        );
        assert!(!a.busy());
        assert_eq!(a.notice.as_ref().unwrap().text, "opened /d/roof.md");
    }

    #[test]
    fn status_is_refreshed_when_idle_only() {
        let mut a = app();
        let t0 = a.now;
        assert!(update(&mut a, Action::Tick(t0 + 1)).is_empty());
        let fx = update(&mut a, Action::Tick(t0 + STATUS_EVERY_S));
        assert!(matches!(&fx[..], [Effect::RefreshStatus]));
        // Not again until it has come back.
        assert!(update(&mut a, Action::Tick(t0 + 3 * STATUS_EVERY_S)).is_empty());
        update(&mut a, Action::Worker(WorkerEvent::Status(ready())));
        ask(&mut a, "q");
        assert!(update(&mut a, Action::Tick(t0 + 9 * STATUS_EVERY_S)).is_empty());
    }

    #[test]
    fn scrolling_the_answer_stops_following_its_end() {
        let mut a = app();
        a.size = (80, 24);
        ask(&mut a, "q");
        finish(&mut a, "q", &"The roof is due [1]. ".repeat(80));
        let max = crate::ui::answer_max_scroll(&a);
        assert!(max > 20, "{max}");
        assert!(a.follow);
        update(&mut a, Action::Focus(Pane::Answer));
        update(&mut a, Action::Up);
        assert!(!a.follow);
        assert_eq!(a.answer_scroll, max - 1);
        update(&mut a, Action::Jump(false));
        assert_eq!(a.answer_scroll, 0);
        update(&mut a, Action::Page(1));
        let page = crate::ui::pane_height(&a, Pane::Answer) - 1;
        assert_eq!(a.answer_scroll, page);
        update(
            &mut a,
            Action::Scroll {
                pane: None,
                delta: 10_000,
            },
        );
        assert!(a.follow);
        assert_eq!(a.answer_scroll, max);
    }

    #[test]
    fn term_ranges_match_word_starts() {
        let text = "Roofing: the roofs, a proof. AI aim";
        let r = term_ranges(text, &["roof".into(), "ai".into()]);
        let words: Vec<&str> = r.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(words, ["Roofing", "roofs", "AI"]);
    }
}
