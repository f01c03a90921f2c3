//! An answer to a question about the user's documents, with the sources it was given and the
//! citations it made, as the ask pipeline returns it and the exporters render it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::doc::{DocKind, LineRange};
use crate::generate::StopReason;
use crate::id::ChunkId;

/// One numbered source the model was given (`[n]` in the prompt).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The number the model cites it by, from 1.
    pub n: usize,
    pub chunk_id: ChunkId,
    /// The file (absolute, as indexed).
    pub path: String,
    /// Locator inside the file (`message 3`, `message 1/attachment 1 invoice.pdf`).
    pub part: Option<String>,
    pub kind: DocKind,
    pub page: Option<u32>,
    pub lines: LineRange,
    pub heading: Option<String>,
    pub title: Option<String>,
    /// Email subject, sender and date (RFC 3339), when the source is (part of) a message.
    pub subject: Option<String>,
    pub from: Option<String>,
    pub date: Option<String>,
    /// The chunk's text, exactly as stored (quotes are substrings of it).
    pub text: String,
    /// True when only the start of the text fitted the prompt.
    pub truncated: bool,
    /// Cosine similarity of the query and the chunk (absolute relevance), when known.
    pub similarity: Option<f32>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("n", &self.n)
            .field("chunk_id", &self.chunk_id)
            .field("kind", &self.kind)
            .field("page", &self.page)
            .field("lines", &self.lines)
            .field("text_len", &self.text.len())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

/// One citation `[n]` of one sentence of the answer, checked against source `n`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The source number (see [`Answer::sources`]).
    pub n: usize,
    /// Index of the cited sentence in [`Answer::sentences`].
    pub sentence: usize,
    pub chunk_id: ChunkId,
    pub path: String,
    pub part: Option<String>,
    pub page: Option<u32>,
    pub lines: LineRange,
    /// The passage of the source the sentence rests on: a verbatim substring of the source's
    /// text (its sentence or sentences that best match the cited sentence).
    pub quote: String,
    /// Byte range of `quote` in the source's text.
    pub quote_bytes: std::ops::Range<usize>,
    /// Share of the sentence's content words (stemmed) found in the quote, 0 to 1.
    pub lexical: f32,
    /// Cosine similarity of the sentence and the quote in the embedding model, when measured.
    pub semantic: Option<f32>,
    /// How well the source supports the sentence, 0 to 1 (lexical and semantic combined).
    pub support: f32,
    /// True when `support` is below the configured threshold.
    pub weak: bool,
}

impl fmt::Debug for Citation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Citation")
            .field("n", &self.n)
            .field("sentence", &self.sentence)
            .field("chunk_id", &self.chunk_id)
            .field("quote_bytes", &self.quote_bytes)
            .field("support", &self.support)
            .field("weak", &self.weak)
            .finish_non_exhaustive()
    }
}

/// A sentence of the answer (byte range into [`Answer::text`]) and whether it is weakly
/// supported by the sources it cites.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerSentence {
    pub bytes: std::ops::Range<usize>,
    /// Source numbers the sentence cites (after invalid ones were removed).
    pub cites: Vec<usize>,
    /// The best support among its citations (`None` when it cites nothing).
    pub support: Option<f32>,
    pub weak: bool,
}

/// What the ask pipeline produced for one question.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    /// The query retrieval ran with (the question itself, or a follow-up made standalone).
    pub query: String,
    /// The answer text, citations to sources that were not given removed.
    pub text: String,
    /// True when the documents held nothing relevant enough and no model was asked.
    pub refused: bool,
    pub sentences: Vec<AnswerSentence>,
    pub citations: Vec<Citation>,
    /// Numbers cited that name no source, removed from `text`.
    pub removed_citations: Vec<usize>,
    /// The sources the model was given, numbered from 1.
    pub sources: Vec<Source>,
    /// The model that answered (empty when refused).
    pub model: String,
    /// Which index answered: its format version and embedding model.
    pub index: String,
    /// The best cosine similarity between the query and any candidate chunk.
    pub relevance: Option<f32>,
    pub retrieval_ms: u64,
    pub ttft_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub prompt_tokens: Option<usize>,
    pub generated_tokens: Option<usize>,
    pub stop: Option<StopReason>,
    /// Problems that did not stop the answer (an ignored filter, a source cut to fit).
    pub warnings: Vec<String>,
}

impl Answer {
    /// The sentences flagged as weakly supported.
    pub fn weak_sentences(&self) -> impl Iterator<Item = &AnswerSentence> {
        self.sentences.iter().filter(|s| s.weak)
    }

    /// Source `n` (numbered from 1).
    pub fn source(&self, n: usize) -> Option<&Source> {
        self.sources.iter().find(|s| s.n == n)
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("question_len", &self.question.len())
            .field("text_len", &self.text.len())
            .field("refused", &self.refused)
            .field("citations", &self.citations)
            .field("removed_citations", &self.removed_citations)
            .field("sources", &self.sources.len())
            .field("model", &self.model)
            .field("retrieval_ms", &self.retrieval_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_text() {
        let a = Answer {
            question: "secret question".into(),
            query: "secret question".into(),
            text: "secret answer".into(),
            refused: false,
            sentences: vec![],
            citations: vec![Citation {
                n: 1,
                sentence: 0,
                chunk_id: ChunkId("c".into()),
                path: "/p".into(),
                part: None,
                page: None,
                lines: LineRange::new(1, 1),
                quote: "secret quote".into(),
                quote_bytes: 0..12,
                lexical: 1.0,
                semantic: None,
                support: 1.0,
                weak: false,
            }],
            removed_citations: vec![],
            sources: vec![],
            model: "m".into(),
            index: "i".into(),
            relevance: None,
            retrieval_ms: 0,
            ttft_ms: None,
            tokens_per_s: None,
            prompt_tokens: None,
            generated_tokens: None,
            stop: None,
            warnings: vec![],
        };
        let d = format!("{a:?}");
        assert!(!d.contains("secret"), "{d}");
    }
}
