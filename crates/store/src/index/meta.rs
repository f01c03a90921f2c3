//! `<index>/meta.json` and the directory swap that promotes a staging index.
//!
//! Layout of a data directory:
//!
//! ```text
//! index/            the live index: meta.json, lance/, tantivy/
//! index.staging/    an index being rebuilt by `docent reindex` (meta.json says "complete": false
//!                   until it is promoted)
//! index.old/        the previous live index, only during a swap
//! ```
//!
//! A promotion is: mark staging complete; rename `index` → `index.old`; rename `index.staging` →
//! `index`; remove `index.old`. A crash after any step is finished by [`recover`] on the next
//! writer's open: a complete staging is always promoted, an incomplete one never is.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use docent_core::EmbedderIdentity;
use serde::{Deserialize, Serialize};

use crate::{FORMAT_VERSION, Result, StoreError};

pub(crate) const INDEX_DIR: &str = "index";
pub(crate) const STAGING_DIR: &str = "index.staging";
pub(crate) const OLD_DIR: &str = "index.old";
pub(crate) const META_FILE: &str = "meta.json";

/// What `meta.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct IndexMeta {
    pub format: u32,
    pub embedder: EmbedderIdentity,
    /// When the index was created (RFC 3339, UTC).
    pub created: String,
    /// False while a staging index is being filled; a live index is always complete.
    #[serde(default = "yes")]
    pub complete: bool,
}

fn yes() -> bool {
    true
}

