//! docent's language model on its own CPU compute path ([`docent_kernels`]): dense llama
//! models (Llama 3.x, Mistral, SmolLM2), Gemma 3, Qwen 2 and Qwen 3.
//!
//! The weights stay as the GGUF stores them (raw block bytes, read once), multiplied by
//! `docent_kernels::ggml`'s kernels, whose results equal llama.cpp's CPU backend. One thread
//! [`Team`] runs every parallel step; activations live in buffers allocated at load for a
//! prompt chunk of [`CHUNK`] tokens, so decoding allocates nothing per token.
//!
//! Decoding one token, per layer: RMSNorm → activations quantised once → Q/K/V matrix-vector
//! products (row bands over the team) → (Q/K norms) → RoPE → K/V written into the cache in
//! place → grouped-query attention with an online softmax over the cache, one head per task
//! (no score matrix, no key copies) → output product + residual → norm → gate/up products with
//! the activation fused (SiLU or Gemma's GELU) → down product + residual.
//!
//! Reading a prompt: the same steps over up to [`CHUNK`] rows at a time, with quantised
//! matrix-matrix products (`ggml::matmul`, each weight row read once per four prompt rows; work
//! split over blocks of prompt rows) and tiled causal attention per (head, block of queries)
//! that visits only the keys a block can see (on sliding-window layers, only the window).
//!
//! The KV cache is preallocated for the planned context, f16 by default (f32 on request); a
//! sliding-window layer keeps a ring of `window` positions.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Content;
use docent_kernels::ggml::{
    self, QuantError, QuantIsa, QuantMatrix, QuantType, QuantizedActivations,
};
use docent_kernels::ops::{self, AttentionScratch, KvElem, Mask, Rows};
use docent_kernels::{Isa, PerWorker, Team};

use crate::error::{LlmError, Result};
use crate::gguf::Architecture;
use crate::graph::Meta;

/// Prompt rows processed together (llama.cpp's micro-batch).
pub(crate) const CHUNK: usize = 512;
/// Prompt rows one task of a matrix product handles.
const UNIT: usize = 32;
/// Query rows one attention task handles while reading a prompt.
const QUERY_BLOCK: usize = 64;
/// Weight rows a task of a prompt product takes at a time (kept in cache across its rows).
const BAND: usize = 64;

/// How keys and values are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvCacheType {
    /// IEEE half precision: half the memory of f32 (what llama.cpp uses by default).
    #[default]
    F16,
    /// Single precision (what the llama.cpp reference fixtures were written with).
    F32,
}

/// Options of the CPU path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuOptions {
    pub threads: Option<usize>,
    pub kv: KvCacheType,
}

/// The ggml type of a GGUF tensor, if the kernels multiply it.
fn quant_type(t: GgmlDType) -> Option<QuantType> {
    Some(match t {
        GgmlDType::F32 => QuantType::F32,
        GgmlDType::F16 => QuantType::F16,
        GgmlDType::BF16 => QuantType::BF16,
        GgmlDType::Q4_0 => QuantType::Q4_0,
        GgmlDType::Q4_1 => QuantType::Q4_1,
        GgmlDType::Q5_0 => QuantType::Q5_0,
        GgmlDType::Q5_1 => QuantType::Q5_1,
        GgmlDType::Q8_0 => QuantType::Q8_0,
        GgmlDType::Q4K => QuantType::Q4_K,
        GgmlDType::Q5K => QuantType::Q5_K,
        GgmlDType::Q6K => QuantType::Q6_K,
        _ => return None,
    })
}

/// A weight matrix: where its bytes are in [`CpuModel::data`].
#[derive(Clone, Copy, Debug)]
struct Mat {
    dtype: QuantType,
    rows: usize,
    cols: usize,
    off: usize,
    len: usize,
}

impl Mat {
    /// The matrix over the model's bytes (checked once at load, so this does not fail).
    fn view<'a>(&self, data: &'a [u8]) -> std::result::Result<QuantMatrix<'a>, QuantError> {
        QuantMatrix::new(
            self.dtype,
            self.rows,
            self.cols,
            &data[self.off..self.off + self.len],
        )
    }
    fn act(&self) -> QuantType {
        self.dtype.activation_type().unwrap_or(QuantType::F32)
    }
}

/// `out = W[rows] · x` for the matrix `m`.
fn matvec(
    data: &[u8],
    m: &Mat,
    acts: &Acts,
    rows: Range<usize>,
    out: &mut [f32],
    qisa: QuantIsa,
) -> std::result::Result<(), QuantError> {
    ggml::matvec(&m.view(data)?, acts.get(m), rows, out, qisa)
}

/// Which architecture-specific steps a model takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Llama,
    Gemma3,
    Qwen2,
    Qwen3,
}

/// Rotary frequencies of one kind of layer.
struct RopeSet {
    inv_freq: Vec<f64>,
    position_scale: f64,
}

struct Layer {
    attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    post_attn_norm: Option<Vec<f32>>,
    post_ffn_norm: Option<Vec<f32>>,
    /// Q, K, V (in that order).
    qkv: [Mat; 3],
    /// Q, K, V biases (Qwen 2).
    bias: Option<[Vec<f32>; 3]>,
    o: Mat,
    gate: Mat,
    up: Mat,
    down: Mat,
    /// Sliding window (keys visible to a query, itself included); `None`: global.
    window: Option<usize>,
    /// Index into [`CpuModel::ropes`].
    rope: usize,
}

/// Keys or values of one layer, `[positions × kv heads × head dim]`.
enum KvBuf {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl KvBuf {
    fn new(kind: KvCacheType, len: usize) -> KvBuf {
        match kind {
            KvCacheType::F32 => KvBuf::F32(vec![0.0; len]),
            KvCacheType::F16 => KvBuf::F16(vec![0; len]),
        }
    }

    /// Writes `src` at element `at`, converting to the stored type.
    fn put(&mut self, isa: Isa, at: usize, src: &[f32]) -> Result<()> {
        match self {
            KvBuf::F32(v) => v[at..at + src.len()].copy_from_slice(src),
            KvBuf::F16(v) => ops::f32_to_f16(isa, src, &mut v[at..at + src.len()])?,
        }
        Ok(())
    }

