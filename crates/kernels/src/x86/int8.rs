//! int8 micro-kernels and activation quantisation for x86-64.
//!
//! AVX2: a 4 × 16 tile; each 4-byte group of a row is broadcast, its absolute value multiplied
//! (`maddubs`, unsigned × signed) by the panel bytes carrying the row's signs (`sign_epi8`),
//! so no pair sum can saturate (see the `quant` module docs). AVX-512 VNNI: an 8 × 32 tile of
//! `vpdpbusd` on `a + 128`, corrected by `128 · Σw` per column at the end.

use std::arch::x86_64::*;

use crate::gemm::PANEL;
use crate::quant::{TILE_COLS, dequant, quantize_value, row_scale};

/// The portable dequantisation compiled for AVX2 (eight lanes, bit-identical results).
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dequant_avx2(values: &mut [f32], dots: &[i32], sa: f32, sw: &[f32]) {
    dequant(values, dots, sa, sw);
}

/// # Safety
/// As [`crate::quant::I8Kernel`] on a CPU with AVX2; `mr <= 4`, `np == 1`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_avx2(
    k_groups: usize,
    a: *const i8,
    lda: usize,
    b: *const i8,
    _bstride: usize,
    _sums: *const i32,
    out: *mut i32,
    mr: usize,
    _np: usize,
) {
    // SAFETY: forwarded from the caller; each arm's tile height equals `mr`.
    unsafe {
        match mr {
            1 => tile_avx2::<1>(k_groups, a, lda, b, out),
            2 => tile_avx2::<2>(k_groups, a, lda, b, out),
            3 => tile_avx2::<3>(k_groups, a, lda, b, out),
            _ => tile_avx2::<4>(k_groups, a, lda, b, out),
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn tile_avx2<const MR: usize>(
    k_groups: usize,
    a: *const i8,
    lda: usize,
    b: *const i8,
    out: *mut i32,
) {
    let ones = _mm256_set1_epi16(1);
    let mut c0 = [_mm256_setzero_si256(); MR];
    let mut c1 = [_mm256_setzero_si256(); MR];
    for g in 0..k_groups {
        // SAFETY: the caller guarantees k_groups aligned 64-byte groups and MR rows of
        // 4 * k_groups bytes.
        unsafe {
            let bp = b.add(g * 64);
            let b0 = _mm256_load_si256(bp.cast());
            let b1 = _mm256_load_si256(bp.add(32).cast());
            for i in 0..MR {
                let quad = a.add(i * lda + g * 4).cast::<i32>().read_unaligned();
                let av = _mm256_set1_epi32(quad);
                let abs = _mm256_sign_epi8(av, av);
                let p0 = _mm256_maddubs_epi16(abs, _mm256_sign_epi8(b0, av));
                let p1 = _mm256_maddubs_epi16(abs, _mm256_sign_epi8(b1, av));
                c0[i] = _mm256_add_epi32(c0[i], _mm256_madd_epi16(p0, ones));
                c1[i] = _mm256_add_epi32(c1[i], _mm256_madd_epi16(p1, ones));
            }
        }
    }
    for i in 0..MR {
        // SAFETY: the caller guarantees MR × TILE_COLS writable values.
        unsafe {
            let op = out.add(i * TILE_COLS);
            _mm256_storeu_si256(op.cast(), c0[i]);
            _mm256_storeu_si256(op.add(8).cast(), c1[i]);
        }
    }
}

/// # Safety
/// As [`crate::quant::I8Kernel`] on a CPU with AVX-512 F/BW and VNNI; `mr <= 8`, `np <= 2`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_vnni(
    k_groups: usize,
    a: *const i8,
    lda: usize,
    b: *const i8,
    bstride: usize,
    sums: *const i32,
    out: *mut i32,
    mr: usize,
    np: usize,
) {
    macro_rules! go {
        ($np:literal) => {
            match mr {
                1 => tile_vnni::<1, $np>(k_groups, a, lda, b, bstride, sums, out),
                2 => tile_vnni::<2, $np>(k_groups, a, lda, b, bstride, sums, out),
                3 => tile_vnni::<3, $np>(k_groups, a, lda, b, bstride, sums, out),
                4 => tile_vnni::<4, $np>(k_groups, a, lda, b, bstride, sums, out),
                5 => tile_vnni::<5, $np>(k_groups, a, lda, b, bstride, sums, out),
                6 => tile_vnni::<6, $np>(k_groups, a, lda, b, bstride, sums, out),
                7 => tile_vnni::<7, $np>(k_groups, a, lda, b, bstride, sums, out),
                _ => tile_vnni::<8, $np>(k_groups, a, lda, b, bstride, sums, out),
            }
        };
    }
    // SAFETY: forwarded from the caller; the tile shape equals (mr, np).
    unsafe { if np >= 2 { go!(2) } else { go!(1) } }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_vnni<const MR: usize, const NP: usize>(
    k_groups: usize,
    a: *const i8,
    lda: usize,
    b: *const i8,
    bstride: usize,
    sums: *const i32,
    out: *mut i32,
) {
    let bias = _mm512_set1_epi8(-128);
    let mut acc = [[_mm512_setzero_si512(); MR]; NP];
    for g in 0..k_groups {
        // SAFETY: the caller guarantees NP panels of k_groups aligned 64-byte groups at stride
        // bstride, and MR rows of 4 * k_groups bytes at stride lda.
        unsafe {
            let mut bv = [_mm512_setzero_si512(); NP];
            for (p, v) in bv.iter_mut().enumerate() {
                *v = _mm512_load_si512(b.add(p * bstride + g * 64).cast());
            }
            for i in 0..MR {
                let quad = a.add(i * lda + g * 4).cast::<i32>().read_unaligned();
                // a + 128 as unsigned bytes: flip the sign bit.
                let av = _mm512_xor_si512(_mm512_set1_epi32(quad), bias);
                for p in 0..NP {
                    acc[p][i] = _mm512_dpbusd_epi32(acc[p][i], av, bv[p]);
                }
            }
        }
    }
    for p in 0..NP {
        // SAFETY: the caller guarantees NP * 16 sums and MR × TILE_COLS writable values.
        unsafe {
            let corr = _mm512_slli_epi32::<7>(_mm512_loadu_si512(sums.add(p * PANEL).cast()));
            for i in 0..MR {
                let v = _mm512_sub_epi32(acc[p][i], corr);
                _mm512_storeu_si512(out.add(i * TILE_COLS + p * PANEL).cast(), v);
            }
        }
    }
}

/// Quantises one row with AVX2: bit-identical to [`crate::quant::quantize_row_scalar`].
///
/// # Safety
/// The CPU supports AVX2; `out.len() == x.len()`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn quantize_row_avx2(x: &[f32], out: &mut [i8]) -> f32 {
    let n = x.len();
    let chunks = n / 8;
    let sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut vmax = _mm256_setzero_ps();
    for c in 0..chunks {
        // SAFETY: c * 8 + 8 <= n.
        let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(c * 8)) };
        vmax = _mm256_max_ps(vmax, _mm256_and_ps(v, sign_mask));
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), vmax) };
    let mut absmax = lanes.iter().fold(0f32, |m, &v| m.max(v));
    for &v in &x[chunks * 8..] {
        absmax = absmax.max(v.abs());
    }
    let (scale, inv) = row_scale(absmax);
    let vinv = _mm256_set1_ps(inv);
    let lo = _mm256_set1_ps(-127.0);
    let hi = _mm256_set1_ps(127.0);
    let codes = |v: __m256| -> __m256i {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(v, vinv),
        );
        _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi))
    };
    // 32 values at a time: four conversions packed to bytes (packs work within 128-bit lanes,
    // so a final permutation restores the order).
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let mut c = 0;
    while c + 32 <= n {
        // SAFETY: c + 32 <= n for both x and out.
        unsafe {
            let p = x.as_ptr().add(c);
            let q0 = codes(_mm256_loadu_ps(p));
            let q1 = codes(_mm256_loadu_ps(p.add(8)));
            let q2 = codes(_mm256_loadu_ps(p.add(16)));
            let q3 = codes(_mm256_loadu_ps(p.add(24)));
            let w01 = _mm256_packs_epi32(q0, q1);
            let w23 = _mm256_packs_epi32(q2, q3);
            let b = _mm256_packs_epi16(w01, w23);
            let b = _mm256_permutevar8x32_epi32(b, order);
            _mm256_storeu_si256(out.as_mut_ptr().add(c).cast(), b);
        }
        c += 32;
    }
    for (o, &v) in out[c..].iter_mut().zip(&x[c..]) {
        *o = quantize_value(v, inv);
    }
    scale
}
