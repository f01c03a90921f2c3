//! The [`Ingester`]: the single writer of a data directory, kept open between runs, and the
//! pause/cancel switches of its runs. A run walks, plans (unchanged files settled from the
//! manifest), hands the rest to the parse workers, writes their results in batches and finally
//! removes what the walk no longer found.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use docent_core::{Embedder, TokenCounter};
use docent_store::{FileRecord, FileStatus, Index, Manifest, OpenMode, WriteLock};
use tokio::sync::mpsc;

use super::file::{Done, is_unchanged};
use super::journal::{Journal, is_quarantined, quarantine};
use super::workers::spawn_workers;
use super::writer::Writer;
use super::{IngestEvent, IngestSummary, SkippedFile, path_key, unix_now};
use crate::walk::{WalkOptions, walk, walk_targets};
use crate::{Context, EngineError, Result};

/// Files per index write; a write is also flushed when this many chunks wait, or after a pause.
const BATCH_FILES: usize = 64;
const BATCH_CHUNKS: usize = 512;
const BATCH_WAIT: Duration = Duration::from_secs(2);
/// Pause and cancel switches for a running [`Ingester`], shared with the threads that control
/// it (a signal handler, the daemon's control socket).
#[derive(Clone, Debug, Default)]
pub struct IngestControl {
    cancel: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
}

impl IngestControl {
    /// Stops the current run soon, and every later one at once: files not yet started are left
    /// for the next process (they stay unrecorded, so nothing is lost); what was read is still
    /// stored.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
    /// Holds the parse workers before their next file until resumed.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
    /// Waits while paused; false once cancelled.
    pub(super) fn proceed(&self) -> bool {
        while self.is_paused() && !self.is_cancelled() {
            std::thread::sleep(Duration::from_millis(100));
        }
        !self.is_cancelled()
    }
}

/// The single writer of a data directory, kept open between runs: it holds the write lock, the
/// manifest, the index and the embedding model (loaded once, kept warm). `docent index` uses it
/// for one run; the watcher daemon keeps one for its lifetime.
pub struct Ingester {
    ctx: Context,
    _lock: WriteLock,
    manifest: Manifest,
    index: Index,
    embedder: Arc<dyn Embedder>,
    counter: Arc<dyn TokenCounter>,
    walk_opts: WalkOptions,
    control: IngestControl,
    journal: Arc<Journal>,
    pub(super) started: Instant,
}

impl Ingester {
    /// Takes the write lock, loads the embedding model, opens the stores and brings them into
    /// agreement (see the module docs). Files during which an earlier process died are counted;
    /// one that reaches `watch.quarantine_after` is quarantined (recorded as failed, not tried
    /// again until it changes).
    pub async fn open(
        ctx: &Context,
        on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
    ) -> Result<Self> {
        let started = Instant::now();
        let counter = ctx.token_counter()?;
        let embedder = ctx.embedder()?;
        let lock = WriteLock::acquire(&ctx.paths.data_dir)?;
        let mut manifest = Manifest::open(&ctx.paths.data_dir)?;
        let mut index = Index::open(
            &ctx.paths.data_dir,
            embedder.identity(),
            OpenMode::ReadWrite,
        )
        .await?;
        reconcile(&mut manifest, &mut index, on_event).await?;
        let journal = Journal::open(&ctx.paths.data_dir);
        let quarantined = journal.after_restart(ctx.settings.watch.quarantine_after);
        if !quarantined.is_empty() {
            quarantine(&mut manifest, &mut index, &quarantined, on_event).await?;
        }
        let data_dir =
            std::fs::canonicalize(&ctx.paths.data_dir).unwrap_or(ctx.paths.data_dir.clone());
        let walk_opts = WalkOptions {
            include_hidden: ctx.settings.ingest.include_hidden,
            follow_symlinks: ctx.settings.ingest.follow_symlinks,
            exclude: vec![data_dir],
        };
        Ok(Ingester {
            ctx: ctx.clone(),
            _lock: lock,
            manifest,
            index,
            embedder,
            counter,
            walk_opts,
            control: IngestControl::default(),
            journal: Arc::new(journal),
            started,
        })
    }

