//! The ingest pipeline: walk → plan → read, parse and chunk on worker threads → embed (with the
//! embedding cache) → write to the index (LanceDB, then tantivy) → record in the manifest.
//!
//! Write order and crash safety: a batch is written to the index first and to the manifest
//! last. If docent dies in between, the manifest still holds the old record, so the next run
//! processes the file again, and the index write is idempotent (it replaces by path). On start,
//! the writer reconciles the index with the manifest, so a crash at any point leaves no orphan
//! chunks, no duplicates and no file marked done that is not searchable.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use docent_core::{ContentHash, EmbedKind, Embedder, TokenCounter};
use docent_parse::{Outcome, ParseOptions, SkipReason};
use docent_store::{ChunkRecord, FileRecord, FileStatus, Index, Manifest, OpenMode, WriteLock};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::records::{chunk_record, moved_records};
use crate::walk::{Found, WalkOptions, walk, walk_targets};
use crate::{Context, EngineError, Result};

/// What happened to one file in this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// Parsed, chunked and stored.
    Indexed {
        parser: String,
        documents: u32,
        chunks: u32,
        warnings: Vec<String>,
    },
    /// Same size and modification time as last time (or same content): not read again.
    Unchanged,
    /// Same content as a file already indexed at another path: taken over without parsing or
    /// embedding.
    Moved { from: String },
    /// Not indexed, deliberately (see [`SkipReason`]).
    Skipped { reason: String },
    /// Not indexed because something went wrong.
    Failed { reason: String },
}

/// Progress, reported to the caller's callback as it happens.
#[derive(Debug)]
pub enum IngestEvent<'a> {
    /// The walk is done: how many files, and how many need reading.
    Planned {
        files: usize,
        to_read: usize,
        unchanged: usize,
    },
    /// A file that needed reading is done (parsed and chunked; it is stored with its batch).
    File {
        path: &'a Path,
        outcome: &'a FileOutcome,
    },
    /// A folder or file the walk could not look at.
    WalkIssue { path: &'a Path, message: &'a str },
    /// A file during which docent died too often is set aside (see `watch.quarantine_after`).
    Quarantined { path: &'a Path, reason: &'a str },
    /// The start-up check found the index and the manifest out of step and repaired them.
    Repaired {
        orphans_removed: u64,
        stale_files: usize,
    },
}

/// A file that was not indexed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
    /// True when something went wrong (unreadable, damaged, parser crash), false when the file
    /// was skipped on purpose (empty, unsupported, encrypted, no text layer).
    pub error: bool,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct IngestSummary {
    pub files_seen: u64,
    pub files_indexed: u64,
    pub files_unchanged: u64,
    pub files_moved: u64,
    /// Files that no longer exist (or are now ignored), removed from the index.
    pub files_removed: u64,
    pub files_skipped: Vec<SkippedFile>,
    /// Chunks of all indexed files under the given paths.
    pub chunks: u64,
    /// Chunks stored by this run (new, changed and moved files).
    pub chunks_indexed: u64,
    /// Chunks whose vectors were computed by this run.
    pub chunks_embedded: u64,
    /// Chunks whose vectors came from the embedding cache (equal content seen before).
    pub chunks_cached: u64,
    pub documents: u64,
    pub bytes_read: u64,
    pub elapsed_ms: u64,
    /// Messages about parts of files (a broken message in an mbox, a damaged attachment).
    pub warnings: Vec<SkippedFile>,
}

impl IngestSummary {
    /// Files that failed (not deliberately skipped).
    pub fn errors(&self) -> usize {
        self.files_skipped.iter().filter(|s| s.error).count()
    }
}

/// Result of working on one file, sent from a worker to the writer.
struct Done {
    found: Found,
    hash: Option<String>,
    bytes_read: u64,
    outcome: FileOutcome,
    /// Chunk records (without vectors) of an indexed file.
    records: Vec<ChunkRecord>,
}

/// Files per index write; a write is also flushed when this many chunks wait, or after a pause.
const BATCH_FILES: usize = 64;
const BATCH_CHUNKS: usize = 512;
const BATCH_WAIT: Duration = Duration::from_secs(2);

