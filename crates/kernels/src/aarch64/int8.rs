//! NEON `sdot` int8 micro-kernel: a 4 × 16 tile; signed × signed bytes, no correction needed.

use std::arch::aarch64::*;

use crate::quant::TILE_COLS;

/// # Safety
/// As [`crate::quant::I8Kernel`] on a CPU with NEON and the dot-product extension; `mr <= 4`,
/// `np == 1`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_sdot(
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
            1 => tile::<1>(k_groups, a, lda, b, out),
            2 => tile::<2>(k_groups, a, lda, b, out),
            3 => tile::<3>(k_groups, a, lda, b, out),
            _ => tile::<4>(k_groups, a, lda, b, out),
        }
    }
}

/// `acc[l] += Σ_t b[4l + t] · a[4l + t]` (the `sdot` instruction; its intrinsic is not yet
/// stable in Rust, so it is written as inline assembly).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(mut acc: int32x4_t, b: int8x16_t, a: int8x16_t) -> int32x4_t {
    // SAFETY: `sdot` only reads its vector registers and writes `acc`; the function's target
    // features guarantee the instruction exists.
    unsafe {
        std::arch::asm!(
            "sdot {acc:v}.4s, {b:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            b = in(vreg) b,
            a = in(vreg) a,
            options(pure, nomem, nostack),
        );
    }
    acc
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn tile<const MR: usize>(
    k_groups: usize,
    a: *const i8,
    lda: usize,
    b: *const i8,
    out: *mut i32,
) {
    let mut acc = [[vdupq_n_s32(0); 4]; MR];
    for g in 0..k_groups {
        // SAFETY: the caller guarantees k_groups 64-byte groups and MR rows of 4 * k_groups bytes.
        unsafe {
            let bp = b.add(g * 64);
            let bv = [
                vld1q_s8(bp),
                vld1q_s8(bp.add(16)),
                vld1q_s8(bp.add(32)),
                vld1q_s8(bp.add(48)),
            ];
            for (i, acc) in acc.iter_mut().enumerate() {
                let quad = a.add(i * lda + g * 4).cast::<i32>().read_unaligned();
                let av = vreinterpretq_s8_s32(vdupq_n_s32(quad));
                for q in 0..4 {
                    acc[q] = sdot(acc[q], bv[q], av);
                }
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (q, &v) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees MR × TILE_COLS writable values.
            unsafe { vst1q_s32(out.add(i * TILE_COLS + q * 4), v) };
        }
    }
}
