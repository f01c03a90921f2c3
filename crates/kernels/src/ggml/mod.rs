//! GGUF's quantised weight formats: block layouts, dequantisation, ggml-compatible
//! activation quantisers, weight·activation dot products, and the matrix-vector
//! (decode) and matrix-matrix (prompt) products built on them.
//!
//! # What it owns
//! - [`QuantType`]: the ggml tensor types a GGUF language model uses for its matrices —
//!   Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16, F32 — and the activation
//!   types they are multiplied with (Q8_0, Q8_1, Q8_K, F32). Layouts are in [`blocks`].
//! - Reference code in [`scalar`], written from ggml's definitions: dequantising a row,
//!   ggml's reference quantisers for activations, and the dot products in ggml's portable
//!   summation order.
//! - SIMD kernels chosen at run time by [`QuantIsa`]: AVX2+FMA+F16C on x86-64 (every dot
//!   product and activation quantiser), NEON on aarch64 (Q4_0, Q8_0 and Q4_K dot products;
//!   the other types and the activation quantisers use the scalar code there). **The NEON
//!   code is compiled only on aarch64 and has been tested only under `qemu-aarch64`
//!   emulation, never timed on hardware**; it uses plain NEON (widening multiplies), not
//!   the `sdot` instruction, whose intrinsic is not stable in Rust.
//! - [`matvec`] for one activation row (decode) and [`matmul`] for many (prompt), over a
//!   caller-chosen range of weight rows so the caller can split rows across threads.
//!
//! # Use
//! ```
//! use docent_kernels::ggml::{matvec, QuantIsa, QuantMatrix, QuantType, QuantizedActivations};
//! # fn main() -> Result<(), docent_kernels::ggml::QuantError> {
//! let (rows, cols) = (4, 64);
//! let bytes = vec![0u8; rows * QuantType::Q8_0.row_bytes(cols)?]; // a tensor's bytes in the GGUF
//! let w = QuantMatrix::new(QuantType::Q8_0, rows, cols, &bytes)?;
//! let isa = QuantIsa::best();
//! // Quantise the activations once per step, into a buffer kept across steps.
//! let mut x = QuantizedActivations::new(w.activation_type(), cols, 1)?;
//! x.quantize(&vec![0.5; cols], isa)?;
//! let mut out = vec![0.0; rows];
//! // Each thread takes a range of rows and the matching slice of the output.
//! matvec(&w, &x, 0..rows, &mut out, isa)?;
//! # Ok(())
//! # }
//! ```
//!
//! # What it refuses
//! Allocation in the products (activations are quantised into a reusable
//! [`QuantizedActivations`] buffer), threads (the caller splits row ranges), and `unsafe`
//! outside the per-ISA files `avx2.rs` and `neon.rs`; every public function is safe and
//! checks its lengths and types, returning a [`QuantError`].
//!
//! # Numerics
//! Integer partial sums inside a block are exact on every path; per-block scaling and the
//! cross-block sum are `f32`, so SIMD and scalar results differ only by `f32` reassociation
//! (relative ~1e-6). The scalar code gives ggml's portable results bit for bit: its
//! activation quantisers equal ggml's `*_ref` functions, and its dots ggml's generic dots as
//! compiled without fused multiply-adds. The AVX2 Q8_0/Q8_1 quantisers reproduce llama.cpp's
//! x86 quantiser instead (`id = 127 / amax`, round half to even), which can differ from the
//! reference by one in a quant where `x / d` is within an ulp of a half; the AVX2 Q8_K
//! quantiser equals the reference exactly (llama.cpp uses the reference on every CPU). The
//! AVX2 dot products follow the operation order of llama.cpp's AVX2 code (the same integer
//! lane groupings and the same `f32` products, FMAs and horizontal sums). A test holds all of
//! this to the bit against results written by llama.cpp's own CPU backend
//! (`testdata/ggml_dots.c`; its AVX2 and Zen 4 builds agree).
#![deny(unsafe_code)]

pub mod blocks;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;

#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use blocks::*;

