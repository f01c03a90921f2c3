//! The crate from outside: the BEIR loader and metrics on the real SciFact dataset (kept in
//! `shared/eval/scifact` beside the repository), the search pipeline end to end on hand-made
//! hits, and robustness of the query parser and the snippet maker on arbitrary input.

use std::collections::HashMap;
use std::path::PathBuf;

use docent_core::{ChunkId, ContentHash, DocId, DocKind, Hit, LineRange};
use docent_retrieve::{
    Fusion, MAX_QUERY_CHARS, Snippet, evaluate, fuse, load_beir, parse_query, postprocess,
    rank_documents, render_ansi, render_plain, snippet,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

// ---- SciFact ---------------------------------------------------------------------------------

fn scifact_dir() -> PathBuf {
    let dir = docent_test_support::repo_root().join("../shared/eval/scifact");
    assert!(
        dir.join("corpus.jsonl").is_file(),
        "the SciFact dataset is missing: expected {} (corpus.jsonl, queries.jsonl, qrels/test.tsv), \
         the `shared/` folder that sits beside the repository checkout",
        dir.display()
    );
    dir
}

#[test]
fn scifact_loads_with_the_published_counts() {
    let ds = load_beir(&scifact_dir(), "test").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ds.corpus.len(), 5_183);
    assert_eq!(ds.queries.len(), 300);
    assert_eq!(ds.qrels.len(), 300);
    assert_eq!(ds.judgments(), 339);
    assert!(
        ds.corpus
            .iter()
            .all(|d| !d.id.is_empty() && !d.text.is_empty())
    );
    assert!(ds.queries.values().all(|q| !q.trim().is_empty()));

    // Every judged document is in the corpus.
    let ids: std::collections::HashSet<&str> = ds.corpus.iter().map(|d| d.id.as_str()).collect();
    for rels in ds.qrels.values() {
        for d in rels.keys() {
            assert!(
                ids.contains(d.as_str()),
                "judged document {d} not in the corpus"
            );
        }
    }

    // A perfect ranking scores 1 everywhere, no ranking 0, one that finds the relevant
    // documents only past rank 10 gets recall but no nDCG@10 or MRR@10.
    let oracle: HashMap<String, Vec<String>> = ds
        .qrels
        .iter()
        .map(|(q, rels)| {
            let mut docs: Vec<(&String, &u32)> = rels.iter().collect();
            docs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            (
                q.clone(),
                docs.into_iter().map(|(d, _)| d.clone()).collect(),
            )
        })
        .collect();
    let r = evaluate(&ds.qrels, &oracle);
    assert_eq!(r.queries, 300);
    assert!((r.ndcg_at_10 - 1.0).abs() < 1e-12, "{r:?}");
    assert!((r.recall_at_100 - 1.0).abs() < 1e-12, "{r:?}");
    assert!((r.mrr_at_10 - 1.0).abs() < 1e-12, "{r:?}");

    let r = evaluate(&ds.qrels, &HashMap::new());
    assert_eq!(
        (r.ndcg_at_10, r.recall_at_100, r.mrr_at_10),
        (0.0, 0.0, 0.0)
    );

    let late: HashMap<String, Vec<String>> = oracle
        .iter()
        .map(|(q, docs)| {
            let mut run: Vec<String> = (0..10).map(|i| format!("filler-{i}")).collect();
            run.extend(docs.iter().cloned());
            (q.clone(), run)
        })
        .collect();
    let r = evaluate(&ds.qrels, &late);
    assert_eq!((r.ndcg_at_10, r.mrr_at_10), (0.0, 0.0));
    assert!((r.recall_at_100 - 1.0).abs() < 1e-12);
}

