//! AVX2 + FMA + F16C kernels (x86-64).
//!
//! Dot products multiply 8-bit integers with `vpmaddubsw` (unsigned × signed → pairs of
//! i16), widen with `vpmaddwd` (which also applies 16-bit sub-block scales), and scale each
//! block's exact i32 sums into an `f32` accumulator with one FMA. No i16 intermediate can
//! saturate: the largest pair sum is 63·127·2 = 16002 (Q6_K).
//!
//! Every kernel is generic over `N`, the number of activation rows multiplied with one
//! weight row: the weight block is unpacked once and used `N` times ([`super::matmul`]
//! uses `N = 4`, [`super::matvec`] `N = 1`).
//!
//! Soundness: the `#[target_feature]` functions are only reachable through a [`Token`], which
//! exists only after run-time detection of all three features.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::QuantType;
use super::blocks::*;

/// Proof that this CPU has AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token(());

impl Token {
    pub(super) fn get() -> Option<Token> {
        if super::QuantIsa::Avx2.is_available() {
            Some(Token(()))
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------- entry points

/// `N` dots of one weight row (`nb` blocks; elements for the float types) with `N` activation
/// rows whose lengths the caller has checked.
pub(super) fn dot_rows<const N: usize>(
    _t: Token,
    wtype: QuantType,
    nb: usize,
    w: &[u8],
    xs: [&[u8]; N],
) -> [f32; N] {
    // SAFETY: a `Token` exists only when AVX2, FMA and F16C were detected at run time, which
    // is all the `#[target_feature]` functions below require; they read memory only through
    // bounds-checked slices.
    unsafe {
        match wtype {
            QuantType::Q4_0 => dot_q4_0::<N>(nb, w, xs),
            QuantType::Q4_1 => dot_q4_1::<N>(nb, w, xs),
            QuantType::Q5_0 => dot_q5_0::<N>(nb, w, xs),
            QuantType::Q5_1 => dot_q5_1::<N>(nb, w, xs),
            QuantType::Q8_0 => dot_q8_0::<N>(nb, w, xs),
            QuantType::Q4_K => dot_q4_k::<N>(nb, w, xs),
            QuantType::Q5_K => dot_q5_k::<N>(nb, w, xs),
            QuantType::Q6_K => dot_q6_k::<N>(nb, w, xs),
            QuantType::F32 | QuantType::F16 | QuantType::BF16 => dot_float::<N>(wtype, nb, w, xs),
            // Activation-only types never reach a dot (the caller checks the pairing).
            QuantType::Q8_1 | QuantType::Q8_K => [0.0; N],
        }
    }
}

/// The dots of consecutive weight rows (`w` holds whole rows of `rb` bytes, `nb` blocks each)
/// with `N` activation rows: `out[n * ld + i]` for row `i` of `w` and activation row `n`. The
/// row loop runs inside the `#[target_feature]` code, so the per-row kernel is inlined and its
/// constants stay in registers across rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn rows<const N: usize>(
    _t: Token,
    wtype: QuantType,
    nb: usize,
    w: &[u8],
    rb: usize,
    xs: [&[u8]; N],
    out: &mut [f32],
    ld: usize,
) {
    // SAFETY: a `Token` exists only when AVX2, FMA and F16C were detected at run time, which
    // is all the `#[target_feature]` functions below require; they read memory only through
    // bounds-checked slices.
    unsafe {
        match wtype {
            QuantType::Q4_0 => rows_q4_0::<N>(nb, w, rb, xs, out, ld),
            QuantType::Q4_1 => rows_q4_1::<N>(nb, w, rb, xs, out, ld),
            QuantType::Q5_0 => rows_q5_0::<N>(nb, w, rb, xs, out, ld),
            QuantType::Q5_1 => rows_q5_1::<N>(nb, w, rb, xs, out, ld),
            QuantType::Q8_0 => rows_q8_0::<N>(nb, w, rb, xs, out, ld),
            QuantType::Q4_K => rows_q4_k::<N>(nb, w, rb, xs, out, ld),
            QuantType::Q5_K => rows_q5_k::<N>(nb, w, rb, xs, out, ld),
            QuantType::Q6_K => rows_q6_k::<N>(nb, w, rb, xs, out, ld),
            QuantType::F32 => rows_f32::<N>(nb, w, rb, xs, out, ld),
            QuantType::F16 => rows_f16::<N>(nb, w, rb, xs, out, ld),
            QuantType::BF16 => rows_bf16::<N>(nb, w, rb, xs, out, ld),
            // Activation-only types never reach a dot (the caller checks the pairing).
            QuantType::Q8_1 | QuantType::Q8_K => {}
        }
    }
}

/// A row loop around one dot kernel (see [`rows`]).
macro_rules! row_loop {
    ($name:ident, $kernel:ident) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        fn $name<const N: usize>(
            nb: usize,
            w: &[u8],
            rb: usize,
            xs: [&[u8]; N],
            out: &mut [f32],
            ld: usize,
        ) {
            for (i, wr) in w.chunks_exact(rb).enumerate() {
                let r = $kernel::<N>(nb, wr, xs);
                for n in 0..N {
                    out[n * ld + i] = r[n];
                }
            }
        }
    };
}

row_loop!(rows_q4_0, dot_q4_0);
row_loop!(rows_q4_1, dot_q4_1);
row_loop!(rows_q5_0, dot_q5_0);
row_loop!(rows_q5_1, dot_q5_1);
row_loop!(rows_q8_0, dot_q8_0);
row_loop!(rows_q4_k, dot_q4_k);
row_loop!(rows_q5_k, dot_q5_k);
row_loop!(rows_q6_k, dot_q6_k);
row_loop!(rows_f32, dot_f32w);
row_loop!(rows_f16, dot_f16w);
row_loop!(rows_bf16, dot_bf16w);

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f32w<const N: usize>(n_el: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    dot_float::<N>(QuantType::F32, n_el, w, xs)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_f16w<const N: usize>(n_el: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    dot_float::<N>(QuantType::F16, n_el, w, xs)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_bf16w<const N: usize>(n_el: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    dot_float::<N>(QuantType::BF16, n_el, w, xs)
}

/// llama.cpp's x86 Q8_0 quantiser: `d = amax / 127`, `q = round_half_even(x · 127 / amax)`.
pub(super) fn quantize_q8_0(_t: Token, x: &[f32], dst: &mut [u8]) {
    for (x, b) in x.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_0_BYTES)) {
        // SAFETY: the token proves AVX2/FMA/F16C (see `dot_rows`).
        let (d, _) = unsafe { quantize_block_q8(x, &mut b[2..34]) };
        b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    }
}

/// llama.cpp's x86 Q8_1 quantiser: as Q8_0, plus `s = d · Σ q`.
pub(super) fn quantize_q8_1(_t: Token, x: &[f32], dst: &mut [u8]) {
    for (x, b) in x.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_1_BYTES)) {
        // SAFETY: the token proves AVX2/FMA/F16C (see `dot_rows`).
        let (d, sum) = unsafe { quantize_block_q8(x, &mut b[4..36]) };
        b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        b[2..4].copy_from_slice(&f32_to_f16(d * sum as f32).to_le_bytes());
    }
}

