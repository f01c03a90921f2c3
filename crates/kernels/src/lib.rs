//! # docent-kernels
//!
//! docent's CPU compute core: the SIMD kernels that the models run on, one persistent thread
//! team, and scratch buffers reused from call to call.
//!
//! **Owns**
//! - Run-time dispatch ([`Isa`]): the CPU is probed once; x86-64 runs AVX2 + FMA + F16C and,
//!   where present, AVX-512 (F/BW/VL + VNNI); aarch64 runs NEON with the dot-product extension;
//!   every machine has the portable scalar path, which is also the reference each SIMD path is
//!   tested against. Every kernel takes an `Isa` argument (normally [`Isa::active`]; the
//!   `DOCENT_KERNELS` environment variable lowers it), and [`cpu_features`] prints what was
//!   found and chosen. Nothing needs `-C target-cpu=native`: one binary runs everywhere.
//! - Matrix products `C = A·Bᵀ` for `Linear` layers, weights packed once at load:
//!   [`gemm_f32`] over [`PackedF32`], and [`gemm_i8`] over [`PackedI8`] (weights quantised per
//!   row) with activations quantised per row into a reusable [`QuantizedRows`]. Both fuse an
//!   [`Epilogue`] into the output step: bias, bias + GELU, bias + residual, bias + residual +
//!   LayerNorm/RMSNorm over each finished row ([`RowNorm`]), or a closure.
//! - The vector kernels around them ([`ops`]): dot products, GELU, softmax, LayerNorm and
//!   RMSNorm with a fused residual add, online-softmax attention over key/value rows held as
//!   f32 or f16 ([`ops::attend`] for one query, [`ops::attend_rows`] and the tiled
//!   [`ops::attend_blocked`] for many, with causal and sliding-window masks), f16 ↔ f32.
//! - One thread [`Team`] (sized to physical cores by default) that runs parallel regions with
//!   barriers and sleeps when idle; [`Team::for_each_part_mut`] hands workers disjoint parts of
//!   an output (one text's rows each) so callers need no `unsafe`; [`PerWorker`] state and
//!   [`Scratch`] buffers that grow to a shape once.
//!
//! **Refuses**
//! - Model knowledge: no tensors with names, no file formats, no layers. Callers (the embedder,
//!   the language model) own their weights and call these kernels with slices and shapes.
//! - Allocation in hot loops: kernels write into buffers the caller provides; the only
//!   allocations are packing at load, [`QuantizedRows`] and [`Scratch`] growing to a new shape.
//! - Panics on bad shapes: mismatched lengths are a [`ShapeError`].
//! - Dependencies beyond `std`.
//!
//! **Unsafe** is allowed in this crate only (the workspace denies it elsewhere) and confined to
//! the per-ISA modules (`x86`, `aarch64`: intrinsics behind `#[target_feature]`, reached only
//! after dispatch has checked the CPU), the GEMM drivers' disjoint writes from several workers
//! into one output, and the team's hand-off of a borrowed closure to its threads. Each block
//! carries a `SAFETY` comment.
//!
//! ## Using it
//!
//! A model packs its weights once, keeps one team and reusable buffers, and calls the kernels
//! with slices (a BERT feed-forward block here; `x` is `[tokens × 4]`):
//!
//! ```
//! use docent_kernels::{Epilogue, Isa, PackedF32, PackedI8, QuantizedRows, Team};
//! use docent_kernels::{gemm_f32, gemm_i8, ops};
//!
//! # fn main() -> Result<(), docent_kernels::ShapeError> {
//! let (hidden, ffn, tokens) = (4, 8, 3);
//! let w_up = vec![0.01f32; ffn * hidden]; // [out × in], PyTorch's Linear layout
//! let w_down = vec![0.02f32; hidden * ffn];
//! let (b_up, b_down) = (vec![0.1f32; ffn], vec![0.0f32; hidden]);
//! let (gamma, beta) = (vec![1.0f32; hidden], vec![0.0f32; hidden]);
//!
//! // At load.
//! let isa = Isa::active();
//! let team = Team::with_physical_cores();
//! let up = PackedF32::pack(&w_up, ffn, hidden)?;
//! let down = PackedI8::quantize(&w_down, hidden, ffn)?;
//! let mut qa = QuantizedRows::new();
//! let (mut h, mut y) = (vec![0f32; tokens * ffn], vec![0f32; tokens * hidden]);
//!
//! // Per batch: h = gelu(x·W_upᵀ + b); y = LayerNorm(h·W_downᵀ + b + x).
//! let x = vec![1.0f32; tokens * hidden];
//! gemm_f32(isa, &team, &x, tokens, &up, &mut h, Epilogue::BiasGelu(&b_up))?;
//! qa.quantize_on(isa, &team, &h, tokens, ffn)?;
//! gemm_i8(isa, &team, &qa, &down, &mut y, Epilogue::BiasResidual { bias: &b_down, residual: &x })?;
//! ops::layer_norm(isa, &mut y, hidden, &gamma, &beta, 1e-12)?;
//! assert!(y.iter().all(|v| v.is_finite()));
//! # Ok(())
//! # }
//! ```
//!
//! ## What to expect
//!
//! On one Zen 4 core (AVX-512 VNNI) the f32 product runs near the core's FMA peak and the int8
//! product about three times faster (`vpdpbusd`). Without VNNI (AVX2 only: Zen 3, most Intel
//! client parts) int8 gains little arithmetic over f32 (about 1.2× per core: keeping the integer
//! dots exact costs a sign operation per multiply), but still reads a quarter of the weight
//! bytes. `cargo bench -p docent-kernels` prints the figures for the machine at hand.
//!
//! **Untested here**: the aarch64 NEON paths are compiled only on aarch64 and have not run on
//! this project's x86-64 build machine; on aarch64 the scalar path remains the reference.

pub mod error;
pub mod gemm;
pub mod ggml;
pub mod isa;
pub mod ops;
pub mod quant;
pub mod scratch;
pub mod team;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

/// How this crate was compiled, for benchmarks to print beside their figures, e.g.
/// `release, opt-level 3, debug-assertions off`.
pub fn build_profile() -> String {
    format!(
        "{}, opt-level {}, debug-assertions {}",
        env!("DOCENT_KERNELS_PROFILE"),
        env!("DOCENT_KERNELS_OPT_LEVEL"),
        if cfg!(debug_assertions) { "on" } else { "off" }
    )
}

pub use error::{Result, ShapeError};
pub use gemm::{Epilogue, PackedF32, RowNorm, gemm_f32};
pub use isa::{Features, Isa, cpu_features};
pub use quant::{PackedI8, QuantizedRows, gemm_i8, gemm_i8_dots};
pub use scratch::Scratch;
pub use team::{PerWorker, Team, Worker, physical_cores};
