//! Search latency of the index: exact (brute-force) vector search against LanceDB's IVF indexes,
//! keyword search, and bytes on disk per chunk.
//!
//! ```text
//! cargo bench -p docent-store --bench search                        # 10k and 100k chunks
//! DOCENT_BENCH_SIZES=10000 cargo bench -p docent-store --bench search
//! ```
//!
//! Vectors are random unit vectors of 384 dimensions (the size of the default embedding model);
//! texts are generated from a Zipf-distributed vocabulary. Random vectors are the hard case for
//! an approximate index (no clusters), so its recall here is a lower bound.

use std::time::{Duration, Instant};

use docent_core::{
    ChunkId, ContentHash, DocId, DocKind, EmbedderIdentity, LineRange, SearchFilter,
};
use docent_store::{ChunkRecord, Index, OpenMode, VectorIndexKind};

const DIM: usize = 384;
const QUERIES: usize = 200;
const K: usize = 10;
const CHUNKS_PER_FILE: usize = 10;
const BATCH: usize = 1000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Approximately normal, by the sum of uniforms.
    fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.unit()).sum::<f32>() - 2.0
    }
    fn vector(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIM).map(|_| self.normal()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.iter_mut().for_each(|x| *x /= n);
        v
    }
    /// A word index with probability falling as 1/rank.
    fn zipf(&mut self, n: usize) -> usize {
        let u = self.unit().max(1e-7) as f64;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

fn vocabulary() -> Vec<String> {
    let syll = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "ho", "ji", "ze", "bo",
        "fi",
    ];
    let mut words = Vec::new();
    for a in syll {
        for b in syll {
            for c in syll {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

fn text(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    let mut s = String::with_capacity(words * 8);
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&vocab[rng.zipf(vocab.len())]);
    }
    s
}

fn record(rng: &mut Rng, vocab: &[String], n: usize) -> ChunkRecord {
    let path = format!("/bench/folder{}/file{}.md", n / 1000, n / CHUNKS_PER_FILE);
    let doc_id = DocId::for_source(&path, None);
    let body = text(rng, vocab, 150);
    let ordinal = (n % CHUNKS_PER_FILE) as u32;
    ChunkRecord {
        id: ChunkId::derive(&doc_id, &body, 0),
        doc_id,
        path,
        part: None,
        kind: if n.is_multiple_of(5) {
            DocKind::Email
        } else {
            DocKind::Note
        },
        ordinal,
        context: Some(text(rng, vocab, 4)),
        page: None,
        lines: LineRange::new(ordinal * 20 + 1, ordinal * 20 + 20),
        bytes: 0..body.len(),
        heading: Some(text(rng, vocab, 4)),
        title: Some(text(rng, vocab, 3)),
        subject: None,
        from: None,
        date: Some(format!("2024-{:02}-{:02}", n % 12 + 1, n % 28 + 1)),
        thread_id: None,
        message_id: None,
        content_hash: ContentHash::of(body.as_bytes()),
        text: body,
        vector: rng.vector(),
    }
}

struct Latency {
    p50: Duration,
    p95: Duration,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Latency {
        p50: at(0.5),
        p95: at(0.95),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn vector_pass(
    index: &Index,
    queries: &[Vec<f32>],
    filter: &SearchFilter,
) -> (Latency, Vec<Vec<String>>) {
    // One warm-up query (opens files, fills caches).
    let _ = index.vector_search(&queries[0], K, filter).await;
    let mut times = Vec::new();
    let mut results = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = index
            .vector_search(q, K, filter)
            .await
            .expect("vector search");
        times.push(t.elapsed());
        results.push(hits.into_iter().map(|h| h.chunk_id.to_string()).collect());
    }
    (latency(times), results)
}

fn recall(exact: &[Vec<String>], approx: &[Vec<String>]) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for (e, a) in exact.iter().zip(approx) {
        total += e.len();
        found += e.iter().filter(|id| a.contains(id)).count();
    }
    found as f64 / total.max(1) as f64
}

async fn run(n: usize, kinds: &[VectorIndexKind]) {
    println!("\n== {n} chunks, {DIM}-d ==");
    let identity = EmbedderIdentity {
        model: "bench".into(),
        checksum: "none".into(),
        dim: DIM,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut index = Index::open(dir.path(), &identity, OpenMode::ReadWrite)
        .await
        .expect("open");
    let vocab = vocabulary();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let t = Instant::now();
    let mut written = 0;
    while written < n {
        let batch: Vec<ChunkRecord> = (written..(written + BATCH).min(n))
            .map(|i| record(&mut rng, &vocab, i))
            .collect();
        let paths: Vec<String> = batch.iter().map(|r| r.path.clone()).collect();
        written += batch.len();
        index.write(&paths, batch).await.expect("write");
    }
    println!(
        "write: {:.1} s ({} chunks per batch)",
        t.elapsed().as_secs_f64(),
        BATCH
    );
    let t = Instant::now();
    let r = index.optimize(usize::MAX).await.expect("compact");
    println!(
        "compact + prune: {:.1} s ({} fragments merged)",
        t.elapsed().as_secs_f64(),
        r.fragments_compacted
    );
    let stats = index.stats().await.expect("stats");
    let lance = dir_size(&dir.path().join("index/lance"));
    let tantivy = dir_size(&dir.path().join("index/tantivy"));
    println!(
        "on disk: {:.1} MB = {} bytes/chunk (LanceDB {} B/chunk, tantivy {} B/chunk)",
        stats.bytes_on_disk as f64 / 1e6,
        stats.bytes_on_disk / n as u64,
        lance / n as u64,
        tantivy / n as u64
    );

    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| rng.vector()).collect();
    let all = SearchFilter::default();
    let emails = SearchFilter {
        kinds: vec![DocKind::Email],
        ..Default::default()
    };
    let (exact, exact_ids) = vector_pass(&index, &queries, &all).await;
    println!(
        "vector, exact:          p50 {}  p95 {}",
        ms(exact.p50),
        ms(exact.p95)
    );
    let (exact_f, exact_f_ids) = vector_pass(&index, &queries, &emails).await;
    println!(
        "vector, exact, kind:email (20%): p50 {}  p95 {}",
        ms(exact_f.p50),
        ms(exact_f.p95)
    );

    let kw: Vec<String> = (0..QUERIES)
        .map(|i| text(&mut rng, &vocab, 2 + i % 3))
        .collect();
    let _ = index.keyword_search(&kw[0], K, &all);
    let mut times = Vec::new();
    for q in &kw {
        let t = Instant::now();
        let _ = index.keyword_search(q, K, &all).expect("keyword search");
        times.push(t.elapsed());
    }
    let l = latency(times);
    println!(
        "keyword (2-4 words):    p50 {}  p95 {}",
        ms(l.p50),
        ms(l.p95)
    );
    let mut times = Vec::new();
    for q in &kw {
        let t = Instant::now();
        let _ = index.keyword_search(q, K, &emails).expect("keyword search");
        times.push(t.elapsed());
    }
    let l = latency(times);
    println!(
        "keyword, kind:email:    p50 {}  p95 {}",
        ms(l.p50),
        ms(l.p95)
    );

    for &kind in kinds {
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(&dir.path().join("index"), &copy.path().join("index"));
        let mut indexed = Index::open(copy.path(), &identity, OpenMode::ReadWrite)
            .await
            .expect("open copy");
        let t = Instant::now();
        let r = indexed.optimize_with(1, kind).await.expect("build index");
        println!(
            "{}: built in {:.1} s; on disk {} bytes/chunk",
            kind.as_str(),
            t.elapsed().as_secs_f64(),
            indexed.stats().await.expect("stats").bytes_on_disk / n as u64
        );
        assert!(r.vector_index_built);
        let (l, ids) = vector_pass(&indexed, &queries, &all).await;
        println!(
            "vector, {}:    p50 {}  p95 {}  recall@{K} {:.3}",
            kind.as_str(),
            ms(l.p50),
            ms(l.p95),
            recall(&exact_ids, &ids)
        );
        let (l, ids) = vector_pass(&indexed, &queries, &emails).await;
        println!(
            "vector, {}, kind:email: p50 {}  p95 {}  recall@{K} {:.3}",
            kind.as_str(),
            ms(l.p50),
            ms(l.p95),
            recall(&exact_f_ids, &ids)
        );
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("DOCENT_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let kinds: Vec<VectorIndexKind> = match std::env::var("DOCENT_BENCH_INDEX").as_deref() {
        Ok("pq") => vec![VectorIndexKind::IvfPq],
        Ok("hnsw") => vec![VectorIndexKind::IvfHnswSq],
        _ => vec![VectorIndexKind::IvfHnswSq, VectorIndexKind::IvfPq],
    };
    println!(
        "docent-store search benchmark: {QUERIES} queries, k = {K}, {} CPU threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for n in sizes {
        runtime.block_on(run(n, &kinds));
    }
}
