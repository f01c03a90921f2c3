//! # docent-chunk
//!
//! Splits a [`Document`] into [`Chunk`]s that fit the embedding model's token budget.
//! (Implementation in progress.)

use docent_core::{Chunk, Document, TokenCounter};

/// Chunking settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkConfig {
    /// Most tokens in one chunk's embedding text (context + text, special tokens included).
    pub max_tokens: usize,
    /// Fraction of `max_tokens` that consecutive chunks of one section share.
    pub overlap: f32,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            max_tokens: 256,
            overlap: 0.15,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk budget of {max_tokens} tokens is too small (at least {min} needed)")]
    BudgetTooSmall { max_tokens: usize, min: usize },
}

pub fn chunk_document(
    doc: &Document,
    counter: &dyn TokenCounter,
    cfg: &ChunkConfig,
) -> Result<Vec<Chunk>, ChunkError> {
    let _ = (doc, counter, cfg);
    Ok(Vec::new())
}
