//! Building blocks of docent's own transformer graphs ([`crate::gemma3`], [`crate::llama`]):
//! quantised linear layers with a GEMM path for prompts, quantised embedding lookup, rotary
//! position tables, and attention over a KV cache with grouped-query heads and an optional
//! sliding window.

use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor, ggml_file::qtensor_from_ggml};
use candle_core::{D, Device, Module, Result, Tensor};
use candle_nn::ops::softmax_last_dim;
use candle_nn::rotary_emb::{rope, rope_i};

/// Metadata under the architecture's prefix (`llama.block_count`).
pub(crate) struct Meta<'a> {
    pub content: &'a Content,
    pub arch: &'a str,
}

impl Meta<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(&format!("{}.{key}", self.arch))
    }
    pub fn usize(&self, key: &str) -> Result<usize> {
        match self.get(key) {
            Some(v) => Ok(v.to_u32()? as usize),
            None => candle_core::bail!("metadata `{}.{key}` is missing", self.arch),
        }
    }
    pub fn opt_usize(&self, key: &str) -> Option<usize> {
        self.get(key)
            .and_then(|v| v.to_u32().ok())
            .map(|x| x as usize)
    }
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.to_f32().ok()).map(f64::from)
    }
    pub fn string(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(|v| v.to_string().ok())
            .map(|s| s.as_str())
    }
}

/// A weight matrix kept quantised. On the CPU, a long input (a prompt being read) is multiplied
/// through the matrix dequantised to f32, where the blocked f32 GEMM beats candle's per-row
/// quantised dot products by far (Gemma 3 270M, 1,767-token prompt: first token 38 s → 19 s);
/// a single row (decoding) uses the quantised kernel, which reads four to eight times less memory.
pub(crate) struct Linear {
    weight: Arc<QTensor>,
    quantized: QMatMul,
}

/// Rows from which the f32 path pays for dequantising the matrix.
const GEMM_ROWS: usize = 32;

impl Linear {
    pub fn new(weight: QTensor) -> Result<Self> {
        Self::from_arc(Arc::new(weight))
    }

