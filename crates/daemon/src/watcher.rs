//! Change hints from the file system, and their coalescing.
//!
//! Events are hints only: they say which paths to look at, never what changed. The ingester
//! compares what it finds with the manifest, so a missed, duplicated or reordered event can cost
//! at most a delay until the next reconciliation walk, never a wrong index.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use crate::control::WatchedFolder;
use crate::{DaemonError, Result};

/// What the watchers report.
#[derive(Debug)]
pub enum Hint {
    /// Something happened at this path (created, written, renamed from or to, deleted).
    Path(PathBuf),
    /// Events were lost (the kernel's queue overflowed): walk everything again.
    Rescan,
    /// A watcher failed; the message names what.
    Error(String),
}

/// How a folder is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Events,
    Poll,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Events => "events",
            Mode::Poll => "poll",
        }
    }
}

/// One watcher per folder, each sending [`Hint`]s into one channel.
pub struct FolderWatcher {
    tx: UnboundedSender<Hint>,
    config: String,
    poll_interval: Duration,
    watched: Vec<(PathBuf, Mode, Box<dyn Watcher + Send>)>,
}

impl FolderWatcher {
    /// `config` is `watch.mode`: "auto", "events" or "poll".
    pub fn new(tx: UnboundedSender<Hint>, config: &str, poll_interval: Duration) -> Self {
        FolderWatcher {
            tx,
            config: config.to_string(),
            poll_interval,
            watched: Vec::new(),
        }
    }

    /// Starts watching `root` recursively. In "auto" mode a network file system is polled, and
    /// so is a folder whose events cannot be had (e.g. the inotify watch limit is reached).
    pub fn watch(&mut self, root: &Path) -> Result<Mode> {
        if self.watched.iter().any(|(p, _, _)| p == root) {
            return Ok(self.mode_of(root).unwrap_or(Mode::Events));
        }
        let want_events = match self.config.as_str() {
            "poll" => false,
            "events" => true,
            _ => !is_network_fs(root),
        };
        let fail = |message: String| DaemonError::Watch {
            path: root.to_path_buf(),
            message,
        };
        if want_events {
            match self.events_watcher(root) {
                Ok(w) => {
                    self.watched.push((root.to_path_buf(), Mode::Events, w));
                    return Ok(Mode::Events);
                }
                Err(e) if self.config == "events" => return Err(fail(e)),
                Err(e) => {
                    let _ = self.tx.send(Hint::Error(format!(
                        "{}: no file-system events ({e}); polling every {} s instead",
                        root.display(),
                        self.poll_interval.as_secs()
                    )));
                }
            }
        }
        let w = self.poll_watcher(root).map_err(fail)?;
        self.watched.push((root.to_path_buf(), Mode::Poll, w));
        Ok(Mode::Poll)
    }

    pub fn unwatch(&mut self, root: &Path) {
        self.watched.retain(|(p, _, _)| p != root);
    }

    pub fn mode_of(&self, root: &Path) -> Option<Mode> {
        self.watched
            .iter()
            .find(|(p, _, _)| p == root)
            .map(|(_, m, _)| *m)
    }

    pub fn folders(&self) -> Vec<WatchedFolder> {
        self.watched
            .iter()
            .map(|(p, m, _)| WatchedFolder {
                path: p.display().to_string(),
                mode: m.as_str().into(),
            })
            .collect()
    }

    fn events_watcher(&self, root: &Path) -> std::result::Result<Box<dyn Watcher + Send>, String> {
        let tx = self.tx.clone();
        let mut w =
            notify::recommended_watcher(move |res| forward(&tx, res)).map_err(|e| e.to_string())?;
        w.watch(root, RecursiveMode::Recursive)
            .map_err(|e| e.to_string())?;
        Ok(Box::new(w))
    }

    fn poll_watcher(&self, root: &Path) -> std::result::Result<Box<dyn Watcher + Send>, String> {
        let tx = self.tx.clone();
        let config = notify::Config::default()
            .with_poll_interval(self.poll_interval)
            .with_compare_contents(false);
        let mut w = notify::PollWatcher::new(move |res| forward(&tx, res), config)
            .map_err(|e| e.to_string())?;
        w.watch(root, RecursiveMode::Recursive)
            .map_err(|e| e.to_string())?;
        Ok(Box::new(w))
    }
}

fn forward(tx: &UnboundedSender<Hint>, res: notify::Result<notify::Event>) {
    match res {
        Ok(event) => {
            if event.need_rescan() {
                let _ = tx.send(Hint::Rescan);
                return;
            }
            // Opening or reading a file changes nothing; closing it after writing does.
            if let EventKind::Access(kind) = event.kind
                && kind != AccessKind::Close(AccessMode::Write)
            {
                return;
            }
            for p in event.paths {
                let _ = tx.send(Hint::Path(p));
            }
        }
        Err(e) => {
            let paths: Vec<String> = e.paths.iter().map(|p| p.display().to_string()).collect();
            let _ = tx.send(Hint::Error(if paths.is_empty() {
                e.to_string()
            } else {
                format!("{}: {e}", paths.join(", "))
            }));
        }
    }
}

