//! aarch64 kernels (NEON + dot product). Compiled only on aarch64 and not run on this project's
//! x86-64 build machine: the scalar path stays the reference there, and the property tests run
//! these paths against it on any aarch64 machine that runs `cargo test`.

// Micro-kernels take raw tile geometry, and index register arrays by row and panel.
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

pub(crate) mod gemm_f32;
pub(crate) mod int8;
pub(crate) mod vec;