    /// Copies `len` stored elements from `from` at `src` to `self` at `dst`.
    fn copy_from(&mut self, dst: usize, from: &KvBuf, src: usize, len: usize) {
        match (self, from) {
            (KvBuf::F32(d), KvBuf::F32(s)) => d[dst..dst + len].copy_from_slice(&s[src..src + len]),
            (KvBuf::F16(d), KvBuf::F16(s)) => d[dst..dst + len].copy_from_slice(&s[src..src + len]),
            // Buffers of one model always share a type.
            _ => {}
        }
    }
}

/// A layer's cache: `cap` positions; position `p` sits in slot `p % cap` (a ring when the
/// layer has a sliding window shorter than the context).
struct Cache {
    k: KvBuf,
    v: KvBuf,
    cap: usize,
}

/// Activation rows quantised for every (type, width) the model's matrices need.
struct Acts {
    slots: Vec<QuantizedActivations>,
}

impl Acts {
    fn new(mats: &[Mat], rows: usize) -> Result<Acts> {
        let mut slots: Vec<QuantizedActivations> = Vec::new();
        for m in mats {
            if !slots
                .iter()
                .any(|s| s.dtype() == m.act() && s.cols() == m.cols)
            {
                slots.push(QuantizedActivations::new(m.act(), m.cols, rows)?);
            }
        }
        Ok(Acts { slots })
    }

    /// Quantises `xs` (rows of `cols`) for each matrix in `mats` (once per type).
    fn quantize(&mut self, xs: &[f32], mats: &[&Mat], isa: QuantIsa) -> Result<()> {
        for s in &mut self.slots {
            if mats
                .iter()
                .any(|m| m.act() == s.dtype() && m.cols == s.cols())
            {
                s.quantize(xs, isa)?;
            }
        }
        Ok(())
    }

    fn get(&self, m: &Mat) -> &QuantizedActivations {
        // `new` made a slot for every matrix of the model.
        let i = self
            .slots
            .iter()
            .position(|s| s.dtype() == m.act() && s.cols() == m.cols)
            .unwrap_or(0);
        &self.slots[i]
    }
}

/// What each worker keeps while reading a prompt.
struct WorkerScratch {
    acts: Acts,
    rows: Vec<f32>,
    attention: AttentionScratch,
}

/// Row bands of a group of matrices whose outputs are concatenated (decode).
struct Bands {
    offsets: Vec<usize>,
    items: Vec<(usize, Range<usize>)>,
}

impl Bands {
    fn new(rows: &[usize], threads: usize) -> Bands {
        let total: usize = rows.iter().sum();
        let band = (total / (threads * 8).max(1)).clamp(16, 512).div_ceil(16) * 16;
        let mut offsets = vec![0];
        let mut items = Vec::new();
        let mut base = 0;
        for (i, &r) in rows.iter().enumerate() {
            let mut s = 0;
            while s < r {
                let e = (s + band).min(r);
                items.push((i, s..e));
                offsets.push(base + e);
                s = e;
            }
            base += r;
        }
        Bands { offsets, items }
    }
}

/// The first error a parallel task met.
struct FirstError(Mutex<Option<LlmError>>);

impl FirstError {
    fn new() -> Self {
        FirstError(Mutex::new(None))
    }
    fn keep<E: Into<LlmError>>(&self, r: std::result::Result<(), E>) {
        if let Err(e) = r {
            let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(e.into());
        }
    }
    fn into_result(self) -> Result<()> {
        match self.0.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Buffers for a chunk of prompt rows (one row when decoding).
struct Buffers {
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    att_heads: Vec<f32>,
    att: Vec<f32>,
    tmp: Vec<f32>,
    gu: Vec<f32>,
    ffn: Vec<f32>,
    logits: Vec<f32>,
    /// cos, sin of every rope set for the chunk's positions: `[set][row][half]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
    offsets: Vec<usize>,
    /// Keys/values of a sliding-window layer seen by a prompt chunk (window − 1 + chunk rows).
    gather_k: KvBuf,
    gather_v: KvBuf,
    /// Decode activations.
    acts: Acts,
}

pub(crate) struct CpuModel {
    family: Family,
    data: Vec<u8>,
    n_embd: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    n_ff: usize,
    eps: f32,
    scale: f32,
    embed_scale: Option<f32>,
    embed: Mat,
    output: Mat,
    norm: Vec<f32>,
    layers: Vec<Layer>,
    ropes: Vec<RopeSet>,
    neox: bool,
    caches: Vec<Cache>,
    context: usize,
    team: Team,
    workers: PerWorker<WorkerScratch>,
    buf: Buffers,
    qkv_bands: Bands,
    o_bands: Bands,
    gu_band: usize,
    down_bands: Bands,
    out_bands: Bands,
    gelu: Option<Vec<f32>>,
    isa: Isa,
    qisa: QuantIsa,
}

impl std::fmt::Debug for CpuModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuModel")
            .field("family", &self.family)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

/// Block count of Gemma 3 27B, whose queries are scaled by the model width per head rather than
/// the head size (`query_pre_attn_scalar` = 5376 / 32 in its configuration).
const GEMMA_BLOCKS_27B: usize = 62;
/// RoPE base of Gemma 3's sliding-window layers; the file stores the global one.
const GEMMA_LOCAL_ROPE_BASE: f64 = 10_000.0;
/// Every sixth Gemma 3 layer attends globally.
const GEMMA_GLOBAL_EVERY: usize = 6;

fn inv_freq(head_dim: usize, base: f64, factors: Option<&[f32]>) -> Vec<f64> {
    (0..head_dim / 2)
        .map(|i| {
            let f = base.powf(-(2.0 * i as f64) / head_dim as f64);
            match factors.and_then(|ff| ff.get(i)) {
                Some(&d) if d > 0.0 => f / d as f64,
                _ => f,
            }
        })
        .collect()
}

/// GELU (tanh approximation) as llama.cpp's CPU backend computes it: looked up in a table over
/// every half-precision input, the result rounded to half precision.
fn gelu_table() -> Vec<f32> {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044715;
    (0..=u16::MAX)
        .map(|h| {
            let x = ops::f16_to_f32_scalar(h);
            let y = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh());
            ops::f16_to_f32_scalar(ops::f32_to_f16_scalar(y))
        })
        .collect()
}

#[inline]
fn gelu(table: &[f32], x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        table[usize::from(ops::f32_to_f16_scalar(x))]
    }
}

#[inline]
fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

impl CpuModel {
    /// Whether this path runs the file: a supported architecture (dense), every matrix of a
    /// type the kernels multiply.
    pub fn handles(content: &Content, arch: Architecture) -> bool {
        let family_ok = match arch {
            Architecture::Llama => crate::llama::Llama::handles(content),
            Architecture::Gemma3 | Architecture::Qwen2 | Architecture::Qwen3 => true,
            Architecture::Qwen3Moe => false,
        };
        family_ok
            && content
                .tensor_infos
                .values()
                .all(|t| quant_type(t.ggml_dtype).is_some())
    }