/// Network and user-space file systems, where change events are missing or unreliable.
#[cfg(target_os = "linux")]
fn is_network_fs(path: &Path) -> bool {
    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517B;
    const CIFS: i64 = 0xFF53_4D42;
    const SMB2: i64 = 0xFE53_4D42;
    const FUSE: i64 = 0x6573_5546;
    const AFS: i64 = 0x5346_414F;
    const CODA: i64 = 0x7375_7245;
    const V9P: i64 = 0x0102_1997;
    match rustix::fs::statfs(path) {
        #[allow(clippy::unnecessary_cast)]
        Ok(st) => [NFS, SMB, CIFS, SMB2, FUSE, AFS, CODA, V9P].contains(&(st.f_type as i64)),
        Err(_) => false,
    }
}

#[cfg(not(target_os = "linux"))]
fn is_network_fs(_path: &Path) -> bool {
    false
}

/// Turns a stream of path hints into batches: a path is due once it has been quiet for
/// `debounce`, or `max_delay` after its first hint while hints keep coming (a file written
/// continuously is still indexed every `max_delay`).
#[derive(Debug)]
pub struct Coalescer {
    debounce: Duration,
    max_delay: Duration,
    pending: HashMap<PathBuf, (Instant, Instant)>,
}

impl Coalescer {
    pub fn new(debounce: Duration, max_delay: Duration) -> Self {
        Coalescer {
            debounce,
            max_delay: max_delay.max(debounce),
            pending: HashMap::new(),
        }
    }

    pub fn add(&mut self, path: PathBuf, now: Instant) {
        self.pending
            .entry(path)
            .and_modify(|(_, last)| *last = now)
            .or_insert((now, now));
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn due_at(&self, first: Instant, last: Instant) -> Instant {
        (last + self.debounce).min(first + self.max_delay)
    }

    /// When the next path falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending
            .values()
            .map(|(f, l)| self.due_at(*f, *l))
            .min()
    }

    /// The paths due at `now`, removed from the pending set, sorted. When one is due, those
    /// that would fall due within one more debounce interval come along: events of one change
    /// (a folder created and a file renamed into it) are applied together, so a move is seen as
    /// a move and not as a deletion followed by a new file.
    pub fn take_due(&mut self, now: Instant) -> Vec<PathBuf> {
        if self.next_due().is_none_or(|d| d > now) {
            return Vec::new();
        }
        let horizon = now + self.debounce;
        let due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, (f, l))| self.due_at(*f, *l) <= horizon)
            .map(|(p, _)| p.clone())
            .collect();
        for p in &due {
            self.pending.remove(p);
        }
        let mut due = due;
        due.sort();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_becomes_one_update_and_a_steady_stream_is_bounded() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = Coalescer::new(ms(300), ms(2000));
        assert!(c.next_due().is_none());
        // 100 writes 1 ms apart to one file, plus an editor's temp file.
        for i in 0..100 {
            c.add("/n/a.md".into(), t0 + ms(i));
        }
        c.add("/n/.a.md.swp".into(), t0 + ms(50));
        assert_eq!(c.len(), 2);
        c.add("/n/later.md".into(), t0 + ms(900));
        assert!(c.take_due(t0 + ms(200)).is_empty());
        assert_eq!(c.next_due(), Some(t0 + ms(350)));
        // Due together: the temp file and the file it was renamed to; not the later change.
        assert_eq!(
            c.take_due(t0 + ms(350)),
            vec![PathBuf::from("/n/.a.md.swp"), PathBuf::from("/n/a.md")]
        );
        assert!(c.take_due(t0 + ms(1000)).is_empty());
        assert_eq!(
            c.take_due(t0 + ms(1200)),
            vec![PathBuf::from("/n/later.md")]
        );
        assert!(c.is_empty());

        // A write every 100 ms never goes quiet; max_delay still lets it through.
        for i in 0..30 {
            c.add("/n/log.md".into(), t0 + ms(100 * i));
        }
        assert_eq!(c.next_due(), Some(t0 + ms(2000)));
        assert_eq!(c.take_due(t0 + ms(2000)).len(), 1);
    }

    #[test]
    fn events_arrive_for_created_written_and_removed_files() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut w = FolderWatcher::new(tx, "auto", Duration::from_secs(1));
        let mode = w.watch(&root).unwrap();
        let f = root.join("n.md");
        std::fs::write(&f, "x").unwrap();
        std::fs::remove_file(&f).unwrap();
        let deadline = Instant::now() + Duration::from_secs(if mode == Mode::Poll { 5 } else { 2 });
        let mut saw = false;
        while Instant::now() < deadline && !saw {
            match rx.try_recv() {
                Ok(Hint::Path(p)) => saw = p == f,
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        assert!(saw, "no event for {} ({mode:?})", f.display());
        assert_eq!(w.folders()[0].mode, mode.as_str());
    }
}
