//! The file manifest: what docent knows about every file under the indexed folders.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::{FORMAT_VERSION, Result, StoreError};

/// What became of a file the last time it was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Parsed and chunked.
    Indexed,
    /// Deliberately not indexed (empty, unsupported, encrypted, ...): see the reason.
    Skipped,
    /// Something went wrong (unreadable, damaged, parser crash): see the reason.
    Failed,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Indexed => "indexed",
            FileStatus::Skipped => "skipped",
            FileStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "indexed" => FileStatus::Indexed,
            "skipped" => FileStatus::Skipped,
            _ => FileStatus::Failed,
        }
    }
}

/// One file as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileRecord {
    /// Absolute path, as walked.
    pub path: String,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// BLAKE3 of the content; `None` for files that were never read (unsupported, too large).
    pub hash: Option<String>,
    /// The parser that read it (`pdf`, `markdown`, `eml`, ...).
    pub parser: Option<String>,
    pub status: FileStatus,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// Documents found in it (messages in an mbox, attachments).
    pub documents: u32,
    pub chunks: u32,
    /// When it was last (re)indexed, seconds since the Unix epoch.
    pub indexed_at: i64,
}

/// Totals over the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ManifestStats {
    pub files: u64,
    pub indexed: u64,
    pub skipped: u64,
    pub failed: u64,
    pub documents: u64,
    pub chunks: u64,
    pub bytes: u64,
}

/// The manifest database (`<data dir>/manifest.sqlite3`).
pub struct Manifest {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("path", &self.path)
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path       TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    mtime_ns   TEXT NOT NULL,
    hash       TEXT,
    parser     TEXT,
    status     TEXT NOT NULL,
    reason     TEXT,
    documents  INTEGER NOT NULL DEFAULT 0,
    chunks     INTEGER NOT NULL DEFAULT 0,
    indexed_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_hash ON files(hash);
";

impl Manifest {
    pub const FILE: &'static str = "manifest.sqlite3";