    pub fn load(
        path: &Path,
        content: &Content,
        arch: Architecture,
        context: usize,
        opts: CpuOptions,
    ) -> Result<CpuModel> {
        let bad = |message: String| LlmError::BadFile {
            path: path.to_path_buf(),
            message,
        };
        let cbad = |e: candle_core::Error| bad(e.to_string());
        let (family, arch_name) = match arch {
            Architecture::Llama => (Family::Llama, "llama"),
            Architecture::Gemma3 => (Family::Gemma3, "gemma3"),
            Architecture::Qwen2 => (Family::Qwen2, "qwen2"),
            Architecture::Qwen3 => (Family::Qwen3, "qwen3"),
            Architecture::Qwen3Moe => return Err(bad("mixture of experts".into())),
        };
        let arch_name = match (family, content.metadata.get("general.architecture")) {
            (Family::Llama, Some(v)) => v.to_string().map(|s| s.as_str()).unwrap_or(arch_name),
            _ => arch_name,
        };
        let md = Meta {
            content,
            arch: arch_name,
        };
        let n_embd = md.usize("embedding_length").map_err(cbad)?;
        let n_layer = md.usize("block_count").map_err(cbad)?;
        let n_head = md.usize("attention.head_count").map_err(cbad)?;
        let n_kv_head = md.opt_usize("attention.head_count_kv").unwrap_or(n_head);
        let head_dim = md
            .opt_usize("attention.key_length")
            .unwrap_or(n_embd / n_head.max(1));
        let rotary = md.opt_usize("rope.dimension_count").unwrap_or(head_dim);
        let default_eps = if family == Family::Gemma3 { 1e-6 } else { 1e-5 };
        let eps = md
            .f64("attention.layer_norm_rms_epsilon")
            .unwrap_or(default_eps) as f32;
        crate::gemma3::check_heads(n_head, n_kv_head, head_dim).map_err(cbad)?;
        if rotary != head_dim {
            return Err(bad(format!(
                "partial rotary embeddings ({rotary} of {head_dim}) are not supported"
            )));
        }

        // The tensor data, read once.
        let mut file = std::fs::File::open(path).map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let io = |source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        };
        file.seek(SeekFrom::Start(content.tensor_data_offset))
            .map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut data = Vec::with_capacity(size.saturating_sub(content.tensor_data_offset) as usize);
        file.read_to_end(&mut data).map_err(io)?;

        let info = |name: &str| {
            content
                .tensor_infos
                .get(name)
                .ok_or_else(|| bad(format!("tensor `{name}` is missing")))
        };
        let mat = |name: &str| -> Result<Mat> {
            let t = info(name)?;
            let dtype = quant_type(t.ggml_dtype)
                .ok_or_else(|| bad(format!("`{name}` has type {:?}", t.ggml_dtype)))?;
            let dims = t.shape.dims();
            let cols = dims.last().copied().unwrap_or(0);
            let rows: usize = dims[..dims.len().saturating_sub(1)].iter().product();
            let len = dtype
                .row_bytes(cols)
                .map_err(|e| bad(format!("`{name}`: {e}")))?
                * rows;
            let off = t.offset as usize;
            if off + len > data.len() {
                return Err(bad(format!("`{name}` is truncated")));
            }
            QuantMatrix::new(dtype, rows, cols, &data[off..off + len])
                .map_err(|e| bad(format!("`{name}`: {e}")))?;
            Ok(Mat {
                dtype,
                rows,
                cols,
                off,
                len,
            })
        };
        let vector = |name: &str, n: usize| -> Result<Vec<f32>> {
            let m = mat(name)?;
            if m.rows * m.cols != n {
                return Err(bad(format!(
                    "`{name}` has {} values, expected {n}",
                    m.rows * m.cols
                )));
            }
            let mut out = vec![0f32; n];
            ggml::dequantize_row(m.dtype, &data[m.off..m.off + m.len], &mut out)
                .map_err(|e| bad(format!("`{name}`: {e}")))?;
            Ok(out)
        };
        let has = |name: &str| content.tensor_infos.contains_key(name);

        let embed = mat("token_embd.weight")?;
        if embed.cols != n_embd {
            return Err(bad("token embeddings do not match the model width".into()));
        }
        let output = if has("output.weight") {
            mat("output.weight")?
        } else {
            embed
        };
        let norm = vector("output_norm.weight", n_embd)?;

        // Rotary embeddings and attention windows.
        let base = md.f64("rope.freq_base");
        let mut ropes = Vec::new();
        let (scale, embed_scale, neox);
        let sliding = md.opt_usize("attention.sliding_window").unwrap_or(0);
        match family {
            Family::Gemma3 => {
                let global_scale = match md.f64("rope.scaling.factor") {
                    Some(f) if f > 0.0 => 1.0 / f,
                    _ => 1.0,
                };
                ropes.push(RopeSet {
                    inv_freq: inv_freq(head_dim, GEMMA_LOCAL_ROPE_BASE, None),
                    position_scale: 1.0,
                });
                ropes.push(RopeSet {
                    inv_freq: inv_freq(head_dim, base.unwrap_or(1_000_000.0), None),
                    position_scale: global_scale,
                });
                scale = if n_layer == GEMMA_BLOCKS_27B {
                    1.0 / ((n_embd / n_head) as f32).sqrt()
                } else {
                    1.0 / (head_dim as f32).sqrt()
                };
                embed_scale = Some((n_embd as f64).sqrt() as f32);
                neox = true;
            }
            _ => {
                let position_scale = match (
                    md.string("rope.scaling.type"),
                    md.f64("rope.scaling.factor"),
                ) {
                    (Some("linear"), Some(f)) if f > 0.0 => 1.0 / f,
                    _ => 1.0,
                };
                let factors = if has("rope_freqs.weight") {
                    Some(vector("rope_freqs.weight", head_dim / 2)?)
                } else {
                    None
                };
                let default_base = if family == Family::Llama {
                    10_000.0
                } else {
                    1_000_000.0
                };
                ropes.push(RopeSet {
                    inv_freq: inv_freq(head_dim, base.unwrap_or(default_base), factors.as_deref()),
                    position_scale,
                });
                scale = 1.0 / (head_dim as f32).sqrt();
                embed_scale = None;
                // llama's GGUF layout rotates adjacent pairs; Qwen rotates halves.
                neox = family != Family::Llama;
            }
        }

