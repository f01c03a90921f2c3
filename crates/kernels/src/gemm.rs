//! f32 matrix product `C = A·Bᵀ`, with a fused epilogue.
//!
//! `A` is row-major `[m × k]` (activations), `B` is a weight matrix `[n × k]` in PyTorch's
//! `Linear` layout, packed once at load into [`PackedF32`]: panels of 16 output columns, each
//! stored k-major and 64-byte aligned, which is what the micro-kernels stream. The product is
//! blocked over k (so a panel block stays in L2 while rows of `A` stay in L1) and over panels,
//! split over a [`Team`] by row blocks (many rows) or by panels (few rows: decode), and each
//! finished tile goes through the [`Epilogue`] while it is still in cache.

use crate::error::{Result, check_len, product};
use crate::isa::Isa;
use crate::ops;
use crate::team::Team;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Output columns per packed panel.
pub const PANEL: usize = 16;
/// The largest row tile of any f32 micro-kernel.
pub(crate) const MR_MAX: usize = 12;
/// The most panels one micro-kernel call covers.
pub(crate) const NP_MAX: usize = 2;
/// k values per block: a panel block of `KC × 16` floats is 16 KiB.
const KC: usize = 256;
/// Panels per L2 block (`NC_PANELS × KC × 64 B` = 512 KiB).
const NC_PANELS: usize = 32;

/// One k-row of a panel: 16 floats on a cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
pub(crate) struct Row16(pub [f32; PANEL]);

/// A weight matrix `B [n × k]` packed for the f32 micro-kernels. Pack once at load.
#[derive(Clone)]
pub struct PackedF32 {
    n: usize,
    k: usize,
    /// Panel `p`, k-row `kk` at `rows[p * k + kk]`; columns past `n` are zero.
    rows: Vec<Row16>,
}

impl PackedF32 {
    /// Packs a row-major `[n × k]` matrix.
    pub fn pack(b: &[f32], n: usize, k: usize) -> Result<PackedF32> {
        const NAME: &str = "PackedF32::pack";
        check_len(NAME, "b", b.len(), product(NAME, n, k)?)?;
        let panels = n.div_ceil(PANEL);
        let mut rows = vec![Row16::default(); panels * k];
        for (j, row) in b.chunks_exact(k.max(1)).enumerate().take(n) {
            let (p, c) = (j / PANEL, j % PANEL);
            for (kk, &v) in row.iter().enumerate() {
                rows[p * k + kk].0[c] = v;
            }
        }
        Ok(PackedF32 { n, k, rows })
    }

    /// Output columns (rows of `B`).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The inner dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.rows.len() * std::mem::size_of::<Row16>()
    }

    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(PANEL)
    }

    /// The packed values: panel `p`, k-row `kk`, column `c` at `(p * k + kk) * 16 + c`.
    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.rows.as_ptr().cast()
    }
}

impl std::fmt::Debug for PackedF32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedF32")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish()
    }
}

