//! Language-model speed: docent's GGUF generator against llama.cpp on the same file and prompt,
//! side by side in one run.
//!
//! The prompt is the retrieval-style prompt in `tests/reference/gemma3-long.prompt.txt` (seven
//! sources from the fixtures and a question, about 1,800 tokens), rendered with each model's own
//! chat template. Both engines prefill it, then decode greedily. llama.cpp runs through
//! `scripts/llama-reference.mjs` (prebuilt CPU binaries from node-llama-cpp; install with
//! `bash scripts/llama-reference-setup.sh`); without it only docent's figures are printed.
//!
//! ```text
//! cargo bench -p docent-llm --bench generate -- [--model smollm2|gemma3|PATH] [--decode N] [--threads N] [--runs N]
//! ```
//!
//! Figures: time to first token (prefill of the whole prompt plus the first sampled token),
//! decode tokens/s (at the prompt's context, about 2,000 tokens), and peak resident memory of
//! each engine's process; each the median of `--runs` runs (3 by default). Both engines get
//! `--threads` threads (2 by default). The build profile and the CPU features the kernels
//! chose are printed first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use docent_core::{ChatMessage, SamplingParams};
use docent_llm::{GgufGenerator, LoadOptions};

struct Args {
    models: Vec<PathBuf>,
    decode: usize,
    threads: usize,
    runs: usize,
}

fn model_path(name: &str) -> PathBuf {
    let dir = docent_test_support::models_dir();
    match name {
        "smollm2" => dir
            .join("smollm2-135m-instruct")
            .join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        "gemma3" => dir.join("gemma-3-270m").join("gemma-3-270m-Q4_K_M.gguf"),
        other => PathBuf::from(other),
    }
}

fn args() -> Args {
    let mut a = Args {
        models: Vec::new(),
        decode: 64,
        threads: 2,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--model" => a.models.extend(it.next().map(|m| model_path(&m))),
            "--decode" => a.decode = it.next().and_then(|n| n.parse().ok()).unwrap_or(64),
            "--threads" => a.threads = it.next().and_then(|n| n.parse().ok()).unwrap_or(2),
            "--runs" => a.runs = it.next().and_then(|n| n.parse().ok()).unwrap_or(3).max(1),
            _ => {} // cargo's own flags (--bench)
        }
    }
    if a.models.is_empty() {
        a.models = vec![model_path("smollm2"), model_path("gemma3")];
    }
    a
}

/// The question and sources of the reference prompt, without Gemma's turn markers.
fn user_message() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/gemma3-long.prompt.txt");
    let text = std::fs::read_to_string(&path).expect("reference prompt");
    text.trim_start_matches("<bos><start_of_turn>user\n")
        .trim_end_matches("<end_of_turn>\n<start_of_turn>model\n")
        .to_string()
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

struct Row {
    engine: String,
    prompt_tokens: usize,
    load_s: f64,
    ttft_s: f64,
    decode_tokens: usize,
    decode_tps: f64,
    prefill_tps: f64,
    rss_mib: f64,
}

fn docent(path: &Path, prompt: &str, decode: usize, threads: usize) -> Row {
    let start = Instant::now();
    let mut g = GgufGenerator::load(
        path,
        &LoadOptions {
            context_length: Some(4096),
            threads: Some(threads),
            ..LoadOptions::default()
        },
    )
    .expect("load");
    let load_s = start.elapsed().as_secs_f64();
    let ids = g.tokenizer().encode(prompt, true).expect("tokenize");
    let mut n: usize = 0;
    let stats = g
        .generate_ids(
            &ids,
            &SamplingParams::greedy(decode + 1),
            &AtomicBool::new(false),
            false,
            &mut |_| n += 1,
        )
        .expect("generate");
    Row {
        engine: "docent".into(),
        prompt_tokens: ids.len(),
        load_s,
        ttft_s: stats.ttft_ms / 1000.0,
        decode_tokens: n.saturating_sub(1),
        decode_tps: n.saturating_sub(1) as f64 / (stats.decode_ms / 1000.0),
        prefill_tps: ids.len() as f64 / (stats.ttft_ms / 1000.0),
        rss_mib: peak_rss_mib(),
    }
}

