//! Tests of the quant module: layouts, reference quantisers, every SIMD path against the
//! scalar reference, and the matrix products against a dequantise-then-dot reference.

use super::blocks::*;
use super::*;

/// SplitMix64: a tiny seeded generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal, unit variance (sum of four uniforms).
    fn normal(&mut self) -> f32 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.732
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    /// Activations like a transformer's: mostly small, a few large outliers, scale varying
    /// from block to block, and the odd exact zero block.
    fn activations(&mut self, n: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n);
        let mut scale = 1.0;
        for i in 0..n {
            if i % 32 == 0 {
                scale = 0.01 + 4.0 * self.unit();
            }
            let mut x = self.normal() * scale;
            if self.below(97) == 0 {
                x *= 20.0;
            }
            v.push(x);
        }
        if n >= 64 && self.below(4) == 0 {
            let b = 32 * self.below(n / 32);
            v[b..b + 32].fill(0.0);
        }
        v
    }
}

/// A random weight row of `nb` blocks: random quant bits with finite, sensible scales.
fn random_weights(rng: &mut Rng, t: QuantType, nb: usize) -> Vec<u8> {
    let bb = t.block_bytes();
    let mut w = rng.bytes(nb * bb);
    let put_f16 = |w: &mut Vec<u8>, at: usize, v: f32| {
        w[at..at + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
    };
    for b in 0..nb {
        let o = b * bb;
        let d = (0.001 + 0.05 * rng.unit()) * if rng.below(2) == 0 { 1.0 } else { -1.0 };
        let m = -0.2 * rng.unit();
        match t {
            QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => put_f16(&mut w, o, d),
            QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4_K | QuantType::Q5_K => {
                put_f16(&mut w, o, d.abs());
                put_f16(&mut w, o + 2, m.abs());
            }
            QuantType::Q6_K => put_f16(&mut w, o + Q6_K_D, d),
            QuantType::F16 => put_f16(&mut w, o, rng.normal()),
            QuantType::BF16 => {
                let v = (rng.normal().to_bits() >> 16) as u16;
                w[o..o + 2].copy_from_slice(&v.to_le_bytes());
            }
            QuantType::F32 => w[o..o + 4].copy_from_slice(&rng.normal().to_le_bytes()),
            QuantType::Q8_1 | QuantType::Q8_K => unreachable!("not a weight type"),
        }
    }
    w
}

fn dequant(t: QuantType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut v = vec![0.0; n];
    dequantize_row(t, bytes, &mut v).unwrap();
    v
}

fn quant(t: QuantType, x: &[f32], isa: QuantIsa) -> Vec<u8> {
    let mut q = vec![0u8; t.row_bytes(x.len()).unwrap()];
    quantize_row(t, x, &mut q, isa).unwrap();
    q
}

/// (Σ w·x in f64, Σ |w·x| in f64) from dequantised rows.
fn naive_dot(w: &[f32], x: &[f32]) -> (f64, f64) {
    let mut s = 0.0f64;
    let mut a = 0.0f64;
    for (w, x) in w.iter().zip(x) {
        let p = f64::from(*w) * f64::from(*x);
        s += p;
        a += p.abs();
    }
    (s, a)
}

/// The exact value of a weight row (`t`, bytes `w`) times an activation row (`at`, bytes
/// `xq`) as the format defines it, in f64, with Σ|w·x| for tolerances. Q8_1 carries its block
/// sum `s` rounded to f16, and the Q4_1/Q5_1 dots use that `s` for the `m · Σx` term (as
/// ggml does), so the reference does too.
fn reference_dot(t: QuantType, w: &[u8], at: QuantType, xq: &[u8], n: usize) -> (f64, f64) {
    let (mut s, mag) = naive_dot(&dequant(t, w, n), &dequant(at, xq, n));
    if at == QuantType::Q8_1 {
        let bb = t.block_bytes();
        for b in 0..n / 32 {
            let m = f64::from(le_f16(w, b * bb + 2));
            let xb = &xq[b * Q8_1_BYTES..(b + 1) * Q8_1_BYTES];
            let sum: i32 = xb[4..].iter().map(|&v| i32::from(v as i8)).sum();
            let exact = f64::from(le_f16(xb, 0)) * f64::from(sum);
            s += m * (f64::from(le_f16(xb, 2)) - exact);
        }
    }
    (s, mag)
}

fn simd_isas() -> Vec<QuantIsa> {
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        assert!(
            QuantIsa::Avx2.is_available(),
            "these tests expect an AVX2+FMA+F16C machine on x86-64"
        );
        v.push(QuantIsa::Avx2);
    }
    if QuantIsa::Neon.is_available() {
        v.push(QuantIsa::Neon);
    }
    v
}

