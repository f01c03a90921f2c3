//! What happens to a fused list before it is shown: near-duplicates go, neighbouring chunks of
//! one document become one passage, and the list is cut to length.

use std::collections::{BTreeMap, HashSet};

use docent_core::Hit;

use crate::best_first;

/// Cleans up a ranked list and cuts it to `limit` hits, best first (by score, then chunk id, so
/// the result depends only on the input):
///
/// 1. **Near-duplicates.** Of hits with the same (non-empty) `content_hash` (the same text, in
///    this document or another) only the best stays; so does only the best of hits with the same `chunk_id`,
///    or the same `doc_id` and `ordinal`.
/// 2. **Neighbours.** Hits of one document whose `ordinal`s follow each other (chains of any
///    length) become one hit: the best one's identity and fields (`chunk_id`, `content_hash`,
///    page, heading, score = the chain's best), with `ordinal` the chain's first, `bytes` and
///    `lines` spanning the whole chain, and `text` the chunks' texts in order, joined without
///    repeating their overlap: when a chunk starts before the text so far ends, only its part
///    after that end is appended (from the next character boundary); chunks that do not overlap
///    are joined with a newline.
/// 3. The first `limit` hits are kept.
pub fn postprocess(hits: Vec<Hit>, limit: usize) -> Vec<Hit> {
    let hits = dedupe(hits);

    let mut by_doc: BTreeMap<_, Vec<Hit>> = BTreeMap::new();
    for h in hits {
        by_doc.entry(h.doc_id.clone()).or_default().push(h);
    }
    let mut out = Vec::new();
    for (_, mut doc_hits) in by_doc {
        doc_hits.sort_by_key(|h| h.ordinal);
        let mut chain: Vec<Hit> = Vec::new();
        for h in doc_hits {
            let follows = chain
                .last()
                .is_some_and(|last| last.ordinal.checked_add(1) == Some(h.ordinal));
            if !follows {
                out.extend(merge(&chain));
                chain.clear();
            }
            chain.push(h);
        }
        out.extend(merge(&chain));
    }

    out.sort_by(best_first);
    out.truncate(limit);
    out
}

/// Step 1 of [`postprocess`] alone: near-duplicates dropped, best first, nothing merged (the
/// ask pipeline cites chunks one by one).
pub fn dedupe(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by(best_first);
    let mut hashes = HashSet::with_capacity(hits.len());
    let mut chunks = HashSet::with_capacity(hits.len());
    let mut places = HashSet::with_capacity(hits.len());
    hits.retain(|h| {
        let new_hash = h.content_hash.as_str().is_empty() || hashes.insert(h.content_hash.clone());
        let new_chunk = chunks.insert(h.chunk_id.clone());
        let new_place = places.insert((h.doc_id.clone(), h.ordinal));
        new_hash && new_chunk && new_place
    });
    hits
}

/// One hit for a chain of hits of one document with consecutive ordinals, sorted by ordinal
/// (`None` for an empty chain).
fn merge(chain: &[Hit]) -> Option<Hit> {
    let best = chain.iter().min_by(|a, b| best_first(a, b))?;
    let (first, rest) = chain.split_first()?;
    let mut text = first.text.clone();
    let mut bytes = first.bytes.clone();
    let mut lines = first.lines;
    for next in rest {
        if next.bytes.start < bytes.end {
            let skip = ceil_boundary(&next.text, bytes.end - next.bytes.start);
            text.push_str(&next.text[skip..]);
        } else {
            text.push('\n');
            text.push_str(&next.text);
        }
        bytes.start = bytes.start.min(next.bytes.start);
        bytes.end = bytes.end.max(next.bytes.end);
        lines.start = lines.start.min(next.lines.start);
        lines.end = lines.end.max(next.lines.end);
    }
    Some(Hit {
        ordinal: first.ordinal,
        text,
        bytes,
        lines,
        ..best.clone()
    })
}

