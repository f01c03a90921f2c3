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
use docent_kernels::{PerWorker, RowNorm};

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
        let mut qa = QuantizedRows::new();
        qa.quantize(isa, &a, m, k).expect("shape");
        let (_, bias_s) = median_secs(|| {
            gemm_i8(isa, &team, &qa, &packed_i8, &mut c, Epilogue::Bias(&bias)).expect("shape")
        });
        let (gelu_wall, gelu_s) = median_secs(|| {
            gemm_i8(
                isa,
                &team,
                &qa,
                &packed_i8,
                &mut c,
                Epilogue::BiasGelu(&bias),
            )
            .expect("shape")
        });
        println!(
            "{:<15} {:<6} {:>3} | int8 + bias + GELU: {:.1} G/s, {:.1} per core ({:+.1}% CPU time against bias alone)",
            format!("{m}×{k}×{n}"),
            isa.name(),
            physical_cores(),
            ops / gelu_wall / 1e9,
            ops / gelu_s / 1e9,
            (gelu_s / bias_s - 1.0) * 100.0
        );
    }
    attention();
    encoder_layer();
    regions();
}

/// One all-MiniLM-L6-v2 encoder layer (hidden 384, 12 heads, FFN 1536) over a batch of 32
/// texts of 200 tokens packed without padding, as the embedder will run it, in f32 and int8
/// (int8 for the four matrix products; attention and norms stay f32). Six layers make the
/// model, so `32 / (6 × layer time)` projects chunks per second (embeddings, pooling and
/// tokenisation excluded).
fn encoder_layer() {
    let (texts, len, hidden, heads, ffn) = (32, 200, 384, 12, 1536);
    let d = hidden / heads;
    let tokens = texts * len;
    let w = |n: usize, k: usize, seed: u32| {
        fill(n * k, seed)
            .iter()
            .map(|v| v * 0.1)
            .collect::<Vec<f32>>()
    };
    let (w_qkv, w_o, w_up, w_down) = (
        w(3 * hidden, hidden, 5),
        w(hidden, hidden, 6),
        w(ffn, hidden, 7),
        w(hidden, ffn, 8),
    );
    let (b_qkv, b_o, b_up, b_down) = (
        fill(3 * hidden, 9),
        fill(hidden, 10),
        fill(ffn, 11),
        fill(hidden, 12),
    );
    let gamma = vec![1.0f32; hidden];
    let beta = vec![0.0f32; hidden];
    let f32w = [
        PackedF32::pack(&w_qkv, 3 * hidden, hidden).expect("shape"),
        PackedF32::pack(&w_o, hidden, hidden).expect("shape"),
        PackedF32::pack(&w_up, ffn, hidden).expect("shape"),
        PackedF32::pack(&w_down, hidden, ffn).expect("shape"),
    ];
    let i8w = [
        PackedI8::quantize(&w_qkv, 3 * hidden, hidden).expect("shape"),
        PackedI8::quantize(&w_o, hidden, hidden).expect("shape"),
        PackedI8::quantize(&w_up, ffn, hidden).expect("shape"),
        PackedI8::quantize(&w_down, hidden, ffn).expect("shape"),
    ];
    let x = fill(tokens * hidden, 13);
    let mut qkv = vec![0f32; tokens * 3 * hidden];
    let mut ctx = vec![0f32; tokens * hidden];
    let mut h1 = vec![0f32; tokens * hidden];
    let mut up = vec![0f32; tokens * ffn];
    let mut out = vec![0f32; tokens * hidden];
    let mut qa = QuantizedRows::new();
    let isa = Isa::active();
    let flops =
        2.0 * tokens as f64 * (4.0 * (hidden * hidden) as f64 + 2.0 * (hidden * ffn) as f64)
            + 4.0 * (texts * heads * len * len * d) as f64;
    println!();
    println!("encoder layer (all-MiniLM-L6-v2 shapes), {texts} texts × {len} tokens, path {isa}:");
    for t in [1, 2] {
        let team = Team::new(t);
        let scratch = PerWorker::new(team.count(), AttentionScratch::new);
        for int8 in [false, true] {
            let (secs, cpu) = median_secs(|| {
                let norm = RowNorm::Layer {
                    gamma: &gamma,
                    beta: &beta,
                    eps: 1e-12,
                };
                let linear = |a: &[f32],
                              k: usize,
                              i: usize,
                              c: &mut [f32],
                              ep: Epilogue<'_>,
                              qa: &mut QuantizedRows| {
                    if int8 {
                        qa.quantize_on(isa, &team, a, tokens, k).expect("shape");
                        gemm_i8(isa, &team, qa, &i8w[i], c, ep).expect("shape");
                    } else {
                        gemm_f32(isa, &team, a, tokens, &f32w[i], c, ep).expect("shape");
                    }
                };
                linear(&x, hidden, 0, &mut qkv, Epilogue::Bias(&b_qkv), &mut qa);
                // Attention: one text (all its heads) per part, over the team; each part is that
                // text's rows of ctx.
                let qkv_ref = &qkv;
                team.for_each_chunk_mut(&mut ctx, len * hidden, |w, text, o| {
                    scratch.with(w.index, |s| {
                        let base = text * len * 3 * hidden;
                        for h in 0..heads {
                            let rows = |off: usize| Rows {
                                data: &qkv_ref[base + off + h * d..],
                                stride: 3 * hidden,
                                rows: len,
                            };
                            let (q, k, v) = (rows(0), rows(hidden), rows(2 * hidden));
                            let o = &mut o[h * d..];
                            ops::attend_blocked(
                                isa,
                                s,
                                q,
                                d,
                                k,
                                v,
                                0.125,
                                Mask::None,
                                0,
                                o,
                                hidden,
                            )
                            .expect("shape");
                        }
                    });
                });
                linear(
                    &ctx,
                    hidden,
                    1,
                    &mut h1,
                    Epilogue::BiasResidualNorm {
                        bias: &b_o,
                        residual: &x,
                        norm,
                    },
                    &mut qa,
                );
                linear(&h1, hidden, 2, &mut up, Epilogue::BiasGelu(&b_up), &mut qa);
                linear(
                    &up,
                    ffn,
                    3,
                    &mut out,
                    Epilogue::BiasResidualNorm {
                        bias: &b_down,
                        residual: &h1,
                        norm,
                    },
                    &mut qa,
                );
            });
            println!(
                "  {} threads, {:<4}: {:6.1} ms per layer, {:6.1} G/s ({:5.1} per core) → {:5.1} chunks/s for 6 layers",
                t,
                if int8 { "int8" } else { "f32" },
                secs * 1e3,
                flops / secs / 1e9,
                flops / cpu / 1e9,
                texts as f64 / (6.0 * secs)
            );
        }
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
