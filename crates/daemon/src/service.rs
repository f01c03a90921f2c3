//! The watcher loop behind `docent watch` and `docent daemon start`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use docent_engine::{Context, FileOutcome, IngestControl, IngestEvent, IngestSummary, Ingester};
use tokio::sync::{Notify, mpsc};

use crate::control::{self, LiveState, Reply, Request};
use crate::watcher::{Coalescer, FolderWatcher, Hint};
use crate::{DaemonPaths, Folders, Result};

/// A line for the log (the caller adds nothing; lines come without a trailing newline).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// How long after the last change the stores are compacted.
const OPTIMIZE_AFTER: Duration = Duration::from_secs(60);

/// A request that needs the ingester, with where to send the reply.
struct Job {
    request: Request,
    reply: std::sync::mpsc::Sender<Reply>,
}

/// Runs until stopped (SIGTERM, SIGINT, or a `stop` request): takes the write lock, loads the
/// embedding model, binds the control socket, walks the folders once, then applies changes as
/// they are reported and walks again every `watch.reconcile_minutes`.
///
/// `roots`: folders given on the command line; `None` watches the saved folder list
/// ([`Folders`]) and follows `reload` requests.
pub async fn serve(ctx: &Context, roots: Option<Vec<PathBuf>>, log: Log) -> Result<()> {
    let settings = &ctx.settings.watch;
    let paths = DaemonPaths::new(&ctx.paths.data_dir);
    paths.create().map_err(|source| crate::DaemonError::Io {
        path: paths.dir.clone(),
        source,
    })?;
    if settings.nice > 0
        && let Err(e) = rustix::process::setpriority_process(None, settings.nice)
    {
        log(&format!("note: could not lower the priority: {e}"));
    }

    let state = Arc::new(Mutex::new(LiveState {
        pid: std::process::id(),
        started_at: unix_now(),
        phase: "starting".into(),
        embedder: ctx.settings.embed.model.clone(),
        ..LiveState::default()
    }));
    let on_event = event_logger(state.clone(), log.clone());
    let mut ingester = Ingester::open(ctx, &on_event).await?;
    let control = ingester.control();

    let listener = control::bind(&paths.socket)?;
    std::fs::write(&paths.pid, std::process::id().to_string()).map_err(|source| {
        crate::DaemonError::Io {
            path: paths.pid.clone(),
            source,
        }
    })?;
    let _cleanup = Cleanup(paths.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let stop_notify = Arc::new(Notify::new());
    let (job_tx, mut jobs) = mpsc::unbounded_channel::<Job>();
    spawn_control_thread(
        listener,
        state.clone(),
        control.clone(),
        stop.clone(),
        stop_notify.clone(),
        job_tx,
    );
    spawn_signal_task(
        control.clone(),
        stop.clone(),
        stop_notify.clone(),
        log.clone(),
    );

    let (hint_tx, mut hints) = mpsc::unbounded_channel::<Hint>();
    let mut watcher = FolderWatcher::new(
        hint_tx,
        &settings.mode,
        Duration::from_secs(settings.poll_interval_secs.max(1)),
    );
    let follow_folders = roots.is_none();
    let mut folders: Vec<PathBuf> = Vec::new();
    let wanted = match roots {
        Some(r) => r,
        None => Folders::load(&ctx.paths.data_dir)?.list,
    };
    for r in wanted {
        add_folder(&mut watcher, &mut folders, &r, &state, &log);
    }
    set(&state, |s| s.folders = watcher.folders());
    log(&format!(
        "watching {} folder(s) as pid {}; embedding model {}",
        folders.len(),
        std::process::id(),
        ctx.settings.embed.model
    ));

    let data_dir = std::fs::canonicalize(&ctx.paths.data_dir).unwrap_or(ctx.paths.data_dir.clone());
    let include_hidden = ctx.settings.ingest.include_hidden;
    let mut coalescer = Coalescer::new(
        Duration::from_millis(settings.debounce_ms),
        Duration::from_millis(settings.max_delay_ms),
    );
    let reconcile_every = match settings.reconcile_minutes {
        0 => None,
        m => Some(Duration::from_secs(m * 60)),
    };
    let mut walk_due = Some(Instant::now());
    let mut optimize_at: Option<Instant> = None;
    let far = Duration::from_secs(365 * 24 * 3600);

    while !stop.load(Ordering::SeqCst) {
        // A walk (at start, after lost events, periodically) goes first.
        if walk_due.is_some_and(|t| t <= Instant::now()) {
            walk_due = reconcile_every.map(|d| Instant::now() + d);
            if !folders.is_empty() {
                set(&state, |s| s.phase = "reconciling".into());
                let r = ingester.run(&folders, &on_event).await;
                if settle(&state, &log, "walk", r) {
                    optimize_at = Some(Instant::now() + OPTIMIZE_AFTER);
                }
            }
            set(&state, |s| {
                s.phase = "idle".into();
                s.queue = coalescer.len();
            });
            continue;
        }
        let due = coalescer.next_due().unwrap_or(Instant::now() + far);
        let walk_at = walk_due.unwrap_or(Instant::now() + far);
        let opt_at = optimize_at.unwrap_or(Instant::now() + far);
        tokio::select! {
            hint = hints.recv() => match hint {
                Some(Hint::Path(p)) => {
                    // An edited ignore file changes what its folder holds: walk it again.
                    let p = ignore_file_folder(&p).unwrap_or(p);
                    if wanted_path(&p, &folders, &data_dir, include_hidden) {
                        coalescer.add(p, Instant::now());
                        set(&state, |s| s.queue = coalescer.len());
                    }
                }
                Some(Hint::Rescan) => {
                    log("events were lost; walking the folders again");
                    walk_due = Some(Instant::now());
                }
                Some(Hint::Error(m)) => {
                    log(&format!("watcher: {m}"));
                    set(&state, |s| push_problem(s, format!("watcher: {m}")));
                }
                None => break,
            },
            _ = tokio::time::sleep_until(due.into()) => {
                let batch = coalescer.take_due(Instant::now());
                if batch.is_empty() {
                    continue;
                }
                set(&state, |s| {
                    s.phase = "indexing".into();
                    s.queue = coalescer.len() + batch.len();
                });
                let r = ingester.update(&batch, &on_event).await;
                if settle(&state, &log, "update", r) {
                    optimize_at = Some(Instant::now() + OPTIMIZE_AFTER);
                }
                set(&state, |s| {
                    s.phase = "idle".into();
                    s.queue = coalescer.len();
                });
            }
            _ = tokio::time::sleep_until(walk_at.into()) => {}
            _ = tokio::time::sleep_until(opt_at.into()) => {
                optimize_at = None;
                if let Err(e) = ingester.optimize().await {
                    log(&format!("compaction failed: {e}"));
                }
            }
            job = jobs.recv() => {
                let Some(job) = job else { continue };
                let reply = match job.request {
                    Request::Index { paths } => {
                        set(&state, |s| s.phase = "indexing".into());
                        let r = ingester.run(&paths, &on_event).await;
                        let reply = match &r {
                            Ok(summary) => Reply::Indexed {
                                summary: serde_json::to_value(summary).unwrap_or_default(),
                            },
                            Err(e) => Reply::Error { message: e.to_string() },
                        };
                        if settle(&state, &log, "index request", r) {
                            optimize_at = Some(Instant::now() + OPTIMIZE_AFTER);
                        }
                        set(&state, |s| s.phase = "idle".into());
                        reply
                    }
                    Request::Reload if follow_folders => {
                        match Folders::load(&ctx.paths.data_dir) {
                            Ok(f) => {
                                let (added, removed) = reload(
                                    &mut ingester, &mut watcher, &mut folders, f.list, &state, &log,
                                    &on_event,
                                ).await;
                                optimize_at = Some(Instant::now() + OPTIMIZE_AFTER);
                                Reply::Indexed {
                                    summary: serde_json::json!({"added": added, "removed": removed}),
                                }
                            }
                            Err(e) => Reply::Error { message: e.to_string() },
                        }
                    }
                    Request::Reload => Reply::Error {
                        message: "this watcher was started with folders on its command line; restart it to change them".into(),
                    },
                    _ => Reply::Ok,
                };
                let _ = job.reply.send(reply);
            }
            _ = stop_notify.notified() => {}
        }
    }
    log("stopping");
    if optimize_at.is_some()
        && let Err(e) = ingester.optimize().await
    {
        log(&format!("compaction failed: {e}"));
    }
    drop(ingester);
    log("stopped");
    Ok(())
}

/// Removes the pid file and the socket when the loop ends, however it ends.
struct Cleanup(DaemonPaths);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0.pid);
        let _ = std::fs::remove_file(&self.0.socket);
    }
}

