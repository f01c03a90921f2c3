//! The one step that gives chunk records their vectors and stores them: embed what is not
//! cached (each distinct content once, on a blocking thread), then write to the index in the
//! store's order (old chunks of replaced paths out, new ones in). Ingest, `reindex` and
//! `eval retrieval` all go through it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use docent_core::{ContentHash, EmbedKind, Embedder, SeamError};
use docent_store::{ChunkRecord, Index};

use crate::eval::VectorCache;
use crate::{EngineError, Result};

/// Where vectors of content embedded before may be found.
pub(crate) enum Reuse<'a> {
    /// Nowhere: every record is embedded (a new model, as in `reindex`).
    Nothing,
    /// The index being written: equal content keeps its vector (ingest's embedding cache).
    Index,
    /// A cache file of earlier runs, which learns the new vectors (`eval retrieval`).
    File(&'a mut VectorCache),
    /// No vectors at all: zero vectors that are never searched (a BM25-only evaluation).
    Zeros,
}

/// How the vectors of one write were found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Embedded {
    /// Records whose vector the model computed (one per distinct content).
    pub embedded: u64,
    /// Records without a vector that got one from the index or the cache file.
    pub cached: u64,
}

/// Fills in the vector of every record of `add` that lacks one (every record with
/// [`Reuse::Nothing`]), then writes: chunks of `replace` leave the index and `add` arrives.
pub(crate) async fn embed_and_write(
    index: &mut Index,
    embedder: &Arc<dyn Embedder>,
    reuse: Reuse<'_>,
    replace: &[String],
    mut add: Vec<ChunkRecord>,
) -> Result<Embedded> {
    let counts = fill_vectors(index, embedder, reuse, &mut add).await?;
    index.write(replace, add).await?;
    Ok(counts)
}

async fn fill_vectors(
    index: &Index,
    embedder: &Arc<dyn Embedder>,
    reuse: Reuse<'_>,
    records: &mut [ChunkRecord],
) -> Result<Embedded> {
    if matches!(reuse, Reuse::Nothing) {
        records.iter_mut().for_each(|r| r.vector.clear());
    }
    if let Reuse::Zeros = reuse {
        let dim = embedder.identity().dim;
        for r in records.iter_mut().filter(|r| r.vector.is_empty()) {
            r.vector = vec![0.0; dim];
        }
        return Ok(Embedded::default());
    }
    let missing: Vec<ContentHash> = {
        let mut set: Vec<ContentHash> = records
            .iter()
            .filter(|r| r.vector.is_empty())
            .map(|r| r.content_hash.clone())
            .collect();
        set.sort();
        set.dedup();
        set
    };
    // Records that arrive with their vector (a moved file's) are not counted here.
    let lacking = records.iter().filter(|r| r.vector.is_empty()).count() as u64;
    if missing.is_empty() {
        return Ok(Embedded::default());
    }
    let mut vectors: HashMap<ContentHash, Vec<f32>> = match &reuse {
        Reuse::Index => index.vectors_for(&missing).await?,
        Reuse::File(cache) => missing
            .iter()
            .filter_map(|h| Some((h.clone(), cache.get(h)?.to_vec())))
            .collect(),
        Reuse::Nothing | Reuse::Zeros => HashMap::new(),
    };
    let mut to_embed: Vec<(ContentHash, String)> = Vec::new();
    let mut queued: HashSet<ContentHash> = HashSet::new();
    for r in records.iter() {
        if r.vector.is_empty()
            && !vectors.contains_key(&r.content_hash)
            && queued.insert(r.content_hash.clone())
        {
            to_embed.push((
                r.content_hash.clone(),
                docent_core::embedding_text(r.context.as_deref(), &r.text),
            ));
        }
    }
    if !to_embed.is_empty() {
        let texts: Vec<String> = to_embed.iter().map(|(_, t)| t.clone()).collect();
        let computed = embed_documents(embedder.clone(), texts).await?;
        if computed.len() != to_embed.len() {
            return Err(fewer_vectors());
        }
        let fresh: Vec<(ContentHash, Vec<f32>)> =
            to_embed.into_iter().map(|(h, _)| h).zip(computed).collect();
        if let Reuse::File(cache) = reuse {
            cache.extend(&fresh)?;
        }
        vectors.extend(fresh);
    }
    for r in records.iter_mut().filter(|r| r.vector.is_empty()) {
        match vectors.get(&r.content_hash) {
            Some(v) => r.vector = v.clone(),
            None => return Err(fewer_vectors()),
        }
    }
    let embedded = queued.len() as u64;
    Ok(Embedded {
        embedded,
        cached: lacking.saturating_sub(embedded),
    })
}

/// Document vectors from the model, computed on a blocking thread.
async fn embed_documents(embedder: Arc<dyn Embedder>, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        embedder.embed(&refs, EmbedKind::Document)
    })
    .await
    .map_err(|e| EngineError::Threads(e.to_string()))?
    .map_err(EngineError::Embedding)
}

fn fewer_vectors() -> EngineError {
    EngineError::Embedding(SeamError::new(
        "the embedder returned fewer vectors than texts",
    ))
}
