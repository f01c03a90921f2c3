//! Embedding throughput of docent's `BertEmbedder` (all-MiniLM-L6-v2 on the CPU kernels) in
//! f32 and int8, side by side with sentence-transformers (PyTorch on the CPU, through
//! `benches/embed_reference.py`, when a Python with it is available: `DOCENT_PY`, default
//! `~/.cache/docent-st/bin/python`), on the same texts and thread count, median of 3 runs each:
//!
//! - `chunks`: generated chunk-like texts of mixed length, 20-256 tokens (fixed seed);
//! - `sentences`: generated short sentences (about 8-30 tokens).
//!
//! It prints the build profile, the CPU features the kernels dispatched to, and the GFLOP/s
//! achieved (the encoder's multiply-adds, counted per text at its own length) beside the
//! nominal f32 peak of the cores used.
//!
//! `cargo bench -p docent-embed --bench embed [-- --chunks N] [--sentences N] [--batch-size B]
//! [--threads T] [--runs R]`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use docent_core::EmbedKind;
use docent_embed::{BertEmbedder, EmbedOptions, Precision};

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

/// `n` paragraph-like texts whose token counts (special tokens included) lie in `lo..=hi`.
fn texts(e: &BertEmbedder, n: usize, lo: usize, hi: usize, seed: u64) -> Vec<String> {
    let count = |t: &str| {
        e.input_tokens(t, EmbedKind::Document)
            .unwrap_or_else(|err| panic!("{err}"))
    };
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let target = lo + rng.below(hi - lo + 1);
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
    chunks: usize,
    sentences: usize,
    batch_size: usize,
    threads: usize,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        chunks: 300,
        sentences: 2000,
        batch_size: 32,
        threads: docent_kernels::physical_cores(),
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--chunks" => a.chunks = value("--chunks"),
            "--sentences" => a.sentences = value("--sentences"),
            "--batch-size" => a.batch_size = value("--batch-size").max(1),
            "--threads" => a.threads = value("--threads").max(1),
            "--runs" => a.runs = value("--runs").max(1),
            _ => {} // `--bench`, added by cargo
        }
    }
    a
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DOCENT_PY") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/docent-st/bin/python")
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