const BLOCK_COUNTS: [usize; 6] = [1, 2, 3, 5, 8, 17];

// ---------------------------------------------------------------- layouts

#[test]
fn hand_built_blocks_dequantize_to_the_documented_values() {
    let one = f32_to_f16(1.0).to_le_bytes();
    let half = f32_to_f16(0.5).to_le_bytes();
    let two = f32_to_f16(2.0).to_le_bytes();

    // Q4_0: element j is the low nibble of qs[j], element j + 16 the high nibble, minus 8.
    let mut b = vec![0u8; 18];
    b[0..2].copy_from_slice(&two);
    b[2] = 0x1f; // element 0 = 15 - 8, element 16 = 1 - 8
    b[17] = 0x80; // element 15 = 0 - 8, element 31 = 8 - 8
    let y = dequant(QuantType::Q4_0, &b, 32);
    assert_eq!(
        (y[0], y[16], y[15], y[31], y[1]),
        (14.0, -14.0, -16.0, 0.0, -16.0)
    );

    // Q4_1: q·d + m.
    let mut b = vec![0u8; 20];
    b[0..2].copy_from_slice(&half);
    b[2..4].copy_from_slice(&one);
    b[4] = 0xf3;
    let y = dequant(QuantType::Q4_1, &b, 32);
    assert_eq!((y[0], y[16], y[1]), (2.5, 8.5, 1.0));

    // Q5_0: the fifth bit of element j is bit j of qh; value q - 16.
    let mut b = vec![0u8; 22];
    b[0..2].copy_from_slice(&one);
    b[2..6].copy_from_slice(&(1u32 | 1 << 17).to_le_bytes());
    b[6] = 0x21; // element 0: 1 | 16 = 17 → 1; element 16: 2 → -14
    b[7] = 0x21; // element 1: 1 → -15; element 17: 2 | 16 = 18 → 2
    let y = dequant(QuantType::Q5_0, &b, 32);
    assert_eq!((y[0], y[16], y[1], y[17]), (1.0, -14.0, -15.0, 2.0));

    // Q5_1: (q | h << 4)·d + m.
    let mut b = vec![0u8; 24];
    b[0..2].copy_from_slice(&one);
    b[2..4].copy_from_slice(&half);
    b[4..8].copy_from_slice(&(1u32 << 31).to_le_bytes());
    b[8 + 15] = 0xf0; // element 31: 15 | 16 = 31
    let y = dequant(QuantType::Q5_1, &b, 32);
    assert_eq!((y[31], y[15], y[0]), (31.5, 0.5, 0.5));

    // Q8_0 and Q8_1: signed bytes after the scale(s).
    let mut b = vec![0u8; 34];
    b[0..2].copy_from_slice(&half);
    b[2] = 0x81; // -127
    b[33] = 7;
    let y = dequant(QuantType::Q8_0, &b, 32);
    assert_eq!((y[0], y[31]), (-63.5, 3.5));
    let mut b = vec![0u8; 36];
    b[0..2].copy_from_slice(&two);
    b[4] = 0xff;
    let y = dequant(QuantType::Q8_1, &b, 32);
    assert_eq!(y[0], -2.0);

    // Q4_K: sub-block 2j uses the low nibbles of qs[32j..32j+32], 2j+1 the high nibbles;
    // value d·scale·q - dmin·min.
    let mut b = vec![0u8; 144];
    b[0..2].copy_from_slice(&one);
    b[2..4].copy_from_slice(&half);
    b[4 + 1] = 3; // scale 1 = 3
    b[4 + 5] = 4; // min 1 = 4
    b[4 + 10] = 0x25; // scale 6 = 5, min 6 = 2
    b[16 + 5] = 0x70; // element 32 + 5 (sub-block 1) = high nibble 7
    b[16 + 96 + 2] = 0x09; // element 192 + 2 (sub-block 6) = low nibble 9
    let y = dequant(QuantType::Q4_K, &b, 256);
    assert_eq!(y[37], 3.0 * 7.0 - 0.5 * 4.0);
    assert_eq!(y[32], -2.0);
    assert_eq!(y[194], 5.0 * 9.0 - 0.5 * 2.0);

    // Q5_K: the fifth bit of element 64j + l is bit 2j of qh[l], of 64j + 32 + l bit 2j + 1.
    let mut b = vec![0u8; 176];
    b[0..2].copy_from_slice(&one);
    b[4 + 3] = 1; // scale 3 = 1 (elements 96..128)
    b[16 + 4] = 1 << 3; // element 64 + 32 + 4 = 100 has its fifth bit
    b[48 + 32 + 4] = 0x20; // its high nibble = 2
    let y = dequant(QuantType::Q5_K, &b, 256);
    assert_eq!((y[100], y[101]), (18.0, 0.0));

    // Q6_K: ql, qh, scales, then d; value d·scale·(q - 32) with the scale per 16 elements.
    let mut b = vec![0u8; 210];
    b[Q6_K_D..].copy_from_slice(&half);
    b[Q6_K_SCALES + 6] = 0xfe; // scale 6 (elements 96..112) = -2
    b[32 + 1] = 0x50; // element 96 + 1: high nibble of ql[33] = 5
    b[Q6_K_QH + 1] = 0b10_00_00_00; // its two top bits (qh[1] >> 6) = 2 → q = 5 | 32 = 37
    let y = dequant(QuantType::Q6_K, &b, 256);
    assert_eq!(y[97], 0.5 * -2.0 * (37.0 - 32.0));

    // Q8_K: f32 d, i8 quants, i16 sums.
    let mut b = vec![0u8; 292];
    b[0..4].copy_from_slice(&0.25f32.to_le_bytes());
    b[4 + 255] = 0x80;
    let y = dequant(QuantType::Q8_K, &b, 256);
    assert_eq!(y[255], -32.0);

    // Floats.
    assert_eq!(dequant(QuantType::F16, &two, 1), [2.0]);
    assert_eq!(dequant(QuantType::BF16, &[0x80, 0x3f], 1), [1.0]);
    assert_eq!(dequant(QuantType::F32, &1.5f32.to_le_bytes(), 1), [1.5]);
}