fn llama_cpp(path: &Path, prompt_file: &Path, decode: usize, threads: usize) -> Option<Row> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/llama-reference.mjs");
    let start = Instant::now();
    let out = Command::new("node")
        .arg(&script)
        .arg("bench")
        .arg(path)
        .arg(prompt_file)
        .arg(decode.to_string())
        .arg(threads.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "llama.cpp reference did not run (bash scripts/llama-reference-setup.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let total_s = start.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let prompt_tokens = f("prompt_tokens") as usize;
    let ttft_s = f("ttft_ms") / 1000.0;
    let decode_tokens = f("decode_tokens") as usize;
    Some(Row {
        engine: "llama.cpp (node-llama-cpp 3.22.1)".into(),
        prompt_tokens,
        load_s: total_s - ttft_s - f("decode_ms") / 1000.0,
        ttft_s,
        decode_tokens,
        decode_tps: decode_tokens as f64 / (f("decode_ms") / 1000.0),
        prefill_tps: prompt_tokens as f64 / ttft_s,
        rss_mib: f("peak_rss_kib") / 1024.0,
    })
}

/// The median row of several runs (by decode rate; first token by its own median).
fn median(mut rows: Vec<Row>) -> Option<Row> {
    if rows.is_empty() {
        return None;
    }
    let mid = rows.len() / 2;
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[mid]
    };
    let mut ttft: Vec<f64> = rows.iter().map(|r| r.ttft_s).collect();
    let mut prefill: Vec<f64> = rows.iter().map(|r| r.prefill_tps).collect();
    let mut load: Vec<f64> = rows.iter().map(|r| r.load_s).collect();
    let (ttft, prefill, load) = (med(&mut ttft), med(&mut prefill), med(&mut load));
    rows.sort_by(|a, b| a.decode_tps.total_cmp(&b.decode_tps));
    let mut r = rows.swap_remove(mid);
    r.ttft_s = ttft;
    r.prefill_tps = prefill;
    r.load_s = load;
    Some(r)
}

fn main() {
    let a = args();
    let message = user_message();
    println!(
        "docent build: {}; CPU: {}; threads: {}; median of {} runs",
        docent_kernels::build_profile(),
        docent_kernels::cpu_features(),
        a.threads,
        a.runs
    );
    println!(
        "| model | engine | prompt tokens | load + start (s) | first token (s) | prefill tokens/s | decode tokens/s (n) | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for path in &a.models {
        if !path.exists() {
            eprintln!(
                "{} is not installed (scripts/fetch-models.sh)",
                path.display()
            );
            continue;
        }
        // The prompt in the model's own chat format, shared with llama.cpp through a file.
        let g = GgufGenerator::load(
            path,
            &LoadOptions {
                context_length: Some(4096),
                ..LoadOptions::default()
            },
        )
        .expect("load");
        let prompt = g.render(&[ChatMessage::user(&message)]).expect("render");
        drop(g);
        let dir = tempfile::tempdir().expect("temp dir");
        let prompt_file = dir.path().join("prompt.txt");
        std::fs::write(&prompt_file, &prompt).expect("write prompt");

        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // llama.cpp first, in its own process, so docent's peak memory is its own.
        let reference: Vec<Row> = (0..a.runs)
            .filter_map(|_| llama_cpp(path, &prompt_file, a.decode, a.threads))
            .collect();
        let ours: Vec<Row> = (0..a.runs)
            .map(|_| docent(path, &prompt, a.decode, a.threads))
            .collect();
        let rows = [median(reference), median(ours)];
        for r in rows.into_iter().flatten() {
            println!(
                "| {name} | {} | {} | {:.1} | {:.2} | {:.0} | {:.1} ({}) | {:.0} |",
                r.engine,
                r.prompt_tokens,
                r.load_s,
                r.ttft_s,
                r.prefill_tps,
                r.decode_tps,
                r.decode_tokens,
                r.rss_mib
            );
        }
    }
}