    pub fn from_arc(weight: Arc<QTensor>) -> Result<Self> {
        Ok(Linear {
            quantized: QMatMul::from_arc(weight.clone())?,
            weight,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(D::Minus1)?.max(1);
        let quantized = !matches!(
            self.weight.dtype(),
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16
        );
        let dtype = self.weight.dtype();
        let act = activation_type(dtype);
        let width = x.dim(D::Minus1)?;
        if rows >= GEMM_ROWS && quantized && x.device().is_cpu() && width % act.block_size() == 0 {
            // The activations are rounded as the quantised kernels (and llama.cpp) round them, so
            // both paths give the same numbers; without this, near-ties between two tokens
            // resolve differently from llama.cpp.
            let shape = x.shape().clone();
            let x = QTensor::quantize(&x.flatten_to(D::Minus2)?, act)?
                .dequantize(x.device())?
                .reshape(shape)?;
            let w = self.weight.dequantize(x.device())?;
            x.broadcast_matmul(&w.t()?)
        } else {
            self.quantized.forward(x)
        }
    }
}

/// The type candle's CPU kernels quantise activations to for a weight type (the K-quants pair
/// with Q8_K, the others with Q8_0-style blocks).
fn activation_type(weight: GgmlDType) -> GgmlDType {
    match weight {
        GgmlDType::Q2K
        | GgmlDType::Q3K
        | GgmlDType::Q4K
        | GgmlDType::Q5K
        | GgmlDType::Q6K
        | GgmlDType::Q8K => GgmlDType::Q8K,
        _ => GgmlDType::Q8_0,
    }
}

/// Token embeddings kept quantised on the CPU; rows are dequantised as tokens arrive (a 27B
/// model's table is 5.6 GB as f32).
pub(crate) struct Embedding {
    table: Arc<QTensor>,
    width: usize,
    device: Device,
}

impl Embedding {
    pub fn new(table: Arc<QTensor>, device: &Device) -> Result<Self> {
        let width = table.shape().dims().last().copied().unwrap_or(0);
        let block = table.dtype().block_size();
        if width == 0 || width % block != 0 {
            candle_core::bail!("token embedding rows of {width} do not fit blocks of {block}");
        }
        Ok(Embedding {
            table,
            width,
            device: device.clone(),
        })
    }

    /// Rows of `ids`, `(len, width)`, on the model's device.
    pub fn rows(&self, ids: &[u32]) -> Result<Tensor> {
        let dtype = self.table.dtype();
        let row_bytes = self.width / dtype.block_size() * dtype.type_size();
        let data = self.table.data()?;
        let vocab = data.len() / row_bytes;
        let mut rows = Vec::with_capacity(ids.len() * row_bytes);
        for &id in ids {
            let id = id as usize;
            if id >= vocab {
                candle_core::bail!("token id {id} is outside the vocabulary ({vocab})");
            }
            rows.extend_from_slice(&data[id * row_bytes..(id + 1) * row_bytes]);
        }
        qtensor_from_ggml(dtype, &rows, vec![ids.len(), self.width], &Device::Cpu)?
            .dequantize(&Device::Cpu)?
            .to_device(&self.device)
    }
}

/// Rotary position tables.
pub(crate) struct Rope {
    cos: Tensor,
    sin: Tensor,
    /// Adjacent pairs rotate together (llama's GGUF layout) rather than the two halves.
    interleaved: bool,
}

impl Rope {
    /// Tables for `positions` positions. `position_scale` < 1 is linear RoPE scaling;
    /// `freq_factors` (Llama 3.1's `rope_freqs.weight`) divide the frequencies.
    pub fn new(
        rotary_dim: usize,
        base: f64,
        position_scale: f64,
        freq_factors: Option<&[f32]>,
        interleaved: bool,
        positions: usize,
        device: &Device,
    ) -> Result<Self> {
        let half = rotary_dim / 2;
        let inv: Vec<f64> = (0..half)
            .map(|i| {
                let f = base.powf(-(2.0 * i as f64) / rotary_dim as f64);
                match freq_factors.and_then(|ff| ff.get(i)) {
                    Some(&d) if d > 0.0 => f / d as f64,
                    _ => f,
                }
            })
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            let p = p as f64 * position_scale;
            for f in &inv {
                let (s, c) = (p * f).sin_cos();
                cos.push(c as f32);
                sin.push(s as f32);
            }
        }
        Ok(Rope {
            cos: Tensor::from_vec(cos, (positions, half), device)?,
            sin: Tensor::from_vec(sin, (positions, half), device)?,
            interleaved,
        })
    }

    pub fn positions(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Rotates `x` `(batch, heads, len, head dim)` whose first position is `pos`.
    pub fn apply(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let len = x.dim(2)?;
        let cos = self.cos.narrow(0, pos, len)?;
        let sin = self.sin.narrow(0, pos, len)?;
        let x = x.contiguous()?;
        if self.interleaved {
            rope_i(&x, &cos, &sin)
        } else {
            rope(&x, &cos, &sin)
        }
    }
}

/// Keys and values of one layer, `(batch, kv heads, positions, head dim)`, and the absolute
/// position of the first (a sliding-window layer keeps only what its window can still see).
#[derive(Default)]
pub(crate) struct KvCache {
    kv: Option<(Tensor, Tensor)>,
    start: usize,
}

impl KvCache {
    pub fn clear(&mut self) {
        self.kv = None;
        self.start = 0;
    }
}

/// Causal attention of `q` `(batch, heads, len, head dim)` starting at position `pos` over the
/// cache extended by `k`, `v` `(batch, kv heads, len, head dim)`; returns `(batch, len, heads ×
/// head dim)`. `window`: keys at least this many positions back are not seen.
pub(crate) fn attention(
    q: &Tensor,
    k: Tensor,
    v: Tensor,
    cache: &mut KvCache,
    pos: usize,
    scale: f64,
    window: Option<usize>,
) -> Result<Tensor> {
    let (b, nh, len, hd) = q.dims4()?;
    let nkv = k.dim(1)?;
    let (k, v, start) = match cache.kv.take() {
        Some((ck, cv)) if pos > 0 => (
            Tensor::cat(&[&ck, &k], 2)?,
            Tensor::cat(&[&cv, &v.contiguous()?], 2)?,
            cache.start,
        ),
        _ => (k, v.contiguous()?, pos),
    };
    let kv_len = k.dim(2)?;

    // Query i (absolute pos + i) sees key j (absolute start + j) when j is not in its future
    // and, with a window, less than `window` positions back.
    let masked = |qi: usize, kj: usize| kj > qi || window.is_some_and(|w| qi - kj >= w);
    let needs_mask = (0..len).any(|i| masked(pos + i, start + kv_len - 1))
        || (0..len).any(|i| masked(pos + i, start));
    let mask = if needs_mask {
        let m: Vec<f32> = (0..len)
            .flat_map(|i| (0..kv_len).map(move |j| (i, j)))
            .map(|(i, j)| {
                if masked(pos + i, start + j) {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        Some(Tensor::from_vec(m, (len, kv_len), q.device())?)
    } else {
        None
    };

    // Grouped-query attention without copying keys: the query heads that share a key/value
    // head are stacked along the sequence axis.
    let rep = nh / nkv;
    let q = (q * scale)?.reshape((b, nkv, rep * len, hd))?;
    let att = q.matmul(&k.t()?)?.reshape((b, nh, len, kv_len))?;
    let att = match &mask {
        Some(m) => att.broadcast_add(m)?,
        None => att,
    };
    let att = softmax_last_dim(&att)?.reshape((b, nkv, rep * len, kv_len))?;
    let out = att
        .matmul(&v)?
        .reshape((b, nh, len, hd))?
        .transpose(1, 2)?
        .reshape((b, len, nh * hd))?;

    // Drop keys no later query can see, once there are a window's worth of them (keys still in
    // the cache but out of the window are masked above).
    let (k, v, start) = match window {
        Some(w) if kv_len >= 2 * w => {
            let keep = w - 1;
            let drop = kv_len - keep;
            (
                k.narrow(2, drop, keep)?.contiguous()?,
                v.narrow(2, drop, keep)?.contiguous()?,
                start + drop,
            )
        }
        _ => (k, v, start),
    };
    cache.kv = Some((k, v));
    cache.start = start;
    Ok(out)
}

/// Splits `(batch, len, heads × head dim)` into `(batch, heads, len, head dim)`.
pub(crate) fn heads(t: Tensor, n: usize, head_dim: usize) -> Result<Tensor> {
    let (b, len, _) = t.dims3()?;
    t.reshape((b, len, n, head_dim))?.transpose(1, 2)
}

/// The last position of `x` `(batch, len, width)` through the final norm and output layer.
pub(crate) fn logits(x: &Tensor, norm: &impl Module, output: &Linear) -> Result<Tensor> {
    let len = x.dim(1)?;
    let last = x.narrow(1, len - 1, 1)?.squeeze(1)?;
    output.forward(&norm.forward(&last)?)
}
