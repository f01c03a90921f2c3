//! # docent-retrieve
//!
//! The logic of search that needs no index: what the user typed, how ranked lists become one,
//! what is shown, and how well it worked.
//!
//! - **Query syntax** ([`parse_query`]): free text plus filters (`kind:pdf`, `path:`, `from:`,
//!   `subject:`, `after:`, `before:`) into a [`ParsedQuery`] with a [`SearchFilter`](docent_core::SearchFilter), the words
//!   to highlight, and warnings for what was ignored. Never fails.
//! - **Fusion** ([`fuse`]): a keyword (BM25) list and a vector list, each best first, into one
//!   ranking by reciprocal rank or by normalised score ([`Fusion`]); [`Mode`] says which
//!   retrievers run.
//! - **Post-processing** ([`postprocess`]): near-duplicates dropped, neighbouring chunks of a
//!   document merged into one passage, the list cut to length.
//! - **Snippets** ([`snippet`]): a window of a hit's text around the query's words, with
//!   highlights, rendered for a terminal ([`render_ansi`]) or plain ([`render_plain`]).
//! - **Prompts** ([`prompt`]): numbered sources packed into a model's token budget
//!   ([`pack_prompt`]), never exceeding it; the condensing prompt for follow-up questions.
//! - **Citations** ([`cite`]): `[n]` marks parsed from an answer, invalid ones removed, each
//!   cited sentence scored against its source (lexical and semantic support) with a verbatim
//!   quote.
//! - **Evaluation** ([`eval`]): BEIR datasets ([`load_beir`]), nDCG@k, recall@k and MRR@k as
//!   BEIR reports them, their mean over queries ([`evaluate`]), and chunk-to-document ranking
//!   ([`rank_documents`]).
//!
//! It refuses I/O and indexes: the keyword and vector retrievers live in the store, the engine
//! runs them and hands their [`Hit`]s here. The one exception is the BEIR loader, which reads a
//! dataset folder for evaluation. Every function here is deterministic: equal inputs give equal
//! outputs, ties broken by chunk id or key.
//!
//! Privacy: `Debug` output of the types that carry query or document text prints lengths, never
//! the text.

pub mod cite;
pub mod eval;
mod fuse;
mod post;
pub mod prompt;
mod query;
mod snippet;
mod words;

use std::cmp::Ordering;

use docent_core::Hit;

pub use eval::{
    BeirDataset, BeirDoc, EvalError, EvalReport, QueryScores, evaluate, load_beir, mrr_at_k,
    ndcg_at_k, rank_documents, recall_at_k, score_query,
};
pub use fuse::{DEFAULT_RRF_K, DEFAULT_SCORE_ALPHA, Fusion, Mode, ParseChoiceError, fuse};
pub use post::{dedupe, postprocess};
pub use prompt::{PackedPrompt, PromptError, TokenBudget, pack_prompt};
pub use query::{MAX_QUERY_CHARS, ParsedQuery, parse_query};
pub use snippet::{Snippet, render_ansi, render_plain, snippet};

/// Best first: higher score, then smaller chunk id; a NaN score counts as the lowest.
fn best_first(a: &Hit, b: &Hit) -> Ordering {
    let key = |h: &Hit| {
        if h.score.is_nan() {
            f32::NEG_INFINITY
        } else {
            h.score
        }
    };
    key(b)
        .total_cmp(&key(a))
        .then_with(|| a.chunk_id.cmp(&b.chunk_id))
}

/// A hit on chunk `id` of document `doc`, its content hash derived from `text`.
#[cfg(test)]
fn test_hit(id: &str, doc: &str, ordinal: u32, score: f32, text: &str) -> Hit {
    use docent_core::{ChunkId, ContentHash, DocId, DocKind, LineRange};
    Hit {
        chunk_id: ChunkId(id.to_string()),
        doc_id: DocId(doc.to_string()),
        path: format!("/docs/{doc}.md"),
        part: None,
        kind: DocKind::Note,
        ordinal,
        text: text.to_string(),
        page: None,
        lines: LineRange::new(1, 1),
        bytes: 0..text.len(),
        heading: None,
        title: None,
        subject: None,
        from: None,
        date: None,
        thread_id: None,
        message_id: None,
        content_hash: ContentHash::of(text.as_bytes()),
        score,
    }
}
