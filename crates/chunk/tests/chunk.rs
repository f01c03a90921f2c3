//! Property tests of the chunker on random documents, with the whitespace counter (many cases)
//! and the real all-MiniLM-L6-v2 tokenizer (fewer; the model must be installed, see
//! `scripts/fetch-models.sh`), and speed checks on a megabyte of text.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Instant;

use docent_chunk::{ChunkConfig, chunk_document};
use docent_core::{Block, BlockKind, Chunk, DocId, DocKind, Document, TokenCounter};
use docent_embed::HfTokenCounter;
use docent_test_support::{WhitespaceCounter, require_model};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

static MINILM: LazyLock<HfTokenCounter> = LazyLock::new(|| {
    let dir = require_model("all-MiniLM-L6-v2");
    HfTokenCounter::from_model_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
});

// ---- random documents ------------------------------------------------------------------------

/// One block to be: heading level (if a heading), its text, whether a new page starts before
/// it, the whitespace before it, and whether its range takes in whitespace around the text.
#[derive(Clone, Debug)]
struct BlockSpec {
    heading: Option<u8>,
    text: String,
    new_page: bool,
    gap: &'static str,
    padded: bool,
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[a-z]{1,9}",
        3 => "[A-Z][a-z]{0,8}",
        4 => prop::sample::select(vec![
            "héllo", "naïve", "日本語の文章", "Ελληνικά", "Привет", "👍🏽", "e\u{301}", "ﬁnal",
            "Z\u{336}\u{337}a\u{321}", "שלום", "مرحبا", "straße", "İstanbul", "x\u{200b}y",
            "3.14", "e.g.", "don't", "C++", "a/b", "—", "«quote»", "🇫🇷", "ｆｕｌｌ", "\u{fffd}",
        ])
        .prop_map(String::from),
        1 => "[A-Za-z0-9+/]{40,600}",
        1 => "https://[a-z]{3,10}\\.com/([a-z0-9]{1,8}/){1,40}",
        1 => prop::sample::select(vec![300usize, 2000, 5000]).prop_map(|n| "ab".repeat(n / 2)),
        1 => (1usize..400).prop_map(|n| "é\u{301}".repeat(n)),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        20 => Just(" "),
        4 => Just(". "),
        1 => Just("! "),
        1 => Just("? "),
        2 => Just(", "),
        3 => Just("\n"),
        1 => Just(".\n"),
        1 => Just("\n\n"),
        1 => Just("\u{a0}"),
        1 => Just(" \t "),
        1 => Just("。"),
        1 => Just(""),
    ]
}

fn paragraph(max_words: usize) -> impl Strategy<Value = String> {
    prop::collection::vec((word(), separator()), 0..max_words).prop_map(|parts| {
        let mut s = String::new();
        for (w, sep) in parts {
            s.push_str(&w);
            s.push_str(sep);
        }
        s
    })
}

fn block_spec() -> impl Strategy<Value = BlockSpec> {
    (
        prop_oneof![4 => Just(None), 1 => (1u8..4).prop_map(Some)],
        prop_oneof![6 => paragraph(60), 1 => paragraph(400), 1 => Just(" \n ".to_string())],
        prop::bool::weighted(0.15),
        prop::sample::select(vec!["\n\n", "\n", "\n\n\n", " \n \n", ""]),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(heading, text, new_page, gap, padded)| BlockSpec {
            text: match heading {
                // Headings are short: the first few words of the text.
                Some(_) => text
                    .split_whitespace()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join(" "),
                None => text,
            },
            heading,
            new_page,
            gap,
            padded,
        })
}

/// A valid document from block specs: blocks in order, not overlapping, with consistent
/// first lines, pages (when `paged`) and heading paths.
fn build(specs: &[BlockSpec], paged: bool, title: Option<String>) -> Document {
    let mut text = String::new();
    let mut blocks = Vec::new();
    let mut page = 1u32;
    let mut path: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        if i > 0 {
            text.push_str(spec.gap);
        }
        if spec.new_page && i > 0 {
            page += 1;
        }
        let kind = match spec.heading {
            Some(level) => {
                path.truncate(usize::from(level) - 1);
                path.push(spec.text.clone());
                BlockKind::Heading { level }
            }
            None => BlockKind::Text,
        };
        let start = text.len();
        if spec.padded {
            text.push_str("  ");
        }
        text.push_str(&spec.text);
        if spec.padded {
            text.push_str(" \n");
        }
        blocks.push(Block {
            kind,
            range: start..text.len(),
            first_line: 1 + text[..start].matches('\n').count() as u32,
            page: paged.then_some(page),
            heading_path: path.clone(),
        });
    }
    Document {
        id: DocId::for_source("/prop/doc.md", None),
        path: PathBuf::from("/prop/doc.md"),
        part: None,
        kind: if paged { DocKind::Pdf } else { DocKind::Note },
        parser: "test".into(),
        title,
        text,
        blocks,
        meta: Default::default(),
        email: None,
        parent: None,
        pages: paged.then_some(page),
    }
}

