//! Markdown and plain-text notes of the sample corpus, and the invalid text fixtures.

use std::path::Path;

use docent_core::{BlockKind, Document};
use docent_parse::{Outcome, ParseOptions, parse_file};
use serde::Serialize;

/// A compact view of a parsed document for snapshots: its metadata, and one line per block
/// (kind, page, first line, heading path, the start of its text).
#[derive(Serialize)]
pub(crate) struct Summary {
    parser: String,
    kind: String,
    title: Option<String>,
    part: Option<String>,
    pages: Option<u32>,
    meta: std::collections::BTreeMap<String, String>,
    blocks: Vec<String>,
    warnings: Vec<String>,
}

pub(crate) fn summarize(doc: &Document, warnings: &[String]) -> Summary {
    let blocks = doc
        .blocks
        .iter()
        .map(|b| {
            let kind = match b.kind {
                BlockKind::Heading { level } => format!("h{level}"),
                BlockKind::Text => "text".to_string(),
            };
            let page = b.page.map(|p| format!(" p{p}")).unwrap_or_default();
            let start: String = doc.text[b.range.clone()].chars().take(60).collect();
            format!(
                "{kind}{page} L{} [{}] {}",
                b.first_line,
                b.heading_path.join(" > "),
                start.replace('\n', "⏎")
            )
        })
        .collect();
    Summary {
        parser: doc.parser.clone(),
        kind: doc.kind.to_string(),
        title: doc.title.clone(),
        part: doc.part.clone(),
        pages: doc.pages,
        meta: doc.meta.clone(),
        blocks,
        warnings: warnings.to_vec(),
    }
}

/// Checks the block invariants: in order, not overlapping, on character boundaries, covering
/// every non-whitespace character outside the front matter; and (for documents without pages)
/// `first_line` equal to the block's line in the text.
pub(crate) fn check_blocks(doc: &Document) {
    let text = &doc.text;
    let front_matter_end = if text.starts_with("---\n") || text.starts_with("+++\n") {
        doc.blocks.first().map_or(0, |b| b.range.start)
    } else {
        0
    };
    let mut pos = front_matter_end;
    for b in &doc.blocks {
        assert!(
            b.range.start >= pos && b.range.start < b.range.end,
            "block order"
        );
        assert!(text.is_char_boundary(b.range.start) && text.is_char_boundary(b.range.end));
        assert!(text[pos..b.range.start].trim().is_empty(), "uncovered text");
        if b.page.is_none() {
            let line = 1 + text[..b.range.start].matches('\n').count();
            assert_eq!(b.first_line as usize, line, "first_line");
        }
        pos = b.range.end;
    }
    assert!(text[pos..].trim().is_empty(), "uncovered tail");
}

/// Parses a fixture into a snapshot-ready value: the summary of each document, or the skip
/// reason, or the error.
pub(crate) fn outcome_of(rel: &str, opts: &ParseOptions) -> serde_json::Value {
    let path = docent_test_support::fixture(rel);
    match parse_file(&path, opts) {
        Ok(Outcome::Parsed {
            format,
            documents,
            warnings,
        }) => {
            for doc in &documents {
                check_blocks(doc);
                assert_eq!(doc.path, path);
            }
            let docs: Vec<Summary> = documents.iter().map(|d| summarize(d, &warnings)).collect();
            serde_json::json!({ "format": format.name(), "documents": docs })
        }
        Ok(Outcome::Skipped { format, reason }) => serde_json::json!({
            "format": format.map(|f| f.name()),
            "skipped": reason.to_string(),
        }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

fn snapshot(name: &str, rel: &str) {
    let value = outcome_of(rel, &ParseOptions::default());
    docent_test_support::snapshot_settings().bind(|| {
        insta::assert_json_snapshot!(name, value);
    });
}

#[test]
fn site_meeting_markdown() {
    snapshot("notes_site_meeting", "notes/site-meeting-2024-11-05.md");
}

#[test]
fn accessibility_checklist_markdown() {
    snapshot(
        "notes_accessibility_checklist",
        "notes/accessibility-checklist.md",
    );
}

#[test]
fn reading_list_org() {
    snapshot("notes_reading_org", "notes/reading.org");
}

#[test]
fn supplier_contacts_latin1() {
    snapshot("notes_supplier_contacts", "notes/supplier-contacts.txt");
    let path = docent_test_support::fixture("notes/supplier-contacts.txt");
    let Ok(Outcome::Parsed { documents, .. }) = parse_file(&path, &ParseOptions::default()) else {
        panic!("not parsed")
    };
    let text = &documents[0].text;
    for name in [
        "José Peña",
        "Françoise Lefèvre",
        "Zoë Müller",
        "Søren Ødegård",
    ] {
        assert!(text.contains(name), "{name} not decoded");
    }
    assert!(text.contains("Müller Fensterbau supplies the oak window frames, lead time 11 weeks."));
}

#[test]
fn binary_behind_txt_is_skipped() {
    snapshot("notes_invalid_binary", "invalid/binary.txt");
}

#[test]
fn empty_markdown_is_skipped() {
    snapshot("notes_invalid_empty", "invalid/empty.md");
}

#[test]
fn code_fence_line_is_not_a_heading() {
    let path = docent_test_support::fixture("notes/site-meeting-2024-11-05.md");
    let Ok(Outcome::Parsed { documents, .. }) = parse_file(&path, &ParseOptions::default()) else {
        panic!("not parsed")
    };
    let doc = &documents[0];
    let fence = doc
        .blocks
        .iter()
        .find(|b| doc.text[b.range.clone()].starts_with("```"))
        .expect("code block");
    assert_eq!(fence.kind, BlockKind::Text);
    assert!(doc.text[fence.range.clone()].contains("\n# duct"));
    assert!(doc.text[fence.range.clone()].trim_end().ends_with("```"));
    assert_eq!(
        fence.heading_path,
        ["Site meeting, 5 November 2024", "Decisions"]
    );
    assert!(Path::new(&doc.path).is_absolute());
}
