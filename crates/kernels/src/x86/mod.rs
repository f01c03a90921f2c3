//! x86-64 kernels (AVX2 + FMA + F16C; AVX-512 F/BW/VNNI). Every function here is
//! `#[target_feature]` and reached only through dispatch on a supported [`crate::Isa`].

pub(crate) mod gemm_f32;
pub(crate) mod int8;
pub(crate) mod vec;
