//! The shapes of an answer as Markdown, JSON and terminal text, snapshotted.

use std::path::Path;

use docent_core::{
    Answer, AnswerSentence, ChunkId, Citation, DocKind, LineRange, Source, StopReason,
};

const CLAUSE: &str = "If the work is late, the contractor pays liquidated damages of $350 per\ncalendar day of delay. The warranty lasts two years.";
const MAIL: &str = "The rooftop HVAC units are delayed; the new delivery date is 3 February 2025.";

fn answer() -> Answer {
    let text = "Late work costs $350 per calendar day [1]. The HVAC units arrive on 3 February 2025 [2]. The roof is gold [1].".to_string();
    let s0 = 0..text.find(" The HVAC").unwrap();
    let s1 = s0.end + 1..text.find(" The roof").unwrap();
    let s2 = s1.end + 1..text.len();
    let sources = vec![
        Source {
            n: 1,
            chunk_id: ChunkId("c-contract-2".into()),
            path: "/home/me/Documents/Linden Street/linden-contract.pdf".into(),
            part: None,
            kind: DocKind::Pdf,
            page: Some(2),
            lines: LineRange::new(4, 6),
            heading: None,
            title: Some("Construction services agreement".into()),
            subject: None,
            from: None,
            date: None,
            text: CLAUSE.into(),
            truncated: false,
            similarity: Some(0.68),
        },
        Source {
            n: 2,
            chunk_id: ChunkId("c-hvac-0".into()),
            path: "/home/me/Mail/hvac-delay.eml".into(),
            part: None,
            kind: DocKind::Email,
            page: None,
            lines: LineRange::new(1, 3),
            heading: None,
            title: None,
            subject: Some("HVAC units delayed".into()),
            from: Some("Tom Beckett <tom@mossgrove.example>".into()),
            date: Some("2024-11-12T09:30:00Z".into()),
            text: MAIL.into(),
            truncated: false,
            similarity: Some(0.73),
        },
        Source {
            n: 3,
            chunk_id: ChunkId("c-notes-4".into()),
            path: "/home/me/Documents/notes/site meeting.md".into(),
            part: None,
            kind: DocKind::Note,
            page: None,
            lines: LineRange::new(12, 20),
            heading: Some("Schedule".into()),
            title: None,
            subject: None,
            from: None,
            date: None,
            text: "Membrane delivery delayed to 9 December.".into(),
            truncated: true,
            similarity: Some(0.41),
        },
    ];
    let quote = |src: &str, q: &str| {
        let start = src.find(q).unwrap();
        start..start + q.len()
    };
    let clause = "If the work is late, the contractor pays liquidated damages of $350 per\ncalendar day of delay.";
    let citations = vec![
        Citation {
            n: 1,
            sentence: 0,
            chunk_id: ChunkId("c-contract-2".into()),
            path: sources[0].path.clone(),
            part: None,
            page: Some(2),
            lines: LineRange::new(4, 6),
            quote: clause.into(),
            quote_bytes: quote(CLAUSE, clause),
            lexical: 1.0,
            semantic: Some(0.81),
            support: 0.93,
            weak: false,
        },
        Citation {
            n: 2,
            sentence: 1,
            chunk_id: ChunkId("c-hvac-0".into()),
            path: sources[1].path.clone(),
            part: None,
            page: None,
            lines: LineRange::new(1, 3),
            quote: MAIL.into(),
            quote_bytes: 0..MAIL.len(),
            lexical: 0.8,
            semantic: Some(0.7),
            support: 0.86,
            weak: false,
        },
        Citation {
            n: 1,
            sentence: 2,
            chunk_id: ChunkId("c-contract-2".into()),
            path: sources[0].path.clone(),
            part: None,
            page: Some(2),
            lines: LineRange::new(4, 6),
            quote: "The warranty lasts two years.".into(),
            quote_bytes: quote(CLAUSE, "The warranty lasts two years."),
            lexical: 0.0,
            semantic: Some(0.1),
            support: 0.0,
            weak: true,
        },
    ];
    Answer {
        question: "What happens if the work is late?".into(),
        query: "What happens if the work is late?".into(),
        sentences: vec![
            AnswerSentence {
                bytes: s0,
                cites: vec![1],
                support: Some(0.93),
                weak: false,
            },
            AnswerSentence {
                bytes: s1,
                cites: vec![2],
                support: Some(0.86),
                weak: false,
            },
            AnswerSentence {
                bytes: s2,
                cites: vec![1],
                support: Some(0.0),
                weak: true,
            },
        ],
        text,
        refused: false,
        citations,
        removed_citations: vec![7],
        sources,
        model: "gemma-3-270m".into(),
        index: "docent index format 1, embeddings all-MiniLM-L6-v2".into(),
        relevance: Some(0.7312),
        retrieval_ms: 42,
        ttft_ms: Some(120.44),
        tokens_per_s: Some(31.25),
        prompt_tokens: Some(900),
        generated_tokens: Some(40),
        stop: Some(StopReason::EndOfTurn),
        warnings: vec![],
    }
}

