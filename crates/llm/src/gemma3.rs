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

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use crate::graph::{Embedding, KvCache, Linear, Meta, Rope, attention, heads, logits};

/// RoPE base of the sliding-window (local) layers; the file stores the global one.
const LOCAL_ROPE_BASE: f64 = 10_000.0;
/// Every sixth layer attends globally, the others within the sliding window.
const GLOBAL_EVERY: usize = 6;
/// Block count of Gemma 3 27B, whose queries are scaled by the model width per head rather than
/// the head size (`query_pre_attn_scalar` = 5376 / 32 in its configuration).
const BLOCKS_27B: usize = 62;

pub(crate) struct Gemma3 {
    embed: Embedding,
    n_embd: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    scale: f64,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    local_rope: Rope,
    global_rope: Rope,
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
    /// Sliding-window size for local layers; `None` for global ones.
    window: Option<usize>,
    cache: KvCache,
}

pub(crate) fn check_heads(n_head: usize, n_kv_head: usize, head_dim: usize) -> Result<()> {
    if n_head == 0
        || n_kv_head == 0
        || !n_head.is_multiple_of(n_kv_head)
        || !head_dim.is_multiple_of(2)
    {
        candle_core::bail!(
            "inconsistent attention shape: {n_head} heads, {n_kv_head} key/value heads, head size {head_dim}"
        );
    }
    Ok(())
}

impl Gemma3 {
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &Content,
        r: &mut R,
        device: &Device,
        context_length: usize,
    ) -> Result<Self> {
        let md = Meta {
            content,
            arch: "gemma3",
        };
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
        check_heads(n_head, n_kv_head, head_dim)?;
        let scale = if n_layer == BLOCKS_27B {
            1.0 / ((n_embd / n_head) as f64).sqrt()
        } else {
            1.0 / (head_dim as f64).sqrt()
        };

        let mut tensor = |name: &str, dev: &Device| content.tensor(r, name, dev);
        let table = Arc::new(tensor("token_embd.weight", &Device::Cpu)?);
        let output = if content.tensor_infos.contains_key("output.weight") {
            Linear::new(tensor("output.weight", device)?)?
        } else if device.is_cpu() {
            Linear::from_arc(table.clone())?
        } else {
            Linear::new(tensor("token_embd.weight", device)?)?
        };
        let embed = Embedding::new(table, device)?;
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
                window: ((i + 1) % GLOBAL_EVERY != 0 && window > 0).then_some(window),
                cache: KvCache::default(),
            });
        }
        let positions = context_length.max(1);
        let rope = |base, scale| Rope::new(head_dim, base, scale, None, false, positions, device);
        Ok(Gemma3 {
            embed,
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            scale,
            layers,
            norm,
            output,
            local_rope: rope(LOCAL_ROPE_BASE, 1.0)?,
            global_rope: rope(global_base, global_scale)?,
        })
    }

    pub fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.cache.clear();
        }
    }

    /// Logits `(1, vocab)` of the token after `tokens` `(1, len)`, which start at position `pos`.
    pub fn forward(&mut self, tokens: &Tensor, pos: usize) -> Result<Tensor> {
        let ids: Vec<u32> = tokens.squeeze(0)?.to_vec1()?;
        if pos + ids.len() > self.local_rope.positions() {
            candle_core::bail!(
                "position {} is beyond the context length {} the model was loaded for",
                pos + ids.len(),
                self.local_rope.positions()
            );
        }
        let (nh, nkv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        let mut x = (self.embed.rows(&ids)? * (self.n_embd as f64).sqrt())?.unsqueeze(0)?;
        for l in &mut self.layers {
            let rope = if l.window.is_some() {
                &self.local_rope
            } else {
                &self.global_rope
            };
            let h = l.attn_norm.forward(&x)?;
            let q = heads(l.q.forward(&h)?, nh, hd)?;
            let k = heads(l.k.forward(&h)?, nkv, hd)?;
            let v = heads(l.v.forward(&h)?, nkv, hd)?;
            let q = rope.apply(&l.q_norm.forward(&q.contiguous()?)?, pos)?;
            let k = rope.apply(&l.k_norm.forward(&k.contiguous()?)?, pos)?;
            let a = attention(&q, k, v, &mut l.cache, pos, self.scale, l.window)?;
            let h = l.post_attn_norm.forward(&l.o.forward(&a)?)?;
            x = (x + h)?;
            let h = l.ffn_norm.forward(&x)?;
            let h = (l.gate.forward(&h)?.gelu()? * l.up.forward(&h)?)?;
            let h = l.post_ffn_norm.forward(&l.down.forward(&h)?)?;
            x = (x + h)?;
        }
        logits(&x, &self.norm, &self.output)
    }
}
