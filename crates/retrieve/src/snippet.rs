//! Snippets: a short window of a hit's text around the query's words, with those words marked.
//!
//! The text's whitespace (and any control character) is collapsed to single spaces. Words are
//! runs of letters, digits and combining marks of any script; terms are split into words the
//! same way. Compared in lowercase, a term matches a word when:
//!
//! - the term has fewer than 3 characters: the word equals it (`ai` matches `AI`, not `aim`);
//! - otherwise: the word starts with the term (`membrane` matches `membranes`), or the word's
//!   stem has at least 4 characters and the term starts with it (`roofing` matches `roofs`;
//!   the stem of a word is the word less one ending `ing`, `ed`, `es` or `s` when at least 4
//!   characters remain, else the word itself);
//! - for a term in a script written without spaces (Chinese, Japanese, Thai, …): the term occurs
//!   anywhere in the word, and only that occurrence is marked.
//!
//! A few very common English words (`the`, `of`, `and`, …) are ignored as terms unless the query
//! has nothing else, and terms past the 64th are ignored. The window holds about `max_chars`
//! characters around the stretch of text with the most distinct terms (then the most matches;
//! the earliest of equals), widened evenly on both sides and moved to word boundaries; `…`
//! marks where text was cut. Without terms or matches the snippet is the start of the text.

use std::ops::Range;

use crate::words::{is_unspaced, is_word_char, lower_words, starts_with_ci, word_ranges};

/// The ellipsis put where the text was cut.
const ELLIPSIS: &str = "…";

/// Terms beyond this many are ignored (a query's text is bounded, but a caller's terms are not).
const MAX_TERMS: usize = 64;

/// Terms that would match almost anywhere.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on",
    "or", "that", "the", "this", "to", "was", "were", "with",
];

/// A window of text and the byte ranges in it to emphasise.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Snippet {
    /// The window, whitespace collapsed, with `…` where text was cut.
    pub text: String,
    /// Byte ranges into `text`, on character boundaries, sorted, not overlapping.
    pub highlights: Vec<Range<usize>>,
}

impl std::fmt::Debug for Snippet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snippet")
            .field("text_len", &self.text.len())
            .field("highlights", &self.highlights)
            .finish()
    }
}

/// A match of a term in the collapsed text.
struct Match {
    /// Bytes in the collapsed text.
    bytes: Range<usize>,
    /// Characters in the collapsed text.
    chars: Range<usize>,
    term: usize,
}

/// A snippet of about `max_chars` characters (not counting the `…` marks) of `text` around the
/// densest cluster of `terms`; see the module docs for what matches. `max_chars == 0` gives an
/// empty snippet.
pub fn snippet(text: &str, terms: &[String], max_chars: usize) -> Snippet {
    let text = collapse(text);
    if max_chars == 0 || text.is_empty() {
        return Snippet::default();
    }
    // Byte offset of every character, and the end.
    let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let n = offsets.len();
    offsets.push(text.len());

    let terms = prepare_terms(terms);
    let matches = find_matches(&text, &terms, &offsets);

    let (start, end) = match densest(&matches, terms.len(), max_chars) {
        Some(span) => window_around(&text, &offsets, span, max_chars),
        None => {
            let end = n.min(max_chars);
            (0, snap_end(&text, &offsets, 0, end, 0))
        }
    };

    let (bs, be) = (offsets[start], offsets[end]);
    let mut out = String::with_capacity(be - bs + 2 * ELLIPSIS.len());
    if start > 0 {
        out.push_str(ELLIPSIS);
    }
    let shift = out.len();
    out.push_str(&text[bs..be]);
    if end < n {
        out.push_str(ELLIPSIS);
    }

    let mut highlights: Vec<Range<usize>> = Vec::new();
    for m in &matches {
        let s = m.bytes.start.max(bs);
        let e = m.bytes.end.min(be);
        if s >= e {
            continue;
        }
        let r = (s - bs + shift)..(e - bs + shift);
        match highlights.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => highlights.push(r),
        }
    }
    Snippet {
        text: out,
        highlights,
    }
}

/// The snippet with its highlights in bold, for a terminal.
pub fn render_ansi(s: &Snippet) -> String {
    render(s, "\u{1b}[1m", "\u{1b}[22m")
}

