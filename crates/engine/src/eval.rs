//! `docent eval retrieval`: retrieval quality on a BEIR-format dataset, measured with the real
//! pipeline (chunker, embedder, LanceDB, tantivy, fusion) in a temporary index.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use docent_core::{Block, BlockKind, ContentHash, DocId, DocKind, Document};
use docent_retrieve::{EvalReport, Mode};
use docent_store::{ChunkRecord, Index, OpenMode};
use serde::Serialize;

use crate::records::chunk_record;
use crate::search::Searcher;
use crate::vectors::{Reuse, embed_and_write};
use crate::{Context, EngineError, Result};

/// The figures for one mode.
#[derive(Clone, Debug, Serialize)]
pub struct EvalResult {
    pub dataset: String,
    pub mode: String,
    pub fusion: Option<String>,
    pub queries: usize,
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
    pub index_s: f64,
    pub query_p50_ms: f64,
    pub query_p95_ms: f64,
    pub chunks: usize,
}

/// Progress of an evaluation.
#[derive(Debug)]
pub enum EvalEvent {
    Loaded { docs: usize, queries: usize },
    Indexed { docs: usize, total: usize },
    Evaluated { mode: String },
}

/// Indexes the dataset at `dir` (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) into a
/// temporary index and measures each of `modes` (with each of `fusions` for hybrid).
pub async fn eval_retrieval(
    ctx: &Context,
    dir: &Path,
    split: &str,
    modes: &[Mode],
    fusions: &[docent_retrieve::Fusion],
    on_event: &(dyn Fn(EvalEvent) + Send + Sync),
) -> Result<Vec<EvalResult>> {
    let dataset = docent_retrieve::load_beir(dir, split)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    on_event(EvalEvent::Loaded {
        docs: dataset.corpus.len(),
        queries: dataset.qrels.len(),
    });

    let tmp = tempfile::tempdir().map_err(|source| EngineError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let mut ectx = ctx.clone();
    ectx.paths.data_dir = tmp.path().to_path_buf();

    let counter = ectx.token_counter()?;
    let embedder = ectx.embedder()?;
    // BM25 alone needs no vectors: the chunks get zero vectors (never searched) and the
    // evaluation takes seconds instead of the embedding model's minutes.
    let needs_vectors = modes.iter().any(|m| *m != Mode::Bm25);
    let mut cache = VectorCache::open(&ctx.paths.data_dir, &name, embedder.identity())?;
    let chunk_cfg = ectx.chunk_config();
    let start = Instant::now();
    let mut chunks_total = 0usize;
    {
        let mut index = Index::open(
            &ectx.paths.data_dir,
            embedder.identity(),
            OpenMode::ReadWrite,
        )
        .await?;
        let total = dataset.corpus.len();
        for (i, batch) in dataset.corpus.chunks(256).enumerate() {
            let mut records: Vec<ChunkRecord> = Vec::new();
            for d in batch {
                let doc = beir_document(&d.id, &d.title, &d.text);
                let key = doc.path.to_string_lossy().into_owned();
                let chunks = docent_chunk::chunk_document(&doc, counter.as_ref(), &chunk_cfg)
                    .map_err(|source| EngineError::Chunk {
                        path: doc.path.clone(),
                        source,
                    })?;
                records.extend(chunks.iter().map(|c| chunk_record(&key, &doc, c)));
            }
            chunks_total += records.len();
            let reuse = if needs_vectors {
                Reuse::File(&mut cache)
            } else {
                Reuse::Zeros
            };
            embed_and_write(&mut index, &embedder, reuse, &[], records).await?;
            on_event(EvalEvent::Indexed {
                docs: ((i + 1) * 256).min(total),
                total,
            });
        }
        let threshold = if needs_vectors {
            ectx.settings.index.vector_index_threshold
        } else {
            usize::MAX
        };
        index.optimize(threshold).await?;
    }
    let index_s = start.elapsed().as_secs_f64();

    let mut results = Vec::new();
    let mut runs: Vec<(Mode, Option<docent_retrieve::Fusion>)> = Vec::new();
    for m in modes {
        if *m == Mode::Hybrid {
            for f in fusions {
                runs.push((*m, Some(*f)));
            }
        } else {
            runs.push((*m, None));
        }
    }
    let open_mode = if needs_vectors {
        Mode::Hybrid
    } else {
        Mode::Bm25
    };
    let mut searcher = Searcher::open(&ectx, open_mode).await?;
    searcher.set_candidates(100);
    let mut qids: Vec<&String> = dataset.qrels.keys().collect();
    qids.sort();
    for (mode, fusion) in runs {
        if let Some(f) = &fusion {
            searcher.set_fusion(*f);
        }
        let mut ranked: HashMap<String, Vec<String>> = HashMap::new();
        let mut times = Vec::with_capacity(qids.len());
        for qid in &qids {
            let Some(text) = dataset.queries.get(*qid) else {
                continue;
            };
            let t = Instant::now();
            let hits = searcher.candidates(text, 200, mode).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let scored: Vec<(String, f32)> = hits
                .iter()
                .map(|h| (beir_id(&h.path).to_string(), h.score))
                .collect();
            ranked.insert(
                (*qid).clone(),
                docent_retrieve::rank_documents(&scored, 100),
            );
        }
        let report: EvalReport = docent_retrieve::evaluate(&dataset.qrels, &ranked);
        times.sort_by(f64::total_cmp);
        results.push(EvalResult {
            dataset: name.clone(),
            mode: mode.to_string(),
            fusion: fusion.map(|f| f.to_string()),
            queries: report.queries,
            ndcg_at_10: report.ndcg_at_10,
            recall_at_100: report.recall_at_100,
            mrr_at_10: report.mrr_at_10,
            index_s,
            query_p50_ms: percentile(&times, 0.50),
            query_p95_ms: percentile(&times, 0.95),
            chunks: chunks_total,
        });
        on_event(EvalEvent::Evaluated {
            mode: mode.to_string(),
        });
    }
    Ok(results)
}

/// Document vectors of earlier evaluations, so that re-running one (to compare fusions or BM25
/// settings) does not embed the corpus again: `<data dir>/cache/eval/<dataset>-<model>-<checksum>.vec`,
/// an append-only file of records (BLAKE3 of the embedded text, then `dim` little-endian f32).
/// A torn last record (a run killed mid-write) is ignored. Vectors are a pure function of the
/// text and the model, so cached and fresh runs report the same figures. Keys are the chunks'
/// content hashes, which are BLAKE3 of the embedded text.
pub(crate) struct VectorCache {
    dim: usize,
    path: std::path::PathBuf,
    map: HashMap<[u8; 32], Vec<f32>>,
    file: Option<std::fs::File>,
}

impl VectorCache {
    fn open(data_dir: &Path, dataset: &str, id: &docent_core::EmbedderIdentity) -> Result<Self> {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let sum: String = id.checksum.chars().rev().take(16).collect();
        let dir = data_dir.join("cache").join("eval");
        let path = dir.join(format!(
            "{}-{}-{}.vec",
            safe(dataset),
            safe(&id.model),
            safe(&sum)
        ));
        let io = |source| EngineError::Io {
            path: path.clone(),
            source,
        };
        let mut map = HashMap::new();
        let record = 32 + 4 * id.dim;
        match std::fs::read(&path) {
            Ok(bytes) => {
                for r in bytes.chunks_exact(record) {
                    let mut key = [0u8; 32];
                    key.copy_from_slice(&r[..32]);
                    let v = r[32..]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    map.insert(key, v);
                }
                if bytes.len() % record != 0 {
                    // Drop the torn tail so appends stay aligned.
                    let keep = (bytes.len() / record * record) as u64;
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io)?;
                    f.set_len(keep).map_err(io)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        std::fs::create_dir_all(&dir).map_err(|source| EngineError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(VectorCache {
            dim: id.dim,
            path,
            map,
            file: None,
        })
    }

    pub(crate) fn get(&self, hash: &ContentHash) -> Option<&[f32]> {
        self.map.get(&key(hash)?).map(Vec::as_slice)
    }

    pub(crate) fn extend(&mut self, vectors: &[(ContentHash, Vec<f32>)]) -> Result<()> {
        use std::io::Write;
        let path = self.path.clone();
        let io = |source| EngineError::Io {
            path: path.clone(),
            source,
        };
        if self.file.is_none() {
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(io)?,
            );
        }
        let mut buf = Vec::with_capacity(vectors.len() * (32 + 4 * self.dim));
        for (hash, v) in vectors {
            let Some(key) = key(hash) else {
                continue;
            };
            if v.len() != self.dim {
                continue;
            }
            buf.extend_from_slice(&key);
            for x in v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            self.map.insert(key, v.clone());
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(&buf).map_err(io)?;
        }
        Ok(())
    }
}

/// The 32 bytes of a content hash (BLAKE3, kept as hex).
fn key(hash: &ContentHash) -> Option<[u8; 32]> {
    blake3::Hash::from_hex(hash.as_str())
        .ok()
        .map(|h| *h.as_bytes())
}

const BEIR_PREFIX: &str = "/beir/";

/// A corpus entry as a one-block note whose title is its context.
fn beir_document(id: &str, title: &str, text: &str) -> Document {
    let path = format!("{BEIR_PREFIX}{id}");
    let text = docent_core::text::sanitize(text);
    let blocks = if text.trim().is_empty() {
        Vec::new()
    } else {
        vec![Block {
            kind: BlockKind::Text,
            range: 0..text.len(),
            first_line: 1,
            page: None,
            heading_path: Vec::new(),
        }]
    };
    Document {
        id: DocId::for_source(&path, None),
        path: path.into(),
        part: None,
        kind: DocKind::Note,
        parser: "beir".into(),
        title: Some(title.to_string()).filter(|t| !t.trim().is_empty()),
        text,
        blocks,
        meta: Default::default(),
        email: None,
        parent: None,
        pages: None,
    }
}

fn beir_id(path: &str) -> &str {
    path.strip_prefix(BEIR_PREFIX).unwrap_or(path)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use docent_core::EmbedderIdentity;

    fn identity() -> EmbedderIdentity {
        EmbedderIdentity {
            model: "m".into(),
            checksum: "abc123".into(),
            dim: 3,
        }
    }

    fn h(text: &str) -> ContentHash {
        ContentHash::of(text.as_bytes())
    }

    #[test]
    fn vector_cache_survives_reopening_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut c = VectorCache::open(dir.path(), "set", &identity()).unwrap();
            assert!(c.get(&h("a")).is_none());
            c.extend(&[(h("a"), vec![1.0, 2.0, 3.0]), (h("b"), vec![4.0, 5.0, 6.0])])
                .unwrap();
            assert_eq!(c.get(&h("b")), Some(&[4.0, 5.0, 6.0][..]));
        }
        let file = std::fs::read_dir(dir.path().join("cache/eval"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        // A run killed mid-write leaves half a record behind.
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.extend_from_slice(&[7; 10]);
        std::fs::write(&file, &bytes).unwrap();

        let mut c = VectorCache::open(dir.path(), "set", &identity()).unwrap();
        assert_eq!(c.get(&h("a")), Some(&[1.0, 2.0, 3.0][..]));
        assert_eq!(c.get(&h("b")), Some(&[4.0, 5.0, 6.0][..]));
        c.extend(&[(h("c"), vec![7.0, 8.0, 9.0])]).unwrap();
        let c = VectorCache::open(dir.path(), "set", &identity()).unwrap();
        assert_eq!(c.get(&h("c")), Some(&[7.0, 8.0, 9.0][..]));
        assert_eq!(c.get(&h("a")), Some(&[1.0, 2.0, 3.0][..]));

        // Another model's vectors live in another file.
        let other = EmbedderIdentity {
            checksum: "def456".into(),
            ..identity()
        };
        assert!(
            VectorCache::open(dir.path(), "set", &other)
                .unwrap()
                .get(&h("a"))
                .is_none()
        );
    }
}
