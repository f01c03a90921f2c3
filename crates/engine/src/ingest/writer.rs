//! The single writer of a run: takes the workers' results in batches, gives new chunks their
//! vectors (from the embedding cache where equal content was embedded before), writes them to
//! the index and then records the files in the manifest, in that order.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use docent_core::Embedder;
use docent_store::{ChunkRecord, FileRecord, FileStatus, Index, Manifest};

use super::file::Done;
use super::{FileOutcome, IngestSummary, SkippedFile, path_key};
use crate::Result;
use crate::records::moved_records;
use crate::vectors::{Reuse, embed_and_write};

/// The single writer: embeds what the cache lacks, writes batches to the index, then to the
/// manifest.
pub(super) struct Writer<'a> {
    pub manifest: &'a mut Manifest,
    pub index: &'a mut Index,
    pub embedder: Arc<dyn Embedder>,
    pub known: Arc<HashMap<String, FileRecord>>,
    pub seen: &'a HashSet<String>,
    pub summary: &'a mut IngestSummary,
    pub now: i64,
    /// Old paths of moved files, whose records go once the run is done.
    pub taken_over: Vec<String>,
}

impl Writer<'_> {
    pub(super) async fn flush(&mut self, batch: Vec<Done>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut replace: Vec<String> = Vec::new();
        let mut add: Vec<ChunkRecord> = Vec::new();
        let mut upserts: Vec<FileRecord> = Vec::new();
        for done in batch {
            self.summary.bytes_read += done.bytes_read;
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
                indexed_at: self.now,
            };
            match &done.outcome {
                FileOutcome::Indexed {
                    parser,
                    documents,
                    chunks,
                    warnings,
                } => {
                    self.summary.files_indexed += 1;
                    self.summary.chunks += u64::from(*chunks);
                    self.summary.chunks_indexed += u64::from(*chunks);
                    self.summary.documents += u64::from(*documents);
                    for w in warnings {
                        self.summary.warnings.push(SkippedFile {
                            path: key.clone(),
                            reason: w.clone(),
                            error: true,
                        });
                    }
                    rec.parser = Some(parser.clone());
                    rec.documents = *documents;
                    rec.chunks = *chunks;
                    replace.push(key.clone());
                    add.extend(done.records);
                }
                FileOutcome::Unchanged => {
                    // Touched but identical: keep the record, refresh size and mtime.
                    self.summary.files_unchanged += 1;
                    match self.manifest.get(&key)? {
                        Some(old) => {
                            self.summary.chunks += u64::from(old.chunks);
                            self.summary.documents += u64::from(old.documents);
                            rec = FileRecord {
                                size: done.found.size,
                                mtime_ns: done.found.mtime_ns,
                                ..old
                            };
                        }
                        None => continue,
                    }
                }
                FileOutcome::Moved { from } => {
                    let old = self.index.chunks_by_path(from).await?;
                    let Some(prev) = self.known.get(done.hash.as_deref().unwrap_or_default())
                    else {
                        continue;
                    };
                    self.summary.files_moved += 1;
                    self.summary.chunks += u64::from(prev.chunks);
                    self.summary.chunks_indexed += old.len() as u64;
                    self.summary.chunks_cached += old.len() as u64;
                    self.summary.documents += u64::from(prev.documents);
                    rec.parser = prev.parser.clone();
                    rec.documents = prev.documents;
                    rec.chunks = prev.chunks;
                    replace.push(key.clone());
                    add.extend(moved_records(old, &key));
                    if !self.seen.contains(from) && !Path::new(from).exists() {
                        self.taken_over.push(from.clone());
                    }
                }
                FileOutcome::Skipped { reason } | FileOutcome::Failed { reason } => {
                    let error = matches!(done.outcome, FileOutcome::Failed { .. });
                    rec.status = if error {
                        FileStatus::Failed
                    } else {
                        FileStatus::Skipped
                    };
                    rec.reason = Some(reason.to_string());
                    self.summary.files_skipped.push(SkippedFile {
                        path: key.clone(),
                        reason: reason.to_string(),
                        error,
                    });
                    // A file that was indexed before and now fails loses its old chunks.
                    replace.push(key.clone());
                }
            }
            upserts.push(rec);
        }
        let got = embed_and_write(self.index, &self.embedder, Reuse::Index, &replace, add).await?;
        self.summary.chunks_embedded += got.embedded;
        self.summary.chunks_cached += got.cached;
        self.manifest.apply(&upserts, &[])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::Found;
    use docent_core::{Block, BlockKind, DocId, DocKind, Document};
    use docent_store::OpenMode;

    fn done(path: &str, text: &str) -> Done {
        let doc = Document {
            id: DocId::for_source(path, None),
            path: path.into(),
            part: None,
            kind: DocKind::Note,
            parser: "text".into(),
            title: None,
            text: text.into(),
            blocks: vec![Block {
                kind: BlockKind::Text,
                range: 0..text.len(),
                first_line: 1,
                page: None,
                heading_path: Vec::new(),
            }],
            meta: Default::default(),
            email: None,
            parent: None,
            pages: None,
        };
        let cfg = docent_chunk::ChunkConfig {
            max_tokens: 64,
            overlap: 0.1,
        };
        let chunks =
            docent_chunk::chunk_document(&doc, &docent_core::WhitespaceCounter, &cfg).unwrap();
        let records: Vec<ChunkRecord> = chunks
            .iter()
            .map(|c| crate::records::chunk_record(path, &doc, c))
            .collect();
        Done {
            found: Found {
                path: path.into(),
                size: text.len() as u64,
                mtime_ns: 1,
            },
            hash: Some(docent_core::ContentHash::of(text.as_bytes()).0),
            bytes_read: text.len() as u64,
            outcome: FileOutcome::Indexed {
                parser: "text".into(),
                documents: 1,
                chunks: records.len() as u32,
                warnings: Vec::new(),
            },
            records,
        }
    }

    #[tokio::test]
    async fn a_batch_goes_to_the_index_then_the_manifest_and_equal_content_is_not_embedded_twice() {
        let dir = tempfile::tempdir().unwrap();
        let embedder: Arc<dyn Embedder> = Arc::new(docent_test_support::HashEmbedder::default());
        let mut manifest = Manifest::open(dir.path()).unwrap();
        let mut index = Index::open(dir.path(), embedder.identity(), OpenMode::ReadWrite)
            .await
            .unwrap();
        let seen = HashSet::new();
        let mut summary = IngestSummary::default();
        let mut w = Writer {
            manifest: &mut manifest,
            index: &mut index,
            embedder,
            known: Arc::default(),
            seen: &seen,
            summary: &mut summary,
            now: 7,
            taken_over: Vec::new(),
        };
        let failed = Done {
            outcome: FileOutcome::not_indexed(super::super::FileReason::Parser("damaged".into())),
            records: Vec::new(),
            ..done("/b.txt", "x")
        };
        w.flush(vec![done("/a.txt", "the roof membrane"), failed])
            .await
            .unwrap();
        assert_eq!((w.summary.chunks_embedded, w.summary.chunks_cached), (1, 0));
        // The same words in another file: the vector comes from the index.
        w.flush(vec![done("/c.txt", "the roof membrane")])
            .await
            .unwrap();
        assert_eq!((w.summary.chunks_embedded, w.summary.chunks_cached), (1, 1));
        assert_eq!(summary.files_indexed, 2);
        assert_eq!(summary.files_skipped.len(), 1);
        assert_eq!(summary.files_skipped[0].reason, "damaged");
        assert!(summary.files_skipped[0].error);

        let a = manifest.get("/a.txt").unwrap().unwrap();
        assert_eq!(
            (a.status, a.chunks, a.indexed_at),
            (FileStatus::Indexed, 1, 7)
        );
        let b = manifest.get("/b.txt").unwrap().unwrap();
        assert_eq!(b.status, FileStatus::Failed);
        assert_eq!(b.reason.as_deref(), Some("damaged"));
        let stored = index.chunks_by_path("/c.txt").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].vector.len(), 64);
    }
}
