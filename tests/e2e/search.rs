//! `docent search` over the indexed fixtures: locations, filters, updates, hostile input.

use crate::{Env, stderr, stdout_json};

fn search(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["search", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert!(
        out.status.success(),
        "search {args:?} failed: {}",
        stderr(&out)
    );
    stdout_json(&out)
}

fn top(v: &serde_json::Value) -> &serde_json::Value {
    &v["hits"][0]
}

#[test]
fn finds_fixture_content_at_the_right_location() {
    let env = Env::new();
    let root = env.copy_fixtures();
    env.run(&["index", "-q", root.to_str().unwrap()]);

    // A fact on page 2 of the contract: first by keywords; within the top three by meaning
    // alone and fused (an email about a delivery delay is close in meaning).
    for (mode, within) in [("bm25", 1), ("hybrid", 3), ("vector", 3)] {
        let v = search(
            &env,
            &[
                "--mode",
                mode,
                "liquidated damages per calendar day of delay",
            ],
        );
        let hits = v["hits"].as_array().unwrap();
        let hit = hits
            .iter()
            .take(within)
            .find(|h| {
                h["path"]
                    .as_str()
                    .unwrap()
                    .ends_with("pdf/linden-contract.pdf")
            })
            .unwrap_or_else(|| panic!("{mode}: contract not in the top {within}: {v:#}"));
        assert_eq!(hit["page"], 2, "{mode}: {v:#}");
        assert_eq!(hit["kind"], "pdf");
        assert!(
            hit["snippet"]
                .as_str()
                .unwrap()
                .contains("liquidated damages"),
            "{mode}: {v:#}"
        );
        assert!(v["took_ms"].is_u64());
    }

    // A note, found with its heading path and line range.
    let v = search(&env, &["asbestos abatement cost"]);
    let notes: Vec<&serde_json::Value> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "note")
        .collect();
    assert!(!notes.is_empty(), "{v:#}");
    let lines = notes[0]["lines"].as_array().unwrap();
    assert!(lines[0].as_u64().unwrap() >= 1 && lines[1].as_u64() >= lines[0].as_u64());

    // An email, with subject and sender.
    let v = search(
        &env,
        &[
            "when will the rooftop HVAC units be delivered",
            "kind:email",
        ],
    );
    let hit = top(&v);
    assert_eq!(hit["kind"], "email", "{v:#}");
    assert!(hit["subject"].as_str().unwrap().contains("HVAC"), "{v:#}");
    for h in v["hits"].as_array().unwrap() {
        assert_eq!(h["kind"], "email");
    }
}

