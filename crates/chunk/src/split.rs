//! Cutting a block's text into units: pieces that each fit the budget on their own, cut at the
//! coarsest boundary that works (sentence, then word, then word part, then grapheme, then
//! character), each measured once.

use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;

use crate::Chunker;

/// The kind of boundary in front of a unit; a chunk or an overlap prefers to start at a strong
/// one. Ordered from weakest to strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Char,
    Grapheme,
    WordPart,
    Word,
    Sentence,
    Block,
}

/// A piece of one block's text: a byte range of the document's text with no whitespace at
/// either end, and its tokens (without the tokenizer's fixed overhead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    pub start: usize,
    pub end: usize,
    pub tokens: usize,
    /// Index of the block it comes from.
    pub block: usize,
    /// The boundary in front of it. The first unit of a block is at [`Level::Block`], and only
    /// that one.
    pub level: Level,
}

impl Unit {
    pub fn bytes(&self) -> usize {
        self.end - self.start
    }
}

/// `start..end` with whitespace removed from both ends; an empty range when it is all
/// whitespace.
pub(crate) fn trim(text: &str, start: usize, end: usize) -> (usize, usize) {
    let piece = &text[start..end];
    let trimmed_start = piece.trim_start();
    if trimmed_start.is_empty() {
        return (end, end);
    }
    let s = start + (piece.len() - trimmed_start.len());
    let e = s + trimmed_start.trim_end().len();
    (s, e)
}

/// A copy of `text` in which single line breaks are spaces, so that sentences of a hard-wrapped
/// paragraph are found across its lines. Blank lines stay, and so do the byte offsets (both are
/// one byte).
fn join_soft_breaks(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let soft = |i: usize| {
        bytes[i] == b'\n'
            && (i == 0 || bytes[i - 1] != b'\n')
            && (i + 1 == bytes.len() || bytes[i + 1] != b'\n')
    };
    if !(0..bytes.len()).any(soft) {
        return Cow::Borrowed(text);
    }
    let joined: Vec<u8> = (0..bytes.len())
        .map(|i| if soft(i) { b' ' } else { bytes[i] })
        .collect();
    // Replacing an ASCII byte by another keeps the text valid UTF-8.
    match String::from_utf8(joined) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(text),
    }
}