        let q_dim = n_head * head_dim;
        let kv_dim = n_kv_head * head_dim;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let name = |n: &str| format!("blk.{i}.{n}.weight");
            let qkv = [
                mat(&name("attn_q"))?,
                mat(&name("attn_k"))?,
                mat(&name("attn_v"))?,
            ];
            let (o, gate, up, down) = (
                mat(&name("attn_output"))?,
                mat(&name("ffn_gate"))?,
                mat(&name("ffn_up"))?,
                mat(&name("ffn_down"))?,
            );
            let want = [
                (&qkv[0], q_dim, n_embd),
                (&qkv[1], kv_dim, n_embd),
                (&qkv[2], kv_dim, n_embd),
                (&o, n_embd, q_dim),
                (&gate, gate.rows, n_embd),
                (&up, gate.rows, n_embd),
                (&down, n_embd, gate.rows),
            ];
            if want.iter().any(|(m, r, c)| m.rows != *r || m.cols != *c) {
                return Err(bad(format!("layer {i} has matrices of unexpected shapes")));
            }
            let opt = |n: &str, len: usize| -> Result<Option<Vec<f32>>> {
                let full = name(n);
                if has(&full) {
                    vector(&full, len).map(Some)
                } else {
                    Ok(None)
                }
            };
            let bias = if family == Family::Qwen2 {
                let b = |n: &str, len: usize| vector(&format!("blk.{i}.{n}.bias"), len);
                Some([
                    b("attn_q", q_dim)?,
                    b("attn_k", kv_dim)?,
                    b("attn_v", kv_dim)?,
                ])
            } else {
                None
            };
            let gemma = family == Family::Gemma3;
            let window =
                (gemma && (i + 1) % GEMMA_GLOBAL_EVERY != 0 && sliding > 0).then_some(sliding);
            layers.push(Layer {
                attn_norm: vector(&name("attn_norm"), n_embd)?,
                ffn_norm: vector(&name("ffn_norm"), n_embd)?,
                q_norm: opt("attn_q_norm", head_dim)?,
                k_norm: opt("attn_k_norm", head_dim)?,
                post_attn_norm: if gemma {
                    Some(vector(&name("post_attention_norm"), n_embd)?)
                } else {
                    None
                },
                post_ffn_norm: if gemma {
                    Some(vector(&name("post_ffw_norm"), n_embd)?)
                } else {
                    None
                },
                qkv,
                bias,
                o,
                gate,
                up,
                down,
                rope: usize::from(gemma && window.is_none()),
                window,
            });
        }
        if matches!(family, Family::Gemma3 | Family::Qwen3)
            && layers
                .iter()
                .any(|l| l.q_norm.is_none() || l.k_norm.is_none())
        {
            return Err(bad("the query/key norms are missing".into()));
        }
        let n_ff = layers.first().map_or(0, |l| l.gate.rows);
        if layers.iter().any(|l| l.gate.rows != n_ff) {
            return Err(bad("layers differ in feed-forward width".into()));
        }

