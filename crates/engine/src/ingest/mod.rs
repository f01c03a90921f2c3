//! The ingest pipeline: walk → plan → read, parse and chunk on worker threads → embed (with the
//! embedding cache) → write to the index (LanceDB, then tantivy) → record in the manifest.
//!
//! Write order and crash safety: a batch is written to the index first and to the manifest
//! last. If docent dies in between, the manifest still holds the old record, so the next run
//! processes the file again, and the index write is idempotent (it replaces by path). On start,
//! the writer reconciles the index with the manifest, so a crash at any point leaves no orphan
//! chunks, no duplicates and no file marked done that is not searchable.
//!
//! The parts: [`types`](self) of what a run reports, the [`Ingester`] (`ingester.rs`), the
//! crash journal and quarantine (`journal.rs`), the parse workers (`workers.rs`), one file's
//! processing (`file.rs`), the writer with the embedding cache (`writer.rs`, over the shared
//! [`crate::vectors`] step) and typed reasons for files not indexed (`reason.rs`).

mod file;
mod ingester;
mod journal;
mod reason;
mod types;
mod workers;
mod writer;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub use ingester::{IngestControl, Ingester};
pub use reason::{FileReason, QUARANTINE_REASON, ReadProblem, RecordedReason};
pub use types::{FileOutcome, IngestEvent, IngestSummary, SkippedFile};

use crate::{Context, Result};

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

/// The manifest key of a path: the absolute path as a string.
pub(crate) fn path_key(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
