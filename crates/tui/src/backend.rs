//! The seam between the interface and the engine: the [`Backend`] trait the binary implements,
//! the data it hands back ([`Status`], [`AskEvent`], [`SearchHit`]), and the [`Worker`] thread
//! that calls it so that the interface never waits on a model.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use docent_core::{Answer, ChatMessage, Hit};
use docent_retrieve::Snippet;

use crate::open::OpenCommand;

/// An error a backend reports; its message is shown to the user as it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl BackendError {
    pub fn new(message: impl Into<String>) -> Self {
        BackendError(message.into())
    }
}

/// Counts of what is indexed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub documents: u64,
    pub chunks: u64,
}

/// The language model that answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// Its name as the user knows it (file stem or configured id).
    pub name: String,
    /// Where it runs (`cpu`, `cuda:0`, `metal`, or a server's URL).
    pub device: String,
}

/// What the status bar shows, and what the interface needs to know to say what to do first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// True when the indexing daemon answers on its socket.
    pub daemon_connected: bool,
    /// `None` when there is no index yet (`docent index <FOLDER>` makes one).
    pub index: Option<IndexStats>,
    /// Files waiting to be (re)indexed.
    pub queue: usize,
    /// `None` when no language model is configured or found.
    pub model: Option<ModelInfo>,
    /// When the index last changed, as the backend formats it (`2026-11-20 14:02`).
    pub last_update: Option<String>,
}

impl Status {
    /// True when there is an index with at least one document in it.
    pub fn has_documents(&self) -> bool {
        self.index.as_ref().is_some_and(|i| i.documents > 0)
    }
}

/// One question with the conversation before it, as the engine's ask pipeline takes it.
#[derive(Clone, PartialEq, Eq)]
pub struct AskRequest {
    /// The question as typed, with the filters of the filter form appended in docent's query
    /// syntax (`kind:pdf after:2024-01-01`).
    pub question: String,
    /// Earlier turns of the conversation, oldest first (user and assistant messages).
    pub history: Vec<ChatMessage>,
}

impl fmt::Debug for AskRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AskRequest")
            .field("question_len", &self.question.len())
            .field("history", &self.history.len())
            .finish()
    }
}

/// What happens while an answer is made, in order; mirrors the engine's ask events, plus
/// [`AskEvent::Failed`].
#[derive(Clone, PartialEq)]
pub enum AskEvent {
    /// A follow-up was rewritten into this standalone query.
    Condensed(String),
    /// Retrieval is done.
    Retrieved {
        /// Sources that will be given to the model (0 when nothing was relevant enough).
        sources: usize,
        /// The best cosine similarity of any candidate.
        relevance: Option<f32>,
        retrieval_ms: u64,
    },
    /// A piece of the answer as the model wrote it (citations not yet checked).
    Text(String),
    /// The checked answer. After a cancel it holds what was generated so far.
    Done(Box<Answer>),
    /// The question could not be answered (the message says why and what to do).
    Failed(String),
}

impl fmt::Debug for AskEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskEvent::Condensed(q) => write!(f, "Condensed(len {})", q.len()),
            AskEvent::Retrieved {
                sources,
                relevance,
                retrieval_ms,
            } => f
                .debug_struct("Retrieved")
                .field("sources", sources)
                .field("relevance", relevance)
                .field("retrieval_ms", retrieval_ms)
                .finish(),
            AskEvent::Text(t) => write!(f, "Text(len {})", t.len()),
            AskEvent::Done(a) => write!(f, "Done({a:?})"),
            AskEvent::Failed(m) => write!(f, "Failed(len {})", m.len()),
        }
    }
}

/// A search hit with its snippet, as the engine's search returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    pub hit: Hit,
    pub snippet: Snippet,
}

/// What the interface needs from the engine. The binary implements it over the real engine;
/// tests use a fake. Every method is called on the [`Worker`] thread, one at a time, so an
/// implementation may block (load a model, run a search) without freezing the interface.
pub trait Backend: Send {
    /// Answers a question, handing each [`AskEvent`] to `sink` as it happens; the last event is
    /// [`AskEvent::Done`] or [`AskEvent::Failed`]. Generation stops between tokens once
    /// `cancel` is set; what was generated so far still comes back in `Done`.
    fn ask(&mut self, request: AskRequest, cancel: Arc<AtomicBool>, sink: &mut dyn FnMut(AskEvent));

    /// Hybrid search without the language model: the best `k` hits for `query` (which may hold
    /// filters in docent's query syntax).
    fn search(&mut self, query: &str, k: usize) -> Result<Vec<SearchHit>, BackendError>;

    /// The daemon, index and model as they are now.
    fn status(&mut self) -> Status;

    /// Opens a file at a page or line with the command [`crate::open::open_command`] built.
    /// When [`OpenCommand::terminal`] is true the command needs the terminal (an editor): the
    /// interface has handed it over before this is called and takes it back afterwards, so the
    /// implementation should wait for the command to exit.
    fn open(&mut self, command: &OpenCommand) -> Result<(), BackendError>;
}

/// Work for the [`Worker`].
#[derive(Debug)]
pub enum Job {
    Ask {
        request: AskRequest,
        cancel: Arc<AtomicBool>,
    },
    Search {
        query: String,
        k: usize,
    },
    Status,
    Open(OpenCommand),
}

/// What the [`Worker`] reports back; the event loop turns each into an
/// [`Action`](crate::app::Action).
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerEvent {
    Ask(AskEvent),
    Searched(Result<Vec<SearchHit>, BackendError>),
    Status(Status),
    Opened(Result<PathBuf, BackendError>),
}

/// A thread that owns the [`Backend`] and runs [`Job`]s in order, sending what they produce
/// over a channel. Dropping the worker closes its queue; the thread ends after the job at hand.
pub struct Worker {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread; events go to `events`, each wrapped by `wrap` (so that they can share
    /// a channel with other sources of actions).
    pub fn spawn<T: Send + 'static>(
        mut backend: Box<dyn Backend>,
        events: Sender<T>,
        wrap: fn(WorkerEvent) -> T,
    ) -> std::io::Result<Self> {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = channel();
        let thread = std::thread::Builder::new()
            .name("docent-tui-worker".into())
            .spawn(move || {
                for job in rx {
                    let send = |e: WorkerEvent| events.send(wrap(e)).is_ok();
                    let alive = match job {
                        Job::Ask { request, cancel } => {
                            let mut alive = true;
                            backend.ask(request, cancel, &mut |e| {
                                alive &= send(WorkerEvent::Ask(e));
                            });
                            alive
                        }
                        Job::Search { query, k } => {
                            send(WorkerEvent::Searched(backend.search(&query, k)))
                        }
                        Job::Status => send(WorkerEvent::Status(backend.status())),
                        Job::Open(cmd) => {
                            let r = backend.open(&cmd).map(|()| cmd.path.clone());
                            send(WorkerEvent::Opened(r))
                        }
                    };
                    if !alive {
                        break;
                    }
                }
            })?;
        Ok(Worker {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a job. Returns false when the thread has ended (a backend panicked).
    pub fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs.take();
        // A backend stuck in a long call must not keep the program from exiting: the thread is
        // joined only when it has already finished.
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}