/// The snippet's text, without marks.
pub fn render_plain(s: &Snippet) -> String {
    s.text.clone()
}

/// `s.text` with `open`/`close` around each highlight; highlights out of order, overlapping or
/// off character boundaries are skipped.
fn render(s: &Snippet, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(s.text.len() + s.highlights.len() * 10);
    let mut at = 0;
    for r in &s.highlights {
        if r.start < at || r.start >= r.end {
            continue;
        }
        let (Some(before), Some(marked)) = (s.text.get(at..r.start), s.text.get(r.clone())) else {
            continue;
        };
        out.push_str(before);
        out.push_str(open);
        out.push_str(marked);
        out.push_str(close);
        at = r.end;
    }
    out.push_str(s.text.get(at..).unwrap_or_default());
    out
}

/// Whitespace and control characters collapsed to single spaces, trimmed; bidirectional
/// overrides dropped.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending = false;
    for c in text.chars() {
        if matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            pending = true;
            continue;
        }
        if pending && !out.is_empty() {
            out.push(' ');
        }
        pending = false;
        out.push(c);
    }
    out
}

/// Lowercased word terms, each once, common words dropped unless nothing else is left, at most
/// [`MAX_TERMS`].
fn prepare_terms(terms: &[String]) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for t in terms {
        for w in lower_words(t) {
            if !all.contains(&w) {
                all.push(w);
            }
        }
    }
    let content: Vec<String> = all
        .iter()
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .cloned()
        .collect();
    let mut terms = if content.is_empty() { all } else { content };
    terms.truncate(MAX_TERMS);
    terms
}

/// The word less one common ending, if at least 4 characters remain; else the word.
fn stem(word: &str) -> &str {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(s) = word.strip_suffix(suffix)
            && s.chars().count() >= 4
        {
            return s;
        }
    }
    word
}

fn find_matches(text: &str, terms: &[String], offsets: &[usize]) -> Vec<Match> {
    let char_at = |byte: usize| offsets.partition_point(|&o| o < byte);
    let mut out = Vec::new();
    if terms.is_empty() {
        return out;
    }
    for w in word_ranges(text) {
        let word = &text[w.clone()];
        let lower = word.to_lowercase();
        let stem = stem(&lower);
        let mut spans: Vec<(Range<usize>, usize)> = Vec::new();
        for (ti, t) in terms.iter().enumerate() {
            if t.chars().any(is_unspaced) {
                let mut i = 0;
                while i < word.len() {
                    match starts_with_ci(&word[i..], t) {
                        Some(len) if len > 0 => {
                            spans.push(((w.start + i)..(w.start + i + len), ti));
                            i += len;
                        }
                        _ => i += word[i..].chars().next().map_or(1, char::len_utf8),
                    }
                }
            } else {
                let whole = if t.chars().count() < 3 {
                    lower == *t
                } else {
                    lower.starts_with(t.as_str())
                        || (stem.chars().count() >= 4 && t.starts_with(stem))
                };
                if whole {
                    spans.push((w.clone(), ti));
                }
            }
        }
        spans.sort_by_key(|(r, ti)| (r.start, *ti));
        out.extend(spans.into_iter().map(|(bytes, term)| Match {
            chars: char_at(bytes.start)..char_at(bytes.end),
            bytes,
            term,
        }));
    }
    out
}

/// The character span of the run of matches, fitting in `max_chars` where possible, with the
/// most distinct terms, then the most matches; the earliest wins ties.
fn densest(matches: &[Match], n_terms: usize, max_chars: usize) -> Option<Range<usize>> {
    let mut counts = vec![0usize; n_terms];
    let mut distinct = 0;
    let mut best: Option<((usize, usize), Range<usize>)> = None;
    let mut j = 0;
    for i in 0..matches.len() {
        j = j.max(i);
        let from = matches[i].chars.start;
        while j < matches.len() && matches[j].chars.end.saturating_sub(from) <= max_chars {
            let t = matches[j].term;
            if counts[t] == 0 {
                distinct += 1;
            }
            counts[t] += 1;
            j += 1;
        }
        let (score, span) = if j > i {
            let end = matches[i..j]
                .iter()
                .map(|m| m.chars.end)
                .max()
                .unwrap_or(from);
            ((distinct, j - i), from..end)
        } else {
            // A single match longer than the window.
            ((1, 1), matches[i].chars.clone())
        };
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, span));
        }
        if j > i {
            let t = matches[i].term;
            counts[t] -= 1;
            if counts[t] == 0 {
                distinct -= 1;
            }
        }
    }
    best.map(|(_, span)| span)
}

