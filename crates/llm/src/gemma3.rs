//! Gemma 3 (text) from a GGUF file.
//!
//! docent runs its own Gemma 3 rather than `candle_transformers::models::quantized_gemma3`, which
//! differs from the reference model in ways that change every answer: its feed-forward uses SiLU
//! where Gemma uses tanh-approximated GELU, it applies no sliding window while decoding, it ignores
//! the RoPE scaling of the global layers and the 27B model's query scale, and it dequantises the
//! whole token-embedding table to f32 (5.6 GB for the 27B model). This implementation follows the
//! graph llama.cpp runs for the same file; `greedy_continuation_matches_llama_cpp` in the tests
//! compares the two token for token.

use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor, ggml_file::qtensor_from_ggml};
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_nn::ops::softmax_last_dim;
use candle_nn::rotary_emb::rope;
use candle_transformers::quantized_nn::RmsNorm;

/// RoPE base of the sliding-window (local) layers; the file stores the global one.
const LOCAL_ROPE_BASE: f64 = 10_000.0;
/// Every sixth layer attends globally, the others within the sliding window.
const GLOBAL_EVERY: usize = 6;
/// Block count of Gemma 3 27B, whose queries are scaled by the model width per head rather than
/// the head size (`query_pre_attn_scalar` = 5376 / 32 in its configuration).
const BLOCKS_27B: usize = 62;

pub(crate) struct Gemma3 {
    /// Token embeddings, kept quantised on the CPU; rows are dequantised as tokens arrive.
    embed: Arc<QTensor>,
    n_embd: usize,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    local_rope: Rope,
    global_rope: Rope,
    device: Device,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    attn_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    post_ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    scale: f64,
    /// Sliding-window size for local layers; `None` for global ones.
    window: Option<usize>,
    /// Keys and values `(batch, kv heads, positions, head dim)` and the absolute position of the
    /// first one (local layers keep only what the window can still see).
    cache: Option<(Tensor, Tensor)>,
    cache_start: usize,
}

/// A weight matrix kept quantised. On the CPU, a long input (a prompt being read) is multiplied
/// through the matrix dequantised to f32, where the blocked f32 GEMM beats candle's per-row
/// quantised dot products by far (Gemma 3 270M, 1,767-token prompt: first token 38 s → 21 s);
/// a single row (decoding) uses the quantised kernel, which reads four to eight times less memory.
struct Linear {
    weight: Arc<QTensor>,
    quantized: QMatMul,
}

/// Rows from which the f32 path pays for dequantising the matrix.
const GEMM_ROWS: usize = 32;

impl Linear {
    fn new(weight: QTensor) -> Result<Self> {
        let weight = Arc::new(weight);
        Ok(Linear {
            quantized: QMatMul::from_arc(weight.clone())?,
            weight,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?.max(1);
        let quantized = !matches!(
            self.weight.dtype(),
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16
        );
        if rows >= GEMM_ROWS && quantized && x.device().is_cpu() {
            let w = self.weight.dequantize(x.device())?;
            x.broadcast_matmul(&w.t()?)
        } else {
            self.quantized.forward(x)
        }
    }
}

struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    /// Tables for `positions` positions; `position_scale` < 1 is linear RoPE scaling.
    fn new(
        head_dim: usize,
        base: f64,
        position_scale: f64,
        positions: usize,
        device: &Device,
    ) -> Result<Self> {
        let half = head_dim / 2;
        let inv: Vec<f64> = (0..half)
            .map(|i| base.powf(-(2.0 * i as f64) / head_dim as f64))
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
        })
    }

    /// Rotates `x` `(batch, heads, len, head dim)` whose first position is `pos`.
    fn apply(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let len = x.dim(2)?;
        let cos = self.cos.narrow(0, pos, len)?;
        let sin = self.sin.narrow(0, pos, len)?;
        rope(&x.contiguous()?, &cos, &sin)
    }
}

struct Meta<'a>(&'a Content);

