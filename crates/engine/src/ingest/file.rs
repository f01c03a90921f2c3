//! One file, as a parse worker handles it: size check and format detection (once each), read,
//! hash (a move or an untouched copy is recognised here), parse, chunk. Never panics on any
//! input; every problem becomes an outcome.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use docent_core::{ContentHash, TokenCounter};
use docent_parse::{Format, Outcome, ParseOptions, SkipReason};
use docent_store::{ChunkRecord, FileRecord, FileStatus};

use super::{FileOutcome, FileReason, RecordedReason, path_key};
use crate::records::chunk_record;
use crate::walk::Found;

/// Result of working on one file, sent from a worker to the writer.
pub(super) struct Done {
    pub found: Found,
    pub hash: Option<String>,
    pub bytes_read: u64,
    pub outcome: FileOutcome,
    /// Chunk records (without vectors) of an indexed file.
    pub records: Vec<ChunkRecord>,
}

/// Same size and mtime as recorded, and not a failure worth retrying (an unreadable file may
/// have been made readable without its mtime changing).
pub(super) fn is_unchanged(rec: &FileRecord, found: &Found) -> bool {
    rec.size == found.size
        && rec.mtime_ns == found.mtime_ns
        && !(rec.status == FileStatus::Failed
            && rec
                .reason
                .as_deref()
                .is_some_and(|r| RecordedReason::of(r) == RecordedReason::Unreadable))
}

/// Reads, hashes, parses and chunks one file. `known` maps content hashes to files already
/// indexed (for recognising moves and copies).
pub(super) fn process(
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
        done.outcome = FileOutcome::not_indexed(FileReason::Skipped(SkipReason::TooLarge {
            size: found.size,
            limit: parse_opts.max_file_bytes,
        }));
        return done;
    }
    // Decide from the first bytes whether the file is worth reading at all.
    let format = match read_head(path) {
        Ok(head) => docent_parse::detect(path, &head),
        Err(e) => {
            done.outcome = FileOutcome::not_indexed(FileReason::from_io(&e));
            return done;
        }
    };
    let Some(format) = format else {
        done.outcome = FileOutcome::not_indexed(FileReason::Skipped(SkipReason::Unsupported));
        return done;
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            done.outcome = FileOutcome::not_indexed(FileReason::from_io(&e));
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
    match parse_and_chunk(path, &key, &bytes, format, parse_opts, chunk_cfg, counter) {
        Ok((outcome, records)) => {
            done.outcome = outcome;
            done.records = records;
        }
        Err(reason) => done.outcome = FileOutcome::not_indexed(reason),
    }
    done
}