/// Character window `(start, end)` of about `max_chars` around `span`, on word boundaries where
/// that costs little, never cutting into `span` unless `span` itself is too long.
fn window_around(
    text: &str,
    offsets: &[usize],
    span: Range<usize>,
    max_chars: usize,
) -> (usize, usize) {
    let n = offsets.len() - 1;
    if span.end - span.start >= max_chars {
        return (span.start, (span.start + max_chars).min(n));
    }
    let slack = max_chars - (span.end - span.start);
    let mut start = span.start.saturating_sub(slack / 2);
    let end = (start + max_chars).min(n);
    start = end.saturating_sub(max_chars).min(start);
    let start = snap_start(text, offsets, start, span.start, max_chars / 2);
    let end = snap_end(text, offsets, start, end, span.end);
    (start, end)
}

fn is_word_at(text: &str, offsets: &[usize], ch: usize) -> bool {
    text[offsets[ch]..].chars().next().is_some_and(is_word_char)
}

/// Moves a window start that falls inside a word forward to the next word, and past a leading
/// space, but not beyond `limit` nor by more than `budget` characters.
fn snap_start(text: &str, offsets: &[usize], start: usize, limit: usize, budget: usize) -> usize {
    let n = offsets.len() - 1;
    if start == 0 {
        return 0;
    }
    let mut s = start;
    if is_word_at(text, offsets, s - 1) {
        while s < limit && s < n && s - start < budget && is_word_at(text, offsets, s) {
            s += 1;
        }
        if is_word_at(text, offsets, s) && s != limit {
            return start;
        }
    }
    while s < limit && text[offsets[s]..].starts_with(' ') {
        s += 1;
    }
    s
}