/// A ggml tensor type this module can read (weights) or produce (activations).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// 32-element blocks: f16 scale, 4-bit quants with offset 8.
    Q4_0,
    /// 32-element blocks: f16 scale and minimum, 4-bit quants.
    Q4_1,
    /// 32-element blocks: f16 scale, 5-bit quants with offset 16.
    Q5_0,
    /// 32-element blocks: f16 scale and minimum, 5-bit quants.
    Q5_1,
    /// 32-element blocks: f16 scale, 8-bit quants (weights and activations).
    Q8_0,
    /// Activation type of Q4_1/Q5_1 (carries `d · Σq` per block).
    Q8_1,
    /// 256-element super-blocks of eight 32-element sub-blocks with 6-bit scales and mins,
    /// 4-bit quants.
    Q4_K,
    /// As Q4_K with 5-bit quants.
    Q5_K,
    /// 256-element super-blocks of sixteen 16-element sub-blocks with 8-bit scales, 6-bit
    /// quants with offset 32.
    Q6_K,
    /// Activation type of the K formats (`f32` scale, sums of 16 quants).
    Q8_K,
}

impl QuantType {
    /// Every type, in ggml id order.
    pub const ALL: [QuantType; 13] = [
        QuantType::F32,
        QuantType::F16,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q8_1,
        QuantType::Q4_K,
        QuantType::Q5_K,
        QuantType::Q6_K,
        QuantType::Q8_K,
        QuantType::BF16,
    ];

    /// The weight types [`matvec`]/[`matmul`] accept.
    pub const WEIGHTS: [QuantType; 11] = [
        QuantType::F32,
        QuantType::F16,
        QuantType::BF16,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q4_K,
        QuantType::Q5_K,
        QuantType::Q6_K,
    ];

    /// The type id in GGUF's tensor table (`ggml_type`).
    pub const fn ggml_id(self) -> u32 {
        match self {
            QuantType::F32 => 0,
            QuantType::F16 => 1,
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q5_1 => 7,
            QuantType::Q8_0 => 8,
            QuantType::Q8_1 => 9,
            QuantType::Q4_K => 12,
            QuantType::Q5_K => 13,
            QuantType::Q6_K => 14,
            QuantType::Q8_K => 15,
            QuantType::BF16 => 30,
        }
    }

    /// The type with GGUF type id `id`, if this module supports it.
    pub fn from_ggml_id(id: u32) -> Option<QuantType> {
        QuantType::ALL.into_iter().find(|t| t.ggml_id() == id)
    }

    /// The name ggml prints (`"Q4_K"`, `"F16"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            QuantType::F32 => "F32",
            QuantType::F16 => "F16",
            QuantType::BF16 => "BF16",
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q8_1 => "Q8_1",
            QuantType::Q4_K => "Q4_K",
            QuantType::Q5_K => "Q5_K",
            QuantType::Q6_K => "Q6_K",
            QuantType::Q8_K => "Q8_K",
        }
    }

    /// Elements per block (1 for the float types).
    pub const fn block_elems(self) -> usize {
        match self {
            QuantType::F32 | QuantType::F16 | QuantType::BF16 => 1,
            QuantType::Q4_0
            | QuantType::Q4_1
            | QuantType::Q5_0
            | QuantType::Q5_1
            | QuantType::Q8_0
            | QuantType::Q8_1 => QK,
            QuantType::Q4_K | QuantType::Q5_K | QuantType::Q6_K | QuantType::Q8_K => QK_K,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            QuantType::F32 => 4,
            QuantType::F16 | QuantType::BF16 => 2,
            QuantType::Q4_0 => Q4_0_BYTES,
            QuantType::Q4_1 => Q4_1_BYTES,
            QuantType::Q5_0 => Q5_0_BYTES,
            QuantType::Q5_1 => Q5_1_BYTES,
            QuantType::Q8_0 => Q8_0_BYTES,
            QuantType::Q8_1 => Q8_1_BYTES,
            QuantType::Q4_K => Q4_K_BYTES,
            QuantType::Q5_K => Q5_K_BYTES,
            QuantType::Q6_K => Q6_K_BYTES,
            QuantType::Q8_K => Q8_K_BYTES,
        }
    }

    /// Bytes of a row of `cols` elements, or an error when `cols` is not a whole number of
    /// blocks.
    pub fn row_bytes(self, cols: usize) -> Result<usize, QuantError> {
        let be = self.block_elems();
        if !cols.is_multiple_of(be) {
            return Err(QuantError::PartialBlock { dtype: self, cols });
        }
        Ok(cols / be * self.block_bytes())
    }

    /// The activation type a weight row of this type is multiplied with: Q8_0 for
    /// Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K formats, F32 for the float types.
    /// `None` for the activation-only types Q8_1 and Q8_K.
    pub const fn activation_type(self) -> Option<QuantType> {
        match self {
            QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => Some(QuantType::Q8_0),
            QuantType::Q4_1 | QuantType::Q5_1 => Some(QuantType::Q8_1),
            QuantType::Q4_K | QuantType::Q5_K | QuantType::Q6_K => Some(QuantType::Q8_K),
            QuantType::F32 | QuantType::F16 | QuantType::BF16 => Some(QuantType::F32),
            QuantType::Q8_1 | QuantType::Q8_K => None,
        }
    }

    /// Whether activations can be quantised to this type ([`quantize_row`]).
    pub const fn is_activation(self) -> bool {
        matches!(
            self,
            QuantType::F32 | QuantType::Q8_0 | QuantType::Q8_1 | QuantType::Q8_K
        )
    }
}

