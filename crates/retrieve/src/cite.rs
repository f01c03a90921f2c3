//! Citations in a model's answer: found, cleaned and checked against the sources.
//!
//! - [`parse_citations`] finds the marks a model writes: `[1]`, `[1, 3]`, `[1][2]`, `[1-2]`,
//!   `[1–3]`, `[Source 2]`, `[^2]`, and the full-width forms `［１］` and `【1】`. A bracket that
//!   holds anything else (`[see above]`, `[x]`) is not a citation. Never panics, on any input.
//! - [`clean_citations`] removes numbers that name no source, and marks left empty, and reports
//!   which numbers it removed.
//! - [`check_answer`] splits the cleaned answer into sentences and scores each citation of each
//!   sentence against the cited source: a **lexical** score (the share of the sentence's content
//!   words, lower-cased and stemmed, found in the best passage of the source) and, given an
//!   embedder, a **semantic** score (cosine similarity of the sentence and that passage), combined
//!   into one `support` in 0..=1. The best passage (one sentence of the source, or two adjacent
//!   ones when that covers clearly more) becomes the citation's `quote`: a byte range into the
//!   source's text, so the quote is verbatim.
//!
//! The combination: `support = 0.5 · lexical + 0.5 · semantic'`, where `semantic'` maps the
//! cosine linearly from [`COSINE_FLOOR`] (unrelated sentences of all-MiniLM-L6-v2 sit below it)
//! to [`COSINE_CEIL`] (paraphrases sit above it) onto 0..=1. Without an embedder, `support` is
//! the lexical score alone.

use std::ops::Range;

use docent_core::{EmbedKind, Embedder, SeamError};

use crate::words::word_ranges;

/// Cosine at or below which a sentence and a passage count as unrelated (semantic' = 0).
pub const COSINE_FLOOR: f32 = 0.15;
/// Cosine at or above which a sentence and a passage count as saying the same (semantic' = 1).
pub const COSINE_CEIL: f32 = 0.75;

/// A range like `[1-500]` expands to at most this many numbers; a longer one keeps its ends.
const MAX_RANGE: usize = 32;
/// A bracket longer than this (in bytes) is not a citation.
const MAX_MARK_BYTES: usize = 96;

/// One citation mark in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CitationMark {
    /// Bytes of the mark, brackets included.
    pub bytes: Range<usize>,
    /// The numbers it cites, in the order written, each once.
    pub numbers: Vec<usize>,
}

fn closing(open: char) -> Option<char> {
    match open {
        '[' => Some(']'),
        '［' => Some('］'),
        '【' => Some('】'),
        _ => None,
    }
}

/// The citation marks of `text`, in order.
pub fn parse_citations(text: &str) -> Vec<CitationMark> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if let Some(close) = closing(c) {
            let body_start = i + c.len_utf8();
            let rest = &text[body_start..];
            let limit = rest
                .char_indices()
                .take_while(|(j, _)| *j <= MAX_MARK_BYTES)
                .find(|&(_, ch)| ch == close || closing(ch).is_some() || ch == '\n');
            if let Some((j, ch)) = limit
                && ch == close
                && let Some(numbers) = parse_mark_body(&rest[..j])
            {
                let end = body_start + j + close.len_utf8();
                out.push(CitationMark {
                    bytes: i..end,
                    numbers,
                });
                i = end;
                continue;
            }
        }
        i += c.len_utf8();
    }
    out
}

