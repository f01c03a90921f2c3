//! Portable reference code: dequantisation of every supported type, ggml's reference
//! activation quantisers, and the weight·activation dot products in ggml's reference
//! summation order (integer partial sums, then `f32` accumulation per block).
//!
//! Every function takes whole rows as byte slices whose lengths the caller has checked
//! (`mod.rs` validates before dispatching); indexing is still bounds-checked, so a wrong
//! length panics rather than reading out of bounds.

use super::blocks::*;

// ---------------------------------------------------------------- dequantisation

/// Dequantises whole Q4_0 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q4_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = le_f16(b, 0);
        for j in 0..16 {
            let q = b[2 + j];
            y[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
            y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// Dequantises whole Q4_1 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q4_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = le_f16(b, 0);
        let m = le_f16(b, 2);
        for j in 0..16 {
            let q = b[4 + j];
            y[j] = (q & 0x0f) as f32 * d + m;
            y[j + 16] = (q >> 4) as f32 * d + m;
        }
    }
}

/// Dequantises whole Q5_0 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q5_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = le_f16(b, 0);
        let qh = le_u32(b, 2);
        for j in 0..16 {
            let q = b[6 + j];
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            y[j] = (((q & 0x0f) as u32 | h0) as i32 - 16) as f32 * d;
            y[j + 16] = (((q >> 4) as u32 | h1) as i32 - 16) as f32 * d;
        }
    }
}

/// Dequantises whole Q5_1 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q5_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = le_f16(b, 0);
        let m = le_f16(b, 2);
        let qh = le_u32(b, 4);
        for j in 0..16 {
            let q = b[8 + j];
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            y[j] = ((q & 0x0f) as u32 | h0) as f32 * d + m;
            y[j + 16] = ((q >> 4) as u32 | h1) as f32 * d + m;
        }
    }
}

/// Dequantises whole Q8_0 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q8_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = le_f16(b, 0);
        for j in 0..QK {
            y[j] = (b[2 + j] as i8) as f32 * d;
        }
    }
}

/// Dequantises whole Q8_1 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q8_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = le_f16(b, 0);
        for j in 0..QK {
            y[j] = (b[4 + j] as i8) as f32 * d;
        }
    }
}

/// Dequantises whole Q4_K blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q4_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = le_f16(b, 0);
        let dmin = le_f16(b, 2);
        let (sc, mn) = k4_scales_mins(&b[4..16]);
        let qs = &b[16..144];
        for j in 0..4 {
            let d1 = d * sc[2 * j] as f32;
            let m1 = dmin * mn[2 * j] as f32;
            let d2 = d * sc[2 * j + 1] as f32;
            let m2 = dmin * mn[2 * j + 1] as f32;
            for l in 0..32 {
                let q = qs[32 * j + l];
                y[64 * j + l] = d1 * (q & 0x0f) as f32 - m1;
                y[64 * j + 32 + l] = d2 * (q >> 4) as f32 - m2;
            }
        }
    }
}

/// Dequantises whole Q5_K blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q5_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = le_f16(b, 0);
        let dmin = le_f16(b, 2);
        let (sc, mn) = k4_scales_mins(&b[4..16]);
        let qh = &b[16..48];
        let qs = &b[48..176];
        for j in 0..4 {
            let d1 = d * sc[2 * j] as f32;
            let m1 = dmin * mn[2 * j] as f32;
            let d2 = d * sc[2 * j + 1] as f32;
            let m2 = dmin * mn[2 * j + 1] as f32;
            for l in 0..32 {
                let q = qs[32 * j + l];
                let h1 = ((qh[l] >> (2 * j)) & 1) << 4;
                let h2 = ((qh[l] >> (2 * j + 1)) & 1) << 4;
                y[64 * j + l] = d1 * ((q & 0x0f) | h1) as f32 - m1;
                y[64 * j + 32 + l] = d2 * ((q >> 4) | h2) as f32 - m2;
            }
        }
    }
}