impl fmt::Display for QuantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong. Every variant is a caller bug (wrong lengths or type pairing) or an
/// instruction set this CPU lacks; none depends on the numbers in the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// A row length that is not a whole number of blocks.
    PartialBlock {
        /// The type.
        dtype: QuantType,
        /// The row length in elements.
        cols: usize,
    },
    /// A byte or element count that does not match the shape.
    Length {
        /// What was measured, with its unit.
        what: &'static str,
        /// The count the shape needs.
        expected: usize,
        /// The count given.
        actual: usize,
    },
    /// An activation of the wrong type for the weight type.
    Pairing {
        /// The weight type.
        weight: QuantType,
        /// The activation type given.
        activation: QuantType,
    },
    /// A type that cannot be used where it was given (e.g. Q8_K as a weight).
    Unsupported {
        /// The type.
        dtype: QuantType,
        /// Where it was used.
        op: &'static str,
    },
    /// A weight row range outside the matrix.
    Rows {
        /// The range given.
        rows: Range<usize>,
        /// The matrix's row count.
        matrix_rows: usize,
    },
    /// An instruction set the running CPU does not have.
    IsaUnavailable(QuantIsa),
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::PartialBlock { dtype, cols } => write!(
                f,
                "a {dtype} row of {cols} elements is not a whole number of {}-element blocks; \
                 hint: the tensor's first dimension must be a multiple of the block size",
                dtype.block_elems()
            ),
            QuantError::Length {
                what,
                expected,
                actual,
            } => write!(
                f,
                "{what} has {actual}, expected {expected}; hint: this is a bug in the caller's \
                 shape bookkeeping"
            ),
            QuantError::Pairing { weight, activation } => write!(
                f,
                "{weight} weights cannot be multiplied with {activation} activations; hint: \
                 quantise the activations to {}",
                weight.activation_type().map_or("(none)", QuantType::name)
            ),
            QuantError::Unsupported { dtype, op } => write!(
                f,
                "{dtype} is not supported for {op}; hint: it is an activation-only or weight-only type"
            ),
            QuantError::Rows { rows, matrix_rows } => write!(
                f,
                "rows {}..{} are outside a matrix of {matrix_rows} rows; hint: split 0..{matrix_rows}",
                rows.start, rows.end
            ),
            QuantError::IsaUnavailable(isa) => write!(
                f,
                "this CPU cannot run the {isa:?} kernels; hint: use QuantIsa::best()"
            ),
        }
    }
}

impl std::error::Error for QuantError {}

/// Which kernels to run. [`QuantIsa::best`] picks the fastest the CPU has (detected once);
/// tests and benchmarks name one to compare paths. Naming one the CPU lacks is an error
/// ([`QuantError::IsaUnavailable`]), never a silent fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantIsa {
    /// Portable reference code.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
    /// aarch64 NEON (Q4_0, Q8_0, Q4_K dots; scalar for the rest).
    Neon,
}

impl QuantIsa {
    /// The fastest instruction set this CPU supports (detected once, then cached).
    pub fn best() -> QuantIsa {
        static BEST: OnceLock<QuantIsa> = OnceLock::new();
        *BEST.get_or_init(|| {
            if QuantIsa::Avx2.is_available() {
                QuantIsa::Avx2
            } else if QuantIsa::Neon.is_available() {
                QuantIsa::Neon
            } else {
                QuantIsa::Scalar
            }
        })
    }