/// The numbers of a bracket's inside, or `None` when it is not a citation.
fn parse_mark_body(body: &str) -> Option<Vec<usize>> {
    // Full-width digits and punctuation to ASCII.
    let norm: String = body
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '，' | '、' => ',',
            '；' => ';',
            '－' | '–' | '—' | '‐' | '−' | '～' | '~' => '-',
            '　' => ' ',
            c => c,
        })
        .collect();
    let mut s = norm.trim();
    s = s.strip_prefix('^').unwrap_or(s).trim_start();
    for prefix in ["sources", "source", "src", "doc"] {
        if s.len() >= prefix.len()
            && s.is_char_boundary(prefix.len())
            && s[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            s = s[prefix.len()..].trim_start();
            break;
        }
    }
    if s.is_empty() {
        return None;
    }
    let mut numbers: Vec<usize> = Vec::new();
    let push = |n: usize, numbers: &mut Vec<usize>| {
        if !numbers.contains(&n) {
            numbers.push(n);
        }
    };
    for part in s.split([',', ';']) {
        let part = part.trim();
        let part = part.strip_prefix('^').unwrap_or(part).trim();
        if part.is_empty() {
            return None;
        }
        if let Some((a, b)) = part.split_once('-') {
            let a = number(a.trim())?;
            let b = number(b.trim())?;
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            if hi - lo < MAX_RANGE {
                for n in lo..=hi {
                    push(n, &mut numbers);
                }
            } else {
                push(lo, &mut numbers);
                push(hi, &mut numbers);
            }
        } else {
            // `[1 2]`, `[1 and 2]`
            let words: Vec<&str> = part
                .split_whitespace()
                .filter(|w| !w.eq_ignore_ascii_case("and"))
                .collect();
            if words.is_empty() {
                return None;
            }
            for w in words {
                push(number(w)?, &mut numbers);
            }
        }
    }
    Some(numbers)
}