/// Parses the bytes of a file already checked (size) and detected (`format`), then chunks its
/// documents.
fn parse_and_chunk(
    path: &Path,
    key: &str,
    bytes: &[u8],
    format: Format,
    parse_opts: &ParseOptions,
    chunk_cfg: &docent_chunk::ChunkConfig,
    counter: &dyn TokenCounter,
) -> Result<(FileOutcome, Vec<ChunkRecord>), FileReason> {
    match docent_parse::parse_detected(path, bytes, format, parse_opts) {
        Ok(Outcome::Parsed {
            format,
            documents,
            warnings,
        }) => {
            let mut records = Vec::new();
            for doc in &documents {
                let chunks = docent_chunk::chunk_document(doc, counter, chunk_cfg)
                    .map_err(|e| FileReason::Chunking(e.to_string()))?;
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
        Ok(Outcome::Skipped { reason, .. }) => Err(FileReason::Skipped(reason)),
        Err(e) => Err(FileReason::Parser(e.reason())),
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(8192);
    f.by_ref().take(8192).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docent_core::WhitespaceCounter;

    fn found(path: &Path) -> Found {
        let meta = std::fs::metadata(path).unwrap();
        Found {
            path: path.to_path_buf(),
            size: meta.len(),
            mtime_ns: crate::walk::mtime_ns(&meta),
        }
    }

    fn run(path: &Path, known: &HashMap<String, FileRecord>, opts: &ParseOptions) -> Done {
        let cfg = docent_chunk::ChunkConfig {
            max_tokens: 64,
            overlap: 0.1,
        };
        process(&found(path), known, opts, &cfg, &WhitespaceCounter)
    }

    fn record(path: &str, hash: Option<String>, status: FileStatus, reason: &str) -> FileRecord {
        FileRecord {
            path: path.into(),
            size: 1,
            mtime_ns: 1,
            hash,
            parser: None,
            status,
            reason: Some(reason.to_string()).filter(|r| !r.is_empty()),
            documents: 1,
            chunks: 1,
            indexed_at: 0,
        }
    }

    #[test]
    fn a_note_is_parsed_and_chunked_into_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("roof.md");
        std::fs::write(&p, "# Roof\n\nThe membrane is replaced in March.\n").unwrap();
        let done = run(&p, &HashMap::new(), &ParseOptions::default());
        match &done.outcome {
            FileOutcome::Indexed { parser, chunks, .. } => {
                assert_eq!(parser, "markdown");
                assert_eq!(*chunks as usize, done.records.len());
            }
            other => panic!("{other:?}"),
        }
        assert!(done.records.iter().all(|r| r.vector.is_empty()));
        assert_eq!(done.bytes_read, std::fs::metadata(&p).unwrap().len());
    }

    #[test]
    fn too_large_and_unsupported_files_are_skipped_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.txt");
        std::fs::write(&big, "word ".repeat(100)).unwrap();
        let opts = ParseOptions {
            max_file_bytes: 10,
            ..ParseOptions::default()
        };
        let done = run(&big, &HashMap::new(), &opts);
        assert!(
            matches!(
                &done.outcome,
                FileOutcome::Skipped {
                    reason: FileReason::Skipped(SkipReason::TooLarge { .. })
                }
            ),
            "{:?}",
            done.outcome
        );
        assert_eq!(done.bytes_read, 0);

        let odd = dir.path().join("picture.xyz");
        std::fs::write(&odd, [0u8, 1, 2, 3, 0, 0, 7]).unwrap();
        let done = run(&odd, &HashMap::new(), &ParseOptions::default());
        assert_eq!(
            done.outcome,
            FileOutcome::Skipped {
                reason: FileReason::Skipped(SkipReason::Unsupported)
            }
        );
        assert_eq!(done.bytes_read, 0);
    }

    #[test]
    fn known_content_is_a_move_or_untouched_without_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.txt");
        std::fs::write(&p, "same words").unwrap();
        let hash = ContentHash::of(b"same words").0;
        let mut known = HashMap::new();
        known.insert(
            hash.clone(),
            record("/old.txt", Some(hash.clone()), FileStatus::Indexed, ""),
        );
        let done = run(&p, &known, &ParseOptions::default());
        assert_eq!(
            done.outcome,
            FileOutcome::Moved {
                from: "/old.txt".into()
            }
        );
        assert!(done.records.is_empty());

        known.insert(
            hash.clone(),
            record(&path_key(&p), Some(hash), FileStatus::Indexed, ""),
        );
        let done = run(&p, &known, &ParseOptions::default());
        assert_eq!(done.outcome, FileOutcome::Unchanged);
    }

    #[test]
    fn a_vanished_file_fails_as_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gone.txt");
        std::fs::write(&p, "x").unwrap();
        let f = found(&p);
        std::fs::remove_file(&p).unwrap();
        let cfg = docent_chunk::ChunkConfig {
            max_tokens: 64,
            overlap: 0.1,
        };
        let done = process(
            &f,
            &HashMap::new(),
            &ParseOptions::default(),
            &cfg,
            &WhitespaceCounter,
        );
        assert_eq!(
            done.outcome.to_owned(),
            FileOutcome::Failed {
                reason: FileReason::Unreadable(super::super::ReadProblem::Vanished)
            }
        );
    }

    #[test]
    fn only_unreadable_failures_are_retried_when_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "x").unwrap();
        let f = found(&p);
        let mut rec = record(
            &path_key(&p),
            None,
            FileStatus::Failed,
            "could not read: permission denied",
        );
        rec.size = f.size;
        rec.mtime_ns = f.mtime_ns;
        assert!(!is_unchanged(&rec, &f));
        rec.reason = Some("damaged PDF".into());
        assert!(is_unchanged(&rec, &f));
        rec.mtime_ns += 1;
        assert!(!is_unchanged(&rec, &f));
    }
}