#[test]
fn scifact_chunk_hits_rank_documents() {
    let ds = load_beir(&scifact_dir(), "test").unwrap_or_else(|e| panic!("{e}"));
    let (q, rels) = ds
        .qrels
        .iter()
        .min_by_key(|(q, _)| q.as_str())
        .expect("qrels");
    let relevant: Vec<&String> = rels.keys().collect();
    // Chunk-level hits: a relevant document's weak chunk first, its strong chunk later.
    let mut hits: Vec<(String, f32)> = vec![
        ("other-1".into(), 0.9),
        (relevant[0].clone(), 0.1),
        ("other-2".into(), 0.5),
        (relevant[0].clone(), 0.95),
    ];
    hits.push(("other-1".into(), 0.2));
    let ranked = rank_documents(&hits, 10);
    assert_eq!(ranked[0], *relevant[0]);
    assert_eq!(ranked.len(), 3);
    let runs = HashMap::from([(q.clone(), ranked)]);
    let one = HashMap::from([(q.clone(), rels.clone())]);
    assert!(evaluate(&one, &runs).mrr_at_10 > 0.99);
}

// ---- the pipeline ----------------------------------------------------------------------------

const DOC: &str = "Roof inspection, March.\nThe membrane on the north side is cracked.\n\
                   Water enters at the parapet when it rains hard.\nQuote for repair attached.";

fn hit(doc: &str, ordinal: u32, bytes: std::ops::Range<usize>, score: f32) -> Hit {
    let text = &DOC[bytes.clone()];
    Hit {
        chunk_id: ChunkId(format!("{doc}#{ordinal}")),
        doc_id: DocId(doc.to_string()),
        path: format!("/home/u/{doc}.md"),
        part: None,
        kind: DocKind::Note,
        ordinal,
        text: text.to_string(),
        page: None,
        lines: LineRange::new(ordinal + 1, ordinal + 2),
        bytes,
        heading: Some("Roof".into()),
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

#[test]
fn query_to_snippet() {
    let q = parse_query("cracked membrane kind:note after:2024-02-30");
    assert_eq!(q.text, "cracked membrane");
    assert_eq!(q.filter.kinds, vec![DocKind::Note]);
    assert_eq!(q.warnings.len(), 1);

    // Chunks 0..2 of `report`, overlapping, and a copy of chunk 1 in `copy`.
    let c0 = hit("report", 0, 0..66, 11.0);
    let c1 = hit("report", 1, 24..114, 7.0);
    let c2 = hit("report", 2, 67..141, 0.3);
    let dup = hit("copy", 5, 24..114, 6.0);
    let bm25 = vec![c0.clone(), c1.clone(), dup.clone()];
    let vector = vec![c1.clone(), dup.clone(), c2.clone()];
    let fused = fuse(&bm25, &vector, &Fusion::default(), 50);
    assert_eq!(fused.len(), 4);
    assert_eq!(fused[0].chunk_id, c1.chunk_id);

    let out = postprocess(fused, 10);
    assert_eq!(out.len(), 1, "{out:?}");
    let passage = &out[0];
    assert_eq!(passage.chunk_id, c1.chunk_id);
    assert_eq!(passage.text, DOC);
    assert_eq!(passage.bytes, 0..DOC.len());
    assert_eq!(passage.ordinal, 0);

    let s = snippet(&passage.text, &q.terms, 60);
    let plain = render_plain(&s);
    assert!(
        plain.contains("membrane on the north side is cracked"),
        "{plain}"
    );
    assert_eq!(
        render_ansi(&s).matches("\u{1b}[1m").count(),
        s.highlights.len()
    );
    assert_eq!(s.highlights.len(), 2);
}

// ---- robustness ------------------------------------------------------------------------------

/// Pieces that have broken text handling somewhere: syntax characters, quotes, filters, control
/// characters, scripts with and without spaces, right-to-left text, combining marks, emoji.
const PIECES: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\u{0}",
    "\u{1b}[31m",
    "\u{1b}",
    "\u{7f}",
    "\u{9b}",
    "\"",
    "\"\"",
    ":",
    "::",
    "kind:",
    "kind:pdf",
    "kind:pdf,email",
    "kind:video",
    "path:",
    "path:\"",
    "path:\"My Docs/\"",
    "from:",
    "from:\"a b",
    "subject:\"roof",
    "after:",
    "after:2024-02-29",
    "after:2024-13-45",
    "before:yesterday",
    "before:2024-01-01",
    "http://x.y",
    "note:",
    "+",
    "-",
    "&&",
    "||",
    "!",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "^",
    "~",
    "*",
    "?",
    "\\",
    "/",
    "roof",
    "membrane",
    "Membranes",
    "ROOFING",
    "the",
    "a",
    "東京",
    "タワー",
    "京都",
    "ภาษาไทย",
    "שלום",
    "مرحبا",
    "\u{202e}",
    "\u{200f}",
    "\u{200b}",
    "\u{200d}",
    "e\u{301}",
    "\u{301}",
    "👍🏽",
    "👨‍👩‍👧",
    "🇫🇷",
    "İ",
    "ß",
    "ﬁ",
    "Σ",
    "ς",
    "\u{fffd}",
    "\u{10ffff}",
    "…",
];

/// A deterministic pseudo-random string of `n` pieces.
fn gen_string(seed: &mut u64, n: usize) -> String {
    let mut s = String::new();
    for _ in 0..n {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        s.push_str(PIECES[(*seed % PIECES.len() as u64) as usize]);
    }
    s
}

fn check_query(input: &str) {
    let q = parse_query(input);
    assert!(q.text.chars().count() <= MAX_QUERY_CHARS);
    assert!(!q.text.chars().any(char::is_control));
    assert_eq!(q.text, q.text.trim());
    for t in &q.terms {
        assert!(!t.is_empty());
        assert_eq!(*t, t.to_lowercase());
    }
}

fn check_snippet(text: &str, terms: &[String], max_chars: usize) -> Snippet {
    let s = snippet(text, terms, max_chars);
    let inner = s.text.trim_start_matches('…').trim_end_matches('…');
    assert!(
        inner.chars().count() <= max_chars,
        "{} > {max_chars}",
        inner.chars().count()
    );
    assert!(!s.text.chars().any(char::is_control));
    let mut last_end = 0;
    for r in &s.highlights {
        assert!(r.start < r.end && r.end <= s.text.len());
        assert!(r.start >= last_end, "highlights overlap or are unsorted");
        assert!(s.text.is_char_boundary(r.start) && s.text.is_char_boundary(r.end));
        last_end = r.end;
    }
    let ansi = render_ansi(&s);
    assert_eq!(ansi.matches("\u{1b}[1m").count(), s.highlights.len());
    assert_eq!(render_plain(&s), s.text);
    s
}

#[test]
fn generated_inputs_never_break_parsing_or_snippets() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..1_500 {
        let n = [0, 1, 2, 5, 20, 80][round % 6];
        let input = gen_string(&mut seed, n);
        check_query(&input);
        let q = parse_query(&input);
        let text = gen_string(&mut seed, n * 4);
        for max in [0, 1, 2, 7, 40, 300] {
            check_snippet(&text, &q.terms, max);
        }
    }
}

