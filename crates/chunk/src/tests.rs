//! Unit tests of the chunker's logic, with [`WhitespaceCounter`] (one token per word and per
//! punctuation character, plus two).

use std::path::PathBuf;

use docent_core::{DocKind, EmailMeta, WhitespaceCounter};

use super::*;

/// One block of a test document: kind, text, page, heading path.
type B<'a> = (BlockKind, &'a str, Option<u32>, &'a [&'a str]);

fn text(t: &str) -> B<'_> {
    (BlockKind::Text, t, None, &[])
}

/// A document whose blocks are separated by blank lines.
fn doc(blocks: &[B<'_>]) -> Document {
    let mut text = String::new();
    let mut out = Vec::new();
    for (kind, t, page, path) in blocks {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        let start = text.len();
        text.push_str(t);
        out.push(Block {
            kind: *kind,
            range: start..text.len(),
            first_line: 1 + text[..start].matches('\n').count() as u32,
            page: *page,
            heading_path: path.iter().map(|s| s.to_string()).collect(),
        });
    }
    Document {
        id: DocId::for_source("/test/doc.md", None),
        path: PathBuf::from("/test/doc.md"),
        part: None,
        kind: DocKind::Note,
        parser: "markdown".into(),
        title: Some("Test document".into()),
        text,
        blocks: out,
        meta: Default::default(),
        email: None,
        parent: None,
        pages: None,
    }
}

fn cfg(max_tokens: usize, overlap: f32) -> ChunkConfig {
    ChunkConfig {
        max_tokens,
        overlap,
    }
}

fn run(d: &Document, c: &ChunkConfig) -> Vec<Chunk> {
    let chunks = chunk_document(d, &WhitespaceCounter, c).unwrap();
    check_invariants(d, &chunks, c);
    chunks
}

/// What every chunking must satisfy.
fn check_invariants(d: &Document, chunks: &[Chunk], c: &ChunkConfig) {
    for (i, ch) in chunks.iter().enumerate() {
        assert_eq!(ch.ordinal as usize, i);
        assert_eq!(&d.text[ch.span.bytes.clone()], ch.text);
        assert_eq!(ch.text.trim(), ch.text, "chunk {i} is not trimmed");
        assert!(!ch.text.is_empty());
        let n = WhitespaceCounter.count(&ch.embedding_text());
        assert_eq!(ch.tokens as usize, n);
        assert!(
            n <= c.max_tokens,
            "chunk {i}: {n} tokens > {}",
            c.max_tokens
        );
        assert!(ch.text.len() <= c.max_bytes());
    }
    // Every non-whitespace character of every block is in some chunk.
    for b in &d.blocks {
        for (i, ch) in d.text[b.range.clone()].char_indices() {
            if ch.is_whitespace() {
                continue;
            }
            let pos = b.range.start + i;
            assert!(
                chunks.iter().any(|c| c.span.bytes.contains(&pos)),
                "byte {pos} ({ch:?}) is in no chunk"
            );
        }
    }
}

fn sentences(n: usize, words: usize) -> String {
    (0..n)
        .map(|i| {
            // Capitalised: a sentence boundary needs an upper-case letter after it.
            let body: Vec<String> = (0..words).map(|w| format!("W{i}x{w}")).collect();
            format!("{}.", body.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn empty_and_whitespace_only_documents_give_no_chunks() {
    let c = ChunkConfig::default();
    let mut d = doc(&[]);
    assert!(run(&d, &c).is_empty());
    d.text = " \n\t\n  ".into();
    assert!(run(&d, &c).is_empty());
    let d = doc(&[text("   "), text("\n")]);
    assert!(run(&d, &c).is_empty());
}

#[test]
fn small_document_is_one_chunk_with_title_context() {
    let d = doc(&[text("Hello world."), text("Second paragraph here.")]);
    let chunks = run(&d, &ChunkConfig::default());
    assert_eq!(chunks.len(), 1);
    let ch = &chunks[0];
    assert_eq!(ch.text, "Hello world.\n\nSecond paragraph here.");
    assert_eq!(ch.context.as_deref(), Some("Test document"));
    assert_eq!(ch.span.lines, LineRange::new(1, 3));
    assert_eq!(ch.doc, d.id);
    assert_eq!(ch.content_hash, ContentHash::of(ch.text.as_bytes()));
}

#[test]
fn headings_and_pages_are_hard_boundaries() {
    let d = doc(&[
        (
            BlockKind::Heading { level: 1 },
            "Intro",
            Some(1),
            &["Intro"],
        ),
        (BlockKind::Text, "First words.", Some(1), &["Intro"]),
        (BlockKind::Text, "Next page words.", Some(2), &["Intro"]),
        (
            BlockKind::Heading { level: 2 },
            "Details",
            Some(2),
            &["Intro", "Details"],
        ),
        (
            BlockKind::Text,
            "Detail words.",
            Some(2),
            &["Intro", "Details"],
        ),
        (
            BlockKind::Heading { level: 1 },
            "Intro",
            Some(2),
            &["Intro"],
        ),
    ]);
    let chunks = run(&d, &ChunkConfig::default());
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Intro\n\nFirst words.",
            "Next page words.",
            "Details\n\nDetail words.",
            "Intro"
        ]
    );
    assert_eq!(chunks[0].context.as_deref(), Some("Intro"));
    assert_eq!(chunks[0].span.page, Some(1));
    assert_eq!(chunks[1].span.page, Some(2));
    assert_eq!(chunks[2].context.as_deref(), Some("Intro > Details"));
    assert_eq!(chunks[2].span.heading_path, ["Intro", "Details"]);
    assert_eq!(chunks[2].span.lines, LineRange::new(7, 9));
    // The same heading twice makes two chunks with the same text, and different ids.
    assert_ne!(chunks[0].id, chunks[3].id);
}

#[test]
fn whole_blocks_are_packed_and_not_split_when_they_fit() {
    // Budget 64: text limit 64 - 4 (context "Test document" and the special tokens) = 60.
    let p = |i: usize| sentences(1, 12).replace("W0", &format!("P{i}")); // 13 tokens
    let paras: Vec<String> = (0..9).map(p).collect();
    let blocks: Vec<B<'_>> = paras.iter().map(|t| text(t)).collect();
    let d = doc(&blocks);
    let chunks = run(&d, &cfg(64, 0.0));
    // Four paragraphs (52 tokens) per chunk; a fifth does not fit, and is not split.
    assert_eq!(chunks.len(), 3);
    for ch in &chunks {
        for para in &paras {
            let inside = ch.text.contains(para.as_str());
            let touches = para.split(' ').any(|w| ch.text.contains(w));
            assert_eq!(inside, touches, "a paragraph was split");
        }
    }
}

#[test]
fn heading_opens_the_first_chunk_even_before_a_big_block() {
    let body = sentences(40, 9);
    let d = doc(&[
        (BlockKind::Heading { level: 1 }, "Big", None, &["Big"]),
        (BlockKind::Text, &body, None, &["Big"]),
    ]);
    let chunks = run(&d, &cfg(64, 0.1));
    assert!(chunks.len() > 3);
    assert!(
        chunks[0].text.starts_with("Big\n\nW0x0"),
        "{}",
        chunks[0].text
    );
    assert!(chunks[0].tokens > 40);
}

#[test]
fn overlap_is_whole_sentences_and_bounded() {
    let body = sentences(60, 7); // 8 tokens per sentence
    let d = doc(&[text(&body)]);
    let c = cfg(64, 0.25); // overlap budget: 16 tokens
    let chunks = run(&d, &c);
    assert!(chunks.len() > 5);
    for pair in chunks.windows(2) {
        let (a, b) = (&pair[0].span.bytes, &pair[1].span.bytes);
        assert!(b.start < a.end, "no overlap between {a:?} and {b:?}");
        assert!(b.start > a.start && b.end > a.end);
        let shared = &d.text[b.start..a.end];
        let n = WhitespaceCounter.count(shared) - 2;
        assert!(n <= 16, "overlap of {n} tokens");
        assert!(n >= 8, "overlap of {n} tokens is not a whole sentence");
        // Starts at a sentence.
        assert!(d.text[..b.start].ends_with(". "), "{shared:?}");
        assert!(shared.starts_with('W'));
    }
}

#[test]
fn no_overlap_when_disabled_or_across_sections() {
    let body = sentences(30, 7);
    let d = doc(&[text(&body)]);
    let chunks = run(&d, &cfg(64, 0.0));
    for pair in chunks.windows(2) {
        assert!(pair[1].span.bytes.start > pair[0].span.bytes.end);
    }
    let d = doc(&[
        (BlockKind::Text, &body, Some(1), &[]),
        (BlockKind::Text, &body, Some(2), &[]),
    ]);
    let chunks = run(&d, &cfg(64, 0.3));
    let first_p2 = chunks.iter().position(|c| c.span.page == Some(2)).unwrap();
    assert!(chunks[first_p2].span.bytes.start > chunks[first_p2 - 1].span.bytes.end);
}

#[test]
fn long_sentence_is_cut_between_words_with_word_overlap() {
    let body: Vec<String> = (0..500).map(|i| format!("word{i}")).collect();
    let body = body.join(" ");
    let d = doc(&[text(&body)]);
    let c = cfg(48, 0.2);
    let chunks = run(&d, &c);
    assert!(chunks.len() > 10);
    for (i, ch) in chunks.iter().enumerate() {
        let r = &ch.span.bytes;
        assert!(
            r.start == 0 || d.text[..r.start].ends_with(' '),
            "chunk {i} starts mid-word"
        );
        assert!(r.end == d.text.len() || d.text[r.end..].starts_with(' '));
    }
    for pair in chunks.windows(2) {
        let (a, b) = (&pair[0].span.bytes, &pair[1].span.bytes);
        assert!(b.start < a.end, "no word overlap");
        let n = WhitespaceCounter.count(&d.text[b.start..a.end]) - 2;
        assert!(n <= 9, "overlap {n} > 9 tokens");
    }
}

#[test]
fn giant_words_are_cut_as_a_last_resort() {
    // One token per character of punctuation: a 5,000-character "word" of 2,500 tokens.
    let blob: String = (0..2500)
        .map(|i| if i % 2 == 0 { 'a' } else { '+' })
        .collect();
    // One token, but far more bytes than a chunk may hold.
    let hex: String = "0123456789abcdef".repeat(400);
    let url = format!("https://example.com/{}", "path/".repeat(300));
    let accents = "e\u{301}".repeat(3000);
    for word in [&blob, &hex, &url, &accents] {
        let body = format!("Before {word} after.");
        let d = doc(&[text(&body)]);
        let c = cfg(32, 0.15);
        let chunks = run(&d, &c);
        assert!(chunks.len() > 1);
        assert!(chunks[0].text.starts_with("Before"));
        assert!(chunks.last().unwrap().text.ends_with("after."));
    }
}

#[test]
fn ids_are_stable_and_duplicates_differ() {
    let d = doc(&[
        (BlockKind::Text, "Same words here.", Some(1), &[]),
        (BlockKind::Text, "Same words here.", Some(2), &[]),
        (BlockKind::Text, "Other words.", Some(3), &[]),
    ]);
    let a = run(&d, &ChunkConfig::default());
    let b = run(&d, &ChunkConfig::default());
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].text, a[1].text);
    assert_eq!(a[0].content_hash, a[1].content_hash);
    assert_ne!(a[0].id, a[1].id);
    assert_eq!(a[0].id, ChunkId::derive(&d.id, "Same words here.", 0));
    assert_eq!(a[1].id, ChunkId::derive(&d.id, "Same words here.", 1));
    assert_eq!(a[2].id, ChunkId::derive(&d.id, "Other words.", 0));
}

#[test]
fn email_subject_is_the_context_and_message_id_is_kept() {
    let mut d = doc(&[text("Lunch at noon?")]);
    d.kind = DocKind::Email;
    d.email = Some(EmailMeta {
        subject: Some("Re: lunch\n plans".into()),
        message_id: Some("<m1@example.com>".into()),
        ..Default::default()
    });
    let chunks = run(&d, &ChunkConfig::default());
    assert_eq!(chunks[0].context.as_deref(), Some("Re: lunch plans"));
    assert_eq!(
        chunks[0].span.message_id.as_deref(),
        Some("<m1@example.com>")
    );
    assert_eq!(
        chunks[0].embedding_text(),
        "Re: lunch plans\n\nLunch at noon?"
    );

    d.email.as_mut().unwrap().subject = None;
    d.title = None;
    let chunks = run(&d, &ChunkConfig::default());
    assert_eq!(chunks[0].context, None);
}

#[test]
fn long_context_is_cut_at_a_word_boundary() {
    let title: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let mut d = doc(&[text(&sentences(20, 5))]);
    d.title = Some(title.join(" "));
    let c = cfg(60, 0.1);
    let chunks = run(&d, &c);
    let ctx = chunks[0].context.as_deref().unwrap();
    assert!(ctx.starts_with("t0 t1 "), "{ctx}");
    assert!(title.contains(&ctx.rsplit(' ').next().unwrap().to_string()));
    assert!(WhitespaceCounter.count(ctx) - 2 <= 20, "{ctx}");
    // One giant word as a title is cut at a character boundary, to a third of the bytes too.
    d.title = Some("é".repeat(10_000) + "+".repeat(100).as_str());
    let chunks = run(&d, &c);
    let ctx = chunks[0].context.as_deref().unwrap();
    assert!(
        ctx.starts_with('é') && ctx.len() <= c.max_bytes() / 3,
        "{}",
        ctx.len()
    );
}

#[test]
fn lines_count_from_the_block() {
    let d = doc(&[text("one\ntwo\nthree"), text("four\n\nfive")]);
    let mut d2 = d.clone();
    // A block whose first line is not where the text says (a PDF page: lines per page).
    d2.blocks[1].first_line = 40;
    let chunks = run(&d2, &ChunkConfig::default());
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].span.lines, LineRange::new(1, 42));

    // One sentence per line and per chunk, in a block that starts at line 10.
    let lines: Vec<String> = (0..30).map(|i| format!("L{i} a b c d e.")).collect();
    let mut d = doc(&[text(&lines.join("\n"))]);
    d.blocks[0].first_line = 10;
    let chunks = run(&d, &cfg(16, 0.0));
    assert_eq!(chunks.len(), 30);
    for (i, ch) in chunks.iter().enumerate() {
        assert_eq!(ch.text, lines[i]);
        let line = 10 + i as u32;
        assert_eq!(ch.span.lines, LineRange::new(line, line));
    }
}