/// What happens to each finished output tile, fused into the product. Rows and columns are of
/// `C [m × n]`.
#[derive(Clone, Copy, Default)]
pub enum Epilogue<'a> {
    /// `C = A·Bᵀ`.
    #[default]
    None,
    /// `C = A·Bᵀ + bias[col]`; `bias` has `n` values.
    Bias(&'a [f32]),
    /// `C = gelu(A·Bᵀ + bias[col])` with the erf-based GELU BERT uses.
    BiasGelu(&'a [f32]),
    /// `C = A·Bᵀ + bias[col] + residual[row, col]`; `residual` is `[m × n]` row-major.
    BiasResidual {
        /// `n` values.
        bias: &'a [f32],
        /// `m × n` values.
        residual: &'a [f32],
    },
    /// `BiasResidual`, then each finished row normalised (BERT's `LayerNorm(x·Wᵀ + b + x)`).
    /// A worker that owns whole rows normalises them right after their last tile; otherwise
    /// the rows are normalised in a second step of the same parallel region.
    BiasResidualNorm {
        /// `n` values.
        bias: &'a [f32],
        /// `m × n` values.
        residual: &'a [f32],
        /// The normalisation over each row of `n`.
        norm: RowNorm<'a>,
    },
    /// Anything else: `f(row, first_col, values)` on each finished piece of a row (at most 32
    /// columns), after the product. Called from worker threads.
    Custom(&'a (dyn Fn(usize, usize, &mut [f32]) + Sync)),
}

/// A normalisation of whole output rows (see [`Epilogue::BiasResidualNorm`]).
#[derive(Clone, Copy)]
pub enum RowNorm<'a> {
    /// `(x - mean) / sqrt(var + eps) · gamma + beta`.
    Layer {
        /// `n` values.
        gamma: &'a [f32],
        /// `n` values.
        beta: &'a [f32],
        /// Added to the variance.
        eps: f32,
    },
    /// `x / sqrt(mean(x²) + eps) · weight`.
    Rms {
        /// `n` values.
        weight: &'a [f32],
        /// Added to the mean square.
        eps: f32,
    },
}

impl RowNorm<'_> {
    fn check(&self, kernel: &'static str, n: usize) -> Result<()> {
        match self {
            RowNorm::Layer { gamma, beta, .. } => {
                check_len(kernel, "gamma", gamma.len(), n)?;
                check_len(kernel, "beta", beta.len(), n)
            }
            RowNorm::Rms { weight, .. } => check_len(kernel, "weight", weight.len(), n),
        }
    }

    /// Normalises one whole row (its length is `n`, checked with the epilogue).
    pub(crate) fn apply(&self, isa: Isa, row: &mut [f32]) {
        let n = row.len();
        // The lengths were checked with the epilogue, so these cannot fail.
        let _ = match *self {
            RowNorm::Layer { gamma, beta, eps } => ops::layer_norm(isa, row, n, gamma, beta, eps),
            RowNorm::Rms { weight, eps } => ops::rms_norm(isa, row, n, weight, eps),
        };
    }
}

impl Epilogue<'_> {
    pub(crate) fn check(&self, kernel: &'static str, m: usize, n: usize) -> Result<()> {
        match self {
            Epilogue::None | Epilogue::Custom(_) => Ok(()),
            Epilogue::Bias(b) | Epilogue::BiasGelu(b) => check_len(kernel, "bias", b.len(), n),
            Epilogue::BiasResidual { bias, residual } => {
                check_len(kernel, "bias", bias.len(), n)?;
                check_len(kernel, "residual", residual.len(), product(kernel, m, n)?)
            }
            Epilogue::BiasResidualNorm {
                bias,
                residual,
                norm,
            } => {
                check_len(kernel, "bias", bias.len(), n)?;
                check_len(kernel, "residual", residual.len(), product(kernel, m, n)?)?;
                norm.check(kernel, n)
            }
        }
    }

    /// The row normalisation, if any.
    pub(crate) fn row_norm(&self) -> Option<RowNorm<'_>> {
        match self {
            Epilogue::BiasResidualNorm { norm, .. } => Some(*norm),
            _ => None,
        }
    }

    /// Applies the epilogue to `values` = `C[row, col0 .. col0 + values.len()]`.
    #[inline]
    pub(crate) fn apply(&self, isa: Isa, n: usize, row: usize, col0: usize, values: &mut [f32]) {
        let cols = col0..col0 + values.len();
        match self {
            Epilogue::None => {}
            Epilogue::Bias(bias) => add_assign(values, &bias[cols]),
            Epilogue::BiasGelu(bias) => match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 | Isa::Avx512 => {
                    // SAFETY: `isa` is effective (the drivers pass `isa.effective()`), so AVX2
                    // and FMA are present.
                    unsafe { crate::x86::vec::bias_gelu_avx2(values, &bias[cols]) }
                }
                _ => {
                    add_assign(values, &bias[cols]);
                    ops::gelu(isa, values);
                }
            },
            Epilogue::BiasResidual { bias, residual }
            | Epilogue::BiasResidualNorm { bias, residual, .. } => {
                let r = &residual[row * n + col0..row * n + cols.end];
                for ((v, b), r) in values.iter_mut().zip(&bias[cols]).zip(r) {
                    *v += b + r;
                }
            }
            Epilogue::Custom(f) => f(row, col0, values),
        }
    }
}

