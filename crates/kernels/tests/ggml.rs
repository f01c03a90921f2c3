//! The quant kernels on real GGUF tensors: the starter models' weights (SmolLM2-135M, Q4_1
//! with a Q8_0 embedding; Gemma 3 270M, Q4_K_M: Q4_K, Q6_K, Q5_0 and Q8_0) through every
//! instruction set this CPU has, against the scalar reference.
//!
//! It finds the models in `$DOCENT_MODELS` or `~/.local/share/docent/models` (what
//! `scripts/fetch-models.sh` fills, as CI does) and fails, naming the directory, when they are
//! absent.

use std::path::{Path, PathBuf};

use docent_kernels::ggml::{
    QuantIsa, QuantMatrix, QuantType, QuantizedActivations, dequantize_row, matmul, matvec,
};

/// A minimal GGUF reader: the tensor table and the data section, nothing more.
pub mod gguf {
    use std::path::Path;

    pub struct Tensor {
        pub name: String,
        /// ggml order: `dims[0]` is the row length.
        pub dims: Vec<u64>,
        pub ggml_type: u32,
        /// Absolute offset of the tensor's bytes in the file.
        pub offset: usize,
    }

    pub struct File {
        pub bytes: Vec<u8>,
        pub tensors: Vec<Tensor>,
    }

    struct Cursor<'a> {
        b: &'a [u8],
        at: usize,
    }

    impl Cursor<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], String> {
            let s = self
                .b
                .get(self.at..self.at + n)
                .ok_or_else(|| format!("truncated at byte {}", self.at))?;
            self.at += n;
            Ok(s)
        }
        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| "u32")?,
            ))
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| "u64")?,
            ))
        }
        fn string(&mut self) -> Result<String, String> {
            let n = self.u64()? as usize;
            Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
        }
        /// Skips one metadata value of type `t`, returning it when it is a u32 (for
        /// `general.alignment`).
        fn value(&mut self, t: u32) -> Result<Option<u64>, String> {
            let fixed = |t: u32| -> Option<usize> {
                match t {
                    0 | 1 | 7 => Some(1),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    _ => None,
                }
            };
            match t {
                4 => return Ok(Some(u64::from(self.u32()?))),
                8 => {
                    self.string()?;
                }
                9 => {
                    let et = self.u32()?;
                    let n = self.u64()? as usize;
                    match fixed(et) {
                        Some(sz) => {
                            self.take(sz * n)?;
                        }
                        None => {
                            for _ in 0..n {
                                self.value(et)?;
                            }
                        }
                    }
                }
                t => {
                    let sz = fixed(t).ok_or_else(|| format!("unknown metadata type {t}"))?;
                    self.take(sz)?;
                }
            }
            Ok(None)
        }
    }

    pub fn read(path: &Path) -> Result<File, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut c = Cursor { b: &bytes, at: 0 };
        if c.take(4)? != b"GGUF" {
            return Err(format!("{}: not a GGUF file", path.display()));
        }
        let version = c.u32()?;
        if version < 2 {
            return Err(format!(
                "{}: GGUF version {version} is too old",
                path.display()
            ));
        }
        let n_tensors = c.u64()? as usize;
        let n_kv = c.u64()? as usize;
        let mut alignment = 32u64;
        for _ in 0..n_kv {
            let key = c.string()?;
            let t = c.u32()?;
            let v = c.value(t)?;
            if key == "general.alignment" {
                alignment = v.ok_or("general.alignment is not a u32")?;
            }
        }
        let mut tensors = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = c.string()?;
            let nd = c.u32()? as usize;
            let dims = (0..nd).map(|_| c.u64()).collect::<Result<Vec<_>, _>>()?;
            let ggml_type = c.u32()?;
            let offset = c.u64()? as usize;
            tensors.push(Tensor {
                name,
                dims,
                ggml_type,
                offset,
            });
        }
        let a = alignment as usize;
        let data_start = c.at.div_ceil(a) * a;
        for t in &mut tensors {
            t.offset += data_start;
        }
        Ok(File { bytes, tensors })
    }
}

pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCENT_MODELS") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".local/share/docent/models")
}

/// The GGUF file in `models/<dir>`, or a loud failure naming what is missing.
pub fn model_file(dir: &str) -> PathBuf {
    let d = models_dir().join(dir);
    let found = std::fs::read_dir(&d).ok().and_then(|rd| {
        rd.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "gguf"))
    });
    match found {
        Some(p) => p,
        None => panic!(
            "no .gguf in {}; hint: install the starter models (bash scripts/fetch-models.sh) or set \
             DOCENT_MODELS to the directory holding {dir}/",
            d.display()
        ),
    }
}

