//! `docent ask` end to end: the relevance gate, JSON and export without a model; answers from
//! the real starter model; and the errors that say what to do.

use crate::{Env, stderr, stdout_json};

#[test]
fn refuses_unanswerable_questions_without_a_model_and_explains_a_missing_one() {
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

    // A relevant question with a model that is not installed: a clear error with a hint.
    let out = env.run(&[
        "ask",
        "--model",
        "no-such-model",
        "What are the liquidated damages per day of delay?",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no-such-model") && err.contains("not installed"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");

    // A bad export folder is named.
    let out = env.run(&["ask", "--export", "no/such/dir/a.md", "sourdough bread"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such folder"), "{}", stderr(&out));

    // A model server on the network answers instead (a small OpenAI-compatible server here):
    // the answer streams in and its citation resolves to the contract.
    let (url, request) = chat_server(&[
        "Liquidated damages are $350",
        " per calendar day of delay [1].",
    ]);
    let out = env
        .cmd()
        .env("DOCENT_LLM_BACKEND", "remote")
        .env("DOCENT_LLM_URL", &url)
        .env("DOCENT_LLM_REMOTE_MODEL", "qwen3:14b")
        .args([
            "ask",
            "--json",
            "What are the liquidated damages per day of delay?",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["refused"], false, "{v:#}");
    assert!(
        v["answer"]
            .as_str()
            .unwrap()
            .contains("$350 per calendar day"),
        "{v:#}"
    );
    assert!(
        v["model"]
            .as_str()
            .unwrap()
            .starts_with("qwen3:14b at 127.0.0.1:"),
        "{v:#}"
    );
    let c = &v["citations"][0];
    assert!(
        c["path"].as_str().unwrap().ends_with("linden-contract.pdf"),
        "{v:#}"
    );
    assert_eq!(c["page"], 2, "{v:#}");
    let body: serde_json::Value = serde_json::from_str(&request.recv().unwrap()).unwrap();
    assert_eq!(body["model"], "qwen3:14b");
    let prompt = body["messages"].to_string();
    assert!(
        prompt.contains("liquidated damages of $350"),
        "the sources go to the server: {prompt}"
    );
}

/// An OpenAI-compatible server for one request that streams `pieces`; returns its URL and the
/// request body it receives.
fn chat_server(pieces: &[&str]) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let pieces: Vec<String> = pieces.iter().map(|p| p.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        tx.send(String::from_utf8(body).unwrap()).unwrap();
        let mut out = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
        for p in &pieces {
            let e = serde_json::json!({"choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]});
            out.push_str(&format!("data: {e}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        s.write_all(out.as_bytes()).unwrap();
    });
    (url, rx)
}

#[test]
fn ask_without_an_index_says_what_to_do() {
    let env = Env::new();
    let out = env.run(&["ask", "anything"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("docent index"), "{}", stderr(&out));
}

#[test]
fn answers_from_the_documents_with_the_starter_model() {
    let env = Env::new();
    let root = env.copy_fixtures();
    env.run(&["index", "-q", root.to_str().unwrap()]);
    let out = env.run(&[
        "ask",
        "--json",
        "--model",
        "smollm2-135m-instruct",
        "--export",
        "answer.md",
        "What are the liquidated damages per calendar day of delay?",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["refused"], false, "{v:#}");
    assert!(!v["answer"].as_str().unwrap().trim().is_empty(), "{v:#}");
    assert_eq!(v["model"], "SmolLM2-135M-Instruct.Q4_1", "{v:#}");
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0, "{v:#}");
    // Whatever the small model cites was given to it, and resolves to a stored passage.
    for c in v["citations"].as_array().unwrap() {
        let path = c["path"].as_str().unwrap();
        assert!(std::path::Path::new(path).exists(), "{c:#}");
        assert!(!c["chunk_id"].as_str().unwrap().is_empty(), "{c:#}");
    }
    let md = std::fs::read_to_string(env.work.path().join("answer.md")).unwrap();
    assert!(md.contains("SmolLM2-135M-Instruct.Q4_1"), "{md}");
}