fn number(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `text` with every cited number for which `valid` is false removed (and marks left empty
/// removed with the space before them), and those numbers, each once, ascending.
pub fn clean_citations(text: &str, valid: impl Fn(usize) -> bool) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut removed: Vec<usize> = Vec::new();
    let mut last = 0;
    for m in parse_citations(text) {
        let (keep, drop): (Vec<usize>, Vec<usize>) = m.numbers.iter().partition(|&&n| valid(n));
        if drop.is_empty() {
            continue;
        }
        for n in drop {
            if !removed.contains(&n) {
                removed.push(n);
            }
        }
        out.push_str(&text[last..m.bytes.start]);
        if keep.is_empty() {
            // "claim [9]." -> "claim."
            let trimmed = out.trim_end_matches([' ', '\t']).len();
            out.truncate(trimmed);
        } else {
            let list: Vec<String> = keep.iter().map(usize::to_string).collect();
            out.push('[');
            out.push_str(&list.join(", "));
            out.push(']');
        }
        last = m.bytes.end;
    }
    out.push_str(&text[last..]);
    removed.sort_unstable();
    (out, removed)
}

/// `text` without any citation marks (for conversation history, where old numbers would
/// mislead), spaces before removed marks dropped too.
pub fn strip_citations(text: &str) -> String {
    clean_citations(text, |_| false).0
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？')
}

/// Byte ranges of the sentences of `text`, trimmed, non-empty, in order. A sentence ends after
/// `.`, `!` or `?` (and their full-width forms) followed by whitespace or the end (closing quotes
/// and brackets stay with it, and so do citation marks right after it: `… 2025. [1]`), at a
/// blank line, and, when `lines_end_sentences`, at every line break (answers: list items;
/// sources keep the line breaks of wrapped text inside sentences).
pub fn split_sentences(text: &str, lines_end_sentences: bool) -> Vec<Range<usize>> {
    let marks = parse_citations(text);
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let end_here = if c == '\n' {
            lines_end_sentences || text[i + 1..].starts_with('\n') || text[..i].ends_with('\n')
        } else if is_terminator(c) {
            match iter.peek() {
                None => true,
                Some(&(_, n)) => n.is_whitespace() || matches!(n, '"' | '\'' | ')' | '”' | '’'),
            }
        } else {
            false
        };
        if !end_here {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c != '\n' {
            // Closing quotes or brackets, then citation marks after optional spaces.
            while let Some(&(j, n)) = iter.peek() {
                if matches!(n, '"' | '\'' | ')' | '”' | '’') {
                    end = j + n.len_utf8();
                    iter.next();
                } else {
                    break;
                }
            }
            loop {
                let rest = &text[end..];
                let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
                match marks.iter().find(|m| m.bytes.start == end + spaces) {
                    Some(m) => end = m.bytes.end,
                    None => break,
                }
            }
            while iter.peek().is_some_and(|&(j, _)| j < end) {
                iter.next();
            }
        }
        push_trimmed(text, start..end, &mut out);
        start = end;
    }
    push_trimmed(text, start..text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, r: Range<usize>, out: &mut Vec<Range<usize>>) {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    if !t.is_empty() {
        out.push(r.start + lead..r.start + lead + t.len());
    }
}

/// Words that carry no content of their own.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "according",
    "document",
    "documents",
    "source",
    "sources",
    "states",
    "stated",
    "says",
    "said",
    "mentioned",
    "mentions",
];

/// A light English stemmer: enough that `delays`, `delayed` and `delaying` meet, applied
/// identically to both sides of every comparison.
pub fn stem(word: &str) -> String {
    let mut w = word.to_lowercase();
    if !w.is_ascii() || w.len() <= 3 || w.bytes().all(|b| b.is_ascii_digit()) {
        return w;
    }
    if let Some(s) = w.strip_suffix("sses") {
        w = format!("{s}ss");
    } else if let Some(s) = w.strip_suffix("ies").filter(|s| s.len() >= 2) {
        w = format!("{s}y");
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.pop();
    }
    for suffix in ["ing", "ed", "ly"] {
        if let Some(s) = w.strip_suffix(suffix).filter(|s| s.len() >= 3) {
            w = s.to_string();
            break;
        }
    }
    if w.len() > 3 && w.ends_with('e') {
        w.pop();
    }
    w
}

/// The stemmed content words of `text` (citation marks and stop words left out), each once.
pub fn content_words(text: &str) -> Vec<String> {
    let marks = parse_citations(text);
    let mut out: Vec<String> = Vec::new();
    for r in word_ranges(text) {
        if marks
            .iter()
            .any(|m| m.bytes.start <= r.start && r.end <= m.bytes.end)
        {
            continue;
        }
        let w = text[r].to_lowercase();
        if STOPWORDS.contains(&w.as_str())
            || (w.chars().count() < 2 && !w.starts_with(char::is_numeric))
        {
            continue;
        }
        let s = stem(&w);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The share of `claim`'s content words that occur in `passage` (1.0 when the claim has none).
pub fn lexical_overlap(claim: &[String], passage: &[String]) -> f32 {
    if claim.is_empty() {
        return 1.0;
    }
    let found = claim.iter().filter(|w| passage.contains(w)).count();
    found as f32 / claim.len() as f32
}

/// Lexical and semantic scores combined into one support in 0..=1 (see the module docs).
pub fn combine_support(lexical: f32, cosine: Option<f32>) -> f32 {
    let lexical = lexical.clamp(0.0, 1.0);
    match cosine {
        Some(c) if c.is_finite() => {
            let sem = ((c - COSINE_FLOOR) / (COSINE_CEIL - COSINE_FLOOR)).clamp(0.0, 1.0);
            0.5 * lexical + 0.5 * sem
        }
        _ => lexical,
    }
}

/// One citation of one sentence, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedCitation {
    /// Source number, from 1.
    pub n: usize,
    /// Index into [`CheckedAnswer::sentences`].
    pub sentence: usize,
    /// Bytes of the quote in the source's text.
    pub quote: Range<usize>,
    pub lexical: f32,
    pub semantic: Option<f32>,
    pub support: f32,
    pub weak: bool,
}

/// A sentence of the cleaned answer.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedSentence {
    /// Bytes in [`CheckedAnswer::text`].
    pub bytes: Range<usize>,
    /// Source numbers it cites.
    pub cites: Vec<usize>,
    /// Its best citation's support.
    pub support: Option<f32>,
    pub weak: bool,
}

/// An answer with invalid citations removed and every citation scored. `Debug` shows lengths,
/// never text.
#[derive(Clone, PartialEq)]
pub struct CheckedAnswer {
    pub text: String,
    pub removed: Vec<usize>,
    pub sentences: Vec<CheckedSentence>,
    pub citations: Vec<CheckedCitation>,
}

impl std::fmt::Debug for CheckedAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedAnswer")
            .field("text_len", &self.text.len())
            .field("removed", &self.removed)
            .field("sentences", &self.sentences)
            .field("citations", &self.citations)
            .finish()
    }
}