    /// Whether this CPU can run these kernels (detected once, then cached).
    pub fn is_available(self) -> bool {
        match self {
            QuantIsa::Scalar => true,
            QuantIsa::Avx2 => {
                static AVX2: OnceLock<bool> = OnceLock::new();
                *AVX2.get_or_init(detect_avx2)
            }
            QuantIsa::Neon => {
                static NEON: OnceLock<bool> = OnceLock::new();
                *NEON.get_or_init(detect_neon)
            }
        }
    }

    /// The kernels for this instruction set, or an error when the CPU lacks it.
    fn kernels(self) -> Result<Kernels, QuantError> {
        match self {
            QuantIsa::Scalar => Ok(Kernels::Scalar),
            #[cfg(target_arch = "x86_64")]
            QuantIsa::Avx2 => avx2::Token::get()
                .map(Kernels::Avx2)
                .ok_or(QuantError::IsaUnavailable(self)),
            #[cfg(target_arch = "aarch64")]
            QuantIsa::Neon => neon::Token::get()
                .map(Kernels::Neon)
                .ok_or(QuantError::IsaUnavailable(self)),
            #[allow(unreachable_patterns)]
            _ => Err(QuantError::IsaUnavailable(self)),
        }
    }
}

/// A [`QuantIsa`] whose availability has been checked: the per-ISA variants carry the proof.
#[derive(Clone, Copy, Debug)]
enum Kernels {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Token),
    #[cfg(target_arch = "aarch64")]
    Neon(neon::Token),
}

fn detect_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn detect_neon() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("neon")
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

// ---------------------------------------------------------------- single rows

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), QuantError> {
    if expected == actual {
        Ok(())
    } else {
        Err(QuantError::Length {
            what,
            expected,
            actual,
        })
    }
}

/// Dequantises one row of `dst.len()` elements of type `dtype` from `src` (scalar code; this
/// is for loading and checking, not the hot path). Activation types (Q8_0, Q8_1, Q8_K)
/// dequantise too.
pub fn dequantize_row(dtype: QuantType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check_len(
        "the source row (bytes)",
        dtype.row_bytes(dst.len())?,
        src.len(),
    )?;
    let f = match dtype {
        QuantType::F32 => scalar::dequantize_f32,
        QuantType::F16 => scalar::dequantize_f16,
        QuantType::BF16 => scalar::dequantize_bf16,
        QuantType::Q4_0 => scalar::dequantize_q4_0,
        QuantType::Q4_1 => scalar::dequantize_q4_1,
        QuantType::Q5_0 => scalar::dequantize_q5_0,
        QuantType::Q5_1 => scalar::dequantize_q5_1,
        QuantType::Q8_0 => scalar::dequantize_q8_0,
        QuantType::Q8_1 => scalar::dequantize_q8_1,
        QuantType::Q4_K => scalar::dequantize_q4_k,
        QuantType::Q5_K => scalar::dequantize_q5_k,
        QuantType::Q6_K => scalar::dequantize_q6_k,
        QuantType::Q8_K => scalar::dequantize_q8_k,
    };
    f(src, dst);
    Ok(())
}

/// Quantises one activation row `src` to `dtype` (Q8_0, Q8_1, Q8_K or F32) into `dst`
/// (`dtype.row_bytes(src.len())` bytes). See the module docs for how the paths round.
pub fn quantize_row(
    dtype: QuantType,
    src: &[f32],
    dst: &mut [u8],
    isa: QuantIsa,
) -> Result<(), QuantError> {
    let k = isa.kernels()?;
    if !dtype.is_activation() {
        return Err(QuantError::Unsupported {
            dtype,
            op: "activation quantisation",
        });
    }
    check_len(
        "the destination row (bytes)",
        dtype.row_bytes(src.len())?,
        dst.len(),
    )?;
    quantize_unchecked(dtype, src, dst, k);
    Ok(())
}

