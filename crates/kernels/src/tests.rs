//! Property tests: every kernel on every path this machine has, against its scalar reference,
//! over random shapes (sizes of 1, odd sizes, tails of every tile and block).

use crate::gemm::{self, Epilogue, PackedF32, RowNorm, gemm_f32, reference_gemm};
use crate::isa::Isa;
use crate::ops::{self, Mask, Rows};
use crate::quant::{self, PackedI8, QuantizedRows, gemm_i8, gemm_i8_dots, reference_dots};
use crate::team::Team;

/// A small seeded generator (xorshift64*), so failures reproduce.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub(crate) fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.unit() * scale).collect()
    }
    /// A size biased towards the edges: 1, tile boundaries ± 1, or anything up to `max`.
    fn size(&mut self, max: usize) -> usize {
        match self.below(4) {
            0 => 1 + self.below(3),
            1 => [6, 7, 8, 15, 16, 17, 31, 32, 33][self.below(9)].min(max),
            _ => 1 + self.below(max),
        }
    }
}

fn isas() -> Vec<Isa> {
    let isas = Isa::available();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        assert!(
            isas.contains(&Isa::Avx2),
            "the AVX2 path must be tested on this machine"
        );
    }
    isas
}

fn close(got: f32, want: f64, tol: f64) -> bool {
    (f64::from(got) - want).abs() <= tol
}

/// Applies an epilogue in f64 to a reference product.
/// Epilogue kinds the property tests cycle through.
const EPILOGUES: usize = 7;

fn reference_epilogue(
    c: &mut [f32],
    m: usize,
    n: usize,
    kind: usize,
    bias: &[f32],
    residual: &[f32],
    gamma: &[f32],
) {
    for i in 0..m {
        for j in 0..n {
            let v = &mut c[i * n + j];
            match kind {
                1 => *v += bias[j],
                2 => *v = ops::gelu_scalar(*v + bias[j]),
                3 | 5 | 6 => *v += bias[j] + residual[i * n + j],
                4 => *v = *v * 2.0 + (i * 1000 + j) as f32,
                _ => {}
            }
        }
        if kind == 5 || kind == 6 {
            let row: Vec<f64> = c[i * n..(i + 1) * n]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let mean = row.iter().sum::<f64>() / n as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            let ms = row.iter().map(|v| v * v).sum::<f64>() / n as f64;
            for j in 0..n {
                let g = f64::from(gamma[j]);
                c[i * n + j] = if kind == 5 {
                    ((row[j] - mean) / (var + 1e-5).sqrt() * g + f64::from(bias[j])) as f32
                } else {
                    (row[j] / (ms + 1e-5).sqrt() * g) as f32
                };
            }
        }
    }
}

fn epilogue<'a>(
    kind: usize,
    bias: &'a [f32],
    residual: &'a [f32],
    gamma: &'a [f32],
    custom: &'a (dyn Fn(usize, usize, &mut [f32]) + Sync),
) -> Epilogue<'a> {
    match kind {
        1 => Epilogue::Bias(bias),
        2 => Epilogue::BiasGelu(bias),
        3 => Epilogue::BiasResidual { bias, residual },
        4 => Epilogue::Custom(custom),
        5 => Epilogue::BiasResidualNorm {
            bias,
            residual,
            norm: RowNorm::Layer {
                gamma,
                beta: bias,
                eps: 1e-5,
            },
        },
        6 => Epilogue::BiasResidualNorm {
            bias,
            residual,
            norm: RowNorm::Rms {
                weight: gamma,
                eps: 1e-5,
            },
        },
        _ => Epilogue::None,
    }
}

fn custom(row: usize, col0: usize, v: &mut [f32]) {
    for (c, x) in v.iter_mut().enumerate() {
        *x = *x * 2.0 + (row * 1000 + col0 + c) as f32;
    }
}

