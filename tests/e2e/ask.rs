//! `docent ask` end to end: what works without a language model backend (the relevance gate,
//! JSON, export) and the errors that say what to do.

use crate::{Env, stderr, stdout_json};

#[test]
fn refuses_unanswerable_questions_without_a_model_and_explains_a_missing_backend() {
    let env = Env::new();
    let root = env.copy_fixtures();
    env.run(&["index", "-q", root.to_str().unwrap()]);

    // Nothing relevant: refused, and no model is loaded (this build has none).
    let out = env.run(&[
        "ask",
        "--json",
        "--export",
        "answer.md",
        "How do I bake sourdough bread?",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["refused"], true, "{v:#}");
    assert!(
        v["answer"]
            .as_str()
            .unwrap()
            .starts_with("Not found in your documents."),
        "{v:#}"
    );
    assert_eq!(v["citations"].as_array().unwrap().len(), 0);
    assert!(v["retrieval_ms"].is_u64());
    let md = std::fs::read_to_string(env.work.path().join("answer.md")).unwrap();
    assert!(md.starts_with("# How do I bake sourdough bread?\n"), "{md}");
    assert!(md.contains("no language model was asked"), "{md}");

    // Plain output says the same.
    let out = env.run(&["ask", "what is the capital of Australia"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Not found in your documents"));

    // A relevant question needs the model: a clear error with a hint.
    let out = env.run(&["ask", "What are the liquidated damages per day of delay?"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no language model backend in this build"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");

    // A bad export folder is named.
    let out = env.run(&["ask", "--export", "no/such/dir/a.md", "sourdough bread"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such folder"), "{}", stderr(&out));
}

#[test]
fn ask_without_an_index_says_what_to_do() {
    let env = Env::new();
    let out = env.run(&["ask", "anything"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("docent index"), "{}", stderr(&out));
}