/// Checks `answer` against `sources` (source `n` is `sources[n - 1]`): removes citations of
/// numbers outside `1..=sources.len()`, splits the rest into sentences and scores each
/// citation (see the module docs). A citation is weak when its support is below `weak_below`;
/// a sentence is weak when its best citation is. Errors only when the embedder fails.
pub fn check_answer(
    answer: &str,
    sources: &[&str],
    embedder: Option<&dyn Embedder>,
    weak_below: f32,
) -> Result<CheckedAnswer, SeamError> {
    let (text, removed) = clean_citations(answer, |n| n >= 1 && n <= sources.len());
    let marks = parse_citations(&text);
    let ranges = split_sentences(&text, true);

    // Candidate passages per cited source: its sentences and adjacent pairs.
    let mut passages: Vec<Vec<Range<usize>>> = vec![Vec::new(); sources.len()];
    let mut sentences = Vec::with_capacity(ranges.len());
    for r in &ranges {
        let mut cites: Vec<usize> = Vec::new();
        for m in marks
            .iter()
            .filter(|m| r.start <= m.bytes.start && m.bytes.end <= r.end)
        {
            for &n in &m.numbers {
                if !cites.contains(&n) {
                    cites.push(n);
                }
            }
        }
        for &n in &cites {
            if passages[n - 1].is_empty() {
                passages[n - 1] = split_sentences(sources[n - 1], false);
                if passages[n - 1].is_empty() {
                    passages[n - 1].push(0..sources[n - 1].len());
                }
            }
        }
        sentences.push(CheckedSentence {
            bytes: r.clone(),
            cites,
            support: None,
            weak: false,
        });
    }

    // One batch for the embedder: every cited sentence and every passage of a cited source.
    let mut sentence_vecs: Vec<Option<Vec<f32>>> = vec![None; sentences.len()];
    let mut passage_vecs: Vec<Vec<Vec<f32>>> = vec![Vec::new(); sources.len()];
    if let Some(e) = embedder {
        let mut texts: Vec<&str> = Vec::new();
        for s in sentences.iter().filter(|s| !s.cites.is_empty()) {
            texts.push(&text[s.bytes.clone()]);
        }
        for (n, ps) in passages.iter().enumerate() {
            for p in ps {
                texts.push(&sources[n][p.clone()]);
            }
        }
        if !texts.is_empty() {
            let mut vecs = e.embed(&texts, EmbedKind::Document)?.into_iter();
            for (i, s) in sentences.iter().enumerate() {
                if !s.cites.is_empty() {
                    sentence_vecs[i] = vecs.next();
                }
            }
            for (n, ps) in passages.iter().enumerate() {
                passage_vecs[n] = ps.iter().filter_map(|_| vecs.next()).collect();
            }
        }
    }

    let mut citations = Vec::new();
    for (si, s) in sentences.iter_mut().enumerate() {
        let claim_text = &text[s.bytes.clone()];
        let claim = content_words(claim_text);
        for &n in &s.cites {
            let src = sources[n - 1];
            let ps = &passages[n - 1];
            let words: Vec<Vec<String>> =
                ps.iter().map(|p| content_words(&src[p.clone()])).collect();
            let cos = |i: usize| -> Option<f32> {
                let a = sentence_vecs[si].as_ref()?;
                let b = passage_vecs[n - 1].get(i)?;
                Some(cosine(a, b))
            };
            // The best single passage, then its neighbour if the pair covers clearly more.
            let mut best: Option<(Range<usize>, f32, Option<f32>, f32)> = None;
            for (i, passage_words) in words.iter().enumerate() {
                let lex = lexical_overlap(&claim, passage_words);
                let sem = cos(i);
                let sup = combine_support(lex, sem);
                if best.as_ref().is_none_or(|b| sup > b.3) {
                    best = Some((i..i + 1, lex, sem, sup));
                }
            }
            let Some((mut span, mut lex, mut sem, mut sup)) = best else {
                continue;
            };
            for j in [span.start.checked_sub(1), Some(span.end)]
                .into_iter()
                .flatten()
                .filter(|&j| j < ps.len())
            {
                let lo = span.start.min(j);
                let hi = span.end.max(j + 1);
                let mut joined: Vec<String> = Vec::new();
                for w in words[lo..hi].iter().flatten() {
                    if !joined.contains(w) {
                        joined.push(w.clone());
                    }
                }
                let pair_lex = lexical_overlap(&claim, &joined);
                if pair_lex >= lex + 0.15 {
                    let pair_sem = match (sem, cos(j)) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    span = lo..hi;
                    lex = pair_lex;
                    sem = pair_sem;
                    sup = combine_support(lex, sem);
                }
            }
            let quote = ps[span.start].start..ps[span.end - 1].end;
            let weak = sup < weak_below;
            citations.push(CheckedCitation {
                n,
                sentence: si,
                quote,
                lexical: lex,
                semantic: sem,
                support: sup,
                weak,
            });
        }
        s.support = citations
            .iter()
            .filter(|c| c.sentence == si)
            .map(|c| c.support)
            .reduce(f32::max);
        s.weak = s.support.is_some_and(|x| x < weak_below);
    }
    Ok(CheckedAnswer {
        text,
        removed,
        sentences,
        citations,
    })
}

