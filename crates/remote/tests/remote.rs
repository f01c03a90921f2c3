//! The client against a small HTTP server run by the test itself: streaming (chunked server-sent
//! events), a one-piece JSON answer, error statuses, cancel, and a server that is not there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use docent_core::{ChatMessage, Generator, SamplingParams, StopReason};
use docent_remote::{RemoteGenerator, RemoteOptions};

/// What the server saw: the request line, headers (lower-case names) and JSON body.
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

fn read_request(s: &mut TcpStream) -> Request {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    Request {
        line: line.trim_end().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap(),
    }
}

/// Serves one connection with `respond`, and hands the request back.
fn serve(
    respond: impl FnOnce(&mut TcpStream) + Send + 'static,
) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let req = read_request(&mut s);
        tx.send(req).unwrap();
        respond(&mut s);
    });
    (url, rx)
}

fn chunk(s: &mut TcpStream, data: &str) {
    write!(s, "{:x}\r\n{data}\r\n", data.len()).unwrap();
    s.flush().unwrap();
}

fn event(s: &mut TcpStream, json: serde_json::Value) {
    chunk(s, &format!("data: {json}\n\n"));
}

fn delta(text: &str) -> serde_json::Value {
    serde_json::json!({"choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
}

fn generator(url: &str) -> RemoteGenerator {
    let mut o = RemoteOptions::new(url, "qwen3:14b");
    o.api_key = Some("secret-key".into());
    o.context_length = 16384;
    RemoteGenerator::new(o).unwrap()
}

fn params() -> SamplingParams {
    SamplingParams {
        temperature: 0.2,
        top_p: Some(0.9),
        top_k: Some(40),
        ..SamplingParams::greedy(128)
    }
}

#[test]
fn streams_an_answer_piece_by_piece() {
    let (url, requests) = serve(|s| {
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        chunk(s, ": keep-alive comment\n\n");
        for piece in ["The lease", " ends on", " 31 März 2027", " [1]."] {
            event(s, delta(piece));
        }
        event(
            s,
            serde_json::json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
        );
        event(
            s,
            serde_json::json!({"choices":[],"usage":{"prompt_tokens":812,"completion_tokens":9}}),
        );
        chunk(s, "data: [DONE]\n\n");
        chunk(s, "");
    });
    let mut g = generator(&url);
    assert_eq!(g.context_length(), 16384);
    assert!(g.model_id().starts_with("qwen3:14b at 127.0.0.1:"));
    let mut pieces = Vec::new();
    let stats = g
        .generate(
            &[
                ChatMessage::system("Answer from the sources."),
                ChatMessage::user("When does the lease end?"),
            ],
            &params(),
            &AtomicBool::new(false),
            &mut |t| pieces.push(t.to_string()),
        )
        .unwrap();
    assert_eq!(pieces, ["The lease", " ends on", " 31 März 2027", " [1]."]);
    assert_eq!(stats.stop, StopReason::EndOfTurn);
    assert_eq!((stats.prompt_tokens, stats.generated_tokens), (812, 9));

    let req = requests.recv().unwrap();
    assert_eq!(req.line, "POST /v1/chat/completions HTTP/1.1");
    let header = |k: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("authorization"), Some("Bearer secret-key"));
    assert!(header("host").unwrap().starts_with("127.0.0.1:"));
    let b = &req.body;
    assert_eq!(b["model"], "qwen3:14b");
    assert_eq!(b["stream"], true);
    assert_eq!(b["max_tokens"], 128);
    assert_eq!(b["top_k"], 40);
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(b["messages"][1]["content"], "When does the lease end?");
}

#[test]
fn a_server_that_does_not_stream_answers_in_one_piece() {
    let (url, _req) = serve(|s| {
        let body = serde_json::json!({
            "choices":[{"index":0,"message":{"role":"assistant","content":"Not found in the sources."},"finish_reason":"length"}],
            "usage":{"prompt_tokens":20,"completion_tokens":6}
        })
        .to_string();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let mut text = String::new();
    let stats = generator(&url)
        .generate(
            &[ChatMessage::user("q")],
            &params(),
            &AtomicBool::new(false),
            &mut |t| text.push_str(t),
        )
        .unwrap();
    assert_eq!(text, "Not found in the sources.");
    assert_eq!(stats.stop, StopReason::MaxTokens);
    assert_eq!(stats.generated_tokens, 6);
}

#[test]
fn error_statuses_carry_the_servers_message() {
    let (url, _req) = serve(|s| {
        let body = r#"{"error":{"message":"model \"qwen3:14b\" not found, try pulling it first"}}"#;
        write!(
            s,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let err = generator(&url)
        .generate(
            &[ChatMessage::user("q")],
            &params(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("try pulling it first"), "{err}");
    assert!(err.contains(&url), "{err}");
}

#[test]
fn cancel_stops_a_stream_that_is_still_coming() {
    let (url, _req) = serve(|s| {
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        event(s, delta("First"));
        // The rest would come much later; the client must not wait for it.
        thread::sleep(Duration::from_secs(30));
        event(s, delta(" never read"));
    });
    let cancel = AtomicBool::new(false);
    let mut text = String::new();
    let stats = generator(&url)
        .generate(&[ChatMessage::user("q")], &params(), &cancel, &mut |t| {
            text.push_str(t);
            cancel.store(true, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(text, "First");
    assert_eq!(stats.stop, StopReason::Cancelled);
}

#[test]
fn a_server_that_is_not_there_is_a_clear_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/v1");
    let err = generator(&url)
        .generate(
            &[ChatMessage::user("q")],
            &params(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot reach"), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn a_truncated_stream_is_an_error_not_a_short_answer() {
    let (url, _req) = serve(|s| {
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        event(s, delta("Half an"));
        // Announces 100 bytes, sends 5, hangs up.
        write!(s, "64\r\ndata:").unwrap();
    });
    let err = generator(&url)
        .generate(
            &[ChatMessage::user("q")],
            &params(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("closed"), "{err}");
}

// Hostile servers: each must end in a clear error, with bounded memory and time, whatever the
// server does.

/// Options for a hostile server: a short deadline (the only way a trickling server ends).
fn hostile(url: &str) -> RemoteOptions {
    let mut o = RemoteOptions::new(url, "m");
    o.api_key = Some("secret-key".into());
    o.deadline = Duration::from_secs(1);
    o
}

fn ask(o: RemoteOptions) -> String {
    RemoteGenerator::new(o)
        .unwrap()
        .generate(
            &[ChatMessage::user("q")],
            &params(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string()
}

#[test]
fn a_stream_that_never_ends_meets_the_deadline() {
    let (url, _req) = serve(|s| {
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        loop {
            let piece = format!("data: {}\n\n", delta("more"));
            if write!(s, "{:x}\r\n{piece}\r\n", piece.len()).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
    });
    let err = ask(hostile(&url));
    assert!(err.contains("deadline"), "{err}");
    assert!(err.contains(&url), "{err}");
}

#[test]
fn headers_trickling_in_meet_the_deadline() {
    let (url, _req) = serve(|s| {
        let _ = write!(s, "HTTP/1.1 200 OK\r\n");
        // Slowloris: a header line now and then, never the blank line that ends the head.
        for i in 0.. {
            if write!(s, "X-Wait-{i}: 1\r\n").is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let err = ask(hostile(&url));
    assert!(err.contains("deadline"), "{err}");
}

#[test]
fn an_endless_header_is_refused() {
    let (url, _req) = serve(|s| {
        let _ = write!(s, "HTTP/1.1 200 OK\r\nX-Endless: ");
        let block = [b'a'; 4096];
        while s.write_all(&block).is_ok() {}
    });
    let mut o = hostile(&url);
    o.deadline = Duration::from_secs(600);
    let err = ask(o);
    assert!(err.contains("longer than"), "{err}");
}

#[test]
fn an_endless_line_is_refused() {
    let (url, _req) = serve(|s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: "
        );
        let block = [b'a'; 4096];
        while s.write_all(&block).is_ok() {}
    });
    let mut o = hostile(&url);
    o.deadline = Duration::from_secs(600);
    o.max_line_bytes = 64 * 1024;
    let err = ask(o);
    assert!(err.contains("line longer than 65536 bytes"), "{err}");
}

#[test]
fn a_huge_answer_in_one_piece_is_refused() {
    // Announced: refused before reading it.
    let (url, _req) = serve(|s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{{"
        );
    });
    let mut o = hostile(&url);
    o.deadline = Duration::from_secs(600);
    o.max_body_bytes = 1024 * 1024;
    let err = ask(o.clone());
    assert!(err.contains("larger than 1048576 bytes"), "{err}");

    // Not announced (until the connection closes): refused after the limit.
    let (url, _req) = serve(|s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{{\"choices\":[{{\"message\":{{\"content\":\""
        );
        let block = [b'a'; 4096];
        while s.write_all(&block).is_ok() {}
    });
    o.url = url;
    let err = ask(o);
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
}