fn add_folder(
    watcher: &mut FolderWatcher,
    folders: &mut Vec<PathBuf>,
    dir: &Path,
    state: &Mutex<LiveState>,
    log: &Log,
) -> bool {
    let problem = match std::fs::canonicalize(dir) {
        Ok(abs) if abs.is_dir() => match watcher.watch(&abs) {
            Ok(mode) => {
                log(&format!("watching {} ({})", abs.display(), mode.as_str()));
                folders.push(abs);
                return true;
            }
            Err(e) => e.to_string(),
        },
        Ok(abs) => format!("{}: not a folder", abs.display()),
        Err(e) => format!("{}: {e}", dir.display()),
    };
    log(&format!("cannot watch {problem}"));
    set(state, |s| {
        push_problem(s, format!("cannot watch {problem}"))
    });
    false
}

/// Applies a new folder list: new folders are watched and walked, dropped ones leave the index.
async fn reload(
    ingester: &mut Ingester,
    watcher: &mut FolderWatcher,
    folders: &mut Vec<PathBuf>,
    wanted: Vec<PathBuf>,
    state: &Mutex<LiveState>,
    log: &Log,
    on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
) -> (Vec<String>, Vec<String>) {
    let wanted_abs: Vec<PathBuf> = wanted
        .iter()
        .map(|w| std::fs::canonicalize(w).unwrap_or(w.clone()))
        .collect();
    let mut removed = Vec::new();
    for f in folders.clone() {
        if !wanted_abs.contains(&f) {
            watcher.unwatch(&f);
            folders.retain(|x| x != &f);
            match ingester.forget(&f).await {
                Ok(n) => log(&format!(
                    "stopped watching {}; {n} files left the index",
                    f.display()
                )),
                Err(e) => log(&format!("forgetting {}: {e}", f.display())),
            }
            removed.push(f.display().to_string());
        }
    }
    let mut added = Vec::new();
    for w in wanted_abs {
        if !folders.contains(&w) && add_folder(watcher, folders, &w, state, log) {
            added.push(w);
        }
    }
    set(state, |s| s.folders = watcher.folders());
    if !added.is_empty() {
        set(state, |s| s.phase = "reconciling".into());
        let r = ingester.run(&added, on_event).await;
        settle(state, log, "walk of new folders", r);
        set(state, |s| s.phase = "idle".into());
    }
    (
        added.iter().map(|p| p.display().to_string()).collect(),
        removed,
    )
}