#[test]
fn gemm_f32_matches_reference_on_every_path() {
    let teams = [Team::new(1), Team::new(3)];
    let mut rng = Rng::new(1);
    for case in 0..120 {
        let m = rng.size(40);
        let n = rng.size(70);
        let k = if case % 10 == 0 { 0 } else { rng.size(600) };
        let kind = case % EPILOGUES;
        let a = rng.vec(m * k, 1.0);
        let b = rng.vec(n * k, 1.0);
        let bias = rng.vec(n, 1.0);
        let residual = rng.vec(m * n, 1.0);
        let gamma = rng.vec(n, 2.0);
        let mut want = reference_gemm(&a, m, &b, n, k);
        reference_epilogue(&mut want, m, n, kind, &bias, &residual, &gamma);
        let packed = PackedF32::pack(&b, n, k).unwrap();
        for isa in isas() {
            for team in &teams {
                let mut c = vec![f32::NAN; m * n];
                let ep = epilogue(kind, &bias, &residual, &gamma, &custom);
                gemm_f32(isa, team, &a, m, &packed, &mut c, ep).unwrap();
                for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (k as f64 + 1.0).sqrt() * (1.0 + f64::from(w.abs()));
                    assert!(
                        close(got, f64::from(w), tol),
                        "case {case} {isa} team {} m={m} n={n} k={k} epilogue {kind}: c[{idx}] = {got}, want {w}",
                        team.count()
                    );
                }
            }
        }
    }
}

#[test]
fn gemm_f32_large_blocks_and_many_rows() {
    // Past one L2 block of panels (32 × 16 columns) and several k blocks, rows split over the team.
    let mut rng = Rng::new(2);
    let (m, n, k) = (61, 16 * 33 + 5, 700);
    let a = rng.vec(m * k, 1.0);
    let b = rng.vec(n * k, 1.0);
    let want = reference_gemm(&a, m, &b, n, k);
    let packed = PackedF32::pack(&b, n, k).unwrap();
    let team = Team::new(2);
    for isa in isas() {
        let mut c = vec![0f32; m * n];
        gemm_f32(isa, &team, &a, m, &packed, &mut c, Epilogue::None).unwrap();
        for (&got, &w) in c.iter().zip(&want) {
            assert!(close(got, f64::from(w), 1e-3), "{isa}: {got} vs {w}");
        }
    }
    // Rows wider than one block of panels are normalised in the region's second step, for both
    // products.
    let (bias, residual, gamma) = (rng.vec(n, 1.0), rng.vec(m * n, 1.0), rng.vec(n, 2.0));
    let mut want_norm = want.clone();
    reference_epilogue(&mut want_norm, m, n, 5, &bias, &residual, &gamma);
    let packed_i8 = PackedI8::quantize(&b, n, k).unwrap();
    for isa in isas() {
        let ep = epilogue(5, &bias, &residual, &gamma, &custom);
        let mut c = vec![0f32; m * n];
        gemm_f32(isa, &team, &a, m, &packed, &mut c, ep).unwrap();
        for (&got, &w) in c.iter().zip(&want_norm) {
            assert!(
                close(got, f64::from(w), 1e-4 * (1.0 + f64::from(w.abs()))),
                "{isa}: {got} vs {w}"
            );
        }
        let mut qa = QuantizedRows::new();
        qa.quantize(isa, &a, m, k).unwrap();
        let mut c = vec![0f32; m * n];
        gemm_i8(isa, &team, &qa, &packed_i8, &mut c, ep).unwrap();
        let mut dots = vec![0i32; m * n];
        gemm_i8_dots(isa, &team, &qa, &packed_i8, &mut dots).unwrap();
        let mut want: Vec<f32> = (0..m * n)
            .map(|idx| (dots[idx] as f32 * qa.scales()[idx / n]) * packed_i8.scales()[idx % n])
            .collect();
        reference_epilogue(&mut want, m, n, 5, &bias, &residual, &gamma);
        for (&got, &w) in c.iter().zip(&want) {
            assert!(
                close(got, f64::from(w), 1e-4 * (1.0 + f64::from(w.abs()))),
                "{isa} int8: {got} vs {w}"
            );
        }
    }
}

