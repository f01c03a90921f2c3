//! Quant kernel throughput, single thread: `matvec` (decode) GB/s of weights read per type for
//! a 2048×2048, a 576×1536 (SmolLM2's FFN) and a 1536×576 matrix; `matmul` over 16 activation
//! rows as the weight bytes 16 separate products would read per second; activation
//! quantisation per 2048-element row; and, for scale, the read bandwidth of a plain f32 sum
//! over 256 MiB. Random weights with fixed sane scales (speed does not depend on values).
//!
//! `cargo bench -p docent-kernels --bench ggml` — needs `[[bench]] name = "ggml"`,
//! `harness = false` in the crate's Cargo.toml. `QB_SHAPES=small` runs only 576×1536.
//! Timings are the fastest of many calls, because the machines this runs on are shared.

use std::hint::black_box;
use std::time::Instant;

use docent_kernels::ggml::{
    QuantIsa, QuantMatrix, QuantType, QuantizedActivations, matmul, matvec,
};

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// Random weights with sane f16 scales.
fn weights(t: QuantType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = t.row_bytes(cols).unwrap();
    let mut w = bytes(rows * rb, 0x1234_5678 ^ t.ggml_id() as u64);
    let bb = t.block_bytes();
    let scale_at: &[usize] = match t {
        QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => &[0],
        QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4_K | QuantType::Q5_K => &[0, 2],
        QuantType::Q6_K => &[208],
        _ => &[],
    };
    for b in 0..w.len() / bb {
        for &o in scale_at {
            w[b * bb + o..b * bb + o + 2].copy_from_slice(&0x2a00u16.to_le_bytes()); // 0.047
        }
    }
    if matches!(t, QuantType::F16 | QuantType::BF16) {
        for c in w.chunks_exact_mut(2) {
            c[1] &= 0x3f;
        }
    }
    if t == QuantType::F32 {
        for (i, c) in w.chunks_exact_mut(4).enumerate() {
            c.copy_from_slice(&((i % 7) as f32 * 0.01).to_le_bytes());
        }
    }
    w
}

/// Seconds per call of `f`: the fastest of `reps` single calls (the machine is shared; the
/// fastest call is the least disturbed one).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn f32_sum_bandwidth() -> f64 {
    let n = 256 << 20 >> 2; // 256 MiB of f32
    let buf: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    let secs = time(5, || {
        // Eight independent sums, so the adds do not serialise.
        let mut acc = [0.0f32; 8];
        for c in buf.chunks_exact(8) {
            for k in 0..8 {
                acc[k] += c[k];
            }
        }
        black_box(acc);
    });
    (n * 4) as f64 / secs / 1e9
}

fn main() {
    let isa = QuantIsa::best();
    let bw = f32_sum_bandwidth();
    println!("ISA {isa:?}; plain f32 sum over 256 MiB: {bw:.1} GB/s (single thread)");
    println!(
        "{:<6} {:>11} {:>10} {:>9} {:>10} {:>10} {:>12}",
        "type", "shape", "MB", "matvec us", "GB/s", "of f32 sum", "matmul×16 GB/s-eq"
    );
    let shapes: Vec<(usize, usize)> = match std::env::var("QB_SHAPES").ok().as_deref() {
        Some("small") => vec![(576, 1536)],
        _ => vec![(2048, 2048), (576, 1536), (1536, 576)],
    };
    let types = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q4_K,
        QuantType::Q5_K,
        QuantType::Q6_K,
        QuantType::F16,
        QuantType::BF16,
        QuantType::F32,
    ];
    for &(rows, cols) in &shapes {
        for t in types {
            if t.row_bytes(cols).is_err() {
                continue;
            }
            let wb = weights(t, rows, cols);
            let w = QuantMatrix::new(t, rows, cols, &wb).unwrap();
            let x: Vec<f32> = (0..16 * cols)
                .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
                .collect();
            let mut xq = QuantizedActivations::new(w.activation_type(), cols, 16).unwrap();
            xq.quantize(&x[..cols], isa).unwrap();
            let mut out = vec![0.0f32; rows];
            let reps = (400_000_000 / wb.len()).clamp(20, 1000);
            let secs = time(reps, || {
                matvec(&w, &xq, 0..rows, &mut out, isa).unwrap();
                black_box(&out);
            });
            let gbs = wb.len() as f64 / secs / 1e9;
            // Prompt-style: 16 activation rows; reported as the weight bytes × 16 per second
            // (what 16 separate matvecs would have to read).
            xq.quantize(&x, isa).unwrap();
            let mut out16 = vec![0.0f32; 16 * rows];
            let secs16 = time(reps.div_ceil(4), || {
                matmul(&w, &xq, 0..rows, &mut out16, rows, isa).unwrap();
                black_box(&out16);
            });
            let gbs16 = 16.0 * wb.len() as f64 / secs16 / 1e9;
            println!(
                "{:<6} {:>11} {:>10.2} {:>9.1} {:>10.1} {:>9.0}% {:>12.1}",
                t.name(),
                format!("{rows}x{cols}"),
                wb.len() as f64 / 1e6,
                secs * 1e6,
                gbs,
                100.0 * gbs / bw,
                gbs16
            );
        }
    }
    // Decode over more weights than the last-level cache holds (a model's worth): matvec over
    // enough 2048×2048 matrices for 192 MB, so the weights stream from memory like the f32 sum.
    println!("streaming matvec over 192 MB of 2048x2048 matrices (weights from DRAM):");
    for t in [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q8_0,
        QuantType::Q4_K,
        QuantType::Q5_K,
        QuantType::Q6_K,
        QuantType::F16,
    ] {
        let (rows, cols) = (2048, 2048);
        let wb = weights(t, rows, cols);
        let count = (192_000_000 / wb.len()).max(2);
        let mats: Vec<Vec<u8>> = (0..count).map(|_| wb.clone()).collect();
        let ws: Vec<QuantMatrix<'_>> = mats
            .iter()
            .map(|m| QuantMatrix::new(t, rows, cols, m).unwrap())
            .collect();
        let x: Vec<f32> = (0..cols)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let mut xq = QuantizedActivations::new(ws[0].activation_type(), cols, 1).unwrap();
        xq.quantize(&x, isa).unwrap();
        let mut out = vec![0.0f32; rows];
        let secs = time(5, || {
            for w in &ws {
                matvec(w, &xq, 0..rows, &mut out, isa).unwrap();
            }
            black_box(&out);
        });
        let total = (count * wb.len()) as f64;
        println!(
            "  {:<5} {:>6.1} GB/s ({:.0}% of the f32 sum)",
            t.name(),
            total / secs / 1e9,
            100.0 * total / secs / 1e9 / bw
        );
    }
    // Activation quantisation cost per row of 2048.
    for t in [QuantType::Q8_0, QuantType::Q8_1, QuantType::Q8_K] {
        let x: Vec<f32> = (0..2048)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let mut xq = QuantizedActivations::new(t, 2048, 1).unwrap();
        for isa in [QuantIsa::Scalar, isa] {
            let s = time(2001, || {
                xq.quantize(&x, isa).unwrap();
                black_box(&xq);
            });
            println!("quantise 2048 to {t} ({isa:?}): {:.2} us", s * 1e6);
        }
    }
}
