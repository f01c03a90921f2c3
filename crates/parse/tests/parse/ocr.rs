//! Scanned documents (fixtures-scanned/, made by scripts/make-scans.sh from fixtures/pdf/):
//! OCR of PDF pages and images, page numbers, accuracy, and the ways it must fail cleanly.
//!
//! These need Tesseract (with `eng` and `osd` data) and poppler's `pdftoppm` on `PATH`. Without
//! them the tests say so and pass, except where `DOCENT_REQUIRE_OCR` is set (`.ci/run` sets it and installs
//! both), where they fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use docent_core::{Document, META_OCR_PAGES};
use docent_parse::{
    OcrOptions, OcrTools, OcrUnavailable, Outcome, ParseError, ParseOptions, PdfIsolation,
    SkipReason, WorkerLimits, parse_bytes,
};

use crate::notes::check_blocks;

pub(crate) fn scanned(rel: &str) -> PathBuf {
    docent_test_support::repo_root()
        .join("fixtures-scanned")
        .join(rel)
}

/// OCR options with the programs found on `PATH`, or `None` (after saying why) when they are
/// missing outside CI.
fn ocr_available() -> Option<OcrOptions> {
    let found = docent_parse::ocr::installed();
    let ok = found.tesseract.is_some() && found.pdftoppm.is_some();
    if !ok {
        assert!(
            std::env::var_os("DOCENT_REQUIRE_OCR").is_none(),
            "OCR tests need tesseract and pdftoppm in CI: {}",
            docent_parse::OCR_INSTALL_HINT
        );
        eprintln!("skipping: tesseract or pdftoppm not installed");
        return None;
    }
    Some(OcrOptions {
        enabled: true,
        ..OcrOptions::default()
    })
}

fn opts_with(ocr: OcrOptions) -> ParseOptions {
    ParseOptions {
        pdf_timeout: Duration::from_secs(300),
        ocr,
        ..ParseOptions::default()
    }
}

fn parse_one(path: &Path, opts: &ParseOptions) -> (Document, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    match parse_bytes(path, &bytes, opts) {
        Ok(Outcome::Parsed {
            mut documents,
            warnings,
            ..
        }) => {
            assert_eq!(documents.len(), 1);
            check_blocks(&documents[0]);
            (documents.remove(0), warnings)
        }
        other => panic!("{}: {other:?}", path.display()),
    }
}

fn page_of(doc: &Document, needle: &str) -> Option<u32> {
    doc.blocks
        .iter()
        .find(|b| doc.text[b.range.clone()].contains(needle))
        .and_then(|b| b.page)
}

