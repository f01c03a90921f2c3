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
    c: *mut f32,
    ldc: usize,
    mr: usize,
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller; each arm's tile height equals `mr`.
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