impl Meta<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.metadata.get(&format!("gemma3.{key}"))
    }
    fn usize(&self, key: &str) -> Result<usize> {
        match self.get(key) {
            Some(v) => Ok(v.to_u32()? as usize),
            None => candle_core::bail!("metadata `gemma3.{key}` is missing"),
        }
    }
    fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|v| v.to_f32().ok()).map(f64::from)
    }
}

impl Gemma3 {
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &Content,
        r: &mut R,
        device: &Device,
        context_length: usize,
    ) -> Result<Self> {
        let md = Meta(content);
        let n_embd = md.usize("embedding_length")?;
        let n_layer = md.usize("block_count")?;
        let n_head = md.usize("attention.head_count")?;
        let n_kv_head = md.usize("attention.head_count_kv")?;
        let head_dim = md.usize("attention.key_length")?;
        let eps = md.f64("attention.layer_norm_rms_epsilon").unwrap_or(1e-6);
        let window = md.usize("attention.sliding_window")?;
        let global_base = md.f64("rope.freq_base").unwrap_or(1_000_000.0);
        // A scaling factor (8 in the 4B–27B models) stretches positions of the global layers.
        let global_scale = match md.f64("rope.scaling.factor") {
            Some(f) if f > 0.0 => 1.0 / f,
            _ => 1.0,
        };
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 || head_dim % 2 != 0 {
            candle_core::bail!(
                "inconsistent attention shape: {n_head} heads, {n_kv_head} key/value heads, head size {head_dim}"
            );
        }
        let scale = if n_layer == BLOCKS_27B {
            1.0 / ((n_embd / n_head) as f64).sqrt()
        } else {
            1.0 / (head_dim as f64).sqrt()
        };

        let mut tensor = |name: &str, dev: &Device| content.tensor(r, name, dev);
        let embed = Arc::new(tensor("token_embd.weight", &Device::Cpu)?);
        let output = if content.tensor_infos.contains_key("output.weight") {
            QMatMul::from_qtensor(tensor("output.weight", device)?)?
        } else if device.is_cpu() {
            QMatMul::from_arc(embed.clone())?
        } else {
            QMatMul::from_qtensor(tensor("token_embd.weight", device)?)?
        };
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight", device)?, eps)?;

        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let mut w = |n: &str| tensor(&format!("blk.{i}.{n}.weight"), device);
            let mut mm = |n: &str| w(n).and_then(Linear::new);
            let (q, k, v, o) = (
                mm("attn_q")?,
                mm("attn_k")?,
                mm("attn_v")?,
                mm("attn_output")?,
            );
            let (gate, up, down) = (mm("ffn_gate")?, mm("ffn_up")?, mm("ffn_down")?);
            let mut rms = |n: &str| w(n).and_then(|t| RmsNorm::from_qtensor(t, eps));
            layers.push(Layer {
                q,
                k,
                v,
                o,
                q_norm: rms("attn_q_norm")?,
                k_norm: rms("attn_k_norm")?,
                attn_norm: rms("attn_norm")?,
                post_attn_norm: rms("post_attention_norm")?,
                ffn_norm: rms("ffn_norm")?,
                post_ffn_norm: rms("post_ffw_norm")?,
                gate,
                up,
                down,
                n_head,
                n_kv_head,
                head_dim,
                scale,
                window: ((i + 1) % GLOBAL_EVERY != 0 && window > 0).then_some(window),
                cache: None,
                cache_start: 0,
            });
        }
        let positions = context_length.max(1);
        Ok(Gemma3 {
            embed,
            n_embd,
            layers,
            norm,
            output,
            local_rope: Rope::new(head_dim, LOCAL_ROPE_BASE, 1.0, positions, device)?,
            global_rope: Rope::new(head_dim, global_base, global_scale, positions, device)?,
            device: device.clone(),
        })
    }

    pub fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.cache = None;
            l.cache_start = 0;
        }
    }

    /// Dequantised embedding rows of `ids`, `(len, n_embd)`.
    fn embed_rows(&self, ids: &[u32]) -> Result<Tensor> {
        let dtype = self.embed.dtype();
        let row_bytes = self.n_embd / dtype.block_size() * dtype.type_size();
        let data = self.embed.data()?;
        let vocab = data.len() / row_bytes.max(1);
        let mut rows = Vec::with_capacity(ids.len() * row_bytes);
        for &id in ids {
            let id = id as usize;
            if id >= vocab {
                candle_core::bail!("token id {id} is outside the vocabulary ({vocab})");
            }
            rows.extend_from_slice(&data[id * row_bytes..(id + 1) * row_bytes]);
        }
        qtensor_from_ggml(dtype, &rows, vec![ids.len(), self.n_embd], &Device::Cpu)?
            .dequantize(&Device::Cpu)?
            .to_device(&self.device)
    }

    /// Logits `(1, vocab)` of the token after `tokens` `(1, len)`, which start at position `pos`.
    pub fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor> {
        let ids: Vec<u32> = tokens.squeeze(0)?.to_vec1()?;
        let len = ids.len();
        if pos + len > self.local_rope.cos.dim(0)? {
            candle_core::bail!(
                "position {} is beyond the context length {} the model was loaded for",
                pos + len,
                self.local_rope.cos.dim(0)?
            );
        }
        let mut x = (self.embed_rows(&ids)? * (self.n_embd as f64).sqrt())?.unsqueeze(0)?;
        for layer in &mut self.layers {
            let rope = if layer.window.is_some() {
                &self.local_rope
            } else {
                &self.global_rope
            };
            let h = layer.attn_norm.forward(&x)?;
            let h = layer.attend(&h, pos, rope)?;
            let h = layer.post_attn_norm.forward(&h)?;
            x = (x + h)?;
            let h = layer.ffn_norm.forward(&x)?;
            let h = (layer.gate.forward(&h)?.gelu()? * layer.up.forward(&h)?)?;
            let h = layer.down.forward(&h)?;
            let h = layer.post_ffn_norm.forward(&h)?;
            x = (x + h)?;
        }
        let x = self.norm.forward(&x.i((.., len - 1, ..))?)?;
        self.output.forward(&x)
    }
}

