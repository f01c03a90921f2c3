//! Embedding throughput: N generated chunk-like texts of 150-250 tokens (fixed seed) embedded
//! by docent's `BertEmbedder` (all-MiniLM-L6-v2, CPU), then, in the same run, by
//! sentence-transformers through `benches/embed_reference.py` when a Python with it is
//! available (`DOCENT_PY`, default `~/.cache/docent-py/bin/python`), printed side by side.
//!
//! `cargo bench -p docent-embed --bench embed [-- --texts N] [--batch-size B]`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use docent_core::EmbedKind;
use docent_embed::{BertEmbedder, EmbedOptions};

const MODEL: &str = "all-MiniLM-L6-v2";

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "be",
    "are",
    "was",
    "it",
    "or",
    "which",
    "will",
    "shall",
    "may",
    "not",
    "each",
    "within",
    "after",
    "before",
    "agreement",
    "contract",
    "owner",
    "architect",
    "contractor",
    "payment",
    "invoice",
    "fee",
    "schedule",
    "clause",
    "party",
    "notice",
    "period",
    "date",
    "completion",
    "works",
    "site",
    "drawings",
    "specification",
    "certificate",
    "insurance",
    "liability",
    "damages",
    "termination",
    "dispute",
    "library",
    "reading",
    "room",
    "roof",
    "repairs",
    "budget",
    "board",
    "council",
    "volunteers",
    "books",
    "shelves",
    "archive",
    "meeting",
    "minutes",
    "agenda",
    "action",
    "report",
    "quarter",
    "revenue",
    "expenses",
    "account",
    "transfer",
    "tax",
    "deadline",
    "email",
    "reply",
    "thanks",
    "project",
    "team",
    "delivery",
    "software",
    "release",
    "update",
    "server",
    "database",
    "backup",
    "password",
    "document",
    "page",
    "section",
    "chapter",
    "table",
    "appendix",
    "summary",
    "question",
    "answer",
    "search",
    "index",
    "embedding",
    "token",
    "chunk",
    "heading",
    "paragraph",
    "March",
    "September",
    "Monday",
    "Friday",
    "week",
    "month",
    "Linden",
    "Street",
    "Mill",
    "Lane",
    "Zürich",
    "Köln",
    "Müller",
    "Françoise",
];

/// A small deterministic generator (PCG-style LCG), so every run embeds the same texts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn sentence(&mut self) -> String {
        let k = 6 + self.below(17);
        let mut words: Vec<String> = (0..k)
            .map(|_| WORDS[self.below(WORDS.len())].to_string())
            .collect();
        if self.below(10) < 3 {
            let at = self.below(k);
            words.insert(at, (1 + self.below(2030)).to_string());
        }
        let mut s = words.join(" ");
        if let Some(first) = s.get(..1) {
            s = first.to_uppercase() + &s[1..];
        }
        s.push(['.', '.', '.', ';', '?', ':'][self.below(6)]);
        s
    }
}

/// `n` paragraph-like texts whose token counts (special tokens included) lie in 150-250.
fn texts(e: &BertEmbedder, n: usize, seed: u64) -> Vec<String> {
    let count = |t: &str| {
        e.input_tokens(t, EmbedKind::Document)
            .unwrap_or_else(|err| panic!("{err}"))
    };
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let target = 150 + rng.below(101);
            let mut text = String::new();
            while count(&text) < target {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(&rng.sentence());
            }
            let mut words: Vec<&str> = text.split(' ').collect();
            let finish = |ws: &[&str]| {
                let t = ws.join(" ");
                if t.ends_with(['.', ';', '?', ':']) {
                    t
                } else {
                    t + "."
                }
            };
            while words.len() > 1 && count(&finish(&words)) > target {
                words.pop();
            }
            finish(&words)
        })
        .collect()
}

struct Args {
    texts: usize,
    batch_size: usize,
}

