//! Byte layouts of ggml's quantised blocks, read as little-endian byte slices.
//!
//! Nothing here reinterprets memory: every multi-byte field is read with
//! `from_le_bytes`, so a block may sit at any address (GGUF tensor data is only
//! 32-byte aligned as a whole, and a row of 18-byte Q4_0 blocks puts most
//! blocks at odd addresses).
//!
//! | type | elements | bytes | fields, in order |
//! |---|---|---|---|
//! | Q4_0 | 32 | 18 | `d: f16`, `qs: [u8; 16]` (element `j` low nibble, `j + 16` high nibble; value `q - 8`) |
//! | Q4_1 | 32 | 20 | `d: f16`, `m: f16`, `qs: [u8; 16]` (value `q·d + m`) |
//! | Q5_0 | 32 | 22 | `d: f16`, `qh: u32` (fifth bit of element `j` is bit `j`), `qs: [u8; 16]` (value `q - 16`) |
//! | Q5_1 | 32 | 24 | `d: f16`, `m: f16`, `qh: u32`, `qs: [u8; 16]` |
//! | Q8_0 | 32 | 34 | `d: f16`, `qs: [i8; 32]` |
//! | Q8_1 | 32 | 36 | `d: f16`, `s: f16` (= `d · Σ qs`), `qs: [i8; 32]` |
//! | Q4_K | 256 | 144 | `d: f16`, `dmin: f16`, `scales: [u8; 12]` (eight 6-bit scales and mins), `qs: [u8; 128]` |
//! | Q5_K | 256 | 176 | `d`, `dmin`, `scales: [u8; 12]`, `qh: [u8; 32]`, `qs: [u8; 128]` |
//! | Q6_K | 256 | 210 | `ql: [u8; 128]`, `qh: [u8; 64]`, `scales: [i8; 16]`, `d: f16` |
//! | Q8_K | 256 | 292 | `d: f32`, `qs: [i8; 256]`, `bsums: [i16; 16]` (sums of 16 quants) |

/// Elements in one block of the 32-element formats.
pub const QK: usize = 32;
/// Elements in one super-block of the K formats.
pub const QK_K: usize = 256;

/// Bytes of one Q4_0 block.
pub const Q4_0_BYTES: usize = 18;
/// Bytes of one Q4_1 block.
pub const Q4_1_BYTES: usize = 20;
/// Bytes of one Q5_0 block.
pub const Q5_0_BYTES: usize = 22;
/// Bytes of one Q5_1 block.
pub const Q5_1_BYTES: usize = 24;
/// Bytes of one Q8_0 block.
pub const Q8_0_BYTES: usize = 34;
/// Bytes of one Q8_1 block.
pub const Q8_1_BYTES: usize = 36;
/// Bytes of one Q4_K super-block.
pub const Q4_K_BYTES: usize = 144;
/// Bytes of one Q5_K super-block.
pub const Q5_K_BYTES: usize = 176;
/// Bytes of one Q6_K super-block.
pub const Q6_K_BYTES: usize = 210;
/// Bytes of one Q8_K super-block.
pub const Q8_K_BYTES: usize = 292;

/// Offset of the quants inside a Q8_K block.
pub const Q8_K_QS: usize = 4;
/// Offset of the sixteen `i16` sums inside a Q8_K block.
pub const Q8_K_BSUMS: usize = 260;

/// Offset of the high bits inside a Q6_K block.
pub const Q6_K_QH: usize = 128;
/// Offset of the sixteen `i8` scales inside a Q6_K block.
pub const Q6_K_SCALES: usize = 192;
/// Offset of the f16 scale inside a Q6_K block.
pub const Q6_K_D: usize = 208;

