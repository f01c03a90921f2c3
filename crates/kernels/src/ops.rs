//! Vector kernels around the matrix products: dot products, GELU, softmax, LayerNorm and
//! RMSNorm (with a fused residual add), online-softmax attention, f16 ↔ f32 conversion.
//!
//! Each has a portable body (the scalar path and the reference its tests compare against) and
//! a SIMD path where it pays: explicit intrinsics for `exp`, GELU, dot products and f16, and for
//! the norms the same portable body compiled with AVX2 + FMA enabled.

use crate::error::{Result, check_len, rows_span, shape_error};
use crate::gemm::{MR_MAX, PANEL, Row16};
use crate::isa::Isa;

// ---------------------------------------------------------------- dot products, axpy

/// `Σ a[i] · b[i]` over the shorter of the two.
pub fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 + FMA are supported (effective); the slices have equal length.
        Isa::Avx2 | Isa::Avx512 => unsafe { crate::x86::vec::dot_avx2(a, b) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: NEON is supported (effective); the slices have equal length.
        Isa::Neon => unsafe { crate::aarch64::vec::dot_neon(a, b) },
        _ => dot_scalar(a, b),
    }
}

/// Portable dot product of f32 with key elements (eight partial sums).
#[inline]
pub(crate) fn dot_kv<T: KvElem>(a: &[f32], b: &[T]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y.to_f32())
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l].to_f32();
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Portable dot product (eight partial sums).
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `y[i] += alpha · x[i]`.
pub fn axpy(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 + FMA are supported (effective).
        Isa::Avx2 | Isa::Avx512 => unsafe { crate::x86::vec::axpy_avx2(alpha, x, y) },
        _ => axpy_body(alpha, x, y),
    }
}

#[inline(always)]
pub(crate) fn axpy_body(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

// ---------------------------------------------------------------- exp, erf, GELU

/// erf on `[-4, 4]` (clamped outside) as a rational function: Eigen's and XLA's f32
/// approximation, within a few ulp of erf.
#[inline(always)]
pub fn erf_scalar(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ERF_ALPHA[0];
    for &c in &ERF_ALPHA[1..] {
        p = p * x2 + c;
    }
    let mut q = ERF_BETA[0];
    for &c in &ERF_BETA[1..] {
        q = q * x2 + c;
    }
    x * p / q
}

/// Numerator coefficients (highest power of x² first).
pub(crate) const ERF_ALPHA: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_600_2e-3,
    -1.609_603_3e-2,
];
/// Denominator coefficients (highest power of x² first).
pub(crate) const ERF_BETA: [f32; 5] = [
    -1.456_607_2e-5,
    -2.133_740_6e-4,
    -1.682_827e-3,
    -7.373_329e-3,
    -1.426_474e-2,
];

/// GELU as BERT defines it: `x · ½ (1 + erf(x / √2))`.
#[inline(always)]
pub fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_scalar(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU (erf-based) in place.
pub fn gelu(isa: Isa, x: &mut [f32]) {
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 + FMA are supported (effective).
        Isa::Avx2 | Isa::Avx512 => unsafe { crate::x86::vec::gelu_avx2(x) },
        _ => x.iter_mut().for_each(|v| *v = gelu_scalar(*v)),
    }
}

/// `exp` in place (SIMD: a degree-6 polynomial, within about 2 ulp; below -87 it returns 0).
pub fn exp_inplace(isa: Isa, x: &mut [f32]) {
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 + FMA are supported (effective).
        Isa::Avx2 | Isa::Avx512 => unsafe { crate::x86::vec::exp_avx2(x) },
        _ => x.iter_mut().for_each(|v| *v = v.exp()),
    }
}

// ---------------------------------------------------------------- softmax

/// Softmax of one row in place. An empty row is left alone.
pub fn softmax(isa: Isa, x: &mut [f32]) {
    if x.is_empty() {
        return;
    }
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v -= max;
    }
    exp_inplace(isa, x);
    let sum: f32 = x.iter().sum();
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Softmax of each row of `x [rows × n]`.
pub fn softmax_rows(isa: Isa, x: &mut [f32], n: usize) -> Result<()> {
    if n == 0 || !x.len().is_multiple_of(n) {
        return Err(shape_error(
            "softmax_rows",
            format!("{} values are not whole rows of {n}", x.len()),
        ));
    }
    for row in x.chunks_exact_mut(n) {
        softmax(isa, row);
    }
    Ok(())
}

// ---------------------------------------------------------------- norms