/// The smallest character boundary of `s` at or after `i` (`s.len()` past the end).
fn ceil_boundary(s: &str, i: usize) -> usize {
    (i..s.len())
        .find(|&j| s.is_char_boundary(j))
        .unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hit;
    use docent_core::{ContentHash, LineRange};

    /// A document's text and a hit on its `ordinal`th chunk, `bytes` of that text.
    fn chunk(
        doc_text: &str,
        doc: &str,
        ordinal: u32,
        bytes: std::ops::Range<usize>,
        score: f32,
    ) -> Hit {
        let text = &doc_text[bytes.clone()];
        let mut h = test_hit(&format!("{doc}-{ordinal}"), doc, ordinal, score, text);
        let first = doc_text[..bytes.start].matches('\n').count() as u32 + 1;
        h.lines = LineRange::new(first, first + text.matches('\n').count() as u32);
        h.bytes = bytes;
        h
    }

    const DOC: &str = "alpha beta gamma.\ndelta epsilon zeta.\neta theta iota.\nkappa lambda mu.";

    #[test]
    fn duplicates_keep_the_best() {
        let mut a = test_hit("a", "d1", 0, 0.5, "same text");
        let mut b = test_hit("b", "d2", 0, 0.9, "same text");
        a.content_hash = ContentHash("h".into());
        b.content_hash = ContentHash("h".into());
        let c = test_hit("c", "d3", 0, 0.7, "other");
        let out = postprocess(vec![a, b, c], 10);
        let ids: Vec<&str> = out.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn overlapping_neighbours_merge_without_repeating() {
        // chunk 0: "alpha beta gamma.\ndelta epsilon zeta." chunk 1 overlaps from "delta".
        let c0 = chunk(DOC, "d", 0, 0..37, 0.4);
        let c1 = chunk(DOC, "d", 1, 18..53, 0.8);
        assert_eq!(c1.text, "delta epsilon zeta.\neta theta iota.");
        let out = postprocess(vec![c0, c1], 10);
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert_eq!(m.text, &DOC[0..53]);
        assert_eq!(m.bytes, 0..53);
        assert_eq!(m.lines, LineRange::new(1, 3));
        assert_eq!(m.ordinal, 0);
        assert_eq!(m.chunk_id.as_str(), "d-1");
        assert_eq!(m.score, 0.8);
    }

    #[test]
    fn chains_of_three_and_gaps() {
        let c0 = chunk(DOC, "d", 0, 0..17, 0.9);
        let c1 = chunk(DOC, "d", 1, 18..37, 0.1);
        let c2 = chunk(DOC, "d", 2, 30..53, 0.2);
        let c4 = chunk(DOC, "d", 4, 54..70, 0.3);
        let out = postprocess(vec![c4, c2, c1, c0], 10);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].chunk_id.as_str(), "d-0");
        assert_eq!(
            out[0].text,
            "alpha beta gamma.\ndelta epsilon zeta.\neta theta iota."
        );
        assert_eq!(out[0].bytes, 0..53);
        assert_eq!(out[0].lines, LineRange::new(1, 3));
        assert_eq!(out[1].chunk_id.as_str(), "d-4");
        assert_eq!(out[1].text, "kappa lambda mu.");
    }

    #[test]
    fn contained_chunk_adds_nothing() {
        let c0 = chunk(DOC, "d", 0, 0..53, 0.5);
        let c1 = chunk(DOC, "d", 1, 18..37, 0.6);
        let out = postprocess(vec![c0, c1], 10);
        assert_eq!(out[0].text, &DOC[0..53]);
        assert_eq!(out[0].chunk_id.as_str(), "d-1");
    }

    #[test]
    fn overlap_cut_lands_on_a_char_boundary() {
        let doc = "ééé ààà";
        let mut c0 = chunk(doc, "d", 0, 0..6, 0.5); // "ééé"
        let c1 = chunk(doc, "d", 1, 4..doc.len(), 0.4); // "é ààà"
        // Pretend the first chunk ends inside a character of the second.
        c0.bytes = 0..5;
        let out = postprocess(vec![c0, c1], 10);
        assert_eq!(out[0].text, "ééé ààà");
    }

    #[test]
    fn other_documents_and_non_neighbours_stay_apart() {
        let a0 = chunk(DOC, "a", 0, 0..17, 0.5);
        let b1 = chunk(DOC, "b", 1, 18..37, 0.6);
        let a2 = chunk(DOC, "a", 2, 38..53, 0.7);
        let out = postprocess(vec![a0, b1, a2], 10);
        let ids: Vec<&str> = out.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(ids, ["a-2", "b-1", "a-0"]);
        assert_eq!(out[2].text, "alpha beta gamma.");
    }

    #[test]
    fn truncates_after_merging_and_is_deterministic() {
        let hits = vec![
            chunk(DOC, "d", 0, 0..17, 0.5),
            chunk(DOC, "d", 1, 18..37, 0.5),
            chunk(DOC, "e", 0, 0..17, 0.4),
            chunk(DOC, "f", 0, 0..17, 0.3),
        ];
        let mut reversed = hits.clone();
        reversed.reverse();
        // Same text in e and f as in d's chunk 0: both go as duplicates of d-0.
        let out = postprocess(hits, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].chunk_id.as_str(), "d-0");
        assert_eq!(out, postprocess(reversed, 1));
        assert!(postprocess(Vec::new(), 5).is_empty());
    }
}