/// Reads a little-endian `u16` at `at`.
#[inline(always)]
pub fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads a little-endian `u32` at `at`.
#[inline(always)]
pub fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a little-endian `f32` at `at`.
#[inline(always)]
pub fn le_f32(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a little-endian `i16` at `at`.
#[inline(always)]
pub fn le_i16(b: &[u8], at: usize) -> i16 {
    i16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads an IEEE half at `at` and widens it to `f32`.
#[inline(always)]
pub fn le_f16(b: &[u8], at: usize) -> f32 {
    f16_to_f32(le_u16(b, at))
}

/// IEEE 754 binary16 → binary32, exact for every input (subnormals, infinities, NaN payloads).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    if exp == 0 {
        // Zero or subnormal: man · 2^-24, exact in f32.
        let v = man as f32 * (1.0 / 16_777_216.0);
        return if sign != 0 { -v } else { v };
    }
    let bits = if exp == 0x1f {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

/// IEEE 754 binary32 → binary16 with round-to-nearest-even (what F16C's `vcvtps2ph` with
/// rounding mode 0 and ggml's software conversion produce). Overflow gives infinity; NaN
/// stays NaN.
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        let nan = if man != 0 {
            0x200 | (man >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan;
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal half: r = m · 2^(exp - 126), rounded to nearest even.
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let mut r = m >> shift;
        let rem = m & ((1u32 << shift) - 1);
        if rem > half || (rem == half && (r & 1) == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1) {
        // A carry out of the mantissa correctly bumps the exponent (up to infinity).
        r += 1;
    }
    sign | r as u16
}

/// bfloat16 → f32 (exact).
#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K/Q5_K block, from its 12 scale
/// bytes (ggml's `get_scale_min_k4` for `j` in `0..8`).
#[inline]
pub fn k4_scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
    }
    for j in 4..8 {
        sc[j] = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    (sc, mn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_every_non_nan_half() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f32_to_f16(f) & 0x7c00 == 0x7c00 && f32_to_f16(f) & 0x3ff != 0);
                continue;
            }
            assert_eq!(f32_to_f16(f), h, "half {h:#06x} -> {f}");
        }
    }

    #[test]
    fn f32_to_f16_rounds_to_nearest_even() {
        // Every midpoint between two consecutive finite halves rounds to the even one, and a
        // hair either side rounds to the nearer one.
        for h in 0u16..0x7bff {
            let lo = f64::from(f16_to_f32(h));
            let hi = f64::from(f16_to_f32(h + 1));
            let mid = ((lo + hi) / 2.0) as f32;
            assert_eq!(f64::from(mid), (lo + hi) / 2.0, "midpoint exact in f32");
            let even = if h & 1 == 0 { h } else { h + 1 };
            assert_eq!(f32_to_f16(mid), even, "midpoint after {h:#06x}");
            assert_eq!(f32_to_f16(-mid), even | 0x8000);
            let below = f32::from_bits(mid.to_bits() - 1);
            let above = f32::from_bits(mid.to_bits() + 1);
            if below > 0.0 {
                assert_eq!(f32_to_f16(below), h, "just below midpoint after {h:#06x}");
            }
            assert_eq!(
                f32_to_f16(above),
                h + 1,
                "just above midpoint after {h:#06x}"
            );
        }
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "overflow rounds to infinity");
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(1e-10), 0);
    }

    #[test]
    fn k4_scale_unpacking_matches_the_bit_layout() {
        // Scales 0..4 and mins 0..4 sit in the low 6 bits of bytes 0..8; scales/mins 4..8 put
        // their low 4 bits in bytes 8..12 and their top 2 bits in the top of bytes 0..8.
        let want_sc = [1u8, 62, 33, 7, 45, 18, 63, 0];
        let want_mn = [5u8, 0, 63, 40, 9, 50, 31, 2];
        let mut s = [0u8; 12];
        for j in 0..4 {
            s[j] = want_sc[j] | ((want_sc[j + 4] >> 4) << 6);
            s[j + 4] = want_mn[j] | ((want_mn[j + 4] >> 4) << 6);
            s[j + 8] = (want_sc[j + 4] & 15) | ((want_mn[j + 4] & 15) << 4);
        }
        assert_eq!(k4_scales_mins(&s), (want_sc, want_mn));
    }
}