/// ggml's reference Q8_K quantiser, bit for bit.
pub(super) fn quantize_q8_k(_t: Token, x: &[f32], dst: &mut [u8]) {
    for (x, b) in x.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q8_K_BYTES)) {
        // SAFETY: the token proves AVX2/FMA/F16C (see `dot_rows`).
        unsafe { quantize_block_q8_k(x, b) };
    }
}

// ---------------------------------------------------------------- helpers

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld256(s: &[u8]) -> __m256i {
    let s = &s[..32];
    // SAFETY: `s` has 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld128(s: &[u8]) -> __m128i {
    let s = &s[..16];
    // SAFETY: `s` has 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

/// Eight little-endian `f32` from 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_ps(s: &[u8]) -> __m256 {
    let s = &s[..32];
    // SAFETY: `s` has 32 readable bytes; `loadu` has no alignment requirement (x86 is
    // little-endian, so the bytes are the floats).
    unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ld_ps_f32(s: &[f32]) -> __m256 {
    let s = &s[..8];
    // SAFETY: `s` has 8 readable floats.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn st256(d: &mut [u8], v: __m256i) {
    let d = &mut d[..32];
    // SAFETY: `d` has 32 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), v) }
}

/// `f16(a) · f16(b)`, both converted by one F16C instruction from one 32-bit move.
///
/// Two halves at once on purpose: LLVM lowers a one-lane conversion to a `vpinsrw` into
/// whatever register it considers free, often a loop's accumulator, which chains every
/// block's scale conversion to the previous block's FMA (Q4_0 ran 1.6x slower that way); a
/// 32-bit `vmovd` writes its whole register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn h2_mul(a: u16, b: u16) -> f32 {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(
        (u32::from(a) | (u32::from(b) << 16)) as i32,
    ));
    _mm_cvtss_f32(_mm_mul_ss(v, _mm_movehdup_ps(v)))
}