#[test]
fn type_table_is_consistent() {
    for t in QuantType::ALL {
        assert_eq!(QuantType::from_ggml_id(t.ggml_id()), Some(t));
        assert_eq!(t.row_bytes(t.block_elems() * 3), Ok(3 * t.block_bytes()));
    }
    for t in QuantType::WEIGHTS {
        let a = t.activation_type().unwrap();
        assert!(a.is_activation(), "{t} pairs with {a}");
    }
    assert_eq!(QuantType::from_ggml_id(10), None, "Q2_K is not supported");
    assert!(matches!(
        QuantType::Q4_K.row_bytes(100),
        Err(QuantError::PartialBlock { .. })
    ));
}

// ---------------------------------------------------------------- activation quantisers

#[test]
fn reference_quantizers_round_trip_within_half_a_step() {
    let mut rng = Rng(1);
    for (t, be) in [
        (QuantType::Q8_0, 32),
        (QuantType::Q8_1, 32),
        (QuantType::Q8_K, 256),
    ] {
        for nb in BLOCK_COUNTS {
            let x = rng.activations(nb * be);
            let q = quant(t, &x, QuantIsa::Scalar);
            let y = dequant(t, &q, x.len());
            for b in 0..nb {
                let xb = &x[b * be..(b + 1) * be];
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let step = amax / 127.0;
                for j in 0..be {
                    let err = (y[b * be + j] - xb[j]).abs();
                    // Half a step, plus the f16 rounding of the scale (Q8_0/Q8_1) applied to
                    // a quant of up to 127.
                    let bound = 0.5 * step * 1.0001 + 127.0 * step * 2f32.powi(-11) + 1e-30;
                    assert!(
                        err <= bound,
                        "{t} block {b} element {j}: error {err} > {bound}"
                    );
                }
            }
            if t == QuantType::Q8_1 {
                for blk in q.chunks_exact(Q8_1_BYTES) {
                    let sum: i32 = blk[4..].iter().map(|&v| i32::from(v as i8)).sum();
                    let d = le_f16(blk, 0);
                    // `s` is computed from the unrounded d; check it is d·Σq to f16 precision.
                    let s = le_f16(blk, 2);
                    assert!((s - d * sum as f32).abs() <= (d * sum as f32).abs() * 2e-3 + 1e-6);
                }
            }
            if t == QuantType::Q8_K {
                for blk in q.chunks_exact(Q8_K_BYTES) {
                    for j in 0..16 {
                        let s: i32 = (0..16).map(|i| i32::from(blk[4 + 16 * j + i] as i8)).sum();
                        assert_eq!(i32::from(le_i16(blk, Q8_K_BSUMS + 2 * j)), s);
                    }
                }
            }
        }
    }
}

