//! int8 matrix product `C = A·Bᵀ` with per-row scales, and the same [`Epilogue`] as f32.
//!
//! Weights are quantised once at load, per output row, symmetrically: `w ≈ sw[j] · q[j, kk]`
//! with `q ∈ [-127, 127]` ([`PackedI8`]). Activations are quantised per row the same way just
//! before the product ([`QuantizedRows`], reusable, allocation-free at a steady shape). The
//! integer dot products are exact (i32; `k` up to [`MAX_K`]) and identical on every path:
//!
//! - AVX2: `maddubs` needs one unsigned operand, so each pair is multiplied as `|a| · (w·sign a)`
//!   (`_mm256_sign_epi8`); with both operands in `[-127, 127]` the 16-bit pair sums stay below
//!   `2 · 127² = 32258`, so `maddubs` never saturates; `madd` with ones widens to i32.
//! - AVX-512 VNNI: `vpdpbusd` multiplies `a + 128` (unsigned) by `w` and the driver-free
//!   correction `- 128 · Σw[j]` (precomputed per row at packing) restores `Σ a·w`.
//! - NEON: `sdot` multiplies signed bytes directly (written, compiled only on aarch64, untested
//!   here).
//!
//! Then `C[i, j] = (dot as f32 · sa[i]) · sw[j]`, evaluated in that order on every path, so the
//! output before the epilogue is bit-identical across paths.

use crate::error::{Result, check_len, product, shape_error};
use crate::gemm::{Epilogue, PANEL, SharedOut, Work, norm_rows};
use crate::isa::Isa;
use crate::team::Team;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest inner dimension: keeps `Σ a·w` inside i32 (`k · 127² < 2³¹`).
pub const MAX_K: usize = 131_072;
/// The largest row tile of any int8 micro-kernel.
pub(crate) const MR_MAX: usize = 8;
/// Panels per L2 block.
const NC_PANELS: usize = 64;
/// Columns of an output tile buffer (two panels).
pub(crate) const TILE_COLS: usize = 2 * PANEL;

/// Four k values of a 16-column panel: 64 bytes, one cache line, `[col][4]`.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Group64(pub [i8; 4 * PANEL]);

impl Default for Group64 {
    fn default() -> Self {
        Group64([0; 4 * PANEL])
    }
}

/// Symmetric per-row quantisation of one row: returns the scale (`absmax / 127`, 0 for a zero
/// row) and writes `round_ties_even(x · 127 / absmax)` to `out`.
pub fn quantize_row_scalar(x: &[f32], out: &mut [i8]) -> f32 {
    let absmax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (scale, inv) = row_scale(absmax);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = quantize_value(v, inv);
    }
    scale
}

/// The scale and its reciprocal multiplier for a row's absolute maximum.
#[inline]
pub(crate) fn row_scale(absmax: f32) -> (f32, f32) {
    if absmax > 0.0 && absmax.is_finite() {
        (absmax / 127.0, 127.0 / absmax)
    } else {
        (0.0, 0.0)
    }
}

#[inline]
pub(crate) fn quantize_value(v: f32, inv: f32) -> i8 {
    let q = (v * inv).round_ties_even();
    q.clamp(-127.0, 127.0) as i8
}

/// A weight matrix `[n × k]` quantised per row to i8 and packed for the int8 micro-kernels.
#[derive(Clone)]
pub struct PackedI8 {
    n: usize,
    k: usize,
    /// Panel `p`, k-group `g` at `groups[p * k_groups + g]`.
    groups: Vec<Group64>,
    /// Per output column (padded with zeros to whole panels).
    scales: Vec<f32>,
    /// `Σ_kk q[j, kk]` per output column (padded), for the VNNI correction.
    sums: Vec<i32>,
}

impl PackedI8 {
    /// Quantises and packs a row-major f32 `[n × k]` weight matrix.
    pub fn quantize(b: &[f32], n: usize, k: usize) -> Result<PackedI8> {
        const NAME: &str = "PackedI8::quantize";
        check_len(NAME, "b", b.len(), product(NAME, n, k)?)?;
        let mut q = vec![0i8; n * k];
        let mut scales = vec![0f32; n];
        for j in 0..n {
            scales[j] = quantize_row_scalar(&b[j * k..(j + 1) * k], &mut q[j * k..(j + 1) * k]);
        }
        PackedI8::from_quantized(&q, &scales, n, k)
    }