fn args() -> Args {
    let mut a = Args {
        texts: 1000,
        batch_size: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--texts" => a.texts = value("--texts").max(1),
            "--batch-size" => a.batch_size = value("--batch-size").max(1),
            _ => {} // `--bench`, added by cargo
        }
    }
    a
}

/// CPU time (user + system) this process has used, in seconds (Linux only).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, whole line).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DOCENT_PY") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/docent-py/bin/python")
}

fn group(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs `benches/embed_reference.py` on the same texts; its JSON line, or why not.
fn reference(
    texts: &[String],
    model: &Path,
    batch_size: usize,
    threads: usize,
) -> Result<serde_json::Value, String> {
    let py = python();
    if !py.exists() {
        return Err(format!(
            "no Python at {} (set DOCENT_PY to a Python with sentence-transformers)",
            py.display()
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("benches/embed_reference.py");
    if !script.exists() {
        return Err(format!("{} not found", script.display()));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("texts.jsonl");
    let mut lines = String::new();
    for t in texts {
        lines.push_str(&serde_json::to_string(t).map_err(|e| e.to_string())?);
        lines.push('\n');
    }
    std::fs::write(&input, lines).map_err(|e| format!("{}: {e}", input.display()))?;
    let out = Command::new(&py)
        .arg(&script)
        .arg("--input")
        .arg(&input)
        .arg("--batch-size")
        .arg(batch_size.to_string())
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--model")
        .arg(model)
        .output()
        .map_err(|e| format!("could not run {}: {e}", py.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    line.and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("{} printed no JSON line", script.display()))
}

fn main() {
    let args = args();
    let model = docent_test_support::require_model(MODEL);
    let embedder = BertEmbedder::load(
        &model,
        EmbedOptions {
            batch_size: args.batch_size,
            ..EmbedOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let threads = candle_core::utils::get_num_threads();

    let texts = texts(&embedder, args.texts, 42);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| embedder.input_tokens(t, EmbedKind::Document).unwrap_or(0))
        .sum();
    println!(
        "embed benchmark: {} texts, {} tokens ({:.0} per text), batch size {}, model {MODEL}",
        texts.len(),
        group(tokens as f64),
        tokens as f64 / texts.len() as f64,
        args.batch_size
    );

    let warm = &refs[..args.batch_size.min(refs.len())];
    embedder
        .embed_texts(warm, EmbedKind::Document)
        .unwrap_or_else(|e| panic!("{e}"));
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let vectors = embedder
        .embed_texts(&refs, EmbedKind::Document)
        .unwrap_or_else(|e| panic!("{e}"));
    let seconds = start.elapsed().as_secs_f64();
    let busy = cpu_seconds()
        .zip(cpu0)
        .map(|(b, a)| format!(", {:.2} cores busy", (b - a) / seconds))
        .unwrap_or_default();
    assert_eq!(vectors.len(), texts.len());
    let ours = (texts.len() as f64 / seconds, tokens as f64 / seconds);

    println!(
        "{:<36} {:>9.1} chunks/s {:>10} tokens/s   ({:.2} s, {threads} threads{busy})",
        "docent (candle)",
        ours.0,
        group(ours.1),
        seconds
    );

    match reference(&texts, &model, args.batch_size, threads) {
        Ok(v) => {
            let texts_per_s = v["texts_per_s"].as_f64().unwrap_or(f64::NAN);
            let tokens_per_s = v["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
            let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
            let their_threads = v["threads"].as_u64().unwrap_or(0);
            let their_tokens = v["tokens"].as_u64().unwrap_or(0);
            println!(
                "{:<36} {:>9.1} chunks/s {:>10} tokens/s   ({secs:.2} s, {their_threads} threads)",
                "sentence-transformers (torch)",
                texts_per_s,
                group(tokens_per_s)
            );
            if their_tokens as usize != tokens {
                println!("note: the reference counted {their_tokens} tokens, docent {tokens}");
            }
            println!(
                "docent / sentence-transformers: {:.2}x chunks/s",
                ours.0 / texts_per_s
            );
        }
        Err(why) => println!("sentence-transformers: skipped: {why}"),
    }
}
