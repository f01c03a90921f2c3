//! # docent-chunk
//!
//! Splits a parsed [`Document`] into the [`Chunk`]s that are embedded, indexed and cited:
//! [`chunk_document`], configured by [`ChunkConfig`], failing with [`ChunkError`].
//!
//! What it guarantees for every chunk:
//!
//! - **Budget.** `counter.count(&chunk.embedding_text()) <= max_tokens` (context line and text,
//!   special tokens included), measured with the embedding model's own [`TokenCounter`];
//!   `chunk.tokens` is that count. A chunk also holds at most [`ChunkConfig::max_bytes`] bytes,
//!   so that text a tokenizer folds into one unknown token (a long hash, an unspaced script)
//!   still makes chunks of a sane size.
//! - **Structure.** A chunk never spans a change of page or of heading path: those, and every
//!   heading, start a new section. A heading's text opens its section's first chunk, so
//!   headings are searchable. Inside a section whole blocks are packed greedily; a block too
//!   big for one chunk is cut between sentences, a sentence between words, and a word longer
//!   than a chunk (a URL, a base64 blob) between word parts, graphemes or, as a last resort,
//!   characters. Nothing is cut mid-word otherwise.
//! - **Overlap.** Consecutive chunks of one section share about `overlap * max_tokens` tokens:
//!   the previous chunk's last whole sentences, else its last whole words, never more than
//!   that budget nor more than half the previous chunk.
//! - **Context.** `chunk.context` is the heading path (`A > B`), else an email's subject, else
//!   the document's title, on one line; a context that would take more than a third of the
//!   budget (in tokens or bytes) is cut at a word boundary.
//! - **Location.** `&doc.text[chunk.span.bytes] == chunk.text`: chunk text is a verbatim,
//!   whitespace-trimmed slice of the document. Lines, page, heading path and message id come
//!   from the blocks and the email header.
//! - **Identity.** [`ChunkId`]s derive from the document, the text and the number of earlier
//!   chunks with the same text, so re-chunking an unchanged document gives the same ids.
//!
//! It refuses I/O and models: it sees the tokenizer only through [`TokenCounter`], and it
//! never edits text. Each sentence is counted once and each finished chunk verified with one
//! more count, so chunking costs about two passes of the tokenizer over the text.

mod split;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use docent_core::{
    Block, BlockKind, Chunk, ChunkId, ContentHash, DocId, Document, LineRange, Span, TokenCounter,
    embedding_text,
};

use split::{Level, Unit};

/// The smallest `max_tokens` accepted.
pub const MIN_MAX_TOKENS: usize = 16;

/// The largest `overlap` accepted (half of every chunk repeated).
pub const MAX_OVERLAP: f32 = 0.5;

/// Bytes a chunk may hold per token of its budget (see [`ChunkConfig::max_bytes`]).
pub const MAX_BYTES_PER_TOKEN: usize = 32;

/// Chunking settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkConfig {
    /// Most tokens in one chunk's embedding text (context + text, special tokens included).
    pub max_tokens: usize,
    /// Fraction of `max_tokens` that consecutive chunks of one section share, in
    /// `0.0..=0.5`.
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

impl ChunkConfig {
    /// Most bytes of text in one chunk: `max_tokens * MAX_BYTES_PER_TOKEN`. Ordinary text
    /// never comes near it (about 4 to 6 bytes per token); it bounds text that a tokenizer
    /// counts as very few tokens.
    pub fn max_bytes(&self) -> usize {
        self.max_tokens.saturating_mul(MAX_BYTES_PER_TOKEN)
    }

    /// Checks the settings against a tokenizer whose fixed overhead is `overhead` tokens.
    /// An overlap outside `0.0..=0.5` is an error, not clamped.
    pub fn check(&self, overhead: usize) -> Result<()> {
        let min = MIN_MAX_TOKENS.max(overhead.saturating_mul(2).saturating_add(8));
        if self.max_tokens < min {
            return Err(ChunkError::BudgetTooSmall {
                max_tokens: self.max_tokens,
                min,
            });
        }
        if !(0.0..=MAX_OVERLAP).contains(&self.overlap) {
            return Err(ChunkError::OverlapOutOfRange {
                overlap: self.overlap,
            });
        }
        Ok(())
    }
}

