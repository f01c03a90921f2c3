//! # docent-daemon
//!
//! Keeps the folders a user chose current in the background. The pieces, from the outside in:
//!
//! - [`Folders`]: the watched folders, kept in `<data dir>/folders.json` (`docent folders`).
//! - [`watcher`]: file-system events through `notify` (inotify, FSEvents, …), with a polling
//!   watcher where there are none (network drives: chosen automatically, or by config).
//!   Events are only hints: they name paths, and [`Coalescer`] turns bursts of them (an editor
//!   writing a temp file, renaming it, touching it again) into one update per path once the path
//!   has been quiet for `watch.debounce_ms`.
//! - [`service::serve`]: the loop. It owns the data directory's one [`docent_engine::Ingester`]
//!   (write lock held, embedding model loaded once and kept warm), runs a reconciliation walk at
//!   start and every `watch.reconcile_minutes` (catching whatever happened while it was down or
//!   the machine slept), applies coalesced updates, and answers the control socket.
//! - [`control`]: a Unix socket in `<data dir>/daemon/` (owner-only), one JSON request and one
//!   JSON reply per connection: status, index these paths, pause, resume, reload folders, stop.
//!   Other docent processes use it while the daemon holds the write lock; queries read the
//!   store directly and need no daemon.
//! - [`units`]: a systemd user unit or a launchd agent for start at login.
//!
//! Crash safety comes from below: the ingest write order and start-up reconciliation of the
//! stores, and the manifest as the persistent queue (what is not recorded as done is found
//! again by the next walk). A file during which the process died repeatedly is quarantined by
//! the ingester's journal.

pub mod control;
mod folders;
mod paths;
pub mod service;
pub mod units;
pub mod watcher;

pub use folders::Folders;
pub use paths::{DaemonPaths, alive, read_pid, terminate};
pub use watcher::Coalescer;

/// What can go wrong in the daemon's own parts (the engine's errors pass through as text).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: damaged: {message}\nhint: fix or delete the file", path.display())]
    Damaged {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("watching {}: {message}", path.display())]
    Watch {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("the daemon did not answer: {0}")]
    Control(String),
    #[error(transparent)]
    Engine(#[from] docent_engine::EngineError),
}

pub type Result<T, E = DaemonError> = std::result::Result<T, E>;