/// `[dw·dx, mw·sx, …]` from a weight's `(d, m)` and an activation's `(d, s)` f16 pairs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn h4_products(w: u32, x: u32) -> __m128 {
    let v = _mm_cvtph_ps(_mm_cvtsi64_si128(
        (u64::from(w) | (u64::from(x) << 32)) as i64,
    ));
    _mm_mul_ps(v, _mm_movehl_ps(v, v))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_epi32_4(v: __m128i) -> i32 {
    let v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    _mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsums<const N: usize>(acc: &[__m256; N]) -> [f32; N] {
    let mut r = [0.0f32; N];
    for n in 0..N {
        r[n] = hsum_ps(acc[n]);
    }
    r
}

/// 32 nibbles from 16 bytes: low nibbles in bytes 0..16, high nibbles in bytes 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nibbles(q: &[u8]) -> __m256i {
    let q = ld128(q);
    _mm256_and_si256(
        _mm256_set_m128i(_mm_srli_epi16::<4>(q), q),
        _mm256_set1_epi8(0x0f),
    )
}

/// 0xFF in byte `i` where bit `i` of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bytes_from_bits(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let bytes = _mm256_shuffle_epi8(v, shuf);
    let mask = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(bytes, mask), mask)
}

/// Signed i8 · i8 → eight i32 pair sums (via |x| and sign-transferred y).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8(x: __m256i, y: __m256i) -> __m256i {
    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// Unsigned u8 (≤ 127) · signed i8 → eight i32 pair sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_u8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// The first `nb` blocks of `B` bytes of each row, as arrays: indexing them with a block