/// Indexes the files under `roots` (folders or files): new and changed files are parsed,
/// chunked, embedded and stored; unchanged files are skipped without being read; moved files
/// are recognised by their content hash and re-pointed without re-embedding; files that are gone
/// leave the index. Holds the data directory's write lock for the duration.
///
/// Fails as a whole only when nothing can be done (no root exists, the index or a model cannot
/// be opened); single files that fail are reported in the summary.
pub async fn ingest(
    ctx: &Context,
    roots: &[PathBuf],
    on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
) -> Result<IngestSummary> {
    let mut ingester = Ingester::open(ctx, on_event).await?;
    let mut summary = ingester.run(roots, on_event).await?;
    if summary.chunks_indexed > 0 || summary.files_removed > 0 {
        ingester.optimize().await?;
    }
    summary.elapsed_ms = ingester.started.elapsed().as_millis() as u64;
    Ok(summary)
}

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
    fn proceed(&self) -> bool {
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
    started: Instant,
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

    /// One full pass over `roots` (folders or files): see [`ingest`].
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

/// The reason recorded for a quarantined file; `docent status` lists these.
pub const QUARANTINE_REASON: &str = "quarantined";

fn is_quarantined(rec: &FileRecord) -> bool {
    rec.reason
        .as_deref()
        .is_some_and(|r| r.starts_with(QUARANTINE_REASON))
}

/// Records files during which docent died too often as failed, with their current size and
/// modification time, so they are not read again until they change.
async fn quarantine(
    manifest: &mut Manifest,
    index: &mut Index,
    paths: &[(String, u32)],
    on_event: &(dyn Fn(IngestEvent<'_>) + Send + Sync),
) -> Result<()> {
    let mut upserts = Vec::new();
    for (path, deaths) in paths {
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let reason = format!(
            "{QUARANTINE_REASON}: docent stopped {deaths} times while reading this file; it is tried again when it changes"
        );
        on_event(IngestEvent::Quarantined {
            path: Path::new(path),
            reason: &reason,
        });
        upserts.push(FileRecord {
            path: path.clone(),
            size: meta.len(),
            mtime_ns: crate::walk::mtime_ns(&meta),
            hash: None,
            parser: None,
            status: FileStatus::Failed,
            reason: Some(reason),
            documents: 0,
            chunks: 0,
            indexed_at: unix_now(),
        });
    }
    let keys: Vec<String> = upserts.iter().map(|r| r.path.clone()).collect();
    index.write(&keys, Vec::new()).await?;
    manifest.apply(&upserts, &[])?;
    Ok(())
}

/// Which files the parse workers are reading right now, kept in `<data dir>/inflight.json` so
/// that after a crash the next start knows which file was being read when docent died. A file
/// that keeps killing docent (a parser bug, a runaway allocation) is then quarantined instead
/// of crashing every restart.
struct Journal {
    path: PathBuf,
    state: std::sync::Mutex<JournalState>,
}

#[derive(Default, Serialize, serde::Deserialize)]
struct JournalState {
    /// Files being read now.
    reading: Vec<String>,
    /// Files during which earlier processes died, and how many times.
    deaths: HashMap<String, u32>,
}

impl Journal {
    const FILE: &'static str = "inflight.json";

    fn open(data_dir: &Path) -> Journal {
        let path = data_dir.join(Self::FILE);
        // A torn or unreadable journal only loses crash counts; never an error.
        let state = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Journal {
            path,
            state: std::sync::Mutex::new(state),
        }
    }

    /// Counts the files that were being read when the last process died; returns those that
    /// reached `limit`, which are forgotten by the journal (the manifest takes over).
    fn after_restart(&self, limit: u32) -> Vec<(String, u32)> {
        let Ok(mut st) = self.state.lock() else {
            return Vec::new();
        };
        for p in std::mem::take(&mut st.reading) {
            *st.deaths.entry(p).or_default() += 1;
        }
        let out: Vec<(String, u32)> = st
            .deaths
            .iter()
            .filter(|(_, n)| **n >= limit)
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        for (p, _) in &out {
            st.deaths.remove(p);
        }
        self.save(&st);
        out
    }

    fn start(&self, path: &str) {
        if let Ok(mut st) = self.state.lock() {
            st.reading.push(path.to_string());
            self.save(&st);
        }
    }

    /// The file was read without killing docent: its count starts over.
    fn finish(&self, path: &str) {
        if let Ok(mut st) = self.state.lock() {
            st.reading.retain(|p| p != path);
            st.deaths.remove(path);
            self.save(&st);
        }
    }

    fn save(&self, st: &JournalState) {
        let Ok(bytes) = serde_json::to_vec(st) else {
            return;
        };
        let tmp = self.path.with_extension("json.tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}

/// Starts the parse workers: a bounded thread pool that reads, parses and chunks files and
/// sends the results to the writer.
fn spawn_workers(
    ctx: &Context,
    to_read: Vec<Found>,
    known: Arc<HashMap<String, FileRecord>>,
    counter: Arc<dyn TokenCounter>,
    control: IngestControl,
    journal: Arc<Journal>,
    tx: mpsc::Sender<Done>,
) -> Result<std::thread::JoinHandle<()>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(ctx.threads())
        .thread_name(|i| format!("docent-ingest-{i}"))
        .build()
        .map_err(|e| EngineError::Threads(e.to_string()))?;
    let parse_opts = ctx.parse_options();
    let chunk_cfg = ctx.chunk_config();
    std::thread::Builder::new()
        .name("docent-ingest".into())
        .spawn(move || {
            pool.install(|| {
                use rayon::prelude::*;
                to_read.par_iter().for_each_with(tx, |tx, found| {
                    if !control.proceed() {
                        return;
                    }
                    let key = path_key(&found.path);
                    journal.start(&key);
                    fault_injection(&found.path);
                    let done = process(found, &known, &parse_opts, &chunk_cfg, counter.as_ref());
                    journal.finish(&key);
                    let _ = tx.blocking_send(done);
                });
            });
        })
        .map_err(|e| EngineError::Threads(e.to_string()))
}

/// The single writer: embeds what the cache lacks, writes batches to the index, then to the
/// manifest.
struct Writer<'a> {
    manifest: &'a mut Manifest,
    index: &'a mut Index,
    embedder: Arc<dyn Embedder>,
    known: Arc<HashMap<String, FileRecord>>,
    seen: &'a HashSet<String>,
    summary: &'a mut IngestSummary,
    now: i64,
    /// Old paths of moved files, whose records go once the run is done.
    taken_over: Vec<String>,
}

impl Writer<'_> {
    async fn flush(&mut self, batch: Vec<Done>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut replace: Vec<String> = Vec::new();
        let mut add: Vec<ChunkRecord> = Vec::new();
        let mut upserts: Vec<FileRecord> = Vec::new();
        for done in batch {
            self.summary.bytes_read += done.bytes_read;
            let key = path_key(&done.found.path);
            let mut rec = FileRecord {
                path: key.clone(),
                size: done.found.size,
                mtime_ns: done.found.mtime_ns,
                hash: done.hash.clone(),
                parser: None,
                status: FileStatus::Indexed,
                reason: None,
                documents: 0,
                chunks: 0,
                indexed_at: self.now,
            };
            match &done.outcome {
                FileOutcome::Indexed {
                    parser,
                    documents,
                    chunks,
                    warnings,
                } => {
                    self.summary.files_indexed += 1;
                    self.summary.chunks += u64::from(*chunks);
                    self.summary.chunks_indexed += u64::from(*chunks);
                    self.summary.documents += u64::from(*documents);
                    for w in warnings {
                        self.summary.warnings.push(SkippedFile {
                            path: key.clone(),
                            reason: w.clone(),
                            error: true,
                        });
                    }
                    rec.parser = Some(parser.clone());
                    rec.documents = *documents;
                    rec.chunks = *chunks;
                    replace.push(key.clone());
                    add.extend(done.records);
                }
                FileOutcome::Unchanged => {
                    // Touched but identical: keep the record, refresh size and mtime.
                    self.summary.files_unchanged += 1;
                    match self.manifest.get(&key)? {
                        Some(old) => {
                            self.summary.chunks += u64::from(old.chunks);
                            self.summary.documents += u64::from(old.documents);
                            rec = FileRecord {
                                size: done.found.size,
                                mtime_ns: done.found.mtime_ns,
                                ..old
                            };
                        }
                        None => continue,
                    }
                }
                FileOutcome::Moved { from } => {
                    let old = self.index.chunks_by_path(from).await?;
                    let Some(prev) = self.known.get(done.hash.as_deref().unwrap_or_default())
                    else {
                        continue;
                    };
                    self.summary.files_moved += 1;
                    self.summary.chunks += u64::from(prev.chunks);
                    self.summary.chunks_indexed += old.len() as u64;
                    self.summary.chunks_cached += old.len() as u64;
                    self.summary.documents += u64::from(prev.documents);
                    rec.parser = prev.parser.clone();
                    rec.documents = prev.documents;
                    rec.chunks = prev.chunks;
                    replace.push(key.clone());
                    add.extend(moved_records(old, &key));
                    if !self.seen.contains(from) && !Path::new(from).exists() {
                        self.taken_over.push(from.clone());
                    }
                }
                FileOutcome::Skipped { reason } | FileOutcome::Failed { reason } => {
                    let error = matches!(done.outcome, FileOutcome::Failed { .. });
                    rec.status = if error {
                        FileStatus::Failed
                    } else {
                        FileStatus::Skipped
                    };
                    rec.reason = Some(reason.clone());
                    self.summary.files_skipped.push(SkippedFile {
                        path: key.clone(),
                        reason: reason.clone(),
                        error,
                    });
                    // A file that was indexed before and now fails loses its old chunks.
                    replace.push(key.clone());
                }
            }
            upserts.push(rec);
        }
        self.embed(&mut add).await?;
        self.index.write(&replace, add).await?;
        self.manifest.apply(&upserts, &[])?;
        Ok(())
    }

    /// Fills in vectors: from the cache (the index) where equal content was embedded before,
    /// else from the model, each distinct content once.
    async fn embed(&mut self, records: &mut [ChunkRecord]) -> Result<()> {
        let missing: Vec<ContentHash> = {
            let mut set: Vec<ContentHash> = records
                .iter()
                .filter(|r| r.vector.is_empty())
                .map(|r| r.content_hash.clone())
                .collect();
            set.sort();
            set.dedup();
            set
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut vectors = self.index.vectors_for(&missing).await?;
        let mut to_embed: Vec<(ContentHash, String)> = Vec::new();
        let mut queued: HashSet<ContentHash> = HashSet::new();
        for r in records.iter() {
            if r.vector.is_empty()
                && !vectors.contains_key(&r.content_hash)
                && queued.insert(r.content_hash.clone())
            {
                to_embed.push((
                    r.content_hash.clone(),
                    docent_core::embedding_text(r.context.as_deref(), &r.text),
                ));
            }
        }
        if !to_embed.is_empty() {
            let embedder = self.embedder.clone();
            let texts: Vec<String> = to_embed.iter().map(|(_, t)| t.clone()).collect();
            let computed = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                embedder.embed(&refs, EmbedKind::Document)
            })
            .await
            .map_err(|e| EngineError::Threads(e.to_string()))?
            .map_err(EngineError::Embedding)?;
            for ((hash, _), v) in to_embed.into_iter().zip(computed) {
                vectors.insert(hash, v);
            }
        }
        for r in records.iter_mut().filter(|r| r.vector.is_empty()) {
            match vectors.get(&r.content_hash) {
                Some(v) => {
                    r.vector = v.clone();
                }
                None => {
                    return Err(EngineError::Embedding(docent_core::SeamError::new(
                        "the embedder returned fewer vectors than texts",
                    )));
                }
            }
        }
        let total = records.len() as u64;
        let embedded = queued.len() as u64;
        self.summary.chunks_embedded += embedded;
        self.summary.chunks_cached += total.saturating_sub(embedded);
        Ok(())
    }
}

/// The manifest key of a path: the absolute path as a string.
pub(crate) fn path_key(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Fault injection for crash-safety tests: with `DOCENT_FAULT_ABORT_ON=<text>` in the
/// environment, the process aborts (as a crash would) when it starts reading a file whose path
/// contains that text. Unset in normal use.
fn fault_injection(path: &Path) {
    if let Some(pat) = std::env::var_os("DOCENT_FAULT_ABORT_ON")
        && !pat.is_empty()
        && path.to_string_lossy().contains(&*pat.to_string_lossy())
    {
        std::process::abort();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Same size and mtime as recorded, and not a failure worth retrying (an unreadable file may
/// have been made readable without its mtime changing).
fn is_unchanged(rec: &FileRecord, found: &Found) -> bool {
    rec.size == found.size
        && rec.mtime_ns == found.mtime_ns
        && !(rec.status == FileStatus::Failed
            && rec
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("could not read")))
}

/// Reads, hashes, parses and chunks one file. Never panics on any input; every problem becomes
/// an outcome.
fn process(
    found: &Found,
    known: &HashMap<String, FileRecord>,
    parse_opts: &ParseOptions,
    chunk_cfg: &docent_chunk::ChunkConfig,
    counter: &dyn TokenCounter,
) -> Done {
    let mut done = Done {
        found: found.clone(),
        hash: None,
        bytes_read: 0,
        outcome: FileOutcome::Unchanged,
        records: Vec::new(),
    };
    let path = &found.path;
    if found.size > parse_opts.max_file_bytes {
        done.outcome = FileOutcome::Skipped {
            reason: SkipReason::TooLarge {
                size: found.size,
                limit: parse_opts.max_file_bytes,
            }
            .to_string(),
        };
        return done;
    }
    // Decide from the first bytes whether the file is worth reading at all.
    let head = match read_head(path) {
        Ok(h) => h,
        Err(e) => {
            done.outcome = FileOutcome::Failed {
                reason: io_reason(&e),
            };
            return done;
        }
    };
    if docent_parse::detect(path, &head).is_none() {
        done.outcome = FileOutcome::Skipped {
            reason: SkipReason::Unsupported.to_string(),
        };
        return done;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            done.outcome = FileOutcome::Failed {
                reason: io_reason(&e),
            };
            return done;
        }
    };
    done.bytes_read = bytes.len() as u64;
    let hash = ContentHash::of(&bytes).0;
    done.hash = Some(hash.clone());
    let key = path_key(path);
    if let Some(prev) = known.get(&hash) {
        if prev.path == key {
            return done; // touched, same content
        }
        // Same content as an indexed file elsewhere: a move (the old path is gone) or a copy.
        done.outcome = FileOutcome::Moved {
            from: prev.path.clone(),
        };
        return done;
    }
    match parse_and_chunk(path, &key, &bytes, parse_opts, chunk_cfg, counter) {
        Ok((outcome, records)) => {
            done.outcome = outcome;
            done.records = records;
        }
        Err(outcome) => done.outcome = outcome,
    }
    done
}

fn parse_and_chunk(
    path: &Path,
    key: &str,
    bytes: &[u8],
    parse_opts: &ParseOptions,
    chunk_cfg: &docent_chunk::ChunkConfig,
    counter: &dyn TokenCounter,
) -> std::result::Result<(FileOutcome, Vec<ChunkRecord>), FileOutcome> {
    match docent_parse::parse_bytes(path, bytes, parse_opts) {
        Ok(Outcome::Parsed {
            format,
            documents,
            warnings,
        }) => {
            let mut records = Vec::new();
            for doc in &documents {
                let chunks =
                    docent_chunk::chunk_document(doc, counter, chunk_cfg).map_err(|e| {
                        FileOutcome::Failed {
                            reason: format!("chunking failed: {e}"),
                        }
                    })?;
                records.extend(chunks.iter().map(|c| chunk_record(key, doc, c)));
            }
            Ok((
                FileOutcome::Indexed {
                    parser: format.name().to_string(),
                    documents: documents.len() as u32,
                    chunks: records.len() as u32,
                    warnings,
                },
                records,
            ))
        }
        Ok(Outcome::Skipped { reason, .. }) => Err(FileOutcome::Skipped {
            reason: reason.to_string(),
        }),
        Err(e) => Err(FileOutcome::Failed { reason: e.reason() }),
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(8192);
    f.by_ref().take(8192).read_to_end(&mut head)?;
    Ok(head)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "could not read: permission denied".into(),
        std::io::ErrorKind::NotFound => "could not read: vanished while being indexed".into(),
        _ => format!("could not read: {e}"),
    }
}