fn document() -> impl Strategy<Value = Document> {
    (
        prop::collection::vec(block_spec(), 0..12),
        any::<bool>(),
        prop::option::of(paragraph(8)),
    )
        .prop_map(|(specs, paged, title)| build(&specs, paged, title))
}

fn config() -> impl Strategy<Value = ChunkConfig> {
    (16usize..300, 0.0f32..=0.5).prop_map(|(max_tokens, overlap)| ChunkConfig {
        max_tokens,
        overlap,
    })
}

// ---- the properties --------------------------------------------------------------------------

/// Checks every guarantee of the chunker.
fn check(doc: &Document, chunks: &[Chunk], cfg: &ChunkConfig, counter: &dyn TokenCounter) {
    let text = &doc.text;
    let newlines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
    let line_at = |pos: usize| 1 + newlines.partition_point(|&p| p < pos) as u32;
    let line_count = 1 + newlines.len() as u32;
    let overhead = counter.overhead();
    for (i, c) in chunks.iter().enumerate() {
        let r = c.span.bytes.clone();
        assert!(
            r.start < r.end && r.end <= text.len(),
            "chunk {i}: span {r:?}"
        );
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
        assert_eq!(&text[r.clone()], c.text, "chunk {i}");
        assert_eq!(c.text.trim(), c.text, "chunk {i} is not trimmed");
        assert_eq!(c.ordinal as usize, i);
        assert_eq!(c.doc, doc.id);

        let n = counter.count(&c.embedding_text());
        assert_eq!(c.tokens as usize, n, "chunk {i}: recorded tokens");
        assert!(
            n <= cfg.max_tokens,
            "chunk {i}: {n} tokens > {}",
            cfg.max_tokens
        );
        assert!(
            c.text.len() <= cfg.max_bytes(),
            "chunk {i}: {} bytes",
            c.text.len()
        );

        // Lines: the blocks' first lines agree with the text here, so they are exact.
        assert_eq!(
            (c.span.lines.start, c.span.lines.end),
            (line_at(r.start), line_at(r.end))
        );
        assert!(c.span.lines.end <= line_count);

        // One section: every block it touches (with text) has its page and heading path, and a
        // heading it touches comes before any of its text.
        for b in &doc.blocks {
            let lo = b.range.start.max(r.start);
            let hi = b.range.end.min(r.end);
            if lo >= hi || text[lo..hi].trim().is_empty() {
                continue;
            }
            assert_eq!(b.page, c.span.page, "chunk {i} spans pages");
            assert_eq!(
                b.heading_path, c.span.heading_path,
                "chunk {i} spans sections"
            );
            if matches!(b.kind, BlockKind::Heading { .. }) && b.range.start > r.start {
                assert!(
                    text[r.start..b.range.start].trim().is_empty(),
                    "chunk {i} has text before a heading"
                );
            }
        }
        // Context: the heading path, else the title (on one line, maybe cut).
        match &c.context {
            Some(ctx) if !c.span.heading_path.is_empty() => {
                let full = c.span.heading_path.join(" > ");
                let full = full.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(full.starts_with(ctx.as_str()), "chunk {i}: context");
            }
            Some(ctx) => {
                let title = doc.title.as_deref().unwrap_or_default();
                let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(title.starts_with(ctx.as_str()), "chunk {i}: context");
            }
            None => {}
        }
    }

    // Order, and overlap only inside a section and within its budget.
    let budget = (cfg.overlap * cfg.max_tokens as f32).floor() as usize;
    for (i, pair) in chunks.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        let (ra, rb) = (&a.span.bytes, &b.span.bytes);
        assert!(
            rb.end > ra.end && rb.start > ra.start,
            "chunks {i}, {} out of order",
            i + 1
        );
        if rb.start < ra.end {
            assert_eq!(a.span.page, b.span.page, "overlap across pages");
            assert_eq!(
                a.span.heading_path, b.span.heading_path,
                "overlap across sections"
            );
            let shared = counter
                .count(&text[rb.start..ra.end])
                .saturating_sub(overhead);
            assert!(shared <= budget, "overlap of {shared} tokens > {budget}");
        }
    }

    // Every non-whitespace character of every block is in some chunk. Spans are sorted by
    // start, so a sweep suffices.
    let mut covered = vec![false; text.len()];
    for c in chunks {
        covered[c.span.bytes.clone()]
            .iter_mut()
            .for_each(|x| *x = true);
    }
    for b in &doc.blocks {
        for (off, ch) in text[b.range.clone()].char_indices() {
            let pos = b.range.start + off;
            assert!(
                ch.is_whitespace() || covered[pos],
                "byte {pos} ({ch:?}) is in no chunk"
            );
        }
    }

    let mut ids: Vec<_> = chunks.iter().map(|c| &c.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), chunks.len(), "duplicate chunk ids");
}