/// number below `nb` needs no further bounds checks, and neither do constant offsets inside a
/// block.
#[inline]
fn blocks<'a, const B: usize, const N: usize>(xs: &[&'a [u8]; N], nb: usize) -> [&'a [[u8; B]]; N] {
    let mut r: [&'a [[u8; B]]; N] = [&[]; N];
    for n in 0..N {
        r[n] = &xs[n].as_chunks::<B>().0[..nb];
    }
    r
}

// ---------------------------------------------------------------- 32-element formats

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q4_0<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let off = _mm256_set1_epi8(8);
    let wblk = &w.as_chunks::<Q4_0_BYTES>().0[..nb];
    let xblk = blocks::<Q8_0_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let dw = le_u16(wb, 0);
        let qx = _mm256_sub_epi8(nibbles(&wb[2..]), off);
        for n in 0..N {
            let xb = &xblk[n][b];
            let p = dot_i8(qx, ld256(&xb[2..]));
            let d = _mm256_set1_ps(h2_mul(dw, le_u16(xb, 0)));
            acc[n] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[n]);
        }
    }
    hsums(&acc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q8_0<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let wblk = &w.as_chunks::<Q8_0_BYTES>().0[..nb];
    let xblk = blocks::<Q8_0_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let dw = le_u16(wb, 0);
        let qx = ld256(&wb[2..]);
        let ax = _mm256_sign_epi8(qx, qx);
        for n in 0..N {
            let xb = &xblk[n][b];
            let sy = _mm256_sign_epi8(ld256(&xb[2..]), qx);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
            let d = _mm256_set1_ps(h2_mul(dw, le_u16(xb, 0)));
            acc[n] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[n]);
        }
    }
    hsums(&acc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q4_1<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let mut summs = [_mm_setzero_ps(); N];
    let wblk = &w.as_chunks::<Q4_1_BYTES>().0[..nb];
    let xblk = blocks::<Q8_1_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let dm = le_u32(wb, 0);
        let qx = nibbles(&wb[4..]);
        for n in 0..N {
            let xb = &xblk[n][b];
            let ds = h4_products(dm, le_u32(xb, 0));
            summs[n] = _mm_add_ps(summs[n], ds);
            let p = dot_u8(qx, ld256(&xb[4..]));
            acc[n] = _mm256_fmadd_ps(_mm256_broadcastss_ps(ds), _mm256_cvtepi32_ps(p), acc[n]);
        }
    }
    finish_with_mins(&acc, &summs)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q5_0<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let f0 = _mm256_set1_epi8(0xf0u8 as i8);
    let wblk = &w.as_chunks::<Q5_0_BYTES>().0[..nb];
    let xblk = blocks::<Q8_0_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let dw = le_u16(wb, 0);
        // (q | h << 4) - 16: where the fifth bit is clear, q - 16 = q | 0xF0 as i8.
        let hb = bytes_from_bits(le_u32(wb, 2));
        let qx = _mm256_or_si256(nibbles(&wb[6..]), _mm256_andnot_si256(hb, f0));
        for n in 0..N {
            let xb = &xblk[n][b];
            let p = dot_i8(qx, ld256(&xb[2..]));
            let d = _mm256_set1_ps(h2_mul(dw, le_u16(xb, 0)));
            acc[n] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[n]);
        }
    }
    hsums(&acc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q5_1<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let mut summs = [_mm_setzero_ps(); N];
    let b4 = _mm256_set1_epi8(0x10);
    let wblk = &w.as_chunks::<Q5_1_BYTES>().0[..nb];
    let xblk = blocks::<Q8_1_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let dm = le_u32(wb, 0);
        let hb = bytes_from_bits(le_u32(wb, 4));
        let qx = _mm256_or_si256(nibbles(&wb[8..]), _mm256_and_si256(hb, b4));
        for n in 0..N {
            let xb = &xblk[n][b];
            let ds = h4_products(dm, le_u32(xb, 0));
            summs[n] = _mm_add_ps(summs[n], ds);
            let p = dot_u8(qx, ld256(&xb[4..]));
            acc[n] = _mm256_fmadd_ps(_mm256_broadcastss_ps(ds), _mm256_cvtepi32_ps(p), acc[n]);
        }
    }
    finish_with_mins(&acc, &summs)
}

/// `hsum(acc[n]) + summs[n][1]`: the Q4_1/Q5_1 result, with the `Σ m·s` term kept in lane 1.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn finish_with_mins<const N: usize>(acc: &[__m256; N], summs: &[__m128; N]) -> [f32; N] {
    let mut r = hsums(acc);
    for n in 0..N {
        r[n] += _mm_cvtss_f32(_mm_movehdup_ps(summs[n]));
    }
    r
}

// ---------------------------------------------------------------- K formats

// Q4_K and Q5_K follow the operation order of llama.cpp's AVX2 code (same integer lane
// groupings, same f32 products and sums), so on equal inputs their results should be equal to
// the bit.

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K/Q5_K block as i16 lanes
/// (`0..8` scales, `8..16` mins), unpacked four at a time in integer registers.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_scales_mins_i16(s: &[u8]) -> __m256i {
    let (a0, a1, a2) = (le_u32(s, 0), le_u32(s, 4), le_u32(s, 8));
    let sc_lo = a0 & 0x3f3f_3f3f;
    let mn_lo = a1 & 0x3f3f_3f3f;
    let sc_hi = (a2 & 0x0f0f_0f0f) | (((a0 >> 6) & 0x0303_0303) << 4);
    let mn_hi = ((a2 >> 4) & 0x0f0f_0f0f) | (((a1 >> 6) & 0x0303_0303) << 4);
    let lo = u64::from(sc_lo) | (u64::from(sc_hi) << 32);
    let hi = u64::from(mn_lo) | (u64::from(mn_hi) << 32);
    _mm256_cvtepu8_epi16(_mm_set_epi64x(hi as i64, lo as i64))
}