#[test]
fn soft_line_breaks_do_not_end_sentences() {
    // A hard-wrapped paragraph: overlap starts at the sentence, not at a line start.
    let lines: Vec<String> = (0..40)
        .map(|i| format!("L{i} a b c{}", if i % 4 == 3 { "." } else { "" }))
        .collect();
    let body = lines.join("\n");
    let d = doc(&[text(&body)]);
    let chunks = run(&d, &cfg(40, 0.5));
    assert!(chunks.len() > 5);
    for ch in &chunks[1..] {
        let before = &d.text[..ch.span.bytes.start];
        assert!(
            before.ends_with(".\n"),
            "starts mid-sentence: {:?}",
            &ch.text[..10]
        );
    }
}

#[test]
fn document_without_blocks_is_one_text_block() {
    let mut d = doc(&[]);
    d.text = "\n\nSome text\nmore text\n".into();
    let chunks = run(&d, &ChunkConfig::default());
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].text, "Some text\nmore text");
    assert_eq!(chunks[0].span.lines, LineRange::new(3, 4));
}

#[test]
fn settings_and_blocks_are_checked() {
    let d = doc(&[text("Hello.")]);
    let err = chunk_document(&d, &WhitespaceCounter, &cfg(8, 0.1)).unwrap_err();
    assert!(matches!(
        err,
        ChunkError::BudgetTooSmall {
            max_tokens: 8,
            min: 16
        }
    ));
    assert!(err.to_string().contains("hint:"));
    for overlap in [-0.1, 0.6, f32::NAN] {
        let err = chunk_document(&d, &WhitespaceCounter, &cfg(64, overlap)).unwrap_err();
        assert!(matches!(err, ChunkError::OverlapOutOfRange { .. }), "{err}");
    }
    assert!(chunk_document(&d, &WhitespaceCounter, &cfg(16, 0.5)).is_ok());

    let mut bad = doc(&[text("héllo"), text("world")]);
    bad.blocks[0].range = 0..2; // inside "é"
    let err = chunk_document(&bad, &WhitespaceCounter, &ChunkConfig::default()).unwrap_err();
    assert!(err.to_string().contains("block 0"), "{err}");
    let mut bad = doc(&[text("hello"), text("world")]);
    bad.blocks[1].range = 3..100;
    assert!(matches!(
        chunk_document(&bad, &WhitespaceCounter, &ChunkConfig::default()),
        Err(ChunkError::InvalidBlock { index: 1, .. })
    ));
    let mut bad = doc(&[text("hello"), text("world")]);
    bad.blocks[1].range = 2..4;
    assert!(chunk_document(&bad, &WhitespaceCounter, &ChunkConfig::default()).is_err());
}

#[test]
fn debug_output_shows_no_text() {
    let d = doc(&[text("secret words")]);
    let chunks = run(&d, &ChunkConfig::default());
    assert!(!format!("{chunks:?}").contains("secret"));
}