    /// The pause/cancel switches of this ingester's runs.
    pub fn control(&self) -> IngestControl {
        self.control.clone()
    }

    /// The walk settings (hidden files, symlinks, the data directory excluded).
    pub fn walk_options(&self) -> &WalkOptions {
        &self.walk_opts
    }

    /// Files, chunks and failures recorded in the manifest.
    pub fn stats(&self) -> Result<docent_store::ManifestStats> {
        Ok(self.manifest.stats()?)
    }

    /// One full pass over `roots` (folders or files): see [`ingest`](super::ingest).
    pub async fn run(
        &mut self,
        roots: &[PathBuf],
        on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
    ) -> Result<IngestSummary> {
        let start = Instant::now();
        let mut summary = IngestSummary::default();
        let mut abs_roots = Vec::new();
        for r in roots {
            match std::fs::canonicalize(r) {
                Ok(p) => abs_roots.push(p),
                Err(_) => summary.files_skipped.push(SkippedFile {
                    path: r.display().to_string(),
                    reason: "no such file or folder".into(),
                    error: true,
                }),
            }
        }
        if abs_roots.is_empty() {
            return Err(match roots {
                [one] => EngineError::MissingRoot { path: one.clone() },
                _ => EngineError::NoRoots,
            });
        }
        let walk_roots = abs_roots.clone();
        let walk_opts = self.walk_opts.clone();
        let walked = tokio::task::spawn_blocking(move || walk(&walk_roots, &walk_opts))
            .await
            .map_err(|e| EngineError::Threads(e.to_string()))?;
        self.apply(walked, &abs_roots, false, summary, on_event)
            .await
            .map(|mut s| {
                s.elapsed_ms = start.elapsed().as_millis() as u64;
                s
            })
    }

    /// Applies change hints: `paths` (absolute) are files or folders that were created,
    /// modified, moved or deleted. Existing ones are looked at as a walk would (ignore rules
    /// included) and indexed if they changed; records at or below paths that no longer exist
    /// leave the index. A file moved from one named path to another keeps its vectors. A file
    /// that failed before is tried again (the hint says something happened to it).
    pub async fn update(
        &mut self,
        paths: &[PathBuf],
        on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
    ) -> Result<IngestSummary> {
        let start = Instant::now();
        let targets = paths.to_vec();
        let walk_opts = self.walk_opts.clone();
        let walked = tokio::task::spawn_blocking(move || walk_targets(&targets, &walk_opts))
            .await
            .map_err(|e| EngineError::Threads(e.to_string()))?;
        self.apply(walked, paths, true, IngestSummary::default(), on_event)
            .await
            .map(|mut s| {
                s.elapsed_ms = start.elapsed().as_millis() as u64;
                s
            })
    }

    /// Removes every record at or below `root` from the index (a folder no longer watched).
    /// Returns how many files were removed.
    pub async fn forget(&mut self, root: &Path) -> Result<u64> {
        let removals = self.manifest.paths_under(&path_key(root))?;
        if !removals.is_empty() {
            self.index.write(&removals, Vec::new()).await?;
            self.manifest.apply(&[], &removals)?;
        }
        Ok(removals.len() as u64)
    }

    /// Compacts the stores and builds the vector index when the table is large enough. Cheap
    /// when nothing changed; the daemon calls it when it is idle.
    pub async fn optimize(&mut self) -> Result<()> {
        self.index
            .optimize(self.ctx.settings.index.vector_index_threshold)
            .await?;
        Ok(())
    }