fn check_rows(kernel: &'static str, len: usize, n: usize) -> Result<()> {
    if n == 0 || !len.is_multiple_of(n) {
        return Err(shape_error(
            kernel,
            format!("{len} values are not whole rows of {n}"),
        ));
    }
    Ok(())
}

/// LayerNorm of each row of `x [rows × n]` in place: `(x - mean) / sqrt(var + eps) · γ + β`.
pub fn layer_norm(
    isa: Isa,
    x: &mut [f32],
    n: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> Result<()> {
    const NAME: &str = "layer_norm";
    check_rows(NAME, x.len(), n)?;
    check_len(NAME, "gamma", gamma.len(), n)?;
    check_len(NAME, "beta", beta.len(), n)?;
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 + FMA are supported (effective).
        Isa::Avx2 | Isa::Avx512 => unsafe {
            crate::x86::vec::layer_norm_avx2(x, n, gamma, beta, eps)
        },
        _ => layer_norm_body(x, n, gamma, beta, eps),
    }
    Ok(())
}

/// The residual stream and a norm of it in one pass: `residual += delta`, then
/// `out = LayerNorm(residual)`. All three are `[rows × n]`.
#[allow(clippy::too_many_arguments)]
pub fn add_layer_norm(
    isa: Isa,
    residual: &mut [f32],
    delta: &[f32],
    n: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Result<()> {
    const NAME: &str = "add_layer_norm";
    check_rows(NAME, residual.len(), n)?;
    check_len(NAME, "delta", delta.len(), residual.len())?;
    check_len(NAME, "out", out.len(), residual.len())?;
    for (r, d) in residual.iter_mut().zip(delta) {
        *r += d;
    }
    out.copy_from_slice(residual);
    layer_norm(isa, out, n, gamma, beta, eps)
}

#[inline(always)]
pub(crate) fn layer_norm_body(x: &mut [f32], n: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(n) {
        let mean = lane_sum(row, |v| v) / n as f32;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// RMSNorm of each row in place: `x / sqrt(mean(x²) + eps) · w`.
pub fn rms_norm(isa: Isa, x: &mut [f32], n: usize, weight: &[f32], eps: f32) -> Result<()> {
    const NAME: &str = "rms_norm";
    check_rows(NAME, x.len(), n)?;
    check_len(NAME, "weight", weight.len(), n)?;
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 + FMA are supported (effective).
        Isa::Avx2 | Isa::Avx512 => unsafe { crate::x86::vec::rms_norm_avx2(x, n, weight, eps) },
        _ => rms_norm_body(x, n, weight, eps),
    }
    Ok(())
}

/// `residual += delta`, then `out = RMSNorm(residual)`.
#[allow(clippy::too_many_arguments)]
pub fn add_rms_norm(
    isa: Isa,
    residual: &mut [f32],
    delta: &[f32],
    n: usize,
    weight: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Result<()> {
    const NAME: &str = "add_rms_norm";
    check_rows(NAME, residual.len(), n)?;
    check_len(NAME, "delta", delta.len(), residual.len())?;
    check_len(NAME, "out", out.len(), residual.len())?;
    for (r, d) in residual.iter_mut().zip(delta) {
        *r += d;
    }
    out.copy_from_slice(residual);
    rms_norm(isa, out, n, weight, eps)
}

#[inline(always)]
pub(crate) fn rms_norm_body(x: &mut [f32], n: usize, weight: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(n) {
        let ms = lane_sum(row, |v| v * v) / n as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for (v, w) in row.iter_mut().zip(weight) {
            *v = *v * inv * w;
        }
    }
}

/// `Σ f(x[i])` with eight partial sums (vectorisable without reassociation).
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for l in 0..8 {
            lanes[l] += f(c[l]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `max f(x[i])` with eight partial maxima (vectorisable); `-inf` for an empty slice.
#[inline(always)]
fn lane_max(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(f(v)));
    for c in chunks {
        for l in 0..8 {
            let v = f(c[l]);
            lanes[l] = if v > lanes[l] { v } else { lanes[l] };
        }
    }
    lanes.iter().fold(tail, |m, &v| m.max(v))
}

// ---------------------------------------------------------------- attention

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u16 {}
}

/// What key and value rows may hold: `f32`, or IEEE half precision as its bits (`u16`, as
/// [`f32_to_f16`] writes them), converted to f32 as they are read (F16C on x86-64).
pub trait KvElem: Copy + Default + Send + Sync + sealed::Sealed + 'static {
    /// Whether the type holds half-precision bits.
    const IS_F16: bool;
    /// The value as f32.
    fn to_f32(self) -> f32;
}

impl KvElem for f32 {
    const IS_F16: bool = false;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
}

impl KvElem for u16 {
    const IS_F16: bool = true;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16_to_f32_scalar(self)
    }
}

/// Rows of a matrix inside a larger buffer: row `r` is `data[r * stride .. r * stride + width]`.
/// For one head of a `[tokens × heads × d]` tensor: `data = &t[h * d..]`, `stride = heads * d`.
/// Keys and values may be f32 or f16 bits ([`KvElem`]); queries are f32.
#[derive(Clone, Copy)]
pub struct Rows<'a, T = f32> {
    /// The buffer, starting at row 0.
    pub data: &'a [T],
    /// Distance between consecutive rows.
    pub stride: usize,
    /// Number of rows.
    pub rows: usize,
}