/// i16 lane `k` (of the low eight) of `v` in all sixteen lanes; `v` holds the same eight lanes
/// in both halves.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn splat_i16(v: __m256i, k: usize) -> __m256i {
    let pair = (((2 * k + 1) << 8) | (2 * k)) as i16;
    _mm256_shuffle_epi8(v, _mm256_set1_epi16(pair))
}

/// `Σ min · bsum` of a Q8_K block in four i32 lanes, lane `k` covering sub-blocks `2k` and
/// `2k + 1` (each sub-block's sum is two adjacent `bsums`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mins_dot(mins: __m128i, xb: &[u8]) -> __m128i {
    let bs = ld256(&xb[Q8_K_BSUMS..]);
    let sub = _mm_hadd_epi16(
        _mm256_castsi256_si128(bs),
        _mm256_extracti128_si256::<1>(bs),
    );
    _mm_madd_epi16(mins, sub)
}

/// `[d · dx, -(dmin · dx)]` (lanes 0 and 1) for a block's `(d, dmin)` f16 pair.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_scales(dm: u32, dx: f32) -> __m128 {
    // One F16C conversion from a full-register move (see `h2_mul`).
    let v = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(dm as i32)), _mm_set1_ps(dx));
    _mm_xor_ps(v, _mm_setr_ps(0.0, -0.0, 0.0, 0.0))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps128(v: __m128) -> f32 {
    let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q4_k<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let mut acc_m = [_mm_setzero_ps(); N];
    let m4 = _mm256_set1_epi8(0x0f);
    let wblk = &w.as_chunks::<Q4_K_BYTES>().0[..nb];
    let xblk = blocks::<Q8_K_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let sm = k4_scales_mins_i16(&wb[4..16]);
        let scales = _mm256_permute2x128_si256::<0x00>(sm, sm);
        let mut sumi = [_mm256_setzero_si256(); N];
        for j in 0..4 {
            let q = ld256(&wb[16 + 32 * j..]);
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            let s_lo = splat_i16(scales, 2 * j);
            let s_hi = splat_i16(scales, 2 * j + 1);
            for n in 0..N {
                let y = &xblk[n][b][Q8_K_QS + 64 * j..][..64];
                let p_lo = _mm256_madd_epi16(s_lo, _mm256_maddubs_epi16(lo, ld256(y)));
                let p_hi = _mm256_madd_epi16(s_hi, _mm256_maddubs_epi16(hi, ld256(&y[32..])));
                sumi[n] = _mm256_add_epi32(sumi[n], _mm256_add_epi32(p_lo, p_hi));
            }
        }
        let mins = _mm256_extracti128_si256::<1>(sm);
        let dm = le_u32(wb, 0);
        for n in 0..N {
            let xb = &xblk[n][b];
            let dd = k4_scales(dm, le_f32(xb, 0));
            let pm = _mm_cvtepi32_ps(mins_dot(mins, xb));
            acc_m[n] = _mm_fmadd_ps(_mm_permute_ps::<0b01_01_01_01>(dd), pm, acc_m[n]);
            let d = _mm256_broadcastss_ps(dd);
            acc[n] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi[n]), acc[n]);
        }
    }
    let mut r = [0.0f32; N];
    for n in 0..N {
        r[n] = hsum_ps(acc[n]) + hsum_ps128(acc_m[n]);
    }
    r
}

