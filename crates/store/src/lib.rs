//! # docent-store
//!
//! Everything docent persists about an index, kept in the data directory:
//!
//! - [`Manifest`]: one record per file ever seen under the indexed folders: path, size, mtime,
//!   BLAKE3 content hash, parser, status, skip reason, document and chunk counts. It is what lets
//!   a second run skip unchanged files without reading them and recognise a moved file by its
//!   hash. SQLite in WAL mode; every batch of changes is one transaction, so a crash never
//!   leaves a half-written record.
//! - [`Index`] (`index/`): the searchable chunks, in two stores kept consistent with each other
//!   and with the manifest. A LanceDB table (`index/lance`, table `chunks`) holds every field of
//!   a [`ChunkRecord`] and its vector, for cosine-similarity search with SQL pre-filters, the
//!   embedding cache ([`Index::vectors_for`]), moves without re-embedding
//!   ([`Index::chunks_by_path`]) and re-embedding without re-parsing ([`Index::scan`]). A tantivy
//!   index (`index/tantivy`) answers BM25 keyword search on its own (English stemming, field
//!   boosts, queries built from analysed words, never parsed as a query language).
//!   `index/meta.json` records the format version and the [`EmbedderIdentity`] of the vectors.
//! - [`WriteLock`]: one writer per data directory, an OS file lock that dies with its process,
//!   so a stale lock can never block the next run.
//!
//! ## Crash safety
//!
//! The engine writes each batch of files in this order: [`Index::write`] (delete the files'
//! chunks by path and add the new ones, LanceDB first, then tantivy with one commit), and only
//! then the manifest. A crash before the manifest commit leaves the files' old records, so the
//! next run processes them again, and since a write first deletes by path, redoing it is
//! harmless. Whatever a crash between the two stores left behind (chunks in one store only,
//! chunks of files the manifest never recorded) is found by [`Index::reconcile`] at the next
//! writer start, from the ids and paths alone: orphans are deleted, disagreeing files are
//! deleted and reported so that the engine re-indexes them.
//!
//! `docent reindex` fills a staging index ([`Index::create_staging`]) while the live one keeps
//! serving, then [`Index::promote_staging`] swaps the directories; an interrupted swap is
//! finished or rolled back by the next writer's [`Index::open`], and a staging index that was
//! not marked complete is never promoted.
//!
//! ## What it refuses
//!
//! Every persisted format carries a version ([`FORMAT_VERSION`]); a data directory written by a
//! newer docent is refused with a typed error instead of being misread. An index built with
//! another embedding model (name, weights checksum or dimension) is refused with
//! [`StoreError::EmbedderMismatch`] and a hint: vectors of two models are never mixed. It does
//! not know how files are parsed, chunked or embedded: it stores what the engine hands it. It
//! never builds an async runtime: its API is async and runs on the caller's tokio runtime.
//!
//! Privacy: the data directory is private to its owner ([`private`]: folders `0700`, files
//! `0600`, an open data directory tightened), and the `Debug` output of its types shows ids, counts and paths of the index, never
//! document text or vectors.

mod index;
mod lock;
mod manifest;
pub mod private;

pub use index::{
    ChunkRecord, DEFAULT_VECTOR_INDEX_THRESHOLD, Index, IndexStats, OpenMode, OptimizeReport,
    ReconcileReport, VectorIndexKind,
};
pub use lock::{LockHolder, WriteLock};
pub use manifest::{FileRecord, FileStatus, Manifest, ManifestStats};

use std::path::PathBuf;

use docent_core::EmbedderIdentity;

/// Version of the on-disk layout of a data directory.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: manifest database error: {source}", path.display())]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{}: written by a newer docent (format {found}, this one reads {expected})\nhint: upgrade docent, or index into a new --data-dir",
        path.display()
    )]
    FormatVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{}: another docent process (pid {pid}) is writing to this index\nhint: wait for it to finish, or stop it (`docent daemon stop` if it is the daemon)",
        path.display()
    )]
    Locked { path: PathBuf, pid: String },
    #[error("{}: no index yet\nhint: run `docent index <FOLDER>` first", path.display())]
    NoIndex { path: PathBuf },
    #[error(
        "{}: the index was built with the embedding model {index_model} ({} dimensions, weights {}), but the configured model is {current_model} ({} dimensions, weights {}); vectors of different models cannot be mixed\nhint: run `docent reindex` to rebuild the vectors with {current_model}, or set embed.model back to {index_model}",
        path.display(),
        index.dim,
        short(&index.checksum),
        current.dim,
        short(&current.checksum)
    )]
    EmbedderMismatch {
        path: PathBuf,
        index_model: String,
        current_model: String,
        /// The identity recorded in the index.
        index: Box<EmbedderIdentity>,
        /// The identity of the configured model.
        current: Box<EmbedderIdentity>,
    },
    #[error("{}: vector store (LanceDB) error: {source}", path.display())]
    Lance {
        path: PathBuf,
        #[source]
        source: lancedb::Error,
    },
    #[error("{}: keyword index (tantivy) error: {source}", path.display())]
    Tantivy {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("{}: record batch (Arrow) error: {source}", path.display())]
    Arrow {
        path: PathBuf,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error(
        "{}: the index is damaged: {detail}\nhint: remove {} and run `docent index <FOLDER>` to rebuild it",
        path.display(),
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{}: the index was opened read-only; this is a bug in docent (writes need OpenMode::ReadWrite)",
        path.display()
    )]
    ReadOnly { path: PathBuf },
    #[error(
        "{}: a vector of {found} dimensions was given to an index of {expected}; this is a bug in docent",
        path.display()
    )]
    VectorDim {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error(
        "invalid {field} filter `{value}`: expected a date written YYYY-MM-DD\nhint: for example {field}:2024-01-31"
    )]
    BadFilter { field: &'static str, value: String },
}

/// The first 12 characters of a checksum, enough to tell two apart in a message.
fn short(checksum: &str) -> &str {
    let s = checksum.strip_prefix("blake3:").unwrap_or(checksum);
    match s.char_indices().nth(12) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