    /// Plans, reads, embeds and stores what `walked` found, then removes records under
    /// `scopes` that it did not find.
    async fn apply(
        &mut self,
        walked: crate::walk::Walk,
        scopes: &[PathBuf],
        retry_failed: bool,
        mut summary: IngestSummary,
        on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
    ) -> Result<IngestSummary> {
        for issue in &walked.issues {
            on_event(IngestEvent::WalkIssue {
                path: &issue.path,
                message: &issue.message,
            });
            summary.files_skipped.push(SkippedFile {
                path: issue.path.display().to_string(),
                reason: issue.message.clone(),
                error: true,
            });
        }
        summary.files_seen = walked.files.len() as u64;

        // Plan: unchanged files are settled from the manifest without touching their content.
        let mut to_read = Vec::new();
        let mut seen: HashSet<String> = HashSet::with_capacity(walked.files.len());
        for found in &walked.files {
            let key = path_key(&found.path);
            seen.insert(key.clone());
            match self.manifest.get(&key)? {
                Some(rec)
                    if is_unchanged(&rec, found)
                        && !(rec.status == FileStatus::Skipped
                            && rec.reason.as_deref().is_some_and(|r| {
                                docent_parse::waits_for_ocr(r, &self.ctx.parse_options().ocr)
                            }))
                        && !(retry_failed
                            && rec.status == FileStatus::Failed
                            && !is_quarantined(&rec)) =>
                {
                    summary.files_unchanged += 1;
                    summary.chunks += u64::from(rec.chunks);
                    summary.documents += u64::from(rec.documents);
                }
                _ => to_read.push(found.clone()),
            }
        }
        on_event(IngestEvent::Planned {
            files: seen.len(),
            to_read: to_read.len(),
            unchanged: summary.files_unchanged as usize,
        });

        // Content already indexed somewhere, for recognising moved and copied files.
        let known: Arc<HashMap<String, FileRecord>> = Arc::new(
            self.manifest
                .all()?
                .into_iter()
                .filter(|r| r.status == FileStatus::Indexed)
                .filter_map(|r| r.hash.clone().map(|h| (h, r)))
                .collect(),
        );

        let (tx, mut rx) = mpsc::channel::<Done>(128);
        let workers = spawn_workers(
            &self.ctx,
            to_read,
            known.clone(),
            self.counter.clone(),
            self.control.clone(),
            self.journal.clone(),
            tx,
        )?;

        let mut writer = Writer {
            manifest: &mut self.manifest,
            index: &mut self.index,
            embedder: self.embedder.clone(),
            known,
            seen: &seen,
            summary: &mut summary,
            now: unix_now(),
            taken_over: Vec::new(),
        };
        let mut batch: Vec<Done> = Vec::new();
        let mut batch_chunks = 0usize;
        let mut first_at = Instant::now();
        loop {
            let next = if batch.is_empty() {
                rx.recv().await.map(Some)
            } else {
                let wait = BATCH_WAIT.saturating_sub(first_at.elapsed());
                match tokio::time::timeout(wait, rx.recv()).await {
                    Ok(v) => v.map(Some),
                    Err(_) => Some(None), // waited long enough: flush what we have
                }
            };
            match next {
                Some(Some(done)) => {
                    on_event(IngestEvent::File {
                        path: &done.found.path,
                        outcome: &done.outcome,
                    });
                    if batch.is_empty() {
                        first_at = Instant::now();
                    }
                    batch_chunks += done.records.len();
                    batch.push(done);
                    if batch.len() >= BATCH_FILES || batch_chunks >= BATCH_CHUNKS {
                        writer.flush(std::mem::take(&mut batch)).await?;
                        batch_chunks = 0;
                    }
                }
                Some(None) => {
                    writer.flush(std::mem::take(&mut batch)).await?;
                    batch_chunks = 0;
                }
                None => break,
            }
        }
        writer.flush(std::mem::take(&mut batch)).await?;
        let taken_over = std::mem::take(&mut writer.taken_over);
        drop(writer);
        let _ = workers.join();

        // Records under the scopes that the walk did not see are gone (deleted, moved away, or
        // now ignored), unless they sit in a folder the walk could not read.
        let blocked: Vec<&Path> = walked
            .issues
            .iter()
            .filter(|i| i.is_dir)
            .map(|i| i.path.as_path())
            .collect();
        let mut removals: Vec<String> = Vec::new();
        for root in scopes {
            for p in self.manifest.paths_under(&path_key(root))? {
                if seen.contains(&p)
                    || blocked.iter().any(|b| Path::new(&p).starts_with(b))
                    || removals.contains(&p)
                {
                    continue;
                }
                removals.push(p);
            }
        }
        for from in taken_over {
            if !removals.contains(&from) && self.manifest.get(&from)?.is_some() {
                removals.push(from);
            }
        }
        if !removals.is_empty() {
            self.index.write(&removals, Vec::new()).await?;
            self.manifest.apply(&[], &removals)?;
        }
        summary.files_removed = removals.len() as u64;
        summary.files_skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(summary)
    }
}