    /// Packs weights already quantised to `[-127, 127]` with one scale per row.
    pub fn from_quantized(q: &[i8], scales: &[f32], n: usize, k: usize) -> Result<PackedI8> {
        const NAME: &str = "PackedI8::from_quantized";
        check_len(NAME, "q", q.len(), product(NAME, n, k)?)?;
        check_len(NAME, "scales", scales.len(), n)?;
        if k > MAX_K {
            return Err(shape_error(NAME, format!("k = {k} exceeds {MAX_K}")));
        }
        if q.contains(&i8::MIN) {
            return Err(shape_error(
                NAME,
                "q holds -128; codes must lie in [-127, 127]".into(),
            ));
        }
        let panels = n.div_ceil(PANEL);
        let k_groups = k.div_ceil(4);
        let mut groups = vec![Group64::default(); panels * k_groups];
        let mut padded_scales = vec![0f32; panels * PANEL];
        let mut sums = vec![0i32; panels * PANEL];
        for j in 0..n {
            let (p, c) = (j / PANEL, j % PANEL);
            let row = &q[j * k..(j + 1) * k];
            for (kk, &v) in row.iter().enumerate() {
                groups[p * k_groups + kk / 4].0[c * 4 + kk % 4] = v;
            }
            sums[j] = row.iter().map(|&v| i32::from(v)).sum();
            padded_scales[j] = scales[j];
        }
        Ok(PackedI8 {
            n,
            k,
            groups,
            scales: padded_scales,
            sums,
        })
    }

    /// Output columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The inner dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.groups.len() * 64 + self.scales.len() * 8
    }

    /// Per-row scales (`n` values).
    pub fn scales(&self) -> &[f32] {
        &self.scales[..self.n]
    }

    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(PANEL)
    }

    pub(crate) fn k_groups(&self) -> usize {
        self.k.div_ceil(4)
    }

    pub(crate) fn as_ptr(&self) -> *const i8 {
        self.groups.as_ptr().cast()
    }
}

impl std::fmt::Debug for PackedI8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedI8")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish()
    }
}

/// Activations quantised per row: `a ≈ sa[i] · q[i, kk]`. Reuse one across calls: its buffers
/// grow to the largest shape and are then reused.
#[derive(Default, Clone)]
pub struct QuantizedRows {
    m: usize,
    k: usize,
    /// Row stride in bytes: `k` rounded up to 4; padding is zero.
    stride: usize,
    data: Vec<i8>,
    scales: Vec<f32>,
}

impl std::fmt::Debug for QuantizedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantizedRows")
            .field("m", &self.m)
            .field("k", &self.k)
            .finish()
    }
}

impl QuantizedRows {
    /// Empty; allocates on first use.
    pub fn new() -> QuantizedRows {
        QuantizedRows::default()
    }

    /// Quantises `a [m × k]` (row-major) into this buffer, on the calling thread.
    pub fn quantize(&mut self, isa: Isa, a: &[f32], m: usize, k: usize) -> Result<()> {
        self.prepare(a, m, k)?;
        let isa = isa.effective();
        if self.stride == 0 {
            self.scales[..m].fill(0.0);
            return Ok(());
        }
        for (i, out) in self.data.chunks_exact_mut(self.stride).take(m).enumerate() {
            out[k..].fill(0);
            self.scales[i] = quantize_row(isa, &a[i * k..(i + 1) * k], &mut out[..k]);
        }
        Ok(())
    }