#[test]
fn reference_q8_0_rounds_half_away_from_zero_and_q8_k_half_to_even() {
    // amax = 127 gives d = 1 exactly, so the quants are the rounded inputs.
    let mut x = vec![0.0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 3.5;
    let q = quant(QuantType::Q8_0, &x, QuantIsa::Scalar);
    assert_eq!(le_f16(&q, 0), 1.0);
    assert_eq!(
        [q[3] as i8, q[4] as i8, q[5] as i8],
        [3, -3, 4],
        "roundf: half away from zero"
    );

    // Q8_K: the largest magnitude is negative (-127), so iscale = 1 and ties go to even.
    let mut x = vec![0.0f32; 256];
    x[0] = -127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 3.5;
    x[4] = 127.0; // same magnitude, later: the first one sets the sign
    let q = quant(QuantType::Q8_K, &x, QuantIsa::Scalar);
    assert_eq!(le_f32(&q, 0), 1.0);
    let qs: Vec<i8> = q[4..9].iter().map(|&v| v as i8).collect();
    assert_eq!(qs, [-127, 2, -2, 4, 127]);
    // Positive max: iscale = -1, d = -1, quants negated.
    x[0] = 127.0;
    let q = quant(QuantType::Q8_K, &x, QuantIsa::Scalar);
    assert_eq!(le_f32(&q, 0), -1.0);
    assert_eq!(q[4] as i8, -127);
    // All zero: everything zero.
    let q = quant(QuantType::Q8_K, &[0.0; 256], QuantIsa::Scalar);
    assert!(q.iter().all(|&b| b == 0));
}

#[test]
fn simd_q8_k_quantizer_equals_the_reference_bit_for_bit() {
    let mut rng = Rng(2);
    for isa in simd_isas() {
        for nb in BLOCK_COUNTS {
            let mut x = rng.activations(nb * 256);
            // Exact ties and a repeated extreme in the first block.
            x[0] = -127.0;
            x[1] = 2.5;
            x[2] = 127.0;
            x[3] = -0.5;
            assert_eq!(
                quant(QuantType::Q8_K, &x, isa),
                quant(QuantType::Q8_K, &x, QuantIsa::Scalar),
                "{isa:?}, {nb} blocks"
            );
        }
        let zeros = vec![0.0f32; 512];
        assert_eq!(
            quant(QuantType::Q8_K, &zeros, isa),
            quant(QuantType::Q8_K, &zeros, QuantIsa::Scalar)
        );
    }
}

/// llama.cpp's x86/ARM SIMD Q8_0 quantiser, written out in scalar code.
fn simd_style_q8(x: &[f32]) -> (f32, Vec<i8>) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    (
        amax / 127.0,
        x.iter().map(|v| (v * id).round_ties_even() as i8).collect(),
    )
}

