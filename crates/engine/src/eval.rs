//! `docent eval retrieval`: retrieval quality on a BEIR-format dataset, measured with the real
//! pipeline (chunker, embedder, LanceDB, tantivy, fusion) in a temporary index.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use docent_core::{Block, BlockKind, DocId, DocKind, Document, Embedder};
use docent_retrieve::{EvalReport, Mode};
use docent_store::{ChunkRecord, Index, OpenMode};
use serde::Serialize;

use crate::records::chunk_record;
use crate::search::Searcher;
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
                let chunks =
                    docent_chunk::chunk_document(&doc, &counter, &chunk_cfg).map_err(|source| {
                        EngineError::Chunk {
                            path: doc.path.clone(),
                            source,
                        }
                    })?;
                records.extend(chunks.iter().map(|c| chunk_record(&key, &doc, c)));
            }
            let texts: Vec<String> = records
                .iter()
                .map(|r| docent_core::embedding_text(r.context.as_deref(), &r.text))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = tokio::task::block_in_place(|| {
                embedder.embed(&refs, docent_core::EmbedKind::Document)
            })
            .map_err(EngineError::Embedding)?;
            for (r, v) in records.iter_mut().zip(vectors) {
                r.vector = v;
            }
            chunks_total += records.len();
            index.write(&[], records).await?;
            on_event(EvalEvent::Indexed {
                docs: ((i + 1) * 256).min(total),
                total,
            });
        }
        index
            .optimize(ectx.settings.index.vector_index_threshold)
            .await?;
    }
    let index_s = start.elapsed().as_secs_f64();

    let mut results = Vec::new();
    let mut runs: Vec<(Mode, Option<docent_retrieve::Fusion>)> = Vec::new();
    for m in modes {
        if *m == Mode::Hybrid {
            for f in fusions {
                runs.push((*m, Some(f.clone())));
            }
        } else {
            runs.push((*m, None));
        }
    }
    let mut searcher = Searcher::open(&ectx, Mode::Hybrid).await?;
    searcher.set_candidates(100);
    let mut qids: Vec<&String> = dataset.qrels.keys().collect();
    qids.sort();
    for (mode, fusion) in runs {
        if let Some(f) = &fusion {
            searcher.set_fusion(f.clone());
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