/// SplitMix64, for reproducible activations.
fn activations(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        })
        .collect()
}

/// For the first 2-D tensor of every type in the file: row 0 dequantises to finite, non-zero
/// values of weight-like size, and the products on every available instruction set agree with
/// the scalar reference and with a dequantise-then-dot reference. Returns the types seen.
fn check_model(path: &Path) -> Vec<QuantType> {
    let file = gguf::read(path).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    for t in &file.tensors {
        let Some(dtype) = QuantType::from_ggml_id(t.ggml_type) else {
            panic!(
                "{}: tensor {} has unsupported type {}",
                path.display(),
                t.name,
                t.ggml_type
            )
        };
        if t.dims.len() != 2 || seen.contains(&dtype) {
            continue;
        }
        seen.push(dtype);
        let (cols, rows) = (t.dims[0] as usize, t.dims[1] as usize);
        let bytes = dtype.row_bytes(cols).unwrap() * rows;
        let w =
            QuantMatrix::new(dtype, rows, cols, &file.bytes[t.offset..t.offset + bytes]).unwrap();

        let mut row0 = vec![0.0f32; cols];
        dequantize_row(dtype, w.row(0), &mut row0).unwrap();
        let amax = row0.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(
            row0.iter().all(|v| v.is_finite()),
            "{}: non-finite weights",
            t.name
        );
        assert!(
            amax > 1e-4 && amax < 1e3,
            "{} ({dtype}): implausible row maximum {amax}",
            t.name
        );

        let n_rows = rows.min(96);
        let batch = 6;
        let x = activations(t.offset as u64, batch * cols);
        let at = w.activation_type();
        let mut xq = QuantizedActivations::new(at, cols, batch).unwrap();
        xq.quantize(&x, QuantIsa::Scalar).unwrap();

        let mut reference = vec![0.0f32; n_rows];
        let mut mags = vec![0.0f64; n_rows];
        matvec(&w, &xq, 0..n_rows, &mut reference, QuantIsa::Scalar).unwrap();
        let mut xd = vec![0.0f32; cols];
        dequantize_row(at, xq.row(0), &mut xd).unwrap();
        for (r, (want, mag_r)) in reference.iter().zip(&mut mags).enumerate() {
            let mut wr = vec![0.0f32; cols];
            dequantize_row(dtype, w.row(r), &mut wr).unwrap();
            let (s, mag) = wr.iter().zip(&xd).fold((0.0f64, 0.0f64), |(s, m), (a, b)| {
                let p = f64::from(*a) * f64::from(*b);
                (s + p, m + p.abs())
            });
            *mag_r = mag;
            // Q4_1's `m · s` term uses the f16-rounded block sum of Q8_1: allow its rounding.
            let slack = if at == QuantType::Q8_1 { 1e-3 } else { 2e-6 };
            assert!(
                (f64::from(*want) - s).abs() <= slack * mag + 1e-5,
                "{} ({dtype}) row {r}: scalar {want} vs dequantised {s}",
                t.name
            );
        }
        for isa in [QuantIsa::Avx2, QuantIsa::Neon] {
            if !isa.is_available() {
                continue;
            }
            let mut got = vec![0.0f32; n_rows];
            matvec(&w, &xq, 0..n_rows, &mut got, isa).unwrap();
            let mut batched = vec![0.0f32; batch * n_rows];
            matmul(&w, &xq, 0..n_rows, &mut batched, n_rows, isa).unwrap();
            for r in 0..n_rows {
                let tol = (2e-6 * mags[r]) as f32 + 1e-5;
                assert!(
                    (got[r] - reference[r]).abs() <= tol,
                    "{} ({dtype}) {isa:?} row {r}: {} vs scalar {}",
                    t.name,
                    got[r],
                    reference[r]
                );
                assert_eq!(
                    batched[r], got[r],
                    "{} ({dtype}) {isa:?}: matmul vs matvec",
                    t.name
                );
            }
        }
    }
    seen
}

#[test]
fn starter_model_tensors_agree_on_every_path() {
    let smol = check_model(&model_file("smollm2-135m-instruct"));
    assert!(
        smol.contains(&QuantType::Q4_1),
        "SmolLM2 Q4_1 file without Q4_1 tensors: {smol:?}"
    );
    let gemma = check_model(&model_file("gemma-3-270m"));
    for t in [QuantType::Q4_K, QuantType::Q6_K] {
        assert!(
            gemma.contains(&t),
            "Gemma Q4_K_M file without {t} tensors: {gemma:?}"
        );
    }
}
