//! NEON f32 micro-kernel: a 6 × 16 tile (24 accumulators, four panel vectors, one broadcast).

use std::arch::aarch64::*;

/// # Safety
/// As [`crate::gemm::F32Kernel`] on a CPU with NEON; `mr <= 6`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_neon(
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

#[target_feature(enable = "neon")]
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
    let mut acc = [[vdupq_n_f32(0.0); 4]; MR];
    for p in 0..kc {
        // SAFETY: the caller guarantees kc panel rows of 16 floats and MR rows of A.
        unsafe {
            let bp = b.add(p * ldb);
            let bv = [
                vld1q_f32(bp),
                vld1q_f32(bp.add(4)),
                vld1q_f32(bp.add(8)),
                vld1q_f32(bp.add(12)),
            ];
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = vdupq_n_f32(*a.add(i * lda + p));
                for q in 0..4 {
                    acc[q] = vfmaq_f32(acc[q], av, bv[q]);
                }
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (q, &v) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees MR rows of 16 writable floats at stride ldc.
            unsafe {
                let cp = c.add(i * ldc + q * 4);
                let v = if accumulate {
                    vaddq_f32(v, vld1q_f32(cp))
                } else {
                    v
                };
                vst1q_f32(cp, v);
            }
        }
    }
}