/// The 256 signed 6-bit quants (`-32..32`) of a Q6_K block, in element order.
#[inline]
pub fn q6_k_quants(b: &[u8]) -> [i8; QK_K] {
    let mut a = [0i8; QK_K];
    for h in 0..2 {
        let ql = &b[64 * h..64 * h + 64];
        let qh = &b[Q6_K_QH + 32 * h..Q6_K_QH + 32 * h + 32];
        let a = &mut a[128 * h..128 * h + 128];
        for l in 0..32 {
            a[l] = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
            a[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            a[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            a[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
        }
    }
    a
}

/// Dequantises whole Q6_K blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q6_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = le_f16(b, Q6_K_D);
        let q = q6_k_quants(b);
        for (e, y) in y.iter_mut().enumerate() {
            let sc = b[Q6_K_SCALES + e / 16] as i8;
            *y = d * sc as f32 * q[e] as f32;
        }
    }
}

/// Dequantises whole Q8_K blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(Q8_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = le_f32(b, 0);
        for (j, y) in y.iter_mut().enumerate() {
            *y = d * (b[Q8_K_QS + j] as i8) as f32;
        }
    }
}

/// Dequantises whole F32 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(4).zip(dst.iter_mut()) {
        *y = le_f32(b, 0);
    }
}

/// Dequantises whole F16 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = le_f16(b, 0);
    }
}

/// Dequantises whole BF16 blocks of `src` into `dst` (as many as both hold).
pub fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *y = bf16_to_f32(le_u16(b, 0));
    }
}

// ---------------------------------------------------------------- activation quantisers

fn abs_max(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// ggml's `quantize_row_q8_0_ref`: `d = amax / 127`, `q = round(x / d)` (half away from zero).
pub fn quantize_q8_0_ref(x: &[f32], dst: &mut [u8]) {
    for (x, b) in x.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_0_BYTES)) {
        let amax = abs_max(x);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        for j in 0..QK {
            b[2 + j] = (x[j] * id).round() as i8 as u8;
        }
    }
}

/// ggml's `quantize_row_q8_1_ref`: as Q8_0, plus `s = d · Σ q` stored as f16.
pub fn quantize_q8_1_ref(x: &[f32], dst: &mut [u8]) {
    for (x, b) in x.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_1_BYTES)) {
        let amax = abs_max(x);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for j in 0..QK {
            let q = (x[j] * id).round() as i8;
            b[4 + j] = q as u8;
            sum += i32::from(q);
        }
        b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        b[2..4].copy_from_slice(&f32_to_f16(sum as f32 * d).to_le_bytes());
    }
}

/// ggml's `quantize_row_q8_K_ref` (the quantiser llama.cpp uses on every CPU): the scale
/// comes from the signed element of largest magnitude (the first one on ties),
/// `iscale = -127 / max`, `q = min(127, nearest_int(iscale · x))` with ties to even,
/// `d = 1 / iscale`, and the 16 sums of 16 quants. An all-zero block stores zeros.
pub fn quantize_q8_k_ref(x: &[f32], dst: &mut [u8]) {
    for (x, b) in x.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q8_K_BYTES)) {
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            b.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        for j in 0..QK_K {
            let v = (iscale * x[j]).round_ties_even() as i32;
            b[Q8_K_QS + j] = v.min(127) as i8 as u8;
        }
        for j in 0..16 {
            let s: i32 = (0..16)
                .map(|i| i32::from(b[Q8_K_QS + 16 * j + i] as i8))
                .sum();
            b[Q8_K_BSUMS + 2 * j..Q8_K_BSUMS + 2 * j + 2]
                .copy_from_slice(&(s as i16).to_le_bytes());
        }
        b[0..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

/// The f32 "activation": raw little-endian floats.
pub fn quantize_f32(x: &[f32], dst: &mut [u8]) {
    for (v, b) in x.iter().zip(dst.chunks_exact_mut(4)) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

// ---------------------------------------------------------------- dot products

/// Q4_0 · Q8_0 over `nb` blocks.
pub fn dot_q4_0_q8_0(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q4_0_BYTES..(i + 1) * Q4_0_BYTES];
        let xb = &x[i * Q8_0_BYTES..(i + 1) * Q8_0_BYTES];
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            let v0 = (wb[2 + j] & 0x0f) as i32 - 8;
            let v1 = (wb[2 + j] >> 4) as i32 - 8;
            s0 += v0 * (xb[2 + j] as i8) as i32;
            s1 += v1 * (xb[18 + j] as i8) as i32;
        }
        sumf += (s0 + s1) as f32 * le_f16(wb, 0) * le_f16(xb, 0);
    }
    sumf
}