impl<T> std::fmt::Debug for Rows<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values: they are activations of the user's documents.
        f.debug_struct("Rows")
            .field("rows", &self.rows)
            .field("stride", &self.stride)
            .finish_non_exhaustive()
    }
}

impl<'a, T: KvElem> Rows<'a, T> {
    /// Row `r`, `width` values.
    #[inline]
    pub(crate) fn row(&self, r: usize, width: usize) -> &'a [T] {
        &self.data[r * self.stride..r * self.stride + width]
    }

    fn check(&self, kernel: &'static str, what: &str, width: usize) -> Result<()> {
        if self.rows > 0
            && (self.stride < width
                || rows_span(self.rows, self.stride, width).is_none_or(|s| s > self.data.len()))
        {
            return Err(shape_error(
                kernel,
                format!(
                    "{what}: {} rows of {width} at stride {} do not fit in {} values",
                    self.rows,
                    self.stride,
                    self.data.len()
                ),
            ));
        }
        Ok(())
    }

    /// Rows `r` (a causal or sliding window of keys).
    pub fn range(&self, r: std::ops::Range<usize>) -> Rows<'a, T> {
        if r.is_empty() {
            return Rows {
                data: &[],
                stride: self.stride,
                rows: 0,
            };
        }
        Rows {
            data: &self.data[r.start * self.stride..],
            stride: self.stride,
            rows: r.len(),
        }
    }
}

/// Keys scored per block of the online softmax.
pub(crate) const ATTEND_BLOCK: usize = 64;

/// Attention of one query over key/value rows with an online softmax:
/// `out = Σ_j softmax_j(scale · q·k_j) · v_j`, reading the keys in blocks and never holding
/// more than one block of scores. `q` and `out` have the head dimension `d`; keys and values
/// have `rows` rows of `d` (a causal or sliding window is a sub-range of rows: see
/// [`attend_rows`]). With no keys, `out` is zero.
pub fn attend<T: KvElem>(
    isa: Isa,
    q: &[f32],
    keys: Rows<'_, T>,
    values: Rows<'_, T>,
    scale: f32,
    out: &mut [f32],
) -> Result<()> {
    const NAME: &str = "attend";
    let d = q.len();
    check_len(NAME, "out", out.len(), d)?;
    keys.check(NAME, "keys", d)?;
    values.check(NAME, "values", d)?;
    if keys.rows != values.rows {
        return Err(shape_error(
            NAME,
            format!("{} keys but {} values", keys.rows, values.rows),
        ));
    }
    attend_unchecked(isa.effective(), q, keys, values, scale, out);
    Ok(())
}

fn attend_unchecked<T: KvElem>(
    isa: Isa,
    q: &[f32],
    keys: Rows<'_, T>,
    values: Rows<'_, T>,
    scale: f32,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) {
        // SAFETY: AVX2 + FMA are supported (the caller passes an effective ISA); the shapes were
        // checked by the caller.
        unsafe { crate::x86::vec::attend_avx2(q, keys, values, scale, out) };
        return;
    }
    let d = q.len();
    out.fill(0.0);
    let mut running_max = f32::NEG_INFINITY;
    let mut denom = 0f32;
    let mut scores = [0f32; ATTEND_BLOCK];
    let mut start = 0;
    while start < keys.rows {
        let len = ATTEND_BLOCK.min(keys.rows - start);
        let block = &mut scores[..len];
        for (j, s) in block.iter_mut().enumerate() {
            *s = scale * dot_kv(q, keys.row(start + j, d));
        }
        let block_max = block.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let new_max = running_max.max(block_max);
        if new_max > running_max && running_max > f32::NEG_INFINITY {
            let correction = (running_max - new_max).exp();
            denom *= correction;
            for o in out.iter_mut() {
                *o *= correction;
            }
        }
        running_max = new_max;
        for s in block.iter_mut() {
            *s -= new_max;
        }
        exp_inplace(isa, block);
        for (j, &p) in block.iter().enumerate() {
            denom += p;
            for (o, v) in out.iter_mut().zip(values.row(start + j, d)) {
                *o += p * v.to_f32();
            }
        }
        start += len;
    }
    if denom > 0.0 {
        let inv = 1.0 / denom;
        for o in out.iter_mut() {
            *o *= inv;
        }
    }
}

