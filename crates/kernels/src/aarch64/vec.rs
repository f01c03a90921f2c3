//! NEON vector kernels.

use std::arch::aarch64::*;

/// # Safety
/// NEON; `a.len() == b.len()`.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16 <= n for both slices.
            unsafe {
                *acc = vfmaq_f32(
                    *acc,
                    vld1q_f32(a.as_ptr().add(i + 4 * j)),
                    vld1q_f32(b.as_ptr().add(i + 4 * j)),
                );
            }
        }
        i += 16;
    }
    let s = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
    let mut total = vaddvq_f32(s);
    for j in i..n {
        total += a[j] * b[j];
    }
    total
}