/// 0x10 in the bytes of `hb` that have bit `mask` set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fifth_bit(hb: __m256i, mask: __m256i) -> __m256i {
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(hb, mask), mask);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q5_k<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let m4 = _mm256_set1_epi8(0x0f);
    let mut summs = [0.0f32; N];
    let wblk = &w.as_chunks::<Q5_K_BYTES>().0[..nb];
    let xblk = blocks::<Q8_K_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let sm = k4_scales_mins_i16(&wb[4..16]);
        let scales = _mm256_permute2x128_si256::<0x00>(sm, sm);
        let hb = ld256(&wb[16..48]);
        let mut sumi = [_mm256_setzero_si256(); N];
        for j in 0..4 {
            let q = ld256(&wb[48 + 32 * j..]);
            let bit_lo = _mm256_set1_epi8((1u8 << (2 * j)) as i8);
            let bit_hi = _mm256_set1_epi8((1u8 << (2 * j + 1)) as i8);
            let lo = _mm256_or_si256(_mm256_and_si256(q, m4), fifth_bit(hb, bit_lo));
            let hi = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4),
                fifth_bit(hb, bit_hi),
            );
            let s_lo = splat_i16(scales, 2 * j);
            let s_hi = splat_i16(scales, 2 * j + 1);
            for n in 0..N {
                let y = &xblk[n][b][Q8_K_QS + 64 * j..][..64];
                let p_lo = _mm256_madd_epi16(s_lo, _mm256_maddubs_epi16(lo, ld256(y)));
                let p_hi = _mm256_madd_epi16(s_hi, _mm256_maddubs_epi16(hi, ld256(&y[32..])));
                sumi[n] = _mm256_add_epi32(sumi[n], _mm256_add_epi32(p_lo, p_hi));
            }
        }
        let mins = _mm256_extracti128_si256::<1>(sm);
        let dm = le_u32(wb, 0);
        for n in 0..N {
            let xb = &xblk[n][b];
            let dd = k4_scales(dm, le_f32(xb, 0));
            summs[n] +=
                _mm_cvtss_f32(_mm_movehdup_ps(dd)) * hsum_epi32_4(mins_dot(mins, xb)) as f32;
            let d = _mm256_broadcastss_ps(dd);
            acc[n] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi[n]), acc[n]);
        }
    }
    let mut r = hsums(&acc);
    for n in 0..N {
        r[n] += summs[n];
    }
    r
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q6_k<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let m4 = _mm256_set1_epi8(0x0f);
    let m3 = _mm256_set1_epi8(0x03);
    let wblk = &w.as_chunks::<Q6_K_BYTES>().0[..nb];
    let xblk = blocks::<Q8_K_BYTES, N>(&xs, nb);
    for b in 0..nb {
        let wb = &wblk[b];
        let sc8 = ld128(&wb[Q6_K_SCALES..]);
        let mut sumi = [_mm256_setzero_si256(); N];
        for h in 0..2 {
            let ql0 = ld256(&wb[64 * h..]);
            let ql1 = ld256(&wb[64 * h + 32..]);
            let qh = ld256(&wb[Q6_K_QH + 32 * h..]);
            // The unsigned 6-bit quants (0..64) of elements 128h + 32k .. + 32: the low four
            // bits from `ql`, the top two from `qh` moved to bits 4 and 5.
            let top = [
                _mm256_slli_epi16::<4>(_mm256_and_si256(qh, m3)),
                _mm256_slli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c))),
                _mm256_and_si256(qh, _mm256_set1_epi8(0x30)),
                _mm256_srli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0xc0u8 as i8))),
            ];
            let q = [
                _mm256_or_si256(_mm256_and_si256(ql0, m4), top[0]),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), top[1]),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4), top[2]),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4), top[3]),
            ];
            for (k, q) in q.into_iter().enumerate() {
                // [scale s ×8, scale s+1 ×8] as i16, s = 8h + 2k.
                let s = (8 * h + 2 * k) as i8;
                let pick = _mm_add_epi8(
                    _mm_set1_epi8(s),
                    _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                );
                let sv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
                for n in 0..N {
                    let y = ld256(&xblk[n][b][Q8_K_QS + 128 * h + 32 * k..]);
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), sv);
                    sumi[n] = _mm256_add_epi32(sumi[n], p);
                }
            }
        }
        // The quants are stored +32: subtract 32 · Σ scale · bsum.
        let sc16 = _mm256_cvtepi8_epi16(sc8);
        let dw = h2_mul(le_u16(wb, Q6_K_D), 0x3c00); // × 1.0, for the full-register move
        for n in 0..N {
            let xb = &xblk[n][b];
            let corr = _mm256_madd_epi16(sc16, ld256(&xb[Q8_K_BSUMS..]));
            let s = _mm256_sub_epi32(sumi[n], _mm256_slli_epi32::<5>(corr));
            let d = _mm256_set1_ps(dw * le_f32(xb, 0));
            acc[n] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc[n]);
        }
    }
    hsums(&acc)
}