/// Why a document could not be chunked.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// `max_tokens` leaves no room for text (a setting).
    #[error(
        "chunk budget of {max_tokens} tokens is too small (at least {min} needed)\n\
         hint: raise `max_tokens` in the [chunk] section of docent.toml"
    )]
    BudgetTooSmall { max_tokens: usize, min: usize },
    /// `overlap` is not a fraction in `0.0..=0.5` (a setting).
    #[error(
        "chunk overlap {overlap} is outside 0.0..=0.5 (it is a fraction of max_tokens)\n\
         hint: set `overlap` in the [chunk] section of docent.toml to a value such as 0.15"
    )]
    OverlapOutOfRange { overlap: f32 },
    /// A block's range does not fit the document's text (a bug in the parser that made it).
    #[error("document {doc}: block {index} is invalid: {reason} (a parser bug)")]
    InvalidBlock {
        doc: DocId,
        index: usize,
        reason: String,
    },
}

pub type Result<T, E = ChunkError> = std::result::Result<T, E>;

/// Splits `doc` into chunks of at most `cfg.max_tokens` tokens as `counter` counts them. See
/// the crate documentation for what every chunk guarantees. A document without any
/// non-whitespace text gives no chunks.
///
/// Blocks must be in text order, not overlap, and lie on character boundaries, else
/// [`ChunkError::InvalidBlock`]. A document with text but no blocks is chunked as one text
/// block starting at line 1.
pub fn chunk_document(
    doc: &Document,
    counter: &dyn TokenCounter,
    cfg: &ChunkConfig,
) -> Result<Vec<Chunk>> {
    let overhead = counter.overhead();
    cfg.check(overhead)?;
    let blocks = checked_blocks(doc)?;
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    let chunker = Chunker {
        text: &doc.text,
        counter,
        overhead,
        max_tokens: cfg.max_tokens,
        overlap_tokens: (cfg.overlap * cfg.max_tokens as f32).floor() as usize,
        overlap_bytes: (cfg.overlap * cfg.max_bytes() as f32).floor() as usize,
        max_bytes: cfg.max_bytes(),
    };
    Ok(chunker.run(doc, &blocks))
}

/// The document's blocks, checked; one synthetic text block when a document with text has
/// none.
fn checked_blocks(doc: &Document) -> Result<Cow<'_, [Block]>> {
    let text = &doc.text;
    if doc.blocks.is_empty() {
        if text.trim().is_empty() {
            return Ok(Cow::Borrowed(&[]));
        }
        return Ok(Cow::Owned(vec![Block {
            kind: BlockKind::Text,
            range: 0..text.len(),
            first_line: 1,
            page: None,
            heading_path: Vec::new(),
        }]));
    }
    let mut prev_end = 0;
    for (index, b) in doc.blocks.iter().enumerate() {
        let Range { start, end } = b.range;
        let reason = if start > end || end > text.len() {
            Some(format!(
                "range {start}..{end} lies outside the text ({} bytes)",
                text.len()
            ))
        } else if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            Some(format!("range {start}..{end} splits a character"))
        } else if start < prev_end {
            Some(format!(
                "range {start}..{end} overlaps or precedes the block before it"
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ChunkError::InvalidBlock {
                doc: doc.id.clone(),
                index,
                reason,
            });
        }
        prev_end = end;
    }
    Ok(Cow::Borrowed(&doc.blocks))
}

/// What stays fixed while one document is chunked.
pub(crate) struct Chunker<'a> {
    pub(crate) text: &'a str,
    pub(crate) counter: &'a dyn TokenCounter,
    /// Tokens every count includes whatever the text (the special tokens).
    pub(crate) overhead: usize,
    max_tokens: usize,
    /// Most tokens an overlap may repeat.
    overlap_tokens: usize,
    /// Most bytes an overlap may repeat.
    overlap_bytes: usize,
    /// Most bytes of text in one chunk.
    pub(crate) max_bytes: usize,
}

/// A chunk being filled: `units[first..end]` of its own, preceded by an overlap from
/// `start` when `start` is before `units[first].start`.
struct Open {
    start: usize,
    /// The unit the overlap starts in (`first` when there is none).
    start_unit: usize,
    first: usize,
    end: usize,
    /// Estimated tokens of the text, without the context and the overhead.
    tokens: usize,
}

