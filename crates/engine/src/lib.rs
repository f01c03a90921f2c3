//! # docent-engine
//!
//! The only crate that knows every stage. It wires discovery ([`walk`]), parsing
//! (`docent-parse`), chunking (`docent-chunk`, measured with the embedding model's tokenizer),
//! embedding (`docent-embed`), storage (`docent-store`: manifest, LanceDB, tantivy) and retrieval
//! (`docent-retrieve`) into the pipelines behind the commands:
//!
//! - [`ingest`]: walk → read/parse/chunk on a bounded worker pool → embed with a
//!   content-addressed cache → write the index → record in the manifest, in that order, in small
//!   batches, so an interrupted run keeps what it finished and a crash leaves nothing
//!   inconsistent (the writer reconciles on start).
//! - [`search`] / [`Searcher`]: hybrid (BM25 + vector, fused), BM25-only or vector-only search
//!   with filters, de-duplication and snippets.
//! - [`Asker`]: answers with citations: a follow-up condensed into a standalone query, hybrid
//!   retrieval, an absolute relevance gate (no relevant chunk: "not found", and the model is not
//!   asked), sources packed into the model's token budget, the answer streamed as
//!   [`AskEvent`]s, citations cleaned and checked for support.
//! - [`eval_retrieval`]: retrieval quality on a BEIR dataset with the real pipeline.
//! - [`reindex`]: new vectors for every stored chunk while the old index serves, then a swap.
//! - [`models`]: the models directory (list, import, verify).
//! - [`inspect`]: one file, parsed and chunked, without touching the index.
//!
//! Async where storage is (LanceDB); model compute runs on blocking threads. It never builds a
//! runtime and never prints: progress goes to callbacks, presentation to the binary.

mod ask;
mod context;
pub mod discover;
mod error;
mod eval;
mod ingest;
mod inspect;
pub mod models;
mod records;
mod reindex;
mod search;
mod vectors;
pub mod walk;

pub use ask::{AskEvent, AskOptions, AskRequest, Asker, GeneratorLoader};
pub use context::Context;
pub use error::{EngineError, Result};
pub use eval::{EvalEvent, EvalResult, eval_retrieval};
pub use ingest::{
    FileOutcome, FileReason, IngestControl, IngestEvent, IngestSummary, Ingester,
    QUARANTINE_REASON, ReadProblem, RecordedReason, SkippedFile, ingest,
};
pub use inspect::{Inspection, inspect};
pub use reindex::{ReindexSummary, reindex};
pub use search::{Retrieval, SearchHit, SearchRequest, SearchResult, Searcher, parse_mode, search};