#[test]
fn gemm_shapes_are_checked() {
    let team = Team::new(1);
    let packed = PackedF32::pack(&[0.0; 6], 2, 3).unwrap();
    let mut c = vec![0f32; 4];
    let err = gemm_f32(
        Isa::Scalar,
        &team,
        &[0.0; 5],
        2,
        &packed,
        &mut c,
        Epilogue::None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("a has 5 values, expected 6"),
        "{err}"
    );
    let err = gemm_f32(
        Isa::Scalar,
        &team,
        &[0.0; 6],
        2,
        &packed,
        &mut c,
        Epilogue::Bias(&[0.0]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bias"), "{err}");
    assert!(PackedF32::pack(&[0.0; 5], 2, 3).is_err());
    // Shapes whose products overflow are refused, not wrapped.
    let huge = usize::MAX / 2 + 1;
    assert!(
        gemm_f32(
            Isa::Scalar,
            &team,
            &[0.0; 6],
            huge,
            &packed,
            &mut c,
            Epilogue::None
        )
        .is_err()
    );
    let data = [0f32; 8];
    let rows = Rows {
        data: &data,
        stride: huge,
        rows: 3,
    };
    let short = Rows {
        data: &data,
        stride: 4,
        rows: 2,
    };
    assert!(ops::attend(Isa::Scalar, &[0.0; 4], rows, short, 1.0, &mut [0.0; 4]).is_err());
}

fn random_codes(rng: &mut Rng, len: usize, extreme: bool) -> Vec<i8> {
    (0..len)
        .map(|_| {
            if extreme {
                if rng.below(2) == 0 { 127 } else { -127 }
            } else {
                (rng.below(255) as i32 - 127) as i8
            }
        })
        .collect()
}

#[test]
fn int8_dots_are_exact_on_every_path() {
    let teams = [Team::new(1), Team::new(3)];
    let mut rng = Rng::new(3);
    for case in 0..120 {
        let m = rng.size(40);
        let n = rng.size(90);
        let k = if case % 15 == 0 { 0 } else { rng.size(700) };
        // Every fourth case uses only ±127: the largest pair sums maddubs could meet.
        let extreme = case % 4 == 1;
        let mut a_codes = random_codes(&mut rng, m * k, extreme);
        // Each row holds ±127, so its scale is 1/127 and quantisation gives the codes back.
        for row in a_codes.chunks_mut(k.max(1)) {
            if !row.iter().any(|q| q.abs() == 127) {
                row[0] = 127;
            }
        }
        let b_codes = random_codes(&mut rng, n * k, extreme);
        let want = reference_dots(&a_codes, m, &b_codes, n, k);
        let a: Vec<f32> = a_codes.iter().map(|&q| f32::from(q) / 127.0).collect();
        let scales = vec![1.0; n];
        let packed = PackedI8::from_quantized(&b_codes, &scales, n, k).unwrap();
        for isa in isas() {
            let mut qa = QuantizedRows::new();
            qa.quantize(isa, &a, m, k).unwrap();
            for i in 0..m {
                assert_eq!(
                    qa.row(i),
                    &a_codes[i * k..(i + 1) * k],
                    "{isa} quantiser, row {i}"
                );
            }
            for team in &teams {
                let mut got = vec![i32::MIN; m * n];
                gemm_i8_dots(isa, team, &qa, &packed, &mut got).unwrap();
                assert_eq!(
                    got,
                    want,
                    "case {case} {isa} team {} m={m} n={n} k={k}",
                    team.count()
                );
            }
        }
    }
}

#[test]
fn int8_gemm_is_bit_identical_across_paths_and_matches_dequantised_reference() {
    let team = Team::new(2);
    let mut rng = Rng::new(4);
    for case in 0..60 {
        let m = rng.size(30);
        let n = rng.size(80);
        let k = rng.size(400);
        let kind = case % EPILOGUES;
        let a = rng.vec(m * k, 3.0);
        let b = rng.vec(n * k, 0.5);
        let bias = rng.vec(n, 1.0);
        let residual = rng.vec(m * n, 1.0);
        let gamma = rng.vec(n, 2.0);
        let packed = PackedI8::quantize(&b, n, k).unwrap();
        let mut outputs = Vec::new();
        for isa in isas() {
            let mut qa = QuantizedRows::new();
            qa.quantize(isa, &a, m, k).unwrap();
            let mut c = vec![f32::NAN; m * n];
            let ep = epilogue(kind, &bias, &residual, &gamma, &custom);
            gemm_i8(isa, &team, &qa, &packed, &mut c, ep).unwrap();
            // Against the exact dots dequantised in the documented order.
            let mut dots = vec![0i32; m * n];
            gemm_i8_dots(Isa::Scalar, &team, &qa, &packed, &mut dots).unwrap();
            let mut want: Vec<f32> = (0..m * n)
                .map(|idx| (dots[idx] as f32 * qa.scales()[idx / n]) * packed.scales()[idx % n])
                .collect();
            reference_epilogue(&mut want, m, n, kind, &bias, &residual, &gamma);
            for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                assert!(
                    close(got, f64::from(w), 1e-5 * (1.0 + f64::from(w.abs()))),
                    "{isa} c[{idx}] {got} vs {w}"
                );
            }
            // And the quantised product approximates the f32 one.
            let exact = reference_gemm(&a, m, &b, n, k);
            let mut exact_ep = exact.clone();
            reference_epilogue(&mut exact_ep, m, n, kind, &bias, &residual, &gamma);
            let err: f64 = c
                .iter()
                .zip(&exact_ep)
                .map(|(&x, &y)| f64::from(x - y).powi(2))
                .sum::<f64>();
            let norm: f64 = exact_ep.iter().map(|&y| f64::from(y).powi(2)).sum::<f64>();
            assert!(
                err <= 1e-3 * norm + 1e-6,
                "{isa}: relative squared error {}",
                err / norm
            );
            if kind == 0 {
                outputs.push((isa, c));
            }
        }
        for (isa, c) in outputs.iter().skip(1) {
            let same = c
                .iter()
                .zip(&outputs[0].1)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "{isa} differs from {} before the epilogue",
                outputs[0].0
            );
        }
    }
}