    /// Opens (creating if needed) the manifest in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        crate::private::private_dir(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(Self::FILE);
        // Created (or tightened) 0600 before SQLite opens it: SQLite gives its -wal and -shm
        // files the database file's mode.
        let private = || -> std::io::Result<()> {
            crate::private::private_file()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                crate::private::tighten_file(Path::new(&p))?;
            }
            Ok(())
        };
        private().map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Db {
            path: path.clone(),
            source,
        })?;
        let m = Manifest { conn, path };
        m.init()?;
        Ok(m)
    }

    /// Opens an existing manifest without creating anything; `None` if there is none yet.
    pub fn open_existing(data_dir: &Path) -> Result<Option<Self>> {
        if !data_dir.join(Self::FILE).exists() {
            return Ok(None);
        }
        Self::open(data_dir).map(Some)
    }

    fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|source| StoreError::Db {
            path: self.path.clone(),
            source,
        })
    }

    fn init(&self) -> Result<()> {
        self.db(self.conn.pragma_update(None, "journal_mode", "WAL"))?;
        self.db(self.conn.pragma_update(None, "synchronous", "NORMAL"))?;
        self.db(self.conn.busy_timeout(std::time::Duration::from_secs(5)))?;
        self.db(self.conn.execute_batch(SCHEMA))?;
        let found: Option<String> = self.db(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get(0)
            })
            .optional())?;
        match found.and_then(|v| v.parse::<u32>().ok()) {
            Some(v) if v > FORMAT_VERSION => Err(StoreError::FormatVersion {
                path: self.path.clone(),
                found: v,
                expected: FORMAT_VERSION,
            }),
            Some(_) => Ok(()),
            None => {
                self.db(self.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?1)",
                    params![FORMAT_VERSION.to_string()],
                ))?;
                Ok(())
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, path: &str) -> Result<Option<FileRecord>> {
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT path, size, mtime_ns, hash, parser, status, reason, documents, chunks, indexed_at
             FROM files WHERE path = ?1",
        ))?;
        let r = stmt.query_row(params![path], row_to_record).optional();
        self.db(r)
    }

    /// Indexed records with this content hash (a file moved or copied elsewhere).
    pub fn find_by_hash(&self, hash: &str) -> Result<Vec<FileRecord>> {
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT path, size, mtime_ns, hash, parser, status, reason, documents, chunks, indexed_at
             FROM files WHERE hash = ?1 AND status = 'indexed' ORDER BY path",
        ))?;
        let rows = self.db(stmt.query_map(params![hash], row_to_record))?;
        self.db(rows.collect())
    }

    /// All records, sorted by path.
    pub fn all(&self) -> Result<Vec<FileRecord>> {
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT path, size, mtime_ns, hash, parser, status, reason, documents, chunks, indexed_at
             FROM files ORDER BY path",
        ))?;
        let rows = self.db(stmt.query_map([], row_to_record))?;
        self.db(rows.collect())
    }

    /// Paths of the records at `root` or below it (a folder, or a single file).
    pub fn paths_under(&self, root: &str) -> Result<Vec<String>> {
        let root = root.trim_end_matches('/');
        let prefix = format!("{root}/");
        let mut stmt = self.db(self.conn.prepare_cached(
            "SELECT path FROM files WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2 ORDER BY path",
        ))?;
        let rows = self.db(stmt.query_map(params![root, prefix], |r| r.get::<_, String>(0)))?;
        self.db(rows.collect())
    }

    pub fn stats(&self) -> Result<ManifestStats> {
        let r = self.conn.query_row(
            "SELECT COUNT(*),
                    COALESCE(SUM(status = 'indexed'), 0),
                    COALESCE(SUM(status = 'skipped'), 0),
                    COALESCE(SUM(status = 'failed'), 0),
                    COALESCE(SUM(documents), 0),
                    COALESCE(SUM(chunks), 0),
                    COALESCE(SUM(size), 0)
             FROM files",
            [],
            |r| {
                Ok(ManifestStats {
                    files: r.get::<_, i64>(0)? as u64,
                    indexed: r.get::<_, i64>(1)? as u64,
                    skipped: r.get::<_, i64>(2)? as u64,
                    failed: r.get::<_, i64>(3)? as u64,
                    documents: r.get::<_, i64>(4)? as u64,
                    chunks: r.get::<_, i64>(5)? as u64,
                    bytes: r.get::<_, i64>(6)? as u64,
                })
            },
        );
        self.db(r)
    }

    /// Applies a batch of changes in one transaction: all of them land, or none.
    pub fn apply(&mut self, upserts: &[FileRecord], removals: &[String]) -> Result<()> {
        let path = self.path.clone();
        let db = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO files (path, size, mtime_ns, hash, parser, status, reason, documents, chunks, indexed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
                       hash = excluded.hash, parser = excluded.parser, status = excluded.status,
                       reason = excluded.reason, documents = excluded.documents,
                       chunks = excluded.chunks, indexed_at = excluded.indexed_at",
                )
                .map_err(db)?;
            for r in upserts {
                up.execute(params![
                    r.path,
                    r.size as i64,
                    r.mtime_ns.to_string(),
                    r.hash,
                    r.parser,
                    r.status.as_str(),
                    r.reason,
                    r.documents,
                    r.chunks,
                    r.indexed_at,
                ])
                .map_err(db)?;
            }
            let mut del = tx
                .prepare_cached("DELETE FROM files WHERE path = ?1")
                .map_err(db)?;
            for p in removals {
                del.execute(params![p]).map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRecord> {
    let mtime: String = r.get(2)?;
    Ok(FileRecord {
        path: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        mtime_ns: mtime.parse().unwrap_or(0),
        hash: r.get(3)?,
        parser: r.get(4)?,
        status: FileStatus::parse(&r.get::<_, String>(5)?),
        reason: r.get(6)?,
        documents: r.get(7)?,
        chunks: r.get(8)?,
        indexed_at: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str, hash: &str, status: FileStatus) -> FileRecord {
        FileRecord {
            path: path.into(),
            size: 10,
            mtime_ns: 1_700_000_000_123_456_789,
            hash: Some(hash.into()),
            parser: Some("markdown".into()),
            status,
            reason: None,
            documents: 1,
            chunks: 3,
            indexed_at: 1,
        }
    }

    #[test]
    fn round_trip_and_queries() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::open(dir.path()).unwrap();
        let a = rec("/d/a.md", "h1", FileStatus::Indexed);
        let b = rec("/d/sub/b.md", "h2", FileStatus::Indexed);
        let c = rec("/dx/c.md", "h1", FileStatus::Skipped);
        m.apply(&[a.clone(), b.clone(), c.clone()], &[]).unwrap();
        assert_eq!(m.get("/d/a.md").unwrap(), Some(a.clone()));
        assert_eq!(m.find_by_hash("h1").unwrap(), vec![a.clone()]);
        assert_eq!(
            m.paths_under("/d/").unwrap(),
            vec!["/d/a.md", "/d/sub/b.md"]
        );
        assert_eq!(m.paths_under("/d/a.md").unwrap(), vec!["/d/a.md"]);
        let s = m.stats().unwrap();
        assert_eq!((s.files, s.indexed, s.skipped, s.chunks), (3, 2, 1, 9));

        m.apply(&[], &["/d/a.md".into()]).unwrap();
        drop(m);
        let m = Manifest::open(dir.path()).unwrap();
        assert_eq!(m.get("/d/a.md").unwrap(), None);
        assert_eq!(m.all().unwrap().len(), 2);
    }

    #[test]
    fn newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Manifest::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(Manifest::FILE)).unwrap();
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format'", [])
            .unwrap();
        drop(conn);
        let err = Manifest::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::FormatVersion { found: 99, .. }));
        assert!(err.to_string().contains("hint:"));
    }
}