#[test]
fn simd_q8_0_and_q8_1_quantizers_match_llama_cpp_x86_and_stay_within_one_of_the_reference() {
    let mut rng = Rng(3);
    for isa in simd_isas() {
        if isa == QuantIsa::Neon {
            continue; // NEON uses the scalar quantisers.
        }
        for nb in BLOCK_COUNTS {
            let mut x = rng.activations(nb * 32);
            for (j, v) in x[..32].iter_mut().enumerate() {
                *v = j as f32 * 3.0 - 50.25;
            }
            x[0] = 127.0;
            x[1] = 0.5; // tie: even (0) here, away from zero (1) in the reference
            let q0 = quant(QuantType::Q8_0, &x, isa);
            let q1 = quant(QuantType::Q8_1, &x, isa);
            let r0 = quant(QuantType::Q8_0, &x, QuantIsa::Scalar);
            for b in 0..nb {
                let (d, want) = simd_style_q8(&x[32 * b..32 * b + 32]);
                let got0: Vec<i8> = q0[34 * b + 2..34 * b + 34]
                    .iter()
                    .map(|&v| v as i8)
                    .collect();
                let got1: Vec<i8> = q1[36 * b + 4..36 * b + 36]
                    .iter()
                    .map(|&v| v as i8)
                    .collect();
                assert_eq!(got0, want, "Q8_0 block {b}");
                assert_eq!(got1, want, "Q8_1 block {b}");
                assert_eq!(le_u16(&q0, 34 * b), f32_to_f16(d));
                assert_eq!(le_u16(&q1, 36 * b), f32_to_f16(d));
                let sum: i32 = want.iter().map(|&v| i32::from(v)).sum();
                assert_eq!(le_u16(&q1, 36 * b + 2), f32_to_f16(d * sum as f32));
                for j in 0..32 {
                    let diff = (i32::from(q0[34 * b + 2 + j] as i8)
                        - i32::from(r0[34 * b + 2 + j] as i8))
                    .abs();
                    assert!(
                        diff <= 1,
                        "block {b} element {j} differs from the reference by {diff}"
                    );
                }
            }
            assert_eq!(q0[2] as i8, 127);
            assert_eq!(q0[3] as i8, 0);
            assert_eq!(r0[3] as i8, 1);
        }
    }
}

// ---------------------------------------------------------------- dot products

/// Checks the scalar dot of every weight type against f64 on the dequantised rows, and every
/// SIMD path against the scalar dot.
#[test]
fn every_dot_matches_the_dequantized_reference_and_simd_matches_scalar() {
    let mut rng = Rng(4);
    for t in QuantType::WEIGHTS {
        let at = t.activation_type().unwrap();
        for nb in BLOCK_COUNTS {
            let be = t.block_elems().max(32);
            let n = nb * be;
            let w = random_weights(&mut rng, t, n / t.block_elems());
            let x = rng.activations(n);
            let xq = quant(at, &x, QuantIsa::Scalar);
            let (want, mag) = reference_dot(t, &w, at, &xq, n);
            let got = vec_dot(t, at, n, &w, &xq, QuantIsa::Scalar).unwrap();
            assert!(
                (f64::from(got) - want).abs() <= 2e-6 * mag + 1e-6,
                "{t} scalar, {nb} blocks: {got} vs {want} (Σ|w·x| = {mag})"
            );
            for isa in simd_isas() {
                let s = vec_dot(t, at, n, &w, &xq, isa).unwrap();
                assert!(
                    (f64::from(s) - f64::from(got)).abs() <= 2e-6 * mag + 1e-6,
                    "{t} {isa:?}, {nb} blocks: {s} vs scalar {got} (Σ|w·x| = {mag})"
                );
            }
        }
    }
}

/// With power-of-two scales and integer activations every partial sum is an exactly
/// representable integer, so all paths must agree exactly: this checks the integer parts
/// (nibble/bit unpacking, scales, mins, the Q6_K offset) with no float slack.
#[test]
fn integer_parts_are_exact_on_every_path() {
    let mut rng = Rng(5);
    for t in QuantType::WEIGHTS {
        let at = t.activation_type().unwrap();
        for nb in [1usize, 3, 4] {
            let be = t.block_elems().max(32);
            let n = nb * be;
            let mut w = random_weights(&mut rng, t, n / t.block_elems());
            let bb = t.block_bytes();
            for b in 0..n / t.block_elems() {
                let o = b * bb;
                let put = |w: &mut Vec<u8>, at: usize, v: f32| {
                    w[at..at + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes())
                };
                match t {
                    QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => put(&mut w, o, 0.5),
                    QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4_K | QuantType::Q5_K => {
                        put(&mut w, o, 0.5);
                        put(&mut w, o + 2, 0.25);
                    }
                    QuantType::Q6_K => put(&mut w, o + Q6_K_D, 0.125),
                    QuantType::F16 => put(&mut w, o, (rng.below(64) as f32) - 32.0),
                    QuantType::BF16 => {
                        let v = (((rng.below(64) as f32) - 32.0).to_bits() >> 16) as u16;
                        w[o..o + 2].copy_from_slice(&v.to_le_bytes());
                    }
                    QuantType::F32 => {
                        w[o..o + 4].copy_from_slice(&((rng.below(64) as f32) - 32.0).to_le_bytes())
                    }
                    _ => unreachable!(),
                }
            }
            // Integer activations whose block maximum is -127: the quantisers then keep them
            // exactly (d = 1 for Q8_0/Q8_1/Q8_K).
            let mut x: Vec<f32> = (0..n).map(|_| rng.below(255) as f32 - 127.0).collect();
            for b in (0..n).step_by(32) {
                x[b] = -127.0;
            }
            let xq = quant(at, &x, QuantIsa::Scalar);
            let (want, _) = reference_dot(t, &w, at, &xq, n);
            let got = vec_dot(t, at, n, &w, &xq, QuantIsa::Scalar).unwrap();
            assert_eq!(f64::from(got), want, "{t} scalar, {nb} blocks");
            for isa in simd_isas() {
                assert_eq!(
                    vec_dot(t, at, n, &w, &xq, isa).unwrap(),
                    got,
                    "{t} {isa:?}, {nb} blocks"
                );
                // The SIMD quantisers keep these integers exactly too.
                assert_eq!(quant(at, &x, isa), xq, "{at} {isa:?} quantiser");
            }
        }
    }
}

