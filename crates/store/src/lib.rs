//! # docent-store
//!
//! Everything docent persists about an index, kept in the data directory:
//!
//! - [`Manifest`]: one record per file ever seen under the indexed folders: path, size, mtime,
//!   BLAKE3 content hash, parser, status, skip reason, document and chunk counts. It is what lets
//!   a second run skip unchanged files without reading them and recognise a moved file by its
//!   hash. SQLite in WAL mode; every batch of changes is one transaction, so a crash never
//!   leaves a half-written record.
//! - [`WriteLock`]: one writer per data directory, an OS file lock that dies with its process,
//!   so a stale lock can never block the next run.
//!
//! Every persisted format carries a version ([`FORMAT_VERSION`]); a data directory written by a
//! newer docent is refused with a typed error instead of being misread. It refuses to know how
//! files are parsed or chunked: it stores what the engine hands it.

mod lock;
mod manifest;

pub use lock::WriteLock;
pub use manifest::{FileRecord, FileStatus, Manifest, ManifestStats};

use std::path::PathBuf;

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
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