#[test]
fn int8_rejects_minus_128_and_mismatched_k() {
    assert!(PackedI8::from_quantized(&[-128, 0], &[1.0], 1, 2).is_err());
    let packed = PackedI8::from_quantized(&[1, 2, 3], &[1.0], 1, 3).unwrap();
    let mut qa = QuantizedRows::new();
    qa.quantize(Isa::Scalar, &[1.0, 2.0], 1, 2).unwrap();
    let mut c = [0f32; 1];
    assert!(
        gemm_i8(
            Isa::Scalar,
            &Team::new(1),
            &qa,
            &packed,
            &mut c,
            Epilogue::None
        )
        .is_err()
    );
}

#[test]
fn quantize_row_matches_scalar_on_every_path() {
    let mut rng = Rng::new(5);
    for _ in 0..200 {
        let k = rng.size(300);
        let mut x = rng.vec(k, 10.0);
        if rng.below(5) == 0 {
            x.iter_mut().for_each(|v| *v = 0.0);
        }
        let mut want = vec![0i8; k];
        let ws = quant::quantize_row_scalar(&x, &mut want);
        for isa in isas() {
            let mut got = vec![0i8; k];
            let s = quant::quantize_row(isa, &x, &mut got);
            assert_eq!((s.to_bits(), &got), (ws.to_bits(), &want), "{isa}");
            assert!(got.iter().all(|&q| q != i8::MIN));
        }
    }
}

#[test]
fn quantized_rows_reuse_their_buffers() {
    let mut rng = Rng::new(6);
    let a = rng.vec(64 * 100, 1.0);
    let mut qa = QuantizedRows::new();
    qa.quantize(Isa::active(), &a, 64, 100).unwrap();
    let p = qa.row(0).as_ptr();
    qa.quantize(Isa::active(), &a[..32 * 100], 32, 100).unwrap();
    qa.quantize(Isa::active(), &a, 64, 100).unwrap();
    assert_eq!(qa.row(0).as_ptr(), p);
}

// ---------------------------------------------------------------- vector kernels