/// The text of one page, whitespace collapsed.
fn page_text(doc: &Document, page: u32) -> String {
    let parts: Vec<&str> = doc
        .blocks
        .iter()
        .filter(|b| b.page == Some(page))
        .map(|b| &doc.text[b.range.clone()])
        .collect();
    parts
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Character error rate: edit distance over the reference's length.
fn cer(reference: &str, hypothesis: &str) -> f64 {
    let r: Vec<char> = reference.chars().collect();
    let h: Vec<char> = hypothesis.chars().collect();
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

#[test]
fn cer_counts_edits() {
    assert_eq!(cer("abcd", "abcd"), 0.0);
    assert_eq!(cer("abcd", "abxd"), 0.25);
    assert_eq!(cer("abcd", "abd"), 0.25);
}

#[test]
fn scanned_contract_is_read_with_page_numbers() {
    let Some(ocr) = ocr_available() else { return };
    let opts = opts_with(ocr);
    let (doc, warnings) = parse_one(&scanned("contract-scanned.pdf"), &opts);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(doc.pages, Some(3));
    assert_eq!(doc.meta[META_OCR_PAGES], "1,2,3");
    // Page 1 is skewed and speckled, page 3 turned 90°.
    assert_eq!(page_of(&doc, "41 Linden Street"), Some(1));
    assert_eq!(page_of(&doc, "$184,500"), Some(2));
    assert_eq!(page_of(&doc, "liquidated damages of $350"), Some(2));
    assert_eq!(page_of(&doc, "mediation in Alder Creek"), Some(3));

    // Accuracy on the clean 300 dpi page, against the same page's text layer in the source.
    let (source, _) = parse_one(
        &docent_test_support::fixture("pdf/linden-contract.pdf"),
        &ParseOptions::default(),
    );
    for page in 1..=3 {
        let rate = cer(&page_text(&source, page), &page_text(&doc, page));
        eprintln!(
            "character error rate, scanned contract page {page}: {:.2}%",
            rate * 100.0
        );
        // The clean page, and the rotated and skewed ones.
        let limit = if page == 2 { 0.01 } else { 0.03 };
        assert!(rate <= limit, "CER {rate:.4} on page {page}");
    }
}

#[test]
fn mixed_pdf_recognises_only_the_scanned_page() {
    let Some(ocr) = ocr_available() else { return };
    let (doc, warnings) = parse_one(&scanned("contract-mixed.pdf"), &opts_with(ocr));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(doc.pages, Some(3));
    assert_eq!(doc.meta[META_OCR_PAGES], "2");
    assert_eq!(page_of(&doc, "41 Linden"), Some(1));
    assert_eq!(page_of(&doc, "$184,500"), Some(2));
    assert_eq!(page_of(&doc, "mediation in Alder Creek"), Some(3));
}

#[test]
fn images_are_documents_of_their_own() {
    let Some(ocr) = ocr_available() else { return };
    let opts = opts_with(ocr);
    let (tiff, _) = parse_one(&scanned("roof-inspection.tif"), &opts);
    assert_eq!(tiff.parser, "image");
    assert_eq!(tiff.pages, Some(2));
    assert_eq!(tiff.meta[META_OCR_PAGES], "1,2");
    assert_eq!(page_of(&tiff, "Dana Okafor"), Some(1));
    assert_eq!(page_of(&tiff, "new membrane roof"), Some(2));

    let (photo, _) = parse_one(&scanned("roof-photo.jpg"), &opts);
    assert_eq!(photo.pages, Some(1));
    assert_eq!(photo.meta[META_OCR_PAGES], "1");
    assert!(
        page_text(&photo, 1).contains("18% are cracked"),
        "{}",
        photo.text
    );
}

/// Without Tesseract (an explicit empty lookup stands in for a machine without it) nothing
/// fails: scans and images are skipped as needing OCR, with the command that installs it, and
/// a mixed PDF keeps its text pages.
#[test]
fn without_tesseract_files_need_ocr() {
    let missing = OcrOptions {
        enabled: true,
        tools: OcrTools::Explicit {
            tesseract: None,
            pdftoppm: None,
        },
        ..OcrOptions::default()
    };
    let opts = opts_with(missing);
    for rel in [
        "contract-scanned.pdf",
        "roof-photo.jpg",
        "roof-inspection.tif",
    ] {
        let path = scanned(rel);
        let bytes = std::fs::read(&path).unwrap();
        let Ok(Outcome::Skipped { reason, .. }) = parse_bytes(&path, &bytes, &opts) else {
            panic!("{rel}: not skipped")
        };
        assert_eq!(
            reason,
            SkipReason::NeedsOcr(OcrUnavailable::NotInstalled("tesseract"))
        );
        let shown = reason.to_string();
        assert!(
            shown.starts_with("needs OCR: `tesseract` is not installed"),
            "{shown}"
        );
        assert!(shown.contains("apt install tesseract-ocr"), "{shown}");
        assert!(shown.contains("brew install tesseract poppler"), "{shown}");
    }
    let (doc, warnings) = parse_one(&scanned("contract-mixed.pdf"), &opts);
    assert_eq!(page_of(&doc, "41 Linden"), Some(1));
    assert!(!doc.meta.contains_key(META_OCR_PAGES));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("page 2 need OCR: `tesseract` is not installed"),
        "{warnings:?}"
    );

    // Turned off: scanned PDFs keep their old reason.
    let off = opts_with(OcrOptions::default());
    let path = scanned("contract-scanned.pdf");
    let Ok(Outcome::Skipped { reason, .. }) =
        parse_bytes(&path, &std::fs::read(&path).unwrap(), &off)
    else {
        panic!("not skipped")
    };
    assert_eq!(reason, SkipReason::NoTextLayer);
}

#[test]
fn corrupt_image_and_image_bomb_are_skipped_with_a_reason() {
    // The bomb: a valid PNG header claiming 100,000 × 100,000 pixels, then nothing. It is never
    // decoded, whatever is installed.
    let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
    let opts = opts_with(OcrOptions {
        enabled: true,
        ..OcrOptions::default()
    });
    let Ok(Outcome::Skipped { reason, .. }) =
        parse_bytes(Path::new("/scans/bomb.png"), &bomb, &opts)
    else {
        panic!("bomb not skipped")
    };
    assert_eq!(
        reason.to_string(),
        "image too large for OCR (100000×100000 pixels > limit 60 megapixels)"
    );

    // A header too short to hold a size.
    let err =
        parse_bytes(Path::new("/scans/cut.png"), b"\x89PNG\r\n\x1a\n\0\0", &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/scans/cut.png: damaged image file: its PNG header is missing"
    );

    // A readable header over garbage: Tesseract cannot decode it.
    let Some(ocr) = ocr_available() else { return };
    let mut corrupt = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    corrupt.extend_from_slice(&200u32.to_be_bytes());
    corrupt.extend_from_slice(&100u32.to_be_bytes());
    corrupt.extend_from_slice(&[8, 0, 0, 0, 0]);
    corrupt.extend(std::iter::repeat_n(0x5a, 4000));
    let err = parse_bytes(Path::new("/scans/broken.png"), &corrupt, &opts_with(ocr)).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::Corrupt {
                format: "image",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("tesseract could not read it"),
        "{err}"
    );
}

/// The stand-alone worker built from `examples/pdf-worker.rs` (cargo builds examples with the
/// tests).
pub(crate) fn example_worker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let worker = dir
        .join("examples")
        .join(format!("pdf-worker{}", std::env::consts::EXE_SUFFIX));
    assert!(
        worker.is_file(),
        "{} missing: run `cargo test -p docent-parse` (it builds the examples)",
        worker.display()
    );
    worker
}

