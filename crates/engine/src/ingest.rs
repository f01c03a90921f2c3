//! The ingest pipeline: walk → plan → read and parse on workers → chunk → commit to the manifest.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use docent_core::{ContentHash, TokenCounter};
use docent_parse::{Outcome, ParseOptions, SkipReason};
use docent_store::{FileRecord, FileStatus, Manifest, WriteLock};
use serde::Serialize;

use crate::walk::{Found, WalkOptions, walk};
use crate::{Context, EngineError, Result};

/// What happened to one file in this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// Parsed and chunked.
    Indexed {
        parser: String,
        documents: u32,
        chunks: u32,
        warnings: Vec<String>,
    },
    /// Same size and modification time as last time (or same content): not read again.
    Unchanged,
    /// Same content as a file already indexed at another path: taken over without parsing.
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
    /// A file that needed reading is done.
    File {
        path: &'a Path,
        outcome: &'a FileOutcome,
    },
    /// A folder or file the walk could not look at.
    WalkIssue { path: &'a Path, message: &'a str },
}

/// A file that was not indexed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
    /// True when something went wrong (unreadable, damaged, parser crash), false when the file
    /// was skipped on purpose (empty, unsupported, encrypted, no text layer).
    pub error: bool,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestSummary {
    pub files_seen: u64,
    pub files_indexed: u64,
    pub files_unchanged: u64,
    pub files_moved: u64,
    /// Records of files that no longer exist (or are now ignored), removed from the index.
    pub files_removed: u64,
    pub files_skipped: Vec<SkippedFile>,
    /// Chunks of all indexed files under the given paths.
    pub chunks: u64,
    /// Chunks produced by this run (new and changed files).
    pub chunks_indexed: u64,
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
    /// For a move: the path whose record is taken over (and removed if it is gone).
    replaces: Option<String>,
}

const COMMIT_EVERY: usize = 64;
const COMMIT_INTERVAL: Duration = Duration::from_secs(2);