/// Q4_1 · Q8_1.
pub fn dot_q4_1_q8_1(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q4_1_BYTES..(i + 1) * Q4_1_BYTES];
        let xb = &x[i * Q8_1_BYTES..(i + 1) * Q8_1_BYTES];
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            s0 += (wb[4 + j] & 0x0f) as i32 * (xb[4 + j] as i8) as i32;
            s1 += (wb[4 + j] >> 4) as i32 * (xb[20 + j] as i8) as i32;
        }
        sumf += (le_f16(wb, 0) * le_f16(xb, 0)) * (s0 + s1) as f32 + le_f16(wb, 2) * le_f16(xb, 2);
    }
    sumf
}

/// Q5_0 · Q8_0.
pub fn dot_q5_0_q8_0(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q5_0_BYTES..(i + 1) * Q5_0_BYTES];
        let xb = &x[i * Q8_0_BYTES..(i + 1) * Q8_0_BYTES];
        let qh = le_u32(wb, 2);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            let v0 = ((wb[6 + j] & 0x0f) as u32 | h0) as i32 - 16;
            let v1 = ((wb[6 + j] >> 4) as u32 | h1) as i32 - 16;
            s0 += v0 * (xb[2 + j] as i8) as i32;
            s1 += v1 * (xb[18 + j] as i8) as i32;
        }
        sumf += (le_f16(wb, 0) * le_f16(xb, 0)) * (s0 + s1) as f32;
    }
    sumf
}

/// Q5_1 · Q8_1.
pub fn dot_q5_1_q8_1(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q5_1_BYTES..(i + 1) * Q5_1_BYTES];
        let xb = &x[i * Q8_1_BYTES..(i + 1) * Q8_1_BYTES];
        let qh = le_u32(wb, 4);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..16 {
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            s0 += ((wb[8 + j] & 0x0f) as u32 | h0) as i32 * (xb[4 + j] as i8) as i32;
            s1 += ((wb[8 + j] >> 4) as u32 | h1) as i32 * (xb[20 + j] as i8) as i32;
        }
        sumf += (le_f16(wb, 0) * le_f16(xb, 0)) * (s0 + s1) as f32 + le_f16(wb, 2) * le_f16(xb, 2);
    }
    sumf
}

/// Q8_0 · Q8_0.
pub fn dot_q8_0_q8_0(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q8_0_BYTES..(i + 1) * Q8_0_BYTES];
        let xb = &x[i * Q8_0_BYTES..(i + 1) * Q8_0_BYTES];
        let mut s = 0i32;
        for j in 0..QK {
            s += (wb[2 + j] as i8) as i32 * (xb[2 + j] as i8) as i32;
        }
        sumf += s as f32 * (le_f16(wb, 0) * le_f16(xb, 0));
    }
    sumf
}

/// The common tail of the K-quant dots: ggml keeps eight lane sums of `scale · q · q8`
/// (lane = element index mod 8), folds them into eight `f32` sums per block and adds those
/// last.
#[inline]
fn k_lanes(a: &[i8; QK_K], q8: &[u8], scale_of: impl Fn(usize) -> i32) -> [i32; 8] {
    let mut aux32 = [0i32; 8];
    for g in 0..QK_K / 8 {
        let sc = scale_of(g * 8);
        for (l, acc) in aux32.iter_mut().enumerate() {
            let e = g * 8 + l;
            *acc += sc * (i32::from(a[e]) * i32::from(q8[Q8_K_QS + e] as i8));
        }
    }
    aux32
}

