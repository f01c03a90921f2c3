//! Documents as parsed, and chunks as located in them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::id::{ChunkId, ContentHash, DocId};

/// What kind of source a document came from. Users filter on it (`kind:pdf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    Pdf,
    Note,
    Email,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Pdf => "pdf",
            DocKind::Note => "note",
            DocKind::Email => "email",
        }
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Inclusive, 1-based line range in the source (for a PDF: in the page's text; for an email: in
/// the message body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineRange {
    pub start: u32,
    pub end: u32,
}

impl LineRange {
    pub fn new(start: u32, end: u32) -> Self {
        LineRange { start, end }
    }
}

/// The structural role of a block of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum BlockKind {
    /// A heading line; `level` 1 is the top.
    Heading { level: u8 },
    /// A paragraph, list, table, code block or any other run of body text.
    Text,
}

/// One structural block of a [`Document`]'s text.
///
/// Blocks are in text order, do not overlap, and together cover every non-whitespace character
/// of [`Document::text`]. A chunk never spans a change of `page` or of `heading_path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub kind: BlockKind,
    /// Byte range into [`Document::text`], on UTF-8 boundaries.
    pub range: Range<usize>,
    /// The source line of the block's first line. Lines inside the block are counted by the
    /// `\n` characters of its text, so a block's text keeps the source's line breaks.
    pub first_line: u32,
    /// 1-based page number, for paged formats.
    pub page: Option<u32>,
    /// Titles of the enclosing headings, outermost first (for a heading block: its parents and
    /// itself).
    pub heading_path: Vec<String>,
}

/// Header fields of an email message.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMeta {
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// RFC 3339, UTC.
    pub date: Option<String>,
    pub message_id: Option<String>,
    /// Message-id of the first message of the thread (first of References, else In-Reply-To,
    /// else the message's own id).
    pub thread_id: Option<String>,
    pub in_reply_to: Option<String>,
    /// Quoted reply blocks and the signature, stripped from the indexed body but kept so they can
    /// be shown.
    pub stripped: Option<String>,
    /// File names of the message's attachments (parsed ones become documents of their own).
    pub attachments: Vec<String>,
}

impl fmt::Debug for EmailMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailMeta")
            .field("message_id", &self.message_id)
            .field("thread_id", &self.thread_id)
            .field("to", &self.to.len())
            .field("cc", &self.cc.len())
            .field("attachments", &self.attachments.len())
            .finish_non_exhaustive()
    }
}

/// Key of [`Document::meta`] listing the pages whose text was recognised with OCR, as page
/// numbers joined by commas (`"1,3"`). A chunk is OCR text when its page is listed.
pub const META_OCR_PAGES: &str = "ocr_pages";

/// One parsed document: normalised text (sanitised of terminal control characters), its blocks
/// and its metadata.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocId,
    /// The file on disk, as indexed (absolute).
    pub path: PathBuf,
    /// Where in the file, when the file holds several documents: `message 3`,
    /// `message 3/attachment 1 report.pdf`.
    pub part: Option<String>,
    pub kind: DocKind,
    /// Name of the parser that produced it (`pdf`, `markdown`, `text`, `eml`, `mbox`, `maildir`).
    pub parser: String,
    pub title: Option<String>,
    pub text: String,
    pub blocks: Vec<Block>,
    /// Free-form metadata (Markdown front matter, PDF info dictionary), keys sorted.
    pub meta: BTreeMap<String, String>,
    pub email: Option<EmailMeta>,
    /// The document this one belongs to (an attachment's message).
    pub parent: Option<DocId>,
    /// Number of pages, for paged formats.
    pub pages: Option<u32>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("id", &self.id)
            .field("part", &self.part)
            .field("kind", &self.kind)
            .field("parser", &self.parser)
            .field("text_len", &self.text.len())
            .field("blocks", &self.blocks.len())
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

/// Where a chunk sits in its source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Byte range into the document's [`Document::text`]; `&doc.text[bytes]` is the chunk's
    /// text.
    pub bytes: Range<usize>,
    pub lines: LineRange,
    pub page: Option<u32>,
    pub heading_path: Vec<String>,
    pub message_id: Option<String>,
}

/// A token-budgeted piece of a document, the unit that is embedded, indexed and cited.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: ChunkId,
    pub doc: DocId,
    /// Position of the chunk in its document, from 0.
    pub ordinal: u32,
    pub text: String,
    /// Context carried with the chunk: heading path (`A > B`), email subject or document title.
    pub context: Option<String>,
    pub span: Span,
    /// Tokens of [`Chunk::embedding_text`] as the embedding model counts them (special tokens
    /// included).
    pub tokens: u32,
    /// BLAKE3 of `text`: equal chunks share embeddings.
    pub content_hash: ContentHash,
}

impl Chunk {
    /// The text handed to the embedding model: the context line, then the chunk's text.
    pub fn embedding_text(&self) -> String {
        embedding_text(self.context.as_deref(), &self.text)
    }
}

/// See [`Chunk::embedding_text`]; shared with the chunker so it budgets exactly what is embedded.
pub fn embedding_text(context: Option<&str>, text: &str) -> String {
    match context {
        Some(c) if !c.is_empty() => format!("{c}\n\n{text}"),
        _ => text.to_string(),
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("id", &self.id)
            .field("doc", &self.doc)
            .field("ordinal", &self.ordinal)
            .field("text_len", &self.text.len())
            .field("span", &self.span.bytes)
            .field("lines", &self.span.lines)
            .field("page", &self.span.page)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// A chunk found by a search, with what is needed to show and cite it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub chunk_id: ChunkId,
    pub doc_id: DocId,
    /// The file (absolute path, as indexed).
    pub path: String,
    /// Locator inside the file (`message 3`, `attachment 1 invoice.pdf`).
    pub part: Option<String>,
    pub kind: DocKind,
    pub ordinal: u32,
    pub text: String,
    pub page: Option<u32>,
    pub lines: LineRange,
    /// Byte range of the chunk in its document's text.
    pub bytes: Range<usize>,
    /// Heading path joined with ` > `.
    pub heading: Option<String>,
    pub title: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    /// RFC 3339 (emails: sent date).
    pub date: Option<String>,
    pub thread_id: Option<String>,
    pub message_id: Option<String>,
    pub content_hash: ContentHash,
    /// Score from the retriever that produced the hit (higher is better).
    pub score: f32,
}

impl fmt::Debug for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hit")
            .field("chunk_id", &self.chunk_id)
            .field("kind", &self.kind)
            .field("page", &self.page)
            .field("lines", &self.lines)
            .field("score", &self.score)
            .finish_non_exhaustive()
    }
}

/// Restrictions on a search, parsed out of the user's query (`kind:pdf`, `path:…`, `from:…`,
/// `subject:…`, `after:YYYY-MM-DD`, `before:YYYY-MM-DD`). Empty means no restriction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFilter {
    /// Any of these kinds (empty: all).
    pub kinds: Vec<DocKind>,
    /// Absolute path prefix of the file.
    pub path_prefix: Option<String>,
    /// Case-insensitive substring of the sender.
    pub from: Option<String>,
    /// Case-insensitive words of the subject (emails) or title.
    pub subject: Option<String>,
    /// Date on or after (`YYYY-MM-DD`, inclusive).
    pub after: Option<String>,
    /// Date before (`YYYY-MM-DD`, exclusive).
    pub before: Option<String>,
}

impl SearchFilter {
    pub fn is_empty(&self) -> bool {
        self == &SearchFilter::default()
    }
}