/// Which keys a query sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// Every key (an encoder such as BERT).
    None,
    /// Keys at positions `0..=p` for the query at position `p`.
    Causal,
    /// Keys at positions `p + 1 - w ..= p` (a sliding window of `w`, the query included).
    Window(usize),
}

/// The keys query position `pos` sees among `n_keys`.
#[inline]
fn visible(mask: Mask, pos: usize, n_keys: usize) -> std::ops::Range<usize> {
    match mask {
        Mask::None => 0..n_keys,
        Mask::Causal => 0..(pos + 1).min(n_keys),
        Mask::Window(w) => (pos + 1).saturating_sub(w).min(n_keys)..(pos + 1).min(n_keys),
    }
}

/// Attention for many queries of one head, one query at a time (no scratch; for a handful of
/// queries, as in decoding; many queries go faster through [`attend_blocked`]): query `i` (row `i` of `queries`) stands at position
/// `first_pos + i` among the keys, which are at positions `0..keys.rows`; `out` row `i` (at
/// `out_stride`) receives its result.
#[allow(clippy::too_many_arguments)]
pub fn attend_rows<T: KvElem>(
    isa: Isa,
    queries: Rows<'_>,
    d: usize,
    keys: Rows<'_, T>,
    values: Rows<'_, T>,
    scale: f32,
    mask: Mask,
    first_pos: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    const NAME: &str = "attend_rows";
    check_attention(NAME, queries, d, keys, values, out, out_stride)?;
    let isa = isa.effective();
    for i in 0..queries.rows {
        let seen = visible(mask, first_pos + i, keys.rows);
        let o = &mut out[i * out_stride..i * out_stride + d];
        attend_unchecked(
            isa,
            queries.row(i, d),
            keys.range(seen.clone()),
            values.range(seen),
            scale,
            o,
        );
    }
    Ok(())
}

fn check_attention<T: KvElem>(
    name: &'static str,
    queries: Rows<'_>,
    d: usize,
    keys: Rows<'_, T>,
    values: Rows<'_, T>,
    out: &[f32],
    out_stride: usize,
) -> Result<()> {
    queries.check(name, "queries", d)?;
    keys.check(name, "keys", d)?;
    values.check(name, "values", d)?;
    if keys.rows != values.rows {
        return Err(shape_error(
            name,
            format!("{} keys but {} values", keys.rows, values.rows),
        ));
    }
    if queries.rows > 0
        && (out_stride < d || rows_span(queries.rows, out_stride, d).is_none_or(|s| s > out.len()))
    {
        return Err(shape_error(
            name,
            format!(
                "out cannot hold {} rows of {d} at stride {out_stride}",
                queries.rows
            ),
        ));
    }
    Ok(())
}

/// Keys per block of [`attend_blocked`] (a multiple of the panel width).
const KEY_BLOCK: usize = 256;

/// Buffers of [`attend_blocked`], reused across calls (one per worker). They grow to the
/// largest (keys × head dimension) seen and are never shrunk.
#[derive(Default)]
pub struct AttentionScratch {
    keys: Vec<Row16>,
    values: Vec<f32>,
    scores: Vec<f32>,
    acc: Vec<f32>,
}

impl AttentionScratch {
    /// Empty; allocates on first use.
    pub fn new() -> AttentionScratch {
        AttentionScratch::default()
    }
}

impl std::fmt::Debug for AttentionScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttentionScratch")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

fn grow<T: Clone + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

