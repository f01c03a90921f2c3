//! The isolated worker's limits, against hostile input generated here.

use std::path::Path;
use std::time::Duration;

use docent_parse::{ParseError, ParseOptions, PdfIsolation, WorkerLimits, parse_bytes};
use lopdf::{Document, Object, Stream, dictionary};

use crate::ocr::example_worker;

/// A zlib stream that inflates to `mib` MiB of zeros, in about a thousandth of that: one MiB of
/// zeros compressed with a full flush (which resets the compressor), then the same compressed
/// block repeated (identical input from a reset state compresses identically). It has no end
/// block or checksum; lopdf keeps what inflated before the stream ran out.
fn flate_bomb(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), true);
    let block = |c: &mut Compress| {
        let mut out = Vec::with_capacity(64 * 1024);
        let before = c.total_in();
        c.compress_vec(&zeros, &mut out, FlushCompress::Full)
            .unwrap();
        assert_eq!(c.total_in() - before, 1 << 20, "block not consumed whole");
        out
    };
    let mut stream = block(&mut c);
    let repeat = block(&mut c);
    assert_eq!(block(&mut c), repeat, "flushed blocks differ");
    for _ in 1..mib {
        stream.extend_from_slice(&repeat);
    }
    stream
}

/// A one-page PDF whose content stream is `content`, Flate-compressed as given.
fn pdf_with_stream(content: Vec<u8>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let content_id = doc.add_object(Stream::new(
        dictionary! { "Filter" => "FlateDecode" },
        content,
    ));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        "Resources" => dictionary! {},
        "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn flate_bomb_in_a_pdf_ends_with_a_reason_in_bounded_memory() {
    // 8 GiB once inflated, 8 MB on disk.
    let bomb = pdf_with_stream(flate_bomb(8 * 1024));
    assert!(bomb.len() < 16 << 20, "{}", bomb.len());
    let opts = ParseOptions {
        pdf_timeout: Duration::from_secs(300),
        pdf_isolation: PdfIsolation::Subprocess {
            exe: example_worker(),
        },
        worker_limits: WorkerLimits {
            memory_bytes: 512 << 20,
            ..WorkerLimits::default()
        },
        ..ParseOptions::default()
    };
    let err = parse_bytes(Path::new("/docs/bomb.pdf"), &bomb, &opts).unwrap_err();
    assert!(matches!(err, ParseError::Crashed { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "/docs/bomb.pdf: the PDF parser crashed on this file: it ran out of memory (limit 512.0 MB)"
    );
}

#[test]
fn the_real_worker_extracts_within_its_limits() {
    let path = docent_test_support::fixture("pdf/linden-contract.pdf");
    let bytes = std::fs::read(&path).unwrap();
    let opts = ParseOptions {
        pdf_isolation: PdfIsolation::Subprocess {
            exe: example_worker(),
        },
        ..ParseOptions::default()
    };
    let Ok(docent_parse::Outcome::Parsed { documents, .. }) = parse_bytes(&path, &bytes, &opts)
    else {
        panic!("not parsed")
    };
    assert_eq!(documents[0].pages, Some(3));
    assert!(documents[0].text.contains("$184,500"));
}
