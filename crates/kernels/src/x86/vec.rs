//! AVX2 + FMA (+ F16C) vector kernels.

use std::arch::x86_64::*;

use crate::ops::{
    ATTEND_BLOCK, ERF_ALPHA, ERF_BETA, KvElem, Rows, gelu_scalar, layer_norm_body, rms_norm_body,
};

/// Eight key/value elements as f32 (F16C for half-precision bits).
///
/// # Safety
/// AVX2 + F16C; `p` readable for 8 elements.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn load8<T: KvElem>(p: *const T) -> __m256 {
    // SAFETY: the caller guarantees 8 readable elements.
    unsafe {
        if T::IS_F16 {
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
        } else {
            _mm256_loadu_ps(p.cast())
        }
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
    _mm_cvtss_f32(s)
}

/// # Safety
/// AVX2 + FMA; `a.len() == b.len()`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads i..i+8 (or i+32) < n.
    unsafe {
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let o = i + 8 * j;
                *acc =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)), *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i)),
                _mm256_loadu_ps(pb.add(i)),
                acc[0],
            );
            i += 8;
        }
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut total = hsum(s);
    for j in i..n {
        total += a[j] * b[j];
    }
    total
}

/// # Safety
/// AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn axpy_avx2(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let va = _mm256_set1_ps(alpha);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n for both slices.
        unsafe {
            let v = _mm256_fmadd_ps(
                va,
                _mm256_loadu_ps(x.as_ptr().add(i)),
                _mm256_loadu_ps(y.as_ptr().add(i)),
            );
            _mm256_storeu_ps(y.as_mut_ptr().add(i), v);
        }
        i += 8;
    }
    for j in i..n {
        y[j] += alpha * x[j];
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn erf8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0));
    let x2 = _mm256_mul_ps(x, x);
    let mut p = _mm256_set1_ps(ERF_ALPHA[0]);
    for &c in &ERF_ALPHA[1..] {
        p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(c));
    }
    let mut q = _mm256_set1_ps(ERF_BETA[0]);
    for &c in &ERF_BETA[1..] {
        q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(c));
    }
    // 1/q by the 12-bit reciprocal and one Newton step (about 23 bits; q lies in [-2.4, -0.014]
    // here, far from zero), cheaper than a division.
    let r = _mm256_rcp_ps(q);
    let r = _mm256_mul_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(2.0)));
    _mm256_mul_ps(_mm256_mul_ps(x, p), r)
}

/// GELU of eight values.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gelu8(v: __m256) -> __m256 {
    let e = erf8(_mm256_mul_ps(
        v,
        _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
    ));
    _mm256_mul_ps(
        _mm256_mul_ps(_mm256_set1_ps(0.5), v),
        _mm256_add_ps(_mm256_set1_ps(1.0), e),
    )
}

/// # Safety
/// AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gelu_avx2(x: &mut [f32]) {
    let n = x.len();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, gelu8(_mm256_loadu_ps(p)));
        }
        i += 8;
    }
    for v in &mut x[i..] {
        *v = gelu_scalar(*v);
    }
}

/// `x = gelu(x + bias)` in one pass (the GEMM epilogue).
///
/// # Safety
/// AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn bias_gelu_avx2(x: &mut [f32], bias: &[f32]) {
    let n = x.len().min(bias.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n for both slices.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            let v = _mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(bias.as_ptr().add(i)));
            _mm256_storeu_ps(p, gelu8(v));
        }
        i += 8;
    }
    for (v, b) in x[i..n].iter_mut().zip(&bias[i..n]) {
        *v = gelu_scalar(*v + b);
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn exp8(x: __m256) -> __m256 {
    let lo = _mm256_set1_ps(-87.0);
    let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(x, lo);
    let x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(pow2)), keep)
}

/// # Safety
/// AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn exp_avx2(x: &mut [f32]) {
    let n = x.len();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe {
            let p = x.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, exp8(_mm256_loadu_ps(p)));
        }
        i += 8;
    }
    if i < n {
        let mut buf = [0f32; 8];
        buf[..n - i].copy_from_slice(&x[i..]);
        // SAFETY: `buf` holds 8 floats.
        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), exp8(_mm256_loadu_ps(buf.as_ptr()))) };
        x[i..].copy_from_slice(&buf[..n - i]);
    }
}

/// The portable LayerNorm body compiled for AVX2 + FMA.
///
/// # Safety
/// AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn layer_norm_avx2(
    x: &mut [f32],
    n: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    layer_norm_body(x, n, gamma, beta, eps);
}

/// The portable RMSNorm body compiled for AVX2 + FMA.
///
/// # Safety
/// AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn rms_norm_avx2(x: &mut [f32], n: usize, weight: &[f32], eps: f32) {
    rms_norm_body(x, n, weight, eps);
}

/// # Safety
/// AVX2 + F16C; `src.len() == dst.len()`.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn f16_to_f32_f16c(src: &[u16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n for both slices.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
        i += 8;
    }
    for j in i..n {
        dst[j] = crate::ops::f16_to_f32_scalar(src[j]);
    }
}

/// # Safety
/// AVX2 + F16C; `src.len() == dst.len()`.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn f32_to_f16_f16c(src: &[f32], dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n for both slices.
        unsafe {
            let v = _mm256_loadu_ps(src.as_ptr().add(i));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
        }
        i += 8;
    }
    for j in i..n {
        dst[j] = crate::ops::f32_to_f16_scalar(src[j]);
    }
}