/// Attention for many queries of one head as tiled matrix products (flash-attention style):
/// the same result as [`attend_rows`], with the keys packed once into panels and the values
/// copied once, then for each block of query rows the scores against a block of
/// 256 keys (the GEMM micro-kernel), an online softmax across key blocks, and the
/// weighted sum of values (the micro-kernel again). Never holds more scores than one query
/// block × one key block. Single-threaded: run heads (or texts) on different workers, each
/// with its own scratch.
#[allow(clippy::too_many_arguments)]
pub fn attend_blocked<T: KvElem>(
    isa: Isa,
    scratch: &mut AttentionScratch,
    queries: Rows<'_>,
    d: usize,
    keys: Rows<'_, T>,
    values: Rows<'_, T>,
    scale: f32,
    mask: Mask,
    first_pos: usize,
    out: &mut [f32],
    out_stride: usize,
) -> Result<()> {
    check_attention("attend_blocked", queries, d, keys, values, out, out_stride)?;
    let isa = isa.effective();
    let n_keys = keys.rows;
    let tile = crate::gemm::f32_kernel(isa);
    let (kernel, mr_max) = (tile.kernel, tile.mr);
    let dpad = d.div_ceil(PANEL) * PANEL;
    let key_panels = n_keys.div_ceil(PANEL);
    // Keys into panels of 16 (k-major, like packed weights); values into rows of dpad.
    grow(&mut scratch.keys, key_panels * d);
    grow(&mut scratch.values, n_keys * dpad);
    grow(&mut scratch.scores, MR_MAX * KEY_BLOCK);
    grow(&mut scratch.acc, MR_MAX * dpad);
    // Key rows are read contiguously (they may be far apart: a head of a fused QKV tensor).
    for j in 0..n_keys {
        let (p, c) = (j / PANEL, j % PANEL);
        for (dd, &v) in keys.row(j, d).iter().enumerate() {
            scratch.keys[p * d + dd].0[c] = v.to_f32();
        }
    }
    // Columns of the last panel past the keys (stale from a longer call) must be finite.
    if !n_keys.is_multiple_of(PANEL) {
        let p = n_keys / PANEL;
        for dd in 0..d {
            scratch.keys[p * d + dd].0[n_keys % PANEL..].fill(0.0);
        }
    }
    for j in 0..n_keys {
        let dst = &mut scratch.values[j * dpad..(j + 1) * dpad];
        for (o, v) in dst[..d].iter_mut().zip(values.row(j, d)) {
            *o = v.to_f32();
        }
        dst[d..].fill(0.0);
    }
    let keys_ptr: *const f32 = scratch.keys.as_ptr().cast();
    let mut i0 = 0;
    while i0 < queries.rows {
        let mr = mr_max.min(queries.rows - i0);
        let mut seen: [std::ops::Range<usize>; MR_MAX] = std::array::from_fn(|_| 0..0);
        for (r, s) in seen.iter_mut().enumerate().take(mr) {
            *s = visible(mask, first_pos + i0 + r, n_keys);
        }
        let lo = seen[..mr].iter().map(|s| s.start).min().unwrap_or(0) / PANEL * PANEL;
        let hi = seen[..mr].iter().map(|s| s.end).max().unwrap_or(0);
        let mut row_max = [f32::NEG_INFINITY; MR_MAX];
        let mut row_sum = [0f32; MR_MAX];
        scratch.acc[..mr * dpad].fill(0.0);
        let mut kb0 = lo;
        while kb0 < hi {
            let kb1 = (kb0 + KEY_BLOCK).min(hi);
            // Scores of the block: S[r][j - kb0] = q_r · k_j.
            for p in kb0 / PANEL..kb1.div_ceil(PANEL) {
                // SAFETY: query rows i0..i0+mr hold d values at their stride (checked); panel p
                // holds d rows of 16 (packed above); the scores tile (p*16 - kb0 + 16 <=
                // KEY_BLOCK, mr <= MR_MAX rows) lies inside `scores`; the kernel's ISA is
                // supported (effective).
                unsafe {
                    kernel(
                        d,
                        queries.data.as_ptr().add(i0 * queries.stride),
                        queries.stride,
                        keys_ptr.add(p * d * PANEL),
                        PANEL,
                        0,
                        scratch.scores.as_mut_ptr().add(p * PANEL - kb0),
                        KEY_BLOCK,
                        mr,
                        1,
                        false,
                    );
                }
            }
            // Online softmax per row over the keys it sees in this block.
            for r in 0..mr {
                let row = &mut scratch.scores[r * KEY_BLOCK..r * KEY_BLOCK + (kb1 - kb0)];
                let vis = seen[r].start.max(kb0)..seen[r].end.min(kb1);
                if vis.is_empty() {
                    row.fill(0.0);
                    continue;
                }
                let vis = vis.start - kb0..vis.end - kb0;
                let block_max = lane_max(&row[vis.clone()], |v| v * scale);
                let new_max = row_max[r].max(block_max);
                if row_max[r] > f32::NEG_INFINITY && new_max > row_max[r] {
                    let correction = (row_max[r] - new_max).exp();
                    row_sum[r] *= correction;
                    for o in &mut scratch.acc[r * dpad..(r + 1) * dpad] {
                        *o *= correction;
                    }
                }
                row_max[r] = new_max;
                for v in &mut row[vis.clone()] {
                    *v = *v * scale - new_max;
                }
                exp_inplace(isa, &mut row[vis.clone()]);
                row_sum[r] += lane_sum(&row[vis.clone()], |v| v);
                row[..vis.start].fill(0.0);
                row[vis.end..].fill(0.0);
            }
            // acc += P · V[kb0..kb1].
            for q in 0..dpad / PANEL {
                // SAFETY: P is mr rows of kb1 - kb0 scores at stride KEY_BLOCK; value rows
                // kb0..kb1 hold dpad values each (copied above) so columns q*16..q*16+16 exist;
                // acc holds mr rows of dpad.
                unsafe {
                    kernel(
                        kb1 - kb0,
                        scratch.scores.as_ptr(),
                        KEY_BLOCK,
                        scratch.values.as_ptr().add(kb0 * dpad + q * PANEL),
                        dpad,
                        0,
                        scratch.acc.as_mut_ptr().add(q * PANEL),
                        dpad,
                        mr,
                        1,
                        true,
                    );
                }
            }
            kb0 = kb1;
        }
        for r in 0..mr {
            let o = &mut out[(i0 + r) * out_stride..(i0 + r) * out_stride + d];
            let inv = if row_sum[r] > 0.0 {
                1.0 / row_sum[r]
            } else {
                0.0
            };
            for (o, &a) in o.iter_mut().zip(&scratch.acc[r * dpad..r * dpad + d]) {
                *o = a * inv;
            }
        }
        i0 += mr;
    }
    Ok(())
}