/// Runs `benches/embed_reference.py` on the same texts (`runs` timed runs, median); its JSON
/// line, or why not.
fn reference(texts: &[String], model: &Path, args: &Args) -> Result<serde_json::Value, String> {
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
        .args(["--batch-size", &args.batch_size.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .args(["--repeat", &args.runs.to_string()])
        .arg("--model")
        .arg(model)
        .output()
        .map_err(|e| format!("could not run {}: {e}", py.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
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

/// Multiply-adds ×2 of the encoder over texts of the given token counts: per layer the four
/// projections and the two feed-forward products per token, and attention's two products per
/// pair of tokens of one text.
fn flops(lengths: &[usize]) -> f64 {
    let (hidden, ffn, layers) = (384.0, 1536.0, 6.0);
    lengths
        .iter()
        .map(|&l| {
            let l = l as f64;
            layers * (2.0 * l * (4.0 * hidden * hidden + 2.0 * hidden * ffn) + 4.0 * l * l * hidden)
        })
        .sum()
}

/// Nominal f32 peak of `threads` cores: two 8-wide FMA units per core (AVX2; AVX-512 machines
/// double it), at the clock `/proc/cpuinfo` reports.
fn nominal_peak_gflops(threads: usize) -> Option<f64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    let wide = if info.contains(" avx512f") { 2.0 } else { 1.0 };
    Some(threads as f64 * 2.0 * 8.0 * 2.0 * wide * mhz / 1e3)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Min and mean cosine of each embedder's vectors against the committed sentence-transformers
/// vectors (`tests/data/minilm_reference.json`).
fn quality(embedders: &[(&str, BertEmbedder)]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm_reference.json");
    let Some(reference) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        println!("quality: {} unreadable", path.display());
        return;
    };
    let items = reference["items"].as_array().cloned().unwrap_or_default();
    let texts: Vec<&str> = items.iter().filter_map(|i| i["text"].as_str()).collect();
    let want: Vec<Vec<f32>> = items
        .iter()
        .map(|i| {
            i["embedding"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    for (label, e) in embedders {
        let got = e
            .embed_texts(&texts, EmbedKind::Document)
            .unwrap_or_else(|err| panic!("{err}"));
        let cos: Vec<f64> = got.iter().zip(&want).map(|(a, b)| cosine(a, b)).collect();
        let min = cos.iter().copied().fold(f64::MAX, f64::min);
        let mean = cos.iter().sum::<f64>() / cos.len().max(1) as f64;
        println!(
            "quality: {label} vs sentence-transformers over {} texts: min cosine {min:.6}, mean {mean:.6}",
            cos.len()
        );
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args = args();
    let model = docent_test_support::require_model(MODEL);
    let load = |precision: Precision| {
        BertEmbedder::load(
            &model,
            EmbedOptions {
                batch_size: args.batch_size,
                precision,
                threads: args.threads,
                ..EmbedOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let embedders = [
        ("docent f32", load(Precision::F32)),
        ("docent int8", load(Precision::Int8)),
    ];
    let counter = &embedders[0].1;
    let sets = [
        ("chunks", texts(counter, args.chunks, 20, 256, 42)),
        (
            "sentences",
            (0..args.sentences)
                .scan(Rng(7), |rng, _| Some(rng.sentence()))
                .collect::<Vec<String>>(),
        ),
    ];
    let peak = nominal_peak_gflops(args.threads);
    println!(
        "embed benchmark: {MODEL}, batch size {}, {} threads, median of {} runs",
        args.batch_size, args.threads, args.runs
    );
    println!("build: {}", docent_kernels::build_profile());
    println!("cpu: {}", docent_kernels::cpu_features());
    if let Some(p) = peak {
        println!("nominal f32 peak of {} cores: {p:.0} GFLOP/s", args.threads);
    }
    quality(&embedders);
    for (name, texts) in &sets {
        if texts.is_empty() {
            continue;
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let lengths: Vec<usize> = refs
            .iter()
            .map(|t| counter.input_tokens(t, EmbedKind::Document).unwrap_or(0))
            .collect();
        let tokens: usize = lengths.iter().sum();
        let work = flops(&lengths);
        println!();
        println!(
            "{name}: {} texts, {} tokens ({:.0} per text), {:.1} GFLOP",
            texts.len(),
            group(tokens as f64),
            tokens as f64 / texts.len() as f64,
            work / 1e9
        );
        println!(
            "  {:<32} {:>9} {:>11} {:>9} {:>7}",
            "", "texts/s", "tokens/s", "GFLOP/s", "of peak"
        );
        let row = |label: &str, secs: f64| {
            let g = work / secs / 1e9;
            println!(
                "  {:<32} {:>9.1} {:>11} {:>9.1} {:>7}",
                label,
                texts.len() as f64 / secs,
                group(tokens as f64 / secs),
                g,
                peak.map(|p| format!("{:.0}%", 100.0 * g / p))
                    .unwrap_or_default()
            );
            secs
        };
        let mut ours = Vec::new();
        for (label, e) in &embedders {
            e.embed_texts(
                &refs[..args.batch_size.min(refs.len())],
                EmbedKind::Document,
            )
            .unwrap_or_else(|err| panic!("{err}"));
            let runs: Vec<f64> = (0..args.runs)
                .map(|_| {
                    let start = Instant::now();
                    let v = e
                        .embed_texts(&refs, EmbedKind::Document)
                        .unwrap_or_else(|err| panic!("{err}"));
                    assert_eq!(v.len(), refs.len());
                    start.elapsed().as_secs_f64()
                })
                .collect();
            ours.push((label, row(label, median(runs))));
        }
        match reference(texts, &model, &args) {
            Ok(v) => {
                let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
                let their_threads = v["threads"].as_u64().unwrap_or(0);
                let label = format!("sentence-transformers ({their_threads} thr)");
                row(&label, secs);
                if v["tokens"].as_u64().unwrap_or(0) as usize != tokens {
                    println!("  note: the reference counted {} tokens", v["tokens"]);
                }
                for (l, s) in &ours {
                    println!("  {l} / sentence-transformers: {:.2}x", secs / s);
                }
            }
            Err(why) => println!("  sentence-transformers: skipped: {why}"),
        }
    }
}