// ---------------------------------------------------------------- float weights

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_float<const N: usize>(wtype: QuantType, n_el: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let es = wtype.block_bytes();
    let full = n_el / 8 * 8;
    for i in (0..full).step_by(8) {
        let wv = match wtype {
            QuantType::F32 => ld_ps(&w[4 * i..]),
            QuantType::F16 => _mm256_cvtph_ps(ld128(&w[2 * i..])),
            _ => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(ld128(
                &w[2 * i..],
            )))),
        };
        for n in 0..N {
            acc[n] = _mm256_fmadd_ps(wv, ld_ps(&xs[n][4 * i..]), acc[n]);
        }
    }
    let mut r = hsums(&acc);
    for i in full..n_el {
        let wi = match wtype {
            QuantType::F32 => le_f32(w, 4 * i),
            QuantType::F16 => f16_to_f32(le_u16(w, es * i)),
            _ => bf16_to_f32(le_u16(w, es * i)),
        };
        for n in 0..N {
            r[n] += wi * le_f32(xs[n], 4 * i);
        }
    }
    r
}

// ---------------------------------------------------------------- quantisers

/// Quantises 32 floats into `q` (32 bytes) the x86 way; returns `(d, Σ q)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_block_q8(x: &[f32], q: &mut [u8]) -> (f32, i32) {
    let v = [
        ld_ps_f32(x),
        ld_ps_f32(&x[8..]),
        ld_ps_f32(&x[16..]),
        ld_ps_f32(&x[24..]),
    ];
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_andnot_ps(sign, v[0]);
    for v in &v[1..] {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *v));
    }
    let m4 = _mm_max_ps(_mm256_extractf128_ps::<1>(m), _mm256_castps256_ps128(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    let amax = _mm_cvtss_f32(m4);
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mul = _mm256_set1_ps(id);
    let mut i = [_mm256_setzero_si256(); 4];
    for k in 0..4 {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(v[k], mul),
        );
        i[k] = _mm256_cvtps_epi32(r);
    }
    let sum = hsum_epi32(_mm256_add_epi32(
        _mm256_add_epi32(i[0], i[1]),
        _mm256_add_epi32(i[2], i[3]),
    ));
    st256(q, pack_i32x32(i));
    (d, sum)
}

/// Packs 32 i32 (each in -128..=127) to 32 i8 in order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pack_i32x32(i: [__m256i; 4]) -> __m256i {
    let a = _mm256_packs_epi32(i[0], i[1]);
    let b = _mm256_packs_epi32(i[2], i[3]);
    let p = _mm256_packs_epi16(a, b);
    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_block_q8_k(x: &[f32], b: &mut [u8]) {
    let x = &x[..QK_K];
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for k in 0..QK_K / 8 {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, ld_ps_f32(&x[8 * k..])));
    }
    let m4 = _mm_max_ps(_mm256_extractf128_ps::<1>(m), _mm256_castps256_ps128(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    let amax = _mm_cvtss_f32(m4);
    if amax == 0.0 {
        b[..Q8_K_BYTES].fill(0);
        return;
    }
    // The reference takes the first element of largest magnitude, with its sign.
    let max = x.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
    let iscale = -127.0 / max;
    let mul = _mm256_set1_ps(iscale);
    let top = _mm256_set1_epi32(127);
    for g in 0..QK_K / 32 {
        let mut i = [_mm256_setzero_si256(); 4];
        for k in 0..4 {
            let v = _mm256_mul_ps(mul, ld_ps_f32(&x[32 * g + 8 * k..]));
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            i[k] = _mm256_min_epi32(_mm256_cvtps_epi32(r), top);
        }
        let s0 = hsum_epi32(_mm256_add_epi32(i[0], i[1]));
        let s1 = hsum_epi32(_mm256_add_epi32(i[2], i[3]));
        let at = Q8_K_BSUMS + 4 * g;
        b[at..at + 2].copy_from_slice(&(s0 as i16).to_le_bytes());
        b[at + 2..at + 4].copy_from_slice(&(s1 as i16).to_le_bytes());
        st256(&mut b[Q8_K_QS + 32 * g..], pack_i32x32(i));
    }
    b[0..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
}