/// A finished chunk of one section.
#[derive(Clone)]
struct Done {
    /// Byte range of its text.
    start: usize,
    end: usize,
    /// Its own units (the overlap excluded).
    first: usize,
    last: usize,
    start_block: usize,
    end_block: usize,
    /// The real count of its embedding text.
    tokens: usize,
    /// Tokens of its text alone, about.
    text_tokens: usize,
}

/// Where an overlap starts.
struct Overlap {
    start: usize,
    unit: usize,
    tokens: usize,
}

/// The context line of one section and what it costs.
struct Context {
    text: Option<String>,
    /// Tokens of the embedding text of an empty chunk with this context (overhead included).
    cost: usize,
}

impl Chunker<'_> {
    fn run(&self, doc: &Document, blocks: &[Block]) -> Vec<Chunk> {
        let newlines: Vec<usize> = self
            .text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        let lines_between = |a: usize, b: usize| {
            let n = newlines
                .partition_point(|&p| p < b)
                .saturating_sub(newlines.partition_point(|&p| p < a));
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        let message_id = doc.email.as_ref().and_then(|e| e.message_id.clone());

        let mut chunks = Vec::new();
        let mut seen: HashMap<ContentHash, u32> = HashMap::new();
        let mut context: Option<(&[String], Context)> = None;
        for section in sections(blocks) {
            let head = &blocks[section.start];
            let same = matches!(&context, Some((path, _)) if *path == head.heading_path.as_slice());
            if !same {
                context = Some((&head.heading_path, self.context(doc, &head.heading_path)));
            }
            let Some((_, ctx)) = &context else {
                continue;
            };
            let limit = self.max_tokens.saturating_sub(ctx.cost).max(1);
            let mut units = Vec::new();
            for index in section.clone() {
                self.block_units(index, blocks[index].range.clone(), limit, &mut units);
            }
            for done in self.pack(&mut units, ctx, limit) {
                let text = &self.text[done.start..done.end];
                let first = &blocks[done.start_block];
                let last = &blocks[done.end_block];
                let lines = LineRange::new(
                    first
                        .first_line
                        .saturating_add(lines_between(first.range.start, done.start)),
                    last.first_line
                        .saturating_add(lines_between(last.range.start, done.end)),
                );
                let content_hash = ContentHash::of(text.as_bytes());
                let occurrence = seen.entry(content_hash.clone()).or_insert(0);
                let id = ChunkId::derive(&doc.id, text, *occurrence);
                *occurrence += 1;
                chunks.push(Chunk {
                    id,
                    doc: doc.id.clone(),
                    ordinal: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
                    text: text.to_string(),
                    context: ctx.text.clone(),
                    span: Span {
                        bytes: done.start..done.end,
                        lines,
                        page: head.page,
                        heading_path: head.heading_path.clone(),
                        message_id: message_id.clone(),
                    },
                    tokens: u32::try_from(done.tokens).unwrap_or(u32::MAX),
                    content_hash,
                });
            }
        }
        chunks
    }

    /// The context line for a section with `heading_path`, cut to a third of the budget.
    fn context(&self, doc: &Document, heading_path: &[String]) -> Context {
        let raw = if !heading_path.is_empty() {
            heading_path.join(" > ")
        } else if let Some(subject) = doc
            .email
            .as_ref()
            .and_then(|e| e.subject.as_deref())
            .filter(|s| !s.trim().is_empty())
        {
            subject.to_string()
        } else {
            doc.title.clone().unwrap_or_default()
        };
        // One line: runs of whitespace (line breaks in a title) become one space.
        let line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let cost = |c: &str| self.counter.count(&embedding_text(Some(c), ""));
        let most_tokens = self.overhead + self.max_tokens / 3;
        let most_bytes = self.max_bytes / 3;
        let fits = |c: &str| c.len() <= most_bytes && cost(c) <= most_tokens;
        if line.is_empty() {
            return Context {
                text: None,
                cost: self.overhead,
            };
        }
        if fits(&line) {
            return Context {
                cost: cost(&line),
                text: Some(line),
            };
        }
        // The longest prefix that ends at a word boundary (else a character boundary) and fits.
        let mut cuts: Vec<usize> = line.match_indices(' ').map(|(i, _)| i).collect();
        if cuts.first().is_none_or(|&i| !fits(&line[..i])) {
            cuts = line.char_indices().map(|(i, _)| i).skip(1).collect();
        }
        let fitting = cuts.partition_point(|&i| fits(&line[..i]));
        match fitting.checked_sub(1).map(|i| cuts[i]) {
            Some(end) => Context {
                cost: cost(&line[..end]),
                text: Some(line[..end].to_string()),
            },
            None => Context {
                text: None,
                cost: self.overhead,
            },
        }
    }

    /// Packs a section's units into chunks of at most `limit` text tokens.
    fn pack(&self, units: &mut Vec<Unit>, ctx: &Context, limit: usize) -> Vec<Done> {
        let mut out: Vec<Done> = Vec::new();
        let mut open: Option<Open> = None;
        let mut k = 0;
        loop {
            let Some(&u) = units.get(k) else {
                match open.take() {
                    Some(o) => {
                        let (done, next) = self.close(o, units, ctx);
                        out.push(done);
                        k = next;
                        continue;
                    }
                    None => break,
                }
            };
            let Some(o) = open.as_mut() else {
                // A new chunk: the whole block if it fits a chunk, else its first unit; then an
                // overlap from the previous chunk, in the room that leaves.
                let (end, tokens) = match self.block_at(units, k) {
                    Some((end, tokens))
                        if self.fits(0, tokens, units[end - 1].end - u.start, limit) =>
                    {
                        (end, tokens)
                    }
                    _ => (k + 1, u.tokens),
                };
                let end_pos = units[end - 1].end;
                let overlap = out.last().and_then(|prev| {
                    // The chunk would run from the overlap's start (in `prev`) to `end_pos`.
                    self.overlap(
                        prev,
                        units,
                        limit.saturating_sub(tokens),
                        self.max_bytes.saturating_sub(end_pos - prev.end),
                    )
                });
                let (start, start_unit, overlap_tokens) = match overlap {
                    Some(ov) => (ov.start, ov.unit, ov.tokens),
                    None => (u.start, k, 0),
                };
                open = Some(Open {
                    start,
                    start_unit,
                    first: k,
                    end,
                    tokens: overlap_tokens + tokens,
                });
                k = end;
                continue;
            };
            if let Some((end, tokens)) = self.block_at(units, k) {
                let end_pos = units[end - 1].end;
                if self.fits(o.tokens, tokens, end_pos - o.start, limit) {
                    o.end = end;
                    o.tokens += tokens;
                    k = end;
                    continue;
                }
                // A block that fits a chunk of its own starts one, unless this chunk is less
                // than half full: then the block's sentences fill it up.
                let whole = self.fits(0, tokens, end_pos - u.start, limit);
                if whole && o.tokens * 2 >= limit {
                    if let Some(o) = open.take() {
                        let (done, next) = self.close(o, units, ctx);
                        out.push(done);
                        k = next;
                    }
                    continue;
                }
            }
            if self.fits(o.tokens, u.tokens, u.end - o.start, limit) {
                o.end = k + 1;
                o.tokens += u.tokens;
                k += 1;
            } else if let Some(o) = open.take() {
                let (done, next) = self.close(o, units, ctx);
                out.push(done);
                k = next;
            }
        }
        out
    }

    fn fits(&self, have: usize, add: usize, bytes: usize, limit: usize) -> bool {
        have + add <= limit && bytes <= self.max_bytes
    }

    /// When `units[k]` starts a block: the end of the block's units and their tokens.
    fn block_at(&self, units: &[Unit], k: usize) -> Option<(usize, usize)> {
        if units[k].level != Level::Block {
            return None;
        }
        let mut end = k + 1;
        let mut tokens = units[k].tokens;
        while let Some(u) = units.get(end).filter(|u| u.level != Level::Block) {
            tokens += u.tokens;
            end += 1;
        }
        Some((end, tokens))
    }

    /// Finishes `o` with one real count, giving back units (or cutting its only one) in the
    /// rare case the estimate was short. Returns the chunk and the next unit to place.
    fn close(&self, o: Open, units: &mut Vec<Unit>, ctx: &Context) -> (Done, usize) {
        let Open {
            mut start,
            mut start_unit,
            first,
            mut end,
            ..
        } = o;
        loop {
            let end_pos = units[end - 1].end;
            let tokens = self.counter.count(&embedding_text(
                ctx.text.as_deref(),
                &self.text[start..end_pos],
            ));
            if tokens > self.max_tokens {
                if end - first > 1 {
                    end -= 1;
                    continue;
                }
                if start < units[first].start {
                    start = units[first].start;
                    start_unit = first;
                    continue;
                }
                let halves = self.halve(&units[first]);
                if !halves.is_empty() {
                    units.splice(first..first + 1, halves);
                    end = first + 1;
                    continue;
                }
                // A single character over the budget: nothing smaller exists.
            }
            let done = Done {
                start,
                end: end_pos,
                first,
                last: end,
                start_block: units[start_unit].block,
                end_block: units[end - 1].block,
                tokens,
                text_tokens: tokens.saturating_sub(ctx.cost),
            };
            return (done, end);
        }
    }

    /// The tail of `prev` to repeat at the start of the next chunk: whole sentences if some
    /// fit, else whole words; at most `room_tokens`, `room_bytes`, the overlap budget and half
    /// of `prev`.
    fn overlap(
        &self,
        prev: &Done,
        units: &[Unit],
        room_tokens: usize,
        room_bytes: usize,
    ) -> Option<Overlap> {
        let limit = self
            .overlap_tokens
            .min(room_tokens)
            .min(prev.text_tokens / 2);
        let limit_bytes = self.overlap_bytes.min(room_bytes);
        if limit == 0 || limit_bytes == 0 {
            return None;
        }
        let mut best = None;
        let mut sum = 0;
        for i in (prev.first..prev.last).rev() {
            let u = &units[i];
            sum += u.tokens;
            if u.start <= prev.start || sum > limit || prev.end - u.start > limit_bytes {
                break;
            }
            if u.level >= Level::Sentence {
                best = Some(Overlap {
                    start: u.start,
                    unit: i,
                    tokens: sum,
                });
            }
        }
        best.or_else(|| self.word_overlap(prev, units, limit, limit_bytes))
    }

    /// The longest run of whole words at the end of `prev` (found by estimate, then counted)
    /// within `limit` tokens and `limit_bytes` bytes.
    fn word_overlap(
        &self,
        prev: &Done,
        units: &[Unit],
        limit: usize,
        limit_bytes: usize,
    ) -> Option<Overlap> {
        let own_start = units[prev.first].start;
        // Strictly inside `prev`: never the whole of it.
        let lo = if prev.start < own_start {
            own_start
        } else {
            own_start + 1
        };
        let last = &units[prev.last - 1];
        let bytes_per_token = last.bytes() as f64 / last.tokens.max(1) as f64;
        let mut want = ((limit as f64 * bytes_per_token) as usize).min(limit_bytes);
        for _ in 0..8 {
            if want == 0 {
                return None;
            }
            let from = prev.end.saturating_sub(want).max(lo);
            let start = self.next_word_start(from, prev.end)?;
            let bytes = prev.end - start;
            if bytes <= limit_bytes {
                let tokens = self.net(start, prev.end);
                if tokens <= limit {
                    let unit = (prev.first
                        + units[prev.first..prev.last].partition_point(|u| u.start <= start))
                    .saturating_sub(1)
                    .max(prev.first);
                    return Some(Overlap {
                        start,
                        unit,
                        tokens,
                    });
                }
            }
            want = bytes / 2;
        }
        None
    }

    /// The first position in `from..end` where a word starts (a non-whitespace character
    /// after whitespace).
    fn next_word_start(&self, from: usize, end: usize) -> Option<usize> {
        let mut from = from.min(self.text.len());
        while !self.text.is_char_boundary(from) {
            from += 1;
        }
        let mut after_space = self.text[..from]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        for (i, c) in self.text.get(from..end)?.char_indices() {
            let space = c.is_whitespace();
            if !space && after_space {
                return Some(from + i);
            }
            after_space = space;
        }
        None
    }
}

/// Runs of blocks that share a page and a heading path; every heading starts one.
fn sections(blocks: &[Block]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..blocks.len() {
        let (a, b) = (&blocks[i - 1], &blocks[i]);
        if matches!(b.kind, BlockKind::Heading { .. })
            || a.page != b.page
            || a.heading_path != b.heading_path
        {
            out.push(from..i);
            from = i;
        }
    }
    if !blocks.is_empty() {
        out.push(from..blocks.len());
    }
    out
}