fn quantize_unchecked(dtype: QuantType, src: &[f32], dst: &mut [u8], k: Kernels) {
    match k {
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx2(t) => match dtype {
            QuantType::Q8_0 => avx2::quantize_q8_0(t, src, dst),
            QuantType::Q8_1 => avx2::quantize_q8_1(t, src, dst),
            QuantType::Q8_K => avx2::quantize_q8_k(t, src, dst),
            _ => scalar::quantize_f32(src, dst),
        },
        _ => match dtype {
            QuantType::Q8_0 => scalar::quantize_q8_0_ref(src, dst),
            QuantType::Q8_1 => scalar::quantize_q8_1_ref(src, dst),
            QuantType::Q8_K => scalar::quantize_q8_k_ref(src, dst),
            _ => scalar::quantize_f32(src, dst),
        },
    }
}

fn check_pair(weight: QuantType, activation: QuantType) -> Result<(), QuantError> {
    match weight.activation_type() {
        None => Err(QuantError::Unsupported {
            dtype: weight,
            op: "weights",
        }),
        Some(a) if a == activation => Ok(()),
        Some(_) => Err(QuantError::Pairing { weight, activation }),
    }
}

/// Dot product of one weight row (`wtype`, `n` elements, bytes `w`) with one activation
/// row (bytes `x`, of `wtype.activation_type()`).
pub fn vec_dot(
    wtype: QuantType,
    xtype: QuantType,
    n: usize,
    w: &[u8],
    x: &[u8],
    isa: QuantIsa,
) -> Result<f32, QuantError> {
    let k = isa.kernels()?;
    check_pair(wtype, xtype)?;
    check_len("the weight row (bytes)", wtype.row_bytes(n)?, w.len())?;
    check_len("the activation row (bytes)", xtype.row_bytes(n)?, x.len())?;
    Ok(dot_rows::<1>(k, wtype, n, w, [x])[0])
}

/// `N` dot products of one weight row with `N` activation rows, reading the weight row once.
/// Lengths and pairing are checked by the caller.
#[inline]
fn dot_rows<const N: usize>(
    k: Kernels,
    wtype: QuantType,
    n: usize,
    w: &[u8],
    xs: [&[u8]; N],
) -> [f32; N] {
    let nb = n / wtype.block_elems();
    match k {
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx2(t) => avx2::dot_rows::<N>(t, wtype, nb, w, xs),
        #[cfg(target_arch = "aarch64")]
        Kernels::Neon(t) => match neon::dot_rows::<N>(t, wtype, nb, w, xs) {
            Some(r) => r,
            None => scalar_dot_rows(wtype, nb, w, xs),
        },
        Kernels::Scalar => scalar_dot_rows(wtype, nb, w, xs),
    }
}

/// `out[n * ld + i] = W[rows.start + i] · xs[n]` for the rows in `rows` (checked by the
/// caller), reading each weight row once for the `N` activation rows.
fn tile<const N: usize>(
    k: Kernels,
    w: &QuantMatrix<'_>,
    rows: Range<usize>,
    xs: [&[u8]; N],
    out: &mut [f32],
    ld: usize,
) {
    match k {
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx2(t) => {
            let nb = w.cols / w.dtype.block_elems();
            let bytes = &w.data[rows.start * w.row_bytes..rows.end * w.row_bytes];
            avx2::rows::<N>(t, w.dtype, nb, bytes, w.row_bytes, xs, out, ld);
        }
        _ => {
            for (i, r) in rows.enumerate() {
                let v = dot_rows::<N>(k, w.dtype, w.cols, w.row(r), xs);
                for (n, v) in v.into_iter().enumerate() {
                    out[n * ld + i] = v;
                }
            }
        }
    }
}

fn scalar_dot_rows<const N: usize>(
    wtype: QuantType,
    nb: usize,
    w: &[u8],
    xs: [&[u8]; N],
) -> [f32; N] {
    xs.map(|x| scalar_dot(wtype, nb, w, x))
}