/// The names of the files that decide what a walk skips (see `docent_engine::walk`).
const IGNORE_FILES: [&str; 3] = [".docentignore", ".gitignore", ".ignore"];

/// The folder whose walk an ignore file governs, when `p` is one. A created, edited or deleted
/// ignore file is a change to its whole folder: files it now excludes must leave the index at
/// once (someone may have excluded them for privacy), and files it no longer excludes enter it.
/// The ignore file itself is hidden and would otherwise be dropped as such.
fn ignore_file_folder(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?.to_str()?;
    if IGNORE_FILES.contains(&name) {
        p.parent().map(Path::to_path_buf)
    } else {
        None
    }
}

/// Whether a hint is about something a walk would index: under a watched folder, not hidden
/// (unless hidden files are indexed), not in docent's own data directory.
fn wanted_path(p: &Path, folders: &[PathBuf], data_dir: &Path, include_hidden: bool) -> bool {
    if p.starts_with(data_dir) {
        return false;
    }
    folders.iter().any(|root| {
        p.starts_with(root) && (include_hidden || !docent_engine::walk::is_hidden_below(root, p))
    })
}

/// Logs the outcome of a run and records it in the state; true when the index changed.
fn settle(
    state: &Mutex<LiveState>,
    log: &Log,
    what: &str,
    r: docent_engine::Result<IngestSummary>,
) -> bool {
    match r {
        Ok(s) => {
            let changed =
                s.files_indexed + s.files_moved + s.files_removed + s.files_skipped.len() as u64
                    > 0;
            set(state, |st| {
                st.updates += 1;
                st.current = None;
                if changed {
                    st.last_update = Some(unix_now());
                }
            });
            if changed {
                log(&format!(
                    "{what}: {} indexed, {} moved, {} removed, {} not indexed, {} unchanged ({} chunks embedded) in {:.2} s",
                    s.files_indexed,
                    s.files_moved,
                    s.files_removed,
                    s.files_skipped.len(),
                    s.files_unchanged,
                    s.chunks_embedded,
                    s.elapsed_ms as f64 / 1000.0
                ));
            }
            changed
        }
        Err(e) => {
            log(&format!("{what} failed: {e}"));
            set(state, |st| {
                st.updates += 1;
                push_problem(st, format!("{what} failed: {e}"));
            });
            false
        }
    }
}