#[test]
fn ocr_runs_inside_the_limited_worker() {
    let Some(ocr) = ocr_available() else { return };
    let opts = ParseOptions {
        pdf_isolation: PdfIsolation::Subprocess {
            exe: example_worker(),
        },
        worker_limits: WorkerLimits::default(),
        ..opts_with(ocr)
    };
    let (doc, warnings) = parse_one(&scanned("contract-mixed.pdf"), &opts);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(doc.meta[META_OCR_PAGES], "2");
    assert_eq!(page_of(&doc, "$184,500"), Some(2));
    let (photo, _) = parse_one(&scanned("roof-photo.jpg"), &opts);
    assert!(photo.text.contains("Okafor"), "{}", photo.text);
}

#[test]
fn files_that_waited_for_ocr_are_retried_once_it_can_run() {
    let needs = SkipReason::NeedsOcr(OcrUnavailable::NotInstalled("tesseract")).to_string();
    let no_layer = SkipReason::NoTextLayer.to_string();
    let off = OcrOptions::default();
    assert!(!docent_parse::waits_for_ocr(&needs, &off));
    assert!(!docent_parse::waits_for_ocr(&no_layer, &off));
    let missing = OcrOptions {
        enabled: true,
        tools: OcrTools::Explicit {
            tesseract: None,
            pdftoppm: None,
        },
        ..OcrOptions::default()
    };
    assert!(!docent_parse::waits_for_ocr(&needs, &missing));
    let Some(ready) = ocr_available() else { return };
    assert!(docent_parse::waits_for_ocr(&needs, &ready));
    assert!(docent_parse::waits_for_ocr(&no_layer, &ready));
    assert!(!docent_parse::waits_for_ocr("encrypted", &ready));
}