impl IndexMeta {
    pub fn new(embedder: &EmbedderIdentity, complete: bool) -> Self {
        IndexMeta {
            format: FORMAT_VERSION,
            embedder: embedder.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            complete,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `<dir>/meta.json`; `None` when there is none. A newer format is refused before the rest
/// of the file is interpreted.
pub(crate) fn read_meta(dir: &Path) -> Result<Option<IndexMeta>> {
    let path = dir.join(META_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.clone(),
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("meta.json: {e}")))?;
    let format = value
        .get("format")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("meta.json has no format version".into()))?;
    if format > u64::from(FORMAT_VERSION) {
        return Err(StoreError::FormatVersion {
            path,
            found: u32::try_from(format).unwrap_or(u32::MAX),
            expected: FORMAT_VERSION,
        });
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| corrupt(format!("meta.json: {e}")))
}

/// Writes `<dir>/meta.json` atomically (temporary file, fsync, rename).
pub(crate) fn write_meta(dir: &Path, meta: &IndexMeta) -> Result<()> {
    let path = dir.join(META_FILE);
    let tmp = dir.join("meta.json.tmp");
    let json = serde_json::to_vec_pretty(meta).map_err(|e| StoreError::Corrupt {
        path: path.clone(),
        detail: format!("cannot encode meta.json: {e}"),
    })?;
    {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&json).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename durable. Best effort: not every platform can open a directory.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(io_err(from))
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

fn is_complete_staging(staging: &Path) -> bool {
    matches!(read_meta(staging), Ok(Some(m)) if m.complete)
}

pub(crate) struct Dirs {
    pub data: PathBuf,
    pub index: PathBuf,
    pub staging: PathBuf,
    pub old: PathBuf,
}

impl Dirs {
    pub fn new(data_dir: &Path) -> Self {
        Dirs {
            data: data_dir.to_path_buf(),
            index: data_dir.join(INDEX_DIR),
            staging: data_dir.join(STAGING_DIR),
            old: data_dir.join(OLD_DIR),
        }
    }
}

/// Finishes an interrupted promotion (writers only: it renames directories).
pub(crate) fn recover(data_dir: &Path) -> Result<()> {
    let d = Dirs::new(data_dir);
    let staging_complete = is_complete_staging(&d.staging);
    if staging_complete {
        // Marked complete: the promotion had begun, finish it.
        if d.index.exists() {
            remove_dir(&d.old)?;
            rename(&d.index, &d.old)?;
        }
        rename(&d.staging, &d.index)?;
        sync_dir(&d.data);
    } else if !d.index.exists() && d.old.exists() {
        // The live index was moved aside but nothing complete replaced it: put it back.
        rename(&d.old, &d.index)?;
        sync_dir(&d.data);
    }
    if d.index.exists() {
        remove_dir(&d.old)?;
    }
    Ok(())
}

/// The directory a reader should open, without changing anything on disk: the live index, or
/// during an interrupted promotion whichever complete index is there.
pub(crate) fn resolve_for_reading(data_dir: &Path) -> Result<PathBuf> {
    let d = Dirs::new(data_dir);
    if d.index.join(META_FILE).exists() {
        return Ok(d.index);
    }
    if is_complete_staging(&d.staging) {
        return Ok(d.staging);
    }
    if d.old.join(META_FILE).exists() {
        return Ok(d.old);
    }
    Err(StoreError::NoIndex { path: d.index })
}

/// Swaps a finished staging index in for the live one.
pub(crate) fn promote(data_dir: &Path) -> Result<()> {
    let d = Dirs::new(data_dir);
    let mut meta = read_meta(&d.staging)?.ok_or_else(|| StoreError::NoIndex {
        path: d.staging.clone(),
    })?;
    meta.complete = true;
    write_meta(&d.staging, &meta)?;
    remove_dir(&d.old)?;
    if d.index.exists() {
        rename(&d.index, &d.old)?;
    }
    rename(&d.staging, &d.index)?;
    sync_dir(&d.data);
    remove_dir(&d.old)
}

/// Removes a leftover staging directory (an interrupted reindex).
pub(crate) fn clear_staging(data_dir: &Path) -> Result<PathBuf> {
    let d = Dirs::new(data_dir);
    remove_dir(&d.staging)?;
    Ok(d.staging)
}

pub(crate) fn remove_partial(dir: &Path) -> Result<()> {
    remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> EmbedderIdentity {
        EmbedderIdentity {
            model: "m".into(),
            checksum: "c".into(),
            dim: 4,
        }
    }

    fn make(dir: &Path, complete: bool, tag: &str) {
        fs::create_dir_all(dir).unwrap();
        write_meta(dir, &IndexMeta::new(&ident(), complete)).unwrap();
        fs::write(dir.join("tag"), tag).unwrap();
    }

    fn tag(dir: &Path) -> String {
        fs::read_to_string(dir.join("tag")).unwrap()
    }

    #[test]
    fn meta_round_trip_and_newer_format() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(read_meta(t.path()).unwrap(), None);
        let m = IndexMeta::new(&ident(), false);
        write_meta(t.path(), &m).unwrap();
        assert_eq!(read_meta(t.path()).unwrap(), Some(m));
        fs::write(t.path().join(META_FILE), r#"{"format": 99, "other": 1}"#).unwrap();
        assert!(matches!(
            read_meta(t.path()),
            Err(StoreError::FormatVersion { found: 99, .. })
        ));
        fs::write(t.path().join(META_FILE), "not json").unwrap();
        assert!(matches!(
            read_meta(t.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn every_crash_point_of_a_promotion_recovers() {
        let d = |t: &tempfile::TempDir| Dirs::new(t.path());
        // After marking complete, before any rename: promotion is finished.
        let t = tempfile::tempdir().unwrap();
        make(&d(&t).index, true, "old");
        make(&d(&t).staging, true, "new");
        assert_eq!(tag(&resolve_for_reading(t.path()).unwrap()), "old");
        recover(t.path()).unwrap();
        assert_eq!(tag(&d(&t).index), "new");
        assert!(!d(&t).staging.exists() && !d(&t).old.exists());

        // After index -> index.old: staging is moved in.
        let t = tempfile::tempdir().unwrap();
        make(&d(&t).old, true, "old");
        make(&d(&t).staging, true, "new");
        assert_eq!(tag(&resolve_for_reading(t.path()).unwrap()), "new");
        recover(t.path()).unwrap();
        assert_eq!(tag(&d(&t).index), "new");
        assert!(!d(&t).old.exists());

        // After staging -> index, before index.old is removed.
        let t = tempfile::tempdir().unwrap();
        make(&d(&t).old, true, "old");
        make(&d(&t).index, true, "new");
        recover(t.path()).unwrap();
        assert_eq!(tag(&d(&t).index), "new");
        assert!(!d(&t).old.exists());

        // Live index moved aside, staging incomplete: roll back.
        let t = tempfile::tempdir().unwrap();
        make(&d(&t).old, true, "old");
        make(&d(&t).staging, false, "half");
        recover(t.path()).unwrap();
        assert_eq!(tag(&d(&t).index), "old");
        assert!(
            d(&t).staging.exists(),
            "an incomplete staging is left alone"
        );

        // Incomplete staging beside a live index: never promoted.
        let t = tempfile::tempdir().unwrap();
        make(&d(&t).index, true, "old");
        make(&d(&t).staging, false, "half");
        recover(t.path()).unwrap();
        assert_eq!(tag(&d(&t).index), "old");
        assert!(promote(t.path()).is_ok());
        assert_eq!(tag(&d(&t).index), "half");
    }
}