#[test]
fn float_rows_of_odd_length_use_the_tail() {
    let mut rng = Rng(6);
    for t in [QuantType::F32, QuantType::F16, QuantType::BF16] {
        for n in [1usize, 7, 9, 33, 100] {
            let w = random_weights(&mut rng, t, n);
            let x = rng.activations(n);
            let xq = quant(QuantType::F32, &x, QuantIsa::Scalar);
            let (want, mag) = naive_dot(&dequant(t, &w, n), &x);
            for isa in [QuantIsa::Scalar].into_iter().chain(simd_isas()) {
                let got = vec_dot(t, QuantType::F32, n, &w, &xq, isa).unwrap();
                assert!(
                    (f64::from(got) - want).abs() <= 1e-6 * mag + 1e-6,
                    "{t} {isa:?} n={n}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- matrices

#[test]
fn matvec_and_matmul_match_per_row_dots_for_every_type_and_batch() {
    let mut rng = Rng(7);
    for t in QuantType::WEIGHTS {
        let at = t.activation_type().unwrap();
        for (rows, nb) in [(1usize, 1usize), (3, 2), (17, 3), (6, 8)] {
            let cols = nb * t.block_elems().max(32);
            let wbytes: Vec<u8> = (0..rows)
                .flat_map(|_| random_weights(&mut rng, t, cols / t.block_elems()))
                .collect();
            let w = QuantMatrix::new(t, rows, cols, &wbytes).unwrap();
            for batch in [1usize, 2, 3, 4, 5, 7, 9] {
                let x = rng.activations(batch * cols);
                for isa in [QuantIsa::Scalar].into_iter().chain(simd_isas()) {
                    let mut xq = QuantizedActivations::new(at, cols, 1).unwrap();
                    xq.quantize(&x, isa).unwrap();
                    assert_eq!(xq.rows(), batch);
                    // Reference: dequantise both sides, f64 dot.
                    let reference =
                        |tt: usize, r: usize| reference_dot(t, w.row(r), at, xq.row(tt), cols);
                    // A sub-range of rows into a wider output (ld_out > rows.len()).
                    let range = if rows > 2 { 1..rows - 1 } else { 0..rows };
                    let ld = range.len() + 3;
                    let mut out = vec![f32::NAN; (batch - 1) * ld + range.len()];
                    matmul(&w, &xq, range.clone(), &mut out, ld, isa).unwrap();
                    for tt in 0..batch {
                        for (i, r) in range.clone().enumerate() {
                            let got = out[tt * ld + i];
                            let (want, mag) = reference(tt, r);
                            assert!(
                                (f64::from(got) - want).abs() <= 2e-6 * mag + 1e-6,
                                "{t} {isa:?} matmul rows={rows} cols={cols} batch={batch} t={tt} r={r}: {got} vs {want}"
                            );
                            // The batched kernel equals the one-row kernel exactly: same
                            // per-row operation order.
                            let one = vec_dot(t, at, cols, w.row(r), xq.row(tt), isa).unwrap();
                            assert_eq!(got, one, "{t} {isa:?} batch={batch}: tile vs single row");
                        }
                    }
                    // The gaps between bands are untouched.
                    for tt in 0..batch.saturating_sub(1) {
                        for g in range.len()..ld {
                            assert!(out[tt * ld + g].is_nan());
                        }
                    }
                    // matvec on the first activation row, split in two ranges.
                    let mut mv = vec![0.0f32; rows];
                    let mid = rows / 2;
                    let (a, b) = mv.split_at_mut(mid);
                    matvec(&w, &xq, 0..mid, a, isa).unwrap();
                    matvec(&w, &xq, mid..rows, b, isa).unwrap();
                    for (r, got) in mv.iter().enumerate() {
                        let (want, mag) = reference(0, r);
                        assert!(
                            (f64::from(*got) - want).abs() <= 2e-6 * mag + 1e-6,
                            "{t} {isa:?} matvec r={r}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn products_reject_wrong_shapes_types_and_ranges() {
    let w_bytes = vec![0u8; 2 * Q4_0_BYTES * 2];
    let w = QuantMatrix::new(QuantType::Q4_0, 2, 64, &w_bytes).unwrap();
    assert!(matches!(
        QuantMatrix::new(QuantType::Q4_0, 3, 64, &w_bytes),
        Err(QuantError::Length { .. })
    ));
    assert!(matches!(
        QuantMatrix::new(QuantType::Q8_K, 1, 256, &[0u8; Q8_K_BYTES]),
        Err(QuantError::Unsupported { .. })
    ));
    let mut x = QuantizedActivations::new(QuantType::Q8_0, 64, 1).unwrap();
    x.quantize(&[0.5; 64], QuantIsa::Scalar).unwrap();
    let mut out = [0.0f32; 2];
    assert!(matches!(
        matvec(&w, &x, 1..3, &mut out, QuantIsa::Scalar),
        Err(QuantError::Rows { .. })
    ));
    assert!(matches!(
        matvec(&w, &x, 0..2, &mut out[..1], QuantIsa::Scalar),
        Err(QuantError::Length { .. })
    ));
    assert!(matches!(
        matmul(&w, &x, 0..2, &mut out, 1, QuantIsa::Scalar),
        Err(QuantError::Length { .. })
    ));
    let mut k = QuantizedActivations::new(QuantType::Q8_K, 256, 1).unwrap();
    k.quantize(&[1.0; 256], QuantIsa::Scalar).unwrap();
    let err = matvec(&w, &k, 0..2, &mut out, QuantIsa::Scalar).unwrap_err();
    assert!(matches!(err, QuantError::Pairing { .. }));
    assert!(err.to_string().contains("hint:"), "{err}");
    let x65 = QuantizedActivations::new(QuantType::Q8_0, 96, 1);
    assert!(x65.is_ok());
    assert!(matches!(
        x.quantize(&[0.0; 65], QuantIsa::Scalar),
        Err(QuantError::Length { .. })
    ));
    assert!(matches!(
        QuantizedActivations::new(QuantType::Q4_0, 64, 1),
        Err(QuantError::Unsupported { .. })
    ));
    assert!(matches!(
        quantize_row(
            QuantType::Q8_0,
            &[0.0; 40],
            &mut [0u8; 34],
            QuantIsa::Scalar
        ),
        Err(QuantError::PartialBlock { .. })
    ));
    // An ISA the CPU lacks is an error, not a silent fallback.
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        matvec(&w, &x, 0..2, &mut out, QuantIsa::Neon),
        Err(QuantError::IsaUnavailable(QuantIsa::Neon))
    );
    #[cfg(target_arch = "aarch64")]
    assert_eq!(
        matvec(&w, &x, 0..2, &mut out, QuantIsa::Avx2),
        Err(QuantError::IsaUnavailable(QuantIsa::Avx2))
    );
    // An empty range and an empty batch are fine.
    matvec(&w, &x, 1..1, &mut [], QuantIsa::Scalar).unwrap();
}

#[test]
fn best_isa_is_available_and_stable() {
    let b = QuantIsa::best();
    assert!(b.is_available());
    assert_eq!(QuantIsa::best(), b);
    assert!(QuantIsa::Scalar.is_available());
    #[cfg(target_arch = "x86_64")]
    assert_eq!(b, QuantIsa::Avx2, "this test machine has AVX2+FMA+F16C");
}

#[test]
fn quantizing_again_reuses_the_buffer() {
    let mut x = QuantizedActivations::new(QuantType::Q8_K, 256, 4).unwrap();
    x.quantize(&vec![1.0; 4 * 256], QuantIsa::Scalar).unwrap();
    let p = x.row(0).as_ptr();
    x.quantize(&[2.0; 256], QuantIsa::Scalar).unwrap();
    assert_eq!(x.rows(), 1);
    assert_eq!(
        x.row(0).as_ptr(),
        p,
        "no reallocation when the batch shrinks"
    );
    assert!(format!("{x:?}").contains("rows: 1"));
}

// ---------------------------------------------------------------- llama.cpp itself

/// Random weight rows and activations with llama.cpp's own results for them: its x86 CPU
/// backend's activation quantisation and dot product, ggml's reference quantisers, and
/// ggml's portable dots (`testdata/ggml_dots.c` wrote the file through the llama.cpp that
/// `scripts/llama-reference-setup.sh` installs; its AVX2 and Zen 4 builds give the same bytes).
const GGML_DOTS: &[u8] = include_bytes!("testdata/ggml_dots.bin");

struct GgmlCase<'a> {
    wtype: QuantType,
    n: usize,
    w: &'a [u8],
    x: Vec<f32>,
    /// The activations as llama.cpp's x86 CPU backend quantises them, and its dot with them.
    xq: &'a [u8],
    dot: f32,
    /// The activations as ggml's reference quantiser gives them.
    xq_ref: &'a [u8],
    /// ggml's portable dot of `w` and `xq`.
    dot_generic: f32,
}

fn ggml_cases() -> Vec<GgmlCase<'static>> {
    let b = GGML_DOTS;
    let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    let mut cases = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (t, n, wl, xl) = (word(at), word(at + 4), word(at + 8), word(at + 12));
        at += 16;
        let w = &b[at..at + wl];
        at += wl;
        let x = (0..n).map(|i| le_f32(b, at + 4 * i)).collect();
        at += 4 * n;
        let xq = &b[at..at + xl];
        at += xl;
        let dot = le_f32(b, at);
        at += 4;
        let xq_ref = &b[at..at + xl];
        at += xl;
        let dot_generic = le_f32(b, at);
        at += 4;
        let wtype = QuantType::from_ggml_id(t as u32).unwrap();
        cases.push(GgmlCase {
            wtype,
            n,
            w,
            x,
            xq,
            dot,
            xq_ref,
            dot_generic,
        });
    }
    cases
}

#[test]
fn every_path_equals_llama_cpp_bit_for_bit() {
    let cases = ggml_cases();
    assert_eq!(
        cases.len(),
        24,
        "three cases for each of eight weight types"
    );
    for c in &cases {
        let at = c.wtype.activation_type().unwrap();
        let (want, mag) = reference_dot(c.wtype, c.w, at, c.xq, c.n);
        let scalar = vec_dot(c.wtype, at, c.n, c.w, c.xq, QuantIsa::Scalar).unwrap();
        assert!(
            (f64::from(scalar) - want).abs() <= 2e-6 * mag + 1e-6,
            "{} n={}: scalar {scalar} vs {want}",
            c.wtype,
            c.n
        );
        assert!(
            (f64::from(c.dot) - want).abs() <= 2e-6 * mag + 1e-6,
            "fixture sanity"
        );
        for isa in simd_isas() {
            let got = vec_dot(c.wtype, at, c.n, c.w, c.xq, isa).unwrap();
            if isa == QuantIsa::Avx2 {
                // Same quantised activations as llama.cpp's x86 quantiser, and the same dot to
                // the bit (same operation order).
                assert_eq!(
                    quant(at, &c.x, isa),
                    c.xq,
                    "{} n={}: {at} activations",
                    c.wtype,
                    c.n
                );
                assert_eq!(
                    got.to_bits(),
                    c.dot.to_bits(),
                    "{} n={}: {got} vs llama.cpp {}",
                    c.wtype,
                    c.n,
                    c.dot
                );
            } else {
                assert!(
                    (f64::from(got) - want).abs() <= 2e-6 * mag + 1e-6,
                    "{} {isa:?}",
                    c.wtype
                );
            }
        }
        // The scalar code is ggml's portable code: the reference quantisers and the generic
        // dots, to the bit.
        assert_eq!(
            quant(at, &c.x, QuantIsa::Scalar),
            c.xq_ref,
            "{} n={}: {at} reference",
            c.wtype,
            c.n
        );
        assert_eq!(
            scalar.to_bits(),
            c.dot_generic.to_bits(),
            "{} n={}: scalar {scalar} vs ggml's portable dot {}",
            c.wtype,
            c.n,
            c.dot_generic
        );
    }
}