impl Chunker<'_> {
    /// Tokens of `text[start..end]` beyond the tokenizer's fixed overhead.
    pub(crate) fn net(&self, start: usize, end: usize) -> usize {
        self.counter
            .count(&self.text[start..end])
            .saturating_sub(self.overhead)
    }

    fn unit_fits(&self, tokens: usize, bytes: usize, limit: usize) -> bool {
        tokens <= limit && bytes <= self.max_bytes
    }

    /// Appends the units of block `index` (range `range`), each within `limit` tokens.
    pub(crate) fn block_units(
        &self,
        index: usize,
        range: std::ops::Range<usize>,
        limit: usize,
        out: &mut Vec<Unit>,
    ) {
        let joined = join_soft_breaks(&self.text[range.clone()]);
        let mut level = Level::Block;
        for (off, sentence) in joined.split_sentence_bound_indices() {
            let (s, e) = trim(
                self.text,
                range.start + off,
                range.start + off + sentence.len(),
            );
            if s == e {
                continue;
            }
            let unit = Unit {
                start: s,
                end: e,
                tokens: self.net(s, e),
                block: index,
                level,
            };
            level = Level::Sentence;
            self.fit(unit, limit, out);
        }
    }

    /// Appends `piece` if it fits `limit`, else the units it is cut into.
    pub(crate) fn fit(&self, piece: Unit, limit: usize, out: &mut Vec<Unit>) {
        if self.unit_fits(piece.tokens, piece.bytes(), limit) {
            out.push(piece);
            return;
        }
        for level in [Level::Word, Level::WordPart, Level::Grapheme, Level::Char] {
            let subs = self.sub_pieces(piece.start, piece.end, level);
            if subs.len() >= 2 {
                for group in self.groups(&subs, &piece, limit) {
                    self.emit(&subs[group], &piece, level, limit, out);
                }
                return;
            }
        }
        // A single character: there is nothing smaller to cut it into.
        out.push(piece);
    }

    /// `piece` cut in two at the coarsest boundary it has (near its middle), each half
    /// measured; empty when it is a single character.
    pub(crate) fn halve(&self, piece: &Unit) -> Vec<Unit> {
        for level in [Level::Word, Level::WordPart, Level::Grapheme, Level::Char] {
            let subs = self.sub_pieces(piece.start, piece.end, level);
            if subs.len() >= 2 {
                let mid = subs.len() / 2;
                let halves = [&subs[..mid], &subs[mid..]];
                return halves
                    .iter()
                    .map(|half| {
                        let (s, e) = (half[0].0, half[half.len() - 1].1);
                        Unit {
                            start: s,
                            end: e,
                            tokens: self.net(s, e),
                            block: piece.block,
                            level: if s == piece.start { piece.level } else { level },
                        }
                    })
                    .collect();
            }
        }
        Vec::new()
    }

    /// Measures the run of sub-pieces `subs` (cut from `parent` at `level`) and appends it as
    /// one unit if it fits, else halves it.
    fn emit(
        &self,
        subs: &[(usize, usize)],
        parent: &Unit,
        level: Level,
        limit: usize,
        out: &mut Vec<Unit>,
    ) {
        let (Some(first), Some(last)) = (subs.first(), subs.last()) else {
            return;
        };
        let (s, e) = (first.0, last.1);
        let unit = Unit {
            start: s,
            end: e,
            tokens: self.net(s, e),
            block: parent.block,
            level: if s == parent.start {
                parent.level
            } else {
                level
            },
        };
        if subs.len() == 1 {
            // Smaller than its parent, so cutting it further (if needed) makes progress.
            self.fit(unit, limit, out);
        } else if self.unit_fits(unit.tokens, unit.bytes(), limit) {
            out.push(unit);
        } else {
            let mid = subs.len() / 2;
            self.emit(&subs[..mid], parent, level, limit, out);
            self.emit(&subs[mid..], parent, level, limit, out);
        }
    }

    /// Consecutive runs of `subs` of about a quarter of the budget each, judged by the parent's
    /// bytes per token, so that most runs need one count.
    fn groups(
        &self,
        subs: &[(usize, usize)],
        parent: &Unit,
        limit: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let bytes_per_token = parent.bytes() as f64 / parent.tokens.max(1) as f64;
        let target = ((limit / 4).max(1) as f64 * bytes_per_token) as usize;
        let target = target.clamp(1, (self.max_bytes / 4).max(1));
        let mut out = Vec::new();
        let mut from = 0;
        for i in 1..subs.len() {
            if subs[i].1 - subs[from].0 > target {
                out.push(from..i);
                from = i;
            }
        }
        out.push(from..subs.len());
        out
    }

    /// The non-whitespace pieces of `start..end` at `level`, in order.
    fn sub_pieces(&self, start: usize, end: usize, level: Level) -> Vec<(usize, usize)> {
        let piece = &self.text[start..end];
        let mut out = Vec::new();
        match level {
            Level::Word => {
                let mut word: Option<usize> = None;
                for (i, c) in piece.char_indices() {
                    match (c.is_whitespace(), word) {
                        (true, Some(w)) => {
                            out.push((start + w, start + i));
                            word = None;
                        }
                        (false, None) => word = Some(i),
                        _ => {}
                    }
                }
                if let Some(w) = word {
                    out.push((start + w, end));
                }
            }
            Level::WordPart => {
                for (i, part) in piece.split_word_bound_indices() {
                    let (s, e) = trim(self.text, start + i, start + i + part.len());
                    if s < e {
                        out.push((s, e));
                    }
                }
            }
            Level::Grapheme => {
                for (i, g) in piece.grapheme_indices(true) {
                    let (s, e) = trim(self.text, start + i, start + i + g.len());
                    if s < e {
                        out.push((s, e));
                    }
                }
            }
            Level::Char => {
                for (i, c) in piece.char_indices() {
                    if !c.is_whitespace() {
                        out.push((start + i, start + i + c.len_utf8()));
                    }
                }
            }
            Level::Sentence | Level::Block => out.push((start, end)),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_moves_the_range() {
        let t = "  ab c \n";
        assert_eq!(trim(t, 0, t.len()), (2, 6));
        assert_eq!(trim(t, 6, 8), (8, 8));
    }

    #[test]
    fn soft_breaks_become_spaces_and_blank_lines_stay() {
        assert_eq!(join_soft_breaks("a\nb\n\nc\n"), "a b\n\nc ");
        assert!(matches!(join_soft_breaks("abc"), Cow::Borrowed(_)));
    }
}