/// Indexes the files under `roots` (folders or files): new and changed files are parsed and
/// chunked, unchanged files are skipped without being read, moved files are recognised by their
/// content hash, and records of files that are gone are removed. Holds the data directory's
/// write lock for the duration.
///
/// Fails as a whole only when nothing can be done (no root exists, the manifest or the
/// tokenizer cannot be opened); single files that fail are reported in the summary.
pub fn ingest(
    ctx: &Context,
    roots: &[PathBuf],
    on_event: &(dyn Fn(IngestEvent<'_>) + Sync),
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

    let counter = ctx.token_counter()?;
    let _lock = WriteLock::acquire(&ctx.paths.data_dir)?;
    let mut manifest = Manifest::open(&ctx.paths.data_dir)?;

    let data_dir = std::fs::canonicalize(&ctx.paths.data_dir).unwrap_or(ctx.paths.data_dir.clone());
    let walked = walk(
        &abs_roots,
        &WalkOptions {
            include_hidden: ctx.settings.ingest.include_hidden,
            follow_symlinks: ctx.settings.ingest.follow_symlinks,
            exclude: vec![data_dir],
        },
    );
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
    for found in walked.files {
        let key = path_key(&found.path);
        seen.insert(key.clone());
        match manifest.get(&key)? {
            Some(rec) if is_unchanged(&rec, &found) => {
                summary.files_unchanged += 1;
                summary.chunks += u64::from(rec.chunks);
                summary.documents += u64::from(rec.documents);
            }
            _ => to_read.push(found),
        }
    }
    on_event(IngestEvent::Planned {
        files: seen.len(),
        to_read: to_read.len(),
        unchanged: summary.files_unchanged as usize,
    });

    // Content already indexed somewhere, for recognising moved and copied files.
    let known: HashMap<String, FileRecord> = manifest
        .all()?
        .into_iter()
        .filter(|r| r.status == FileStatus::Indexed)
        .filter_map(|r| r.hash.clone().map(|h| (h, r)))
        .collect();

    let parse_opts = ctx.parse_options();
    let chunk_cfg = ctx.chunk_config();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(ctx.threads())
        .thread_name(|i| format!("docent-ingest-{i}"))
        .build()
        .map_err(|e| EngineError::Threads(e.to_string()))?;

    let (tx, rx) = mpsc::sync_channel::<Done>(256);
    let mut pending: Vec<FileRecord> = Vec::new();
    let mut removals: Vec<String> = Vec::new();
    let mut taken_over: HashSet<String> = HashSet::new();
    let now = unix_now();

    std::thread::scope(|scope| -> Result<()> {
        let work = &to_read;
        let known = &known;
        let parse_opts = &parse_opts;
        let chunk_cfg = &chunk_cfg;
        let counter: &dyn TokenCounter = &counter;
        let pool = &pool;
        scope.spawn(move || {
            pool.install(|| {
                use rayon::prelude::*;
                work.par_iter().for_each_with(tx, |tx, found| {
                    let done = process(found, known, parse_opts, chunk_cfg, counter);
                    let _ = tx.send(done);
                });
            });
        });

        let mut last_commit = Instant::now();
        for done in rx {
            on_event(IngestEvent::File {
                path: &done.found.path,
                outcome: &done.outcome,
            });
            summary.bytes_read += done.bytes_read;
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
                indexed_at: now,
            };
            match &done.outcome {
                FileOutcome::Indexed {
                    parser,
                    documents,
                    chunks,
                    warnings,
                } => {
                    summary.files_indexed += 1;
                    summary.chunks += u64::from(*chunks);
                    summary.chunks_indexed += u64::from(*chunks);
                    summary.documents += u64::from(*documents);
                    for w in warnings {
                        summary.warnings.push(SkippedFile {
                            path: key.clone(),
                            reason: w.clone(),
                            error: true,
                        });
                    }
                    rec.parser = Some(parser.clone());
                    rec.documents = *documents;
                    rec.chunks = *chunks;
                }
                FileOutcome::Unchanged => {
                    // Touched but identical: keep the record, refresh size and mtime.
                    summary.files_unchanged += 1;
                    if let Some(old) = manifest.get(&key)? {
                        summary.chunks += u64::from(old.chunks);
                        summary.documents += u64::from(old.documents);
                        rec = FileRecord {
                            size: done.found.size,
                            mtime_ns: done.found.mtime_ns,
                            ..old
                        };
                    }
                }
                FileOutcome::Moved { from } => {
                    summary.files_moved += 1;
                    if let Some(old) = known.get(done.hash.as_deref().unwrap_or_default()) {
                        summary.chunks += u64::from(old.chunks);
                        summary.documents += u64::from(old.documents);
                        rec.parser = old.parser.clone();
                        rec.documents = old.documents;
                        rec.chunks = old.chunks;
                    }
                    if let Some(replaced) = &done.replaces
                        && !seen.contains(replaced)
                        && !Path::new(replaced).exists()
                    {
                        taken_over.insert(from.clone());
                    }
                }
                FileOutcome::Skipped { reason } => {
                    rec.status = FileStatus::Skipped;
                    rec.reason = Some(reason.clone());
                    summary.files_skipped.push(SkippedFile {
                        path: key.clone(),
                        reason: reason.clone(),
                        error: false,
                    });
                }
                FileOutcome::Failed { reason } => {
                    rec.status = FileStatus::Failed;
                    rec.reason = Some(reason.clone());
                    summary.files_skipped.push(SkippedFile {
                        path: key.clone(),
                        reason: reason.clone(),
                        error: true,
                    });
                }
            }
            pending.push(rec);
            if pending.len() >= COMMIT_EVERY || last_commit.elapsed() >= COMMIT_INTERVAL {
                manifest.apply(&pending, &[])?;
                pending.clear();
                last_commit = Instant::now();
            }
        }
        Ok(())
    })?;

    // Records under the roots that the walk did not see are gone (deleted, moved away, or now
    // ignored), unless they sit in a folder the walk could not read.
    let blocked: Vec<&Path> = walked
        .issues
        .iter()
        .filter(|i| i.is_dir)
        .map(|i| i.path.as_path())
        .collect();
    for root in &abs_roots {
        for p in manifest.paths_under(&path_key(root))? {
            if seen.contains(&p) || blocked.iter().any(|b| Path::new(&p).starts_with(b)) {
                continue;
            }
            removals.push(p);
        }
    }
    for from in taken_over {
        if !removals.contains(&from) {
            removals.push(from);
        }
    }
    summary.files_removed = removals
        .iter()
        .filter(|p| !pending.iter().any(|r| &r.path == *p))
        .count() as u64;
    manifest.apply(&pending, &removals)?;

    summary.files_skipped.sort_by(|a, b| a.path.cmp(&b.path));
    summary.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(summary)
}

/// The manifest key of a path: the absolute path as a string.
fn path_key(p: &Path) -> String {
    p.to_string_lossy().into_owned()
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
        replaces: None,
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
        done.replaces = Some(prev.path.clone());
        done.outcome = FileOutcome::Moved {
            from: prev.path.clone(),
        };
        return done;
    }
    done.outcome = parse_and_chunk(path, &bytes, parse_opts, chunk_cfg, counter);
    done
}

fn parse_and_chunk(
    path: &Path,
    bytes: &[u8],
    parse_opts: &ParseOptions,
    chunk_cfg: &docent_chunk::ChunkConfig,
    counter: &dyn TokenCounter,
) -> FileOutcome {
    match docent_parse::parse_bytes(path, bytes, parse_opts) {
        Ok(Outcome::Parsed {
            format,
            documents,
            warnings,
        }) => {
            let mut chunks = 0u32;
            for doc in &documents {
                match docent_chunk::chunk_document(doc, counter, chunk_cfg) {
                    Ok(c) => chunks += c.len() as u32,
                    Err(e) => {
                        return FileOutcome::Failed {
                            reason: format!("chunking failed: {e}"),
                        };
                    }
                }
            }
            FileOutcome::Indexed {
                parser: format.name().to_string(),
                documents: documents.len() as u32,
                chunks,
                warnings,
            }
        }
        Ok(Outcome::Skipped { reason, .. }) => FileOutcome::Skipped {
            reason: reason.to_string(),
        },
        Err(e) => FileOutcome::Failed { reason: e.reason() },
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