/// The scalar reference dot of `nb` blocks (elements for the float types).
fn scalar_dot(wtype: QuantType, nb: usize, w: &[u8], x: &[u8]) -> f32 {
    match wtype {
        QuantType::Q4_0 => scalar::dot_q4_0_q8_0(w, x, nb),
        QuantType::Q4_1 => scalar::dot_q4_1_q8_1(w, x, nb),
        QuantType::Q5_0 => scalar::dot_q5_0_q8_0(w, x, nb),
        QuantType::Q5_1 => scalar::dot_q5_1_q8_1(w, x, nb),
        QuantType::Q8_0 => scalar::dot_q8_0_q8_0(w, x, nb),
        QuantType::Q4_K => scalar::dot_q4_k_q8_k(w, x, nb),
        QuantType::Q5_K => scalar::dot_q5_k_q8_k(w, x, nb),
        QuantType::Q6_K => scalar::dot_q6_k_q8_k(w, x, nb),
        QuantType::F32 => scalar::dot_f32(w, x, nb),
        QuantType::F16 => scalar::dot_f16(w, x, nb),
        QuantType::BF16 => scalar::dot_bf16(w, x, nb),
        // Rejected by `check_pair` before any dot runs.
        QuantType::Q8_1 | QuantType::Q8_K => 0.0,
    }
}

// ---------------------------------------------------------------- matrices

/// A borrowed weight matrix: `rows` rows of `cols` elements of `dtype`, row-major, as
/// stored in a GGUF file (ggml's `ne[0]` = `cols`).
#[derive(Clone, Copy)]
pub struct QuantMatrix<'a> {
    dtype: QuantType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    data: &'a [u8],
}

impl fmt::Debug for QuantMatrix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuantMatrix")
            .field("dtype", &self.dtype)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl<'a> QuantMatrix<'a> {
    /// Checks that `data` holds exactly `rows` rows of `cols` elements of a weight type.
    pub fn new(
        dtype: QuantType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<QuantMatrix<'a>, QuantError> {
        if dtype.activation_type().is_none() {
            return Err(QuantError::Unsupported {
                dtype,
                op: "weights",
            });
        }
        let row_bytes = dtype.row_bytes(cols)?;
        check_len("the weight matrix (bytes)", row_bytes * rows, data.len())?;
        Ok(QuantMatrix {
            dtype,
            rows,
            cols,
            row_bytes,
            data,
        })
    }

    /// The weight type.
    pub fn dtype(&self) -> QuantType {
        self.dtype
    }
    /// Number of rows (outputs of a product).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Elements per row (inputs of a product).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Bytes of row `r` (panics if `r >= rows`).
    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }
    /// The activation type this matrix multiplies with.
    pub fn activation_type(&self) -> QuantType {
        // `new` only accepts weight types, which all have one.
        self.dtype.activation_type().unwrap_or(QuantType::F32)
    }
}

/// Quantised activation rows, reused across calls: quantising into it does not allocate once
/// it has held as many rows as the largest batch.
#[derive(Clone)]
pub struct QuantizedActivations {
    dtype: QuantType,
    cols: usize,
    rows: usize,
    row_bytes: usize,
    data: Vec<u8>,
}

