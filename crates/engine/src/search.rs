//! Search: the user's query → filters parsed out → BM25 and vector candidates → fusion →
//! de-duplication and merging → snippets.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use docent_core::{EmbedKind, Embedder, Hit, SearchFilter};
use docent_retrieve::{Fusion, Mode, Snippet};
use docent_store::{Index, OpenMode};

use crate::{Context, EngineError, Result};

/// One search, as asked.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub query: String,
    pub k: usize,
    pub mode: Mode,
}

/// A hit with its snippet.
#[derive(Clone, Debug)]
pub struct SearchHit {
    pub hit: Hit,
    pub snippet: Snippet,
}

/// What a search found.
#[derive(Clone, Debug)]
pub struct SearchResult {
    pub hits: Vec<SearchHit>,
    pub mode: String,
    /// Problems with the query (an invalid filter, a query cut to length) that did not stop it.
    pub warnings: Vec<String>,
    pub took_ms: u64,
}

/// What [`Searcher::retrieve`] found.
#[derive(Clone, Debug)]
pub struct Retrieval {
    /// The query's words, filters removed.
    pub text: String,
    pub filter: SearchFilter,
    /// Best first.
    pub hits: Vec<Hit>,
    /// Per hit: its cosine similarity to the query, when the vector side found it.
    pub similarity: Vec<Option<f32>>,
    /// The best cosine similarity of any vector candidate.
    pub best_similarity: Option<f32>,
    /// The best cosine similarity of any sentence of the hits.
    pub best_sentence_similarity: Option<f32>,
    pub warnings: Vec<String>,
    pub took_ms: u64,
}

