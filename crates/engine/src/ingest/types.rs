//! What ingest reports: per-file outcomes, progress events and the summary of a run.

use std::path::Path;

use serde::Serialize;

use super::FileReason;

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
    /// Not indexed, deliberately (a [`FileReason::Skipped`]).
    Skipped { reason: FileReason },
    /// Not indexed because something went wrong.
    Failed { reason: FileReason },
}

impl FileOutcome {
    /// Not indexed for `reason`: failed or skipped, as the reason says.
    pub fn not_indexed(reason: FileReason) -> Self {
        if reason.is_error() {
            FileOutcome::Failed { reason }
        } else {
            FileOutcome::Skipped { reason }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use docent_parse::SkipReason;

    #[test]
    fn a_reason_decides_between_skipped_and_failed() {
        let skipped = FileOutcome::not_indexed(FileReason::Skipped(SkipReason::Empty));
        assert!(matches!(skipped, FileOutcome::Skipped { .. }));
        let failed = FileOutcome::not_indexed(FileReason::Chunking("x".into()));
        assert!(matches!(failed, FileOutcome::Failed { .. }));
    }

    #[test]
    fn errors_count_failures_not_deliberate_skips() {
        let file = |error| SkippedFile {
            path: "/a".into(),
            reason: "r".into(),
            error,
        };
        let s = IngestSummary {
            files_skipped: vec![file(true), file(false), file(true)],
            ..Default::default()
        };
        assert_eq!(s.errors(), 2);
    }
}
