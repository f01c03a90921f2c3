//! PDFs of the sample corpus, and PDFs that must be skipped or fail cleanly.

use std::path::Path;
use std::time::Duration;

use docent_parse::{ParseError, ParseOptions, PdfIsolation, parse_bytes};

use crate::notes::outcome_of;

fn snapshot(name: &str, rel: &str) {
    let value = outcome_of(rel, &ParseOptions::default());
    docent_test_support::snapshot_settings().bind(|| {
        insta::assert_json_snapshot!(name, value);
    });
}

#[test]
fn linden_contract() {
    snapshot("pdf_linden_contract", "pdf/linden-contract.pdf");
}

#[test]
fn roof_inspection() {
    snapshot("pdf_roof_inspection", "pdf/roof-inspection.pdf");
}

#[test]
fn encrypted_is_skipped() {
    snapshot("pdf_invalid_encrypted", "invalid/encrypted.pdf");
}

#[test]
fn scanned_is_skipped() {
    snapshot("pdf_invalid_scanned", "invalid/scanned.pdf");
}

#[test]
fn truncated_is_a_clear_error() {
    snapshot("pdf_invalid_truncated", "invalid/truncated.pdf");
}

#[test]
fn extractor_panic_is_contained() {
    snapshot("pdf_invalid_no_mediabox", "invalid/no-mediabox.pdf");
}

#[test]
fn contract_text_states_the_facts() {
    let path = docent_test_support::fixture("pdf/linden-contract.pdf");
    let bytes = std::fs::read(&path).unwrap();
    let Ok(docent_parse::Outcome::Parsed { documents, .. }) =
        parse_bytes(&path, &bytes, &ParseOptions::default())
    else {
        panic!("not parsed")
    };
    let doc = &documents[0];
    let page_of = |needle: &str| {
        doc.blocks
            .iter()
            .find(|b| doc.text[b.range.clone()].contains(needle))
            .and_then(|b| b.page)
    };
    assert_eq!(page_of("41 Linden"), Some(1));
    assert_eq!(page_of("$184,500"), Some(2));
    assert_eq!(page_of("14 March 2025"), Some(2));
    assert_eq!(page_of("liquidated damages of $350"), Some(2));
    assert_eq!(page_of("mediation in Alder Creek"), Some(3));
}

#[test]
fn in_process_timeout_gives_up() {
    let path = docent_test_support::fixture("pdf/linden-contract.pdf");
    let bytes = std::fs::read(&path).unwrap();
    let opts = ParseOptions {
        pdf_timeout: Duration::from_nanos(1),
        pdf_isolation: PdfIsolation::InProcess,
        ..ParseOptions::default()
    };
    let err = parse_bytes(Path::new("/docs/contract.pdf"), &bytes, &opts).unwrap_err();
    assert!(matches!(err, ParseError::Timeout { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "/docs/contract.pdf: gave up after 1 s (file too complex or malformed)"
    );
}