#[inline]
fn add_assign(values: &mut [f32], add: &[f32]) {
    for (v, a) in values.iter_mut().zip(add) {
        *v += a;
    }
}

/// A raw output pointer shared by the workers of a region, each writing disjoint tiles.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut<T>(pub *mut T);
impl<T> SharedOut<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not the field).
    #[inline]
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: the drivers hand each worker a disjoint set of output tiles (rows × columns), so no
// element is written by two threads, and the region ends before the borrow of the output does.
unsafe impl<T> Send for SharedOut<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SharedOut<T> {}

/// A micro-kernel: computes an `mr × (16·np)` tile (`mr` and `np` up to the kernel's tile) of
/// `A[mr × kc] · B[kc × 16·np]`, storing it to `c` (row stride `ldc`) or adding it to what is
/// there. `B` is `np` panels of 16 columns, `bstride` apart; a panel's rows are `ldb` apart
/// (16 for a packed panel, more for a row-major matrix).
///
/// # Safety
/// `a` must be readable for `mr` rows of `kc` values at stride `lda`, each of the `np` panels
/// of `b` for `kc` rows of 16 values at stride `ldb`, `c` writable for `mr` rows of `16·np`
/// values at stride `ldc`, and the CPU must support the kernel's ISA.
pub(crate) type F32Kernel = unsafe fn(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    bstride: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    np: usize,
    accumulate: bool,
);

/// A micro-kernel with its tile: up to `mr` rows and `np` panels per call.
#[derive(Clone, Copy)]
pub(crate) struct F32Tile {
    pub kernel: F32Kernel,
    pub mr: usize,
    pub np: usize,
}

/// The micro-kernel and its tile for a (supported) ISA.
pub(crate) fn f32_kernel(isa: Isa) -> F32Tile {
    let (kernel, mr, np): (F32Kernel, usize, usize) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (crate::x86::gemm_f32::kernel_avx512, 12, 2),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (crate::x86::gemm_f32::kernel_avx2, 6, 1),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => (crate::aarch64::gemm_f32::kernel_neon, 6, 1),
        _ => (scalar_kernel, 4, 1),
    };
    F32Tile { kernel, mr, np }
}

/// # Safety
/// As [`F32Kernel`] (any CPU).
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_kernel(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    bstride: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    np: usize,
    accumulate: bool,
) {
    for t in 0..np {
        // SAFETY: forwarded from the caller, one panel at a time.
        unsafe {
            scalar_panel(
                kc,
                a,
                lda,
                b.add(t * bstride),
                ldb,
                c.add(t * PANEL),
                ldc,
                mr,
                accumulate,
            )
        };
    }
}

/// # Safety
/// As [`F32Kernel`] with one panel (any CPU).
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_panel(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    accumulate: bool,
) {
    let mut acc = [[0f32; PANEL]; MR_MAX];
    for (i, acc_row) in acc.iter_mut().enumerate().take(mr) {
        // SAFETY: the caller guarantees `mr` rows of `kc` values at stride `lda`.
        let arow = unsafe { std::slice::from_raw_parts(a.add(i * lda), kc) };
        for (kk, &av) in arow.iter().enumerate() {
            // SAFETY: the caller guarantees `kc` rows of 16 values at stride `ldb`.
            let brow = unsafe { std::slice::from_raw_parts(b.add(kk * ldb), PANEL) };
            for (acc, &bv) in acc_row.iter_mut().zip(brow) {
                *acc += av * bv;
            }
        }
    }
    for (i, acc_row) in acc.iter().enumerate().take(mr) {
        // SAFETY: the caller guarantees `mr` rows of 16 writable values at stride `ldc`.
        let out = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), PANEL) };
        for (o, &v) in out.iter_mut().zip(acc_row) {
            *o = if accumulate { *o + v } else { v };
        }
    }
}

/// Whether [`Work`] cuts by rows (rather than by panels).
pub(crate) fn splits_rows(nw: usize, m: usize, mr: usize, panels: usize, step: usize) -> bool {
    m.div_ceil(mr) >= 4 * nw || panels.div_ceil(step) < nw
}