/// `cases` cases; failures are kept in `tests/chunk.proptest-regressions` and re-run first.
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
    #![proptest_config(cases(300))]

    #[test]
    fn random_documents_with_whitespace_counter(doc in document(), cfg in config()) {
        let chunks = chunk_document(&doc, &WhitespaceCounter, &cfg).unwrap();
        check(&doc, &chunks, &cfg, &WhitespaceCounter);
    }
}

proptest! {
    #![proptest_config(cases(32))]

    #[test]
    fn random_documents_with_minilm_tokenizer(doc in document(), cfg in config()) {
        let counter: &HfTokenCounter = &MINILM;
        let chunks = chunk_document(&doc, counter, &cfg).unwrap();
        check(&doc, &chunks, &cfg, counter);
    }
}

// ---- speed -----------------------------------------------------------------------------------

/// About `bytes` of prose-like text in Markdown-ish blocks, with a heading every 20 blocks.
fn prose(bytes: usize) -> Document {
    const WORDS: &[&str] = &[
        "the",
        "model",
        "retrieval",
        "of",
        "documents",
        "is",
        "a",
        "private",
        "search",
        "and",
        "every",
        "answer",
        "cites",
        "its",
        "sources",
        "on",
        "this",
        "machine",
        "without",
        "any",
        "network",
        "índice",
        "naïve",
        "tokenizer",
        "chunks",
        "budget",
        "overlap",
        "section",
        "heading",
        "paragraph",
        "sentence",
        "2024",
        "e-mail",
        "report",
        "PDF",
        "notes",
    ];
    let mut specs = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut total = 0;
    while total < bytes {
        let mut para = String::new();
        for _ in 0..(2 + next(8)) {
            let len = 6 + next(20);
            for w in 0..len {
                let word = WORDS[next(WORDS.len())];
                if w == 0 {
                    let mut cs = word.chars();
                    if let Some(c) = cs.next() {
                        para.extend(c.to_uppercase());
                        para.push_str(cs.as_str());
                    }
                } else {
                    para.push_str(word);
                }
                para.push_str(if w + 1 == len {
                    ". "
                } else if next(12) == 0 {
                    ",\n"
                } else {
                    " "
                });
            }
        }
        total += para.len();
        let heading = (specs.len() % 20 == 0).then_some(1 + (next(2) as u8));
        specs.push(BlockSpec {
            text: match heading {
                Some(_) => format!("Section {}", specs.len()),
                None => para,
            },
            heading,
            new_page: false,
            gap: "\n\n",
            padded: false,
        });
    }
    build(&specs, false, Some("Speed test".into()))
}

fn time_chunking(name: &str, doc: &Document, counter: &dyn TokenCounter) -> f64 {
    let cfg = ChunkConfig::default();
    let started = Instant::now();
    let chunks = chunk_document(doc, counter, &cfg).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let mb = doc.text.len() as f64 / 1e6;
    eprintln!(
        "{name}: {mb:.2} MB, {} chunks in {secs:.3} s ({:.2} MB/s, {} profile)",
        chunks.len(),
        mb / secs,
        if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
    );
    assert!(!chunks.is_empty());
    for c in &chunks {
        assert!(c.tokens as usize <= cfg.max_tokens);
    }
    secs
}

/// Generous bounds that catch quadratic behaviour, not a benchmark: `cargo test --release -p
/// docent-chunk --test chunk speed -- --nocapture` prints the throughput.
fn speed_bound() -> f64 {
    if cfg!(debug_assertions) { 20.0 } else { 2.0 }
}

#[test]
fn speed_one_megabyte_of_prose_with_minilm() {
    let doc = prose(1_000_000);
    let secs = time_chunking("prose/minilm", &doc, &*MINILM);
    assert!(secs < speed_bound(), "{secs:.2} s");
}

#[test]
fn speed_pathological_megabytes() {
    let one_sentence = {
        let words: Vec<String> = (0..150_000).map(|i| format!("w{i}")).collect();
        words.join(" ")
    };
    let tiny_sentences = "A. B! C? ".repeat(110_000);
    let one_word = "ab+c/".repeat(200_000);
    let one_line_per_sentence: String = (0..40_000).map(|i| format!("Line {i} here.\n")).collect();
    for (name, text) in [
        ("one sentence", one_sentence),
        ("tiny sentences", tiny_sentences),
        ("one word", one_word),
        ("lines", one_line_per_sentence),
    ] {
        let spec = BlockSpec {
            heading: None,
            text,
            new_page: false,
            gap: "",
            padded: false,
        };
        let doc = build(&[spec], false, None);
        let counter: &dyn TokenCounter = &*MINILM;
        let secs = time_chunking(&format!("{name}/minilm"), &doc, counter);
        assert!(secs < speed_bound(), "{name}: {secs:.2} s");
        let secs = time_chunking(&format!("{name}/whitespace"), &doc, &WhitespaceCounter);
        assert!(secs < speed_bound(), "{name}: {secs:.2} s");
    }
}
