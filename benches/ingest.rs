//! Ingest benchmark: generates a mixed corpus (Markdown notes, emails, PDFs), indexes it with the
//! real pipeline (walk, hash, parse, chunk with the real tokenizer, manifest), and prints
//! throughput and peak memory. Then indexes it again, unchanged, to show what a second run
//! costs.
//!
//! `cargo bench --bench ingest [-- --files N]`. Results are recorded in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::time::Instant;

use docent_config::{Paths, Settings};
use docent_engine::Context;

const WORDS: &[&str] = &[
    "library",
    "roof",
    "contract",
    "payment",
    "schedule",
    "window",
    "frame",
    "delivery",
    "inspection",
    "council",
    "budget",
    "approval",
    "contractor",
    "architect",
    "entrance",
    "ramp",
    "asbestos",
    "abatement",
    "flooring",
    "children",
    "reading",
    "room",
    "heating",
    "ventilation",
    "meeting",
    "minutes",
    "decision",
    "deadline",
    "invoice",
    "warranty",
    "mediation",
    "survey",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "for",
    "on",
    "with",
    "by",
    "was",
    "is",
    "will",
    "be",
    "after",
    "before",
    "because",
    "until",
    "March",
    "November",
    "estimate",
    "quote",
    "dollars",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn word(&mut self) -> &'static str {
        WORDS[(self.next() as usize) % WORDS.len()]
    }
    fn sentence(&mut self) -> String {
        let n = 6 + self.next() % 14;
        let mut s: Vec<&str> = (0..n).map(|_| self.word()).collect();
        let first = s[0].to_string();
        let cap = first[..1].to_uppercase() + &first[1..];
        s[0] = Box::leak(cap.into_boxed_str());
        format!("{}.", s.join(" "))
    }
    fn paragraph(&mut self) -> String {
        let n = 2 + self.next() % 6;
        (0..n)
            .map(|_| self.sentence())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn markdown(rng: &mut Rng, i: usize) -> String {
    let mut s = format!("---\ntitle: Note {i}\ntags: [bench, generated]\n---\n\n# Note {i}\n\n");
    for h in 0..(2 + rng.next() % 4) {
        s.push_str(&format!("## Section {h}\n\n"));
        for _ in 0..(1 + rng.next() % 4) {
            s.push_str(&rng.paragraph());
            s.push_str("\n\n");
        }
    }
    s
}

fn email(rng: &mut Rng, i: usize) -> String {
    let mut body = String::new();
    for _ in 0..(2 + rng.next() % 5) {
        body.push_str(&rng.paragraph());
        body.push_str("\r\n\r\n");
    }
    format!(
        "From: Person {a} <p{a}@example.org>\r\nTo: Team <team@example.org>\r\nSubject: Update {i} on the {w}\r\nDate: Tue, 12 Nov 2024 10:{m:02}:00 +0000\r\nMessage-ID: <m{i}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}> quoted earlier text\r\n> more quoted text\r\n\r\n-- \r\nPerson {a}\r\n",
        a = rng.next() % 50,
        w = rng.word(),
        m = i % 60,
    )
}

fn pdf(rng: &mut Rng, pages: usize) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for _ in 0..pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 10.into()]),
            Operation::new("TL", vec![13.into()]),
            Operation::new("Td", vec![50.into(), 780.into()]),
        ];
        for _ in 0..40 {
            let line: Vec<&str> = (0..10).map(|_| rng.word()).collect();
            ops.push(Operation::new(
                "Tj",
                vec![Object::string_literal(line.join(" "))],
            ));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(
            dictionary! {},
            content.encode().expect("encode content"),
        ));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("write pdf");
    out
}

fn generate(dir: &Path, files: usize) -> (usize, u64) {
    let mut rng = Rng(42);
    let mut bytes = 0u64;
    for i in 0..files {
        let (name, data): (String, Vec<u8>) = match i % 10 {
            0..=3 => (
                format!("notes/n{:02}/note-{i}.md", i % 20),
                markdown(&mut rng, i).into_bytes(),
            ),
            4..=6 => (
                format!("mail/m{:02}/msg-{i}.eml", i % 20),
                email(&mut rng, i).into_bytes(),
            ),
            _ => {
                let pages = 1 + (rng.next() % 4) as usize;
                (
                    format!("pdf/p{:02}/doc-{i}.pdf", i % 20),
                    pdf(&mut rng, pages),
                )
            }
        };
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        bytes += data.len() as u64;
        std::fs::write(path, data).unwrap();
    }
    (files, bytes)
}

/// Peak resident memory of this process, from /proc (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let files = args
        .iter()
        .position(|a| a == "--files")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let corpus = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (n, bytes) = generate(corpus.path(), files);
    println!(
        "generated {n} files ({:.1} MB: 40% Markdown, 30% email, 30% PDF) in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let paths = Paths::resolve(
        Some(data.path().to_path_buf()),
        None,
        std::env::var_os("DOCENT_MODELS").map(PathBuf::from),
    )
    .unwrap();
    let mut ctx = Context::new(paths, Settings::default());
    ctx.pdf_worker = Some(PathBuf::from(env!("CARGO_BIN_EXE_docent")));
    println!(
        "threads: {}, PDF extraction in a child process: {}",
        ctx.threads(),
        ctx.settings.ingest.pdf_subprocess
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = Instant::now();
    let s = rt
        .block_on(docent_engine::ingest(
            &ctx,
            &[corpus.path().to_path_buf()],
            &|_| {},
        ))
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "first run:  {} files indexed, {} skipped, {} chunks in {:.2} s → {:.0} files/s, {:.2} MB/s, {:.0} chunks/s",
        s.files_indexed,
        s.files_skipped.len(),
        s.chunks,
        secs,
        s.files_indexed as f64 / secs,
        s.bytes_read as f64 / 1e6 / secs,
        s.chunks as f64 / secs
    );
    for f in s.files_skipped.iter().take(5) {
        println!("  skipped {}: {}", f.path, f.reason);
    }
    let t = Instant::now();
    let s2 = rt
        .block_on(docent_engine::ingest(
            &ctx,
            &[corpus.path().to_path_buf()],
            &|_| {},
        ))
        .unwrap();
    let secs2 = t.elapsed().as_secs_f64();
    println!(
        "second run: {} files unchanged, {} bytes read in {:.3} s",
        s2.files_unchanged, s2.bytes_read, secs2
    );
    if let Some(mb) = peak_rss_mib() {
        println!("peak RSS: {mb:.0} MiB (whole benchmark process, corpus generation included)");
    }
}