/// Scores of 8 consecutive keys: `scale · q·k_j` for rows `first..first + 8`.
///
/// # Safety
/// AVX2 + FMA; rows `first..first + 8` of `keys` hold `q.len()` values each.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scores8<T: KvElem>(q: &[f32], keys: &Rows<'_, T>, first: usize, scale: f32) -> __m256 {
    let d = q.len();
    let chunks = d / 8;
    let base = keys.data.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 8];
    for c in 0..chunks {
        // SAFETY: c * 8 + 8 <= d, and each key row holds d values (caller).
        unsafe {
            let qv = _mm256_loadu_ps(q.as_ptr().add(c * 8));
            for (t, acc) in acc.iter_mut().enumerate() {
                let kp = base.add((first + t) * keys.stride + c * 8);
                *acc = _mm256_fmadd_ps(load8(kp), qv, *acc);
            }
        }
    }
    // Eight horizontal sums at once.
    let s01 = _mm256_hadd_ps(acc[0], acc[1]);
    let s23 = _mm256_hadd_ps(acc[2], acc[3]);
    let s45 = _mm256_hadd_ps(acc[4], acc[5]);
    let s67 = _mm256_hadd_ps(acc[6], acc[7]);
    let s0123 = _mm256_hadd_ps(s01, s23);
    let s4567 = _mm256_hadd_ps(s45, s67);
    let lo = _mm256_permute2f128_ps::<0x20>(s0123, s4567);
    let hi = _mm256_permute2f128_ps::<0x31>(s0123, s4567);
    let mut sums = _mm256_add_ps(lo, hi);
    if chunks * 8 < d {
        let mut tail = [0f32; 8];
        for (t, v) in tail.iter_mut().enumerate() {
            let row = keys.row(first + t, d);
            *v = (chunks * 8..d).map(|i| q[i] * row[i].to_f32()).sum();
        }
        // SAFETY: `tail` holds 8 floats.
        sums = _mm256_add_ps(sums, unsafe { _mm256_loadu_ps(tail.as_ptr()) });
    }
    _mm256_mul_ps(sums, _mm256_set1_ps(scale))
}

/// One query's attention with an online softmax (see [`crate::ops::attend`]): scores eight
/// keys at a time, all primitives inlined.
///
/// # Safety
/// AVX2 + FMA; `out.len() == q.len()`; keys and values hold `rows` rows of `q.len()` values at
/// their strides, with `keys.rows == values.rows`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attend_avx2<T: KvElem>(
    q: &[f32],
    keys: Rows<'_, T>,
    values: Rows<'_, T>,
    scale: f32,
    out: &mut [f32],
) {
    let d = q.len();
    out.fill(0.0);
    let mut running_max = f32::NEG_INFINITY;
    let mut denom = 0f32;
    let mut scores = [0f32; ATTEND_BLOCK];
    let mut start = 0;
    while start < keys.rows {
        let len = ATTEND_BLOCK.min(keys.rows - start);
        let block = &mut scores[..len];
        let mut j = 0;
        while j + 8 <= len {
            // SAFETY: rows start + j .. start + j + 8 exist (j + 8 <= len); `block` has room.
            unsafe {
                _mm256_storeu_ps(
                    block.as_mut_ptr().add(j),
                    scores8(q, &keys, start + j, scale),
                )
            };
            j += 8;
        }
        for (jj, s) in block.iter_mut().enumerate().skip(j) {
            *s = scale * crate::ops::dot_kv(q, keys.row(start + jj, d));
        }
        let block_max = block.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let new_max = running_max.max(block_max);
        if new_max > running_max && running_max > f32::NEG_INFINITY {
            let correction = (running_max - new_max).exp();
            denom *= correction;
            for o in out.iter_mut() {
                *o *= correction;
            }
        }
        running_max = new_max;
        for s in block.iter_mut() {
            *s -= new_max;
        }
        // SAFETY: AVX2 + FMA (this function's features).
        unsafe { exp_avx2(block) };
        denom += block.iter().sum::<f32>();
        // out += Σ p_j v_j, eight value rows per pass over `out`.
        let chunks = d / 8;
        let mut j = 0;
        while j + 8 <= len {
            for c in 0..chunks {
                // SAFETY: value rows start + j .. + 8 hold d values; c * 8 + 8 <= d = out.len().
                unsafe {
                    let op = out.as_mut_ptr().add(c * 8);
                    let mut o = _mm256_loadu_ps(op);
                    for t in 0..8 {
                        let vp = values
                            .data
                            .as_ptr()
                            .add((start + j + t) * values.stride + c * 8);
                        o = _mm256_fmadd_ps(_mm256_set1_ps(block[j + t]), load8(vp), o);
                    }
                    _mm256_storeu_ps(op, o);
                }
            }
            for t in 0..8 {
                let row = values.row(start + j + t, d);
                for i in chunks * 8..d {
                    out[i] += block[j + t] * row[i].to_f32();
                }
            }
            j += 8;
        }
        for (jj, &p) in block.iter().enumerate().skip(j) {
            for (o, v) in out.iter_mut().zip(values.row(start + jj, d)) {
                *o += p * v.to_f32();
            }
        }
        start += len;
    }
    if denom > 0.0 {
        let inv = 1.0 / denom;
        for o in out.iter_mut() {
            *o *= inv;
        }
    }
}
