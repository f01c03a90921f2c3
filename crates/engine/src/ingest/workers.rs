//! The parse workers: a bounded thread pool that reads, parses and chunks files and sends the
//! results to the writer, each file recorded in the crash journal while it is read.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use docent_core::TokenCounter;
use docent_store::FileRecord;
use tokio::sync::mpsc;

use super::IngestControl;
use super::file::{Done, process};
use super::journal::Journal;
use super::path_key;
use crate::walk::Found;
use crate::{Context, EngineError, Result};

/// Starts the workers on `to_read`; they stop early when `control` is cancelled. The returned
/// thread ends when every file is done (and then `tx` is dropped, which ends the writer's loop).
pub(super) fn spawn_workers(
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

#[cfg(test)]
mod tests {
    use super::*;
    use docent_config::{Paths, Settings};
    use docent_core::WhitespaceCounter;

    #[test]
    fn every_file_comes_back_once_and_the_journal_is_left_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut to_read = Vec::new();
        for i in 0..20 {
            let p = dir.path().join(format!("n{i}.txt"));
            std::fs::write(&p, format!("note number {i}")).unwrap();
            let meta = std::fs::metadata(&p).unwrap();
            to_read.push(Found {
                path: p,
                size: meta.len(),
                mtime_ns: crate::walk::mtime_ns(&meta),
            });
        }
        let mut ctx = Context::new(
            Paths {
                data_dir: dir.path().join("data"),
                models_dir: dir.path().join("models"),
            },
            Settings::default(),
        );
        ctx.settings.ingest.threads = 3;
        std::fs::create_dir_all(&ctx.paths.data_dir).unwrap();
        let journal = Arc::new(Journal::open(&ctx.paths.data_dir));
        let (tx, mut rx) = mpsc::channel(4);
        let workers = spawn_workers(
            &ctx,
            to_read,
            Arc::default(),
            Arc::new(WhitespaceCounter),
            IngestControl::default(),
            journal.clone(),
            tx,
        )
        .unwrap();
        let mut seen = Vec::new();
        while let Some(done) = rx.blocking_recv() {
            assert!(matches!(
                done.outcome,
                super::super::FileOutcome::Indexed { .. }
            ));
            seen.push(done.found.path);
        }
        workers.join().unwrap();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 20);
        assert!(
            Journal::open(&ctx.paths.data_dir)
                .after_restart(1)
                .is_empty()
        );
    }

    #[test]
    fn a_cancelled_run_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "words").unwrap();
        let ctx = Context::new(
            Paths {
                data_dir: dir.path().to_path_buf(),
                models_dir: dir.path().to_path_buf(),
            },
            Settings::default(),
        );
        let control = IngestControl::default();
        control.cancel();
        let (tx, mut rx) = mpsc::channel(4);
        let found = Found {
            path: p,
            size: 5,
            mtime_ns: 0,
        };
        let w = spawn_workers(
            &ctx,
            vec![found],
            Arc::default(),
            Arc::new(WhitespaceCounter),
            control,
            Arc::new(Journal::open(dir.path())),
            tx,
        )
        .unwrap();
        assert!(rx.blocking_recv().is_none());
        w.join().unwrap();
    }
}