// ---------------------------------------------------------------- f16

/// IEEE half (as bits) to f32, exactly.
pub fn f16_to_f32_scalar(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let shift = mant.leading_zeros() - 21; // bring the top set bit to bit 10
            let mant = (mant << shift) & 0x3ff;
            let exp = 127 - 15 + 1 - shift;
            sign | (exp << 23) | (mant << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

/// f32 to IEEE half (as bits), rounding to nearest even (what F16C's `vcvtps2ph` does);
/// overflow gives infinity, NaN stays NaN.
pub fn f32_to_f16_scalar(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        return if mant == 0 {
            sign | 0x7c00
        } else {
            sign | 0x7e00 | ((mant >> 13) as u16)
        };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal half (or zero): shift the full significand into place, round to even.
        if e < -10 {
            return sign;
        }
        let full = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = full >> shift;
        let rem = full & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        let round = rem > halfway || (rem == halfway && half & 1 == 1);
        return sign | (half + u32::from(round)) as u16;
    }
    let half = ((e as u32) << 10) | (mant >> 13);
    let rem = mant & 0x1fff;
    let round = rem > 0x1000 || (rem == 0x1000 && half & 1 == 1);
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    sign | (half + u32::from(round)) as u16
}

/// Converts halves (bits) to f32; `dst.len() == src.len()`.
pub fn f16_to_f32(isa: Isa, src: &[u16], dst: &mut [f32]) -> Result<()> {
    check_len("f16_to_f32", "dst", dst.len(), src.len())?;
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: F16C is part of the Avx2 path (effective); lengths are equal.
        Isa::Avx2 | Isa::Avx512 => unsafe { crate::x86::vec::f16_to_f32_f16c(src, dst) },
        _ => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f16_to_f32_scalar(s);
            }
        }
    }
    Ok(())
}

/// Converts f32 to halves (bits), rounding to nearest even; `dst.len() == src.len()`.
pub fn f32_to_f16(isa: Isa, src: &[f32], dst: &mut [u16]) -> Result<()> {
    check_len("f32_to_f16", "dst", dst.len(), src.len())?;
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: F16C is part of the Avx2 path (effective); lengths are equal.
        Isa::Avx2 | Isa::Avx512 => unsafe { crate::x86::vec::f32_to_f16_f16c(src, dst) },
        _ => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f32_to_f16_scalar(s);
            }
        }
    }
    Ok(())
}
