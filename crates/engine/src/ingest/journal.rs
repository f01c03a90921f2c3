//! The crash journal and quarantine: which files the workers are reading, kept on disk so that
//! after a crash the next start knows which file was being read when docent died, and the
//! quarantine of a file that keeps killing docent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use docent_store::{FileRecord, FileStatus, Index, Manifest};
use serde::Serialize;

use super::{FileReason, IngestEvent, RecordedReason, unix_now};
use crate::Result;

/// True for a file set aside after crashes.
pub(super) fn is_quarantined(rec: &FileRecord) -> bool {
    rec.reason
        .as_deref()
        .is_some_and(|r| RecordedReason::of(r) == RecordedReason::Quarantined)
}

/// Records files during which docent died too often as failed, with their current size and
/// modification time, so they are not read again until they change.
pub(super) async fn quarantine(
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
        let reason = FileReason::Quarantined { deaths: *deaths }.to_string();
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
pub(super) struct Journal {
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

    pub(super) fn open(data_dir: &Path) -> Journal {
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
    pub(super) fn after_restart(&self, limit: u32) -> Vec<(String, u32)> {
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

    pub(super) fn start(&self, path: &str) {
        if let Ok(mut st) = self.state.lock() {
            st.reading.push(path.to_string());
            self.save(&st);
        }
    }

    /// The file was read without killing docent: its count starts over.
    pub(super) fn finish(&self, path: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_during_crashes_is_counted_until_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        // Three processes die while reading `bad`; `good` is read to the end once.
        for _ in 0..3 {
            let j = Journal::open(dir.path());
            assert!(j.after_restart(3).is_empty());
            j.start("bad");
            j.start("good");
            j.finish("good");
            // The process dies here: `bad` stays in the journal on disk.
        }
        let j = Journal::open(dir.path());
        assert_eq!(j.after_restart(3), vec![("bad".to_string(), 3)]);
        // Handed over to the manifest: counted from zero again.
        let j = Journal::open(dir.path());
        assert!(j.after_restart(1).is_empty());
    }

    #[test]
    fn finishing_a_file_forgives_its_crashes_and_a_torn_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path());
        j.start("flaky");
        let j = Journal::open(dir.path());
        assert!(j.after_restart(5).is_empty());
        j.start("flaky");
        j.finish("flaky");
        let j = Journal::open(dir.path());
        assert!(j.after_restart(1).is_empty());

        std::fs::write(dir.path().join(Journal::FILE), b"{\"reading\": [").unwrap();
        assert!(Journal::open(dir.path()).after_restart(1).is_empty());
    }

    #[test]
    fn quarantine_is_recognised_only_from_its_own_reason() {
        let rec = |reason: Option<String>| FileRecord {
            path: "/a".into(),
            size: 1,
            mtime_ns: 1,
            hash: None,
            parser: None,
            status: FileStatus::Failed,
            reason,
            documents: 0,
            chunks: 0,
            indexed_at: 0,
        };
        assert!(is_quarantined(&rec(Some(
            FileReason::Quarantined { deaths: 2 }.to_string()
        ))));
        assert!(!is_quarantined(&rec(Some("could not read: gone".into()))));
        assert!(!is_quarantined(&rec(None)));
    }
}