/// Brings the index and the manifest into agreement before writing: chunks of files the
/// manifest does not know are removed; files whose chunks are incomplete are forgotten by the
/// manifest so that this run indexes them again.
async fn reconcile(
    manifest: &mut Manifest,
    index: &mut Index,
    on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
) -> Result<()> {
    let indexed: HashMap<String, u32> = manifest
        .all()?
        .into_iter()
        .filter(|r| r.status == FileStatus::Indexed)
        .map(|r| (r.path, r.chunks))
        .collect();
    let report = index.reconcile(&indexed).await?;
    if !report.stale_paths.is_empty() {
        manifest.apply(&[], &report.stale_paths)?;
    }
    if report.orphans_removed > 0 || !report.stale_paths.is_empty() {
        on_event(IngestEvent::Repaired {
            orphans_removed: report.orphans_removed,
            stale_files: report.stale_paths.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use docent_config::{Paths, Settings};
    use docent_test_support::FakeModels;

    fn context(home: &Path) -> Context {
        Context::new(
            Paths {
                data_dir: home.join("data"),
                models_dir: home.join("models"),
            },
            Settings::default(),
        )
        .with_models(Arc::new(FakeModels::new()))
    }

    #[test]
    fn control_pauses_and_cancels() {
        let c = IngestControl::default();
        assert!(c.proceed());
        c.set_paused(true);
        assert!(c.is_paused());
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.proceed());
        std::thread::sleep(Duration::from_millis(150));
        assert!(!t.is_finished(), "a paused worker must wait");
        c.cancel();
        assert!(!t.join().unwrap(), "a cancelled worker must stop");
        assert!(!c.proceed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hints_index_new_files_and_forget_deleted_ones_and_folders() {
        let home = tempfile::tempdir().unwrap();
        let docs = home.path().join("docs");
        std::fs::create_dir_all(docs.join("sub")).unwrap();
        std::fs::write(docs.join("a.txt"), "alpha words").unwrap();
        std::fs::write(docs.join("sub/b.txt"), "beta words").unwrap();
        let ctx = context(home.path());
        let mut ing = Ingester::open(&ctx, &|_| {}).await.unwrap();
        let s = ing.run(std::slice::from_ref(&docs), &|_| {}).await.unwrap();
        assert_eq!(s.files_indexed, 2);

        let docs = std::fs::canonicalize(&docs).unwrap();
        std::fs::write(docs.join("c.txt"), "gamma words").unwrap();
        std::fs::remove_file(docs.join("a.txt")).unwrap();
        let s = ing
            .update(&[docs.join("c.txt"), docs.join("a.txt")], &|_| {})
            .await
            .unwrap();
        assert_eq!((s.files_indexed, s.files_removed), (1, 1), "{s:?}");
        assert_eq!(ing.stats().unwrap().indexed, 2);

        assert_eq!(ing.forget(&docs.join("sub")).await.unwrap(), 1);
        assert_eq!(ing.stats().unwrap().indexed, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_root_is_an_error_only_when_nothing_else_is_given() {
        let home = tempfile::tempdir().unwrap();
        let ctx = context(home.path());
        let mut ing = Ingester::open(&ctx, &|_| {}).await.unwrap();
        let gone = home.path().join("gone");
        let e = ing
            .run(std::slice::from_ref(&gone), &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::MissingRoot { .. }), "{e}");
        let s = ing
            .run(&[gone, home.path().to_path_buf()], &|_| {})
            .await
            .unwrap();
        assert_eq!(s.files_skipped[0].reason, "no such file or folder");
    }
}
