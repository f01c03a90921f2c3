//! # docent-tui
//!
//! docent's terminal interface: a question box, the answer streaming in with its `[n]`
//! citation marks, the sources it rests on, and a preview of each source's passage with the
//! cited part highlighted; search without the model, filters, Markdown export, and saved
//! conversations that follow-up questions build on.
//!
//! It owns the interface and nothing else. The engine stays behind the [`Backend`] trait, which
//! the binary implements; this crate never loads an index or a model, and so builds and tests
//! without either.
//!
//! The shape (see the modules):
//!
//! - [`app`]: the state ([`App`]), every [`Action`] that can change it, and [`update`], the only
//!   function that does, returning [`Effect`]s for the event loop to carry out. Pure.
//! - [`ui`]: [`draw`], a pure function of the state and the [`Theme`].
//! - [`keys`]: terminal events to actions, and the help window's list of keys.
//! - [`backend`]: the [`Backend`] trait, the events of an answer ([`AskEvent`]), the
//!   [`Status`] shown in the status bar, and the [`Worker`] thread that calls the backend so
//!   that a loading model or a streaming answer never blocks the keyboard.
//! - [`session`]: state, worker and effects together, without a terminal ([`Session`]).
//! - [`conversation`]: turns, the history sent with follow-ups, one JSON file per conversation.
//! - [`filter`]: the filter form and its query syntax; [`open`]: the command that opens a file
//!   at a page or line; [`editor`]: the text input; [`term`]: taking over the terminal and
//!   always giving it back, on a panic too.
//!
//! Privacy and safety: text from documents, the model and the backend is stripped of terminal
//! control sequences before it is drawn ([`ui::clean`]); `Debug` output of types that carry
//! such text prints lengths only.

pub mod app;
pub mod backend;
pub mod clock;
pub mod conversation;
pub mod editor;
pub mod filter;
pub mod keys;
pub mod open;
pub mod session;
pub mod term;
pub mod theme;
pub mod ui;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::crossterm::event;

pub use app::{Action, App, AppConfig, Effect, update};
pub use backend::{
    AskEvent, AskRequest, Backend, BackendError, IndexStats, ModelInfo, SearchHit, Status, Worker,
};
pub use conversation::Conversation;
pub use open::{OpenCommand, OpenEnv, OpenTarget, open_command};
pub use session::Session;
pub use theme::Theme;
pub use ui::draw;

/// Errors that end the interface.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(
        "the terminal failed: {0}\nhint: docent's interface needs an interactive terminal; `docent ask` works without one"
    )]
    Terminal(#[from] std::io::Error),
}

pub type Result<T, E = TuiError> = std::result::Result<T, E>;

/// How the interface is set up.
#[derive(Clone, Debug)]
pub struct TuiOptions {
    /// Where conversations are kept (created when first needed).
    pub conversations_dir: PathBuf,
    /// Where exports with a relative name are written (usually the current directory).
    pub export_dir: PathBuf,
    /// The editor and viewers that open files.
    pub open: OpenEnv,
    /// Colours, or none (`NO_COLOR`).
    pub theme: Theme,
    /// Hits per search in search mode.
    pub search_k: usize,
}

impl TuiOptions {
    /// Options with the editor and the theme taken from the environment (`$VISUAL`/`$EDITOR`,
    /// `NO_COLOR`) and 20 hits per search.
    pub fn new(conversations_dir: PathBuf, export_dir: PathBuf) -> Self {
        TuiOptions {
            conversations_dir,
            export_dir,
            open: OpenEnv::from_env(),
            theme: Theme::from_env(),
            search_k: 20,
        }
    }
}

/// How often time moves on in the state (the activity indicator, status refreshes).
const TICK: Duration = Duration::from_millis(250);

/// Runs the interface until the user quits: takes over the terminal, starts the backend's
/// worker thread, and gives the terminal back however it ends (on a panic too).
pub fn run(backend: Box<dyn Backend>, options: TuiOptions) -> Result<()> {
    let config = AppConfig {
        export_dir: options.export_dir.clone(),
        open: options.open.clone(),
        search_k: options.search_k.max(1),
    };
    let theme = options.theme;
    let mut session = Session::new(backend, config, options.conversations_dir, clock::now())?;
    let mut term = term::TerminalGuard::new()?;
    let size = term.terminal.size()?;
    session.app.size = (size.width, size.height);
    let mut last_tick = Instant::now();
    loop {
        term.terminal.draw(|f| ui::draw(f, &session.app, &theme))?;
        // Short waits while the backend works, so that streamed text shows as it comes.
        let wait = if session.app.busy() {
            Duration::from_millis(25)
        } else {
            Duration::from_millis(100)
        };
        if event::poll(wait)? {
            loop {
                let ev = event::read()?;
                if !session.handle_event(&ev, &mut term) {
                    return Ok(());
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if !session.drain(&mut term) {
            return Ok(());
        }
        if session.take_redraw() {
            term.repaint()?;
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if !session.dispatch(Action::Tick(clock::now()), &mut term) {
                return Ok(());
            }
        }
    }
}