/// Cosine similarity; 0 for vectors of different lengths or zero length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nums(text: &str) -> Vec<Vec<usize>> {
        parse_citations(text)
            .into_iter()
            .map(|m| m.numbers)
            .collect()
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(nums("a [1] b"), vec![vec![1]]);
        assert_eq!(nums("a [1, 3]."), vec![vec![1, 3]]);
        assert_eq!(nums("a [1][2]"), vec![vec![1], vec![2]]);
        assert_eq!(nums("a [1-3]"), vec![vec![1, 2, 3]]);
        assert_eq!(nums("a [3–1]"), vec![vec![1, 2, 3]]);
        assert_eq!(nums("a [1; 2 and 4]"), vec![vec![1, 2, 4]]);
        assert_eq!(
            nums("a [Source 2] [sources 1,2]"),
            vec![vec![2], vec![1, 2]]
        );
        assert_eq!(nums("a [^2]"), vec![vec![2]]);
        assert_eq!(
            nums("a ［１］ b 【2】 c ［１，３］"),
            vec![vec![1], vec![2], vec![1, 3]]
        );
        assert_eq!(nums("[1, 1, 2]"), vec![vec![1, 2]]);
        assert_eq!(nums("[1-1000]"), vec![vec![1, 1000]]);
    }

    #[test]
    fn ignores_what_is_not_a_citation() {
        for t in [
            "[see above]",
            "[x]",
            "[]",
            "[ ]",
            "[1,]",
            "[-2]",
            "[1.5]",
            "[12345678]",
            "array[i]",
            "[1\n]",
            "[[",
            "]1[",
            "[1",
        ] {
            assert!(nums(t).is_empty(), "{t:?}: {:?}", nums(t));
        }
        // A stray bracket does not swallow a real mark after it.
        assert_eq!(nums("[note [2]"), vec![vec![2]]);
    }

    #[test]
    fn cleaning_removes_invalid_numbers_and_empty_marks() {
        let (t, r) = clean_citations("Fee is $1 [1]. Delay [7]. Both [1, 9][2].", |n| n <= 2);
        assert_eq!(t, "Fee is $1 [1]. Delay. Both [1][2].");
        assert_eq!(r, vec![7, 9]);
        let (t, r) = clean_citations("Nothing to do [1].", |n| n == 1);
        assert_eq!(t, "Nothing to do [1].");
        assert!(r.is_empty());
        assert_eq!(strip_citations("A [1], b [2-3]."), "A, b.");
    }

    #[test]
    fn sentences_keep_their_citations() {
        let t = "The fee is $184,500. [1] Damages are $350 per day [1][2]. Done?\n- item one [3]\n- two";
        let s: Vec<&str> = split_sentences(t, true)
            .into_iter()
            .map(|r| &t[r])
            .collect();
        assert_eq!(
            s,
            [
                "The fee is $184,500. [1]",
                "Damages are $350 per day [1][2].",
                "Done?",
                "- item one [3]",
                "- two"
            ]
        );
        let src = "Payment is due\nwithin 45 days.\n\nA new paragraph. And 3.5 more";
        let s: Vec<&str> = split_sentences(src, false)
            .into_iter()
            .map(|r| &src[r])
            .collect();
        assert_eq!(
            s,
            [
                "Payment is due\nwithin 45 days.",
                "A new paragraph.",
                "And 3.5 more"
            ]
        );
    }

    #[test]
    fn stemming_meets_inflections() {
        assert_eq!(stem("delays"), stem("delayed"));
        assert_eq!(stem("delaying"), stem("delay"));
        assert_eq!(stem("damages"), stem("damage"));
        assert_eq!(stem("dates"), stem("date"));
        assert_eq!(stem("companies"), stem("company"));
        assert_eq!(stem("350"), "350");
        assert_eq!(
            content_words("The Delays of the roof [1]."),
            vec!["delay".to_string(), "roof".to_string()]
        );
    }

    const CONTRACT: &str = "The contract price is $184,500. Payments are due in three parts.\n\nIf the work is late, the contractor pays liquidated damages of $350 per\ncalendar day of delay. The warranty lasts two years.";

    #[test]
    fn supported_and_unsupported_claims() {
        let a = "Late work costs $350 per calendar day in liquidated damages [1]. The roof is made of gold [1]. Unrelated [5].";
        let c = check_answer(a, &[CONTRACT], None, 0.5).unwrap();
        assert_eq!(c.removed, vec![5]);
        assert!(!c.text.contains("[5]"));
        assert_eq!(c.citations.len(), 2);
        let good = &c.citations[0];
        assert_eq!(
            &CONTRACT[good.quote.clone()],
            "If the work is late, the contractor pays liquidated damages of $350 per\ncalendar day of delay."
        );
        assert!(good.support > 0.7, "{good:?}");
        assert!(!good.weak);
        let bad = &c.citations[1];
        assert!(bad.weak, "{bad:?}");
        assert!(c.sentences[1].weak);
        assert_eq!(c.sentences[2].cites, Vec::<usize>::new());
        assert_eq!(c.sentences[2].support, None);
    }

    #[test]
    fn pairs_of_sentences_when_the_claim_spans_them() {
        let a = "The price is $184,500 and the warranty lasts two years [1].";
        let c = check_answer(a, &[CONTRACT], None, 0.5).unwrap();
        let q = &CONTRACT[c.citations[0].quote.clone()];
        assert!(q.contains("184,500") || q.contains("two years"), "{q}");
    }

    struct Bag(docent_core::EmbedderIdentity);
    impl Embedder for Bag {
        fn identity(&self) -> &docent_core::EmbedderIdentity {
            &self.0
        }
        fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>, SeamError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0.0f32; 32];
                    for w in content_words(t) {
                        let h = w.bytes().fold(7usize, |h, b| h * 31 + b as usize);
                        v[h % 32] += 1.0;
                    }
                    v
                })
                .collect())
        }
    }

    #[test]
    fn semantic_score_joins_in_with_an_embedder() {
        let a = "Late work costs $350 per calendar day [1].";
        let bag = Bag(docent_core::EmbedderIdentity {
            model: "bag".into(),
            checksum: String::new(),
            dim: 32,
        });
        let c = check_answer(a, &[CONTRACT], Some(&bag), 0.5).unwrap();
        assert!(c.citations[0].semantic.is_some());
        assert!(c.citations[0].support > 0.5);
    }

    #[test]
    fn support_combination_is_bounded() {
        assert_eq!(combine_support(1.0, Some(1.0)), 1.0);
        assert_eq!(combine_support(0.0, Some(-1.0)), 0.0);
        assert_eq!(combine_support(0.4, None), 0.4);
        assert_eq!(combine_support(0.4, Some(f32::NAN)), 0.4);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,64}|[\\[\\]0-9,;\\- ^a-z【】［］１２]{0,40}") {
            for m in parse_citations(&s) {
                prop_assert!(s.is_char_boundary(m.bytes.start) && s.is_char_boundary(m.bytes.end));
                prop_assert!(!m.numbers.is_empty());
            }
            let _ = split_sentences(&s, true);
            let _ = split_sentences(&s, false);
            let (t, _) = clean_citations(&s, |n| n == 1);
            for m in parse_citations(&t) {
                prop_assert!(m.numbers.iter().all(|&n| n == 1));
            }
        }

        #[test]
        fn quotes_are_verbatim_substrings(src in "[a-z .\\n]{0,120}", ans in "[a-z .\\[\\]12]{0,80}") {
            let c = check_answer(&ans, &[src.as_str(), "two"], None, 0.5).unwrap();
            for cit in &c.citations {
                let s = if cit.n == 1 { src.as_str() } else { "two" };
                prop_assert!(s.get(cit.quote.clone()).is_some());
                prop_assert!((0.0..=1.0).contains(&cit.support));
            }
        }
    }
}
