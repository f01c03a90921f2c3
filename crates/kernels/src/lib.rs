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
//!   [`Epilogue`] (bias, bias + GELU, bias + residual, or a closure) into the output step.
//! - The vector kernels around them ([`ops`]): dot products, GELU, softmax, LayerNorm and
//!   RMSNorm with a fused residual add, online-softmax attention over key/value rows
//!   ([`ops::attend`], [`ops::attend_rows`] with causal and sliding-window masks), f16 ↔ f32.
//! - One thread [`Team`] (sized to physical cores by default) that runs parallel regions with
//!   barriers and sleeps when idle, and [`Scratch`] buffers that grow to a shape once.
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
//! **Untested here**: the aarch64 NEON paths are compiled only on aarch64 and have not run on
//! this project's x86-64 build machine; on aarch64 the scalar path remains the reference.

pub mod error;
pub mod gemm;
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
pub use gemm::{Epilogue, PackedF32, gemm_f32};
pub use isa::{Features, Isa, cpu_features};
pub use quant::{PackedI8, QuantizedRows, gemm_i8, gemm_i8_dots};
pub use scratch::Scratch;
pub use team::{PerWorker, Team, Worker, physical_cores};