#[test]
fn long_inputs() {
    let mut seed = 42;
    let input = gen_string(&mut seed, 6_000);
    assert!(input.chars().count() > 10_000);
    check_query(&input);
    check_query(&"漢".repeat(10_000));
    check_query(&"\"".repeat(10_000));
    check_query(&"kind:pdf ".repeat(2_000));
    let q = parse_query(&"roof ".repeat(3_000));
    assert_eq!(q.terms, ["roof"]);
    let text = gen_string(&mut seed, 20_000);
    check_snippet(&text, &q.terms, 200);
    check_snippet(&"membrane ".repeat(5_000), &["membrane".to_string()], 100);
}

/// `cases` cases; failures are kept in `tests/retrieve.proptest-regressions` and re-run first.
fn cases(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_unicode_query_parses(input in any::<String>()) {
        check_query(&input);
    }

    #[test]
    fn any_unicode_snippets(
        text in any::<String>(),
        terms in prop::collection::vec(any::<String>(), 0..4),
        max in 0usize..120,
    ) {
        check_snippet(&text, &terms, max);
    }

    #[test]
    fn snippets_of_wordy_text(
        text in "([a-zA-Zé東京 ,.\n]{0,12} ){0,60}",
        terms in prop::collection::vec("[a-zé東京]{1,6}", 0..4),
        max in 1usize..80,
    ) {
        check_snippet(&text, &terms, max);
    }
}