impl Layer {
    fn attend(&mut self, x: &Tensor, pos: usize, rope: &Rope) -> Result<Tensor> {
        let (b, len, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let heads = |t: Tensor, n: usize| t.reshape((b, len, n, hd))?.transpose(1, 2);
        let q = heads(self.q.forward(x)?, nh)?;
        let k = heads(self.k.forward(x)?, nkv)?;
        let v = heads(self.v.forward(x)?, nkv)?.contiguous()?;
        let q = rope.apply(&self.q_norm.forward(&q.contiguous()?)?, pos)?;
        let k = rope.apply(&self.k_norm.forward(&k.contiguous()?)?, pos)?;

        let (k, v, start) = match self.cache.take() {
            Some((ck, cv)) if pos > 0 => (
                Tensor::cat(&[&ck, &k], 2)?,
                Tensor::cat(&[&cv, &v], 2)?,
                self.cache_start,
            ),
            _ => (k, v, pos),
        };
        let kv_len = k.dim(2)?;

        // Query i (absolute pos + i) sees key j (absolute start + j) when j is not in its future
        // and, in a local layer, less than `window` positions back.
        let masked = |qi: usize, kj: usize| kj > qi || self.window.is_some_and(|w| qi - kj >= w);
        let needs_mask = (0..len).any(|i| (0..kv_len).any(|j| masked(pos + i, start + j)));
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
            Some(Tensor::from_vec(m, (len, kv_len), x.device())?)
        } else {
            None
        };

        // Grouped-query attention without copying keys: the query heads that share a key/value
        // head are stacked along the sequence axis.
        let rep = nh / nkv;
        let q = (q * self.scale)?.reshape((b, nkv, rep * len, hd))?;
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

        // Drop keys no later query can see, once there are a window's worth of them (keys
        // still in the cache but out of the window are masked above).
        let (k, v, start) = match self.window {
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
        self.cache = Some((k, v));
        self.cache_start = start;
        self.o.forward(&out)
    }
}