#[test]
fn filters_and_hostile_queries() {
    let env = Env::new();
    let root = env.copy_fixtures();
    env.run(&["index", "-q", root.to_str().unwrap()]);

    let v = search(&env, &["window frames from:müller"]);
    for h in v["hits"].as_array().unwrap() {
        assert!(
            h["from"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("müller"),
            "{v:#}"
        );
    }
    let v = search(&env, &["roof", "kind:pdf", "path:fixtures/pdf/"]);
    assert!(!v["hits"].as_array().unwrap().is_empty(), "{v:#}");
    for h in v["hits"].as_array().unwrap() {
        assert!(
            h["path"].as_str().unwrap().contains("/fixtures/pdf/"),
            "{v:#}"
        );
    }
    let v = search(&env, &["asbestos after:2024-11-15 before:2024-12-01"]);
    for h in v["hits"].as_array().unwrap() {
        let d = h["date"].as_str().unwrap();
        assert!(("2024-11-15".."2024-12-01").contains(&d), "{v:#}");
    }

    let long = "payment ".repeat(1300);
    for q in [
        "",
        "((a:b]]~^2 OR NOT \"",
        "kind:video",
        "図書館の屋根",
        "🙂🙂🙂",
        "\u{1b}[31mred",
        long.as_str(),
    ] {
        let out = env.run(&["search", "--json", q]);
        assert!(out.status.success(), "{q:?}: {}", stderr(&out));
        let v = stdout_json(&out);
        assert!(v["hits"].is_array(), "{q:?}");
    }
}

#[test]
fn edits_and_deletions_show_up_in_search() {
    let env = Env::new();
    let root = env.work.path().join("docs");
    std::fs::create_dir_all(&root).unwrap();
    let r = root.to_str().unwrap();
    std::fs::write(
        root.join("a.md"),
        "# Garden\n\nThe greenhouse needs new glass panels.\n",
    )
    .unwrap();
    env.run(&["index", "-q", r]);
    let v = search(&env, &["--mode", "bm25", "greenhouse glass"]);
    assert_eq!(v["hits"].as_array().unwrap().len(), 1, "{v:#}");

    // Edit: the old words are gone, the new ones found.
    std::fs::write(
        root.join("a.md"),
        "# Garden\n\nThe orchard needs twelve apple trees.\n",
    )
    .unwrap();
    env.run(&["index", "-q", r]);
    let v = search(&env, &["--mode", "bm25", "greenhouse glass"]);
    assert_eq!(v["hits"].as_array().unwrap().len(), 0, "{v:#}");
    let v = search(&env, &["--mode", "bm25", "apple trees"]);
    assert_eq!(v["hits"].as_array().unwrap().len(), 1, "{v:#}");

    // Move: found at the new path, not at the old one; nothing re-embedded.
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::rename(root.join("a.md"), root.join("sub/b.md")).unwrap();
    let s = stdout_json(&env.run(&["index", "--json", r]));
    assert_eq!(s["files_moved"], 1, "{s:#}");
    assert_eq!(s["chunks_embedded"], 0, "{s:#}");
    let v = search(&env, &["apple trees"]);
    let paths: Vec<&str> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 1, "{v:#}");
    assert!(paths[0].ends_with("sub/b.md"), "{paths:?}");

    // Delete: gone from both retrievers.
    std::fs::remove_file(root.join("sub/b.md")).unwrap();
    env.run(&["index", "-q", r]);
    for mode in ["bm25", "vector"] {
        let v = search(&env, &["--mode", mode, "apple trees"]);
        assert_eq!(v["hits"].as_array().unwrap().len(), 0, "{mode}: {v:#}");
    }
}

#[test]
fn search_without_an_index_says_what_to_do() {
    let env = Env::new();
    let out = env.run(&["search", "anything"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("docent index"), "{}", stderr(&out));
}

/// A scanned contract (no text layer) is recognised with OCR when indexed, and its clause is
/// found on the right page. Needs Tesseract and poppler (skipped without them unless
/// `DOCENT_REQUIRE_OCR` is set, as in CI).
#[test]
fn finds_a_clause_in_a_scanned_pdf_on_its_page() {
    let installed = docent_parse::ocr::installed();
    if installed.tesseract.is_none() || installed.pdftoppm.is_none() {
        assert!(
            std::env::var_os("DOCENT_REQUIRE_OCR").is_none(),
            "tesseract and pdftoppm are required"
        );
        eprintln!("skipping: tesseract or pdftoppm not installed");
        return;
    }
    let env = Env::new();
    let root = env.work.path().join("scans");
    std::fs::create_dir_all(&root).unwrap();
    let scan = docent_test_support::repo_root().join("fixtures-scanned/contract-scanned.pdf");
    std::fs::copy(&scan, root.join("contract-scanned.pdf")).unwrap();
    // With OCR off it is skipped as before...
    let s = stdout_json(&env.run(&["index", "--json", root.to_str().unwrap()]));
    assert_eq!(s["files_indexed"], 0, "{s}");
    assert_eq!(
        s["files_skipped"][0]["reason"], "no text layer (scanned?)",
        "{s}"
    );
    // ...and once OCR is on, the next run reads it although the file did not change.
    let out = env
        .cmd()
        .env("DOCENT_OCR_ENABLED", "true")
        .args(["index", "--json", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let s = stdout_json(&out);
    assert_eq!(s["files_indexed"], 1, "{s}");

    let v = search(
        &env,
        &[
            "--mode",
            "bm25",
            "liquidated damages per calendar day of delay",
        ],
    );
    let hit = top(&v);
    assert!(
        hit["path"]
            .as_str()
            .unwrap()
            .ends_with("contract-scanned.pdf"),
        "{v:#}"
    );
    assert_eq!(hit["page"], 2, "{v:#}");
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap()
            .contains("liquidated damages"),
        "{v:#}"
    );
}