/// Normalises rows `rows` of the `m × n` output.
///
/// # Safety
/// `out` points at `m × n` values; the caller alone touches these rows now.
pub(crate) unsafe fn norm_rows(
    isa: Isa,
    out: SharedOut<f32>,
    n: usize,
    rows: std::ops::Range<usize>,
    norm: &RowNorm<'_>,
) {
    for r in rows {
        // SAFETY: row r of the m × n output, owned by the caller.
        let row = unsafe { std::slice::from_raw_parts_mut(out.get().add(r * n), n) };
        norm.apply(isa, row);
    }
}

/// The work of one product cut into items that workers take as they come free (an atomic
/// counter), so a worker whose core is busy with something else delays the product by one item,
/// not by a fixed share. Items are row blocks when there are enough rows for every worker
/// (then each item owns whole rows), else blocks of panels over all rows.
pub(crate) struct Work {
    by_rows: bool,
    items: usize,
    /// Rows per item (by rows) or panels per item (by panels).
    per_item: usize,
    m: usize,
    panels: usize,
}

impl Work {
    pub(crate) fn new(nw: usize, m: usize, mr: usize, panels: usize, step: usize) -> Work {
        let by_rows = splits_rows(nw, m, mr, panels, step);
        if by_rows {
            let tiles = m.div_ceil(mr);
            // About eight items per worker: fine enough to balance, coarse enough that each
            // item still streams the weights through the cache only once.
            let tiles_per = (tiles / (8 * nw)).max(1);
            let per_item = tiles_per * mr;
            Work {
                by_rows,
                items: m.div_ceil(per_item),
                per_item,
                m,
                panels,
            }
        } else {
            let steps = panels.div_ceil(step);
            let per_item = (steps / (4 * nw)).max(1) * step;
            Work {
                by_rows,
                items: panels.div_ceil(per_item),
                per_item,
                m,
                panels,
            }
        }
    }

    pub(crate) fn items(&self) -> usize {
        self.items
    }

    /// Whether each item owns whole rows.
    pub(crate) fn by_rows(&self) -> bool {
        self.by_rows
    }

    /// Rows and panels of item `i`.
    pub(crate) fn item(&self, i: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let start = i * self.per_item;
        if self.by_rows {
            (
                start.min(self.m)..(start + self.per_item).min(self.m),
                0..self.panels,
            )
        } else {
            (
                0..self.m,
                start.min(self.panels)..(start + self.per_item).min(self.panels),
            )
        }
    }
}

/// `C [m × n] = epilogue(A [m × k] · Bᵀ)`, on the team. `a` has `m * k` values, `c` `m * n`.
pub fn gemm_f32(
    isa: Isa,
    team: &Team,
    a: &[f32],
    m: usize,
    b: &PackedF32,
    c: &mut [f32],
    epilogue: Epilogue<'_>,
) -> Result<()> {
    const NAME: &str = "gemm_f32";
    let (n, k) = (b.n, b.k);
    check_len(NAME, "a", a.len(), product(NAME, m, k)?)?;
    check_len(NAME, "c", c.len(), product(NAME, m, n)?)?;
    epilogue.check(NAME, m, n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let isa = isa.effective();
    let tile = f32_kernel(isa);
    let out = SharedOut(c.as_mut_ptr());
    let panels = b.panels();
    let norm = epilogue.row_norm();
    let next = AtomicUsize::new(0);
    team.region(|w| {
        let work = Work::new(w.count, m, tile.mr, panels, tile.np);
        // Whole rows finish inside one item's block loop: normalise them there.
        let inline = work.by_rows() && panels <= NC_PANELS;
        let inline_norm = if inline { norm.as_ref() } else { None };
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= work.items() {
                break;
            }
            let (rows, pans) = work.item(item);
            // SAFETY: items are disjoint blocks of rows or of panels of C, each taken by one
            // worker; the lengths were checked above; the kernel belongs to a supported ISA.
            unsafe { f32_block(isa, tile, a, m, b, out, rows, pans, &epilogue, inline_norm) };
        }
        if let (Some(norm), false) = (norm.as_ref(), inline) {
            w.barrier();
            // SAFETY: after the barrier the product is complete; each worker takes its own rows.
            unsafe { norm_rows(isa, out, n, w.share(m), norm) };
        }
    });
    Ok(())
}