/// Progress of runs: the log gets one line per file read, the state the current file.
fn event_logger(state: Arc<Mutex<LiveState>>, log: Log) -> impl Fn(IngestEvent<'_>) + Send + Sync {
    move |event| match event {
        IngestEvent::Planned { to_read, .. } => {
            set(&state, |s| s.queue = s.queue.max(to_read));
        }
        IngestEvent::File { path, outcome } => {
            set(&state, |s| {
                s.current = Some(path.display().to_string());
                s.queue = s.queue.saturating_sub(1);
            });
            let p = path.display();
            match outcome {
                FileOutcome::Indexed { chunks, .. } => {
                    log(&format!("indexed {p} ({chunks} chunks)"))
                }
                FileOutcome::Moved { from } => log(&format!("moved {p} (was {from})")),
                FileOutcome::Skipped { reason } => log(&format!("skipped {p}: {reason}")),
                FileOutcome::Failed { reason } => log(&format!("failed {p}: {reason}")),
                FileOutcome::Unchanged => {}
            }
        }
        IngestEvent::WalkIssue { path, message } => {
            log(&format!("cannot read {}: {message}", path.display()))
        }
        IngestEvent::Quarantined { path, reason } => log(&format!("{}: {reason}", path.display())),
        IngestEvent::Repaired {
            orphans_removed,
            stale_files,
        } => log(&format!(
            "repaired the index after an interrupted run: {orphans_removed} orphan chunks removed, {stale_files} files to index again"
        )),
    }
}