impl fmt::Debug for QuantizedActivations {
    // Activations are derived from document text: never print their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuantizedActivations")
            .field("dtype", &self.dtype)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl QuantizedActivations {
    /// An empty buffer for rows of `cols` elements of activation type `dtype`, with room
    /// for `capacity_rows` rows before it grows.
    pub fn new(
        dtype: QuantType,
        cols: usize,
        capacity_rows: usize,
    ) -> Result<QuantizedActivations, QuantError> {
        if !dtype.is_activation() {
            return Err(QuantError::Unsupported {
                dtype,
                op: "activations",
            });
        }
        let row_bytes = dtype.row_bytes(cols)?;
        Ok(QuantizedActivations {
            dtype,
            cols,
            rows: 0,
            row_bytes,
            data: Vec::with_capacity(row_bytes * capacity_rows),
        })
    }

    /// Replaces the contents with `xs.len() / cols` rows quantised from `xs` (row-major).
    pub fn quantize(&mut self, xs: &[f32], isa: QuantIsa) -> Result<(), QuantError> {
        let k = isa.kernels()?;
        if self.cols == 0 || !xs.len().is_multiple_of(self.cols) {
            return Err(QuantError::Length {
                what: "the activations (elements, a multiple of the row length)",
                expected: xs.len().div_ceil(self.cols.max(1)) * self.cols,
                actual: xs.len(),
            });
        }
        self.rows = xs.len() / self.cols;
        self.data.resize(self.rows * self.row_bytes, 0);
        for (x, d) in xs
            .chunks_exact(self.cols)
            .zip(self.data.chunks_exact_mut(self.row_bytes))
        {
            quantize_unchecked(self.dtype, x, d, k);
        }
        Ok(())
    }

    /// The activation type.
    pub fn dtype(&self) -> QuantType {
        self.dtype
    }
    /// Number of rows held since the last [`QuantizedActivations::quantize`].
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Elements per row.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Bytes of row `t` (panics if `t >= rows`).
    pub fn row(&self, t: usize) -> &[u8] {
        &self.data[t * self.row_bytes..(t + 1) * self.row_bytes]
    }
}

fn check_product(
    w: &QuantMatrix<'_>,
    x: &QuantizedActivations,
    rows: &Range<usize>,
    isa: QuantIsa,
) -> Result<Kernels, QuantError> {
    let k = isa.kernels()?;
    check_pair(w.dtype, x.dtype)?;
    check_len("the activation row (elements)", w.cols, x.cols)?;
    if rows.start > rows.end || rows.end > w.rows {
        return Err(QuantError::Rows {
            rows: rows.clone(),
            matrix_rows: w.rows,
        });
    }
    Ok(k)
}

/// Decode: `out[i] = W[rows.start + i] · x` for the weight rows in `rows`, with `x` the
/// first (usually only) row of `x_q`. `out.len()` must equal `rows.len()`. The caller splits
/// `0..w.rows()` across threads.
pub fn matvec(
    w: &QuantMatrix<'_>,
    x_q: &QuantizedActivations,
    rows: Range<usize>,
    out: &mut [f32],
    isa: QuantIsa,
) -> Result<(), QuantError> {
    let k = check_product(w, x_q, &rows, isa)?;
    if x_q.rows == 0 {
        return Err(QuantError::Length {
            what: "the activations (rows)",
            expected: 1,
            actual: 0,
        });
    }
    check_len("the output (elements)", rows.len(), out.len())?;
    let ld = rows.len();
    tile::<1>(k, w, rows, [x_q.row(0)], out, ld);
    Ok(())
}

/// Activation rows handled together per weight row by [`matmul`].
pub const MATMUL_TILE: usize = 4;

/// Prompt: for every activation row `t` of `xs_q` and weight row `r` in `rows`,
/// `out[t * ld_out + (r - rows.start)] = W[r] · xs_q[t]`. `ld_out >= rows.len()` is the
/// stride between activation rows in `out` (pass `rows.len()` for a dense band, or the full
/// output width with `out` starting at the band's first column when one caller owns the
/// whole output). Each weight row is read once per [`MATMUL_TILE`] activation rows.
pub fn matmul(
    w: &QuantMatrix<'_>,
    xs_q: &QuantizedActivations,
    rows: Range<usize>,
    out: &mut [f32],
    ld_out: usize,
    isa: QuantIsa,
) -> Result<(), QuantError> {
    let k = check_product(w, xs_q, &rows, isa)?;
    let t_rows = xs_q.rows;
    if t_rows == 0 {
        return Ok(());
    }
    if ld_out < rows.len() {
        return Err(QuantError::Length {
            what: "the output stride (ld_out)",
            expected: rows.len(),
            actual: ld_out,
        });
    }
    let needed = (t_rows - 1) * ld_out + rows.len();
    if out.len() < needed {
        return Err(QuantError::Length {
            what: "the output (elements)",
            expected: needed,
            actual: out.len(),
        });
    }
    let mut t = 0;
    while t + MATMUL_TILE <= t_rows {
        let xs = [
            xs_q.row(t),
            xs_q.row(t + 1),
            xs_q.row(t + 2),
            xs_q.row(t + 3),
        ];
        tile::<MATMUL_TILE>(k, w, rows.clone(), xs, &mut out[t * ld_out..], ld_out);
        t += MATMUL_TILE;
    }
    // The last 1..=3 rows.
    match t_rows - t {
        3 => {
            let xs = [xs_q.row(t), xs_q.row(t + 1), xs_q.row(t + 2)];
            tile::<3>(k, w, rows, xs, &mut out[t * ld_out..], ld_out);
        }
        2 => {
            let xs = [xs_q.row(t), xs_q.row(t + 1)];
            tile::<2>(k, w, rows, xs, &mut out[t * ld_out..], ld_out);
        }
        1 => tile::<1>(k, w, rows, [xs_q.row(t)], &mut out[t * ld_out..], ld_out),
        _ => {}
    }
    Ok(())
}