    /// Quantises `a [m × k]` (row-major) into this buffer, rows split over the team.
    pub fn quantize_on(
        &mut self,
        isa: Isa,
        team: &Team,
        a: &[f32],
        m: usize,
        k: usize,
    ) -> Result<()> {
        self.prepare(a, m, k)?;
        let isa = isa.effective();
        let stride = self.stride;
        let data = SharedOut(self.data.as_mut_ptr());
        let scales = SharedOut(self.scales.as_mut_ptr());
        team.run(|w, nw| {
            for i in crate::team::split_range(m, w, nw) {
                // SAFETY: each worker owns its own rows of `data` (stride bytes each) and their
                // scales; both buffers hold at least m rows (`prepare`).
                let (out, scale) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(data.get().add(i * stride), stride),
                        &mut *scales.get().add(i),
                    )
                };
                out[k..].fill(0);
                *scale = quantize_row(isa, &a[i * k..(i + 1) * k], &mut out[..k]);
            }
        });
        Ok(())
    }

    /// Checks the shape and sizes the buffers (growing only).
    fn prepare(&mut self, a: &[f32], m: usize, k: usize) -> Result<()> {
        const NAME: &str = "QuantizedRows::quantize";
        check_len(NAME, "a", a.len(), product(NAME, m, k)?)?;
        if k > MAX_K {
            return Err(shape_error(NAME, format!("k = {k} exceeds {MAX_K}")));
        }
        self.m = m;
        self.k = k;
        self.stride = k.div_ceil(4) * 4;
        if self.data.len() < m * self.stride {
            self.data.resize(m * self.stride, 0);
        }
        if self.scales.len() < m {
            self.scales.resize(m, 0.0);
        }
        Ok(())
    }

    /// Rows.
    pub fn m(&self) -> usize {
        self.m
    }

    /// The inner dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Row `i`'s codes (`k` values).
    pub fn row(&self, i: usize) -> &[i8] {
        &self.data[i * self.stride..i * self.stride + self.k]
    }

    /// Per-row scales (`m` values).
    pub fn scales(&self) -> &[f32] {
        &self.scales[..self.m]
    }
}

/// Quantises one row on `isa` (bit-identical to [`quantize_row_scalar`]); returns the scale.
pub fn quantize_row(isa: Isa, x: &[f32], out: &mut [i8]) -> f32 {
    match isa.effective() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 if out.len() == x.len() => {
            // SAFETY: AVX2 is supported (effective) and the lengths match.
            unsafe { crate::x86::int8::quantize_row_avx2(x, out) }
        }
        _ => quantize_row_scalar(x, out),
    }
}

/// An int8 micro-kernel: raw dot products of `mr` activation rows with `np` consecutive panels
/// (`np * 16` columns) over `k_groups` groups of 4, written to `out` (row stride
/// [`TILE_COLS`]).
///
/// # Safety
/// `a` readable for `mr` rows of `4 * k_groups` bytes at stride `lda`; `b` for `np` panels of
/// `k_groups` 64-byte-aligned groups at stride `bstride` bytes; `sums` for `np * 16` values;
/// `out` writable for `mr × TILE_COLS`; the CPU supports the kernel's ISA.
pub(crate) type I8Kernel = unsafe fn(
    k_groups: usize,
    a: *const i8,
    lda: usize,
    b: *const i8,
    bstride: usize,
    sums: *const i32,
    out: *mut i32,
    mr: usize,
    np: usize,
);

/// The kernel, its row tile and panels per tile.
fn i8_kernel(isa: Isa) -> (I8Kernel, usize, usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (crate::x86::int8::kernel_vnni, 8, 2),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (crate::x86::int8::kernel_avx2, 4, 1),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => (crate::aarch64::int8::kernel_sdot, 4, 1),
        _ => (scalar_kernel, 4, 1),
    }
}

/// # Safety
/// As [`I8Kernel`] (any CPU).
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_kernel(
    k_groups: usize,
    a: *const i8,
    lda: usize,
    b: *const i8,
    bstride: usize,
    _sums: *const i32,
    out: *mut i32,
    mr: usize,
    np: usize,
) {
    for p in 0..np {
        // SAFETY: the caller guarantees np panels of k_groups 64-byte groups.
        let panel = unsafe { std::slice::from_raw_parts(b.add(p * bstride), k_groups * 64) };
        for i in 0..mr {
            // SAFETY: the caller guarantees mr rows of 4 * k_groups bytes.
            let row = unsafe { std::slice::from_raw_parts(a.add(i * lda), k_groups * 4) };
            let mut acc = [0i32; PANEL];
            for (g, quad) in row.chunks_exact(4).enumerate() {
                let group = &panel[g * 64..(g + 1) * 64];
                for (c, acc) in acc.iter_mut().enumerate() {
                    for t in 0..4 {
                        *acc += i32::from(quad[t]) * i32::from(group[c * 4 + t]);
                    }
                }
            }
            for (c, v) in acc.iter().enumerate() {
                // SAFETY: the caller guarantees mr × TILE_COLS writable values.
                unsafe { *out.add(i * TILE_COLS + p * PANEL + c) = *v };
            }
        }
    }
}

