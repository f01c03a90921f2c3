//! `docent inspect`: how one file parses and chunks.

use crate::{Env, stderr, stdout_json};

#[test]
fn inspect_markdown_shows_headings_and_locations() {
    let env = Env::new();
    let f = docent_test_support::fixture("notes/site-meeting-2024-11-05.md");
    let out = env.run(&["inspect", "--json", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["format"], "markdown");
    let docs = v["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 1);
    let text = docs[0]["document"]["text"].as_str().unwrap();
    let chunks = docs[0]["chunks"].as_array().unwrap();
    assert!(!chunks.is_empty());
    for c in chunks {
        let s = c["span"]["bytes"]["start"].as_u64().unwrap() as usize;
        let e = c["span"]["bytes"]["end"].as_u64().unwrap() as usize;
        assert_eq!(&text[s..e], c["text"].as_str().unwrap());
        // Lines point at the chunk's first line in the file.
        let first_line = c["span"]["lines"]["start"].as_u64().unwrap() as usize;
        let line_of_start = text[..s].matches('\n').count() + 1;
        assert_eq!(first_line, line_of_start);
        assert!(c["tokens"].as_u64().unwrap() <= 256);
    }
    assert!(
        chunks
            .iter()
            .any(|c| !c["span"]["heading_path"].as_array().unwrap().is_empty())
    );

    let out = env.run(&["inspect", f.to_str().unwrap()]);
    assert!(out.status.success());
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("chunk "), "{human}");
    assert!(human.contains("lines "), "{human}");
}

#[test]
fn inspect_pdf_keeps_pages() {
    let env = Env::new();
    let f = docent_test_support::fixture("pdf/linden-contract.pdf");
    let v = stdout_json(&env.run(&["inspect", "--json", f.to_str().unwrap()]));
    let chunks = v["documents"][0]["chunks"].as_array().unwrap();
    let pages: std::collections::BTreeSet<u64> = chunks
        .iter()
        .map(|c| c["span"]["page"].as_u64().unwrap())
        .collect();
    assert!(pages.len() >= 3, "{pages:?}");
    let fee = chunks
        .iter()
        .find(|c| c["text"].as_str().unwrap().contains("184,500"))
        .expect("the fee is in some chunk");
    assert_eq!(fee["span"]["page"], 2);
}

#[test]
fn inspect_skipped_and_broken_files() {
    let env = Env::new();
    let enc = docent_test_support::fixture("invalid/encrypted.pdf");
    let out = env.run(&["inspect", enc.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped: encrypted"));

    let cut = docent_test_support::fixture("invalid/truncated.pdf");
    let out = env.run(&["inspect", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("truncated.pdf"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