impl Retrieval {
    /// How relevant the best evidence is: the best cosine similarity of a chunk or of a
    /// sentence of the hits, whichever is higher.
    pub fn relevance(&self) -> Option<f32> {
        match (self.best_similarity, self.best_sentence_similarity) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A searcher holds the index open (read-only) and, for vector and hybrid search, the embedding
/// model, so that many queries pay the loading cost once.
pub struct Searcher {
    index: Index,
    embedder: Option<Arc<dyn Embedder>>,
    fusion: Fusion,
    candidates: usize,
    snippet_chars: usize,
}

impl Searcher {
    /// Opens the index of `ctx`'s data directory for searching in `mode`.
    pub async fn open(ctx: &Context, mode: Mode) -> Result<Self> {
        let data_dir = &ctx.paths.data_dir;
        let stored = docent_store::Index::stored_identity(data_dir)?.ok_or_else(|| {
            EngineError::Store(docent_store::StoreError::NoIndex {
                path: data_dir.join("index"),
            })
        })?;
        let (index, embedder) = if mode == Mode::Bm25 {
            (
                Index::open(data_dir, &stored, OpenMode::ReadOnly).await?,
                None,
            )
        } else {
            let embedder = ctx.embedder()?;
            let index = Index::open(data_dir, embedder.identity(), OpenMode::ReadOnly).await?;
            (index, Some(embedder))
        };
        let s = &ctx.settings.search;
        let fusion = match s.fusion.as_str() {
            "score" => Fusion::Score { alpha: s.alpha },
            _ => Fusion::Rrf { k: s.rrf_k },
        };
        Ok(Searcher {
            index,
            embedder,
            fusion,
            candidates: s.candidates,
            snippet_chars: 240,
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn set_fusion(&mut self, fusion: Fusion) {
        self.fusion = fusion;
    }

    pub fn set_candidates(&mut self, n: usize) {
        self.candidates = n.max(1);
    }

    /// Runs one query. `cwd` resolves a relative `path:` filter.
    pub async fn search(&self, req: &SearchRequest, cwd: &Path) -> Result<SearchResult> {
        let start = Instant::now();
        let parsed = docent_retrieve::parse_query(&req.query);
        let mut filter = parsed.filter.clone();
        absolutise_path_filter(&mut filter, cwd);
        let mut warnings = parsed.warnings.clone();
        let k = req.k.max(1);
        let hits = if parsed.text.trim().is_empty() {
            if filter.is_empty() {
                warnings.push("empty query: type some words to search for".into());
            } else {
                warnings.push("only filters given: add some words to search for".into());
            }
            Vec::new()
        } else {
            let n = self.candidates.max(k * 2);
            let (bm25, vector) = match req.mode {
                Mode::Bm25 => (
                    self.index.keyword_search(&parsed.text, n, &filter)?,
                    Vec::new(),
                ),
                Mode::Vector => (Vec::new(), self.vector(&parsed.text, n, &filter).await?),
                Mode::Hybrid => (
                    self.index.keyword_search(&parsed.text, n, &filter)?,
                    self.vector(&parsed.text, n, &filter).await?,
                ),
            };
            let fused = match req.mode {
                Mode::Bm25 => bm25,
                Mode::Vector => vector,
                Mode::Hybrid => docent_retrieve::fuse(&bm25, &vector, &self.fusion, n),
            };
            docent_retrieve::postprocess(fused, k)
        };
        let hits = hits
            .into_iter()
            .map(|hit| SearchHit {
                snippet: docent_retrieve::snippet(&hit.text, &parsed.terms, self.snippet_chars),
                hit,
            })
            .collect();
        Ok(SearchResult {
            hits,
            mode: req.mode.to_string(),
            warnings,
            took_ms: start.elapsed().as_millis() as u64,
        })
    }

    /// The embedding model, when the searcher was opened for vector or hybrid search.
    pub fn embedder(&self) -> Option<&dyn Embedder> {
        self.embedder.as_deref()
    }

    /// Hybrid retrieval for answering: the fused, de-duplicated (not merged) `k` best chunks of
    /// `query` (filters in it applied), with each one's cosine similarity to the query, the best
    /// cosine among all vector candidates and the best cosine of any sentence of the hits:
    /// absolute measures of relevance that fused scores are not.
    pub async fn retrieve(&self, query: &str, k: usize, cwd: &Path) -> Result<Retrieval> {
        let start = Instant::now();
        let parsed = docent_retrieve::parse_query(query);
        let mut filter = parsed.filter.clone();
        absolutise_path_filter(&mut filter, cwd);
        let k = k.max(1);
        let mut out = Retrieval {
            text: parsed.text.clone(),
            filter,
            hits: Vec::new(),
            similarity: Vec::new(),
            best_similarity: None,
            best_sentence_similarity: None,
            warnings: parsed.warnings.clone(),
            took_ms: 0,
        };
        if parsed.text.trim().is_empty() {
            out.took_ms = start.elapsed().as_millis() as u64;
            return Ok(out);
        }
        let n = self.candidates.max(k * 2);
        let bm25 = self.index.keyword_search(&parsed.text, n, &out.filter)?;
        let Some(embedder) = &self.embedder else {
            return Err(EngineError::Invalid(
                "bug: retrieval for answers needs the embedding model".into(),
            ));
        };
        let qv = embedder
            .embed(&[&parsed.text], EmbedKind::Query)
            .map_err(EngineError::Embedding)?
            .pop()
            .ok_or_else(|| EngineError::Embedding(docent_core::SeamError::new("no vector")))?;
        let vector = self.index.vector_search(&qv, n, &out.filter).await?;
        out.best_similarity = vector.iter().map(|h| h.score).reduce(f32::max);
        let fused = docent_retrieve::fuse(&bm25, &vector, &self.fusion, n);
        let mut hits = docent_retrieve::dedupe(fused);
        hits.truncate(k);
        out.similarity = hits
            .iter()
            .map(|h| {
                vector
                    .iter()
                    .find(|v| v.chunk_id == h.chunk_id)
                    .map(|v| v.score)
            })
            .collect();
        // Sentence by sentence: a long chunk dilutes its vector, while the one sentence that
        // answers a question stays close to it.
        let mut sentences: Vec<&str> = Vec::new();
        for h in &hits {
            for r in docent_retrieve::cite::split_sentences(&h.text, false) {
                sentences.push(&h.text[r]);
            }
        }
        if !sentences.is_empty() {
            let vs = embedder
                .embed(&sentences, EmbedKind::Document)
                .map_err(EngineError::Embedding)?;
            out.best_sentence_similarity = vs
                .iter()
                .map(|v| docent_retrieve::cite::cosine(&qv, v))
                .reduce(f32::max);
        }
        out.hits = hits;
        out.took_ms = start.elapsed().as_millis() as u64;
        Ok(out)
    }

    /// Raw candidates of one retriever, before post-processing (for evaluation).
    pub async fn candidates(&self, text: &str, n: usize, mode: Mode) -> Result<Vec<Hit>> {
        let filter = SearchFilter::default();
        Ok(match mode {
            Mode::Bm25 => self.index.keyword_search(text, n, &filter)?,
            Mode::Vector => self.vector(text, n, &filter).await?,
            Mode::Hybrid => {
                let bm25 = self.index.keyword_search(text, n, &filter)?;
                let vector = self.vector(text, n, &filter).await?;
                docent_retrieve::fuse(&bm25, &vector, &self.fusion, n)
            }
        })
    }

    async fn vector(&self, text: &str, n: usize, filter: &SearchFilter) -> Result<Vec<Hit>> {
        let Some(embedder) = &self.embedder else {
            return Ok(Vec::new());
        };
        let v = embedder
            .embed(&[text], EmbedKind::Query)
            .map_err(EngineError::Embedding)?
            .pop()
            .ok_or_else(|| EngineError::Embedding(docent_core::SeamError::new("no vector")))?;
        Ok(self.index.vector_search(&v, n, filter).await?)
    }
}

/// One-shot search (opens the index, searches, closes).
pub async fn search(ctx: &Context, req: &SearchRequest) -> Result<SearchResult> {
    let searcher = Searcher::open(ctx, req.mode).await?;
    let cwd = std::env::current_dir().unwrap_or_default();
    searcher.search(req, &cwd).await
}

/// Parses a mode name from settings or flags.
pub fn parse_mode(s: &str) -> Result<Mode> {
    Mode::from_str(s).map_err(|_| {
        EngineError::Invalid(format!(
            "unknown search mode {s:?}; expected hybrid, bm25 or vector"
        ))
    })
}

/// `path:docs/` means the folder `docs/` under the current directory, as the index stores
/// absolute paths.
fn absolutise_path_filter(filter: &mut SearchFilter, cwd: &Path) {
    if let Some(p) = &filter.path_prefix {
        let path = Path::new(p);
        if path.is_relative() {
            let abs = cwd.join(path);
            let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
            let mut s = abs.to_string_lossy().into_owned();
            if p.ends_with('/') && !s.ends_with('/') {
                s.push('/');
            }
            filter.path_prefix = Some(s);
        }
    }
}