/// What the int8 driver does with each finished tile of raw dots.
trait TileSink: Sync {
    /// `dots[r * TILE_COLS + c]` for rows `i..i + mr`, columns `j0..j0 + nv`.
    ///
    /// # Safety
    /// The caller owns those elements of the output exclusively.
    unsafe fn tile(&self, i: usize, mr: usize, j0: usize, nv: usize, dots: &[i32]);

    /// Whether finished rows get a second step ([`TileSink::rows`]).
    fn has_row_step(&self) -> bool {
        false
    }

    /// Rows that are complete.
    ///
    /// # Safety
    /// The caller owns those rows of the output exclusively.
    unsafe fn rows(&self, _rows: std::ops::Range<usize>) {}
}

struct Dequant<'a> {
    isa: Isa,
    n: usize,
    out: SharedOut<f32>,
    a_scales: &'a [f32],
    b_scales: &'a [f32],
    epilogue: Epilogue<'a>,
}

impl TileSink for Dequant<'_> {
    unsafe fn tile(&self, i: usize, mr: usize, j0: usize, nv: usize, dots: &[i32]) {
        for r in 0..mr {
            // SAFETY: the caller owns row i + r, columns j0..j0 + nv of the m × n output.
            let values = unsafe {
                std::slice::from_raw_parts_mut(self.out.0.add((i + r) * self.n + j0), nv)
            };
            let sa = self.a_scales[i + r];
            let sw = &self.b_scales[j0..j0 + nv];
            let d = &dots[r * TILE_COLS..r * TILE_COLS + nv];
            match self.isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the ISA is effective, so AVX2 is present.
                Isa::Avx2 | Isa::Avx512 => unsafe {
                    crate::x86::int8::dequant_avx2(values, d, sa, sw)
                },
                _ => dequant(values, d, sa, sw),
            }
            self.epilogue.apply(self.isa, self.n, i + r, j0, values);
        }
    }

    fn has_row_step(&self) -> bool {
        self.epilogue.row_norm().is_some()
    }

    unsafe fn rows(&self, rows: std::ops::Range<usize>) {
        if let Some(norm) = self.epilogue.row_norm() {
            // SAFETY: the caller owns these complete rows.
            unsafe { norm_rows(self.isa, self.out, self.n, rows, &norm) };
        }
    }
}

/// `values[c] = (dots[c] as f32 · sa) · sw[c]`: the same operations, in the same order, on
/// every path.
#[inline(always)]
pub(crate) fn dequant(values: &mut [f32], dots: &[i32], sa: f32, sw: &[f32]) {
    for ((v, &d), &sw) in values.iter_mut().zip(dots).zip(sw) {
        *v = (d as f32 * sa) * sw;
    }
}

struct RawDots {
    n: usize,
    out: SharedOut<i32>,
}

impl TileSink for RawDots {
    unsafe fn tile(&self, i: usize, mr: usize, j0: usize, nv: usize, dots: &[i32]) {
        for r in 0..mr {
            for c in 0..nv {
                // SAFETY: the caller owns these elements of the m × n output.
                unsafe { *self.out.0.add((i + r) * self.n + j0 + c) = dots[r * TILE_COLS + c] };
            }
        }
    }
}

fn check(name: &'static str, a: &QuantizedRows, b: &PackedI8) -> Result<()> {
    if a.k != b.k {
        return Err(shape_error(
            name,
            format!("activations have k = {}, weights k = {}", a.k, b.k),
        ));
    }
    Ok(())
}