/// erf in f64 by its Taylor series (exact enough for |x| <= 3, checked against known values).
fn erf64(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    let x2 = x * x;
    for n in 1..200 {
        term *= -x2 / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn erf_and_gelu_match_their_definitions() {
    assert!((erf64(1.0) - 0.842_700_792_949_714_9).abs() < 1e-12);
    for i in -3000..=3000 {
        let x = i as f32 / 1000.0;
        let want = erf64(f64::from(x));
        let err = (f64::from(ops::erf_scalar(x)) - want).abs();
        assert!(err < 4e-7, "erf({x}) off by {err:e}");
        let g = 0.5 * f64::from(x) * (1.0 + erf64(f64::from(x) / 2f64.sqrt()));
        assert!(
            (f64::from(ops::gelu_scalar(x)) - g).abs() < 1e-6,
            "gelu({x})"
        );
    }
    assert!((ops::gelu_scalar(10.0) - 10.0).abs() < 1e-5);
    assert!(ops::gelu_scalar(-10.0).abs() < 1e-5);
    let mut rng = Rng::new(7);
    for isa in isas() {
        for _ in 0..50 {
            let n = rng.size(100);
            let x = rng.vec(n, 8.0);
            let mut got = x.clone();
            ops::gelu(isa, &mut got);
            for (&g, &v) in got.iter().zip(&x) {
                assert!(
                    (g - ops::gelu_scalar(v)).abs() <= 1e-6 * (1.0 + v.abs()),
                    "{isa} gelu({v})"
                );
            }
        }
    }
}

#[test]
fn exp_matches_std() {
    let mut rng = Rng::new(8);
    for isa in isas() {
        for _ in 0..50 {
            let n = rng.size(100);
            let x: Vec<f32> = (0..n).map(|_| rng.unit() * 94.0 - 6.0).collect();
            let mut got = x.clone();
            ops::exp_inplace(isa, &mut got);
            for (&g, &v) in got.iter().zip(&x) {
                let want = f64::from(v).exp();
                if v < -87.0 {
                    assert!(
                        g == 0.0 || (f64::from(g) - want).abs() < 1e-37,
                        "{isa} exp({v}) = {g}"
                    );
                } else {
                    assert!(
                        (f64::from(g) - want).abs() <= 3e-7 * want,
                        "{isa} exp({v}) = {g}, want {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn dot_and_axpy_match_reference() {
    let mut rng = Rng::new(9);
    for isa in isas() {
        for _ in 0..100 {
            let n = rng.size(300);
            let a = rng.vec(n, 1.0);
            let b = rng.vec(n, 1.0);
            let want: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            assert!(
                close(ops::dot(isa, &a, &b), want, 1e-5 * (n as f64).sqrt()),
                "{isa} n={n}"
            );
            let mut y = b.clone();
            ops::axpy(isa, 0.5, &a, &mut y);
            for i in 0..n {
                assert!(
                    close(y[i], f64::from(b[i]) + 0.5 * f64::from(a[i]), 1e-6),
                    "{isa}"
                );
            }
        }
    }
}

#[test]
fn softmax_matches_reference() {
    let mut rng = Rng::new(10);
    for isa in isas() {
        for _ in 0..50 {
            let n = rng.size(300);
            let x = rng.vec(n, 20.0);
            let max = x
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let sum: f64 = x.iter().map(|&v| (f64::from(v) - max).exp()).sum();
            let mut got = x.clone();
            ops::softmax(isa, &mut got);
            for (&g, &v) in got.iter().zip(&x) {
                assert!(close(g, (f64::from(v) - max).exp() / sum, 1e-6), "{isa}");
            }
        }
        let mut rows = rng.vec(12, 1.0);
        ops::softmax_rows(isa, &mut rows, 4).unwrap();
        for row in rows.chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert!(ops::softmax_rows(isa, &mut rows, 5).is_err());
    }
}

#[test]
fn norms_match_reference() {
    let mut rng = Rng::new(11);
    for isa in isas() {
        for _ in 0..40 {
            let n = rng.size(400);
            let rows = 1 + rng.below(4);
            let x: Vec<f32> = rng.vec(rows * n, 3.0).iter().map(|v| v + 1.5).collect();
            let delta = rng.vec(rows * n, 1.0);
            let gamma = rng.vec(n, 2.0);
            let beta = rng.vec(n, 1.0);
            let eps = 1e-12;
            let mut residual = x.clone();
            let mut out = vec![0f32; rows * n];
            ops::add_layer_norm(isa, &mut residual, &delta, n, &gamma, &beta, eps, &mut out)
                .unwrap();
            let mut residual2 = x.clone();
            let mut out2 = vec![0f32; rows * n];
            ops::add_rms_norm(isa, &mut residual2, &delta, n, &gamma, 1e-6, &mut out2).unwrap();
            for r in 0..rows {
                let s: Vec<f64> = (0..n)
                    .map(|j| f64::from(x[r * n + j]) + f64::from(delta[r * n + j]))
                    .collect();
                let mean = s.iter().sum::<f64>() / n as f64;
                let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                let ms = s.iter().map(|v| v * v).sum::<f64>() / n as f64;
                for j in 0..n {
                    assert!(close(residual[r * n + j], s[j], 1e-5), "{isa} residual");
                    let ln = (s[j] - mean) / (var + f64::from(eps)).sqrt() * f64::from(gamma[j])
                        + f64::from(beta[j]);
                    assert!(
                        close(out[r * n + j], ln, 2e-4 * (1.0 + ln.abs())),
                        "{isa} layer norm n={n}"
                    );
                    let rms = s[j] / (ms + 1e-6).sqrt() * f64::from(gamma[j]);
                    assert!(
                        close(out2[r * n + j], rms, 2e-4 * (1.0 + rms.abs())),
                        "{isa} rms norm"
                    );
                }
            }
        }
        assert!(ops::layer_norm(isa, &mut [0.0; 6], 4, &[1.0; 4], &[0.0; 4], 1e-5).is_err());
    }
}

/// Naive attention in f64 over rows `visible` of K and V.
fn reference_attend(
    q: &[f32],
    k: &Rows<'_>,
    v: &Rows<'_>,
    d: usize,
    scale: f32,
    visible: std::ops::Range<usize>,
) -> Vec<f64> {
    let scores: Vec<f64> = visible
        .clone()
        .map(|j| {
            let row = &k.data[j * k.stride..j * k.stride + d];
            f64::from(scale)
                * q.iter()
                    .zip(row)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum::<f64>()
        })
        .collect();
    let mut out = vec![0f64; d];
    if scores.is_empty() {
        return out;
    }
    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    for (idx, j) in visible.enumerate() {
        let p = (scores[idx] - max).exp() / sum;
        for (o, &x) in out.iter_mut().zip(&v.data[j * v.stride..j * v.stride + d]) {
            *o += p * f64::from(x);
        }
    }
    out
}

#[test]
fn attention_matches_reference() {
    let mut rng = Rng::new(12);
    let mut scratch = ops::AttentionScratch::new();
    for isa in isas() {
        for case in 0..60 {
            let d = [1, 7, 16, 64, 80][rng.below(5)];
            // Past one key block (256) now and then.
            let n_keys = match case % 10 {
                0 => 0,
                1 => 250 + rng.below(300),
                _ => rng.size(200),
            };
            let stride = d + rng.below(3) * 8;
            let kd = rng.vec(n_keys * stride, 2.0);
            let vd = rng.vec(n_keys * stride, 1.0);
            let keys = Rows {
                data: &kd,
                stride,
                rows: n_keys,
            };
            let values = Rows {
                data: &vd,
                stride,
                rows: n_keys,
            };
            let scale = 1.0 / (d as f32).sqrt();
            let q = rng.vec(d, 2.0);
            let mut out = vec![f32::NAN; d];
            ops::attend(isa, &q, keys, values, scale, &mut out).unwrap();
            let want = reference_attend(&q, &keys, &values, d, scale, 0..n_keys);
            for (&g, &w) in out.iter().zip(&want) {
                assert!(close(g, w, 1e-5), "{isa} d={d} keys={n_keys}: {g} vs {w}");
            }
            // Many queries with each mask.
            let n_q = 1 + rng.below(30);
            let first_pos = n_keys.saturating_sub(n_q);
            let qd = rng.vec(n_q * d, 2.0);
            let queries = Rows {
                data: &qd,
                stride: d,
                rows: n_q,
            };
            let window = Mask::Window(1 + rng.below(40));
            for (mask, blocked) in [Mask::None, Mask::Causal, window]
                .into_iter()
                .flat_map(|m| [(m, false), (m, true)])
            {
                let mut out = vec![f32::NAN; n_q * d];
                if blocked {
                    ops::attend_blocked(
                        isa,
                        &mut scratch,
                        queries,
                        d,
                        keys,
                        values,
                        scale,
                        mask,
                        first_pos,
                        &mut out,
                        d,
                    )
                    .unwrap();
                } else {
                    ops::attend_rows(
                        isa, queries, d, keys, values, scale, mask, first_pos, &mut out, d,
                    )
                    .unwrap();
                }
                for i in 0..n_q {
                    let pos = first_pos + i;
                    let visible = match mask {
                        Mask::None => 0..n_keys,
                        Mask::Causal => 0..(pos + 1).min(n_keys),
                        Mask::Window(w) => {
                            (pos + 1).saturating_sub(w).min(n_keys)..(pos + 1).min(n_keys)
                        }
                    };
                    let want = reference_attend(
                        &qd[i * d..(i + 1) * d],
                        &keys,
                        &values,
                        d,
                        scale,
                        visible,
                    );
                    for (&g, &w) in out[i * d..(i + 1) * d].iter().zip(&want) {
                        assert!(
                            close(g, w, 1e-5),
                            "{isa} {mask:?} blocked {blocked} query {i} of {n_q}, keys {n_keys}, d {d}: {g} vs {w}"
                        );
                    }
                }
            }
        }
        let kd = [0f32; 8];
        let short = Rows {
            data: &kd,
            stride: 4,
            rows: 3,
        };
        assert!(ops::attend(isa, &[0.0; 4], short, short, 1.0, &mut [0.0; 4]).is_err());
    }
}

#[test]
fn f16_conversions_match_ieee_on_every_path() {
    // Known values.
    assert_eq!(ops::f32_to_f16_scalar(1.0), 0x3c00);
    assert_eq!(ops::f32_to_f16_scalar(1.0 + 1.0 / 2048.0), 0x3c00); // tie → even
    assert_eq!(ops::f32_to_f16_scalar(1.0 + 3.0 / 2048.0), 0x3c02); // tie → even (up)
    assert_eq!(ops::f32_to_f16_scalar(65504.0), 0x7bff);
    assert_eq!(ops::f32_to_f16_scalar(65520.0), 0x7c00);
    assert_eq!(ops::f32_to_f16_scalar(-2.0f32.powi(-24)), 0x8001);
    assert_eq!(ops::f32_to_f16_scalar(2.0f32.powi(-25)), 0x0000);
    assert_eq!(ops::f16_to_f32_scalar(0x0001), 2.0f32.powi(-24));
    assert_eq!(ops::f16_to_f32_scalar(0xfbff), -65504.0);
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut rng = Rng::new(13);
    let floats: Vec<f32> = (0..100_000)
        .map(|i| match i % 3 {
            0 => f32::from_bits(rng.next() as u32),
            1 => rng.unit() * 70000.0,
            _ => rng.unit() * 1e-4,
        })
        .collect();
    let mut want32 = vec![0f32; all.len()];
    ops::f16_to_f32(Isa::Scalar, &all, &mut want32).unwrap();
    let mut want16 = vec![0u16; floats.len()];
    ops::f32_to_f16(Isa::Scalar, &floats, &mut want16).unwrap();
    // Every non-NaN half survives a round trip.
    for (&h, &f) in all.iter().zip(&want32) {
        if !f.is_nan() {
            assert_eq!(ops::f32_to_f16_scalar(f), h, "{h:#06x}");
        }
    }
    for isa in isas() {
        let mut got32 = vec![0f32; all.len()];
        ops::f16_to_f32(isa, &all, &mut got32).unwrap();
        for (&g, &w) in got32.iter().zip(&want32) {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{isa}"
            );
        }
        let mut got16 = vec![0u16; floats.len()];
        ops::f32_to_f16(isa, &floats, &mut got16).unwrap();
        for ((&g, &w), &f) in got16.iter().zip(&want16).zip(&floats) {
            let nan = |h: u16| h & 0x7c00 == 0x7c00 && h & 0x3ff != 0;
            assert!(
                g == w || (nan(g) && nan(w)),
                "{isa} {f:e}: {g:#06x} vs {w:#06x}"
            );
        }
    }
}

#[test]
fn work_items_cover_every_tile_once() {
    for m in [1, 5, 6, 7, 100, 1000] {
        for panels in [1, 2, 3, 24, 97] {
            for nw in 1..5 {
                for step in [1, 2] {
                    let work = gemm::Work::new(nw, m, 6, panels, step);
                    let mut seen = vec![0u32; m * panels];
                    for item in 0..work.items() {
                        let (rows, pans) = work.item(item);
                        if work.by_rows() {
                            assert_eq!(pans, 0..panels);
                        }
                        for r in rows {
                            for p in pans.clone() {
                                seen[r * panels + p] += 1;
                            }
                        }
                    }
                    assert!(
                        seen.iter().all(|&s| s == 1),
                        "m={m} panels={panels} nw={nw}"
                    );
                }
            }
        }
    }
}

#[test]
fn attention_over_f16_rows_matches_reference() {
    let mut rng = Rng::new(14);
    let mut scratch = ops::AttentionScratch::new();
    for isa in isas() {
        for case in 0..30 {
            let d = [3, 8, 64, 72][rng.below(4)];
            let n_keys = if case % 7 == 0 { 0 } else { rng.size(300) };
            let stride = d + rng.below(2) * 16;
            let to_half =
                |v: &[f32]| -> Vec<u16> { v.iter().map(|&x| ops::f32_to_f16_scalar(x)).collect() };
            let kd = to_half(&rng.vec(n_keys * stride, 2.0));
            let vd = to_half(&rng.vec(n_keys * stride, 1.0));
            // The reference reads the same rounded values as f32.
            let kr: Vec<f32> = kd.iter().map(|&h| ops::f16_to_f32_scalar(h)).collect();
            let vr: Vec<f32> = vd.iter().map(|&h| ops::f16_to_f32_scalar(h)).collect();
            let keys = Rows {
                data: &kd[..],
                stride,
                rows: n_keys,
            };
            let values = Rows {
                data: &vd[..],
                stride,
                rows: n_keys,
            };
            let keys_r = Rows {
                data: &kr[..],
                stride,
                rows: n_keys,
            };
            let values_r = Rows {
                data: &vr[..],
                stride,
                rows: n_keys,
            };
            let scale = 1.0 / (d as f32).sqrt();
            let n_q = 1 + rng.below(15);
            let qd = rng.vec(n_q * d, 2.0);
            let queries = Rows {
                data: &qd[..],
                stride: d,
                rows: n_q,
            };
            let first_pos = n_keys.saturating_sub(n_q);
            for variant in 0..3 {
                let mut out = vec![f32::NAN; n_q * d];
                let mask = if variant == 0 {
                    Mask::None
                } else {
                    Mask::Causal
                };
                match variant {
                    0 => {
                        for i in 0..n_q {
                            let o = &mut out[i * d..(i + 1) * d];
                            ops::attend(isa, &qd[i * d..(i + 1) * d], keys, values, scale, o)
                                .unwrap();
                        }
                    }
                    1 => ops::attend_rows(
                        isa, queries, d, keys, values, scale, mask, first_pos, &mut out, d,
                    )
                    .unwrap(),
                    _ => ops::attend_blocked(
                        isa,
                        &mut scratch,
                        queries,
                        d,
                        keys,
                        values,
                        scale,
                        mask,
                        first_pos,
                        &mut out,
                        d,
                    )
                    .unwrap(),
                }
                for i in 0..n_q {
                    let pos = first_pos + i;
                    let seen = if variant == 0 {
                        0..n_keys
                    } else {
                        0..(pos + 1).min(n_keys)
                    };
                    let want = reference_attend(
                        &qd[i * d..(i + 1) * d],
                        &keys_r,
                        &values_r,
                        d,
                        scale,
                        seen,
                    );
                    for (&g, &w) in out[i * d..(i + 1) * d].iter().zip(&want) {
                        assert!(
                            close(g, w, 1e-5),
                            "{isa} f16 variant {variant} d={d} keys={n_keys}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