/// # Safety
/// `out` must point at `m × n` values of which this call alone touches `rows × pans`; `kernel`
/// must be runnable on this CPU; `a` must hold `m × k` values.
#[allow(clippy::too_many_arguments)]
unsafe fn f32_block(
    isa: Isa,
    tile: F32Tile,
    a: &[f32],
    m: usize,
    b: &PackedF32,
    out: SharedOut<f32>,
    rows: std::ops::Range<usize>,
    pans: std::ops::Range<usize>,
    epilogue: &Epilogue<'_>,
    inline_norm: Option<&RowNorm<'_>>,
) {
    let (n, k) = (b.n, b.k);
    debug_assert!(rows.end <= m);
    let k_blocks = k.div_ceil(KC).max(1);
    let kc_step = k.div_ceil(k_blocks).max(1);
    const TMP_COLS: usize = NP_MAX * PANEL;
    let mut tmp = [0f32; MR_MAX * TMP_COLS];
    let F32Tile {
        kernel,
        mr: mr_max,
        np: np_max,
    } = tile;
    let mut jc = pans.start;
    while jc < pans.end {
        let jend = (jc + NC_PANELS).min(pans.end);
        let mut k0 = 0;
        loop {
            let kc = kc_step.min(k - k0);
            let accumulate = k0 > 0;
            let last = k0 + kc >= k;
            let mut i = rows.start;
            while i < rows.end {
                let mr = mr_max.min(rows.end - i);
                let mut p = jc;
                while p < jend {
                    let np = np_max.min(jend - p);
                    let j0 = p * PANEL;
                    let nv = (np * PANEL).min(n - j0);
                    // SAFETY: rows i..i+mr and k0..k0+kc lie inside A; panels p..p+np's k-rows
                    // k0..k0+kc lie inside B's packing; the tile lies inside C (or tmp).
                    unsafe {
                        let ap = a.as_ptr().add(i * k + k0);
                        let bp = b.as_ptr().add((p * k + k0) * PANEL);
                        let bstride = k * PANEL;
                        let cp = out.get().add(i * n + j0);
                        if nv == np * PANEL {
                            kernel(kc, ap, k, bp, PANEL, bstride, cp, n, mr, np, accumulate);
                        } else {
                            if accumulate {
                                for r in 0..mr {
                                    std::ptr::copy_nonoverlapping(
                                        cp.add(r * n),
                                        tmp.as_mut_ptr().add(r * TMP_COLS),
                                        nv,
                                    );
                                }
                            }
                            let tp = tmp.as_mut_ptr();
                            kernel(
                                kc, ap, k, bp, PANEL, bstride, tp, TMP_COLS, mr, np, accumulate,
                            );
                            for r in 0..mr {
                                std::ptr::copy_nonoverlapping(
                                    tmp.as_ptr().add(r * TMP_COLS),
                                    cp.add(r * n),
                                    nv,
                                );
                            }
                        }
                        if last {
                            for r in 0..mr {
                                let values = std::slice::from_raw_parts_mut(cp.add(r * n), nv);
                                epilogue.apply(isa, n, i + r, j0, values);
                            }
                        }
                    }
                    p += np;
                }
                if let (true, Some(norm)) = (last, inline_norm) {
                    // SAFETY: this worker owns rows i..i+mr entirely, now complete.
                    unsafe { norm_rows(isa, out, n, i..i + mr, norm) };
                }
                i += mr;
            }
            if last {
                break;
            }
            k0 += kc;
        }
        jc = jend;
    }
}

/// Reference: `C = A·Bᵀ` with `B` unpacked `[n × k]`, accumulated in f64. For tests.
pub fn reference_gemm(a: &[f32], m: usize, b: &[f32], n: usize, k: usize) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for kk in 0..k {
                s += f64::from(a[i * k + kk]) * f64::from(b[j * k + kk]);
            }
            c[i * n + j] = s as f32;
        }
    }
    c
}
