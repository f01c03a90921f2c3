//! A running interface without its terminal: the state, the worker thread that owns the
//! backend, and the carrying out of [`Effect`]s (files written here, backend calls queued on
//! the worker). The event loop in [`crate::run`] feeds it terminal events and time; tests feed
//! it keys directly.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use ratatui::crossterm::event::Event;

use crate::app::{Action, App, AppConfig, Effect, update};
use crate::backend::{AskEvent, Backend, BackendError, Job, Worker, WorkerEvent};
use crate::clock::Timestamp;
use crate::conversation;
use crate::keys;

/// What the user is told when the backend's thread has ended.
const GONE: &str = "the backend stopped unexpectedly (a bug): restart docent";

/// What a [`Session`] needs from the terminal: handing it over to a program that runs in it (an
/// editor) and taking it back.
pub trait Screen {
    fn suspend(&mut self);
    fn resume(&mut self) -> std::io::Result<()>;
}

/// A screen that is not a terminal (tests, or output that is not a TTY).
pub struct NoScreen;

impl Screen for NoScreen {
    fn suspend(&mut self) {}
    fn resume(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen for crate::term::TerminalGuard {
    fn suspend(&mut self) {
        crate::term::TerminalGuard::suspend(self);
    }
    fn resume(&mut self) -> std::io::Result<()> {
        crate::term::TerminalGuard::resume(self)
    }
}

/// State, worker and the effects between them.
pub struct Session {
    pub app: App,
    worker: Worker,
    events: Receiver<Action>,
    queue: VecDeque<Action>,
    conversations_dir: PathBuf,
    /// Set when the screen may hold text drawn outside the interface (a panic message).
    redraw: bool,
    /// The worker's thread has ended.
    gone: bool,
}

/// Writes `markdown` to a new file at `path`, readable by the user only (an answer quotes the
/// documents); an existing file is never overwritten.
pub fn write_export(path: &Path, markdown: &str) -> Result<PathBuf, String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{} exists already: choose another name", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    })?;
    f.write_all(markdown.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

impl Session {
    /// Starts the worker thread with `backend` and asks it for the status.
    pub fn new(
        backend: Box<dyn Backend>,
        config: AppConfig,
        conversations_dir: PathBuf,
        now: Timestamp,
    ) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let worker = Worker::spawn(backend, tx, Action::Worker)?;
        let mut app = App::new(config, now);
        app.status_pending = worker.send(Job::Status);
        Ok(Session {
            app,
            worker,
            events: rx,
            queue: VecDeque::new(),
            conversations_dir,
            redraw: false,
            gone: false,
        })
    }

    /// Applies an action and everything that follows from it. Returns false once the user
    /// has quit.
    pub fn dispatch(&mut self, action: Action, screen: &mut dyn Screen) -> bool {
        self.queue.push_back(action);
        while let Some(a) = self.queue.pop_front() {
            for effect in update(&mut self.app, a) {
                self.execute(effect, screen);
            }
        }
        !self.app.quit
    }

    /// Maps a terminal event to an action and applies it.
    pub fn handle_event(&mut self, event: &Event, screen: &mut dyn Screen) -> bool {
        match keys::action_for(&self.app, event) {
            Some(a) => self.dispatch(a, screen),
            None => !self.app.quit,
        }
    }

    /// True once after the backend's thread ended: the terminal should be cleared and drawn
    /// anew, since the panic message may have been printed over the interface.
    pub fn take_redraw(&mut self) -> bool {
        std::mem::take(&mut self.redraw)
    }

    /// Applies every report the worker has sent so far, without waiting.
    pub fn drain(&mut self, screen: &mut dyn Screen) -> bool {
        loop {
            match self.events.try_recv() {
                Ok(a) => {
                    if !self.dispatch(a, screen) {
                        return false;
                    }
                }
                Err(TryRecvError::Empty) => return !self.app.quit,
                Err(TryRecvError::Disconnected) => {
                    self.worker_gone();
                    return !self.app.quit;
                }
            }
        }
    }

    /// Waits for the worker's next report and applies it; false when the worker has ended.
    pub fn wait_worker(&mut self, screen: &mut dyn Screen) -> bool {
        match self.events.recv() {
            Ok(a) => {
                self.dispatch(a, screen);
                true
            }
            Err(_) => {
                self.worker_gone();
                false
            }
        }
    }

    /// The worker's thread has ended (a backend panicked): whatever it was doing fails.
    fn worker_gone(&mut self) {
        if std::mem::replace(&mut self.gone, true) {
            return;
        }
        self.redraw = true;
        if self.app.active_turn().is_some() {
            self.dispatch(
                Action::Worker(WorkerEvent::Ask(AskEvent::Failed(GONE.into()))),
                &mut NoScreen,
            );
        }
        if self.app.search.as_ref().is_some_and(|s| s.running) {
            self.dispatch(
                Action::Worker(WorkerEvent::Searched(Err(BackendError::new(GONE)))),
                &mut NoScreen,
            );
        }
    }

    /// Queues a job on the worker; when its thread has ended, the job fails at once.
    fn send(&mut self, job: Job) -> bool {
        let failure = match &job {
            Job::Ask { .. } => Some(WorkerEvent::Ask(AskEvent::Failed(GONE.into()))),
            Job::Search { .. } => Some(WorkerEvent::Searched(Err(BackendError::new(GONE)))),
            Job::Open(_) => Some(WorkerEvent::Opened(Err(BackendError::new(GONE)))),
            Job::Status => None,
        };
        let sent = self.worker.send(job);
        if !sent && let Some(f) = failure {
            self.queue.push_back(Action::Worker(f));
        }
        sent
    }

    fn execute(&mut self, effect: Effect, screen: &mut dyn Screen) {
        let dir = self.conversations_dir.clone();
        match effect {
            Effect::Ask { request, cancel } => {
                self.send(Job::Ask { request, cancel });
            }
            Effect::Cancel(flag) => flag.store(true, Ordering::SeqCst),
            Effect::Search { query, k } => {
                self.send(Job::Search { query, k });
            }
            Effect::Open(cmd) => {
                if cmd.terminal {
                    self.open_in_terminal(cmd, screen);
                } else {
                    self.send(Job::Open(cmd));
                }
            }
            Effect::Export { path, markdown } => {
                self.queue
                    .push_back(Action::Exported(write_export(&path, &markdown)));
            }
            Effect::SaveConversation(c) => {
                let r = conversation::save(&dir, &c).map_err(|e| e.to_string());
                self.queue.push_back(Action::Saved(r));
            }
            Effect::ListConversations => {
                let r = conversation::list(&dir).map_err(|e| e.to_string());
                self.queue.push_back(Action::ConversationsListed(r));
            }
            Effect::LoadConversation(id) => {
                let r = conversation::load(&dir, &id).map_err(|e| e.to_string());
                self.queue.push_back(Action::ConversationLoaded(r));
            }
            Effect::DeleteConversation(id) => {
                if let Err(e) = conversation::delete(&dir, &id) {
                    self.queue.push_back(Action::Saved(Err(e.to_string())));
                }
            }
            Effect::RefreshStatus => {
                self.send(Job::Status);
            }
            Effect::Quit => {}
        }
    }

    /// Hands the terminal to a program (an editor) until the backend reports it has exited;
    /// other reports that arrive meanwhile are applied as usual.
    fn open_in_terminal(&mut self, cmd: crate::open::OpenCommand, screen: &mut dyn Screen) {
        screen.suspend();
        if self.send(Job::Open(cmd)) {
            loop {
                match self.events.recv() {
                    Ok(Action::Worker(WorkerEvent::Opened(r))) => {
                        self.queue.push_back(Action::Worker(WorkerEvent::Opened(r)));
                        break;
                    }
                    Ok(other) => self.queue.push_back(other),
                    Err(_) => {
                        self.queue.push_back(Action::Worker(WorkerEvent::Opened(Err(
                            BackendError::new(GONE),
                        ))));
                        break;
                    }
                }
            }
        }
        if let Err(e) = screen.resume() {
            self.queue
                .push_back(Action::Worker(WorkerEvent::Opened(Err(BackendError::new(
                    format!("the terminal: {e}"),
                )))));
        }
    }
}