        let threads = opts
            .threads
            .filter(|&n| n > 0)
            .unwrap_or_else(docent_kernels::physical_cores)
            .max(1);
        let team = Team::new(threads);
        let context = context.max(1);
        let caches = layers
            .iter()
            .map(|l| {
                let cap = l.window.map_or(context, |w| w.min(context));
                Cache {
                    k: KvBuf::new(opts.kv, cap * kv_dim),
                    v: KvBuf::new(opts.kv, cap * kv_dim),
                    cap,
                }
            })
            .collect();
        let chunk = CHUNK.min(context);
        let all_mats: Vec<Mat> = layers
            .iter()
            .flat_map(|l| [l.qkv[0], l.qkv[1], l.qkv[2], l.o, l.gate, l.up, l.down])
            .chain([output])
            .collect();
        let workers = {
            let mut made = Vec::new();
            for _ in 0..team.count() {
                made.push(WorkerScratch {
                    acts: Acts::new(&all_mats, UNIT)?,
                    rows: vec![0.0; UNIT * n_ff.max(q_dim)],
                    attention: AttentionScratch::new(),
                });
            }
            let mut it = made.into_iter();
            PerWorker::new(team.count(), || match it.next() {
                Some(w) => w,
                None => WorkerScratch {
                    acts: Acts { slots: Vec::new() },
                    rows: Vec::new(),
                    attention: AttentionScratch::new(),
                },
            })
        };
        let gather = sliding.min(context).saturating_sub(1) + chunk;
        let has_window = layers.iter().any(|l| l.window.is_some());
        let half = head_dim / 2;
        let buf = Buffers {
            x: vec![0.0; chunk * n_embd],
            h: vec![0.0; chunk * n_embd],
            qkv: vec![0.0; chunk * (q_dim + 2 * kv_dim)],
            att_heads: vec![0.0; chunk * q_dim],
            att: vec![0.0; chunk * q_dim],
            tmp: vec![0.0; chunk * n_embd],
            gu: vec![0.0; chunk * 2 * n_ff],
            ffn: vec![0.0; n_ff],
            logits: vec![0.0; output.rows],
            cos: vec![0.0; ropes.len() * chunk * half],
            sin: vec![0.0; ropes.len() * chunk * half],
            offsets: Vec::with_capacity(n_head * chunk.div_ceil(QUERY_BLOCK) + 1),
            gather_k: KvBuf::new(opts.kv, if has_window { gather * kv_dim } else { 0 }),
            gather_v: KvBuf::new(opts.kv, if has_window { gather * kv_dim } else { 0 }),
            acts: Acts::new(&all_mats, 1)?,
        };
        let count = team.count();
        let gu_band = (n_ff / (count * 8).max(1)).clamp(16, 256).div_ceil(16) * 16;
        Ok(CpuModel {
            family,
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            n_ff,
            eps,
            scale,
            embed_scale,
            embed,
            output,
            norm,
            qkv_bands: Bands::new(&[q_dim, kv_dim, kv_dim], count),
            o_bands: Bands::new(&[n_embd], count),
            down_bands: Bands::new(&[n_embd], count),
            out_bands: Bands::new(&[output.rows], count),
            gu_band,
            gelu: (family == Family::Gemma3).then(gelu_table),
            layers,
            ropes,
            neox,
            caches,
            context,
            team,
            workers,
            buf,
            data,
            isa: Isa::active(),
            qisa: QuantIsa::best(),
        })
    }

    /// Logits of the token after `ids`, which continue the sequence at position `pos`.
    pub fn forward(&mut self, ids: &[u32], pos: usize) -> Result<&[f32]> {
        if ids.is_empty() {
            return Err(LlmError::Kernel("no tokens to run".into()));
        }
        if pos + ids.len() > self.context {
            return Err(LlmError::Kernel(format!(
                "position {} is beyond the context length {} the model was loaded for",
                pos + ids.len(),
                self.context
            )));
        }
        let chunk = CHUNK.min(self.context);
        let mut start = 0;
        while start < ids.len() {
            let end = (start + chunk).min(ids.len());
            let rows = &ids[start..end];
            if rows.len() == 1 {
                self.decode(rows[0], pos + start)?;
            } else {
                self.prompt(rows, pos + start, end == ids.len())?;
            }
            start = end;
        }
        Ok(&self.buf.logits)
    }

    fn embed_rows(&mut self, ids: &[u32]) -> Result<()> {
        let d = self.n_embd;
        let row_bytes = self.embed.len / self.embed.rows.max(1);
        for (i, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= self.embed.rows {
                return Err(LlmError::Kernel(format!(
                    "token id {id} is outside the vocabulary ({})",
                    self.embed.rows
                )));
            }
            let src = &self.data[self.embed.off + id * row_bytes..][..row_bytes];
            ggml::dequantize_row(self.embed.dtype, src, &mut self.buf.x[i * d..(i + 1) * d])?;
        }
        if let Some(s) = self.embed_scale {
            for v in &mut self.buf.x[..ids.len() * d] {
                *v *= s;
            }
        }
        Ok(())
    }

    /// cos/sin of every rope set for positions `pos..pos + len`.
    fn rope_tables(&mut self, pos: usize, len: usize) {
        let half = self.head_dim / 2;
        let chunk = CHUNK.min(self.context);
        for (s, set) in self.ropes.iter().enumerate() {
            for r in 0..len {
                let p = (pos + r) as f64 * set.position_scale;
                let at = (s * chunk + r) * half;
                for (i, f) in set.inv_freq.iter().enumerate() {
                    let (sn, cs) = (p * f).sin_cos();
                    self.buf.cos[at + i] = cs as f32;
                    self.buf.sin[at + i] = sn as f32;
                }
            }
        }
    }

    /// Q/K norms, RoPE and biases on `rows` rows of the QKV buffer.
    fn qk_steps(&mut self, l: usize, rows: usize) -> Result<()> {
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let (q_dim, kv_dim) = (nh * hd, nkv * hd);
        let width = q_dim + 2 * kv_dim;
        let half = hd / 2;
        let chunk = CHUNK.min(self.context);
        let layer = &self.layers[l];
        let qkv = &mut self.buf.qkv[..rows * width];
        if let Some(bias) = &layer.bias {
            for row in qkv.chunks_exact_mut(width) {
                let (q, rest) = row.split_at_mut(q_dim);
                let (k, v) = rest.split_at_mut(kv_dim);
                for (x, b) in q.iter_mut().zip(&bias[0]) {
                    *x += b;
                }
                for (x, b) in k.iter_mut().zip(&bias[1]) {
                    *x += b;
                }
                for (x, b) in v.iter_mut().zip(&bias[2]) {
                    *x += b;
                }
            }
        }
        for (r, row) in qkv.chunks_exact_mut(width).enumerate() {
            let (qk, _) = row.split_at_mut(q_dim + kv_dim);
            if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                let (q, k) = qk.split_at_mut(q_dim);
                ops::rms_norm(self.isa, q, hd, qn, self.eps)?;
                ops::rms_norm(self.isa, k, hd, kn, self.eps)?;
            }
            let at = (layer.rope * chunk + r) * half;
            let cos = &self.buf.cos[at..at + half];
            let sin = &self.buf.sin[at..at + half];
            for head in qk.chunks_exact_mut(hd) {
                if self.neox {
                    let (a, b) = head.split_at_mut(half);
                    for i in 0..half {
                        let (x0, x1) = (a[i], b[i]);
                        a[i] = x0 * cos[i] - x1 * sin[i];
                        b[i] = x0 * sin[i] + x1 * cos[i];
                    }
                } else {
                    for i in 0..half {
                        let (x0, x1) = (head[2 * i], head[2 * i + 1]);
                        head[2 * i] = x0 * cos[i] - x1 * sin[i];
                        head[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes one token at `pos`; the logits land in `buf.logits`.
    fn decode(&mut self, id: u32, pos: usize) -> Result<()> {
        let (d, nh, nkv, hd) = (self.n_embd, self.n_head, self.n_kv_head, self.head_dim);
        let (q_dim, kv_dim) = (nh * hd, nkv * hd);
        let (isa, qisa) = (self.isa, self.qisa);
        self.embed_rows(&[id])?;
        self.rope_tables(pos, 1);
        for l in 0..self.layers.len() {
            // Norm, quantise once, Q/K/V.
            let layer = &self.layers[l];
            let buf = &mut self.buf;
            buf.h[..d].copy_from_slice(&buf.x[..d]);
            ops::rms_norm(isa, &mut buf.h[..d], d, &layer.attn_norm, self.eps)?;
            let [q, k, v] = &layer.qkv;
            buf.acts.quantize(&buf.h[..d], &[q, k, v], qisa)?;
            let errors = FirstError::new();
            {
                let (data, acts, bands) = (&self.data, &buf.acts, &self.qkv_bands);
                self.team.for_each_part_mut(
                    &mut buf.qkv[..q_dim + 2 * kv_dim],
                    &bands.offsets,
                    |_, part, out| {
                        let (m, rows) = &bands.items[part];
                        let m = &layer.qkv[*m];
                        errors.keep(matvec(data, m, acts, rows.clone(), out, qisa));
                    },
                )?;
            }
            errors.into_result()?;
            self.qk_steps(l, 1)?;

            // K/V into the cache, then attention over it.
            let cache = &mut self.caches[l];
            let slot = pos % cache.cap;
            let qkv = &self.buf.qkv;
            cache
                .k
                .put(isa, slot * kv_dim, &qkv[q_dim..q_dim + kv_dim])?;
            cache
                .v
                .put(isa, slot * kv_dim, &qkv[q_dim + kv_dim..q_dim + 2 * kv_dim])?;
            let n_keys = (pos + 1).min(cache.cap);
            let group = nh / nkv;
            let scale = self.scale;
            let errors = FirstError::new();
            {
                let cache = &self.caches[l];
                let q_all = &qkv[..q_dim];
                let att = &mut self.buf.att[..q_dim];
                match (&cache.k, &cache.v) {
                    (KvBuf::F32(k), KvBuf::F32(v)) => {
                        decode_attention(
                            &self.team, isa, q_all, k, v, kv_dim, hd, group, n_keys, scale, att,
                            &errors,
                        );
                    }
                    (KvBuf::F16(k), KvBuf::F16(v)) => {
                        decode_attention(
                            &self.team, isa, q_all, k, v, kv_dim, hd, group, n_keys, scale, att,
                            &errors,
                        );
                    }
                    _ => {}
                }
            }
            errors.into_result()?;

            // Output product, residual.
            let layer = &self.layers[l];
            let buf = &mut self.buf;
            buf.acts.quantize(&buf.att[..q_dim], &[&layer.o], qisa)?;
            matvec_bands(
                &self.team,
                &self.data,
                &buf.acts,
                &[&layer.o],
                &self.o_bands,
                &mut buf.tmp[..d],
                qisa,
            )?;
            if let Some(w) = &layer.post_attn_norm {
                ops::rms_norm(isa, &mut buf.tmp[..d], d, w, self.eps)?;
            }
            for (x, t) in buf.x[..d].iter_mut().zip(&buf.tmp[..d]) {
                *x += t;
            }

            // Feed-forward.
            buf.h[..d].copy_from_slice(&buf.x[..d]);
            ops::rms_norm(isa, &mut buf.h[..d], d, &layer.ffn_norm, self.eps)?;
            buf.acts
                .quantize(&buf.h[..d], &[&layer.gate, &layer.up], qisa)?;
            let n_ff = self.n_ff;
            let band = self.gu_band;
            let errors = FirstError::new();
            {
                let (data, acts, gelu) = (&self.data, &buf.acts, self.gelu.as_deref());
                self.team
                    .for_each_chunk_mut(&mut buf.gu[..2 * n_ff], 2 * band, |_, c, out| {
                        let rows = c * band..((c + 1) * band).min(n_ff);
                        let n = rows.len();
                        let (g, u) = out.split_at_mut(n);
                        errors.keep(matvec(data, &layer.gate, acts, rows.clone(), g, qisa));
                        errors.keep(matvec(data, &layer.up, acts, rows, &mut u[..n], qisa));
                        activate(gelu, g, &u[..n]);
                    });
            }
            errors.into_result()?;
            for (c, pair) in buf.gu[..2 * n_ff].chunks(2 * band).enumerate() {
                let n = pair.len() / 2;
                buf.ffn[c * band..c * band + n].copy_from_slice(&pair[..n]);
            }
            buf.acts.quantize(&buf.ffn, &[&layer.down], qisa)?;
            matvec_bands(
                &self.team,
                &self.data,
                &buf.acts,
                &[&layer.down],
                &self.down_bands,
                &mut buf.tmp[..d],
                qisa,
            )?;
            if let Some(w) = &layer.post_ffn_norm {
                ops::rms_norm(isa, &mut buf.tmp[..d], d, w, self.eps)?;
            }
            for (x, t) in buf.x[..d].iter_mut().zip(&buf.tmp[..d]) {
                *x += t;
            }
        }
        self.logits(0)
    }

    /// Final norm and output product of row `row` of `buf.x`.
    fn logits(&mut self, row: usize) -> Result<()> {
        let d = self.n_embd;
        let buf = &mut self.buf;
        buf.h[..d].copy_from_slice(&buf.x[row * d..(row + 1) * d]);
        ops::rms_norm(self.isa, &mut buf.h[..d], d, &self.norm, self.eps)?;
        buf.acts.quantize(&buf.h[..d], &[&self.output], self.qisa)?;
        matvec_bands(
            &self.team,
            &self.data,
            &buf.acts,
            &[&self.output],
            &self.out_bands,
            &mut buf.logits,
            self.qisa,
        )
    }

    /// Reads `ids` (at most [`CHUNK`]) starting at `pos`; with `want_logits`, the logits of the
    /// last land in `buf.logits`.
    fn prompt(&mut self, ids: &[u32], pos: usize, want_logits: bool) -> Result<()> {
        let (d, nh, nkv, hd) = (self.n_embd, self.n_head, self.n_kv_head, self.head_dim);
        let (q_dim, kv_dim) = (nh * hd, nkv * hd);
        let width = q_dim + 2 * kv_dim;
        let n_ff = self.n_ff;
        let len = ids.len();
        let (isa, qisa) = (self.isa, self.qisa);
        self.embed_rows(ids)?;
        self.rope_tables(pos, len);
        for l in 0..self.layers.len() {
            let layer = &self.layers[l];
            let buf = &mut self.buf;
            buf.h[..len * d].copy_from_slice(&buf.x[..len * d]);
            ops::rms_norm(isa, &mut buf.h[..len * d], d, &layer.attn_norm, self.eps)?;
            let [q, k, v] = &layer.qkv;
            matmul_rows(
                &self.team,
                &self.workers,
                &self.data,
                &buf.h[..len * d],
                d,
                &[(q, 0), (k, q_dim), (v, q_dim + kv_dim)],
                &mut buf.qkv[..len * width],
                width,
                qisa,
            )?;
            self.qk_steps(l, len)?;
            let layer = &self.layers[l];

            // Keys and values: a global layer writes them into its cache and attends there; a
            // sliding-window layer gathers the window's earlier keys and the chunk's, attends
            // there, then keeps the newest in its ring.
            let cache = &mut self.caches[l];
            let buf = &mut self.buf;
            let (first, n_keys, in_cache) = match layer.window {
                None => {
                    for r in 0..len {
                        let row = &buf.qkv[r * width..(r + 1) * width];
                        let at = (pos + r) * kv_dim;
                        cache.k.put(isa, at, &row[q_dim..q_dim + kv_dim])?;
                        cache.v.put(isa, at, &row[q_dim + kv_dim..])?;
                    }
                    (pos, pos + len, true)
                }
                Some(w) => {
                    let prev = pos.min(w - 1).min(cache.cap);
                    for j in 0..prev {
                        let slot = (pos - prev + j) % cache.cap;
                        buf.gather_k
                            .copy_from(j * kv_dim, &cache.k, slot * kv_dim, kv_dim);
                        buf.gather_v
                            .copy_from(j * kv_dim, &cache.v, slot * kv_dim, kv_dim);
                    }
                    for r in 0..len {
                        let row = &buf.qkv[r * width..(r + 1) * width];
                        let at = (prev + r) * kv_dim;
                        buf.gather_k.put(isa, at, &row[q_dim..q_dim + kv_dim])?;
                        buf.gather_v.put(isa, at, &row[q_dim + kv_dim..])?;
                    }
                    for r in len.saturating_sub(cache.cap)..len {
                        let slot = (pos + r) % cache.cap;
                        cache.k.copy_from(
                            slot * kv_dim,
                            &buf.gather_k,
                            (prev + r) * kv_dim,
                            kv_dim,
                        );
                        cache.v.copy_from(
                            slot * kv_dim,
                            &buf.gather_v,
                            (prev + r) * kv_dim,
                            kv_dim,
                        );
                    }
                    (prev, prev + len, false)
                }
            };
            let mask = match layer.window {
                Some(w) => Mask::Window(w),
                None => Mask::Causal,
            };
            // Tasks: (head, block of query rows), written head-major.
            buf.offsets.clear();
            buf.offsets.push(0);
            let blocks = len.div_ceil(QUERY_BLOCK);
            for h in 0..nh {
                for b in 0..blocks {
                    let rows = ((b + 1) * QUERY_BLOCK).min(len);
                    buf.offsets.push((h * len + rows) * hd);
                }
            }
            let errors = FirstError::new();
            {
                let (k, v) = if in_cache {
                    (&self.caches[l].k, &self.caches[l].v)
                } else {
                    (&buf.gather_k, &buf.gather_v)
                };
                let job = PromptAttention {
                    qkv: &buf.qkv[..len * width],
                    width,
                    kv_dim,
                    hd,
                    group: nh / nkv,
                    blocks,
                    len,
                    first,
                    n_keys,
                    mask,
                    scale: self.scale,
                    isa,
                };
                let out = &mut buf.att_heads[..len * q_dim];
                match (k, v) {
                    (KvBuf::F32(k), KvBuf::F32(v)) => {
                        job.run(&self.team, &self.workers, k, v, out, &buf.offsets, &errors)?
                    }
                    (KvBuf::F16(k), KvBuf::F16(v)) => {
                        job.run(&self.team, &self.workers, k, v, out, &buf.offsets, &errors)?
                    }
                    _ => {}
                }
            }
            errors.into_result()?;
            // Head-major → row-major.
            for h in 0..nh {
                for r in 0..len {
                    let src = (h * len + r) * hd;
                    buf.att[r * q_dim + h * hd..r * q_dim + (h + 1) * hd]
                        .copy_from_slice(&buf.att_heads[src..src + hd]);
                }
            }

            let layer = &self.layers[l];
            matmul_rows(
                &self.team,
                &self.workers,
                &self.data,
                &buf.att[..len * q_dim],
                q_dim,
                &[(&layer.o, 0)],
                &mut buf.tmp[..len * d],
                d,
                qisa,
            )?;
            if let Some(w) = &layer.post_attn_norm {
                ops::rms_norm(isa, &mut buf.tmp[..len * d], d, w, self.eps)?;
            }
            for (x, t) in buf.x[..len * d].iter_mut().zip(&buf.tmp[..len * d]) {
                *x += t;
            }

            buf.h[..len * d].copy_from_slice(&buf.x[..len * d]);
            ops::rms_norm(isa, &mut buf.h[..len * d], d, &layer.ffn_norm, self.eps)?;
            matmul_rows(
                &self.team,
                &self.workers,
                &self.data,
                &buf.h[..len * d],
                d,
                &[(&layer.gate, 0), (&layer.up, n_ff)],
                &mut buf.gu[..len * 2 * n_ff],
                2 * n_ff,
                qisa,
            )?;
            let gelu = self.gelu.as_deref();
            for row in buf.gu[..len * 2 * n_ff].chunks_exact_mut(2 * n_ff) {
                let (g, u) = row.split_at_mut(n_ff);
                activate(gelu, g, u);
            }
            matmul_strided(
                &self.team,
                &self.workers,
                &self.data,
                &buf.gu[..len * 2 * n_ff],
                2 * n_ff,
                n_ff,
                &layer.down,
                &mut buf.tmp[..len * d],
                qisa,
            )?;
            if let Some(w) = &layer.post_ffn_norm {
                ops::rms_norm(isa, &mut buf.tmp[..len * d], d, w, self.eps)?;
            }
            for (x, t) in buf.x[..len * d].iter_mut().zip(&buf.tmp[..len * d]) {
                *x += t;
            }
        }
        if want_logits {
            self.logits(len - 1)?;
        }
        Ok(())
    }
}

/// `g = act(g) · u` (SiLU, or GELU through `table`).
fn activate(table: Option<&[f32]>, g: &mut [f32], u: &[f32]) {
    match table {
        Some(t) => g.iter_mut().zip(u).for_each(|(g, u)| *g = gelu(t, *g) * u),
        None => g.iter_mut().zip(u).for_each(|(g, u)| *g = silu(*g) * u),
    }
}

/// Matrix-vector products of `mats` (outputs concatenated in `out`) split into row bands.
fn matvec_bands(
    team: &Team,
    data: &[u8],
    acts: &Acts,
    mats: &[&Mat],
    bands: &Bands,
    out: &mut [f32],
    qisa: QuantIsa,
) -> Result<()> {
    let errors = FirstError::new();
    team.for_each_part_mut(out, &bands.offsets, |_, part, out| {
        let (m, rows) = &bands.items[part];
        let m = mats[*m];
        errors.keep(matvec(data, m, acts, rows.clone(), out, qisa));
    })?;
    errors.into_result()
}

/// `out[t · ld + r] = W[r] · x[t]` for every row of `acts`, a band of [`BAND`] weight rows at
/// a time (the band stays in cache while every activation row passes).
fn matmul_bands(
    data: &[u8],
    m: &Mat,
    acts: &Acts,
    out: &mut [f32],
    ld: usize,
    qisa: QuantIsa,
) -> std::result::Result<(), QuantError> {
    let view = m.view(data)?;
    let xq = acts.get(m);
    let mut b = 0;
    while b < m.rows {
        let e = (b + BAND).min(m.rows);
        ggml::matmul(&view, xq, b..e, &mut out[b..], ld, qisa)?;
        b = e;
    }
    Ok(())
}

/// Matrix products of `input` (rows of `cols`) with each `(matrix, column offset)` into
/// `out` (rows of `ld`), split over blocks of [`UNIT`] rows; each block's activations are
/// quantised once by the worker that takes it.
#[allow(clippy::too_many_arguments)]
fn matmul_rows(
    team: &Team,
    workers: &PerWorker<WorkerScratch>,
    data: &[u8],
    input: &[f32],
    cols: usize,
    mats: &[(&Mat, usize)],
    out: &mut [f32],
    ld: usize,
    qisa: QuantIsa,
) -> Result<()> {
    let errors = FirstError::new();
    let refs: [&Mat; 3] = [
        mats[0].0,
        mats.get(1).map_or(mats[0].0, |m| m.0),
        mats.get(2).map_or(mats[0].0, |m| m.0),
    ];
    team.for_each_chunk_mut(out, UNIT * ld, |w, c, part| {
        let rows = part.len() / ld;
        let input = &input[c * UNIT * cols..(c * UNIT + rows) * cols];
        workers.with(w.index, |s| {
            errors.keep(s.acts.quantize(input, &refs[..mats.len()], qisa));
            for (m, col) in mats {
                errors.keep(matmul_bands(data, m, &s.acts, &mut part[*col..], ld, qisa));
            }
        });
    });
    errors.into_result()
}

/// As [`matmul_rows`] for one matrix whose input rows are the first `cols` of rows of
/// `stride` (the activated half of the gate/up buffer), copied per block before quantising.
#[allow(clippy::too_many_arguments)]
fn matmul_strided(
    team: &Team,
    workers: &PerWorker<WorkerScratch>,
    data: &[u8],
    input: &[f32],
    stride: usize,
    cols: usize,
    m: &Mat,
    out: &mut [f32],
    qisa: QuantIsa,
) -> Result<()> {
    let errors = FirstError::new();
    let ld = m.rows;
    team.for_each_chunk_mut(out, UNIT * ld, |w, c, part| {
        let rows = part.len() / ld;
        workers.with(w.index, |s| {
            for r in 0..rows {
                let src = &input[(c * UNIT + r) * stride..][..cols];
                s.rows[r * cols..(r + 1) * cols].copy_from_slice(src);
            }
            errors.keep(s.acts.quantize(&s.rows[..rows * cols], &[m], qisa));
            errors.keep(matmul_bands(data, m, &s.acts, part, ld, qisa));
        });
    });
    errors.into_result()
}

/// Attention of one token's query heads over `n_keys` cached rows, one head per task.
#[allow(clippy::too_many_arguments)]
fn decode_attention<T: KvElem>(
    team: &Team,
    isa: Isa,
    q: &[f32],
    k: &[T],
    v: &[T],
    kv_dim: usize,
    hd: usize,
    group: usize,
    n_keys: usize,
    scale: f32,
    out: &mut [f32],
    errors: &FirstError,
) {
    team.for_each_chunk_mut(out, hd, |_, h, out| {
        let kvh = h / group;
        let keys = Rows {
            data: &k[kvh * hd..],
            stride: kv_dim,
            rows: n_keys,
        };
        let values = Rows {
            data: &v[kvh * hd..],
            stride: kv_dim,
            rows: n_keys,
        };
        errors.keep(ops::attend(
            isa,
            &q[h * hd..(h + 1) * hd],
            keys,
            values,
            scale,
            out,
        ));
    });
}

/// Causal (or sliding-window) attention of a prompt chunk's queries.
struct PromptAttention<'a> {
    qkv: &'a [f32],
    width: usize,
    kv_dim: usize,
    hd: usize,
    group: usize,
    blocks: usize,
    len: usize,
    /// Key index of the chunk's first query.
    first: usize,
    n_keys: usize,
    mask: Mask,
    scale: f32,
    isa: Isa,
}

impl PromptAttention<'_> {
    #[allow(clippy::too_many_arguments)]
    fn run<T: KvElem>(
        &self,
        team: &Team,
        workers: &PerWorker<WorkerScratch>,
        k: &[T],
        v: &[T],
        out: &mut [f32],
        offsets: &[usize],
        errors: &FirstError,
    ) -> Result<()> {
        let hd = self.hd;
        team.for_each_part_mut(out, offsets, |w, task, out| {
            let (h, b) = (task / self.blocks, task % self.blocks);
            let kvh = h / self.group;
            let a = b * QUERY_BLOCK;
            let e = ((b + 1) * QUERY_BLOCK).min(self.len);
            // Keys the block sees: up to its last query, from the first query's window.
            let hi = (self.first + e).min(self.n_keys);
            let lo = match self.mask {
                Mask::Window(win) => (self.first + a + 1).saturating_sub(win),
                _ => 0,
            };
            let queries = Rows {
                data: &self.qkv[a * self.width + h * hd..],
                stride: self.width,
                rows: e - a,
            };
            let all = |data| Rows {
                data,
                stride: self.kv_dim,
                rows: self.n_keys,
            };
            workers.with(w.index, |s| {
                errors.keep(ops::attend_blocked(
                    self.isa,
                    &mut s.attention,
                    queries,
                    hd,
                    all(&k[kvh * hd..]).range(lo..hi),
                    all(&v[kvh * hd..]).range(lo..hi),
                    self.scale,
                    self.mask,
                    self.first + a - lo,
                    out,
                    hd,
                ));
            });
        })?;
        Ok(())
    }
}
