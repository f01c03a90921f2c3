//! Matrix-product microbenchmark at the shapes of all-MiniLM-L6-v2 over a batch of 8,192 tokens
//! (m × k × n): the FFN up-projection 8192×384×1536, the attention projections 8192×384×384
//! and the FFN down-projection 8192×1536×384. f32 and int8, 1 and 2 threads (and every team size
//! up to the physical cores), each SIMD path this CPU has; median of 3 runs after one warm-up.
//!
//! `cargo bench -p docent-kernels` (release profile). int8 is timed twice: the product alone,
//! and with the per-row quantisation of the activations that precedes it in a model.

use std::time::Instant;

use docent_kernels::ops::{self, AttentionScratch, Mask, Rows};
use docent_kernels::{
    Epilogue, Isa, PackedF32, PackedI8, QuantizedRows, Team, build_profile, cpu_features, gemm_f32,
    gemm_i8, physical_cores,
};

const SHAPES: [(usize, usize, usize); 3] = [(8192, 384, 1536), (8192, 384, 384), (8192, 1536, 384)];
const RUNS: usize = 3;

/// CPU time of this process's threads in seconds (Linux: the scheduler's nanosecond counters;
/// elsewhere `None`). On a shared machine wall time includes waiting for a core; CPU time
/// shows what the kernel itself achieves while it runs.
fn cpu_secs() -> Option<f64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// Median wall seconds and median CPU seconds of `RUNS` runs after a warm-up.
fn median_secs(mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..RUNS {
        let c0 = cpu_secs();
        let t = Instant::now();
        f();
        wall.push(t.elapsed().as_secs_f64());
        cpu.push(match (c0, cpu_secs()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        });
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (wall[RUNS / 2], cpu[RUNS / 2])
}

fn fill(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

fn main() {
    println!("docent-kernels GEMM benchmark");
    println!("cpu:     {}", cpu_features());
    println!("build:   {}", build_profile());
    println!(
        "physical cores: {}; median of {RUNS} runs",
        physical_cores()
    );
    let mut threads: Vec<usize> = vec![1, 2];
    if physical_cores() > 2 {
        threads.push(physical_cores());
    }
    let isas: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|&i| i != Isa::Scalar)
        .collect();
    let isas = if isas.is_empty() {
        vec![Isa::Scalar]
    } else {
        isas
    };
    println!();
    println!("G/s: wall-clock rate; per core: operations per CPU-second of the team (what each");
    println!(
        "core achieves while it runs: on a busy machine wall time also counts waiting for a core)"
    );
    println!(
        "{:<15} {:<6} {:>3} | {:>9} {:>9} | {:>9} {:>9} | {:>9}",
        "m×k×n", "path", "thr", "f32 G/s", "per core", "int8 G/s", "per core", "int8+quant"
    );
    for &(m, k, n) in &SHAPES {
        let a = fill(m * k, 1);
        let b = fill(n * k, 2);
        let bias = fill(n, 3);
        let packed = PackedF32::pack(&b, n, k).expect("shape");
        let packed_i8 = PackedI8::quantize(&b, n, k).expect("shape");
        let mut c = vec![0f32; m * n];
        let ops = 2.0 * (m * n * k) as f64;
        for &isa in &isas {
            for &t in &threads {
                let team = Team::new(t);
                let f32_s = median_secs(|| {
                    gemm_f32(isa, &team, &a, m, &packed, &mut c, Epilogue::Bias(&bias))
                        .expect("shape")
                });
                let mut qa = QuantizedRows::new();
                qa.quantize(isa, &a, m, k).expect("shape");
                let i8_s = median_secs(|| {
                    gemm_i8(isa, &team, &qa, &packed_i8, &mut c, Epilogue::Bias(&bias))
                        .expect("shape")
                });
                let i8q_s = median_secs(|| {
                    qa.quantize_on(isa, &team, &a, m, k).expect("shape");
                    gemm_i8(isa, &team, &qa, &packed_i8, &mut c, Epilogue::Bias(&bias))
                        .expect("shape")
                });
                println!(
                    "{:<15} {:<6} {:>3} | {:>9.1} {:>9.1} | {:>9.1} {:>9.1} | {:>9.1}",
                    format!("{m}×{k}×{n}"),
                    isa.name(),
                    t,
                    ops / f32_s.0 / 1e9,
                    ops / f32_s.1 / 1e9,
                    ops / i8_s.0 / 1e9,
                    ops / i8_s.1 / 1e9,
                    ops / i8q_s.0 / 1e9,
                );
            }
        }
        // The fused epilogue's cost: bias + GELU against bias alone, on the default path.
        let isa = Isa::active();
        let team = Team::new(physical_cores());
        let (_, bias_s) = median_secs(|| {
            gemm_f32(isa, &team, &a, m, &packed, &mut c, Epilogue::Bias(&bias)).expect("shape")
        });
        let (gelu_wall, gelu_s) = median_secs(|| {
            gemm_f32(
                isa,
                &team,
                &a,
                m,
                &packed,
                &mut c,
                Epilogue::BiasGelu(&bias),
            )
            .expect("shape")
        });
        println!(
            "{:<15} {:<6} {:>3} | f32 + bias + GELU: {:.1} G/s, {:.1} per core ({:+.1}% CPU time against bias alone)",
            format!("{m}×{k}×{n}"),
            isa.name(),
            physical_cores(),
            ops / gelu_wall / 1e9,
            ops / gelu_s / 1e9,
            (gelu_s / bias_s - 1.0) * 100.0
        );
    }
    attention();
    regions();
}

/// The cost of one parallel region (start, an empty body on every worker, finish) when regions
/// follow each other as layers do.
fn regions() {
    println!();
    for t in [1, 2] {
        let team = Team::new(t);
        let count = 20_000;
        let (secs, _) = median_secs(|| {
            for _ in 0..count {
                team.run(|i, _| {
                    std::hint::black_box(i);
                });
            }
        });
        println!(
            "team of {t}: {:.2} µs per parallel region (back to back)",
            secs / count as f64 * 1e6
        );
    }
}

/// Attention at BERT's shape: 4 texts × 12 heads of 256 tokens, head dimension 64, one thread;
/// one query at a time against the tiled kernel.
fn attention() {
    let (texts, heads, len, d) = (4, 12, 256, 64);
    let hidden = heads * d;
    let qkv = fill(texts * len * 3 * hidden, 4);
    let mut out = vec![0f32; texts * len * hidden];
    let flops = 4.0 * (texts * heads * len * len * d) as f64;
    println!();
    println!(
        "attention, {texts} texts × {heads} heads × {len} tokens, d = {d}, 1 thread (G/s = 4·L²·d per head)"
    );
    for isa in Isa::available() {
        let mut scratch = AttentionScratch::new();
        for blocked in [false, true] {
            let (secs, cpu) = median_secs(|| {
                for t in 0..texts {
                    let base = t * len * 3 * hidden;
                    for h in 0..heads {
                        let rows = |off: usize| Rows {
                            data: &qkv[base + off + h * d..],
                            stride: 3 * hidden,
                            rows: len,
                        };
                        let o = &mut out[t * len * hidden + h * d..];
                        let (q, k, v) = (rows(0), rows(hidden), rows(2 * hidden));
                        let scale = 0.125;
                        if blocked {
                            ops::attend_blocked(
                                isa,
                                &mut scratch,
                                q,
                                d,
                                k,
                                v,
                                scale,
                                Mask::None,
                                0,
                                o,
                                hidden,
                            )
                        } else {
                            ops::attend_rows(isa, q, d, k, v, scale, Mask::None, 0, o, hidden)
                        }
                        .expect("shape");
                    }
                }
            });
            println!(
                "  {:<7} {:<24} {:>7.1} G/s {:>7.1} per core",
                isa.name(),
                if blocked {
                    "attend_blocked (tiled)"
                } else {
                    "attend_rows (per query)"
                },
                flops / secs / 1e9,
                flops / cpu / 1e9
            );
        }
    }
}
