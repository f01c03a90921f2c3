//! `docent index` over the fixtures: outcomes, second runs, moves, deletions, exit codes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Env, stderr, stdout_json};

/// `path (relative to the fixtures copy) → outcome` from an `index --json` summary plus the
/// manifest listing.
fn outcomes(env: &Env, root: &std::path::Path) -> BTreeMap<String, String> {
    let files = stdout_json(&env.run(&["files", "--json"]));
    let root = std::fs::canonicalize(root).unwrap();
    let mut out = BTreeMap::new();
    for f in files["files"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        let rel = std::path::Path::new(p)
            .strip_prefix(&root)
            .unwrap()
            .display()
            .to_string();
        let what = match f["status"].as_str().unwrap() {
            "indexed" => format!(
                "indexed: {} ({} docs)",
                f["parser"].as_str().unwrap(),
                f["documents"]
            ),
            s => format!("{s}: {}", f["reason"].as_str().unwrap()),
        };
        out.insert(rel, what);
    }
    out
}

#[test]
fn fixtures_index_with_the_right_outcomes_and_second_run_is_unchanged() {
    let env = Env::new();
    let root = env.copy_fixtures();
    let out = env.run(&["index", "--json", root.to_str().unwrap()]);
    // Broken fixtures are there on purpose: partial success is exit code 3.
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let s = stdout_json(&out);
    for key in [
        "files_seen",
        "files_indexed",
        "files_unchanged",
        "files_skipped",
        "chunks",
    ] {
        assert!(s.get(key).is_some(), "summary lacks {key}: {s}");
    }
    assert!(s["files_indexed"].as_u64().unwrap() >= 10, "{s}");
    assert_eq!(s["files_unchanged"], 0);
    assert!(s["chunks"].as_u64().unwrap() > 20, "{s}");
    let seen = s["files_seen"].as_u64().unwrap();
    let skipped = s["files_skipped"].as_array().unwrap().len() as u64;
    assert_eq!(seen, s["files_indexed"].as_u64().unwrap() + skipped);

    insta::assert_json_snapshot!("fixture_outcomes", outcomes(&env, &root));

    // Second run: nothing read, nothing changed, exit 0.
    let out = env.run(&["index", "--json", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let s2 = stdout_json(&out);
    assert_eq!(s2["files_unchanged"], s["files_seen"]);
    assert_eq!(s2["files_indexed"], 0);
    assert_eq!(s2["bytes_read"], 0);
    assert_eq!(s2["files_skipped"], Value::Array(vec![]));
    assert_eq!(s2["chunks"], s["chunks"]);
}

#[test]
fn moved_changed_and_deleted_files() {
    let env = Env::new();
    let root = env.work.path().join("docs");
    std::fs::create_dir_all(root.join("a")).unwrap();
    let note = "# Budget\n\nThe roof budget is forty thousand dollars.\n";
    std::fs::write(root.join("a/budget.md"), note).unwrap();
    std::fs::write(root.join("a/other.txt"), "Another note about windows.\n").unwrap();
    let r = root.to_str().unwrap();
    let s = stdout_json(&env.run(&["index", "--json", r]));
    assert_eq!(s["files_indexed"], 2);

    // Move: recognised by content, not parsed again.
    std::fs::create_dir_all(root.join("b")).unwrap();
    std::fs::rename(root.join("a/budget.md"), root.join("b/budget-2024.md")).unwrap();
    let s = stdout_json(&env.run(&["index", "--json", r]));
    assert_eq!(s["files_moved"], 1, "{s}");
    assert_eq!(s["files_indexed"], 0, "{s}");
    assert_eq!(s["files_removed"], 1, "{s}");
    let files = stdout_json(&env.run(&["files", "--json"]));
    let paths: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("b/budget-2024.md")),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.ends_with("a/budget.md")),
        "{paths:?}"
    );

    // Change: parsed again.
    std::fs::write(root.join("a/other.txt"), "Another note, now about doors.\n").unwrap();
    let s = stdout_json(&env.run(&["index", "--json", r]));
    assert_eq!(s["files_indexed"], 1, "{s}");
    assert_eq!(s["files_unchanged"], 1, "{s}");

    // Delete: the record goes.
    std::fs::remove_file(root.join("a/other.txt")).unwrap();
    let s = stdout_json(&env.run(&["index", "--json", r]));
    assert_eq!(s["files_removed"], 1, "{s}");
    let files = stdout_json(&env.run(&["files", "--json"]));
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
}

#[cfg(unix)]
#[test]
fn a_broken_file_never_stops_the_batch() {
    let env = Env::new();
    let root = env.work.path().join("docs");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("good.md"), "# Good\n\nReadable text.\n").unwrap();
    // A symlink to nowhere: the walk cannot read it.
    std::os::unix::fs::symlink(root.join("missing.md"), root.join("dangling.md")).unwrap();
    // A PDF that is cut short.
    let pdf = std::fs::read(docent_test_support::fixture("pdf/linden-contract.pdf")).unwrap();
    std::fs::write(root.join("cut.pdf"), &pdf[..pdf.len() / 3]).unwrap();
    let out = env.run(&["index", "--json", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let s = stdout_json(&out);
    assert_eq!(s["files_indexed"], 1, "{s}");
    let skipped = s["files_skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{s}");
    for f in skipped {
        assert_eq!(f["error"], true, "{f}");
        assert!(!f["reason"].as_str().unwrap().is_empty());
    }
}

#[test]
fn human_summary_names_reasons() {
    let env = Env::new();
    let root = env.copy_fixtures();
    let out = env.run(&["index", root.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("files seen"), "{text}");
    assert!(text.contains("encrypted"), "{text}");
    assert!(text.contains("no text layer (scanned?)"), "{text}");
    // Without a terminal, progress comes as plain lines on stderr.
    assert!(stderr(&out).contains("indexed "), "{}", stderr(&out));
}

#[test]
fn fatal_errors_exit_1_with_a_hint() {
    let env = Env::new();
    let out = env.run(&["index", "no/such/folder"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no/such/folder"), "{}", stderr(&out));

    std::fs::create_dir_all(env.home.path()).unwrap();
    std::fs::write(
        env.home.path().join("docent.toml"),
        "[chunk]\nmax_tokenz = 3\n",
    )
    .unwrap();
    let out = env.run(&["index", "."]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("docent.toml") && err.contains("max_tokenz"),
        "{err}"
    );
}

#[test]
fn a_second_writer_is_refused() {
    let env = Env::new();
    let _lock = docent_store::WriteLock::acquire(env.home.path()).unwrap();
    let out = env.run(&["index", "."]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("another docent process"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn missing_model_names_the_fix() {
    let env = Env::new();
    let out = env
        .cmd()
        .env("DOCENT_MODELS", env.work.path().join("no-models"))
        .args(["index", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("fetch-models.sh"), "{}", stderr(&out));
}
