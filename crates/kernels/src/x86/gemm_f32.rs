//! AVX2 + FMA f32 micro-kernel: a 6 × 16 register tile (12 accumulators, two panel vectors and
//! one broadcast of `A`: 15 of the 16 ymm registers).

use std::arch::x86_64::*;

/// # Safety
/// As [`crate::gemm::F32Kernel`], on a CPU with AVX2 and FMA; `mr <= 6`.
pub(crate) unsafe fn kernel_avx2(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    bstride: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    np: usize,
    accumulate: bool,
) {
    for t in 0..np {
        let (b, c) = (b.wrapping_add(t * bstride), c.wrapping_add(t * 16));
        // SAFETY: forwarded from the caller, one panel at a time; each arm's tile height
        // equals `mr`.
        unsafe {
            match mr {
                1 => tile::<1>(kc, a, lda, b, ldb, c, ldc, accumulate),
                2 => tile::<2>(kc, a, lda, b, ldb, c, ldc, accumulate),
                3 => tile::<3>(kc, a, lda, b, ldb, c, ldc, accumulate),
                4 => tile::<4>(kc, a, lda, b, ldb, c, ldc, accumulate),
                5 => tile::<5>(kc, a, lda, b, ldb, c, ldc, accumulate),
                _ => tile::<6>(kc, a, lda, b, ldb, c, ldc, accumulate),
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const MR: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let mut c0 = [_mm256_setzero_ps(); MR];
    let mut c1 = [_mm256_setzero_ps(); MR];
    let mut ap = a;
    let mut bp = b;
    for _ in 0..kc {
        // SAFETY: the caller guarantees kc rows of 16 floats at stride ldb and MR rows of A.
        unsafe {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for i in 0..MR {
                let ai = _mm256_broadcast_ss(&*ap.add(i * lda));
                c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
                c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
            }
            ap = ap.add(1);
            bp = bp.add(ldb);
        }
    }
    for i in 0..MR {
        // SAFETY: the caller guarantees MR rows of 16 writable floats at stride ldc.
        unsafe {
            let cp = c.add(i * ldc);
            if accumulate {
                c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(cp));
                c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(cp.add(8)));
            }
            _mm256_storeu_ps(cp, c0[i]);
            _mm256_storeu_ps(cp.add(8), c1[i]);
        }
    }
}

/// AVX-512F micro-kernel: up to 12 rows × 2 panels (24 zmm accumulators, two panel vectors
/// and one broadcast of `A`).
///
/// # Safety
/// As [`crate::gemm::F32Kernel`] on a CPU with AVX-512F; `mr <= 12`, `np <= 2`.
pub(crate) unsafe fn kernel_avx512(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    bstride: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    np: usize,
    accumulate: bool,
) {
    macro_rules! go {
        ($np:literal) => {
            match mr {
                1 => tile512::<1, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                2 => tile512::<2, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                3 => tile512::<3, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                4 => tile512::<4, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                5 => tile512::<5, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                6 => tile512::<6, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                7 => tile512::<7, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                8 => tile512::<8, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                9 => tile512::<9, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                10 => tile512::<10, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                11 => tile512::<11, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
                _ => tile512::<12, $np>(kc, a, lda, b, ldb, bstride, c, ldc, accumulate),
            }
        };
    }
    // SAFETY: forwarded from the caller; the tile shape equals (mr, np).
    unsafe { if np >= 2 { go!(2) } else { go!(1) } }
}

#[target_feature(enable = "avx512f")]
unsafe fn tile512<const MR: usize, const NP: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    bstride: usize,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); MR]; NP];
    let mut ap = a;
    let mut bp = b;
    for _ in 0..kc {
        // SAFETY: the caller guarantees kc rows of 16 floats at stride ldb in each of NP panels
        // (bstride apart) and MR rows of A.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); NP];
            for t in 0..NP {
                bv[t] = _mm512_loadu_ps(bp.add(t * bstride));
            }
            for i in 0..MR {
                let ai = _mm512_set1_ps(*ap.add(i * lda));
                for t in 0..NP {
                    acc[t][i] = _mm512_fmadd_ps(ai, bv[t], acc[t][i]);
                }
            }
            ap = ap.add(1);
            bp = bp.add(ldb);
        }
    }
    for t in 0..NP {
        for i in 0..MR {
            // SAFETY: the caller guarantees MR rows of 16·NP writable floats at stride ldc.
            unsafe {
                let cp = c.add(i * ldc + t * 16);
                let v = if accumulate {
                    _mm512_add_ps(acc[t][i], _mm512_loadu_ps(cp))
                } else {
                    acc[t][i]
                };
                _mm512_storeu_ps(cp, v);
            }
        }
    }
}