#[test]
fn markdown_export() {
    let md = docent_export::to_markdown(
        &answer(),
        Path::new("/home/me/Documents/answers/late work.md"),
        "2025-01-31",
    );
    // Links are relative to the export's folder, spaces encoded, PDFs with their page.
    assert!(
        md.contains("](../Linden%20Street/linden-contract.pdf#page=2)"),
        "{md}"
    );
    assert!(md.contains("](../../Mail/hvac-delay.eml)"), "{md}");
    docent_test_support::snapshot_settings().bind(|| insta::assert_snapshot!("markdown", md));
}

#[test]
fn json_shape() {
    let v = docent_export::to_json(&answer());
    // Every quote is a verbatim substring of its source.
    let a = answer();
    for c in v["citations"].as_array().unwrap() {
        let n = c["n"].as_u64().unwrap() as usize;
        assert!(
            a.source(n)
                .unwrap()
                .text
                .contains(c["quote"].as_str().unwrap())
        );
    }
    docent_test_support::snapshot_settings().bind(|| insta::assert_json_snapshot!("json", v));
}

#[test]
fn terminal_text() {
    let opts = docent_export::TextOptions {
        color: false,
        with_answer: true,
    };
    let t = docent_export::to_text(&answer(), opts, &|p| p.replace("/home/me/", ""));
    docent_test_support::snapshot_settings().bind(|| insta::assert_snapshot!("terminal", t));
}

#[test]
fn refused_answer() {
    let mut a = answer();
    a.refused = true;
    a.text = "Not found in your documents. I searched 40 passages of 12 indexed files for \"sourdough\".".into();
    a.citations.clear();
    a.sentences.clear();
    a.sources.clear();
    a.removed_citations.clear();
    a.model.clear();
    let md = docent_export::to_markdown(&a, Path::new("/tmp/x.md"), "2025-01-31");
    assert!(md.contains("no language model was asked"), "{md}");
    assert!(!md.contains("[^"), "{md}");
    let v = docent_export::to_json(&a);
    assert_eq!(v["refused"], true);
    assert_eq!(v["model"], serde_json::Value::Null);
    let opts = docent_export::TextOptions {
        color: false,
        with_answer: true,
    };
    assert_eq!(
        docent_export::to_text(&a, opts, &|p| p.into()).trim(),
        a.text
    );
}

#[test]
fn hostile_text_is_sanitised_for_terminals() {
    let mut a = answer();
    a.text = "Evil \u{1b}[31mred\u{1b}[0m [1].".into();
    a.sentences = vec![AnswerSentence {
        bytes: 0..a.text.len(),
        cites: vec![1],
        support: Some(1.0),
        weak: false,
    }];
    a.citations.truncate(1);
    a.citations[0].sentence = 0;
    a.citations[0].quote = "quote \u{1b}]0;title\u{7}here".into();
    let opts = docent_export::TextOptions {
        color: false,
        with_answer: true,
    };
    let t = docent_export::to_text(&a, opts, &|p| p.into());
    assert!(!t.contains('\u{1b}'), "{t:?}");
    let md = docent_export::to_markdown(&a, Path::new("/tmp/x.md"), "2025-01-31");
    assert!(!md.contains('\u{1b}'), "{md:?}");
}
