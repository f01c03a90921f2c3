//! x86-64 kernels (AVX2 + FMA + F16C; AVX-512 F/BW/VNNI). Every function here is
//! `#[target_feature]` and reached only through dispatch on a supported [`crate::Isa`].

// Micro-kernels take raw tile geometry, and index register arrays by row and panel.
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

pub(crate) mod gemm_f32;
pub(crate) mod int8;
pub(crate) mod vec;