fn q8_k_bsum(x: &[u8], j: usize) -> i32 {
    i32::from(le_i16(x, Q8_K_BSUMS + 2 * j))
}

/// Q4_K · Q8_K.
pub fn dot_q4_k_q8_k(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q4_K_BYTES..(i + 1) * Q4_K_BYTES];
        let xb = &x[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let mut a = [0i8; QK_K];
        for j in 0..4 {
            for l in 0..32 {
                let q = wb[16 + 32 * j + l];
                a[64 * j + l] = (q & 0x0f) as i8;
                a[64 * j + 32 + l] = (q >> 4) as i8;
            }
        }
        let (sc, mn) = k4_scales_mins(&wb[4..16]);
        let sumi: i32 = (0..16)
            .map(|j| q8_k_bsum(xb, j) * i32::from(mn[j / 2]))
            .sum();
        let aux32 = k_lanes(&a, xb, |e| i32::from(sc[e / 32]));
        let dx = le_f32(xb, 0);
        let d = le_f16(wb, 0) * dx;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
        let dmin = le_f16(wb, 2) * dx;
        sumf -= dmin * sumi as f32;
    }
    for s in sums {
        sumf += s;
    }
    sumf
}

/// Q5_K · Q8_K.
pub fn dot_q5_k_q8_k(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q5_K_BYTES..(i + 1) * Q5_K_BYTES];
        let xb = &x[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let qh = &wb[16..48];
        let mut a = [0i8; QK_K];
        for j in 0..4 {
            for l in 0..32 {
                let q = wb[48 + 32 * j + l];
                a[64 * j + l] = ((q & 0x0f) | (((qh[l] >> (2 * j)) & 1) << 4)) as i8;
                a[64 * j + 32 + l] = ((q >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)) as i8;
            }
        }
        let (sc, mn) = k4_scales_mins(&wb[4..16]);
        let sumi: i32 = (0..16)
            .map(|j| q8_k_bsum(xb, j) * i32::from(mn[j / 2]))
            .sum();
        let aux32 = k_lanes(&a, xb, |e| i32::from(sc[e / 32]));
        let dx = le_f32(xb, 0);
        let d = le_f16(wb, 0) * dx;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
        let dmin = le_f16(wb, 2) * dx;
        sumf -= dmin * sumi as f32;
    }
    for s in sums {
        sumf += s;
    }
    sumf
}

/// Q6_K · Q8_K.
pub fn dot_q6_k_q8_k(w: &[u8], x: &[u8], nb: usize) -> f32 {
    let mut sums = [0.0f32; 8];
    for i in 0..nb {
        let wb = &w[i * Q6_K_BYTES..(i + 1) * Q6_K_BYTES];
        let xb = &x[i * Q8_K_BYTES..(i + 1) * Q8_K_BYTES];
        let a = q6_k_quants(wb);
        let aux32 = k_lanes(&a, xb, |e| i32::from(wb[Q6_K_SCALES + e / 16] as i8));
        let d = le_f16(wb, Q6_K_D) * le_f32(xb, 0);
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
    }
    let mut sumf = 0.0f32;
    for s in sums {
        sumf += s;
    }
    sumf
}

/// F32 weights · f32 activations.
pub fn dot_f32(w: &[u8], x: &[u8], n: usize) -> f32 {
    (0..n).map(|i| le_f32(w, 4 * i) * le_f32(x, 4 * i)).sum()
}

/// F16 weights · f32 activations.
pub fn dot_f16(w: &[u8], x: &[u8], n: usize) -> f32 {
    (0..n).map(|i| le_f16(w, 2 * i) * le_f32(x, 4 * i)).sum()
}

/// BF16 weights · f32 activations.
pub fn dot_bf16(w: &[u8], x: &[u8], n: usize) -> f32 {
    (0..n)
        .map(|i| bf16_to_f32(le_u16(w, 2 * i)) * le_f32(x, 4 * i))
        .sum()
}