/// Moves a window end that falls inside a word back to the end of the previous word, and before
/// a trailing space, but not below `limit` nor to less than half the window.
fn snap_end(text: &str, offsets: &[usize], start: usize, end: usize, limit: usize) -> usize {
    let n = offsets.len() - 1;
    let floor = limit.max(start + (end - start) / 2);
    let mut e = end;
    if e < n && is_word_at(text, offsets, e) {
        while e > floor && is_word_at(text, offsets, e - 1) {
            e -= 1;
        }
        if e > start && is_word_at(text, offsets, e - 1) && e != limit {
            e = end;
        }
    }
    while e > floor && text[offsets[e - 1]..].starts_with(' ') {
        e -= 1;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn marked(s: &Snippet) -> String {
        render(s, "[", "]")
    }

    #[test]
    fn short_text_is_whole_and_collapsed() {
        let s = snippet(
            "  The roof\n\n  membrane\tleaks. ",
            &terms(&["membrane"]),
            100,
        );
        assert_eq!(s.text, "The roof membrane leaks.");
        assert_eq!(marked(&s), "The roof [membrane] leaks.");
        assert_eq!(render_plain(&s), "The roof membrane leaks.");
        assert_eq!(
            render_ansi(&s),
            "The roof \u{1b}[1mmembrane\u{1b}[22m leaks."
        );
    }

    #[test]
    fn prefix_and_stem_matching() {
        let text = "Roofs, roofing and a roofer; membranes. The rooftop the there. Run runs.";
        let s = snippet(text, &terms(&["roofing", "membrane", "the", "run"]), 200);
        assert_eq!(
            marked(&s),
            "[Roofs], [roofing] and a roofer; [membranes]. The rooftop the there. [Run] [runs]."
        );
        // `roofer`/`rooftop` neither start with `roofing` nor have a stem it starts with;
        // `the` is ignored next to other terms; `run` is short, but `runs` starts with it.
    }

    #[test]
    fn short_terms_match_whole_words_only() {
        let s = snippet("an AI model, aim high", &terms(&["ai"]), 100);
        assert_eq!(marked(&s), "an [AI] model, aim high");
        let s = snippet("the theory of the thing", &terms(&["the"]), 100);
        assert_eq!(marked(&s), "[the] [theory] of [the] thing");
    }

    #[test]
    fn window_centres_on_the_densest_cluster() {
        let filler = "lorem ipsum dolor sit amet ".repeat(20);
        let text = format!(
            "{filler}membrane once here. {filler}the roof membrane failed near the roof edge. {filler}"
        );
        let s = snippet(&text, &terms(&["roof", "membrane"]), 80);
        assert!(
            s.text.starts_with('…') && s.text.ends_with('…'),
            "{}",
            s.text
        );
        assert!(
            marked(&s).contains("[roof] [membrane] failed near the [roof] edge"),
            "{}",
            marked(&s)
        );
        let inner = s.text.trim_start_matches('…').trim_end_matches('…');
        assert!(inner.chars().count() <= 80, "{}", inner.chars().count());
        // Word boundaries at both cuts.
        assert!(inner.starts_with(|c: char| c.is_alphanumeric()), "{inner}");
        assert!(inner.ends_with(|c: char| c.is_alphanumeric()), "{inner}");
        for r in &s.highlights {
            let w = &s.text[r.clone()];
            assert!(w == "roof" || w == "membrane", "{w}");
        }
    }

    #[test]
    fn no_terms_or_no_match_gives_the_start() {
        let text = "alpha beta gamma delta epsilon zeta eta theta";
        let s = snippet(text, &[], 20);
        assert_eq!(s.text, "alpha beta gamma…");
        assert!(s.highlights.is_empty());
        let s = snippet(text, &terms(&["omega"]), 20);
        assert_eq!(s.text, "alpha beta gamma…");
        let s = snippet(text, &terms(&["omega"]), 1000);
        assert_eq!(s.text, text);
    }

    #[test]
    fn match_at_the_end_shifts_the_window() {
        let text = format!("{} final keyword", "word ".repeat(50));
        let s = snippet(&text, &terms(&["keyword"]), 30);
        assert!(
            s.text.starts_with('…') && !s.text.ends_with('…'),
            "{}",
            s.text
        );
        assert!(marked(&s).ends_with("final [keyword]"), "{}", marked(&s));
    }

    #[test]
    fn unspaced_scripts_match_inside_words() {
        let text = "私は東京タワーの近くに住んでいます。京都にも行きました。";
        let s = snippet(text, &terms(&["東京", "京都"]), 100);
        assert_eq!(
            marked(&s),
            "私は[東京]タワーの近くに住んでいます。[京都]にも行きました。"
        );
        // A long unspaced run is cut inside the word, on a character boundary.
        let long = "東京".repeat(200);
        let s = snippet(&long, &terms(&["東京"]), 10);
        assert_eq!(s.text.chars().count(), 11);
        assert!(
            s.highlights
                .iter()
                .all(|r| s.text.is_char_boundary(r.start))
        );
    }

    #[test]
    fn case_and_scripts() {
        let s = snippet("ΣΟΦΊΑ και Straße — ÉCOLE", &terms(&["σοφία", "école"]), 100);
        assert_eq!(marked(&s), "[ΣΟΦΊΑ] και Straße — [ÉCOLE]");
    }

    #[test]
    fn controls_become_spaces_and_tiny_windows_work() {
        let s = snippet("a\u{1b}b\u{0}c\u{202e}d", &[], 100);
        assert_eq!(s.text, "a b cd");
        assert_eq!(snippet("anything", &[], 0), Snippet::default());
        assert_eq!(snippet("", &terms(&["x"]), 10), Snippet::default());
        let s = snippet("supercalifragilistic word", &terms(&["word"]), 3);
        assert_eq!(marked(&s), "…[wor]…");
        let s = snippet("x y", &terms(&["y"]), 1);
        assert_eq!(marked(&s), "…[y]");
    }

    #[test]
    fn render_skips_bad_ranges() {
        let s = Snippet {
            text: "héllo world".into(),
            highlights: vec![1..2, 7..12, 3..5, 20..30],
        };
        assert_eq!(render(&s, "[", "]"), "héllo [world]");
    }

    #[test]
    fn debug_hides_the_text() {
        let s = snippet("private words", &[], 50);
        assert!(!format!("{s:?}").contains("private"));
    }
}
