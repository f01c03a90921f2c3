//! NEON kernels (aarch64): the Q4_0 · Q8_0, Q8_0 · Q8_0 and Q4_K · Q8_K dot products.
//! Other weight types, and all activation quantisers, use the scalar code on aarch64.
//!
//! **Tested only under emulation**: the test suite passes under `qemu-aarch64` (user mode,
//! cross-compiled with `--target aarch64-unknown-linux-gnu`), which checks the results but
//! says nothing about speed; these kernels have not been run or timed on aarch64 hardware.
//! They use widening multiplies (`smull`/`sadalp`), not the `sdot` instruction of the
//! dot-product extension, whose intrinsic is not stable in Rust.
//!
//! Soundness: the `#[target_feature]` functions are only reachable through a [`Token`], which
//! exists only after run-time detection of NEON.
#![allow(unsafe_code)]

use std::arch::aarch64::*;

use super::QuantType;
use super::blocks::*;

/// Proof that this CPU has NEON.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token(());

impl Token {
    pub(super) fn get() -> Option<Token> {
        if super::QuantIsa::Neon.is_available() {
            Some(Token(()))
        } else {
            None
        }
    }
}

/// `N` dots of one weight row with `N` activation rows, or `None` for a type without a NEON
/// kernel (the caller then uses the scalar code).
pub(super) fn dot_rows<const N: usize>(
    _t: Token,
    wtype: QuantType,
    nb: usize,
    w: &[u8],
    xs: [&[u8]; N],
) -> Option<[f32; N]> {
    // SAFETY: a `Token` exists only when NEON was detected at run time, which is all the
    // `#[target_feature]` functions below require; they read memory only through
    // bounds-checked slices.
    unsafe {
        match wtype {
            QuantType::Q4_0 => Some(dot_q4_0::<N>(nb, w, xs)),
            QuantType::Q8_0 => Some(dot_q8_0::<N>(nb, w, xs)),
            QuantType::Q4_K => Some(dot_q4_k::<N>(nb, w, xs)),
            _ => None,
        }
    }
}

#[inline]
#[target_feature(enable = "neon")]
fn ld_s8(s: &[u8]) -> int8x16_t {
    let s = &s[..16];
    // SAFETY: `s` has 16 readable bytes; `vld1q` has no alignment requirement.
    unsafe { vld1q_s8(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "neon")]
fn ld_u8(s: &[u8]) -> uint8x16_t {
    let s = &s[..16];
    // SAFETY: `s` has 16 readable bytes; `vld1q` has no alignment requirement.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// `acc + pairwise sums of a·b` (sixteen i8 products folded into four i32 lanes).
#[inline]
#[target_feature(enable = "neon")]
fn dot_acc(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    let hi = vmull_high_s8(a, b);
    vpadalq_s16(vpadalq_s16(acc, lo), hi)
}

#[target_feature(enable = "neon")]
fn dot_q4_0<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [vdupq_n_f32(0.0); N];
    let m4 = vdupq_n_u8(0x0f);
    let off = vdupq_n_s8(8);
    for b in 0..nb {
        let wb = &w[b * Q4_0_BYTES..][..Q4_0_BYTES];
        let dw = le_f16(wb, 0);
        let q = ld_u8(&wb[2..]);
        let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), off);
        let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)), off);
        for n in 0..N {
            let xb = &xs[n][b * Q8_0_BYTES..][..Q8_0_BYTES];
            let s = dot_acc(
                dot_acc(vdupq_n_s32(0), lo, ld_s8(&xb[2..])),
                hi,
                ld_s8(&xb[18..]),
            );
            acc[n] = vfmaq_n_f32(acc[n], vcvtq_f32_s32(s), dw * le_f16(xb, 0));
        }
    }
    let mut r = [0.0f32; N];
    for n in 0..N {
        r[n] = vaddvq_f32(acc[n]);
    }
    r
}

#[target_feature(enable = "neon")]
fn dot_q8_0<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut acc = [vdupq_n_f32(0.0); N];
    for b in 0..nb {
        let wb = &w[b * Q8_0_BYTES..][..Q8_0_BYTES];
        let dw = le_f16(wb, 0);
        let q0 = ld_s8(&wb[2..]);
        let q1 = ld_s8(&wb[18..]);
        for n in 0..N {
            let xb = &xs[n][b * Q8_0_BYTES..][..Q8_0_BYTES];
            let s = dot_acc(
                dot_acc(vdupq_n_s32(0), q0, ld_s8(&xb[2..])),
                q1,
                ld_s8(&xb[18..]),
            );
            acc[n] = vfmaq_n_f32(acc[n], vcvtq_f32_s32(s), dw * le_f16(xb, 0));
        }
    }
    let mut r = [0.0f32; N];
    for n in 0..N {
        r[n] = vaddvq_f32(acc[n]);
    }
    r
}

#[target_feature(enable = "neon")]
fn dot_q4_k<const N: usize>(nb: usize, w: &[u8], xs: [&[u8]; N]) -> [f32; N] {
    let mut r = [0.0f32; N];
    let m4 = vdupq_n_u8(0x0f);
    for b in 0..nb {
        let wb = &w[b * Q4_K_BYTES..][..Q4_K_BYTES];
        let (sc, mn) = k4_scales_mins(&wb[4..16]);
        let d = le_f16(wb, 0);
        let dmin = le_f16(wb, 2);
        let mut sumi = [0i32; N];
        for j in 0..4 {
            let q0 = ld_u8(&wb[16 + 32 * j..]);
            let q1 = ld_u8(&wb[16 + 32 * j + 16..]);
            let lo0 = vreinterpretq_s8_u8(vandq_u8(q0, m4));
            let lo1 = vreinterpretq_s8_u8(vandq_u8(q1, m4));
            let hi0 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q0));
            let hi1 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q1));
            for n in 0..N {
                let y = &xs[n][b * Q8_K_BYTES + Q8_K_QS + 64 * j..][..64];
                let s_lo = dot_acc(dot_acc(vdupq_n_s32(0), lo0, ld_s8(y)), lo1, ld_s8(&y[16..]));
                let s_hi = dot_acc(
                    dot_acc(vdupq_n_s32(0), hi0, ld_s8(&y[32..])),
                    hi1,
                    ld_s8(&y[48..]),
                );
                sumi[n] += vaddvq_s32(s_lo) * i32::from(sc[2 * j])
                    + vaddvq_s32(s_hi) * i32::from(sc[2 * j + 1]);
            }
        }
        for n in 0..N {
            let xb = &xs[n][b * Q8_K_BYTES..][..Q8_K_BYTES];
            let summ: i32 = (0..16)
                .map(|k| i32::from(le_i16(xb, Q8_K_BSUMS + 2 * k)) * i32::from(mn[k / 2]))
                .sum();
            let dx = le_f32(xb, 0);
            r[n] += d * dx * sumi[n] as f32 - dmin * dx * summ as f32;
        }
    }
    r
}
