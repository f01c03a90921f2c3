//! The watcher daemon: freshness (a saved note to a search hit) and idle cost.
//!
//! `cargo bench --bench daemon [-- --files N --edits M --idle-secs S]` (defaults 10,000 files,
//! 50 edits, 60 s). Runs the real `docent` binary as a daemon on a generated folder, then:
//!
//! - idle cost: RSS and CPU time of the daemon process while nothing changes, from /proc;
//! - freshness: writes a note with a new word, and opens the index read-only (as `docent search`
//!   does) again and again until the word is found; p50/p95 over the edits.
//!
//! The folder holds N small notes made from 50 distinct texts, so indexing it needs only 50
//! embeddings and the setup takes about a minute; every file still has its chunk in the index.
//! Results are recorded in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use docent_core::SearchFilter;
use docent_store::{Index, OpenMode};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn docent(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_docent"));
    c.arg("--data-dir").arg(data);
    c
}

fn status(data: &Path) -> serde_json::Value {
    let out = docent(data).args(["status", "--json"]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// (RSS in MiB, CPU seconds used so far) of a process, from /proc.
fn proc_usage(pid: i64) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((rss_kb / 1024.0, ticks / 100.0))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let files = arg("--files", 10_000) as usize;
    let edits = arg("--edits", 50) as usize;
    let idle_secs = arg("--idle-secs", 60);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let root = work.path().join("notes");
    for i in 0..files {
        let dir = root.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        let t = i % 50;
        std::fs::write(
            dir.join(format!("n{i:05}.md")),
            format!("# Topic {t}\n\nMeeting notes on subject {t}: budget, schedule and the supplier list.\n"),
        )
        .unwrap();
    }
    let root = std::fs::canonicalize(&root).unwrap();
    println!("docent daemon benchmark: {files} files in 100 folders, {edits} edits");

    let out = docent(&data)
        .args(["folders", "add"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let t = Instant::now();
    let out = docent(&data).args(["daemon", "start"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    loop {
        let s = status(&data);
        if s["files"].as_u64() == Some(files as u64) && s["phase"] == "idle" && s["queue"] == 0 {
            println!(
                "initial walk and index: {:.1} s ({} chunks)",
                t.elapsed().as_secs_f64(),
                s["chunks"]
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let pid = status(&data)["pid"].as_i64().unwrap();

    // Let the post-index compaction pass, then measure idle cost.
    std::thread::sleep(Duration::from_secs(70));
    let (rss0, cpu0) = proc_usage(pid).unwrap();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let (rss1, cpu1) = proc_usage(pid).unwrap();
    println!(
        "idle, watching {files} files: RSS {rss0:.0} → {rss1:.0} MiB; CPU {:.2} s in {idle_secs} s ({:.2}% of one core)",
        cpu1 - cpu0,
        (cpu1 - cpu0) / idle_secs as f64 * 100.0
    );

    // Freshness, seen as `docent search` sees it: the index opened read-only afresh for each
    // look (without the process start and the query embedding, which are the same for every
    // search and not part of how fresh the index is).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let identity = Index::stored_identity(&data).unwrap().unwrap();
    let note: PathBuf = root.join("d00").join("fresh.md");
    let mut lat = Vec::new();
    for e in 0..edits {
        let word = format!("freshword{e}x");
        let t = Instant::now();
        std::fs::write(&note, format!("# Fresh\n\nToday's word is {word}.\n")).unwrap();
        loop {
            let index = rt
                .block_on(Index::open(&data, &identity, OpenMode::ReadOnly))
                .unwrap();
            let hits = index
                .keyword_search(&word, 1, &SearchFilter::default())
                .unwrap_or_default();
            if !hits.is_empty() {
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                panic!("edit {e} never became searchable");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        lat.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(300));
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "freshness over {edits} edits (save → found by search): p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        lat[lat.len() - 1]
    );
    let out = docent(&data).args(["daemon", "stop"]).output().unwrap();
    assert!(out.status.success());
}