/// `C [m × n] = epilogue(dequant(A_q · B_qᵀ))` on the team; `c` has `a.m() * b.n()` values.
pub fn gemm_i8(
    isa: Isa,
    team: &Team,
    a: &QuantizedRows,
    b: &PackedI8,
    c: &mut [f32],
    epilogue: Epilogue<'_>,
) -> Result<()> {
    const NAME: &str = "gemm_i8";
    check(NAME, a, b)?;
    check_len(NAME, "c", c.len(), product(NAME, a.m, b.n)?)?;
    epilogue.check(NAME, a.m, b.n)?;
    let isa = isa.effective();
    let sink = Dequant {
        isa,
        n: b.n,
        out: SharedOut(c.as_mut_ptr()),
        a_scales: a.scales(),
        b_scales: &b.scales,
        epilogue,
    };
    drive(isa, team, a, b, &sink);
    Ok(())
}

/// The exact integer dot products `Σ_kk A_q[i, kk] · B_q[j, kk]` (`out` has `m × n` values).
pub fn gemm_i8_dots(
    isa: Isa,
    team: &Team,
    a: &QuantizedRows,
    b: &PackedI8,
    out: &mut [i32],
) -> Result<()> {
    const NAME: &str = "gemm_i8_dots";
    check(NAME, a, b)?;
    check_len(NAME, "out", out.len(), product(NAME, a.m, b.n)?)?;
    let sink = RawDots {
        n: b.n,
        out: SharedOut(out.as_mut_ptr()),
    };
    drive(isa.effective(), team, a, b, &sink);
    Ok(())
}

fn drive(isa: Isa, team: &Team, a: &QuantizedRows, b: &PackedI8, sink: &dyn TileSink) {
    let (m, n) = (a.m, b.n);
    if m == 0 || n == 0 {
        return;
    }
    let (kernel, mr_max, np_max) = i8_kernel(isa);
    let k_groups = b.k_groups();
    let panels = b.panels();
    let row_step = sink.has_row_step();
    let next = AtomicUsize::new(0);
    team.region(|w| {
        let work = Work::new(w.count, m, mr_max, panels, np_max);
        let inline = work.by_rows() && panels <= NC_PANELS;
        let mut dots = [0i32; MR_MAX * TILE_COLS];
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= work.items() {
                break;
            }
            let (rows, pans) = work.item(item);
            let mut jc = pans.start;
            while jc < pans.end {
                let jend = (jc + NC_PANELS).min(pans.end);
                let mut i = rows.start;
                while i < rows.end {
                    let mr = mr_max.min(rows.end - i);
                    let mut p = jc;
                    while p < jend {
                        let np = np_max.min(jend - p);
                        let j0 = p * PANEL;
                        let nv = (np * PANEL).min(n - j0);
                        // SAFETY: rows i..i+mr of A (stride a.stride, 4 * k_groups bytes each),
                        // panels p..p+np of B and their sums lie inside the buffers; `dots` holds
                        // MR_MAX × TILE_COLS; the kernel's ISA is supported (effective).
                        unsafe {
                            kernel(
                                k_groups,
                                a.data.as_ptr().add(i * a.stride),
                                a.stride,
                                b.as_ptr().add(p * k_groups * 64),
                                k_groups * 64,
                                b.sums.as_ptr().add(j0),
                                dots.as_mut_ptr(),
                                mr,
                                np,
                            );
                            // SAFETY: each item (rows × panels) is taken by one worker only.
                            sink.tile(i, mr, j0, nv, &dots);
                        }
                        p += np;
                    }
                    if row_step && inline {
                        // SAFETY: this worker owns rows i..i+mr entirely, now complete.
                        unsafe { sink.rows(i..i + mr) };
                    }
                    i += mr;
                }
                jc = jend;
            }
        }
        if row_step && !inline {
            w.barrier();
            // SAFETY: after the barrier the product is complete; each worker takes its rows.
            unsafe { sink.rows(w.share(m)) };
        }
    });
}

/// Reference integer dots from unpacked codes (`a [m × k]`, `b [n × k]`). For tests.
pub fn reference_dots(a: &[i8], m: usize, b: &[i8], n: usize, k: usize) -> Vec<i32> {
    let mut out = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|kk| i32::from(a[i * k + kk]) * i32::from(b[j * k + kk]))
                .sum();
        }
    }
    out
}