fn spawn_control_thread(
    listener: std::os::unix::net::UnixListener,
    state: Arc<Mutex<LiveState>>,
    control: IngestControl,
    stop: Arc<AtomicBool>,
    stop_notify: Arc<Notify>,
    jobs: mpsc::UnboundedSender<Job>,
) {
    let _ = std::thread::Builder::new()
        .name("docent-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = state.clone();
                let control = control.clone();
                let stop = stop.clone();
                let stop_notify = stop_notify.clone();
                let jobs = jobs.clone();
                let _ = std::thread::Builder::new()
                    .name("docent-client".into())
                    .spawn(move || {
                        let reply = match control::read_request(&stream) {
                            Err(message) => Reply::Error { message },
                            Ok(Request::Status) => {
                                let mut s = state.lock().map(|s| s.clone()).unwrap_or_default();
                                s.paused = control.is_paused();
                                Reply::Status { state: s }
                            }
                            Ok(Request::Pause) => {
                                control.set_paused(true);
                                Reply::Ok
                            }
                            Ok(Request::Resume) => {
                                control.set_paused(false);
                                Reply::Ok
                            }
                            Ok(Request::Stop) => {
                                stop.store(true, Ordering::SeqCst);
                                control.set_paused(false);
                                control.cancel();
                                stop_notify.notify_one();
                                Reply::Ok
                            }
                            Ok(request) => {
                                let (tx, rx) = std::sync::mpsc::channel();
                                if jobs.send(Job { request, reply: tx }).is_err() {
                                    Reply::Error {
                                        message: "the daemon is stopping".into(),
                                    }
                                } else {
                                    rx.recv().unwrap_or(Reply::Error {
                                        message: "the daemon stopped before answering".into(),
                                    })
                                }
                            }
                        };
                        control::write_reply(&stream, &reply);
                    });
            }
        });
}

fn spawn_signal_task(control: IngestControl, stop: Arc<AtomicBool>, notify: Arc<Notify>, log: Log) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        log("note: signal handlers could not be installed; stop with `docent daemon stop`");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                // A closed terminal does not stop the daemon.
                _ = hup.recv() => continue,
            }
        }
        stop.store(true, Ordering::SeqCst);
        control.set_paused(false);
        control.cancel();
        notify.notify_one();
    });
}

fn set(state: &Mutex<LiveState>, f: impl FnOnce(&mut LiveState)) {
    if let Ok(mut s) = state.lock() {
        f(&mut s);
    }
}

fn push_problem(s: &mut LiveState, p: String) {
    s.problems.push(p);
    if s.problems.len() > 20 {
        s.problems.remove(0);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_outside_folders_hidden_or_in_the_data_dir_are_dropped() {
        let folders = vec![PathBuf::from("/n")];
        let data = Path::new("/n/.docent");
        assert!(wanted_path(Path::new("/n/a.md"), &folders, data, false));
        assert!(!wanted_path(
            Path::new("/n/.a.md.swp"),
            &folders,
            data,
            false
        ));
        assert!(wanted_path(Path::new("/n/.a.md.swp"), &folders, data, true));
        assert!(!wanted_path(
            Path::new("/n/.docent/x"),
            &folders,
            data,
            true
        ));
        assert!(!wanted_path(
            Path::new("/elsewhere/a.md"),
            &folders,
            data,
            false
        ));
        assert!(wanted_path(Path::new("/n"), &folders, data, false));
    }

    #[test]
    fn an_edited_ignore_file_is_a_change_to_its_folder() {
        let folders = vec![PathBuf::from("/n")];
        let data = Path::new("/n/.docent");
        for name in [".gitignore", ".ignore", ".docentignore"] {
            let hint = Path::new("/n/sub").join(name);
            let target = ignore_file_folder(&hint).unwrap();
            assert_eq!(target, Path::new("/n/sub"));
            assert!(wanted_path(&target, &folders, data, false));
        }
        assert_eq!(ignore_file_folder(Path::new("/n/notes.md")), None);
        assert_eq!(ignore_file_folder(Path::new("/n/.gitignore.swp")), None);
        // Inside a hidden folder it still governs only hidden files: nothing to walk.
        let target = ignore_file_folder(Path::new("/n/.git/.gitignore")).unwrap();
        assert!(!wanted_path(&target, &folders, data, false));
    }
}
