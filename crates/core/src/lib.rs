//! # docent-core
//!
//! The vocabulary every other docent crate speaks: identifiers ([`DocId`], [`ChunkId`],
//! [`ContentHash`]), the parsed [`Document`] with its [`Block`]s, the located [`Chunk`] with its
//! [`Span`], the [`Answer`] to a question with its [`Source`]s and [`Citation`]s, and the narrow
//! traits at the seams between pipeline stages ([`TokenCounter`], [`Embedder`], [`Generator`],
//! and [`ModelSource`], where an operation gets them).
//!
//! It owns no I/O and no heavy dependency: parsing, chunking, embedding and storage live in
//! their own crates and meet only through these types. It refuses anything that would let one
//! stage depend on another's implementation.
//!
//! Privacy: the `Debug` output of types that carry document text prints lengths, never the text.

mod answer;
pub mod date;
mod doc;
mod generate;
mod id;
mod seam;
pub mod text;

pub use answer::{Answer, AnswerSentence, Citation, Source};
pub use doc::{
    Block, BlockKind, Chunk, DocKind, Document, EmailMeta, Hit, LineRange, META_OCR_PAGES,
    SearchFilter, Span, embedding_text,
};
pub use generate::{ChatMessage, GenerationStats, Generator, Role, SamplingParams, StopReason};
pub use id::{ChunkId, ContentHash, DocId};
pub use seam::{
    EmbedKind, Embedder, EmbedderIdentity, ModelSource, SeamError, TokenCounter, WhitespaceCounter,
};
